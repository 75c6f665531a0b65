"""HTTP plumbing shared by the HubSpot emulator's handlers.

Every handler starts with :func:`begin` (count the call, check the bearer token,
wait any injected latency, apply limits and faults), reads JSON with
:func:`json_body`, and answers errors in HubSpot's shape
(``{status, message, correlationId, category}``). :func:`record_json` renders a
stored record as a ``SimplePublicObject``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .faults import hubspot_error
from .hs_records import ASSOC_LABELS, associations_of, iso_of_ms, lastmod_prop
from .hs_schema import DEFAULT_PROPERTIES, resolve_type
from .state import SandboxState, iso_ms

__all__ = [
    "BadRequest",
    "begin",
    "bool_param",
    "error",
    "json_body",
    "list_param",
    "object_type",
    "record_json",
]

SIDE = "hubspot"


class BadRequest(Exception):
    """A request HubSpot refuses; carries the ready response."""

    def __init__(self, response: Response) -> None:
        super().__init__(
            getattr(response, "body", b"").decode() if hasattr(response, "body") else ""
        )
        self.response = response


def error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    """A HubSpot error body; 4xx ones also carry ``errors``/``context``/``links``."""
    extra.setdefault("errors", [])
    extra.setdefault("context", {})
    extra.setdefault("links", {})
    return hubspot_error(status, message, category, **extra)


def validation(message: str, **extra: Any) -> BadRequest:
    """A 400 ``VALIDATION_ERROR``."""
    return BadRequest(error(400, message, "VALIDATION_ERROR", **extra))


def not_found(obj: str, rid: str) -> JSONResponse:
    """HubSpot's 404 for a missing record."""
    return error(404, f"resource not found: {obj} {rid}", "OBJECT_NOT_FOUND", context={"id": [rid]})


async def begin(state: SandboxState, request: Request, endpoint: str) -> Response | None:
    """Count the call, check auth, wait, apply limits and faults; a response means stop."""
    state.count_request(SIDE, endpoint)
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token and not request.query_params.get("hapikey"):
        return error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
            "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "INVALID_AUTHENTICATION",
        )
    delay = state.faults.latency(SIDE, endpoint)
    if delay:
        await asyncio.sleep(delay)
    return state.faults.check(SIDE, endpoint)


def object_type(name: str) -> str:
    """The plural object type named in a path, or a 400 as HubSpot answers unknown types."""
    obj = resolve_type(name)
    if obj is None:
        raise BadRequest(
            error(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
        )
    return obj


async def json_body(request: Request) -> Any:
    """The request's JSON, or a 400 with HubSpot's invalid-JSON message."""
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise validation(f"Invalid input JSON on line 1, column 1: {exc}") from None


def bool_param(value: Any, default: bool = False) -> bool:
    """``True``/``true``/``TRUE`` (the client sends Python's ``True``/``False``)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def list_param(values: Iterable[Any] | None) -> list[str] | None:
    """Repeated and comma-separated forms of a list parameter, flattened (None if absent)."""
    if values is None:
        return None
    out: list[str] = []
    for value in values:
        out.extend(p.strip() for p in str(value).split(",") if p.strip())
    return out or None


def inputs_of(body: Any, *, limit: int = 100) -> list[dict[str, Any]]:
    """A batch body's ``inputs`` (1..100), or a 400."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise validation("Invalid input JSON: inputs must be a list")
    if len(inputs) > limit:
        raise validation(
            f"The maximum number of inputs supported in a batch request is {limit}. "
            f"Please reduce the number of items ({len(inputs)}) and try again",
            context={"inputs": [str(len(inputs))]},
        )
    return [i if isinstance(i, dict) else {"id": i} for i in inputs]


def _sensitive(definition: dict[str, Any] | None) -> bool:
    """Whether a property holds Sensitive Data (its value needs a scope to be read)."""
    if not definition:
        return False
    return definition.get("dataSensitivity") not in (None, "non_sensitive")


def record_json(
    conn: sqlite3.Connection,
    obj: str,
    row: sqlite3.Row,
    wanted: list[str] | None,
    *,
    history: list[str] | None = None,
    associations: list[str] | None = None,
    known: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A stored record as HubSpot's ``SimplePublicObject``.

    ``known`` (the type's property definitions) may be passed in when rendering many records.
    """
    props: dict[str, Any] = json.loads(row["props"])
    lastmod = lastmod_prop(obj)
    names = list(wanted) if wanted is not None else list(DEFAULT_PROPERTIES.get(obj, []))
    for always in ("hs_object_id", "createdate", lastmod):
        if always not in names:
            names.append(always)
    if known is None:
        from .hs_records import properties_of

        known = properties_of(conn, obj)
    # a sensitive-data property's value needs a scope the emulator's apps do not hold: HubSpot
    # leaves it out of the record (its definition is listed all the same)
    out_props = {
        n: props.get(n)
        for n in names
        if (n in known or n in props) and not _sensitive(known.get(n))
    }
    rec: dict[str, Any] = {
        "id": str(row["id"]),
        "properties": out_props,
        "createdAt": iso_of_ms(int(row["created_ms"])),
        "updatedAt": iso_of_ms(int(row["updated_ms"])),
        "archived": bool(row["archived"]),
    }
    if row["archived"] and row["archived_ms"]:
        rec["archivedAt"] = iso_of_ms(int(row["archived_ms"]))
    if history:
        from .hs_records import property_history

        # newest first; a value the record was loaded with dates from the record's last change
        written = property_history(conn, int(row["id"]), list(history))
        rec["propertiesWithHistory"] = {
            n: [
                {
                    "value": value or "",
                    "timestamp": iso_of_ms(ts),
                    "sourceType": "API",
                    "sourceId": None,
                }
                for value, ts in written[n]
            ]
            if n in written
            else [
                {
                    "value": props[n],
                    "timestamp": rec["updatedAt"],
                    "sourceType": "API",
                    "sourceId": None,
                }
            ]
            for n in history
            if (n in written or props.get(n) is not None) and not _sensitive(known.get(n))
        }
    if associations:
        assoc: dict[str, Any] = {}
        for to_name in associations:
            to_type = resolve_type(to_name)
            if to_type is None:
                continue
            found = associations_of(conn, obj, [int(row["id"])], to_type).get(int(row["id"]), {})
            singular_from = obj[:-1] if not obj.endswith("ies") else obj[:-3] + "y"
            singular_to = to_type[:-1] if not to_type.endswith("ies") else to_type[:-3] + "y"
            kind = f"{singular_from}_to_{singular_to}"
            results = []
            for to_id, types in found.items():
                for _category, tid in types:
                    # v3 names: the primary association is "contact_to_company", the other "..._unlabeled"
                    label = ASSOC_LABELS.get(tid)
                    results.append(
                        {"id": str(to_id), "type": kind if label else f"{kind}_unlabeled"}
                    )
            if results:
                assoc[to_type] = {"results": results}
        if assoc:
            rec["associations"] = assoc
    return rec


def batch_json(
    results: list[Any], errors: list[dict[str, Any]], started: str, ok_status: int
) -> JSONResponse:
    """A batch response: ``ok_status`` without errors, 207 with them."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": iso_ms(_now()),
        "links": {},
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return JSONResponse(body, status_code=207)
    return JSONResponse(body, status_code=ok_status)


def batch_error(category: str, message: str, ids: list[str], **extra: Any) -> dict[str, Any]:
    """One ``StandardError`` item of a 207 response."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {"ids": ids},
        "errors": [],
        "links": {},
        **extra,
    }


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def started_at() -> str:
    """Now, in HubSpot's timestamp format (``startedAt`` of a batch)."""
    return iso_ms(_now())
