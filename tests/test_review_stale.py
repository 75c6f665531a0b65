"""Stale writes back in review: apply refuses a changed record, the queue shows both versions,
the reviewer approves (written once, against the new version), rejects or defers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from writers.crm_env import (  # noqa: F401  (fixtures)
    CrmEnv,
    _own_sandbox,
    approve_ids,
    crm_fixture,
    hs_update,
    make_plan,
    sf_update,
    uid,
)

from recon import review
from recon.apply import apply_plan
from recon.audit import build_undo_plan, verify
from recon.config import ReconConfig

REVIEWER = "ben@example.com"  # make_plan approves the link as ana


_SIDES = {
    "hubspot": ("companies", "name", hs_update),
    "salesforce": ("Account", "Name", sf_update),
}


def _stale_setup(
    crm: CrmEnv, tmp_path: Path, system: str = "hubspot"
) -> tuple[ReconConfig, sqlite_utils.Database, str, str, str]:
    """A company, a plan renaming it, the queue built, a user edit, then an apply that refuses it."""
    obj, field, update = _SIDES[system]
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    name = f"Stale Co {uid()}"
    create = crm.hs_create if system == "hubspot" else crm.sf_create
    [rid] = create(obj, [{field: name}])
    snap = crm.modified(system, obj, rid)
    plan = make_plan(db, [update(rid, field, name, name + " Ltd", snap)])
    review.ensure_queue(db)  # the reviewer's page is open before the apply
    crm.edit(system, obj, rid, {field: "Edited by a user"})
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert (result.stale, result.applied) == (1, 0)
    return cfg, db, plan, rid, snap


def _name(crm: CrmEnv, system: str, rid: str) -> str:
    obj, field, _update = _SIDES[system]
    get = crm.hs_get if system == "hubspot" else crm.sf_get
    return str(get(obj, rid, [field])[field])


def _stale_items(db: sqlite_utils.Database, status: str = "undecided") -> list[dict[str, Any]]:
    return review.queue(db, review.QueueFilter(kinds=("stale",), status=status)).items


def _writes(crm: CrmEnv, mark: int, rid: str) -> list[dict[str, Any]]:
    return [c for c in crm.changes(mark) if str(c.get("record_id")) == rid]


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_a_stale_write_is_queued_at_once_with_both_versions(
    crm: CrmEnv, tmp_path: Path, system: str
) -> None:
    _cfg, db, _plan, rid, snap = _stale_setup(crm, tmp_path, system)
    obj, field, _update = _SIDES[system]
    [item] = _stale_items(db)  # no match/plan run since: apply itself refreshed the queue
    assert (item["kind"], item["object"], item["source_l"], item["record_id_l"], item["field"]) == (
        "stale",
        "companies",
        system,
        rid,
        field,
    )
    detail = review.item_detail(db, item["item_id"])
    stale = detail["stale"]
    assert stale["snapshot_modified_at"] == snap
    assert stale["current_modified_at"] == crm.modified(system, obj, rid)
    [row] = stale["fields"]
    assert row["field"] == field and row["current"] == "Edited by a user"
    assert row["planned"] == row["snapshot"] + " Ltd"
    # a rebuilt queue (e.g. another session) finds it in the journal too
    db.execute("delete from review_state")
    assert [i["item_id"] for i in _stale_items(db)] == [item["item_id"]]
    assert review.queue(db, review.QueueFilter(kinds=("stale",), text="edited")).total == 1


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_approved_stale_write_is_sent_once_against_the_new_version(
    crm: CrmEnv, tmp_path: Path, system: str
) -> None:
    cfg, db, plan, rid, _snap = _stale_setup(crm, tmp_path, system)
    [item] = _stale_items(db)
    new_version = review.item_detail(db, item["item_id"])["stale"]["current_modified_at"]
    decision = review.decide(db, item["item_id"], "approve", reviewer=REVIEWER, based_on_version=0)
    assert (decision["kind"], decision["label"]) == ("plan", "approve")
    assert json.loads(decision["choice"])["modified_at"] == new_version
    assert _stale_items(db) == []  # decided

    mark = crm.last_change()
    again = apply_plan(db, cfg, plan_run_id=plan)
    assert (again.items, again.applied, again.stale) == (1, 1, 0)
    name = _name(crm, system, rid)
    assert name.endswith(" Ltd") and name != "Edited by a user"
    assert len(_writes(crm, mark, rid)) == 1
    audit = list(
        db.query("select * from audit where run_id = ? and outcome = 'confirmed'", [again.run_id])
    )
    assert [a["reviewer"] for a in audit] == [REVIEWER] and verify(db).ok
    # what the write replaced is the user's value the reviewer saw, not the planned one
    assert json.loads(audit[0]["before"]) == "Edited by a user"
    journal = json.loads(
        db.execute("select item from journal where run_id = ?", [again.run_id]).fetchone()[0]
    )
    assert journal["snapshot"] == new_version

    # exactly once: a further rerun sends nothing
    mark = crm.last_change()
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0
    assert _writes(crm, mark, rid) == []

    # so an undo brings the user's value back
    undo = build_undo_plan(db, again.run_id, reviewer=REVIEWER)
    approve_ids(
        db, [r["item_id"] for r in db["plan_items"].rows_where("run_id = ?", [undo["plan_run_id"]])]
    )
    assert apply_plan(db, cfg, plan_run_id=undo["plan_run_id"]).applied == 1
    assert _name(crm, system, rid) == "Edited by a user"


@pytest.mark.parametrize("action", ["reject", "defer"])
def test_rejected_or_deferred_stale_write_is_not_sent(
    crm: CrmEnv, tmp_path: Path, action: str
) -> None:
    cfg, db, plan, rid, _snap = _stale_setup(crm, tmp_path)
    [item] = _stale_items(db)
    review.decide(db, item["item_id"], action, reviewer=REVIEWER, based_on_version=0)
    mark = crm.last_change()
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0
    assert crm.hs_get("companies", rid, ["name"])["name"] == "Edited by a user"
    assert _writes(crm, mark, rid) == []
    assert len(_stale_items(db, "deferred" if action == "defer" else "decided")) == 1


@pytest.mark.parametrize("action", ["reject", "defer"])
def test_a_dropped_stale_write_proposed_again_waits_for_a_person(
    crm: CrmEnv, tmp_path: Path, action: str
) -> None:
    """*Drop* refused writing this value over the person's edit: the next plan proposing the
    same write (the link still approved) holds it for a person instead of applying it under
    the link's approval. *Defer* decides nothing."""
    from recon.plan_build import hold_undone
    from recon.plan_load import _dropped
    from recon.plan_values import value_key

    _cfg, db, _plan, rid, _snap = _stale_setup(crm, tmp_path)
    [item] = _stale_items(db)
    planned = review.item_detail(db, item["item_id"])["stale"]["fields"][0]["planned"]
    review.decide(db, item["item_id"], action, reviewer=REVIEWER, based_on_version=0)
    dropped = _dropped(db)
    again = {
        "item_id": "u2", "action": "update", "system": "hubspot", "object": "companies",
        "record_id": rid, "payload": {"properties": {"name": planned}}, "requires": ["pair-9"],
        "reason": {"why": "salesforce_wins"}, "status": "proposed",
    }  # fmt: skip
    if action == "defer":
        assert dropped == {} and hold_undone([again], {}, dropped) == 0
        return
    assert dropped == {("hubspot", "companies", rid, "name"): {value_key(planned): REVIEWER}}
    assert hold_undone([again], {}, dropped) == 1
    assert again["status"] == "needs_review" and again["requires"] == ["pair-9", "u2"]
    assert again["reason"]["why"] == "dropped_before"
    assert again["reason"]["dropped_by"] == REVIEWER
    other = {**again, "item_id": "u3", "payload": {"properties": {"name": "Another"}},
             "status": "proposed", "requires": ["pair-9"]}  # fmt: skip
    assert hold_undone([other], {}, dropped) == 0  # another value is another question
    # the same value in another format (a CRM reformatting it) is the value dropped
    same = {**other, "item_id": "u4", "payload": {"properties": {"name": f" {planned.upper()}."}}}
    assert hold_undone([same], {}, dropped) == 1


def test_a_second_edit_after_approval_is_stale_again(crm: CrmEnv, tmp_path: Path) -> None:
    cfg, db, plan, rid, _snap = _stale_setup(crm, tmp_path)
    [first] = _stale_items(db)
    review.decide(db, first["item_id"], "approve", reviewer=REVIEWER, based_on_version=0)
    crm.edit("hubspot", "companies", rid, {"name": "Edited twice"})

    result = apply_plan(db, cfg, plan_run_id=plan)

    assert (result.stale, result.applied) == (1, 0)
    assert crm.hs_get("companies", rid, ["name"])["name"] == "Edited twice"
    [second] = _stale_items(db)  # undecided again, as a new event of the same plan item
    assert second["item_id"] != first["item_id"]
    assert second["link_item_id"] == first["link_item_id"]
    [row] = review.item_detail(db, second["item_id"])["stale"]["fields"]
    assert row["current"] == "Edited twice"
    assert review.queue(db, review.QueueFilter(kinds=("stale",), status="all")).total == 1


def test_resume_sends_an_item_the_interrupted_run_found_stale(crm: CrmEnv, tmp_path: Path) -> None:
    cfg, db, plan, rid, _snap = _stale_setup(crm, tmp_path)
    # the run is left unfinished (as if killed after the refusal)
    run_id = db.execute("select run_id from journal where plan_run_id = ?", [plan]).fetchone()[0]
    db.execute("update runs set status = 'running' where run_id = ?", [run_id])
    [item] = _stale_items(db)
    review.decide(db, item["item_id"], "approve", reviewer=REVIEWER, based_on_version=0)

    resumed = apply_plan(db, cfg, plan_run_id=plan, resume=True)

    assert resumed.run_id == run_id and (resumed.applied, resumed.stale) == (1, 0)
    assert crm.hs_get("companies", rid, ["name"])["name"].endswith(" Ltd")


def _conflict_gone_stale(
    crm: CrmEnv, tmp_path: Path
) -> tuple[ReconConfig, sqlite_utils.Database, str, str, str]:
    """A phone conflict decided for HubSpot's value; a user edits the Account; apply refuses
    the write as stale. HubSpot's side is never written (a record of the shared sandbox)."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    [acc] = crm.sf_create("Account", [{"Name": f"Conflict Co {uid()}", "Phone": "+1 555 0100"}])
    iid = f"conflict-{uid()}"
    side = {"object": "companies", "record_id": "1", "field": "phone"}
    payload = {
        "kind": "phone",
        "hubspot": {**side, "value": "+1 555 0199", "as_salesforce": "+1 555 0199",
                    "writable": False},
        "salesforce": {**side, "object": "Account", "record_id": acc, "field": "Phone",
                       "value": "+1 555 0100", "writable": True,
                       "modified_at": crm.modified("salesforce", "Account", acc)},
    }  # fmt: skip
    item = {"item_id": iid, "action": "conflict", "system": "both", "field": "phone"}
    plan = make_plan(db, [{**item, "requires": [iid], "payload": payload}], approve=False)
    review.choose_value(
        db, iid, "phone", "+1 555 0199", source="hubspot", reviewer=REVIEWER, based_on_version=0
    )
    crm.edit("salesforce", "Account", acc, {"Phone": "+1 555 0142"})
    assert apply_plan(db, cfg, plan_run_id=plan).stale == 1
    return cfg, db, plan, acc, iid


def test_a_stale_write_of_a_decided_conflict(crm: CrmEnv, tmp_path: Path) -> None:
    """The update a conflict decision expands to goes stale; approved, it is written once."""
    cfg, db, plan, acc, _iid = _conflict_gone_stale(crm, tmp_path)

    [stale] = _stale_items(db)
    [row] = review.item_detail(db, stale["item_id"])["stale"]["fields"]
    assert (row["field"], row["snapshot"], row["current"], row["planned"]) == (
        "Phone",
        "+1 555 0100",
        "+1 555 0142",
        "+1 555 0199",
    )
    review.decide(db, stale["item_id"], "approve", reviewer=REVIEWER, based_on_version=0)
    assert apply_plan(db, cfg, plan_run_id=plan).applied == 1
    assert crm.sf_get("Account", acc, ["Phone"])["Phone"] == "+1 555 0199"
    assert apply_plan(db, cfg, plan_run_id=plan).items == 0


def test_a_new_value_chosen_for_a_conflict_after_its_write_went_stale(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Choosing again on the conflict brings its write back: shown against the record's current
    version (it changed since), then written once approved."""
    cfg, db, plan, acc, iid = _conflict_gone_stale(crm, tmp_path)
    review.choose_value(
        db, iid, "phone", "+1 555 0177", source="manual", reviewer=REVIEWER, based_on_version=1
    )
    again = apply_plan(db, cfg, plan_run_id=plan)
    assert (again.items, again.stale) == (1, 1)  # asked again, with the new value
    [stale] = _stale_items(db)
    [row] = review.item_detail(db, stale["item_id"])["stale"]["fields"]
    assert (row["current"], row["planned"]) == ("+1 555 0142", "+1 555 0177")
    review.decide(db, stale["item_id"], "approve", reviewer=REVIEWER, based_on_version=0)
    assert apply_plan(db, cfg, plan_run_id=plan).applied == 1
    assert crm.sf_get("Account", acc, ["Phone"])["Phone"] == "+1 555 0177"


def test_an_undo_plan_leaves_the_forward_plans_stale_writes_in_the_queue(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Building an undo plan (only to look at it) made it the queue's plan: the forward plan's
    stale writes left the queue and `recon status`, and so did the stale restores of an undo's
    own apply. Both stay until a person answers them."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    names = [f"Undo Q {uid()} {i}" for i in range(2)]
    ids = crm.hs_create("companies", [{"name": n} for n in names])
    snaps = [crm.modified("hubspot", "companies", r) for r in ids]
    plan = make_plan(
        db,
        [hs_update(r, "name", n, n + " Ltd", s) for r, n, s in zip(ids, names, snaps, strict=True)],
    )
    crm.edit("hubspot", "companies", ids[0], {"name": "Edited by a user"})
    first = apply_plan(db, cfg, plan_run_id=plan)
    assert (first.stale, first.applied) == (1, 1)
    [stale] = _stale_items(db)
    undo = build_undo_plan(db, first.run_id, reviewer=REVIEWER)["plan_run_id"]
    assert [i["item_id"] for i in _stale_items(db)] == [stale["item_id"]]
    # the undo's own restore, refused since a user renamed the record again
    approve_ids(db, [r["item_id"] for r in db["plan_items"].rows_where("run_id = ?", [undo])])
    crm.edit("hubspot", "companies", ids[1], {"name": "Renamed again"})
    assert apply_plan(db, cfg, plan_run_id=undo).stale == 1
    assert {i["run_id"] for i in _stale_items(db)} == {plan, undo}
    db.execute("delete from review_state")  # a rebuilt queue finds both again
    assert {i["run_id"] for i in _stale_items(db)} == {plan, undo}
