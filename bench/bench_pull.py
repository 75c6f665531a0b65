"""Pull speed and API-call efficiency against the emulator (real clients).

For each CRM: a full pull of the demo data (records/s), the API calls it used against
the minimum possible — ceil(records / page size) per object, plus HubSpot's association
batch reads at 100 ids a call — then an incremental pull with no changes (calls per
object; target ≤ 2) and one after ``EDITS`` records per object were edited in the CRM
(calls vs the minimum: search pages of 200 / query pages of 2,000). A last full pull of
the Salesforce Contacts with ``contacts_require_email`` shows the scope pushed into the
SOQL: only contacts with an email are fetched.

"minimum" is ceil(records / page size) per object at the page sizes recon uses (HubSpot
list 100, search 200, association batch reads 100 ids; Salesforce REST 2,000, Bulk 2.0
result pages ``BULK_PAGE``): the data calls no client could avoid. ``data_ratio`` counts
only the calls that carry records (list, search, query, association and Bulk result
pages; the first REST page that decides on Bulk is one of them); ``total_ratio`` counts
every call (schema, owners, Bulk job create/poll too); ``total_ratio_without_bulk_jobs``
every call but a Bulk job's create and status polls (a fixed 2+ calls per Bulk object
that no page size removes). The full pulls run with ``full=True``: schemas and owners are
re-read; later pulls reuse them (``[pull] schema_refresh_hours``/``owners_refresh_hours``).

    python bench/run.py --only pull           # size large (~200k companies + ~200k contacts per side)
    python bench/run.py --only pull --smoke   # size tiny
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

EDITS = 500


def _cfg(url: str, store: Path, require_email: bool = False) -> Any:
    from recon.config import load_config

    return load_config(
        None,
        overrides={
            "store": {"path": str(store)},
            "hubspot": {"base_url": url, "access_token": "pat-bench"},
            "salesforce": {"instance_url": url, "login_url": url, "auth": "client_credentials",
                           "client_id": "bench", "client_secret": "bench"},
            "pull": {"contacts_require_email": require_email},
        },
    )  # fmt: skip


def _minimum(source: str, result: Any) -> int:
    """ceil(records / page size) per object: list 100 (+ association reads of 100 ids),
    REST query 2,000, Bulk result pages ``BULK_PAGE`` (all the records, the REST page that
    chose Bulk included)."""
    from recon.sources.salesforce import BULK_PAGE

    total = 0
    for obj, stats in result.summary["sources"][source]["objects"].items():
        n = stats["fetched"]
        if source == "hubspot":
            total += max(1, math.ceil(n / 100)) + (math.ceil(n / 100) if obj == "contacts" else 0)
        else:
            bulk = "bulk" in stats["calls_by_kind"]
            total += max(1, math.ceil(n / (BULK_PAGE if bulk else 2000)))
    return total


def _minimum_incremental(source: str, result: Any) -> int:
    """Search pages of 200 (+ association reads of 100 ids) / query pages of 2,000; at least
    one call per object to learn whether anything changed."""
    total = 0
    for obj, stats in result.summary["sources"][source]["objects"].items():
        n = stats["fetched"]
        if source == "hubspot":
            total += max(1, math.ceil(n / 200)) + (math.ceil(n / 100) if obj == "contacts" else 0)
        else:
            total += max(1, math.ceil(n / 2000))
    return total


DATA_KINDS = {"list", "search", "associations", "query", "archived"}


def _data_calls(info: dict[str, Any]) -> int:
    kinds = info["calls"]["by_kind"]
    return sum(v for k, v in kinds.items() if k in DATA_KINDS)


def _figures(source: str, result: Any, seconds: float, minimum: int) -> dict[str, Any]:
    info = result.summary["sources"][source]
    records = sum(v for k, v in result.records.items() if k.startswith(source))
    data = 0
    bulk_jobs = 0
    for stats in info["objects"].values():
        if "bulk" in stats["calls_by_kind"]:
            # create + status polls: every Bulk call that is not a result page
            bulk_jobs += stats["calls_by_kind"]["bulk"] - (stats["pages"] - 1)
        kinds = stats["calls_by_kind"]
        # a Bulk job's data calls are its result pages (create and polls are overhead)
        data += (
            stats["pages"]
            if "bulk" in kinds
            else sum(v for k, v in kinds.items() if k in DATA_KINDS)
        )
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1) if seconds else None,
        "calls": result.calls[source],
        "data_calls": data,
        "minimum_calls": minimum,
        "data_ratio": round(data / minimum, 3) if minimum else None,
        "total_ratio": round(result.calls[source] / minimum, 3) if minimum else None,
        "bulk_job_calls": bulk_jobs,
        "total_ratio_without_bulk_jobs": (
            round((result.calls[source] - bulk_jobs) / minimum, 3) if minimum else None
        ),
        "calls_by_kind": info["calls"]["by_kind"],
        "calls_per_object": {o: v["calls_by_kind"] for o, v in info["objects"].items()},
    }


def _edit(state: Any, db: Any) -> None:
    from recon.sandbox.admin import edit_record

    edits = {
        ("hubspot", "companies"): {"description": "edited"},
        ("hubspot", "contacts"): {"jobtitle": "Edited"},
        ("salesforce", "Account"): {"Description": "edited"},
        ("salesforce", "Contact"): {"Title": "Edited"},
    }
    for (source, obj), fields in edits.items():
        ids = [r[0] for r in db.execute(
            "select record_id from snapshots where source=? and object=? and archived=0 order by random() limit ?",
            [source, obj, EDITS],
        )]  # fmt: skip
        for rid in ids:
            edit_record(state, source, obj, rid, fields)


def run(smoke: bool) -> dict[str, Any]:
    from recon.pull import run_pull
    from recon.sandbox import SandboxServer
    from recon.sandbox.server import open_state
    from recon.store import open_store

    size = "tiny" if smoke else "large"
    work = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    cache = Path(tempfile.gettempdir()) / f"recon-bench-sandbox-{size}.db"
    started = time.perf_counter()
    state = open_state(cache, size=size, seed=0)
    with state.tx() as conn:
        # planner statistics: without them the emulator's association batch read scans the
        # whole association table per call at size large (seconds per call)
        conn.execute("ANALYZE")
    out: dict[str, Any] = {"size": size, "sandbox_load_s": round(time.perf_counter() - started, 1)}
    with SandboxServer(state) as server:
        db = open_store(work / "recon.db")
        cfg = _cfg(server.url, work / "recon.db")
        for source in ("hubspot", "salesforce"):
            t = time.perf_counter()
            full = run_pull(db, cfg, sources=[source], full=True)
            seconds = time.perf_counter() - t
            out[f"{source}_full"] = _figures(source, full, seconds, _minimum(source, full))
            if source == "salesforce":
                full_contacts = full.records.get("salesforce:Contact", 0)
            quiet = run_pull(db, cfg, sources=[source])
            out[f"{source}_no_change"] = {
                "calls": quiet.calls[source],
                "calls_per_object": {
                    o: v["calls"] for o, v in quiet.summary["sources"][source]["objects"].items()
                },
                "records": sum(quiet.records.values()),
            }
        # scope pushed into the SOQL: Contacts without an email are not fetched at all
        scoped_db = open_store(work / "scoped.db")
        scoped = run_pull(
            scoped_db, _cfg(server.url, work / "scoped.db", True), sources=["salesforce"],
            objects=["Contact"], full=True,
        )  # fmt: skip
        out["salesforce_scoped_full_Contact"] = {
            "contacts_in_crm": full_contacts,
            "fetched": scoped.records.get("salesforce:Contact", 0),
            "stored": scoped_db["snapshots"].count,
            "calls": scoped.calls["salesforce"],
        }
        scoped_db.close()
        _edit(state, db)
        for source in ("hubspot", "salesforce"):
            t = time.perf_counter()
            inc = run_pull(db, cfg, sources=[source])
            out[f"{source}_incremental_{EDITS}_edits"] = _figures(
                source, inc, time.perf_counter() - t, _minimum_incremental(source, inc)
            )
        db.close()
    state.close()
    shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
