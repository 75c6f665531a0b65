"""Figures about the store for notebooks, the app and ``recon status``.

Plain functions from a store to polars frames: fill rates of the pulled
snapshots, domain coverage, duplicate estimates from cheap keys, precision and
recall of match thresholds measured from human review decisions, and what each
apply run changed per field. Only human decisions measure precision; the
policy's own approvals never grade themselves.

Examples:
    >>> from recon.store import open_store
    >>> fill_rates(records_frame(open_store(":memory:"))).height
    0
"""

from __future__ import annotations

import logging
import math
from typing import Any

import polars as pl
import sqlite_utils

from . import normalize
from .errors import UsageError
from .models import HUBSPOT_OBJECTS, RECORD_COLUMNS, SALESFORCE_OBJECTS
from .store import store_status

__all__ = [
    "PROMOTED_COLUMNS",
    "RUN_STAGES",
    "audit_report",
    "cluster_counts",
    "label_counts",
    "runs_frame",
    "domain_coverage",
    "duplicate_estimate",
    "fill_rates",
    "records_frame",
    "status_report",
    "threshold_curve",
    "waiting_by_kind",
]

log = logging.getLogger(__name__)

#: the canonical record columns every snapshot promotes (the raw ``data`` JSON left out)
PROMOTED_COLUMNS: tuple[str, ...] = tuple(c for c in RECORD_COLUMNS if c != "data")


def records_frame(
    db: sqlite_utils.Database, source: str | None = None, object: str | None = None
) -> pl.DataFrame:
    """Snapshots (promoted columns, live records only) as a polars frame.

    Raises:
        UsageError: ``source`` or ``object`` is none recon stores (a misspelt name gave an
            empty frame, read as "no records").

    Examples:
        >>> from recon.store import open_store
        >>> records_frame(open_store(":memory:"), "hubspot").columns[:3]
        ['source', 'object', 'record_id']
    """
    if source is not None:
        _known("source", source, ("hubspot", "salesforce"))
    if object is not None:
        _known("object", object, (*HUBSPOT_OBJECTS, *SALESFORCE_OBJECTS))
    where, params = ["coalesce(archived, 0) = 0"], []
    if source:
        where.append("source = ?")
        params.append(source)
    if object:
        where.append("object = ?")
        params.append(object)
    cols = ", ".join(PROMOTED_COLUMNS)
    rows = list(db.query(f"select {cols} from snapshots where {' and '.join(where)}", params))
    schema = {c: pl.Int64 if c == "archived" else pl.String for c in PROMOTED_COLUMNS}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def fill_rates(frame: pl.DataFrame, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Share of records with a non-blank value, per source, object and column.

    Returns columns ``source, object, column, records, filled, rate``.

    Raises:
        UsageError: a column named in ``columns`` is not in ``frame``.

    Examples:
        >>> frame = pl.DataFrame({"source": ["hubspot"] * 2, "object": ["companies"] * 2,
        ...                       "domain": ["acme.com", " "]})
        >>> fill_rates(frame, ("domain",)).select("column", "records", "filled", "rate").rows()
        [('domain', 2, 1, 0.5)]
    """
    missing = [c for c in columns or () if c not in frame.columns]
    if missing:
        raise UsageError(
            f"fill_rates: no column {missing[0]!r} in the frame",
            hint="its columns: " + ", ".join(frame.columns),
        )
    cols = [c for c in (columns or PROMOTED_COLUMNS[3:16]) if c in frame.columns]
    if frame.is_empty():
        return pl.DataFrame(
            schema={
                "source": pl.String,
                "object": pl.String,
                "column": pl.String,
                "records": pl.UInt32,
                "filled": pl.UInt32,
                "rate": pl.Float64,
            }
        )
    long = frame.select(["source", "object", *cols]).unpivot(
        index=["source", "object"], variable_name="column", value_name="value"
    )
    filled = pl.col("value").is_not_null() & (
        pl.col("value").cast(pl.String).str.strip_chars() != ""
    )
    return (
        long.group_by(["source", "object", "column"])
        .agg(records=pl.len(), filled=filled.sum().cast(pl.UInt32))
        .with_columns(rate=(pl.col("filled") / pl.col("records")).round(4))
        .sort(["source", "object", "column"])
    )


def _company_domains(frame: pl.DataFrame) -> pl.Series:
    """A usable company domain per record: domain, else website, else a non-free-mail email."""
    candidates = [
        normalize.domains(frame[c].cast(pl.String))
        for c in ("domain", "website", "email")
        if c in frame.columns
    ]
    if not candidates:
        return pl.Series("domain_key", [None] * frame.height, dtype=pl.String)
    return pl.select(pl.coalesce(candidates).alias("domain_key")).to_series()


def domain_coverage(db: sqlite_utils.Database) -> pl.DataFrame:
    """Per source and object: records, records with a usable company domain, and the share.

    Free-mail domains (gmail.com...) don't count: they never identify a company.

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> db["snapshots"].insert_all([
        ...     {"source": "hubspot", "object": "companies", "record_id": "1", "domain": "acme.com"},
        ...     {"source": "hubspot", "object": "companies", "record_id": "2",
        ...      "website": "https://www.acme.com/"},
        ...     {"source": "hubspot", "object": "companies", "record_id": "3",
        ...      "email": "ceo@gmail.com"}])  # doctest: +ELLIPSIS
        <Table snapshots ...>
        >>> domain_coverage(db).rows()
        [('hubspot', 'companies', 3, 2, 0.6667)]
    """
    frame = records_frame(db)
    if frame.is_empty():
        return pl.DataFrame(
            schema={
                "source": pl.String,
                "object": pl.String,
                "records": pl.UInt32,
                "with_domain": pl.UInt32,
                "coverage": pl.Float64,
            }
        )
    return (
        frame.with_columns(_company_domains(frame))
        .group_by(["source", "object"])
        .agg(records=pl.len(), with_domain=pl.col("domain_key").is_not_null().sum().cast(pl.UInt32))
        .with_columns(coverage=(pl.col("with_domain") / pl.col("records")).round(4))
        .sort(["source", "object"])
    )


def duplicate_estimate(db: sqlite_utils.Database) -> pl.DataFrame:
    """Cheap duplicate estimate inside each source object from shared keys.

    Companies share a cleaned domain or a normalised name; people share an
    email. Returns ``source, object, records, groups, records_in_groups,
    duplicate_share`` (records beyond the first of each group, over records).

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> db["snapshots"].insert_all([
        ...     {"source": "hubspot", "object": "companies", "record_id": "1",
        ...      "name": "Acme Inc", "domain": "acme.com"},
        ...     {"source": "hubspot", "object": "companies", "record_id": "2",
        ...      "name": "ACME, Inc.", "website": "https://www.acme.com/"},
        ...     {"source": "hubspot", "object": "companies", "record_id": "3",
        ...      "name": "Globex"}])  # doctest: +ELLIPSIS
        <Table snapshots ...>
        >>> duplicate_estimate(db).rows()
        [('hubspot', 'companies', 3, 1, 2, 0.3333)]
    """
    frame = records_frame(db)
    schema = {
        "source": pl.String,
        "object": pl.String,
        "records": pl.UInt32,
        "groups": pl.UInt32,
        "records_in_groups": pl.UInt32,
        "duplicate_share": pl.Float64,
    }
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    out = []
    for (source, obj), part in frame.group_by(["source", "object"], maintain_order=True):
        if obj in ("companies", "Account"):
            names = normalize.company_names(part["name"].cast(pl.String))
            key = pl.select(pl.coalesce([_company_domains(part), names]).alias("k")).to_series()
        else:
            key = normalize.emails(part["email"].cast(pl.String))
        sizes = key.drop_nulls().value_counts()
        dup = sizes.filter(pl.col("count") > 1)
        in_groups = int(dup["count"].sum()) if dup.height else 0
        out.append(
            {
                "source": source,
                "object": obj,
                "records": part.height,
                "groups": dup.height,
                "records_in_groups": in_groups,
                "duplicate_share": round((in_groups - dup.height) / part.height, 4)
                if part.height
                else 0.0,
            }
        )
    return pl.DataFrame(out, schema=schema).sort(["source", "object"])


def cluster_counts(db: sqlite_utils.Database, run_id: str | None = None) -> pl.DataFrame:
    """Duplicate clusters of a match run (default: the latest finished one) per source object:
    ``source, object, clusters, records``.

    Examples:
        >>> from recon.store import open_store
        >>> cluster_counts(open_store(":memory:")).columns
        ['source', 'object', 'clusters', 'records']
    """
    from .store import resolve_run_id

    schema = {"source": pl.String, "object": pl.String, "clusters": pl.Int64, "records": pl.Int64}
    run = resolve_run_id(db, run_id, "match", finished=True)
    if run is None or "clusters" not in db.table_names():
        return pl.DataFrame(schema=schema)
    # by the records' own object (Account, Contact, Lead...), as duplicate_estimate counts
    return _query_frame(
        db,
        "select source, coalesce(record_object, object), count(distinct cluster_id), count(*) "
        "from clusters where run_id = ? group by 1, 2 order by 1, 2",
        [run],
        schema,
    )


#: the kinds of decision people make (``decisions.kind``)
DECISION_KINDS = ("link", "duplicate", "split", "conflict_value", "plan")
#: the decisions on scored pairs (what a threshold separates)
SCORED_KINDS = ("link", "duplicate")


def _known(name: str, value: str, known: tuple[str, ...]) -> None:
    """A notebook's misspelt ``kind`` gave an empty frame, read as "no decisions yet"."""
    if value not in known:
        raise UsageError(f"unknown {name} {value!r}", hint="use one of: " + ", ".join(known))


def label_counts(db: sqlite_utils.Database, kind: str = "link") -> pl.DataFrame:
    """Reviewers' current decisions of one kind (``link``, ``duplicate``...) per label:
    ``label, decisions`` (people only; a policy's approvals and superseded answers left out).

    Examples:
        >>> from recon.store import open_store
        >>> label_counts(open_store(":memory:")).columns
        ['label', 'decisions']
    """
    _known("kind", kind, DECISION_KINDS)
    return _query_frame(
        db,
        "select label, count(*) from decisions where kind = ? and decided_by = 'human' "
        "and superseded = 0 group by label order by label",
        [kind],
        {"label": pl.String, "decisions": pl.Int64},
    )


#: the stages runs are stored under (``run`` is a ``recon run`` holding the others)
RUN_STAGES = ("pull", "match", "plan", "apply", "run")


def runs_frame(db: sqlite_utils.Database, stage: str | None = None) -> pl.DataFrame:
    """The runs (of one ``stage``: pull, match, plan, apply, run...) oldest first:
    ``run_id, parent_id, stage, status, started_at, ended_at, dry_run, sample``
    (``dry_run``: the run sent or stored nothing; ``sample``: a test run on that many
    records, else null).

    Raises:
        UsageError: ``stage`` is not one of :data:`RUN_STAGES`.

    Examples:
        >>> from recon.store import open_store
        >>> runs_frame(open_store(":memory:"), "apply").height
        0
    """
    if stage is not None and stage not in RUN_STAGES:
        raise UsageError(
            f"runs_frame: no run has stage {stage!r}", hint="stages: " + ", ".join(RUN_STAGES)
        )
    cols = ("run_id", "parent_id", "stage", "status", "started_at", "ended_at")
    where, args = ("where stage = ?", [stage]) if stage else ("", [])
    return _query_frame(
        db,
        f"select {', '.join(cols)}, coalesce(json_extract(config, '$.dry_run'), 0) != 0, "
        f"json_extract(config, '$.sample') from runs {where} order by started_at, rowid",
        args,
        dict.fromkeys(cols, pl.String) | {"dry_run": pl.Boolean, "sample": pl.Int64},
    )


def _query_frame(
    db: sqlite_utils.Database, sql: str, params: list[Any], schema: dict[str, Any]
) -> pl.DataFrame:
    """A query's rows as a frame of ``schema`` (its columns in the query's order)."""
    return pl.DataFrame(db.execute(sql, params).fetchall(), schema=schema, orient="row")


def threshold_curve(
    db: sqlite_utils.Database,
    *,
    kind: str = "link",
    thresholds: list[float] | None = None,
) -> pl.DataFrame:
    """Precision and recall of "link when score ≥ t", measured from human decisions.

    Every pair a person labelled ``match`` or ``non_match`` (latest decision per
    pair) is a label; the pair's score is its latest match run's score. The default grid
    runs from the lowest labelled score (no pair below the review threshold is ever shown to
    a person, so lower thresholds would all read the same) to 1.0 in 21 steps.
    Returns ``threshold, proposed, correct, precision, recall, f1``.

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> db["pairs"].insert_all([{"run_id": "m1", "pair_id": p, "score": s}
        ...     for p, s in (("a", 0.97), ("b", 0.91), ("c", 0.85))])  # doctest: +ELLIPSIS
        <Table pairs ...>
        >>> db["decisions"].insert_all([
        ...     {"kind": "link", "item_id": p, "label": label, "decided_by": "human", "superseded": 0}
        ...     for p, label in (("a", "match"), ("b", "non_match"), ("c", "match"))
        ... ])  # doctest: +ELLIPSIS
        <Table decisions ...>
        >>> curve = threshold_curve(db, thresholds=[0.8, 0.95])
        >>> curve.select("threshold", "proposed", "correct", pl.col("precision").round(4),
        ...              "recall").rows()
        [(0.8, 3, 2, 0.6667, 1.0), (0.95, 1, 1, 1.0, 0.5)]
    """
    _known("kind", kind, SCORED_KINDS)
    if thresholds is not None and len(thresholds) == 0:
        raise UsageError(
            "threshold_curve: thresholds is empty", hint="give scores, or None for the default grid"
        )
    bad = [t for t in thresholds or () if not 0.0 <= t <= 1.0]
    if bad:
        raise UsageError(
            f"threshold {bad[0]!r} is no score", hint="thresholds are scores from 0.0 to 1.0"
        )
    rows = list(
        db.query(
            """
            select d.item_id, d.label, (
                select p.score from pairs p where p.pair_id = d.item_id
                order by p.run_id desc limit 1
            ) as score
            from decisions d
            where d.kind = ? and d.decided_by = 'human' and coalesce(d.superseded, 0) = 0
              and d.label in ('match', 'non_match')
            """,
            [kind],
        )
    )
    labels = [(r["score"], r["label"] == "match") for r in rows if r["score"] is not None]
    if thresholds:
        grid = thresholds
    else:
        floor = min((score for score, _ in labels), default=0.9)
        # rounded down: the first row proposes every labelled pair (0.935391 became 0.9354)
        floor = max(0.0, min(math.floor(floor * 10_000) / 10_000, 0.995))
        grid = sorted({round(floor + (1.0 - floor) * i / 20, 4) for i in range(21)})
    total_true = sum(1 for _, truth in labels if truth)
    out = []
    for t in grid:
        proposed = [truth for score, truth in labels if score >= t]
        correct = sum(proposed)
        precision = correct / len(proposed) if proposed else None
        recall = correct / total_true if total_true else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else None
        )
        out.append(
            {
                "threshold": t,
                "proposed": len(proposed),
                "correct": correct,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "threshold": pl.Float64,
            "proposed": pl.Int64,
            "correct": pl.Int64,
            "precision": pl.Float64,
            "recall": pl.Float64,
            "f1": pl.Float64,
        },
    )


def audit_report(db: sqlite_utils.Database, run_id: str | None = None) -> pl.DataFrame:
    """What each apply run changed: ``run_id, crm, object, field, outcome, changes, records``.

    Only rows recording a write's result are counted (not the "intended" rows
    written before each write).

    Args:
        run_id: an apply run, or a ``recon run`` (its apply); None for every apply run.

    Raises:
        UsageError: ``run_id`` names no run, or a run without an apply.

    Examples:
        >>> from recon.audit import append
        >>> from recon.store import open_store, transaction
        >>> db = open_store(":memory:")
        >>> row = {"run_id": "apply-1", "item_id": "i1", "crm": "hubspot", "object": "companies",
        ...        "record_id": "7", "field": "phone"}
        >>> with transaction(db):
        ...     _ = append(db, [{**row, "outcome": "intended"}, {**row, "outcome": "confirmed"}])
        >>> audit_report(db).rows()
        [('apply-1', 'hubspot', 'companies', 'phone', 'confirmed', 1, 1)]
    """
    from .store import resolve_run_id

    where = "where outcome is not null and outcome != 'intended'"
    params: list[str] = []
    if run_id:
        where += " and run_id = ?"
        params.append(str(resolve_run_id(db, run_id, "apply")))
    rows = list(
        db.query(
            f"""
            select run_id, crm, object, coalesce(field, '(record)') as field, outcome,
                   count(*) as changes, count(distinct record_id) as records
            from audit {where}
            group by run_id, crm, object, field, outcome
            order by run_id, crm, object, field, outcome
            """,
            params,
        )
    )
    schema = {
        "run_id": pl.String,
        "crm": pl.String,
        "object": pl.String,
        "field": pl.String,
        "outcome": pl.String,
        "changes": pl.Int64,
        "records": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _stage_figures(summary: dict[str, Any]) -> dict[str, Any]:
    calls = summary.get("api_calls") or summary.get("calls") or {}
    errors: dict[str, int] = {}
    if isinstance(summary.get("errors_by_class"), dict):
        errors.update(summary["errors_by_class"])
    if isinstance(summary.get("failed"), dict):
        for cls, n in summary["failed"].items():
            errors[cls] = errors.get(cls, 0) + int(n)
    if summary.get("error_class"):  # the error that stopped the stage
        cls = str(summary["error_class"])
        errors[cls] = errors.get(cls, 0) + 1
    for line in summary.get("errors") or []:
        cls = str(line).split(":", 1)[0].strip() or "unknown"
        errors[cls] = errors.get(cls, 0) + 1
    sources = summary.get("sources")
    for info in sources.values() if isinstance(sources, dict) else ():
        # a pull: the error that stopped each CRM's reads (a spent budget has no class of its own)
        if not isinstance(info, dict) or info.get("status") in (None, "ok"):
            continue
        cls = str(
            info.get("error_class")
            or ("budget_exhausted" if info["status"] == "budget" else info["status"])
        )
        errors[cls] = errors.get(cls, 0) + 1
    return {"api_calls": calls if isinstance(calls, dict) else {}, "errors_by_class": errors}


def status_report(db: sqlite_utils.Database) -> dict[str, Any]:
    """What ``recon status`` shows: records, per-stage last run with its API calls and
    errors by class, and what is waiting for review (links, clusters, conflicts).

    Examples:
        >>> from recon.store import open_store
        >>> status_report(open_store(":memory:"))["waiting_for_review"]
        0
    """
    info = store_status(db)
    for row in info["runs"].values():
        row.update(_stage_figures(row.get("summary") or {}))
    waiting = waiting_by_kind(db)
    if waiting is not None:
        info["waiting_by_kind"] = waiting
        info["waiting_for_review"] = sum(waiting.values())
    return info


def waiting_by_kind(db: sqlite_utils.Database) -> dict[str, int] | None:
    """Undecided items of the review queue per kind (link, duplicate, conflict, stale), or None
    when the queue cannot be read (a store without plan tables, a damaged one): what
    ``recon status`` and a run's notice say is waiting for a person.

    Examples:
        >>> from recon.store import open_store
        >>> waiting_by_kind(open_store(":memory:"))
        {'link': 0, 'duplicate': 0, 'conflict': 0, 'stale': 0}
    """
    try:
        from .review import QueueFilter, queue

        return {
            kind: queue(db, QueueFilter(kinds=(kind,), status="undecided"), page_size=1).total
            for kind in ("link", "duplicate", "conflict", "stale")
        }
    except Exception:  # optional: the caller falls back (status) or leaves it out (a notice)
        log.debug("review queue unavailable", exc_info=True)
        return None
