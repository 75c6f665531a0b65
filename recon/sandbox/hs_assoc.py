"""Associations of the HubSpot emulator (``hs_assoc``), stored in both directions.

HUBSPOT_DEFINED type ids: contact→company 279 (unlabeled) and 1 (primary),
company→contact 280 and 2; deals and company parent/child likewise. A contact's
``associatedcompanyid`` property follows its primary company.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = [
    "ASSOC_LABELS",
    "ASSOC_TYPES",
    "associate",
    "associations_of",
    "bulk_associate",
    "dissociate",
]

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
    type_ids = list(type_ids)
    _demote_primary(conn, from_type, from_id, to_type, to_id, type_ids)
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


def _demote_primary(
    conn: sqlite3.Connection,
    from_type: str,
    from_id: int,
    to_type: str,
    to_id: int,
    type_ids: list[tuple[str, int]],
) -> None:
    """A contact has one primary company: labelling another primary takes the label off the
    former one (its association stays, unlabeled)."""
    if {from_type, to_type} != {"contacts", "companies"}:
        return
    primary = ASSOC_TYPES.get(("contacts", "companies"), (0, None))[1]
    if primary is None:
        return
    reverse = _REVERSE.get(primary, primary)
    wanted = primary if from_type == "contacts" else reverse
    if not any(c == "HUBSPOT_DEFINED" and t == wanted for c, t in type_ids):
        return
    contact, company = (from_id, to_id) if from_type == "contacts" else (to_id, from_id)
    conn.execute(
        "DELETE FROM hs_assoc WHERE from_type = 'contacts' AND from_id = ? AND to_type = 'companies' "
        "AND type_id = ? AND to_id != ?",
        (contact, primary, company),
    )
    conn.execute(
        "DELETE FROM hs_assoc WHERE from_type = 'companies' AND to_type = 'contacts' AND to_id = ? "
        "AND type_id = ? AND from_id != ?",
        (contact, reverse, company),
    )


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
        import time

        from .hs_records import iso_of_ms

        if want is None:
            props.pop("associatedcompanyid", None)
        else:
            props["associatedcompanyid"] = want
        # a property changed: the contact's modification time moves, as with any property
        # (an incremental pull finds the contact and reads its associations again)
        last = conn.execute("SELECT updated_ms FROM hs_records WHERE id = ?", (contact_id,))
        now = max(int(time.time() * 1000), int(last.fetchone()[0]) + 1)
        props["lastmodifieddate"] = props["hs_lastmodifieddate"] = iso_of_ms(now)
        conn.execute(
            "UPDATE hs_records SET props = ?, updated_ms = ? WHERE id = ?",
            (json.dumps(props), now, contact_id),
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
            # `+a.to_type`: keep SQLite on the primary key (from side) instead of the to-side index,
            # which it prefers without ANALYZE statistics and which is 100x slower at size large
            f"WHERE a.from_type = ? AND +a.to_type = ? AND a.from_id IN ({marks}) ORDER BY a.to_id, a.type_id",
            [from_type, to_type, *chunk],
        ):
            out.setdefault(int(row[0]), {}).setdefault(int(row[1]), []).append(
                (row[2], int(row[3]))
            )
    return out


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
