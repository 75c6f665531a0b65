"""Storage of the HubSpot emulator: records, unique values, custom properties, associations.

Tables (created by :func:`init_schema`, which :class:`~recon.sandbox.state.SandboxState` calls):

- ``hs_records``: one row per record of any object type; ``props`` is the JSON of
  its property values (strings), including ``hs_object_id``, ``createdate`` and the
  last-modified property, kept current on every write; ``created_ms``/``updated_ms``
  mirror them for fast incremental search; ``merged_into`` points a merged-away
  record at its survivor.
- ``hs_unique``: values of unique properties (contact ``email``, custom properties
  created with ``hasUniqueValue``), lower-cased, for lookups by ``idProperty``.
- ``hs_properties``: custom property definitions.
- ``hs_assoc``: associations, stored in both directions.
- ``hs_owners``: the account's owners.

The functions here work on a ``sqlite3`` connection inside
:meth:`SandboxState.tx`; the HTTP layer is :mod:`recon.sandbox.hubspot`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .hs_assoc import (
    ASSOC_LABELS,
    ASSOC_TYPES,
    associate,
    associations_of,
    bulk_associate,
    dissociate,
)
from .hs_schema import LASTMOD, OWNERS, coerce_value, resolve_type, standard_properties
from .state import SandboxState

__all__ = [
    "ASSOC_LABELS",
    "ASSOC_TYPES",
    "associate",
    "associations_of",
    "bulk_associate",
    "bulk_load",
    "dissociate",
    "find_id",
    "init_schema",
    "insert_record",
    "next_id",
    "properties_of",
    "property_history",
    "unique_properties",
    "update_record",
    "validate",
]

SIDE = "hubspot"

SCHEMA = """
CREATE TABLE IF NOT EXISTS hs_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, object TEXT NOT NULL, props TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0, archived_ms INTEGER, merged_into INTEGER);
CREATE INDEX IF NOT EXISTS hs_records_object ON hs_records (object, archived, id);
CREATE INDEX IF NOT EXISTS hs_records_updated ON hs_records (object, updated_ms);
CREATE TABLE IF NOT EXISTS hs_unique (
    object TEXT NOT NULL, prop TEXT NOT NULL, value TEXT NOT NULL, id INTEGER NOT NULL,
    PRIMARY KEY (object, prop, value));
CREATE INDEX IF NOT EXISTS hs_unique_id ON hs_unique (object, id);
CREATE TABLE IF NOT EXISTS hs_properties (
    object TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (object, name));
CREATE TABLE IF NOT EXISTS hs_assoc (
    from_type TEXT NOT NULL, from_id INTEGER NOT NULL, to_type TEXT NOT NULL, to_id INTEGER NOT NULL,
    category TEXT NOT NULL, type_id INTEGER NOT NULL,
    PRIMARY KEY (from_type, from_id, to_type, to_id, category, type_id));
CREATE INDEX IF NOT EXISTS hs_assoc_to ON hs_assoc (to_type, to_id);
CREATE TABLE IF NOT EXISTS hs_owners (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hs_history (
    id INTEGER NOT NULL, prop TEXT NOT NULL, value TEXT, ts_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS hs_history_id ON hs_history (id, prop, ts_ms);
"""


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the HubSpot tables and the built-in owners (idempotent)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    created = "2020-01-06T09:00:00.000Z"
    for owner in OWNERS:
        data = {
            **owner,
            "type": "PERSON",
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
            "teams": [],
        }
        conn.execute(
            "INSERT OR IGNORE INTO hs_owners (id, data) VALUES (?, ?)",
            (owner["id"], json.dumps(data)),
        )


def ms_of(ts: datetime) -> int:
    """Epoch milliseconds of a datetime."""
    return round(ts.timestamp() * 1000)


def iso_of_ms(ms: int) -> str:
    """HubSpot timestamp text of epoch milliseconds (``2024-01-02T03:04:05.678Z``)."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def lastmod_prop(obj: str) -> str:
    """``lastmodifieddate`` for contacts, ``hs_lastmodifieddate`` otherwise."""
    return LASTMOD.get(obj, "hs_lastmodifieddate")


# --------------------------------------------------------------------------- properties


def properties_of(conn: sqlite3.Connection, obj: str) -> dict[str, dict[str, Any]]:
    """Standard and custom property definitions of ``obj``, by name."""
    props = dict(standard_properties(obj))
    for row in conn.execute("SELECT definition FROM hs_properties WHERE object = ?", (obj,)):
        definition = json.loads(row[0])
        props[definition["name"]] = definition
    return props


def unique_properties(conn: sqlite3.Connection, obj: str) -> set[str]:
    """Properties usable as ``idProperty`` for upserts: unique ones (contact ``email`` built in)."""
    names = {"email"} if obj == "contacts" else set()
    return names | {n for n, p in properties_of(conn, obj).items() if p.get("hasUniqueValue")}


#: read-only to the API, but a person sets them in HubSpot's UI (a contact's subscriptions)
UI_SETTABLE = frozenset({"hs_email_optout"})


def validate(
    conn: sqlite3.Connection, obj: str, values: dict[str, Any], *, ui: bool = False
) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
    """Check written property values: ``(clean values, HubSpot validation errors)``.

    A ``None`` clean value clears the property. Read-only and unknown properties
    are errors, as are values of the wrong type and unknown enumeration options.
    ``ui``: a person's edit in HubSpot's UI, who may set :data:`UI_SETTABLE` ones.
    """
    defs = properties_of(conn, obj)
    clean: dict[str, str | None] = {}
    errors: list[dict[str, Any]] = []
    for name, value in values.items():
        prop = defs.get(name)
        if prop is None:
            errors.append(
                {
                    "isValid": False,
                    "message": f'Property "{name}" does not exist',
                    "error": "PROPERTY_DOESNT_EXIST",
                    "name": name,
                }
            )
            continue
        if prop["modificationMetadata"]["readOnlyValue"] and not (ui and name in UI_SETTABLE):
            errors.append(
                {
                    "isValid": False,
                    "message": f'"{name}" is a read only property; its value cannot be set.',
                    "error": "READ_ONLY_VALUE",
                    "name": name,
                }
            )
            continue
        stored, code = coerce_value(prop, value)
        if code:
            allowed = ", ".join(o["value"] for o in prop["options"])
            message = (
                f"{value} was not one of the allowed options: [{allowed}]"
                if code == "INVALID_OPTION"
                else f"{value!r} is not a valid {prop['type']} value for {name}"
            )
            errors.append({"isValid": False, "message": message, "error": code, "name": name})
            continue
        clean[name] = stored
    return clean, errors


def validation_message(errors: list[dict[str, Any]]) -> str:
    """HubSpot's 400 message for property validation errors."""
    return "Property values were not valid: " + json.dumps(errors, separators=(",", ":"))


# --------------------------------------------------------------------------- records


def find_id(
    conn: sqlite3.Connection, obj: str, value: str, id_property: str | None = None
) -> int | None:
    """The record id for ``value`` of ``id_property`` (default ``hs_object_id``); follows merges."""
    if not id_property or id_property == "hs_object_id":
        try:
            rid = int(str(value))
        except ValueError:
            return None
    else:
        row = conn.execute(
            "SELECT id FROM hs_records WHERE id = (SELECT id FROM hs_unique WHERE object = ? AND prop = ? AND value = ?)",
            (obj, id_property, str(value).strip().lower()),
        ).fetchone()
        if row is None:
            return None
        rid = int(row[0])
    row = conn.execute(
        "SELECT id, merged_into FROM hs_records WHERE id = ? AND object = ?", (rid, obj)
    ).fetchone()
    if row is None:
        return None
    return int(row["merged_into"] or row["id"])


def get_rows(conn: sqlite3.Connection, obj: str, ids: Sequence[int]) -> dict[int, sqlite3.Row]:
    """The stored rows of ``ids`` (any archived state), by id."""
    out: dict[int, sqlite3.Row] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT * FROM hs_records WHERE object = ? AND id IN ({marks})", [obj, *chunk]
        ):
            out[int(row["id"])] = row
    return out


def unique_conflicts(
    conn: sqlite3.Connection, obj: str, values: dict[str, str | None], own_id: int | None = None
) -> list[tuple[str, str, int]]:
    """``(property, value, existing id)`` for each unique value already held by another record."""
    out = []
    for name in unique_properties(conn, obj):
        value = values.get(name)
        if value is None:
            continue
        row = conn.execute(
            "SELECT id FROM hs_unique WHERE object = ? AND prop = ? AND value = ?",
            (obj, name, value.strip().lower()),
        ).fetchone()
        if row is not None and int(row[0]) != own_id:
            out.append((name, value, int(row[0])))
    return out


def _index_unique(
    conn: sqlite3.Connection, obj: str, rid: int, props: dict[str, Any], names: Iterable[str]
) -> None:
    for name in names:
        conn.execute(
            "DELETE FROM hs_unique WHERE object = ? AND prop = ? AND id = ?", (obj, name, rid)
        )
        value = props.get(name)
        if value not in (None, ""):
            conn.execute(
                "INSERT OR REPLACE INTO hs_unique (object, prop, value, id) VALUES (?, ?, ?, ?)",
                (obj, name, str(value).strip().lower(), rid),
            )


def _derive(obj: str, props: dict[str, Any]) -> None:
    if obj == "contacts":
        email = props.get("email")
        if email and "@" in email:
            props["hs_email_domain"] = email.rsplit("@", 1)[1].lower()
        else:
            props.pop("hs_email_domain", None)


def insert_record(
    state: SandboxState,
    conn: sqlite3.Connection,
    obj: str,
    values: dict[str, str | None],
    request_id: str | None,
) -> int:
    """Insert one validated record; return its id."""
    now = ms_of(state.now())
    props = {k: v for k, v in values.items() if v is not None}
    _derive(obj, props)
    cur = conn.execute(
        "INSERT INTO hs_records (object, props, created_ms, updated_ms) VALUES (?, '{}', ?, ?)",
        (obj, now, now),
    )
    rid = int(cur.lastrowid or 0)
    props.update(
        {"hs_object_id": str(rid), "createdate": iso_of_ms(now), lastmod_prop(obj): iso_of_ms(now)}
    )
    if obj == "contacts":
        props["hs_lastmodifieddate"] = iso_of_ms(now)
    conn.execute("UPDATE hs_records SET props = ? WHERE id = ?", (json.dumps(props), rid))
    _record_history(conn, rid, {k: v for k, v in values.items() if v is not None}, now)
    _index_unique(conn, obj, rid, props, unique_properties(conn, obj))
    state.log_change(SIDE, obj, str(rid), "created", request_id)
    return rid


def _record_history(
    conn: sqlite3.Connection, rid: int, values: dict[str, Any], now_ms: int
) -> None:
    """One property-history entry per value set by a write (HubSpot keeps a time per property)."""
    conn.executemany(
        "INSERT INTO hs_history (id, prop, value, ts_ms) VALUES (?, ?, ?, ?)",
        [(rid, name, value, now_ms) for name, value in values.items()],
    )


def property_history(
    conn: sqlite3.Connection, rid: int, names: Sequence[str]
) -> dict[str, list[tuple[Any, int]]]:
    """``{property: [(value, time ms), ...]}`` newest first, for the properties a write set.

    Values a record was loaded with (demo data) have no entries: their time is the record's.
    """
    out: dict[str, list[tuple[Any, int]]] = {}
    if not names:
        return out
    marks = ",".join("?" * len(names))
    for prop, value, ts in conn.execute(
        f"SELECT prop, value, ts_ms FROM hs_history WHERE id = ? AND prop IN ({marks}) "
        "ORDER BY ts_ms DESC, rowid DESC",
        (rid, *names),
    ):
        out.setdefault(prop, []).append((value, int(ts)))
    return out


def update_record(
    state: SandboxState,
    conn: sqlite3.Connection,
    obj: str,
    rid: int,
    values: dict[str, str | None],
    request_id: str | None,
    *,
    action: str = "updated",
) -> None:
    """Apply validated values to a record and bump its modification time."""
    row = conn.execute("SELECT props, updated_ms FROM hs_records WHERE id = ?", (rid,)).fetchone()
    props = json.loads(row[0])
    now = ms_of(state.now())
    if not conn.execute("SELECT 1 FROM hs_history WHERE id = ? LIMIT 1", (rid,)).fetchone():
        # values the record was loaded with (demo data) keep their own time, the record's
        # last change before this write: another property's edit does not date them
        loaded = {k: v for k, v in props.items() if v is not None}
        _record_history(conn, rid, loaded, int(row[1]))
    # HubSpot adds a history entry when a write changes a property's value
    _record_history(conn, rid, {k: v for k, v in values.items() if props.get(k) != v}, now)
    for name, value in values.items():
        if value is None:
            props.pop(name, None)
        else:
            props[name] = value
    _derive(obj, props)
    props[lastmod_prop(obj)] = iso_of_ms(now)
    if obj == "contacts":
        props["hs_lastmodifieddate"] = iso_of_ms(now)
    conn.execute(
        "UPDATE hs_records SET props = ?, updated_ms = ? WHERE id = ?",
        (json.dumps(props), now, rid),
    )
    changed_unique = unique_properties(conn, obj) & set(values)
    if changed_unique:
        _index_unique(conn, obj, rid, props, changed_unique)
    state.log_change(SIDE, obj, str(rid), action, request_id)


def archive_record(
    state: SandboxState, conn: sqlite3.Connection, obj: str, rid: int, request_id: str | None
) -> None:
    """Archive (soft-delete) a record; its unique values are released. An archived company
    is no contact's company any more: those associations go, and a contact whose primary
    company it was loses its ``associatedcompanyid`` (its modification time moves)."""
    now = ms_of(state.now())
    conn.execute("UPDATE hs_records SET archived = 1, archived_ms = ? WHERE id = ?", (now, rid))
    conn.execute("DELETE FROM hs_unique WHERE object = ? AND id = ?", (obj, rid))
    if obj == "companies":
        contacts = [
            int(r[0])
            for r in conn.execute(
                "SELECT DISTINCT to_id FROM hs_assoc WHERE from_type = 'companies' AND from_id = ? "
                "AND to_type = 'contacts'",
                (rid,),
            )
        ]
        for contact in contacts:
            dissociate(conn, "contacts", contact, "companies", rid)
    state.log_change(SIDE, obj, str(rid), "deleted", request_id)


def bulk_load(
    state: SandboxState,
    obj: str,
    records: Sequence[dict[str, Any]],
    *,
    timestamps: Sequence[tuple[int, int]] | None = None,
) -> list[str]:
    """Insert many records fast, without validation or change log (demo data, big tests).

    Args:
        state: the sandbox.
        obj: plural object type.
        records: property dicts (values become strings; None and "" are dropped).
        timestamps: optional ``(created_ms, updated_ms)`` per record; default now.

    Returns:
        The new record ids, in input order.

    Examples:
        >>> state = SandboxState(":memory:")
        >>> bulk_load(state, "companies", [{"name": "Acme"}, {"name": "Globex"}])
        ['1', '2']
    """
    now = ms_of(state.now())
    with state.tx() as conn:
        first = next_id(state)
        lastmod = lastmod_prop(obj)
        uniques = unique_properties(conn, obj)
        rows = []
        unique_rows = []
        for offset, record in enumerate(records):
            rid = first + offset
            created, updated = timestamps[offset] if timestamps else (now, now)
            props = {
                k: v if type(v) is str else _text(v)
                for k, v in record.items()
                if v is not None and v != ""
            }
            _derive(obj, props)
            created_iso, updated_iso = iso_of_ms(created), iso_of_ms(updated)
            props["hs_object_id"] = str(rid)
            props["createdate"] = created_iso
            props[lastmod] = updated_iso
            if obj == "contacts":
                props["hs_lastmodifieddate"] = updated_iso
            rows.append((rid, obj, json.dumps(props, separators=(",", ":")), created, updated))
            for name in uniques:
                if props.get(name):
                    unique_rows.append((obj, name, props[name].strip().lower(), rid))
        conn.executemany(
            "INSERT INTO hs_records (id, object, props, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO hs_unique (object, prop, value, id) VALUES (?, ?, ?, ?)",
            unique_rows,
        )
    return [str(first + i) for i in range(len(records))]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def next_id(state: SandboxState) -> int:
    """The id :func:`bulk_load` gives its first record (the rest follow in sequence)."""
    with state.tx() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM hs_records").fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'hs_records'").fetchone()
    return max(int(row[0]), int(seq[0]) if seq else 0) + 1


def object_of_row(conn: sqlite3.Connection, rid: int) -> str | None:
    """The object type of record ``rid``."""
    row = conn.execute("SELECT object FROM hs_records WHERE id = ?", (rid,)).fetchone()
    return None if row is None else str(row[0])


def resolve(name: str) -> str | None:
    """Alias of :func:`recon.sandbox.hs_schema.resolve_type`."""
    return resolve_type(name)
