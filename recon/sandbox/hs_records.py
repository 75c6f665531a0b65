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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from .hs_schema import LASTMOD, OWNERS, coerce_value, resolve_type, standard_properties
from .state import SandboxState, iso_ms

__all__ = [
    "ASSOC_TYPES",
    "associate",
    "associations_of",
    "bulk_load",
    "find_id",
    "init_schema",
    "insert_record",
    "properties_of",
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
"""

# (from, to) -> (unlabeled type id, primary type id or None, reverse unlabeled, reverse primary)
ASSOC_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("companies", "companies"): (13, 14),
}
_REVERSE = {
    279: 280,
    280: 279,
    1: 2,
    2: 1,
    3: 4,
    4: 3,
    341: 342,
    342: 341,
    5: 6,
    6: 5,
    13: 14,
    14: 13,
}
ASSOC_LABELS = {
    1: "Primary",
    2: "Primary",
    5: "Primary",
    6: "Primary",
    13: "Parent Company",
    14: "Child Company",
}


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
    """HubSpot timestamp text of epoch milliseconds."""
    return iso_ms(datetime.fromtimestamp(ms / 1000, tz=UTC))


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


def validate(
    conn: sqlite3.Connection, obj: str, values: dict[str, Any]
) -> tuple[dict[str, str | None], list[dict[str, Any]]]:
    """Check written property values: ``(clean values, HubSpot validation errors)``.

    A ``None`` clean value clears the property. Read-only and unknown properties
    are errors, as are values of the wrong type and unknown enumeration options.
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
        if prop["modificationMetadata"]["readOnlyValue"]:
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
    _index_unique(conn, obj, rid, props, unique_properties(conn, obj))
    state.log_change(SIDE, obj, str(rid), "created", request_id)
    return rid


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
    row = conn.execute("SELECT props FROM hs_records WHERE id = ?", (rid,)).fetchone()
    props = json.loads(row[0])
    for name, value in values.items():
        if value is None:
            props.pop(name, None)
        else:
            props[name] = value
    _derive(obj, props)
    now = ms_of(state.now())
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
    """Archive (soft-delete) a record; its unique values are released."""
    now = ms_of(state.now())
    conn.execute("UPDATE hs_records SET archived = 1, archived_ms = ? WHERE id = ?", (now, rid))
    conn.execute("DELETE FROM hs_unique WHERE object = ? AND id = ?", (obj, rid))
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
            props = {k: _text(v) for k, v in record.items() if v not in (None, "")}
            _derive(obj, props)
            props["hs_object_id"] = str(rid)
            props["createdate"] = iso_of_ms(created)
            props[lastmod] = iso_of_ms(updated)
            if obj == "contacts":
                props["hs_lastmodifieddate"] = iso_of_ms(updated)
            rows.append((rid, obj, json.dumps(props), created, updated))
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


# --------------------------------------------------------------------------- associations


def associate(
    conn: sqlite3.Connection,
    from_type: str,
    from_id: int,
    to_type: str,
    to_id: int,
    type_ids: Iterable[tuple[str, int]] | None = None,
) -> list[tuple[str, int]]:
    """Associate two records (both directions); default = unlabeled + primary when none yet.

    Returns the ``(category, type id)`` pairs stored in the ``from -> to`` direction.
    """
    if type_ids is None:
        unlabeled, primary = ASSOC_TYPES.get((from_type, to_type), (0, None))
        pairs = [("HUBSPOT_DEFINED", unlabeled)]
        if primary is not None and from_type == "contacts" and to_type == "companies":
            has_primary = conn.execute(
                "SELECT 1 FROM hs_assoc WHERE from_type = ? AND from_id = ? AND to_type = ? AND type_id = ?",
                (from_type, from_id, to_type, primary),
            ).fetchone()
            if not has_primary:
                pairs.append(("HUBSPOT_DEFINED", primary))
        type_ids = pairs
    stored = []
    for category, tid in type_ids:
        reverse = _REVERSE.get(tid, tid) if category == "HUBSPOT_DEFINED" else tid
        conn.execute(
            "INSERT OR IGNORE INTO hs_assoc VALUES (?, ?, ?, ?, ?, ?)",
            (from_type, from_id, to_type, to_id, category, tid),
        )
        conn.execute(
            "INSERT OR IGNORE INTO hs_assoc VALUES (?, ?, ?, ?, ?, ?)",
            (to_type, to_id, from_type, from_id, category, reverse),
        )
        stored.append((category, tid))
    _sync_primary(conn, from_type, from_id, to_type, to_id)
    return stored


def _sync_primary(conn: sqlite3.Connection, a_type: str, a_id: int, b_type: str, b_id: int) -> None:
    """Keep a contact's ``associatedcompanyid`` equal to its primary company."""
    pairs = [(a_type, a_id), (b_type, b_id)]
    if {a_type, b_type} != {"contacts", "companies"}:
        return
    contact_id = next(i for t, i in pairs if t == "contacts")
    row = conn.execute(
        "SELECT to_id FROM hs_assoc WHERE from_type = 'contacts' AND from_id = ? AND to_type = 'companies' "
        "AND type_id = 1 ORDER BY to_id LIMIT 1",
        (contact_id,),
    ).fetchone()
    props_row = conn.execute("SELECT props FROM hs_records WHERE id = ?", (contact_id,)).fetchone()
    if props_row is None:
        return
    props = json.loads(props_row[0])
    want = str(row[0]) if row else None
    if props.get("associatedcompanyid") != want:
        if want is None:
            props.pop("associatedcompanyid", None)
        else:
            props["associatedcompanyid"] = want
        conn.execute(
            "UPDATE hs_records SET props = ? WHERE id = ?", (json.dumps(props), contact_id)
        )


def dissociate(
    conn: sqlite3.Connection, from_type: str, from_id: int, to_type: str, to_id: int
) -> None:
    """Remove every association between two records."""
    conn.execute(
        "DELETE FROM hs_assoc WHERE from_type = ? AND from_id = ? AND to_type = ? AND to_id = ?",
        (from_type, from_id, to_type, to_id),
    )
    conn.execute(
        "DELETE FROM hs_assoc WHERE from_type = ? AND from_id = ? AND to_type = ? AND to_id = ?",
        (to_type, to_id, from_type, from_id),
    )
    _sync_primary(conn, from_type, from_id, to_type, to_id)


def associations_of(
    conn: sqlite3.Connection, from_type: str, from_ids: Sequence[int], to_type: str
) -> dict[int, dict[int, list[tuple[str, int]]]]:
    """``{from id: {to id: [(category, type id)]}}`` for live (not archived) targets."""
    out: dict[int, dict[int, list[tuple[str, int]]]] = {}
    for start in range(0, len(from_ids), 500):
        chunk = list(from_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT a.from_id, a.to_id, a.category, a.type_id FROM hs_assoc a "
            f"JOIN hs_records r ON r.id = a.to_id AND r.archived = 0 "
            f"WHERE a.from_type = ? AND a.to_type = ? AND a.from_id IN ({marks}) ORDER BY a.to_id, a.type_id",
            [from_type, to_type, *chunk],
        ):
            out.setdefault(int(row[0]), {}).setdefault(int(row[1]), []).append(
                (row[2], int(row[3]))
            )
    return out


def next_id(state: SandboxState) -> int:
    """The id :func:`bulk_load` gives its first record (the rest follow in sequence)."""
    with state.tx() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM hs_records").fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'hs_records'").fetchone()
    return max(int(row[0]), int(seq[0]) if seq else 0) + 1


def bulk_associate(
    state: SandboxState, pairs: Sequence[tuple[str, str]], *, set_primary: bool = True
) -> None:
    """Associate contacts with companies fast (``(contact id, company id)``; the first is primary).

    ``set_primary=False`` when the contacts' ``associatedcompanyid`` is already set.
    """
    with state.tx() as conn:
        rows = []
        seen_primary: set[str] = set()
        primary_of: dict[str, str] = {}
        for contact_id, company_id in pairs:
            c, k = int(contact_id), int(company_id)
            rows.append(("contacts", c, "companies", k, "HUBSPOT_DEFINED", 279))
            rows.append(("companies", k, "contacts", c, "HUBSPOT_DEFINED", 280))
            if contact_id not in seen_primary:
                seen_primary.add(contact_id)
                primary_of[contact_id] = company_id
                rows.append(("contacts", c, "companies", k, "HUBSPOT_DEFINED", 1))
                rows.append(("companies", k, "contacts", c, "HUBSPOT_DEFINED", 2))
        conn.executemany("INSERT OR IGNORE INTO hs_assoc VALUES (?, ?, ?, ?, ?, ?)", rows)
        if not set_primary:
            return
        conn.executemany(
            "UPDATE hs_records SET props = json_set(props, '$.associatedcompanyid', ?) WHERE id = ?",
            [(company, int(contact)) for contact, company in primary_of.items()],
        )


def object_of_row(conn: sqlite3.Connection, rid: int) -> str | None:
    """The object type of record ``rid``."""
    row = conn.execute("SELECT object FROM hs_records WHERE id = ?", (rid,)).fetchone()
    return None if row is None else str(row[0])


def resolve(name: str) -> str | None:
    """Alias of :func:`recon.sandbox.hs_schema.resolve_type`."""
    return resolve_type(name)
