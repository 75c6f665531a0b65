"""Run a plan: load the store view, resolve mappings, compute, store in one transaction.

:func:`run_build` is the body of :func:`recon.plan.build_plan`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlite_utils

from .errors import PlanError
from .mapping import resolve_mappings
from .plan import PlanResult, plan_counts
from .plan_build import Planner
from .plan_load import load_view
from .store import finish_run, resolve_run_id, start_run, transaction

__all__ = ["run_build"]

log = logging.getLogger(__name__)

_INSERT_COLS = (
    "run_id",
    "item_id",
    "action",
    "system",
    "object",
    "record_id",
    "field",
    "before",
    "after",
    "snapshot_modified_at",
    "link_item_id",
    "requires",
    "reason",
    "status",
    "seq",
    "payload",
)


def _dumps(value: Any) -> str | None:
    return (
        None
        if value is None
        else json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    )


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
    mrid = resolve_run_id(db, match_run_id, "match")
    if mrid is None:
        raise PlanError("there is no match run to plan from", hint="run `recon match` first")
    view = load_view(db, mrid, campaigns=bool(cfg.mapping.campaign_property))
    chk = resolve_mappings(cfg.mapping, schemas if schemas is not None else view.schemas)
    planner = Planner(view, chk, cfg, sample)
    items = planner.run()
    result = PlanResult(
        run_id=None,
        match_run_id=mrid,
        counts=plan_counts(items),
        skipped=dict(planner.skipped),
        warnings=list(chk.warnings),
        items=items,
    )
    if dry_run:
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
        with transaction(db):
            db.conn.executemany(
                sql,
                (
                    (
                        run_id,
                        i["item_id"],
                        i["action"],
                        i["system"],
                        i["object"],
                        i["record_id"],
                        i["field"],
                        _dumps(i["before"]),
                        _dumps(i["after"]),
                        i["snapshot_modified_at"],
                        i["link_item_id"],
                        _dumps(i["requires"]),
                        _dumps(i["reason"]),
                        i["status"],
                        i["seq"],
                        _dumps(i["payload"]),
                    )
                    for i in items
                ),
            )
            result.seconds = time.perf_counter() - started
            finish_run(
                db,
                run_id,
                status="ok",
                summary={k: v for k, v in result.summary().items() if k != "counts"},
            )
    except Exception as exc:
        finish_run(db, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    log.info(
        "plan %s: %d items from match run %s in %.2f s", run_id, len(items), mrid, result.seconds
    )
    return result
