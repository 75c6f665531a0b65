"""SOQL for the Salesforce emulator: a Lark grammar (``soql.lark``) and a resolver.

:func:`parse` turns a SOQL string into a :class:`Query` whose field references are
resolved against the emulator's describe metadata (:mod:`recon.sandbox.sf_describe`)
and whose literals are converted to the storage formats, or raises
:class:`~recon.sandbox.sf_common.SfError` with Salesforce's own error codes:

- ``MALFORMED_QUERY``: the text is not SOQL the grammar accepts (incl. ``AND`` and
  ``OR`` mixed without parentheses, as Salesforce refuses), COUNT() mixed with fields.
- ``INVALID_TYPE``: unknown object in FROM.
- ``INVALID_FIELD``: unknown field or relationship, or a literal of the wrong type for
  its field ("value of filter criterion for field 'X' must be of type ...").
- ``INVALID_QUERY_FILTER_OPERATOR``: a malformed id literal.
- ``NUMBER_OUTSIDE_VALID_RANGE``: OFFSET above 2,000.

Supported: field lists with parent fields (``Account.Name``, ``Account.Owner.Email``),
COUNT() and COUNT(field), WHERE with = != <> < <= > >= LIKE IN NOT IN, NOT, AND, OR and
parentheses, strings, numbers, booleans, null, dates, datetimes in every form Salesforce
accepts, date literals (TODAY, LAST_N_DAYS:n...), ORDER BY (ASC/DESC, NULLS FIRST/LAST),
LIMIT and OFFSET. :mod:`recon.sandbox.sf_query` compiles a :class:`Query` to SQL.

Examples:
    >>> q = parse("SELECT Id, Account.Name FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z")
    >>> q.object.name, [f.path for f in q.fields]
    ('Contact', ['Id', 'Account.Name'])
    >>> q.where
    ('cmp', FieldRef(path='SystemModstamp', ...), '>=', '2024-01-01T00:00:00.000Z')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .sf_common import SfError, normalize_id, parse_datetime, store_datetime
from .sf_describe import TEXT_TYPES, FieldSpec, ObjectSpec, get_object

__all__ = ["FieldRef", "Query", "parse"]

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
    count_field: FieldRef | None = None  # COUNT(field): one AggregateResult row
    count_alias: str = "expr0"
    where: Any = None
    order: list[tuple[FieldRef, bool, bool]] = field(
        default_factory=list
    )  # (field, desc, nulls_first)
    limit: int | None = None
    offset: int | None = None


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


# ---------------------------------------------------------------------------- date literals


def _month_start(d: date, months: int = 0) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def date_literal_range(name: str, today: date | None = None) -> tuple[date, date]:
    """The [start, end) day range of a SOQL date literal such as ``TODAY`` or ``LAST_N_DAYS:7``.

    Weeks start on Sunday (Salesforce's default locale); times are UTC.

    Examples:
        >>> date_literal_range("LAST_N_DAYS:2", date(2024, 3, 10))
        (datetime.date(2024, 3, 8), datetime.date(2024, 3, 11))
        >>> date_literal_range("THIS_MONTH", date(2024, 2, 10))
        (datetime.date(2024, 2, 1), datetime.date(2024, 3, 1))
    """
    t = today or datetime.now(UTC).date()
    key, _, num = name.upper().partition(":")
    n = int(num) if num else 0
    day = timedelta(days=1)
    week0 = t - timedelta(days=(t.weekday() + 1) % 7)
    fixed = {
        "YESTERDAY": (t - day, t),
        "TODAY": (t, t + day),
        "TOMORROW": (t + day, t + 2 * day),
        "LAST_WEEK": (week0 - 7 * day, week0),
        "THIS_WEEK": (week0, week0 + 7 * day),
        "NEXT_WEEK": (week0 + 7 * day, week0 + 14 * day),
        "LAST_MONTH": (_month_start(t, -1), _month_start(t)),
        "THIS_MONTH": (_month_start(t), _month_start(t, 1)),
        "NEXT_MONTH": (_month_start(t, 1), _month_start(t, 2)),
        "LAST_90_DAYS": (t - 90 * day, t + day),
        "NEXT_90_DAYS": (t + day, t + 91 * day),
        "THIS_YEAR": (date(t.year, 1, 1), date(t.year + 1, 1, 1)),
        "LAST_YEAR": (date(t.year - 1, 1, 1), date(t.year, 1, 1)),
        "NEXT_YEAR": (date(t.year + 1, 1, 1), date(t.year + 2, 1, 1)),
        "LAST_N_DAYS": (t - n * day, t + day),
        "NEXT_N_DAYS": (t + day, t + (n + 1) * day),
        "N_DAYS_AGO": (t - n * day, t - (n - 1) * day),
        "LAST_N_WEEKS": (week0 - 7 * n * day, week0),
        "NEXT_N_WEEKS": (week0 + 7 * day, week0 + 7 * (n + 1) * day),
        "N_WEEKS_AGO": (week0 - 7 * n * day, week0 - 7 * (n - 1) * day),
        "LAST_N_MONTHS": (_month_start(t, -n), _month_start(t)),
        "NEXT_N_MONTHS": (_month_start(t, 1), _month_start(t, n + 1)),
        "N_MONTHS_AGO": (_month_start(t, -n), _month_start(t, -n + 1)),
        "LAST_N_YEARS": (date(t.year - n, 1, 1), date(t.year, 1, 1)),
        "NEXT_N_YEARS": (date(t.year + 1, 1, 1), date(t.year + n + 1, 1, 1)),
        "N_YEARS_AGO": (date(t.year - n, 1, 1), date(t.year - n + 1, 1, 1)),
    }
    return fixed[key]


# ---------------------------------------------------------------------------- the transformer


@dataclass(frozen=True)
class _Lit:
    kind: str  # string number true false null date datetime date_literal
    text: str
    line: int
    column: int


def _lit(kind: str) -> Any:
    def make(self: Any, tok: Token) -> _Lit:
        return _Lit(kind, str(tok), tok.line or 1, tok.column or 1)

    return make


@v_args(inline=True)
class _ToAst(Transformer[Token, Any]):
    """Lark tree -> plain tuples; field paths keep their positions for error messages."""

    def field_path(self, *names: Token) -> tuple[str, tuple[str, ...], int, int]:
        return ("path", tuple(str(n) for n in names), names[0].line or 1, names[0].column or 1)

    string = _lit("string")
    datetime = _lit("datetime")
    date = _lit("date")
    number = _lit("number")
    true = _lit("true")
    false = _lit("false")
    null = _lit("null")
    date_literal = _lit("date_literal")
    date_literal_n = _lit("date_literal")

    def count_call(self, _kw: Token, path: Any, alias: Token | None) -> tuple[str, Any, Any]:
        return ("count", path, str(alias) if alias is not None else None)

    def select_list(self, *items: Any) -> list[Any]:
        return list(items)

    def where(self, cond: Any) -> tuple[str, Any]:
        return ("where", cond)

    def and_chain(self, *parts: Any) -> tuple[str, list[Any]]:
        return ("and", list(parts))

    def or_chain(self, *parts: Any) -> tuple[str, list[Any]]:
        return ("or", list(parts))

    def negation(self, inner: Any) -> tuple[str, Any]:
        return ("not", inner)

    def comparison(self, path: Any, op: Token, value: _Lit) -> tuple[str, Any, str, list[_Lit]]:
        return ("cmp", path, "!=" if str(op) == "<>" else str(op), [value])

    def like(self, path: Any, pattern: Token) -> tuple[str, Any, str, list[_Lit]]:
        return (
            "like",
            path,
            "like",
            [_Lit("string", str(pattern), pattern.line or 1, pattern.column or 1)],
        )

    def in_list(self, path: Any, *values: _Lit) -> tuple[str, Any, str, list[_Lit]]:
        return ("in", path, "in", list(values))

    def not_in_list(self, path: Any, *values: _Lit) -> tuple[str, Any, str, list[_Lit]]:
        return ("in", path, "not in", list(values))

    def order_item(
        self, path: Any, direction: Token | None, nulls: Token | None
    ) -> tuple[Any, bool, bool]:
        desc = direction is not None and str(direction).lower() == "desc"
        nulls_first = nulls is None or str(nulls).lower().split()[-1] == "first"
        return (path, desc, nulls_first)

    def order(self, *items: Any) -> tuple[str, list[Any]]:
        return ("order", list(items))

    def limit(self, n: Token) -> tuple[str, int]:
        return ("limit", int(n))

    def offset(self, n: Token) -> tuple[str, int]:
        return ("offset", int(n))


# ---------------------------------------------------------------------------- resolution

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def unquote(text: str, *, like: bool = False) -> str:
    """The value of a SOQL string literal; in LIKE patterns ``\\%`` and ``\\_`` stay escaped."""
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if like and nxt in "%_":
                out.append("\\" + nxt)
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt] if not (like and nxt == "\\") else "\\\\")
            else:
                out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Resolver:
    def __init__(self, soql: str, obj: ObjectSpec, today: date | None) -> None:
        self.soql, self.obj, self.today = soql, obj, today

    def error(self, code: str, line: int, column: int, message: str) -> SfError:
        return SfError(400, code, _located(self.soql, line, column, message))

    def field(self, node: tuple[str, tuple[str, ...], int, int]) -> FieldRef:
        _, names, line, column = node
        obj, joins, targets, canon = self.obj, [], [], []
        # A leading object name is allowed: SELECT Account.Name FROM Account
        if len(names) > 1 and names[0].lower() == obj.name.lower():
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

    def value(self, ref: FieldRef, lit: _Lit, op: str) -> Any:
        """A literal as a storage value (``("range", start, end)`` for date literals)."""
        t, name = ref.spec.type, ref.spec.name
        if lit.kind == "null":
            return None

        def wrong(expected: str, quoted: bool) -> SfError:
            hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return self.error(
                "INVALID_FIELD",
                lit.line,
                lit.column,
                f"value of filter criterion for field '{name}' must be of type {expected} and {hint}",
            )

        if t in ("id", "reference"):
            if lit.kind != "string":
                raise wrong("id", True)
            raw = unquote(lit.text)
            if op == "like":
                return raw
            norm = normalize_id(raw)
            if norm is None:
                raise self.error(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    lit.line,
                    lit.column,
                    f"invalid ID field: {raw}",
                )
            return norm
        if t in TEXT_TYPES or t == "textarea":
            if lit.kind != "string":
                raise wrong("string", True)
            return unquote(lit.text, like=op == "like")
        if op == "like":
            raise self.error(
                "INVALID_FIELD", lit.line, lit.column, f"invalid operator on field '{name}': LIKE"
            )
        if t == "boolean":
            if lit.kind not in ("true", "false"):
                raise wrong("boolean", False)
            return 1 if lit.kind == "true" else 0
        if t in ("int", "double", "currency", "percent"):
            if lit.kind != "number":
                raise wrong("integer" if t == "int" else "double", False)
            num = float(lit.text)
            return int(num) if num.is_integer() and "." not in lit.text else num
        if t in ("date", "datetime"):
            if lit.kind == "date_literal":
                start, end = date_literal_range(lit.text, self.today)
                if t == "date":
                    return ("range", start.isoformat(), end.isoformat())
                return (
                    "range",
                    store_datetime(datetime.combine(start, datetime.min.time(), UTC)),
                    store_datetime(datetime.combine(end, datetime.min.time(), UTC)),
                )
            if t == "date":
                if lit.kind != "date":
                    raise wrong("date", False)
                return lit.text
            if lit.kind != "datetime":
                raise wrong("dateTime", False)
            ts = parse_datetime(lit.text)
            if ts is None:
                raise self.error(
                    "INVALID_FIELD", lit.line, lit.column, f"invalid datetime value: {lit.text}"
                )
            return store_datetime(ts)
        raise wrong(t, False)  # pragma: no cover - every type is handled above

    def condition(self, node: Any) -> Any:
        kind = node[0]
        if kind in ("and", "or"):
            return (kind, [self.condition(part) for part in node[1]])
        if kind == "not":
            return ("not", self.condition(node[1]))
        _, path, op, lits = node
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
    select, obj_tok, *clauses = _ToAst().transform(tree).children
    obj = get_object(str(obj_tok))
    if obj is None:
        raise SfError(
            400,
            "INVALID_TYPE",
            _located(
                soql,
                obj_tok.line or 1,
                obj_tok.column or 1,
                f"sObject type '{obj_tok}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
            ),
        )
    res = _Resolver(soql, obj, today)
    query = Query(soql=soql, object=obj)
    fields: list[FieldRef] = []
    counts = [item for item in select if item[0] == "count"]
    if counts:
        if len(select) > 1 and any(item[0] == "count" and item[1] is None for item in select):
            raise _plain_malformed(soql, "COUNT() can not be combined with other fields")
        _, path, alias = counts[0]
        if path is None:
            query.count = True
        else:
            query.count_field = res.field(path)
            query.count_alias = alias or "expr0"
        if len(select) > 1:
            raise _plain_malformed(soql, "Field must be grouped or aggregated")
    else:
        seen: set[str] = set()
        for item in select:
            ref = res.field(item)
            if ref.path.lower() in seen:
                raise res.error(
                    "DUPLICATE_FIELD", item[2], item[3], f"duplicate field selected: {ref.path}"
                )
            seen.add(ref.path.lower())
            fields.append(ref)
    query.fields = tuple(fields)
    for clause in clauses:
        if clause is None:
            continue
        if clause[0] == "where":
            query.where = res.condition(clause[1])
        elif clause[0] == "order":
            if query.count:
                raise _plain_malformed(soql, "ORDER BY can not be used with COUNT()")
            query.order = [(res.field(p), desc, nf) for p, desc, nf in clause[1]]
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
    return query


def _plain_malformed(soql: str, message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", _located(soql, 1, 1, message))
