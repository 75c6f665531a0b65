"""approved_items: only items whose required decisions are approved reach apply."""

from __future__ import annotations

from typing import Any

import pytest
from plan_testdata import World, by

from recon.config import load_config
from recon.models import stable_id
from recon.plan import approved_items, build_plan, latest_decisions

EMAIL = "jo@acme.com"


def cfg(**mapping: Any) -> Any:
    return load_config(None, overrides={"mapping": mapping})


def world() -> tuple[World, dict[str, str]]:
    w = World()
    w.snap(
        "hubspot", "contacts", "201", {"email": EMAIL, "jobtitle": "CEO", "phone": "1"}, email=EMAIL
    )
    w.snap(
        "salesforce", "Contact", "003A", {"Email": EMAIL, "Title": None, "Phone": "2"}, email=EMAIL
    )
    link = w.link("contacts", "201", "Contact", "003A", tier="review", score=0.8)
    w.snap("hubspot", "contacts", "300", {"email": "new@x.com"}, email="new@x.com")
    for rid in ("001X", "001Y"):
        w.snap("salesforce", "Account", rid, {"Name": "Dup"}, name="Dup")
    cluster = w.cluster(
        "cl-1", "companies", "salesforce", [("Account", "001X"), ("Account", "001Y")]
    )
    w.done()
    return w, {"link": link, "cluster": cluster}


def build(w: World) -> str:
    res = build_plan(w.db, cfg(rules={"contacts.phone": "review"}))
    assert res.run_id
    return res.run_id


def test_nothing_is_approved_without_decisions() -> None:
    w, _ids = world()
    run = build(w)
    assert approved_items(w.db, run) == []


@pytest.mark.parametrize(
    ("label", "count"), [("match", 1), ("non_match", 0), ("unsure", 0), ("approve", 1)]
)
def test_link_label_decides_its_updates(label: str, count: int) -> None:
    w, ids = world()
    run = build(w)
    w.decide(ids["link"], "link", label)
    got = approved_items(w.db, run)
    assert len(by(got, field="Title")) == count
    assert by(got, action="conflict") == []  # conflicts also need their own choice
    if count:
        (item,) = by(got, field="Title")
        assert item["payload"] == {"fields": {"Title": "CEO"}}
        assert (
            item["decisions"][0]["label"] == label
            and item["decisions"][0]["reviewer"] == "ana@corp.com"
        )


def test_latest_non_superseded_decision_counts() -> None:
    w, ids = world()
    run = build(w)
    w.decide(ids["link"], "link", "match", version=1)
    w.decide(ids["link"], "link", "non_match", version=2)
    assert by(approved_items(w.db, run), field="Title") == []
    w.db.execute("update decisions set superseded = 1 where label = 'non_match'")
    assert len(by(approved_items(w.db, run), field="Title")) == 1
    assert latest_decisions(w.db)[ids["link"]]["label"] == "match"


@pytest.mark.parametrize(
    ("choice", "writes"),
    [
        ({"side": "hubspot"}, {("salesforce", "Phone", "1")}),
        ({"side": "salesforce"}, {("hubspot", "phone", "2")}),
        ({"value": "3"}, {("salesforce", "Phone", "3"), ("hubspot", "phone", "3")}),
        ({"field": "phone", "value": "1", "source": "plan"}, {("salesforce", "Phone", "1")}),
        ("2", {("hubspot", "phone", "2")}),
        ({"value": ""}, set()),  # a blank choice never blanks a record
    ],
)
def test_conflict_choice_becomes_updates(choice: Any, writes: set[tuple[str, str, str]]) -> None:
    w, ids = world()
    run = build(w)
    conflict = next(
        i
        for i in build_plan(w.db, cfg(rules={"contacts.phone": "review"})).items
        if i["action"] == "conflict"
    )
    w.decide(ids["link"], "link", "match")
    w.decide(conflict["item_id"], "conflict_value", "approve", choice)
    got = [i for i in approved_items(w.db, run) if i.get("conflict_item_id")]
    assert {(i["system"], i["field"], i["after"]) for i in got} == writes
    for i in got:
        assert i["item_id"] == stable_id(conflict["item_id"], i["system"])
        assert i["action"] == "update" and i["link_item_id"] == ids["link"]


@pytest.mark.parametrize(
    ("typed", "writes"),
    [
        # a HubSpot option, in any case: Salesforce gets the picklist value it maps to
        ("new", {("hubspot", "hs_lead_status", "NEW"), ("salesforce", "Status", "Open - Not Contacted")}),
        # a Salesforce picklist value: HubSpot's CONNECTED already is it (no HubSpot write)
        ("working - contacted", {("salesforce", "Status", "Working - Contacted")}),
        ("Closed - Converted", {("hubspot", "hs_lead_status", "OPEN_DEAL"),
                                ("salesforce", "Status", "Closed - Converted")}),
        # neither side's option: written as typed (the CRM's validation answers)
        ("Maybe", {("hubspot", "hs_lead_status", "Maybe"), ("salesforce", "Status", "Maybe")}),
    ],
)  # fmt: skip
def test_a_typed_in_option_is_mapped_to_each_side(
    typed: str, writes: set[tuple[str, str, str]]
) -> None:
    """A value typed for an option conflict was written as typed to both CRMs: HubSpot's
    option name landed in Salesforce's picklist (and the other way round)."""
    w = World()
    hs = {"email": EMAIL, "hs_lead_status": "CONNECTED"}
    w.snap("hubspot", "contacts", "201", hs, email=EMAIL)
    sf = {"Email": EMAIL, "Status": "Closed - Not Converted"}
    w.snap("salesforce", "Lead", "00QA", sf, email=EMAIL)
    link = w.link("contacts", "201", "Lead", "00QA")
    w.done()
    res = build_plan(w.db, cfg(rules={"contacts.hs_lead_status": "review"}))
    (conflict,) = by(res.items, action="conflict")
    assert conflict["payload"]["options"]["NEW"] == "Open - Not Contacted"
    w.decide(link, "link", "match")
    w.decide(conflict["item_id"], "conflict_value", "approve", {"value": typed})
    assert res.run_id is not None
    got = [i for i in approved_items(w.db, res.run_id) if i.get("conflict_item_id")]
    assert {(i["system"], i["field"], i["after"]) for i in got} == writes


def test_a_chosen_value_is_credited_to_the_reviewer_who_chose_it() -> None:
    """The audit said the writes of a conflict's chosen value were decided by whoever
    approved the link (a bulk approval hours before), not by the reviewer who chose it."""
    from recon.apply_items import decision_of

    w, ids = world()
    build(w)
    res = build_plan(w.db, cfg(rules={"contacts.phone": "review"}))
    conflict = next(i for i in res.items if i["action"] == "conflict")
    w.decide(ids["link"], "link", "match", reviewer="bulk@corp.com", at="2024-07-01T00:00:00Z")
    w.decide(conflict["item_id"], "conflict_value", "approve", {"side": "hubspot"},
             reviewer="alice@corp.com", at="2024-07-02T09:30:00Z")  # fmt: skip
    assert res.run_id is not None
    (write,) = [i for i in approved_items(w.db, res.run_id) if i.get("conflict_item_id")]
    said = decision_of(w.db, write)
    assert (said["reviewer"], said["decided_at"]) == ("alice@corp.com", "2024-07-02T09:30:00Z")
    # each decision once: the conflict's own first, then its link's
    assert [d["kind"] for d in write["decisions"]] == ["conflict_value", "link"]


def test_conflict_needs_its_link_approved_too() -> None:
    w, ids = world()
    run = build(w)
    conflict = next(
        i
        for i in w.db.query(
            "select item_id from plan_items where run_id = ? and action = 'conflict'", [run]
        )
    )
    w.decide(conflict["item_id"], "conflict_value", "approve", {"side": "hubspot"})
    assert approved_items(w.db, run) == []
    w.decide(ids["link"], "link", "non_match")
    assert approved_items(w.db, run) == []


def test_creates_need_their_own_approval() -> None:
    w, _ids = world()
    run = build(w)
    (create,) = w.db.query(
        "select item_id from plan_items where run_id = ? and action = 'create'", [run]
    )
    w.decide(create["item_id"], "plan", "defer")
    assert by(approved_items(w.db, run), action="create") == []
    w.decide(create["item_id"], "plan", "approve", version=2)
    (item,) = by(approved_items(w.db, run), action="create")
    assert item["payload"]["natural_key"] == {"email": "new@x.com"}


def test_merge_needs_the_cluster_approved_and_takes_the_master_choice() -> None:
    w, ids = world()
    run = build(w)
    assert by(approved_items(w.db, run), action="merge") == []
    w.decide(ids["cluster"], "duplicate", "match")
    (merge,) = by(approved_items(w.db, run), action="merge")
    assert merge["payload"]["master"] == "001X"
    # a later master choice (same item id as the cluster) does not un-approve the merge
    w.decide(ids["cluster"], "master", "approve", "001Y", version=2)
    (merge,) = by(approved_items(w.db, run), action="merge")
    assert (merge["record_id"], merge["payload"]["victims"]) == ("001Y", ["001X"])


def test_blocked_items_are_never_returned() -> None:
    w, ids = world()
    run = build(w)
    w.decide(ids["cluster"], "duplicate", "match")
    w.db.execute("update plan_items set status = 'blocked' where action = 'merge'")
    assert by(approved_items(w.db, run), action="merge") == []


def test_items_come_in_run_order() -> None:
    w, ids = world()
    run = build(w)
    w.decide(ids["link"], "link", "match")
    w.decide(ids["cluster"], "duplicate", "match")
    seqs = [i["seq"] for i in approved_items(w.db, run)]
    assert seqs == sorted(seqs) and seqs[0] == 10


def test_conflict_choice_never_writes_where_direction_forbids() -> None:
    w, ids = world()
    res = build_plan(
        w.db, cfg(rules={"contacts.phone": "review"}, contacts="salesforce_to_hubspot")
    )
    (conflict,) = by(res.items, action="conflict")
    assert conflict["payload"]["salesforce"]["writable"] is False
    w.decide(ids["link"], "link", "match")
    w.decide(conflict["item_id"], "conflict_value", "approve", {"value": "3"})
    got = [i for i in approved_items(w.db, str(res.run_id)) if i.get("conflict_item_id")]
    assert [(i["system"], i["after"]) for i in got] == [("hubspot", "3")]


def test_approval_filter_agrees_with_reading_every_item() -> None:
    """Items are judged by their ``requires`` in SQLite and read whole only when approved:
    the same items, in the same (seq, item id) order, as decoding every row and judging it,
    across many rowid chunks, with blank, empty and multi-id requirements; an unreadable one
    is never approved."""
    import json
    import random

    from recon.plan import APPROVED_LABELS, _rows_approved
    from recon.store import open_store, start_run

    db = open_store(":memory:")
    run = start_run(db, "plan")
    rng = random.Random(3)
    ids = [f"d{k}" for k in range(60)]
    decisions = {
        i: {"label": rng.choice(["match", "approve", "non_match", "unsure", "reject"])}
        for i in ids[:50]  # the last ten were never decided
    }
    requires_choices: list[Any] = [None, "", "[]", "not json", "[1]"]
    rows = []
    for k in range(3000):
        shape = rng.random()
        if shape < 0.05:
            requires = rng.choice(requires_choices)
        else:
            requires = json.dumps(rng.sample(ids, rng.choice([1, 1, 1, 2, 3])))
        rows.append(
            {
                "run_id": run,
                "item_id": f"{rng.getrandbits(64):016x}{k}",
                "action": "update",
                "status": rng.choice(["proposed", "proposed", "needs_review", "blocked"]),
                "seq": rng.choice([10, 40, 50, 50, 70, None]),
                "requires": requires,
            }
        )
    db["plan_items"].insert_all(rows)

    def approved(requires: str | None) -> bool:
        try:
            needed = json.loads(requires) if requires else []
        except ValueError:
            return False  # unreadable: never approved
        return all(
            (d := decisions.get(str(r))) is not None and d["label"] in APPROVED_LABELS
            for r in needed or ()
        )

    expected = [
        r["item_id"]
        for r in db.query(
            "select item_id, requires from plan_items where run_id = ? and status != 'blocked' "
            "order by seq, item_id",
            [run],
        )
        if approved(r["requires"])
    ]
    got = [r["item_id"] for r in _rows_approved(db, run, decisions)]
    assert 500 < len(got) < 2500  # some approved, some not: the filter is exercised
    assert got == expected
    assert not [t for (t,) in db.execute("select name from temp.sqlite_master")]  # cleaned up
