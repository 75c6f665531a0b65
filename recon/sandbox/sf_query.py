"""Run parsed SOQL (:mod:`recon.sandbox.soql`) against the emulator's tables.

A :class:`~recon.sandbox.soql.Query` compiles to one SQL statement: parent fields
become ``LEFT JOIN``s, SOQL's null semantics (``Name != 'x'`` matches null names;
``NOT`` of a comparison matches nulls) are kept by pushing negation down to the
comparisons, and ``WHERE SystemModstamp >= X ORDER BY SystemModstamp, Id`` runs on
the ``(SystemModstamp, Id)`` index.

:func:`select_rowids` returns the ordered rowids of the whole result (what a
Salesforce query locator remembers); :func:`fetch_records` turns a slice of them
into REST records (``attributes``, nested parents, ``...000+0000`` datetimes) and
:func:`fetch_rows` into flat rows for Bulk API CSV.
"""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from .sf_common import table_name
from .sf_describe import TEXT_TYPES, ObjectSpec
from .sf_store import format_value
from .soql import Aggregate, ChildQuery, FieldRef, Query

__all__ = ["aggregate", "count", "fetch_records", "fetch_rows", "select_rowids"]

_NEG = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}


class _Sql:
    """Builds the FROM/JOIN part and column expressions of one query."""

    def __init__(self, query: Query, prefix: str = "t") -> None:
        self.query = query
        self.prefix = prefix
        self.base = f"{prefix}0"
        self.aliases: dict[tuple[str, ...], str] = {(): self.base}
        self.joins: list[str] = []
        self.args: list[Any] = []
        self.subqueries = 0

    def col(self, ref: FieldRef) -> str:
        alias, key = self.base, cast(tuple[str, ...], ())
        for join, target in zip(ref.joins, ref.targets, strict=True):
            parent_key = (*key, join.name)
            if parent_key not in self.aliases:
                new = f"{self.prefix}{len(self.aliases)}"
                self.aliases[parent_key] = new
                self.joins.append(
                    f'LEFT JOIN {table_name(target.name)} {new} ON {new}."Id" = {alias}."{join.name}"'
                )
            alias, key = self.aliases[parent_key], parent_key
        return f'{alias}."{ref.spec.name}"'

    def from_sql(self) -> str:
        return f"FROM {table_name(self.query.object.name)} {self.base} " + " ".join(self.joins)

    def cond(self, node: Any, neg: bool = False) -> str:
        kind = node[0]
        if kind in ("and", "or"):
            joiner = {"and": " AND ", "or": " OR "}[
                kind if not neg else ("or" if kind == "and" else "and")
            ]
            return "(" + joiner.join(self.cond(part, neg) for part in node[1]) + ")"
        if kind == "not":
            return self.cond(node[1], not neg)
        target = node[1]
        col = self.agg(target) if isinstance(target, Aggregate) else self.col(target)
        if kind == "semi":
            return self.semi(col, node[3], (node[2] == "not in") != neg)
        if kind == "like":
            self.args.append(node[2])
            if neg:
                return f"({col} IS NULL OR {col} NOT LIKE ? ESCAPE '\\')"
            return f"{col} LIKE ? ESCAPE '\\'"
        if kind == "in":
            values = node[3]
            negate = (node[2] == "not in") != neg
            present = [v for v in values if v is not None]
            has_null = len(present) < len(values)
            self.args.extend(present)
            marks = ", ".join("?" for _ in present)
            if not negate:
                parts = [f"{col} IN ({marks})"] if present else []
                parts += [f"{col} IS NULL"] if has_null else []
                return "(" + " OR ".join(parts) + ")" if parts else "0"
            parts = [f"{col} NOT IN ({marks})"] if present else []
            parts = [f"({col} IS NULL OR {parts[0]})"] if parts and not has_null else parts
            parts += [f"{col} IS NOT NULL"] if has_null else []
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        op, value = node[2], node[3]
        if neg:
            op = _NEG[op]
            negated = True
        else:
            negated = False
        if value is None:
            if op == "=":
                return f"{col} IS NULL"
            if op == "!=":
                return f"{col} IS NOT NULL"
            return "1" if negated else "0"
        if isinstance(value, tuple):  # date literal range [start, end)
            start, end = value[1], value[2]
            if op in ("=", "!="):
                self.args.extend([start, end])
                if op == "=":
                    return f"({col} >= ? AND {col} < ?)"
                return f"({col} IS NULL OR {col} < ? OR {col} >= ?)"
            bound = {"<": start, ">=": start, "<=": end, ">": end}[op]
            sql_op = {"<": "<", ">=": ">=", "<=": "<", ">": ">="}[op]
            self.args.append(bound)
            expr = f"{col} {sql_op} ?"
            return f"({col} IS NULL OR {expr})" if negated else expr
        self.args.append(value)
        if op == "=":
            return f"{col} = ?"
        if op == "!=":
            return f"{col} IS NOT ?"
        expr = f"{col} {op} ?"
        return f"({col} IS NULL OR {expr})" if negated else expr

    def semi(self, col: str, sub: Query, negate: bool) -> str:
        """``col IN (SELECT fk FROM child WHERE ...)``; deleted child rows never count."""
        self.subqueries += 1
        inner = _Sql(sub, f"{self.prefix}s{self.subqueries}_")
        target = inner.col(sub.fields[0])
        where = _where(inner, include_deleted=False)
        where += (" AND " if where else " WHERE ") + f"{target} IS NOT NULL"
        self.args.extend(inner.args)
        select = f"SELECT {target} {inner.from_sql()}{where}"
        if negate:
            return f"({col} IS NULL OR {col} NOT IN ({select}))"
        return f"{col} IN ({select})"

    def agg(self, agg: Aggregate) -> str:
        col = self.col(agg.ref)
        if agg.func == "count_distinct":
            return f"count(DISTINCT {col})"
        return f"{agg.func}({col})"

    def order_sql(self) -> str:
        parts = []
        for ref, desc, nulls_first in self.query.order:
            if isinstance(ref, Aggregate):
                col, nillable = self.agg(ref), True
            else:
                col, nillable = self.col(ref), ref.spec.nillable or bool(ref.joins)
            part = col + (" DESC" if desc else "")
            # SQLite sorts nulls first ascending and last descending; say so only when
            # it differs (non-nillable fields keep their index usable).
            if nillable:
                if desc and nulls_first:
                    part += " NULLS FIRST"
                elif not desc and not nulls_first:
                    part += " NULLS LAST"
            parts.append(part)
        return " ORDER BY " + ", ".join(parts) if parts else ""


def _where(sql: _Sql, include_deleted: bool) -> str:
    conds = []
    if not include_deleted and sql.query.object.field("IsDeleted") is not None:
        conds.append(f'{sql.base}."IsDeleted" = 0')
    if sql.query.where is not None:
        conds.append(sql.cond(sql.query.where))
    return " WHERE " + " AND ".join(conds) if conds else ""


def select_rowids(conn: sqlite3.Connection, query: Query, *, include_deleted: bool) -> list[int]:
    """The rowids of every record the query returns, in order (LIMIT/OFFSET applied).

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> from recon.sandbox.sf_store import load_records
        >>> from recon.sandbox.soql import parse
        >>> state = SandboxState(":memory:")
        >>> _ = load_records(state, "Account", [{"Name": "B"}, {"Name": "a"}])
        >>> q = parse("SELECT Name FROM Account ORDER BY Name")
        >>> with state.tx() as conn:
        ...     [r["Name"] for r in fetch_records(conn, q, select_rowids(conn, q, include_deleted=False), "59.0")]
        ['a', 'B']
    """
    sql = _Sql(query)
    where = _where(sql, include_deleted)
    order = sql.order_sql()
    text = f"SELECT t0.rowid {sql.from_sql()}{where}{order}"
    if query.limit is not None or query.offset is not None:
        text += " LIMIT ? OFFSET ?"
        sql.args += [query.limit if query.limit is not None else -1, query.offset or 0]
    return [r[0] for r in conn.execute(text, sql.args)]


def count(conn: sqlite3.Connection, query: Query, *, include_deleted: bool) -> int:
    """COUNT() / COUNT(field) of the query.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> from recon.sandbox.soql import parse
        >>> with SandboxState(":memory:").tx() as conn:
        ...     count(conn, parse("SELECT COUNT() FROM User"), include_deleted=False)
        5
    """
    sql = _Sql(query)
    where = _where(sql, include_deleted)
    target = f"count({sql.col(query.count_field)})" if query.count_field else "count(*)"
    text = f"SELECT {target} {sql.from_sql()}{where}"
    n = int(conn.execute(text, sql.args).fetchone()[0])
    if query.offset:
        n = max(0, n - query.offset)
    if query.limit is not None:
        n = min(n, query.limit)
    return n


def aggregate(
    conn: sqlite3.Connection, query: Query, *, include_deleted: bool
) -> list[dict[str, Any]]:
    """The ``AggregateResult`` records of a GROUP BY / aggregate-function query.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> from recon.sandbox.soql import parse
        >>> q = parse("SELECT IsActive, COUNT(Id) n FROM User GROUP BY IsActive")
        >>> with SandboxState(":memory:").tx() as conn:
        ...     aggregate(conn, q, include_deleted=False)
        [{'attributes': {'type': 'AggregateResult'}, 'IsActive': True, 'n': 5}]
    """
    sql = _Sql(query)
    groups = [sql.col(ref) for ref in query.group_by]
    shown = [(ref, sql.col(ref)) for ref in query.fields]
    aggs = [(agg, sql.agg(agg)) for agg in query.aggregates]
    where = _where(sql, include_deleted)
    cols = [c for _, c in shown] + [c for _, c in aggs] or ["1"]
    text = f"SELECT {', '.join(cols)} {sql.from_sql()}{where}"
    if groups:
        text += " GROUP BY " + ", ".join(groups)
    if query.having is not None:
        text += " HAVING " + sql.cond(query.having)
    text += sql.order_sql()
    if query.limit is not None or query.offset is not None:
        text += " LIMIT ? OFFSET ?"
        sql.args += [query.limit if query.limit is not None else -1, query.offset or 0]
    out = []
    for row in conn.execute(text, sql.args):
        record: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        for (ref, _), value in zip(shown, row, strict=False):
            record[ref.spec.name] = format_value(ref.spec, value)
        for (agg, _), value in zip(aggs, row[len(shown) :], strict=True):
            if agg.func in ("count", "count_distinct"):
                record[agg.alias] = int(value or 0)
            elif agg.func in ("sum", "avg"):
                record[agg.alias] = None if value is None else float(value)
            else:
                record[agg.alias] = format_value(agg.ref.spec, value)
        out.append(record)
    return out


def _select(sql: _Sql, fields: tuple[FieldRef, ...]) -> list[str]:
    cols = [sql.col(ref) for ref in fields]
    # the Id of every parent, to tell a null parent from a parent with null fields
    for key, alias in list(sql.aliases.items()):
        if key:
            cols.append(f'{alias}."Id"')
    return cols


def _fetch(
    conn: sqlite3.Connection, query: Query, rowids: list[int]
) -> tuple[_Sql, list[tuple[Any, ...]]]:
    sql = _Sql(query)
    cols = _select(sql, query.fields)
    by_rowid: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(rowids), 5000):
        chunk = rowids[start : start + 5000]
        marks = ", ".join("?" for _ in chunk)
        text = f'SELECT t0.rowid, t0."Id", {", ".join(cols)} {sql.from_sql()} WHERE t0.rowid IN ({marks})'
        by_rowid.update((row[0], row[1:]) for row in conn.execute(text, chunk))
    return sql, [by_rowid[r] for r in rowids if r in by_rowid]


def _url(obj: str, rid: str | None, version: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj}/{rid}"


def fetch_records(
    conn: sqlite3.Connection, query: Query, rowids: list[int], version: str
) -> list[dict[str, Any]]:
    """REST records (with ``attributes`` and nested parent objects) for ``rowids``, in order."""
    if not rowids:
        return []
    sql, rows = _fetch(conn, query, rowids)
    parent_keys = [k for k in sql.aliases if k]
    n_fields = len(query.fields)
    out: list[dict[str, Any]] = []
    if not parent_keys:  # fast path: no parent fields
        obj = query.object.name
        url = f"/services/data/v{version}/sobjects/{obj}/"
        plain = [(ref.spec.name, ref.spec.type in TEXT_TYPES, ref.spec) for ref in query.fields]
        for own_id, *values in rows:
            record: dict[str, Any] = {"attributes": {"type": obj, "url": url + own_id}}
            for (name, text, spec), value in zip(plain, values, strict=True):
                record[name] = value if text or value is None else format_value(spec, value)
            out.append(record)
        rows = []
    for own_id, *row in rows:
        parent_ids = dict(zip(parent_keys, row[n_fields:], strict=True))
        record = {"attributes": {"type": query.object.name, "url": None}}
        nested: dict[tuple[str, ...], dict[str, Any] | None] = {(): record}
        for ref, value in zip(query.fields, row[:n_fields], strict=True):
            target: dict[str, Any] | None = record
            key: tuple[str, ...] = ()
            for join, t in zip(ref.joins, ref.targets, strict=True):
                key = (*key, join.name)
                rel = join.relationship or join.name
                if key not in nested:
                    pid = parent_ids.get(key)
                    child = (
                        None
                        if pid is None
                        else {"attributes": {"type": t.name, "url": _url(t.name, pid, version)}}
                    )
                    nested[key] = child
                    if target is not None:
                        target.setdefault(rel, child)
                target = nested[key]
            if target is not None:
                target[ref.spec.name] = format_value(ref.spec, value)
        record["attributes"]["url"] = _url(query.object.name, own_id, version)
        out.append(record)
    for sub in query.children:
        _attach(conn, sub, [(r, r["attributes"]["url"].rsplit("/", 1)[1]) for r in out], version)
    return out


def _attach(
    conn: sqlite3.Connection,
    child: ChildQuery,
    parents: list[tuple[dict[str, Any], str]],
    version: str,
) -> None:
    """Fill a child-relationship subquery (``Contacts``...) into each parent record."""
    cq = child.query
    sql = _Sql(cq, "c")
    fk = f'{sql.base}."{child.fk}"'
    where = _where(sql, include_deleted=False)
    order = sql.order_sql() or f" ORDER BY {sql.base}.rowid"
    marks = ", ".join("?" for _ in parents)
    where += (" AND " if where else " WHERE ") + f"{fk} IN ({marks})"
    text = f"SELECT {sql.base}.rowid, {fk} {sql.from_sql()}{where}{order}"
    by_parent: dict[str, list[int]] = {}
    for rowid, parent_id in conn.execute(text, [*sql.args, *(pid for _, pid in parents)]):
        kids = by_parent.setdefault(parent_id, [])
        if cq.limit is None or len(kids) < cq.limit:
            kids.append(rowid)
    ordered = [rowid for _, pid in parents for rowid in by_parent.get(pid, [])]
    records = iter(fetch_records(conn, cq, ordered, version))
    for record, pid in parents:
        found = [next(records) for _ in by_parent.get(pid, [])]
        record[child.name] = (
            {"totalSize": len(found), "done": True, "records": found} if found else None
        )


def fetch_rows(conn: sqlite3.Connection, query: Query, rowids: list[int]) -> list[list[Any]]:
    """Flat rows (stored values, one per selected field) for Bulk API CSV."""
    if not rowids:
        return []
    _, rows = _fetch(conn, query, rowids)
    n = len(query.fields)
    return [list(row[1 : n + 1]) for row in rows]


def object_fields(spec: ObjectSpec) -> list[str]:
    """Every field name of an object, describe order."""
    return [f.name for f in spec.fields]
