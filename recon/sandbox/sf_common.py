"""Shared pieces of the Salesforce emulator: its error type, record ids, timestamps.

Storage formats (the emulator's tables, see :mod:`recon.sandbox.sf_store`):
datetimes are fixed-width UTC text ``2024-01-02T03:04:05.000Z`` (so text order is
time order and ``SystemModstamp >= X`` uses an index), dates ``2024-01-02``,
booleans 0/1. The REST API prints datetimes as ``2024-01-02T03:04:05.000+0000``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "SfError",
    "api_datetime",
    "date_literal_range",
    "id_checksum",
    "make_id",
    "normalize_id",
    "parse_datetime",
    "store_datetime",
    "table_name",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECK = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}([A-Z0-5]{3})?$")


class SfError(Exception):
    """A Salesforce API error: becomes ``[{message, errorCode, fields}]`` with ``status``.

    Examples:
        >>> SfError(400, "MALFORMED_QUERY", "unexpected token: FORM").response().status_code
        400
    """

    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]

    def save_error(self) -> dict[str, Any]:
        """This error inside a SaveResult (``statusCode``, not ``errorCode``)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}

    def response(self, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def table_name(object_name: str) -> str:
    """The emulator's table of an sObject type.

    Examples:
        >>> table_name("CampaignMember")
        'sf_campaignmember'
    """
    return "sf_" + object_name.lower()


def id_checksum(id15: str) -> str:
    """The 3-character case checksum Salesforce appends to a 15-character id.

    Examples:
        >>> id_checksum("001R0000005hDFY")
        'IA2'
    """
    out = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out += _CHECK[bits]
    return out


def make_id(prefix: str, number: int) -> str:
    """An 18-character record id: key prefix, pod ``5g``, counter in base 62, checksum.

    Examples:
        >>> make_id("001", 1)
        '0015g0000000001AAA'
    """
    digits = ""
    n = number
    while n:
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    body = prefix + "5g0" + digits.rjust(9, "0")
    return body + id_checksum(body)


def normalize_id(value: str) -> str | None:
    """An id as 18 characters (15-character ids get their checksum), or None if malformed.

    Examples:
        >>> normalize_id("001R0000005hDFY")
        '001R0000005hDFYIA2'
        >>> normalize_id("abc") is None
        True
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    if len(value) == 15:
        return value + id_checksum(value)
    return value


def store_datetime(ts: datetime) -> str:
    """A datetime in the storage format (UTC, milliseconds, ``Z``).

    Examples:
        >>> store_datetime(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
        '2024-01-02T03:04:05.000Z'
    """
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def api_datetime(stored: str | None) -> str | None:
    """A stored datetime as the REST API prints it (``...000+0000``)."""
    if stored is None:
        return None
    return stored[:-1] + "+0000" if stored.endswith("Z") else stored


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(text: str) -> datetime | None:
    """Parse every datetime form Salesforce accepts (``Z``, ``+00:00``, ``-0800``, ms); None if invalid.

    Examples:
        >>> parse_datetime("2024-01-01T00:00:00-08:00").isoformat()
        '2024-01-01T08:00:00+00:00'
    """
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        ts = datetime(
            int(y), int(mo), int(d), int(h), int(mi), int(s),
            int((frac or "0").ljust(6, "0")[:6]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ts -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return ts


def parse_date(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date, or None."""
    try:
        return date.fromisoformat(text) if re.match(r"^\d{4}-\d{2}-\d{2}$", text) else None
    except ValueError:
        return None


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
    fixed: dict[str, Callable[[], tuple[date, date]]] = {
        "YESTERDAY": lambda: (t - day, t),
        "TODAY": lambda: (t, t + day),
        "TOMORROW": lambda: (t + day, t + 2 * day),
        "LAST_WEEK": lambda: (week0 - 7 * day, week0),
        "THIS_WEEK": lambda: (week0, week0 + 7 * day),
        "NEXT_WEEK": lambda: (week0 + 7 * day, week0 + 14 * day),
        "LAST_MONTH": lambda: (_month_start(t, -1), _month_start(t)),
        "THIS_MONTH": lambda: (_month_start(t), _month_start(t, 1)),
        "NEXT_MONTH": lambda: (_month_start(t, 1), _month_start(t, 2)),
        "LAST_90_DAYS": lambda: (t - 90 * day, t + day),
        "NEXT_90_DAYS": lambda: (t + day, t + 91 * day),
        "THIS_YEAR": lambda: (date(t.year, 1, 1), date(t.year + 1, 1, 1)),
        "LAST_YEAR": lambda: (date(t.year - 1, 1, 1), date(t.year, 1, 1)),
        "NEXT_YEAR": lambda: (date(t.year + 1, 1, 1), date(t.year + 2, 1, 1)),
        "LAST_N_DAYS": lambda: (t - n * day, t + day),
        "NEXT_N_DAYS": lambda: (t + day, t + (n + 1) * day),
        "N_DAYS_AGO": lambda: (t - n * day, t - (n - 1) * day),
        "LAST_N_WEEKS": lambda: (week0 - 7 * n * day, week0),
        "NEXT_N_WEEKS": lambda: (week0 + 7 * day, week0 + 7 * (n + 1) * day),
        "N_WEEKS_AGO": lambda: (week0 - 7 * n * day, week0 - 7 * (n - 1) * day),
        "LAST_N_MONTHS": lambda: (_month_start(t, -n), _month_start(t)),
        "NEXT_N_MONTHS": lambda: (_month_start(t, 1), _month_start(t, n + 1)),
        "N_MONTHS_AGO": lambda: (_month_start(t, -n), _month_start(t, -n + 1)),
        "LAST_N_YEARS": lambda: (date(t.year - n, 1, 1), date(t.year, 1, 1)),
        "NEXT_N_YEARS": lambda: (date(t.year + 1, 1, 1), date(t.year + n + 1, 1, 1)),
        "N_YEARS_AGO": lambda: (date(t.year - n, 1, 1), date(t.year - n + 1, 1, 1)),
    }
    try:  # only the range asked for: another literal's may not exist (LAST_N_DAYS:3650)
        return fixed[key]()
    except (ValueError, OverflowError):
        raise SfError(
            400, "MALFORMED_QUERY", f"date literal {name} is out of the supported range of dates"
        ) from None


# ---------------------------------------------------------------------------- the transformer
