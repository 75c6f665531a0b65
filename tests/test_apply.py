"""apply_plan against the emulator with the real clients: end state, journal, retries, stale, resume."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
from writers.crm_env import (  # noqa: F401  (fixtures)
    HS_TOKEN,
    SF_SESSION,
    CrmEnv,
    _own_sandbox,
    approve_ids,
    create,
    crm_fixture,
    hs_merge,
    hs_update,
    make_plan,
    sf_update,
    uid,
)

from recon.apply import apply_plan, build_writer
from recon.audit import verify
from recon.errors import BudgetExhausted, LockedError, UsageError
from recon.models import now_iso
from recon.store import transaction
from recon.writers import CallBudget


def journal(db: Any, run_id: str) -> dict[str, dict[str, Any]]:
    return {
        r["item_id"]: dict(r) for r in db.query("select * from journal where run_id = ?", [run_id])
    }


def companies(crm: CrmEnv, n: int) -> tuple[list[str], list[str], str]:
    tag = uid()
    names = [f"Co {tag} {i}" for i in range(n)]
    ids = crm.hs_create(
        "companies",
        [{"name": name, "domain": f"c{i}-{tag}.example"} for i, name in enumerate(names)],
    )
    return ids, names, tag


def renames(crm: CrmEnv, db: Any, ids: list[str], names: list[str], suffix: str) -> str:
    """A plan renaming each company ``name + suffix`` (approved)."""
    return make_plan(
        db,
        [
            hs_update(i, "name", n, n + suffix, crm.modified("hubspot", "companies", i))
            for i, n in zip(ids, names, strict=True)
        ],
    )


# --------------------------------------------------------------------------- end state


def test_full_apply_hubspot_end_state(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 2})
    db = crm.db(cfg)
    ids, names, tag = companies(crm, 5)
    contact = crm.hs_create("contacts", [{"email": f"p-{tag}@example.com", "firstname": "Pat"}])[0]
    snaps = {i: crm.modified("hubspot", "companies", i) for i in ids}
    items = [hs_update(i, "name", n, f"{n} Ltd", snaps[i]) for i, n in zip(ids, names, strict=True)]
    items.append(hs_update(ids[0], "phone", None, "+44 20 7946 0000", snaps[ids[0]]))
    new = create("hubspot", "companies", {"name": f"New {tag}", "domain": f"new-{tag}.example"})
    new["item_id"] = f"create-{tag}"
    items.append(new)
    items.append(
        {
            "action": "associate",
            "system": "hubspot",
            "object": "contacts",
            "record_id": contact,
            "payload": {
                "from": {"object": "contacts", "id": contact},
                "to": {"object": "companies", "create_item_id": f"create-{tag}"},
            },
        }
    )
    plan = make_plan(db, items)

    result = apply_plan(db, cfg, plan_run_id=plan)

    assert result.status == "ok"
    assert (result.items, result.applied, result.failed, result.stale) == (8, 8, {}, 0)
    for i, n in zip(ids, names, strict=True):
        assert crm.hs_get("companies", i, ["name"])["name"] == f"{n} Ltd"
    assert crm.hs_get("companies", ids[0], ["phone"])["phone"] == "+44 20 7946 0000"
    states = journal(db, result.run_id)
    assert {s["state"] for s in states.values()} == {"confirmed"}
    new_id = states[f"create-{tag}"]["crm_record_id"]
    assert crm.hs_get("companies", new_id, ["name"])["name"] == f"New {tag}"
    assoc = crm.hs().crm.associations.v4.basic_api.get_page("contacts", contact, "companies")
    assert new_id in {str(r.to_object_id) for r in assoc.results}
    # 3 update batches of 2 records (5 records, 6 fields) + reads; every call counted
    assert result.api_calls["hubspot"] >= 3 + 1 + 1
    # the audit has an intended and a confirmed row per item, and verifies (the key property,
    # if this test was the first to create in the shared sandbox, has a row of its own)
    outcomes = [
        r["outcome"]
        for r in db.query(
            "select outcome from audit where run_id = ? and item_id not like 'schema:%'",
            [result.run_id],
        )
    ]
    assert outcomes.count("intended") == 8 and outcomes.count("confirmed") == 8
    assert verify(db).ok and result.anchor == verify(db).anchor


def test_a_second_apply_of_the_same_plan_sends_nothing(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    plan = renames(crm, db, ids, names, " X")
    first = apply_plan(db, cfg, plan_run_id=plan)
    mark = crm.last_change()
    second = apply_plan(db, cfg, plan_run_id=plan)
    assert first.applied == 2 and second.items == 0 and second.applied == 0
    assert crm.changes(mark) == []


def test_dry_run_sends_nothing_and_writes_no_journal(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = make_plan(
        db,
        [
            hs_update(i, "name", n, "changed", crm.modified("hubspot", "companies", i))
            for i, n in zip(ids, names, strict=True)
        ],
    )
    mark = crm.last_change()
    result = apply_plan(db, cfg, plan_run_id=plan, dry_run=True)
    assert (
        result.dry_run
        and result.applied == 3
        and result.api_calls == {"hubspot": 1, "salesforce": 0}
    )
    assert crm.changes(mark) == []
    assert db["journal"].count == 0 and db["audit"].count == 0


def test_a_dry_run_after_an_apply_counts_only_what_is_left(crm: CrmEnv, tmp_path: Path) -> None:
    """What an earlier apply of the plan confirmed is not sent again: a dry run says so."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = make_plan(
        db,
        [
            hs_update(i, "name", n, f"renamed {k}", crm.modified("hubspot", "companies", i))
            for k, (i, n) in enumerate(zip(ids, names, strict=True))
        ],
    )
    assert apply_plan(db, cfg, plan_run_id=plan).applied == 3
    dry = apply_plan(db, cfg, plan_run_id=plan, dry_run=True)
    assert (dry.items, dry.applied, dry.api_calls) == (0, 0, {"hubspot": 0, "salesforce": 0})


def test_a_plan_from_before_recon_wrote_finds_the_values_in_place(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Planned again without a pull, the same writes meet records recon changed since their
    snapshot: the values are there already, so they are skipped, not stale for a person."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    stamps = {i: crm.modified("hubspot", "companies", i) for i in ids}
    items = [
        hs_update(i, "name", n, f"moved {k}", stamps[i])
        for k, (i, n) in enumerate(zip(ids, names, strict=True))
    ]
    assert apply_plan(db, cfg, plan_run_id=make_plan(db, items)).applied == 3
    again = apply_plan(db, cfg, plan_run_id=make_plan(db, items))
    assert (again.applied, again.stale, again.skipped) == (0, 0, 3)
    assert not db.execute("select count(*) from review_queue where kind = 'stale'").fetchone()[0]


def test_items_a_resumed_apply_just_failed_are_not_sent_again_in_the_same_run(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    items = [
        hs_update(i, "name", n, n + " again", crm.modified("hubspot", "companies", i))
        for i, n in zip(ids, names, strict=True)
    ]
    plan = make_plan(db, items)
    failed_id = db.execute(
        "select item_id from plan_items where run_id = ? order by item_id limit 1", [plan]
    ).fetchone()[0]
    db["journal"].insert(
        {"run_id": "apply-resumed", "item_id": failed_id, "plan_run_id": plan, "state": "failed"}
    )
    result = apply_plan(db, cfg, plan_run_id=plan, skip_failed_of="apply-resumed")
    assert (result.items, result.applied) == (1, 1)


def test_a_dry_run_counts_an_unconfirmed_merge_as_skipped(crm: CrmEnv, tmp_path: Path) -> None:
    """As the real apply would: a merge without --confirm-merges is not sent."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids = companies(crm, 3)[0]
    plan = make_plan(
        db,
        [hs_update(ids[2], "name", "x", "y", crm.modified("hubspot", "companies", ids[2])),
         hs_merge(crm, ids[:2])],
    )  # fmt: skip
    dry = apply_plan(db, cfg, plan_run_id=plan, dry_run=True)
    assert (dry.applied, dry.skipped) == (1, 1)
    confirmed = apply_plan(db, cfg, plan_run_id=plan, dry_run=True, confirm_merges=True)
    assert (confirmed.applied, confirmed.skipped) == (2, 0)


def test_unapproved_items_are_not_applied(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 1)
    plan = make_plan(
        db,
        [hs_update(ids[0], "name", names[0], "nope", crm.modified("hubspot", "companies", ids[0]))],
        approve=False,
    )
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0
    assert crm.hs_get("companies", ids[0], ["name"])["name"] == names[0]


# --------------------------------------------------------------------------- failures


def test_207_partial_failure_then_rerun_applies_only_what_failed(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, tag = companies(crm, 4)
    bad = f"Bad {tag}"
    items = [
        hs_update(
            i, "name", n, bad if k == 1 else f"{n} ok", crm.modified("hubspot", "companies", i)
        )
        for k, (i, n) in enumerate(zip(ids, names, strict=True))
    ]
    plan = make_plan(db, items)
    crm.fault(
        kind="validation",
        side="hubspot",
        object="companies",
        match={"name": bad},
        message="name is not allowed",
    )

    first = apply_plan(db, cfg, plan_run_id=plan)

    assert first.status == "partial" and first.applied == 3 and first.failed == {"validation": 1}
    failed = [r for r in journal(db, first.run_id).values() if r["state"] == "failed"]
    assert (
        len(failed) == 1
        and failed[0]["crm_record_id"] == ids[1]
        and "not allowed" in failed[0]["error"]
    )
    assert crm.hs_get("companies", ids[1], ["name"])["name"] == names[1]

    crm.clear_faults()
    mark = crm.last_change()
    second = apply_plan(db, cfg, plan_run_id=plan)

    assert second.items == 1 and second.applied == 1 and second.failed == {}
    assert [c["record_id"] for c in crm.changes(mark)] == [ids[1]]
    assert crm.hs_get("companies", ids[1], ["name"])["name"] == bad


def test_429_storm_is_retried_and_every_call_counted(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1, "max_retries": 8})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 4)
    plan = renames(crm, db, ids, names, " storm")
    crm.fault(kind="rate_limit", side="hubspot", every=2, retry_after=0)

    result = apply_plan(db, cfg, plan_run_id=plan)
    fired = sum(f["fired"] for f in crm.admin("GET", "faults")["faults"])
    crm.clear_faults()

    assert result.applied == 4 and result.failed == {}
    for i, n in zip(ids, names, strict=True):
        assert crm.hs_get("companies", i, ["name"])["name"] == n + " storm"
    assert fired >= 3
    # per batch: a read of the modification times right before it, then the update; every 429 counted
    assert result.api_calls["hubspot"] == 4 * 2 + fired


def test_a_429_storm_outlasting_the_retries_fails_its_items_and_the_rest_goes_on(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Like a 5xx storm: those items fail as rate_limited (sent again by the next apply), the
    other CRM's items are still written, the run is partial (exit 4), not aborted."""
    cfg = crm.config(tmp_path, apply={"max_retries": 1})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    account = crm.sf_create("Account", [{"Name": f"Storm {uid()}"}])[0]
    items = [
        hs_update(i, "name", n, n + " storm", crm.modified("hubspot", "companies", i))
        for i, n in zip(ids, names, strict=True)
    ]
    items.append(
        sf_update(
            account, "Phone", None, "+1 555 0142", crm.modified("salesforce", "Account", account)
        )
    )
    plan = make_plan(db, items)
    crm.fault(kind="rate_limit", side="hubspot", endpoint="*batch/update*", retry_after=0)
    result = apply_plan(db, cfg, plan_run_id=plan)
    faults = crm.admin("GET", "faults")
    crm.clear_faults()
    # one batch, max_retries + 1 calls (no second layer of rounds around the writer's retries)
    fired = [f.get("fired") for f in (faults.get("faults") if isinstance(faults, dict) else faults)]
    assert fired == [2], faults
    assert result.status == "partial" and result.failed == {"rate_limited": 2}
    assert result.applied == 1
    assert crm.sf_get("Account", account, ["Phone"])["Phone"] == "+1 555 0142"
    again = apply_plan(db, cfg, plan_run_id=plan)  # the next apply sends them
    assert again.applied == 2
    assert crm.hs_get("companies", ids[0], ["name"])["name"] == names[0] + " storm"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_reread_then_retried(crm: CrmEnv, tmp_path: Path, status: int) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, tag = companies(crm, 2)
    items = [
        hs_update(i, "name", n, n + " 5xx", crm.modified("hubspot", "companies", i))
        for i, n in zip(ids, names, strict=True)
    ]
    items.append(
        create("hubspot", "companies", {"name": f"Five {tag}", "domain": f"five-{tag}.example"})
    )
    plan = make_plan(db, items)
    crm.fault(kind="server_error", side="hubspot", endpoint="*batch/*", status=status, times=2)
    mark = crm.last_change()

    result = apply_plan(db, cfg, plan_run_id=plan)

    assert result.applied == 3 and result.failed == {}
    created = [c for c in crm.changes(mark) if c["action"] == "created"]
    assert len(created) == 1


def test_stale_record_is_refused_and_goes_back_to_review(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    snaps = {i: crm.modified("hubspot", "companies", i) for i in ids}
    plan = make_plan(
        db,
        [
            hs_update(i, "name", n, n + " from recon", snaps[i])
            for i, n in zip(ids, names, strict=True)
        ],
    )
    crm.edit("hubspot", "companies", ids[0], {"name": "Edited by a user"})

    result = apply_plan(db, cfg, plan_run_id=plan)

    assert result.stale == 1 and result.applied == 1
    assert crm.hs_get("companies", ids[0], ["name"])["name"] == "Edited by a user"
    assert crm.hs_get("companies", ids[1], ["name"])["name"] == names[1] + " from recon"
    row = next(
        iter(
            db.query("select * from plan_items where run_id = ? and record_id = ?", [plan, ids[0]])
        )
    )
    assert row["status"] == "needs_review"
    both = json.loads(row["reason"])["stale"]
    assert both["planned_after"] == names[0] + " from recon" and both["current"] == {
        "name": "Edited by a user"
    }
    assert (
        both["snapshot_modified_at"] == snaps[ids[0]]
        and both["current_modified_at"] != snaps[ids[0]]
    )
    # a rerun does not retry a stale item until it is decided again
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0


def test_a_salesforce_association_is_refused_on_a_changed_record(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An AccountId association is a field write: a user's newer AccountId is not overwritten."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    picked, planned = crm.sf_create("Account", [{"Name": f"Pick {tag}"}, {"Name": f"Plan {tag}"}])
    contacts = crm.sf_create("Contact", [{"LastName": f"C{i} {tag}"} for i in range(2)])
    plan = make_plan(
        db,
        [
            {
                "action": "associate",
                "system": "salesforce",
                "object": "Contact",
                "record_id": c,
                "field": "AccountId",
                "after": planned,
                "snapshot_modified_at": crm.modified("salesforce", "Contact", c),
                "payload": {
                    "from": {"object": "Contact", "id": c},
                    "to": {"object": "Account", "id": planned},
                    "type": "AccountId",
                },
            }
            for c in contacts
        ],
    )
    crm.edit("salesforce", "Contact", contacts[0], {"AccountId": picked})
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.applied, result.stale) == (1, 1)
    assert crm.sf_get("Contact", contacts[0], ["AccountId"])["AccountId"] == picked
    assert crm.sf_get("Contact", contacts[1], ["AccountId"])["AccountId"] == planned


def test_each_item_of_a_record_is_judged_against_its_own_snapshot(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """One write aimed at the record's current version (a stale write approved in review)
    goes; another on the same record, planned before the user's edit, goes back to review."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 1)
    old = crm.modified("hubspot", "companies", ids[0])
    crm.edit("hubspot", "companies", ids[0], {"name": "Edited by a user"})
    now = crm.modified("hubspot", "companies", ids[0])
    plan = make_plan(
        db,
        [
            hs_update(ids[0], "phone", None, "+1 555 0142", now),
            hs_update(ids[0], "name", names[0], names[0] + " Ltd", old),
        ],
    )
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.applied, result.stale) == (1, 1)
    got = crm.hs_get("companies", ids[0], ["phone", "name"])
    assert (got["phone"], got["name"]) == ("+1 555 0142", "Edited by a user")


def test_merges_need_confirmation(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, _names, _ = companies(crm, 2)
    plan = make_plan(db, [hs_merge(crm, ids)])
    refused = apply_plan(db, cfg, plan_run_id=plan)
    assert refused.skipped == 1 and refused.applied == 0
    assert crm.hs_get("companies", ids[1], ["name"])
    done = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert done.applied == 1
    assert crm.hs().crm.companies.batch_api  # client still usable
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", [ids[1]]) == {ids[1]}


def test_a_confirmed_merge_marks_its_victims_gone_in_the_store(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, _names, _ = companies(crm, 2)
    for rid in ids:  # what a pull stored
        db["snapshots"].upsert(
            {"source": "hubspot", "object": "companies", "record_id": rid, "archived": 0},
            pk=("source", "object", "record_id"),
        )
    plan = make_plan(db, [hs_merge(crm, ids)])
    assert apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True).applied == 1
    state = dict(db.execute("select record_id, archived from snapshots").fetchall())
    # the next plan neither merges the victim again nor reads it as live
    assert state == {ids[0]: 0, ids[1]: 1}


# --------------------------------------------------------------------------- resume


class _AfterSend:
    """Wraps a writer: after its ``at``-th write reached the CRM, ``then()`` runs (before the
    journal hears of the write)."""

    def __init__(self, inner: Any, then: Any, at: int = 1) -> None:
        self.inner, self.then, self.at, self.writes = inner, then, at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, ops: Any) -> Any:
        out = self.inner.write(ops)
        self.writes += 1
        if self.writes == self.at:
            self.then()
        return out


def _die() -> None:
    raise SystemExit("killed")


def _KillAfterSend(inner: Any, at: int) -> _AfterSend:
    """The n-th write reaches the CRM, then the process 'dies' before the journal."""
    return _AfterSend(inner, _die, at)


def test_a_landed_write_with_one_field_edited_since_confirms_the_others(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A batch landed, the run died before the journal, a person edited one of the fields it
    wrote: every field of the record went stale ("not written") although recon's values
    stood in the CRM, unaudited and beyond undo. The fields holding recon's values are
    confirmed; only the edited one goes back to review."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 1)
    (rid,) = ids
    snap = crm.modified("hubspot", "companies", rid)
    plan = make_plan(
        db,
        [
            hs_update(rid, "name", names[0], f"{names[0]} renamed", snap),
            hs_update(rid, "city", None, "Lyon", snap),
            hs_update(rid, "phone", None, "+33 4 72 00 00 00", snap),
        ],
    )
    killer = _KillAfterSend(build_writer(cfg, "hubspot", CallBudget("hubspot")), at=1)
    with pytest.raises(SystemExit):
        apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": killer})
    crm.edit("hubspot", "companies", rid, {"city": "Paris"})
    result = apply_plan(db, cfg, plan_run_id=plan, resume=True)
    states = {
        json.loads(r["item"])["field"]: r["state"] for r in journal(db, result.run_id).values()
    }
    assert states == {"name": "confirmed", "phone": "confirmed", "city": "stale"}
    confirmed = {
        r[0] for r in db.execute("select field from audit where outcome = 'confirmed'").fetchall()
    }
    assert confirmed == {"name", "phone"}  # audited: an undo restores them
    assert crm.hs_get("companies", rid, ["city"])["city"] == "Paris"


def test_idempotent_create_left_sent_makes_exactly_one_record(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    items = [
        create("hubspot", "contacts", {"email": f"n{i}-{tag}@example.com", "firstname": f"N{i}"})
        for i in range(3)
    ]
    plan = make_plan(db, items)
    mark = crm.last_change()
    killer = _KillAfterSend(build_writer(cfg, "hubspot", CallBudget("hubspot")), at=1)
    with pytest.raises(SystemExit):
        apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": killer})
    run_id = next(iter(db.query("select run_id from runs where stage = 'apply'")))["run_id"]
    assert {r["state"] for r in journal(db, run_id).values()} == {"sent"}
    with pytest.raises(UsageError, match="--resume"):
        apply_plan(db, cfg, plan_run_id=plan)

    result = apply_plan(db, cfg, plan_run_id=plan, resume=True)

    assert result.run_id == run_id and result.applied == 3
    created = [c for c in crm.changes(mark) if c["action"] == "created"]
    assert len(created) == 3 and len({c["record_id"] for c in created}) == 3
    assert {r["crm_record_id"] for r in journal(db, run_id).values()} == {
        c["record_id"] for c in created
    }
    assert verify(db).ok


def test_resume_does_not_send_what_was_decided_again_after_the_stop(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = renames(crm, db, ids, names, " renamed")
    killer = _KillAfterSend(build_writer(cfg, "hubspot", CallBudget("hubspot")), at=1)
    with pytest.raises(SystemExit):
        apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": killer})
    link = db.execute("select link_item_id from plan_items where run_id = ?", [plan]).fetchone()[0]
    approve_ids(db, [link], kind="link", label="non_match")  # the link is rejected meanwhile
    db.execute("update decisions set version = 2 where label = 'non_match'")

    result = apply_plan(db, cfg, plan_run_id=plan, resume=True)

    # the write already sent is looked up and confirmed; the two never sent are not sent
    assert (result.applied, result.skipped) == (1, 2), result
    renamed = [crm.hs_get("companies", i, ["name"])["name"].endswith(" renamed") for i in ids]
    assert sorted(renamed) == [False, False, True]
    errors = {r["error"] for r in db.query("select error from journal where state = 'skipped'")}
    assert len(errors) == 1 and "decided again" in errors.pop()


def test_a_running_apply_does_not_send_what_was_decided_again_meanwhile(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A reviewer rejected a link in the app while an apply ran: its writes not yet sent were
    sent all the same, under the approval taken back (merges too)."""
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = renames(crm, db, ids, names, " renamed")
    links = [
        r[0] for r in db.execute("select link_item_id from plan_items where run_id = ?", [plan])
    ]

    app = crm.db(cfg)  # the review app's own connection

    def reject() -> None:
        approve_ids(app, links, kind="link", label="non_match")
        with transaction(app):
            app.execute("update decisions set version = 2 where label = 'non_match'")

    writer = _AfterSend(build_writer(cfg, "hubspot", CallBudget("hubspot")), reject)
    result = apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": writer})
    assert (result.applied, result.skipped, writer.writes) == (1, 2, 1), result
    renamed = [crm.hs_get("companies", i, ["name"])["name"].endswith(" renamed") for i in ids]
    assert sorted(renamed) == [False, False, True]
    errors = {r["error"] for r in db.query("select error from journal where state = 'skipped'")}
    assert errors == {"no longer approved: decided again while the run was applying"}
    outcomes = [r[0] for r in db.execute("select outcome from audit where outcome = 'skipped'")]
    assert len(outcomes) == 2  # audited as not sent


def test_the_items_read_to_ask_are_applied_without_reading_them_again(
    crm: CrmEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recon apply` reads the approved items once, to ask for confirmation, and applies
    those (a large plan's take seconds to read); a link rejected while the question was
    open is still not sent."""
    from dataclasses import replace

    import recon.apply as apply_mod
    from recon.apply import pending_items, read_approved

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    reads: list[str] = []
    real = apply_mod.approved_plan_items
    monkeypatch.setattr(
        apply_mod, "approved_plan_items", lambda d, p: reads.append(p) or real(d, p)
    )
    ids, names, _ = companies(crm, 3)
    plan = renames(crm, db, ids, names, " asked")
    approved = read_approved(db, plan)
    assert len(pending_items(db, plan, approved)) == 3 and reads == [plan]
    # what was read is what is applied: the apply does not read the approvals again
    two = replace(approved, rows=[r for r in approved.rows if r["record_id"] != ids[0]])
    result = apply_plan(db, cfg, plan_run_id=plan, approved=two)
    assert (result.applied, result.skipped) == (2, 0), result
    assert reads == [plan]
    names_now = [crm.hs_get("companies", i, ["name"])["name"] for i in ids]
    assert names_now == [names[0], names[1] + " asked", names[2] + " asked"]
    # read for another plan: read again, for the plan applied
    other = apply_plan(db, cfg, plan_run_id=plan, approved=replace(approved, plan_run_id="x"))
    assert other.applied == 1 and reads == [plan, plan]

    ids, names, _ = companies(crm, 2)
    plan = renames(crm, db, ids, names, " asked")
    approved = read_approved(db, plan)
    link = db.execute("select link_item_id from plan_items where run_id = ?", [plan]).fetchone()[0]
    app = crm.db(cfg)  # the reviewer, while the question waits for an answer
    approve_ids(app, [link], kind="link", label="non_match")
    with transaction(app):
        app.execute("update decisions set version = 2 where label = 'non_match'")
    result = apply_plan(db, cfg, plan_run_id=plan, approved=approved)
    assert (result.applied, result.skipped) == (0, 2), result
    assert [crm.hs_get("companies", i, ["name"])["name"] for i in ids] == names


def _two_merges(crm: CrmEnv, db: Any) -> tuple[list[str], str]:
    """Four new HubSpot companies and an approved plan merging the second into the first and
    the fourth into the third (survivorship inputs recorded): the ids and the plan."""
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"M {tag} {i}"} for i in range(4)])
    merges = [hs_merge(crm, ids[:2]), hs_merge(crm, ids[2:])]
    for m in merges:
        members = [m["payload"]["master"], *m["payload"]["victims"]]
        m["payload"]["order"] = members
        m["payload"]["modified"] = {r: crm.modified("hubspot", "companies", r) for r in members}
    return ids, make_plan(db, merges)


def test_an_undo_in_the_app_while_an_apply_runs_is_honoured(crm: CrmEnv, tmp_path: Path) -> None:
    """The app's "undo my last decision" only flips `superseded` flags: a mark of rows and
    their count did not see it, and the approvals taken back were written all the same."""
    from recon import review

    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = renames(crm, db, ids, names, " renamed")
    app = crm.db(cfg)
    writer = _AfterSend(
        build_writer(cfg, "hubspot", CallBudget("hubspot")),
        lambda: review.undo_last(app, "ana@example.com"),
    )
    result = apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": writer})
    assert (result.applied, result.skipped) == (1, 2), result


def test_a_record_without_a_time_is_stale_when_its_value_changed(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A record loaded from an export file without a modified column has no time to compare:
    stale protection was off and a person's edit since the export was overwritten. The value
    the plan saw is compared instead."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    plan = make_plan(
        db,
        [hs_update(i, "name", n, n + " from recon", None) for i, n in zip(ids, names, strict=True)],
    )
    crm.edit("hubspot", "companies", ids[0], {"name": "Edited by a user"})
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.stale, result.applied) == (1, 1)
    assert crm.hs_get("companies", ids[0], ["name"])["name"] == "Edited by a user"
    assert crm.hs_get("companies", ids[1], ["name"])["name"] == names[1] + " from recon"


def test_an_email_opt_out_has_its_own_outcome(crm: CrmEnv, tmp_path: Path) -> None:
    """A HubSpot opt-out goes through the communication preferences API after the rest of the
    record's write: when it fails, the other field, which landed, is still confirmed (it was
    marked failed with it, and an undo could not restore it)."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ok, bare = crm.hs_create(
        "contacts", [{"email": f"o{i}-{tag}@example.org", "lastname": "O"} for i in range(2)]
    )
    crm.edit("hubspot", "contacts", bare, {"email": None})
    items = []
    for rid in (ok, bare):
        snap = crm.modified("hubspot", "contacts", rid)
        items += [
            hs_update(rid, "jobtitle", None, "CEO", snap, obj="contacts"),
            hs_update(rid, "hs_email_optout", None, "true", snap, obj="contacts"),
        ]
    result = apply_plan(db, cfg, plan_run_id=make_plan(db, items))
    assert (result.applied, sum(result.failed.values())) == (3, 1), result
    states = dict(
        db.execute(
            "select json_extract(item, '$.record_id') || ':' || json_extract(item, '$.field'), "
            "state from journal where run_id = ?",
            [result.run_id],
        ).fetchall()
    )
    assert states[f"{bare}:jobtitle"] == "confirmed"
    assert states[f"{bare}:hs_email_optout"] == "failed"
    assert crm.hs_get("contacts", ok, ["hs_email_optout"])["hs_email_optout"] == "true"
    assert crm.hs_get("contacts", bare, ["jobtitle"])["jobtitle"] == "CEO"


def test_a_contact_created_without_its_opt_out_is_audited_without_it(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A create whose opt-out HubSpot cannot set (no e-mail address) stands, but its audit
    said it was created opted out: ``after`` now leaves the flag out and ``error`` says why."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    item = create("hubspot", "contacts", {"firstname": f"N {tag}", "hs_email_optout": "true"})
    item["item_id"] = f"new-{tag}"
    result = apply_plan(db, cfg, plan_run_id=make_plan(db, [item]))
    assert result.applied == 1, result
    [(rid, after, error)] = db.execute(
        "select record_id, after, error from audit where item_id = ? and outcome = 'confirmed'",
        [item["item_id"]],
    ).fetchall()
    assert json.loads(after) == {"firstname": f"N {tag}"}
    assert "hs_email_optout not written" in error and "no e-mail address" in error
    assert crm.hs_get("contacts", rid, ["hs_email_optout"]).get("hs_email_optout") != "true"


def test_a_stale_write_approved_since_stays_re_aimed_when_decisions_move(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A chosen value refused as stale, then approved in review, is sent against the record's
    new version; a decision made elsewhere while the next apply ran rebuilt it from the
    plan's old snapshot, and it was refused as stale again."""
    from recon.models import canonical_json
    from recon.review_stale import stale_id

    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    ids, names, tag = companies(crm, 1)
    (rid,) = ids
    snap = crm.modified("hubspot", "companies", rid)
    conflict = {  # a value chosen in review: the item apply sends is built from the choice
        "item_id": f"cf-{tag}", "action": "conflict", "system": "hubspot", "object": "companies",
        "record_id": rid, "field": "name", "snapshot_modified_at": snap,
        "payload": {
            "kind": "text",
            "hubspot": {"object": "companies", "record_id": rid, "field": "name",
                        "value": names[0], "modified_at": snap},
            "salesforce": {"object": "Account", "record_id": "001000000000001AAA",
                           "field": "Name", "value": "Chosen Name", "as_hubspot": "Chosen Name",
                           "writable": False},
        },
    }  # fmt: skip
    plan = make_plan(db, [conflict])
    approve_ids(db, [f"cf-{tag}"])
    with transaction(db):
        db.execute(
            "update decisions set choice = ? where item_id = ?",
            [json.dumps({"side": "salesforce"}), f"cf-{tag}"],
        )
    crm.edit("hubspot", "companies", rid, {"city": "Paris"})  # moved since the snapshot
    first = apply_plan(db, cfg, plan_run_id=plan)
    [row] = journal(db, first.run_id).values()
    assert row["state"] == "stale", row
    approve_ids(db, [stale_id(plan, row["item_id"], json.loads(row["error"]))])
    # a create goes first in the next apply: a batch before the update
    link = db.execute("select link_item_id from plan_items where run_id = ?", [plan]).fetchone()[0]
    extra = create("hubspot", "contacts", {"email": f"x-{tag}@example.com", "firstname": "X"})
    db["plan_items"].insert(
        {"run_id": plan, "item_id": f"cr-{tag}", "action": "create", "system": "hubspot",
         "object": "contacts", "record_id": None, "field": None, "before": None,
         "after": canonical_json(extra.get("after")), "snapshot_modified_at": None,
         "link_item_id": link, "requires": canonical_json([link]),
         "reason": canonical_json({"rule": "test"}), "status": "proposed", "seq": 30,
         "payload": canonical_json(extra["payload"])}
    )  # fmt: skip
    app = crm.db(cfg)
    writer = _AfterSend(
        build_writer(cfg, "hubspot", CallBudget("hubspot")),
        lambda: approve_ids(app, [f"unrelated-{tag}"], kind="link", label="match"),
    )
    second = apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": writer})
    states = {v["item_id"]: v["state"] for v in journal(db, second.run_id).values()}
    assert crm.hs_get("companies", rid, ["name"])["name"] == "Chosen Name", states


def test_recon_s_own_decisions_during_an_apply_cost_no_recompute(
    crm: CrmEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each confirmed create records recon's link to its source: the re-check of decisions
    before each batch recomputed every approval after every create batch (seconds each on a
    large plan). Only another connection's writes are looked at."""
    import recon.apply
    import recon.apply_journal

    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    tag = uid()
    items = []
    for i in range(4):
        c = create("hubspot", "contacts", {"email": f"p{i}-{tag}@example.com", "firstname": "X"})
        c["payload"]["source"] = {"system": "salesforce", "object": "Contact",
                                  "record_id": f"003A0000000{i:07d}"}  # fmt: skip
        items.append(c)
    plan = make_plan(db, items)
    calls: list[int] = []
    real = recon.apply.approved_plan_items
    monkeypatch.setattr(
        recon.apply, "approved_plan_items", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    # before each batch another connection writes something that is no decision (the lock's
    # heartbeat every 30 s does): the decisions are looked at, and recon's own are no news
    other = crm.db(cfg)
    other.execute("create table if not exists beats (at text)")
    moved = recon.apply_journal.Runner._decisions_moved

    def beat_then_look(self: Any) -> bool:
        with transaction(other):
            other.execute("insert into beats values (?)", [now_iso()])
        return bool(moved(self))

    monkeypatch.setattr(recon.apply_journal.Runner, "_decisions_moved", beat_then_look)
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert result.applied == 4 and len(calls) == 1  # read once, when the run starts
    assert (
        db.execute("select count(*) from decisions where decided_by = 'recon'").fetchone()[0] == 4
    )


def test_a_running_apply_merges_into_the_master_chosen_meanwhile(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A master a reviewer changed while the apply ran, before its merge was sent: the merge
    goes into the master the review shows now."""
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    (a1, a2, b1, b2), plan = _two_merges(crm, db)
    inner = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    seen: list[str] = []

    cluster = dict(
        db.execute("select record_id, link_item_id from plan_items where run_id = ?", [plan])
    )

    def choose() -> None:  # after the first merge: the other cluster's master changes
        done = inner.merged_away("companies", [a1, a2, b1, b2])
        master, victim = (b1, b2) if done & {a1, a2} else (a1, a2)
        seen.append(victim)
        app = crm.db(cfg)  # the review app's own connection
        approve_ids(app, [cluster[master]], kind="master", label="approve")
        with transaction(app):
            app.execute(
                "update decisions set choice = ? where item_id = ? and kind = 'master'",
                [json.dumps({"master": victim}), cluster[master]],
            )

    writer = _AfterSend(inner, choose)
    apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True, writers={"hubspot": writer})
    (victim,) = seen
    other = {a2: a1, b2: b1}[victim]
    assert inner.merged_away("companies", [victim, other]) == {other}  # into the new master


def test_the_key_property_recon_creates_is_audited(crm: CrmEnv, tmp_path: Path) -> None:
    prop = f"recon_key_{uid()}".lower().replace("-", "_")
    cfg = crm.config(tmp_path, hubspot={"key_property": prop})
    db = crm.db(cfg)
    tag = uid()
    plan = make_plan(
        db, [create("hubspot", "contacts", {"email": f"k-{tag}@example.com", "firstname": "K"})]
    )
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert result.applied == 1
    # audited before it was sent (intended) and after (confirmed), as every write is
    intended, row = db.query("select * from audit where item_id like 'schema:%' order by seq")
    assert (intended["outcome"], intended["after"]) == ("intended", row["after"])
    assert (row["run_id"], row["crm"], row["object"], row["field"], row["outcome"]) == (
        result.run_id,
        "hubspot",
        "contacts",
        prop,
        "confirmed",
    )
    assert json.loads(row["after"])["unique"] is True and verify(db).ok
    # the property exists now: a second apply creates none
    again = make_plan(
        db, [create("hubspot", "contacts", {"email": f"k2-{tag}@example.com", "firstname": "K"})]
    )
    apply_plan(db, cfg, plan_run_id=again)
    assert db.execute("select count(*) from audit where item_id like 'schema:%'").fetchone()[0] == 2


def test_a_key_property_create_whose_answer_was_lost_is_confirmed_when_found(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An apply audited the key property's create as intended and then lost the answer (a
    timeout): the trail never said the property was created, though it had landed. The next
    apply finds it and confirms it; a property that was there before recon gets no row."""
    from recon import audit

    prop = f"recon_key_{uid()}".lower().replace("-", "_")
    cfg = crm.config(tmp_path, hubspot={"key_property": prop})
    db = crm.db(cfg)
    schema_id = f"schema:hubspot:contacts.{prop}"
    with transaction(db):
        audit.append(db, [{"run_id": "apply-lost", "item_id": schema_id, "crm": "hubspot",
                           "object": "contacts", "field": prop, "outcome": "intended"}])  # fmt: skip
    requests.post(
        f"{crm.url}/crm/v3/properties/contacts",
        json={"name": prop, "label": "Recon key", "type": "string", "fieldType": "text",
              "groupName": "contactinformation", "hasUniqueValue": True},
        headers={"Authorization": f"Bearer {HS_TOKEN}"}, timeout=5,
    ).raise_for_status()  # fmt: skip  # the lost create landed
    tag = uid()
    for n in (1, 2):
        plan = make_plan(db, [create("hubspot", "contacts", {"email": f"l{n}-{tag}@example.com"})])
        assert apply_plan(db, cfg, plan_run_id=plan).applied == 1
    rows = db.execute(
        "select outcome, error from audit where item_id = ? order by seq", [schema_id]
    ).fetchall()
    assert rows == [("intended", None), ("confirmed", "found on a later read")]
    assert verify(db).ok


def test_budget_stops_cleanly_and_resume_finishes(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1}, budget={"hubspot_calls": 3})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 4)
    plan = renames(crm, db, ids, names, " budget")
    with pytest.raises(BudgetExhausted) as exc:
        apply_plan(db, cfg, plan_run_id=plan)
    partial = exc.value.result  # type: ignore[attr-defined]
    assert partial.status == "budget" and 0 < partial.applied < 4
    runs = []
    for _ in range(6):
        try:
            runs.append(apply_plan(db, cfg, plan_run_id=plan, resume=True))
            break
        except BudgetExhausted:
            continue
    assert runs and runs[-1].applied == 4
    for i, n in zip(ids, names, strict=True):
        assert crm.hs_get("companies", i, ["name"])["name"] == n + " budget"


def test_a_resumed_run_keeps_the_merge_confirmation_it_started_with(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path, budget={"hubspot_calls": 2})
    db = crm.db(cfg)
    pairs = [companies(crm, 2)[0] for _ in range(2)]
    plan = make_plan(db, [hs_merge(crm, ids) for ids in pairs])
    with pytest.raises(BudgetExhausted):
        apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    # resumed without the flag (as `recon apply --resume` or a scheduled run would)
    done = apply_plan(db, crm.config(tmp_path), plan_run_id=plan, resume=True)
    assert done.skipped == 0
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", [ids[1] for ids in pairs]) == {ids[1] for ids in pairs}


def _merge_stopped_by_the_budget_then_resumed(
    crm: CrmEnv, tmp_path: Path, count: int, values: Any = None
) -> tuple[list[str], Any]:
    """A HubSpot merge of ``count`` companies stopped by a 2-call budget (the check and the
    first merge call), then resumed without one; the ids and a writer to look with."""
    cfg = crm.config(tmp_path, budget={"hubspot_calls": 2})
    db = crm.db(cfg)
    ids = companies(crm, count)[0]
    if values is not None:  # the records hold what the review saw
        for field, per in values(ids).items():
            for rid, value in per.items():
                if value is not None:
                    crm.edit("hubspot", "companies", rid, {field: value})
    item = hs_merge(crm, ids)
    if values is not None:
        item["payload"]["values"] = values(ids)
    plan = make_plan(db, [item])
    with pytest.raises(BudgetExhausted):
        apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", ids[1:]) == {ids[1]}
    done = apply_plan(db, crm.config(tmp_path), plan_run_id=plan, resume=True)
    assert (done.applied, done.stale, done.failed) == (1, 0, {}), done
    return ids, writer


def test_a_merge_stopped_part_way_is_finished_by_resume(crm: CrmEnv, tmp_path: Path) -> None:
    ids, writer = _merge_stopped_by_the_budget_then_resumed(crm, tmp_path, 3)
    assert writer.merged_away("companies", ids[1:]) == set(ids[1:])


def test_a_merge_stopped_before_its_values_were_written_writes_them_on_resume(
    crm: CrmEnv, tmp_path: Path
) -> None:
    # the victim's phone survives (the master has none): written after the merge, which the
    # budget stops before; the resume does not confirm the merge without it
    ids, _writer = _merge_stopped_by_the_budget_then_resumed(
        crm, tmp_path, 2, values=lambda ids: {"phone": {ids[0]: None, ids[1]: "+1 555 0177"}}
    )
    assert crm.hs_get("companies", ids[0], ["phone"])["phone"] == "+1 555 0177"


class _LostAnswer:
    """Wraps a writer: the first write reaches the CRM, then its answer is lost (a 502)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.lost = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, ops: Any) -> Any:
        out = self.inner.write(ops)
        if not self.lost:
            self.lost = True
            from recon.errors import ErrorClass, SourceError

            raise SourceError("502 after the write", error_class=ErrorClass.SERVER_ERROR)
        return out


def test_a_create_that_may_have_landed_is_not_sent_again_without_a_new_decision(
    crm: CrmEnv, tmp_path: Path
) -> None:
    # no unique key property and no natural key: a lost answer cannot be checked
    cfg = crm.config(tmp_path, hubspot={"key_property": "description"})
    db = crm.db(cfg)
    plan = make_plan(db, [create("hubspot", "companies", {"name": f"NoKey {uid()}"})])
    mark = crm.last_change()
    writer = _LostAnswer(build_writer(cfg, "hubspot", CallBudget("hubspot")))
    first = apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": writer})
    assert first.failed == {"unknown": 1}
    again = apply_plan(db, cfg, plan_run_id=plan)  # the next run, as the hint used to say
    assert again.applied == 0
    creates = [c for c in crm.changes(mark) if c.get("action") == "created"]
    assert len(creates) == 1  # one company, not two


def test_a_record_an_earlier_run_wrote_is_judged_by_value_not_time(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    acc = crm.sf_create("Account", [{"Name": f"S {tag}"}])[0]
    contact = crm.sf_create("Contact", [{"LastName": f"C {tag}"}])[0]
    snap = crm.modified("salesforce", "Contact", contact)
    associate = {
        "action": "associate", "system": "salesforce", "object": "Contact",
        "record_id": contact, "field": "AccountId", "after": acc, "snapshot_modified_at": snap,
        "payload": {"from": {"object": "Contact", "id": contact},
                    "to": {"object": "Account", "id": acc}, "type": "AccountId"},
    }  # fmt: skip
    plan = make_plan(
        db, [sf_update(contact, "Phone", None, "+1 555 0300", snap, obj="Contact"), associate]
    )
    crm.fault(kind="validation", side="salesforce", object="Contact", match={"AccountId": acc})
    first = apply_plan(db, cfg, plan_run_id=plan)
    crm.clear_faults()
    assert first.applied == 1 and first.failed == {"validation": 1}
    # the contact's time moved only because the first run wrote its phone
    second = apply_plan(db, cfg, plan_run_id=plan)
    assert (second.applied, second.stale) == (1, 0), second
    assert crm.sf_get("Contact", contact, ["AccountId"])["AccountId"] == acc


def test_one_duplicate_in_a_plain_create_batch_fails_alone(crm: CrmEnv, tmp_path: Path) -> None:
    # no unique key property: creates go as a plain batch; HubSpot refuses a whole batch
    # holding an email it has already (409)
    cfg = crm.config(tmp_path, hubspot={"key_property": "jobtitle"})
    db = crm.db(cfg)
    tag = uid()
    crm.hs_create("contacts", [{"email": f"exists-{tag}@example.com"}])
    emails = [f"a-{tag}@example.com", f"exists-{tag}@example.com", f"b-{tag}@example.com"]
    plan = make_plan(
        db, [create("hubspot", "contacts", {"email": e, "firstname": "F"}) for e in emails]
    )
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.applied, result.failed) == (2, {"duplicate_rule": 1}), result


def test_a_merge_stopped_part_way_records_what_landed(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids = crm.sf_create("Account", [{"Name": f"PM {uid()} {i}"} for i in range(3)])
    for rid in ids:  # what a pull stored
        db["snapshots"].upsert(
            {"source": "salesforce", "object": "Account", "record_id": rid, "archived": 0},
            pk=("source", "object", "record_id"),
        )
    item = {
        "action": "merge", "system": "salesforce", "object": "Account", "record_id": ids[0],
        "snapshot_modified_at": crm.modified("salesforce", "Account", ids[0]),
        "payload": {"master": ids[0], "victims": ids[1:]},
    }  # fmt: skip
    plan = make_plan(db, [item])
    crm.sf().Account.delete(ids[2])  # the second victim is deleted by a user meanwhile
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert result.applied == 0 and sum(result.failed.values()) == 1
    # the first victim was merged: the store knows it is gone, the audit says it landed
    state = dict(db.execute("select record_id, archived from snapshots").fetchall())
    assert state[ids[1]] == 1 and state[ids[0]] == 0
    rows = [dict(r) for r in db.query("select after, outcome from audit where outcome = 'failed'")]
    assert len(rows) == 1 and json.loads(rows[0]["after"])["merged"] == [ids[1]]


def test_a_record_our_merge_re_parented_is_not_stale_for_that(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b = crm.sf_create("Account", [{"Name": f"RA {tag}"}, {"Name": f"RB {tag}"}])
    contact = crm.sf_create("Contact", [{"LastName": f"RC {tag}", "AccountId": b}])[0]
    merge = {
        "action": "merge", "system": "salesforce", "object": "Account", "record_id": a,
        "snapshot_modified_at": crm.modified("salesforce", "Account", a),
        "payload": {"master": a, "victims": [b]},
    }  # fmt: skip
    update = sf_update(
        contact, "Phone", None, "+1 555 0700", crm.modified("salesforce", "Contact", contact),
        obj="Contact",
    )  # fmt: skip
    plan = make_plan(db, [merge, update])
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    # the merge moved the contact to the survivor (its time moved by our write): not stale
    assert (result.applied, result.stale) == (2, 0), result
    assert crm.sf_get("Contact", contact, ["Phone"])["Phone"] == "+1 555 0700"


def test_a_create_search_cannot_see_yet_is_not_sent_again(crm: CrmEnv, tmp_path: Path) -> None:
    # no unique key property: a lost answer is checked by natural key through search, which
    # indexes a create late
    cfg = crm.config(tmp_path, hubspot={"key_property": "description"})
    db = crm.db(cfg)
    tag = uid()
    items = [
        create("hubspot", "companies", {"name": f"Lag {tag} {i}", "domain": f"lag{i}-{tag}.io"},
               natural={"domain": f"lag{i}-{tag}.io"})
        for i in range(2)
    ]  # fmt: skip
    plan = make_plan(db, items)
    mark = crm.last_change()
    crm.admin("PATCH", "settings", {"hubspot_search_lag_s": 30})
    try:
        writer = _LostAnswer(build_writer(cfg, "hubspot", CallBudget("hubspot")))
        result = apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": writer})
    finally:
        crm.admin("PATCH", "settings", {"hubspot_search_lag_s": 0})
    creates = [c for c in crm.changes(mark) if c.get("action") == "created"]
    assert len(creates) == 2, creates  # not four: unseen by search is not "not landed"
    assert result.failed == {"unknown": 2}


def test_batch_errors_naming_no_input_are_not_pinned_on_the_wrong_record(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path, hubspot={"key_property": "jobtitle"})  # a plain create batch
    db = crm.db(cfg)
    tag = uid()
    names = ("okA", "badV", "badD", "okB")
    fields = [{"email": f"{k.lower()}-{tag}@example.com", "firstname": k} for k in names]
    plan = make_plan(db, [create("hubspot", "contacts", f) for f in fields])
    crm.fault(kind="duplicate", side="hubspot", object="contacts", match={"firstname": "badD"})
    crm.fault(kind="validation", side="hubspot", object="contacts", match={"firstname": "badV"})
    try:
        result = apply_plan(db, cfg, plan_run_id=plan)
    finally:
        crm.clear_faults()
    # two errors with no input named: neither is called a validation error for both
    assert result.failed.get("validation", 0) <= 1 and sum(result.failed.values()) == 2, result


def test_apply_takes_the_store_lock(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    now = now_iso()
    db["locks"].insert(
        {
            "name": "store",
            "holder": "someone-else",
            "pid": 1,
            "host": socket.gethostname(),
            "started_at": now,
            "heartbeat_at": now,
        }
    )
    with pytest.raises(LockedError):
        apply_plan(db, cfg, dry_run=True)


# --------------------------------------------------------------------------- Salesforce


def test_full_apply_salesforce_end_state(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path, apply={"salesforce_batch_size": 2})
    db = crm.db(cfg)
    tag = uid()
    accounts = crm.sf_create("Account", [{"Name": f"Acc {tag} {i}"} for i in range(3)])
    snaps = {a: crm.modified("salesforce", "Account", a) for a in accounts}
    items = [
        sf_update(a, "Phone", None, f"+1 555 010{i}", snaps[a]) for i, a in enumerate(accounts)
    ]
    lead = create(
        "salesforce",
        "Lead",
        {"LastName": f"Lee {tag}", "Company": f"Lead Co {tag}", "Email": f"lee-{tag}@example.com"},
    )
    items.append(lead)
    plan = make_plan(db, items)
    mark = crm.last_change()

    result = apply_plan(db, cfg, plan_run_id=plan)

    assert result.applied == 4 and result.failed == {}
    for i, a in enumerate(accounts):
        assert crm.sf_get("Account", a, ["Phone"])["Phone"] == f"+1 555 010{i}"
    created = [c for c in crm.changes(mark) if c["action"] == "created"]
    assert len(created) == 1 and created[0]["object"] == "Lead"
    again = apply_plan(db, cfg, plan_run_id=plan)
    assert again.items == 0


def test_salesforce_per_record_errors_are_classified(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    accounts = crm.sf_create("Account", [{"Name": f"Val {tag} {i}"} for i in range(3)])
    items = [
        sf_update(a, "Name", None, f"Val {tag} {i} new", crm.modified("salesforce", "Account", a))
        for i, a in enumerate(accounts)
    ]
    plan = make_plan(db, items)
    crm.fault(
        kind="validation", side="salesforce", object="Account", match={"Name": f"Val {tag} 0 new"}
    )
    crm.fault(
        kind="duplicate", side="salesforce", object="Account", match={"Name": f"Val {tag} 1 new"}
    )
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert result.failed == {"duplicate_rule": 1, "validation": 1} and result.applied == 1
    assert SF_SESSION not in json.dumps([dict(r) for r in db.query("select * from journal")])
    assert HS_TOKEN not in json.dumps([dict(r) for r in db.query("select * from audit")])


class _EditBeforeWrite:
    """Wraps a writer: a user edits the record after apply's re-read, just before the write."""

    def __init__(self, inner: Any, crm: CrmEnv, record_id: str) -> None:
        self.inner, self.crm, self.record_id = inner, crm, record_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, ops: Any) -> Any:
        if any(op.record_id == self.record_id for op in ops):
            self.crm.edit("salesforce", "Account", self.record_id, {"Phone": "+1 555 0142"})
        return self.inner.write(ops)


def test_salesforce_if_unmodified_since_catches_an_edit_after_the_reread(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path, apply={"salesforce_batch_size": 1})
    db = crm.db(cfg)
    acc = crm.sf_create("Account", [{"Name": f"Race {uid()}"}])[0]
    plan = make_plan(
        db,
        [sf_update(acc, "Phone", None, "+1 555 0100", crm.modified("salesforce", "Account", acc))],
    )
    racer = _EditBeforeWrite(build_writer(cfg, "salesforce", CallBudget("salesforce")), crm, acc)
    result = apply_plan(db, cfg, plan_run_id=plan, writers={"salesforce": racer})
    assert result.stale == 1 and result.applied == 0
    assert crm.sf_get("Account", acc, ["Phone"])["Phone"] == "+1 555 0142"
    reason = json.loads(
        next(iter(db.query("select reason from plan_items where run_id = ?", [plan])))["reason"]
    )
    assert reason["stale"]["current"] == {"Phone": "+1 555 0142"}


@pytest.mark.parametrize(
    ("system", "obj", "spec", "expected"),
    [
        ("hubspot", "contacts", {"email": "a@x.io"}, ("email", "a@x.io")),
        ("hubspot", "companies", {"domain": None, "name": "Acme"}, ("name", "Acme")),
        ("hubspot", "companies", {"domain": "acme.io", "name": "Acme"}, ("domain", "acme.io")),
        ("salesforce", "Lead", {"email": "b@x.io"}, ("Email", "b@x.io")),
        ("salesforce", "Account", {"domain": "acme.io", "name": "Acme"}, ("Name", "Acme")),
        ("salesforce", "Contact", {"email": None}, None),
        ("hubspot", "contacts", None, ("email", "c@x.io")),
    ],
)
def test_natural_keys_from_the_plan_map_to_the_target_field(
    system: str, obj: str, spec: Any, expected: tuple[str, str] | None
) -> None:
    from recon.apply_items import Item

    fields = {"email": "c@x.io"} if spec is None else {}
    item = Item(
        "i",
        "create",
        system,
        obj,
        None,
        None,
        None,
        None,
        None,
        {"fields": fields, "natural_key": spec},
        1,
    )
    assert item.natural() == expected


def one_merge_plan(crm: CrmEnv, db: Any, obj: str, ids: list[str], **payload: Any) -> str:
    """A plan of one HubSpot merge of ``ids[1:]`` into ``ids[0]`` (``payload`` added)."""
    return make_plan(
        db,
        [
            {
                "action": "merge",
                "system": "hubspot",
                "object": obj,
                "record_id": ids[0],
                "snapshot_modified_at": crm.modified("hubspot", obj, ids[0]),
                "payload": {"master": ids[0], "victims": ids[1:], "fields": {}, **payload},
            }
        ],
    )


@pytest.mark.parametrize(
    ("edit", "stale"), [({"phone": "+1 555 0199"}, False), ({"name": "Renamed by a user"}, True)]
)
def test_a_merge_is_stale_only_when_its_survivorship_inputs_changed(
    crm: CrmEnv, tmp_path: Path, edit: dict[str, str], stale: bool
) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    names = [f"Mrg {tag} {i}" for i in range(2)]
    ids = crm.hs_create("companies", [{"name": n} for n in names])
    plan = one_merge_plan(
        crm, db, "companies", ids, values={"name": {ids[0]: names[0], ids[1]: names[1]}}
    )
    crm.edit("hubspot", "companies", ids[0], edit)
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (result.stale, result.applied) == ((1, 0) if stale else (0, 1))


def test_the_audit_keeps_the_records_a_merge_deletes(crm: CrmEnv, tmp_path: Path) -> None:
    """Merges cannot be undone: the audit row keeps each absorbed record's fields as last
    pulled, so a person can rebuild one."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ids = crm.hs_create(
        "companies", [{"name": f"Abs {tag} 0"}, {"name": f"Abs {tag} 1", "city": "Oslo"}]
    )
    db["snapshots"].insert(
        {"source": "hubspot", "object": "companies", "record_id": ids[1],
         "data": json.dumps({"properties": {"name": f"Abs {tag} 1", "city": "Oslo"}})}
    )  # fmt: skip
    plan = one_merge_plan(crm, db, "companies", ids, values={})
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert result.applied == 1
    (before,) = [
        json.loads(r[0])
        for r in db.execute("select before from audit where outcome = 'confirmed'").fetchall()
    ]
    assert before["absorbed"] == {ids[1]: {"name": f"Abs {tag} 1", "city": "Oslo"}}


def test_a_merge_is_stale_when_a_victim_opted_out_since_review(crm: CrmEnv, tmp_path: Path) -> None:
    """Consent flags the members agreed on are watched: an opt-out ticked on a victim after
    review would be deleted with it, so the merge goes back to a person."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ids = crm.hs_create(
        "contacts",
        [{"email": f"w{i}-{tag}@x.com", "lastname": "W"} for i in range(2)],
    )
    for rid in ids:  # read-only to the CRM API: set as a person's unsubscribe would
        crm.edit("hubspot", "contacts", rid, {"hs_email_optout": "false"})
    plan = one_merge_plan(
        crm,
        db,
        "contacts",
        ids,
        values={"email": {ids[0]: f"w0-{tag}@x.com", ids[1]: f"w1-{tag}@x.com"}},
        watch={"hs_email_optout": {ids[0]: "false", ids[1]: "false"}},
    )
    crm.edit("hubspot", "contacts", ids[1], {"hs_email_optout": "true"})
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (result.stale, result.applied) == (1, 0)


@pytest.mark.parametrize("edited", [False, True])
def test_a_merge_is_stale_when_a_victim_was_edited_since_review(
    crm: CrmEnv, tmp_path: Path, edited: bool
) -> None:
    """A victim edited after review, in a field the merge does not compare (blank on every
    member then), was merged away: the edit was lost, and the audit kept the victim as
    pulled. Its time moved since the one the review saw: the merge goes back to a person."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"Vic {tag} {i}"} for i in range(2)])
    seen = {rid: crm.modified("hubspot", "companies", rid) for rid in ids}
    plan = one_merge_plan(crm, db, "companies", ids, values={}, modified=seen)
    if edited:
        crm.edit("hubspot", "companies", ids[1], {"description": "typed after review"})
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (result.stale, result.applied) == ((1, 0) if edited else (0, 1))
    if edited:
        assert (
            crm.hs_get("companies", ids[1], ["description"])["description"] == "typed after review"
        )
        # the victim is named as the member that changed, with its own times (the master's
        # time alone said nothing of it)
        from recon.apply import refused_items

        now = crm.modified("hubspot", "companies", ids[1])
        total, (row,) = refused_items(db, result.run_id)
        assert total == 1 and row["action"] == "merge"
        assert row["detail"] == f"{ids[1]} changed at {now}, reviewed as of {seen[ids[1]]}"
        from recon.review_stale import stale_detail

        (item_id,) = journal(db, result.run_id)
        detail = stale_detail(db, {"run_id": plan, "link_item_id": item_id})
        assert detail["changed_members"] == {ids[1]: {"reviewed": seen[ids[1]], "now": now}}


def test_plan_order_merges_first_then_updates_of_the_survivor(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    names = [f"Ord {tag} {i}" for i in range(2)]
    master, victim = crm.hs_create(
        "companies", [{"name": names[0]}, {"name": names[1], "phone": "+1 555 0100"}]
    )
    snaps = {r: crm.modified("hubspot", "companies", r) for r in (master, victim)}
    merge = {
        "action": "merge", "system": "hubspot", "object": "companies", "record_id": master,
        "snapshot_modified_at": snaps[master],
        # survivorship: the master has no phone, the victim's fills it (recon.plan computes `fields`)
        "before": {"phone": None}, "after": {"phone": "+1 555 0100"},
        "payload": {"master": master, "victims": [victim], "fields": {"phone": "+1 555 0100"},
                    "values": {"phone": {master: None, victim: "+1 555 0100"}}},
    }  # fmt: skip
    plan = make_plan(
        db,
        [
            hs_update(victim, "name", names[1], "moot", snaps[victim]),
            hs_update(master, "phone", None, "+44 20 7946 0001", snaps[master]),
            hs_update(master, "name", names[0], f"{names[0]} Ltd", snaps[master]),
            merge,
        ],
    )
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    # the merge (seq 10) runs before the updates (seq 50): the victim's update is moot; the
    # survivor's time moved with the merge, so its fields are judged by value: the phone the
    # merge wrote goes back to review, the untouched name is applied
    assert (result.applied, result.skipped, result.stale, result.failed) == (2, 1, 1, {})
    now = crm.hs_get("companies", master, ["phone", "name"])
    assert (now["phone"], now["name"]) == ("+1 555 0100", f"{names[0]} Ltd")
    # the review says it was the plan's own merge, not someone's edit in HubSpot
    stale = json.loads(db.execute("select error from journal where state = 'stale'").fetchone()[0])
    merge_id = db.execute("select item_id from plan_items where action = 'merge'").fetchone()[0]
    assert stale["by_recon_merge"] == merge_id
    from recon import review

    review.ensure_queue(db)
    [queued] = review.queue(db, review.QueueFilter(kinds=("stale",))).items
    assert queued["title"].endswith("(recon's own merge left another value)")
    skipped = next(iter(db.query("select error from journal where state = 'skipped'")))["error"]
    assert f"merged into {master}" in skipped
    # the audit keeps what the merge wrote onto the survivor and what it replaced
    row = next(
        iter(
            db.query(
                "select before, after from audit where outcome = 'confirmed' and after like '%survivor%'"
            )
        )
    )
    assert json.loads(row["before"]) == {"merge_ids": [victim], "fields": {"phone": None}}
    assert json.loads(row["after"]) == {"survivor": master, "fields": {"phone": "+1 555 0100"}}


@pytest.mark.slow
def test_a_real_plan_from_the_demo_data_applies(sandbox_reset: Any, tmp_path: Path) -> None:
    """Contract with recon.plan: pull → match → plan → approve everything → apply."""
    from recon.apply_items import Item, norm
    from recon.match import run_match
    from recon.plan import build_plan
    from recon.pull import run_pull

    crm = CrmEnv(sandbox_reset.url.rstrip("/"))
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    run_pull(db, cfg)
    run_match(db, cfg)
    plan = build_plan(db, cfg).run_id
    kinds = {r["pair_id"]: r["kind"] for r in db.query("select pair_id, kind from pairs")}
    required = {
        x
        for r in db.query("select requires from plan_items where run_id = ?", [plan])
        for x in json.loads(r["requires"] or "[]")
    }
    for label in ("match", "approve"):
        approve_ids(
            db,
            [x for x in required if (x in kinds) == (label == "match")],
            kind="link" if label == "match" else "plan",
            label=label,
        )

    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)

    assert result.failed == {} and result.pending == 0 and result.applied > 100
    assert verify(db).ok
    items = [
        Item(**json.loads(r["item"]))
        for r in db.query("select item from journal where state = 'confirmed'")
    ]
    updates = [i for i in items if i.kind == "update"]
    for system in ("hubspot", "salesforce"):
        writer = build_writer(cfg, system, CallBudget(system))
        for obj in {i.object for i in updates if i.system == system}:
            mine = [i for i in updates if i.system == system and i.object == obj]
            now = writer.current(
                obj, [str(i.record_id) for i in mine], sorted({f for i in mine for f in i.props()})
            )
            for item in mine:
                for fname, value in item.props().items():
                    assert norm(now[str(item.record_id)].values.get(fname)) == norm(value), (
                        item,
                        fname,
                    )
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0


def test_text_that_looks_like_json_stays_text_in_the_item() -> None:
    """Approved rows come decoded: "5550100" and "true" are text values, not a number and a flag."""
    from recon.apply_items import to_item
    from recon.store import open_store

    row = {
        "item_id": "i",
        "action": "update",
        "system": "salesforce",
        "object": "Account",
        "record_id": "001",
        "field": "Phone",
        "before": "5550100",
        "after": "true",
        "snapshot_modified_at": None,
        "payload": {"fields": {"Phone": "true"}},
        "seq": 50,
        "requires": ["p"],
        "link_item_id": "p",
        "decisions": [{"reviewer": "ana", "decided_at": "2026-01-01T00:00:00Z"}],
    }
    item = to_item(open_store(":memory:"), row)
    assert (item.before, item.after, item.props()) == ("5550100", "true", {"Phone": "true"})
    assert item.reviewer == "ana"


def test_an_apply_stopped_by_an_unreachable_crm_counts_its_error_by_class(tmp_path: Path) -> None:
    """`recon status` groups what stopped an apply (here the network) with the item errors."""
    from recon.config import load_config
    from recon.errors import SourceError
    from recon.insights import status_report
    from recon.store import open_store

    cfg = load_config(
        None,
        overrides={"store": {"path": str(tmp_path / "r.db")},
                   "hubspot": {"base_url": "http://127.0.0.1:9", "access_token": "pat-x"},
                   "apply": {"max_retries": 0}},
    )  # fmt: skip
    db = open_store(cfg.store.path)
    plan = make_plan(db, [hs_update("1", "name", "A", "B", "2024-01-01T00:00:00.000Z")])
    with pytest.raises(SourceError):
        apply_plan(db, cfg, plan_run_id=plan)
    runs = status_report(db)["runs"]
    assert runs["apply"]["status"] == "failed"
    assert runs["apply"]["errors_by_class"] == {"network": 1}


def test_a_merge_whose_victim_changed_since_review_goes_back_to_review(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """The victim's phone survives onto the master; a user replaced it since review: the merge
    would write the old phone and delete the new one with the victim. It is stale instead."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    master, victim = crm.hs_create(
        "companies", [{"name": f"V {tag}"}, {"name": f"V {tag} Inc", "phone": "+1 555 0100"}]
    )
    item = hs_merge(crm, [master, victim])
    item["payload"]["values"] = {"phone": {master: None, victim: "+1 555 0100"}}
    item["payload"]["fields"] = {"phone": "+1 555 0100"}
    plan = make_plan(db, [item])
    crm.edit("hubspot", "companies", victim, {"phone": "+1 555 0199"})
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (result.applied, result.stale) == (0, 1)
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", [victim]) == set()
    assert crm.hs_get("companies", victim, ["phone"])["phone"] == "+1 555 0199"


class _KilledAtFirstWrite:
    """Wraps a writer: the process dies at the first write it is asked to send (before it
    reaches the CRM, or, ``after``, once the CRM answered and before the answer is recorded)."""

    def __init__(self, inner: Any, *, after: bool = False) -> None:
        self.inner, self.after = inner, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, ops: Any) -> Any:
        if self.after:
            self.inner.write(ops)
        raise RuntimeError("killed")


def test_a_resumed_apply_sends_the_master_chosen_since_it_stopped(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """A merge the run had not sent yet when it stopped, whose master a reviewer changed
    before the resume: the resume merges into the master the review shows now."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    (a1, a2, _b1, b2), plan = _two_merges(crm, db)
    inner = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    with pytest.raises(RuntimeError):
        apply_plan(
            db, cfg, plan_run_id=plan, confirm_merges=True,
            writers={"hubspot": _KilledAtFirstWrite(inner)},
        )  # fmt: skip
    waiting = {
        r["item_id"]: json.loads(r["item"])["record_id"]
        for r in db.query("select item_id, item from journal where state = 'planned'")
    }
    (left_master,) = waiting.values()
    left_victim = a2 if left_master == a1 else b2
    link = db.execute(
        "select link_item_id from plan_items where run_id = ? limit 1", [plan]
    ).fetchone()[0]
    approve_ids(db, [link], kind="master", label="approve")  # a decision row to edit below
    db.execute(
        "update decisions set choice = ? where item_id = ? and kind = 'master'",
        [json.dumps({"master": left_victim}), link],
    )
    result = apply_plan(db, cfg, plan_run_id=plan, resume=True, confirm_merges=True)
    assert result.applied >= 1
    merged = inner.merged_away("companies", [left_master, left_victim])
    assert merged == {left_master}  # into the master chosen since


def test_a_victim_recon_itself_wrote_for_the_plan_is_no_reason_to_refuse_the_merge(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An earlier apply of the plan renamed the victim (its link's update); the merge, sent
    later with confirmation, finds recon's own value there: not someone else's change."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    master, victim = crm.hs_create("companies", [{"name": f"M {tag}"}, {"name": f"V {tag}"}])
    merge = hs_merge(crm, [master, victim])
    merge["payload"]["values"] = {"name": {master: f"M {tag}", victim: f"V {tag}"}}
    rename = hs_update(
        victim, "name", f"V {tag}", f"V {tag} Ltd", crm.modified("hubspot", "companies", victim)
    )
    plan = make_plan(db, [rename, merge])
    first = apply_plan(db, cfg, plan_run_id=plan)  # merges not confirmed: only the rename
    assert (first.applied, first.skipped) == (1, 1)
    second = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (second.applied, second.stale) == (1, 0)
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", [victim]) == {victim}


def test_a_merge_of_a_master_recon_wrote_is_still_refused_after_a_person_s_edit(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An earlier apply of the plan wrote the master (its link's update): the merge, sent
    later with confirmation, judged the master by value, but took every value for recon's
    own and overwrote a person's phone edit since review (its audit said the phone was
    blank). Recon's own value is no news; the person's edit sends the merge back to review."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    master, victim = crm.hs_create(
        "companies", [{"name": f"M {tag}"}, {"name": f"V {tag}", "phone": "+1 555 0100"}]
    )
    merge = hs_merge(crm, [master, victim])
    merge["payload"]["values"] = {
        "name": {master: f"M {tag}", victim: f"V {tag}"},
        "phone": {master: None, victim: "+1 555 0100"},
    }
    merge["payload"]["fields"] = {"phone": "+1 555 0100"}
    rename = hs_update(
        master, "name", f"M {tag}", f"M {tag} Ltd", crm.modified("hubspot", "companies", master)
    )
    plan = make_plan(db, [rename, merge])
    first = apply_plan(db, cfg, plan_run_id=plan)  # merges not confirmed: only the rename
    assert (first.applied, first.skipped) == (1, 1)
    crm.edit("hubspot", "companies", master, {"phone": "USER EDIT 42"})
    second = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert (second.applied, second.stale) == (0, 1)
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.merged_away("companies", [victim]) == set()
    assert (
        writer.current("companies", [master], ["phone"])[master].values["phone"] == "USER EDIT 42"
    )


def test_a_merge_another_plan_s_apply_did_is_skipped_not_confirmed_again(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An older plan applied after a newer one merged the same records: the writer took the
    victim "merged before" for its own resumed merge, audited a merge this run never sent
    as confirmed and wrote the older snapshot's survivorship values over the master."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    master, victim = crm.hs_create("companies", [{"name": f"M {tag}"}, {"name": f"V {tag}"}])
    older = hs_merge(crm, [master, victim])
    older["payload"]["fields"] = {"name": f"Old {tag}"}
    older_plan = make_plan(db, [older])
    newer_plan = make_plan(db, [hs_merge(crm, [master, victim])])
    done = apply_plan(db, cfg, plan_run_id=newer_plan, confirm_merges=True)
    assert done.applied == 1
    again = apply_plan(db, cfg, plan_run_id=older_plan, confirm_merges=True)
    assert (again.applied, again.skipped, again.stale) == (0, 1, 0)
    said = db.execute(
        "select error from journal where run_id = ? and state = 'skipped'", [again.run_id]
    ).fetchone()[0]
    assert said == f"merged already by {done.run_id}: nothing to write"
    writer = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    assert writer.current("companies", [master], ["name"])[master].values["name"] == f"M {tag}"


@pytest.mark.parametrize("case", ["older_plan_wrote_the_master", "other_master_kept"])
def test_a_merge_another_plan_did_is_skipped_in_every_shape(
    crm: CrmEnv, tmp_path: Path, case: str
) -> None:
    """The older plan had written the master (its link's update) before the newer plan
    merged: its merge was sent again and audited confirmed. The newer plan kept the other
    record as master: the older merge failed "not found" (exit 4) at every apply."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b = crm.hs_create("companies", [{"name": f"A {tag}"}, {"name": f"B {tag}"}])
    items = [hs_merge(crm, [a, b])]
    if case == "older_plan_wrote_the_master":
        items.insert(0, hs_update(a, "name", f"A {tag}", f"A {tag} Ltd",
                                  crm.modified("hubspot", "companies", a)))  # fmt: skip
    older = make_plan(db, items)
    if case == "older_plan_wrote_the_master":
        assert apply_plan(db, cfg, plan_run_id=older).applied == 1  # the update; no merges
    newer = make_plan(db, [hs_merge(crm, [b, a] if case == "other_master_kept" else [a, b])])
    done = apply_plan(db, cfg, plan_run_id=newer, confirm_merges=True)
    assert done.applied == 1
    mark = crm.last_change()
    again = apply_plan(db, cfg, plan_run_id=older, confirm_merges=True)
    assert (again.applied, again.skipped, again.failed_total, again.stale) == (0, 1, 0, 0)
    said = db.execute(
        "select error from journal where run_id = ? and state = 'skipped'", [again.run_id]
    ).fetchone()[0]
    assert said == f"merged already by {done.run_id}: nothing to write"
    assert crm.changes(mark) == []


def test_a_stopped_merge_another_plan_did_meanwhile_is_skipped_on_resume(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """The older plan's merge was left sent (the daily limit stopped the run), a newer plan
    merged the records, then the older apply was finished: its merge was confirmed and
    audited though its request never reached the CRM."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b = crm.hs_create("companies", [{"name": f"A {tag}"}, {"name": f"B {tag}"}])
    older = make_plan(db, [hs_merge(crm, [a, b])])
    crm.fault(kind="request_limit", side="hubspot", endpoint="*merge*")
    try:
        with pytest.raises(BudgetExhausted):
            apply_plan(db, cfg, plan_run_id=older, confirm_merges=True)
    finally:
        crm.clear_faults()
    newer = make_plan(db, [hs_merge(crm, [a, b])])
    done = apply_plan(db, cfg, plan_run_id=newer, confirm_merges=True)
    assert done.applied == 1
    mark = crm.last_change()
    resumed = apply_plan(db, cfg, plan_run_id=older, resume=True, confirm_merges=True)
    assert (resumed.applied, resumed.skipped) == (0, 1)
    said = db.execute(
        "select error from journal where run_id = ? and state = 'skipped'", [resumed.run_id]
    ).fetchone()[0]
    assert said == f"merged already by {done.run_id}: nothing to write"
    assert crm.changes(mark) == []


@pytest.mark.parametrize("case", ["same_master", "other_master_kept"])
def test_a_stale_merge_approved_after_another_plan_merged_the_records(
    crm: CrmEnv, tmp_path: Path, case: str
) -> None:
    """A merge refused as stale before it was sent counted as "sent before" by this plan:
    approved later (*Write anyway*) after a newer plan merged the records, it was audited
    confirmed (nothing reached the CRM) or failed "not found" at every apply."""
    from recon.review_stale import stale_id

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b = crm.hs_create("companies", [{"name": f"A {tag}"}, {"name": f"B {tag}"}])
    older = hs_merge(crm, [a, b])
    older["payload"]["fields"] = {"name": f"Older plan's name {tag}"}
    older_plan = make_plan(db, [older])
    crm.edit("hubspot", "companies", a, {"description": "a person's edit"})
    first = apply_plan(db, cfg, plan_run_id=older_plan, confirm_merges=True)
    assert (first.applied, first.stale) == (0, 1)  # refused before sending
    item_id, error = db.execute(
        "select item_id, error from journal where plan_run_id = ? and state = 'stale'",
        [older_plan],
    ).fetchone()
    approve_ids(db, [stale_id(older_plan, item_id, json.loads(error))])  # "Write anyway"
    newer = make_plan(db, [hs_merge(crm, [b, a] if case == "other_master_kept" else [a, b])])
    done = apply_plan(db, cfg, plan_run_id=newer, confirm_merges=True)
    assert done.applied == 1
    mark = crm.last_change()
    again = apply_plan(db, cfg, plan_run_id=older_plan, confirm_merges=True)
    assert (again.applied, again.skipped, again.failed_total) == (0, 1, 0)
    assert crm.changes(mark) == []
    assert apply_plan(db, cfg, plan_run_id=older_plan, confirm_merges=True).items == 0


def test_a_resumed_merge_of_more_records_than_another_apply_merged_is_this_plan_s(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Another apply merged A ← B; this plan's merge A ← B, C landed, then the process died:
    the resume took the merge for the other apply's ("merged already", settled for good),
    and the audit said this plan merged nothing."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b, c = crm.hs_create(
        "companies", [{"name": f"A {tag}"}, {"name": f"B {tag}"}, {"name": f"C {tag}"}]
    )
    assert apply_plan(db, cfg, plan_run_id=make_plan(db, [hs_merge(crm, [a, b])]),
                      confirm_merges=True).applied == 1  # fmt: skip
    plan = make_plan(db, [hs_merge(crm, [a, b, c])])
    inner = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    with pytest.raises(RuntimeError):
        apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True,
                   writers={"hubspot": _KilledAtFirstWrite(inner, after=True)})  # fmt: skip
    resumed = apply_plan(db, cfg, plan_run_id=plan, resume=True, confirm_merges=True)
    states = [
        r[0] for r in db.execute("select state from journal where run_id = ?", [resumed.run_id])
    ]
    assert states == ["confirmed"]  # this plan's merge (it merged C), not "merged already"
    assert inner.merged_away("companies", [b, c]) == {b, c}


@pytest.mark.parametrize("stop", ["refused", "daily_limit"])
def test_a_merge_whose_values_did_not_land_writes_them_when_applied_again(
    crm: CrmEnv, tmp_path: Path, stop: str
) -> None:
    """The merge merged its victim, then its survivorship value did not land: the CRM refused
    it, or the daily limit stopped the run before the values' write (the merge was put back
    to planned). The next apply of the plan found the victim gone and skipped the merge as
    done "outside this plan" (and settled it), losing the chosen value. Its own merge is not
    someone else's: the value is written, and the CRM's fill from the victim is no edit."""
    from recon.apply import unfinished_apply

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    master, victim = crm.hs_create(
        "companies", [{"name": f"M {tag}"}, {"name": f"V {tag}", "phone": "+1 555 0177"}]
    )
    item = hs_merge(crm, [master, victim])
    item["payload"]["values"] = {"phone": {master: None, victim: "+1 555 0177"}}
    plan = make_plan(db, [item])
    link = db.execute("select link_item_id from plan_items where run_id = ?", [plan]).fetchone()[0]
    db["decisions"].insert(  # a reviewer chose the surviving phone
        {"kind": "master", "item_id": link, "label": "approve", "decided_by": "human",
         "reviewer": "ana", "decided_at": "2024-01-01T00:00:00Z", "version": 1, "superseded": 0,
         "choice": json.dumps({"master": master, "fields": {"phone": "+1 555 9999"}})}
    )  # fmt: skip
    if stop == "refused":
        crm.fault(kind="validation", side="hubspot", object="companies",
                  match={"phone": "+1 555 9999"}, times=1)  # fmt: skip
    else:  # the daily limit right after the merge call, before the survivorship values
        crm.fault(kind="request_limit", side="hubspot", endpoint="PATCH *", times=1)
    try:
        first = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
        assert stop == "refused" and first.failed_total == 1
    except BudgetExhausted:
        assert stop == "daily_limit"
    finally:
        crm.clear_faults()
    resume = unfinished_apply(db, plan) is not None
    again = apply_plan(db, cfg, plan_run_id=plan, resume=resume, confirm_merges=True)
    assert (again.applied, again.skipped, again.stale) == (1, 0, 0)
    assert crm.hs_get("companies", master, ["phone"])["phone"] == "+1 555 9999"


def test_a_write_found_in_place_is_settled_not_read_again_by_every_apply(
    crm: CrmEnv, tmp_path: Path
) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    name = f"In place {uid()}"
    [rid] = crm.hs_create("companies", [{"name": name}])
    plan = make_plan(
        db, [hs_update(rid, "name", None, name, crm.modified("hubspot", "companies", rid))]
    )
    first = apply_plan(db, cfg, plan_run_id=plan)
    assert (first.items, first.skipped) == (1, 1)
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0


def test_pending_items_leave_out_what_an_apply_settled(crm: CrmEnv, tmp_path: Path) -> None:
    """The review app's "Approved to apply" counts what the next apply would send."""
    from recon.apply import approved_plan_items, pending_items

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 2)
    plan = renames(crm, db, ids, names, " pend")
    assert len(pending_items(db, plan)) == 2
    apply_plan(db, cfg, plan_run_id=plan)
    assert len(approved_plan_items(db, plan)) == 2 and pending_items(db, plan) == []


def test_an_association_to_a_company_the_run_merged_away_goes_to_the_survivor(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Associating a contact with a company the same plan merged away: the association goes to
    the survivor (it failed as not found on every apply, exit 4, and the contact had none)."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, _names, tag = companies(crm, 2)
    contact = crm.hs_create("contacts", [{"email": f"m-{tag}@example.com", "firstname": "Mo"}])[0]
    merge = hs_merge(crm, ids)
    merge["seq"] = 20
    assoc = {
        "action": "associate", "system": "hubspot", "object": "contacts", "record_id": contact,
        "seq": 70,
        "payload": {"from": {"object": "contacts", "id": contact},
                    "to": {"object": "companies", "id": ids[1]}},
    }  # fmt: skip
    plan = make_plan(db, [merge, assoc])
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert result.status == "ok" and result.failed == {} and result.applied == 2
    got = crm.hs().crm.associations.v4.basic_api.get_page("contacts", contact, "companies")
    assert {str(r.to_object_id) for r in got.results} == {str(ids[0])}
    again = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert again.items == 0


def test_a_created_copy_is_linked_to_its_source_at_once(crm: CrmEnv, tmp_path: Path) -> None:
    """The next match proposed every copy recon created as a new link to review. The link
    between a created record and its source is approved when the create is confirmed
    (``decided_by = "recon"``: it trains nothing and is no person's review)."""
    from recon.models import stable_id
    from recon.plan import latest_decisions

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    item = create("hubspot", "companies", {"name": f"Copy {tag}", "domain": f"copy-{tag}.example"})
    item["payload"]["source"] = {
        "system": "salesforce",
        "object": "Account",
        "record_id": "001COPY",
    }
    result = apply_plan(db, cfg, plan_run_id=make_plan(db, [item]))
    assert result.applied == 1
    new_id = db.execute(
        "select crm_record_id from journal where run_id = ?", [result.run_id]
    ).fetchone()[0]
    pair = stable_id("companies", "hubspot", new_id, "salesforce", "001COPY")
    decision = latest_decisions(db, kinds=["link"])[pair]
    assert (decision["label"], decision["decided_by"], decision["reviewer"]) == (
        "match",
        "recon",
        "recon",
    )
    assert (decision["record_id_l"], decision["record_id_r"]) == (new_id, "001COPY")


def test_a_person_s_edit_after_the_plan_s_merge_is_not_called_the_merge_s(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Any stale write on a record the plan merged into was labelled "recon's own merge left
    this value", steering the reviewer to overwrite a person's edit; only a value the merge
    could have left is the merge's."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    a, b = crm.hs_create(
        "companies", [{"name": f"A {tag}", "description": "old"}, {"name": f"B {tag}"}]
    )
    snap = crm.modified("hubspot", "companies", a)
    plan = make_plan(
        db, [hs_merge(crm, [a, b]), hs_update(a, "description", "old", "from the other CRM", snap)]
    )
    crm.fault(kind="request_limit", side="hubspot", endpoint="*batch/update*", times=1)
    try:
        with pytest.raises(BudgetExhausted):  # stopped after the merge, before the update
            apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    finally:
        crm.clear_faults()
    crm.edit("hubspot", "companies", a, {"description": "a person's edit"})
    apply_plan(db, cfg, plan_run_id=plan, resume=True, confirm_merges=True)
    stale = json.loads(db.execute("select error from journal where state = 'stale'").fetchone()[0])
    assert "by_recon_merge" not in stale


def test_a_copy_a_resumed_apply_finds_by_recon_s_key_is_linked_too(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """The create landed, the process died before recording it; the resume finds the record
    by recon's own key (proof it is the copy) and links it to its source as well."""
    from recon.models import stable_id
    from recon.plan import latest_decisions

    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    item = create("hubspot", "companies", {"name": f"Copy {tag}", "domain": f"copy-{tag}.example"})
    item["payload"]["source"] = {"system": "salesforce", "object": "Account", "record_id": "001KEY"}
    plan = make_plan(db, [item])
    inner = build_writer(cfg, "hubspot", CallBudget("hubspot"))
    with pytest.raises(RuntimeError):
        apply_plan(db, cfg, plan_run_id=plan,
                   writers={"hubspot": _KilledAtFirstWrite(inner, after=True)})  # fmt: skip
    resumed = apply_plan(db, cfg, plan_run_id=plan, resume=True)
    new_id = db.execute(
        "select crm_record_id from journal where run_id = ? and state = 'confirmed'",
        [resumed.run_id],
    ).fetchone()[0]
    pair = stable_id("companies", "hubspot", new_id, "salesforce", "001KEY")
    assert latest_decisions(db, kinds=["link"])[pair]["decided_by"] == "recon"


def test_the_audit_names_the_records_an_association_joins(crm: CrmEnv, tmp_path: Path) -> None:
    """An association's audit rows named a record the plan creates by its create item
    (``{"create_item_id": ...}``, no record id), and a company the run merged away by its
    old id: the audit said nothing of the company a contact was joined to. They name the
    records the CRM holds, as sent."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, _names, tag = companies(crm, 2)
    contact = crm.hs_create("contacts", [{"email": f"j-{tag}@example.com", "firstname": "Jo"}])[0]
    merge = hs_merge(crm, ids)
    company = create("hubspot", "companies", {"name": f"Joined {tag}", "domain": f"j-{tag}.test"})
    person = create("hubspot", "contacts", {"email": f"k-{tag}@example.com", "firstname": "Kit"})
    company["item_id"], person["item_id"] = f"co-{tag}", f"pe-{tag}"

    def joins(frm: dict[str, Any], to: dict[str, Any], item_id: str) -> dict[str, Any]:
        return {
            "item_id": item_id, "action": "associate", "system": "hubspot", "object": "contacts",
            "record_id": frm.get("id"), "field": "associations.companies",
            "after": to.get("id") or {"create_item_id": to.get("create_item_id")},
            "payload": {"from": {"object": "contacts", **frm}, "to": {"object": "companies", **to}},
        }  # fmt: skip

    plan = make_plan(
        db,
        [
            merge,
            company,
            person,
            joins({"id": contact}, {"create_item_id": f"co-{tag}"}, f"a1-{tag}"),
            joins({"create_item_id": f"pe-{tag}"}, {"id": ids[1]}, f"a2-{tag}"),
        ],
    )
    result = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    assert result.status == "ok" and result.applied == 5
    made = {
        r["item_id"]: r["crm_record_id"]
        for r in db.query(
            "select item_id, crm_record_id from journal where run_id = ?", [result.run_id]
        )
    }
    rows = {
        (r["item_id"], r["outcome"]): r
        for r in db.query(
            "select * from audit where run_id = ? and item_id like 'a_-%'", [result.run_id]
        )
    }
    want = {
        f"a1-{tag}": (contact, made[f"co-{tag}"]),
        f"a2-{tag}": (made[f"pe-{tag}"], ids[0]),  # ids[1] was merged into ids[0]
    }
    for (item_id, outcome), row in rows.items():
        assert (row["record_id"], json.loads(row["after"])) == want[item_id], outcome
        assert row["record_link"].endswith(f"/{want[item_id][0]}")
    assert sorted(o for _i, o in rows) == ["confirmed", "confirmed", "intended", "intended"]
    assert verify(db).ok


def test_a_run_killed_part_way_counts_the_calls_it_made_before(crm: CrmEnv, tmp_path: Path) -> None:
    """A resumed run's ``api_calls`` include the calls made before it stopped, but a process
    killed part way never wrote them (only a clean stop did): after a kill -9 the run's
    summary and ``recon status`` counted the resumed process's calls alone."""
    cfg = crm.config(tmp_path, apply={"hubspot_batch_size": 1})
    db = crm.db(cfg)
    ids, names, _ = companies(crm, 3)
    plan = renames(crm, db, ids, names, " counted")
    budget = CallBudget("hubspot")
    before_kill: list[int] = []

    def die() -> None:
        before_kill.append(budget.calls)
        raise SystemExit("killed")

    killer = _AfterSend(build_writer(cfg, "hubspot", budget), die, at=2)
    with pytest.raises(SystemExit):
        apply_plan(db, cfg, plan_run_id=plan, writers={"hubspot": killer})
    result = apply_plan(db, cfg, plan_run_id=plan, resume=True)
    assert result.applied == 3
    # every call of the killed process but the write it died in (its batch is re-read)
    assert result.api_calls["hubspot"] - result.calls_made["hubspot"] >= before_kill[0] - 1 >= 2


def _primary(crm: CrmEnv, contact: str, company: str) -> None:
    """Make ``company`` the contact's primary company, as a person does in HubSpot."""
    from hubspot.crm.associations.v4 import AssociationSpec

    crm.hs().crm.associations.v4.basic_api.create(
        "contacts", contact, "companies", company, [AssociationSpec("HUBSPOT_DEFINED", 1)]
    )


def test_a_primary_company_a_person_changed_since_review_is_not_moved(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Moving a contact's primary company (its Salesforce Contact's Account decided) was sent
    unchecked: a person who made another company primary since review was overwritten. The
    primary company is judged by value: another one than the review saw (and than the planned
    one) makes the write stale; the run's own updates of the contact are no reason."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids, _names, tag = companies(crm, 3)
    was, planned, chosen = ids
    people = crm.hs_create(
        "contacts", [{"email": f"{n}-{tag}@example.com", "firstname": n} for n in ("pa", "pb")]
    )
    for contact in people:
        _primary(crm, contact, was)
    snaps = {c: crm.modified("hubspot", "contacts", c) for c in people}
    moved, kept = people
    _primary(crm, moved, chosen)  # a person's choice, after the review
    items: list[dict[str, Any]] = [
        {
            "action": "associate",
            "system": "hubspot",
            "object": "contacts",
            "record_id": c,
            "field": "associations.companies",
            "before": was,
            "after": planned,
            "snapshot_modified_at": snaps[c],
            "payload": {
                "from": {"object": "contacts", "id": c},
                "to": {"object": "companies", "id": planned},
                "type": "contact_to_company",
                "type_id": 279,
                "primary": True,
            },
        }
        for c in people
    ]
    items.append(hs_update(kept, "jobtitle", None, "Buyer", snaps[kept], obj="contacts"))
    plan = make_plan(db, items)
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.applied, result.stale) == (2, 1)
    assert crm.hs_get("contacts", moved, ["associatedcompanyid"])["associatedcompanyid"] == chosen
    assert crm.hs_get("contacts", kept, ["associatedcompanyid"])["associatedcompanyid"] == planned
    (row,) = db.query(
        "select item_id, error from journal where run_id = ? and state = 'stale'", [result.run_id]
    )
    both = json.loads(row["error"])
    assert both["current"] == {"associations.companies": chosen}
    # "Write anyway" in review: sent against the primary company the reviewer saw
    from recon.review_stale import stale_id

    approve_ids(db, [stale_id(plan, row["item_id"], both)])
    again = apply_plan(db, cfg, plan_run_id=plan)
    assert (again.applied, again.stale) == (1, 0)
    assert crm.hs_get("contacts", moved, ["associatedcompanyid"])["associatedcompanyid"] == planned
