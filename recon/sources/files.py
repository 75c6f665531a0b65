"""CRM export files as records: HubSpot exports and Salesforce Data Loader / report exports.

:func:`read_export` reads one CSV or XLSX export and maps it to the canonical record columns
(:data:`recon.sources.base.RECORD_COLUMNS`); :func:`load_export` stores it as snapshots of a
pull run. What it accepts:

- HubSpot company and contact exports with the labels HubSpot writes (``Record ID``,
  ``Company name``, ``Company Domain Name``, ``Website URL``, ``First Name``, ``Email``,
  ``Associated Company IDs``...) or internal names (``hs_object_id``, ``name``, ``domain``).
- Salesforce Account, Contact and Lead exports with API names in any case (``ID``, ``NAME``,
  ``BILLINGCITY``, ``AccountId``...) or report labels (``Account Name``, ``Billing City``).
  A contacts file may mix Contacts and Leads: each row's object comes from its Id prefix
  (``003``/``00Q``) or a type column.
- UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252; comma, semicolon or tab delimited.
- Unknown columns are kept: every raw field lands in ``data`` (JSON).

Large files are parsed by polars' CSV reader and checked with vectorised expressions, never
row by row in Python. Every bad file raises one :class:`~recon.errors.FileFormatError` naming
the file, the row (the header is row 1) and the column, and what to do.

Examples:
    >>> parse_as("salesforce:lead")
    ('salesforce', 'Lead')
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import FileFormatError
from ..models import (
    FALSE_WORDS,
    SF_ID_PREFIXES,
    TRUE_WORDS,
    is_opt_out,
    parse_ts,
    salesforce_id18,
    stable_id,
)
from .base import RECORD_COLUMNS
from .crm import domain_of
from .file_labels import Options, field_names, objects_of, option_fields
from .scope import OUT_OF_SCOPE, in_scope

if TYPE_CHECKING:
    import sqlite_utils

    from ..config import ReconConfig

__all__ = ["AS_CHOICES", "check_file", "file_times", "load_export", "parse_as", "read_export"]

log = logging.getLogger(__name__)

#: the values ``--as`` accepts (object names are matched case-insensitively)
AS_CHOICES: tuple[str, ...] = (
    "hubspot:companies",
    "hubspot:contacts",
    "salesforce:Account",
    "salesforce:Contact",
    "salesforce:Lead",
    "salesforce:contacts",
)
_AS = {a.lower(): tuple(a.split(":")) for a in AS_CHOICES}
_PREFIX = {obj: prefix for prefix, obj in SF_ID_PREFIXES.items()}

_COMMON_SF = {
    "owner_id": ("ownerid",),
    "created_at": ("createddate", "createdate"),
    "modified_at": ("systemmodstamp", "lastmodifieddate"),
    "archived": ("isdeleted",),
}
_COMMON_HS = {
    "owner_id": ("hubspotownerid",),
    "created_at": ("createdate", "hscreatedate", "createdat"),
    "modified_at": ("lastmodifieddate", "hslastmodifieddate", "updatedat"),
    "archived": ("archived",),
}
_PERSON = {
    "first_name": ("firstname",),
    "last_name": ("lastname",),
    "email": ("email", "emailaddress"),
}

#: canonical column -> header keys (lower case, letters and digits only), first present wins
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "hubspot:companies": {
        "record_id": ("recordid", "hsobjectid", "companyid", "objectid", "id"),
        "name": ("companyname", "name"),
        "domain": ("companydomainname", "domain"),
        "website": ("websiteurl", "website"),
        "phone": ("phonenumber", "phone"),
        "city": ("city",),
        "country": ("countryregion", "country"),
        **_COMMON_HS,
    },
    "hubspot:contacts": {
        "record_id": ("recordid", "hsobjectid", "contactid", "vid", "objectid", "id"),
        "name": ("fullname",),
        **_PERSON,
        "phone": ("phonenumber", "phone", "mobilephonenumber", "mobilephone"),
        "company": ("companyname", "company", "associatedcompany"),
        "account_id": ("associatedcompanyid", "primaryassociatedcompanyid", "associatedcompanyids"),
        "website": ("websiteurl", "website"),
        "city": ("city",),
        "country": ("countryregion", "country"),
        **_COMMON_HS,
    },
    "salesforce:Account": {
        "record_id": ("id", "accountid"),
        "name": ("name", "accountname"),
        "website": ("website",),
        "phone": ("phone",),
        "city": ("billingcity", "shippingcity", "city"),
        "country": ("billingcountry", "billingcountrycode", "shippingcountry", "country"),
        **_COMMON_SF,
    },
    "salesforce:Contact": {
        "record_id": ("id", "contactid"),
        "name": ("name", "fullname"),
        **_PERSON,
        "phone": ("phone", "mobilephone", "mobile"),
        "account_id": ("accountid",),
        "company": ("accountname", "account"),
        "city": ("mailingcity", "othercity", "city"),
        "country": ("mailingcountry", "mailingcountrycode", "othercountry", "country"),
        **_COMMON_SF,
    },
    "salesforce:Lead": {
        "record_id": ("id", "leadid"),
        "name": ("name", "fullname"),
        **_PERSON,
        "phone": ("phone", "mobilephone", "mobile"),
        "company": ("company", "companyaccount"),
        "website": ("website",),
        "city": ("city",),
        "country": ("country", "countrycode"),
        **_COMMON_SF,
    },
}
# a mixed Contact + Lead file: Contact's columns first, then what only Leads have
ALIASES["salesforce:contacts"] = {
    key: tuple(
        dict.fromkeys(
            ALIASES["salesforce:Contact"].get(key, ()) + ALIASES["salesforce:Lead"].get(key, ())
        )
    )
    for key in ALIASES["salesforce:Contact"].keys() | ALIASES["salesforce:Lead"].keys()
}
#: columns that say whether a row of a mixed file is a Contact or a Lead
_TYPE_KEYS = ("type", "object", "objecttype", "sobjecttype", "attributestype", "recordobject")
#: stored cross-system ids: HubSpot's Salesforce id properties
_HS_SF_ID_KEYS = (
    "salesforceaccountid",
    "salesforcecontactid",
    "salesforceleadid",
    "salesforceobjectid",
)
_ISO_OUT = "%Y-%m-%dT%H:%M:%S.%3fZ"


def _key(label: str) -> str:
    return re.sub(r"[^0-9a-z]", "", label.lower())


def parse_as(as_: str, path: str | Path | None = None) -> tuple[str, str]:
    """The (source, object) an ``--as`` value names; object ``contacts`` means Contact and Lead.

    Raises:
        FileFormatError: ``as_`` is not one of :data:`AS_CHOICES`.

    Examples:
        >>> parse_as("hubspot:companies")
        ('hubspot', 'companies')
    """
    try:
        source, obj = _AS[as_.strip().lower()]
    except KeyError:
        raise FileFormatError(
            f"unknown --as {as_!r}",
            path=str(path) if path else None,
            hint=f"use one of: {', '.join(AS_CHOICES)}",
        ) from None
    return source, obj


@dataclass
class _Table:
    """Raw cells of one export (all text) and how to name a row of it."""

    path: Path
    frame: pl.DataFrame
    text: str | None = None  # CSV text, kept only when records span lines
    separator: str = ","
    header_line: int = 0  # 0-based line of the header (blank lines may precede it)
    line_numbers: list[int] | None = (
        None  # 1-based line of each record, when blank lines interleave
    )

    @property
    def header_row(self) -> int:
        """The 1-based line (CSV) or row (XLSX) of the header: blank lines, Excel's ``sep=;``
        line or a report's title rows may come before it."""
        return self.header_line + 1

    def row(self, index: int) -> int:
        """The 1-based line number (header = 1 when it is the first line) of data record ``index``
        (where the record starts, when it spans lines)."""
        if self.text is not None:
            reader = csv.reader(io.StringIO(self.text), delimiter=self.separator)
            # the rows the frame keeps: after the header, not blank, not all-empty (",,,")
            kept, end = -1, 0
            try:
                for fields in reader:
                    start, end = end + 1, reader.line_num
                    if end <= self.header_row or not any(fields):
                        continue
                    kept += 1
                    if kept == index:
                        return start
            except csv.Error:
                pass
        if self.line_numbers is not None:
            return self.line_numbers[index]
        return index + 2 + self.header_line


_LOCAL_TIME = re.compile(
    r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})"
    r"(?:,?\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?)?$"
)


def file_times(values: pl.Series) -> tuple[pl.Series, int | None, str | None]:
    """A column of export timestamps as UTC ISO text (``2026-11-30T14:05:00.000Z``).

    ISO 8601 in any of its forms (HubSpot exports, Data Loader) is read as is. Report
    exports write the user's locale: ``30.11.2026 14:05`` (day first), ``11/30/2026, 2:05
    PM``, ``30/11/2026 14:05`` or ``2026/11/30 14:05`` (year first, never day first). A dotted date is day first; whether a slashed date is day
    or month first is decided for the whole column from its slashed values (a part above 12;
    a 12-hour clock says nothing: Australia and India write day first with am/pm). Times
    without a zone are taken as UTC.

    Returns:
        ``(times, bad, note)``: ``bad`` is the index of the first value that is no date
        (None when all are read); ``note`` says why a column was left without times (its
        dates could be read either way), else None.

    Examples:
        >>> t, bad, note = file_times(pl.Series(["2026-11-30 14:05", "11/30/2026, 2:05 PM", None]))
        >>> t.to_list(), bad, note
        (['2026-11-30T14:05:00.000Z', '2026-11-30T14:05:00.000Z', None], None, None)
        >>> file_times(pl.Series(["01/02/2026"]))[2]
        'dates such as 01/02/2026 read as day or month first; this column was not used'
        >>> file_times(pl.Series(["10/03/2026 2:05 pm", "3/9/2026 11:15 am"]))[2] is not None
        True
        >>> file_times(pl.Series(["30.11.2026 14:05", "3/13/2026 11:15 AM"]))[0].to_list()
        ['2026-11-30T14:05:00.000Z', '2026-03-13T11:15:00.000Z']
        >>> file_times(pl.Series(["2024/12/31 13:05", "2024/1/2", "2024.03.04 1:05 PM"]))[0].to_list()
        ['2024-12-31T13:05:00.000Z', '2024-01-02T00:00:00.000Z', '2024-03-04T13:05:00.000Z']
    """

    texts = values.cast(pl.String).to_list()
    local: dict[str, tuple[str, ...]] = {}
    slashed: set[str] = set()
    day_first = month_first = False  # what the slashed dates show
    for text in dict.fromkeys(t.strip() for t in texts if t and t.strip()):
        m = _LOCAL_TIME.match(text)
        if m is None:
            continue
        local[text] = m.groups()
        a, sep, b = int(m[1]), m[2], int(m[3])
        if sep == ".":
            continue  # dotted dates are day first
        if (a > 12 and b > 12) or not a or not b:
            continue  # no date either way ("13/13/2026", "00/00/0000"): reported, no vote
        slashed.add(text)
        day_first |= a > 12
        month_first |= b > 12
    # no slashed date tells the order, or they tell both: the column's slashed dates go unread
    ambiguous = bool(slashed) and day_first == month_first
    out: list[str | None] = []
    cache: dict[str, str | None] = {}
    for i, raw in enumerate(texts):
        text = raw.strip() if raw else ""
        if not text:
            out.append(None)
            continue
        unread = ambiguous and text in slashed
        if text not in cache:
            cache[text] = _one_time(text, local.get(text), text in slashed and month_first)
            if cache[text] is None and not unread:
                return values, i, None
        out.append(None if unread else cache[text])
    note = None
    if ambiguous:
        example = next(iter(slashed))
        note = f"dates such as {example} read as day or month first; this column was not used"
    return pl.Series(values.name, out, dtype=pl.String), None, note


#: a date written year first with slashes or dots, and its time: ``2024/12/31 13:05``
_YEAR_FIRST = re.compile(
    r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:,?[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp]\.?[Mm]\.?)?)?"
)


def _one_time(text: str, parts: tuple[str, ...] | None, month_first: bool) -> str | None:
    from datetime import UTC, datetime

    from ..models import parse_ts

    try:
        year_first = _YEAR_FIRST.fullmatch(text) if parts is None else None
        if year_first:  # "2024/12/31 13:05" (Japan, China, Korea, Hungary): never day first
            year, month, day, hour, minute, second, ampm = year_first.groups()
            parts = (day, "/", month, year, hour, minute, second, ampm)
            month_first = False
        if parts is None:
            if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
                return None
            # "14.05" is five past two written with a dot, not 14 hours and a fraction
            dotted = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T](\d{1,2})\.(\d{2})(?:\.(\d{2}))?", text)
            if dotted:
                day, hh, mm, ss = dotted.groups()
                text = f"{day}T{int(hh):02d}:{mm}:{ss or '00'}"
            dt = parse_ts(text)
        else:
            a, _sep, b, year, hour, minute, second, ampm = parts
            day, month = (int(b), int(a)) if month_first else (int(a), int(b))
            y = int(year) + (2000 if len(year) == 2 else 0)
            h = int(hour or 0)
            if ampm:
                if not 1 <= h <= 12:
                    return None
                h = h % 12 + (12 if ampm[0] in "Pp" else 0)
            dt = datetime(y, month, day, h, int(minute or 0), int(second or 0), tzinfo=UTC)
    except ValueError:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z" if dt else None


def _error(
    table: _Table | Path,
    message: str,
    *,
    row: int | None = None,
    column: str | None = None,
    hint: str | None = None,
) -> FileFormatError:
    path = table.path if isinstance(table, _Table) else table
    return FileFormatError(message, path=str(path), row=row, column=column, hint=hint)


# --------------------------------------------------------------------------- bytes to text


def _decode(path: Path, raw: bytes) -> tuple[bytes, str]:
    """The file's bytes without BOM (UTF-16 transcoded to UTF-8) and the encoding it names.

    UTF-8 validity is checked later by polars (cheaper); :func:`_transcode` handles the rest.
    """
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :], "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _error(
                path,
                f"undecodable UTF-16 bytes at byte {exc.start}",
                hint="save the file as CSV UTF-8",
            ) from None
    if b"\x00" in raw:
        row = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise _error(
            path,
            "the file holds NUL bytes: not a text CSV (UTF-16 without BOM, or binary)",
            row=row,
            hint="save it as CSV UTF-8 or XLSX",
        )
    return raw, "utf-8"


def _transcode(path: Path, raw: bytes, encoding: str) -> tuple[bytes, str]:
    """UTF-8 bytes of a file that is not valid UTF-8: Windows-1252, or an error naming the row."""
    try:
        raw.decode("utf-8")
        return raw, encoding
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    # valid multi-byte UTF-8 sequences next to invalid ones: a damaged UTF-8 file, not cp1252
    valid_mb = len(
        re.findall(
            rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", raw
        )
    )
    text: str | None = None
    if encoding == "utf-8" and valid_mb == 0:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            bad_at = exc.start
    if text is None:
        row = raw.count(b"\n", 0, bad_at) + 1
        raise _error(
            path,
            f"undecodable bytes at byte {bad_at} ({raw[bad_at : bad_at + 4]!r}): neither UTF-8 nor Windows-1252",
            row=row,
            hint="re-export the file as CSV UTF-8 (Excel: Save As > CSV UTF-8) and load it again",
        )
    return text.encode("utf-8"), "cp1252"


def _sniff(header: str) -> str:
    """The delimiter of the header line: the most frequent of comma, semicolon, tab."""
    bare = re.sub(r'"[^"]*"', "", header)
    counts = {sep: bare.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _lines(data: bytes) -> pl.DataFrame:
    """Every physical line of the file (``i``: 0-based line number; blank lines are null)."""
    return pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        separator="\x00",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
    ).with_row_index("i")


def _check_ragged(table: _Table, lines: pl.DataFrame, data: bytes, ncols: int) -> None:
    """Every record has as many fields as the header (vectorised; csv module if fields span lines)."""
    sep = table.separator
    line = pl.col("line")
    body = lines.lazy().slice(table.header_line + 1)
    quoted = body.filter(line.str.contains('"', literal=True)).collect()
    if quoted.select((line.str.count_matches('"', literal=True) % 2 == 1).any()).item():
        text = data.decode("utf-8")
        table.text = text
        # strict: a quote opened and never closed is an error, not one record to the file's end
        reader = csv.reader(io.StringIO(text), delimiter=sep, strict=True)
        start = 1
        try:
            for row_fields in reader:
                if reader.line_num <= table.header_line + 1:
                    start = reader.line_num + 1
                    continue
                if row_fields and len(row_fields) != ncols:
                    raise _ragged(table, start, len(row_fields), ncols)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise _error(
                table,
                f"cannot parse the CSV: {exc} (in the record that starts in row {start})",
                row=start,
                hint='close the quote, or write a quote inside a quoted value as ""',
            ) from None
        return
    plain = body.filter(line.is_not_null() & ~line.str.contains('"', literal=True)).select(
        "i", "line", n=line.str.count_matches(sep, literal=True) + 1
    )
    unquoted = quoted.lazy().select(
        "i", "line", n=line.str.replace_all(r'"[^"]*"', "").str.count_matches(sep, literal=True) + 1
    )
    bad = pl.concat([plain, unquoted]).filter(pl.col("n") != ncols).collect()
    bad = bad.filter(line.str.strip_chars() != "").sort("i").head(1)  # blank lines are skipped
    if bad.height:
        raise _ragged(table, int(bad["i"][0]) + 1, int(bad["n"][0]), ncols)


def _csv_frame(text: str, sep: str, labels: list[str], header_line: int) -> pl.DataFrame:
    """The records after the header, read by the csv module (empty values as nulls)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    columns: list[list[str | None]] = [[] for _ in labels]
    for fields in reader:
        if reader.line_num <= header_line + 1 or not fields:
            continue
        for col, value in zip(columns, fields, strict=True):
            col.append(value if value != "" else None)
    return pl.DataFrame(
        {h: pl.Series(h, c, dtype=pl.String) for h, c in zip(labels, columns, strict=True)}
    )


def _ragged(table: _Table, row: int, got: int, want: int) -> FileFormatError:
    return _error(
        table,
        f"the row has {got} fields but the header has {want} (separator {table.separator!r})",
        row=row,
        hint="quote values that contain the separator, or re-export the file",
    )


_FOOTER_START = re.compile(
    rb'^[\s"]*(grand totals \([\d.,\s\xc2\xa0]+ records?\)|gesamtsummen? \(|'
    rb"copyright \(c\) \d{4}(-\d{4})? salesforce)",
    re.IGNORECASE,
)


def _strip_report_footer(path: Path, data: bytes) -> bytes:
    r"""A Salesforce report's footer (a blank line, "Grand Totals (172 records)", "Copyright
    (c) 2000-2026 salesforce.com…", "Generated By: …") left out, with a note.

    Only a tail of one-cell lines starting with such a line is cut: data rows never are.

    Examples:
        >>> _strip_report_footer(Path("r.csv"), b'"Id","Name"\n"1","A"\n\n"Grand Totals (1 records)"\n'
        ...     b'"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n')
        b'"Id","Name"\n"1","A"\n'
    """
    tail_text = data[-4096:].lower()
    if not any(w in tail_text for w in (b"salesforce", b"grand totals", b"gesamtsumme")):
        return data
    lines = data.split(b"\n")
    tail = max(1, len(lines) - 12)
    start = next((k for k in range(tail, len(lines)) if _FOOTER_START.match(lines[k])), None)
    if start is None:
        return data

    def one_cell(line: bytes) -> bool:
        text = line.strip().strip(b"\r")
        if not text:
            return True
        try:
            cells = next(csv.reader([text.decode("utf-8", "replace")]))
        except (csv.Error, StopIteration):
            return False
        return sum(1 for c in cells if c.strip()) <= 1

    if not all(one_cell(line) for line in lines[start:]):
        return data
    while start > 1 and not lines[start - 1].strip(b" \t\r,;"):
        start -= 1  # the blank line (or empty cells) before the footer
    log.warning("%s: the report's footer from line %d on was left out", path, start + 1)
    return b"\n".join(lines[:start]) + b"\n"


def _read_csv(path: Path, raw: bytes) -> _Table:
    data, encoding = _decode(path, raw)
    data = _strip_report_footer(path, data)
    if not data or data.isspace():
        raise _error(
            path,
            "the file is empty",
            hint="export the records again; the file has no header and no rows",
        )
    try:
        lines = _lines(data)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower() and "utf8" not in str(exc).lower():
            raise
        data, encoding = _transcode(path, data, encoding)
        lines = _lines(data)
    nonblank = lines.filter(pl.col("line").is_not_null())
    if not nonblank.height:
        raise _error(path, "the file is empty", hint="export the records again")
    header_at = int(nonblank["i"][0])
    header_line = str(nonblank["line"][0]).rstrip("\r")
    separator = None
    # the separator may itself be a tab or a space: only the line's ends are trimmed
    said = re.fullmatch(r'\s*"?sep=(.)"?[ \r]*', header_line, flags=re.IGNORECASE)
    if said and nonblank.height > 1:
        # Excel's "sep=;" first line names the separator; the header follows it
        separator = said[1]
        header_at = int(nonblank["i"][1])
        header_line = str(nonblank["line"][1]).rstrip("\r")
    table = _Table(
        path, pl.DataFrame(), separator=separator or _sniff(header_line), header_line=header_at
    )
    try:
        header = next(csv.reader([header_line], delimiter=table.separator))
    except csv.Error as exc:
        raise _error(table, f"cannot read the header: {exc}", row=header_at + 1) from None
    labels = [h.strip() for h in header]
    # Excel's trailing empty columns ("Record ID,Name,,,"): dropped below when they hold nothing
    named = len(labels)
    while named and not labels[named - 1]:
        named -= 1
    unnamed = [f"\x00column {i + 1}" for i in range(named, len(labels))]
    labels[named:] = unnamed
    _check_header(table, labels[:named])
    _check_ragged(table, lines, data, len(labels))
    del lines
    try:
        frame = pl.read_csv(
            io.BytesIO(data),
            separator=table.separator,
            infer_schema=False,
            new_columns=labels,
            truncate_ragged_lines=False,
            skip_lines=header_at,
        )
    except pl.exceptions.PolarsError as exc:
        if table.text is None:
            raise _error(
                table,
                f"cannot parse the CSV: {str(exc).splitlines()[0]}",
                hint="check quoting and the separator, or re-export the file",
            ) from None
        # the csv module read every record already (a quote inside a value, '5" pipe'): its
        # reading stands
        frame = _csv_frame(table.text, table.separator, labels, table.header_line)
    for name in unnamed:
        filled = frame.with_row_index("_i").filter(
            pl.col(name).is_not_null() & (pl.col(name).str.strip_chars() != "")
        )
        if filled.height:
            raise _error(
                table,
                f"column {name.split()[-1]} has values but no name in the header",
                row=header_at + 2 + int(filled["_i"][0]),
                hint="name the column in the header, or delete it",
            )
    frame = frame.drop(unnamed)
    # blank lines and all-empty rows (",,,", as spreadsheets export) are dropped; the rows
    # kept remember their lines (records spanning lines are counted from the text instead)
    empty = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if empty.any():
        if table.text is None:
            table.line_numbers = [k + 2 + header_at for k, e in enumerate(empty.to_list()) if not e]
        frame = frame.filter(~empty)
    log.debug(
        "read %s: %d rows, encoding %s, separator %r", path, frame.height, encoding, table.separator
    )
    table.frame = frame
    return table


def _check_header(table: _Table, labels: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        if not label:
            raise _error(
                table,
                f"column {i + 1} of the header has no name",
                row=table.header_row,
                hint="name every column, or delete the empty one",
            )
        if label in seen:
            raise _error(
                table,
                "this column appears twice in the header",
                row=table.header_row,
                column=label,
                hint="rename or delete one of them",
            )
        seen[label] = i


# --------------------------------------------------------------------------- XLSX


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _read_xlsx(path: Path, id_keys: tuple[str, ...]) -> _Table:
    import zipfile

    import openpyxl

    try:
        # read from its bytes: a workbook saved under another name (.csv) is still one
        book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
    except (
        zipfile.BadZipFile,
        OSError,
        KeyError,
        ValueError,
        openpyxl.utils.exceptions.InvalidFileException,  # a zip named .csv, not a workbook
    ) as exc:
        raise _error(
            path,
            f"not a readable XLSX workbook ({exc})",
            hint="open it in Excel and save it again as XLSX or CSV UTF-8",
        ) from None
    try:
        sheets = []
        for sheet in book.worksheets:
            rows = enumerate(sheet.iter_rows(values_only=True), start=1)
            header: list[str] | None = None
            seen = header_at = 0
            for row_number, values in rows:  # the header: the first top row naming an id column
                if not any(v is not None and str(v).strip() for v in values):
                    continue
                seen += 1
                labels = [str(v).strip() if v is not None else "" for v in values]
                if any(_key(h) in id_keys for h in labels):
                    header, header_at = labels, row_number
                    break
                if seen >= 20:
                    break
            if seen:
                sheets.append(sheet.title)
            if header is None:
                continue
            while header and not header[-1]:
                header.pop()
            table = _Table(path, pl.DataFrame(), header_line=header_at - 1)
            _check_header(table, header)
            width = len(header)
            columns: list[list[str | None]] = [[] for _ in header]
            table.line_numbers = []
            footer_at: int | None = None  # a report's footer: one-cell rows from "Grand Totals"
            for row_number, values in rows:
                cells = [_cell(v) for v in values[:width]]
                beyond = next(
                    (i for i, v in enumerate(values[width:], start=width + 1)
                     if (c := _cell(v)) is not None and c.strip()),
                    None,
                )  # fmt: skip
                if beyond is not None:  # as a CSV's: a value under no header is not dropped
                    raise _error(
                        table,
                        f"column {beyond} has values but no name in the header",
                        row=row_number,
                        hint="name the column in the header, or delete it",
                    )
                filled = [c for c in cells if c is not None and c.strip()]
                if not filled:
                    continue
                if len(filled) == 1 and (
                    footer_at is not None or _FOOTER_START.match(filled[0].encode())
                ):
                    footer_at = row_number if footer_at is None else footer_at
                    continue
                if footer_at is not None:  # a data row after it: no footer after all
                    raise _error(
                        table,
                        f"a data row follows the report footer that starts in row {footer_at}",
                        row=row_number,
                        hint="delete the footer rows (Grand Totals, Copyright…) or re-export",
                    )
                table.line_numbers.append(row_number)
                cells += [None] * (width - len(cells))
                for col, c in zip(columns, cells, strict=True):
                    col.append(c)
            if footer_at is not None:
                log.warning("%s: the report's footer from row %d on was left out", path, footer_at)
            table.frame = pl.DataFrame(
                {h: pl.Series(h, c, dtype=pl.String) for h, c in zip(header, columns, strict=True)}
            )
            return table
    finally:
        book.close()
    if not sheets:
        raise _error(path, "the workbook is empty", hint="export the records again")
    raise _error(
        path,
        f"no sheet has an id column (sheets: {', '.join(sheets)})",
        column=id_keys[0],
        hint="put the export on a sheet whose first row is the header with the record id column, or check --as",
    )


# --------------------------------------------------------------------------- mapping


def sf_id18(expr: pl.Expr) -> pl.Expr:
    """Salesforce ids in their 18-character form (a report export writes 15; the API 18)."""
    return expr.map_elements(salesforce_id18, return_dtype=pl.String)


def _absent_from(db: Any, source: str, read: pl.DataFrame) -> int:
    """Live records of the file's objects that an earlier export file loaded and this file
    lacks (a re-import leaves them as they were: the count says so)."""
    n = 0
    for obj, ids in read.group_by("object").agg(pl.col("record_id")).rows():
        stored = {
            r[0]
            for r in db.execute(
                "select record_id from snapshots where source = ? and object = ? and "
                "archived = 0 and origin like 'file:%'",
                [source, obj],
            )
        }
        n += len(stored - set(ids))
    return n


def _id18_if_salesforce(source: str, name: str, expr: pl.Expr) -> pl.Expr:
    """A Salesforce file's id and lookup fields (``Id``, ``AccountId``, ``OwnerId``...) with
    15-character ids in their 18-character form, as the API gives them: a report's
    ``0015g000000000d`` would otherwise be written into HubSpot's ``salesforceaccountid``."""
    if source != "salesforce" or not name.endswith("Id"):
        return expr
    text = expr.cast(pl.String)
    # ids of the objects recon knows (and queues, "00G", as owners): a 15-character code of
    # another system in a field named "...Id" is left as it is
    short = text.str.contains(r"^[0-9A-Za-z]{15}$") & text.str.slice(0, 3).is_in(_ID_PREFIXES)
    return pl.when(short).then(sf_id18(text)).otherwise(expr)


_ID_PREFIXES = [*SF_ID_PREFIXES, "00G"]


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped == "").then(None).otherwise(stripped)


def _object_of_rows(table: _Table, frame: pl.DataFrame, keys: dict[str, str]) -> pl.Series:
    """For a mixed Contact/Lead file: each row's object from its Id prefix, else a type column."""
    by_prefix = (
        pl.when(pl.col("record_id").str.starts_with(_PREFIX["Contact"]))
        .then(pl.lit("Contact"))
        .when(pl.col("record_id").str.starts_with(_PREFIX["Lead"]))
        .then(pl.lit("Lead"))
    )
    others = [p for p, o in SF_ID_PREFIXES.items() if o not in ("Contact", "Lead")]
    foreign = frame.with_row_index("_i").filter(
        pl.col("record_id").str.slice(0, 3).is_in(others)
        & pl.col("record_id").str.contains(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")
    )
    if foreign.height:
        rid = foreign["record_id"][0]
        raise _error(
            table,
            f"Salesforce id {rid!r} is a {SF_ID_PREFIXES[rid[:3]]} id, not a Contact or Lead",
            row=table.row(int(foreign["_i"][0])),
            column=keys.get("id", "Id"),
            hint="a contacts file holds Contacts (003) and Leads (00Q) only",
        )
    type_col = next((keys[k] for k in _TYPE_KEYS if k in keys), None)
    if type_col is not None:
        kind = pl.col(type_col).str.to_lowercase().str.strip_chars()
        by_prefix = (
            by_prefix.when(kind == "contact")
            .then(pl.lit("Contact"))
            .when(kind == "lead")
            .then(pl.lit("Lead"))
        )
    objects = frame.select(by_prefix.otherwise(None).alias("object")).to_series()
    unknown = frame.with_row_index("_i").filter(objects.is_null()).head(1)
    if unknown.height:
        raise _error(
            table,
            f"cannot tell whether record {unknown['record_id'][0]!r} is a Contact or a Lead "
            f"(Id prefix {_PREFIX['Contact']} or {_PREFIX['Lead']} expected{', or a Contact/Lead type column' if type_col is None else ''})",
            row=table.row(int(unknown["_i"][0])),
            column=type_col or keys.get("id", "Id"),
            hint="export Contacts and Leads with their Ids, or load them with --as salesforce:Contact / salesforce:Lead",
        )
    return objects


def _data_names(
    columns: list[str], names: dict[str, str], table: _Table | None = None
) -> list[tuple[str, str]]:
    """``(column, key in data)``: each column under the API name its header stands for
    (a header no table knows keeps its own text).

    Two columns that stand for one field ("Account Name" and "NAME", "Company name" and
    "Name") are an error: which one the record holds cannot be told (the matcher and the
    plan would each read another).

    Examples:
        >>> _data_names(["Account Name", "Website", "Tier__c"], {"accountname": "Name", "website": "Website"})
        [('Account Name', 'Name'), ('Website', 'Website'), ('Tier__c', 'Tier__c')]
    """
    seen: dict[str, str] = {}
    out = []
    for c in columns:
        name = names.get(_key(c), c)
        if name in seen:
            raise _error(
                table or Path("?"),
                f"columns {seen[name]!r} and {c!r} both stand for the field {name!r}",
                row=table.header_row if table is not None else 1,
                column=c,
                hint="keep one of them (or rename the other), then load the file again",
            )
        seen[name] = c
        out.append((c, name))
    return out


#: header keys only a person (contact, lead) export has, and only a company export has
_PERSON_KEYS = ("firstname", "lastname", "email", "emailaddress", "contactid", "leadid")
_COMPANY_KEYS = ("companydomainname", "domain", "billingcity", "numberofemployees", "accountid")


def _check_object(table: _Table, kind: str, keys: dict[str, str]) -> None:
    """A file of people given as companies, or of companies given as people, is refused.

    Examples:
        >>> _check_object(_Table(Path("c.csv"), pl.DataFrame()), "hubspot:companies",
        ...     {"recordid": "Record ID", "firstname": "First Name"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        recon.errors.FileFormatError: ...looks like a contacts export (column 'First Name')...
    """
    person = next((keys[k] for k in _PERSON_KEYS if k in keys), None)
    if kind in ("hubspot:companies", "salesforce:Account") and person is not None:
        source = kind.split(":")[0]
        raise _error(
            table,
            f"this file looks like a contacts export (column {person!r}), not {kind.split(':')[1]}",
            row=table.header_row,
            column=person,
            hint=f"load it with --as {source}:contacts",
        )
    if kind == "hubspot:contacts" and person is None and "fullname" not in keys:
        company = next((keys[k] for k in _COMPANY_KEYS if k in keys), None)
        if company is not None:
            raise _error(
                table,
                f"this file looks like a companies export (column {company!r} and no first "
                "name, last name or email), not contacts",
                row=table.header_row,
                column=company,
                hint="load it with --as hubspot:companies",
            )


def _canonical(
    table: _Table,
    source: str,
    obj: str,
    *,
    lean: bool,
    names: dict[str, str] | None = None,
    provided: set[str] | None = None,
    numeric: frozenset[str] | None = None,
    options: dict[str, Options] | None = None,
    flags: frozenset[str] | None = None,
) -> pl.DataFrame:
    kind = f"{source}:{obj}"
    aliases = ALIASES[kind]
    raw = table.frame
    keys: dict[str, str] = {}
    read = {k for keys_ in aliases.values() for k in keys_} | set(_TYPE_KEYS) | set(_HS_SF_ID_KEYS)
    for label in raw.columns:
        key = _key(label)
        if key in keys and key in read:  # "Email" and "EMAIL": which one is the email?
            raise _error(
                table,
                f"columns {keys[key]!r} and {label!r} name the same field (case and "
                "punctuation are ignored)",
                row=table.header_row,
                column=label,
                hint="keep one of them, or rename the other",
            )
        keys.setdefault(key, label)
    id_label = next((keys[k] for k in aliases["record_id"] if k in keys), None)
    if id_label is None:
        raise _error(
            table,
            f"no id column for {kind}: expected one of {', '.join(repr(k) for k in aliases['record_id'])} "
            f"(any case, spaces ignored); found {', '.join(repr(c) for c in raw.columns[:12])}",
            row=table.header_row,  # the header: no column of the file is at fault
            hint="export the record id column too, or check that --as names the right system and object",
        )
    if raw.height == 0:
        raise _error(
            table,
            "the file has a header but no rows",
            row=table.header_row + 1,
            hint="export the records again",
        )
    used = raw.columns
    if lean:  # only the columns the canonical ones come from (no data JSON to fill)
        wanted = read
        used = [c for c in raw.columns if _key(c) in wanted or "hubspot" in _key(c)]
    clean = raw.lazy().select(_blank_to_null(pl.col(c)).alias(c) for c in used).collect()
    data_columns = list(clean.columns)
    id_columns = [keys[k] for k in aliases["record_id"] if k in keys]
    if kind == "salesforce:contacts" and len(id_columns) > 1:
        # a "Contacts & Leads" report: a Contact row fills "Contact ID", a Lead row "Lead ID";
        # the record's Id is whichever it fills
        id_label = " or ".join(id_columns)
        clean = clean.with_columns(pl.coalesce([pl.col(c) for c in id_columns]).alias(id_label))
        data_columns = [c for c in data_columns if c not in id_columns] + [id_label]
        names = {**(names or {}), _key(id_label): "Id"}

    def pick(canon: str) -> pl.Expr:
        present = [pl.col(keys[k]) for k in aliases.get(canon, ()) if k in keys]
        if not present:
            return pl.lit(None, dtype=pl.String)
        return present[0] if len(present) == 1 else pl.coalesce(present)

    ids = clean.select(record_id=pl.col(id_label)).with_row_index("_i")
    _check_object(table, kind, keys)
    missing = ids.filter(pl.col("record_id").is_null()).head(1)
    if missing.height:
        raise _error(
            table,
            "the record id is blank",
            row=table.row(int(missing["_i"][0])),
            column=id_label,
            hint="every row needs its record id; delete rows without one",
        )
    if source == "hubspot":  # HubSpot ids are numbers: a Salesforce export read with the wrong --as
        sf_like = ids.filter(
            pl.col("record_id").str.contains(r"^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$")
            & ~pl.col("record_id").str.contains(r"^[0-9]+$")
            & pl.col("record_id").str.slice(0, 3).is_in(list(SF_ID_PREFIXES))
        ).head(1)
        if sf_like.height:
            raise _error(
                table,
                f"record id {sf_like['record_id'][0]!r} is a Salesforce id, not a HubSpot one",
                row=table.row(int(sf_like["_i"][0])),
                column=id_label,
                hint="this looks like a Salesforce export: load it with --as salesforce:<object>",
            )
        mangled = ids.filter(~pl.col("record_id").str.contains(r"^[0-9]+$")).head(1)
        if mangled.height:  # "1.23457E+11", "12.345.678": Excel read the ids as numbers
            raise _error(
                table,
                f"record id {mangled['record_id'][0]!r} is not a HubSpot id (digits only)",
                row=table.row(int(mangled["_i"][0])),
                column=id_label,
                hint="a spreadsheet reformatted the ids: format the column as Text, or export "
                "again from HubSpot and load that file unopened",
            )
    if source == "salesforce" and obj in _PREFIX:
        wrong = ids.filter(~pl.col("record_id").str.starts_with(_PREFIX[obj])).head(1)
        if wrong.height:
            rid = wrong["record_id"][0]
            other = SF_ID_PREFIXES.get(rid[:3])
            raise _error(
                table,
                f"Salesforce id {rid!r} does not start with {_PREFIX[obj]}, the prefix of {obj}"
                + (f" (it is {'an' if other[:1] in 'AEIOU' else 'a'} {other} id)" if other else ""),
                row=table.row(int(wrong["_i"][0])),
                column=id_label,
                hint=f"load this file with the --as that names its object{f' (salesforce:{other})' if other in ('Account', 'Contact', 'Lead') else ''}",
            )

    if source == "salesforce":  # one record, whether its id was written with 15 or 18
        ids = ids.with_columns(record_id=sf_id18(pl.col("record_id")))
    unique = ids["record_id"].n_unique() == ids.height
    dup = ids.head(0) if unique else ids.filter(pl.col("record_id").is_duplicated()).head(2)
    if dup.height:
        raise _error(
            table,
            f"record id {dup['record_id'][0]!r} appears more than once (again in row {table.row(int(dup['_i'][1]))})",
            row=table.row(int(dup["_i"][0])),
            column=id_label,
            hint="each record may appear once: remove the repeated rows or export again",
        )
    exprs: dict[str, pl.Expr] = {c: pick(c) for c in RECORD_COLUMNS if c in aliases}
    if provided is not None:  # the canonical columns some column of the file gives
        provided.update(c for c, ks in aliases.items() if any(k in keys for k in ks))
        if provided & {"first_name", "last_name"}:
            provided.add("name")
        if _ext_columns(keys, source, obj):
            provided.add("external_ids")
    exprs["record_id"] = pl.col(id_label)
    if source == "salesforce":  # one record under one id, whether exported with 15 or 18
        exprs["record_id"] = sf_id18(pl.col(id_label))
        for ref in ("account_id", "owner_id"):
            if ref in exprs:
                exprs[ref] = sf_id18(exprs[ref])
    if "first_name" in aliases:  # people: the full name from its parts when no name column
        full = pl.concat_str(
            [pick("first_name"), pick("last_name")], separator=" ", ignore_nulls=True
        )
        exprs["name"] = pl.coalesce(pick("name"), pl.when(full == "").then(None).otherwise(full))
    if kind == "hubspot:contacts":  # "Associated Company IDs" holds a list: the first is primary
        exprs["account_id"] = (
            pick("account_id")
            .str.split(";")
            .list.first()
            .str.split(",")
            .list.first()
            .str.strip_chars()
        )
    if (kind in ("salesforce:Account", "hubspot:companies")) and "website" in exprs:
        # as a pull stores it: the domain column, else the website's host (a file's new
        # website makes a new domain; the stored one would be stale)
        site = exprs["website"]
        exprs["domain"] = pl.coalesce(
            exprs.get("domain", pl.lit(None, dtype=pl.String)).str.strip_chars().str.to_lowercase(),
            site.map_elements(domain_of, return_dtype=pl.String, skip_nulls=True),
        )
        if provided is not None and "website" in provided:
            provided.add("domain")
    ext = _external_ids(keys, source, obj)
    for canon in ("created_at", "modified_at"):
        ts = pick(canon)
        if lean:
            exprs[canon] = ts
            continue
        values = clean.select(ts.alias(canon)).to_series()
        times, bad, note = file_times(values)
        label = next((keys[k] for k in aliases.get(canon, ()) if k in keys), canon)
        if bad is not None:
            raise _error(
                table,
                f"{values[bad]!r} is not a date and time recon reads",
                row=table.row(bad),
                column=label,
                hint="export dates as ISO 8601 (2026-11-30 14:05), or as the CRM writes them "
                "(30.11.2026 14:05, 30/11/2026 14:05, 11/30/2026, 2:05 PM, 2026/11/30 14:05)",
            )
        if note:
            log.warning("%s, column %r: %s", table.path, label, note)
        exprs[canon] = pl.lit(times)
    exprs["archived"] = (
        pick("archived").str.to_lowercase().is_in(list(TRUE_WORDS)).fill_null(False).cast(pl.Int8)
    )
    data_names = [] if lean else _data_names(data_columns, names or {}, table)
    number_columns = {n for _c, n in data_names if n in (numeric or ())}
    # a file's numbers in its own locale: "1.200" is twelve hundred where "15.488.000,00" is
    # written too (the plan would read 1.2 and write it)
    comma = bool(number_columns) and decimal_comma(
        clean, [c for c, n in data_names if n in number_columns], table.separator
    )
    # a picklist's options as the API gives them: an export writes their labels; a checkbox
    # as "true"/"false" (a report writes Yes/No or 1/0)
    options = options or {}
    picked = {c: option_value(pl.col(c), options[n]) for c, n in data_names if n in options}
    picked.update(
        {
            c: bool_value(pl.col(c))
            for c, n in data_names
            if (n in (flags or ()) or (flags is not None and is_opt_out(n))) and c not in picked
        }
    )
    # computed once: counted for the log, then stored
    converted = clean.select(*(e.alias(c) for c, e in picked.items()))
    _note_labels(table, clean, converted)
    out = (
        clean.lazy()
        .select(
            pl.lit(source).alias("source"),
            pl.lit(obj).alias("object"),
            *(
                (exprs[c] if c in exprs else pl.lit(None, dtype=pl.String)).cast(pl.String).alias(c)
                for c in RECORD_COLUMNS
                if c not in ("source", "object", "external_ids", "archived", "data")
            ),
            ext.alias("external_ids"),
            exprs["archived"].alias("archived"),
            (
                pl.struct(
                    [
                        (
                            _point_decimal(pl.col(c))
                            if n in number_columns and comma
                            else pl.lit(converted[c])
                            if c in picked
                            else _id18_if_salesforce(source, n, pl.col(c))
                        ).alias(n)
                        for c, n in data_names
                    ]
                ).struct.json_encode()
                if not lean
                else pl.lit(None, dtype=pl.String)
            ).alias("data"),
        )
        .collect()
    )
    if kind == "salesforce:contacts":
        out = out.with_columns(
            _object_of_rows(table, clean.with_columns(record_id=pl.col(id_label)), keys)
        )
    return out.select(RECORD_COLUMNS)


def _ext_columns(keys: dict[str, str], source: str, obj: str = "") -> list[str]:
    """The file's columns holding the other system's id, first present first."""
    if source == "hubspot":
        order = (
            ("salesforcecontactid", "salesforceleadid", "salesforceobjectid")
            if obj == "contacts"
            else _HS_SF_ID_KEYS
        )
        return [keys[k] for k in order if k in keys]
    return [label for k, label in keys.items() if "hubspot" in k and re.search(r"id(c)?$", k)]


def _external_ids(keys: dict[str, str], source: str, obj: str = "") -> pl.Expr:
    """Stored cross-system ids as JSON: ``{"salesforce_id": ...}`` or ``{"hubspot_id": ...}``.

    A HubSpot contact's Salesforce id is its Contact's or Lead's, a company's its Account's
    (as the API pull stores them); Salesforce ids in their 18-character form."""
    cols = _ext_columns(keys, source, obj)
    name = "salesforce_id" if source == "hubspot" else "hubspot_id"
    if not cols:
        return pl.lit(None, dtype=pl.String)
    value = pl.coalesce([_blank_to_null(pl.col(c)) for c in cols]).str.replace_all(r'["\\]', "")
    if source == "hubspot":
        value = sf_id18(value)
    return (
        pl.when(value.is_not_null())
        .then(pl.format('{{"{}":"{}"}}', pl.lit(name), value))
        .otherwise(None)
    )


# --------------------------------------------------------------------------- public API


def check_file(path: str | Path) -> None:
    """Refuse a path that names no export file to read (missing, a folder, not readable)
    before anything is done with it (``recon pull --file`` checks it before it makes the store).

    Raises:
        FileFormatError: naming the path and what to do.

    Examples:
        >>> check_file("no-such-export.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        recon.errors.FileFormatError: file no-such-export.csv: no such file (check the path)
    """
    path = Path(path)
    if path.is_dir():
        raise _error(path, "is a folder, not an export file", hint="name the export file itself")
    if not path.is_file():
        raise _error(path, "no such file", hint="check the path")
    if not os.access(path, os.R_OK):
        raise _error(
            path, "cannot be read (Permission denied)", hint="check the file and its access"
        )


def read_export(
    path: str | Path,
    as_: str,
    *,
    lean: bool = False,
    schemas: dict[str, list[dict[str, Any]]] | None = None,
    provided: set[str] | None = None,
) -> pl.DataFrame:
    """Read one CRM export file (CSV or XLSX) as canonical records.

    Args:
        path: the export file.
        as_: what it holds, one of :data:`AS_CHOICES` (``salesforce:contacts``: Contacts and
            Leads, each row's object from its Id prefix or a type column).
        lean: only what matching reads (``recon match-files``): ``data`` stays null and
            ``created_at``/``modified_at`` keep the text as exported instead of being
            normalised to ISO-8601 UTC (both cost more than the rest of the read).
        schemas: the stored schema's fields per object, to store each field under its API
            name when the file names it by label (else the standard labels are known;
            :mod:`recon.sources.file_labels`).
        provided: filled with the canonical columns some column of the file gives (the
            others are null for want of a column, not blank in the CRM).

    Returns:
        A frame with :data:`~recon.sources.base.RECORD_COLUMNS`, one row per record.

    Raises:
        FileFormatError: the file is missing, empty, undecodable, ragged, lacks the id column,
            repeats an id, holds ids of another Salesforce object, or ``as_`` is unknown.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "accounts.csv"
        >>> _ = p.write_text("ID,NAME,WEBSITE\\n001A,Acme Inc,acme.com\\n")
        >>> read_export(p, "salesforce:Account").select("object", "record_id", "name").row(0)
        ('Account', '001A', 'Acme Inc')
    """
    path = Path(path)
    source, obj = parse_as(as_, path)
    check_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _error(
            path, f"cannot be read ({exc.strerror or exc})", hint="check the file and its access"
        ) from None
    if not raw or raw.isspace():
        raise _error(
            path,
            "the file is empty",
            hint="export the records again; the file has no header and no rows",
        )
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise _error(
            path, "this is an old binary Excel (.xls) file", hint="save it as XLSX or CSV UTF-8"
        )
    if raw.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm"):
        table = _read_xlsx(path, ALIASES[f"{source}:{obj}"]["record_id"])
    else:
        table = _read_csv(path, raw)
    names = None if lean else field_names(source, obj, schemas)
    numeric = None if lean else number_fields(source, obj, schemas)
    options = None if lean else option_fields(source, obj, schemas)
    flags = None if lean else bool_fields(source, obj, schemas)
    return _canonical(
        table,
        source,
        obj,
        lean=lean,
        names=names,
        provided=provided,
        numeric=numeric,
        options=options,
        flags=flags,
    )


def option_value(expr: pl.Expr, options: Options) -> pl.Expr:
    """A picklist column's values as the API writes them: an option's label becomes its
    internal value (``Marketing Qualified Lead`` -> ``marketingqualifiedlead``), each of a
    multi-select's ``;``-separated options alike; values and unknown text stay as they are.

    Examples:
        >>> o = Options(frozenset({"a_1", "b_2"}), {"alpha": "a_1", "beta": "b_2"}, multi=True)
        >>> pl.select(option_value(pl.lit(pl.Series(["Alpha; beta", "a_1", "Gamma", None])), o)).to_series().to_list()
        ['a_1;b_2', 'a_1', 'Gamma', None]
    """
    labels = {k: v for k, v in options.by_label.items() if k}

    def one(text: pl.Expr) -> pl.Expr:
        if options.multi:
            text = text.str.strip_chars()
        by_label = (
            text.str.strip_chars()
            .str.to_lowercase()
            .replace_strict(labels, default=None, return_dtype=pl.String)
        )
        return (
            pl.when(text.is_in(list(options.values)))
            .then(text)
            .otherwise(pl.coalesce(by_label, text))
        )

    if not options.multi:
        return one(expr)
    parts = expr.str.split(";").list.eval(one(pl.element()).filter(pl.element() != ""))
    return pl.when(expr.is_null()).then(None).otherwise(parts.list.join(";"))


def _note_labels(table: _Table, clean: pl.DataFrame, converted: pl.DataFrame) -> None:
    """Log how many of a file's picklist and checkbox values (``clean``'s columns) were
    rewritten as the API writes them (``converted``'s)."""
    for column in converted.columns:
        n = int((converted[column] != clean[column]).fill_null(False).sum())
        if n:
            log.info(
                "%s, column %r: %d value(s) stored as the API writes them (option labels as "
                "internal values, checkboxes as true/false)",
                table.path,
                column,
                n,
            )


#: schema types whose values are numbers (HubSpot ``number``; Salesforce's numeric types)
_NUMBER_TYPES = frozenset({"number", "double", "currency", "int", "integer", "long", "percent"})


def number_fields(
    source: str, obj: str, schemas: dict[str, list[dict[str, Any]]] | None
) -> frozenset[str]:
    """API names of the number fields of a file's object: the default mappings' numbers, and
    the stored schema's.

    Examples:
        >>> sorted(number_fields("salesforce", "Account", None))
        ['AnnualRevenue', 'NumberOfEmployees']
    """
    return _fields_of_kind(source, obj, schemas, "number", lambda f: _spec_type(f) in _NUMBER_TYPES)


def bool_fields(
    source: str, obj: str, schemas: dict[str, list[dict[str, Any]]] | None
) -> frozenset[str]:
    """API names of the checkbox fields of a file's object: the default mappings', and the
    stored schema's (Salesforce ``boolean``, HubSpot ``bool`` or single checkbox); the consent
    flags (``DoNotCall``...) are read as checkboxes whatever the schema says.

    Examples:
        >>> sorted(bool_fields("salesforce", "Lead", None))
        ['HasOptedOutOfEmail']
    """
    return _fields_of_kind(
        source,
        obj,
        schemas,
        "bool",
        lambda f: (
            _spec_type(f) in ("boolean", "bool")
            or str(f.get("fieldType") or "") == "booleancheckbox"
        ),
    )


def _spec_type(field: dict[str, Any]) -> str:
    return str(field.get("type") or "").lower()


def _fields_of_kind(
    source: str,
    obj: str,
    schemas: dict[str, list[dict[str, Any]]] | None,
    kind: str,
    of_kind: Callable[[dict[str, Any]], bool],
) -> frozenset[str]:
    """API names of a file's object's fields the default mappings give ``kind``, and the
    stored schema's fields ``of_kind`` says are."""
    from ..mapping import default_mappings

    objects = objects_of(source, obj)
    out = set()
    for m in default_mappings():
        if m.kind != kind:
            continue
        if source == "hubspot" and m.object == obj:
            out.add(m.hubspot)
        elif source == "salesforce" and m.salesforce_object in objects and not m.derived:
            out.add(m.salesforce)
    for one in objects:
        for f in (schemas or {}).get(one) or []:
            if isinstance(f, dict) and of_kind(f):
                out.add(str(f.get("name")))
    return frozenset(out)


def bool_value(expr: pl.Expr) -> pl.Expr:
    """A checkbox column as the API writes it: ``Yes``/``1``/``TRUE`` -> ``true``, ``No``/``0``
    -> ``false``; other text as it is.

    Examples:
        >>> pl.select(bool_value(pl.lit(pl.Series(["Yes", "0", "TRUE", "maybe", None])))).to_series().to_list()
        ['true', 'false', 'true', 'maybe', None]
    """
    key = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    words = {**dict.fromkeys(TRUE_WORDS, "true"), **dict.fromkeys(FALSE_WORDS, "false")}
    return pl.coalesce(key.replace_strict(words, default=None, return_dtype=pl.String), expr)


#: number texts only a decimal comma reads (1.234,5; 12,50; 2.500.000), and only a decimal point
_COMMA_DECIMAL = r"^[+-]?(\d{1,3}(\.\d{3})+,\d+|\d+,(\d{1,2}|\d{4,})|\d{1,3}(\.\d{3}){2,})$"
_POINT_DECIMAL = r"^[+-]?(\d{1,3}(,\d{3})+(\.\d+)?|\d+\.(\d{1,2}|\d{4,}))$"
_COMMA_NUMBER = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"


def decimal_comma(frame: pl.DataFrame, columns: list[str], separator: str) -> bool:
    """Whether a file's numbers are written with a decimal comma (``1.200`` = twelve hundred).

    Read from the number columns: a value only a decimal comma reads and none only a decimal
    point (or comma-grouped thousands, ``1,200``) reads; with no such value, a ``;``-separated
    file (European Excel's) says so.

    Examples:
        >>> f = pl.DataFrame({"n": ["1.200", "15.488.000,00"]})
        >>> decimal_comma(f, ["n"], ","), decimal_comma(f[:1], ["n"], ","), decimal_comma(f[:1], ["n"], ";")
        (True, False, True)
        >>> decimal_comma(pl.DataFrame({"n": ["1,200", "350"]}), ["n"], ";")  # a US file with ;
        False
    """
    comma = point = 0
    for c in columns:
        text = frame[c].cast(pl.String).str.strip_chars().str.replace_all(r"[\s\u00a0]", "")
        comma += int(text.str.contains(_COMMA_DECIMAL).sum() or 0)
        point += int(text.str.contains(_POINT_DECIMAL).sum() or 0)
    if comma or point:
        return comma > 0 and point == 0
    return separator == ";"


def _point_decimal(expr: pl.Expr) -> pl.Expr:
    """Numbers written with a decimal comma, as the API writes them (``1.200,5`` -> ``1200.5``);
    other text as it is."""
    text = expr.cast(pl.String).str.strip_chars().str.replace_all(r"[\s\u00a0]", "")
    fixed = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    return pl.when(text.str.contains(_COMMA_NUMBER)).then(fixed).otherwise(expr)


_KEY = ("source", "object", "record_id")


def _stored_rows(
    db: sqlite_utils.Database, frame: pl.DataFrame, cols: list[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(object, record id): {col: value}}`` of the frame's records the store holds (``cols``
    empty: which it holds), looked up by primary key, a chunk at a time."""
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    if frame.is_empty():
        return stored
    source = frame["source"][0]
    by_object: dict[str, list[str]] = {}
    for obj, rid in frame.select("object", "record_id").rows():
        by_object.setdefault(obj, []).append(rid)
    picked = "".join(f", {c}" for c in cols)
    for obj, rids in by_object.items():
        for i in range(0, len(rids), 500):
            chunk = rids[i : i + 500]
            for row in db.execute(
                f"select object, record_id{picked} from snapshots where source = ? "
                f"and object = ? and record_id in ({','.join('?' * len(chunk))})",
                [source, obj, *chunk],
            ).fetchall():
                stored[(row[0], row[1])] = dict(zip(cols, row[2:], strict=True))
    return stored


def _with_stored(
    db: sqlite_utils.Database, frame: pl.DataFrame, provided: set[str] | None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """The file's rows over what the store holds of the same records.

    A record the store holds with a modification time is left alone when the file's row is
    older (``older``) or has no time to tell (``no_time``). Otherwise the file's fields
    replace the stored ones and the fields the file has no column for keep their stored
    values (a file of a few columns does not blank the rest); a blank cell is a blank value.

    Returns:
        ``(rows to write, counts of rows left alone by why)``.
    """
    left = {"older": 0, "no_time": 0}
    if frame.is_empty():
        return frame, left
    cols = [c for c in RECORD_COLUMNS if c not in ("source", "object", "record_id")]
    stored = _stored_rows(db, frame, cols)
    if not stored:
        return frame, left
    # archived always from the file (a row in it is not deleted; scope marks it)
    keep = [
        c
        for c in cols
        if provided is not None and c not in provided and c not in ("data", "archived")
    ]
    rows = []
    for row in frame.iter_rows(named=True):
        old = stored.get((row["object"], row["record_id"]))
        if old is not None:
            if old["modified_at"] and not row["modified_at"]:
                left["no_time"] += 1
                continue
            if old["modified_at"] and row["modified_at"] < old["modified_at"]:
                left["older"] += 1
                continue
            for c in keep:
                row[c] = old[c]
            if old["data"] and row["data"]:
                # a pull's field times stay: each dates the value it holds (a value the file
                # changed no longer matches it, so it no longer counts: Rec.field_time)
                stored_data, file_data = json.loads(old["data"]), json.loads(row["data"])
                row["data"] = json.dumps(
                    {**stored_data, **file_data}, ensure_ascii=False, separators=(",", ":")
                )
        rows.append(row)
    return pl.DataFrame(rows, schema=frame.schema, orient="row"), left


def _upsert_snapshots(
    db: sqlite_utils.Database, frame: pl.DataFrame, *, run_id: str, origin: str
) -> int:
    """Insert or replace the frame's rows in ``snapshots`` in one transaction (one
    executemany); how many rows were written.

    A stored row is left as it is when its content is the same (it keeps the run that last
    changed it) or when it is newer than the file's (an old export never overwrites what a
    later pull read: the pull would not read the record again until it changes); see
    :func:`_with_stored` for rows merged with what the store holds.
    """
    from ..store import transaction

    if frame.is_empty():
        return 0
    full = frame.with_columns(
        # of the fields, not their spelling: a row merged with the stored one (keys in
        # another order) and the same row read again hash alike
        content_hash=pl.Series(
            [stable_id(json.loads(d) if d else d) for d in frame["data"].to_list()],
            dtype=pl.String,
        ),
        run_id=pl.lit(run_id),
        origin=pl.lit(origin),
    )
    cols = full.columns
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in _KEY)
    sql = (
        f"insert into snapshots ({', '.join(cols)}) values ({', '.join('?' for _ in cols)}) "
        f"on conflict (source, object, record_id) do update set {updates} "
        "where (excluded.content_hash is not snapshots.content_hash "
        # into or out of the scope: the same content, another flag
        f"or (excluded.archived = {OUT_OF_SCOPE}) != (snapshots.archived = {OUT_OF_SCOPE})) "
        "and (snapshots.modified_at is null or excluded.modified_at is null "
        "or excluded.modified_at >= snapshots.modified_at)"
    )
    with transaction(db):
        before = db.conn.total_changes
        db.conn.executemany(sql, full.iter_rows())
        return int(db.conn.total_changes - before)


def _scope_keys(
    db: sqlite_utils.Database, frame: pl.DataFrame, cfg: ReconConfig
) -> tuple[dict[str, dict[str, str | None]], list[str]]:
    """Per object, the file column each scoping filter's field is read from.

    A field is found by its API name, or by its label in the stored schema (a HubSpot
    export writes "Lead Status" for ``hs_lead_status``), compared as headers are (case,
    spaces and punctuation ignored), else in the canonical columns. A field the file has no
    column for maps to None: its filter cannot be judged, and a note says so.
    """
    if frame.is_empty():
        return {}, []
    source = frame["source"][0]
    header = {_key(k): k for k in json.loads(frame["data"][0])}
    out: dict[str, dict[str, str | None]] = {}
    notes: list[str] = []
    for obj in frame["object"].unique().sort().to_list():
        filters = [f for f in cfg.pull.filters if f.source == source and f.object == obj]
        if not filters:
            continue
        row = db.execute(
            "select fields from schemas where source = ? and object = ?", [source, obj]
        ).fetchone()
        labels = {f.get("name"): f.get("label") for f in json.loads(row[0])} if row else {}
        keys: dict[str, str | None] = {}
        for f in filters:
            label = labels.get(f.field)
            found = header.get(_key(f.field)) or (header.get(_key(label)) if label else None)
            if found is None and f.field in RECORD_COLUMNS:
                found = f.field  # not a column of the file: read from the canonical row
            if found is None:
                notes.append(
                    f"the file has no column for the filter on {source} {obj} {f.field} "
                    f"({f.op}); its rows were not filtered on it"
                )
            keys[f.field] = found
        out[obj] = keys
    return out, notes


def _split_scope(
    db: sqlite_utils.Database, frame: pl.DataFrame, cfg: ReconConfig
) -> tuple[pl.DataFrame, int, list[str]]:
    """The file's rows as pull would store them under ``[pull]`` scoping: rows out of scope
    are dropped, or kept marked ``archived = 2`` when the store has them already.

    Returns:
        ``(rows to store, rows dropped, notes)``.
    """
    keys, notes = _scope_keys(db, frame, cfg)
    rows = frame.to_dicts()
    mask = [in_scope(r, cfg, keys.get(r["object"], {})) for r in rows]
    if all(mask):
        return frame, 0, notes
    inside = pl.Series(mask, dtype=pl.Boolean)
    out = frame.filter(~inside)
    stored = _stored_rows(db, out, [])
    pairs = out.select("object", "record_id").rows()
    known = pl.Series([p in stored for p in pairs], dtype=pl.Boolean)
    marked = out.filter(known).with_columns(
        archived=pl.when(pl.col("archived") == 1).then(1).otherwise(OUT_OF_SCOPE)
    )
    kept = pl.concat([frame.filter(inside), marked.cast(frame.schema)], how="vertical")
    return kept, out.height - marked.height, notes


def _drop_future_times(frame: pl.DataFrame) -> tuple[pl.DataFrame, int, str | None]:
    """Modification times later than now (beyond ten minutes of clock skew) as null: a
    report writes local time without a zone, and such a time must not make an old export
    look newer than what a pull read. Returns the frame, how many times were dropped and
    the latest of them.

    Examples:
        >>> f = pl.DataFrame({"modified_at": ["2020-01-01T00:00:00.000Z", "2999-01-01T00:00:00.000Z"]})
        >>> kept, n, latest = _drop_future_times(f)
        >>> kept["modified_at"].to_list(), n, latest
        (['2020-01-01T00:00:00.000Z', None], 1, '2999-01-01T00:00:00.000Z')
    """
    from datetime import UTC, datetime, timedelta

    if frame.is_empty():
        return frame, 0, None
    limit = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ahead = (pl.col("modified_at") > limit).fill_null(False)
    n = int(frame.select(ahead.sum()).item())
    if not n:
        return frame, 0, None
    latest = frame.select(pl.col("modified_at").filter(ahead).max()).item()
    kept = frame.with_columns(modified_at=pl.when(ahead).then(None).otherwise("modified_at"))
    return kept, n, latest


def _future_note(ahead: int, latest: str | None) -> str:
    """What to say of ``ahead`` rows modified after now, the latest at ``latest``: within a
    time zone's offset of now (14 hours at most) a report's local time read as UTC, beyond it
    a date read the wrong way round or mistyped.

    Examples:
        >>> print(_future_note(2, "2999-01-01T00:00:00.000Z"))
        2 row(s) were last modified after today (the latest 2999-01-01T00:00:00.000Z): those times were not used; check the file's modification dates (a day and month read the wrong way round?)
    """
    from datetime import UTC, datetime, timedelta

    stamp = parse_ts(latest) if latest else None
    if stamp is not None and stamp <= datetime.now(UTC) + timedelta(hours=14, minutes=10):
        return (
            f"{ahead:,} row(s) were last modified in the future by the file's clock (a "
            "report's local time read as UTC?): those times were not used; export times in "
            "UTC or with their offset"
        )
    return (
        f"{ahead:,} row(s) were last modified after today (the latest {latest}): those times "
        "were not used; check the file's modification dates (a day and month read the wrong "
        "way round?)"
    )


def _stored_schemas(
    db: sqlite_utils.Database, source: str, obj: str
) -> dict[str, list[dict[str, Any]]]:
    """The stored schema's fields of the objects a file of ``obj`` holds."""
    out: dict[str, list[dict[str, Any]]] = {}
    for one in objects_of(source, obj):
        row = db.execute(
            "select fields from schemas where source = ? and object = ?", [source, one]
        ).fetchone()
        fields = json.loads(row[0]) if row and row[0] else []
        if isinstance(fields, list):
            out[one] = fields
    return out


def load_export(
    db: sqlite_utils.Database,
    path: str | Path,
    as_: str,
    *,
    run_id: str | None = None,
    stats: dict[str, Any] | None = None,
    cfg: ReconConfig | None = None,
) -> str:
    """Store an export file's records as snapshots of its source and object, in one transaction.

    ``stats`` receives the file's counts: ``records``, ``written`` (new or changed rows; a
    row whose stored version is newer than the file's is left alone), ``objects`` and
    ``out_of_scope`` (rows the scoping filters leave out, not stored).

    With ``cfg``, its scoping filters (``[pull] filters``, ``contacts_require_email``) apply as
    they do to a pull: a row out of scope is not stored, or, stored before, is marked
    ``archived = 2``. Filter fields are found by API name or by the stored schema's label.

    Each row gets ``origin = "file:<path>"`` and the run id of a ``pull`` run whose config
    names the file. With ``run_id`` naming a running run (a ``recon pull`` already started),
    the rows join it; otherwise a new run (with that id, if given) is started and finished here.

    Returns:
        The run id.

    Raises:
        FileFormatError: see :func:`read_export`; nothing is stored then.

    Examples:
        >>> import tempfile, pathlib
        >>> from recon.store import open_store
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "companies.csv"
        >>> _ = p.write_text("Record ID,Company name\\n101,Acme\\n")
        >>> db = open_store(":memory:")
        >>> run = load_export(db, p, "hubspot:companies")
        >>> db.execute("select record_id, name from snapshots").fetchall()
        [('101', 'Acme')]
    """
    from ..store import finish_run, start_run

    path = Path(path)
    source, obj = parse_as(as_, path)
    own_run = (
        run_id is None or not db.execute("select 1 from runs where run_id = ?", [run_id]).fetchone()
    )
    config = {"file": str(path), "as": as_, "source": source, "object": obj}
    rid = start_run(db, "pull", config=config, run_id=run_id) if own_run else str(run_id)
    try:
        provided: set[str] = set()
        read = frame = read_export(
            path, as_, schemas=_stored_schemas(db, source, obj), provided=provided
        )
        read, ahead, latest = _drop_future_times(read)
        # merged with what the store holds first: the scope is judged on the whole record
        # (a file without an email column says nothing of a stored contact's email)
        frame, left = _with_stored(db, read, provided)
        dropped, notes = 0, list[str]()
        if ahead:
            notes.append(_future_note(ahead, latest))
        if cfg is not None:
            frame, dropped, scope_notes = _split_scope(db, frame, cfg)
            notes += scope_notes
        if left["older"]:
            notes.append(
                f"{left['older']:,} row(s) left alone: the store holds a newer version of "
                "the record (from a later pull or export)"
            )
        if left["no_time"]:
            notes.append(
                f"{left['no_time']:,} row(s) left alone: the store holds the record with a "
                "modification time and the file's row has none to show it is newer (export "
                "the last-modified column too, in a format recon reads)"
            )
        absent = _absent_from(db, source, read)
        if absent:
            notes.append(
                f"{absent:,} record(s) an earlier export file loaded are not in this one: they "
                "stay in the store as they were (deleted in the CRM? a filtered export?); "
                "load a whole export, or `recon pull` to read deletions from the CRM"
            )
        for note in notes:
            log.warning("%s: %s", path, note)
        written = _upsert_snapshots(db, frame, run_id=rid, origin=f"file:{path}")
    except Exception as exc:
        if own_run:
            finish_run(db, rid, status="failed", error=str(exc))
        raise
    counts = read.group_by("object").len().sort("object").rows()
    summary = {
        "file": str(path),
        "records": read.height,
        "written": written,
        "out_of_scope": dropped,
        "older": left["older"],
        "no_time": left["no_time"],
        "absent": absent,
        "objects": {o: n for o, n in counts},
    }
    if stats is not None:
        stats.update(summary)
    if own_run:
        finish_run(db, rid, summary=summary)
    log.info("loaded %d records from %s as %s (run %s)", read.height, path, as_, rid)
    return rid
