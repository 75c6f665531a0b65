"""REST plumbing, query, describe and limits of the Salesforce emulator.

Every REST handler goes through :func:`api`: API version check (v50.0 to v62.0),
bearer token (any non-empty one; 401 ``INVALID_SESSION_ID`` otherwise), request
counting and fault injection (:func:`recon.sandbox.faults.enter`, which also
answers 403 ``REQUEST_LIMIT_EXCEEDED`` once the daily budget is spent), errors as
``[{message, errorCode, fields}]``, and ``Sforce-Limit-Info: api-usage=N/MAX`` on
every response.

Query locators (``nextRecordsUrl`` = ``/services/data/v59.0/query/01g...-2000``)
keep the ordered rowids of the whole result in memory, like Salesforce's server-side
cursors; they do not survive a restart (Salesforce's expire after 15 minutes).
"""

from __future__ import annotations

import json
import logging
import secrets
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .faults import enter
from .sf_common import SfError, id_checksum
from .sf_describe import ObjectSpec, describe_global, describe_object, get_object
from .sf_query import aggregate, count, fetch_records, select_rowids
from .soql import parse

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["VERSIONS", "Ctx", "api", "http_date_header", "json_body", "object_spec", "routes"]

log = logging.getLogger(__name__)

VERSIONS = tuple(f"{v}.0" for v in range(50, 63))
DATA = "/services/data/v{version}"
BATCH_SIZE = 2000
MAX_LOCATORS = 25
SIDE = "salesforce"
#: ASGI scope key marking an in-process /composite subrequest (value: the parent's request id)
INTERNAL_SCOPE_KEY = "recon.sandbox.composite"
#: when the emulated metadata last changed (describe's If-Modified-Since)
METADATA_CHANGED = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Ctx:
    """What a handler knows about its request."""

    request: Request
    version: str
    request_id: str


Handler = Callable[[Ctx], Awaitable[Response]]


def limit_header(state: SandboxState) -> dict[str, str]:
    """``Sforce-Limit-Info`` for the current usage."""
    budget = state.settings.salesforce_daily_budget
    return {"Sforce-Limit-Info": f"api-usage={state.api_usage(SIDE)}/{budget}"}


def session_token(request: Request) -> str | None:
    """The bearer token (or ``OAuth`` token) of a request, if any."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def api(
    state: SandboxState, label: Callable[[Request], str] | str
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler with the checks and headers every Salesforce REST call gets."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            version = request.path_params.get("version", "59.0")
            if version not in VERSIONS:
                return SfError(404, "NOT_FOUND", "The requested resource does not exist").response()
            if session_token(request) is None:
                return SfError(401, "INVALID_SESSION_ID", "Session expired or invalid").response()
            name = label(request) if callable(label) else label
            # a /composite subrequest: counted (and fault-checked) once, as its parent
            internal = request.scope.get(INTERNAL_SCOPE_KEY)
            fault = None if internal else await enter(state, SIDE, f"{request.method} {name}")
            if fault is not None:
                fault.headers.update(limit_header(state))
                return fault
            try:
                request_id = internal or state.new_request_id()
                response = await handler(Ctx(request, version, request_id))
            except SfError as exc:
                response = exc.response()
            except Exception:
                log.exception(
                    "salesforce emulator failed on %s %s", request.method, request.url.path
                )
                response = SfError(
                    500, "UNKNOWN_EXCEPTION", "An unexpected error occurred."
                ).response()
            response.headers.update(limit_header(state))
            return response

        return endpoint

    return wrap


async def json_body(request: Request) -> Any:
    """The JSON body; 400 ``JSON_PARSER_ERROR`` when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError as exc:
        raise SfError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from None


def http_date_header(request: Request, name: str) -> datetime | None:
    """A conditional-request header (``If-Unmodified-Since``...) as a UTC datetime.

    Raises:
        SfError: 400 when the header is present but not an HTTP date.
    """
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        ts = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        ts = None
    if ts is None:
        raise SfError(400, "INVALID_HEADER_TYPE", f"{name}: invalid HTTP date: {raw}")
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def object_spec(name: str) -> ObjectSpec:
    """The object ``name``; 404 ``NOT_FOUND`` when the emulator has none."""
    spec = get_object(name)
    if spec is None:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    return spec


def _data_path(request: Request) -> str:
    """The endpoint name of a request: its path without the API version."""
    path = request.url.path
    parts = path.split("/")
    if len(parts) > 3 and parts[3].startswith("v"):
        parts = parts[:3] + parts[4:]
    return "/".join(parts).rstrip("/") or path


class Locators:
    """Server-side query cursors: ordered rowids per locator (LRU-bounded)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[Any, array[int], bool]] = OrderedDict()

    def add(self, query: Any, rowids: list[int], include_deleted: bool) -> str:
        body = "01g5g" + secrets.token_hex(5).upper()
        key = body + id_checksum(body)
        self._items[key] = (query, array("q", rowids), include_deleted)
        while len(self._items) > MAX_LOCATORS:
            self._items.popitem(last=False)
        return key

    def get(self, key: str) -> tuple[Any, array[int], bool]:
        if key not in self._items:
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self._items.move_to_end(key)
        return self._items[key]


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    for part in options.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(200, min(BATCH_SIZE, int(value)))
    return BATCH_SIZE


def routes(state: SandboxState) -> list[BaseRoute]:
    """Every Salesforce route: REST, Bulk 2.0, OAuth and SOAP."""
    from .sf_bulk import routes as bulk_routes
    from .sf_composite import routes as composite_routes
    from .sf_ingest import routes as ingest_routes
    from .sf_soap import routes as soap_routes
    from .sf_sobjects import routes as sobject_routes

    locators = Locators()

    def page(
        ctx: Ctx, query: Any, rowids: Any, include_deleted: bool, key: str, start: int
    ) -> dict[str, Any]:
        size = _batch_size(ctx.request)
        chunk = list(rowids[start : start + size])
        with state.tx() as conn:
            records = fetch_records(conn, query, chunk, ctx.version)
        out: dict[str, Any] = {"totalSize": len(rowids), "done": start + size >= len(rowids)}
        if not out["done"]:
            kind = "queryAll" if include_deleted else "query"
            out["nextRecordsUrl"] = f"/services/data/v{ctx.version}/{kind}/{key}-{start + size}"
        out["records"] = records
        return out

    def run_query(ctx: Ctx, include_deleted: bool) -> Response:
        soql = ctx.request.query_params.get("q")
        if not soql or not soql.strip():
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        query = parse(soql)
        with state.tx() as conn:
            if query.count:
                n = count(conn, query, include_deleted=include_deleted)
                return JSONResponse({"totalSize": n, "done": True, "records": []})
            if query.aggregated:
                records = aggregate(conn, query, include_deleted=include_deleted)
                return JSONResponse({"totalSize": len(records), "done": True, "records": records})
            rowids = select_rowids(conn, query, include_deleted=include_deleted)
        key = (
            locators.add(query, rowids, include_deleted)
            if len(rowids) > _batch_size(ctx.request)
            else ""
        )
        return JSONResponse(page(ctx, query, rowids, include_deleted, key, 0))

    @api(state, _data_path)
    async def query(ctx: Ctx) -> Response:
        return run_query(ctx, include_deleted=False)

    @api(state, _data_path)
    async def query_all(ctx: Ctx) -> Response:
        return run_query(ctx, include_deleted=True)

    @api(state, lambda r: "/services/data/" + r.url.path.split("/")[4] + "/{locator}")
    async def query_more(ctx: Ctx) -> Response:
        raw = ctx.request.path_params["locator"]
        key, _, start = raw.rpartition("-")
        if not key or not start.isdigit():
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        query, rowids, include_deleted = locators.get(key)
        return JSONResponse(page(ctx, query, rowids, include_deleted, key, int(start)))

    @api(state, _data_path)
    async def sobjects(ctx: Ctx) -> Response:
        return JSONResponse(describe_global(ctx.version))

    @api(state, _data_path)
    async def describe(ctx: Ctx) -> Response:
        spec = object_spec(ctx.request.path_params["object"])
        since = http_date_header(ctx.request, "If-Modified-Since")
        if since is not None and since >= METADATA_CHANGED:
            return Response(status_code=304)
        return JSONResponse(describe_object(spec.name, ctx.version))

    @api(state, _data_path)
    async def limits(ctx: Ctx) -> Response:
        budget = state.settings.salesforce_daily_budget
        used = state.api_usage(SIDE)

        def pair(mx: int, left: int) -> dict[str, int]:
            return {"Max": mx, "Remaining": max(0, left)}

        from .sf_bulk import jobs_created

        return JSONResponse(
            {
                "DailyApiRequests": pair(budget, budget - used),
                "DailyAsyncApexExecutions": pair(250000, 250000),
                "DailyBulkApiBatches": pair(15000, 15000),
                "DailyBulkV2QueryFileStorageMB": pair(976562, 976562),
                "DailyBulkV2QueryJobs": pair(10000, 10000 - jobs_created(state)),
                "DataStorageMB": pair(1024, 1000),
                "FileStorageMB": pair(1024, 1024),
                "SingleEmail": pair(5000, 5000),
            }
        )

    @api(state, "/services/data/{version}")
    async def resources(ctx: Ctx) -> Response:
        base = f"/services/data/v{ctx.version}"
        names = ("composite", "jobs", "limits", "query", "queryAll", "sobjects")
        return JSONResponse({n: f"{base}/{n}" for n in names})

    async def versions(request: Request) -> Response:
        return JSONResponse(
            [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]
        )

    def both(path: str, endpoint: Any, methods: list[str]) -> list[BaseRoute]:
        return [
            Route(DATA + path, endpoint, methods=methods),
            Route(DATA + path + "/", endpoint, methods=methods),
        ]

    out: list[BaseRoute] = [
        Route("/services/data", versions, methods=["GET"]),
        Route("/services/data/", versions, methods=["GET"]),
        *both("", resources, ["GET"]),
        *both("/query", query, ["GET"]),
        *both("/queryAll", query_all, ["GET"]),
        Route(DATA + "/query/{locator}", query_more, methods=["GET"]),
        Route(DATA + "/queryAll/{locator}", query_more, methods=["GET"]),
        *both("/limits", limits, ["GET"]),
        *both("/sobjects", sobjects, ["GET"]),
        *both("/sobjects/{object}/describe", describe, ["GET"]),
    ]
    out += sobject_routes(state)
    out += bulk_routes(state)
    out += ingest_routes(state)
    out += composite_routes(state, list(out))
    out += soap_routes(state)
    return out
