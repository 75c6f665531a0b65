"""The items apply sends: approved plan rows as typed items, folded into writer ops.

Private to :mod:`recon.apply`. An :class:`Item` is one approved plan item as apply
sends it (kept as JSON in ``journal.item`` so a resumed run needs no re-plan);
:func:`ops_for` folds the items of one phase into writer :class:`~recon.writers.Op` s
(all updates of one record, incl. Salesforce ``AccountId`` associations, become one op).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from .models import canonical_json, now_iso, parse_ts, stable_id
from .writers import Op
from .writers.hubspot import OPT_OUT_ALL

__all__ = ["PHASES", "Item", "loads", "newer", "norm", "ops_for", "phases", "to_item"]

PHASES = ("create", "update", "associate", "merge")
UPDATE_ACTIONS = {"update", "owner", "conflict"}
#: canonical natural-key names (as the plan writes them) -> the target's field, by preference
NATURAL_FIELDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("hubspot", "contacts"): (("email", "email"),),
    ("hubspot", "companies"): (("domain", "domain"), ("name", "name")),
    ("salesforce", "Contact"): (("email", "Email"),),
    ("salesforce", "Lead"): (("email", "Email"),),
    ("salesforce", "Account"): (("name", "Name"), ("domain", "Website")),
}
NATURAL = {
    ("hubspot", "contacts"): "email",
    ("hubspot", "companies"): "domain",
    ("salesforce", "Contact"): "Email",
    ("salesforce", "Lead"): "Email",
    ("salesforce", "Account"): "Website",
}


@dataclass
class Item:
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
        if self.action in UPDATE_ACTIONS or (
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
        """(field, value) that identifies the record a create makes.

        The plan writes ``natural_key`` in canonical names (``{"email": ...}``,
        ``{"domain": ..., "name": ...}``); they map to the target's own field.
        """
        spec = self.payload.get("natural_key")
        props = self.props()
        fname: Any = None
        value: Any = None
        if isinstance(spec, dict) and spec.get("field"):
            fname, value = spec["field"], spec.get("value", props.get(spec["field"]))
        elif isinstance(spec, dict):
            for canon, target in NATURAL_FIELDS.get((self.system, self.object), ()):
                if spec.get(canon) not in (None, ""):
                    fname, value = target, spec[canon]
                    break
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            fname, value = spec
        else:
            fname = spec if isinstance(spec, str) else NATURAL.get((self.system, self.object))
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


def loads(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def decision_of(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    for d in row.get("decisions") or []:
        if d.get("reviewer") or d.get("decided_at"):
            return dict(d)
    ids = [row["item_id"], row.get("link_item_id"), *(row.get("requires") or [])]
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


def to_item(db: sqlite_utils.Database, row: dict[str, Any]) -> Item:
    """The :class:`Item` of an approved plan row (its JSON columns decoded already: a text
    value such as "5550100" or "true" stays text)."""
    decision = decision_of(db, row)
    payload = row.get("payload") or {}
    record_id = row.get("record_id")
    if row["action"] == "merge":
        record_id = payload.get("master") or record_id
    return Item(
        item_id=row["item_id"],
        action=row["action"],
        system=row["system"],
        object=row["object"],
        record_id=str(record_id) if record_id is not None else None,
        field=row.get("field"),
        before=row.get("before"),
        after=row.get("after"),
        snapshot=row.get("snapshot_modified_at"),
        payload=payload if isinstance(payload, dict) else {},
        seq=int(row.get("seq") or 0),
        reviewer=decision.get("reviewer"),
        decided_at=decision.get("decided_at"),
    )


def refresh_unsent(
    db: sqlite_utils.Database, run_id: str, row: dict[str, Any], held: dict[str, Any]
) -> Item | None:
    """A merge or chosen value never sent and decided again since the run took it (another
    master, another surviving or chosen value): its journal row (``held``) takes what the
    review shows now. The new :class:`Item`, or None when nothing changed."""
    if held["state"] != "planned" or held["attempts"]:
        return None
    if row["action"] != "merge" and not row.get("conflict_item_id"):
        return None
    fresh = to_item(db, row)
    text = canonical_json(asdict(fresh))
    if text == held["item"]:
        return None
    db.execute(
        "update journal set item = ?, crm_record_id = ?, updated_at = ? "
        "where run_id = ? and item_id = ?",
        [text, fresh.record_id, now_iso(), run_id, row["item_id"]],
    )
    return fresh


def phases(items: list[Item]) -> list[tuple[str, str, str, list[Item]]]:
    """``(kind, system, object, items)`` in run order: the plan's ``seq``, then kind.

    The plan orders its steps by ``seq`` (e.g. merges before creates before updates
    before associations); items sharing a step, kind and object are batched together.
    """
    out: dict[tuple[int, int, str, str], list[Item]] = {}
    for item in sorted(items, key=lambda i: (i.seq, PHASES.index(i.kind), i.item_id)):
        out.setdefault((item.seq, PHASES.index(item.kind), item.system, item.object), []).append(
            item
        )
    return [(PHASES[k], system, obj, group) for (_seq, k, system, obj), group in out.items()]


def _update_op(
    obj: str, rid: str, group: list[Item], created: dict[str, str], *, opt_out: bool = False
) -> tuple[Op, list[Item]]:
    """One update op of a record's items (``opt_out``: its HubSpot email opt-out alone)."""
    props: dict[str, Any] = {}
    for item in group:
        props.update(item.props(created))
    snaps = [i.snapshot for i in group if i.snapshot and not i.payload.get("expect")]
    ref = f"o:{rid}" if opt_out else f"u:{rid}"
    op = Op(ref=ref, kind="update", object=obj, record_id=rid, properties=props)
    if snaps and len(snaps) == len(group):
        op.unmodified_since = min(snaps, key=lambda t: parse_ts(t) or t)
    return op, group


def ops_for(
    kind: str, obj: str, items: list[Item], created: dict[str, str]
) -> list[tuple[Op, list[Item]]]:
    """Ops for one phase: updates (and Salesforce associations) of one record fold into one op."""
    out: list[tuple[Op, list[Item]]] = []
    if kind == "update":
        by_record: dict[str, list[Item]] = {}
        for item in items:
            rid = item.record_id
            if item.action == "associate":
                rid = item.ends(created)[0]
            by_record.setdefault(str(rid), []).append(item)
        for rid, whole in by_record.items():
            flag: list[Item] = []
            if obj == "contacts":
                # HubSpot sets an email opt-out through another API, after the rest: its own
                # op, so each write's outcome is its own (one failing leaves the other landed)
                flag = [i for i in whole if set(i.props(created)) == {OPT_OUT_ALL}]
            rest = [i for i in whole if i not in flag]
            if rest:
                out.append(_update_op(obj, rid, rest, created))
            if flag:
                out.append(_update_op(obj, rid, flag, created, opt_out=True))
        return out
    for item in items:
        op = Op(ref=item.item_id, kind=kind, object=obj, record_id=item.record_id)
        if kind == "create":
            op.properties = item.props()
            op.key = item.key
            op.natural = item.natural()
        elif kind == "associate":
            op.record_id, op.to_object, op.to_id = item.ends(created)
            op.primary = bool(item.payload.get("primary"))
        elif kind == "merge":
            op.merge_ids = item.merge_ids
            op.properties = dict(item.payload.get("fields") or item.payload.get("properties") or {})
        out.append((op, [item]))
    return out


def norm(value: Any) -> str:
    """Values compared across CRMs and JSON: None and '' alike, bools and whole floats as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def newer(current: str | None, snapshot: str | None) -> bool:
    if not current or not snapshot:
        return False
    cur, snap = parse_ts(current), parse_ts(snapshot)
    return bool(cur and snap and cur > snap)
