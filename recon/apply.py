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
  'needs_review'`` with both versions in ``reason.stale``);
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
    >>> apply_plan(open_store(":memory:"), ReconConfig(), dry_run=True).items
    0
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from . import audit
from .config import ReconConfig
from .errors import AuthError, BudgetExhausted, ErrorClass, RateLimited, SourceError, UsageError
from .lock import store_lock
from .models import canonical_json, now_iso, parse_ts, stable_id
from .store import finish_run, get_run, resolve_run_id, start_run, transaction
from .writers import CallBudget, Op, Outcome, RecordState, Writer, chunks
from .writers.dryrun import DryRunWriter

__all__ = ["ApplyResult", "apply_plan", "approved_plan_items", "build_writer"]

log = logging.getLogger(__name__)

PHASES = ("create", "update", "associate", "merge")
_UPDATE_ACTIONS = {"update", "owner", "conflict"}
_NATURAL = {
    ("hubspot", "contacts"): "email",
    ("hubspot", "companies"): "domain",
    ("salesforce", "Contact"): "Email",
    ("salesforce", "Lead"): "Email",
    ("salesforce", "Account"): "Website",
}


@dataclass
class ApplyResult:
    """What an apply run did (also stored as the run's summary)."""

    run_id: str
    plan_run_id: str | None
    dry_run: bool = False
    status: str = "ok"
    items: int = 0
    applied: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    stale: int = 0
    pending: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    anchor: str | None = None

    @property
    def failed_total(self) -> int:
        """All failed items, whatever their class."""
        return sum(self.failed.values())

    def summary(self) -> dict[str, Any]:
        """Plain data for the run row, the CLI table and notifications."""
        return asdict(self)


@dataclass
class _Item:
    """One approved plan item as apply sends it (kept as JSON in ``journal.item``)."""

    item_id: str
    action: str
    system: str
    object: str
    record_id: str | None
    field: str | None
    before: Any
    after: Any
    snapshot: str | None
    payload: dict[str, Any]
    seq: int
    reviewer: str | None = None
    decided_at: str | None = None

    @property
    def kind(self) -> str:
        """The writer op: Salesforce associations are ``AccountId`` updates."""
        if self.action in _UPDATE_ACTIONS or (
            self.action == "associate" and self.system == "salesforce"
        ):
            return "update"
        return self.action

    def ends(self, created: dict[str, str]) -> tuple[str | None, str | None, str | None]:
        """Associations: (from id, to object, to id), resolving records made by creates."""

        def end(side: Any) -> tuple[str | None, str | None]:
            if not isinstance(side, dict):
                return None, None
            rid = side.get("id") or created.get(str(side.get("create_item_id") or ""))
            return side.get("object"), (str(rid) if rid else None)

        _fobj, fid = end(self.payload.get("from"))
        tobj, tid = end(self.payload.get("to"))
        fid = fid or self.record_id or created.get(str(self.payload.get("from_item_id") or ""))
        tid = (
            tid
            or self.payload.get("to_id")
            or created.get(str(self.payload.get("to_item_id") or ""))
        )
        return fid, tobj or self.payload.get("to_object"), tid

    def props(self, created: dict[str, str] | None = None) -> dict[str, Any]:
        """Field values this item writes."""
        props = dict(self.payload.get("properties") or self.payload.get("fields") or {})
        if self.action == "associate" and self.system == "salesforce":
            props[self.field or "AccountId"] = self.ends(created or {})[2]
        elif self.field and self.kind in {"update", "create"} and not props:
            props[self.field] = self.after
        return props

    @property
    def key(self) -> str:
        """Idempotency key of a create (the plan's, else derived from the item id)."""
        return str(
            self.payload.get("idempotency_key") or stable_id("create", self.item_id, prefix="rk-")
        )

    def natural(self) -> tuple[str, str] | None:
        """(field, value) that identifies the record a create makes."""
        spec = self.payload.get("natural_key")
        props = self.props()
        if isinstance(spec, dict) and spec.get("field"):
            fname, value = spec["field"], spec.get("value", props.get(spec["field"]))
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            fname, value = spec
        else:
            fname = spec if isinstance(spec, str) else _NATURAL.get((self.system, self.object))
            value = props.get(fname) if fname else None
        return (str(fname), str(value)) if fname and value not in (None, "") else None

    @property
    def merge_ids(self) -> list[str]:
        ids = (
            self.payload.get("victims")
            or self.payload.get("merge_ids")
            or [self.payload.get("merge_id")]
        )
        return [str(i) for i in ids if i]


def _loads(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------- plan items


def approved_plan_items(db: sqlite_utils.Database, plan_run_id: str) -> list[dict[str, Any]]:
    """The plan items apply executes: :func:`recon.plan.approved_items` (JSON decoded).

    Without the plan module, an item is approved when the latest decision on every id
    in its ``requires`` is ``match``/``approve`` (the same rule, without conflict and
    merge expansion).
    """
    try:
        from . import plan as plan_module
    except ImportError:
        plan_module = None  # type: ignore[assignment]
    if plan_module is not None and hasattr(plan_module, "approved_items"):
        return [dict(r) for r in plan_module.approved_items(db, plan_run_id)]
    latest: dict[str, str] = {}
    for r in db.query(
        "select item_id, label from decisions where superseded = 0 and item_id is not null "
        "order by version, decided_at, decision_id"
    ):
        latest[r["item_id"]] = r["label"]
    out = []
    for row in db.query(
        "select * from plan_items where run_id = ? and status != 'blocked' order by seq, item_id",
        [plan_run_id],
    ):
        requires = _loads(row["requires"]) or []
        if requires and all(latest.get(r) in ("match", "approve") for r in requires):
            out.append(dict(row))
    return out


def _decision(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    for d in row.get("decisions") or []:
        if d.get("reviewer") or d.get("decided_at"):
            return dict(d)
    ids = [row["item_id"], row.get("link_item_id"), *(_loads(row.get("requires")) or [])]
    for ident in ids:
        if not ident:
            continue
        found = list(
            db.query(
                "select reviewer, decided_at from decisions where item_id = ? and superseded = 0 "
                "order by version desc, decision_id desc limit 1",
                [ident],
            )
        )
        if found:
            return dict(found[0])
    return {}


def _to_item(db: sqlite_utils.Database, row: dict[str, Any]) -> _Item:
    decision = _decision(db, row)
    payload = _loads(row.get("payload")) or {}
    record_id = row.get("record_id")
    if row["action"] == "merge":
        record_id = payload.get("master") or record_id
    return _Item(
        item_id=row["item_id"],
        action=row["action"],
        system=row["system"],
        object=row["object"],
        record_id=str(record_id) if record_id is not None else None,
        field=row.get("field"),
        before=_loads(row.get("before")),
        after=_loads(row.get("after")),
        snapshot=row.get("snapshot_modified_at"),
        payload=payload if isinstance(payload, dict) else {},
        seq=int(row.get("seq") or 0),
        reviewer=decision.get("reviewer"),
        decided_at=decision.get("decided_at"),
    )


# --------------------------------------------------------------------------- writers


def build_writer(cfg: ReconConfig, system: str, budget: CallBudget) -> Writer:
    """The real writer for ``system``, on the client built the way pull builds it."""
    if system == "hubspot":
        from hubspot import HubSpot
        from urllib3.util.retry import Retry

        from .writers.hubspot import HubSpotWriter

        if cfg.hubspot.access_token is None:
            raise AuthError(
                "no [hubspot] access_token configured",
                hint='set access_token = "env:HUBSPOT_TOKEN"',
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
    from .sources.sf_auth import SalesforceConnection
    from .writers.salesforce import SalesforceWriter

    conn = SalesforceConnection(cfg.salesforce)
    return SalesforceWriter(
        conn.sf,
        budget=budget,
        batch_size=cfg.apply.salesforce_batch_size,
        max_retries=cfg.apply.max_retries,
        instance_url=conn.token.instance_url,
        secrets=[conn.token.access_token],
    )


# --------------------------------------------------------------------------- runs and journal


def _unfinished(db: sqlite_utils.Database, plan_run_id: str) -> str | None:
    """The latest apply run of this plan that did not finish: items left, or killed before its end."""
    rows = list(
        db.query(
            "select r.run_id from runs r where r.stage = 'apply' "
            "and json_extract(r.config, '$.plan_run_id') = ? "
            "and coalesce(json_extract(r.config, '$.dry_run'), 0) = 0 "
            "and (r.status = 'running' or exists (select 1 from journal j where j.run_id = r.run_id "
            "and j.state in ('planned', 'sent'))) "
            "order by r.started_at desc, r.rowid desc limit 1",
            [plan_run_id],
        )
    )
    return str(rows[0]["run_id"]) if rows else None


def _eligible(
    db: sqlite_utils.Database, plan_run_id: str, run_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Approved items not yet confirmed by any run of this plan, nor stale without a newer decision."""
    done = {
        r["item_id"]: r
        for r in db.query(
            "select item_id, state, updated_at from journal where plan_run_id = ? and run_id != ? "
            "and state in ('confirmed', 'stale') order by updated_at",
            [plan_run_id, run_id],
        )
    }
    out = []
    for row in rows:
        prior = done.get(row["item_id"])
        if prior and prior["state"] == "confirmed":
            continue
        if prior and prior["state"] == "stale":
            newer = db.execute(
                "select count(*) from decisions where superseded = 0 and decided_at > ? and item_id in (?, ?)",
                [prior["updated_at"], row["item_id"], row.get("link_item_id") or ""],
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
        r["item_id"] for r in db.query("select item_id from journal where run_id = ?", [run_id])
    }
    now = now_iso()
    new = []
    for row in _eligible(db, plan_run_id, run_id, rows):
        if row["item_id"] in have:
            continue
        item = _to_item(db, row)
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
) -> ApplyResult:
    """Apply the approved items of a plan run (the latest plan when None).

    Args:
        db: the store.
        cfg: the configuration (``[apply]``, ``[budget]``, CRM sections).
        plan_run_id: the plan run, or a parent ``recon run`` id.
        dry_run: send nothing; report what would be sent (no journal, no audit).
        resume: continue the interrupted apply run of this plan.
        confirm_merges: allow merges (irreversible); without it they are skipped.
        reviewer: who started the apply (recorded with the run).
        parent_run_id: the ``recon run`` this apply belongs to.
        progress: called with ``(items done, items total)`` after every batch.
        writers: writers per system (default: built from ``cfg``).

    Returns:
        the :class:`ApplyResult`; ``status`` is ``partial`` when some items failed.

    Raises:
        UsageError: no plan, or an interrupted apply of this plan exists and ``resume`` is off.
        BudgetExhausted: the API budget ran out (the run is resumable); ``.result`` holds the result.
        LockedError: another run holds the store lock.

    Examples:
        >>> from recon.store import open_store
        >>> apply_plan(open_store(":memory:"), ReconConfig(), dry_run=True).status
        'ok'
    """
    with store_lock(db, holder="apply", heartbeat_every=30):
        plan = resolve_run_id(db, plan_run_id, "plan")
        if plan is None:
            if not dry_run:
                raise UsageError("there is no plan to apply", hint="run `recon plan` first")
            rid = start_run(
                db, "apply", parent_id=parent_run_id, config={"plan_run_id": None, "dry_run": True}
            )
            result = ApplyResult(run_id=rid, plan_run_id=None, dry_run=True)
            finish_run(db, rid, summary=result.summary())
            return result
        rows = approved_plan_items(db, plan)
        if dry_run:
            return _dry_run(db, cfg, plan, rows, parent_run_id, progress)
        unfinished = _unfinished(db, plan)
        if unfinished and not resume:
            raise UsageError(
                f"apply run {unfinished} of plan {plan} was interrupted",
                hint="run `recon apply --resume` to finish it (items already sent are checked in the CRM first)",
            )
        with transaction(db):
            if unfinished:
                run_id = unfinished
                db["runs"].update(run_id, {"status": "running", "ended_at": None})
            else:
                config = {
                    "plan_run_id": plan,
                    "dry_run": False,
                    "confirm_merges": confirm_merges,
                    "reviewer": reviewer,
                }
                run_id = start_run(db, "apply", parent_id=parent_run_id, config=config)
            _seed(db, run_id, plan, rows)
        runner = _Runner(db, cfg, run_id, plan, rows, confirm_merges, writers or {}, progress)
        status, error = "ok", None
        try:
            runner.run()
        except (BudgetExhausted, RateLimited, AuthError) as exc:
            status, error = ("budget" if isinstance(exc, BudgetExhausted) else "failed"), str(exc)
            result = runner.result("budget" if isinstance(exc, BudgetExhausted) else "failed")
            finish_run(db, run_id, status=status, summary=result.summary(), error=error)
            setattr(exc, "result", result)  # noqa: B010 (the CLI prints it)
            raise
        result = runner.result("ok")
        finish_run(db, run_id, status=result.status, summary=result.summary())
        return result


def _dry_run(
    db: sqlite_utils.Database,
    cfg: ReconConfig,
    plan: str,
    rows: list[dict[str, Any]],
    parent_run_id: str | None,
    progress: Callable[[int, int], None] | None,
) -> ApplyResult:
    run_id = start_run(
        db, "apply", parent_id=parent_run_id, config={"plan_run_id": plan, "dry_run": True}
    )
    items = [_to_item(db, r) for r in rows]
    dry: dict[str, Writer] = {
        "hubspot": DryRunWriter("hubspot", batch_size=cfg.apply.hubspot_batch_size),
        "salesforce": DryRunWriter("salesforce", batch_size=cfg.apply.salesforce_batch_size),
    }
    calls = {"hubspot": 0, "salesforce": 0}
    done = 0
    for phase in PHASES:
        for (system, obj), group in _groups([i for i in items if i.kind == phase]).items():
            ops = _ops(phase, obj, group, {})
            for part in chunks(ops, dry[system].max_batch(phase)):
                dry[system].write([op for op, _its in part])
                calls[system] += 1
                done += sum(len(o[1]) for o in part)
                if progress:
                    progress(done, len(items))
    result = ApplyResult(
        run_id=run_id,
        plan_run_id=plan,
        dry_run=True,
        items=len(items),
        applied=len(items),
        api_calls=calls,
        anchor=audit.anchor(db),
    )
    finish_run(db, run_id, summary=result.summary())
    return result


def _groups(items: list[_Item]) -> dict[tuple[str, str], list[_Item]]:
    out: dict[tuple[str, str], list[_Item]] = {}
    for item in sorted(items, key=lambda i: (i.seq, i.item_id)):
        out.setdefault((item.system, item.object), []).append(item)
    return out


def _ops(
    kind: str, obj: str, items: list[_Item], created: dict[str, str]
) -> list[tuple[Op, list[_Item]]]:
    """Ops for one phase: updates (and Salesforce associations) of one record fold into one op."""
    out: list[tuple[Op, list[_Item]]] = []
    if kind == "update":
        by_record: dict[str, list[_Item]] = {}
        for item in items:
            rid = item.record_id
            if item.action == "associate":
                rid = item.ends(created)[0]
            by_record.setdefault(str(rid), []).append(item)
        for rid, group in by_record.items():
            props: dict[str, Any] = {}
            for item in group:
                props.update(item.props(created))
            op = Op(ref=f"u:{rid}", kind="update", object=obj, record_id=rid, properties=props)
            out.append((op, group))
        return out
    for item in items:
        op = Op(ref=item.item_id, kind=kind, object=obj, record_id=item.record_id)
        if kind == "create":
            op.properties = item.props()
            op.key = item.key
            op.natural = item.natural()
        elif kind == "associate":
            op.record_id, op.to_object, op.to_id = item.ends(created)
        elif kind == "merge":
            op.merge_ids = item.merge_ids
            op.properties = dict(item.payload.get("fields") or item.payload.get("properties") or {})
        out.append((op, [item]))
    return out


def _norm(value: Any) -> str:
    """Values compared across CRMs and JSON: None and '' alike, bools and whole floats as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _newer(current: str | None, snapshot: str | None) -> bool:
    if not current or not snapshot:
        return False
    cur, snap = parse_ts(current), parse_ts(snapshot)
    return bool(cur and snap and cur > snap)


class _Unknown(Exception):
    """A batch whose outcome is unknown (5xx, network): its items stay ``sent``."""


class _Runner:
    """The apply loop over one run's journal (see the module docstring)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        cfg: ReconConfig,
        run_id: str,
        plan: str,
        rows: list[dict[str, Any]],
        confirm_merges: bool,
        writers: dict[str, Writer],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.db, self.cfg, self.run_id, self.plan = db, cfg, run_id, plan
        self.confirm_merges = confirm_merges
        self.writers = dict(writers)
        self.progress = progress
        self.max_retries = cfg.apply.max_retries
        self.budgets = {
            "hubspot": CallBudget("hubspot", cfg.budget.hubspot_calls),
            "salesforce": CallBudget("salesforce", cfg.budget.salesforce_calls),
        }
        for system, writer in self.writers.items():
            self.budgets[system] = writer.budget
        self.items = {
            r["item_id"]: _Item(**json.loads(r["item"]))
            for r in db.query("select item_id, item from journal where run_id = ?", [run_id])
            if r["item"]
        }
        self.batch_no = db.execute(
            "select coalesce(max(batch), 0) from journal where run_id = ?", [run_id]
        ).fetchone()[0]
        self.prepared: set[tuple[str, str]] = set()
        prior = get_run(db, run_id)["summary"].get("api_calls") or {}
        self.prior_calls = {k: int(v) for k, v in prior.items()}

    # ------------------------------------------------------------------ plumbing

    def writer(self, system: str) -> Writer:
        if system not in self.writers:
            self.writers[system] = build_writer(self.cfg, system, self.budgets[system])
        return self.writers[system]

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            r["item_id"]: dict(r)
            for r in self.db.query("select * from journal where run_id = ?", [self.run_id])
        }

    def _tick(self) -> None:
        if self.progress:
            states = self.states()
            done = sum(1 for r in states.values() if r["state"] not in ("planned", "sent"))
            self.progress(done, len(states))

    def _audit_row(
        self, item: _Item, outcome: str, *, error: str | None = None, record_id: str | None = None
    ) -> dict[str, Any]:
        rid = record_id or item.record_id
        link = None
        if item.system in self.writers and rid:
            link = self.writers[item.system].record_link(item.object, rid)
        before, after = item.before, item.after
        if item.kind == "create":
            after = item.props()
        elif item.kind == "merge":
            before, after = {"merge_ids": item.merge_ids}, {"survivor": rid}
        return {
            "run_id": self.run_id,
            "item_id": item.item_id,
            "reviewer": item.reviewer,
            "decided_at": item.decided_at,
            "crm": item.system,
            "object": item.object,
            "record_id": rid,
            "record_link": link,
            "field": item.field,
            "before": canonical_json(before),
            "after": canonical_json(after),
            "outcome": outcome,
            "error": error,
        }

    def _set(self, item: _Item, state: str, **cols: Any) -> None:
        self.db.execute(
            "update journal set state = ?, updated_at = ?"
            + "".join(f", {k} = ?" for k in cols)
            + " where run_id = ? and item_id = ?",
            [state, now_iso(), *cols.values(), self.run_id, item.item_id],
        )

    def _finish(
        self, items: list[_Item], state: str, error_class: ErrorClass | None, error: str | None
    ) -> None:
        with transaction(self.db):
            for item in items:
                self._set(
                    item, state, error_class=error_class.value if error_class else None, error=error
                )
            audit.append(self.db, [self._audit_row(i, state, error=error) for i in items])

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        for phase in PHASES:
            states = self.states()
            live = [
                i
                for i in self.items.values()
                if i.kind == phase and states[i.item_id]["state"] in ("planned", "sent")
            ]
            for (system, obj), group in _groups(live).items():
                self._phase(phase, system, obj, group)
        self._tick()

    def _phase(self, kind: str, system: str, obj: str, items: list[_Item]) -> None:
        if kind == "merge" and not self.confirm_merges:
            unsent = [i for i in items if self.states()[i.item_id]["state"] == "planned"]
            self._finish(
                unsent,
                "skipped",
                None,
                "merge not confirmed: merges are irreversible; pass --confirm-merges",
            )
            items = [i for i in items if i not in unsent]
        rounds = 0
        while True:
            states = self.states()
            live = [i for i in items if states[i.item_id]["state"] in ("planned", "sent")]
            if not live:
                return
            writer = self.writer(system)
            if kind == "create" and (system, obj) not in self.prepared:
                writer.prepare([obj])
                self.prepared.add((system, obj))
            sent = [i for i in live if states[i.item_id]["state"] == "sent"]
            if sent:
                self._reconcile(kind, obj, writer, sent)
            states = self.states()
            planned = [i for i in items if states[i.item_id]["state"] == "planned"]
            spent = [i for i in planned if (states[i.item_id]["attempts"] or 0) > self.max_retries]
            for item in spent:
                last = states[item.item_id]
                cls = (
                    ErrorClass(last["error_class"])
                    if last["error_class"]
                    else ErrorClass.SERVER_ERROR
                )
                self._finish(
                    [item],
                    "failed",
                    cls,
                    f"gave up after {last['attempts']} attempts: {last['error'] or ''}",
                )
            planned = [i for i in planned if i not in spent]
            if kind in ("update", "merge"):
                planned = self._check_stale(kind, obj, writer, planned)
            created = self._created()
            ops = _ops(kind, obj, planned, created)
            if kind == "associate":
                missing = [(op, its) for op, its in ops if not op.record_id or not op.to_id]
                for _op, its in missing:
                    self._finish(its, "skipped", None, "depends on a create that did not succeed")
                ops = [o for o in ops if o not in missing]
            unknown = False
            for part in chunks(ops, writer.max_batch(kind)):
                try:
                    self._send(writer, part)
                except _Unknown:
                    unknown = True
                self._tick()
            if unknown or planned:
                rounds += 1
                if unknown:
                    time.sleep(min(30.0, 0.2 * 2 ** min(rounds, 8)))

    def _created(self) -> dict[str, str]:
        return {
            r["item_id"]: r["crm_record_id"]
            for r in self.db.query(
                "select item_id, crm_record_id from journal where plan_run_id = ? and state = 'confirmed' "
                "and crm_record_id is not null",
                [self.plan],
            )
        }

    def _send(self, writer: Writer, part: list[tuple[Op, list[_Item]]]) -> None:
        self.batch_no += 1
        items = [i for _op, its in part for i in its]
        with transaction(self.db):
            for item in items:
                self.db.execute(
                    "update journal set state = 'sent', batch = ?, attempts = coalesce(attempts, 0) + 1, updated_at = ? "
                    "where run_id = ? and item_id = ?",
                    [self.batch_no, now_iso(), self.run_id, item.item_id],
                )
            audit.append(self.db, [self._audit_row(i, "intended") for i in items])
        try:
            outcomes = writer.write([op for op, _its in part])
        except SourceError as exc:
            if isinstance(exc, BudgetExhausted | RateLimited | AuthError):
                raise  # items stay `sent`: the resumed run re-reads them before sending again
            with transaction(self.db):
                for item in items:
                    self._set(item, "sent", error_class=exc.error_class.value, error=str(exc)[:500])
            log.warning("batch %d: %s; re-reading before retrying", self.batch_no, exc)
            raise _Unknown() from None
        by_ref = {o.ref: o for o in outcomes}
        rows = []
        with transaction(self.db):
            for op, its in part:
                outcome = by_ref.get(op.ref) or Outcome(
                    op.ref, False, op.record_id, ErrorClass.UNKNOWN, "no outcome"
                )
                for item in its:
                    if outcome.ok:
                        self._set(
                            item,
                            "confirmed",
                            crm_record_id=outcome.record_id,
                            error_class=None,
                            error=None,
                        )
                        rows.append(self._audit_row(item, "confirmed", record_id=outcome.record_id))
                    else:
                        state = "planned" if outcome.retryable else "failed"
                        cls = outcome.error_class or ErrorClass.UNKNOWN
                        self._set(item, state, error_class=cls.value, error=outcome.error)
                        rows.append(
                            self._audit_row(
                                item,
                                "failed" if state == "failed" else "retry",
                                error=outcome.error,
                            )
                        )
            audit.append(self.db, rows)

    # ------------------------------------------------------------------ re-reads

    def _reconcile(self, kind: str, obj: str, writer: Writer, items: list[_Item]) -> None:
        """Learn whether items left ``sent`` landed: confirmed, or back to planned (or stale)."""
        landed: dict[str, str | None] = {}
        stale: list[tuple[_Item, RecordState]] = []
        if kind == "update":
            created = self._created()
            ops = _ops("update", obj, items, created)
            fields = sorted({f for op, _its in ops for f in op.properties})
            current = writer.current(obj, [str(op.record_id) for op, _its in ops], fields)
            for op, its in ops:
                state = current.get(str(op.record_id))
                if state is None:
                    continue
                if all(_norm(state.values.get(f)) == _norm(v) for f, v in op.properties.items()):
                    for item in its:
                        landed[item.item_id] = op.record_id
                else:
                    stale.extend((item, state) for item in its if self._is_stale(item, state))
        elif kind == "create":
            ops = _ops("create", obj, items, {})
            found = writer.find_created(obj, [op for op, _ in ops])
            for op, its in ops:
                if op.ref in found:
                    landed[its[0].item_id] = found[op.ref]
                elif not op.natural and not getattr(writer, "key_ready", {}).get(obj, True):
                    self._finish(
                        its,
                        "failed",
                        ErrorClass.UNKNOWN,
                        "cannot tell whether this create landed "
                        "(no key field, no natural key): check the CRM before applying it again",
                    )
        elif kind == "merge":
            for item in items:
                ids = item.merge_ids
                if ids and writer.merged_away(obj, ids) == set(ids):
                    landed[item.item_id] = item.record_id
        with transaction(self.db):
            rows = []
            for item in items:
                if item.item_id in landed:
                    self._set(
                        item,
                        "confirmed",
                        crm_record_id=landed[item.item_id],
                        error_class=None,
                        error=None,
                    )
                    rows.append(self._audit_row(item, "confirmed", record_id=landed[item.item_id]))
            for item, state in stale:
                rows.append(self._mark_stale(item, state))
            for item in items:
                if item.item_id not in landed and item not in [s[0] for s in stale]:
                    self.db.execute(
                        "update journal set state = 'planned' where run_id = ? and item_id = ? and state = 'sent'",
                        [self.run_id, item.item_id],
                    )
            audit.append(self.db, rows)

    def _is_stale(self, item: _Item, state: RecordState) -> bool:
        expect = item.payload.get("expect")
        if isinstance(expect, dict) and expect:
            return any(_norm(state.values.get(f)) != _norm(v) for f, v in expect.items())
        return _newer(state.modified_at, item.snapshot)

    def _mark_stale(self, item: _Item, state: RecordState) -> dict[str, Any]:
        both = {
            "snapshot_modified_at": item.snapshot,
            "current_modified_at": state.modified_at,
            "planned_before": item.before,
            "planned_after": item.after,
            "current": {f: state.values.get(f) for f in item.props(self._created())} or None,
            "apply_run_id": self.run_id,
        }
        text = canonical_json(both)
        self._set(item, "stale", error_class=ErrorClass.STALE.value, error=text)
        row = self.db.execute(
            "select reason from plan_items where run_id = ? and item_id = ?",
            [self.plan, item.item_id],
        ).fetchone()
        reason = _loads(row[0]) if row else None
        reason = reason if isinstance(reason, dict) else {"reason": reason}
        reason["stale"] = both
        self.db.execute(
            "update plan_items set status = 'needs_review', reason = ? where run_id = ? and item_id = ?",
            [canonical_json(reason), self.plan, item.item_id],
        )
        return self._audit_row(item, "stale", error=f"record changed since review: {text}")

    def _check_stale(self, kind: str, obj: str, writer: Writer, items: list[_Item]) -> list[_Item]:
        """Drop (and mark) items whose record changed since the snapshot, or is gone."""
        passthrough = [i for i in items if i.action == "associate"]  # additive, no snapshot
        items = [i for i in items if i.action != "associate"]
        if not items:
            return passthrough
        touched = {
            r["crm_record_id"]
            for r in self.db.query(
                "select crm_record_id from journal where run_id = ? and state = 'confirmed'",
                [self.run_id],
            )
        }
        fields = sorted(
            {f for i in items for f in i.props()}
            | {f for i in items for f in (i.payload.get("expect") or {})}
        )
        current = writer.current(obj, [str(i.record_id) for i in items], fields)
        keep, gone, stale = [], [], []
        for item in items:
            state = current.get(str(item.record_id))
            if state is None:
                gone.append(item)
            elif kind == "merge" and item.record_id in touched:
                keep.append(item)
            elif self._is_stale(item, state):
                stale.append((item, state))
            else:
                keep.append(item)
        if gone:
            self._finish(
                gone,
                "failed",
                ErrorClass.NOT_FOUND,
                "the record no longer exists in the CRM (deleted or merged)",
            )
        if stale:
            with transaction(self.db):
                audit.append(self.db, [self._mark_stale(i, s) for i, s in stale])
        return keep + passthrough

    # ------------------------------------------------------------------ result

    def result(self, status: str) -> ApplyResult:
        states = self.states()
        failed: dict[str, int] = {}
        counts = {"confirmed": 0, "skipped": 0, "stale": 0, "pending": 0}
        for row in states.values():
            if row["state"] == "failed":
                failed[row["error_class"] or "unknown"] = (
                    failed.get(row["error_class"] or "unknown", 0) + 1
                )
            elif row["state"] in ("planned", "sent"):
                counts["pending"] += 1
            else:
                counts[row["state"]] += 1
        if status == "ok" and failed:
            status = "partial"
        calls = {k: b.calls + self.prior_calls.get(k, 0) for k, b in self.budgets.items()}
        return ApplyResult(
            run_id=self.run_id,
            plan_run_id=self.plan,
            status=status,
            items=len(states),
            applied=counts["confirmed"],
            failed=dict(sorted(failed.items())),
            skipped=counts["skipped"],
            stale=counts["stale"],
            pending=counts["pending"],
            api_calls=calls,
            anchor=audit.anchor(self.db),
        )
