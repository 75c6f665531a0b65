"""Write helpers of the HubSpot emulator: value checks, conflicts, creates, merges.

Shared by the object endpoints (:mod:`recon.sandbox.hubspot`) and the batch
endpoints (:mod:`recon.sandbox.hs_batch`); they work inside ``SandboxState.tx()``
and raise :class:`~recon.sandbox.hs_http.BadRequest` for answers HubSpot refuses.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from starlette.responses import JSONResponse

from . import hs_records as rec
from .hs_http import BadRequest, error, validation
from .hs_schema import ALL_TYPES, type_id
from .state import SandboxState

__all__ = [
    "assoc_inputs",
    "check_id_property",
    "check_values",
    "conflict",
    "create_one",
    "fault_error",
    "merge_records",
    "props_of",
    "singular",
]

SIDE = "hubspot"


def singular(obj: str) -> str:
    return ALL_TYPES[obj][1].upper()


def check_values(
    conn: sqlite3.Connection, obj: str, values: Any, *, ui: bool = False
) -> dict[str, str | None]:
    if not isinstance(values, dict):
        raise validation("Invalid input JSON: properties must be an object")
    clean, errors = rec.validate(conn, obj, values, ui=ui)
    if errors:
        raise validation(
            rec.validation_message(errors),
            errors=[{"message": e["message"], "in": e["name"], "code": e["error"]} for e in errors],
        )
    return clean


def conflict(obj: str, existing: int, prop: str, value: str) -> BadRequest:
    if obj == "contacts" and prop == "email":
        message = f"Contact already exists. Existing ID: {existing}"
    else:
        message = (
            f"A {ALL_TYPES[obj][1]} with {prop} {value!r} already exists. Existing ID: {existing}"
        )
    return BadRequest(error(409, message, "CONFLICT"))


def fault_error(fault: dict[str, Any]) -> JSONResponse:
    category = "CONFLICT" if fault["kind"] == "duplicate" else "VALIDATION_ERROR"
    return error(
        int(fault["status"]),
        fault["message"],
        fault["code"] if fault["code"] != category else category,
        context={"properties": fault["fields"]},
    )


def assoc_inputs(conn: sqlite3.Connection, obj: str, rid: int, associations: Any) -> None:
    for item in associations or []:
        to_id = int(str((item.get("to") or {}).get("id", "0")) or 0)
        pairs = [
            (t.get("associationCategory", "HUBSPOT_DEFINED"), int(t.get("associationTypeId", 0)))
            for t in item.get("types") or []
        ]
        to_type = None
        for (f, t), ids in rec.ASSOC_TYPES.items():
            if f == obj and any(tid in ids for _c, tid in pairs):
                to_type = t
        if to_type is None or not pairs:
            raise validation(f"Unknown association type for {obj}: {pairs}")
        if rec.find_id(conn, to_type, str(to_id)) is None:
            raise validation(f"association target {to_type} {to_id} does not exist")
        rec.associate(conn, obj, rid, to_type, to_id, pairs)


def create_one(
    state: SandboxState, conn: sqlite3.Connection, obj: str, item: dict[str, Any], request_id: str
) -> int:
    clean = check_values(conn, obj, item.get("properties") or {})
    for prop, value, existing in rec.unique_conflicts(conn, obj, clean):
        raise conflict(obj, existing, prop, value)
    rid = rec.insert_record(state, conn, obj, clean, request_id)
    assoc_inputs(conn, obj, rid, item.get("associations"))
    return rid


def props_of(row: sqlite3.Row) -> dict[str, Any]:
    return dict(json.loads(row["props"]))


def check_id_property(
    conn: sqlite3.Connection,
    obj: str,
    id_prop: Any,
    *,
    allow_object_id: bool,
    required: bool = False,
) -> None:
    if not id_prop:
        if required:
            raise validation("idProperty is required for upsert")
        return
    if id_prop == "hs_object_id" and allow_object_id:
        return
    if id_prop not in rec.unique_properties(conn, obj):
        raise validation(
            f"Unable to perform update/upsert by non-unique {type_id(obj)} property {id_prop}. "
            "Use a property with hasUniqueValue=true."
        )


def merge_records(
    state: SandboxState,
    conn: sqlite3.Connection,
    obj: str,
    primary: int,
    other: int,
    request_id: str,
) -> None:
    rows = rec.get_rows(conn, obj, [primary, other])
    keep, gone = props_of(rows[primary]), props_of(rows[other])
    fill = {
        k: v
        for k, v in gone.items()
        if keep.get(k) in (None, "") and k in rec.properties_of(conn, obj)
    }
    for key in (
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
        "lastmodifieddate",
        "hs_merged_object_ids",
    ):
        fill.pop(key, None)
    merged_ids = [i for i in str(keep.get("hs_merged_object_ids") or "").split(";") if i]
    merged_ids += [str(other)] + [
        i for i in str(gone.get("hs_merged_object_ids") or "").split(";") if i
    ]
    fill["hs_merged_object_ids"] = ";".join(merged_ids)
    if obj == "contacts":
        extra = [e for e in str(keep.get("hs_additional_emails") or "").split(";") if e]
        if gone.get("email") and gone.get("email") != keep.get("email"):
            extra.append(str(gone["email"]))
        if extra:
            fill["hs_additional_emails"] = ";".join(extra)
        fill["hs_calculated_merged_vids"] = ";".join(
            f"{i}:{rows[other]['updated_ms']}" for i in merged_ids
        )
    # unique values of the merged-away record now lead to the survivor
    conn.execute(
        "UPDATE OR IGNORE hs_unique SET id = ? WHERE object = ? AND id = ?", (primary, obj, other)
    )
    conn.execute("DELETE FROM hs_unique WHERE object = ? AND id = ?", (obj, other))
    # the primary company label stays the survivor's: the merged record's moves only when the
    # survivor has none
    kept_primary = conn.execute(
        "SELECT 1 FROM hs_assoc WHERE from_type = ? AND from_id = ? AND to_type = 'companies' "
        "AND category = 'HUBSPOT_DEFINED' AND type_id = 1",
        (obj, primary),
    ).fetchone()
    for row in conn.execute(
        "SELECT to_type, to_id, category, type_id FROM hs_assoc WHERE from_type = ? AND from_id = ?",
        (obj, other),
    ).fetchall():
        label = (row["category"], row["type_id"])
        if obj == "contacts" and kept_primary and label == ("HUBSPOT_DEFINED", 1):
            label = ("HUBSPOT_DEFINED", rec.ASSOC_TYPES[("contacts", "companies")][0])
        if not (row["to_type"] == obj and row["to_id"] == primary):
            rec.associate(conn, obj, primary, row["to_type"], row["to_id"], [label])
        rec.dissociate(conn, obj, other, row["to_type"], row["to_id"])
    conn.execute(
        "UPDATE hs_records SET archived = 1, archived_ms = ?, merged_into = ? WHERE id = ?",
        (rec.ms_of(state.now()), primary, other),
    )
    conn.execute("UPDATE hs_records SET merged_into = ? WHERE merged_into = ?", (primary, other))
    rec.update_record(state, conn, obj, primary, fill, request_id, action="merged")
    state.log_change(SIDE, obj, str(other), "merged", request_id, {"into": str(primary)})
