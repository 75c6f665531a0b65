"""Item detail for review: records side by side, the explanation, record links, related records.

Part of :mod:`recon.review` (import from there).
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from .models import REFUSING_LABELS, hubspot_record_url, salesforce_record_url
from .plan import proposed_choice
from .plan_values import norm, same_value
from .review_queue import LINK_REJECTED, _latest_run, _queue_row
from .review_stale import stale_detail

RECORD_FIELDS = (
    "name", "first_name", "last_name", "email", "phone", "company", "domain", "website",
    "city", "country", "owner_id", "account_id", "external_ids", "created_at", "modified_at",
)  # fmt: skip
_NOT_COMPARED = ("account_id", "owner_id", "external_ids")


def _with_meanings(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Explanation entries with what each level means in words (``meaning``)."""
    from .match.comparisons import describe_level

    return [
        {
            **lv,
            "meaning": describe_level(str(lv.get("level", "")))
            # a level that vetoes auto says so ("missing on one side" is no evidence, but a
            # company without a name is never linked automatically)
            + ("; keeps the pair out of auto: a person decides" if lv.get("vetoes_auto") else ""),
        }
        for lv in levels
    ]


def record_link(cfg: Any, source: str, obj: str, record_id: str) -> str | None:
    """The URL of a record in its CRM, or None when the config lacks the account's address.

    Examples:
        >>> from recon.config import ReconConfig
        >>> cfg = ReconConfig(hubspot={"portal_id": "42"})
        >>> record_link(cfg, "hubspot", "companies", "7")
        'https://app.hubspot.com/contacts/42/record/0-2/7'
    """
    if cfg is None:
        return None
    if source == "hubspot":
        return hubspot_record_url(cfg.hubspot.app_url, cfg.hubspot.portal_id, obj, record_id)
    if source == "salesforce":
        return salesforce_record_url(cfg.salesforce.instance_url, obj, record_id)
    return None


def _record(
    db: sqlite_utils.Database, cfg: Any, source: str, obj: str, record_id: str
) -> dict[str, Any]:
    rows = list(
        db.query(
            "select * from snapshots where source = ? and object = ? and record_id = ?",
            [source, obj, record_id],
        )
    )
    rec: dict[str, Any] = (
        dict(rows[0])
        if rows
        else {"source": source, "object": obj, "record_id": record_id, "missing": True}
    )
    try:
        rec["data"] = json.loads(rec.get("data") or "{}")
    except ValueError:
        rec["data"] = {}
    rec["link"] = record_link(cfg, source, obj, record_id)
    return rec


#: how the side-by-side view compares a field's values: as the plan does (phones as numbers,
#: websites and domains as sites, countries as countries), else as text ignoring case
_KINDS = {"phone": "phone", "website": "url", "domain": "url", "country": "country"}


def _same(values: list[Any], field: str = "") -> bool:
    """Whether a field's values are one value (all blank, or all set and alike): "Germany" and
    "Deutschland", "+46967790396" and "0046 967790396" are one, as they are to the plan."""
    set_ = [v for v in values if v not in (None, "")]
    if not set_:
        return True
    if len(set_) < len(values):
        return False  # blank on one side
    kind = _KINDS.get(field)
    if kind is None:
        return len({str(v).strip().casefold() for v in set_}) == 1
    first = norm(kind, set_[0])
    return all(same_value(kind, first, norm(kind, v)) for v in set_[1:])


def _related(
    db: sqlite_utils.Database, rec: dict[str, Any], limit: int = 50
) -> list[dict[str, Any]]:
    cols = "source, object, record_id, name, email, company, account_id"
    key = (rec["source"], rec["object"], rec["record_id"])
    if rec["object"] in ("companies", "Account") and rec.get("record_id"):
        rows = db.query(
            f"""select {cols}, 'contact of this company' as relation from snapshots
                where source = ? and account_id = ? and object != ?
                union select {cols}, 'associated contact' from snapshots s
                where s.source = ? and s.object = 'contacts' and s.record_id in (
                  select from_id from associations where source = ? and to_object = 'companies' and to_id = ?)
                limit ?""",
            [key[0], key[2], key[1], key[0], key[0], key[2], limit],
        )
    elif rec.get("email"):
        rows = db.query(
            f"select {cols}, 'shares the email' as relation from snapshots where email in (?, ?) "
            "and not (source = ? and object = ? and record_id = ?) limit ?",
            [rec["email"], str(rec["email"]).strip().lower(), *key, limit],
        )
    else:
        return []
    return [dict(r) for r in rows]


#: the decision kinds that answer one question about a cluster (approve it, or split it):
#: one chain of versions (see ``review._chain``)
CLUSTER_ANSWERS = ("duplicate", "split")


def _versions(db: sqlite_utils.Database, item_id: str) -> dict[str, int]:
    rows = db.execute(
        "select kind, coalesce(json_extract(choice, '$.field'), ''), version from decisions "
        "where item_id = ? and superseded = 0 order by decision_id",
        [item_id],
    ).fetchall()
    out = {(f"{k}:{f}" if f else k): v for k, f, v in rows}
    # approving and splitting a cluster is one chain of versions: its current version is
    # the newest decision's (older stores may hold one of each kind)
    chained = [v for k, f, v in rows if k in CLUSTER_ANSWERS and not f]
    if chained:
        out.update(dict.fromkeys(CLUSTER_ANSWERS, chained[-1]))
    return out


def item_detail(db: sqlite_utils.Database, item_id: str, cfg: Any = None) -> dict[str, Any]:
    """Everything the reviewer needs about one item.

    Returns a dict with ``item`` (the queue row), ``records`` (snapshot rows with
    ``data`` decoded and a ``link`` into the CRM), ``fields`` (per field: the
    values side by side and ``differs``), ``explanation`` (levels and weights,
    ``total``, ``score``), ``pairs`` (a cluster's internal pairs), ``plan`` (a
    conflict's plan item and value ``options``), ``stale`` (a stale write's
    versions side by side: :func:`recon.review_stale.stale_detail`), ``related`` records,
    ``versions`` (current version per decision chain, e.g. ``link`` or
    ``conflict_value:phone``), ``history`` (every decision on the item), ``link_decision``
    (a conflict's or stale write's link: its current decision, or None), ``settled`` (why a
    conflict takes no decision: its link was rejected; else None) and, for a cluster,
    ``master`` (the record it merges into and who chose it).

    Raises:
        ReviewError: no such item in the queue.

    Examples:
        >>> from recon.store import open_store
        >>> item_detail(open_store(":memory:"), "nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.ReviewError: no review item 'nope' in the queue
    """
    item = _queue_row(db, item_id)
    out: dict[str, Any] = {"item": item, "pairs": [], "plan": None, "explanation": None}
    keys = [(item["source_l"], item["object_l"], item["record_id_l"])]
    if item["kind"] == "duplicate":
        keys = [
            (r["source"], r["record_object"], r["record_id"])
            for r in db.query(
                "select * from clusters where run_id = ? and cluster_id = ? order by record_id",
                [item["run_id"], item_id],
            )
        ]
        out["pairs"] = [
            {**dict(p), "explanation": _with_meanings(json.loads(p["explanation"] or "[]"))}
            for p in db.query(
                "select * from pairs where run_id = ? and kind = 'duplicate' and cluster_id = ? "
                "order by score desc limit 50",
                [item["run_id"], item_id],
            )
        ]
    elif item["record_id_r"]:
        keys.append((item["source_r"], item["object_r"], item["record_id_r"]))
    out["records"] = [_record(db, cfg, *k) for k in keys]
    out["fields"] = []
    one_system = len({r["source"] for r in out["records"]}) == 1
    for name in RECORD_FIELDS:
        values = [r.get(name) for r in out["records"]]
        # ids and timestamps differ by nature across systems: shown, never flagged
        comparable = name not in _NOT_COMPARED or (one_system and name != "external_ids")
        if name in ("created_at", "modified_at"):
            comparable = False
        if any(v not in (None, "") for v in values):
            out["fields"].append(
                {"field": name, "values": values, "differs": comparable and not _same(values, name)}
            )
    pair_id = item_id if item["kind"] == "link" else item["link_item_id"]
    if item["kind"] == "stale":
        out["stale"] = stale_detail(db, item)
        row = db.execute(
            "select link_item_id from plan_items where run_id = ? and item_id = ?",
            [item["run_id"], out["stale"].get("plan_item_id") or item["link_item_id"]],
        ).fetchone()
        pair_id = row[0] if row else None  # the link the stale write belongs to, if any
    if item["kind"] == "conflict":
        plan = dict(
            next(
                iter(
                    db.query(
                        "select * from plan_items where run_id = ? and item_id = ?",
                        [item["run_id"], item_id],
                    )
                )
            )
        )
        for col in ("before", "after", "reason", "payload", "requires"):
            try:
                plan[col] = json.loads(plan[col]) if plan[col] is not None else None
            except ValueError:
                pass
        out["plan"] = plan
        out["options"] = _value_options(plan, out["records"])
        # the conflicting field heads the side-by-side view, each value under its record
        by_source = {o["source"]: o["value"] for o in out["options"]}
        values = [by_source.get(r["source"]) for r in out["records"]]
        out["fields"].insert(
            0, {"field": f"{plan['field']} (conflict)", "values": values, "differs": True}
        )
    # a conflict's or stale write's link: decided?
    out["link_decision"] = (
        link_decision(db, pair_id) if pair_id and item["kind"] != "link" else None
    )
    out["settled"] = settled_by_link(item, out["link_decision"])
    if pair_id:
        match_run = item["run_id"] if item["kind"] == "link" else _latest_run(db, "match")
        rows = list(
            db.query("select * from pairs where run_id = ? and pair_id = ?", [match_run, pair_id])
        )
        if rows:
            p = dict(rows[0])
            out["explanation"] = {
                "levels": _with_meanings(json.loads(p["explanation"] or "[]")),
                "total": p["match_weight"],
                "score": p["score"],
                "tier": p["tier"],
                "flags": json.loads(p["flags"] or "[]"),
            }
    out["related"] = [
        rel for rec in out["records"] if not rec.get("missing") for rel in _related(db, rec)
    ]
    out["versions"] = _versions(db, item_id)
    ids = [item_id]
    out["merge_item_id"] = _merge_item(db, item_id) if item["kind"] == "duplicate" else None
    if out["merge_item_id"]:  # a cluster's surviving values are decided on its merge item
        ids.append(out["merge_item_id"])
        merge_versions = _versions(db, out["merge_item_id"])
        out["versions"].update(
            {k: v for k, v in merge_versions.items() if k.startswith("conflict_value:")}
        )
        out["chosen"] = {
            k.split(":", 1)[1]: v for k, v in _chosen_values(db, out["merge_item_id"]).items()
        }
    if item["kind"] == "duplicate":
        out["master"] = _master_of(db, item_id, out["merge_item_id"])
    marks = ", ".join("?" * len(ids))
    out["history"] = [
        dict(r)
        for r in db.query(
            f"select * from decisions where item_id in ({marks}) order by decision_id desc limit 100",
            ids,
        )
    ]
    return out


def link_decision(db: sqlite_utils.Database, pair_id: str) -> dict[str, Any] | None:
    """The current decision on a link (``label``, ``reviewer``, ``decided_at``), or None."""
    row = db.execute(
        "select label, reviewer, decided_at from decisions where item_id = ? and kind = 'link' "
        "and superseded = 0 order by decision_id desc limit 1",
        [pair_id],
    ).fetchone()
    return {"label": row[0], "reviewer": row[1], "decided_at": row[2]} if row else None


def settled_by_link(item: dict[str, Any], link: dict[str, Any] | None) -> str | None:
    """Why a conflict takes no decision (its link was rejected: no value of it will be written,
    and the next plan leaves it out), or None when it does.

    Examples:
        >>> settled_by_link({"kind": "conflict"}, {"label": "non_match", "reviewer": "ana"})
        'its link was rejected (by ana): no value of this conflict will be written, and the next plan leaves it out'
        >>> settled_by_link({"kind": "conflict"}, {"label": "match", "reviewer": "ana"}) is None
        True
    """
    if item.get("kind") != "conflict" or not link or link.get("label") not in LINK_REJECTED:
        return None
    by = f" (by {link['reviewer']})" if link.get("reviewer") else ""
    return (
        f"its link was rejected{by}: no value of this conflict will be written, and the next "
        "plan leaves it out"
    )


def _value_options(plan: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values a conflict can settle on: each side's value, labelled with its source
    (``proposed``: the side the plan proposes, the newer one, see ``Planner.conflict``) and
    what keeping it would write onto the other side (``writes``: ``system``, ``value``, ``ok``
    and, when nothing can be written, ``why``)."""
    options: list[dict[str, Any]] = []
    payload: dict[str, Any] = plan["payload"] if isinstance(plan.get("payload"), dict) else {}
    proposed = (
        (proposed_choice(plan.get("after")) or {}).get("side")
        if plan.get("action") == "conflict"
        else None
    )
    for source in ("hubspot", "salesforce"):
        side = payload.get(source)
        if isinstance(side, dict):  # the plan's conflict payload: one dict per side
            option = {"source": source, "value": side.get("value")}
            if source == proposed:
                option["proposed"] = True
            # what keeping this value writes onto the other side: the value as that side
            # takes it, or nothing (no such option there, read-only, or direction forbids)
            other = "salesforce" if source == "hubspot" else "hubspot"
            found = payload.get(other)
            target: dict[str, Any] = found if isinstance(found, dict) else {}
            written = side.get(f"as_{other}")
            option["writes"] = {
                "system": other,
                "value": written,
                "ok": written not in (None, "") and target.get("writable") is not False,
                "why": (
                    f"{other} may not be written (direction or read-only)"
                    if target.get("writable") is False
                    else f"the value has no equivalent on {other} (e.g. no such option)"
                    if written in (None, "")
                    else None
                ),
            }
            options.append(option)
    values: dict[str, Any] = payload["values"] if isinstance(payload.get("values"), dict) else {}
    if not options:
        options = [{"source": source, "value": value} for source, value in values.items()]
    if not options:
        other = next((r["source"] for r in records if r["source"] != plan["system"]), "proposed")
        options = [
            {"source": plan["system"], "value": plan["before"]},
            {"source": other, "value": plan["after"]},
        ]
    return options


def _master_of(
    db: sqlite_utils.Database, cluster_id: str, merge_item_id: str | None
) -> dict[str, Any] | None:
    """The record a cluster merges into: the reviewer's current choice, else the plan's
    (``{"record_id", "by": "reviewer" | "plan", "survivors": {field: value}, "values":
    {field: {record id: value}}}``: the fields the merge compares, by the CRM's names), or
    None."""
    from .plan import merge_as_decided

    survivors: dict[str, Any] = {}
    values: dict[str, Any] = {}
    plan_run = _latest_run(db, "plan", forward=True) if merge_item_id else None
    merge = merge_as_decided(db, plan_run, merge_item_id) if plan_run and merge_item_id else None
    if merge is not None:
        # what apply would write now: survivorship for the reviewer's master and choices
        payload = merge["payload"]
        survivors = {f: d.get("value") for f, d in (payload.get("survivorship") or {}).items()}
        values = payload.get("values") or {}
    master = current_master(db, cluster_id, merge_item_id)
    if master is None:
        return None
    return {**master, "survivors": survivors, "values": values}


def current_master(
    db: sqlite_utils.Database, cluster_id: str, merge_item_id: str | None
) -> dict[str, Any] | None:
    """The record a cluster merges into now, cheaply (no survivorship): the reviewer's current
    ``master`` decision, else the latest plan's merge item's master (``{"record_id", "by":
    "reviewer" | "plan"}``), or None."""
    dec = db.execute(
        "select label, choice from decisions where item_id = ? and kind = 'master' "
        "and superseded = 0 order by decision_id desc limit 1",
        [cluster_id],
    ).fetchone()
    if dec and dec[0] not in REFUSING_LABELS and dec[1]:
        try:
            choice = json.loads(dec[1])
        except ValueError:
            choice = dec[1]
        chosen = choice.get("master") if isinstance(choice, dict) else choice
        if chosen:
            return {"record_id": str(chosen), "by": "reviewer"}
    if not merge_item_id:
        return None
    row = db.execute(
        "select json_extract(payload, '$.master') from plan_items where run_id = ? and item_id = ?",
        [_latest_run(db, "plan", forward=True), merge_item_id],
    ).fetchone()
    return {"record_id": str(row[0]), "by": "plan"} if row and row[0] else None


def _merge_item(db: sqlite_utils.Database, cluster_id: str) -> str | None:
    plan_run = _latest_run(db, "plan", forward=True)
    row = db.execute(
        "select item_id from plan_items where run_id = ? and action = 'merge' and link_item_id = ? limit 1",
        [plan_run, cluster_id],
    ).fetchone()
    return str(row[0]) if row else None


def _chosen_values(db: sqlite_utils.Database, item_id: str) -> dict[str, Any]:
    rows = db.execute(
        "select json_extract(choice, '$.field'), choice from decisions "
        "where item_id = ? and kind = 'conflict_value' and superseded = 0 order by decision_id",
        [item_id],
    ).fetchall()
    return {f"conflict_value:{f}": json.loads(c).get("value") for f, c in rows if f}
