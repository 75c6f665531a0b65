"""Benchmark: build a change plan over a large generated store.

Rows are generated straight into a fresh SQLite store (snapshots with raw
``data`` JSON, one match run's link pairs and duplicate clusters, owners), then
``recon.plan.build_plan`` runs once and is timed. Full size: 200k companies and
200k contacts per side, 150k links per object (so 50k unmatched records per
object and side become creates), 2k duplicate clusters; about one linked pair
in five differs in some field. Target: < 10 s. ``--smoke``: 2k records. Both wall and
CPU seconds of the plan are reported: on a busy machine the wall time mostly measures
the other work.

The issue's target is the emulator's large demo (``recon demo`` at size large: about
783k records, 1.44M plan items). With ``RECON_BENCH_PLAN_STORE`` naming such a project
folder (its ``recon.toml`` and store, pulled and matched), the plan is also built there:
once as a dry run (load and compute) and once stored, the difference being the time to
store the items; the stored run is deleted again.

    python bench/run.py --only plan
    RECON_BENCH_PLAN_STORE=/tmp/large python bench/run.py --only plan
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from recon.config import load_config
from recon.models import stable_id
from recon.plan import approved_items, build_plan
from recon.store import finish_run, open_store, start_run

CITIES = ["Oslo", "Bergen", "Berlin", "Paris", "Lyon", "Austin", "Boston", "Leeds"]
TITLES = ["CEO", "CTO", "VP Sales", "Engineer", "Analyst", "Manager"]
STAGES = ["subscriber", "lead", "marketingqualifiedlead", "customer"]


def _ts(rng: random.Random) -> str:
    return f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.000Z"


def generate(
    db: Any, n_companies: int, n_contacts: int, n_links: int, n_clusters: int, seed: int = 7
) -> str:
    """Fill ``db`` and return the match run id."""
    rng = random.Random(seed)
    conn: sqlite3.Connection = db.conn
    snaps: list[tuple[Any, ...]] = []

    def add(source: str, obj: str, rid: str, data: dict[str, Any], **cols: Any) -> None:
        snaps.append(
            (
                source,
                obj,
                rid,
                cols.get("name"),
                cols.get("domain"),
                cols.get("email"),
                cols.get("account_id"),
                _ts(rng),
                _ts(rng),
                0,
                json.dumps(data),
            )
        )

    for i in range(n_companies):
        city, emp = rng.choice(CITIES), rng.randint(1, 5000)
        name, dom = f"Company {i}", f"c{i}.example"
        hs = {
            "name": name,
            "website": dom,
            "phone": f"+47 {i}",
            "city": city,
            "numberofemployees": str(emp),
            "industry": "TECHNOLOGY",
            "hubspot_owner_id": str(i % 20),
            "lifecyclestage": "customer",
        }
        sf = {
            "Name": name,
            "Website": dom,
            "Phone": f"+47 {i}",
            "BillingCity": city,
            "NumberOfEmployees": emp,
            "Industry": "Technology",
            "OwnerId": f"005{i % 20:015d}",
        }
        if i < n_links and rng.random() < 0.2:  # a linked pair that differs somewhere
            sf[rng.choice(["Phone", "BillingCity", "Name"])] = (
                None if rng.random() < 0.5 else "changed"
            )
        add("hubspot", "companies", f"hc{i}", hs, name=name, domain=dom)
        add(
            "salesforce",
            "Account",
            f"001{i:015d}",
            sf,
            name=name,
            domain=f"s{i}.example" if i >= n_links else dom,
        )
    for i in range(n_contacts):
        email = f"p{i}@c{i % n_companies}.example"
        sf_obj = "Contact" if i % 2 else "Lead"
        prefix = "003" if sf_obj == "Contact" else "00Q"
        hs = {
            "email": email,
            "firstname": f"F{i}",
            "lastname": f"L{i}",
            "jobtitle": rng.choice(TITLES),
            "city": rng.choice(CITIES),
            "hubspot_owner_id": str(i % 20),
            "lifecyclestage": rng.choice(STAGES),
            "hs_email_optout": "false",
        }
        if i % 2:  # what a synced HubSpot contact of a Salesforce Contact holds
            hs["company"] = f"Company {i % n_companies}"
            hs["salesforceaccountid"] = f"001{i % n_companies:015d}"
        sf = {
            "Email": email,
            "FirstName": f"F{i}",
            "LastName": f"L{i}",
            "Title": hs["jobtitle"],
            "OwnerId": f"005{i % 20:015d}",
            "HasOptedOutOfEmail": False,
        }
        sf["MailingCity" if sf_obj == "Contact" else "City"] = hs["city"]
        if i < n_links and rng.random() < 0.2:
            sf[rng.choice(["Title", "FirstName"])] = None if rng.random() < 0.5 else "changed"
        if sf_obj == "Contact":
            sf["AccountId"] = f"001{i % n_companies:015d}"
        add("hubspot", "contacts", f"hp{i}", hs, email=email, account_id=f"hc{i % n_companies}")
        add(
            "salesforce",
            sf_obj,
            f"{prefix}{i:015d}",
            sf,
            email=email if i < n_links else f"x{email}",
            account_id=sf.get("AccountId"),
        )
    conn.execute("BEGIN")
    conn.executemany(
        "insert into snapshots (source, object, record_id, name, domain, email, account_id, created_at, "
        "modified_at, archived, data) values (?,?,?,?,?,?,?,?,?,?,?)",
        snaps,
    )
    conn.executemany(
        "insert into owners (source, owner_id, email) values (?,?,?)",
        [("hubspot", str(i), f"o{i}@corp.example") for i in range(20)]
        + [("salesforce", f"005{i:015d}", f"o{i}@corp.example") for i in range(20)],
    )
    conn.execute("COMMIT")
    run = start_run(db, "match")
    pairs = []
    for i in range(n_links):
        sf_id = f"001{i:015d}"
        pairs.append(
            (
                run,
                stable_id("companies", "hubspot", f"hc{i}", "salesforce", sf_id),
                "link",
                "companies",
                "hubspot",
                "companies",
                f"hc{i}",
                "salesforce",
                "Account",
                sf_id,
                0.95,
                "auto",
            )
        )
        prefix, obj = ("003", "Contact") if i % 2 else ("00Q", "Lead")
        sf_id = f"{prefix}{i:015d}"
        pairs.append(
            (
                run,
                stable_id("contacts", "hubspot", f"hp{i}", "salesforce", sf_id),
                "link",
                "contacts",
                "hubspot",
                "contacts",
                f"hp{i}",
                "salesforce",
                obj,
                sf_id,
                0.9,
                "review" if i % 7 else "auto",
            )
        )
    clusters = []
    for k in range(n_clusters):  # duplicates among the unmatched HubSpot companies
        base = n_links + 2 * k
        if base + 1 >= n_companies:
            break
        for j in (base, base + 1):
            clusters.append(
                (run, f"cl{k}", "companies", "hubspot", "companies", f"hc{j}", 0.9, "review")
            )
    conn.execute("BEGIN")
    conn.executemany(
        "insert into pairs (run_id, pair_id, kind, object, source_l, object_l, record_id_l, source_r, object_r, "
        "record_id_r, score, tier) values (?,?,?,?,?,?,?,?,?,?,?,?)",
        pairs,
    )
    conn.executemany(
        "insert into clusters (run_id, cluster_id, object, source, record_object, record_id, score, tier) "
        "values (?,?,?,?,?,?,?,?)",
        clusters,
    )
    conn.execute("COMMIT")
    finish_run(db, run)
    return run


def run(smoke: bool = False) -> dict[str, Any]:
    """Generate, plan once, report sizes and seconds."""
    sizes = (1_000, 1_000, 750, 20) if smoke else (200_000, 200_000, 150_000, 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        generate(db, *sizes)
        gen = time.perf_counter() - t0
        cfg = load_config(None)
        t1, c1 = time.perf_counter(), time.process_time()
        res = build_plan(db, cfg)
        seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
        summary = res.summary()
        db.conn.close()
    return {
        "companies_per_side": sizes[0],
        "contacts_per_side": sizes[1],
        "links_per_object": sizes[2],
        "clusters": sizes[3],
        "generate_seconds": round(gen, 2),
        "plan_seconds": round(seconds, 2),
        "plan_cpu_seconds": round(cpu, 2),  # wall time is inflated when other work shares the cores
        "target_seconds": 10,
        "items": summary["items"],
        "by_action": summary["by_action"],
        "skipped": summary["skipped"],
    } | _demo_figures(smoke)


def _demo_figures(smoke: bool) -> dict[str, Any]:
    import os

    folder = os.environ.get("RECON_BENCH_PLAN_STORE")
    if smoke or not folder:
        return {}
    return {"large_demo": demo_store(Path(folder))}


def demo_store(folder: Path) -> dict[str, Any]:
    """Plan over a pulled and matched project (``folder/recon.toml``): dry run, then stored,
    then its approved items read (as `recon apply` does first)."""
    import os

    here = Path.cwd()
    os.chdir(folder)  # the config names its store relative to itself
    try:
        cfg = load_config(folder / "recon.toml")
        db = open_store(Path(cfg.store.path))
        t0, c0 = time.perf_counter(), time.process_time()
        dry = build_plan(db, cfg, dry_run=True)
        dry_s, dry_cpu = time.perf_counter() - t0, time.process_time() - c0
        del dry
        t1, c1 = time.perf_counter(), time.process_time()
        res = build_plan(db, cfg)
        seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
        t2 = time.perf_counter()  # what `recon apply` reads first: the approved items
        approved = len(approved_items(db, res.run_id))
        approved_s = time.perf_counter() - t2
        with db.conn:  # the demo store is left as it was
            db.execute("delete from plan_items where run_id = ?", [res.run_id])
            db.execute("delete from runs where run_id = ?", [res.run_id])
        records = db.execute("select count(*) from snapshots").fetchone()[0]
        db.conn.close()
    finally:
        os.chdir(here)
    return {
        "store": str(folder),
        "records": records,
        "items": res.total,
        "dry_run_seconds": round(dry_s, 2),
        "dry_run_cpu_seconds": round(dry_cpu, 2),
        "plan_seconds": round(seconds, 2),
        "plan_cpu_seconds": round(cpu, 2),
        "store_items_seconds": round(seconds - dry_s, 2),
        "approved_items": approved,
        "approved_items_seconds": round(approved_s, 2),
        "target_seconds": 10,
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
