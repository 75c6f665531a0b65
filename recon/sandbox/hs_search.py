"""HubSpot CRM search (``POST /crm/v3/objects/{type}/search``) compiled to SQL.

Filter groups are OR-ed, the filters inside a group AND-ed. Values compare by
the property's type: numbers numerically, dates and datetimes as epoch
milliseconds (filter values may be epoch-ms strings or ISO text), everything
else case-insensitively. ``hs_object_id``, ``createdate`` and the last-modified
properties map to indexed columns so incremental searches stay fast.

Limits as HubSpot enforces them: ``limit`` ≤ 200, ≤ 5 filter groups, ≤ 10
filters per group and ≤ 25 in all, one sort, and no paging past the 10,000th
result (``after + limit > 10000`` is a 400). ``total`` is capped at 10,000 too
(HubSpot's search index counts no further), so a caller cannot tell 10,000 from
more: split the query (e.g. by last-modified date) when it reaches the cap.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

from .hs_records import properties_of

__all__ = ["MAX_RESULTS", "SearchError", "run_search"]

MAX_RESULTS = 10_000
MAX_LIMIT = 200
COLUMNS = {"hs_object_id": "r.id", "createdate": "r.created_ms"}
LASTMOD_PROPS = ("hs_lastmodifieddate", "lastmodifieddate")
QUERY_PROPS = {
    "companies": ["name", "domain", "website", "phone"],
    "contacts": ["firstname", "lastname", "email", "phone", "company"],
}
_TOKEN = re.compile(r"[\w.@+-]+", re.UNICODE)


class SearchError(ValueError):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


def _to_ms(value: Any) -> float | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp() * 1000


def _has_token(text: Any, token: Any) -> int:
    if text is None or token is None:
        return 0
    want = str(token).lower().strip()
    if "*" in want:
        pattern = re.compile("^" + ".*".join(re.escape(p) for p in want.split("*")) + "$")
        haystack = str(text).lower()
        return int(
            bool(pattern.match(haystack)) or any(pattern.match(t) for t in _TOKEN.findall(haystack))
        )
    tokens = _TOKEN.findall(str(text).lower())
    return int(want in tokens or want == str(text).lower())


def _prefix_token(text: Any, query: Any) -> int:
    if text is None:
        return 0
    q = str(query).lower().strip()
    low = str(text).lower()
    return int(low.startswith(q) or any(t.startswith(q) for t in re.findall(r"\w+", low)))


def ensure_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL helper functions search uses on ``conn``."""
    conn.create_function("hs_ms", 1, _to_ms, deterministic=True)
    conn.create_function("hs_has_token", 2, _has_token, deterministic=True)
    conn.create_function("hs_prefix", 2, _prefix_token, deterministic=True)


def _raw(name: str) -> str:
    return "json_extract(r.props, '$.\"" + name.replace('"', "") + "\"')"


def _expr(name: str, prop: dict[str, Any]) -> tuple[str, str]:
    """``(SQL expression, kind)`` for a property; kind is ``num`` or ``text``."""
    if name in COLUMNS:
        return COLUMNS[name], "num"
    if name in LASTMOD_PROPS:
        return "r.updated_ms", "num"
    if prop["type"] == "number":
        return f"CAST({_raw(name)} AS REAL)", "num"
    if prop["type"] in ("date", "datetime"):
        return f"hs_ms({_raw(name)})", "num"
    return f"lower({_raw(name)})", "text"


def _value(value: Any, kind: str, name: str) -> Any:
    if kind == "text":
        return None if value is None else str(value).lower()
    number = _to_ms(value)
    if number is None:
        raise SearchError(f"{value!r} is not a valid value for property {name}")
    return number


def _filter_sql(f: dict[str, Any], defs: dict[str, dict[str, Any]]) -> tuple[str, list[Any]]:
    name = f.get("propertyName")
    op = str(f.get("operator", "EQ")).upper()
    if not name or name not in defs:
        raise SearchError(f"There was a problem with the request: unknown property {name!r}")
    expr, kind = _expr(name, defs[name])
    raw = _raw(name) if name not in COLUMNS and name not in LASTMOD_PROPS else expr
    if op == "HAS_PROPERTY":
        return f"({raw} IS NOT NULL AND {raw} != '')", []
    if op == "NOT_HAS_PROPERTY":
        return f"({raw} IS NULL OR {raw} = '')", []
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        sql = f"hs_has_token({raw}, ?)"
        return (sql if op == "CONTAINS_TOKEN" else f"NOT coalesce({sql}, 0)"), [f.get("value")]
    if op in ("IN", "NOT_IN"):
        values = f.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"operator {op} needs a non-empty values list")
        marks = ",".join("?" * len(values))
        args = [_value(v, kind, name) for v in values]
        return (
            f"{expr} IN ({marks})" if op == "IN" else f"({expr} IS NULL OR {expr} NOT IN ({marks}))"
        ), args
    if op == "BETWEEN":
        return f"({expr} >= ? AND {expr} <= ?)", [
            _value(f.get("value"), kind, name),
            _value(f.get("highValue"), kind, name),
        ]
    sql_op = {"EQ": "=", "NEQ": "IS NOT", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}.get(op)
    if sql_op is None:
        raise SearchError(f"Unsupported operator {op}")
    return f"{expr} {sql_op} ?", [_value(f.get("value"), kind, name)]


def run_search(
    conn: sqlite3.Connection,
    obj: str,
    body: dict[str, Any],
    *,
    indexed: tuple[int, int, int] | None = None,
) -> tuple[int, list[sqlite3.Row], int | None]:
    """Run one search request: ``(total, rows of this page, next offset or None)``.

    ``indexed``: ``(now, create lag, update lag)`` in ms: a record shows only once its last
    change is that old (HubSpot indexes a create in about 10 s, an update in about 60 s).

    Raises:
        SearchError: the request is invalid, or pages past 10,000 results.
    """
    ensure_functions(conn)
    defs = properties_of(conn, obj)
    try:
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise SearchError("limit and after must be integers") from None
    if limit < 1 or limit > MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    if after < 0:
        raise SearchError("after must not be negative")
    if after + limit > MAX_RESULTS:
        raise SearchError(
            f"Paging past {MAX_RESULTS} results is not supported (after={after}, limit={limit}). "
            "Narrow the search, e.g. with a filter on the last-modified date."
        )
    groups = body.get("filterGroups") or []
    if len(groups) > 5:
        raise SearchError("Too many filter groups: at most 5 are allowed")
    if sum(len(g.get("filters") or []) for g in groups) > 25:
        raise SearchError("Too many filters: at most 25 are allowed in all")
    where = ["r.object = ?", "r.archived = 0", "r.merged_into IS NULL"]
    args: list[Any] = [obj]
    if indexed is not None:
        now_ms, create_lag, update_lag = indexed
        where.append("r.updated_ms + CASE WHEN r.updated_ms > r.created_ms THEN ? ELSE ? END <= ?")
        args.extend([update_lag, create_lag, now_ms])
    ors = []
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > 10:
            raise SearchError("Too many filters in a group: at most 10 are allowed")
        parts = []
        for f in filters:
            sql, fargs = _filter_sql(f, defs)
            parts.append(sql)
            args.extend(fargs)
        if parts:
            ors.append("(" + " AND ".join(parts) + ")")
    if ors:
        where.append("(" + " OR ".join(ors) + ")")
    query = body.get("query")
    if query:
        props = QUERY_PROPS.get(obj, ["hs_object_id"])
        where.append("(" + " OR ".join(f"hs_prefix({_raw(p)}, ?)" for p in props) + ")")
        args.extend([query] * len(props))
    order = "r.id ASC"
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise SearchError("Only one sort is allowed")
    if sorts:
        sort = sorts[0]
        if isinstance(sort, str):
            name, direction = (
                sort.lstrip("-"),
                "DESCENDING" if sort.startswith("-") else "ASCENDING",
            )
        else:
            name, direction = (
                sort.get("propertyName"),
                str(sort.get("direction", "ASCENDING")).upper(),
            )
        if not name or name not in defs:
            raise SearchError(f"Cannot sort by unknown property {name!r}")
        expr, _ = _expr(name, defs[name])
        order = f"{expr} {'DESC' if direction.startswith('DESC') else 'ASC'}, r.id ASC"
    sql_where = " AND ".join(where)
    total = int(
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM hs_records r WHERE {sql_where} LIMIT {MAX_RESULTS})",
            args,
        ).fetchone()[0]
    )
    rows = conn.execute(
        f"SELECT r.* FROM hs_records r WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*args, limit + 1, after],
    ).fetchall()
    # like HubSpot, offer the next page whenever there is one, even past the cap (it will 400)
    nxt = after + limit if len(rows) > limit else None
    return total, rows[:limit], nxt
