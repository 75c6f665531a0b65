"""The Composite resources of the Salesforce emulator: ``composite``, ``composite/batch``
and ``composite/tree/{Object}``.

Up to 25 subrequests (``method``, ``url``, ``referenceId``, ``body``) run in order
against the emulator's own REST routes, in-process, and the whole call counts as one
API request, as in Salesforce. A later subrequest can use an earlier result with
``@{referenceId.path}`` (``@{newAccount.id}``, ``@{q.records[0].Id}``) in its URL or
body. With ``allOrNone`` one failing subrequest rolls every change back and the others
answer ``PROCESSING_HALTED``; without it, a subrequest referring to a failed one fails
with ``PROCESSING_HALTED``.

``composite/batch`` runs up to 25 independent subrequests (``url`` relative to
``/services/data/``, ``richInput``; ``haltOnError``) and ``composite/tree`` creates
records with nested child records (``Contacts``...) all or none, each answered with the
``referenceId`` of its ``attributes``.

The subrequests run inside one database transaction: they are dispatched to the ASGI
routes directly and none of them waits on I/O, so no other request interleaves.
"""

from __future__ import annotations

import json
import re
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .sf_common import SfError
from .sf_describe import child_relationship, get_object

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["MAX_SUBREQUESTS", "routes"]

MAX_SUBREQUESTS = 25
_REF = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
HALTED = "PROCESSING_HALTED"


class _Rollback(Exception):
    """Raised inside the transaction to undo an allOrNone composite."""


def _lookup(value: Any, path: str) -> Any:
    for name, index in _STEP.findall(path):
        if index:
            value = value[int(index)]
        else:
            value = value[name]
    return value


def _resolve(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``@{ref.path}`` references in a URL or body (KeyError when unresolvable)."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole:
            return _lookup(results[whole.group(1)], whole.group(2))
        return _REF.sub(lambda m: str(_lookup(results[m.group(1)], m.group(2))), value)
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, results) for k, v in value.items()}
    return value


def _halted(ref: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": HALTED, "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def routes(state: SandboxState, sibling_routes: list[BaseRoute]) -> list[BaseRoute]:
    """The ``composite`` route; subrequests go to ``sibling_routes`` in-process."""
    from .sf_rest import DATA, INTERNAL_SCOPE_KEY, Ctx, api, json_body

    async def not_found(request: Any, exc: Exception) -> Response:
        return SfError(404, "NOT_FOUND", "The requested resource does not exist").response()

    inner = Starlette(routes=sibling_routes, exception_handlers={404: not_found, 405: not_found})

    async def dispatch(
        ctx: Ctx, method: str, url: str, body: Any
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(url)
        raw = b"" if body is None else json.dumps(body).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (b"authorization", ctx.request.headers.get("authorization", "").encode()),
                (b"content-type", b"application/json"),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            INTERNAL_SCOPE_KEY: ctx.request_id,
        }
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        await inner(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {k.decode().title(): v.decode() for k, v in start.get("headers", [])}
        try:
            payload = json.loads(content) if content else None
        except ValueError:
            payload = content.decode("utf-8", "replace")
        return int(start["status"]), headers, payload

    @api(state, "/services/data/composite")
    async def composite(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise SfError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty list")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise SfError(400, "LIMIT_EXCEEDED", f"Max number of subrequests is {MAX_SUBREQUESTS}")
        all_or_none = bool(body.get("allOrNone", False))
        answers: list[dict[str, Any]] = []
        try:
            with state.tx():
                results: dict[str, Any] = {}
                failed = False
                for sub in subrequests:
                    ref = str(sub.get("referenceId") or "")
                    try:
                        url = _resolve(str(sub.get("url") or ""), results)
                        sub_body = _resolve(sub.get("body"), results)
                    except (KeyError, IndexError, TypeError):
                        answers.append(
                            _halted(ref, f"Invalid reference specified in subrequest {ref}.")
                        )
                        failed = True
                        continue
                    if not str(url).startswith("/services/data/"):
                        answers.append(_halted(ref, f"Invalid URL for a subrequest: {url}"))
                        failed = True
                        continue
                    status, headers, payload = await dispatch(
                        ctx, str(sub.get("method") or "GET"), str(url), sub_body
                    )
                    shown = {k: v for k, v in headers.items() if k == "Location"}
                    if status == 201 and isinstance(payload, dict) and payload.get("id"):
                        obj = str(url).rstrip("/").rsplit("/", 1)[-1]
                        shown["Location"] = (
                            f"/services/data/v{ctx.version}/sobjects/{obj}/{payload['id']}"
                        )
                    answers.append(
                        {
                            "body": payload,
                            "httpHeaders": shown,
                            "httpStatusCode": status,
                            "referenceId": ref,
                        }
                    )
                    if status < 300:
                        results[ref] = payload
                    else:
                        failed = True
                if failed and all_or_none:
                    raise _Rollback
        except _Rollback:
            message = (
                "The transaction was rolled back since another operation in the same "
                "transaction failed."
            )
            answers = [
                a if a["httpStatusCode"] >= 300 else _halted(a["referenceId"], message)
                for a in answers
            ]
        return JSONResponse({"compositeResponse": answers})

    @api(state, "/services/data/composite/batch")
    async def batch(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        subrequests = body.get("batchRequests") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            raise SfError(400, "JSON_PARSER_ERROR", "batchRequests must be a non-empty list")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise SfError(400, "LIMIT_EXCEEDED", f"Max number of subrequests is {MAX_SUBREQUESTS}")
        halt = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        halted = False
        for sub in subrequests:
            if halted:
                results.append(
                    {"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED",
                                                    "message": "Batch processing halted per request"}]}
                )  # fmt: skip
                continue
            url = "/services/data/" + str(sub.get("url") or "").lstrip("/")
            with state.tx():
                status, _, payload = await dispatch(
                    ctx, str(sub.get("method") or "GET"), url, sub.get("richInput")
                )
            results.append({"statusCode": status, "result": payload})
            halted = halt and status >= 400
        has_errors = any(r["statusCode"] >= 400 for r in results)
        return JSONResponse({"hasErrors": has_errors, "results": results})

    @api(state, lambda r: "/services/data/composite/tree/" + r.path_params["object"])
    async def tree(ctx: Ctx) -> Response:
        body = await json_body(ctx.request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise SfError(400, "JSON_PARSER_ERROR", "records must be a non-empty list")
        answers: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        count = 0

        async def create(obj: str, record: dict[str, Any], parent: tuple[str, str] | None) -> None:
            nonlocal count
            count += 1
            attrs = record.get("attributes") or {}
            ref = str(attrs.get("referenceId") or "")
            fields: dict[str, Any] = {}
            children: list[tuple[str, list[dict[str, Any]]]] = []
            for key, value in record.items():
                if key == "attributes":
                    continue
                if isinstance(value, dict) and isinstance(value.get("records"), list):
                    children.append((key, value["records"]))
                else:
                    fields[key] = value
            if parent is not None:
                fields[parent[0]] = parent[1]
            url = f"/services/data/v{ctx.version}/sobjects/{attrs.get('type') or obj}"
            status, _, payload = await dispatch(ctx, "POST", url, fields)
            if status != 201:
                for err in payload if isinstance(payload, list) else []:
                    errors.append({"referenceId": ref, "errors": [
                        {"statusCode": err.get("errorCode"), "message": err.get("message"),
                         "fields": err.get("fields") or []}]})  # fmt: skip
                return
            answers.append({"referenceId": ref, "id": payload["id"]})
            spec = get_object(str(attrs.get("type") or obj))
            for rel, kids in children:
                found = child_relationship(spec, rel) if spec else None
                if found is None:
                    errors.append({"referenceId": ref, "errors": [
                        {"statusCode": "INVALID_FIELD", "message": f"No such relationship {rel}", "fields": []}]})  # fmt: skip
                    continue
                _, child_spec, fk = found
                for kid in kids:
                    await create(child_spec.name, kid, (fk, payload["id"]))

        try:
            with state.tx():
                for record in records:
                    await create(ctx.request.path_params["object"], record, None)
                if count > 200:
                    raise SfError(400, "LIMIT_EXCEEDED", "A tree can hold at most 200 records")
                if errors:
                    raise _Rollback
        except _Rollback:
            return JSONResponse({"hasErrors": True, "results": errors}, status_code=400)
        return JSONResponse({"hasErrors": False, "results": answers}, status_code=201)

    return [
        Route(DATA + "/composite", composite, methods=["POST"]),
        Route(DATA + "/composite/", composite, methods=["POST"]),
        Route(DATA + "/composite/batch", batch, methods=["POST"]),
        Route(DATA + "/composite/tree/{object}", tree, methods=["POST"]),
    ]
