"""The sandbox admin API under ``/_sandbox/`` (not part of either CRM's API).

| method and path | what it does |
|---|---|
| ``GET /_sandbox/health`` | ``{"ok": true, "sides": [...], "demo": {...}}`` |
| ``GET /_sandbox/requests[?side=]`` | request counts per side and endpoint |
| ``GET /_sandbox/changes[?since=&side=&limit=]`` | change log: seq, at, side, object, record_id, action, request_id |
| ``GET /_sandbox/faults`` | active fault rules with ``seen``/``fired`` counts |
| ``POST /_sandbox/faults`` | add a rule (or a list of rules); 201 with their ids |
| ``DELETE /_sandbox/faults[/{id}]`` | remove all rules, or one |
| ``GET /_sandbox/settings`` | the runtime settings |
| ``PATCH /_sandbox/settings`` (or POST) | change settings, e.g. ``{"salesforce_connector_enabled": true}`` |
| ``POST /_sandbox/records/{side}/{object}/{id}`` | edit a record as a CRM user would: ``{"fields": {...}}`` |
| ``GET /_sandbox/truth[?kind=company\\|person]`` | the demo data's ground truth |
| ``POST /_sandbox/reset`` | ``{}``: empty and reload the demo data; ``{"data": false}``: keep records, clear counters, log, faults |

A side provides ``admin_edit(state, object, record_id, fields) -> dict`` for the
record edit; it bumps the record's modification time (HubSpot
``hs_lastmodifieddate``/``lastmodifieddate``, Salesforce ``LastModifiedDate`` and
``SystemModstamp``) and logs an ``edited`` change with request id ``admin``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ReconError, SourceError, UsageError
from .state import SIDES, SandboxState, check_sandbox_file, holder_text, sandbox_holder

__all__ = ["edit_record", "reset_remote", "reset_sandbox", "routes"]


def edit_record(
    state: SandboxState, side: str, object: str, record_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change a record as a user in the CRM's own UI would; return the record.

    Raises:
        ReconError: unknown side, or the side has no editor, or the record does not exist.

    Examples:
        >>> from recon.sandbox.hubspot import create_records
        >>> state = SandboxState(":memory:")
        >>> rid = create_records(state, "companies", [{"name": "Acme"}])[0]
        >>> edit_record(state, "hubspot", "companies", rid, {"name": "Acme Inc"})["properties"]["name"]
        'Acme Inc'
    """
    if side not in SIDES:
        raise ReconError(f"unknown sandbox side {side!r}", hint="hubspot or salesforce")
    hook = state.side_hook(side, "admin_edit")
    if hook is None:
        raise ReconError(f"the {side} emulator is not available in this sandbox")
    result: dict[str, Any] = hook(state, object, record_id, fields)
    return result


def reset_sandbox(state: SandboxState, *, data: bool = True) -> dict[str, Any]:
    """Reset the sandbox: with ``data``, empty it and reload the demo data it was created with.

    Examples:
        >>> state = SandboxState(":memory:")
        >>> reset_sandbox(state, data=False)["reset"]
        True
    """
    from . import demo

    demo_meta = state.get_meta("demo")
    if not data:
        state.reset(keep_data=True)
        return {"reset": True, "demo": demo_meta}
    state.reset()
    if demo_meta:
        demo.ensure_demo(state, size=demo_meta["size"], seed=demo_meta["seed"])
    return {"reset": True, "demo": demo_meta}


def reset_remote(url: str | None, db: str | Path | None = None, *, follow: bool = False) -> str:
    """Reset the sandbox running at ``url`` (reloads its demo data), or delete the database ``db``.

    A database a running sandbox serves from is never deleted: with ``follow`` (the database
    was not named, only configured) that sandbox is reset instead, else it is refused.

    Returns a one-line report.

    Raises:
        SourceError: nothing answers at ``url``.

    Examples:
        >>> reset_remote(None, "/nonexistent/sandbox.db")
        'no sandbox database at /nonexistent/sandbox.db'
    """
    if url:
        import requests

        try:
            response = requests.post(f"{url.rstrip('/')}/_sandbox/reset", json={}, timeout=600)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SourceError(
                f"no sandbox answered at {url}: {type(exc).__name__}",
                hint="start one with `recon sandbox serve`, or check --port",
            ) from None
        demo = response.json().get("demo") or {}
        return f"reset the sandbox at {url}" + (
            f" (demo data {demo['size']}, seed {demo['seed']})" if demo else ""
        )
    if db is None:
        raise ReconError("nothing to reset: give the sandbox's port or its database file")
    path = Path(db)
    if not path.exists():
        return f"no sandbox database at {path}"
    holder = sandbox_holder(path)
    if holder is not None:
        if follow and holder.get("url"):  # no file named: reset the sandbox serving it
            return reset_remote(str(holder["url"]))
        raise UsageError(
            f"refusing to delete {path}: a sandbox serves from it ({holder_text(holder)})",
            hint="stop that sandbox first, or reload its demo data with `recon sandbox reset "
            "--port PORT`",
        )
    check_sandbox_file(path, doing="delete it")
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"deleted {path}; the next `recon sandbox serve` generates fresh demo data"


def routes(state: SandboxState) -> list[BaseRoute]:
    """The admin routes (mounted under ``/_sandbox``)."""

    async def body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return {}
        import json

        return json.loads(raw)

    def error(exc: Exception, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def health(request: Request) -> Response:
        sides = [s for s in SIDES if state.side_hook(s, "routes") is not None]
        return JSONResponse(
            {
                "ok": True,
                "sides": sides,
                "demo": state.get_meta("demo"),
                "url": state.settings.base_url,
            }
        )

    async def requests_(request: Request) -> Response:
        counts = state.request_counts()
        side = request.query_params.get("side")
        return JSONResponse(counts.get(side, {}) if side else counts)

    async def changes(request: Request) -> Response:
        q = request.query_params
        try:
            rows = state.changes(
                since=int(q.get("since", 0)), side=q.get("side"), limit=int(q.get("limit", 10_000))
            )
        except ValueError as exc:
            return error(exc)
        return JSONResponse({"changes": rows})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": state.faults.rules()})
        if request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        try:
            payload = await body(request)
            rules = payload if isinstance(payload, list) else [payload]
            added = [state.faults.add(rule) for rule in rules]
        except (ReconError, ValueError, TypeError, AttributeError) as exc:
            return error(exc)
        return JSONResponse({"faults": added}, status_code=201)

    async def fault(request: Request) -> Response:
        if state.faults.remove(request.path_params["rule_id"]):
            return Response(status_code=204)
        return error(KeyError(request.path_params["rule_id"]), 404)

    async def settings(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(state.settings.to_dict())
        try:
            return JSONResponse(state.settings.update(await body(request)))
        except (ReconError, ValueError) as exc:
            return error(exc)

    async def record(request: Request) -> Response:
        p = request.path_params
        try:
            payload = await body(request)
            fields = payload.get("fields", payload) if isinstance(payload, dict) else None
            if not isinstance(fields, dict):
                raise ValueError('body must be {"fields": {...}}')
            return JSONResponse(edit_record(state, p["side"], p["object"], p["record_id"], fields))
        except KeyError as exc:
            return error(exc, 404)
        except (ReconError, ValueError) as exc:
            return error(exc, 404 if "not found" in str(exc).lower() else 400)

    async def truth(request: Request) -> Response:
        return JSONResponse({"truth": state.truth(request.query_params.get("kind"))})

    async def reset(request: Request) -> Response:
        try:
            payload = await body(request)
        except ValueError as exc:
            return error(exc)
        return JSONResponse(reset_sandbox(state, data=bool(payload.get("data", True))))

    return [
        Route("/health", health, methods=["GET"]),
        Route("/requests", requests_, methods=["GET"]),
        Route("/changes", changes, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/faults/{rule_id}", fault, methods=["DELETE"]),
        Route("/settings", settings, methods=["GET", "PATCH", "POST"]),
        Route("/records/{side}/{object}/{record_id}", record, methods=["POST", "PATCH"]),
        Route("/truth", truth, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
    ]
