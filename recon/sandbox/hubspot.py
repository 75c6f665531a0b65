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
    begin,
    bool_param,
    json_body,
    list_param,
    not_found,
    object_type,
    record_json,
    validation,
)
from .hs_records import init_schema
from .hs_search import SearchError, run_search
from .hs_write import (
    check_values,
    conflict,
    create_one,
    fault_error,
    merge_records,
    props_of,
    singular,
)
from .state import SandboxState

__all__ = ["admin_edit", "create_records", "init_schema", "routes"]

SIDE = "hubspot"
Handler = Callable[[Request, str], Awaitable[Response]]


def create_records(state: SandboxState, obj: str, records: list[dict[str, Any]]) -> list[str]:
    """Create records through the validated API path (no HTTP); return their ids.

    Raises:
        ReconError: a value is invalid or a unique value exists.
    """
    ids = []
    try:
        with state.tx() as conn:
            for props in records:
                ids.append(str(create_one(state, conn, obj, {"properties": props}, "library")))
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
            clean = check_values(conn, obj, fields, ui=True)
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
            response = await fn(request, object_type(raw))
            if "/search" not in name:  # search is exempt from the ten-second bucket
                response.headers.update(state.faults.hubspot_rate_headers())
            return response
        except BadRequest as exc:
            return exc.response

    return endpoint


def routes(state: SandboxState) -> list[BaseRoute]:
    """The HubSpot routes: objects here, properties/owners/associations from ``hs_meta``."""
    from . import hs_batch, hs_meta

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
            known = rec.properties_of(conn, obj)
            results = [
                record_json(
                    conn,
                    obj,
                    row,
                    list_param(q.getlist("properties")),
                    history=list_param(q.getlist("propertiesWithHistory")),
                    associations=list_param(q.getlist("associations")),
                    known=known,
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
            return fault_error(fault)
        with state.tx() as conn:
            rid = create_one(
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
            clean = check_values(conn, obj, props)
            for prop, value, existing in rec.unique_conflicts(conn, obj, clean, rid):
                raise conflict(obj, existing, prop, value)
            fault = state.faults.record_error(SIDE, obj, {**props_of(row), **props})
            if fault:
                return fault_error(fault)
            rec.update_record(state, conn, obj, rid, clean, request_id)
            row = rec.get_rows(conn, obj, [rid])[rid]
            return JSONResponse(record_json(conn, obj, row, sorted(set(props))))

    async def search(request: Request, obj: str) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected an object")
        settings = state.settings
        lag = settings.hubspot_search_lag_s
        update_lag = settings.hubspot_search_update_lag_s or lag
        visible = None
        if lag > 0 or update_lag > 0:  # (now, create lag, update lag) in ms
            visible = (rec.ms_of(state.now()), int(lag * 1000), int(update_lag * 1000))
        with state.tx() as conn:
            try:
                total, rows, nxt = run_search(conn, obj, body, indexed=visible)
            except SearchError as exc:
                raise validation(str(exc)) from None
            known = rec.properties_of(conn, obj)
            results = [
                record_json(conn, obj, row, body.get("properties") or None, known=known)
                for row in rows
            ]
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
                raise validation(f"Cannot merge {singular(obj).lower()} {primary} with itself")
            merge_records(state, conn, obj, primary, other, state.new_request_id())
            row = rec.get_rows(conn, obj, [primary])[primary]
            return JSONResponse(record_json(conn, obj, row, None))

    objects = "/crm/v3/objects/{type}"
    table: list[tuple[str, str, Handler, list[str]]] = [
        *[
            (f"{objects}/batch/{action}", f"/batch/{action}", fn, ["POST"])
            for action, fn in hs_batch.handlers(state).items()
        ],
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
