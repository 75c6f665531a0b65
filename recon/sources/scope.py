"""Scoping filters pushed into the CRM queries (SOQL ``WHERE``, HubSpot search filters).

``[pull] filters`` and ``contacts_require_email`` are applied to every fetched record by
:func:`in_scope` (the backstop). Where the API can express a filter, the source
also puts it in its query, so out-of-scope records are not fetched at all:

- Salesforce: every query (REST and Bulk, full and incremental) gets ``AND (...)`` for
  the filters on fields of the describe with text-like types (``=``/``!=``/``IN``/
  ``NOT IN``/``LIKE``/``null``; SOQL compares text case-insensitively, as recon does).
- HubSpot: incremental searches add ``EQ``/``NEQ``/``IN``/``NOT_IN``/``HAS_PROPERTY``/
  ``NOT_HAS_PROPERTY`` to every filter group (the list endpoint of a full pull has no
  filters; ``contains`` is not pushed: HubSpot matches tokens, recon substrings).

Filters naming a ``group`` are OR-ed group by group (:class:`Scope`): a record is in scope
when every filter without a group holds and, when the object has groups, every filter of
one of them. SOQL gets ``(...) OR (...)``, HubSpot one filter group per group. A condition
a query cannot express is left out of its group (the query fetches more, never less); a
group left with none, or more groups than a search takes, leaves the OR to recon alone.

A stored record that leaves the scope is no longer returned by a filtered query. So a
source with pushed filters re-reads, unfiltered, what changed since its last *scope
sweep* every ``[pull] archived_sweep_hours`` (everything once when the filters change);
:func:`recon.pull.write_page` marks the stored ones that fail the filters
``archived = 2`` (out of scope) instead of leaving them stale.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..config import ReconConfig, ScopeFilter
from ..models import stable_id
from .crm import Cursor, iso_utc

__all__ = [
    "OUT_OF_SCOPE",
    "Scope",
    "hubspot_scope",
    "hubspot_scope_groups",
    "filter_matches",
    "in_scope",
    "scope_holds",
    "scope_filters",
    "scope_signature",
    "scope_sweep_due",
    "soql_scope",
]

#: ``snapshots.archived`` of a stored record that the scoping filters now exclude
OUT_OF_SCOPE = 2

TEXT_TYPES = {
    "string",
    "picklist",
    "email",
    "url",
    "phone",
    "id",
    "reference",
    "textarea",
    "combobox",
}

#: the e-mail field of the person objects (``[pull] contacts_require_email``)
EMAIL_FIELDS = {("hubspot", "contacts"): "email", ("salesforce", "Contact"): "Email",
                ("salesforce", "Lead"): "Email"}  # fmt: skip


#: one scoping condition as a query takes it: ``(field, op, value)``
Condition = tuple[str, str, Any]


@dataclass
class Scope:
    """The scoping filters of one object as conditions: every one of ``common`` must hold,
    and when there are ``groups``, every condition of one of them (OR of ANDs)."""

    common: list[Condition] = dataclasses.field(default_factory=list)
    groups: list[list[Condition]] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.common or self.groups)

    def signature(self) -> str:
        """A short stable id (a change triggers a full scope sweep); filters without groups
        keep the id they had before groups existed."""
        return scope_signature(self.common if not self.groups else (self.common, self.groups))


def scope_filters(cfg: Any, source: str, obj: str) -> Scope:
    """The scoping filters of ``(source, obj)`` as conditions ``(field, op, value)``, the
    e-mail rule first, those of each ``group`` together (in the order the groups are named).

    Sources push the ones their API can express into the query; :func:`in_scope`
    applies them all again to what was fetched (the backstop).

    Examples:
        >>> from recon.config import ReconConfig
        >>> scope_filters(ReconConfig(), "salesforce", "Lead")
        Scope(common=[('Email', 'has_value', None)], groups=[])
    """
    common: list[Condition] = []
    email = EMAIL_FIELDS.get((source, obj))
    if email and cfg.pull.contacts_require_email:
        common.append((email, "has_value", None))
    groups: dict[str, list[Condition]] = {}
    for f in cfg.pull.filters:
        if f.source == source and f.object == obj:
            cond = (f.field, f.op, f.value)
            if f.group is None:
                common.append(cond)
            else:
                groups.setdefault(f.group, []).append(cond)
    return Scope(common, list(groups.values()))


def scope_holds(filters: Iterable[ScopeFilter], holds: Callable[[ScopeFilter], bool]) -> bool:
    """Whether a record is in the scope of its object's ``filters``, ``holds`` judging one
    filter: every filter without a group holds, and every filter of one group (when the
    object has any).

    Examples:
        >>> f = lambda field, group=None: ScopeFilter(source="hubspot", object="contacts",
        ...                                           field=field, op="has_value", group=group)
        >>> held = {"email", "phone"}.__contains__
        >>> scope_holds([f("email"), f("x", "a"), f("phone", "b")], lambda s: held(s.field))
        True
        >>> scope_holds([f("x", "a"), f("phone", "a")], lambda s: held(s.field))
        False
    """
    groups: dict[str, bool] = {}
    for f in filters:
        if f.group is None:
            if not holds(f):
                return False
        elif groups.get(f.group, True):
            groups[f.group] = holds(f)
    return not groups or any(groups.values())


def scope_sweep_due(
    cursor: Cursor,
    signature: str,
    hours: float,
    now: datetime,
    *,
    first: bool,
    periodic: bool = True,
) -> tuple[bool, str | None]:
    """Whether a pull with filters pushed into its query must also re-read, unfiltered, what
    changed since the last such sweep (so stored records that left the scope get marked).

    Call it after the object's pull, with ``first`` True when there was no cursor before
    the run (nothing stored can have left the scope). ``signature`` covers every scoping
    filter (:func:`scope_filters`): when it changes (a filter added, changed or removed,
    pushed or not) everything is read again, unfiltered. ``periodic``: whether some filter
    is pushed into the query (then what changed since the last sweep is re-read every
    ``hours``; a query without pushed filters sees every change itself).

    Returns:
        ``(due, since)``: ``since`` None with ``due`` means everything (the filters changed).
        The state keys ``scope`` (signature) and ``scope_sweep`` (last sweep) are set for
        the caller to commit once the sweep is done.
    """
    from ..models import parse_ts

    state = cursor.state
    before, last = state.get("scope"), state.get("scope_sweep")
    stamp = iso_utc(now)
    if first:
        # the first pull: its rows were filtered by recon as they came
        state["scope"], state["scope_sweep"] = signature, stamp
        return False, None
    if before != signature:  # filters added, changed or removed since the rows were stored
        state["scope"], state["scope_sweep"] = signature, stamp
        return True, None
    last_dt = parse_ts(last) if last else None
    if not periodic or (last_dt is not None and now - last_dt < timedelta(hours=hours)):
        return False, None
    state["scope_sweep"] = stamp
    return True, last


def scope_sweep_plan(
    cfg: Any, source: str, obj: str, cursor: Cursor, now: datetime, *, first: bool, pushed: bool
) -> tuple[bool, str | None]:
    """:func:`scope_sweep_due` for ``(source, obj)`` under ``cfg``'s filters; ``pushed``: some
    filter went into the query. Call :func:`scope_sweep_done` once the sweep is read."""
    return scope_sweep_due(
        cursor,
        scope_filters(cfg, source, obj).signature(),
        cfg.pull.archived_sweep_hours,
        now,
        first=first,
        periodic=pushed,
    )


def scope_sweep_done(cfg: Any, source: str, obj: str, cursor: Cursor) -> None:
    """After a sweep: a store left without filters stops sweeping (its state keys go)."""
    if not scope_filters(cfg, source, obj):
        cursor.state.pop("scope", None)
        cursor.state.pop("scope_sweep", None)


def scope_signature(filters: Any) -> str:
    """A short stable id of the scoping filters (a change triggers a full scope sweep)."""
    return stable_id(repr(filters), length=16)


def _soql_value(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def soql_scope(filters: Scope | Sequence[Condition], types: dict[str, str]) -> str | None:
    """The SOQL condition of the filters SOQL can express (None: none can).

    ``filters``: a :class:`Scope`, or conditions that must all hold. A group's conditions
    SOQL cannot express are left out of it (the query fetches more, never less); a group
    left with none leaves the whole OR to recon.

    Examples:
        >>> soql_scope([("Email", "has_value", None), ("Country", "in", ["DE", "FR"])],
        ...            {"Email": "email", "Country": "string"})
        "Email != null AND Country IN ('DE', 'FR')"
        >>> soql_scope(Scope([("Email", "has_value", None)], [[("Type", "eq", "Customer")],
        ...            [("Rating", "eq", "Hot"), ("Country", "eq", "DE")]]),
        ...            {"Email": "email", "Type": "picklist", "Rating": "picklist", "Country": "string"})
        "Email != null AND ((Type = 'Customer') OR (Rating = 'Hot' AND Country = 'DE'))"
    """
    scope = filters if isinstance(filters, Scope) else Scope(list(filters))
    parts = [c for c in (_soql_condition(x, types) for x in scope.common) if c]
    alternatives: list[str] = []
    for group in scope.groups:
        pushed = [c for c in (_soql_condition(x, types) for x in group) if c]
        if not pushed:  # this group lets in what the query cannot tell: the OR stays recon's
            alternatives = []
            break
        alternatives.append(" AND ".join(pushed))
    if len(alternatives) == 1:
        parts.append(alternatives[0])
    elif alternatives:
        parts.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
    return " AND ".join(parts) or None


def _soql_condition(cond: Condition, types: dict[str, str]) -> str | None:
    """One condition in SOQL, or None when SOQL cannot express it on that field."""
    field, op, value = cond
    if types.get(field) not in TEXT_TYPES:
        return None
    values = value if isinstance(value, list) else [value]
    listed = ", ".join(_soql_value(v) for v in values)
    if op == "has_value":
        return f"{field} != null"
    if op == "no_value":
        return f"{field} = null"
    if op == "eq" and value is not None:
        return f"{field} = {_soql_value(value)}"
    if op == "neq" and value is not None:
        return f"({field} != {_soql_value(value)} OR {field} = null)"
    if op == "in" and values:
        return f"{field} IN ({listed})"
    if op == "not_in" and values:
        return f"({field} NOT IN ({listed}) OR {field} = null)"
    if op == "contains" and value not in (None, ""):
        like = str(value).replace("\\", "\\\\").replace("'", "\\'")
        like = like.replace("%", "\\%").replace("_", "\\_")
        return f"{field} LIKE '%{like}%'"
    return None


def hubspot_scope_groups(
    scope: Scope, existing: set[str], max_groups: int | None = None
) -> list[list[dict[str, Any]]]:
    """HubSpot search filter groups for a :class:`Scope` (one per group, each with the
    common filters; one, or none, without groups): what search can express.

    A group none of whose conditions search can express, or more than ``max_groups``
    groups, leaves the OR to recon (the common filters alone are pushed).

    Examples:
        >>> hubspot_scope_groups(Scope([("email", "has_value", None)], [[("a", "eq", "x")],
        ...                      [("b", "eq", "y")]]), {"email", "a", "b"})  # doctest: +NORMALIZE_WHITESPACE
        [[{'propertyName': 'email', 'operator': 'HAS_PROPERTY'},
          {'propertyName': 'a', 'operator': 'EQ', 'value': 'x'}],
         [{'propertyName': 'email', 'operator': 'HAS_PROPERTY'},
          {'propertyName': 'b', 'operator': 'EQ', 'value': 'y'}]]
    """
    common = hubspot_scope(scope.common, existing)
    alternatives: list[list[dict[str, Any]]] = []
    for group in scope.groups:
        pushed = hubspot_scope(group, existing)
        if not pushed:  # this group lets in what search cannot tell: the OR stays recon's
            alternatives = []
            break
        alternatives.append([*common, *pushed])
    if alternatives and (max_groups is None or len(alternatives) <= max_groups):
        return alternatives
    return [common] if common else []


def hubspot_scope(filters: Sequence[Condition], existing: set[str]) -> list[dict[str, Any]]:
    """HubSpot search filters for the scoping filters search can express.

    Examples:
        >>> hubspot_scope([("email", "has_value", None)], {"email"})
        [{'propertyName': 'email', 'operator': 'HAS_PROPERTY'}]
        >>> hubspot_scope([("hs_email_optout", "eq", False), ("x", "neq", False)], {"hs_email_optout", "x"})
        [{'propertyName': 'x', 'operator': 'NEQ', 'value': 'false'}]
    """
    out: list[dict[str, Any]] = []
    for field, op, value in filters:
        if field not in existing:
            continue
        if is_flag_filter(value) and (op in ("eq", "in")) == (False in as_list(value)):
            # a filter taking in unticked boxes takes in those never ticked (blank), which
            # HubSpot's search would not return: judged on every record read instead
            continue
        # HubSpot writes a checkbox as "true"/"false" (str(False) is "False")
        values = [_text(v) if isinstance(v, bool) else str(v) for v in as_list(value)]
        if op == "has_value":
            out.append({"propertyName": field, "operator": "HAS_PROPERTY"})
        elif op == "no_value":
            out.append({"propertyName": field, "operator": "NOT_HAS_PROPERTY"})
        elif op in ("eq", "neq") and value is not None:
            out.append({"propertyName": field, "operator": op.upper(), "value": values[0]})
        elif op in ("in", "not_in") and 0 < len(values) <= 100:
            out.append({"propertyName": field, "operator": op.upper(), "values": values})
    return out


def in_scope(
    row: dict[str, Any], cfg: ReconConfig, keys: dict[str, str | None] | None = None
) -> bool:
    """Whether a canonical row passes the scoping filters of ``[pull]``.

    Filter fields are looked up in the raw fields (``data``) first, then in the
    canonical columns. ``keys`` (export files): the raw key each filter field has in
    ``data`` (a file's column); a field mapped to None is not in the file, and its
    filter is not judged.

    Examples:
        >>> from recon.config import ReconConfig
        >>> in_scope({"source": "hubspot", "object": "contacts", "email": None, "data": "{}"}, ReconConfig())
        False
    """
    person = (row["source"], row["object"]) in {
        ("hubspot", "contacts"), ("salesforce", "Contact"), ("salesforce", "Lead"),
    }  # fmt: skip
    if cfg.pull.contacts_require_email and person and not (row.get("email") or "").strip():
        return False
    filters = [
        f for f in cfg.pull.filters if f.source == row["source"] and f.object == row["object"]
    ]
    if not filters:
        return True
    data = json.loads(row.get("data") or "{}")

    def holds(f: ScopeFilter) -> bool:
        key = f.field if keys is None else keys.get(f.field, f.field)
        return key is None or filter_matches(f, data.get(key, row.get(f.field)))

    return scope_holds(filters, holds)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _text(value: Any) -> str:
    """A value as filters compare it: numbers in one form (1000000.0 is "1000000", as a
    Salesforce currency comes back), flags as true/false, text as it is.

    Examples:
        >>> _text(1000000.0), _text("1000000"), _text(2.50), _text(True), _text(" x ")
        ('1000000', '1000000', '2.5', 'true', ' x ')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        value = repr(value)
    text = str(value)
    if _NUMBER.fullmatch(text.strip()) and "." in text:
        text = text.strip().rstrip("0").rstrip(".") or "0"
    return text


def as_list(value: Any) -> list[Any]:
    """A filter's value as a list (one value, or the list given)."""
    return value if isinstance(value, list) else [value]


def is_flag_filter(value: Any) -> bool:
    """Whether a filter's value is a checkbox's (``true``/``false`` in TOML, or a list of
    them): a blank value then reads as unticked.

    Examples:
        >>> is_flag_filter(False), is_flag_filter([True]), is_flag_filter("false"), is_flag_filter(0)
        (True, True, False, False)
    """
    values = as_list(value)
    return bool(values) and all(isinstance(v, bool) for v in values)


def filter_matches(f: ScopeFilter, value: Any) -> bool:
    """Whether one field's raw value passes one scoping filter (text compared without case,
    numbers in one form: see :func:`_text`). A checkbox filter (value ``true``/``false``)
    reads a blank value as unticked.

    Examples:
        >>> f = ScopeFilter(source="hubspot", object="contacts", field="lifecyclestage",
        ...                 op="in", value=["customer"])
        >>> filter_matches(f, "Customer"), filter_matches(f, None)
        (True, False)
        >>> box = ScopeFilter(source="hubspot", object="contacts", field="hs_email_optout", value=False)
        >>> filter_matches(box, None), filter_matches(box, "false"), filter_matches(box, "true")
        (True, True, False)
    """
    text = None if value is None or value == "" else _text(value)
    want = f.value
    if text is None and is_flag_filter(want):
        text = "false"  # a checkbox never ticked is blank in HubSpot: unticked
    values = [_text(v) for v in want] if isinstance(want, list) else [_text(want)]
    if f.op == "has_value":
        return text is not None
    if f.op == "no_value":
        return text is None
    if f.op == "eq":
        return text is not None and text.lower() == values[0].lower()
    if f.op == "neq":
        return text is None or text.lower() != values[0].lower()
    if f.op == "in":
        return text is not None and text.lower() in {v.lower() for v in values}
    if f.op == "not_in":
        return text is None or text.lower() not in {v.lower() for v in values}
    if f.op == "contains":
        return text is not None and str(want).lower() in text.lower()
    return True
