"""The change plan: matches + mappings + conflict rules -> the exact writes recon proposes.

:func:`build_plan` computes, for every candidate link and duplicate cluster of a
match run (auto and review tiers), the items that would make both CRMs agree,
and stores them as ``plan_items`` of a new ``plan`` run (one transaction).
Nothing is written to a CRM here; an item is applied only once the decisions it
``requires`` are approved (:func:`approved_items` is what apply reads).

Plan item contract (one ``plan_items`` row; JSON columns decoded by :func:`approved_items`):

- ``item_id``: stable: the same inputs give the same id (``models.stable_id`` of the
  action, the target and the link), so decisions on an item survive a re-plan.
- ``action``: ``update`` (one field of one record), ``owner`` (an owner field, mapped
  HubSpot owner ⇄ Salesforce User by email), ``create`` (an unmatched record on the
  other side), ``associate`` (contact ⇄ company), ``merge`` (a duplicate cluster),
  ``conflict`` (a value the rules cannot settle; ``status = needs_review``).
- ``system``: where the write goes (``hubspot`` | ``salesforce``; ``both`` for a conflict,
  whose target is known only once a value is chosen).
- ``before`` / ``after``: the target's current value and the value to write (JSON);
  ``snapshot_modified_at``: the target record's modified time the item was computed from
  (apply refuses the write when the record changed since).
- ``link_item_id``: the pair id (links) or cluster id (merges) the item belongs to.
- ``requires``: decision item ids that must be approved: the link pair id for field
  updates; pair + the conflict item itself for conflicts; the cluster id for merges;
  the create item itself (a ``plan`` decision) for creates; both ends for associations.
- ``reason``: ``{"rule", "why", "direction", "score", "tier", ...}``.
- ``status``: ``proposed`` | ``needs_review`` (conflicts) | ``blocked`` (cannot be applied,
  e.g. a HubSpot company merge while the Salesforce connector is active).
- ``seq``: run order: Salesforce merges (10), HubSpot merges (20), company creates (30),
  contact creates (40), updates and owners (50), derived values (60), associations (70).
- ``payload``: what the writer needs:
  update/owner ``{"properties": {...}}`` (HubSpot) or ``{"fields": {...}}`` (Salesforce);
  create ``{"object", "fields", "idempotency_key", "natural_key", "source"}``;
  merge ``{"master", "victims", "fields" (survivorship writes onto the master),
  "survivorship", "values", "order", "rule"}``;
  associate ``{"from": {...}, "to": {...}, "type"}`` where an end is ``{"object", "id"}``
  or ``{"object", "create_item_id"}`` (a record an earlier create makes);
  conflict ``{"kind", "hubspot": {...}, "salesforce": {...}}``.

Decisions (``decisions`` table, STYLE.md habit 4): the latest non-superseded decision of
an item (highest version, then time, then id) counts; ``match`` and ``approve`` approve,
anything else does not.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

import orjson
import sqlite_utils

from .errors import UsageError
from .models import REFUSING_LABELS, stable_id
from .plan_item import FieldWrite, Item, write_payload
from .plan_values import (
    for_hubspot,
    for_salesforce,
    is_blank,
    is_opt_out,
    map_option,
    norm,
    opted_out,
)

T = TypeVar("T")

__all__ = [
    "APPROVED_LABELS",
    "PlanResult",
    "approved_items",
    "build_plan",
    "field_choices",
    "gc_paused",
    "latest_decisions",
    "merge_as_decided",
    "proposed_choice",
    "plan_counts",
    "survivorship",
]

log = logging.getLogger(__name__)

#: decision labels that approve an item
APPROVED_LABELS = frozenset({"match", "approve"})
#: decision labels that reject a link or cluster (a split is a ``non_match``)
REJECTED_LABELS = frozenset({"non_match", "reject"})
_JSON_COLUMNS = ("before", "after", "requires", "reason", "payload")


@dataclass
class PlanResult:
    """What :func:`build_plan` produced.

    Attributes:
        run_id: the plan run (None for a dry run that stored nothing).
        match_run_id: the match run the plan was computed from.
        counts: rows of ``{action, object, system, status, items}``.
        skipped: why candidate writes were not planned (reason -> count).
        warnings: mapping problems that only disabled or narrowed a default mapping.
        items: the plan items as stored (JSON columns decoded).
        seconds: build time.
        pinned_links: pair ids of approved links the match run no longer proposes, kept
            (:func:`recon.plan_load.pin_approved_links`; the review queue lists them).
    """

    run_id: str | None
    match_run_id: str | None
    counts: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    seconds: float = 0.0
    #: approved links the match run no longer proposes that the plan kept (their pair ids)
    pinned_links: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of plan items."""
        return sum(int(c["items"]) for c in self.counts)

    def summary(self) -> dict[str, Any]:
        """Plain-data summary (what the run row stores and ``--format json`` prints)."""
        by_action: Counter[str] = Counter()
        by_object: Counter[str] = Counter()
        for c in self.counts:
            by_action[c["action"]] += c["items"]
            by_object[c["object"]] += c["items"]
        return {
            "run_id": self.run_id,
            "match_run_id": self.match_run_id,
            "items": self.total,
            "by_action": dict(sorted(by_action.items())),
            "by_object": dict(sorted(by_object.items())),
            "counts": self.counts,
            "skipped": dict(sorted(self.skipped.items())),
            "warnings": [list(w) for w in self.warnings],
            "seconds": round(self.seconds, 3),
            "pinned_links": self.pinned_links,
        }


def plan_counts(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Items per (action, object, system, status), sorted.

    Examples:
        >>> plan_counts([{"action": "update", "object": "Lead", "system": "salesforce", "status": "proposed"}])
        [{'action': 'update', 'object': 'Lead', 'system': 'salesforce', 'status': 'proposed', 'items': 1}]
    """
    get = itemgetter("action", "object", "system", "status")
    c: Counter[tuple[str, str, str, str]] = Counter(
        # a field write's attributes read directly (its mapping protocol is a call per key)
        (i.action, i.object, i.system, i.status) if type(i) is FieldWrite else get(i)
        for i in items
    )
    return [
        {"action": a, "object": o, "system": s, "status": st, "items": n}
        for (a, o, s, st), n in sorted(c.items())
    ]


# --------------------------------------------------------------------------- decisions


def latest_decisions(
    db: sqlite_utils.Database, kinds: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The deciding decision of every item: latest non-superseded (version, time, id).

    Args:
        db: the store.
        kinds: only decisions of these kinds (``link``, ``duplicate``, ``conflict_value``,
            ``master``, ``split``, ``plan``); all when None.

    Returns:
        ``{item_id: decision row}`` with ``choice`` decoded from JSON.

    Examples:
        >>> from recon.store import open_store
        >>> latest_decisions(open_store(":memory:"))
        {}
    """
    sql = "select * from decisions where superseded = 0 and item_id is not null"
    params: list[Any] = []
    if kinds is not None:
        kinds = list(kinds)
        sql += f" and kind in ({','.join('?' * len(kinds))})"
        params += kinds
    sql += " order by item_id, coalesce(version, 1), coalesce(decided_at, ''), decision_id"
    out: dict[str, dict[str, Any]] = {}
    for row in db.query(sql, params):
        d = dict(row)
        try:
            d["choice"] = json.loads(d["choice"]) if d.get("choice") not in (None, "") else None
        except (TypeError, ValueError):
            pass  # a bare string choice stays as it is
        out[d["item_id"]] = d
    return out


def field_choices(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    """The surviving value chosen for each field of an item: ``{item_id: {field: value}}``.

    Each (item, field) has its own chain of ``conflict_value`` decisions (see
    :func:`recon.review.choose_value`); its current decision is the one not superseded.
    A merge's survivorship overrides are these, field by field (a choice on one field
    never hides or revives another's).

    Examples:
        >>> from recon.store import open_store
        >>> field_choices(open_store(":memory:"))
        {}
    """
    out: dict[str, dict[str, Any]] = {}
    for item_id, label, choice in db.execute(
        "select item_id, label, choice from decisions where kind = 'conflict_value' "
        "and superseded = 0 and item_id is not null order by decision_id"
    ):
        try:
            parsed = json.loads(choice) if choice else None
        except ValueError:
            continue
        if not isinstance(parsed, dict):
            continue
        fields = out.setdefault(item_id, {})
        # {"field", "value", ...} as the review writes it; a bare {field: value} as well
        chosen = (
            {parsed["field"]: parsed.get("value")}
            if parsed.get("field")
            else {k: v for k, v in parsed.items() if k not in ("source", "side", "fields")}
        )
        for name, value in chosen.items():
            if label in APPROVED_LABELS:
                fields[name] = value
            else:  # a rejected or deferred choice leaves the field to the rules
                fields.pop(name, None)
    return out


#: objects made during a build above which the survivors are kept out of the collector
_FREEZE_OVER = 1_000_000


def gc_paused(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn`` with the cycle collector off (and its frame freed before it is back on).

    A plan build (and reading the approved items of a large plan) makes millions of small
    objects and frees none of them until it ends: the cycle collector would rescan them all
    again and again (that alone doubled the time; one full collection while the items are
    stored still cost a second).

    The returned items survive the build, and the first collection after it would walk
    all of them, more than once (12.5 s after the large demo's 1.6M-item plan). They are
    plain data without reference cycles, so after a large build every object alive is
    moved to the collector's permanent generation (:func:`gc.freeze`): freed as usual
    when no longer referenced, never rescanned.
    """

    @functools.wraps(fn)
    def paused(*args: Any, **kwargs: Any) -> T:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                if gc.get_count()[0] > _FREEZE_OVER:
                    gc.freeze()
                gc.enable()

    return paused


def _loads(text: str) -> Any:
    """JSON text decoded: orjson, or the standard decoder for what orjson refuses (integers
    beyond 64 bits, NaN)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _decode_in_place(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its JSON columns decoded (``row`` itself, changed)."""
    for key in _JSON_COLUMNS:
        value = row.get(key)
        if isinstance(value, str) and value != "":
            row[key] = _loads(value)
    return row


def survivorship(
    master: str,
    order: list[str],
    values: dict[str, dict[str, Any]],
    overrides: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Per-field surviving values of a merge.

    Each field keeps the master's value unless it is blank, then takes the first
    non-blank value in ``order`` (the master rule's ranking); an override (a
    reviewer's ``conflict_value`` / ``master`` choice) wins over both. A blank
    never replaces a value. A consent flag (:func:`~recon.plan_values.is_opt_out`: email
    opt-out, do not call) survives opted out when any member is, unless a reviewer chose
    otherwise: merging never resubscribes a person.

    Args:
        master: the surviving record id.
        order: member ids ranked by the master rule.
        values: ``{field: {record_id: value}}`` for fields whose members differ.
        overrides: ``{field: value}`` chosen by a reviewer.

    Returns:
        ``(writes, detail)``: the fields to write onto the master after the merge,
        and ``{field: {"value", "from", "why"}}``.

    Examples:
        >>> survivorship("a", ["a", "b"], {"phone": {"a": None, "b": "1"}})[0]
        {'phone': '1'}
        >>> survivorship("a", ["a", "b"], {"HasOptedOutOfEmail": {"a": False, "b": True}})
        ({'HasOptedOutOfEmail': True}, {'HasOptedOutOfEmail': {'value': True, 'from': 'b', 'why': 'opt_out_kept'}})
    """
    writes: dict[str, Any] = {}
    detail: dict[str, dict[str, Any]] = {}
    ranked = [master] + [r for r in order if r != master]
    for fname in sorted(values):
        per = values[fname]
        if overrides and fname in overrides and not is_blank(overrides[fname]):
            value, src, why = overrides[fname], "reviewer", "override"
        elif (
            is_opt_out(fname)
            and not opted_out(per.get(master))
            and any(opted_out(per.get(r)) for r in ranked)
        ):
            src = next(r for r in ranked if opted_out(per.get(r)))
            # as the CRM writes it (a report's "Yes" or 1 is no value Salesforce's SOAP merge
            # or HubSpot takes): True where the member held a boolean, else "true"
            kept = per.get(src)
            value, why = (True if isinstance(kept, bool | int) else "true"), "opt_out_kept"
        elif not is_blank(per.get(master)):
            value, src, why = per.get(master), master, "master"
        else:
            src = next((r for r in ranked if not is_blank(per.get(r))), master)
            value, why = per.get(src), "first_non_blank"
        detail[fname] = {"value": value, "from": src, "why": why}
        if value != per.get(master) and not is_blank(value):
            writes[fname] = value
    return writes, detail


def _merge_with_choices(
    item: dict[str, Any], master_dec: dict[str, Any] | None, chosen: dict[str, Any] | None
) -> dict[str, Any]:
    payload = dict(item["payload"])
    members = list(payload.get("order") or [payload["master"], *payload.get("victims", [])])
    master = payload["master"]
    overrides: dict[str, Any] = {}
    if master_dec and master_dec.get("label") not in REFUSING_LABELS:
        choice = master_dec.get("choice")
        if isinstance(choice, dict):
            master = str(choice.get("master") or choice.get("record_id") or master)
            overrides.update(choice.get("fields") or {})
        elif choice not in (None, ""):
            master = str(choice)
    overrides.update(chosen or {})
    if master not in members:
        master = payload["master"]
    values = payload.get("values") or {}
    writes, detail = survivorship(master, members, values, overrides)
    payload.update(
        master=master,
        victims=[m for m in members if m != master],
        fields=writes,
        survivorship=detail,
    )
    out = dict(item)
    out["payload"] = payload
    out["record_id"] = master
    # what the master held and when: the audit's before-values and the stale check's snapshot
    out["before"] = {f: (values.get(f) or {}).get(master) for f in writes}
    out["after"] = writes
    modified = payload.get("modified") or {}
    if master in modified:
        out["snapshot_modified_at"] = modified[master]
    if master != item["payload"]["master"] and isinstance(item.get("reason"), dict):
        out["reason"] = {**item["reason"], "master_chosen_by": "reviewer"}
    return out


def merge_as_decided(
    db: sqlite_utils.Database, plan_run_id: str, merge_item_id: str
) -> dict[str, Any] | None:
    """A plan's merge item as apply would send it now: the reviewer's master (if chosen) and
    surviving-value choices applied, survivorship computed for that master (what the review
    app shows as surviving), or None when the plan has no such merge.

    Examples:
        >>> from recon.store import open_store
        >>> merge_as_decided(open_store(":memory:"), "plan-x", "m1") is None
        True
    """
    row = db.execute(
        "select * from plan_items where run_id = ? and item_id = ? and action = 'merge'",
        [plan_run_id, merge_item_id],
    ).fetchone()
    if row is None:
        return None
    cols = [d[0] for d in db.execute("select * from plan_items limit 0").description]
    item = _decode_in_place(dict(zip(cols, row, strict=True)))
    master = latest_decisions(db, kinds=["master"]).get(str(item["link_item_id"]))
    return _merge_with_choices(item, master, field_choices(db).get(merge_item_id))


def proposed_choice(after: Any) -> dict[str, Any] | None:
    """The choice a conflict item's ``after`` (decoded) proposes, or None: a person chooses.

    A plan proposes a side (``{"side", "value"}``: the newer one, see
    ``Planner.conflict``); a hand-made conflict may carry a bare value.

    Examples:
        >>> proposed_choice({"side": "hubspot", "value": "CEO"}), proposed_choice(None)
        ({'value': 'CEO', 'source': 'plan', 'side': 'hubspot'}, None)
    """
    if is_blank(after):
        return None
    if isinstance(after, dict) and after.get("side") in ("hubspot", "salesforce"):
        return {"value": after.get("value"), "source": "plan", "side": after["side"]}
    return {"value": after, "source": "plan"}


def _option_sides(payload: dict[str, Any], kind: str, value: Any) -> dict[str, Any]:
    """A typed-in value (normalised) as each side writes it: an option value of one side
    (in any case) is mapped to the other's through the conflict's ``options`` (HubSpot ->
    Salesforce, as the mapping maps them); anything else is written as typed on both.

    ``space``: the side whose option the value named (None: neither).

    Examples:
        >>> p = {"options": {"NEW": "Open"}, "sf_options": ["Open", "Closed"]}
        >>> _option_sides(p, "enum", "new")
        {'hubspot': 'NEW', 'salesforce': 'Open', 'space': 'hubspot'}
        >>> _option_sides(p, "enum", "Open")["hubspot"], _option_sides(p, "enum", "Other")
        ('NEW', {'hubspot': 'Other', 'salesforce': 'Other', 'space': None})
        >>> _option_sides(p, "multi", ("new",))
        {'hubspot': ('NEW',), 'salesforce': ('Open',), 'space': 'hubspot'}
    """
    options = payload.get("options") or {}
    plain = {"hubspot": value, "salesforce": value, "space": None}
    if kind not in ("enum", "multi") or value is None or not isinstance(options, dict):
        return plain
    vals = value if isinstance(value, tuple) else (value,)
    hs_known = {str(v).casefold(): str(v) for v in [*options, *(payload.get("hs_options") or ())]}
    sf_known = {
        str(v).casefold(): str(v) for v in [*options.values(), *(payload.get("sf_options") or ())]
    }

    def spelt(table: dict[str, str]) -> Any:  # each value as the side spells its option
        got = tuple(sorted({table[str(v).casefold()] for v in vals}))
        return got if isinstance(value, tuple) else got[0]

    if options and all(str(v).casefold() in hs_known for v in vals):
        hs_value = spelt(hs_known)
        return {
            "hubspot": hs_value,
            "salesforce": map_option(hs_value, options),
            "space": "hubspot",
        }
    if options and all(str(v).casefold() in sf_known for v in vals):
        sf_value = spelt(sf_known)
        hs_value = map_option(sf_value, options, reverse=True)
        return {"hubspot": hs_value, "salesforce": sf_value, "space": "salesforce"}
    return plain


def _expand_conflict(item: dict[str, Any], choice: Any) -> list[dict[str, Any]]:
    """Turn an approved conflict into the update items its chosen value needs."""
    p = item["payload"]
    kind = p.get("kind", "text")
    hs, sf = p["hubspot"], p["salesforce"]
    writes: list[tuple[str, dict[str, Any], Any]] = []
    side = choice.get("side") if isinstance(choice, dict) else None
    if side == "hubspot":
        writes.append(("salesforce", sf, hs.get("as_salesforce")))
    elif side == "salesforce":
        writes.append(("hubspot", hs, sf.get("as_hubspot")))
    else:
        value = choice.get("value") if isinstance(choice, dict) else choice
        if kind == "owner" or is_blank(value):
            return []  # owners are chosen by side; a blank choice never blanks a record
        sides = _option_sides(p, kind, norm(kind, value))
        for system, target in (("hubspot", hs), ("salesforce", sf)):
            n = sides[system]
            current = norm(kind, target.get("value"))
            if current == n:
                continue
            if (
                system == "hubspot"
                and sides["space"] == "salesforce"
                and map_option(current, p["options"]) == sides["salesforce"]
            ):
                continue  # HubSpot's option already is the chosen Salesforce value
            after = (
                for_hubspot(kind, n)
                if system == "hubspot"
                else for_salesforce(kind, n, p.get("sf_type"))
            )
            writes.append((system, target, after))
    out = []
    for system, target, after in writes:
        if is_blank(after) or target.get("writable") is False:
            continue  # never blank a record; never write where direction or read-only forbid
        out.append(
            {
                **item,
                "item_id": stable_id(item["item_id"], system),
                "action": "owner" if kind == "owner" else "update",
                "system": system,
                "object": target["object"],
                "record_id": target["record_id"],
                "field": target["field"],
                "before": target.get("value"),
                "after": after,
                "snapshot_modified_at": target.get("modified_at"),
                "status": "proposed",
                "payload": write_payload(system, target["field"], after),
                "conflict_item_id": item["item_id"],
            }
        )
    return out


def _decision_summary(d: dict[str, Any]) -> dict[str, Any]:
    """What an approved item carries of a decision (the audit's reviewer and time come first
    from the first one)."""
    return {
        k: d.get(k)
        for k in ("item_id", "kind", "label", "reviewer", "decided_by", "decided_at", "version")
    }


def _first(item: dict[str, Any], d: dict[str, Any]) -> None:
    """Put decision ``d`` first in ``item["decisions"]`` (once: a conflict requires its own)."""
    said = _decision_summary(d)
    item["decisions"] = [said] + [
        x for x in item["decisions"] if (x["item_id"], x["kind"]) != (said["item_id"], said["kind"])
    ]


@gc_paused
def approved_items(db: sqlite_utils.Database, plan_run_id: str) -> list[dict[str, Any]]:
    """The plan items of ``plan_run_id`` whose required decisions are all approved, in run order.

    This is what apply executes. Rules:

    - an item is approved when the deciding decision (latest, non-superseded) of every id
      in its ``requires`` has label ``match`` or ``approve``; a rejected (``non_match``,
      ``reject``), deferred or undecided requirement drops the item;
    - ``blocked`` items are never returned;
    - an approved ``conflict`` item is replaced by the ``update``/``owner`` items its chosen
      value needs (``choice`` = ``{"side": "hubspot"|"salesforce"}``, ``{"value": v}`` or a bare
      value; a blank choice writes nothing); each gets the stable id
      ``stable_id(conflict_item_id, system)`` and a ``conflict_item_id`` key;
    - a ``merge`` item takes the latest ``master`` decision on its cluster (choice = the master
      record id, or ``{"master": id, "fields": {field: value}}``) and ``conflict_value``
      decisions on the merge item, field by field (:func:`field_choices`), as survivorship
      overrides.

    Every returned dict is a ``plan_items`` row with JSON columns decoded plus
    ``decisions``: the deciding decision of each required id (reviewer, time, label, version).

    Raises:
        UsageError: ``plan_run_id`` names no plan run (a mistyped id read as "nothing
            approved").

    Examples:
        >>> from recon.store import open_store
        >>> approved_items(open_store(":memory:"), "plan-x")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.UsageError: no plan run 'plan-x' in the store
    """
    known = db.execute(
        "select 1 from runs where run_id = ? and stage = 'plan'", [plan_run_id]
    ).fetchone()
    if known is None:
        raise UsageError(
            f"no plan run {plan_run_id!r} in the store",
            hint="`recon status --runs plan` lists the plan runs",
        )
    every = latest_decisions(db)
    masters = latest_decisions(db, kinds=["master"])
    # a `master` decision may share its item id (the cluster id) with the duplicate
    # approval; only the other kinds approve or reject
    decisions = (
        every
        if not masters
        else latest_decisions(db, kinds=["link", "duplicate", "conflict_value", "plan", "split"])
    )
    chosen: dict[str, dict[str, Any]] | None = None  # surviving values per merge, when needed
    out: list[dict[str, Any]] = []
    summaries: dict[int, dict[str, Any]] = {}  # one per decision, shared by its items
    for row in _rows_approved(db, plan_run_id, decisions):
        item = _decode_in_place(row)
        decided = [decisions.get(r) for r in item.get("requires") or []]
        item["decisions"] = [
            summaries.get(id(d)) or summaries.setdefault(id(d), _decision_summary(d))
            for d in decided
            if d is not None
        ]
        if item["action"] == "conflict":
            d = decisions.get(item["item_id"])
            if d is not None:  # the value chosen decides what is written: its reviewer first
                _first(item, d)
            out.extend(_expand_conflict(item, d.get("choice") if d else None))
        elif item["action"] == "merge":
            if chosen is None:
                chosen = field_choices(db)
            master = masters.get(str(item["link_item_id"]))
            if master is not None and master.get("label") not in REFUSING_LABELS:
                # a master a person chose decides the merge as sent: that person first
                _first(item, master)
            out.append(_merge_with_choices(item, master, chosen.get(item["item_id"])))
        else:
            out.append(item)
    return out


#: rows fetched at a time by their rowid
_ROWID_CHUNK = 500


def _rows_approved(
    db: sqlite_utils.Database, plan_run_id: str, decisions: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows (JSON still encoded) of the plan's items not blocked whose every required id
    is decided ``match``/``approve``, in run order (seq, item id).

    SQLite judges every item by its ``requires`` against a temporary table of the approved
    ids; whole rows are read for the approved items alone. A large plan with little
    approved (the large demo: 1.44M items) is judged in about 2 s instead of decoding every
    row (about 30 s).
    """
    approved = [(k,) for k, d in decisions.items() if d.get("label") in APPROVED_LABELS]
    table = f"recon_approved_{uuid.uuid4().hex[:12]}"
    conn = db.conn
    conn.execute(f"create temp table {table} (id text primary key) without rowid")
    try:
        conn.executemany(f"insert or ignore into temp.{table} values (?)", approved)
        keep = [
            r[0]
            for r in conn.execute(
                # blank: nothing required; unreadable: never approved
                "select rowid from plan_items where run_id = ? and status != 'blocked' "
                "and (coalesce(requires, '') = '' or (json_valid(requires) and not exists "
                f"(select 1 from json_each(requires) j where j.value not in temp.{table})))",
                [plan_run_id],
            )
        ]
    finally:
        conn.execute(f"drop table temp.{table}")
    rows: list[dict[str, Any]] = []
    for at in range(0, len(keep), _ROWID_CHUNK):
        chunk = keep[at : at + _ROWID_CHUNK]
        cursor = conn.execute(
            f"select * from plan_items where rowid in ({', '.join('?' * len(chunk))})", chunk
        )
        cols = [c[0] for c in cursor.description]
        rows.extend(dict(zip(cols, r, strict=True)) for r in cursor)
    # the order SQLite's `order by seq, item_id` gives (text compared as UTF-8 bytes, which
    # is code point order)
    rows.sort(key=lambda r: (r["seq"] is not None, r["seq"] or 0, r["item_id"]))  # NULL first
    return rows


def build_plan(
    db: sqlite_utils.Database,
    cfg: Any,
    *,
    match_run_id: str | None = None,
    sample: int | None = None,
    parent_run_id: str | None = None,
    dry_run: bool = False,
    schemas: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
) -> PlanResult:
    """Compute the change plan from a match run and store it as a new ``plan`` run.

    Args:
        db: the store (snapshots, schemas, owners, associations, pairs, clusters, decisions).
        cfg: the :class:`~recon.config.ReconConfig` (``[mapping]``, ``[hubspot]``, ``[pull]``).
        match_run_id: the match run (or a parent ``recon run``); default: the latest.
        sample: plan for at most this many links, clusters and creates per object.
        parent_run_id: the ``recon run`` this plan runs under.
        dry_run: compute only; store nothing (``run_id`` is None).
        schemas: ``{(source, object): fields}`` to validate against instead of the stored ones.

    Raises:
        NoMatchRun: there is no match run (a :class:`~recon.errors.PlanError`).
        MappingError: a custom mapping does not fit the schemas (every problem listed).

    Examples:
        >>> from recon.config import ReconConfig
        >>> from recon.store import open_store
        >>> build_plan(open_store(":memory:"), ReconConfig())  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.NoMatchRun: there is no match run to plan from
    """
    from .plan_run import run_build

    return run_build(
        db,
        cfg,
        match_run_id=match_run_id,
        sample=sample,
        parent_run_id=parent_run_id,
        dry_run=dry_run,
        schemas=schemas,
    )
