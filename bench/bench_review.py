"""Review queue speed on a big store: first page, filter, detail, decision round trip.

Builds a store of generated records with ``items`` candidate review items
(links, duplicate clusters, field conflicts) written straight into the pinned
tables, then times the library calls the page makes. ``fill_store`` is also the
test-data generator of tests/test_review.py and tests/app/.

    python bench/run.py --only review          # 100k items
    python bench/run.py --only review --smoke  # 2k items
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

APPTEST = True
THRESHOLDS = {"auto": 0.9, "review": 0.5, "duplicate_auto": 0.95, "duplicate_review": 0.6}
WORDS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "hooli",
    "vandelay",
    "soylent",
]
CITIES = ["Berlin", "Paris", "London", "Madrid", "Oslo", "Lyon"]
COLS = (
    "source, object, record_id, name, domain, website, email, phone, first_name, last_name, company, "
    "account_id, city, country, owner_id, external_ids, created_at, modified_at, archived, data, run_id"
)
PAIR_COLS = (
    "run_id, pair_id, kind, object, source_l, object_l, record_id_l, source_r, object_r, record_id_r, "
    "score, match_weight, tier, explanation, cluster_id, flags"
)
CLUSTER_COLS = "run_id, cluster_id, object, source, record_object, record_id, score, tier"
PLAN_COLS = (
    "run_id, item_id, action, system, object, record_id, field, before, after, snapshot_modified_at, "
    "link_item_id, requires, reason, status, seq, payload"
)


def _company(rng: random.Random, i: int) -> tuple[str, str]:
    word = rng.choice(WORDS)
    return (
        f"{word.title()} {i} {rng.choice(['Inc', 'GmbH', 'Ltd', 'SA', ''])}".strip(),
        f"{word}{i}.com",
    )


def _snap(source: str, obj: str, rid: str, run: str, **f: Any) -> tuple[Any, ...]:
    data = {k: v for k, v in f.items() if v is not None}
    return (
        source, obj, rid, f.get("name"), f.get("domain"), f.get("website"), f.get("email"), f.get("phone"),
        f.get("first_name"), f.get("last_name"), f.get("company"), f.get("account_id"), f.get("city"),
        f.get("country"), None, "{}", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", 0, json.dumps(data), run,
    )  # fmt: skip


def _tier(score: float, auto: float, review: float) -> str:
    return "auto" if score >= auto else "review" if score >= review else "reject"


def fill_store(
    db: Any,
    *,
    links: int = 60,
    clusters: int = 10,
    conflicts: int = 10,
    creates: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a match run (links, clusters), a plan run (conflicts) and their records into ``db``.

    Half the links are companies (HubSpot companies ↔ Account), half contacts
    (HubSpot contacts ↔ Contact or Lead, with a Lead sharing each Contact's email
    every tenth pair). Returns the run ids and the ids written, per kind.
    """
    rng = random.Random(seed)
    match_run, plan_run = "match-bench-000001", "plan-bench-000001"
    snaps: list[tuple[Any, ...]] = []
    pairs: list[tuple[Any, ...]] = []
    clus: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    ids: dict[str, list[str]] = {"link": [], "duplicate": [], "conflict": []}
    link_ids: list[tuple[str, str, str]] = []
    for i in range(links):
        score = round(rng.random() ** 0.5, 4)
        tier = _tier(score, THRESHOLDS["auto"], THRESHOLDS["review"])
        expl = [
            {
                "comparison": "name",
                "level": rng.choice(["exact", "fuzzy>=0.9", "else"]),
                "weight": round(rng.uniform(-3, 8), 2),
            },
            {
                "comparison": "domain",
                "level": rng.choice(["exact", "null"]),
                "weight": round(rng.uniform(-1, 9), 2),
            },
        ]
        total = round(sum(e["weight"] for e in expl), 3)
        if i % 2 == 0:
            name, domain = _company(rng, i)
            other = name.upper() if rng.random() < 0.5 else name
            hs, sf = f"{100000 + i}", f"001{i:015d}"
            snaps.append(
                _snap(
                    "hubspot",
                    "companies",
                    hs,
                    match_run,
                    name=name,
                    domain=domain,
                    website=f"https://{domain}",
                    city=rng.choice(CITIES),
                )
            )
            snaps.append(
                _snap(
                    "salesforce",
                    "Account",
                    sf,
                    match_run,
                    name=other,
                    domain=domain,
                    website=f"www.{domain}",
                    city=rng.choice(CITIES),
                )
            )
            obj, ol, orr = "companies", "companies", "Account"
        else:
            first, last = rng.choice(["Ana", "Ben", "Chloé", "Dev"]), f"Smith{i}"
            email = f"{first.lower()}.{last.lower()}@{rng.choice(WORDS)}.com"
            hs = f"{500000 + i}"
            lead = i % 5 == 1
            sf = f"{'00Q' if lead else '003'}{i:015d}"
            snaps.append(
                _snap(
                    "hubspot",
                    "contacts",
                    hs,
                    match_run,
                    name=f"{first} {last}",
                    first_name=first,
                    last_name=last,
                    email=email,
                    phone="+4930123",
                    account_id=f"{100000 + i - 1}",
                )
            )
            snaps.append(
                _snap(
                    "salesforce",
                    "Lead" if lead else "Contact",
                    sf,
                    match_run,
                    name=f"{first} {last}",
                    first_name=first,
                    last_name=last,
                    email=email,
                    phone="+4930999",
                    account_id=f"001{i - 1:015d}",
                )
            )
            if i % 10 == 3:
                snaps.append(
                    _snap(
                        "salesforce",
                        "Lead",
                        f"00Q9{i:014d}",
                        match_run,
                        name=f"{first} {last}",
                        email=email,
                    )
                )
            obj, ol, orr = "contacts", "contacts", "Lead" if lead else "Contact"
        pid = f"pair{i:07d}"
        pairs.append(
            (
                match_run,
                pid,
                "link",
                obj,
                "hubspot",
                ol,
                hs,
                "salesforce",
                orr,
                sf,
                score,
                total,
                tier,
                json.dumps(expl),
                None,
                "[]",
            )
        )
        ids["link"].append(pid)
        link_ids.append((pid, hs, sf))
    for c in range(clusters):
        cid = f"clu{c:07d}"
        score = round(rng.uniform(0.5, 1.0), 4)
        tier = _tier(score, THRESHOLDS["duplicate_auto"], THRESHOLDS["duplicate_review"])
        name, domain = _company(rng, 900000 + c)
        members = [f"{700000 + c * 10 + k}" for k in range(2 + c % 2)]
        for k, rid in enumerate(members):
            snaps.append(
                _snap(
                    "hubspot",
                    "companies",
                    rid,
                    match_run,
                    name=name if k == 0 else name.lower(),
                    domain=domain,
                    city=CITIES[k],
                )
            )
            clus.append((match_run, cid, "companies", "hubspot", "companies", rid, score, tier))
        for a, b in itertools.pairwise(members):
            expl = [{"comparison": "name", "level": "fuzzy>=0.9", "weight": 6.1}]
            pairs.append(
                (
                    match_run,
                    f"dp{a}{b}",
                    "duplicate",
                    "companies",
                    "hubspot",
                    "companies",
                    a,
                    "hubspot",
                    "companies",
                    b,
                    score,
                    6.1,
                    tier,
                    json.dumps(expl),
                    cid,
                    "[]",
                )
            )
        ids["duplicate"].append(cid)
    for c, cid in enumerate(ids["duplicate"]):
        members = [f"{700000 + c * 10 + k}" for k in range(2 + c % 2)]
        payload = {
            "master": members[0],
            "victims": members[1:],
            "order": members,
            "values": {"city": {m: CITIES[k] for k, m in enumerate(members)}},
            "rule": "oldest",
        }
        items.append(
            (
                plan_run,
                f"merge{c:07d}",
                "merge",
                "hubspot",
                "companies",
                members[0],
                None,
                None,
                None,
                None,
                cid,
                json.dumps([cid]),
                json.dumps({"rule": "oldest"}),
                "proposed",
                20,
                json.dumps(payload),
            )
        )
    for k in range(conflicts):
        pid, hs, sf = link_ids[(k * 7) % len(link_ids)]
        iid = f"conf{k:07d}"
        field = rng.choice(["phone", "city", "industry"])
        a, b = f"+49 30 {k:05d}", f"+49 30 {k + 1:05d}"
        hs_obj, sf_obj = (
            ("companies", "Account")
            if sf.startswith("001")
            else ("contacts", "Lead" if sf.startswith("00Q") else "Contact")
        )
        payload = {
            "kind": "text",
            "hubspot": {
                "object": hs_obj,
                "record_id": hs,
                "field": field,
                "value": a,
                "as_salesforce": a,
            },
            "salesforce": {
                "object": sf_obj,
                "record_id": sf,
                "field": field.title(),
                "value": b,
                "as_hubspot": b,
            },
        }
        reason = {"rule": "review", "why": "both set and different", "score": None}
        items.append(
            (
                plan_run,
                iid,
                "conflict",
                "both",
                hs_obj,
                hs,
                field,
                json.dumps(a),
                None,
                None,
                pid,
                json.dumps([pid, iid]),
                json.dumps(reason),
                "needs_review",
                50,
                json.dumps(payload),
            )
        )
        ids["conflict"].append(iid)
    for k in range(creates):  # creates need their own `plan` decision
        iid = f"create{k:07d}"
        payload = {"object": "Account", "fields": {"Name": f"New {k}"}, "idempotency_key": iid}
        items.append(
            (
                plan_run,
                iid,
                "create",
                "salesforce",
                "Account",
                None,
                None,
                None,
                json.dumps(payload["fields"]),
                None,
                None,
                json.dumps([iid]),
                json.dumps({"rule": "create_missing"}),
                "proposed",
                30,
                json.dumps(payload),
            )
        )
    ids["create"] = [f"create{k:07d}" for k in range(creates)]
    conn = db.conn
    conn.execute("BEGIN")
    conn.executemany(
        f"insert or replace into snapshots ({COLS}) values ({', '.join('?' * 21)})", snaps
    )
    conn.executemany(f"insert into pairs ({PAIR_COLS}) values ({', '.join('?' * 16)})", pairs)
    conn.executemany(f"insert into clusters ({CLUSTER_COLS}) values ({', '.join('?' * 8)})", clus)
    conn.executemany(f"insert into plan_items ({PLAN_COLS}) values ({', '.join('?' * 16)})", items)
    for obj in ("companies", "contacts"):
        conn.execute(
            "insert into match_runs (run_id, object, settings, weights, counts, created_at) "
            "values (?, ?, ?, '{}', '{}', '2026-03-01T00:00:00Z')",
            [match_run, obj, json.dumps({"thresholds": THRESHOLDS})],
        )
    for run, stage, at in (
        (match_run, "match", "2026-03-01T00:00:00Z"),
        (plan_run, "plan", "2026-03-01T00:01:00Z"),
    ):
        conn.execute(
            "insert into runs (run_id, stage, status, started_at, ended_at, config, summary) values (?, ?, 'ok', ?, ?, '{}', '{}')",
            [run, stage, at, at],
        )
    conn.execute("COMMIT")
    return {"match_run_id": match_run, "plan_run_id": plan_run, "ids": ids}


def _ms(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def run(smoke: bool = False) -> dict[str, Any]:
    """Build the store and time the page's library calls (milliseconds)."""
    from recon import review
    from recon.store import open_store

    n = 2_000 if smoke else 100_000
    links, clusters = int(n * 0.9), int(n * 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recon.db"
        db = open_store(path)
        t = time.perf_counter()
        fill_store(db, links=links, clusters=clusters, conflicts=n - links - clusters)
        fill_s = time.perf_counter() - t
        db.conn.close()
        db = open_store(path)  # a new session: cold connection
        index_ms, state = _ms(lambda: review.ensure_queue(db))
        first_ms, page = _ms(lambda: review.queue(db, page_size=50))
        warm_ms, _ = _ms(lambda: review.queue(db, page_size=50), repeat=5)
        flt = review.QueueFilter(
            kinds=("link",),
            objects=("contacts",),
            tiers=("review",),
            text="smith1",
            score_min=0.5,
            score_max=0.95,
        )
        search_ms, _ = _ms(lambda: review.ensure_search(db))  # once per queue, at the first search
        filter_ms, fpage = _ms(lambda: review.queue(db, flt), repeat=5)
        deep_ms, _ = _ms(lambda: review.queue(db, page=page.pages - 1), repeat=3)
        detail_ms = {}
        for kind in ("link", "duplicate", "conflict"):
            one = review.queue(db, review.QueueFilter(kinds=(kind,)), page_size=1).items[0]
            detail_ms[kind], _ = _ms(lambda i=one: review.item_detail(db, i["item_id"]), repeat=5)
        round_trips = []
        for item in page.items[:20]:
            t = time.perf_counter()
            action = "reject" if item["kind"] == "conflict" else "approve"
            review.decide(
                db, item["item_id"], action, reviewer="bench", based_on_version=item["version"]
            )
            review.queue(db, page_size=50)
            round_trips.append((time.perf_counter() - t) * 1000)
        for item in page.items[20:40]:  # deferred: they wait behind the unanswered items
            review.decide(
                db, item["item_id"], "defer", reviewer="bench", based_on_version=item["version"]
            )
        deferred_ms, _ = _ms(lambda: review.queue(db, page_size=50), repeat=5)
        count_ms, count = _ms(lambda: review.count_bulk(db, tier="auto"), repeat=3)
        bulk_ms, _ = _ms(
            lambda: review.bulk_approve(db, tier="auto", reviewer="bench", expected=count)
        )
        undecided_ms, _ = _ms(lambda: review.queue(db, page_size=50), repeat=3)
        decided_ms, _ = _ms(
            lambda: review.queue(db, review.QueueFilter(status="decided")), repeat=3
        )
        undo_ms, _ = _ms(lambda: review.undo_last(db, "bench"))
        stats_ms, _ = _ms(
            lambda: (review.score_histogram(db), review.tier_counts(db), review.tier_precision(db))
        )
        first_page_total_ms = index_ms + first_ms
        result = {
            "items": state["items"],
            "fill_s": round(fill_s, 2),
            "queue_index_build_ms": round(index_ms, 1),
            "first_page_cold_ms": round(first_page_total_ms, 1),
            "first_page_indexed_ms": round(first_ms, 1),
            "page_warm_ms": round(warm_ms, 1),
            "last_page_ms": round(deep_ms, 1),
            "first_search_fills_labels_ms": round(search_ms, 1),
            "filter_ms": round(filter_ms, 1),
            "filter_matches": fpage.total,
            "detail_ms": {k: round(v, 2) for k, v in detail_ms.items()},
            "decide_round_trip_ms_median": round(statistics.median(round_trips), 1),
            "decide_round_trip_ms_max": round(max(round_trips), 1),
            "page_with_deferred_ms": round(deferred_ms, 1),
            "count_bulk_ms": round(count_ms, 1),
            "count_bulk_auto": count,
            "bulk_approve_auto_ms": round(bulk_ms, 1),
            "page_after_bulk_undecided_ms": round(undecided_ms, 1),
            "page_after_bulk_decided_ms": round(decided_ms, 1),
            "undo_bulk_ms": round(undo_ms, 1),
            "charts_stats_ms": round(stats_ms, 1),
            "targets": {
                "first_page_cold_lt_2s": first_page_total_ms < 2000,
                "first_page_indexed_lt_2s": first_ms < 2000,
                "decide_round_trip_lt_200ms": statistics.median(round_trips) < 200,
            },
            "load_average_1m": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
        result.update(_apptest_first_run(path) if APPTEST and not smoke else {})
        db.conn.close()
    return result


def _apptest_first_run(path: Path) -> dict[str, Any]:
    """Time the page's first full run in AppTest against the big store (cheap: no browser)."""
    from streamlit.testing.v1 import AppTest

    cfg = path.parent / "recon.toml"
    cfg.write_text(f'[store]\npath = "{path}"\n[review]\nreviewer = "bench"\n', encoding="utf-8")
    old = os.environ.get("RECON_CONFIG")
    os.environ["RECON_CONFIG"] = str(cfg)
    try:
        at = AppTest.from_function(_page, default_timeout=60)
        t = time.perf_counter()
        at.run()
        first = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        keys = {b.key for b in at.button}
        at.button(key="btn_approve" if "btn_approve" in keys else "btn_reject").click().run()
        decide = (time.perf_counter() - t) * 1000
    finally:
        if old is None:
            os.environ.pop("RECON_CONFIG", None)
        else:
            os.environ["RECON_CONFIG"] = old
    return {
        "apptest_first_run_ms": round(first, 1),
        "apptest_approve_rerun_ms": round(decide, 1),
        "apptest_errors": [e.value for e in at.exception],
    }


def _page() -> None:
    from recon.app.entry import run_page

    run_page()


if __name__ == "__main__":
    print(json.dumps(run(smoke=True), indent=2))
