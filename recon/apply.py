"""Apply an approved plan: batched, journaled, resumable, stale-protected and audited.

Every approved plan item gets a ``journal`` row in the apply run: ``planned`` →
``sent`` → ``confirmed`` | ``failed`` | ``skipped`` | ``stale``. The journal (and
the audit rows beside it) is committed *before* each batch is sent and *after*
its answer, each in its own transaction, so a run killed at any instant resumes
with ``resume=True`` and applies every item exactly once:

- items left ``sent`` are re-read from the CRM first: an update whose fields
  already hold the new values landed; a create is looked up by its idempotency
  key (HubSpot unique property, Salesforce External ID ``Recon_Key__c``), else by
  its natural key (email, domain); a merge landed when its merged records are
  gone. What did not land is sent again — creates as upserts on the key, so a
  second send can never make a second record;
- before writing, each target's modification time is compared with the snapshot
  the decision was based on; a record changed since is not overwritten: its item
  becomes ``stale`` and goes back to review (``plan_items.status =
  'needs_review'`` with both versions in ``reason.stale``, and a ``stale`` item
  in the review queue at once); approved there, the next run (or ``resume``)
  sends it once against the record's new version, which becomes its snapshot;
- per-record errors are classified (:class:`~recon.errors.ErrorClass`) and
  retried in the run only when retrying can help; a later run of the same plan
  applies only what is not confirmed yet;
- 429s are retried by the writers, 5xx and network errors leave the batch
  ``sent`` (re-read, then retried with backoff, bounded), the ``[budget]`` stops
  the run cleanly (exit 6, resumable). Merges are refused without
  ``confirm_merges``. The store lock is held for the whole apply.

Examples:
    >>> from recon.store import open_store
    >>> from recon.config import ReconConfig
    >>> apply_plan(open_store(":memory:"), ReconConfig(), dry_run=True)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    recon.errors.UsageError: there is no plan to apply
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from . import audit
from .apply_items import loads, ops_for, phases, refresh_unsent, to_item
from .apply_journal import UNSURE_CREATE, ApplyResult, Runner
from .config import ReconConfig, config_file
from .errors import BudgetExhausted, ConfigError, ReconError, UsageError
from .lock import store_lock
from .models import canonical_json, now_iso
from .review_stale import stale_id
from .store import (
    UNFINISHED_APPLY,
    finish_run,
    process_key,
    resolve_run_id,
    start_run,
    transaction,
)
from .writers import CallBudget, Writer, chunks
from .writers.dryrun import DryRunWriter

__all__ = [
    "Approved",
    "ApplyResult",
    "apply_plan",
    "approved_plan_items",
    "build_writer",
    "pending_items",
    "read_approved",
    "refused_items",
    "unfinished_apply",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- plan items


@dataclass(frozen=True)
class Approved:
    """The approved items of a plan as read at one moment (:func:`read_approved`).

    A caller that reads them before an apply (to ask for confirmation, to hold an apply
    above ``[policy] max_writes``) passes them to :func:`apply_plan`, which then does not
    read them again (a large plan's approved items take seconds to read). ``mark`` is the
    :func:`~recon.apply_journal.approvals_mark` taken before they were read: decisions made
    after it are picked up by the apply as they would be during the run.
    """

    plan_run_id: str
    mark: tuple[int, tuple[Any, ...]]
    rows: list[dict[str, Any]]


def read_approved(db: sqlite_utils.Database, plan_run_id: str) -> Approved:
    """The approved items of ``plan_run_id`` now, with the approvals mark before them."""
    from .apply_journal import approvals_mark

    mark = approvals_mark(db)  # before the approvals are read: none made meanwhile is missed
    return Approved(plan_run_id, mark, approved_plan_items(db, plan_run_id))


def pending_items(
    db: sqlite_utils.Database, plan_run_id: str, approved: Approved | None = None
) -> list[dict[str, Any]]:
    """What an apply of ``plan_run_id`` would send now: the approved items no apply of the
    plan settled yet (confirmed, moot, refused as stale and not approved again...).

    ``approved``: the plan's approved items as already read (:func:`read_approved`)."""
    if approved is None or approved.plan_run_id != plan_run_id:
        approved = read_approved(db, plan_run_id)
    return _eligible(db, plan_run_id, "", approved.rows)


def approved_plan_items(db: sqlite_utils.Database, plan_run_id: str) -> list[dict[str, Any]]:
    """The plan items apply executes: :func:`recon.plan.approved_items` (JSON columns decoded)."""
    from .plan import approved_items

    return approved_items(db, plan_run_id)


# --------------------------------------------------------------------------- writers


def build_writer(cfg: ReconConfig, system: str, budget: CallBudget) -> Writer:
    """The real writer for ``system``, on the client built the way pull builds it."""
    if system == "hubspot":
        from hubspot import HubSpot
        from urllib3.util.retry import Retry

        from .writers.hubspot import HubSpotWriter

        if cfg.hubspot.access_token is None:
            raise ConfigError(  # a setting to fix (exit 3), not a refusal by HubSpot
                "invalid configuration",
                problems=[("hubspot.access_token", "not configured")],
                hint=f'set access_token = "env:HUBSPOT_TOKEN" in {config_file()} and export the token',
            )
        token = cfg.hubspot.access_token.get("hubspot.access_token")
        # no urllib3 status retries: a retried write must go through apply's re-read first
        client = HubSpot(
            access_token=token, host=cfg.hubspot.base_url, retry=Retry(total=0, redirect=2)
        )
        return HubSpotWriter(
            client,
            budget=budget,
            key_property=cfg.hubspot.key_property,
            batch_size=cfg.apply.hubspot_batch_size,
            max_retries=cfg.apply.max_retries,
            app_url=cfg.hubspot.app_url,
            portal_id=cfg.hubspot.portal_id,
            secrets=[token],
        )
    from .sources.sf_auth import OrgUsage, SalesforceConnection
    from .writers.salesforce import SalesforceWriter

    usage = OrgUsage(cfg.salesforce.max_org_usage)  # the org's allocation, shared with others
    conn = SalesforceConnection(
        cfg.salesforce, before=usage.check, after=lambda resp: usage.read(resp.headers)
    )

    def renew() -> Any:
        conn.refresh()  # AuthError when the configured flow cannot renew (auth = "session")
        return conn.sf

    return SalesforceWriter(
        conn.sf,
        budget=budget,
        batch_size=cfg.apply.salesforce_batch_size,
        max_retries=cfg.apply.max_retries,
        instance_url=conn.token.instance_url,
        secrets=[conn.token.access_token],
        refresh=renew,
    )


# --------------------------------------------------------------------------- runs and journal


def unfinished_apply(
    db: sqlite_utils.Database, plan_run_id: str | None = None
) -> tuple[str, str] | None:
    """The latest apply run (of this plan, else of any) that did not finish, with its plan.

    Unfinished: items left (``planned`` or ``sent``, whatever stopped it: a budget, a crash,
    an authentication or network failure), or killed before its end (still ``running``).
    Dry runs never count.

    Examples:
        >>> from recon.store import open_store
        >>> unfinished_apply(open_store(":memory:")) is None
        True
    """
    rows = list(
        db.query(
            "select r.run_id, json_extract(r.config, '$.plan_run_id') as plan from runs r "
            "where r.stage = 'apply' "
            "and (? is null or json_extract(r.config, '$.plan_run_id') = ?) "
            "and json_extract(r.config, '$.plan_run_id') is not null "
            "and coalesce(json_extract(r.config, '$.dry_run'), 0) = 0 "
            f"and {UNFINISHED_APPLY} "
            "order by r.started_at desc, r.rowid desc limit 1",
            [plan_run_id, plan_run_id],
        )
    )
    return (str(rows[0]["run_id"]), str(rows[0]["plan"])) if rows else None


def _stale_verdict(
    db: sqlite_utils.Database, plan_run_id: str, item_id: str, error: Any
) -> dict[str, Any] | None:
    """The review decision on a stale journal row's event (None: not decided in review)."""
    both = loads(error)
    if not isinstance(both, dict):
        return None
    rows = list(
        db.query(
            "select * from decisions where item_id = ? and kind = 'plan' and superseded = 0 "
            "order by version desc, decision_id desc limit 1",
            [stale_id(plan_run_id, item_id, both)],
        )
    )
    return {**dict(rows[0]), "stale": both} if rows else None


def _against_new_version(row: dict[str, Any], verdict: dict[str, Any]) -> dict[str, Any]:
    """An approved stale item, re-aimed at the record's version the reviewer saw.

    The new modification time becomes the item's snapshot (a further change is
    refused again); undo items expect the values the reviewer saw; the approval is
    the decision the audit names.
    """
    both = verdict["stale"]
    out = {**row, "snapshot_modified_at": both.get("current_modified_at")}
    current = both.get("current") if isinstance(both.get("current"), dict) else {}
    payload = row.get("payload")
    if isinstance(payload, dict) and isinstance(payload.get("expect"), dict):
        out["payload"] = {**payload, "expect": {**payload["expect"], **current}}
    # what the write replaces is the value the reviewer saw, not the one planned (the audit
    # and an undo restore it)
    before = row.get("before")
    if isinstance(before, dict):  # a merge: the master's values per field
        out["before"] = {**before, **{f: v for f, v in current.items() if f in before}}
    elif row.get("field") in current:
        out["before"] = current[row["field"]]
    elif len(current) == 1:
        out["before"] = next(iter(current.values()))
    approval = {k: verdict.get(k) for k in ("item_id", "kind", "label", "reviewer", "decided_at")}
    out["decisions"] = [approval, *(row.get("decisions") or [])]
    return out


def _eligible(
    db: sqlite_utils.Database, plan_run_id: str, run_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Approved items no run of this plan settled: not confirmed, not moot (their record was
    merged away by the run), not found holding their value already (or merged by another
    plan's apply), not stale and not a create that may have landed (``UNSURE_CREATE``)
    without a newer decision.

    A stale item comes back when its stale event is approved in review (then it is sent
    against the record's new version), or when its link or item is decided again.
    """
    done = {
        r["item_id"]: r
        for r in db.query(
            "select item_id, state, updated_at, error from journal where plan_run_id = ? and run_id != ? "
            "and (state in ('confirmed', 'stale') or (state = 'skipped' and (error_class = 'not_found' "
            "or error like '%: nothing to write' or error like '%: nothing to restore'))"
            " or (state = 'failed' and error like ?)) "
            "order by updated_at",
            [plan_run_id, run_id, f"{UNSURE_CREATE}%"],
        )
    }
    out = []
    for row in rows:
        prior = done.get(row["item_id"])
        if prior and prior["state"] in ("confirmed", "skipped"):
            continue
        if prior and prior["state"] == "failed":  # a create that may have landed
            newer = db.execute(
                "select count(*) from decisions where superseded = 0 and decided_at > ? "
                "and item_id = ?",
                [prior["updated_at"], row["item_id"]],
            ).fetchone()[0]
            if not newer:
                continue
        elif prior and prior["state"] == "stale":
            verdict = _stale_verdict(db, plan_run_id, row["item_id"], prior["error"])
            if verdict is not None:
                if verdict["label"] != "approve":
                    continue  # rejected (dropped) or deferred in review
                row = _against_new_version(row, verdict)
            else:
                # the item, its link, or the conflict it was expanded from (a new value chosen)
                newer = db.execute(
                    "select count(*) from decisions where superseded = 0 and decided_at > ? "
                    "and item_id in (?, ?, ?)",
                    [
                        prior["updated_at"],
                        row["item_id"],
                        row.get("link_item_id") or "",
                        row.get("conflict_item_id") or "",
                    ],
                ).fetchone()[0]
                if not newer:
                    continue
        out.append(row)
    return out


def _seed(
    db: sqlite_utils.Database, run_id: str, plan_run_id: str, rows: list[dict[str, Any]]
) -> None:
    """Journal rows (``planned``) for the eligible items this run does not hold yet."""
    have = {
        r["item_id"]: r
        for r in db.query(
            "select item_id, state, error, attempts, item from journal where run_id = ?", [run_id]
        )
    }
    now = now_iso()
    new = []
    for row in _eligible(db, plan_run_id, run_id, rows):
        held = have.get(row["item_id"])
        if held is not None and held["state"] == "stale":
            # this (resumed) run refused it as stale; approved in review since: send it again
            verdict = _stale_verdict(db, plan_run_id, row["item_id"], held["error"])
            if verdict is not None and verdict["label"] == "approve":
                again = to_item(db, _against_new_version(row, verdict))
                db.execute(
                    "update journal set state = 'planned', attempts = 0, error_class = null, "
                    "error = null, updated_at = ?, item = ? where run_id = ? and item_id = ?",
                    [now, canonical_json(asdict(again)), run_id, row["item_id"]],
                )
        if held is not None:
            # decided again since the run started and never sent: a resumed run sends what the
            # review shows now
            refresh_unsent(db, run_id, row, held)
            continue
        item = to_item(db, row)
        new.append(
            {
                "run_id": run_id,
                "item_id": item.item_id,
                "plan_run_id": plan_run_id,
                "state": "planned",
                "batch": None,
                "attempts": 0,
                "idempotency_key": item.key if item.action == "create" else None,
                "crm_record_id": item.record_id,
                "error_class": None,
                "error": None,
                "updated_at": now,
                "item": canonical_json(asdict(item)),
            }
        )
    if new:
        db["journal"].insert_all(new, pk=("run_id", "item_id"))


# --------------------------------------------------------------------------- the apply


def apply_plan(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    *,
    plan_run_id: str | None = None,
    dry_run: bool = False,
    resume: bool = False,
    confirm_merges: bool = False,
    reviewer: str | None = None,
    parent_run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    writers: dict[str, Writer] | None = None,
    skip_failed_of: str | None = None,
    approved: Approved | None = None,
) -> ApplyResult:
    """Apply the approved items of a plan run (the latest plan when None).

    Args:
        db: the store.
        cfg: the configuration (``[apply]``, ``[budget]``, CRM sections).
        plan_run_id: the plan run, or a parent ``recon run`` id.
        dry_run: send nothing; report what would be sent (no journal, no audit).
        resume: continue the interrupted apply run of this plan.
        confirm_merges: allow merges (irreversible); without it they are skipped. A resumed
            run keeps the confirmation it was started with.
        reviewer: who started the apply (recorded with the run).
        parent_run_id: the ``recon run`` this apply belongs to.
        progress: called with ``(items done, items total)`` after every batch.
        writers: writers per system (default: built from ``cfg``).
        skip_failed_of: an apply run whose failed items are not sent again by this one (a
            `recon run` that resumed a stopped apply first: they just failed).
        approved: the plan's approved items as the caller already read them
            (:func:`read_approved`, used when they are of the plan applied); else read here.

    Returns:
        the :class:`ApplyResult`; ``status`` is ``partial`` when some items failed.

    Raises:
        UsageError: no plan, or an interrupted apply of this plan exists and ``resume`` is off.
        BudgetExhausted: the API budget ran out (the run is resumable); ``.result`` holds the result.
        LockedError: another run holds the store lock.

    Examples:
        >>> from recon.store import open_store
        >>> apply_plan(open_store(":memory:"), ReconConfig(), dry_run=True)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.UsageError: there is no plan to apply
    """
    with store_lock(db, holder="apply", heartbeat_every=30):
        plan = resolve_run_id(db, plan_run_id, "plan", finished=True)
        if plan is None:
            if not dry_run or parent_run_id is None:
                # (a `recon run --dry-run` stores no plan: its apply stage has nothing to show)
                raise UsageError("there is no plan to apply", hint="run `recon plan` first")
            rid = start_run(
                db, "apply", parent_id=parent_run_id, config={"plan_run_id": None, "dry_run": True}
            )
            result = ApplyResult(run_id=rid, plan_run_id=None, dry_run=True)
            finish_run(db, rid, summary=result.summary())
            return result
        if approved is None or approved.plan_run_id != plan:
            approved = read_approved(db, plan)
        mark, rows = approved.mark, list(approved.rows)
        if skip_failed_of:
            failed = {
                r[0]
                for r in db.execute(
                    "select item_id from journal where run_id = ? and state = 'failed'",
                    [skip_failed_of],
                )
            }
            rows = [r for r in rows if r["item_id"] not in failed]
        if dry_run:
            # what a real apply would send now: nothing an earlier apply of the plan settled
            rows = _eligible(db, plan, "", rows)
            return _dry_run(db, cfg, plan, rows, parent_run_id, progress, confirm_merges)
        pending = unfinished_apply(db, plan)
        unfinished = pending[0] if pending else None
        if unfinished and not resume:
            raise UsageError(
                f"apply run {unfinished} of plan {plan} was interrupted",
                hint="run `recon apply --resume` to finish it (items already sent are checked in the CRM first)",
            )
        with transaction(db):
            if unfinished:
                run_id = unfinished
                # this process runs it now: a status check must not take it for killed. The
                # run keeps the time it started; the process check reads when this process took
                # it over (config.process_started_at), and config.resumed counts the takeovers
                db.execute(
                    "update runs set status = 'running', ended_at = null, pid = ?, host = ?, "
                    "process = ?, "
                    "config = json_set(coalesce(config, '{}'), '$.process_started_at', ?, "
                    "'$.resumed', coalesce(json_extract(config, '$.resumed'), 0) + 1) "
                    "where run_id = ?",
                    [
                        os.getpid(),
                        socket.gethostname(),
                        process_key(os.getpid()),
                        now_iso(),
                        run_id,
                    ],
                )
                # the merges confirmed when the run started stay confirmed when it resumes
                confirmed = db.execute(
                    "select json_extract(config, '$.confirm_merges') from runs where run_id = ?",
                    [run_id],
                ).fetchone()[0]
                confirm_merges = confirm_merges or bool(confirmed)
            else:
                config = {
                    "plan_run_id": plan,
                    "dry_run": False,
                    "confirm_merges": confirm_merges,
                    "reviewer": reviewer,
                }
                run_id = start_run(db, "apply", parent_id=parent_run_id, config=config)
            _seed(db, run_id, plan, rows)
        runner = Runner(db, cfg, run_id, plan, rows, confirm_merges, writers or {}, progress, mark)
        try:
            runner.run()
        except Exception as exc:
            # the run stays resumable: its journal says what is left; the CLI prints the result
            status = "budget" if isinstance(exc, BudgetExhausted) else "failed"
            error = str(exc) if isinstance(exc, ReconError) else f"{type(exc).__name__}"
            result = runner.result(status)
            summary = result.summary()
            cls = getattr(exc, "error_class", None)
            if cls is not None and status == "failed":  # what stopped the run, grouped by kind
                summary["error_class"] = getattr(cls, "value", str(cls))
            finish_run(db, run_id, status=status, summary=summary, error=error)
            setattr(exc, "result", result)  # noqa: B010
            raise
        result = runner.result("ok")
        finish_run(db, run_id, status=result.status, summary=result.summary())
        log.info(
            "apply run %s %s: applied %d, failed %s, stale %d, skipped %d, calls %s",
            run_id, result.status, result.applied, result.failed, result.stale, result.skipped,
            result.calls_made,
        )  # fmt: skip
        return result


def _dry_run(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    plan: str,
    rows: list[dict[str, Any]],
    parent_run_id: str | None,
    progress: Callable[[int, int], None] | None,
    confirm_merges: bool = False,
) -> ApplyResult:
    run_id = start_run(
        db, "apply", parent_id=parent_run_id, config={"plan_run_id": plan, "dry_run": True}
    )
    items = [to_item(db, r) for r in rows]
    # as the real apply: merges without confirmation are skipped, not sent
    refused = [] if confirm_merges else [i for i in items if i.action == "merge"]
    items = [i for i in items if i not in refused]
    dry: dict[str, Writer] = {
        "hubspot": DryRunWriter("hubspot", batch_size=cfg.apply.hubspot_batch_size),
        "salesforce": DryRunWriter("salesforce", batch_size=cfg.apply.salesforce_batch_size),
    }
    calls = {"hubspot": 0, "salesforce": 0}
    done = 0
    for kind, system, obj, group in phases(items):
        ops = ops_for(kind, obj, group, {})
        for part in chunks(ops, dry[system].max_batch(kind)):
            dry[system].write([op for op, _its in part])
            calls[system] += 1
            done += sum(len(o[1]) for o in part)
            if progress:
                progress(done, len(items))
    result = ApplyResult(
        run_id=run_id,
        plan_run_id=plan,
        dry_run=True,
        items=len(items) + len(refused),
        applied=len(items),
        skipped=len(refused),
        api_calls=calls,
        calls_made={"hubspot": 0, "salesforce": 0},
        anchor=audit.anchor(db),
    )
    finish_run(db, run_id, summary=result.summary())
    return result


def refused_items(
    db: sqlite_utils.Database, run_id: str, limit: int = 10
) -> tuple[int, list[dict[str, Any]]]:
    """The items apply run ``run_id`` refused as stale or saw fail: their number, and the
    first ``limit`` of them (stale ones first) named for a person.

    Each is ``{"state", "error_class", "action", "system", "object", "record_id", "field",
    "detail"}``: ``detail`` says when the record changed against the time it was reviewed at
    (stale), or the CRM's answer (failed, cut to 200 characters).
    """
    where = "run_id = ? and state in ('stale', 'failed')"
    total = db.execute(f"select count(*) from journal where {where}", [run_id]).fetchone()[0]
    rows = db.execute(
        f"select state, error_class, error, item from journal where {where} "
        "order by state = 'failed', item_id limit ?",
        [run_id, limit],
    ).fetchall()
    out = []
    for state, error_class, error, raw in rows:
        item = loads(raw) if raw else None
        item = item if isinstance(item, dict) else {}
        detail = str(error or "")
        if state == "stale":
            both = loads(detail) if detail.startswith("{") else None
            members = both.get("changed_members") if isinstance(both, dict) else None
            if isinstance(members, dict) and members:  # a merge: which member changed
                detail = "; ".join(
                    f"{rid} changed at {t.get('now') or 'an unknown time'}, reviewed as of "
                    f"{t.get('reviewed') or 'an unknown time'}"
                    for rid, t in sorted(members.items())
                    if isinstance(t, dict)
                )
            elif isinstance(both, dict):
                detail = (
                    f"changed at {both.get('current_modified_at') or 'an unknown time'}, "
                    f"reviewed as of {both.get('snapshot_modified_at') or 'an unknown time'}"
                )
        elif len(detail) > 200:
            detail = detail[:199] + "…"
        out.append(
            {
                "state": state,
                "error_class": error_class,
                "action": item.get("action"),
                "system": item.get("system"),
                "object": item.get("object"),
                "record_id": item.get("record_id"),
                "field": item.get("field"),
                "detail": detail,
            }
        )
    return int(total), out
