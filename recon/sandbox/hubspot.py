"""The HubSpot CRM v3 emulator: objects, batch, search and merge endpoints.

Answers ``/crm/v3/objects/{type}`` for every standard object type (by plural or
singular name or type id) the way ``hubspot-api-client`` 12 deserializes it:
create 201, batch create 201 or 207, batch read/update/upsert 200 or 207,
archive 204, everything else 200. Properties, owners and associations v4 live in
:mod:`recon.sandbox.hs_meta`; storage in :mod:`recon.sandbox.hs_records`; search
in :mod:`recon.sandbox.hs_search`.

Library helpers for tests and the demo loader: :func:`create_records`,
:func:`admin_edit`, and :func:`~recon.sandbox.hs_records.bulk_load`.

Examples:
    >>> from recon.sandbox.state import SandboxState
    >>> state = SandboxState(":memory:")
    >>> create_records(state, "companies", [{"name": "Acme", "domain": "acme.com"}])
    ['1']
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ReconError
from . import hs_records as rec
from .hs_http import (
    BadRequest,
    batch_error,
    batch_json,
    begin,
    bool_param,
    error,
    inputs_of,
    json_body,
    list_param,
    not_found,
    object_type,
    record_json,
    started_at,
    validation,
)
from .hs_records import init_schema
from .hs_schema import ALL_TYPES, type_id
from .hs_search import SearchError, run_search
from .state import SandboxState

__all__ = ["admin_edit", "create_records", "init_schema", "routes"]

SIDE = "hubspot"
Handler = Callable[[Request, str], Awaitable[Response]]


def _singular(obj: str) -> str:
    return ALL_TYPES[obj][1].upper()


def _check_values(conn: sqlite3.Connection, obj: str, values: Any) -> dict[str, str | None]:
    if not isinstance(values, dict):
        raise validation("Invalid input JSON: properties must be an object")
    clean, errors = rec.validate(conn, obj, values)
    if errors:
        raise validation(
            rec.validation_message(errors),
            errors=[{"message": e["message"], "in": e["name"], "code": e["error"]} for e in errors],
        )
    return clean


def _conflict(obj: str, existing: int, prop: str, value: str) -> BadRequest:
    if obj == "contacts" and prop == "email":
        message = f"Contact already exists. Existing ID: {existing}"
    else:
        message = (
            f"A {ALL_TYPES[obj][1]} with {prop} {value!r} already exists. Existing ID: {existing}"
        )
    return BadRequest(error(409, message, "CONFLICT"))


def _fault_error(fault: dict[str, Any]) -> JSONResponse:
    category = "CONFLICT" if fault["kind"] == "duplicate" else "VALIDATION_ERROR"
    return error(
        int(fault["status"]),
        fault["message"],
        fault["code"] if fault["code"] != category else category,
        context={"properties": fault["fields"]},
    )


def _assoc_inputs(conn: sqlite3.Connection, obj: str, rid: int, associations: Any) -> None:
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


def _create_one(
    state: SandboxState, conn: sqlite3.Connection, obj: str, item: dict[str, Any], request_id: str
) -> int:
    clean = _check_values(conn, obj, item.get("properties") or {})
    for prop, value, existing in rec.unique_conflicts(conn, obj, clean):
        raise _conflict(obj, existing, prop, value)
    rid = rec.insert_record(state, conn, obj, clean, request_id)
    _assoc_inputs(conn, obj, rid, item.get("associations"))
    return rid


def create_records(state: SandboxState, obj: str, records: list[dict[str, Any]]) -> list[str]:
    """Create records through the validated API path (no HTTP); return their ids.

    Raises:
        ReconError: a value is invalid or a unique value exists.
    """
    ids = []
    try:
        with state.tx() as conn:
            for props in records:
                ids.append(str(_create_one(state, conn, obj, {"properties": props}, "library")))
    except BadRequest as exc:
        raise ReconError(f"cannot create {obj}: {exc}") from None
    return ids


def admin_edit(
    state: SandboxState, object: str, record_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Edit a record as a HubSpot user would (bumps its last-modified time); return it.

    Raises:
        ReconError: unknown type or record, or invalid values.
    """
    from .hs_schema import resolve_type

    obj = resolve_type(object)
    if obj is None:
        raise ReconError(f"unknown HubSpot object type {object!r}")
    with state.tx() as conn:
        rid = rec.find_id(conn, obj, record_id)
        row = rec.get_rows(conn, obj, [rid]).get(rid) if rid else None
        if rid is None or row is None or row["archived"]:
            raise ReconError(f"HubSpot {obj} {record_id} not found")
        try:
            clean = _check_values(conn, obj, fields)
        except BadRequest as exc:
            raise ReconError(f"cannot edit HubSpot {obj} {record_id}: {exc}") from None
        rec.update_record(state, conn, obj, rid, clean, "admin", action="edited")
        row = rec.get_rows(conn, obj, [rid])[rid]
        return record_json(conn, obj, row, sorted(rec.properties_of(conn, obj)))


def _base(state: SandboxState, request: Request) -> str:
    return state.settings.base_url or str(request.base_url).rstrip("/")


def _wrap(
    state: SandboxState, template: str, fn: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = request.path_params.get("type", "")
        from .hs_schema import resolve_type

        name = f"{request.method} {template.format(type=resolve_type(raw) or raw)}"
        stop = await begin(state, request, name)
        if stop is not None:
            return stop
        try:
            return await fn(request, object_type(raw))
        except BadRequest as exc:
            return exc.response

    return endpoint


def routes(state: SandboxState) -> list[BaseRoute]:
    """The HubSpot routes: objects here, properties/owners/associations from ``hs_meta``."""
    from . import hs_meta

    async def list_(request: Request, obj: str) -> Response:
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit") or 10), 100))
            after = int(q.get("after") or 0)
        except ValueError:
            raise validation("limit and after must be integers") from None
        archived = bool_param(q.get("archived"))
        with state.tx() as conn:
            rows = conn.execute(
                "SELECT * FROM hs_records WHERE object = ? AND archived = ? AND merged_into IS NULL AND id >= ? "
                "ORDER BY id LIMIT ?",
                (obj, int(archived), after, limit + 1),
            ).fetchall()
            results = [
                record_json(
                    conn,
                    obj,
                    row,
                    list_param(q.getlist("properties")),
                    history=list_param(q.getlist("propertiesWithHistory")),
                    associations=list_param(q.getlist("associations")),
                )
                for row in rows[:limit]
            ]
        body: dict[str, Any] = {"results": results}
        if len(rows) > limit:
            nxt = str(rows[limit]["id"])
            params = [(k, v) for k, v in q.multi_items() if k != "after"] + [("after", nxt)]
            link = f"{_base(state, request)}/crm/v3/objects/{obj}?{urlencode(params)}"
            body["paging"] = {"next": {"after": nxt, "link": link}}
        return JSONResponse(body)

    async def get(request: Request, obj: str) -> Response:
        q = request.query_params
        raw_id = request.path_params["id"]
        with state.tx() as conn:
            rid = rec.find_id(conn, obj, raw_id, q.get("idProperty"))
            row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
            if row is None or bool(row["archived"]) != bool_param(q.get("archived")):
                return not_found(obj, raw_id)
            return JSONResponse(
                record_json(
                    conn,
                    obj,
                    row,
                    list_param(q.getlist("properties")),
                    history=list_param(q.getlist("propertiesWithHistory")),
                    associations=list_param(q.getlist("associations")),
                )
            )

    async def create(request: Request, obj: str) -> Response:
        body = await json_body(request)
        item = body if isinstance(body, dict) else {}
        props = item.get("properties") or {}
        fault = state.faults.record_error(SIDE, obj, props)
        if fault:
            return _fault_error(fault)
        with state.tx() as conn:
            rid = _create_one(
                state,
                conn,
                obj,
                item,
                request.headers.get("x-request-id") or state.new_request_id(),
            )
            row = rec.get_rows(conn, obj, [rid])[rid]
            return JSONResponse(record_json(conn, obj, row, sorted(set(props))), status_code=201)

    async def one(request: Request, obj: str) -> Response:
        if request.method == "GET":
            return await get(request, obj)
        raw_id = request.path_params["id"]
        request_id = state.new_request_id()
        if request.method == "DELETE":
            with state.tx() as conn:
                rid = rec.find_id(conn, obj, raw_id)
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                if row is not None and rid is not None and not row["archived"]:
                    rec.archive_record(state, conn, obj, rid, request_id)
            return Response(status_code=204)
        body = await json_body(request)
        props = body.get("properties") if isinstance(body, dict) else None
        if not props:
            raise validation(
                "No properties found to update, please provide at least one.",
                context={"properties": ["{}"]},
            )
        with state.tx() as conn:
            id_prop = request.query_params.get("idProperty")
            rid = rec.find_id(conn, obj, raw_id, id_prop)
            row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
            if rid is None or row is None or row["archived"]:
                return not_found(obj, raw_id)
            clean = _check_values(conn, obj, props)
            for prop, value, existing in rec.unique_conflicts(conn, obj, clean, rid):
                raise _conflict(obj, existing, prop, value)
            fault = state.faults.record_error(SIDE, obj, {**_props_of(row), **props})
            if fault:
                return _fault_error(fault)
            rec.update_record(state, conn, obj, rid, clean, request_id)
            row = rec.get_rows(conn, obj, [rid])[rid]
            return JSONResponse(record_json(conn, obj, row, sorted(set(props))))

    async def batch_read(request: Request, obj: str) -> Response:
        body = await json_body(request)
        inputs = inputs_of(body)
        history = body.get("propertiesWithHistory") or None
        if history and len(inputs) > 50:
            raise validation(
                "The maximum number of inputs supported in a batch request for property histories is 50. "
                "Please reduce the number of items and try again"
            )
        archived = bool_param(request.query_params.get("archived"))
        id_prop = body.get("idProperty")
        started = started_at()
        with state.tx() as conn:
            _check_id_property(conn, obj, id_prop, allow_object_id=True)
            results, missing = [], []
            for item in inputs:
                raw = str(item.get("id", ""))
                rid = rec.find_id(conn, obj, raw, id_prop)
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                if row is None or bool(row["archived"]) != archived:
                    missing.append(raw)
                    continue
                results.append(
                    record_json(conn, obj, row, body.get("properties") or [], history=history)
                )
        errors = []
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {_singular(obj)} objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    missing,
                )
            )
        return batch_json(results, errors, started, 200)

    async def batch_create(request: Request, obj: str) -> Response:
        inputs = inputs_of(await json_body(request))
        request_id = state.new_request_id()
        started = started_at()
        results, errors = [], []
        with state.tx() as conn:
            cleaned = [_check_values(conn, obj, item.get("properties") or {}) for item in inputs]
            seen: dict[tuple[str, str], int] = {}
            for clean in cleaned:
                for prop, value, existing in rec.unique_conflicts(conn, obj, clean):
                    raise _conflict(obj, existing, prop, value)
                for prop in rec.unique_properties(conn, obj):
                    if clean.get(prop):
                        key = (prop, str(clean[prop]).lower())
                        if key in seen:
                            raise validation(f"Duplicate {prop} {clean[prop]!r} in batch inputs")
                        seen[key] = 1
            for item, clean in zip(inputs, cleaned, strict=True):
                trace = item.get("objectWriteTraceId")
                fault = state.faults.record_error(SIDE, obj, item.get("properties") or {})
                if fault:
                    context: dict[str, Any] = {"properties": fault["fields"]}
                    if trace:
                        context["objectWriteTraceId"] = [trace]
                    errors.append(
                        {**batch_error(fault["code"], fault["message"], []), "context": context}
                    )
                    continue
                rid = rec.insert_record(state, conn, obj, clean, request_id)
                _assoc_inputs(conn, obj, rid, item.get("associations"))
                out = record_json(conn, obj, rec.get_rows(conn, obj, [rid])[rid], sorted(clean))
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        return batch_json(results, errors, started, 201)

    async def batch_update(request: Request, obj: str) -> Response:
        body = await json_body(request)
        inputs = inputs_of(body)
        request_id = state.new_request_id()
        started = started_at()
        results, errors, missing = [], [], []
        with state.tx() as conn:
            for item in inputs:
                id_prop = item.get("idProperty") or body.get("idProperty")
                _check_id_property(conn, obj, id_prop, allow_object_id=False)
            cleaned = [_check_values(conn, obj, item.get("properties") or {}) for item in inputs]
            for item, clean in zip(inputs, cleaned, strict=True):
                raw = str(item.get("id", ""))
                rid = rec.find_id(conn, obj, raw, item.get("idProperty") or body.get("idProperty"))
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                if rid is None or row is None or row["archived"]:
                    missing.append(raw)
                    continue
                conflicts = rec.unique_conflicts(conn, obj, clean, rid)
                fault = state.faults.record_error(
                    SIDE, obj, {**_props_of(row), **(item.get("properties") or {})}
                )
                if conflicts or fault:
                    if conflicts:
                        prop, value, existing = conflicts[0]
                        msg = f"{prop} {value!r} already exists on {obj} {existing}"
                        errors.append(batch_error("CONFLICT", msg, [raw]))
                    elif fault:
                        errors.append(
                            {
                                **batch_error(fault["code"], fault["message"], [raw]),
                                "context": {"ids": [raw], "properties": fault["fields"]},
                            }
                        )
                    continue
                rec.update_record(state, conn, obj, rid, clean, request_id)
                results.append(
                    record_json(conn, obj, rec.get_rows(conn, obj, [rid])[rid], sorted(clean))
                )
        if missing:
            errors.append(
                batch_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {_singular(obj)} objects, they may be deleted or not exist. Check that ids are valid.",
                    missing,
                )
            )
        return batch_json(results, errors, started, 200)

    async def batch_upsert(request: Request, obj: str) -> Response:
        inputs = inputs_of(await json_body(request))
        request_id = state.new_request_id()
        started = started_at()
        results, errors = [], []
        with state.tx() as conn:
            for item in inputs:
                _check_id_property(
                    conn, obj, item.get("idProperty"), allow_object_id=False, required=True
                )
            cleaned = [_check_values(conn, obj, item.get("properties") or {}) for item in inputs]
            for item, clean in zip(inputs, cleaned, strict=True):
                raw, id_prop = str(item.get("id", "")), str(item["idProperty"])
                fault = state.faults.record_error(
                    SIDE, obj, {id_prop: raw, **(item.get("properties") or {})}
                )
                if fault:
                    errors.append(
                        {
                            **batch_error(fault["code"], fault["message"], [raw]),
                            "context": {"ids": [raw], "properties": fault["fields"]},
                        }
                    )
                    continue
                rid = rec.find_id(conn, obj, raw, id_prop)
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                is_new = row is None or bool(row["archived"])
                if is_new:
                    clean = {**clean, id_prop: raw}
                    conflicts = rec.unique_conflicts(conn, obj, clean)
                    if conflicts:
                        errors.append(
                            batch_error("CONFLICT", f"{conflicts[0][0]} already exists", [raw])
                        )
                        continue
                    rid = rec.insert_record(state, conn, obj, clean, request_id)
                else:
                    assert rid is not None
                    conflicts = rec.unique_conflicts(conn, obj, clean, rid)
                    if conflicts:
                        errors.append(
                            batch_error("CONFLICT", f"{conflicts[0][0]} already exists", [raw])
                        )
                        continue
                    rec.update_record(state, conn, obj, rid, clean, request_id)
                out = record_json(conn, obj, rec.get_rows(conn, obj, [rid])[rid], sorted(clean))
                results.append({**out, "new": is_new})
        return batch_json(results, errors, started, 200)

    async def batch_archive(request: Request, obj: str) -> Response:
        inputs = inputs_of(await json_body(request))
        request_id = state.new_request_id()
        with state.tx() as conn:
            for item in inputs:
                rid = rec.find_id(conn, obj, str(item.get("id", "")))
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                if rid is not None and row is not None and not row["archived"]:
                    rec.archive_record(state, conn, obj, rid, request_id)
        return Response(status_code=204)

    async def search(request: Request, obj: str) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected an object")
        lag = state.settings.hubspot_search_lag_s
        visible = rec.ms_of(state.now()) - int(lag * 1000) if lag > 0 else None
        with state.tx() as conn:
            try:
                total, rows, nxt = run_search(conn, obj, body, visible_before_ms=visible)
            except SearchError as exc:
                raise validation(str(exc)) from None
            results = [record_json(conn, obj, row, body.get("properties") or None) for row in rows]
        out: dict[str, Any] = {"total": total, "results": results}
        if nxt is not None:
            out["paging"] = {"next": {"after": str(nxt), "link": None}}
            del out["paging"]["next"]["link"]
        return JSONResponse(out)

    async def merge(request: Request, obj: str) -> Response:
        body = await json_body(request)
        primary_raw = str(body.get("primaryObjectId", ""))
        other_raw = str(body.get("objectIdToMerge", ""))
        if obj == "companies" and state.settings.salesforce_connector_enabled:
            raise validation(
                "Company merges are not supported while the Salesforce integration is enabled for this account.",
                subCategory="MergeError.SALESFORCE_INTEGRATION_ENABLED",
            )
        if not primary_raw or not other_raw:
            raise validation("primaryObjectId and objectIdToMerge are required")
        with state.tx() as conn:
            primary = rec.find_id(conn, obj, primary_raw)
            other = rec.find_id(conn, obj, other_raw)
            rows = rec.get_rows(conn, obj, [i for i in (primary, other) if i is not None])
            for raw, rid in ((primary_raw, primary), (other_raw, other)):
                if rid is None or rid not in rows or rows[rid]["archived"]:
                    return not_found(obj, raw)
            assert primary is not None and other is not None
            if primary == other:
                raise validation(f"Cannot merge {_singular(obj).lower()} {primary} with itself")
            _merge(state, conn, obj, primary, other, state.new_request_id())
            row = rec.get_rows(conn, obj, [primary])[primary]
            return JSONResponse(record_json(conn, obj, row, None))

    objects = "/crm/v3/objects/{type}"
    table: list[tuple[str, str, Handler, list[str]]] = [
        (f"{objects}/batch/read", "/batch/read", batch_read, ["POST"]),
        (f"{objects}/batch/create", "/batch/create", batch_create, ["POST"]),
        (f"{objects}/batch/update", "/batch/update", batch_update, ["POST"]),
        (f"{objects}/batch/upsert", "/batch/upsert", batch_upsert, ["POST"]),
        (f"{objects}/batch/archive", "/batch/archive", batch_archive, ["POST"]),
        (f"{objects}/search", "/search", search, ["POST"]),
        (f"{objects}/merge", "/merge", merge, ["POST"]),
        (objects, "", _by_method(list_, create), ["GET", "POST"]),
        (f"{objects}/{{id}}", "/{{id}}", one, ["GET", "PATCH", "DELETE"]),
    ]
    out: list[BaseRoute] = [
        Route(path, _wrap(state, "/crm/v3/objects/{type}" + suffix, fn), methods=methods)
        for path, suffix, fn, methods in table
    ]
    return out + hs_meta.routes(state)


def _by_method(get_fn: Handler, post_fn: Handler) -> Handler:
    async def handler(request: Request, obj: str) -> Response:
        return await (get_fn if request.method == "GET" else post_fn)(request, obj)

    return handler


def _props_of(row: sqlite3.Row) -> dict[str, Any]:
    import json

    return dict(json.loads(row["props"]))


def _check_id_property(
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


def _merge(
    state: SandboxState,
    conn: sqlite3.Connection,
    obj: str,
    primary: int,
    other: int,
    request_id: str,
) -> None:
    rows = rec.get_rows(conn, obj, [primary, other])
    keep, gone = _props_of(rows[primary]), _props_of(rows[other])
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
    for row in conn.execute(
        "SELECT to_type, to_id, category, type_id FROM hs_assoc WHERE from_type = ? AND from_id = ?",
        (obj, other),
    ).fetchall():
        if not (row["to_type"] == obj and row["to_id"] == primary):
            rec.associate(
                conn,
                obj,
                primary,
                row["to_type"],
                row["to_id"],
                [(row["category"], row["type_id"])],
            )
        rec.dissociate(conn, obj, other, row["to_type"], row["to_id"])
    conn.execute(
        "UPDATE hs_records SET archived = 1, archived_ms = ?, merged_into = ? WHERE id = ?",
        (rec.ms_of(state.now()), primary, other),
    )
    conn.execute("UPDATE hs_records SET merged_into = ? WHERE merged_into = ?", (primary, other))
    rec.update_record(state, conn, obj, primary, fill, request_id, action="merged")
    state.log_change(SIDE, obj, str(other), "merged", request_id, {"into": str(primary)})
