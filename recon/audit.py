"""The append-only, hash-chained audit of every write; exports; undo plans.

Every write apply makes gets an ``audit`` row before it is sent (outcome
``intended``) and another once its outcome is known (``confirmed``, ``failed``,
``stale``, ``skipped``). Each row carries the run, plan item, reviewer and
decision time, CRM, object, record id and link, field, before and after values,
outcome and error. Rows are chained: ``hash = sha256(prev_hash + canonical row)``,
so :func:`verify` detects any edited or deleted row; the latest hash, the
*anchor*, is printed in every run summary and written into every export, and
``verify(anchor=...)`` also detects rows cut off the end.

Exports (:func:`export`) write csv, jsonl, parquet or xlsx with the anchor in every
row; csv/xlsx cells a spreadsheet would run as a formula are escaped.
:func:`build_undo_plan` turns an apply run into a new plan restoring the
before-values (merges and creates are marked irreversible).

Examples:
    >>> from recon.store import open_store, transaction
    >>> db = open_store(":memory:")
    >>> with transaction(db):
    ...     _ = append(db, [{"run_id": "apply-1", "item_id": "i1", "outcome": "intended"}])
    >>> verify(db).ok
    True
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import AuditError, LockedError, OutputError, UsageError, write_failure
from .models import canonical_json, file_in_the_way, now_iso, stable_id
from .plan_values import is_opt_out, opted_out
from .store import (
    UNFINISHED_APPLY,
    finish_run,
    resolve_run_id,
    settle_dead_runs,
    start_run,
    transaction,
)

__all__ = [
    "AUDIT_FIELDS",
    "SUFFIX_FORMATS",
    "VerifyResult",
    "anchor",
    "append",
    "build_undo_plan",
    "escape_formula",
    "export",
    "export_format",
    "export_path",
    "is_folder",
    "verify",
    "write_table",
]

log = logging.getLogger(__name__)

#: the columns every audit row carries, in export order (``seq``, ``prev_hash``, ``hash`` besides)
AUDIT_FIELDS = (
    "run_id",
    "item_id",
    "reviewer",
    "decided_at",
    "crm",
    "object",
    "record_id",
    "record_link",
    "field",
    "before",
    "after",
    "outcome",
    "error",
    "at",
)
GENESIS = ""
FORMATS = ("csv", "jsonl", "parquet", "xlsx")


def _row_hash(prev_hash: str, seq: int, row: dict[str, Any]) -> str:
    content = {"seq": seq, **{k: row.get(k) for k in AUDIT_FIELDS}}
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return canonical_json(value)


def append(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> str:
    """Append rows to the chain; call inside :func:`recon.store.transaction`. Returns the new anchor.

    ``before``/``after`` that are not strings are stored as canonical JSON.
    """
    last = db.execute("select seq, hash from audit order by seq desc limit 1").fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    out = []
    for row in rows:
        seq += 1
        clean = {k: _text(row.get(k)) for k in AUDIT_FIELDS}
        clean["at"] = clean["at"] or now_iso()
        digest = _row_hash(prev, seq, clean)
        out.append({"seq": seq, **clean, "prev_hash": prev, "hash": digest})
        prev = digest
    if out:
        db["audit"].insert_all(out)
    return prev


def anchor(db: sqlite_utils.Database) -> str | None:
    """The latest hash of the chain (None while the audit is empty).

    Examples:
        >>> from recon.store import open_store
        >>> anchor(open_store(":memory:")) is None
        True
    """
    row = db.execute("select hash from audit order by seq desc limit 1").fetchone()
    return row[0] if row else None


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`."""

    ok: bool
    rows: int
    anchor: str | None
    problems: list[str] = field(default_factory=list)


def verify(db: sqlite_utils.Database, *, anchor: str | None = None) -> VerifyResult:
    """Recompute the chain; report edited, deleted or reordered rows, and a cut tail.

    Args:
        anchor: a hash printed by an earlier run or export; it must still be in the
            chain (else rows were cut off the end, or the anchor belongs elsewhere). The
            anchors the store's apply runs ended on are checked the same way.

    Raises:
        UsageError: ``anchor`` is not a hash (64 hex digits).

    Examples:
        >>> from recon.store import open_store
        >>> verify(open_store(":memory:")).ok
        True
    """
    if anchor is not None:
        anchor = anchor.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", anchor):
            raise UsageError(
                f"--anchor {anchor!r} is not an audit hash",
                hint="give the 64 hex digits an apply run, `recon audit verify` or an export "
                "printed as its anchor",
            )
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    hashes: set[str] = set()
    count = 0
    for row in db.query("select * from audit order by seq"):
        count += 1
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(f"row {expected_seq}..{seq - 1} missing (sequence jumps to {seq})")
        if row["prev_hash"] != prev:
            problems.append(
                f"row {seq}: previous hash does not match row {seq - 1} (a row was deleted or edited)"
            )
        digest = _row_hash(row["prev_hash"] or "", seq, row)
        if digest != row["hash"]:
            problems.append(f"row {seq}: content does not match its hash (the row was edited)")
        prev = row["hash"]
        hashes.add(row["hash"])
        expected_seq = seq + 1
    if anchor is not None and anchor not in hashes:
        problems.append(
            f"anchor {anchor[:16]}… is not in the chain: the audit is empty (a new store, or "
            "every row was deleted)"
            if not count
            else f"anchor {anchor[:16]}… is not in the chain: rows were cut off the end (or the "
            "anchor is from another store)"
        )
    # every apply run kept the anchor it ended on: the chain must still hold each one (a cut
    # tail, or the whole table emptied, shows even without --anchor)
    for run_id, kept in db.execute(
        "select run_id, json_extract(summary, '$.anchor') from runs where stage = 'apply' "
        "and json_extract(summary, '$.anchor') is not null order by started_at"
    ).fetchall():
        if kept not in hashes:
            problems.append(
                f"apply run {run_id} ended on anchor {str(kept)[:16]}…, which is no longer in the "
                "chain: rows were cut off the end"
            )
            break
    return VerifyResult(ok=not problems, rows=count, anchor=prev or None, problems=problems)


# --------------------------------------------------------------------------- exports

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Prefix a text cell a spreadsheet would run as a formula with an apostrophe.

    Examples:
        >>> escape_formula("=HYPERLINK(\\"http://x\\")")
        '\\'=HYPERLINK("http://x")'
        >>> escape_formula("Acme")
        'Acme'
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _rows(db: sqlite_utils.Database, run_id: str | None) -> list[dict[str, Any]]:
    if run_id is None:
        return [dict(r) for r in db.query("select * from audit order by seq")]
    run = resolve_run_id(db, run_id, "apply")
    return [dict(r) for r in db.query("select * from audit where run_id = ? order by seq", [run])]


#: file name endings that name an export format
SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                  ".xlsx": "xlsx"}  # fmt: skip


def is_folder(out: str | Path) -> bool:
    """Whether an export target names a folder: an existing one, or a path ending in ``/``."""
    return str(out).endswith(("/", os.sep)) or Path(out).is_dir()


def export_path(out: str | Path, name: str) -> Path:
    """The file an export to ``out`` writes: ``out``, or ``name`` inside it when it is a folder."""
    return Path(out) / name if is_folder(out) else Path(out)


def export_format(fmt: str | None, out: str | Path) -> str:
    """The format of an export to ``out``: ``fmt``, else the one its file name ends in, else
    csv. A file name naming another format than ``fmt`` is refused (a ``.xlsx`` file holding
    CSV text opens nowhere).

    Examples:
        >>> export_format(None, "trail.xlsx"), export_format(None, "exports/"), export_format("jsonl", "a.txt")
        ('xlsx', 'csv', 'jsonl')
        >>> export_format("XLSX", "trail.xlsx")
        'xlsx'
    """
    named = None if is_folder(out) else SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        return named or "csv"
    fmt = fmt.strip().lower()  # as file names are read: .XLSX is xlsx
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}", hint="use one of: " + ", ".join(FORMATS))
    if named is not None and named != fmt:
        raise UsageError(
            f"--out {out} names the {named} format, but the format asked for is {fmt}",
            hint=f"drop --format (the file name decides), or name the file .{fmt}",
        )
    return fmt


def export(
    db: sqlite_utils.Database,
    fmt: str | None,
    out: str | Path,
    *,
    run_id: str | None = None,
    option: str = "--out",
) -> dict[str, Any]:
    """Write the audit (all of it, or one apply run's rows) to ``out``.

    Every row carries ``anchor``: the chain's latest hash at export time. In csv
    and xlsx, cells starting with ``= + - @`` tab or CR are escaped with ``'``.

    Args:
        fmt: ``csv`` | ``jsonl`` | ``parquet`` | ``xlsx``; None: the one ``out``'s name ends
            in, else csv (see :func:`export_format`).
        out: the file to write, or a folder (an existing one, or a path ending in ``/``) to
            write ``audit-<run or all>.<format>`` into.
        run_id: an apply run (or its parent ``recon run``); None for everything.
        option: what named ``out``, for the hint of an error (``recon run`` writes into
            ``[store] exports_dir``: it has no ``--out``).

    Returns:
        ``{"path", "rows", "anchor", "format"}``, and ``long_cells`` when an xlsx cell held
        more than a spreadsheet's 32,767 characters (its whole value is then in the
        workbook's ``long values`` sheet, see :func:`_write_xlsx`).

    Raises:
        UsageError: unknown format or run, or a file name naming another format.
        OutputError: the file cannot be written.
        AuditError: an xlsx export would have more rows than a sheet holds.

    Examples:
        >>> from recon.store import open_store
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.jsonl")
        >>> export(open_store(":memory:"), "jsonl", path)["rows"]
        0
    """
    import polars as pl

    fmt = export_format(fmt, out)
    rows = _rows(db, run_id)
    head = anchor(db)
    columns = ["seq", *AUDIT_FIELDS, "prev_hash", "hash", "anchor"]
    records = [{**{c: r.get(c) for c in columns if c != "anchor"}, "anchor": head} for r in rows]
    if fmt in {"csv", "xlsx"}:
        records = [{k: escape_formula(v) for k, v in r.items()} for r in records]
    schema = {c: (pl.Int64 if c == "seq" else pl.Utf8) for c in columns}
    frame = (
        pl.DataFrame(records, schema=schema, orient="row")
        if records
        else pl.DataFrame(schema=schema)
    )
    path = export_path(out, f"audit-{run_id or 'all'}.{fmt}")
    split = write_table(
        frame,
        fmt,
        path,
        what="the audit export",
        sheet="audit",
        meta=[("anchor", head or "")],
        option=option,
    )
    info = {"path": str(path), "rows": len(records), "anchor": head, "format": fmt}
    if split:
        info["long_cells"] = split
    return info


#: the most characters a spreadsheet cell holds (Excel's limit; openpyxl cuts longer text)
XLSX_CELL_MAX = 32_767
#: the most rows a spreadsheet sheet holds (Excel's limit), the header row included
XLSX_ROWS_MAX = 1_048_576


def write_table(
    frame: Any,
    fmt: str,
    path: Path,
    *,
    what: str,
    sheet: str,
    meta: list[tuple[str, str]] | None = None,
    option: str = "--out",
) -> int:
    """Write ``frame`` to ``path`` as csv, jsonl, parquet or xlsx (cells already escaped);
    how many xlsx cells were too long for one cell (see :func:`_write_xlsx`).

    Args:
        what: what is written, for errors ("the audit export").
        sheet: the xlsx sheet of the rows.
        meta: rows of the xlsx sheet ``anchor`` (``exported_at`` is added).
        option: the option that named ``path``, for the hint of an error.

    Raises:
        OutputError: the file cannot be written there (naming it, why, and ``option``).
        AuditError: a workbook would have more rows than a sheet holds.
    """
    blocking = file_in_the_way(path)
    if blocking is not None:
        raise OutputError.writing(what, path, f"{blocking} is a file, not a folder", option=option)
    if fmt == "xlsx" and frame.height >= XLSX_ROWS_MAX:
        raise AuditError(
            f"cannot write {what} {path}: {frame.height:,} rows, more than a spreadsheet sheet "
            f"holds ({XLSX_ROWS_MAX - 1:,})",
            hint="write csv, jsonl or parquet instead",
        )
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.write_csv(path)
        elif fmt == "jsonl":
            frame.write_ndjson(path)
        elif fmt == "parquet":
            frame.write_parquet(path)
        else:
            return _write_xlsx(frame, path, meta or [], sheet=sheet)
    except Exception as exc:
        reason = write_failure(exc)
        if reason is None:
            raise
        if not existed and path.is_file():  # no half-written file is left behind
            path.unlink(missing_ok=True)
        raise OutputError.writing(what, path, reason, option=option) from None
    return 0


#: the length of each part of a longer value in the workbook's ``long values`` sheet
_XLSX_PART = 32_000


def _write_xlsx(
    frame: Any, path: Path, meta: list[tuple[str, str]], *, sheet: str = "audit"
) -> int:
    """Write the workbook; how many cells were too long for one spreadsheet cell.

    A value over :data:`XLSX_CELL_MAX` characters (a 32,000-character Salesforce
    description is longer as the audit's JSON) is not cut silently: its cell holds the
    start and says where the rest is, and the sheet ``long values`` holds the whole value
    in parts of 32,000 characters (the first column's value, e.g. ``seq``, then ``column``,
    ``part``, ``of``, ``text``), to join in order. ``meta`` rows (and ``exported_at``) go to
    the sheet ``anchor``.
    """
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: Any) -> Any:
        # control characters a CRM's error text may hold cannot be written to a workbook:
        # they are spelt out (\x0b) instead
        if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
            return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
        return value

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(frame.columns)
    long: list[list[Any]] = []
    columns = frame.columns
    for row in frame.iter_rows():
        values = [cell(v) for v in row]
        for k, v in enumerate(values):
            if isinstance(v, str) and len(v) > XLSX_CELL_MAX:
                parts = [v[i : i + _XLSX_PART] for i in range(0, len(v), _XLSX_PART)]
                long += [[row[0], columns[k], n, len(parts), t] for n, t in enumerate(parts, 1)]
                values[k] = (
                    f"{parts[0]}… [cut: {len(v):,} characters in all, too many for a cell; "
                    f"the whole value is in the sheet 'long values', {columns[0]} {row[0]}, "
                    f"column {columns[k]}]"
                )
        ws.append(values)
    info = wb.create_sheet("anchor")
    for key, value in meta:
        info.append([key, value])
    info.append(["exported_at", now_iso()])
    if long:
        parts_sheet = wb.create_sheet("long values")
        parts_sheet.append([columns[0], "column", "part", "of", "text"])
        for n, entry in enumerate(long, start=2):
            parts_sheet.append(entry[:4])
            # a part may start with "=" (a slice of an escaped value): stored as text, never
            # as a formula
            text = parts_sheet.cell(row=n, column=5, value=entry[4])
            text.data_type = "s"
    # saved in memory first: a workbook that fails part way to disk leaves its zip archive
    # open, whose clean-up then fails again with a traceback of its own
    buffer = io.BytesIO()
    wb.save(buffer)
    path.write_bytes(buffer.getbuffer())
    return len({(e[0], e[1]) for e in long})


# --------------------------------------------------------------------------- undo

_IRREVERSIBLE = {
    "merge": "merges cannot be undone",
    "create": "a created record is not deleted by undo",
}


_UNDO_SEQ = 50  # the run order of field updates (plan_build.SEQ["update"])


def build_undo_plan(
    db: sqlite_utils.Database, run_id: str, *, reviewer: str | None = None
) -> dict[str, Any]:
    """Build a plan restoring the before-values of an apply run's confirmed writes.

    The plan is a new ``plan`` run whose items go through review and apply like
    any other: each restores one field to its before-value, is stale-protected
    (it applies only while the field still holds the value the apply wrote) and
    audited. Merges and creates become ``blocked`` items marked irreversible.

    Args:
        run_id: an apply run, or a parent ``recon run`` (its apply child is used).
        reviewer: recorded in the plan run's config.

    Returns:
        ``{"plan_run_id", "items", "irreversible"}``.

    Raises:
        UsageError: no such run, or nothing to undo.
    """
    apply_run = resolve_run_id(db, run_id, "apply")
    if apply_run is None:
        raise UsageError(
            f"no apply run {run_id!r}", hint="`recon status --runs apply` lists the apply runs"
        )
    settle_dead_runs(db)  # a run whose process is gone is not "still running"
    if db.execute("select status from runs where run_id = ?", [apply_run]).fetchone()[0] == (
        "running"
    ):
        # an undo plan now would restore only what was audited so far (and become the plan
        # `recon apply` and the review app take by default)
        raise LockedError(
            f"apply run {apply_run} is still running: undo it once it has finished",
            hint="wait for it (`recon status` shows it), then run `recon undo` again",
        )
    if db.execute(
        f"select 1 from runs r where r.run_id = ? and {UNFINISHED_APPLY}", [apply_run]
    ).fetchone():
        raise UsageError(
            f"apply run {apply_run} stopped before its end: items of it are still to be sent or "
            "checked",
            hint="finish it with `recon apply --resume` (it checks in the CRM what was sent), "
            "then undo it; to send none of the rest, first mark their links or clusters "
            '"Defer" in review ("Different"/"Distinct" would teach matching they are '
            "no match): the resumed apply skips what is no longer approved (creates approved on "
            "their own are still sent)",
        )
    confirmed = [
        dict(r)
        for r in db.query(
            "select item_id, crm_record_id, updated_at, item from journal "
            "where run_id = ? and state = 'confirmed' and item is not null order by updated_at, item_id",
            [apply_run],
        )
    ]
    if not confirmed:
        dry = db.execute(
            "select coalesce(json_extract(config, '$.dry_run'), 0) from runs where run_id = ?",
            [apply_run],
        ).fetchone()
        if dry and dry[0]:
            raise UsageError(
                f"apply run {apply_run} was a dry run: it wrote nothing, so there is nothing to "
                "undo",
                hint="`recon status --runs apply` lists the apply runs (dry runs marked); undo "
                "one that wrote",
            )
        raise UsageError(f"apply run {apply_run} confirmed no writes: nothing to undo")
    # one transaction: a failure leaves no empty plan run behind (the review app would show it)
    with transaction(db):
        plan_run = start_run(db, "plan", config={"undo_of": apply_run, "reviewer": reviewer})
        items = []
        irreversible = consent = 0
        for row in confirmed:
            item = json.loads(row["item"])
            action, system = item["action"], item["system"]
            payload = item.get("payload") or {}
            reason: dict[str, Any] = {
                "rule": "undo",
                "why": f"restore the value before apply run {apply_run}",
                "undo_of": {"run_id": apply_run, "item_id": row["item_id"]},
            }
            status = "proposed"
            if action in _IRREVERSIBLE or (action == "associate" and system == "hubspot"):
                status = "blocked"
                reason["irreversible"] = _IRREVERSIBLE.get(
                    action, "HubSpot associations are not removed by undo"
                )
                irreversible += 1
            writes = _undo_writes(item)
            kept = _consent_kept(writes) if status == "proposed" else []
            if kept and len(kept) == len(writes["restore"]):
                # an opt-out recon set is not taken back: the person opted out in one CRM
                # (recon only ever sets a consent flag); unticking it would resubscribe them
                status = "blocked"
                reason["consent_kept"] = (
                    f"{', '.join(kept)}: an opt-out is not undone (recon copied a person's "
                    "opt-out from the other CRM); untick it in the CRM by hand if it was wrong"
                )
                consent += 1
            elif kept:  # the other fields of the write are restored; the opt-out stays
                for name in kept:
                    del writes["restore"][name], writes["expect"][name]
                reason["consent_kept"] = f"{', '.join(kept)}: an opt-out is not undone"
                consent += 1
            expect: Any = writes["expect"]
            restore: Any = writes["restore"]
            field = item.get("field")
            if status == "proposed" and field in restore and len(restore) == 1:
                # one field: before and after as bare values, as every other update has them
                expect, restore = expect.get(field), restore[field]
            # one id per undo plan: an approval given to an earlier undo of the same apply
            # (decisions are kept by item id) must not approve this one
            item_id = stable_id("undo", apply_run, row["item_id"], plan_run, prefix="undo-")
            key = "properties" if system == "hubspot" else "fields"
            items.append(
                {
                    "run_id": plan_run,
                    "item_id": item_id,
                    "action": "update" if status == "proposed" else action,
                    "system": system,
                    "object": item["object"],
                    "record_id": row["crm_record_id"] or item.get("record_id"),
                    "field": item.get("field"),
                    "before": canonical_json(expect),
                    "after": canonical_json(restore),
                    "snapshot_modified_at": row["updated_at"],
                    "link_item_id": None,
                    # an undo is approved on its own (a `plan` decision on the undo item)
                    "requires": canonical_json([item_id]),
                    "reason": canonical_json(reason),
                    "status": status,
                    # one phase: apply batches restores at the API maximums (a seq per item
                    # made a batch of each)
                    "seq": _UNDO_SEQ,
                    "payload": canonical_json(
                        {
                            key: writes["restore"],
                            "expect": writes["expect"],
                            "undo_of": row["item_id"],
                        }
                        if status == "proposed"
                        else payload
                    ),
                }
            )
        db["plan_items"].insert_all(items, pk=("run_id", "item_id"))
        finish_run(
            db,
            plan_run,
            summary={
                "undo_of": apply_run,
                "items": len(items),
                "irreversible": irreversible,
                "consent_kept": consent,
            },
        )
    return {
        "plan_run_id": plan_run,
        "items": len(items),
        "irreversible": irreversible,
        "consent_kept": consent,
    }


def _consent_kept(writes: dict[str, dict[str, Any]]) -> list[str]:
    """The consent flags a write ticked (opted a person out): an undo leaves them set.

    Examples:
        >>> _consent_kept({"restore": {"HasOptedOutOfEmail": False, "Phone": "1"},
        ...                "expect": {"HasOptedOutOfEmail": True, "Phone": "2"}})
        ['HasOptedOutOfEmail']
        >>> _consent_kept({"restore": {"hs_email_optout": "true"}, "expect": {"hs_email_optout": "false"}})
        []
    """
    return [
        name
        for name, value in writes["expect"].items()
        if is_opt_out(name) and opted_out(value) and not opted_out(writes["restore"].get(name))
    ]


def _undo_writes(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields an undo restores (``restore``) and the values it expects to find (``expect``)."""
    payload = item.get("payload") or {}
    written = dict(payload.get("properties") or payload.get("fields") or {})
    fname = item.get("field")
    if item["action"] == "associate":
        fname = fname or "AccountId"
        written = {fname: written.get(fname, item.get("after"))}
    if not written and fname:
        written = {fname: item.get("after")}
    before = item.get("before")
    if len(written) == 1:
        only = next(iter(written))
        restore = {only: before.get(only) if isinstance(before, dict) else before}
    else:
        restore = {f: (before or {}).get(f) if isinstance(before, dict) else None for f in written}
    return {"restore": restore, "expect": written}
