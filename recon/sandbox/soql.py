"""SOQL for the Salesforce emulator: a Lark grammar (``soql.lark``) and a resolver.

:func:`parse` turns a SOQL string into a :class:`Query` whose field references are
resolved against the emulator's describe metadata (:mod:`recon.sandbox.sf_describe`)
and whose literals are converted to the storage formats, or raises
:class:`~recon.sandbox.sf_common.SfError` with Salesforce's own error codes:

- ``MALFORMED_QUERY``: the text is not SOQL the grammar accepts (incl. ``AND`` and
  ``OR`` mixed without parentheses, as Salesforce refuses), COUNT() mixed with fields.
- ``INVALID_TYPE``: unknown object in FROM, or unknown child relationship in a subquery.
- ``INVALID_FIELD``: unknown field or relationship, or a literal of the wrong type for
  its field ("value of filter criterion for field 'X' must be of type ...").
- ``INVALID_QUERY_FILTER_OPERATOR``: a malformed id literal.
- ``NUMBER_OUTSIDE_VALID_RANGE``: OFFSET above 2,000.

Supported: field lists with parent fields (``Account.Name``, ``Account.Owner.Email``),
``FIELDS(ALL|STANDARD|CUSTOM)``, child-relationship subqueries (``(SELECT Id FROM
Contacts)``), COUNT() and COUNT(field), an object alias (``FROM Account a``), WHERE with
= != <> < <= > >= LIKE IN NOT IN, semi-joins (``Id IN (SELECT AccountId FROM Contact)``),
NOT, AND, OR and parentheses, strings, numbers, booleans, null, dates, datetimes in every
form Salesforce accepts, date literals (TODAY, LAST_N_DAYS:n...), ``WITH
SECURITY_ENFORCED``, GROUP BY and HAVING with COUNT, COUNT_DISTINCT, SUM, AVG, MIN and MAX, ORDER BY
(ASC/DESC, NULLS FIRST/LAST, also by an aggregate), LIMIT and OFFSET.
:mod:`recon.sandbox.sf_query` compiles a :class:`Query` to SQL.

Examples:
    >>> q = parse("SELECT Id, Account.Name FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z")
    >>> q.object.name, [f.path for f in q.fields]
    ('Contact', ['Id', 'Account.Name'])
    >>> q.where
    ('cmp', FieldRef(path='SystemModstamp', ...), '>=', '2024-01-01T00:00:00.000Z')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .sf_common import SfError, date_literal_range
from .sf_describe import FieldSpec, ObjectSpec, child_relationship, get_object
from .sf_soql_ast import Lit, ToAst, literal_value, unquote

__all__ = ["Aggregate", "ChildQuery", "FieldRef", "Query", "date_literal_range", "parse", "unquote"]

MAX_OFFSET = 2000


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("soql.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


@dataclass(frozen=True)
class FieldRef:
    """A resolved field reference: the relationships walked and the final field."""

    path: str  # canonical dotted path, e.g. "Account.Name"
    joins: tuple[FieldSpec, ...]  # reference fields walked, outermost first
    targets: tuple[ObjectSpec, ...]  # object reached by each join
    spec: FieldSpec
    object: ObjectSpec  # object owning ``spec``

    def __repr__(self) -> str:
        return f"FieldRef(path={self.path!r}, ...)"


@dataclass
class Query:
    """A parsed, resolved SOQL query."""

    soql: str
    object: ObjectSpec
    fields: tuple[FieldRef, ...] = ()
    count: bool = False  # COUNT(): totalSize only
    where: Any = None
    # (field or aggregate, desc, nulls_first)
    order: list[tuple[FieldRef | Aggregate, bool, bool]] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    children: list[ChildQuery] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    group_by: list[FieldRef] = field(default_factory=list)
    having: Any = None

    @property
    def aggregated(self) -> bool:
        """An aggregate query: answered with ``AggregateResult`` rows, no paging."""
        return bool(self.aggregates or self.group_by)

    @property
    def count_field(self) -> FieldRef | None:
        """The field of a lone ``COUNT(field)`` (no GROUP BY), else None."""
        if len(self.aggregates) == 1 and not self.group_by and not self.fields:
            agg = self.aggregates[0]
            return agg.ref if agg.func == "count" else None
        return None

    @property
    def count_alias(self) -> str:
        return self.aggregates[0].alias if self.aggregates else "expr0"


@dataclass(frozen=True)
class Aggregate:
    """An aggregate function call: ``COUNT(Id)``, ``SUM(AnnualRevenue) total``..."""

    func: str  # count count_distinct sum avg min max
    ref: FieldRef
    alias: str


@dataclass
class ChildQuery:
    """A child-relationship subquery: ``(SELECT ... FROM Contacts ...)`` on Account."""

    name: str  # the relationship name, e.g. "Contacts"
    query: Query  # over the child object
    fk: str  # the child's field pointing at the parent, e.g. "AccountId"


def _located(soql: str, line: int, column: int, message: str) -> str:
    lines = soql.splitlines() or [""]
    text = lines[line - 1] if 0 < line <= len(lines) else lines[-1]
    return f"\n{text}\n{' ' * max(0, column - 1)}^\nERROR at Row:{line}:Column:{column}\n{message}"


def _malformed(soql: str, exc: UnexpectedInput) -> SfError:
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        value = "<EOF>" if tok.type == "$END" else str(tok)
        if tok.type == "$END":
            last = soql.rstrip()
            line, column = last.count("\n") + 1, len(last.splitlines()[-1] if last else "") + 1
        msg = f"unexpected token: '{value}'"
    elif isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        msg = f"unexpected token: '{soql[pos]}'" if pos < len(soql) else "unexpected token: '<EOF>'"
    else:
        msg = "unexpected token: '<EOF>'" if isinstance(exc, UnexpectedEOF) else str(exc)
    return SfError(400, "MALFORMED_QUERY", _located(soql, line, column, msg))


# ---------------------------------------------------------------------------- resolution


class _Resolver:
    def __init__(
        self, soql: str, obj: ObjectSpec, today: date | None, alias: str | None = None
    ) -> None:
        self.soql, self.obj, self.today = soql, obj, today
        self.alias = alias.lower() if alias else None
        self.having = False  # resolving a HAVING condition: aggregates allowed

    def error(self, code: str, line: int, column: int, message: str) -> SfError:
        return SfError(400, code, _located(self.soql, line, column, message))

    def field(self, node: tuple[str, tuple[str, ...], int, int]) -> FieldRef:
        _, names, line, column = node
        obj, joins, targets, canon = self.obj, [], [], []
        # A leading object name or alias is allowed: SELECT a.Name FROM Account a
        if len(names) > 1 and names[0].lower() in (obj.name.lower(), self.alias):
            names = names[1:]
        for rel in names[:-1]:
            ref = obj.relationships.get(rel.lower())
            target = get_object(ref.reference_to) if ref is not None and ref.reference_to else None
            if ref is None or target is None:
                raise self.error(
                    "INVALID_FIELD",
                    line,
                    column,
                    f"Didn't understand relationship '{rel}' in field path. If you are attempting to use "
                    "a custom relationship, be sure to append the '__r' after the custom relationship "
                    "name. Please reference your WSDL or the describe call for the appropriate names.",
                )
            joins.append(ref)
            targets.append(target)
            canon.append(ref.relationship or rel)
            obj = target
        spec = obj.field(names[-1])
        if spec is None:
            shown = ".".join(names)
            raise self.error(
                "INVALID_FIELD",
                line,
                column,
                f"No such column '{shown if len(names) == 1 else names[-1]}' on entity '{obj.name}'. "
                "If you are attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
            )
        canon.append(spec.name)
        return FieldRef(".".join(canon), tuple(joins), tuple(targets), spec, obj)

    def value(self, ref: FieldRef, lit: Lit, op: str) -> Any:
        """A literal as a storage value (``("range", start, end)`` for date literals)."""
        return literal_value(ref.spec, lit, op, self.today, self.error)

    def condition(self, node: Any) -> Any:
        kind = node[0]
        if kind in ("and", "or"):
            return (kind, [self.condition(part) for part in node[1]])
        if kind == "not":
            return ("not", self.condition(node[1]))
        if kind == "semi":
            return self.semi_join(node)
        _, path, op, lits = node
        if path[0] == "agg":
            return self.aggregate_condition(node)
        ref = self.field(path)
        if ref.spec.type == "textarea" and ref.spec.length > 255:
            raise self.error(
                "INVALID_FIELD",
                path[2],
                path[3],
                f"field '{ref.spec.name}' can not be filtered in a query call",
            )
        values = [self.value(ref, lit, op) for lit in lits]
        if kind == "in":
            return ("in", ref, op, values)
        if kind == "like":
            return ("like", ref, values[0])
        return ("cmp", ref, op, values[0])

    def aggregate_condition(self, node: Any) -> Any:
        """``COUNT(Id) > 1`` in HAVING; aggregates anywhere else are malformed."""
        kind, agg_node, op, lits = node
        if not self.having or agg_node[2] is None:
            raise _plain_malformed(self.soql, "Aggregate functions are only allowed in HAVING")
        agg = _aggregate(self, agg_node, 0)
        if agg.func in ("min", "max"):
            spec = agg.ref.spec
        else:
            spec = FieldSpec(agg.alias, "int" if agg.func.startswith("count") else "double")
        pseudo = FieldRef(agg.alias, (), (), spec, self.obj)
        values = [self.value(pseudo, lit, op) for lit in lits]
        if kind == "in":
            return ("in", agg, op, values)
        if kind == "like":
            return ("like", agg, values[0])
        return ("cmp", agg, op, values[0])

    def semi_join(self, node: Any) -> Any:
        """``Id IN (SELECT AccountId FROM Contact ...)``: both sides must be ids."""
        _, path, op, (_, inner_path, obj_tok, clauses) = node
        if path[0] == "agg":
            raise _plain_malformed(self.soql, "Aggregate functions can not be used in a semi join")
        ref = self.field(path)
        inner_obj = _object(self.soql, obj_tok)
        inner = _Resolver(self.soql, inner_obj, self.today)
        inner_ref = inner.field(inner_path)
        for side, name in ((ref, path), (inner_ref, inner_path)):
            if side.spec.type not in ("id", "reference") or side.joins:
                raise self.error(
                    "INVALID_FIELD",
                    name[2],
                    name[3],
                    "semi join sub-selects can only select and compare id fields",
                )
        sub = Query(soql=self.soql, object=inner_obj, fields=(inner_ref,))
        for clause in clauses:
            sub.where = inner.condition(clause[1])
        return ("semi", ref, op, sub)


def _object(soql: str, tok: Token) -> ObjectSpec:
    obj = get_object(str(tok))
    if obj is None:
        raise SfError(
            400,
            "INVALID_TYPE",
            _located(
                soql,
                tok.line or 1,
                tok.column or 1,
                f"sObject type '{tok}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
            ),
        )
    return obj


def parse(soql: str, *, today: date | None = None) -> Query:
    """Parse and resolve a SOQL query.

    Args:
        soql: the query text.
        today: the day date literals count from (default: today, UTC).

    Raises:
        SfError: MALFORMED_QUERY, INVALID_TYPE, INVALID_FIELD... with Salesforce's message.

    Examples:
        >>> parse("SELECT COUNT() FROM Lead").count
        True
        >>> parse("SELECT Id FROM Foo")
        Traceback (most recent call last):
        ...
        recon.sandbox.sf_common.SfError: INVALID_TYPE: ...
    """
    try:
        tree: Tree[Token] = _parser().parse(soql)
    except UnexpectedInput as exc:
        raise _malformed(soql, exc) from None
    select, (_, obj_tok, alias), *clauses = ToAst().transform(tree).children
    obj = _object(soql, obj_tok)
    res = _Resolver(soql, obj, today, str(alias) if alias is not None else None)
    return _build(res, select, clauses, nested=False)


def _select(res: _Resolver, query: Query, select: list[Any], nested: bool) -> None:
    soql = res.soql
    fields: list[FieldRef] = []
    aggs = [item for item in select if item[0] == "agg"]
    if any(item[2] is None for item in aggs):  # COUNT(): the record count only
        if nested or len(select) > 1 or aggs[0][1] != "count":
            raise _plain_malformed(soql, "COUNT() must be the only item selected")
        query.count = True
        return
    if aggs and nested:
        raise _plain_malformed(
            soql, "Aggregate functions can not be used in a relationship subquery"
        )
    seen: set[str] = set()
    for item in select:
        if item[0] == "subquery":
            if nested:
                raise _plain_malformed(soql, "Nested relationship subqueries are not supported")
            query.children.append(_child(res, item))
            continue
        if item[0] == "agg":
            query.aggregates.append(_aggregate(res, item, len(query.aggregates)))
            continue
        if item[0] == "fields":
            kind = str(item[1]).upper()
            if kind not in ("ALL", "STANDARD", "CUSTOM"):
                raise res.error(
                    "MALFORMED_QUERY",
                    item[1].line or 1,
                    item[1].column or 1,
                    f"FIELDS({item[1]}) is not supported; use ALL, STANDARD or CUSTOM",
                )
            for f in res.obj.fields:
                wanted = kind == "ALL" or f.custom == (kind == "CUSTOM")
                if wanted and f.name.lower() not in seen:
                    seen.add(f.name.lower())
                    fields.append(FieldRef(f.name, (), (), f, res.obj))
            continue
        ref = res.field(item)
        if ref.path.lower() in seen:
            raise res.error(
                "DUPLICATE_FIELD", item[2], item[3], f"duplicate field selected: {ref.path}"
            )
        seen.add(ref.path.lower())
        fields.append(ref)
    query.fields = tuple(fields)
    if not fields and not query.aggregates:
        raise _plain_malformed(soql, "a query must select at least one field")


_NUMERIC = ("int", "double", "currency", "percent")


def _aggregate(res: _Resolver, item: Any, position: int) -> Aggregate:
    _, func, path, alias = item
    if path is None:  # COUNT() stands alone as the whole select list, nowhere else
        raise _plain_malformed(res.soql, "COUNT() can only be used alone in the select list")
    ref = res.field(path)
    if func in ("sum", "avg") and ref.spec.type not in _NUMERIC:
        raise res.error(
            "MALFORMED_QUERY",
            path[2],
            path[3],
            f"field {ref.spec.name} does not support aggregate operator {func.upper()}",
        )
    unnamed = position if alias is None else 0
    return Aggregate(func, ref, alias or f"expr{unnamed}")


def _child(res: _Resolver, item: Any) -> ChildQuery:
    _, select, rel_tok, clauses = item
    found = child_relationship(res.obj, str(rel_tok))
    if found is None:
        raise res.error(
            "INVALID_TYPE",
            rel_tok.line or 1,
            rel_tok.column or 1,
            f"Didn't understand relationship '{rel_tok}' in FROM part of query call. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the custom "
            "relationship name. Please reference your WSDL or the describe call for the appropriate "
            "names.",
        )
    name, child_obj, fk = found
    inner = _Resolver(res.soql, child_obj, res.today)
    return ChildQuery(name, _build(inner, select, clauses, nested=True), fk)


def _build(res: _Resolver, select: list[Any], clauses: list[Any], *, nested: bool) -> Query:
    soql = res.soql
    query = Query(soql=soql, object=res.obj)
    _select(res, query, select, nested)
    for clause in clauses:
        if clause is None:
            continue
        if clause[0] == "where":
            query.where = res.condition(clause[1])
        elif clause[0] == "with":
            if str(clause[1]).upper() not in ("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"):
                raise res.error(
                    "MALFORMED_QUERY",
                    clause[1].line or 1,
                    clause[1].column or 1,
                    f"unexpected token: '{clause[1]}'",
                )
        elif clause[0] == "having":
            if not query.group_by:
                raise _plain_malformed(soql, "HAVING needs a GROUP BY clause")
            res.having = True
            query.having = res.condition(clause[1])
            res.having = False
        elif clause[0] == "group":
            if query.count:
                raise _plain_malformed(soql, "GROUP BY can not be used with COUNT()")
            query.group_by = [res.field(p) for p in clause[1]]
        elif clause[0] == "order":
            if query.count:
                raise _plain_malformed(soql, "ORDER BY can not be used with COUNT()")
            query.order = [
                (_aggregate(res, p, 0) if p[0] == "agg" else res.field(p), desc, nf)
                for p, desc, nf in clause[1]
            ]
        elif clause[0] == "limit":
            query.limit = clause[1]
        elif clause[0] == "offset":
            if clause[1] > MAX_OFFSET:
                raise SfError(
                    400,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
            query.offset = clause[1]
    if query.aggregated:
        _check_grouping(soql, query)
    uses_fields = any(item[0] == "fields" and str(item[1]).upper() != "STANDARD" for item in select)
    if uses_fields and (query.limit is None or query.limit > 200):
        raise _plain_malformed(soql, "The SOQL FIELDS function must have a LIMIT of at most 200")
    return query


def _check_grouping(soql: str, query: Query) -> None:
    """Plain fields of an aggregate query must be grouped; subqueries are not allowed."""
    grouped = {ref.path.lower() for ref in query.group_by}
    if query.children:
        raise _plain_malformed(soql, "Relationship subqueries can not be used in aggregate queries")
    for ref in query.fields:
        if ref.path.lower() not in grouped:
            raise _plain_malformed(soql, f"Field must be grouped or aggregated: {ref.path}")
    for item, _, _ in query.order:
        if isinstance(item, FieldRef) and item.path.lower() not in grouped:
            raise _plain_malformed(
                soql, f"Ordered field must be grouped or aggregated: {item.path}"
            )
    for ref in _condition_fields(query.having):
        if ref.path.lower() not in grouped:
            raise _plain_malformed(soql, f"HAVING field must be grouped or aggregated: {ref.path}")


def _condition_fields(node: Any) -> list[FieldRef]:
    if node is None:
        return []
    if node[0] in ("and", "or"):
        return [ref for part in node[1] for ref in _condition_fields(part)]
    if node[0] == "not":
        return _condition_fields(node[1])
    return [node[1]] if isinstance(node[1], FieldRef) else []


def _plain_malformed(soql: str, message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", _located(soql, 1, 1, message))
