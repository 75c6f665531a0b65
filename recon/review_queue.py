"""The review queue: links, duplicate clusters, conflicts and stale writes indexed for paged reads.

Part of :mod:`recon.review` (import from there). The latest match and plan runs
are indexed once into ``review_queue``; every page is then one indexed SQL query
(LIMIT/OFFSET), sorted by tier (review first) and by the score's closeness to
the auto threshold; undecided items a reviewer deferred come after those nobody answered. Writes apply refused as stale (:mod:`recon.review_stale`) are
indexed with the plan run, and again by apply whenever it marks one. The statistics behind the app's charts are aggregates over
the same index.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import sqlite_utils

from .errors import ReviewError
from .models import SF_ID_PREFIXES, now_iso
from .normalize import search_text
from .review_stale import index_stale
from .store import UNDO_PLAN, transaction

log = logging.getLogger(__name__)

FINAL_LABELS = ("match", "non_match", "approve", "reject")
DEFERRED_LABELS = ("unsure", "defer")
_DEFAULT_THRESHOLDS = {"link": (0.99, 0.5), "duplicate": (0.99, 0.6)}

# the item's current decision: the newest non-superseded one of its primary kinds
_CURRENT = (
    "(select d.decision_id from decisions d where d.item_id = q.item_id and d.superseded = 0 "
    "and d.kind in (case q.kind when 'link' then 'link' when 'duplicate' then 'duplicate' "
    "when 'stale' then 'plan' else 'conflict_value' end, case q.kind when 'duplicate' then 'split' "
    "when 'conflict' then 'plan' else '-' end) order by d.decision_id desc limit 1)"
)
_CURRENT_LABEL = _CURRENT.replace("select d.decision_id", "select d.label")
#: a link decision's labels that reject it (its conflicts then take no decision)
LINK_REJECTED = ("non_match", "reject")
#: a conflict whose link a person rejected: the rejection answers it (no value of it will be
#: written, the next plan leaves it out), so it waits for nobody. One indexed lookup
#: (decisions by item_id), made for conflict rows only (``case`` looks no further for others).
_LINK_REJECTED = (
    "(case when q.kind = 'conflict' then exists (select 1 from decisions k "
    "where k.item_id = q.link_item_id and k.kind = 'link' and k.superseded = 0 "
    f"and k.label in ({', '.join(repr(x) for x in LINK_REJECTED)})) else 0 end)"
)


@dataclass
class QueueFilter:
    """Which queue items to show. ``None`` (or empty) means no restriction.

    ``status`` is ``undecided`` (no decision, or deferred), ``decided``,
    ``deferred`` or ``all``; a conflict whose link a person rejected counts as decided
    (the rejection answers it). ``text`` searches names, emails, domains and fields.
    """

    kinds: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    text: str | None = None
    status: str = "undecided"
    reviewer: str | None = None  # decided by a reviewer whose name holds this (any case)

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition over ``review_queue q`` and its parameters."""
        sql: list[str] = ["1 = 1"]
        params: list[Any] = []
        for col, values in (("kind", self.kinds), ("object", self.objects), ("tier", self.tiers)):
            if values:
                sql.append(f"q.{col} in ({', '.join('?' * len(values))})")
                params.extend(values)
        if self.score_min is not None:
            sql.append("q.score >= ?")
            params.append(self.score_min)
        if self.score_max is not None:
            sql.append("q.score <= ?")
            params.append(self.score_max)
        for word in (search_text(self.text) or "").split():
            # typed text is matched literally: % and _ are not wildcards
            sql.append("q.search like ? escape '\\'")
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        # a conflict of a rejected link counts as decided (its link's rejection answers it)
        if self.status == "undecided":
            sql.append(
                f"({_CURRENT_LABEL} is null or {_CURRENT_LABEL} in ('unsure', 'defer')) "
                f"and not {_LINK_REJECTED}"
            )
        elif self.status == "unlabelled":  # nobody has answered yet (deferred ones left out)
            sql.append(f"{_CURRENT_LABEL} is null and not {_LINK_REJECTED}")
        elif self.status == "decided":
            sql.append(f"({_CURRENT_LABEL} in {FINAL_LABELS} or {_LINK_REJECTED})")
        elif self.status == "deferred":
            # the items with a deferral standing (few) first: one lookup list, built once,
            # spares the per-item subquery for every other item
            sql.append(
                "q.item_id in (select item_id from decisions where superseded = 0 "
                f"and label in {DEFERRED_LABELS}) "
                f"and {_CURRENT_LABEL} in {DEFERRED_LABELS} and not {_LINK_REJECTED}"
            )
        elif self.status != "all":
            raise ReviewError(
                f"unknown status filter {self.status!r}",
                hint="use undecided, decided, deferred, unlabelled or all",
            )
        if self.reviewer:
            # any case, any part: "alice" finds alice@example.com
            sql.append(
                f"instr(lower((select reviewer from decisions where decision_id = {_CURRENT})), "
                "lower(?)) > 0"
            )
            params.append(self.reviewer.strip())
        return " and ".join(sql), params


@dataclass
class QueuePage:
    """One page of the queue: ``items`` (dicts with the current decision), ``total`` matching."""

    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    filter: QueueFilter = field(default_factory=QueueFilter)

    @property
    def pages(self) -> int:
        """Number of pages for ``total`` items."""
        return max(1, -(-self.total // self.page_size))


# --------------------------------------------------------------------------- queue index


#: a plan run that is no ``recon undo`` plan
_FORWARD = f"not {UNDO_PLAN}"


def _latest_run(db: sqlite_utils.Database, stage: str, *, forward: bool = False) -> str | None:
    """The latest finished run of ``stage``; ``forward``: of the plans, the latest that is not
    an undo plan (the queue's conflicts, merges and stale writes are a forward plan's: an undo
    plan built to look at an undo would otherwise empty them)."""
    row = db.execute(
        "select run_id from runs where stage = ? and status in ('ok', 'partial', 'budget') "
        f"{'and ' + _FORWARD if forward else ''} order by started_at desc, rowid desc limit 1",
        [stage],
    ).fetchone()
    if row:
        return str(row[0])
    table, order = ("match_runs", "created_at") if stage == "match" else ("plan_items", "rowid")
    undo = (
        f" where run_id not in (select run_id from runs where stage = 'plan' and {UNDO_PLAN})"
        if forward
        else ""
    )
    row = db.execute(f"select run_id from {table}{undo} order by {order} desc limit 1").fetchone()
    return str(row[0]) if row else None


def thresholds(
    db: sqlite_utils.Database, run_id: str | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    """Auto and review thresholds per object and kind, from the match run's stored settings.

    Falls back to the lowest score of each tier in the run, then to the defaults.

    Examples:
        >>> from recon.store import open_store
        >>> thresholds(open_store(":memory:"))["companies"]["link"]["auto"]
        0.99
    """
    run_id = run_id or _latest_run(db, "match")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for obj in ("companies", "contacts"):
        stored: dict[str, Any] = {}
        row = db.execute(
            "select settings from match_runs where run_id = ? and object = ?", [run_id, obj]
        ).fetchone()
        if row and row[0]:
            try:
                stored = json.loads(row[0]).get("thresholds") or {}
            except (ValueError, AttributeError):
                stored = {}
        out[obj] = {}
        for kind, (auto_default, review_default) in _DEFAULT_THRESHOLDS.items():
            prefix = "" if kind == "link" else "duplicate_"
            values = {}
            for tier, default in (("auto", auto_default), ("review", review_default)):
                value = stored.get(prefix + tier)
                if value is None:
                    found = db.execute(
                        "select min(score) from pairs where run_id = ? and object = ? and kind = ? and tier = ?",
                        [run_id, obj, kind, tier],
                    ).fetchone()[0]
                    value = found if found is not None else default
                values[tier] = float(value)
            out[obj][kind] = values
    return out


#: a conflict's records, from its plan item (its link may be in no pairs row of the match
#: run: an approved link the run no longer proposes, see plan_load.pin_approved_links)
_HS_OBJ = "json_extract(pi.payload, '$.hubspot.object')"
_HS_ID = "json_extract(pi.payload, '$.hubspot.record_id')"
_SF_OBJ = "json_extract(pi.payload, '$.salesforce.object')"
_SF_ID = "json_extract(pi.payload, '$.salesforce.record_id')"


def ensure_queue(db: sqlite_utils.Database) -> dict[str, Any]:
    """Index the latest match and plan runs into ``review_queue`` if not done yet; return the state.

    Cheap when up to date (two small queries). Concurrent sessions rebuild once:
    the check is repeated inside the write transaction.

    Examples:
        >>> from recon.store import open_store
        >>> ensure_queue(open_store(":memory:"))["items"]
        0
    """
    match_run, plan_run = _latest_run(db, "match"), _latest_run(db, "plan", forward=True)

    def built() -> dict[str, Any] | None:
        """The queue's state when it was built from these runs (else None)."""
        state = db.execute(
            "select match_run_id, plan_run_id, items, built_at from review_state where name = 'queue'"
        ).fetchone()
        if state and (state[0], state[1]) == (match_run, plan_run):
            keys = ("match_run_id", "plan_run_id", "items", "built_at")
            return dict(zip(keys, state, strict=True))
        return None

    if (ready := built()) is not None:
        return ready
    with transaction(db):
        if (ready := built()) is not None:  # another session built it meanwhile
            return ready
        _build_queue(db, match_run, plan_run)
        items = db.execute("select count(*) from review_queue").fetchone()[0]
        built_at = now_iso()
        db["review_state"].upsert(
            {
                "name": "queue",
                "match_run_id": match_run,
                "plan_run_id": plan_run,
                "items": items,
                "built_at": built_at,
            },
            pk="name",
        )
    log.info("review queue built: %s items (match %s, plan %s)", items, match_run, plan_run)
    return {
        "match_run_id": match_run,
        "plan_run_id": plan_run,
        "items": items,
        "built_at": built_at,
    }


_LABEL_L = "coalesce(l.name, l.email, q.record_id_l)"
_LABEL_R = "coalesce(r.name, r.email, q.record_id_r)"
_JOIN_LR = (
    "left join snapshots l indexed by idx_snapshots_review_labels on l.source = q.source_l "
    "and l.object = q.object_l and l.record_id = q.record_id_l "
    "left join snapshots r indexed by idx_snapshots_review_labels on r.source = q.source_r "
    "and r.object = q.object_r and r.record_id = q.record_id_r"
)


def ensure_search(db: sqlite_utils.Database) -> None:
    """Fill the link items' titles and search text (names, emails, domains), once per queue.

    Indexing a queue leaves them out, so the first page of a big queue comes
    fast; the first text search pays for it once.

    Examples:
        >>> from recon.store import open_store
        >>> ensure_search(open_store(":memory:"))
    """
    state = ensure_queue(db)
    runs = (state["match_run_id"], state["plan_run_id"])
    done = db.execute(
        "select match_run_id, plan_run_id from review_state where name = 'search'"
    ).fetchone()
    if done and tuple(done) == runs:
        return
    _with_search_text(db)
    with transaction(db):
        db.execute(
            f"""update review_queue set title = x.title, search = x.search
            from (select q.item_id, {_LABEL_L} || '  ↔  ' || {_LABEL_R} as title,
                    {_search("l")} || ' ' || {_search("r")} as search
                  from review_queue q {_JOIN_LR} where q.kind = 'link' and q.search is null) x
            where review_queue.item_id = x.item_id"""
        )
        db["review_state"].upsert(
            {
                "name": "search",
                "match_run_id": runs[0],
                "plan_run_id": runs[1],
                "built_at": now_iso(),
            },
            pk="name",
        )


def _closeness(th: dict[str, dict[str, dict[str, float]]], kind: str) -> tuple[str, list[float]]:
    sql = "abs(q_score - case q_object when 'companies' then ? else ? end)"
    return sql, [th["companies"][kind]["auto"], th["contacts"][kind]["auto"]]


def _search(alias: str) -> str:
    return f"recon_search_text(coalesce({alias}.name, '') || ' ' || coalesce({alias}.email, '') || ' ' || coalesce({alias}.domain, '') || ' ' || coalesce({alias}.company, ''))"


def _with_search_text(db: sqlite_utils.Database) -> None:
    """Make :func:`recon.normalize.search_text` callable from SQL on this connection."""
    db.conn.create_function("recon_search_text", 1, search_text, deterministic=True)


def _build_queue(db: sqlite_utils.Database, match_run: str | None, plan_run: str | None) -> None:
    _with_search_text(db)
    db.execute("delete from review_queue")
    th = thresholds(db, match_run)
    tier_rank = "case {t} when 'review' then 0 when 'auto' then 1 else 2 end"
    cols = (
        "item_id, kind, object, tier, tier_rank, score, closeness, run_id, source_l, object_l, record_id_l, "
        "source_r, object_r, record_id_r, title, search, field, link_item_id, members, flags"
    )
    if match_run:
        close, params = _closeness(th, "link")
        db.execute(
            f"""insert or replace into review_queue ({cols})
            select p.pair_id, 'link', p.object, p.tier, {tier_rank.format(t="p.tier")}, p.score,
              {close.replace("q_score", "p.score").replace("q_object", "p.object")}, p.run_id,
                p.source_l, p.object_l, p.record_id_l, p.source_r, p.object_r, p.record_id_r,
              null, null, null, null, 2, p.flags
            from pairs p where p.run_id = ? and p.kind = 'link'""",
            [*params, match_run],
        )
        close, params = _closeness(th, "duplicate")
        db.execute(
            f"""insert or replace into review_queue ({cols})
            select c.cluster_id, 'duplicate', max(c.object), t.tier, {tier_rank.format(t="t.tier")}, min(c.score),
              {close.replace("q_score", "min(c.score)").replace("q_object", "max(c.object)")}, c.run_id,
              max(c.source), min(c.record_object), min(c.record_id), max(c.source), max(c.record_object), max(c.record_id),
              group_concat(coalesce(s.name, s.email, c.record_id), '  ·  '),
              group_concat({_search("s")}, ' '), null, null, count(*), null
            from clusters c
            join (select cluster_id, case when sum(tier = 'review') > 0 then 'review'
                  when sum(tier = 'auto') > 0 then 'auto' else 'reject' end as tier
                  from clusters where run_id = ? group by cluster_id) t on t.cluster_id = c.cluster_id
            left join snapshots s indexed by idx_snapshots_review_labels on s.source = c.source and s.object = c.record_object and s.record_id = c.record_id
            where c.run_id = ? group by c.cluster_id""",
            [*params, match_run, match_run],
        )
    if plan_run:
        close, params = _closeness(th, "link")
        entity = (
            "case when pi.object in ('companies', 'Account') then 'companies' else 'contacts' end"
        )
        db.execute(
            f"""insert or replace into review_queue ({cols})
            select pi.item_id, 'conflict', coalesce(p.object, {entity}), 'review', 0, p.score,
              coalesce({close.replace("q_score", "p.score").replace("q_object", "p.object")}, 0), pi.run_id,
              coalesce(p.source_l, 'hubspot'), coalesce(p.object_l, {_HS_OBJ}), coalesce(p.record_id_l, {_HS_ID}),
              coalesce(p.source_r, 'salesforce'), coalesce(p.object_r, {_SF_OBJ}), coalesce(p.record_id_r, {_SF_ID}),
              pi.field || ':  ' || coalesce(l.name, l.email, {_HS_ID}, '') || coalesce('  ↔  ' || coalesce(r.name, r.email, p.record_id_r, {_SF_ID}), ''),
              recon_search_text(coalesce(pi.field, '')) || ' ' || {_search("l")} || ' ' || coalesce({_search("r")}, ''),
              pi.field, pi.link_item_id, 2, null
            from plan_items pi
            left join pairs p on p.run_id = ? and p.pair_id = pi.link_item_id
            left join snapshots l indexed by idx_snapshots_review_labels on l.source = coalesce(p.source_l, 'hubspot') and l.object = coalesce(p.object_l, {_HS_OBJ})
              and l.record_id = coalesce(p.record_id_l, {_HS_ID})
            left join snapshots r indexed by idx_snapshots_review_labels on r.source = coalesce(p.source_r, 'salesforce') and r.object = coalesce(p.object_r, {_SF_OBJ})
              and r.record_id = coalesce(p.record_id_r, {_SF_ID})
            where pi.run_id = ? and pi.action = 'conflict'""",
            [*params, match_run, plan_run],
        )
        index_stale(db, plan_run)
        _index_pinned(db, match_run, plan_run, cols)
    # restores an undo's apply refused as stale wait for a person too (no re-plan proposes
    # them again): each undo plan's stand in the queue beside the forward plan's
    for (undo_plan,) in db.execute(
        f"select r.run_id from runs r where r.stage = 'plan' and {UNDO_PLAN} and exists "
        "(select 1 from journal j where j.plan_run_id = r.run_id and j.state = 'stale')"
    ).fetchall():
        index_stale(db, undo_plan)


def _index_pinned(
    db: sqlite_utils.Database, match_run: str | None, plan_run: str, cols: str
) -> None:
    """The approved links the plan kept though the match run no longer proposes them
    (:func:`recon.plan_load.pin_approved_links`), as link items of tier ``approved``: a
    person sees them, and rejecting one unlinks its records at the next plan."""
    row = db.execute("select summary from runs where run_id = ?", [plan_run]).fetchone()
    try:
        pinned = (json.loads(row[0] or "{}") or {}).get("pinned_links") or [] if row else []
    except (TypeError, ValueError):
        pinned = []
    for pid in pinned:
        d = db.execute(
            "select object, source_l, record_id_l, source_r, record_id_r, salesforce_object "
            "from decisions where item_id = ? and kind = 'link' and superseded = 0 "
            "order by coalesce(version, 1) desc, coalesce(decided_at, '') desc, decision_id desc "
            "limit 1",
            [pid],
        ).fetchone()
        if d is None:
            continue
        obj, sides = d[0], {d[1]: d[2], d[3]: d[4]}
        hs_id, sf_id = sides.get("hubspot"), sides.get("salesforce")
        if not hs_id or not sf_id:
            continue
        sf_obj = "Account" if obj == "companies" else d[5] or SF_ID_PREFIXES.get(str(sf_id)[:3])
        db.execute(
            f"insert or ignore into review_queue ({cols}) values "
            f"({', '.join('?' * len(cols.split(',')))})",
            [pid, "link", obj, "approved", 2, None, 0.0, match_run or plan_run, "hubspot", obj,
             str(hs_id), "salesforce", sf_obj, str(sf_id), None, None, None, None, 2,
             json.dumps(["approved_kept"])],
        )  # fmt: skip


# --------------------------------------------------------------------------- reading


def queue(
    db: sqlite_utils.Database,
    filt: QueueFilter | None = None,
    *,
    page: int = 0,
    page_size: int = 50,
) -> QueuePage:
    """One page of the queue, best-to-review first, with each item's current decision.

    Sorted by tier, closeness to the auto threshold and item id; in the ``undecided`` view the
    items nobody has answered come first and the deferred ones after them (each in that order).

    Examples:
        >>> from recon.store import open_store
        >>> queue(open_store(":memory:"), QueueFilter(kinds=("link",))).items
        []
    """
    filt = filt or QueueFilter()
    ensure_queue(db)
    if filt.text and filt.text.strip():
        ensure_search(db)
    start = max(page, 0) * page_size
    total = queue_count(db, *filt.where())
    if filt.status != "undecided":
        return QueuePage(_page_rows(db, filt, page_size, start), total, page, page_size, filt)
    # undecided: the items nobody has answered first, then the deferred ones (a deferral
    # sends an item back, not to the front). Each part is read in the index's order and stops
    # at its page, so a page of unanswered items costs what it did before
    items = _page_rows(db, replace(filt, status="unlabelled"), page_size, start)
    if len(items) < page_size and total > start + len(items):
        # the unanswered items end before this page does: the deferred ones follow them
        deferred = replace(filt, status="deferred")
        if items:
            fresh = start + len(items)
        else:  # a page past them all: how many there are places it among the deferred
            fresh = total - queue_count(db, *deferred.where())
        items += _page_rows(db, deferred, page_size - len(items), max(start - fresh, 0))
    return QueuePage(items, total, page, page_size, filt)


def queue_count(db: sqlite_utils.Database, where: str, params: Any) -> int:
    """How many review queue items (``q``) the condition ``where`` holds."""
    return int(
        db.execute(f"select count(*) from review_queue q where {where}", params).fetchone()[0]
    )


def _page_rows(
    db: sqlite_utils.Database, filt: QueueFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    """``limit`` items of ``filt`` from ``offset``, in the queue's order (tier, closeness, id)."""
    where, params = filt.where()
    rows = db.query(
        f"""select q.*, coalesce(q.title, {_LABEL_L} || '  ↔  ' || {_LABEL_R}) as title_,
              d.label, d.reviewer, d.decided_at, d.decided_by, d.kind as decision_kind,
              coalesce(d.version, 0) as version, {_LINK_REJECTED} as link_rejected
            from (select q.*, {_CURRENT} as current_id from review_queue q where {where}
                  order by q.tier_rank, q.closeness, q.item_id limit ? offset ?) q
            left join decisions d on d.decision_id = q.current_id
            {_JOIN_LR}
            order by q.tier_rank, q.closeness, q.item_id""",
        [*params, limit, offset],
    )
    return [_titled(r) for r in rows]


def _titled(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["title"] = out.pop("title_")
    return out


def _queue_row(db: sqlite_utils.Database, item_id: str) -> dict[str, Any]:
    ensure_queue(db)
    rows = list(
        db.query(
            f"select q.*, coalesce(q.title, {_LABEL_L} || '  ↔  ' || {_LABEL_R}) as title_ "
            f"from review_queue q {_JOIN_LR} where q.item_id = ?",
            [item_id],
        )
    )
    if not rows:
        raise ReviewError(
            f"no review item {item_id!r} in the queue",
            hint="the match or plan may have been re-run: reload the queue",
        )
    return _titled(rows[0])


# --------------------------------------------------------------------------- statistics


def score_histogram(
    db: sqlite_utils.Database,
    *,
    bins: int = 20,
    lo: float = 0.0,
    hi: float = 1.0,
    edges: list[float] | None = None,
) -> list[dict[str, Any]]:
    """Items per score bin, kind, object and tier (a histogram beside the thresholds).

    Bins split ``[lo, hi]`` evenly, or follow ``edges`` (ascending; scores below
    the first edge are left out), e.g. a scale in "nines" where scores crowd near 1.

    Examples:
        >>> from recon.store import open_store
        >>> score_histogram(open_store(":memory:"))
        []
    """
    ensure_queue(db)
    if edges is None:
        edges = [lo + (hi - lo) * k / bins for k in range(bins + 1)]
    inner = edges[1:-1]
    bin_sql = " + ".join(["0", *("(score >= ?)" for _ in inner)])
    rows = db.query(
        f"select kind, object, tier, {bin_sql} as bin, count(*) as items from review_queue "
        "where score >= ? and score <= ? and kind != 'conflict' "
        "group by kind, object, tier, bin order by bin",
        [*inner, edges[0], edges[-1]],
    )
    return [
        {**dict(r), "score_from": edges[r["bin"]], "score_to": edges[r["bin"] + 1]} for r in rows
    ]


def score_range(db: sqlite_utils.Database, kind: str, obj: str) -> tuple[float, float] | None:
    """Lowest and highest score of one kind and object in the queue (None when empty)."""
    ensure_queue(db)
    lo, hi = db.execute(
        "select min(score), max(score) from review_queue where kind = ? and object = ?", [kind, obj]
    ).fetchone()
    return None if lo is None else (float(lo), float(hi))


def tier_counts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Items per kind, object and tier, with how many are decided."""
    ensure_queue(db)
    rows = db.query(
        f"select kind, object, tier, count(*) as items, count(case when {_CURRENT_LABEL} in {FINAL_LABELS} or {_LINK_REJECTED} then 1 end) as decided "
        "from review_queue q group by kind, object, tier order by kind, object, tier_rank"
    )
    return [dict(r) for r in rows]


def decisions_over_time(db: sqlite_utils.Database, *, bucket: str = "day") -> list[dict[str, Any]]:
    """Human decisions per day (or ``hour``) and label, superseded ones included."""
    width = 13 if bucket == "hour" else 10
    rows = db.query(
        "select substr(decided_at, 1, ?) as period, kind, label, count(*) as decisions from decisions "
        "where decided_by = 'human' group by period, kind, label order by period",
        [width],
    )
    return [dict(r) for r in rows]


def tier_precision(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Precision of each tier measured from current human labels (``match`` over ``match + non_match``).

    A link a person rejected leaves the next match run (its records go to other partners),
    and so the queue: its label still counts, in the tier its pair had in the run it was
    decided on (while that run's rows are kept), as a split cluster no later run proposes
    counts in its cluster's tier. Otherwise every re-match would drop the rejections and
    show the tiers more precise than they are.

    Examples:
        >>> from recon.store import open_store
        >>> tier_precision(open_store(":memory:"))
        []
    """
    from .evaluate import departed_link_labels

    ensure_queue(db)
    human = "d.decided_by = 'human' and d.label in ('match', 'non_match')"
    rows = db.query(
        "select q.kind, q.tier, q.tier_rank, sum(d.label = 'match') as matches, "
        "sum(d.label = 'non_match') as non_matches "
        # the item's current answer: a cluster's split (non_match) counts as its approval would
        f"from review_queue q join decisions d on d.decision_id = {_CURRENT} "
        f"where {human} group by q.kind, q.tier"
    )
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        cells[(r["kind"], r["tier"])] = dict(r)
    rank = {"review": 0, "auto": 1}
    # standing labels of items the queue no longer holds, at their tier when decided: links as
    # `recon eval --labels` counts them (one shared query), then clusters
    departed = [
        {"kind": "link", "tier": r["tier"], "label": r["label"]} for r in departed_link_labels(db)
    ]
    departed += db.query(
        "select 'duplicate' as kind, (select c.tier from clusters c where c.run_id = d.run_id "
        "and c.cluster_id = d.item_id limit 1) as tier, d.label from decisions d "
        f"where d.kind in ('duplicate', 'split') and d.superseded = 0 and {human} "
        "and d.decision_id = (select max(e.decision_id) from decisions e where e.item_id = d.item_id "
        "and e.kind in ('duplicate', 'split') and e.superseded = 0) "
        "and not exists (select 1 from review_queue q where q.item_id = d.item_id)"
    )
    for r in departed:
        if r["tier"] is None:  # the run it was decided on is pruned: its tier is unknown
            continue
        cell = cells.setdefault(
            (r["kind"], r["tier"]),
            {"kind": r["kind"], "tier": r["tier"], "tier_rank": rank.get(r["tier"], 2),
             "matches": 0, "non_matches": 0},
        )  # fmt: skip
        cell["matches" if r["label"] == "match" else "non_matches"] += 1
    out = []
    for cell in sorted(cells.values(), key=lambda c: (c["kind"], c["tier_rank"], c["tier"])):
        n = cell["matches"] + cell["non_matches"]
        out.append(
            {
                "kind": cell["kind"],
                "tier": cell["tier"],
                "matches": cell["matches"],
                "non_matches": cell["non_matches"],
                "labelled": n,
                "precision": cell["matches"] / n if n else None,
            }
        )
    return out
