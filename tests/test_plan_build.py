"""The planner's per-mapping rule cells and value conversions (``recon.plan_build``)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from plan_testdata import World, cfg, linked_contact, linked_leads, plan

from recon.mapping import DIRECTIONS, RULES, FieldMap, allowed, decide, resolve_mappings
from recon.plan_build import Planner
from recon.plan_load import load_view

_BLANKS = ((False, True), (True, False), (False, False))  # SF blank, HubSpot blank, both set


def _planner(**mapping: str) -> Planner:
    w = World()
    w.done()
    c = cfg(**mapping)
    view = load_view(w.db, w.match_run)
    return Planner(view, resolve_mappings(c.mapping, view.schemas), c)


@pytest.mark.parametrize(
    ("rule", "direction", "to_sf", "to_hs"),
    list(itertools.product(RULES, DIRECTIONS, (True, False), (True, False))),
)
def test_cells_are_the_truth_table_under_the_direction(
    rule: str, direction: str, to_sf: bool, to_hs: bool
) -> None:
    p = _planner(contacts=direction)
    fm = FieldMap(
        "contacts", "jobtitle", "Title", "Contact", rule=rule, to_salesforce=to_sf, to_hubspot=to_hs
    )
    for (hs_blank, sf_blank), (code, why) in zip(_BLANKS, p.cells(fm), strict=True):
        if rule == "two_way" and not hs_blank and not sf_blank:
            assert code == "newer"  # the times decide, pair by pair
            continue
        out = decide(rule, hs_blank=hs_blank, sf_blank=sf_blank, equal=False)
        if out.action == "none":
            assert (code, why) == ("skip", f"rule_{rule}")
        elif not allowed(out, fm, direction):
            assert (code, why) == ("skip", "direction")
        else:
            assert (code, why) == (out.action, out.why)


def test_cells_are_kept_per_mapping() -> None:
    p = _planner()
    fm = FieldMap("contacts", "jobtitle", "Title", "Contact", rule="always_hubspot")
    other = dataclasses.replace(fm, rule="always_salesforce")
    assert p.cells(fm) is p.cells(fm)
    assert p.cells(fm) != p.cells(other)


def test_a_value_converted_once_is_still_counted_each_time() -> None:
    # two contacts with the same unwritable option: the conversion is memoised, the
    # skips and the warning's count are not
    w = World()
    linked_leads(w, ["1", "2"], {"salutation": "Prof."})
    res = plan(w)
    assert res.skipped["option_missing"] == 2
    (warning,) = [m for path, m in res.warnings if path == "mapping.contacts.salutation@Lead"]
    assert warning.startswith("2 value(s)")


def test_text_is_written_as_compared() -> None:
    # stripped, in both directions (the fast path for text kinds skips the converters)
    w = World()
    linked_contact(
        w,
        {"email": "jo@acme.com", "jobtitle": " CEO ", "firstname": None},
        {"Email": "jo@acme.com", "Title": None, "FirstName": " Jo "},
    )
    writes = sorted((i["system"], i["field"], i["after"]) for i in plan(w).items)
    assert writes == [("hubspot", "firstname", "Jo"), ("salesforce", "Title", "CEO")]


def test_a_write_a_reviewer_dropped_as_stale_waits_for_a_person_in_the_next_plan() -> None:
    """Through load_view and the planner (not only hold_undone): the next plan proposing
    the dropped value for that field holds it (`dropped_before`), and a Salesforce
    association (an AccountId write) as well."""
    import json

    from plan_testdata import World, by, cfg, plan

    from recon.plan import build_plan

    w = World()
    w.snap("hubspot", "companies", "1", {"name": "Acme", "city": "Oslo"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme", "BillingCity": "Bergen"}, name="Acme")
    pid = w.link("companies", "1", "Account", "001A")
    first = plan(w)
    [update] = by(first.items, action="update", link_item_id=pid, field="city")
    journal_item = {k: update[k] for k in ("item_id", "action", "system", "object", "record_id",
                                           "field", "before", "after", "payload", "seq")}  # fmt: skip
    w.db["journal"].insert(
        {"run_id": "apply-1", "item_id": update["item_id"], "plan_run_id": first.run_id,
         "state": "stale", "crm_record_id": "1", "updated_at": "2024-08-01T00:00:00Z",
         "item": json.dumps({**journal_item, "snapshot": None})}
    )  # fmt: skip
    w.db["decisions"].insert(
        {"kind": "plan", "label": "reject", "item_id": "st-1", "run_id": first.run_id,
         "choice": json.dumps({"stale_of": update["item_id"], "apply_run_id": "apply-1"}),
         "decided_by": "human", "reviewer": "ben@corp.com", "version": 1, "superseded": 0,
         "decided_at": "2024-08-01T00:00:00Z"}
    )  # fmt: skip
    again = build_plan(w.db, cfg(create_missing=False))
    [held] = by(again.items, item_id=update["item_id"])
    assert held["status"] == "needs_review" and held["reason"]["why"] == "dropped_before"
    assert held["reason"]["dropped_by"] == "ben@corp.com"
    assert held["requires"] == [pid, update["item_id"]]


def test_written_values_of_a_salesforce_association() -> None:
    from recon.plan_build import written_values

    item = {"action": "associate", "system": "salesforce", "field": "AccountId",
            "payload": {"from": {"object": "Contact", "id": "003A"},
                        "to": {"object": "Account", "id": "001A"}, "type": "AccountId"}}  # fmt: skip
    assert written_values(item) == {"AccountId": "001A"}
    assert written_values({**item, "system": "hubspot"}) == {}
