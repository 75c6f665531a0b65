"""A field write held compactly reads, compares, changes and is stored as its dict would be."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from recon.mapping import FieldMap
from recon.plan_build import hold_undone, run_order, written_values
from recon.plan_item import ITEM_KEYS, FieldWrite, write_row
from recon.plan_run import _rows
from recon.plan_values import value_key

_FM = FieldMap("contacts", "city", "MailingCity", "Contact", rule="always_salesforce")
_LINK = {"pair_id": "pair-1", "score": 0.93, "tier": "review", "object": "contacts"}


def _write(
    item_id: str = "w1", system: str = "hubspot", before: Any = None, **kw: Any
) -> FieldWrite:
    args = {
        "item_id": item_id,
        "action": "update",
        "system": system,
        "obj": "contacts" if system == "hubspot" else "Contact",
        "record_id": "7" if system == "hubspot" else "003A",
        "field": "city" if system == "hubspot" else "MailingCity",
        "before": before,
        "after": "Oslo",
        "modified_at": "2024-01-02T03:04:05.000Z",
        "seq": 50,
        "link": _LINK,
        "fm": _FM,
        "why": "hubspot_blank",
        "direction": "two_way",
        "hs_raw": before,
        "sf_raw": "Oslo",
    }
    args.update(kw)
    return FieldWrite(**args)


def _as_dict(system: str = "hubspot", before: Any = None) -> dict[str, Any]:
    hubspot = system == "hubspot"
    field = "city" if hubspot else "MailingCity"
    return {
        "item_id": "w1",
        "action": "update",
        "system": system,
        "object": "contacts" if hubspot else "Contact",
        "record_id": "7" if hubspot else "003A",
        "field": field,
        "before": before,
        "after": "Oslo",
        "snapshot_modified_at": "2024-01-02T03:04:05.000Z",
        "link_item_id": "pair-1",
        "requires": ["pair-1"],
        "reason": {
            "rule": "always_salesforce",
            "why": "hubspot_blank",
            "direction": "two_way",
            "score": 0.93,
            "tier": "review",
            "mapping": "contacts.city",
            "values": {"hubspot": before, "salesforce": "Oslo"},
        },
        "status": "proposed",
        "seq": 50,
        "payload": {("properties" if hubspot else "fields"): {field: "Oslo"}},
    }


@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_a_field_write_reads_as_the_plan_item_dict(system: str) -> None:
    w, want = _write(system=system), _as_dict(system)
    assert list(w) == list(ITEM_KEYS) == list(want)
    assert dict(w) == want and w == want and want == dict(w.items())
    assert {**w} == want and w.get("reason") == want["reason"] and w.get("nope", 1) == 1
    assert written_values(w) == {want["field"]: "Oslo"}
    with pytest.raises(KeyError):
        w["nope"]
    with pytest.raises(KeyError):
        w["nope"] = 1
    with pytest.raises(TypeError):
        del w["after"]


def test_built_containers_are_fresh_and_assigned_ones_stay() -> None:
    w = _write()
    w["reason"]["why"] = "edited"  # a built container is a copy: nothing of it is kept
    assert w["reason"]["why"] == "hubspot_blank"
    w["requires"] = ["pair-1", "w1"]
    w["status"] = "needs_review"
    w["after"] = "Bergen"
    assert w["requires"] == ["pair-1", "w1"] and w["status"] == "needs_review"
    assert w["payload"] == {"properties": {"city": "Bergen"}}  # built from the value now


def test_an_undo_holds_a_field_write_as_it_holds_its_dict() -> None:
    undone = {("hubspot", "contacts", "7", "city"): {value_key("Oslo"): "apply-9"}}
    w, d = _write(), _as_dict()
    assert hold_undone([w], undone) == hold_undone([d], undone) == 1
    assert dict(w) == d
    assert w["reason"]["why"] == "undone_before" and w["requires"] == ["pair-1", "w1"]


@pytest.mark.parametrize(
    "before",
    [None, "Bergen", 17, 17.5, True, ["a", "b"], datetime(2024, 1, 2, 3, 4, tzinfo=UTC)],
)
@pytest.mark.parametrize("system", ["hubspot", "salesforce"])
def test_a_field_write_is_stored_as_its_dict_is(system: str, before: Any) -> None:
    w = _write(system=system, before=before)
    assert write_row("run", w) == _rows("run", [_as_dict(system, before)])[0]
    assert _rows("run", [w]) == _rows("run", [_as_dict(system, before)])


def test_a_value_json_has_no_type_for_takes_the_general_encoder() -> None:
    w, d = _write(before=Decimal("1.5")), _as_dict(before=Decimal("1.5"))
    with pytest.raises(TypeError):
        write_row("run", w)
    assert _rows("run", [w, _write("w2")]) == _rows("run", [d, {**_as_dict(), "item_id": "w2"}])


def test_an_assigned_reason_is_stored() -> None:
    w = _write()
    w["reason"] = {"why": "undone_before"}
    assert write_row("run", w)[12] == '{"why":"undone_before"}'


def test_field_writes_and_dicts_sort_together_in_run_order() -> None:
    items = [_write("b"), {**_as_dict(), "item_id": "a"}, _write("c", seq=10)]
    assert run_order(items) == [2, 1, 0]
