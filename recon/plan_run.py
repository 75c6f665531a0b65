"""Run a plan: load the store view, resolve mappings, compute, store in one transaction.

:func:`run_build` is the body of :func:`recon.plan.build_plan`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from .errors import NoMatchRun, PlanError, UsageError
from .mapping import resolve_mappings
from .plan import PlanResult, gc_paused, plan_counts
from .plan_build import Planner, run_order
from .plan_item import ITEM_KEYS, FieldWrite, Item, write_row
from .plan_load import load_view
from .store import FINISHED, UNDO_PLAN, finish_run, resolve_run_id, start_run, transaction

__all__ = ["ITEM_COLUMNS", "export_items", "items_format", "render_plan", "run_build"]

log = logging.getLogger(__name__)

#: rows encoded and inserted at a time (the encoded rows of a whole plan are never held at once)
_INSERT_CHUNK = 50_000
_JSON_COLS = frozenset({"before", "after", "requires", "reason", "payload"})
_INSERT_COLS = ("run_id", *ITEM_KEYS)


@gc_paused
def run_build(
    db: sqlite_utils.Database,
    cfg: Any,
    *,
    match_run_id: str | None,
    sample: int | None,
    parent_run_id: str | None,
    dry_run: bool,
    schemas: dict[tuple[str, str], list[dict[str, Any]]] | None,
) -> PlanResult:
    """Load, compute and (unless ``dry_run``) store a plan run; see :func:`recon.plan.build_plan`."""
    started = time.perf_counter()
    if sample is not None and sample < 1:
        raise PlanError(f"--sample must be at least 1, got {sample}")
    mrid = resolve_run_id(db, match_run_id, "match", finished=True)
    if mrid is None:
        raise NoMatchRun("there is no match run to plan from", hint="run `recon match` first")
    # campaign memberships: a mapping's values, and associated records for most_associated
    campaigns = bool(cfg.mapping.campaign_property) or cfg.mapping.master_rule == "most_associated"
    view = load_view(db, mrid, campaigns=campaigns)
    chk = resolve_mappings(cfg.mapping, schemas if schemas is not None else view.schemas)
    planner = Planner(view, chk, cfg, sample)
    # made order: each item's values still lie together in memory; the rows are encoded
    # in run order, a chunk at a time (the large demo's 1.6M rows: the same time as
    # encoding all in made order, 1.2 GB less memory)
    created = planner.compute()
    order = run_order(created)
    items = list(map(created.__getitem__, order))
    result = PlanResult(
        run_id=None,
        match_run_id=mrid,
        counts=plan_counts(created),  # the same counts, items visited in memory order
        skipped=dict(planner.skipped),
        warnings=_synced_only(chk.warnings, cfg) + planner.gap_warnings() + written_since_pull(db),
        items=items,
        pinned_links=list(view.pinned),
    )
    # the records are no longer needed: their memory is reused for the stored rows
    del planner, view
    if dry_run:
        del created
        result.seconds = time.perf_counter() - started
        return result
    run_id = start_run(
        db,
        "plan",
        parent_id=parent_run_id,
        config={
            "match_run_id": mrid,
            "sample": sample,
            "mapping": cfg.mapping.model_dump(mode="json"),
            "connector_active": cfg.hubspot.salesforce_connector_active,
            "mappings": [m.to_dict() for m in chk.mappings],
        },
    )
    result.run_id = run_id
    sql = f"insert into plan_items ({', '.join(_INSERT_COLS)}) values ({', '.join('?' * len(_INSERT_COLS))})"
    try:
        del created
        with transaction(db):
            before = db.execute("select coalesce(max(rowid), 0) from plan_items").fetchone()[0]
            for k in range(0, len(items), _INSERT_CHUNK):
                db.conn.executemany(sql, _rows(run_id, items[k : k + _INSERT_CHUNK]))
            last = db.execute("select coalesce(max(rowid), 0) from plan_items").fetchone()[0]
            result.seconds = time.perf_counter() - started
            summary = result.summary()
            if items and last - before == len(items):
                # the rows were given consecutive rowids in run order: the review app pages
                # through them by rowid instead of sorting the run (see review.plan_page)
                summary["rowids"] = [before + 1, last]
            finish_run(
                db,
                run_id,
                status="ok",
                # the counts per action, object, system and status too: the review app shows
                # them without grouping a large plan's rows again (see review.plan_item_counts)
                summary=summary,
            )
    except Exception as exc:
        finish_run(db, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    log.info(
        "plan %s: %d items from match run %s in %.2f s", run_id, len(items), mrid, result.seconds
    )
    return result


def _synced_only(warnings: list[tuple[str, str]], cfg: Any) -> list[tuple[str, str]]:
    """The mapping warnings, less "no schema stored" for an object the config leaves out of
    the sync (no pull reads its schema: the hint to pull would not help).

    Examples:
        >>> from recon.config import ReconConfig
        >>> cfg = ReconConfig()
        >>> cfg.salesforce.objects = ["Account", "Contact"]
        >>> _synced_only([("schemas.salesforce.Lead", "no schema stored"), ("x", "y")], cfg)
        [('x', 'y')]
    """
    out = []
    for path, msg in warnings:
        head, _, rest = path.partition("schemas.")
        source, _, obj = rest.partition(".")
        if not head and source in ("hubspot", "salesforce") and not cfg.syncs(source, obj):
            continue
        out.append((path, msg))
    return out


def written_since_pull(
    db: sqlite_utils.Database, plan_run_id: str | None = None
) -> list[tuple[str, str]]:
    """A warning when an apply wrote records after the last pull began: the store still holds
    those records as they were, so the plan proposes again what was written (apply then
    finds the values in place and skips them; `--dry-run` counts them).

    ``plan_run_id``: said of that plan, built already: only applies before it count, and an
    undo plan (which restores, and proposes nothing again) gets no warning.

    Examples:
        >>> from recon.store import open_store
        >>> written_since_pull(open_store(":memory:"))
        []
    """
    before_plan, params = "", list(FINISHED)
    if plan_run_id is not None:
        plan = db.execute(
            f"select started_at, {UNDO_PLAN} from runs where run_id = ?", [plan_run_id]
        ).fetchone()
        if plan is None or plan[1]:
            return []
        before_plan, params = " and r.started_at < ?", [*params, plan[0]]
    row = db.execute(
        "select count(distinct j.crm_record_id), max(r.run_id) from runs r "
        "join journal j on j.run_id = r.run_id and j.state = 'confirmed' "
        "where r.stage = 'apply' and r.started_at > coalesce((select max(started_at) from runs "
        f"where stage = 'pull' and status in ({', '.join('?' * len(FINISHED))})), ''){before_plan}",
        params,
    ).fetchone()
    if not row or not row[0]:
        return []
    return [
        (
            "store",
            f"apply run {row[1]} (and any other since the last pull) wrote {row[0]:,} record(s) "
            "the store still holds as pulled before: this plan proposes again what was written; "
            "run `recon pull` first",
        )
    ]


def _rows(run_id: str, items: list[Item]) -> list[tuple[Any, ...]]:
    """``plan_items`` rows of ``items`` (JSON columns encoded)."""
    # the JSON columns are encoded inline (one call per value, no helper): for ~1.4M values
    # the helper's call overhead alone was a second; field writes encode their parts
    dumps = orjson.dumps
    rows: list[tuple[Any, ...]]
    try:
        rows = [
            write_row(run_id, i)
            if type(i) is FieldWrite
            else (
                run_id,
                i["item_id"],
                i["action"],
                i["system"],
                i["object"],
                i["record_id"],
                i["field"],
                None if (b := i["before"]) is None else dumps(b).decode(),
                None if (a := i["after"]) is None else dumps(a).decode(),
                i["snapshot_modified_at"],
                i["link_item_id"],
                None if (r := i["requires"]) is None else dumps(r).decode(),
                None if (x := i["reason"]) is None else dumps(x).decode(),
                i["status"],
                i["seq"],
                None if (y := i["payload"]) is None else dumps(y).decode(),
            )
            for i in items
        ]
    except TypeError:  # a value JSON has no type for, or a non-text key: the general encoder
        rows = [
            (
                run_id,
                *[
                    None if (v := i[c]) is None else _dumps_any(v) if c in _JSON_COLS else v
                    for c in _INSERT_COLS[1:]
                ],
            )
            for i in items
        ]
    return rows


#: the columns of an exported plan (``recon plan --items``), one row per item in run order
ITEM_COLUMNS = (
    "item_id", "seq", "action", "system", "object", "record_id", "field", "before", "after",
    "status", "why", "rule", "mapping", "score", "tier", "merge_victims", "create_source",
    "conflict_with", "link_item_id", "requires", "snapshot_modified_at", "plan_run_id",
)  # fmt: skip


def items_format(out: str | Path, fmt: str | None = None) -> str:
    """The format of a plan items export to ``out``: ``fmt``, else the file's extension (a
    folder gets csv); an empty name, ``-`` or another extension is refused.

    Raises:
        UsageError: no usable file name.

    Examples:
        >>> items_format("plan.xlsx"), items_format("exports/")
        ('xlsx', 'csv')
    """
    from .audit import SUFFIX_FORMATS, export_format, is_folder

    text = str(out).strip()
    if text in ("", "-"):
        raise UsageError(
            "--items needs a file or folder name", hint="e.g. --items plan.xlsx (or plan.csv)"
        )
    if fmt is None and not is_folder(out) and Path(text).suffix.lower() not in SUFFIX_FORMATS:
        raise UsageError(
            f"--items {out}: no items format ends in {Path(text).suffix or '(no extension)'}",
            hint="name the file .csv, .jsonl, .parquet or .xlsx",
        )
    return export_format(fmt, out)


def export_items(result: PlanResult, out: str | Path, fmt: str | None = None) -> dict[str, Any]:
    """Write a plan's items, one row each in run order, to ``out`` (csv, jsonl, parquet or
    xlsx: ``fmt``, else the file name's extension, else csv): the change list a person signs
    off in a spreadsheet. ``before``/``after`` are text as it reads, other values JSON
    (``requires`` is a JSON list); ``why``, ``rule``,
    ``mapping``, ``score`` and ``tier`` come from the item's reason. In csv and xlsx, cells
    starting with ``= + - @`` tab or CR are escaped with ``'``.

    Returns:
        ``{"path", "rows", "format"}``.

    Raises:
        UsageError: unknown format, or a file name naming another one.
        OutputError: the file cannot be written; AuditError: an xlsx sheet cannot hold the rows.

    Examples:
        >>> import os, tempfile
        >>> item = {"item_id": "u1", "seq": 50, "action": "update", "system": "hubspot",
        ...         "object": "companies", "record_id": "7", "field": "city", "before": None,
        ...         "after": "Oslo", "status": "proposed", "reason": {"why": "hubspot_blank"},
        ...         "link_item_id": "p1", "requires": ["p1"], "snapshot_modified_at": None}
        >>> out = os.path.join(tempfile.mkdtemp(), "plan.csv")
        >>> export_items(PlanResult(run_id="plan-1", match_run_id=None, items=[item]), out)["rows"]
        1
    """
    import polars as pl

    from .audit import escape_formula, export_path, write_table

    fmt = items_format(out, fmt)
    path = export_path(out, f"{result.run_id or 'plan-dry-run'}.{fmt}")

    def text(value: Any) -> str | None:  # text as it reads, anything else as JSON
        return value if value is None or isinstance(value, str) else _dumps_any(value)

    rows = []
    for i in result.items:
        got = i.get("reason")
        reason: dict[str, Any] = got if isinstance(got, dict) else {}
        held = i.get("payload")
        payload: dict[str, Any] = held if isinstance(held, dict) else {}
        score = reason.get("score")
        victims = payload.get("victims") if i.get("action") == "merge" else None
        source = payload.get("source") if i.get("action") == "create" else None
        record_id, field, other = i.get("record_id"), i.get("field"), None
        if i.get("action") == "conflict":  # the HubSpot side, and the Salesforce one beside it
            hs, sf = payload.get("hubspot") or {}, payload.get("salesforce") or {}
            record_id, field = hs.get("record_id", record_id), hs.get("field", field)
            other = " ".join(str(sf.get(k) or "") for k in ("object", "record_id", "field"))
        rows.append(
            (
                i.get("item_id"), i.get("seq"), i.get("action"), i.get("system"), i.get("object"),
                record_id, field, text(i.get("before")), text(i.get("after")),
                i.get("status"), reason.get("why"), reason.get("rule"), reason.get("mapping"),
                float(score) if isinstance(score, int | float) else None, reason.get("tier"),
                ";".join(map(str, victims)) if isinstance(victims, list) else None,
                " ".join(str(source.get(k) or "") for k in ("system", "object", "record_id"))
                if isinstance(source, dict) else None,
                other, i.get("link_item_id"), text(i.get("requires")), i.get("snapshot_modified_at"),
                result.run_id,
            )
        )  # fmt: skip
    if fmt in {"csv", "xlsx"}:
        rows = [tuple(escape_formula(v) for v in r) for r in rows]
    schema = {c: pl.Utf8 for c in ITEM_COLUMNS} | {"seq": pl.Int64, "score": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    write_table(
        frame,
        fmt,
        path,
        what="the plan items",
        option="--items",
        sheet="plan",
        meta=[
            ("plan_run_id", result.run_id or "dry run"),
            ("match_run_id", result.match_run_id or ""),
        ],
    )
    return {"path": str(path), "rows": frame.height, "format": fmt}


def _dumps_any(value: Any) -> str:
    return orjson.dumps(value, str, orjson.OPT_NON_STR_KEYS).decode()


def _short(value: Any, width: int = 60) -> str:
    """A value as one short line (JSON for structures, text as is)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _preview(items: list[Item], limit: int) -> list[str]:
    """The first ``limit`` items, one line each: order, target, what changes, status and why.

    Examples:
        >>> _preview([{"seq": 50, "action": "update", "system": "hubspot", "object": "companies",
        ...     "record_id": "7", "field": "name", "before": "Acme", "after": "Acme Inc",
        ...     "status": "proposed", "reason": {"why": "both_set"}}], 5)
        ["50 update hubspot companies 7 name: 'Acme' → 'Acme Inc' [proposed, both_set]"]
        >>> _preview([{"seq": 30, "action": "create", "system": "salesforce", "object": "Lead",
        ...     "record_id": None, "field": None, "before": None, "after": {"LastName": "Li"},
        ...     "status": "proposed", "reason": {"why": "missing_in_salesforce"}}], 5)
        ['30 create salesforce Lead {"LastName": "Li"} [proposed, missing_in_salesforce]']
    """
    lines = []
    for i in items[:limit]:
        target = " ".join(
            str(part) for part in (i["system"], i["object"], i["record_id"]) if part is not None
        )
        if i["action"] in ("update", "owner"):
            before, after = (
                "(blank)" if v is None else repr(_short(v, 30)) for v in (i["before"], i["after"])
            )
            change = f"{i['field']}: {before} → {after}"
        elif i["action"] == "conflict":
            change = f"{i['field']}: {_short(i['before'])}"
        elif i["action"] == "merge":
            victims = (i["payload"] or {}).get("victims") or []
            change = f"absorbs {', '.join(map(str, victims))}" + (
                f", sets {_short(i['after'])}" if i["after"] else ""
            )
        elif i["action"] == "associate":
            if i["record_id"] is None:
                target += " (a record this plan creates)"
            change = f"{i['field']} → {_short(i['after'])}"
        else:
            change = _short(i["after"] if i["after"] is not None else i["payload"])
        why = (i["reason"] or {}).get("why", "")
        lines.append(
            f"{i['seq']} {i['action']} {target}"
            + (f" {change}" if change else "")
            + f" [{i['status']}{', ' + why if why else ''}]"
        )
    return lines


def render_plan(result: PlanResult, fmt: str, console: Any, *, preview: int = 20) -> None:
    """Print a plan for people (``table``) or tools (``csv`` counts, ``json`` summary).

    Args:
        result: what :func:`recon.plan.build_plan` returned.
        fmt: ``table``, ``csv`` or ``json``.
        console: a :class:`rich.console.Console` (tables) ; csv/json go to stdout.
        preview: items shown under the table.

    Examples:
        >>> from rich.console import Console
        >>> render_plan(PlanResult(run_id=None, match_run_id="m"), "csv", Console())
        action,object,system,status,items
    """
    import csv
    import sys

    from rich.table import Table

    if fmt == "json":
        sys.stdout.write(json.dumps(result.summary(), indent=2, default=str) + "\n")
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["action", "object", "system", "status", "items"])
        for c in result.counts:
            writer.writerow([c["action"], c["object"], c["system"], c["status"], c["items"]])
        return
    where = f"plan run {result.run_id}" if result.run_id else "dry run (nothing stored)"
    console.print(f"{where} from match run {result.match_run_id}: {result.total:,} items")
    table = Table(title="items per action and object")
    for col in ("action", "object", "system", "status", "items"):
        table.add_column(col, justify="right" if col == "items" else "left")
    for c in result.counts:
        table.add_row(c["action"], c["object"], c["system"], c["status"], f"{c['items']:,}")
    console.print(table)
    summary = result.summary()
    for label, key in (("per action", "by_action"), ("per object", "by_object")):
        if summary[key]:
            totals = ", ".join(f"{k} {n:,}" for k, n in summary[key].items())
            console.print(f"{label}: {totals}", markup=False, highlight=False)
    if result.skipped:
        skipped = Table(title="not planned")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, n in sorted(result.skipped.items()):
            skipped.add_row(reason, f"{n:,}")
        console.print(skipped)
    for path, msg in result.warnings:
        console.print(f"warning: {path}: {msg}", markup=False, highlight=False)
    if result.items and preview:
        shown = min(preview, len(result.items))
        console.print(
            f"first {shown} items (run order: seq, action, target, change, [status, why]):",
            markup=False,
            highlight=False,
        )
        for line in _preview(result.items, preview):
            console.print("  " + line, markup=False, highlight=False, soft_wrap=True)
