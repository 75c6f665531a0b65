"""sObject Rows and sObject Collections routes of the Salesforce emulator.

Rows: ``POST sobjects/{Object}/`` (201), ``GET|PATCH|DELETE sobjects/{Object}/{id}``
(PATCH honours ``If-Unmodified-Since`` with 412 ``PRECONDITION_FAILED``), upsert and
get/delete by external id (``sobjects/{Object}/{Field}/{value}``), and
``sobjects/{Object}/updated/`` / ``deleted/`` with ``start``/``end``.

Collections (``composite/sobjects``, ≤ 200 records): create (POST), update (PATCH),
upsert on an external id (PATCH ``composite/sobjects/{Object}/{Field}``), retrieve
(GET ``composite/sobjects/{Object}?ids=&fields=``) and delete (DELETE ``?ids=``);
per-record SaveResults in order, ``allOrNone`` with rollback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .sf_common import SfError, parse_datetime, store_datetime, table_name
from .sf_describe import FieldSpec, ObjectSpec, describe_global
from .sf_rest import DATA, Ctx, api, http_date_header, json_body, object_spec
from .sf_store import api_record, fetch_row
from .sf_write import Writer, object_of, save_many

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["MAX_RECORDS", "routes"]

MAX_RECORDS = 200


def _label(request: Request) -> str:
    """Endpoint name with ids and values replaced: ``/services/data/sobjects/Account/{id}``."""
    p = request.path_params
    if "object" not in p:
        return "/services/data/composite/sobjects"
    base = (
        "/services/data/composite/sobjects/"
        if "/composite/" in request.url.path
        else "/services/data/sobjects/"
    ) + p["object"]
    if "field" in p:
        return base + "/" + p["field"] + ("/{value}" if "value" in p else "")
    if "record_id" in p:
        return base + "/{id}"
    tail = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    return base + ("/" + tail if tail in ("updated", "deleted") else "")


def _fields_param(spec: ObjectSpec, raw: str | list[str] | None) -> list[FieldSpec]:
    if raw is None:
        return list(spec.fields)
    names = raw if isinstance(raw, list) else [n.strip() for n in raw.split(",") if n.strip()]
    out = []
    for name in names:
        f = spec.field(name)
        if f is None:
            raise SfError(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{spec.name}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your "
                "WSDL or the describe call for the appropriate names.",
            )
        out.append(f)
    return out


def _shown(
    spec: ObjectSpec, row: dict[str, Any], fields: list[FieldSpec], version: str
) -> dict[str, Any]:
    return api_record(spec, {"Id": row["Id"], **{f.name: row.get(f.name) for f in fields}}, version)


def _ext_field(spec: ObjectSpec, name: str) -> FieldSpec:
    f = spec.field(name)
    if f is None or not (f.external_id or f.name == "Id"):
        raise SfError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {name}",
        )
    return f


def _ids_param(raw: str | None) -> list[str]:
    ids = [i.strip() for i in (raw or "").split(",") if i.strip()]
    if not ids:
        raise SfError(400, "MISSING_ARGUMENT", "ids parameter is required")
    if len(ids) > MAX_RECORDS:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return ids


def _records_body(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SfError(
            400, "JSON_PARSER_ERROR", 'Expected a body {"allOrNone": ..., "records": [...]}'
        )
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    return records, bool(body.get("allOrNone", False))


def _typed(record: Any, spec: ObjectSpec | None = None) -> ObjectSpec:
    if not isinstance(record, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
    found = object_of(record)
    if found is None:
        raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.", [])
    if spec is not None and found.name != spec.name:
        raise SfError(
            400, "INVALID_TYPE", f"record type {found.name} does not match {spec.name}", []
        )
    return found


def routes(state: SandboxState) -> list[BaseRoute]:
    """The sObject Rows and Collections routes."""
    wrap = api(state, _label)

    @contextmanager
    def writer_tx(ctx: Ctx) -> Iterator[Writer]:
        with state.tx() as conn:
            yield Writer(state, conn, ctx.request_id)

    # ------------------------------------------------------------------ rows

    @wrap
    async def create(ctx: Ctx) -> Response:
        spec = object_spec(ctx.request.path_params["object"])
        body = await json_body(ctx.request)
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with writer_tx(ctx) as w:
            rid = w.create(spec, body)
        return JSONResponse({"id": rid, "success": True, "errors": []}, status_code=201)

    @wrap
    async def basic_info(ctx: Ctx) -> Response:
        spec = object_spec(ctx.request.path_params["object"])
        info = next(o for o in describe_global(ctx.version)["sobjects"] if o["name"] == spec.name)
        return JSONResponse({"objectDescribe": info, "recentItems": []})

    @wrap
    async def record(ctx: Ctx) -> Response:
        request = ctx.request
        spec = object_spec(request.path_params["object"])
        rid = request.path_params["record_id"]
        if request.method == "GET":
            fields = _fields_param(spec, request.query_params.get("fields"))
            modified_since = http_date_header(request, "If-Modified-Since")
            with writer_tx(ctx) as w:
                row = w.existing(spec, rid)
            changed = parse_datetime(row["LastModifiedDate"])
            if modified_since is not None and changed is not None and changed <= modified_since:
                return Response(status_code=304)
            return JSONResponse(_shown(spec, row, fields, ctx.version))
        if request.method == "DELETE":
            with writer_tx(ctx) as w:
                w.delete(spec, rid)
            return Response(status_code=204)
        since = http_date_header(request, "If-Unmodified-Since")
        body = await json_body(request) or {}
        if not isinstance(body, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        with writer_tx(ctx) as w:
            w.update(spec, rid, body, unmodified_since=since)
        return Response(status_code=204)

    @wrap
    async def by_external_id(ctx: Ctx) -> Response:
        request = ctx.request
        spec = object_spec(request.path_params["object"])
        ext = _ext_field(spec, request.path_params["field"])
        value = request.path_params["value"]
        if request.method == "PATCH":
            body = await json_body(request) or {}
            if not isinstance(body, dict):
                raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
            with writer_tx(ctx) as w:
                rid, created = w.upsert(spec, ext, value, body)
            if created:
                return JSONResponse(
                    {"id": rid, "success": True, "errors": [], "created": True}, status_code=201
                )
            return Response(status_code=204)
        where = '"IsDeleted" = 0 AND ' if spec.field("IsDeleted") else ""
        with state.tx() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    f'SELECT "Id" FROM {table_name(spec.name)} WHERE {where}"{ext.name}" = ? LIMIT 2',
                    (value,),
                )
            ]
        if not ids:
            raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(ids) > 1:
            urls = [f"/services/data/v{ctx.version}/sobjects/{spec.name}/{i}" for i in ids]
            return JSONResponse(urls, status_code=300)
        with writer_tx(ctx) as w:
            if request.method == "DELETE":
                w.delete(spec, ids[0])
                return Response(status_code=204)
            row = w.existing(spec, ids[0])
        fields = _fields_param(spec, request.query_params.get("fields"))
        return JSONResponse(_shown(spec, row, fields, ctx.version))

    @wrap
    async def changed(ctx: Ctx) -> Response:
        request = ctx.request
        spec = object_spec(request.path_params["object"])
        bounds = []
        for key in ("start", "end"):
            raw = (request.query_params.get(key) or "").replace(" ", "+")
            ts = parse_datetime(raw)
            if ts is None:
                raise SfError(
                    400, "INVALID_REPLICATION_DATE", f"{key} is not a valid dateTime: {raw!r}"
                )
            bounds.append(store_datetime(ts))
        deleted = request.url.path.rstrip("/").endswith("/deleted")
        # objects without IsDeleted (User) are never deleted
        flag = (
            f'"IsDeleted" = {int(deleted)} AND '
            if spec.field("IsDeleted")
            else ("0 AND " if deleted else "")
        )
        with state.tx() as conn:
            rows = conn.execute(
                f'SELECT "Id", "SystemModstamp" FROM {table_name(spec.name)} WHERE {flag}'
                '"SystemModstamp" >= ? AND "SystemModstamp" < ? ORDER BY "SystemModstamp", "Id"',
                bounds,
            ).fetchall()
        latest = bounds[1][:-1] + "+0000"
        if deleted:
            return JSONResponse(
                {
                    "deletedRecords": [
                        {"id": r[0], "deletedDate": r[1][:-1] + "+0000"} for r in rows
                    ],
                    "earliestDateAvailable": "2020-01-01T00:00:00.000+0000",
                    "latestDateCovered": latest,
                }
            )
        return JSONResponse({"ids": [r[0] for r in rows], "latestDateCovered": latest})

    # ------------------------------------------------------------------ collections

    @wrap
    async def collection(ctx: Ctx) -> Response:
        request = ctx.request
        if request.method == "DELETE":
            ids = _ids_param(request.query_params.get("ids"))
            all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"

            def delete(w: Writer, rid: str) -> dict[str, Any]:
                spec = object_of({"id": rid})
                if spec is None:
                    raise SfError(400, "MALFORMED_ID", f"malformed id {rid}", [])
                return {"id": w.delete(spec, rid, status=400)}

            return JSONResponse(
                save_many(state, ctx.request_id, ids, delete, all_or_none=all_or_none)
            )
        records, all_or_none = _records_body(await json_body(request))
        if request.method == "POST":

            def create(w: Writer, record: Any) -> dict[str, Any]:
                spec = _typed(record)
                return {"id": w.create(spec, record), "_new": True}

            return JSONResponse(
                save_many(state, ctx.request_id, records, create, all_or_none=all_or_none)
            )

        def update(w: Writer, record: Any) -> dict[str, Any]:
            spec = _typed(record)
            rid = record.get("id") or record.get("Id")
            if not rid:
                raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", [])
            return {"id": w.update(spec, rid, record, status=400)}

        return JSONResponse(
            save_many(state, ctx.request_id, records, update, all_or_none=all_or_none)
        )

    @wrap
    async def collection_upsert(ctx: Ctx) -> Response:
        spec = object_spec(ctx.request.path_params["object"])
        ext = _ext_field(spec, ctx.request.path_params["field"])
        records, all_or_none = _records_body(await json_body(ctx.request))

        def upsert(w: Writer, record: Any) -> dict[str, Any]:
            _typed(record, spec)
            value = next((v for k, v in record.items() if k.lower() == ext.name.lower()), None)
            if ext.name == "Id":
                value = record.get("id") or record.get("Id")
            elif value in (None, ""):
                raise SfError(400, "MISSING_ARGUMENT", f"{ext.name} not specified", [])
            rid, created = w.upsert(spec, ext, value, record)
            return {"id": rid, "created": created}

        results = save_many(state, ctx.request_id, records, upsert, all_or_none=all_or_none)
        return JSONResponse(results)

    @wrap
    async def collection_get(ctx: Ctx) -> Response:
        request = ctx.request
        spec = object_spec(request.path_params["object"])
        if request.method == "POST":
            body = await json_body(request) or {}
            ids, raw_fields = list(body.get("ids") or []), body.get("fields")
            if len(ids) > MAX_RECORDS:
                raise SfError(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                )
        else:
            ids, raw_fields = (
                _ids_param(request.query_params.get("ids")),
                request.query_params.get("fields"),
            )
        if not raw_fields:
            raise SfError(400, "MISSING_ARGUMENT", "fields parameter is required")
        fields = _fields_param(spec, raw_fields)
        out: list[dict[str, Any] | None] = []
        with state.tx() as conn:
            for rid in ids:
                row = fetch_row(conn, spec, rid) if rid[:3] == spec.key_prefix else None
                out.append(
                    None
                    if row is None or row.get("IsDeleted")
                    else _shown(spec, row, fields, ctx.version)
                )
        return JSONResponse(out)

    rows = DATA + "/sobjects/{object}"
    coll = DATA + "/composite/sobjects"
    return [
        Route(rows, create, methods=["POST"]),
        Route(rows + "/", create, methods=["POST"]),
        Route(rows, basic_info, methods=["GET"]),
        Route(rows + "/", basic_info, methods=["GET"]),
        Route(rows + "/updated", changed, methods=["GET"]),
        Route(rows + "/updated/", changed, methods=["GET"]),
        Route(rows + "/deleted", changed, methods=["GET"]),
        Route(rows + "/deleted/", changed, methods=["GET"]),
        Route(rows + "/{record_id}", record, methods=["GET", "PATCH", "DELETE"]),
        Route(rows + "/{field}/{value}", by_external_id, methods=["GET", "PATCH", "DELETE"]),
        Route(coll, collection, methods=["POST", "PATCH", "DELETE"]),
        Route(coll + "/", collection, methods=["POST", "PATCH", "DELETE"]),
        Route(coll + "/{object}", collection_get, methods=["GET", "POST"]),
        Route(coll + "/{object}/{field}", collection_upsert, methods=["PATCH"]),
    ]
