"""Salesforce emulator throughput: seeding, an incremental SOQL pull through
simple-salesforce (``WHERE SystemModstamp >= X ORDER BY SystemModstamp, Id``, 2,000
rows per page) and a Bulk API 2.0 query, on the large demo's Account count.

    python bench/run.py --only sandbox_salesforce
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from recon.sandbox.salesforce import load_records
from recon.sandbox.server import SandboxServer
from recon.sandbox.state import SandboxState


class _PlainHTTPAdapter(HTTPAdapter):
    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if request.url.startswith("https://"):
            request.url = "http://" + request.url[len("https://") :]
        return super().send(request, **kwargs)


def run(smoke: bool) -> dict[str, Any]:
    n = 3_000 if smoke else 200_000
    state = SandboxState(":memory:")
    t0 = time.perf_counter()
    load_records(
        state,
        "Account",
        (
            {
                "Name": f"Company {i}",
                "Website": f"company{i}.example",
                "BillingCity": "Berlin",
                "SystemModstamp": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            }
            for i in range(n)
        ),
    )
    seed_s = time.perf_counter() - t0
    out: dict[str, Any] = {"accounts": n, "seed_s": round(seed_s, 3)}
    with SandboxServer(state) as server:
        session = requests.Session()
        session.mount(server.url.replace("http://", "https://"), _PlainHTTPAdapter())
        sf = Salesforce(instance_url=server.url, session_id="00Dxx!bench", session=session)
        soql = (
            "SELECT Id, Name, Website, BillingCity, SystemModstamp FROM Account "
            "WHERE SystemModstamp >= 2024-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
        )
        t0 = time.perf_counter()
        rows = sum(1 for _ in sf.query_all_iter(soql))
        rest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        bulk_rows = sum(
            page.count("\n") - 1
            for page in sf.bulk2.Account.query(soql, max_records=50_000, wait=0.01)
        )
        bulk_s = time.perf_counter() - t0
    out |= {
        "rest_rows": rows,
        "rest_s": round(rest_s, 3),
        "rest_rows_per_s": round(rows / rest_s),
        "bulk_rows": bulk_rows,
        "bulk_s": round(bulk_s, 3),
        "bulk_rows_per_s": round(bulk_rows / bulk_s),
    }
    state.close()
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run("--smoke" in sys.argv), indent=2))
