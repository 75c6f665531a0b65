"""How review words things for people: scores, and what an item or a decision is about.

Part of :mod:`recon.review` (import from there). One score format for every place
the app shows a score, and the records an item or decision concerns named as the
queue names them (names, else emails, else the CRM's ids), so a message never
names an internal id where something better exists.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from .errors import ReviewError
from .review_queue import _queue_row

#: the one printf-style format of a score (``st.column_config`` formats take it as it is)
SCORE_FORMAT = "%.3f"


def format_score(score: float | None) -> str:
    """A match score as review shows it everywhere: three decimals, "—" when there is none.

    Examples:
        >>> format_score(1), format_score(0.87041), format_score(0.9), format_score(None)
        ('1.000', '0.870', '0.900', '—')
    """
    return "—" if score is None else SCORE_FORMAT % float(score)


def format_threshold(value: float) -> str:
    """A tier threshold as written in the settings: every digit up to six decimals (three, as
    scores are shown, made 0.99995 read "1.000", and ``.4g`` "1").

    Examples:
        >>> format_threshold(0.99995), format_threshold(0.9), format_threshold(1.0)
        ('0.99995', '0.9', '1')
    """
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def item_title(db: sqlite_utils.Database, item_id: str) -> str | None:
    """The queue's title of an item (its records' names), or None when the queue holds no such item.

    Examples:
        >>> from recon.store import open_store
        >>> item_title(open_store(":memory:"), "nope") is None
        True
    """
    try:
        title = _queue_row(db, item_id).get("title")
    except ReviewError:
        return None
    return str(title) if title else None


def _record_name(
    db: sqlite_utils.Database, source: str | None, objects: tuple[str, ...], record_id: str | None
) -> str | None:
    if not source or not record_id:
        return None
    row = db.execute(
        "select coalesce(name, email) from snapshots where source = ? and record_id = ? "
        f"and object in ({', '.join('?' * len(objects))}) limit 1",
        [source, str(record_id), *objects],
    ).fetchone()
    return str(row[0]) if row and row[0] else str(record_id)


def _objects(decision: dict[str, Any], source: str | None) -> tuple[str, ...]:
    """The snapshot objects a decision's record of ``source`` may be (its labels shape keeps
    the entity and, for contacts, the Salesforce object)."""
    entity = decision.get("object") or ""
    if source != "salesforce":
        return (entity,)
    if entity == "companies":
        return ("Account",)
    return (
        (decision["salesforce_object"],)
        if decision.get("salesforce_object")
        else ("Contact", "Lead")
    )


def decision_title(db: sqlite_utils.Database, decision: dict[str, Any]) -> str:
    """What a decision row is about, named as the queue names it.

    The queue's title of its item; for a value chosen for a cluster's merge, the field and
    the cluster's title; for an item the queue no longer holds (an older decision, an
    earlier match run), its records' names from the decision's labels shape; the item id
    only when nothing better exists.

    Examples:
        >>> from recon.store import open_store
        >>> decision_title(open_store(":memory:"), {"item_id": "pair-1", "kind": "link",
        ...     "object": "companies", "source_l": "hubspot", "record_id_l": "7",
        ...     "source_r": "salesforce", "record_id_r": "001A"})
        '7  ↔  001A'
    """
    item_id = str(decision.get("item_id") or "")
    title = item_title(db, item_id) if item_id else None
    try:
        choice = json.loads(decision["choice"]) if decision.get("choice") else None
    except (TypeError, ValueError):
        choice = None
    field = choice.get("field") if isinstance(choice, dict) else None
    if title is None and item_id:
        # a surviving value of a merge is decided on the merge's plan item: its cluster
        cluster = _cluster_of_merge(db, item_id)
        title = item_title(db, cluster) if cluster else None
    if title is None:
        sides = [
            _record_name(db, s, _objects(decision, s), decision.get(f"record_id_{lr}"))
            for lr in ("l", "r")
            if (s := decision.get(f"source_{lr}"))
        ]
        names = [n for n in sides if n]
        joint = "  ↔  " if decision.get("source_l") != decision.get("source_r") else "  ·  "
        title = joint.join(names) or None
    if title is None:
        return item_id or "?"
    if field and decision.get("kind") == "conflict_value" and not title.startswith(f"{field}:"):
        return f"{field} of {title}"
    return title


def _cluster_of_merge(db: sqlite_utils.Database, item_id: str) -> str | None:
    """The duplicate cluster a merge plan item merges (None: ``item_id`` is no merge).

    Looked up plan run by plan run, newest first, by each run's (run id, item id) key: a
    scan of every plan's items by item id alone took a minute on the large demo's store."""
    row = db.execute(
        "select p.link_item_id from runs r join plan_items p on p.run_id = r.run_id "
        "and p.item_id = ? where r.stage = 'plan' and p.action = 'merge' "
        "and p.link_item_id is not null order by r.started_at desc, r.rowid desc limit 1",
        [item_id],
    ).fetchone()
    return str(row[0]) if row else None


def decision_item(db: sqlite_utils.Database, decision: dict[str, Any]) -> str:
    """The queue item a decision row is made on, as the queue opens it.

    Mostly the decision's own ``item_id``; a value chosen for a cluster's merge is decided
    on the merge's plan item, which the queue does not hold: its cluster (where the value
    was chosen, and is chosen again).

    Examples:
        >>> from recon.store import open_store
        >>> decision_item(open_store(":memory:"), {"item_id": "pair-1", "kind": "link"})
        'pair-1'
    """
    item_id = str(decision.get("item_id") or "")
    if decision.get("kind") == "conflict_value" and item_id:
        return _cluster_of_merge(db, item_id) or item_id
    return item_id
