"""A field write of a plan held compactly: :class:`FieldWrite`.

A large plan is mostly field writes (the large demo: 1.16M of 1.44M items). As plain dicts
each held five containers (the item, its reason, its payload and the payload's inner dict,
its ``requires`` list): ~1.9 KB a write, 2 GB for the demo, whose allocation and first
touch cost more than computing the writes. A :class:`FieldWrite` keeps the parts those
containers repeat (the link, the mapping, the rule's verdict) by reference and builds the
containers when they are read; it *is* a :class:`~collections.abc.MutableMapping` with the
plan item's keys, so every reader of plan items takes it as it takes a dict, and
:func:`write_row` encodes it for ``plan_items`` without building them.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .mapping import FieldMap

__all__ = ["ITEM_KEYS", "FieldWrite", "Item", "field_reason", "write_payload", "write_row"]

#: a plan item: a dict, or a :class:`FieldWrite` (which reads as one)
Item = MutableMapping[str, Any]

#: a plan item's keys, in the order a plan item dict holds them
ITEM_KEYS = (
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
_KEYS = frozenset(ITEM_KEYS)
#: the keys built when read (the rest are attributes of the same name)
_BUILT = frozenset({"link_item_id", "requires", "reason", "payload"})


class FieldWrite(MutableMapping[str, Any]):
    """One field write onto a linked record (``update`` or ``owner``), as a plan item.

    Reading ``reason``, ``requires`` or ``payload`` builds a new container each time; one
    assigned replaces the built one for good (``hold_undone`` does). Equal to a dict with
    the same items.

    Examples:
        >>> from recon.mapping import FieldMap
        >>> fm = FieldMap("companies", "city", "BillingCity", "Account")
        >>> link = {"pair_id": "p1", "score": 0.9, "tier": "auto"}
        >>> w = FieldWrite("u1", "update", "hubspot", "companies", "7", "city", None, "Oslo",
        ...                None, 50, link, fm, "hubspot_blank", "two_way", None, "Oslo")
        >>> w["payload"], w["requires"], w["reason"]["why"]
        ({'properties': {'city': 'Oslo'}}, ['p1'], 'hubspot_blank')
        >>> w == dict(w), len(w), "payload" in w
        (True, 15, True)
    """

    __slots__ = (
        "_over",
        "action",
        "after",
        "before",
        "direction",
        "field",
        "fm",
        "hs_raw",
        "item_id",
        "link",
        "object",
        "record_id",
        "seq",
        "sf_raw",
        "snapshot_modified_at",
        "status",
        "system",
        "why",
    )

    def __init__(
        self,
        item_id: str,
        action: str,
        system: str,
        obj: str,
        record_id: str,
        field: str,
        before: Any,
        after: Any,
        modified_at: str | None,
        seq: int,
        link: dict[str, Any],
        fm: FieldMap,
        why: str,
        direction: str,
        hs_raw: Any,
        sf_raw: Any,
    ) -> None:
        self.item_id = item_id
        self.action = action
        self.system = system
        self.object = obj
        self.record_id = record_id
        self.field = field
        self.before = before
        self.after = after
        self.snapshot_modified_at = modified_at
        self.seq = seq
        self.status = "proposed"
        self.link = link
        self.fm = fm
        self.why = why
        self.direction = direction
        self.hs_raw = hs_raw
        self.sf_raw = sf_raw
        self._over: dict[str, Any] | None = None

    # ------------------------------------------------------------------ the built keys

    def _built(self, key: str) -> Any:
        over = self._over
        if over is not None and key in over:
            return over[key]
        if key == "link_item_id":
            return self.link["pair_id"]
        if key == "requires":
            return [self.link["pair_id"]]
        if key == "payload":
            return write_payload(self.system, self.field, self.after)
        return _reason(self)

    # ------------------------------------------------------------------ mapping protocol

    def __getitem__(self, key: str) -> Any:
        if key in _BUILT:
            return self._built(key)
        if key in _KEYS:
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in _BUILT:
            if self._over is None:
                self._over = {}
            self._over[key] = value
        elif key in _KEYS:
            setattr(self, key, value)
        else:
            raise KeyError(f"{key!r} is no plan item key")

    def __delitem__(self, key: str) -> None:
        raise TypeError("a plan item's keys cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter(ITEM_KEYS)

    def __len__(self) -> int:
        return len(ITEM_KEYS)

    def __contains__(self, key: object) -> bool:
        return key in _KEYS

    def __repr__(self) -> str:
        return f"FieldWrite({dict(self)!r})"


def write_payload(system: str, field: str, value: Any) -> dict[str, Any]:
    """The payload of a write of ``value`` to one field: HubSpot ``properties``, Salesforce
    ``fields``.

    Examples:
        >>> write_payload("hubspot", "city", "Oslo"), write_payload("salesforce", "Phone", None)
        ({'properties': {'city': 'Oslo'}}, {'fields': {'Phone': None}})
    """
    return {("properties" if system == "hubspot" else "fields"): {field: value}}


def field_reason(
    fm: FieldMap, link: dict[str, Any], why: str, direction: str, hs_raw: Any, sf_raw: Any
) -> dict[str, Any]:
    """The ``reason`` of a mapping's write or conflict on a linked pair: the rule and its
    verdict, the object's direction, the link's score and tier, and the snapshot values
    compared."""
    return {
        "rule": fm.rule,
        "why": why,
        "direction": direction,
        "score": link["score"],
        "tier": link["tier"],
        "mapping": fm.key,
        "values": {"hubspot": hs_raw, "salesforce": sf_raw},  # the snapshot values compared
    }


def _reason(w: FieldWrite) -> dict[str, Any]:
    """A field write's ``reason`` (:func:`field_reason` of its parts)."""
    return field_reason(w.fm, w.link, w.why, w.direction, w.hs_raw, w.sf_raw)


_dumps = orjson.dumps


def write_row(run_id: str, w: FieldWrite) -> tuple[Any, ...]:
    """The ``plan_items`` row of a field write (JSON columns encoded), built from its parts.

    Raises:
        TypeError: a value JSON has no type for (the caller falls back to its general encoder).

    Examples:
        >>> from recon.mapping import FieldMap
        >>> fm = FieldMap("companies", "city", "BillingCity", "Account")
        >>> w = FieldWrite("u1", "update", "salesforce", "Account", "001", "BillingCity", None,
        ...                "Oslo", None, 50, {"pair_id": "p1", "score": 1.0, "tier": "auto"}, fm,
        ...                "salesforce_blank", "two_way", "Oslo", None)
        >>> write_row("plan-1", w)[7:]
        (None, '"Oslo"', None, 'p1', '["p1"]', '{"rule":"prefer_salesforce_unless_blank","why":"salesforce_blank","direction":"two_way","score":1.0,"tier":"auto","mapping":"companies.city","values":{"hubspot":"Oslo","salesforce":null}}', 'proposed', 50, '{"fields":{"BillingCity":"Oslo"}}')
    """
    dumps = _dumps
    if w._over is not None:
        requires, reason, payload = w["requires"], w["reason"], w["payload"]
        link_id = w["link_item_id"]
    else:
        link = w.link
        link_id = link["pair_id"]
        requires = [link_id]
        reason = _reason(w)
        payload = write_payload(w.system, w.field, w.after)
    before, after = w.before, w.after
    return (
        run_id,
        w.item_id,
        w.action,
        w.system,
        w.object,
        w.record_id,
        w.field,
        None if before is None else dumps(before).decode(),
        None if after is None else dumps(after).decode(),
        w.snapshot_modified_at,
        link_id,
        None if requires is None else dumps(requires).decode(),
        None if reason is None else dumps(reason).decode(),
        w.status,
        w.seq,
        None if payload is None else dumps(payload).decode(),
    )
