"""The audit chain, exports, undo plans and the apply/audit/undo commands."""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from openpyxl import load_workbook
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

from recon import review
from recon.apply import apply_plan
from recon.audit import anchor, append, build_undo_plan, escape_formula, export, verify
from recon.errors import OutputError, UsageError
from recon.store import open_store, transaction

EVIL = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tTab", "\rCR"]


def chain(n: int = 5) -> Any:
    db = open_store(":memory:")
    with transaction(db):
        append(
            db,
            [
                {
                    "run_id": "apply-1",
                    "item_id": f"i{i}",
                    "crm": "hubspot",
                    "field": "name",
                    "before": "a",
                    "after": f"b{i}",
                    "outcome": "confirmed",
                }
                for i in range(n)
            ],
        )
    return db


def test_a_clean_chain_verifies_and_its_anchor_is_the_last_hash() -> None:
    db = chain()
    result = verify(db, anchor=anchor(db))
    assert result.ok and result.rows == 5 and result.anchor == anchor(db)


@pytest.mark.parametrize(
    "tamper",
    [
        "update audit set after = 'forged' where seq = 3",
        "update audit set outcome = 'failed' where seq = 1",
        "update audit set hash = 'x', after = 'forged' where seq = 5",
        "delete from audit where seq = 2",
        "delete from audit where seq = 1",
        "update audit set seq = 9 where seq = 4",
    ],
)
def test_verify_catches_edited_and_deleted_rows(tamper: str) -> None:
    db = chain()
    db.execute(tamper)
    result = verify(db)
    assert not result.ok and result.problems


def test_verify_with_the_anchor_catches_a_truncated_tail() -> None:
    db = chain()
    head = anchor(db)
    db.execute("delete from audit where seq >= 4")
    assert verify(db).ok  # a cut tail leaves a valid chain...
    result = verify(db, anchor=head)  # ...which the anchor printed earlier exposes
    assert not result.ok and "cut off" in result.problems[0]


@pytest.mark.parametrize("bad", ["", "zzz", "ab" * 16])
def test_an_anchor_that_is_no_hash_is_a_usage_error_not_tampering(bad: str) -> None:
    with pytest.raises(UsageError, match="is not an audit hash"):
        verify(open_store(":memory:"), anchor=bad)


def test_an_anchor_checked_against_an_empty_audit_says_it_is_empty() -> None:
    result = verify(open_store(":memory:"), anchor="ab" * 32)
    assert not result.ok and "the audit is empty" in " ".join(result.problems)


def test_an_export_under_a_file_says_the_file_is_no_folder(tmp_path: Path) -> None:
    (tmp_path / "audit.csv").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match=r"audit\.csv is a file, not a folder"):
        export(open_store(":memory:"), "csv", tmp_path / "audit.csv" / "inner.csv")


def test_audit_report_reads_a_recon_run_id_as_its_apply_and_refuses_unknown_ids() -> None:
    from recon.insights import audit_report
    from recon.store import finish_run, start_run

    db = open_store(":memory:")
    parent = start_run(db, "run")
    child = start_run(db, "apply", parent_id=parent)
    with transaction(db):
        append(db, [{"run_id": child, "item_id": "i1", "crm": "hubspot", "object": "companies",
                     "record_id": "1", "field": "name", "outcome": "confirmed"}])  # fmt: skip
    finish_run(db, child, status="ok")
    assert audit_report(db, parent).to_dicts() == audit_report(db, child).to_dicts()
    assert audit_report(db, parent).height == 1
    with pytest.raises(UsageError, match="no run 'nope'"):
        audit_report(db, "nope")
    pull = start_run(db, "pull")
    with pytest.raises(UsageError, match="is a pull run and has no apply run under it"):
        audit_report(db, pull)
    with pytest.raises(UsageError, match="is a `recon run` and has no plan run under it"):
        from recon.store import resolve_run_id

        resolve_run_id(db, parent, "plan")


def test_appending_keeps_an_old_anchor_valid() -> None:
    db = chain()
    head = anchor(db)
    with transaction(db):
        append(db, [{"run_id": "apply-2", "item_id": "x", "outcome": "intended"}])
    assert verify(db, anchor=head).ok and anchor(db) != head


@pytest.mark.parametrize("value", EVIL)
def test_formula_cells_are_escaped(value: str) -> None:
    assert escape_formula(value) == "'" + value
    assert escape_formula("Acme " + value) == "Acme " + value


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "xlsx"])
def test_exports_carry_the_anchor_and_escape_formulas(fmt: str, tmp_path: Path) -> None:
    db = open_store(":memory:")
    with transaction(db):
        append(
            db,
            [
                {"run_id": "apply-1", "item_id": f"i{i}", "after": v, "outcome": "confirmed"}
                for i, v in enumerate(EVIL)
            ],
        )
    out = tmp_path / f"audit.{fmt}"
    info = export(db, fmt, out)
    assert info["rows"] == len(EVIL) and info["anchor"] == anchor(db)
    if fmt == "csv":
        rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    elif fmt == "xlsx":
        ws = load_workbook(out)["audit"]
        values = list(ws.values)
        rows = [dict(zip(values[0], r, strict=True)) for r in values[1:]]
        assert load_workbook(out)["anchor"]["B1"].value == anchor(db)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        rows = pl.read_parquet(out).to_dicts()
    assert {r["anchor"] for r in rows} == {anchor(db)}
    afters = [r["after"] for r in rows]
    if fmt in {"csv", "xlsx"}:
        assert all(str(a).startswith("'") for a in afters)
    else:
        assert afters == EVIL  # machine formats keep the exact values


def test_a_workbook_spells_out_control_characters_a_crm_error_held(tmp_path: Path) -> None:
    db = open_store(":memory:")
    with transaction(db):
        append(db, [{"run_id": "apply-1", "item_id": "i1", "outcome": "failed",
                     "error": "Property values were not valid: \x0bbad\x00"}])  # fmt: skip
    export(db, "xlsx", tmp_path / "a.xlsx")
    values = list(load_workbook(tmp_path / "a.xlsx")["audit"].values)
    row = dict(zip(values[0], values[1], strict=True))
    assert row["error"] == "Property values were not valid: \\x0bbad\\x00"


def test_a_workbook_keeps_values_longer_than_a_cell_whole(tmp_path: Path) -> None:
    """A value over a spreadsheet cell's 32,767 characters (a 32,000-character description
    as the audit's JSON) is not cut silently: the cell says so and the sheet 'long values'
    holds the whole value in parts."""
    long = json.dumps("".join(f"Note {i:04d}: call back\n" for i in range(1500))[:32_000])
    assert len(long) > 32_767
    db = open_store(":memory:")
    with transaction(db):
        append(db, [{"run_id": "apply-1", "item_id": "i1", "field": "description",
                     "before": "null", "after": long, "outcome": "confirmed"}])  # fmt: skip
    info = export(db, "xlsx", tmp_path / "a.xlsx")
    assert info["long_cells"] == 1
    book = load_workbook(tmp_path / "a.xlsx")
    values = list(book["audit"].values)
    row = dict(zip(values[0], values[1], strict=True))
    assert "the whole value is in the sheet 'long values'" in row["after"]
    parts = list(book["long values"].values)
    assert parts[0] == ("seq", "column", "part", "of", "text")
    assert {(p[0], p[1]) for p in parts[1:]} == {(row["seq"], "after")}
    assert json.loads("".join(p[4] for p in sorted(parts[1:], key=lambda p: p[2]))) == json.loads(
        long
    )
    assert "long_cells" not in export(db, "jsonl", tmp_path / "a.jsonl")


def test_a_long_value_s_parts_are_never_formulas(tmp_path: Path) -> None:
    """Only the whole cell was escaped: a part starting with "=" was stored as a formula."""
    evil = "a" * 32_000 + '=HYPERLINK("http://evil")' + "b" * 1_000
    db = open_store(":memory:")
    with transaction(db):
        append(db, [{"run_id": "apply-1", "item_id": "i1", "after": evil, "outcome": "confirmed"}])
    export(db, "xlsx", tmp_path / "a.xlsx")
    sheet = load_workbook(tmp_path / "a.xlsx")["long values"]
    cells = [row[4] for row in sheet.iter_rows(min_row=2)]
    assert len(cells) == 2 and all(c.data_type == "s" for c in cells)
    assert cells[1].value.startswith("=HYPERLINK")
    assert "".join(c.value for c in cells) == "'" * evil.startswith("=") + evil


def test_one_failing_export_format_neither_stops_the_others_nor_hides_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recon.audit
    from recon.config import load_config
    from recon.pipeline import _export
    from recon.store import start_run

    db = chain()
    run = start_run(db, "apply")
    db.execute("update audit set run_id = ?", [run])  # the chain's rows, of a stored run
    real = recon.audit.export

    def broken(db: Any, fmt: str, path: Any, **kw: Any) -> Any:
        if fmt == "xlsx":
            raise OSError("disk full")
        return real(db, fmt, path, **kw)

    monkeypatch.setattr(recon.audit, "export", broken)
    cfg = load_config(None, overrides={"store": {"exports_dir": str(tmp_path)}})
    summary: dict[str, Any] = {"apply_run_id": run}
    _export(db, cfg, "run-1", summary, ["xlsx", "csv"])
    assert summary["exports"] == [str(tmp_path / "audit-run-1.csv")]
    assert summary["export_errors"][0]["error"] == "OSError: disk full"
    assert (tmp_path / "audit-run-1.csv").exists()


def test_export_of_one_run_and_unknown_format(tmp_path: Path) -> None:
    db = chain()
    with pytest.raises(UsageError):
        export(db, "xml", tmp_path / "a.xml")
    with pytest.raises(UsageError):
        export(db, "csv", tmp_path / "a.csv", run_id="apply-missing")


def test_the_export_format_follows_the_file_name(tmp_path: Path) -> None:
    """`recon audit export --out trail.xlsx` wrote CSV text into a .xlsx file (the format
    defaulted to csv), which no spreadsheet opens."""
    import polars as pl

    db = chain()
    info = export(db, None, tmp_path / "trail.xlsx")
    assert info["format"] == "xlsx" and (tmp_path / "trail.xlsx").read_bytes()[:2] == b"PK"
    assert export(db, None, tmp_path / "t.NDJSON")["format"] == "jsonl"
    assert pl.read_parquet(export(db, None, tmp_path / "t.parquet")["path"]).height == info["rows"]
    assert export(db, None, tmp_path / "trail.txt")["format"] == "csv"  # no format named: csv
    assert export(db, "jsonl", tmp_path / "trail.log")["format"] == "jsonl"
    with pytest.raises(UsageError, match="names the xlsx format, but the format asked for is csv"):
        export(db, "csv", tmp_path / "other.xlsx")
    assert not (tmp_path / "other.xlsx").exists()


# --------------------------------------------------------------------------- with the emulator


def _applied(crm: CrmEnv, tmp_path: Path) -> tuple[Any, Any, dict[str, str], str, str]:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ids = crm.hs_create(
        "companies",
        [{"name": f"Undo {tag} {i}", "domain": f"u{i}-{tag}.example"} for i in range(3)],
    )
    account = crm.sf_create("Account", [{"Name": f"Undo Acc {tag}", "Phone": "+1 555 0100"}])[0]
    before = {i: f"Undo {tag} {k}" for k, i in enumerate(ids)}
    items = [
        hs_update(
            i, "name", before[i], f"=cmd|' /C calc'!A0 {k}", crm.modified("hubspot", "companies", i)
        )
        for k, i in enumerate(ids)
    ]
    items.append(
        sf_update(
            account,
            "Phone",
            "+1 555 0100",
            "+1 555 0199",
            crm.modified("salesforce", "Account", account),
        )
    )
    plan = make_plan(db, items)
    result = apply_plan(db, cfg, plan_run_id=plan)
    assert result.applied == 4
    return cfg, db, before, account, result.run_id


def test_undo_restores_every_before_value(crm: CrmEnv, tmp_path: Path) -> None:
    cfg, db, before, account, run_id = _applied(crm, tmp_path)
    undo = build_undo_plan(db, run_id)
    assert undo["items"] == 4 and undo["irreversible"] == 0
    # the undo plan is reviewed like any plan: nothing applies before approval
    assert apply_plan(db, cfg, plan_run_id=undo["plan_run_id"]).items == 0
    # the review app's Plan tab knows an undo plan and approves its restores
    assert review.undo_plan_of(db) == run_id
    assert review.count_plan_approvals(db, action="create") == 0
    n = review.count_plan_approvals(db, action=None)
    assert n == 4
    review.approve_plan_items(db, action=None, reviewer="ana", expected=n)
    result = apply_plan(db, cfg, plan_run_id=undo["plan_run_id"])
    assert result.applied == 4 and result.stale == 0
    # the three HubSpot restores go in one batch: one read (stale check), one update
    assert result.api_calls["hubspot"] == 2, result.api_calls
    for rid, name in before.items():
        assert crm.hs_get("companies", rid, ["name"])["name"] == name
    assert crm.sf_get("Account", account, ["Phone"])["Phone"] == "+1 555 0100"
    assert verify(db).ok
    # the undo's audit rows hold bare values, as the apply's do
    rows = db.execute(
        "select field, before, after from audit where run_id = ? and outcome = 'confirmed' "
        "and crm = 'salesforce'",
        [result.run_id],
    ).fetchall()
    assert [(f, json.loads(a)) for f, _b, a in rows] == [("Phone", "+1 555 0100")]


def test_undo_keeps_the_opt_outs_an_apply_set(crm: CrmEnv, tmp_path: Path) -> None:
    """Undo restored every before-value: an opt-out recon had copied from the other CRM was
    unticked, resubscribing a person who had opted out. A consent flag is only ever set."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    contacts = crm.sf_create(
        "Contact",
        [
            {"LastName": f"Optout {tag} {k}", "Phone": "+1 555 0100", "HasOptedOutOfEmail": False}
            for k in range(2)
        ],
    )
    one, both = contacts
    items = [
        sf_update(
            one, "HasOptedOutOfEmail", False, True, crm.modified("salesforce", "Contact", one),
            obj="Contact",
        ),
        {  # one write of two fields: the phone is restored, the opt-out stays
            **sf_update(
                both, "Phone", "+1 555 0100", "+1 555 0199",
                crm.modified("salesforce", "Contact", both), obj="Contact",
            ),
            "field": None,
            "before": {"Phone": "+1 555 0100", "HasOptedOutOfEmail": False},
            "after": {"Phone": "+1 555 0199", "HasOptedOutOfEmail": True},
            "payload": {"fields": {"Phone": "+1 555 0199", "HasOptedOutOfEmail": True}},
        },
    ]  # fmt: skip
    result = apply_plan(db, cfg, plan_run_id=make_plan(db, items))
    assert result.applied == 2
    undo = build_undo_plan(db, result.run_id)
    assert undo["items"] == 2 and undo["consent_kept"] == 2
    rows = {
        r["record_id"]: r
        for r in db.query("select * from plan_items where run_id = ?", [undo["plan_run_id"]])
    }
    assert rows[one]["status"] == "blocked"
    assert "an opt-out is not undone" in json.loads(rows[one]["reason"])["consent_kept"]
    assert json.loads(rows[both]["payload"])["fields"] == {"Phone": "+1 555 0100"}
    n = review.count_plan_approvals(db, action=None)
    assert n == 1
    review.approve_plan_items(db, action=None, reviewer="ana", expected=n)
    assert apply_plan(db, cfg, plan_run_id=undo["plan_run_id"]).applied == 1
    for rid in contacts:
        assert crm.sf_get("Contact", rid, ["HasOptedOutOfEmail"])["HasOptedOutOfEmail"] is True
    assert crm.sf_get("Contact", both, ["Phone"])["Phone"] == "+1 555 0100"


def test_an_undo_plan_that_fails_leaves_no_run_behind(
    crm: CrmEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recon.audit

    _cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    plans = db.execute("select count(*) from runs where stage = 'plan'").fetchone()[0]

    def broken(item: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(recon.audit, "_undo_writes", broken)
    with pytest.raises(RuntimeError):
        build_undo_plan(db, run_id)
    assert db.execute("select count(*) from runs where stage = 'plan'").fetchone()[0] == plans


def test_an_apply_still_running_or_stopped_part_way_is_not_undone_yet(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """An undo of an apply still running built a plan of what was audited so far (and that
    plan became the one `recon apply` takes by default); one stopped part way the same."""
    from recon.errors import LockedError

    _cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    db.execute(
        "update runs set status = 'running', pid = ?, host = ?, ended_at = null where run_id = ?",
        [os.getpid(), __import__("socket").gethostname(), run_id],
    )
    with pytest.raises(LockedError, match="is still running"):
        build_undo_plan(db, run_id)
    db.execute("update runs set status = 'killed' where run_id = ?", [run_id])
    db.execute(
        "update journal set state = 'planned' where rowid = (select min(rowid) from journal "
        "where run_id = ?)",
        [run_id],
    )
    with pytest.raises(UsageError, match="recon apply --resume"):
        build_undo_plan(db, run_id)
    assert db.execute("select count(*) from runs where stage = 'plan' and "
                      "json_extract(config, '$.undo_of') is not null").fetchone()[0] == 0  # fmt: skip


def test_undo_approve_approves_the_undo_plan_not_the_latest_plan(
    crm: CrmEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recon undo --approve` approved "the latest plan": a plan another run finished between
    the undo plan and its approval had every item needing its own approval approved."""
    from recon.cli import main

    _cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    write_toml(crm, tmp_path)
    other = make_plan(db, [create("hubspot", "companies", {"name": f"Other {uid()}"})])
    approvals = db.execute("select count(*) from decisions").fetchone()[0]
    import recon.audit

    real = recon.audit.build_undo_plan

    def then_another_plan(*a: Any, **k: Any) -> Any:
        info = real(*a, **k)
        # another run finishes a plan right after: it is the latest now
        db.execute(
            "update runs set started_at = '2999-01-01T00:00:00.000Z' where run_id = ?", [other]
        )
        return info

    monkeypatch.setattr(recon.audit, "build_undo_plan", then_another_plan)
    monkeypatch.setenv("RECON_REVIEWER", "ana")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["undo", run_id, "--approve"])
    assert exit_.value.code == 0
    approved = {
        r[0]
        for r in db.execute(
            "select pi.run_id from decisions d join plan_items pi on pi.item_id = d.item_id "
            "where d.rowid > ?",
            [approvals],
        )
    }
    assert approved and other not in approved


def test_undo_waits_for_the_store_lock_like_any_stored_plan(
    crm: CrmEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recon undo` built and stored its plan while a `recon run` held the store lock, where
    `recon plan` is refused with exit 5."""
    import socket

    from recon.cli import main
    from recon.models import now_iso
    from recon.store import transaction

    _cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    write_toml(crm, tmp_path)
    plans = db.execute("select count(*) from runs where stage = 'plan'").fetchone()[0]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with transaction(db):
            db["locks"].upsert(
                {"name": "store", "holder": "recon run", "pid": holder.pid,
                 "host": socket.gethostname(), "started_at": now_iso(), "heartbeat_at": now_iso()},
                pk="name",
            )  # fmt: skip
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as exit_:
            main(["undo", run_id])
    finally:
        holder.kill()
        holder.wait()
    assert exit_.value.code == 5
    assert db.execute("select count(*) from runs where stage = 'plan'").fetchone()[0] == plans


def test_undo_is_stale_protected(crm: CrmEnv, tmp_path: Path) -> None:
    cfg, db, before, _account, run_id = _applied(crm, tmp_path)
    edited = next(iter(before))
    crm.edit("hubspot", "companies", edited, {"name": "Changed after the apply"})
    undo = build_undo_plan(db, run_id)
    approve_ids(
        db,
        [
            r["item_id"]
            for r in db.query(
                "select item_id from plan_items where run_id = ?", [undo["plan_run_id"]]
            )
        ],
    )
    result = apply_plan(db, cfg, plan_run_id=undo["plan_run_id"])
    assert result.stale == 1 and result.applied == 3
    assert crm.hs_get("companies", edited, ["name"])["name"] == "Changed after the apply"


def test_merges_are_irreversible_in_undo(crm: CrmEnv, tmp_path: Path) -> None:
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"M {tag} {i}"} for i in range(2)])
    plan = make_plan(db, [hs_merge(crm, ids)])
    run = apply_plan(db, cfg, plan_run_id=plan, confirm_merges=True)
    undo = build_undo_plan(db, run.run_id)
    assert undo["irreversible"] == 1
    row = next(iter(db.query("select * from plan_items where run_id = ?", [undo["plan_run_id"]])))
    assert row["status"] == "blocked" and "irreversible" in json.loads(row["reason"])


def test_secrets_never_reach_the_store_exports_or_logs(
    crm: CrmEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    ids = crm.hs_create("companies", [{"name": f"Secret {uid()}"}])
    crm.fault(
        kind="validation",
        side="hubspot",
        object="companies",
        match={"name": "x"},
        message=f"echo {HS_TOKEN}",
    )
    plan = make_plan(
        db, [hs_update(ids[0], "name", None, "x", crm.modified("hubspot", "companies", ids[0]))]
    )
    failed = apply_plan(db, cfg, plan_run_id=plan)
    assert failed.failed == {"validation": 1}
    error = db.execute("select error from journal where state = 'failed'").fetchone()[0]
    assert "echo ***" in error  # the CRM echoed the token; recon scrubbed it
    build_undo_plan(db, run_id)
    dump = json.dumps(
        {t: [dict(r) for r in db.query(f"select * from [{t}]")] for t in db.table_names()},
        default=str,
    )
    for fmt in ("csv", "jsonl", "parquet", "xlsx"):
        out = tmp_path / f"a.{fmt}"
        export(db, fmt, out)
        assert (
            HS_TOKEN.encode() not in out.read_bytes()
            and SF_SESSION.encode() not in out.read_bytes()
        )
    assert HS_TOKEN not in dump and SF_SESSION not in dump
    assert HS_TOKEN not in caplog.text and SF_SESSION not in caplog.text


# --------------------------------------------------------------------------- CLI


def cli(
    *args: str, cwd: Path, inp: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recon", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=inp,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def write_toml(crm: CrmEnv, tmp_path: Path) -> Path:
    path = tmp_path / "recon.toml"
    path.write_text(
        f'[store]\npath = "recon.db"\n[hubspot]\nbase_url = "{crm.url}"\naccess_token = "{HS_TOKEN}"\n'
        f'[salesforce]\ninstance_url = "{crm.url}"\nauth = "session"\nsession_id = "{SF_SESSION}"\n',
        encoding="utf-8",
    )
    return path


def test_cli_apply_audit_undo(crm: CrmEnv, tmp_path: Path) -> None:
    write_toml(crm, tmp_path)
    cfg = crm.config(tmp_path)
    db = open_store(tmp_path / "recon.db")
    assert cfg.store.path == tmp_path / "recon.db"
    name = f"Cli {uid()}"
    ids = crm.hs_create("companies", [{"name": name}])
    plan = make_plan(
        db,
        [
            hs_update(
                ids[0], "name", name, "Cli renamed", crm.modified("hubspot", "companies", ids[0])
            )
        ],
    )

    from recon.cli import _apply_question

    # the confirmation says what it would send
    question = _apply_question(db, plan, False)[0] or ""
    assert f"Write 1 approved change(s) of plan {plan} (update 1)" in question
    refused = cli("apply", cwd=tmp_path, inp="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    dry = cli("apply", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "would apply" in dry.stdout
    assert "note:" not in dry.stderr  # nothing was written since the last pull
    done = cli("apply", "--plan", plan, "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # a dry run of the plan the apply came from (built before it) proposes nothing again:
    # no note (a plan built after it, with no pull between, gets one: test_plan_run)
    after = cli("apply", "--plan", plan, "--dry-run", cwd=tmp_path)
    assert after.returncode == 0 and "note:" not in after.stderr
    head = anchor(db)
    assert head and head in done.stdout
    # applied already: nothing waits, and saying so records no apply run
    runs = db.execute("select count(*) from runs where stage = 'apply'").fetchone()[0]
    again = cli("apply", "--plan", plan, "--yes", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to apply" in " ".join(again.stdout.split())
    assert db.execute("select count(*) from runs where stage = 'apply'").fetchone()[0] == runs
    assert HS_TOKEN not in done.stdout + done.stderr

    ok = cli("audit", "verify", "--anchor", head, cwd=tmp_path)
    assert ok.returncode == 0 and "audit ok" in ok.stdout
    out = tmp_path / "audit.csv"
    exported = cli("audit", "export", "--format", "csv", "--out", str(out), cwd=tmp_path)
    assert exported.returncode == 0 and head in out.read_text(encoding="utf-8")

    run_id = next(
        iter(
            db.query(
                "select run_id from runs where stage = 'apply' and json_extract(config, '$.dry_run') = 0"
            )
        )
    )["run_id"]
    undo = cli("undo", run_id, cwd=tmp_path)
    assert undo.returncode == 0 and "undo plan" in undo.stdout and "Plan tab" in undo.stdout
    # the command it names runs as printed (it lacked the run id)
    assert f"`recon undo {run_id} --approve` (a new undo plan" in " ".join(undo.stdout.split())
    unnamed = cli("undo", run_id, "--approve", cwd=tmp_path, env={"RECON_REVIEWER": ""})
    assert unnamed.returncode == 2 and "reviewer" in unnamed.stderr
    approved = cli("undo", run_id, "--approve", cwd=tmp_path, env={"RECON_REVIEWER": "ana"})
    assert approved.returncode == 0 and "approved 1 restores as ana" in approved.stdout
    undo_plan = re.findall(r"plan-[\w-]+", approved.stdout)[0]
    restored = cli("apply", "--plan", undo_plan, "--yes", cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert crm.hs_get("companies", ids[0], ["name"])["name"] == name

    db.execute("update audit set after = 'forged' where seq = 1")
    bad = cli("audit", "verify", cwd=tmp_path)
    assert bad.returncode == 1 and "does not verify" in bad.stderr


def test_cli_apply_exit_4_on_partial_failure(crm: CrmEnv, tmp_path: Path) -> None:
    write_toml(crm, tmp_path)
    db = open_store(tmp_path / "recon.db")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"P {tag} {i}"} for i in range(2)])
    plan = make_plan(
        db,
        [
            hs_update(i, "name", None, f"P4 {tag} {k}", crm.modified("hubspot", "companies", i))
            for k, i in enumerate(ids)
        ],
    )
    crm.fault(kind="validation", side="hubspot", object="companies", match={"name": f"P4 {tag} 0"})
    result = cli("apply", "--plan", plan, "--yes", cwd=tmp_path)
    assert result.returncode == 4 and "validation" in result.stdout + result.stderr
    # the failed item is named: which record, which field, what the CRM said
    out = " ".join(result.stdout.split())
    assert "stale and failed items (1):" in out
    assert f"failed (validation): update hubspot companies {ids[0]} name:" in out
    run = re.findall(r"apply-[\w-]+", out)[0]
    assert f"`recon audit export --run {run} --out audit.csv`" in out


def test_cli_apply_names_the_stale_items(crm: CrmEnv, tmp_path: Path) -> None:
    write_toml(crm, tmp_path)
    db = open_store(tmp_path / "recon.db")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"S {tag} {i}"} for i in range(3)])
    snaps = {i: crm.modified("hubspot", "companies", i) for i in ids}
    plan = make_plan(
        db,
        [hs_update(i, "name", None, f"S2 {tag} {k}", snaps[i]) for k, i in enumerate(ids)],
    )
    crm.edit("hubspot", "companies", ids[0], {"name": "edited by a user"})
    crm.edit("hubspot", "companies", ids[2], {"name": "edited by a user too"})
    result = cli("apply", "--plan", plan, "--yes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "stale and failed items (2):" in out
    for i in (ids[0], ids[2]):
        now = crm.modified("hubspot", "companies", i)
        assert f"stale: update hubspot companies {i} name: changed at {now}, " in out
        assert f"reviewed as of {snaps[i]}" in out
    assert ids[1] not in out and "decide them again in `recon review`" in out
    # the command it names lists them all
    run = re.findall(r"apply-[\w-]+", out)[0]
    exported = cli("audit", "export", "--run", run, "--out", "audit.csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "audit.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["record_id"] for r in rows if r["outcome"] == "stale"} == {ids[0], ids[2]}


def test_cli_apply_budget_exit_6_then_resume(crm: CrmEnv, tmp_path: Path) -> None:
    toml = write_toml(crm, tmp_path)
    toml.write_text(
        toml.read_text() + "[budget]\nhubspot_calls = 2\n[apply]\nhubspot_batch_size = 1\n"
    )
    db = open_store(tmp_path / "recon.db")
    tag = uid()
    ids = crm.hs_create("companies", [{"name": f"B6 {tag} {i}"} for i in range(3)])
    plan = make_plan(
        db,
        [
            hs_update(
                i, "name", None, f"B6 {tag} {k} done", crm.modified("hubspot", "companies", i)
            )
            for k, i in enumerate(ids)
        ],
    )
    first = cli("apply", "--plan", plan, "--yes", cwd=tmp_path)
    assert first.returncode == 6 and "resume" in first.stderr and "not finished" in first.stdout
    for _ in range(4):
        again = cli("apply", "--plan", plan, "--yes", "--resume", cwd=tmp_path)
        if again.returncode == 0:
            break
        assert again.returncode == 6
    assert again.returncode == 0
    assert [crm.hs_get("companies", i, ["name"])["name"] for i in ids] == [
        f"B6 {tag} {k} done" for k in range(3)
    ]


def test_export_into_a_folder(tmp_path: Path) -> None:
    db = open_store(":memory:")
    into_existing = export(db, "csv", tmp_path)
    assert Path(into_existing["path"]) == tmp_path / "audit-all.csv"
    new_folder = export(db, "jsonl", f"{tmp_path / 'new'}/")
    assert Path(new_folder["path"]) == tmp_path / "new" / "audit-all.jsonl"
    assert Path(new_folder["path"]).is_file()


def test_a_second_undo_of_one_apply_needs_its_own_approval_and_finds_the_work_done(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Approvals are kept by item id: a second undo plan of the same apply has its own ids
    (the first one's approvals do not apply it), and its restores, already in place, are
    skipped, not stale."""
    cfg, db, before, _account, run_id = _applied(crm, tmp_path)
    first = build_undo_plan(db, run_id)
    review.approve_plan_items(db, action=None, reviewer="ana", expected=4)
    assert apply_plan(db, cfg, plan_run_id=first["plan_run_id"]).applied == 4
    second = build_undo_plan(db, run_id)
    assert apply_plan(db, cfg, plan_run_id=second["plan_run_id"]).items == 0  # not approved
    assert review.count_plan_approvals(db, action=None) == 4
    review.approve_plan_items(db, action=None, reviewer="ben", expected=4)
    again = apply_plan(db, cfg, plan_run_id=second["plan_run_id"])
    assert (again.applied, again.stale, again.failed, again.skipped) == (0, 0, {}, 4)
    assert review.count_plan_approvals(db, action=None) == 0
    for rid, name in before.items():
        assert crm.hs_get("companies", rid, ["name"])["name"] == name
    assert verify(db).ok


def test_an_undo_of_a_record_deleted_since_is_skipped_not_failed(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Nothing is left to restore on a record deleted (or merged away) in the CRM since: the
    restore is skipped as not found, and the apply is no partial failure to retry."""
    cfg, db, before, _account, run_id = _applied(crm, tmp_path)
    deleted = next(iter(before))
    crm.hs().crm.companies.basic_api.archive(deleted)
    undo = build_undo_plan(db, run_id)
    review.approve_plan_items(db, action=None, reviewer="ana", expected=4)
    result = apply_plan(db, cfg, plan_run_id=undo["plan_run_id"])
    assert (result.applied, result.failed, result.skipped) == (3, {}, 1)
    error = db.execute(
        "select error from audit where run_id = ? and outcome = 'skipped'", [result.run_id]
    ).fetchone()[0]
    assert "nothing to restore" in error


def test_a_cut_tail_is_found_without_an_anchor_from_the_apply_runs(
    crm: CrmEnv, tmp_path: Path
) -> None:
    """Every apply run keeps the anchor it ended on: deleting the newest rows (or all of them)
    no longer verifies, --anchor or not."""
    _cfg, db, _before, _account, run_id = _applied(crm, tmp_path)
    assert verify(db).ok
    db.execute("delete from audit where seq >= (select max(seq) - 1 from audit)")
    result = verify(db)
    assert not result.ok and run_id in result.problems[0] and "cut off" in result.problems[0]
    db.execute("delete from audit")
    assert not verify(db).ok


def test_undo_of_a_dry_run_says_it_was_a_dry_run(crm: CrmEnv, tmp_path: Path) -> None:
    """An undo of a dry run said "confirmed no writes", as if writes had been tried."""
    cfg = crm.config(tmp_path)
    db = crm.db(cfg)
    ids = crm.hs_create("companies", [{"name": f"Dry {uid()}"}])
    plan = make_plan(
        db, [hs_update(ids[0], "name", None, "Dry 2", crm.modified("hubspot", "companies", ids[0]))]
    )
    dry = apply_plan(db, cfg, plan_run_id=plan, dry_run=True)
    with pytest.raises(UsageError, match="was a dry run: it wrote nothing") as exc:
        build_undo_plan(db, dry.run_id)
    assert "recon status --runs apply" in (exc.value.hint or "")
