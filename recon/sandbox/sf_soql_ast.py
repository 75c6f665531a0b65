"""The SOQL syntax tree of the Salesforce emulator: a Lark transformer from the
``soql.lark`` parse tree to plain tuples (:mod:`recon.sandbox.soql` resolves them
against the describe metadata), and SOQL literals: unquoting strings and checking and
converting a literal against the type of the field it is compared with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lark import Token, Transformer, v_args

from .sf_common import SfError, date_literal_range, normalize_id, parse_datetime, store_datetime
from .sf_objects import TEXT_TYPES, FieldSpec

__all__ = ["Lit", "ToAst", "literal_value", "unquote"]


@dataclass(frozen=True)
class Lit:
    kind: str  # string number true false null date datetime date_literal
    text: str
    line: int
    column: int


def _lit(kind: str) -> Any:
    def make(self: Any, tok: Token) -> Lit:
        return Lit(kind, str(tok), tok.line or 1, tok.column or 1)

    return make


@v_args(inline=True)
class ToAst(Transformer[Token, Any]):
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

    def agg_call(self, func: Token, path: Any, alias: Token | None) -> tuple[str, str, Any, Any]:
        return ("agg", str(func).lower(), path, str(alias) if alias is not None else None)

    def group(self, *paths: Any) -> tuple[str, list[Any]]:
        return ("group", list(paths))

    def having(self, cond: Any) -> tuple[str, Any]:
        return ("having", cond)

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

    def comparison(self, path: Any, op: Token, value: Lit) -> tuple[str, Any, str, list[Lit]]:
        return ("cmp", path, "!=" if str(op) == "<>" else str(op), [value])

    def like(self, path: Any, pattern: Token) -> tuple[str, Any, str, list[Lit]]:
        return (
            "like",
            path,
            "like",
            [Lit("string", str(pattern), pattern.line or 1, pattern.column or 1)],
        )

    def in_list(self, path: Any, *values: Lit) -> tuple[str, Any, str, list[Lit]]:
        return ("in", path, "in", list(values))

    def not_in_list(self, path: Any, *values: Lit) -> tuple[str, Any, str, list[Lit]]:
        return ("in", path, "not in", list(values))

    def in_select(self, path: Any, sub: Any) -> tuple[str, Any, str, Any]:
        return ("semi", path, "in", sub)

    def not_in_select(self, path: Any, sub: Any) -> tuple[str, Any, str, Any]:
        return ("semi", path, "not in", sub)

    def semi_select(
        self, path: Any, obj: Token, *clauses: Any
    ) -> tuple[str, Any, Token, list[Any]]:
        return ("semi_select", path, obj, list(clauses))

    def subquery(
        self, items: list[Any], rel: Token, *clauses: Any
    ) -> tuple[str, Any, Token, list[Any]]:
        return ("subquery", items, rel, list(clauses))

    def fields_call(self, _kw: Token, kind: Token) -> tuple[str, Token]:
        return ("fields", kind)

    def from_clause(self, obj: Token, alias: Token | None) -> tuple[str, Token, Token | None]:
        return ("from", obj, alias)

    def with_clause(self, name: Token) -> tuple[str, Token]:
        return ("with", name)

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


def literal_value(
    spec: FieldSpec,
    lit: Lit,
    op: str,
    today: date | None,
    error: Callable[[str, int, int, str], SfError],
) -> Any:
    """A literal compared with ``spec`` as a storage value (``("range", start, end)`` for
    date literals); ``error(code, line, column, message)`` builds the SfError to raise.

    Examples:
        >>> from recon.sandbox.sf_describe import get_object
        >>> lit = Lit("datetime", "2024-01-01T01:00:00+01:00", 1, 1)
        >>> literal_value(get_object("Account").field("SystemModstamp"), lit, ">=", None, None)
        '2024-01-01T00:00:00.000Z'
    """
    t, name = spec.type, spec.name
    if lit.kind == "null":
        return None

    def wrong(expected: str, quoted: bool) -> SfError:
        hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return error(
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
            raise error(
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
        raise error(
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
            start, end = date_literal_range(lit.text, today)
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
            raise error(
                "INVALID_FIELD", lit.line, lit.column, f"invalid datetime value: {lit.text}"
            )
        return store_datetime(ts)
    raise wrong(t, False)  # pragma: no cover - every type is handled above
