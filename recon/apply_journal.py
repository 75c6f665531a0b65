"""The journaled apply loop: planned → sent → confirmed | failed | skipped | stale.

Private to :mod:`recon.apply` (see its docstring for the guarantees). :class:`Runner`
works through one apply run's journal phase by phase (creates, updates, associations,
merges): it re-reads items left ``sent``, re-reads the targets right before each batch
(stale-write protection), commits the journal and audit rows before and after every
batch, and retries only what retrying can help.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import sqlite_utils

from . import audit
from .apply_items import Item, loads, newer, norm, ops_for, phases, refresh_unsent
from .config import ReconConfig
from .errors import AuthError, BudgetExhausted, ErrorClass, RateLimited, SourceError
from .models import canonical_json, now_iso, sleep_noted, stable_id
from .plan_load import fields_of
from .plan_values import norm as value_norm
from .review_stale import index_stale
from .store import UNDO_PLAN, get_run, transaction
from .writers import CallBudget, Op, Outcome, RecordState, Writer, backoff_sleep, chunks
from .writers.hubspot import property_strings

__all__ = ["ApplyResult", "Runner"]

log = logging.getLogger(__name__)

#: a HubSpot contact's primary company (HubSpot keeps it in step with the primary label)
PRIMARY_COMPANY = "associatedcompanyid"

_MERGE_REFUSED = (
    "merge not confirmed: merges are irreversible; pass --confirm-merges (in the review app: "
    "Allow merges; in `recon run`: [policy] merges)"
)
_WITHDRAWN = "no longer approved: decided again after the run stopped"
_WITHDRAWN_LIVE = "no longer approved: decided again while the run was applying"


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
    #: the calls this process made (a resumed run's api_calls include those before it stopped;
    #: a dry run's api_calls are the batches it would send, and it makes none)
    calls_made: dict[str, int] = field(default_factory=dict)
    #: the items this process confirmed (``applied`` counts a resumed run's earlier ones too)
    applied_now: int = 0
    anchor: str | None = None

    @property
    def failed_total(self) -> int:
        """All failed items, whatever their class."""
        return sum(self.failed.values())

    def summary(self) -> dict[str, Any]:
        """Plain data for the run row, the CLI table and notifications."""
        return asdict(self)


#: the start of the error of a create whose landing cannot be checked: it is not sent again
#: until someone decides it again (a second copy in the CRM is worse than a missing one)
UNSURE_CREATE = "cannot tell whether this create landed"


class Unknown(Exception):
    """A batch whose outcome is unknown (5xx, network): its items stay ``sent``."""


def ids_of(items: list[Item]) -> list[str]:
    """The item ids of ``items``."""
    return [i.item_id for i in items]


def _values_landed(writer: Writer, obj: str, item: Item) -> bool:
    """Whether a merge's survivorship values are on its survivor. HubSpot merges first and
    writes them after, so a run stopped in between merged without them: the merge is sent
    again (the writer skips the victims already merged, then writes the values). Salesforce
    sends them with the merge itself."""
    props = item.payload.get("fields") or item.payload.get("properties")
    if writer.system != "hubspot" or not props or not item.record_id:
        return True
    state = writer.current(obj, [str(item.record_id)], list(props)).get(str(item.record_id))
    if state is None:
        return False
    wanted = property_strings(props)
    return all(str(state.values.get(k) or "") == v for k, v in wanted.items())


def approvals_mark(db: sqlite_utils.Database) -> tuple[int, tuple[Any, ...]]:
    """When decisions may have changed, and what they hold (:meth:`Runner._decisions_moved`;
    not :func:`recon.plan_load.decisions_mark`, which counts the decisions a plan reads).

    ``(data_version, fingerprint)``: SQLite's ``data_version`` moves when another connection
    (the review app, a reviewer's script, the lock's heartbeat) commits anything, and never
    for this connection's own writes; the fingerprint (rows, last row, which rows are
    superseded, the choices) tells whether the decisions are among what moved, an undo in the
    app (which only flips ``superseded``) included. The links this run records for its creates
    (``decided_by = 'recon'``) are left out: they are no news to it, and with them in, every
    heartbeat after a create made the next batch read every approval again. A person deciding
    about such a link writes a row of their own.
    """
    version = int(db.execute("pragma data_version").fetchone()[0])
    return version, _fingerprint(db)


def _fingerprint(db: sqlite_utils.Database) -> tuple[Any, ...]:
    row = db.execute(
        "select count(*), coalesce(max(rowid), 0), total(rowid * superseded), "
        "total(length(coalesce(choice, '')) * rowid) from decisions "
        "where decided_by is not 'recon'"
    ).fetchone()
    return tuple(row)


class Runner:
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
        mark: tuple[int, tuple[Any, ...]],
    ) -> None:
        """``mark``: :func:`approvals_mark` taken before ``rows`` (the approvals) were read."""
        self.db, self.cfg, self.run_id, self.plan = db, cfg, run_id, plan
        self.approved = {r["item_id"] for r in rows}  # approved now (the journal: when seeded)
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
            r["item_id"]: Item(**json.loads(r["item"]))
            for r in db.query("select item_id, item from journal where run_id = ?", [run_id])
            if r["item"]
        }
        self.batch_no = db.execute(
            "select coalesce(max(batch), 0) from journal where run_id = ?", [run_id]
        ).fetchone()[0]
        self.prepared: set[tuple[str, str]] = set()
        # what the decisions table held when the run read its approvals (see _decisions_moved)
        self.approvals_mark = mark
        prior = get_run(db, run_id)["summary"].get("api_calls") or {}
        self.prior_calls = {k: int(v) for k, v in prior.items()}
        # kept in memory as items are confirmed (re-reading the journal per batch is quadratic)
        self.created: dict[str, str] = {
            r["item_id"]: str(r["crm_record_id"])
            for r in db.query(
                "select item_id, crm_record_id from journal where plan_run_id = ? and state = 'confirmed' "
                "and crm_record_id is not null",
                [plan],
            )
        }
        self.touched, self.merged_into = self._written()
        # creates a stopped run sent, found again by a natural key, not recon's key: no proof
        # the record found is the copy (see _link_copy)
        self.found_by_natural: set[str] = set()
        self.confirmed_now = 0  # items this process confirmed

    # ------------------------------------------------------------------ plumbing

    def writer(self, system: str) -> Writer:
        if system not in self.writers:
            from .apply import build_writer

            self.writers[system] = build_writer(self.cfg, system, self.budgets[system])
        return self.writers[system]

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            r["item_id"]: dict(r)
            for r in self.db.query("select * from journal where run_id = ?", [self.run_id])
        }

    def _calls(self) -> dict[str, int]:
        """The run's API calls per CRM: this process's and those made before it took over."""
        return {k: b.calls + self.prior_calls.get(k, 0) for k, b in self.budgets.items()}

    def _save_calls(self) -> None:
        """Keep the run's call count in its summary as it goes: a process killed part way
        writes no summary, and the run it leaves would count only the resumed one's calls."""
        self.db.execute(
            "update runs set summary = json_set(coalesce(summary, '{}'), '$.api_calls', json(?)) "
            "where run_id = ?",
            [canonical_json(self._calls()), self.run_id],
        )

    def _tick(self) -> None:
        with transaction(self.db):
            self._save_calls()
        if self.progress:
            total, left = self.db.execute(
                "select count(*), coalesce(sum(state in ('planned', 'sent')), 0) from journal where run_id = ?",
                [self.run_id],
            ).fetchone()
            self.progress(int(total) - int(left), int(total))

    def _absorbed(self, item: Item) -> dict[str, Any]:
        """A merge's victims' fields as the store last pulled them (victim id -> fields), so
        the audit keeps a copy of each record the merge deletes (merges cannot be undone)."""
        ids = [str(v) for v in item.merge_ids]
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        out: dict[str, Any] = {}
        for rid, data in self.db.execute(
            f"select record_id, data from snapshots where source = ? and object = ? "
            f"and record_id in ({marks})",
            [item.system, item.object, *ids],
        ):
            decoded = loads(data)
            if isinstance(decoded, dict):
                out[str(rid)] = fields_of(decoded)
        return out

    def _audit_row(
        self,
        item: Item,
        outcome: str,
        *,
        error: str | None = None,
        record_id: str | None = None,
        unwritten: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One audit row; ``unwritten``: fields of a create that landed without them (left
        out of ``after``, named in ``error``)."""
        rid = record_id or item.record_id
        before, after = item.before, item.after
        if item.action == "associate":
            # the records it joins as sent: one a create of the plan made by its id (the plan
            # names it by the create item), one the run merged away by its survivor
            fid, to_obj, to_id = item.ends(self.created)
            rid = rid or self._survivor(item.object, fid)
            if to_id is not None:
                after = self._survivor(to_obj, to_id)
        link = None
        if item.system in self.writers and rid:
            link = self.writers[item.system].record_link(item.object, rid)
        if item.kind == "create":
            after = {k: v for k, v in item.props().items() if k not in (unwritten or {})}
            if unwritten:
                error = "; ".join(f"{f} not written: {why}" for f, why in sorted(unwritten.items()))
        elif item.kind == "merge":
            # the survivorship values written onto the survivor, with what they replaced
            fields = dict(item.payload.get("fields") or item.payload.get("properties") or {})
            was = item.before if isinstance(item.before, dict) else {}
            before = {"merge_ids": item.merge_ids, "fields": {f: was.get(f) for f in fields}}
            absorbed = self._absorbed(item)
            if absorbed:  # the records a merge deletes, as last pulled: a person can rebuild one
                before["absorbed"] = absorbed
            after = {"survivor": rid, "fields": fields}
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

    def _set(self, item: Item, state: str, **cols: Any) -> None:
        rid = cols.get("crm_record_id")
        if state == "confirmed":
            self.confirmed_now += 1
        if state == "confirmed" and rid:
            self.touched.add(str(rid))
            if item.action in ("update", "owner", "associate"):
                self.own_values.setdefault(str(rid), {}).update(item.props(self.created))
            if item.action == "create":
                self.created[item.item_id] = str(rid)
                self._link_copy(item, str(rid))
            if item.action == "merge":
                self.merged_into.update(dict.fromkeys(item.merge_ids, str(rid)))
                self.merged_object.update(dict.fromkeys(item.merge_ids, item.object))
                self._victims_gone(item, str(rid))
                self.merge_left[str(rid)] = item
        self.db.execute(
            "update journal set state = ?, updated_at = ?"
            + "".join(f", {k} = ?" for k in cols)
            + " where run_id = ? and item_id = ?",
            [state, now_iso(), *cols.values(), self.run_id, item.item_id],
        )

    @staticmethod
    def _merge_left_it(merge: Item, item: Item, state: RecordState) -> bool:
        """Whether every field of ``item`` holds a value ``merge`` could have left there (its
        chosen value, or a merged record's), not someone's edit."""
        left = _left_by(merge)
        return all(
            any(f in a and norm(state.values.get(f)) == norm(a[f]) for a in left)
            for f in item.props()
        )

    def _link_copy(self, item: Item, rid: str) -> None:
        """A record this run created from one in the other CRM is that record: the link
        between them is approved at once (``decided_by = "recon"``: no person's label, so
        it neither trains weights nor counts as a review; a reviewer may still reject it).
        Without it the next match proposed every copy as a new link to review."""
        source = item.payload.get("source")
        if (
            item.item_id in self.found_by_natural
            or not isinstance(source, dict)
            or not source.get("record_id")
        ):
            # a create found again after a stop may be found by a natural key (a shared
            # website): that match is no proof it is the copy; the match and a person decide
            return
        ends = {str(source.get("system")): str(source["record_id"]), item.system: rid}
        hs_id, sf_id = ends.get("hubspot"), ends.get("salesforce")
        sf_obj = item.object if item.system == "salesforce" else str(source.get("object"))
        entity = "companies" if sf_obj == "Account" else "contacts"
        if not hs_id or not sf_id:
            return
        pair = stable_id(entity, "hubspot", hs_id, "salesforce", sf_id)
        if self.db.execute(
            "select 1 from decisions where item_id = ? and superseded = 0", [pair]
        ).fetchone():
            return  # decided already
        self.db["decisions"].insert(
            {"kind": "link", "object": entity, "source_l": "hubspot", "record_id_l": hs_id,
             "source_r": "salesforce", "record_id_r": sf_id,
             "salesforce_object": sf_obj if entity == "contacts" else None, "label": "match",
             "item_id": pair, "decided_by": "recon", "reviewer": "recon",
             "decided_at": now_iso(), "version": 1, "superseded": 0, "run_id": self.run_id,
             "note": f"created from it by {self.run_id}"}
        )  # fmt: skip

    def _partly_merged(self, item: Item, outcome: Outcome) -> str:
        """Record the victims a merge merged before it stopped: gone from the store, their
        survivor written by recon (judged by value from now on); the audit's after-value."""
        survivor = str(outcome.record_id or item.record_id)
        self.merged_into.update(dict.fromkeys(outcome.merged, survivor))
        self.merged_object.update(dict.fromkeys(outcome.merged, item.object))
        self.touched.add(survivor)
        self.touched.update(map(str, outcome.related))
        self._victims_gone(item, survivor, outcome.merged)
        return canonical_json({"survivor": survivor, "merged": list(outcome.merged)})

    def _victims_gone(
        self, item: Item, survivor: str, victims: Sequence[str] | None = None
    ) -> None:
        """A confirmed merge removed its victims from the CRM: the store says so now (archived),
        so the next plan neither merges them again nor reads them as live, long before the
        periodic archived sweep of the pull would notice."""
        gone = [str(v) for v in (item.merge_ids if victims is None else victims)]
        victims = [v for v in gone if v != survivor]
        if not victims:
            return
        marks = ", ".join("?" * len(victims))
        self.db.execute(
            f"update snapshots set archived = 1 where source = ? and object = ? "
            f"and record_id in ({marks})",
            [item.system, item.object, *map(str, victims)],
        )

    def _audit_schema(self, system: str, writer: Writer) -> None:
        """Audit the fields a writer created in the CRM while preparing (HubSpot's key property)."""
        changes = getattr(writer, "schema_changes", None)
        if not changes:
            return
        rows = [self._schema_row(system, c, "confirmed") for c in changes]
        changes.clear()
        with transaction(self.db):
            audit.append(self.db, rows)

    def _schema_event(self, system: str, change: dict[str, Any], outcome: str) -> None:
        """Audit a field the writer is about to create (``intended``), or failed to; one it
        found (``exists``) confirms a create audited as intended whose answer was lost."""
        row = self._schema_row(system, change, outcome)
        with transaction(self.db):
            if outcome == "exists":
                last = self.db.execute(
                    "select outcome from audit where item_id = ? order by seq desc limit 1",
                    [row["item_id"]],
                ).fetchone()
                if last is None or last[0] != "intended":
                    return  # there before recon, or its create audited already
                row.update(outcome="confirmed", error="found on a later read")
            audit.append(self.db, [row])

    def _schema_row(self, system: str, c: dict[str, Any], outcome: str) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "item_id": f"schema:{system}:{c['object']}.{c['field']}",
            "crm": system,
            "object": c["object"],
            "field": c["field"],
            "before": None,
            "after": canonical_json(c["after"]),
            "outcome": outcome,
        }

    def _finish(
        self, items: list[Item], state: str, error_class: ErrorClass | None, error: str | None
    ) -> None:
        with transaction(self.db):
            for item in items:
                self._set(
                    item, state, error_class=error_class.value if error_class else None, error=error
                )
            audit.append(self.db, [self._audit_row(i, state, error=error) for i in items])

    # ------------------------------------------------------------------ decisions

    def _decisions_moved(self) -> bool:
        """Take in decisions made since the run read its approvals (a reviewer in the app while
        this apply runs), before the next batch: an item whose approval was taken back and
        that was never sent is skipped (``_WITHDRAWN_LIVE``); a merge or a chosen value
        decided again (another master, another value) that was never sent takes the new
        decision. True when any item changed (the batches are then built again)."""
        version = int(self.db.execute("pragma data_version").fetchone()[0])
        if version == self.approvals_mark[0]:
            return False  # the common case: no other connection wrote (one pragma per batch)
        fingerprint = _fingerprint(self.db)
        if fingerprint == self.approvals_mark[1]:
            self.approvals_mark = (version, fingerprint)
            return False  # another connection wrote, but no decision
        self.approvals_mark = (version, fingerprint)
        from .apply import _eligible, approved_plan_items

        # what a new apply of the plan would send (a stale write approved since re-aimed at
        # the record's new version; a stale event dropped since left out), as _seed reads it
        now = {
            r["item_id"]: r
            for r in _eligible(
                self.db, self.plan, self.run_id, approved_plan_items(self.db, self.plan)
            )
        }
        states = self.states()
        withdrawn = [
            item
            for iid, item in self.items.items()
            if iid not in now and states[iid]["state"] == "planned"
        ]
        if withdrawn:
            log.warning(
                "apply %s: %d item(s) no longer approved since the run started: not sent",
                self.run_id,
                len(withdrawn),
            )
            self._finish(withdrawn, "skipped", None, _WITHDRAWN_LIVE)
        changed = 0
        with transaction(self.db):
            for iid, row in now.items():
                st = states.get(iid)
                if iid not in self.items or st is None:
                    continue
                fresh = refresh_unsent(self.db, self.run_id, row, st)
                if fresh is not None:
                    self.items[iid] = fresh
                    changed += 1
        self.approved = set(now)
        return bool(withdrawn) or bool(changed)

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        # a resumed run: items decided again since it stopped (a link rejected, an approval
        # taken back) are not sent; an item already sent is still looked up (it may have landed)
        states = self.states()
        withdrawn = [
            item
            for iid, item in self.items.items()
            if iid not in self.approved and states[iid]["state"] == "planned"
        ]
        if withdrawn:
            self._finish(withdrawn, "skipped", None, _WITHDRAWN)
        for kind, system, obj, group in phases(list(self.items.values())):
            self._phase(kind, system, obj, group)
        self._tick()

    def _phase(self, kind: str, system: str, obj: str, items: list[Item]) -> None:
        rounds = 0
        retry_round = 0
        while True:
            items = [self.items[i.item_id] for i in items]  # as decided now (_decisions_moved)
            states = self.states()
            live = [i for i in items if states[i.item_id]["state"] in ("planned", "sent")]
            if not live:
                return
            writer = self.writer(system)
            if kind == "create" and (system, obj) not in self.prepared:
                if hasattr(writer, "schema_event"):  # a field it creates is audited before
                    writer.schema_event = functools.partial(self._schema_event, system)
                writer.prepare([obj])
                self.prepared.add((system, obj))
                self._audit_schema(system, writer)
            sent = [i for i in live if states[i.item_id]["state"] == "sent"]
            if sent:
                self._reconcile(kind, obj, writer, sent)
            states = self.states()
            planned = [i for i in items if states[i.item_id]["state"] == "planned"]
            if kind == "merge" and not self.confirm_merges:
                self._finish(planned, "skipped", None, _MERGE_REFUSED)
                continue
            for item in [
                i for i in planned if (states[i.item_id]["attempts"] or 0) > self.max_retries
            ]:
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
                planned.remove(item)
            created = self._created()
            ops = ops_for(kind, obj, planned, created)
            if kind == "associate":
                missing = [(op, its) for op, its in ops if not op.record_id or not op.to_id]
                for _op, its in missing:
                    self._finish(its, "skipped", None, "depends on a create that did not succeed")
                ops = [o for o in ops if o not in missing]
                # an end recon merged away (same object): the association goes to its survivor
                ops = [(self._to_survivor(op), its) for op, its in ops]
            unknown = moved = False
            for part in chunks(ops, writer.max_batch(kind)):
                if self._decisions_moved():
                    moved = True  # approvals taken back or changed: build the batches again
                    break
                if kind in ("update", "merge", "associate"):
                    part = self._fresh(kind, obj, writer, part)  # re-read right before the batch
                if not part:
                    continue
                try:
                    self._send(writer, part)
                except Unknown:
                    unknown = True
                self._tick()
            if moved:
                continue
            if unknown:
                rounds += 1
                sleep_noted(
                    min(30.0, 0.2 * 2 ** min(rounds, 8)),
                    "the CRM, before re-reading writes whose outcome is not known yet",
                )
            elif any(s["state"] == "planned" for s in map(self.states().get, ids_of(planned)) if s):
                # refused for a reason that passes (a record lock, a limit, a server hiccup):
                # wait before sending those again, longer each round
                retry_round += 1
                backoff_sleep(retry_round, None, what="a retry of writes the CRM refused for now")

    def _created(self) -> dict[str, str]:
        return self.created

    def _send(self, writer: Writer, part: list[tuple[Op, list[Item]]]) -> None:
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
            self._save_calls()  # the reads before the batch
        try:
            outcomes = writer.write([op for op, _its in part])
        except SourceError as exc:
            if isinstance(exc, BudgetExhausted | AuthError):
                raise  # items stay `sent`: the resumed run re-reads them before sending again
            if isinstance(exc, RateLimited):
                # still limited after the writer's own retries (`max_retries`, with backoff and
                # Retry-After): not processed (a 429 never is). Failed now, not sent again in
                # rounds of their own (each round retried again: (max_retries + 1)² calls); the
                # next apply sends them
                self._finish(
                    items,
                    "failed",
                    ErrorClass.RATE_LIMITED,
                    f"still rate limited after {self.max_retries} retries: {str(exc)[:400]}",
                )
                log.warning("batch %d: %s; its records failed", self.batch_no, exc)
                return
            with transaction(self.db):
                for item in items:
                    self._set(item, "sent", error_class=exc.error_class.value, error=str(exc)[:500])
            log.warning("batch %d: %s; re-reading before retrying", self.batch_no, exc)
            raise Unknown() from None
        by_ref = {o.ref: o for o in outcomes}
        refused = [
            op
            for op, _its in part
            if (o := by_ref.get(op.ref)) and o.error_class is ErrorClass.STALE
        ]
        now: dict[str, RecordState] = {}
        if refused:  # a conditional write was refused (412): keep both versions for review
            try:
                now = writer.current(
                    refused[0].object,
                    [str(op.record_id) for op in refused],
                    sorted({f for op in refused for f in op.properties}),
                )
            except SourceError:
                now = {}
        rows = []
        with transaction(self.db):
            for op, its in part:
                outcome = by_ref.get(op.ref) or Outcome(
                    op.ref, False, op.record_id, ErrorClass.UNKNOWN, "no outcome"
                )
                for item in its:
                    if outcome.error_class is ErrorClass.STALE:
                        rows.append(
                            self._mark_stale(
                                item,
                                now.get(str(op.record_id))
                                or RecordState(str(op.record_id), None, {}),
                            )
                        )
                    elif outcome.ok:
                        # records the merge re-parented: their time moved by our write
                        self.touched.update(map(str, outcome.related))
                        self._set(
                            item,
                            "confirmed",
                            crm_record_id=outcome.record_id,
                            error_class=None,
                            error=None,
                        )
                        rows.append(
                            self._audit_row(
                                item,
                                "confirmed",
                                record_id=outcome.record_id,
                                unwritten=outcome.unwritten,
                            )
                        )
                    else:
                        state = "planned" if outcome.retryable else "failed"
                        cls = outcome.error_class or ErrorClass.UNKNOWN
                        self._set(item, state, error_class=cls.value, error=outcome.error)
                        row = self._audit_row(
                            item, "failed" if state == "failed" else "retry", error=outcome.error
                        )
                        if outcome.merged:  # a merge stopped part-way: what did land
                            row["after"] = self._partly_merged(item, outcome)
                        rows.append(row)
            audit.append(self.db, rows)

    # ------------------------------------------------------------------ re-reads

    def _reconcile(self, kind: str, obj: str, writer: Writer, items: list[Item]) -> None:
        """Learn whether items left ``sent`` landed: confirmed, or back to planned (or stale)."""
        landed: dict[str, str | None] = {}
        stale: list[tuple[Item, RecordState]] = []
        settled: set[str] = set()  # finished here already (skipped)
        if kind == "update":
            created = self._created()
            ops = ops_for("update", obj, items, created)
            fields = sorted({f for op, _its in ops for f in op.properties})
            current = writer.current(obj, [str(op.record_id) for op, _its in ops], fields)
            for op, its in ops:
                state = current.get(str(op.record_id))
                if state is None:
                    continue
                if all(norm(state.values.get(f)) == norm(v) for f, v in op.properties.items()):
                    for item in its:
                        landed[item.item_id] = op.record_id
                    continue
                # one request wrote the record's fields together: where some hold the values
                # sent, it landed and a person edited the others since. Those that hold their
                # value are confirmed (audited, undoable); the others are judged as edits
                in_place = {
                    item.item_id
                    for item in its
                    if (props := item.props(created))
                    and all(norm(state.values.get(f)) == norm(v) for f, v in props.items())
                }
                if len(its) > 1:
                    for item in its:
                        if item.item_id in in_place:
                            landed[item.item_id] = op.record_id
                # (a field of a landed write that holds another value now was edited by a
                # person after it: stale, whatever value it holds)
                mine = str(op.record_id) in self.touched and not (len(its) > 1 and in_place)
                stale.extend(
                    (item, state)
                    for item in its
                    if item.item_id not in landed
                    and self._is_stale(item, state, written_by_run=mine)
                )
        elif kind == "create":
            ops = ops_for("create", obj, items, {})
            found = writer.find_created(obj, [op for op, _ in ops])
            for op, its in ops:
                searched = (  # found only through search, which indexes a create late
                    writer.system == "hubspot"
                    and op.natural is not None
                    and not (obj == "contacts" and op.natural[0] == "email")
                )
                if op.ref in found:
                    landed[its[0].item_id] = found[op.ref]
                    if not getattr(writer, "key_ready", {}).get(obj, True):
                        self.found_by_natural.add(its[0].item_id)  # a shared website, maybe
                elif not getattr(writer, "key_ready", {}).get(obj, True) and (
                    not op.natural or searched
                ):
                    self._finish(
                        its,
                        "failed",
                        ErrorClass.UNKNOWN,
                        f"{UNSURE_CREATE} (no key field; "
                        + ("search may not show it yet" if op.natural else "no natural key")
                        + "): check the CRM, then approve the create again to send it",
                    )
        elif kind == "merge":
            for item in items:
                ids = item.merge_ids
                gone = writer.merged_away(obj, ids) if ids else set()
                if ids and gone == set(ids) and (by := self._merged_by(item)) is not None:
                    # another plan's apply merged them while this one was stopped: not this
                    # run's merge (its request may never have reached the CRM)
                    self._finish(
                        [item], "skipped", None, f"merged already by {by}: nothing to write"
                    )
                    settled.add(item.item_id)
                elif ids and gone == set(ids) and _values_landed(writer, obj, item):
                    landed[item.item_id] = item.record_id
                elif gone:
                    # stopped part-way: this run's own merge moved the master's time (it is
                    # not stale for that); the writer skips the victims already merged
                    self.touched.add(str(item.record_id))
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
                if (
                    item.item_id not in landed
                    and item.item_id not in settled
                    and item not in [s[0] for s in stale]
                ):
                    self.db.execute(
                        "update journal set state = 'planned' where run_id = ? and item_id = ? and state = 'sent'",
                        [self.run_id, item.item_id],
                    )
            audit.append(self.db, rows)

    def _written(self) -> tuple[set[str], dict[str, str]]:
        """Records recon wrote for this plan, in this run or an earlier one (confirmed), and
        the records its merges removed (→ survivor). Their modified times moved because of
        recon's own writes: they are judged by value, not by time."""
        touched: set[str] = set()
        merged_into: dict[str, str] = {}
        self.merged_object: dict[str, str] = {}  # merged-away record -> its object
        self.own_values: dict[str, dict[str, Any]] = {}  # record -> field -> value recon wrote
        self.merge_left: dict[str, Item] = {}  # a master this plan merged into -> the merge
        # a merge's victims as last read (their times say which member a stale merge changed)
        self.victim_states: dict[str, RecordState] = {}
        for r in self.db.query(
            "select crm_record_id, item from journal where plan_run_id = ? and state = 'confirmed' "
            "order by updated_at",
            [self.plan],
        ):
            if r["crm_record_id"]:
                touched.add(str(r["crm_record_id"]))
            item = json.loads(r["item"] or "{}")
            if r["crm_record_id"] and item.get("action") in ("update", "owner", "associate"):
                self.own_values.setdefault(str(r["crm_record_id"]), {}).update(Item(**item).props())
            if item.get("action") == "merge":
                for victim in Item(**item).merge_ids:
                    merged_into[victim] = str(r["crm_record_id"] or item.get("record_id"))
                    self.merged_object[victim] = str(item.get("object"))
                self.merge_left[str(r["crm_record_id"] or item.get("record_id"))] = Item(**item)
        return touched, merged_into

    def _is_stale(self, item: Item, state: RecordState, *, written_by_run: bool = False) -> bool:
        """Whether the record changed since the decision in a way that matters.

        Undo items carry ``expect`` (the values apply wrote): stale when a field differs.
        Merges carry the survivorship inputs (``values``): a master touched since (also
        indirectly, e.g. re-parented by another merge) is stale only when one of those
        values changed. Everything else: stale when modified after the snapshot.
        """
        expect = item.payload.get("expect")
        if isinstance(expect, dict) and expect:
            return any(norm(state.values.get(f)) != norm(v) for f, v in expect.items())
        if not item.snapshot and item.action in ("update", "owner") and item.field:
            # no time to compare (a record from an export file without a modified column):
            # the value the plan saw is all there is; another one there now is someone's edit
            now = state.values.get(item.field)
            return not (_same_loosely(now, item.before) or _same_loosely(now, item.after))
        if not newer(state.modified_at, item.snapshot):
            return False
        props = item.props()
        if written_by_run and item.action != "merge" and item.field and len(props) == 1:
            # this run's own write (e.g. a merge's survivorship) moved the time: check the value
            now = norm(state.values.get(next(iter(props))))
            return now not in (norm(item.before), norm(next(iter(props.values()))))
        values = item.payload.get("values")
        if item.action == "merge" and isinstance(values, dict) and values:
            master = str(item.record_id)
            return any(
                isinstance(per, dict)
                and master in per
                and norm(state.values.get(f)) != norm(per[master])
                for f, per in values.items()
            )
        return True

    def _primary_moved(self, item: Item, op: Op, state: RecordState) -> bool:
        """Whether a contact's primary company is another one than the review saw (the item's
        ``before``) and than the one the association makes primary: a person chose it since.
        Judged by value, not time: this run's own updates of the contact move its time. A
        company this plan merged away counts as its survivor."""
        now = norm(state.values.get(PRIMARY_COMPANY))
        seen = (item.before, op.to_id)
        return now not in {
            norm(v) for rid in seen for v in (rid, self._survivor(op.to_object, rid))
        }

    def _merged_by(self, item: Item) -> str | None:
        """The other apply run (of any plan) that confirmed a merge of all the records of
        ``item`` (whichever record it kept); None when there is none."""
        ours = {str(item.record_id), *map(str, item.merge_ids)}
        marks = ",".join("?" * len(ours))
        for run, rid, text in self.db.execute(
            f"select run_id, crm_record_id, item from journal where crm_record_id in ({marks}) "
            "and state = 'confirmed' and run_id != ? and json_extract(item, '$.action') = "
            "'merge' order by updated_at desc",
            [*sorted(ours), self.run_id],
        ):
            # theirs covers every record of ours: else some of ours were merged by this run
            # (a merge that stopped part way), and the merge is this plan's to finish
            if ours <= {str(rid), *map(str, Item(**json.loads(text)).merge_ids)}:
                return str(run)
        return None

    def _tried(self, kind: str, item_ids: list[str]) -> set[str]:
        """Of ``item_ids``, the merges this plan sent before without confirming them."""
        if kind != "merge" or not item_ids:
            return set()
        marks = ",".join("?" * len(item_ids))
        return {
            r[0]
            for r in self.db.execute(
                # sent at least once (a merge refused as stale before sending never reached
                # the CRM), not settled: failed, stale, or put back to planned after a stop
                # with its values not landed
                f"select distinct item_id from journal where plan_run_id = ? and item_id in "
                f"({marks}) and state in ('sent', 'failed', 'stale', 'planned') "
                "and coalesce(attempts, 0) > 0",
                [self.plan, *item_ids],
            )
        }

    @staticmethod
    def _merge_moved(item: Item, state: RecordState, own: dict[str, Any]) -> bool:
        """Whether a survivorship input of a merge's master changed since review, other than
        by recon's own writes to it (``own``: field -> value recon wrote there), or by this
        merge itself: its own values (a part of it that ran), a victim's value (the CRM
        fills a master's blanks from the records merged into it)."""
        values = item.payload.get("values")
        if not isinstance(values, dict):
            return False
        return _inputs_moved(values, str(item.record_id), state, own, *_left_by(item))

    def _survivor(self, obj: str | None, record_id: str | None) -> str | None:
        """``record_id``, or its survivor when this plan merged it away (an ``obj`` record)."""
        # merged_object and merged_into are filled together: one check stands for both
        if record_id is not None and self.merged_object.get(str(record_id)) == obj:
            return self.merged_into[str(record_id)]
        return record_id

    def _to_survivor(self, op: Op) -> Op:
        """An association op with each end this plan merged away replaced by its survivor."""
        rid = str(self._survivor(op.object, str(op.record_id)))
        to_id = str(self._survivor(op.to_object, str(op.to_id)))
        if (rid, to_id) == (str(op.record_id), str(op.to_id)):
            return op
        return replace(op, record_id=rid, to_id=to_id)

    def _drop_restored(
        self,
        kind: str,
        obj: str,
        part: list[tuple[Op, list[Item]]],
        checked: list[tuple[Op, list[Item]]],
        current: dict[str, RecordState],
    ) -> tuple[list[tuple[Op, list[Item]]], list[tuple[Op, list[Item]]]]:
        """Field writes whose record holds their values already are skipped: nothing to
        write, and nothing for a person to judge as stale. An undo finds its run undone
        before; a plan built before the last pull finds recon's own earlier write (or a
        person made the same change).

        Returns ``part`` and ``checked`` without them (their ops rebuilt)."""
        created = self._created()
        done = [
            i
            for op, its in checked
            if (state := current.get(str(op.record_id))) is not None
            for i in its
            if i.action in ("update", "owner", "associate")
            and (props := i.props(created))
            and all(norm(state.values.get(f)) == norm(v) for f, v in props.items())
        ]
        if not done:
            return part, checked
        gone = {i.item_id for i in done}
        undo = [i for i in done if isinstance(i.payload.get("expect"), dict)]
        if undo:
            self._finish(
                undo,
                "skipped",
                None,
                "the field holds the value to restore already: nothing to write",
            )
        held = [i for i in done if i not in undo]
        if held:
            self._finish(
                held, "skipped", None, "the record holds this value already: nothing to write"
            )
        rebuilt: list[tuple[Op, list[Item]]] = []
        for op, its in part:
            left = [i for i in its if i.item_id not in gone]
            if len(left) == len(its):
                rebuilt.append((op, its))
            elif left:
                rebuilt.extend(ops_for(kind, obj, left, created))
        return rebuilt, ([] if kind == "associate" else list(rebuilt))

    def _victim_changed(self, item: Item, states: dict[str, RecordState]) -> bool:
        """Whether a merge's victim changed since review: modified after the time the review
        saw (the merge would delete a person's edit with it, in any field), or holding, in a
        field the merge compares, another value than the one the review saw (survivorship
        would write a value someone replaced since, or drop the newer one with the victim).
        A victim already merged away is not asked; a victim recon itself wrote for this plan
        is judged by value only, and such a value is no one else's change."""
        if item.action != "merge":
            return False
        values = item.payload.get("values")
        values = dict(values) if isinstance(values, dict) else {}
        watch = item.payload.get("watch")
        if isinstance(watch, dict):  # consent flags the members agreed on (plan_merge)
            values = {**watch, **values}
        seen = item.payload.get("modified")
        seen = seen if isinstance(seen, dict) else {}
        for victim in map(str, item.payload.get("victims") or ()):
            state = states.get(victim)
            if state is None:
                continue
            own = self.own_values.get(victim, {})
            if not own and newer(state.modified_at, seen.get(victim)):
                return True
            if _inputs_moved(values, victim, state, own):
                return True
        return False

    def _changed_members(self, item: Item, state: RecordState) -> dict[str, dict[str, Any]]:
        """The members of stale merge ``item`` modified after the time the review saw:
        ``{record id: {"reviewed": time, "now": time}}`` (the master's state is ``state``)."""
        seen = item.payload.get("modified")
        seen = seen if isinstance(seen, dict) else {}
        out: dict[str, dict[str, Any]] = {}
        members = [str(item.record_id), *map(str, item.payload.get("victims") or ())]
        for rid in members:
            now = state if rid == str(item.record_id) else self.victim_states.get(rid)
            reviewed = seen.get(rid, item.snapshot if rid == str(item.record_id) else None)
            if now is not None and newer(now.modified_at, reviewed):
                out[rid] = {"reviewed": reviewed, "now": now.modified_at}
        return out

    def _mark_stale(self, item: Item, state: RecordState) -> dict[str, Any]:
        current = {f: state.values.get(f) for f in item.props(self._created())}
        if item.kind == "associate" and item.field:  # the contact's primary company
            current = {item.field: state.values.get(PRIMARY_COMPANY)}
        both = {
            "snapshot_modified_at": item.snapshot,
            "current_modified_at": state.modified_at,
            "planned_before": item.before,
            "planned_after": item.after,
            "current": current or None,
            "apply_run_id": self.run_id,
        }
        if item.action == "merge":
            # a merge is stale for any member's change: name the members that changed (its
            # master's time alone hid a victim edited since review)
            both["changed_members"] = self._changed_members(item, state)
        merge = self.merge_left.get(str(state.record_id))
        if item.action != "merge" and merge is not None and self._merge_left_it(merge, item, state):
            # not someone's edit: this plan's own merge into the record left the value in the
            # way (its survivorship, or the CRM's fill from a merged record)
            both["by_recon_merge"] = merge.item_id
        text = canonical_json(both)
        self._set(item, "stale", error_class=ErrorClass.STALE.value, error=text)
        row = self.db.execute(
            "select reason from plan_items where run_id = ? and item_id = ?",
            [self.plan, item.item_id],
        ).fetchone()
        reason = loads(row[0]) if row else None
        reason = reason if isinstance(reason, dict) else {"reason": reason}
        reason["stale"] = both
        self.db.execute(
            "update plan_items set status = 'needs_review', reason = ? where run_id = ? and item_id = ?",
            [canonical_json(reason), self.plan, item.item_id],
        )
        if self.db.execute(
            "select 1 from review_state where name = 'queue' and (plan_run_id = ? or exists "
            f"(select 1 from runs where run_id = ? and {UNDO_PLAN}))",
            [self.plan, self.plan],
        ).fetchone():
            # the queue shows it at once (an undo plan's beside the forward plan's)
            index_stale(self.db, self.plan, [item.item_id])
        return self._audit_row(item, "stale", error=f"record changed since review: {text}")

    def _fresh(
        self, kind: str, obj: str, writer: Writer, part: list[tuple[Op, list[Item]]]
    ) -> list[tuple[Op, list[Item]]]:
        """The ops of ``part`` whose records did not change since their snapshot.

        A changed record is not overwritten: all its items become stale (back to review);
        a record this run merged away is skipped, one that no longer exists otherwise fails
        ``not_found``. A HubSpot association that makes a company the contact's primary one
        is judged by the contact's primary company (:meth:`_primary_moved`); one that only
        adds an association changes nothing a person set. A Salesforce association is an
        ``AccountId`` update and is checked like one.
        """
        touched, merged_into = self.touched, self.merged_into
        # a HubSpot association: only one that moves the primary company is checked
        checked = [(op, its) for op, its in part if op.primary or kind != "associate"]
        fields = sorted(
            {f for op, _its in checked for f in op.properties}
            | {f for _op, its in checked for i in its for f in (i.payload.get("expect") or {})}
            | {
                f
                for _op, its in checked
                for i in its
                if i.action == "merge"
                for f in [*(i.payload.get("values") or {}), *(i.payload.get("watch") or {})]
            }
        )
        if kind == "associate":
            fields = [PRIMARY_COMPANY]
        # a merge takes values from its victims too (a victim edited since review is news):
        # read with the masters, in the same call
        victims = sorted(
            {
                str(v)
                for _op, its in checked
                for i in its
                if i.action == "merge"
                for v in i.payload.get("victims") or ()
            }
        )
        ids = [str(op.record_id) for op, _its in checked]
        current = (
            writer.current(obj, ids + [v for v in victims if v not in set(ids)], fields)
            if checked
            else {}
        )
        victim_states = {v: current[v] for v in victims if v in current}
        self.victim_states.update(victim_states)
        part, checked = self._drop_restored(kind, obj, part, checked, current)
        keep: list[tuple[Op, list[Item]]] = []
        gone: list[Item] = []
        stale: list[tuple[Item, RecordState]] = []
        moot: list[Item] = []
        merged_before: list[Item] = []
        # merges this plan sent before (in this run or an earlier one) and did not confirm:
        # their victims may be gone by this plan's own hand (a merge whose values were refused)
        tried = self._tried(kind, [i.item_id for _op, its in part for i in its])
        for op, its in part:
            state = current.get(str(op.record_id))
            sent_before = any(i.item_id in tried for i in its)
            mine = str(op.record_id) in touched or sent_before
            if (op, its) not in checked:
                keep.append((op, its))
            elif state is None and str(op.record_id) in merged_into:
                moot.extend(its)
            elif (
                kind == "merge"
                and not sent_before
                and (state is None or all(str(v) not in current for v in its[0].merge_ids))
            ):
                # the master, or every victim, was merged away (or deleted) before, and not
                # by this merge: another plan's apply (which may have kept another master) or
                # someone in the CRM did it; this plan's old survivorship values are not
                # written, and there is nothing left to merge
                merged_before.extend(its)
            elif state is None:
                gone.extend(its)
            elif kind == "associate":
                bad = [i for i in its if self._primary_moved(i, op, state)]
                stale.extend((i, state) for i in bad)
                if not bad:
                    keep.append((op, its))
            elif kind == "merge" and mine:
                # this plan wrote the master already (a link's updates, a merge stopped part
                # way): its time moved, so each survivorship input is judged by value, and a
                # value recon itself wrote there is no news; a person's edit since still is
                own = self.own_values.get(str(op.record_id), {})
                bad = [
                    i
                    for i in its
                    if self._merge_moved(i, state, own) or self._victim_changed(i, victim_states)
                ]
                stale.extend((i, state) for i in bad)
                if not bad:
                    keep.append((op, its))
            elif mine and kind == "update":
                # this run already wrote the record (its time moved): judge each field by value,
                # and send no precondition on the time this run itself moved
                bad = [i for i in its if self._is_stale(i, state, written_by_run=True)]
                stale.extend((i, state) for i in bad)
                ok = [i for i in its if i not in bad]
                if ok:
                    props = {f: v for i in ok for f, v in i.props(self._created()).items()}
                    keep.append((Op(op.ref, "update", op.object, op.record_id, props), ok))
            elif bad := [
                i for i in its if self._is_stale(i, state) or self._victim_changed(i, victim_states)
            ]:
                # each item against its own snapshot: a stale write approved in review since
                # (aimed at the current version) still goes, with its own precondition
                stale.extend((i, state) for i in bad)
                ok = [i for i in its if i not in bad]
                if ok:
                    keep.extend(ops_for(kind, obj, ok, self._created()))
            else:
                keep.append((op, its))
        for into in sorted({merged_into[str(i.record_id)] for i in moot}):
            group = [i for i in moot if merged_into[str(i.record_id)] == into]
            self._finish(
                group,
                "skipped",
                ErrorClass.NOT_FOUND,
                f"the record was merged into {into} by recon",
            )
        for item in merged_before:
            by = self._merged_by(item)
            self._finish(
                [item],
                "skipped",
                None,
                f"merged already by {by}: nothing to write"
                if by
                else "its records were merged (or deleted) already, outside this plan: nothing "
                "to write",
            )
        undone = [i for i in gone if isinstance(i.payload.get("expect"), dict)]
        if undone:  # an undo of a record deleted or merged since: nothing left to restore
            self._finish(
                undone,
                "skipped",
                ErrorClass.NOT_FOUND,
                "the record no longer exists in the CRM (deleted or merged since): nothing to restore",
            )
            gone = [i for i in gone if i not in undone]
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
        return keep

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
        calls = self._calls()
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
            calls_made={k: b.calls for k, b in self.budgets.items()},
            applied_now=self.confirmed_now,
            anchor=audit.anchor(self.db),
        )


def _left_by(merge: Item) -> list[dict[str, Any]]:
    """What a merge may leave in its master's fields (field -> value): its chosen values, and
    each merged record's as review saw it (the CRM fills a master's blanks from them).

    Examples:
        >>> m = Item("m", "merge", "hubspot", "companies", "1", None, None, None, None,
        ...          {"victims": ["2"], "fields": {"phone": "9"}, "values": {"city": {"1": None, "2": "Oslo"}}}, 10)
        >>> _left_by(m)
        [{'phone': '9'}, {'city': 'Oslo'}]
    """
    raw = merge.payload.get("values")
    values: dict[str, Any] = raw if isinstance(raw, dict) else {}
    victims = [
        {f: per[str(v)] for f, per in values.items() if isinstance(per, dict) and str(v) in per}
        for v in merge.merge_ids
    ]
    return [merge.props(), *victims]


def _inputs_moved(
    values: dict[str, Any], rid: str, state: RecordState, *accepted: dict[str, Any]
) -> bool:
    """Whether record ``rid`` holds, in a field a merge compares (``values``: field ->
    record -> the value review saw), another value than review saw and than any of
    ``accepted`` (field -> value recon itself wrote there).

    Examples:
        >>> st = RecordState("1", None, {"phone": "2", "city": "B"})
        >>> _inputs_moved({"phone": {"1": "1"}}, "1", st)
        True
        >>> _inputs_moved({"phone": {"1": "1"}, "city": {"1": "B"}}, "1", st, {"phone": "2"})
        False
    """
    for f, per in values.items():
        if not isinstance(per, dict) or rid not in per:
            continue
        now = norm(state.values.get(f))
        if now != norm(per[rid]) and not any(f in a and now == norm(a[f]) for a in accepted):
            return True
    return False


def _same_loosely(a: Any, b: Any) -> bool:
    """Whether a value read from the CRM and one read from an export file are one value,
    whatever the file's format: case (an option's label), a number's grouping, a flag's
    spelling (``1``, ``true``).

    Examples:
        >>> _same_loosely("1200", "1,200"), _same_loosely("customer", "Customer")
        (True, True)
        >>> _same_loosely("true", "1"), _same_loosely("Oslo", "Bergen")
        (True, False)
    """
    x, y = norm(a), norm(b)
    if x == y or x.casefold() == y.casefold():
        return True
    for kind in ("number", "bool"):
        u, v = value_norm(kind, a), value_norm(kind, b)
        if u is not None and type(u) is not str and u == v:
            return True
    return False
