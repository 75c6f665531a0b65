"""Stored plan rows: JSON columns encoded like the general encoder, in the order given (run order)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from recon.plan_build import run_order
from recon.plan_run import _INSERT_COLS, _rows

_JSON = ("before", "after", "requires", "reason", "payload")


def _item(item_id: str, seq: int, value: Any) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "action": "update",
        "system": "hubspot",
        "object": "contacts",
        "record_id": "1",
        "field": "city",
        "before": value,
        "after": "Oslo",
        "snapshot_modified_at": None,
        "link_item_id": "p1",
        "requires": ["p1"],
        "reason": {"values": {"hubspot": value}},
        "status": "proposed",
        "seq": seq,
        "payload": None,
    }


@pytest.mark.parametrize(
    "value",
    [
        None,
        "Bergen",
        17,
        17.5,
        True,
        ["a", "b"],
        {"nested": {"x": None}},
        datetime(2024, 1, 2, 3, 4, tzinfo=UTC),  # orjson's own type: the fast path
        Decimal("1.5"),  # no JSON type: text, through the general encoder
        {1: "non-text key"},  # the general encoder's non-text keys
    ],
)
def test_rows_encode_like_the_general_encoder_in_run_order(value: Any) -> None:
    items = [_item("b", 50, value), _item("a", 50, value), _item("c", 10, value)]
    rows = _rows("run", [items[k] for k in run_order(items)])
    assert [(r[14], r[1]) for r in rows] == [(10, "c"), (50, "a"), (50, "b")]
    for row in rows:
        item = next(i for i in items if i["item_id"] == row[1])
        for col, got in zip(_INSERT_COLS[1:], row[1:], strict=True):
            want = item[col]
            if col in _JSON and want is not None:
                want = orjson.dumps(want, str, orjson.OPT_NON_STR_KEYS).decode()
            assert got == want, col
        assert row[0] == "run"


def test_a_plan_is_stored_whole_and_in_run_order_chunk_by_chunk(monkeypatch) -> None:
    from plan_testdata import World, cfg, plan

    import recon.plan_run as plan_run

    monkeypatch.setattr(plan_run, "_INSERT_CHUNK", 2)
    w = World()
    for k in range(3):
        email = f"p{k}@x.com"
        hs = {"email": email, "jobtitle": "CEO", "city": None, "phone": "1"}
        sf = {"Email": email, "Title": "CTO", "MailingCity": "Oslo", "Phone": None}
        w.snap("hubspot", "contacts", str(300 + k), hs, email=email)
        w.snap("salesforce", "Contact", f"003X{k}", sf, email=email)
        w.link("contacts", str(300 + k), "Contact", f"003X{k}")
    res = plan(w, cfg(create_missing=False))
    assert len(res.items) > 2 * plan_run._INSERT_CHUNK
    stored = w.db.execute(
        "select item_id from plan_items where run_id = ? order by rowid", [res.run_id]
    ).fetchall()
    assert [r[0] for r in stored] == [i["item_id"] for i in res.items]


def test_only_a_forward_plan_built_after_an_apply_is_said_to_propose_it_again() -> None:
    """`apply --dry-run` said "this plan proposes again what was written" of any plan: of an
    undo plan (which restores) and of the very plan the apply came from (built before it)."""
    from recon.plan_run import written_since_pull
    from recon.store import finish_run, open_store, start_run

    db = open_store(":memory:")
    finish_run(db, start_run(db, "pull"), status="ok")
    earlier = start_run(db, "plan")
    applied = start_run(db, "apply")
    db["journal"].insert(
        {"run_id": applied, "item_id": "i1", "plan_run_id": earlier, "state": "confirmed",
         "crm_record_id": "003A"}
    )  # fmt: skip
    later = start_run(db, "plan")
    undo = start_run(db, "plan", config={"undo_of": applied})
    for k, rid in enumerate((earlier, applied, later, undo)):  # in this order, a second apart
        db.execute(
            "update runs set started_at = ? where run_id = ?", [f"2999-01-01T00:00:0{k}Z", rid]
        )
    assert written_since_pull(db, earlier) == [] and written_since_pull(db, undo) == []
    ((_key, said),) = written_since_pull(db, later)
    assert applied in said
    assert written_since_pull(db) != []  # a plan about to be built


def test_a_plan_after_an_apply_without_a_pull_says_it_proposes_again_what_was_written() -> None:
    """A plan built right after an apply, with no pull between, proposed again every value the
    apply had written (the store still held the records as pulled before), and nothing said
    so: `apply --dry-run` counted them as work to do."""
    from plan_testdata import World, cfg, linked_contact, plan

    from recon.store import finish_run, start_run

    w = World()
    linked_contact(w, {"email": "a@x.com", "jobtitle": "CEO"}, {"Email": "a@x.com", "Title": "CTO"})
    pulled = start_run(w.db, "pull")
    finish_run(w.db, pulled, status="ok")
    assert not [k for k, _ in plan(w, cfg(create_missing=False)).warnings if k == "store"]
    applied = start_run(w.db, "apply")
    w.db["journal"].insert(
        {"run_id": applied, "item_id": "i1", "plan_run_id": "p", "state": "confirmed",
         "crm_record_id": "003A"}
    )  # fmt: skip
    w.db.execute(
        "update runs set started_at = '2999-01-01T00:00:00.000Z' where run_id = ?", [applied]
    )
    (said,) = [m for k, m in plan(w, cfg(create_missing=False)).warnings if k == "store"]
    assert applied in said and "1 record(s)" in said and "recon pull" in said
    again = start_run(w.db, "pull")  # a pull after the apply: the store is current again
    w.db.execute(
        "update runs set started_at = '2999-01-02T00:00:00.000Z' where run_id = ?", [again]
    )
    finish_run(w.db, again, status="ok")
    assert not [k for k, _ in plan(w, cfg(create_missing=False)).warnings if k == "store"]


def test_an_exported_conflict_names_both_of_its_records(tmp_path) -> None:
    """A conflict's row had `system` both and an empty `record_id`: the person signing off the
    spreadsheet could not tell which records disagreed."""
    import csv

    from plan_testdata import World, by, cfg, plan

    from recon.plan_run import export_items

    w = World()
    w.snap("hubspot", "companies", "1", {"name": "Northwind", "city": "Leeds"}, name="Northwind")
    w.snap("salesforce", "Account", "001A", {"Name": "Northwind", "BillingCity": "York"},
           name="Northwind")  # fmt: skip
    w.link("companies", "1", "Account", "001A")
    result = plan(w, cfg(rules={"companies.city": "review"}))
    [conflict] = by(result.items, action="conflict")
    out = export_items(result, tmp_path / "items.csv")
    with open(out["path"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    [row] = [r for r in rows if r["item_id"] == conflict["item_id"]]
    assert (row["system"], row["object"], row["record_id"], row["field"]) == (
        "both", "companies", "1", "city"
    )  # fmt: skip
    assert row["conflict_with"] == "Account 001A BillingCity"
    assert all(r["conflict_with"] == "" for r in rows if r["action"] != "conflict")
