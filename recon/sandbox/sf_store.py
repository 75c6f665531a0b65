"""Tables and record storage of the Salesforce emulator.

One table per sObject type (``sf_account``, ``sf_contact``...), one column per
describe field, named as in Salesforce (SQLite column names are case-insensitive,
like SOQL's). Text columns use ``COLLATE NOCASE`` (SOQL compares text
case-insensitively), except ids. ``(SystemModstamp, Id)`` is indexed on every
object, so incremental pulls over 200k rows stay fast.

Timestamps have whole-second precision, as Salesforce prints them
(``...:05.000+0000``); a change always moves a record's ``SystemModstamp`` forward
by at least one second, so ``If-Unmodified-Since`` (an HTTP date, in seconds)
always sees it.

Examples:
    >>> from recon.sandbox.state import SandboxState
    >>> state = SandboxState(":memory:")
    >>> [rid] = load_records(state, "Account", [{"Name": "Acme"}])
    >>> rid[:3], len(rid)
    ('001', 18)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .sf_common import (
    SfError,
    api_datetime,
    make_id,
    normalize_id,
    parse_datetime,
    store_datetime,
    table_name,
)
from .sf_describe import OBJECTS, FieldSpec, ObjectSpec, get_object, object_for_id

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = [
    "API_USER_ID",
    "DEFAULT_CAMPAIGNS",
    "DEFAULT_USERS",
    "admin_edit",
    "api_record",
    "format_value",
    "init_schema",
    "load_records",
    "next_ids",
    "now_stamp",
    "to_storage",
]

_TS0 = "2020-01-01T00:00:00.000Z"

#: the built-in users (owners): (first name, last name, email); the first is the API user
DEFAULT_USERS: tuple[tuple[str, str, str], ...] = (
    ("Integration", "User", "integration@sandbox.recon.test"),
    ("Maria", "Schmidt", "maria.schmidt@sandbox.recon.test"),
    ("James", "Okafor", "james.okafor@sandbox.recon.test"),
    ("Priya", "Raman", "priya.raman@sandbox.recon.test"),
    ("Tom", "Becker", "tom.becker@sandbox.recon.test"),
)
#: the built-in campaigns: (name, type, status, start date)
DEFAULT_CAMPAIGNS: tuple[tuple[str, str, str, str], ...] = (
    ("Spring Webinar Series", "Webinar", "Completed", "2024-03-01"),
    ("Trade Show Berlin", "Trade Show", "Planned", "2025-10-14"),
    ("Newsletter Signups", "Email", "In Progress", "2023-01-01"),
)
API_USER_ID = make_id("005", 1)
#: the user whose edits :func:`admin_edit` simulates
CRM_USER_ID = make_id("005", 2)


def _column_sql(f: FieldSpec) -> str:
    t = f.type
    if t in ("boolean", "int"):
        kind = "INTEGER"
    elif t in ("double", "currency", "percent"):
        kind = "REAL"
    elif t in ("id", "reference", "date", "datetime"):
        kind = "TEXT"
    else:
        kind = "TEXT COLLATE NOCASE"
    return f'"{f.name}" {kind}' + (" PRIMARY KEY" if f.name == "Id" else "")


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the Salesforce tables (idempotent) and the built-in users.

    Examples:
        >>> conn = sqlite3.connect(":memory:")
        >>> init_schema(conn)
        >>> conn.execute("SELECT count(*) FROM sf_user").fetchone()[0]
        5
    """
    for spec in OBJECTS.values():
        table = table_name(spec.name)
        cols = ", ".join(_column_sql(f) for f in spec.fields)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")
        # IsDeleted in the index makes "query" (not queryAll) pulls index-only
        extra = ', "IsDeleted"' if spec.field("IsDeleted") is not None else ""
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {table}_modstamp "
            f'ON {table} ("SystemModstamp", "Id"{extra})'
        )
        for name in ("Recon_Key__c", "Email", "AccountId", "MasterRecordId", "CampaignId"):
            if spec.field(name) is not None:
                conn.execute(
                    f'CREATE INDEX IF NOT EXISTS {table}_{name.lower()} ON {table} ("{name}")'
                )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sf_seq (object TEXT PRIMARY KEY, next INTEGER NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS sf_bulk_jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL)"
    )
    for n, (first, last, email) in enumerate(DEFAULT_USERS, start=1):
        conn.execute(
            'INSERT OR IGNORE INTO sf_user ("Id", "Username", "FirstName", "LastName", "Name", '
            '"Alias", "Email", "IsActive", "CreatedDate", "CreatedById", "LastModifiedDate", '
            '"LastModifiedById", "SystemModstamp") VALUES (?,?,?,?,?,?,?,1,?,?,?,?,?)',
            (
                make_id("005", n),
                email,
                first,
                last,
                f"{first} {last}",
                (first[0] + last)[:8].lower(),
                email,
                _TS0,
                API_USER_ID,
                _TS0,
                API_USER_ID,
                _TS0,
            ),
        )
    conn.execute(
        "INSERT OR IGNORE INTO sf_seq (object, next) VALUES ('User', ?)", (len(DEFAULT_USERS) + 1,)
    )
    for n, (name, kind, status, start) in enumerate(DEFAULT_CAMPAIGNS, start=1):
        conn.execute(
            'INSERT OR IGNORE INTO sf_campaign ("Id", "IsDeleted", "OwnerId", "CreatedDate", '
            '"CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp", "Name", '
            '"Type", "Status", "StartDate", "IsActive", "NumberOfLeads", "NumberOfContacts") '
            "VALUES (?,0,?,?,?,?,?,?,?,?,?,?,?,0,0)",
            (make_id("701", n), CRM_USER_ID, _TS0, API_USER_ID, _TS0, API_USER_ID, _TS0,
             name, kind, status, start, int(status != "Completed")),
        )  # fmt: skip
    conn.execute(
        "INSERT OR IGNORE INTO sf_seq (object, next) VALUES ('Campaign', ?)",
        (len(DEFAULT_CAMPAIGNS) + 1,),
    )


def next_ids(conn: sqlite3.Connection, spec: ObjectSpec, count: int) -> list[str]:
    """Reserve ``count`` new record ids of ``spec``'s type."""
    row = conn.execute("SELECT next FROM sf_seq WHERE object = ?", (spec.name,)).fetchone()
    start = int(row[0]) if row else 1
    conn.execute(
        "INSERT OR REPLACE INTO sf_seq (object, next) VALUES (?, ?)", (spec.name, start + count)
    )
    return [make_id(spec.key_prefix, n) for n in range(start, start + count)]


def now_stamp(previous: str | None = None) -> str:
    """Now (whole seconds, storage format), and at least one second after ``previous``.

    Examples:
        >>> now_stamp("2999-01-01T00:00:00.000Z")
        '2999-01-01T00:00:01.000Z'
    """
    ts = datetime.now(UTC).replace(microsecond=0)
    if previous:
        before = parse_datetime(previous)
        if before is not None and ts <= before:
            ts = before.replace(microsecond=0) + timedelta(seconds=1)
    return store_datetime(ts)


def _type_error(spec: FieldSpec, value: Any) -> SfError:
    kind = {"boolean": "boolean", "int": "int", "date": "date", "datetime": "datetime"}.get(
        spec.type, "double"
    )
    return SfError(
        400,
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {type(value).__name__} value {value!r} "
        f"or request may be missing a required field",
    )


_PLAIN_TEXT = frozenset({"string", "textarea", "picklist", "email", "phone", "url", "combobox"})


def _is_utc_text(value: Any) -> bool:
    """``...T00:00:05Z`` or ``...T00:00:05.123Z``: the fast path of datetime storage."""
    if not (isinstance(value, str) and len(value) in (20, 24) and value[-1] == "Z"):
        return False
    if value[10:11] != "T" or value[19] not in "Z.":
        return False
    try:
        datetime.fromisoformat(value[:19])
    except ValueError:
        return False
    return True


def to_storage(spec: FieldSpec, value: Any) -> Any:
    """A JSON/CSV value as stored for ``spec``'s type (``''`` is null, as in Salesforce).

    Raises:
        SfError: the value does not fit the type (JSON_PARSER_ERROR, MALFORMED_ID...).

    Examples:
        >>> account = get_object("Account")
        >>> to_storage(account.field("CreatedDate"), "2024-01-01T09:00:00+01:00")
        '2024-01-01T08:00:00.000Z'
        >>> to_storage(account.field("IsDeleted"), "true"), to_storage(account.field("Website"), "")
        (1, None)
    """
    if value is None or value == "":
        return None
    t = spec.type
    if isinstance(value, str) and t in _PLAIN_TEXT:
        return value
    if t == "datetime" and _is_utc_text(value):
        return value[:19] + ".000Z"
    if t == "boolean":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return int(value.lower() == "true")
        if isinstance(value, int) and value in (0, 1):
            return value
        raise _type_error(spec, value)
    if t in ("int", "double", "currency", "percent"):
        if isinstance(value, bool):
            raise _type_error(spec, value)
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise _type_error(spec, value) from None
        return int(num) if t == "int" else num
    if t == "datetime":
        ts = value if isinstance(value, datetime) else parse_datetime(str(value))
        if ts is None:
            raise _type_error(spec, value)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        # isoformat is several times faster than strftime (demo data: 100k's of rows)
        return ts.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + ".000Z"
    if t == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value)[:10]).isoformat()
        except ValueError:
            raise _type_error(spec, value) from None
    if t in ("id", "reference"):
        norm = normalize_id(str(value))
        target = object_for_id(norm) if norm else None
        if norm is None or (
            spec.reference_to and (target is None or target.name != spec.reference_to)
        ):
            raise SfError(
                400,
                "MALFORMED_ID",
                f"{spec.label or spec.name}: id value of incorrect type: {value}",
                [spec.name],
            )
        return norm
    if not isinstance(value, str | int | float):
        raise _type_error(spec, value)
    return str(value)


def full_name(first: Any, last: Any) -> str | None:
    """Salesforce's compound ``Name`` of a person."""
    name = " ".join(str(p) for p in (first, last) if p)
    return name or None


def _defaults(spec: ObjectSpec) -> list[tuple[str, Any]]:
    out = [
        (f.name, int(f.default) if f.type == "boolean" else f.default)
        for f in spec.fields
        if f.default is not None
    ]
    if spec.field("OwnerId") is not None:
        out.append(("OwnerId", API_USER_ID))
    return out


def _fill_defaults(
    spec: ObjectSpec, row: dict[str, Any], stamp: str, defaults: list[tuple[str, Any]] | None = None
) -> None:
    for name, value in _defaults(spec) if defaults is None else defaults:
        if row.get(name) is None:
            row[name] = value
    row.setdefault("CreatedById", API_USER_ID)
    row.setdefault("LastModifiedById", row["CreatedById"])
    row["CreatedDate"] = row.get("CreatedDate") or stamp
    row["LastModifiedDate"] = row.get("LastModifiedDate") or row["CreatedDate"]
    row["SystemModstamp"] = row.get("SystemModstamp") or max(
        row["LastModifiedDate"], row["CreatedDate"]
    )
    if spec.field("Name") is not None and spec.field("FirstName") is not None:
        row["Name"] = full_name(row.get("FirstName"), row.get("LastName"))


def load_records(
    state: SandboxState, object_name: str, records: Iterable[dict[str, Any]]
) -> list[str]:
    """Bulk-insert records as they are (for demo data and tests); return their ids.

    Records without ``Id`` get a new 18-character id with the object's key prefix;
    ``CreatedDate``, ``LastModifiedDate`` and ``SystemModstamp`` default to now
    (or to each other), ``OwnerId`` to the API user. Values may be Python
    ``datetime``/``date``/``bool`` or their JSON forms. No validation rules, no
    change log: this is seeding, not an API write.

    Raises:
        ValueError: unknown object or field.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> state = SandboxState(":memory:")
        >>> len(load_records(state, "Contact", [{"LastName": "Lee"}, {"LastName": "Ng"}]))
        2
    """
    spec = get_object(object_name)
    if spec is None:
        raise ValueError(f"unknown Salesforce object {object_name!r}; one of {', '.join(OBJECTS)}")
    rows: list[dict[str, Any]] = []
    known: dict[str, FieldSpec] = {}
    for record in records:
        row: dict[str, Any] = {}
        for key, value in record.items():
            f = known.get(key) or spec.field(key)
            if f is None:
                raise ValueError(f"{spec.name} has no field {key!r}")
            known[key] = f
            try:
                row[f.name] = to_storage(f, value)
            except SfError as exc:
                raise ValueError(f"{spec.name}.{f.name}: {exc.message}") from None
        rows.append(row)
    stamp = now_stamp()
    defaults = _defaults(spec)
    with state.tx() as conn:
        missing = [r for r in rows if not r.get("Id")]
        for row, rid in zip(missing, next_ids(conn, spec, len(missing)), strict=True):
            row["Id"] = rid
        present: set[str] = set()
        for row in rows:
            _fill_defaults(spec, row, stamp, defaults)
            present.update(row)
        names = [f.name for f in spec.fields if f.name in present]
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        conn.executemany(
            f"INSERT INTO {table_name(spec.name)} ({cols}) VALUES ({marks})",
            ([row.get(n) for n in names] for row in rows),
        )
    return [row["Id"] for row in rows]


def fetch_row(conn: sqlite3.Connection, spec: ObjectSpec, record_id: str) -> dict[str, Any] | None:
    """The stored row of one record (deleted ones too), or None."""
    cur = conn.execute(f'SELECT * FROM {table_name(spec.name)} WHERE "Id" = ?', (record_id,))
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


def write_row(
    conn: sqlite3.Connection, spec: ObjectSpec, record_id: str, changes: dict[str, Any]
) -> None:
    """Apply stored-format ``changes`` to one row."""
    if not changes:
        return
    sets = ", ".join(f'"{k}" = ?' for k in changes)
    conn.execute(
        f'UPDATE {table_name(spec.name)} SET {sets} WHERE "Id" = ?', [*changes.values(), record_id]
    )


def touch(row: dict[str, Any], user_id: str = API_USER_ID) -> dict[str, Any]:
    """The audit-field changes of modifying ``row`` now."""
    stamp = now_stamp(row.get("SystemModstamp"))
    return {"LastModifiedDate": stamp, "SystemModstamp": stamp, "LastModifiedById": user_id}


def admin_edit(
    state: SandboxState, object_name: str, record_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Edit a record as a CRM user would in the Salesforce UI (no API call counted).

    Bumps ``LastModifiedDate``/``SystemModstamp`` (by at least one second), sets
    ``LastModifiedById`` to a CRM user and logs the change as ``edited``. Returns
    the stored row after the edit.

    Raises:
        ValueError: unknown object, field or record.

    Examples:
        >>> from recon.sandbox.state import SandboxState
        >>> state = SandboxState(":memory:")
        >>> [rid] = load_records(state, "Account", [{"Name": "Acme"}])
        >>> admin_edit(state, "Account", rid, {"Name": "Acme Inc"})["Name"]
        'Acme Inc'
    """
    spec = get_object(object_name)
    if spec is None:
        raise ValueError(f"unknown Salesforce object {object_name!r}")
    with state.tx() as conn:
        row = fetch_row(conn, spec, record_id)
        if row is None:
            raise ValueError(f"{spec.name} {record_id} not found")
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            f = spec.field(key)
            if f is None:
                raise ValueError(f"{spec.name} has no field {key!r}")
            try:
                changes[f.name] = to_storage(f, value)
            except SfError as exc:
                raise ValueError(f"{spec.name}.{f.name}: {exc.message}") from None
        if spec.field("FirstName") is not None and (
            "FirstName" in changes or "LastName" in changes
        ):
            merged = {**row, **changes}
            changes["Name"] = full_name(merged.get("FirstName"), merged.get("LastName"))
        changes |= touch(row, CRM_USER_ID)
        write_row(conn, spec, record_id, changes)
        state.log_change(
            "salesforce", spec.name, record_id, "edited", "admin", {"fields": sorted(changes)}
        )
        return api_record(spec, {**row, **changes})


def api_record(spec: ObjectSpec, row: dict[str, Any], version: str = "59.0") -> dict[str, Any]:
    """A stored row as the REST API returns it (``attributes`` first, every field)."""
    out: dict[str, Any] = {
        "attributes": {
            "type": spec.name,
            "url": f"/services/data/v{version}/sobjects/{spec.name}/{row['Id']}",
        }
    }
    for f in spec.fields:
        if f.name in row:
            out[f.name] = format_value(f, row[f.name])
    return out


def format_value(spec: FieldSpec, value: Any) -> Any:
    """A stored value as the REST API returns it."""
    if value is None:
        return None
    t = spec.type
    if t == "boolean":
        return bool(value)
    if t == "datetime":
        return api_datetime(value)
    if t == "int":
        return int(value)
    if t in ("double", "currency", "percent"):
        return float(value)
    return value
