"""Soak test of `recon apply`: SIGKILL it at random moments, resume, and check the CRMs' end state.

An emulator runs in this process; `recon apply` runs as a subprocess against it and is
killed with SIGKILL at random moments (at least ``--kills`` times), each time resumed with
``--resume``, until a run finishes. Then the emulator's state is compared with the state
expected from the plan and the emulator's state before the apply, computed here
independently (never from recon's journal):

- lost: an update whose field does not hold the planned value, a create with no record,
  an association missing;
- doubled: a create that made more than one record (the emulator's change log counts every
  record created), or more created records than planned creates;
- merges: every merged record gone and every survivor kept, each merged once;
- untouched: control records outside the plan must keep their values.

    python bench/soak_apply.py                  # ≥ 50 kills, ~1,000 items
    python bench/soak_apply.py --kills 5 --scale 0.1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HS_TOKEN = "pat-na1-SOAK-SECRET-1b2c3d"
#: run order as recon.plan writes it: merges, creates, updates, associations
SEQ = {"merge": 10, "create": 30, "update": 50, "associate": 70}
SF_SESSION = "00DSOAK!SECRET-SESSION-9a8b7c"


def _hs(url: str) -> Any:
    from hubspot import HubSpot

    return HubSpot(access_token=HS_TOKEN, host=url)


def _sf(url: str) -> Any:
    from recon.config import load_config
    from recon.sources.sf_auth import SalesforceConnection

    cfg = load_config(
        None,
        overrides={
            "salesforce": {"instance_url": url, "auth": "session", "session_id": SF_SESSION}
        },
    )
    return SalesforceConnection(cfg.salesforce).sf


def _hs_create(hs: Any, obj: str, records: list[dict[str, str]], key: str) -> list[str]:
    import hubspot.crm.companies as comp
    import hubspot.crm.contacts as cont

    mod = comp if obj == "companies" else cont
    ids: list[str] = []
    for start in range(0, len(records), 100):
        part = records[start : start + 100]
        body = mod.BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[mod.SimplePublicObjectBatchInputForCreate(properties=r) for r in part]
        )
        resp = getattr(hs.crm, obj).batch_api.create(body)
        by = {r.properties[key]: str(r.id) for r in resp.results}
        ids += [by[r[key]] for r in part]
    return ids


def _sf_create(sf: Any, obj: str, records: list[dict[str, str]]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(records), 200):
        part = records[start : start + 200]
        res = sf.restful(
            "composite/sobjects",
            method="POST",
            json={"allOrNone": True, "records": [{"attributes": {"type": obj}, **r} for r in part]},
        )
        ids += [str(r["id"]) for r in res]
    return ids


def _hs_read(
    hs: Any, obj: str, ids: list[str], props: list[str], id_property: str | None = None
) -> dict[str, dict[str, Any]]:
    import hubspot.crm.companies as comp
    import hubspot.crm.contacts as cont

    mod = comp if obj == "companies" else cont
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 100):
        body = mod.BatchReadInputSimplePublicObjectId(
            inputs=[mod.SimplePublicObjectId(id=i) for i in ids[start : start + 100]],
            properties=props,
            properties_with_history=[],
            id_property=id_property,
        )
        resp = getattr(hs.crm, obj).batch_api.read(body)
        for rec in resp.results or []:
            key = rec.properties.get(id_property) if id_property else str(rec.id)
            out[str(key)] = {"id": str(rec.id), **rec.properties}
    return out


def _sf_read(sf: Any, obj: str, where: str, fields: list[str]) -> list[dict[str, Any]]:
    soql = f"SELECT Id, {', '.join(fields)} FROM {obj} WHERE {where}"
    return [dict(r) for r in sf.query_all(soql)["records"]]


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v + "'" for v in values)


def build(url: str, store: Path, scale: float, seed: int) -> dict[str, Any]:
    """Seed the emulator, write an approved plan into ``store``; return what is expected."""
    from recon.models import canonical_json, now_iso, stable_id
    from recon.store import finish_run, open_store, start_run, transaction

    rnd = random.Random(seed)
    tag = f"s{seed}-{rnd.randrange(10**6)}"
    n_co, n_ct, n_acc, n_lead, n_ctl = (max(2, int(x * scale)) for x in (400, 120, 200, 100, 20))
    hs, sf = _hs(url), _sf(url)
    co_ids = _hs_create(
        hs,
        "companies",
        [{"name": f"Soak {tag} {i}", "domain": f"c{i}.{tag}.example"} for i in range(n_co + n_ctl)],
        "name",
    )
    _hs_create(
        hs,
        "contacts",
        [
            {"email": f"old{i}@{tag}.example", "firstname": f"Old{i}"}
            for i in range(max(2, n_ct // 3))
        ],
        "email",
    )
    acc_ids = _sf_create(
        sf,
        "Account",
        [{"Name": f"Soak {tag} {i}", "Phone": "+1 555 0000"} for i in range(n_acc + n_ctl)],
    )
    controls = {"hubspot": co_ids[n_co:], "salesforce": acc_ids[n_acc:]}
    co_ids, acc_ids = co_ids[:n_co], acc_ids[:n_acc]
    before = {
        "companies": _hs_read(
            hs, "companies", co_ids + controls["hubspot"], ["name", "hs_lastmodifieddate"]
        ),
        "Account": {
            r["Id"]: r
            for r in _sf_read(
                sf, "Account", f"Name LIKE 'Soak {tag} %'", ["Name", "Phone", "SystemModstamp"]
            )
        },
    }
    items: list[dict[str, Any]] = []
    expect: dict[str, Any] = {
        "updates": [],
        "creates": [],
        "associations": [],
        "controls": controls,
        "tag": tag,
    }
    for i, rid in enumerate(co_ids):
        after = f"Soak {tag} {i} renamed"
        items.append(
            {
                "action": "update",
                "system": "hubspot",
                "object": "companies",
                "record_id": rid,
                "field": "name",
                "before": before["companies"][rid]["name"],
                "after": after,
                "snapshot_modified_at": before["companies"][rid]["hs_lastmodifieddate"],
                "payload": {"properties": {"name": after}},
            }
        )
        expect["updates"].append(("hubspot", "companies", rid, "name", after))
    for i, rid in enumerate(acc_ids):
        after = f"+1 555 {1000 + i:04d}"
        items.append(
            {
                "action": "update",
                "system": "salesforce",
                "object": "Account",
                "record_id": rid,
                "field": "Phone",
                "before": "+1 555 0000",
                "after": after,
                "snapshot_modified_at": before["Account"][rid]["SystemModstamp"],
                "payload": {"fields": {"Phone": after}},
            }
        )
        expect["updates"].append(("salesforce", "Account", rid, "Phone", after))
    for i in range(n_ct):
        email = f"new{i}@{tag}.example"
        item_id = stable_id("soak-create", tag, email)
        items.append(
            {
                "item_id": item_id,
                "action": "create",
                "system": "hubspot",
                "object": "contacts",
                "after": {"email": email},
                "payload": {
                    "object": "contacts",
                    "fields": {"email": email, "firstname": f"New{i}"},
                    "natural_key": "email",
                },
            }
        )
        expect["creates"].append(("hubspot", "contacts", email))
        company = co_ids[i % len(co_ids)]
        items.append(
            {
                "action": "associate",
                "system": "hubspot",
                "object": "contacts",
                "payload": {
                    "from": {"object": "contacts", "create_item_id": item_id},
                    "to": {"object": "companies", "id": company},
                },
            }
        )
        expect["associations"].append((email, company))
    for i in range(n_lead):
        email = f"lead{i}@{tag}.example"
        items.append(
            {
                "action": "create",
                "system": "salesforce",
                "object": "Lead",
                "after": {"Email": email},
                "payload": {
                    "object": "Lead",
                    "fields": {"LastName": f"Lead{i}", "Company": f"Co {tag}", "Email": email},
                    "natural_key": "Email",
                },
            }
        )
        expect["creates"].append(("salesforce", "Lead", email))
    # merges (irreversible; run first, as recon.plan orders them): fresh pairs on both sides
    n_merge = max(1, int(10 * scale))
    hs_pairs = _hs_create(
        hs,
        "companies",
        [{"name": f"Dup {tag} {i} {k}"} for i in range(n_merge) for k in (0, 1)],
        "name",
    )
    sf_pairs = _sf_create(
        sf, "Account", [{"Name": f"Dup {tag} {i} {k}"} for i in range(n_merge) for k in (0, 1)]
    )
    expect["merges"] = []
    for system, obj, ids in (
        ("hubspot", "companies", hs_pairs),
        ("salesforce", "Account", sf_pairs),
    ):
        for master, victim in zip(ids[0::2], ids[1::2], strict=True):
            items.append(
                {"action": "merge", "system": system, "object": obj, "record_id": master,
                 "payload": {"master": master, "victims": [victim], "fields": {}}}
            )  # fmt: skip
            expect["merges"].append((system, obj, master, victim))

    db = open_store(store)
    plan = start_run(db, "plan", config={"soak": tag})
    link = f"soak-link-{tag}"
    rows = []
    for seq, item in enumerate(items, start=1):
        row = {
            "run_id": plan,
            "item_id": item.pop("item_id", None) or stable_id("soak", tag, seq),
            "record_id": None,
            "field": None,
            "before": None,
            "after": None,
            "snapshot_modified_at": None,
            "link_item_id": link,
            "requires": [link],
            "reason": {"rule": "soak"},
            "status": "proposed",
            "seq": SEQ[item["action"]],
            **item,
        }
        for col in ("before", "after", "requires", "reason", "payload"):
            row[col] = canonical_json(row[col])
        rows.append(row)
    with transaction(db):
        db["plan_items"].insert_all(rows, pk=("run_id", "item_id"))
        db["decisions"].insert(
            {
                "kind": "link",
                "item_id": link,
                "label": "match",
                "decided_by": "human",
                "reviewer": "soak",
                "decided_at": now_iso(),
                "version": 1,
                "superseded": 0,
            }
        )
    finish_run(db, plan, summary={"items": len(rows)})
    db.conn.close()
    expect["plan"] = plan
    expect["items"] = len(rows)
    expect["before_controls"] = {
        "hubspot": {i: before["companies"][i]["name"] for i in controls["hubspot"]},
        "salesforce": {i: before["Account"][i]["Phone"] for i in controls["salesforce"]},
    }
    return expect


def check(
    url: str, expect: dict[str, Any], mark: int, changes: list[dict[str, Any]]
) -> dict[str, Any]:
    """Compare the emulator with ``expect`` (independent of recon's journal)."""
    hs, sf = _hs(url), _sf(url)
    lost: list[str] = []
    co = [u for u in expect["updates"] if u[0] == "hubspot"]
    acc = [u for u in expect["updates"] if u[0] == "salesforce"]
    got_co = _hs_read(hs, "companies", [u[2] for u in co], ["name"])
    lost += [f"hubspot companies {u[2]}" for u in co if got_co.get(u[2], {}).get("name") != u[4]]
    got_acc = (
        {
            r["Id"]: r
            for r in _sf_read(sf, "Account", f"Id IN ({_quoted([u[2] for u in acc])})", ["Phone"])
        }
        if acc
        else {}
    )
    lost += [
        f"salesforce Account {u[2]}" for u in acc if got_acc.get(u[2], {}).get("Phone") != u[4]
    ]
    hs_emails = [c[2] for c in expect["creates"] if c[0] == "hubspot"]
    sf_emails = [c[2] for c in expect["creates"] if c[0] == "salesforce"]
    contacts = (
        _hs_read(hs, "contacts", hs_emails, ["email"], id_property="email") if hs_emails else {}
    )
    lost += [f"hubspot contact {e}" for e in hs_emails if e not in contacts]
    leads = _sf_read(sf, "Lead", f"Email IN ({_quoted(sf_emails)})", ["Email"]) if sf_emails else []
    lead_count: dict[str, int] = {}
    for r in leads:
        lead_count[str(r["Email"]).lower()] = lead_count.get(str(r["Email"]).lower(), 0) + 1
    lost += [f"salesforce Lead {e}" for e in sf_emails if lead_count.get(e, 0) == 0]
    # associations
    import hubspot.crm.associations.v4 as assoc

    missing_assoc = 0
    pairs = [(contacts[e]["id"], c) for e, c in expect["associations"] if e in contacts]
    for start in range(0, len(pairs), 100):
        part = pairs[start : start + 100]
        body = assoc.BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[assoc.PublicFetchAssociationsBatchRequest(id=p[0]) for p in part]
        )
        resp = hs.crm.associations.v4.batch_api.get_page("contacts", "companies", body)
        linked = {str(r._from.id): {str(t.to_object_id) for t in r.to} for r in resp.results or []}
        missing_assoc += sum(1 for cid, comp in part if comp not in linked.get(cid, set()))
    # doubles, from the emulator's change log
    created = [c for c in changes if c["seq"] > mark and c["action"] == "created"]
    created_by_obj: dict[str, int] = {}
    for c in created:
        created_by_obj[c["object"]] = created_by_obj.get(c["object"], 0) + 1
    planned_by_obj = {"contacts": len(hs_emails), "Lead": len(sf_emails)}
    doubled = sum(max(0, created_by_obj.get(o, 0) - n) for o, n in planned_by_obj.items())
    doubled += sum(n - 1 for n in lead_count.values() if n > 1)
    per_record: dict[tuple[str, str], int] = {}
    for c in changes:
        if c["seq"] > mark and c["action"] == "updated":
            per_record[(c["object"], c["record_id"])] = (
                per_record.get((c["object"], c["record_id"]), 0) + 1
            )
    # merges: every victim gone, every master kept, each victim merged exactly once
    merged_log: dict[str, int] = {}  # change-log entries that removed a record
    for c in changes:
        if c["seq"] > mark and c["action"] in ("merged", "deleted"):
            merged_log[str(c["record_id"])] = merged_log.get(str(c["record_id"]), 0) + 1
    merges = expect.get("merges", [])
    hs_m = [m for m in merges if m[0] == "hubspot"]
    sf_m = [m for m in merges if m[0] == "salesforce"]
    alive_hs = _hs_read(hs, "companies", [x for m in hs_m for x in m[2:]], ["name"]) if hs_m else {}
    alive_sf = (
        {
            r["Id"]
            for r in _sf_read(
                sf, "Account", f"Id IN ({_quoted([x for m in sf_m for x in m[2:]])})", ["Name"]
            )
        }
        if sf_m
        else set()
    )
    alive = set(alive_hs) | alive_sf
    merges_lost = sum(1 for m in merges if m[3] in alive or m[2] not in alive)
    merges_doubled = sum(1 for m in merges if merged_log.get(m[3], 0) > 1)
    # controls untouched
    ctl_hs = _hs_read(hs, "companies", expect["controls"]["hubspot"], ["name"])
    ctl_sf = {
        r["Id"]: r
        for r in _sf_read(
            sf, "Account", f"Id IN ({_quoted(expect['controls']['salesforce'])})", ["Phone"]
        )
    }
    touched = sum(
        1 for i, v in expect["before_controls"]["hubspot"].items() if ctl_hs[i]["name"] != v
    )
    touched += sum(
        1 for i, v in expect["before_controls"]["salesforce"].items() if ctl_sf[i]["Phone"] != v
    )
    return {
        "lost": len(lost) + missing_assoc,
        "lost_examples": lost[:5],
        "missing_associations": missing_assoc,
        "doubled_creates": doubled,
        "created_records": created_by_obj,
        "planned_creates": planned_by_obj,
        "records_updated": len(per_record),
        "repeated_update_writes": sum(n - 1 for n in per_record.values() if n > 1),
        "controls_changed": touched,
        "merges": len(merges),
        "merges_lost": merges_lost,
        "merges_repeated": merges_doubled,
    }


def _interrupted(store: Path) -> bool:
    """Whether the store holds an apply a killed run left unfinished."""
    from recon.apply import unfinished_apply
    from recon.store import open_store

    db = open_store(store)
    try:
        return unfinished_apply(db) is not None
    finally:
        db.conn.close()


def _activity(store: Path) -> int:
    """Audit rows so far (every batch writes some before and after it is sent)."""
    import sqlite3

    if not store.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("select count(*) from audit").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def soak(
    *,
    kills: int = 50,
    scale: float = 1.0,
    latency_ms: int = 40,
    batch: int = 5,
    seed: int = 0,
    window: float = 0.4,
) -> dict[str, Any]:
    """Run the soak; return the figures (see the module docstring)."""
    import requests

    from recon.sandbox import SandboxServer, SandboxState

    started = time.perf_counter()
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(SandboxState(":memory:")) as server:
        url = server.url.rstrip("/")
        work = Path(tmp)
        toml = work / "recon.toml"
        toml.write_text(
            f'[store]\npath = "recon.db"\n[hubspot]\nbase_url = "{url}"\naccess_token = "{HS_TOKEN}"\n'
            f'[salesforce]\ninstance_url = "{url}"\nauth = "session"\nsession_id = "{SF_SESSION}"\n'
            f"[apply]\nhubspot_batch_size = {batch}\nsalesforce_batch_size = {batch}\nmax_retries = 8\n",
            encoding="utf-8",
        )
        expect = build(url, work / "recon.db", scale, seed)
        mark = max(
            (
                c["seq"]
                for c in requests.get(f"{url}/_sandbox/changes", timeout=30).json()["changes"]
            ),
            default=0,
        )
        if latency_ms:
            requests.post(
                f"{url}/_sandbox/faults",
                json={"kind": "latency", "side": "*", "ms": latency_ms},
                timeout=30,
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
        cmd = [
            sys.executable,
            "-m",
            "recon",
            "-c",
            str(toml),
            "apply",
            "--plan",
            expect["plan"],
            "--yes",
            "--confirm-merges",
        ]
        store = work / "recon.db"
        done_kills, runs, rc = 0, 0, None
        killed_at: list[str] = []
        while True:
            runs += 1
            before = _activity(store)
            launched = time.perf_counter()
            proc = subprocess.Popen(
                # --resume only when a killed run left an apply to finish (a kill during
                # start-up may leave none, and --resume with nothing interrupted is an error)
                [*cmd, *(["--resume"] if runs > 1 and _interrupted(store) else [])],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if done_kills < kills:
                early = rnd.random() < 0.15
                # most kills land while apply writes (after its first journal/audit activity),
                # some anywhere in its start-up (lock, run row, journal seeding)
                deadline = launched + (rnd.uniform(0.2, 3.0) if early else 120.0)
                while proc.poll() is None and time.perf_counter() < deadline:
                    if not early and _activity(store) > before:
                        time.sleep(rnd.uniform(0, window))
                        break
                    time.sleep(0.005)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    done_kills += 1
                    killed_at.append("start-up" if early else "writing")
                    continue
                rc = proc.returncode
            else:
                rc = proc.wait()
            err = proc.stderr.read().decode() if proc.stderr else ""
            if rc not in (0, 4):
                raise RuntimeError(f"recon apply exited {rc}: {err[-2000:]}")
            break
        requests.delete(f"{url}/_sandbox/faults", timeout=30)
        changes = requests.get(f"{url}/_sandbox/changes", timeout=60).json()["changes"]
        figures = check(url, expect, mark, changes)
        from recon.store import open_store

        db = open_store(work / "recon.db")
        secrets_in_store = any(
            s in json.dumps([dict(r) for r in db.query(f"select * from [{t}]")], default=str)
            for t in db.table_names()
            for s in (HS_TOKEN, SF_SESSION)
        )
        runs_table = [dict(r) for r in db.query("select status from runs where stage = 'apply'")]
        db.conn.close()
    return {
        "items": expect["items"],
        "kills": done_kills,
        "runs": runs,
        "final_exit_code": rc,
        "apply_runs_in_store": len(runs_table),
        "kills_during_startup": killed_at.count("start-up"),
        "kills_while_writing": killed_at.count("writing"),
        "latency_ms": latency_ms,
        "batch_size": batch,
        **figures,
        "secrets_in_store": secrets_in_store,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kills", type=int, default=50, help="SIGKILLs before the final run (default 50)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="plan size factor (1.0 ≈ 1,000 items)"
    )
    parser.add_argument("--latency-ms", type=int, default=40, help="emulator latency per request")
    parser.add_argument(
        "--batch", type=int, default=5, help="writer batch size (small: more kill points)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = soak(
        kills=args.kills,
        scale=args.scale,
        latency_ms=args.latency_ms,
        batch=args.batch,
        seed=args.seed,
    )
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    ok = (
        figures["lost"] == 0
        and figures["doubled_creates"] == 0
        and figures["controls_changed"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
