"""The review API: one queue of links, duplicate clusters and field conflicts, and decisions.

UI-free: the Streamlit page, the CLI and notebooks call these functions. The
queue covers three kinds of item: cross-system ``link`` pairs and ``duplicate``
clusters of the latest match run, and ``conflict`` items of the latest plan run
(shown with the link they belong to). It is indexed once per (match run, plan
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
``{"groups": [[{"source", "object", "record_id"}, ...], ...]}``.

Examples:
    >>> from recon.store import open_store
    >>> db = open_store(":memory:")
    >>> queue(db).total
    0
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from .errors import ReviewerConflict, ReviewError
from .models import now_iso, stable_id
from .store import transaction

__all__ = [
    "ACTIONS",
    "QueueFilter",
    "QueuePage",
    "bulk_approve",
    "choose_master",
    "choose_value",
    "count_bulk",
    "decide",
    "decisions_over_time",
    "ensure_queue",
    "item_detail",
    "queue",
    "record_link",
    "resolve_reviewer",
    "score_histogram",
    "split_cluster",
    "thresholds",
    "tier_counts",
    "tier_precision",
    "undo_last",
]

log = logging.getLogger(__name__)

#: what each action writes as label, per item kind
ACTIONS: dict[str, dict[str, str]] = {
    "link": {"approve": "match", "reject": "non_match", "defer": "unsure"},
    "duplicate": {"approve": "match", "reject": "non_match", "defer": "unsure"},
    "conflict": {"approve": "approve", "reject": "reject", "defer": "defer"},
}
_DECISION_KIND = {"link": "link", "duplicate": "duplicate", "conflict": "conflict_value"}
FINAL_LABELS = ("match", "non_match", "approve", "reject")
DEFERRED_LABELS = ("unsure", "defer")
RECORD_FIELDS = (
    "name", "first_name", "last_name", "email", "phone", "company", "domain", "website",
    "city", "country", "owner_id", "account_id", "external_ids", "created_at", "modified_at",
)  # fmt: skip
_NOT_COMPARED = ("account_id", "owner_id", "external_ids")
_DEFAULT_THRESHOLDS = {"link": (0.99, 0.5), "duplicate": (0.99, 0.6)}

# the item's current decision: the newest non-superseded one of its primary kinds
_CURRENT = (
    "(select d.decision_id from decisions d where d.item_id = q.item_id and d.superseded = 0 "
    "and d.kind in (case q.kind when 'link' then 'link' when 'duplicate' then 'duplicate' "
    "else 'conflict_value' end, case q.kind when 'duplicate' then 'split' "
    "when 'conflict' then 'plan' else '-' end) order by d.decision_id desc limit 1)"
)
_CURRENT_LABEL = _CURRENT.replace("select d.decision_id", "select d.label")


@dataclass
class QueueFilter:
    """Which queue items to show. ``None`` (or empty) means no restriction.

    ``status`` is ``undecided`` (no decision, or deferred), ``decided``,
    ``deferred`` or ``all``; ``text`` searches names, emails, domains and fields.
    """

    kinds: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    text: str | None = None
    status: str = "undecided"
    reviewer: str | None = None

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
        for word in (self.text or "").lower().split():
            sql.append("q.search like ?")
            params.append(f"%{word}%")
        if self.status == "undecided":
            sql.append(f"({_CURRENT_LABEL} is null or {_CURRENT_LABEL} in ('unsure', 'defer'))")
        elif self.status == "decided":
            sql.append(f"{_CURRENT_LABEL} in {FINAL_LABELS}")
        elif self.status == "deferred":
            sql.append(f"{_CURRENT_LABEL} in {DEFERRED_LABELS}")
        elif self.status != "all":
            raise ReviewError(
                f"unknown status filter {self.status!r}",
                hint="use undecided, decided, deferred or all",
            )
        if self.reviewer:
            sql.append(f"(select reviewer from decisions where decision_id = {_CURRENT}) = ?")
            params.append(self.reviewer)
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


def _latest_run(db: sqlite_utils.Database, stage: str) -> str | None:
    row = db.execute(
        "select run_id from runs where stage = ? and status in ('ok', 'partial', 'budget') "
        "order by started_at desc, rowid desc limit 1",
        [stage],
    ).fetchone()
    if row:
        return str(row[0])
    table, order = ("match_runs", "created_at") if stage == "match" else ("plan_items", "rowid")
    row = db.execute(f"select run_id from {table} order by {order} desc limit 1").fetchone()
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


def ensure_queue(db: sqlite_utils.Database) -> dict[str, Any]:
    """Index the latest match and plan runs into ``review_queue`` if not done yet; return the state.

    Cheap when up to date (two small queries). Concurrent sessions rebuild once:
    the check is repeated inside the write transaction.

    Examples:
        >>> from recon.store import open_store
        >>> ensure_queue(open_store(":memory:"))["items"]
        0
    """
    match_run, plan_run = _latest_run(db, "match"), _latest_run(db, "plan")
    state = db.execute(
        "select match_run_id, plan_run_id, items, built_at from review_state where name = 'queue'"
    ).fetchone()
    if state and (state[0], state[1]) == (match_run, plan_run):
        return {
            "match_run_id": match_run,
            "plan_run_id": plan_run,
            "items": state[2],
            "built_at": state[3],
        }
    with transaction(db):
        state = db.execute(
            "select match_run_id, plan_run_id, items, built_at from review_state where name = 'queue'"
        ).fetchone()
        if state and (state[0], state[1]) == (match_run, plan_run):
            return {
                "match_run_id": match_run,
                "plan_run_id": plan_run,
                "items": state[2],
                "built_at": state[3],
            }
        _build_queue(db, match_run, plan_run)
        items = db.execute("select count(*) from review_queue").fetchone()[0]
        built = now_iso()
        db["review_state"].upsert(
            {
                "name": "queue",
                "match_run_id": match_run,
                "plan_run_id": plan_run,
                "items": items,
                "built_at": built,
            },
            pk="name",
        )
    log.info("review queue built: %s items (match %s, plan %s)", items, match_run, plan_run)
    return {"match_run_id": match_run, "plan_run_id": plan_run, "items": items, "built_at": built}


def _closeness(th: dict[str, dict[str, dict[str, float]]], kind: str) -> tuple[str, list[float]]:
    sql = "abs(q_score - case q_object when 'companies' then ? else ? end)"
    return sql, [th["companies"][kind]["auto"], th["contacts"][kind]["auto"]]


def _search(alias: str) -> str:
    return f"lower(coalesce({alias}.name, '') || ' ' || coalesce({alias}.email, '') || ' ' || coalesce({alias}.domain, '') || ' ' || coalesce({alias}.company, ''))"


def _build_queue(db: sqlite_utils.Database, match_run: str | None, plan_run: str | None) -> None:
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
              coalesce(l.name, l.email, p.record_id_l) || '  ↔  ' || coalesce(r.name, r.email, p.record_id_r),
              {_search("l")} || ' ' || {_search("r")}, null, null, 2, p.flags
            from pairs p
            left join snapshots l on l.source = p.source_l and l.object = p.object_l and l.record_id = p.record_id_l
            left join snapshots r on r.source = p.source_r and r.object = p.object_r and r.record_id = p.record_id_r
            where p.run_id = ? and p.kind = 'link'""",
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
            left join snapshots s on s.source = c.source and s.object = c.record_object and s.record_id = c.record_id
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
              coalesce(p.source_l, pi.system), coalesce(p.object_l, pi.object), coalesce(p.record_id_l, pi.record_id),
              p.source_r, p.object_r, p.record_id_r,
              pi.field || ':  ' || coalesce(l.name, l.email, pi.record_id, '') || coalesce('  ↔  ' || coalesce(r.name, r.email, p.record_id_r), ''),
              lower(coalesce(pi.field, '')) || ' ' || {_search("l")} || ' ' || coalesce({_search("r")}, ''),
              pi.field, pi.link_item_id, 2, null
            from plan_items pi
            left join pairs p on p.run_id = ? and p.pair_id = pi.link_item_id
            left join snapshots l on l.source = coalesce(p.source_l, pi.system) and l.object = coalesce(p.object_l, pi.object)
              and l.record_id = coalesce(p.record_id_l, pi.record_id)
            left join snapshots r on r.source = p.source_r and r.object = p.object_r and r.record_id = p.record_id_r
            where pi.run_id = ? and pi.action = 'conflict'""",
            [*params, match_run, plan_run],
        )


# --------------------------------------------------------------------------- reading


def queue(
    db: sqlite_utils.Database,
    filt: QueueFilter | None = None,
    *,
    page: int = 0,
    page_size: int = 50,
) -> QueuePage:
    """One page of the queue, best-to-review first, with each item's current decision.

    Examples:
        >>> from recon.store import open_store
        >>> queue(open_store(":memory:"), QueueFilter(kinds=("link",))).items
        []
    """
    filt = filt or QueueFilter()
    ensure_queue(db)
    where, params = filt.where()
    total = db.execute(f"select count(*) from review_queue q where {where}", params).fetchone()[0]
    rows = db.query(
        f"""select q.*, d.label, d.reviewer, d.decided_at, d.decided_by, d.kind as decision_kind,
              coalesce(d.version, 0) as version
            from (select q.*, {_CURRENT} as current_id from review_queue q where {where}
                  order by q.tier_rank, q.closeness, q.item_id limit ? offset ?) q
            left join decisions d on d.decision_id = q.current_id
            order by q.tier_rank, q.closeness, q.item_id""",
        [*params, page_size, max(page, 0) * page_size],
    )
    return QueuePage([dict(r) for r in rows], total, page, page_size, filt)


def _queue_row(db: sqlite_utils.Database, item_id: str) -> dict[str, Any]:
    ensure_queue(db)
    rows = list(db.query("select * from review_queue where item_id = ?", [item_id]))
    if not rows:
        raise ReviewError(
            f"no review item {item_id!r} in the queue",
            hint="the match or plan may have been re-run: reload the queue",
        )
    return dict(rows[0])


def record_link(cfg: Any, source: str, obj: str, record_id: str) -> str | None:
    """The URL of a record in its CRM, or None when the config lacks the account's address.

    Examples:
        >>> from recon.config import ReconConfig
        >>> cfg = ReconConfig(hubspot={"portal_id": "42"})
        >>> record_link(cfg, "hubspot", "companies", "7")
        'https://app.hubspot.com/contacts/42/record/0-2/7'
    """
    if cfg is None:
        return None
    if source == "hubspot" and cfg.hubspot.portal_id:
        type_id = "0-2" if obj == "companies" else "0-1"
        return (
            f"{cfg.hubspot.app_url}/contacts/{cfg.hubspot.portal_id}/record/{type_id}/{record_id}"
        )
    if source == "salesforce" and cfg.salesforce.instance_url:
        return f"{cfg.salesforce.instance_url}/lightning/r/{obj}/{record_id}/view"
    return None


def _record(
    db: sqlite_utils.Database, cfg: Any, source: str, obj: str, record_id: str
) -> dict[str, Any]:
    rows = list(
        db.query(
            "select * from snapshots where source = ? and object = ? and record_id = ?",
            [source, obj, record_id],
        )
    )
    rec: dict[str, Any] = (
        dict(rows[0])
        if rows
        else {"source": source, "object": obj, "record_id": record_id, "missing": True}
    )
    try:
        rec["data"] = json.loads(rec.get("data") or "{}")
    except ValueError:
        rec["data"] = {}
    rec["link"] = record_link(cfg, source, obj, record_id)
    return rec


def _same(values: list[Any]) -> bool:
    norm = {str(v).strip().casefold() for v in values if v not in (None, "")}
    return (len(norm) <= 1 and all(v not in (None, "") for v in values)) or not norm


def _related(
    db: sqlite_utils.Database, rec: dict[str, Any], limit: int = 50
) -> list[dict[str, Any]]:
    cols = "source, object, record_id, name, email, company, account_id"
    key = (rec["source"], rec["object"], rec["record_id"])
    if rec["object"] in ("companies", "Account") and rec.get("record_id"):
        rows = db.query(
            f"""select {cols}, 'contact of this company' as relation from snapshots
                where source = ? and account_id = ? and object != ?
                union select {cols}, 'associated contact' from snapshots s
                where s.source = ? and s.object = 'contacts' and s.record_id in (
                  select from_id from associations where source = ? and to_object = 'companies' and to_id = ?)
                limit ?""",
            [key[0], key[2], key[1], key[0], key[0], key[2], limit],
        )
    elif rec.get("email"):
        rows = db.query(
            f"select {cols}, 'shares the email' as relation from snapshots where email in (?, ?) "
            "and not (source = ? and object = ? and record_id = ?) limit ?",
            [rec["email"], str(rec["email"]).strip().lower(), *key, limit],
        )
    else:
        return []
    return [dict(r) for r in rows]


def _versions(db: sqlite_utils.Database, item_id: str) -> dict[str, int]:
    rows = db.execute(
        "select kind, coalesce(json_extract(choice, '$.field'), ''), version from decisions "
        "where item_id = ? and superseded = 0",
        [item_id],
    ).fetchall()
    return {(f"{k}:{f}" if f else k): v for k, f, v in rows}


def item_detail(db: sqlite_utils.Database, item_id: str, cfg: Any = None) -> dict[str, Any]:
    """Everything the reviewer needs about one item.

    Returns a dict with ``item`` (the queue row), ``records`` (snapshot rows with
    ``data`` decoded and a ``link`` into the CRM), ``fields`` (per field: the
    values side by side and ``differs``), ``explanation`` (levels and weights,
    ``total``, ``score``), ``pairs`` (a cluster's internal pairs), ``plan`` (a
    conflict's plan item and value ``options``), ``related`` records,
    ``versions`` (current version per decision chain, e.g. ``link`` or
    ``conflict_value:phone``) and ``history`` (every decision on the item).

    Raises:
        ReviewError: no such item in the queue.

    Examples:
        >>> from recon.store import open_store
        >>> item_detail(open_store(":memory:"), "nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.ReviewError: no review item 'nope' in the queue
    """
    item = _queue_row(db, item_id)
    out: dict[str, Any] = {"item": item, "pairs": [], "plan": None, "explanation": None}
    keys = [(item["source_l"], item["object_l"], item["record_id_l"])]
    if item["kind"] == "duplicate":
        keys = [
            (r["source"], r["record_object"], r["record_id"])
            for r in db.query(
                "select * from clusters where run_id = ? and cluster_id = ? order by record_id",
                [item["run_id"], item_id],
            )
        ]
        out["pairs"] = [
            {**dict(p), "explanation": json.loads(p["explanation"] or "[]")}
            for p in db.query(
                "select * from pairs where run_id = ? and cluster_id = ? order by score desc limit 50",
                [item["run_id"], item_id],
            )
        ]
    elif item["record_id_r"]:
        keys.append((item["source_r"], item["object_r"], item["record_id_r"]))
    out["records"] = [_record(db, cfg, *k) for k in keys]
    out["fields"] = []
    one_system = len({r["source"] for r in out["records"]}) == 1
    for name in RECORD_FIELDS:
        values = [r.get(name) for r in out["records"]]
        # ids and timestamps differ by nature across systems: shown, never flagged
        comparable = name not in _NOT_COMPARED or (one_system and name != "external_ids")
        if name in ("created_at", "modified_at"):
            comparable = False
        if any(v not in (None, "") for v in values):
            out["fields"].append(
                {"field": name, "values": values, "differs": comparable and not _same(values)}
            )
    pair_id = item_id if item["kind"] == "link" else item["link_item_id"]
    if item["kind"] == "conflict":
        plan = dict(
            next(
                iter(
                    db.query(
                        "select * from plan_items where run_id = ? and item_id = ?",
                        [item["run_id"], item_id],
                    )
                )
            )
        )
        for col in ("before", "after", "reason", "payload", "requires"):
            try:
                plan[col] = json.loads(plan[col]) if plan[col] is not None else None
            except ValueError:
                pass
        out["plan"] = plan
        out["options"] = _value_options(plan, out["records"])
    if pair_id:
        match_run = item["run_id"] if item["kind"] == "link" else _latest_run(db, "match")
        rows = list(
            db.query("select * from pairs where run_id = ? and pair_id = ?", [match_run, pair_id])
        )
        if rows:
            p = dict(rows[0])
            out["explanation"] = {
                "levels": json.loads(p["explanation"] or "[]"),
                "total": p["match_weight"],
                "score": p["score"],
                "tier": p["tier"],
                "flags": json.loads(p["flags"] or "[]"),
            }
    out["related"] = [
        rel for rec in out["records"] if not rec.get("missing") for rel in _related(db, rec)
    ]
    out["versions"] = _versions(db, item_id)
    ids = [item_id]
    out["merge_item_id"] = _merge_item(db, item_id) if item["kind"] == "duplicate" else None
    if out["merge_item_id"]:  # a cluster's surviving values are decided on its merge item
        ids.append(out["merge_item_id"])
        merge_versions = _versions(db, out["merge_item_id"])
        out["versions"].update(
            {k: v for k, v in merge_versions.items() if k.startswith("conflict_value:")}
        )
        out["chosen"] = {
            k.split(":", 1)[1]: v for k, v in _chosen_values(db, out["merge_item_id"]).items()
        }
    marks = ", ".join("?" * len(ids))
    out["history"] = [
        dict(r)
        for r in db.query(
            f"select * from decisions where item_id in ({marks}) order by decision_id desc limit 100",
            ids,
        )
    ]
    return out


def _value_options(plan: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values a conflict can settle on: each side's value, labelled with its source."""
    options: list[dict[str, Any]] = []
    payload: dict[str, Any] = plan["payload"] if isinstance(plan.get("payload"), dict) else {}
    for source in ("hubspot", "salesforce"):
        side = payload.get(source)
        if isinstance(side, dict):  # the plan's conflict payload: one dict per side
            options.append({"source": source, "value": side.get("value")})
    values: dict[str, Any] = payload["values"] if isinstance(payload.get("values"), dict) else {}
    if not options:
        options = [{"source": source, "value": value} for source, value in values.items()]
    if not options:
        other = next((r["source"] for r in records if r["source"] != plan["system"]), "proposed")
        options = [
            {"source": plan["system"], "value": plan["before"]},
            {"source": other, "value": plan["after"]},
        ]
    return options


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
    return (
        "item_id = ? and kind = ? and coalesce(json_extract(choice, '$.field'), '') = ?",
        [item_id, kind, field_name or ""],
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
    conflicts ``approve`` (the plan's proposed value)/``reject``/``defer``.

    Raises:
        ReviewerConflict: the item's current version is not ``based_on_version``.
        ReviewError: unknown item or action, or no reviewer.

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
    choice = None
    if item["kind"] == "conflict":
        choice = {"field": item["field"]}
        if action == "approve":
            after = db.execute(
                "select after from plan_items where run_id = ? and item_id = ?",
                [item["run_id"], item_id],
            ).fetchone()[0]
            if after in (None, "null", '""'):
                raise ReviewError(
                    f"conflict {item_id} proposes no value",
                    hint="choose the surviving value (choose_value)",
                )
            choice.update(value=json.loads(after), source="plan")
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
    ``"fields"``: every value chosen for that merge so far (what the plan reads).

    Raises:
        ReviewError: a link (its field values are chosen on its conflict items), or a
            cluster with no merge planned yet.

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


def _merge_item(db: sqlite_utils.Database, cluster_id: str) -> str | None:
    plan_run = _latest_run(db, "plan")
    row = db.execute(
        "select item_id from plan_items where run_id = ? and action = 'merge' and link_item_id = ? limit 1",
        [plan_run, cluster_id],
    ).fetchone()
    return str(row[0]) if row else None


def _chosen_values(db: sqlite_utils.Database, item_id: str) -> dict[str, Any]:
    rows = db.execute(
        "select json_extract(choice, '$.field'), choice from decisions "
        "where item_id = ? and kind = 'conflict_value' and superseded = 0 order by decision_id",
        [item_id],
    ).fetchall()
    return {f"conflict_value:{f}": json.loads(c).get("value") for f, c in rows if f}


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
) -> dict[str, Any]:
    """Choose the record a duplicate cluster is merged into (``master`` / ``approve``).

    Raises:
        ReviewError: not a cluster, or the record is not one of its members.
    """
    item = _queue_row(db, cluster_id)
    if item["kind"] != "duplicate" or (source, record_id) not in _members(db, item):
        raise ReviewError(f"{source} {record_id} is not a member of duplicate cluster {cluster_id}")
    obj = db.execute(
        "select record_object from clusters where run_id = ? and cluster_id = ? and record_id = ?",
        [item["run_id"], cluster_id, record_id],
    ).fetchone()[0]
    choice = {"master": record_id, "source": source, "object": obj}
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
    scoped = QueueFilter(**{**filt.__dict__, "status": "undecided"})
    if tier:
        scoped.tiers = (tier,)
    scoped.kinds = tuple(k for k in (filt.kinds or _BULK_KINDS) if k in _BULK_KINDS) or ("-",)
    return scoped.where()


def count_bulk(
    db: sqlite_utils.Database, filt: QueueFilter | None = None, *, tier: str | None = None
) -> int:
    """How many undecided links and clusters a bulk approve of ``filt`` (or one ``tier``) would label.

    Conflicts are never bulk approved: each needs its value chosen.

    Examples:
        >>> from recon.store import open_store
        >>> count_bulk(open_store(":memory:"), tier="auto")
        0
    """
    ensure_queue(db)
    where, params = _bulk_where(filt or QueueFilter(status="all"), tier)
    return int(
        db.execute(f"select count(*) from review_queue q where {where}", params).fetchone()[0]
    )


def bulk_approve(
    db: sqlite_utils.Database,
    filt: QueueFilter | None = None,
    *,
    tier: str | None = None,
    reviewer: str | None,
    expected: int,
) -> int:
    """Label every undecided link and cluster of ``filt`` (or ``tier``) ``match``, in one transaction.

    ``expected`` is the count shown to the reviewer (:func:`count_bulk`); if the
    queue changed since, nothing is written. Rows share a ``bulk:<id>`` note, so
    :func:`undo_last` undoes the whole batch.

    Raises:
        ReviewerConflict: the count differs from ``expected``.
        ReviewError: no reviewer.
    """
    if not reviewer:
        raise ReviewError("no reviewer: sign in first")
    ensure_queue(db)
    where, params = _bulk_where(filt or QueueFilter(status="all"), tier)
    batch = "bulk:" + stable_id(reviewer, now_iso(), os.getpid(), length=10)
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
        if n != expected:
            raise ReviewerConflict(
                f"{n} items match now, not the {expected} shown", hint="count again, then confirm"
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


# --------------------------------------------------------------------------- statistics


def score_histogram(db: sqlite_utils.Database, *, bins: int = 20) -> list[dict[str, Any]]:
    """Items per score bin, kind, object and tier (for a histogram with the thresholds).

    Examples:
        >>> from recon.store import open_store
        >>> score_histogram(open_store(":memory:"))
        []
    """
    ensure_queue(db)
    rows = db.query(
        "select kind, object, tier, min(cast(score * ? as int), ? - 1) as bin, count(*) as items "
        "from review_queue where score is not null and kind != 'conflict' group by kind, object, tier, bin order by bin",
        [bins, bins],
    )
    return [
        {**dict(r), "score_from": r["bin"] / bins, "score_to": (r["bin"] + 1) / bins} for r in rows
    ]


def tier_counts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Items per kind, object and tier, with how many are decided."""
    ensure_queue(db)
    rows = db.query(
        f"select kind, object, tier, count(*) as items, count(case when {_CURRENT_LABEL} in {FINAL_LABELS} then 1 end) as decided "
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

    Examples:
        >>> from recon.store import open_store
        >>> tier_precision(open_store(":memory:"))
        []
    """
    ensure_queue(db)
    rows = db.query(
        "select q.kind, q.tier, sum(d.label = 'match') as matches, sum(d.label = 'non_match') as non_matches "
        "from review_queue q join decisions d on d.item_id = q.item_id and d.kind = q.kind "
        "where d.superseded = 0 and d.decided_by = 'human' and d.label in ('match', 'non_match') "
        "group by q.kind, q.tier order by q.kind, q.tier_rank"
    )
    out = []
    for r in rows:
        n = r["matches"] + r["non_matches"]
        out.append({**dict(r), "labelled": n, "precision": r["matches"] / n if n else None})
    return out
