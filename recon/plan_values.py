"""Value normalisation and conversion between HubSpot and Salesforce representations.

HubSpot sends every property as a string (``"17"``, ``"true"``, ``"a;b"``,
ISO datetimes with milliseconds); Salesforce sends JSON numbers, booleans and
``+0000`` datetimes. :func:`norm` reduces both to one comparable form per value
kind, so ``"17"`` equals ``17.0`` and ``"true"`` equals ``True``;
:func:`for_hubspot` / :func:`for_salesforce` turn a normalised value into what
each API accepts. Owners compare by email (see :class:`OwnerMap`).

Examples:
    >>> norm("number", "17") == norm("number", 17.0)
    True
    >>> for_hubspot("bool", norm("bool", True))
    'true'
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import orjson

from .models import (
    CANONICAL_ENCODER,
    FALSE_WORDS,
    OPT_OUT_FIELDS,
    TRUE_WORDS,
    is_opt_out,
    opted_out,
    parse_ts,
)

if TYPE_CHECKING:
    from .mapping import FieldMap

__all__ = [
    "NOT_PROVIDED",
    "OPT_OUT_FIELDS",
    "TEXT_KINDS",
    "OwnerMap",
    "country_key",
    "fast_stable_id",
    "for_hubspot",
    "for_salesforce",
    "is_blank",
    "is_opt_out",
    "lead_converted",
    "map_option",
    "norm",
    "norm_fast",
    "opted_out",
    "phone_key",
    "same_value",
    "to_hubspot_value",
    "to_salesforce_value",
    "url_key",
    "values_equal",
]


def fast_stable_id(*parts: Any) -> str:
    """:func:`recon.models.stable_id` (no prefix, 16 hex digits) for strings, None and dicts of them.

    orjson with sorted keys writes the same compact JSON as ``models.canonical_json`` for
    such parts (a test holds the two equal), five times faster; anything else goes
    through the canonical encoder itself.

    Examples:
        >>> from recon.models import stable_id
        >>> fast_stable_id("update", "hubspot", {"b": "1", "a": None}) == stable_id("update", "hubspot", {"b": "1", "a": None})
        True
    """
    try:
        text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = CANONICAL_ENCODER.encode(list(parts)).encode()
    return hashlib.sha256(text).hexdigest()[:16]


_NOT_WORD = re.compile(r"[\W_]+")
_PHONE_LIKE = re.compile(r"[+(]?[\d\s().\-/]{7,}")
_SITE_LIKE = re.compile(
    r"(https?://)?(www\.)?((?:[\w-]+\.)+([a-z]{2,})(?:[/?#]\S*)?)", re.IGNORECASE
)
_DECIMAL = re.compile(r"[+-]?\d+\.\d+")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def value_key(value: Any) -> str:
    """The form in which writes a person refused (an undo took back, a stale write dropped) are
    compared with the writes a later plan proposes, so a value a CRM reformatted is still the
    value refused: a phone number by its last nine digits ("+33 1 69 25 20 40",
    "0033 169252040"; "473 931 5621", "+1 473 931 5621"), a website without scheme, "www."
    or trailing slash, other text without case, spaces or punctuation, numbers without a
    trailing ".0", anything else as JSON. It errs toward asking a person again, never toward
    writing what was refused.

    Examples:
        >>> value_key("+33 1 69 25 20 40") == value_key("0033 169252040"), value_key(17.0) == value_key("17")
        (True, True)
        >>> value_key("4739315621") == value_key("+1 473 931 5621")
        True
        >>> value_key("www.acme.fr") == value_key("HTTPS://WWW.ACME.FR/"), value_key("Acme") == value_key("Acme Ltd")
        (True, False)
        >>> value_key(None), value_key(True), value_key(6292000.0) == value_key("6292000")
        ('null', 'true', True)
        >>> value_key(6292000.5) == value_key("6292000.50"), value_key("Acme.Inc") == value_key("Acme Inc")
        (True, True)
        >>> value_key("2024-01-05") == value_key("2024-01-05T00:00:00.000Z")
        True
        >>> value_key("ACME.COM") == value_key("https://www.acme.com/"), value_key("17.0") == value_key(17)
        (True, True)
    """
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | float):
        value = str(value)  # HubSpot's "6292000" and Salesforce's 6292000.0 alike
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL.fullmatch(text):  # "6292000.50" and 6292000.5; "17.0" and 17
            number = float(text)
            if not number.is_integer():
                return "n:" + repr(number)
            text = str(int(number))
        if _DATE_LIKE.fullmatch(text):  # "2024-01-05", "2024-01-05T00:00:00.000Z"
            try:
                when = parse_ts(text)
                if when is not None:
                    return "d:" + when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            except (ValueError, OverflowError):  # no date after all: keyed as text
                pass
        digits = re.sub(r"\D", "", text)
        if _PHONE_LIKE.fullmatch(text) and len(digits) >= 7:
            return "p:" + digits[-9:]
        site = _SITE_LIKE.fullmatch(text)
        if site and " " not in text:
            # without scheme, "www." and trailing slash, keyed as text: "ACME.COM", "acme.com/"
            # and "https://www.acme.com" alike, and "Acme.Inc" is still "Acme Inc"
            text = site[3].rstrip("/")
        return "v:" + _NOT_WORD.sub("", text.casefold())
    return CANONICAL_ENCODER.encode(value)


#: what HubSpot's connector (and recon) writes into a Salesforce field it must fill and has
#: no value for (a Lead's LastName, Company): no value, never one to sync back
NOT_PROVIDED = "[not provided]"


def lead_converted(fields: dict[str, Any]) -> bool:
    """Whether a Salesforce Lead's raw fields say it was converted (``IsConverted``): history
    Salesforce refuses to change or merge (``CANNOT_UPDATE_CONVERTED_LEAD``).

    Examples:
        >>> lead_converted({"IsConverted": True}), lead_converted({"IsConverted": "false"}), lead_converted({})
        (True, False, False)
    """
    value = fields.get("IsConverted")
    return value is True or str(value).lower() == "true"


def is_blank(value: Any) -> bool:
    """None, empty or whitespace text, the connector's ``[not provided]``, or an empty list
    (``False`` and ``0`` are values).

    Examples:
        >>> is_blank("  "), is_blank(0), is_blank(False), is_blank("[not provided]")
        (True, False, False, True)
    """
    if value is None:
        return True
    if isinstance(value, str):
        text = value.strip()
        return not text or text == NOT_PROVIDED
    if isinstance(value, list | tuple | set | frozenset):
        return not value
    return False


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _num(value: Any) -> Any:
    """A number as typed in either CRM or a locale: ``1,234.5``, ``1.234,5``, ``1,5`` (a
    decimal comma), ``2.500.000``; what is no finite number stays text.

    Examples:
        >>> [_num(v) for v in ("1,234.5", "1.234,5", "1,5", "1,234", "2.500.000,00", "7")]
        [1234.5, 1234.5, 1.5, 1234.0, 2500000.0, 7.0]
        >>> _num("NaN"), _num("inf")
        ('NaN', 'inf')
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return round(float(value), 9) if math.isfinite(value) else str(value)
    raw = str(value).strip().replace(" ", "").replace("\u00a0", "")
    text = raw
    if "," in text and "." in text:
        # the later mark is the decimal one
        if text.rfind(",") > text.rfind("."):
            text = text.replace(".", "").replace(",", ".")
        else:
            text = text.replace(",", "")
    elif "," in text:
        # 1,234 and 1,234,567 group thousands; 1,5 and 12,50 are decimal commas
        text = text.replace(",", "") if _THOUSANDS.match(text) else text.replace(",", ".")
    elif text.count(".") > 1:
        text = text.replace(".", "")  # 2.500.000: dots grouping thousands
    try:
        number = float(text)
    except ValueError:
        return raw
    return round(number, 9) if math.isfinite(number) else raw


def norm(kind: str, value: Any) -> Any:
    """The comparable form of ``value`` for a field of ``kind`` (None when blank).

    Unparseable values stay text (they then compare unequal and surface as changes).

    Examples:
        >>> norm("datetime", "2024-01-02T03:04:05.000+0000") == norm("datetime", "2024-01-02T03:04:05Z")
        True
        >>> norm("multi", "b;a")
        ('a', 'b')
    """
    if is_blank(value):
        return None
    if kind == "number":
        return _num(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        return text
    if kind in ("date", "datetime"):
        if isinstance(value, datetime):
            ts: datetime | None = value
        elif isinstance(value, date):
            return value.isoformat()
        else:
            try:
                ts = parse_ts(str(value))
            except ValueError:
                return str(value).strip()
        if ts is None:
            return None
        if kind == "date":
            return ts.date().isoformat()
        if ts.tzinfo is not None:
            ts = ts.astimezone(UTC)  # written with "Z": the instant, in UTC
        return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
    if kind == "multi":
        parts = (
            value if isinstance(value, list | tuple | set | frozenset) else str(value).split(";")
        )
        items = tuple(sorted({str(p).strip() for p in parts if str(p).strip()}))
        return items or None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: kinds compared and written as stripped text (phones, websites and countries compare by
#: their own keys)
TEXT_KINDS = frozenset({"text", "phone", "url", "country"})
#: kinds whose raw values repeat (ids, options, flags, numbers): worth memoising
_CACHED_KINDS = frozenset({"number", "bool", "enum", "multi", "owner", "date", "reference"})
#: (kind, type, value) -> normalised value; the type is part of the key: ``True``, ``1`` and
#: ``1.0`` are one dict key, and an option or a date reads them differently
_NORM_CACHE: dict[tuple[str, type, Any], Any] = {}


def norm_fast(kind: str, value: Any) -> Any:
    """:func:`norm` with a fast path for text and a memo for repeating kinds.

    Examples:
        >>> norm_fast("owner", "7") == norm("owner", "7")
        True
    """
    if kind in TEXT_KINDS and type(value) is str:
        text = value.strip()
        return text if text and text != NOT_PROVIDED else None
    if value is None:
        return None
    if kind in _CACHED_KINDS and (vtype := type(value)) in (str, int, float, bool):
        key = (kind, vtype, value)
        hit = _NORM_CACHE.get(key, _MISSING)
        if hit is _MISSING:
            if len(_NORM_CACHE) > 500_000:
                _NORM_CACHE.clear()
            hit = _NORM_CACHE[key] = norm(kind, value)
        return hit
    return norm(kind, value)


_MISSING = object()


def for_hubspot(kind: str, value: Any) -> Any:
    """A normalised value as HubSpot's API takes it (strings; ``;`` for multi-select).

    Examples:
        >>> for_hubspot("number", 17.0), for_hubspot("multi", ("a", "b"))
        ('17', 'a;b')
    """
    if value is None:
        return None
    if kind == "number" and isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if kind == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "multi" and isinstance(value, tuple):
        return ";".join(value)
    return str(value)


def for_salesforce(kind: str, value: Any, sf_type: str | None = None) -> Any:
    """A normalised value as Salesforce's API takes it (numbers, booleans, ``;`` lists).

    A date (a HubSpot date property) for a Salesforce datetime field is its midnight UTC:
    the API refuses a bare date there.

    Examples:
        >>> for_salesforce("number", 17.0, "int"), for_salesforce("bool", True)
        (17, True)
        >>> for_salesforce("date", "2024-04-01", "datetime")
        '2024-04-01T00:00:00.000Z'
    """
    if value is None:
        return None
    if kind == "date" and sf_type == "datetime" and isinstance(value, str) and len(value) == 10:
        return f"{value}T00:00:00.000Z"
    if kind == "number" and isinstance(value, float):
        if sf_type in ("int", "long") or (sf_type is None and value.is_integer()):
            return int(value)
        return value
    if kind == "multi" and isinstance(value, tuple):
        return ";".join(value)
    return value


class OwnerMap:
    """HubSpot owners ⇄ Salesforce Users, joined by email (case-insensitive).

    Rows are ``(source, owner id, email)``, or with a fourth item ``active``: when one email
    names several owners of a system (a deactivated User and its successor), the active one
    is written.

    Examples:
        >>> om = OwnerMap([("hubspot", "7", "Jo@x.com"), ("salesforce", "005A", "jo@x.com")])
        >>> om.to_salesforce("7"), om.to_hubspot("005A"), om.same("7", "005A")
        ('005A', '7', True)
        >>> OwnerMap([("hubspot", "7", "jo@x.com"), ("salesforce", "005A", "jo@x.com", False),
        ...           ("salesforce", "005B", "jo@x.com", True)]).to_salesforce("7")
        '005B'
        >>> OwnerMap([("hubspot", "7", "jo@x.com", False), ("salesforce", "005A", "jo@x.com")]).to_hubspot("005A") is None
        True
    """

    def __init__(self, rows: Iterable[tuple[Any, ...]]) -> None:
        self.email: dict[tuple[str, str], str] = {}
        self.by_email: dict[tuple[str, str], str] = {}
        inactive: set[tuple[str, str]] = set()  # (source, email) held by an inactive owner
        for source, owner_id, email, *rest in rows:
            if not email:
                continue
            e = email.strip().lower()
            self.email[(source, str(owner_id))] = e
            active = bool(rest[0]) if rest and rest[0] is not None else True
            key = (source, e)
            if key not in self.by_email or (active and key in inactive):
                self.by_email[key] = str(owner_id)
                if active:
                    inactive.discard(key)
                else:
                    inactive.add(key)
        self.inactive = inactive  # emails whose only owner in a system is deactivated

    def to_salesforce(self, hs_owner: Any) -> str | None:
        """The Salesforce User id of HubSpot owner ``hs_owner``, or None (also when its only
        User is deactivated: Salesforce refuses an inactive owner)."""
        e = self.email.get(("hubspot", str(hs_owner)))
        if not e or ("salesforce", e) in self.inactive:
            return None
        return self.by_email.get(("salesforce", e))

    def to_hubspot(self, sf_user: Any) -> str | None:
        """The HubSpot owner id of Salesforce User ``sf_user``, or None (also when its only
        HubSpot owner is archived: a person who left holds no records)."""
        e = self.email.get(("salesforce", str(sf_user)))
        if not e or ("hubspot", e) in self.inactive:
            return None
        return self.by_email.get(("hubspot", e))

    def same(self, hs_owner: Any, sf_user: Any) -> bool:
        """Whether the two ids are the same person (same email)."""
        a = self.email.get(("hubspot", str(hs_owner)))
        return a is not None and a == self.email.get(("salesforce", str(sf_user)))


def map_option(value: Any, options: Mapping[str, str], *, reverse: bool = False) -> Any:
    """Map one option value (or a tuple of them) through ``options`` (HubSpot -> Salesforce).

    ``reverse`` maps Salesforce -> HubSpot (the first HubSpot value naming it).
    Unmapped values pass through unchanged.

    Examples:
        >>> map_option("NEW", {"NEW": "Open"}), map_option("Open", {"NEW": "Open"}, reverse=True)
        ('Open', 'NEW')
    """
    table: Mapping[str, str] = options
    if reverse:
        inv: dict[str, str] = {}
        for k in sorted(options):
            inv.setdefault(options[k], k)
        table = inv
    if isinstance(value, tuple):
        return tuple(sorted({table.get(v, v) for v in value}))
    if value is None:
        return None
    return table.get(value, value)


def values_equal(fm: FieldMap, hn: Any, sn: Any, om: OwnerMap) -> bool:
    """Whether normalised HubSpot ``hn`` and Salesforce ``sn`` are the same value of mapping ``fm``.

    Option values compare through ``fm.options`` (in Salesforce's value space),
    owners through their email.

    Examples:
        >>> from recon.mapping import FieldMap
        >>> fm = FieldMap("contacts", "hs_lead_status", "Status", "Lead", kind="enum", options={"NEW": "Open"})
        >>> values_equal(fm, "NEW", "Open", OwnerMap([]))
        True
    """
    if hn is None or sn is None:
        # Salesforce checkboxes are never blank: False there says nothing a blank does not
        return hn is sn or (fm.kind == "bool" and (hn is False or sn is False))
    if fm.kind in ("enum", "multi"):
        mapped = map_option(hn, fm.options)
        if mapped == sn:
            return True
        # picklist values differing only in case are the same option (no schema to map them)
        if isinstance(mapped, tuple) and isinstance(sn, tuple):  # sets of options, in any order
            return sorted(v.casefold() for v in mapped) == sorted(v.casefold() for v in sn)
        return (
            isinstance(mapped, str) and isinstance(sn, str) and mapped.casefold() == sn.casefold()
        )
    if fm.kind == "owner":
        return om.same(hn, sn)
    return same_value(fm.kind, hn, sn)


def same_value(kind: str, a: Any, b: Any) -> bool:
    """Whether two normalised values of a field of ``kind`` are one value.

    Phones compare as numbers, websites as sites and countries as countries (by their
    keys); anything else as it is. Records of one system compare this way (merges);
    :func:`values_equal` adds option mapping and owners across the two systems.

    Examples:
        >>> same_value("url", "https://www.Acme.com/", "acme.com"), same_value("country", "UK", "GB")
        (True, True)
        >>> same_value("phone", "+47 22 33 44 55", "+47 22 33 44 56"), same_value("text", "a", None)
        (False, False)
    """
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    if kind == "phone":  # most pairs are told apart or alike from their digits, unparsed
        form_a, form_b = _phone_form(a), _phone_form(b)
        if form_a and form_b:
            if form_a == form_b:
                return True
            if _other_subscriber(form_a, form_b):
                return False
        return phone_key(a) == phone_key(b)
    if kind == "url":
        return url_key(a) == url_key(b)
    if kind == "country":
        return country_key(a) == country_key(b) != ""
    return False


_PHONE_TEXT = re.compile(r"\s*\+?[0-9()\-./ ]*")


def _phone_form(text: Any) -> str:
    """A phone text's digits, after a ``+`` when it starts with one; ``""`` when it holds
    anything else (letters, an extension).

    Two texts with one form are one input to :func:`phone_key` once its parser drops the
    punctuation, so they have one key: most spellings of one number are told apart from
    other numbers without parsing either.

    Examples:
        >>> _phone_form("+47 (22) 33-44.55") == _phone_form("+4722334455"), _phone_form("0047 22334455")
        (True, '004722334455')
        >>> _phone_form("555 0100 ext 12")
        ''
    """
    raw = str(text)
    if not _PHONE_TEXT.fullmatch(raw):
        return ""
    digits = "".join(ch for ch in raw if ch.isdigit())
    return "+" + digits if raw.lstrip().startswith("+") else digits


#: digits at the end of every spelling of one number: the shortest national number any region
#: allows has four (phonenumbers' metadata), and formats only add or rework what comes before
_SUBSCRIBER_DIGITS = 4


def _other_subscriber(form_a: str, form_b: str) -> bool:
    """Whether two phone forms (see :func:`_phone_form`) are surely two numbers: both hold at
    least four digits and their last four differ.

    Every spelling of one number ends with the end of its national number (country codes,
    ``00``, trunk prefixes, a ``(0)`` and mobile tokens such as Argentina's ``15`` only come
    before it), and so does its E.164 form: four trailing digits are the national number's
    own in every region.

    Examples:
        >>> _other_subscriber("+4930123456", "030123456"), _other_subscriber("+4930123456", "030123457")
        (False, True)
    """
    n = _SUBSCRIBER_DIGITS
    return (
        len(form_a.lstrip("+")) >= n and len(form_b.lstrip("+")) >= n and form_a[-n:] != form_b[-n:]
    )


_PHONE_KEYS: dict[str, str] = {}


def phone_key(text: Any) -> str:
    """A phone number's comparison key: E.164 when it parses (``00`` taken as ``+``), else its digits.

    Examples:
        >>> phone_key("+49 96 907 0744") == phone_key("0049 969070744")
        True
    """
    raw = str(text).strip()
    hit = _PHONE_KEYS.get(raw)
    if hit is None:
        from .normalize import phone

        # 00 for +, however the digits are spaced ("0 049..." is one spelling of "0049...");
        # a text that is not only a number keeps its own characters
        lead = _phone_form(raw) or raw
        intl = "+" + lead[2:] if lead.startswith("00") else raw
        hit = phone(intl) or "".join(ch for ch in raw if ch.isdigit())
        if len(_PHONE_KEYS) > 200_000:
            _PHONE_KEYS.clear()
        _PHONE_KEYS[raw] = hit
    return hit


@functools.lru_cache(maxsize=4096)
def country_key(text: Any) -> str:
    """A country's comparison key: its ISO 3166 alpha-2 code from a code or a name in many
    languages, ``""`` when the text names no known country.

    Examples:
        >>> country_key("United Kingdom") == country_key("UK") == "GB", country_key("Deutschland")
        (True, 'DE')
        >>> country_key("Atlantis")
        ''
    """
    from .normalize import country

    return country(str(text)) or ""


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DEFAULT_PORT = re.compile(r":(?:80|443)$")


def url_key(text: Any) -> str:
    """A website's comparison key: its host without scheme, ``www.``, default port or case,
    then its path, query and fragment without a trailing slash.

    One site written two ways is one value ("https://www.acme.com/" is "acme.com");
    another host or another page is another value.

    Examples:
        >>> url_key("HTTPS://WWW.Acme.com:443/") == url_key("acme.com")
        True
        >>> url_key("acme.com/en/home") == url_key("acme.com"), url_key("acme.de") == url_key("acme.com")
        (False, False)
    """
    rest = _SCHEME.sub("", str(text).strip())
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    host = _DEFAULT_PORT.sub("", rest[:cut].lower().rstrip("."))
    if host.startswith("www."):
        host = host[4:]
    return host + rest[cut:].rstrip("/")


def to_salesforce_value(fm: FieldMap, hn: Any, om: OwnerMap) -> tuple[Any, str | None]:
    """A normalised HubSpot value as ``fm``'s Salesforce field takes it, or ``(None, problem)``.

    Problems: ``option_missing`` (no such picklist value), ``owner_unmapped`` (no User
    with the owner's email), ``not_a_number``, ``not_an_integer`` (a fraction for a whole-number
    field).

    Examples:
        >>> from recon.mapping import FieldMap
        >>> to_salesforce_value(FieldMap("companies", "x", "X", "Account", kind="number"), 3.0, OwnerMap([]))
        (3, None)
    """
    if fm.kind in ("enum", "multi"):
        v = map_option(hn, fm.options)
        vals = v if isinstance(v, tuple) else (v,)
        if fm.sf_options is not None and any(x not in fm.sf_options for x in vals):
            return None, "option_missing"
        return for_salesforce(fm.kind, v), None
    if fm.kind == "owner":
        u = om.to_salesforce(hn)
        return (u, None) if u else (None, "owner_unmapped")
    if fm.kind == "number" and not isinstance(hn, float):
        return None, "not_a_number"
    if fm.kind == "number" and fm.sf_type in ("int", "long") and not hn.is_integer():
        return None, "not_an_integer"  # 2.5 is not written as 2
    return for_salesforce(fm.kind, hn, fm.sf_type), None


def to_hubspot_value(fm: FieldMap, sn: Any, om: OwnerMap) -> tuple[Any, str | None]:
    """A normalised Salesforce value as ``fm``'s HubSpot property takes it, or ``(None, problem)``.

    Examples:
        >>> from recon.mapping import FieldMap
        >>> to_hubspot_value(FieldMap("companies", "x", "X", "Account", kind="bool"), True, OwnerMap([]))
        ('true', None)
    """
    if fm.kind in ("enum", "multi"):
        v = map_option(sn, fm.options, reverse=True)
        vals = v if isinstance(v, tuple) else (v,)
        if fm.hs_options is not None and any(x not in fm.hs_options for x in vals):
            return None, "option_missing"
        return for_hubspot(fm.kind, v), None
    if fm.kind == "owner":
        o = om.to_hubspot(sn)
        return (o, None) if o else (None, "owner_unmapped")
    if fm.kind == "number" and not isinstance(sn, float):
        return None, "not_a_number"
    return for_hubspot(fm.kind, sn), None
