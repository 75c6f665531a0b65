"""The review API: one queue of links, duplicate clusters and field conflicts, and decisions.

UI-free: the Streamlit page, the CLI and notebooks call these functions. The
queue covers four kinds of item: cross-system ``link`` pairs and ``duplicate``
clusters of the latest match run, ``conflict`` items of the latest plan run
(shown with the link they belong to), and ``stale`` writes: plan items apply
refused because their record changed since review (both versions shown; see
:mod:`recon.review_stale`). It is indexed once per (match run, plan
run) into the ``review_queue`` table, so every page is one indexed SQL query
(no whole-table loads), sorted by what gains most from a human: the review tier
first, then the score's closeness to the auto threshold.

Decisions are written at once, one transaction each, into ``decisions`` in the
labels shape (STYLE.md habit 4). Each (item, kind[, field]) is a chain of
versions: a new decision raises the version and supersedes the previous one; a
decision made against a version other than the current one raises
:class:`~recon.errors.ReviewerConflict` carrying the decision that won.

Labels written (what :func:`recon.plan.approved_items` reads): ``link`` and
``duplicate`` items get ``match``, ``non_match`` or ``unsure``; conflict values
``approve`` (or ``reject``/``defer``) with choice ``{"field", "value", "source",
"side"}``; a cluster's master ``approve`` with ``{"master": record_id, "source",
"object"}``; a split ``non_match`` (the cluster is not one entity) with
``{"groups": [[{"source", "object", "record_id"}, ...], ...]}``; a stale write
``plan`` / ``approve``|``reject``|``defer`` with ``{"stale_of", "modified_at",
"apply_run_id"}``.

Examples:
    >>> from recon.store import open_store
    >>> db = open_store(":memory:")
    >>> queue(db).total
    0
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .errors import ReviewerConflict, ReviewError
from .models import now_iso, stable_id
from .plan import APPROVED_LABELS, proposed_choice
from .review_detail import (
    CLUSTER_ANSWERS,
    _chosen_values,
    _merge_item,
    current_master,
    item_detail,
    link_decision,
    record_link,
    settled_by_link,
)
from .review_plan import (
    HELD,
    approve_plan_items,
    count_plan_approvals,
    plan_item_counts,
    plan_page,
    undo_plan_of,
)
from .review_queue import (
    DEFERRED_LABELS,
    FINAL_LABELS,
    QueueFilter,
    QueuePage,
    _queue_row,
    decisions_over_time,
    ensure_queue,
    ensure_search,
    queue,
    queue_count,
    score_histogram,
    score_range,
    thresholds,
    tier_counts,
    tier_precision,
)
from .review_stale import stale_of
from .review_text import (
    SCORE_FORMAT,
    decision_item,
    decision_title,
    format_score,
    format_threshold,
    item_title,
)
from .store import transaction

__all__ = [
    "ACTIONS",
    "DEFERRED_LABELS",
    "FINAL_LABELS",
    "HELD",
    "QueueFilter",
    "QueuePage",
    "SCORE_FORMAT",
    "approve_plan_items",
    "BulkPreview",
    "bulk_approve",
    "bulk_preview",
    "choose_master",
    "choose_value",
    "count_bulk",
    "count_plan_approvals",
    "plan_item_counts",
    "plan_page",
    "decide",
    "decision_item",
    "decision_title",
    "decisions_over_time",
    "ensure_queue",
    "ensure_search",
    "format_score",
    "format_threshold",
    "item_detail",
    "item_title",
    "queue",
    "record_link",
    "resolve_reviewer",
    "score_histogram",
    "score_range",
    "split_cluster",
    "thresholds",
    "tier_counts",
    "tier_precision",
    "undo_last",
    "undo_plan_of",
]

log = logging.getLogger(__name__)

ACTIONS: dict[str, dict[str, str]] = {
    "link": {"approve": "match", "reject": "non_match", "defer": "unsure"},
    "duplicate": {"approve": "match", "reject": "non_match", "defer": "unsure"},
    "conflict": {"approve": "approve", "reject": "reject", "defer": "defer"},
    "stale": {"approve": "approve", "reject": "reject", "defer": "defer"},
}
_DECISION_KIND = {
    "link": "link",
    "duplicate": "duplicate",
    "conflict": "conflict_value",
    "stale": "plan",
}
# --------------------------------------------------------------------------- writing


def resolve_reviewer(cfg: Any = None, signed_in: str | None = None) -> str | None:
    """The reviewer's identity: a sign-in name, else ``$RECON_REVIEWER``, else config ``[review] reviewer``.

    Examples:
        >>> resolve_reviewer(None, " ana@example.com ")
        'ana@example.com'
    """
    for value in (
        signed_in,
        os.environ.get("RECON_REVIEWER"),
        getattr(getattr(cfg, "review", None), "reviewer", None),
    ):
        if value and str(value).strip():
            return str(value).strip()
    return None


def _chain(kind: str, item_id: str, field_name: str | None) -> tuple[str, list[Any]]:
    # a cluster is approved or split, never both: those answers share one chain of versions
    kinds = CLUSTER_ANSWERS if kind in CLUSTER_ANSWERS else (kind,)
    return (
        f"item_id = ? and kind in ({', '.join('?' * len(kinds))}) "
        "and coalesce(json_extract(choice, '$.field'), '') = ?",
        [item_id, *kinds, field_name or ""],
    )


def _conflict(
    db: sqlite_utils.Database, current: dict[str, Any] | None, seen: int
) -> ReviewerConflict:
    if current is None:
        msg = f"this item was decided at version {seen} but that decision was undone since"
    else:
        msg = (
            f"{current['reviewer'] or current['decided_by']} decided this item ({current['label']}) at "
            f"{current['decided_at']} (version {current['version']}) after you opened it at version {seen}"
        )
    exc = ReviewerConflict(
        msg, hint="reload the item, look at the other decision, and decide again"
    )
    exc.current = current  # type: ignore[attr-defined]
    return exc


def _write(
    db: sqlite_utils.Database,
    item: dict[str, Any],
    kind: str,
    label: str,
    *,
    reviewer: str | None,
    based_on_version: int,
    choice: Any = None,
    note: str | None = None,
    decision_item_id: str | None = None,
) -> dict[str, Any]:
    if not reviewer:
        raise ReviewError(
            "no reviewer: sign in first",
            hint="set [review] reviewer, $RECON_REVIEWER, or sign in on the page",
        )
    field_name = choice.get("field") if isinstance(choice, dict) else None
    target = decision_item_id or item["item_id"]
    where, params = _chain(kind, target, field_name)
    with transaction(db):
        rows = list(
            db.query(
                f"select * from decisions where {where} and superseded = 0 order by decision_id desc limit 1",
                params,
            )
        )
        current = dict(rows[0]) if rows else None
        current_version = current["version"] if current else 0
        if based_on_version != current_version:
            raise _conflict(db, current, based_on_version)
        top = db.execute(
            f"select coalesce(max(version), 0) from decisions where {where}", params
        ).fetchone()[0]
        db.execute(f"update decisions set superseded = 1 where {where} and superseded = 0", params)
        sf_obj = next(
            (
                o
                for s, o in (
                    (item["source_l"], item["object_l"]),
                    (item["source_r"], item["object_r"]),
                )
                if s == "salesforce"
            ),
            None,
        )
        row = {
            "kind": kind,
            "object": item["object"],
            "source_l": item["source_l"],
            "record_id_l": item["record_id_l"],
            "source_r": item["source_r"],
            "record_id_r": item["record_id_r"],
            "salesforce_object": sf_obj if item["object"] == "contacts" else None,
            "label": label,
            "choice": json.dumps(choice, sort_keys=True, default=str)
            if choice is not None
            else None,
            "item_id": target,
            "decided_by": "human",
            "reviewer": reviewer,
            "decided_at": now_iso(),
            "version": top + 1,
            "based_on_version": based_on_version,
            "run_id": item["run_id"],
            "superseded": 0,
            "note": note,
        }
        row["decision_id"] = db["decisions"].insert(row).last_pk
    return row


def _refuse_settled(db: sqlite_utils.Database, item: dict[str, Any]) -> None:
    """A conflict whose link was rejected takes no decision (the rejection answers it)."""
    if item["kind"] != "conflict" or not item.get("link_item_id"):
        return
    why = settled_by_link(item, link_decision(db, item["link_item_id"]))
    if why:
        raise ReviewError(
            f"conflict on {item['field']}: {why}",
            hint="to decide it, undo or change the link's decision first",
        )


def decide(
    db: sqlite_utils.Database,
    item_id: str,
    action: str,
    *,
    reviewer: str | None,
    based_on_version: int,
    note: str | None = None,
) -> dict[str, Any]:
    """Approve, reject or defer an item; return the decision row written.

    Links and clusters are labelled ``match``/``non_match``/``unsure``;
    conflicts ``approve`` (the plan's proposed value)/``reject``/``defer``;
    stale writes ``approve`` (write the planned value anyway, against the record's
    new version: the next ``recon apply`` sends it once) /``reject`` (drop it)/``defer``.

    Raises:
        ReviewerConflict: the item's current version is not ``based_on_version``.
        ReviewError: unknown item or action, no reviewer, or a conflict whose link was
            rejected (the rejection answers it).

    Examples:
        >>> from recon.store import open_store
        >>> decide(open_store(":memory:"), "x", "approve", reviewer="ana", based_on_version=0)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.ReviewError: no review item 'x' in the queue
    """
    item = _queue_row(db, item_id)
    label = ACTIONS[item["kind"]].get(action)
    if label is None:
        raise ReviewError(f"unknown action {action!r}", hint="use approve, reject or defer")
    _refuse_settled(db, item)
    choice = None
    if item["kind"] == "conflict":
        choice = {"field": item["field"]}
        if action == "approve":
            after = db.execute(
                "select after from plan_items where run_id = ? and item_id = ?",
                [item["run_id"], item_id],
            ).fetchone()[0]
            proposed = proposed_choice(json.loads(after) if after else None)
            if proposed is None:
                raise ReviewError(
                    f"conflict {item_id} proposes no value",
                    hint="choose the surviving value (choose_value)",
                )
            choice.update(proposed)
    elif item["kind"] == "stale":
        # the decision answers this version of the record: approving writes against it
        both = stale_of(db, item).get("both") or {}
        choice = {
            "stale_of": item["link_item_id"],
            "modified_at": both.get("current_modified_at"),
            "apply_run_id": both.get("apply_run_id"),
        }
    return _write(
        db,
        item,
        _DECISION_KIND[item["kind"]],
        label,
        reviewer=reviewer,
        based_on_version=based_on_version,
        choice=choice,
        note=note,
    )


def choose_value(
    db: sqlite_utils.Database,
    item_id: str,
    field_name: str,
    value: Any,
    *,
    source: str,
    reviewer: str | None,
    based_on_version: int,
) -> dict[str, Any]:
    """Choose the surviving value of ``field_name``: of a conflict, or of a field of a cluster's merge.

    Writes ``conflict_value`` / ``approve`` with choice ``{"field", "value", "source"}``
    (plus ``"side"`` when ``source`` is ``hubspot`` or ``salesforce``); versions are
    kept per (item, field). For a duplicate cluster the decision goes on the
    latest plan's ``merge`` item of the cluster, and its choice also carries
    ``"fields"``: every value chosen for that merge so far (a record for people; the plan
    reads each field's own current decision, :func:`recon.plan.field_choices`).

    Raises:
        ReviewError: a link (its field values are chosen on its conflict items), a
            conflict whose link was rejected, or a cluster with no merge planned yet.

    Examples:
        >>> from recon.store import open_store
        >>> choose_value(open_store(":memory:"), "x", "phone", "1", source="hubspot", reviewer="a", based_on_version=0)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.ReviewError: no review item 'x' in the queue
    """
    item = _queue_row(db, item_id)
    choice: dict[str, Any] = {"field": field_name, "value": value, "source": source}
    target = None
    if item["kind"] == "link":
        raise ReviewError(
            "a link's field values are chosen on its conflict items",
            hint="filter the queue by kind: conflicts",
        )
    _refuse_settled(db, item)
    if item["kind"] == "conflict" and source in ("hubspot", "salesforce"):
        choice["side"] = source
    if item["kind"] == "duplicate":
        target = _merge_item(db, item_id)
        if target is None:
            raise ReviewError(
                f"no merge is planned for cluster {item_id} yet",
                hint="run `recon plan`, then choose values",
            )
        fields = {k.split(":", 1)[1]: v for k, v in _chosen_values(db, target).items()}
        choice["fields"] = {**fields, field_name: value}
    return _write(
        db,
        item,
        "conflict_value",
        "approve",
        reviewer=reviewer,
        based_on_version=based_on_version,
        choice=choice,
        decision_item_id=target,
    )


def _members(db: sqlite_utils.Database, item: dict[str, Any]) -> set[tuple[str, str]]:
    rows = db.execute(
        "select source, record_id from clusters where run_id = ? and cluster_id = ?",
        [item["run_id"], item["item_id"]],
    )
    return {(s, r) for s, r in rows}


def choose_master(
    db: sqlite_utils.Database,
    cluster_id: str,
    source: str,
    record_id: str,
    *,
    reviewer: str | None,
    based_on_version: int,
) -> dict[str, Any] | None:
    """Choose the record a duplicate cluster is merged into (``master`` / ``approve``).

    Returns the decision row written, or None when ``record_id`` already is the cluster's
    master (the reviewer's current choice, else the plan's): nothing new is recorded, so a
    repeated choice adds no decision (and no step for undo to take back).

    Raises:
        ReviewError: not a cluster, or the record is not one of its members.

    Examples:
        >>> from recon.store import open_store
        >>> choose_master(open_store(":memory:"), "x", "hubspot", "1", reviewer="a", based_on_version=0)  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.ReviewError: no review item 'x' in the queue
    """
    item = _queue_row(db, cluster_id)
    if item["kind"] != "duplicate" or (source, record_id) not in _members(db, item):
        raise ReviewError(f"{source} {record_id} is not a member of duplicate cluster {cluster_id}")
    obj = db.execute(
        "select record_object from clusters where run_id = ? and cluster_id = ? and record_id = ?",
        [item["run_id"], cluster_id, record_id],
    ).fetchone()[0]
    choice = {"master": record_id, "source": source, "object": obj}
    with transaction(db):  # the master read and the write in one transaction
        now = current_master(db, cluster_id, _merge_item(db, cluster_id))
        if now is not None and now["record_id"] == str(record_id):
            return None  # already the master: a second decision would only repeat it
        return _write(
            db,
            item,
            "master",
            "approve",
            reviewer=reviewer,
            based_on_version=based_on_version,
            choice=choice,
        )


def split_cluster(
    db: sqlite_utils.Database,
    cluster_id: str,
    groups: list[list[str]],
    *,
    reviewer: str | None,
    based_on_version: int,
) -> dict[str, Any]:
    """Split a duplicate cluster into groups of record ids (``split`` / ``non_match``).

    The cluster as proposed is not one entity (so the plan does not merge it);
    the choice lists the groups. Every member must be in exactly one group;
    records left alone form their own group.

    Raises:
        ReviewError: not a cluster, unknown members, or a member in two groups.
    """
    item = _queue_row(db, cluster_id)
    if item["kind"] != "duplicate":
        raise ReviewError(f"{cluster_id} is not a duplicate cluster")
    members = {rid: src for src, rid in _members(db, item)}
    seen = [rid for g in groups for rid in g]
    if len(seen) != len(set(seen)) or not set(seen) <= set(members):
        raise ReviewError(
            f"split of {cluster_id}: groups must hold distinct members of the cluster"
        )
    full = [sorted(g) for g in groups if g] + [[rid] for rid in sorted(set(members) - set(seen))]
    if len(full) < 2:
        raise ReviewError(
            "a split needs at least two groups",
            hint="select the records to move out of the cluster",
        )
    obj = {
        r: o
        for r, o in db.execute(
            "select record_id, record_object from clusters where run_id = ? and cluster_id = ?",
            [item["run_id"], cluster_id],
        )
    }
    choice = {
        "groups": [
            [{"source": members[r], "object": obj[r], "record_id": r} for r in g]
            for g in sorted(full)
        ]
    }
    return _write(
        db,
        item,
        "split",
        "non_match",
        reviewer=reviewer,
        based_on_version=based_on_version,
        choice=choice,
    )


_BULK_KINDS = ("link", "duplicate")


def _bulk_where(filt: QueueFilter, tier: str | None) -> tuple[str, list[Any]]:
    if not tier and filt.status in ("decided", "deferred"):
        return "0 = 1", []  # the filter shows no undecided item: none is approved unseen
    # items nobody answered: one a reviewer deferred (or was unsure of) waits for a person
    scoped = QueueFilter(**{**filt.__dict__, "status": "unlabelled"})
    if tier:
        scoped.tiers = (tier,)
    scoped.kinds = tuple(k for k in (filt.kinds or _BULK_KINDS) if k in _BULK_KINDS) or ("-",)
    return scoped.where()


def _bulk_ready(
    db: sqlite_utils.Database, filt: QueueFilter | None, tier: str | None
) -> tuple[str, list[Any]]:
    """The queue (and its search text, for a text filter) up to date; the bulk ``where``."""
    ensure_queue(db)
    filt = filt or QueueFilter(status="all")
    if filt.text and filt.text.strip():
        ensure_search(db)  # as queue() does: else a rebuilt queue matches no text
    return _bulk_where(filt, tier)


def count_bulk(
    db: sqlite_utils.Database, filt: QueueFilter | None = None, *, tier: str | None = None
) -> int:
    """How many undecided links and clusters a bulk approve of ``filt`` (or one ``tier``) would label.

    Conflicts are never bulk approved: each needs its value chosen; nor are items a reviewer
    deferred or was unsure of: they wait for a person.

    Examples:
        >>> from recon.store import open_store
        >>> count_bulk(open_store(":memory:"), tier="auto")
        0
    """
    return queue_count(db, *_bulk_ready(db, filt, tier))


@dataclass(frozen=True)
class BulkPreview:
    """What a bulk approve would label: how many items, and a digest of which."""

    count: int
    digest: str
    #: ``(kind, object) -> items``: what the count is made of (links and clusters, per object)
    parts: tuple[tuple[str, str, int], ...] = ()


def _items_digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:32]


def bulk_preview(
    db: sqlite_utils.Database, filt: QueueFilter | None = None, *, tier: str | None = None
) -> BulkPreview:
    """:func:`count_bulk` with a digest of the items, for :func:`bulk_approve` to check.

    Examples:
        >>> from recon.store import open_store
        >>> bulk_preview(open_store(":memory:"), tier="auto").count
        0
    """
    where, params = _bulk_ready(db, filt, tier)
    rows = db.execute(
        f"select q.item_id, q.kind, q.object from review_queue q where {where}", params
    ).fetchall()
    ids = [r[0] for r in rows]
    parts: dict[tuple[str, str], int] = {}
    for _iid, kind, obj in rows:
        parts[(kind, obj)] = parts.get((kind, obj), 0) + 1
    return BulkPreview(
        len(ids), _items_digest(ids), tuple((k, o, n) for (k, o), n in sorted(parts.items()))
    )


def bulk_approve(
    db: sqlite_utils.Database,
    filt: QueueFilter | None = None,
    *,
    tier: str | None = None,
    reviewer: str | None,
    expected: int | BulkPreview,
) -> int:
    """Label every undecided link and cluster of ``filt`` (or ``tier``) ``match``, in one transaction.

    ``expected`` is what was shown to the reviewer: a count (:func:`count_bulk`) or, better,
    a :func:`bulk_preview`, which also names the items. If the queue changed since (another
    count, or as many items but other ones), nothing is written. Rows share a
    ``bulk:<id>`` note, so :func:`undo_last` undoes the whole batch.

    Raises:
        ReviewerConflict: the items differ from ``expected``.
        ReviewError: no reviewer.
    """
    if not reviewer:
        raise ReviewError("no reviewer: sign in first")
    where, params = _bulk_ready(db, filt, tier)
    # unique per batch (two batches of one reviewer in one millisecond are two undo steps)
    batch = "bulk:" + stable_id(reviewer, now_iso(), os.getpid(), uuid.uuid4().hex, length=10)
    with transaction(db):
        db.execute(
            "create temp table if not exists bulk_items (item_id text primary key, kind text)"
        )
        db.execute("delete from bulk_items")
        db.execute(
            f"insert into bulk_items select q.item_id, q.kind from review_queue q where {where}",
            params,
        )
        n = db.execute("select count(*) from bulk_items").fetchone()[0]
        shown = expected.count if isinstance(expected, BulkPreview) else expected
        if n != shown:
            raise ReviewerConflict(
                f"{n} items match now, not the {shown} shown", hint="count again, then confirm"
            )
        if isinstance(expected, BulkPreview):
            ids = [r[0] for r in db.execute("select item_id from bulk_items")]
            if _items_digest(ids) != expected.digest:
                raise ReviewerConflict(
                    f"{n} items match now, as many as shown, but not the same ones "
                    "(the queue changed since)",
                    hint="count again, then confirm",
                )
        chain = "d.item_id = b.item_id and d.kind = b.kind and coalesce(json_extract(d.choice, '$.field'), '') = ''"
        db.execute(
            f"""insert into decisions (kind, object, source_l, record_id_l, source_r, record_id_r, salesforce_object,
                  label, choice, item_id, decided_by, reviewer, decided_at, version, based_on_version, run_id, superseded, note)
                select b.kind, q.object, q.source_l, q.record_id_l, q.source_r, q.record_id_r,
                  case when q.object = 'contacts' and q.source_r = 'salesforce' then q.object_r
                       when q.object = 'contacts' and q.source_l = 'salesforce' then q.object_l end,
                  'match', null, q.item_id, 'human', ?, ?,
                  (select coalesce(max(version), 0) + 1 from decisions d where {chain}),
                  coalesce((select version from decisions d where {chain} and d.superseded = 0), 0), q.run_id, 0, ?
                from bulk_items b join review_queue q on q.item_id = b.item_id""",
            [reviewer, now_iso(), batch],
        )
        db.execute(
            f"update decisions set superseded = 1 where superseded = 0 and coalesce(note, '') != ? and exists "
            f"(select 1 from bulk_items b where {chain.replace('d.', 'decisions.')})",
            [batch],
        )
    return int(n)


def undo_last(db: sqlite_utils.Database, reviewer: str | None) -> list[dict[str, Any]]:
    """Undo ``reviewer``'s last decision (a whole bulk batch counts as one), restoring the previous ones.

    The undone rows stay in the table (superseded, note ``[undone]``); the
    decision each replaced becomes current again. Returns the undone rows
    (empty when there is nothing to undo).

    Examples:
        >>> from recon.store import open_store
        >>> undo_last(open_store(":memory:"), "ana")
        []
    """
    with transaction(db):
        rows = list(db.query(
            "select * from decisions where reviewer = ? and decided_by = 'human' and superseded = 0 "
            "order by decision_id desc limit 1", [reviewer],
        ))  # fmt: skip
        if not rows:
            return []
        last = dict(rows[0])
        note = last["note"] or ""
        if note.startswith("bulk:"):
            undone = [
                dict(r)
                for r in db.query(
                    "select * from decisions where note = ? and superseded = 0", [note]
                )
            ]
        else:
            undone = [last]
        for row in undone:
            field_name = json.loads(row["choice"]).get("field") if row["choice"] else None
            where, params = _chain(row["kind"], row["item_id"], field_name)
            db.execute(
                "update decisions set superseded = 1, note = trim(coalesce(note, '') || ' [undone]') where decision_id = ?",
                [row["decision_id"]],
            )
            db.execute(
                f"update decisions set superseded = 0 where decision_id = (select decision_id from decisions "
                f"where {where} and version < ? and coalesce(note, '') not like '%[undone]' "
                "order by version desc limit 1)",
                [*params, row["version"]],
            )
    return undone


def approvals_state(db: sqlite_utils.Database) -> tuple[Any, ...]:
    """A mark of what a count of approved items depends on (decisions, and what other
    connections wrote, an apply's journal included): a count taken under another mark is
    out of date.

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> approvals_state(db) == approvals_state(db)
        True
    """
    version = db.execute("pragma data_version").fetchone()[0]
    decided = db.execute(
        "select count(*), coalesce(max(rowid), 0), total(rowid * superseded) from decisions"
    ).fetchone()
    applied = db.execute("select coalesce(max(rowid), 0) from journal").fetchone()[0]
    return (version, *decided, applied)


def applied_already(db: sqlite_utils.Database, decisions: list[dict[str, Any]]) -> int:
    """How many of ``decisions`` (rows, e.g. the ones :func:`undo_last` took back) an apply
    acted on already: an approval after which a write it allowed was confirmed (of the item
    itself, a create; a stale write, under the plan item it stands for; an item its link or
    cluster decides; a value chosen for a conflict). Undoing such a decision leaves the CRM as
    it is; a rejection or deferral allowed no write.

    Examples:
        >>> from recon.store import open_store
        >>> applied_already(open_store(":memory:"), [{"item_id": "x", "choice": None,
        ...     "label": "match", "decided_at": "2026-01-01T00:00:00Z"}])
        0
    """
    approvals = [d for d in decisions if d.get("label") in APPROVED_LABELS]
    if not approvals:
        return 0
    since = min(str(d.get("decided_at") or "") for d in approvals)
    confirmed = db.execute(
        "select j.item_id, j.updated_at, pi.link_item_id, j.plan_run_id from journal j "
        "left join plan_items pi on pi.run_id = j.plan_run_id and pi.item_id = j.item_id "
        "where j.state = 'confirmed' and coalesce(j.updated_at, '') >= ?",
        [since],
    ).fetchall()
    if not confirmed:
        return 0
    # a chosen conflict value is written as stable_id(conflict, system): no plan item of its own
    expanded: dict[str, tuple[str, str | None]] = {}
    for run in {r[3] for r in confirmed if r[2] is None}:
        for cid, link in db.execute(
            "select item_id, link_item_id from plan_items where run_id = ? and action = 'conflict'",
            [run],
        ):
            for system in ("hubspot", "salesforce"):
                expanded[stable_id(cid, system)] = (cid, link)
    # per decided id (the item, its link or cluster, its conflict): when it was last written
    last: dict[str, str] = {}
    for item_id, updated, link, _run in confirmed:
        conflict, conflict_link = expanded.get(item_id, (None, None))
        for key in (item_id, link, conflict, conflict_link):
            if key and str(updated or "") > last.get(key, ""):
                last[key] = str(updated or "")
    count = 0
    for d in approvals:
        ids = {str(d["item_id"])}
        choice = json.loads(d["choice"]) if d.get("choice") else None
        if isinstance(choice, dict) and choice.get("stale_of"):
            ids.add(str(choice["stale_of"]))
        at = str(d.get("decided_at") or "")
        # written at or after this decision: what it allowed (before it: not)
        if any(last.get(i, "") >= at and i in last for i in ids):
            count += 1
    return count
