"""Linked pairs compared group by group give the plan of a pair-by-pair pass in link order.

``Planner.plan_links`` visits the links one pair of objects at a time (companies last, so
the contacts' lifecycle stages come from the contacts just compared). The reference
here is the plain pass: every contact's stage read first, then ``Planner.diff`` for
each link in link order. Generated edge cases: blanks, padded text, numbers as text,
booleans as text, picklist values in either case or unknown, mapped and unmapped
owners, phones in two spellings, lifecycle stages, a HubSpot contact linked to a Lead
and a Contact, archived and missing records; under several rule sets and directions.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from plan_testdata import World, cfg

from recon.mapping import resolve_mappings
from recon.plan_build import Planner
from recon.plan_derived import lifecycle_sources
from recon.plan_links import add_hubspot_writes, linked_records
from recon.plan_load import load_view

_BLANKS = [None, "", "  ", "MISSING"]
_TEXT = ["Oslo", " Oslo ", "oslo", "Bergen"]
_NUMBERS = ["17", 17, 17.0, "17.5", 17.5, "1,700", "n/a", True]
_BOOLS = [True, False, "true", "false", "TRUE", "yes", "maybe"]
_INDUSTRY = ["TECHNOLOGY", "Technology", "technology", "BANKING", "Banking", "Mining"]
_OWNERS_HS = ["7", "8", "9", 7]
_OWNERS_SF = ["005A", "005B", "005Z"]
_PHONES = ["+47 22 33 44 55", "0047 22334455", "22 33 44 55", "+49 96 907 0744"]
_STAGES = ["lead", "customer", "subscriber", "opportunity", "Customer", "other"]
_DATES = ["2024-01-02", "2024-01-02T00:00:00.000Z", "2024-01-03T00:00:00.000+0000"]


def _pick(rng: random.Random, values: list[Any]) -> Any:
    return rng.choice(values + _BLANKS)


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value != "MISSING":
        d[key] = value


def _draw(
    rng: random.Random, specs: tuple[tuple[str, str | None, list[Any] | None], ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """HubSpot and Salesforce values of each ``(property, field, values)`` (None: owners)."""
    hs: dict[str, Any] = {}
    sf: dict[str, Any] = {}
    for h, s, values in specs:
        _put(hs, h, _pick(rng, _OWNERS_HS if values is None else values))
        if s:
            _put(sf, s, _pick(rng, _OWNERS_SF if values is None else values))
    return hs, sf


def _company(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    return _draw(
        rng,
        (
            ("name", "Name", _TEXT),
            ("city", "BillingCity", _TEXT),
            ("phone", "Phone", _PHONES),
            ("industry", "Industry", _INDUSTRY),
            ("hubspot_owner_id", "OwnerId", None),
            ("numberofemployees", "NumberOfEmployees", _NUMBERS),
            ("lifecyclestage", None, _STAGES),
        ),
    )


def _contact(rng: random.Random, sf_obj: str) -> tuple[dict[str, Any], dict[str, Any]]:
    hs, sf = _draw(
        rng,
        (
            ("firstname", "FirstName", _TEXT),
            ("jobtitle", "Title", _TEXT),
            ("hs_email_optout", "HasOptedOutOfEmail", _BOOLS),
            ("phone", "Phone", _PHONES),
            ("birthday", "Birthdate", _DATES),
            ("lifecyclestage", None, _STAGES),
            ("salutation", "Salutation", ["Mr.", "mr.", "Dr.", "Prof."]),
            ("hubspot_owner_id", "OwnerId", None),
        ),
    )
    if sf_obj == "Contact":
        _put(sf, "Account.Name", _pick(rng, _TEXT))
        _put(hs, "company", _pick(rng, _TEXT))
    else:
        _put(hs, "numemployees", _pick(rng, _NUMBERS))
        _put(sf, "NumberOfEmployees", _pick(rng, _NUMBERS))
    return hs, sf


def _world(seed: int, n: int = 60) -> World:
    rng = random.Random(seed)
    w = World()
    times = ["2024-05-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z", None]
    for i in range(n):
        hs, sf = _company(rng)
        cols = {"modified_at": rng.choice(times), "archived": int(rng.random() < 0.05)}
        w.snap("hubspot", "companies", f"c{i}", hs, **cols)
        if rng.random() > 0.03:  # now and then the Salesforce end is missing
            w.snap("salesforce", "Account", f"001{i:03d}", sf, modified_at=rng.choice(times))
        w.link("companies", f"c{i}", "Account", f"001{i:03d}", score=rng.choice([0.9, 0.97]))
    for i in range(n):
        sf_obj = rng.choice(["Contact", "Lead"])
        hs, sf = _contact(rng, sf_obj)
        hs_id, sf_id = f"p{i}", f"{'003' if sf_obj == 'Contact' else '00Q'}{i:03d}"
        w.snap("hubspot", "contacts", hs_id, hs, account_id=f"c{rng.randrange(n)}")
        w.snap("salesforce", sf_obj, sf_id, sf, modified_at=rng.choice(times))
        w.link("contacts", hs_id, sf_obj, sf_id)
        if rng.random() < 0.15:  # the same HubSpot contact also linked to a Lead
            _hs, lead = _contact(rng, "Lead")
            w.snap("salesforce", "Lead", f"00Qx{i:03d}", lead)
            w.link("contacts", hs_id, "Lead", f"00Qx{i:03d}", score=rng.choice([0.9, 0.99]))
    for i in range(n // 4):  # contacts that only feed their company's lifecycle stage
        w.snap("hubspot", "contacts", f"u{i}", {"lifecyclestage": rng.choice(_STAGES)})
        w.db["snapshots"].update(
            ("hubspot", "contacts", f"u{i}"), {"account_id": f"c{rng.randrange(n)}"}
        )
    w.done()
    return w


def _link_order(p: Planner) -> None:
    """The reference: every contact's stage read first, then each link in link order."""
    lifecycle_sources(p)
    p.sampled_links = p._sampled(p.norm_links, key=lambda r: r["object"])
    for link in p.sampled_links:
        both = linked_records(p, link)
        if both is not None:
            p.diff(link, *both)
    add_hubspot_writes(p)


def _state(p: Planner) -> tuple[Any, ...]:
    return (
        dict(sorted(p.items.items())),
        dict(p.skipped),
        p.gap_warnings(),
        dict(p.company_stage),
    )


RULES = ["prefer_salesforce_unless_blank", "two_way", "review", "always_hubspot"]


@pytest.mark.parametrize(
    ("seed", "rule", "directions", "with_schemas"),
    [
        (1, None, {}, True),
        (2, None, {}, False),  # no schemas: no option checks
        (3, "two_way", {}, True),
        (4, "review", {}, True),
        (5, "always_hubspot", {"contacts": "hubspot_to_salesforce"}, True),
        (6, None, {"companies": "off"}, True),
        (7, "prefer_hubspot_unless_blank", {"contacts": "salesforce_to_hubspot"}, True),
    ],
)
def test_groupwise_links_equal_link_order(
    seed: int, rule: str | None, directions: dict[str, str], with_schemas: bool
) -> None:
    w = _world(seed)
    mapping: dict[str, Any] = dict(directions)
    if rule:
        keys = ["contacts.firstname", "contacts.jobtitle", "contacts.phone", "companies.name"]
        keys += ["companies.city", "companies.industry", "contacts.hs_email_optout"]
        mapping["rules"] = dict.fromkeys(keys, rule)
    c = cfg(**mapping)
    states = []
    for run in (Planner.plan_links, _link_order):
        view = load_view(w.db, w.match_run)
        chk = resolve_mappings(c.mapping, view.schemas if with_schemas else {})
        p = Planner(view, chk, c)
        run(p)
        states.append(_state(p))
    got, want = states
    assert got == want
    assert want[0], "the generated links plan something"


def test_link_indexes_keep_the_first_link_of_a_record() -> None:
    w = World()
    for hs_id, sf_id in [("c1", "001A"), ("c1", "001B"), ("c2", "001A"), ("c3", "001C")]:
        w.snap("hubspot", "companies", hs_id, {"name": hs_id})
        w.snap("salesforce", "Account", sf_id, {"Name": sf_id})
        w.link("companies", hs_id, "Account", sf_id)
    w.snap("hubspot", "contacts", "p1", {"email": "a@b.co"})
    w.snap("salesforce", "Contact", "003A", {"Email": "a@b.co"})
    w.link("contacts", "p1", "Contact", "003A")
    w.done()
    c = cfg()
    view = load_view(w.db, w.match_run)
    p = Planner(view, resolve_mappings(c.mapping, view.schemas), c)
    by_account: dict[str, tuple[str, str]] = {}
    by_company: dict[str, tuple[str, str]] = {}
    for link in view.links:  # in link (pair id) order, the first one wins
        if link["object"] == "companies":
            by_account.setdefault(link["sf_id"], (link["hs_id"], link["pair_id"]))
            by_company.setdefault(link["hs_id"], (link["sf_id"], link["pair_id"]))
    assert (p.company_of_account, p.account_of_company) == (by_account, by_company)
    assert p.linked == {
        "hubspot": {"c1", "c2", "c3", "p1"},
        "salesforce": {"001A", "001B", "001C", "003A"},
    }


def _approved_link(w: World, *, elsewhere: bool = False) -> str:
    """Company 1 ⇄ Account 001A approved in an earlier match run, which the current run no
    longer proposes (the company was renamed in HubSpot)."""
    from recon.models import stable_id

    w.snap("hubspot", "companies", "1", {"name": "Northwind Provisions", "city": "Springfield"},
           name="Northwind Provisions")  # fmt: skip
    w.snap("salesforce", "Account", "001A", {"Name": "Compass Root Foods", "BillingCity": "Lyon"},
           name="Compass Root Foods")  # fmt: skip
    pid = stable_id("companies", "hubspot", "1", "salesforce", "001A")
    w.db["decisions"].insert(
        {"kind": "link", "object": "companies", "source_l": "hubspot", "record_id_l": "1",
         "source_r": "salesforce", "record_id_r": "001A", "label": "match", "item_id": pid,
         "version": 1, "superseded": 0, "decided_by": "human", "reviewer": "ana@corp.com",
         "decided_at": "2024-07-01T00:00:00Z"}
    )  # fmt: skip
    if elsewhere:  # the current run links the company to another Account
        w.snap("salesforce", "Account", "001B", {"Name": "Northwind Provisions"},
               name="Northwind Provisions")  # fmt: skip
        w.link("companies", "1", "Account", "001B")
    return pid


def test_an_approved_link_the_match_run_no_longer_proposes_still_syncs() -> None:
    """A link a person approved stays a link while its records live: the plan syncs it and
    creates no copy of either record (it offered to create both, and duplicated them)."""
    from plan_testdata import by, plan

    w = World()
    pid = _approved_link(w)
    result = plan(w, cfg(create_missing=True))
    assert not by(result.items, action="create")
    updates = by(result.items, action="update", link_item_id=pid)
    assert ("hubspot", "name") in {(i["system"], i["field"]) for i in updates}
    assert updates[0]["reason"]["tier"] == "approved" and updates[0]["reason"]["score"] is None
    assert any("1 approved link(s) the match run no longer proposes are kept" in m
               for _p, m in result.warnings)  # fmt: skip
    assert result.pinned_links == [pid]


def test_an_approved_link_whose_record_is_linked_elsewhere_now_is_left_to_that_link() -> None:
    from plan_testdata import by, plan

    w = World()
    pid = _approved_link(w, elsewhere=True)
    result = plan(w)
    assert not by(result.items, link_item_id=pid)
    assert result.skipped["approved_link_elsewhere"] == 1
    assert any(
        "1 link(s) a person approved are not synced" in m
        and "HubSpot companies 1 ⇄ Account 001A" in m
        for _p, m in result.warnings
    ), result.warnings


def test_a_conflict_of_an_approved_link_the_run_no_longer_proposes_shows_its_records() -> None:
    """Its link is in no pairs row of the match run: the queue took the records from the pairs
    row and showed the conflict without them (no names, nothing side by side)."""
    from plan_testdata import by, plan

    from recon import review

    w = World()
    pid = _approved_link(w)
    result = plan(w, cfg(rules={"companies.name": "review"}))
    [conflict] = by(result.items, action="conflict", link_item_id=pid)
    review.ensure_queue(w.db)
    [row] = [
        r for r in review.queue(w.db, review.QueueFilter(kinds=("conflict",))).items
        if r["item_id"] == conflict["item_id"]
    ]  # fmt: skip
    assert (row["source_l"], row["record_id_l"], row["source_r"], row["record_id_r"]) == (
        "hubspot", "1", "salesforce", "001A"
    )  # fmt: skip
    assert "Northwind Provisions" in row["title"] and "Compass Root Foods" in row["title"]
    detail = review.item_detail(w.db, conflict["item_id"])
    assert [r["record_id"] for r in detail["records"]] == ["1", "001A"]
    assert detail["explanation"] is None and detail["plan"]["item_id"] == conflict["item_id"]


def test_a_kept_link_is_in_the_review_queue_and_rejecting_it_unlinks_its_records() -> None:
    """The warning said "reject one in review", but the queue listed links of the match run
    only: a kept link could not be rejected."""
    from plan_testdata import by, plan

    from recon import review
    from recon.plan import build_plan

    w = World()
    pid = _approved_link(w)
    plan(w, cfg(create_missing=True))
    review.ensure_queue(w.db)
    [row] = [r for r in review.queue(w.db, review.QueueFilter(kinds=("link",), status="decided")).items
             if r["item_id"] == pid]  # fmt: skip
    assert (row["tier"], row["record_id_l"], row["record_id_r"]) == ("approved", "1", "001A")
    assert "Northwind Provisions" in review.item_detail(w.db, pid)["records"][0]["name"]
    review.decide(w.db, pid, "reject", reviewer="ben@corp.com", based_on_version=1)
    again = build_plan(w.db, cfg(create_missing=True))
    assert not by(again.items, link_item_id=pid) and again.pinned_links == []
    assert again.skipped.get("link_rejected", 0) == 0  # not in the match run: nothing to filter


def test_policy_approvals_are_not_kept_and_pins_take_ends_as_the_matcher_does() -> None:
    """A policy approval follows the match run's tiers (no pin); an approved Contact link
    stays beside the run's Lead link of the same HubSpot contact; of two approvals of one
    record the newer is kept."""
    from plan_testdata import plan

    from recon.models import stable_id

    w = World()
    w.snap("hubspot", "contacts", "201", {"email": "a@x.com"}, email="a@x.com")
    w.snap("salesforce", "Contact", "003A", {"Email": "a@x.com"}, email="a@x.com")
    w.snap("salesforce", "Lead", "00QA", {"Email": "a@x.com"}, email="a@x.com")
    w.snap("salesforce", "Contact", "003B", {"Email": "b@x.com"}, email="b@x.com")
    w.link("contacts", "201", "Lead", "00QA")  # this run's link: a Lead
    rows = [("003A", "human", "2024-07-02T00:00:00Z"), ("003B", "human", "2024-07-01T00:00:00Z")]
    w.snap("hubspot", "contacts", "202", {"email": "c@x.com"}, email="c@x.com")
    w.snap("salesforce", "Contact", "003C", {"Email": "c@x.com"}, email="c@x.com")
    ids = {}
    for (sf_id, by, at), hs_id in [
        *zip(rows, ["201", "201"], strict=True),
        (("003C", "policy", "2024-07-03T00:00:00Z"), "202"),
    ]:
        ids[sf_id] = stable_id("contacts", "hubspot", hs_id, "salesforce", sf_id)
        w.db["decisions"].insert(
            {"kind": "link", "object": "contacts", "source_l": "hubspot", "record_id_l": hs_id,
             "source_r": "salesforce", "record_id_r": sf_id, "salesforce_object": "Contact",
             "label": "match", "item_id": ids[sf_id], "version": 1, "superseded": 0,
             "decided_by": by, "decided_at": at}
        )  # fmt: skip
    result = plan(w, cfg(create_missing=True))
    assert result.pinned_links == [ids["003A"]]  # newer than 003B's; the policy's 003C not kept
    assert result.skipped["approved_link_elsewhere"] == 1
    # records of an approval not kept were one entity: none is copied into the other CRM
    created = {i["payload"]["source"]["record_id"] for i in result.items if i["action"] == "create"}
    assert not created & {"202", "003C", "003B"}, created
