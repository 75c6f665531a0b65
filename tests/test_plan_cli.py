"""`recon plan`: counts per action and object as a table, CSV or JSON; dry run; sample; run id."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from plan_testdata import World, linked_leads

from recon.cli import main
from recon.store import open_store


@pytest.fixture
def store(tmp_path: Path) -> World:
    w = World(open_store(tmp_path / "data" / "recon.db"))
    linked_leads(w, ["0", "1", "2"], {"jobtitle": "CEO"})
    w.snap("hubspot", "contacts", "399", {"email": "solo@x.com"}, email="solo@x.com")
    w.done()
    return w


def run(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", *args])
    return int(exit_.value.code or 0)


def test_table(store: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 0
    out = capsys.readouterr().out
    assert "items per action and object" in out and "plan run plan-" in out
    assert "update" in out and "create" in out and "Lead" in out
    assert "per action: create 1, update 3" in out and "per object: Lead 4" in out
    preview = out[out.index("first 4 items") :].splitlines()[1:]
    assert len(preview) == 4
    assert (
        sum(
            "update salesforce Lead" in line and "Title: (blank) → 'CEO'" in line
            for line in preview
        )
        == 3
    )
    assert all(line.rstrip().endswith("]") and "[proposed" in line for line in preview)
    assert store.db["plan_items"].count == 4


def test_json_dry_run(store: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--dry-run", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run_id"] is None and doc["items"] == 4
    assert doc["by_action"] == {"create": 1, "update": 3}
    assert store.db["plan_items"].count == 0


def test_csv_sample_and_run(store: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--format", "csv", "--sample", "1", "--run", store.match_run) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(r["action"], r["object"], r["items"]) for r in rows} == {
        ("update", "Lead", "1"),
        ("create", "Lead", "1"),
    }


@pytest.mark.parametrize(
    ("args", "code"), [(["--format", "xml"], 2), (["--run", "nope"], 2), (["--sample", "0"], 2)]
)
def test_bad_arguments(store: World, args: list[str], code: int) -> None:
    assert run(*args) == code


def test_invalid_mapping_exits_3(
    store: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "recon.toml").write_text(
        '[[mapping.fields]]\nobject = "contacts"\nhubspot = "ghost"\nsalesforce = "Title"\nsalesforce_object = "Lead"\n'
    )
    assert run() == 3
    err = capsys.readouterr().err
    assert "mapping.fields[0]" in err and "ghost" in err


def test_items_written_for_sign_off(
    store: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--items FILE`: every item, one row each in run order, for a person to sign off."""
    out = tmp_path / "out" / "items.csv"
    assert run("--dry-run", "--items", str(out)) == 0
    assert f"wrote 4 items to {out}" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["action"] for r in rows] == ["create", "update", "update", "update"]  # run order
    update = rows[1]
    assert (update["system"], update["object"], update["field"]) == ("salesforce", "Lead", "Title")
    assert (update["before"], update["after"], update["status"]) == ("", "CEO", "proposed")
    assert update["why"] == "salesforce_blank" and update["mapping"] == "contacts.jobtitle"
    assert update["plan_run_id"] == "" and json.loads(update["requires"]) == [
        update["link_item_id"]
    ]
    xlsx = tmp_path / "items.xlsx"
    assert run("--items", str(xlsx)) == 0
    from openpyxl import load_workbook

    sheet = load_workbook(xlsx)["plan"]
    assert sheet.max_row == 5 and sheet.cell(1, 1).value == "item_id"
    assert sheet.cell(2, 22).value.startswith("plan-")  # a stored plan names its run
    # the create says where its record comes from
    create = rows[0]
    assert create["create_source"] == "hubspot contacts 399" and create["merge_victims"] == ""
    # a folder gets the plan run's name, once
    folder = tmp_path / "exports"
    folder.mkdir()
    assert run("--items", str(folder)) == 0
    (written,) = folder.iterdir()
    assert written.name.startswith("plan-") and not written.name.startswith("plan-plan-")


@pytest.mark.parametrize("name", ["plan.json", "plan.xls", "noext", "-", ""])
def test_items_names_a_format_or_is_refused_before_planning(store: World, name: str) -> None:
    assert run("--dry-run", "--items", name) == 2
    assert store.db["plan_items"].count == 0


def test_items_cells_that_a_spreadsheet_would_run_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = World(open_store(tmp_path / "data" / "recon.db"))
    linked_leads(w, ["0"], {"jobtitle": '=HYPERLINK("http://x","y")'})
    w.done()
    out = tmp_path / "items.csv"
    assert run("--dry-run", "--items", str(out)) == 0
    (row,) = [r for r in csv.DictReader(out.open(encoding="utf-8")) if r["field"] == "Title"]
    assert row["after"] == '\'=HYPERLINK("http://x","y")'


def test_items_of_a_merge_name_the_records_it_absorbs(tmp_path: Path) -> None:
    """A merge cannot be undone: the sign-off sheet says which records disappear."""
    from recon.plan import PlanResult
    from recon.plan_run import export_items

    merge = {"item_id": "m1", "seq": 10, "action": "merge", "system": "salesforce",
             "object": "Account", "record_id": "001A", "field": None, "before": {},
             "after": {}, "status": "proposed", "reason": {"why": "duplicate_cluster"},
             "payload": {"master": "001A", "victims": ["001B", "001C"]},
             "link_item_id": "cl-1", "requires": ["cl-1"], "snapshot_modified_at": None}  # fmt: skip
    out = tmp_path / "m.csv"
    export_items(PlanResult(run_id="plan-1", match_run_id=None, items=[merge]), out)
    (row,) = csv.DictReader(out.open(encoding="utf-8"))
    assert row["merge_victims"] == "001B;001C" and row["record_id"] == "001A"
