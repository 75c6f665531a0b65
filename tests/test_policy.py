"""The auto-approve policy: only allowed tiers, objects and kinds; never over a person's decision."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

from recon.config import PolicySection
from recon.plan import approved_items
from recon.policy import auto_approve
from recon.store import start_run

PAIRS = [
    # pair_id, object, tier
    ("p-auto-co", "companies", "auto"),
    ("p-review-co", "companies", "review"),
    ("p-auto-ct", "contacts", "auto"),
    ("p-human", "companies", "auto"),
]


PAYLOADS = {
    "merge": {"master": "h1", "victims": ["h2"]},
    "conflict": {
        "kind": "text",
        "hubspot": {
            "object": "contacts",
            "record_id": "h-p-auto-ct",
            "field": "jobtitle",
            "value": "CTO",
            "as_salesforce": "CTO",
        },
        "salesforce": {
            "object": "Lead",
            "record_id": "s-p-auto-ct",
            "field": "Title",
            "value": "VP",
            "as_hubspot": "VP",
            "writable": True,
        },
    },
}


@pytest.fixture
def store(fresh_db: sqlite_utils.Database) -> tuple[sqlite_utils.Database, str, str]:
    db = fresh_db
    match = start_run(db, "match")
    plan = start_run(db, "plan")
    db["pairs"].insert_all(
        [
            {
                "run_id": match,
                "pair_id": pid,
                "kind": "link",
                "object": obj,
                "source_l": "hubspot",
                "record_id_l": f"h-{pid}",
                "object_l": obj,
                "source_r": "salesforce",
                "record_id_r": f"s-{pid}",
                "object_r": "Account" if obj == "companies" else "Lead",
                "score": 0.99 if tier == "auto" else 0.7,
                "tier": tier,
            }
            for pid, obj, tier in PAIRS
        ]
    )
    db["clusters"].insert_all(
        [
            {
                "run_id": match,
                "cluster_id": "c1",
                "object": "companies",
                "source": "hubspot",
                "record_object": "companies",
                "record_id": r,
                "score": 0.97,
                "tier": "auto",
            }
            for r in ("h1", "h2")
        ]
    )
    # a person already rejected p-human: the policy must leave it alone
    db["decisions"].insert(
        {
            "kind": "link",
            "label": "non_match",
            "item_id": "p-human",
            "decided_by": "human",
            "reviewer": "ana",
            "version": 1,
        }
    )
    items = [
        ("u1", "update", "companies", ["p-auto-co"], None),
        ("u2", "update", "companies", ["p-review-co"], None),
        ("k1", "create", "Lead", ["k1"], None),
        ("m1", "merge", "companies", ["c1"], None),
        # the plan proposes the newer side (two_way, both changed since the last sync)
        ("x1", "conflict", "contacts", ["p-auto-ct", "x1"], {"side": "hubspot", "value": "CTO"}),
        ("x2", "conflict", "contacts", ["p-auto-ct", "x2"], None),
    ]
    db["plan_items"].insert_all(
        [
            {
                "run_id": plan,
                "item_id": iid,
                "action": action,
                "system": "salesforce",
                "object": obj,
                "field": "Title" if action == "conflict" else None,
                "requires": json.dumps(req),
                "after": json.dumps(after),
                "status": "needs_review" if action == "conflict" else "proposed",
                "seq": n,
                "payload": json.dumps(PAYLOADS.get(action, {})),
                "reason": "{}",
                "before": "null",
                "link_item_id": req[0],
            }
            for n, (iid, action, obj, req, after) in enumerate(items)
        ]
    )
    return db, match, plan


def decided(db: sqlite_utils.Database, by: str = "policy") -> dict[str, dict[str, object]]:
    return {
        r["item_id"]: dict(r)
        for r in db.query("select * from decisions where decided_by = ?", [by])
    }


def test_default_policy_approves_only_auto_links(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    db, match, plan = store
    counts = auto_approve(db, PolicySection(), match_run_id=match, plan_run_id=plan)
    assert counts == {"links": 2, "merges": 0, "creates": 0, "conflicts": 0, "lapsed": 0}
    rows = decided(db)
    assert set(rows) == {"p-auto-co", "p-auto-ct"}
    assert {r["label"] for r in rows.values()} == {"match"}
    assert {r["reviewer"] for r in rows.values()} == {"policy"}
    assert rows["p-auto-ct"]["salesforce_object"] == "Lead"
    # the person's rejection stands
    assert decided(db, "human")["p-human"]["label"] == "non_match"
    assert [i["item_id"] for i in approved_items(db, plan)] == ["u1"]


def test_policy_runs_twice_without_deciding_again(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    db, match, plan = store
    auto_approve(db, PolicySection(), match_run_id=match, plan_run_id=plan)
    again = auto_approve(db, PolicySection(), match_run_id=match, plan_run_id=plan)
    assert again["links"] == 0
    assert db["decisions"].count == 3


def test_merges_creates_conflicts_only_when_named(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    db, match, plan = store
    policy = PolicySection(
        link_tiers=["auto", "review"],
        duplicate_tiers=["auto"],
        merges=True,
        creates=True,
        conflicts=True,
    )
    counts = auto_approve(db, policy, match_run_id=match, plan_run_id=plan)
    assert counts == {"links": 3, "merges": 1, "creates": 1, "conflicts": 1, "lapsed": 0}
    rows = decided(db)
    assert rows["c1"]["kind"] == "duplicate"
    assert rows["k1"]["kind"] == "plan" and rows["k1"]["label"] == "approve"
    assert json.loads(str(rows["x1"]["choice"])) == {
        "field": "Title",
        "value": "CTO",
        "source": "plan",
        "side": "hubspot",
    }
    assert "x2" not in rows  # nothing proposed: a person must choose
    approved = approved_items(db, plan)
    ids = {i.get("conflict_item_id") or i["item_id"] for i in approved}
    assert {"u1", "u2", "k1", "m1", "x1"} <= ids
    writes = {(i["system"], i["after"]) for i in approved if i.get("conflict_item_id") == "x1"}
    assert writes == {("salesforce", "CTO")}  # the newer HubSpot value onto Salesforce


def test_objects_switch_and_disabled_policy(store: tuple[sqlite_utils.Database, str, str]) -> None:
    db, match, plan = store
    assert auto_approve(db, PolicySection(enabled=False), match_run_id=match)["links"] == 0
    counts = auto_approve(
        db, PolicySection(objects=["contacts"]), match_run_id=match, plan_run_id=plan
    )
    assert counts["links"] == 1
    assert set(decided(db)) == {"p-auto-ct"}


def test_a_policy_approval_lapses_when_its_link_leaves_the_allowed_tier(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    db, match, plan = store
    first = auto_approve(db, PolicySection(), match_run_id=match, plan_run_id=plan)
    assert first["links"] == 2 and "p-auto-co" in decided(db)
    # the next match run scores the pair lower: it is in the review tier now
    db.execute("update pairs set tier = 'review' where pair_id = 'p-auto-co'")
    again = auto_approve(db, PolicySection(), match_run_id=match, plan_run_id=plan)
    assert again["lapsed"] == 1 and again["links"] == 0
    current = db.execute(
        "select count(*) from decisions where item_id = 'p-auto-co' and superseded = 0"
    ).fetchone()[0]
    assert current == 0  # undecided again: a person decides a review-tier link
    human = db.execute("select superseded from decisions where item_id = 'p-human'").fetchone()
    assert human[0] in (0, None)  # a person's decision is never touched


def test_a_cluster_holding_records_a_person_called_distinct_is_not_merged(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    db, match, plan = store
    # an earlier cluster of h1 and h2 was rejected by a person
    db["clusters"].insert_all(
        {"run_id": "older", "cluster_id": "c0", "object": "companies", "source": "hubspot",
         "record_object": "companies", "record_id": r, "score": 0.97, "tier": "auto"}
        for r in ("h1", "h2")
    )  # fmt: skip
    db["decisions"].insert(
        {"kind": "duplicate", "label": "non_match", "item_id": "c0", "decided_by": "human",
         "reviewer": "ana", "version": 1, "superseded": 0}
    )  # fmt: skip
    counts = auto_approve(db, PolicySection(merges=True), match_run_id=match, plan_run_id=plan)
    assert counts["merges"] == 0 and "c1" not in decided(db)


def test_a_policy_narrowed_to_nothing_lets_all_its_approvals_lapse(
    store: tuple[sqlite_utils.Database, str, str],
) -> None:
    """No tiers at all (`link_tiers = []`, merges off) is the narrowest policy, not none."""
    db, match, plan = store
    first = auto_approve(
        db, PolicySection(merges=True, duplicate_tiers=["auto", "review"]),
        match_run_id=match, plan_run_id=plan,
    )  # fmt: skip
    assert first["links"] == 2 and first["merges"] >= 1
    nothing = auto_approve(db, PolicySection(link_tiers=[]), match_run_id=match, plan_run_id=plan)
    assert nothing["lapsed"] == first["links"] + first["merges"]
    assert nothing["links"] == 0
    left = db.execute(
        "select count(*) from decisions where decided_by = 'policy' and superseded = 0"
    ).fetchone()[0]
    assert left == 0


@pytest.mark.parametrize("switch", ["disabled", "creates_and_conflicts_off", "objects"])
def test_what_a_policy_no_longer_allows_lapses_creates_and_conflict_values_included(
    store: tuple[sqlite_utils.Database, str, str], switch: str
) -> None:
    """A run held by `max_writes` after the policy approved creates: the user switched creates
    (or the whole policy) off, and the next run still created every record, since only
    approvals of links and clusters lapsed (and none at all with `enabled = false`)."""
    db, match, plan = store
    full = PolicySection(
        link_tiers=["auto", "review"], duplicate_tiers=["auto"], merges=True, creates=True,
        conflicts=True,
    )  # fmt: skip
    first = auto_approve(db, full, match_run_id=match, plan_run_id=plan)
    assert (first["creates"], first["conflicts"]) == (1, 1)
    if switch == "disabled":
        now = full.model_copy(update={"enabled": False})
    elif switch == "creates_and_conflicts_off":
        now = full.model_copy(update={"creates": False, "conflicts": False})
    else:  # the create is a Lead, the conflict a contact's: contacts are no longer named
        now = full.model_copy(update={"objects": ["companies"]})
    again = auto_approve(db, now, match_run_id=match, plan_run_id=plan)
    current = {
        r[0]
        for r in db.execute(
            "select item_id from decisions where decided_by = 'policy' and superseded = 0"
        )
    }
    assert not current & {"k1", "x1"}
    approved = {i.get("conflict_item_id") or i["item_id"] for i in approved_items(db, plan)}
    assert not approved & {"k1", "x1"}
    if switch == "disabled":
        assert current == set() and again["lapsed"] == sum(first.values())
    else:
        assert {"c1", "p-auto-co"} <= current  # what it still allows stands


def test_a_link_replacing_a_person_s_approved_link_waits_for_a_person() -> None:
    """The matcher now pairs HubSpot company 1 with Account 001Y; a person approved 1 ⇄ 001X.
    The policy approved the new link and the plan synced it over the person's choice; it is
    left to a person now. A HubSpot contact's Lead link beside a person's Contact link is no
    replacement (one link per Salesforce object)."""
    from plan_testdata import World

    from recon.models import stable_id

    w = World()
    for hs, sf, obj, sf_obj in (
        ("1", "001X", "companies", None),
        ("2", "003A", "contacts", "Contact"),
    ):
        w.db["decisions"].insert(
            {"kind": "link", "object": obj, "source_l": "hubspot", "record_id_l": hs,
             "source_r": "salesforce", "record_id_r": sf, "salesforce_object": sf_obj,
             "label": "match", "item_id": stable_id(obj, "hubspot", hs, "salesforce", sf),
             "version": 1, "superseded": 0, "decided_by": "human", "decided_at": "2024-07-01"}
        )  # fmt: skip
    replacing = w.link("companies", "1", "Account", "001Y")
    beside = w.link("contacts", "2", "Lead", "00QA")
    other = w.link("companies", "3", "Account", "001Z")
    run = w.done()
    counts = auto_approve(w.db, PolicySection(), match_run_id=run)
    approved = {
        r[0] for r in w.db.execute("select item_id from decisions where decided_by = 'policy'")
    }
    assert approved == {beside, other} and counts["links"] == 2
    assert replacing not in approved
