"""The Composite resource of the Salesforce emulator: ``POST composite``.

Up to 25 subrequests (``method``, ``url``, ``referenceId``, ``body``) run in order
against the emulator's own REST routes, in-process, and the whole call counts as one
API request, as in Salesforce. A later subrequest can use an earlier result with
``@{referenceId.path}`` (``@{newAccount.id}``, ``@{q.records[0].Id}``) in its URL or
body. With ``allOrNone`` one failing subrequest rolls every change back and the others
answer ``PROCESSING_HALTED``; without it, a subrequest referring to a failed one fails
with ``PROCESSING_HALTED``.

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

    return [
        Route(DATA + "/composite", composite, methods=["POST"]),
        Route(DATA + "/composite/", composite, methods=["POST"]),
    ]
