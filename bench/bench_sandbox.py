"""Sandbox benchmark: demo-data generation and loading, `serve` start-up, HubSpot API throughput.

    python bench/run.py --only bench_sandbox          # small + large generation, small start-up
    python bench/run.py --only bench_sandbox --smoke  # tiny data, seconds

Figures: seconds to generate and to load each size; seconds from `recon sandbox serve
--size small` (fresh database) until it answers, and again with the database cached;
HubSpot list pages and searches per second through `hubspot-api-client`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_until_answering(db: Path, size: str) -> float:
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon",
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--size",
            size,
            "--db",
            str(db),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=60)
                return time.perf_counter() - start
            except requests.RequestException:
                if proc.poll() is not None or time.perf_counter() - start > 300:
                    return float("nan")
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _throughput(size: str) -> dict[str, float]:
    from hubspot import HubSpot
    from hubspot.crm.companies import PublicObjectSearchRequest

    from recon.sandbox import SandboxServer
    from recon.sandbox.server import open_state

    with SandboxServer(open_state(":memory:", size=size)) as server:
        hs = HubSpot(access_token="x", host=server.url)
        start = time.perf_counter()
        pages = 0
        after = None
        while pages < 50:
            page = hs.crm.companies.basic_api.get_page(
                limit=100, after=after, properties=["name", "domain"]
            )
            pages += 1
            if page.paging is None:
                break
            after = page.paging.next.after
        list_rate = pages / (time.perf_counter() - start)
        start = time.perf_counter()
        searches = 20
        for i in range(searches):
            hs.crm.companies.search_api.do_search(
                PublicObjectSearchRequest(
                    filter_groups=[
                        {
                            "filters": [
                                {
                                    "propertyName": "hs_lastmodifieddate",
                                    "operator": "GTE",
                                    "value": "0",
                                }
                            ]
                        }
                    ],
                    sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    limit=200,
                    after=str(i * 200),
                )
            )
        search_rate = searches / (time.perf_counter() - start)
    return {"list_pages_per_s": round(list_rate, 1), "searches_per_s": round(search_rate, 1)}


def run(smoke: bool) -> dict[str, Any]:
    from recon.sandbox import SandboxState
    from recon.sandbox.demo import generate, load

    out: dict[str, Any] = {}
    for size in ("tiny",) if smoke else ("small", "large"):
        start = time.perf_counter()
        data = generate(size, 0)
        gen = time.perf_counter() - start
        state = SandboxState(":memory:")
        start = time.perf_counter()
        counts = load(state, data)
        out[size] = {
            "generate_s": round(gen, 2),
            "load_s": round(time.perf_counter() - start, 2),
            "records": counts,
        }
        state.close()
    size = "tiny" if smoke else "small"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sandbox.db"
        out[f"serve_{size}_fresh_s"] = round(_serve_until_answering(db, size), 2)
        out[f"serve_{size}_cached_s"] = round(_serve_until_answering(db, size), 2)
    out[f"hubspot_api_{size}"] = _throughput(size)
    return out
