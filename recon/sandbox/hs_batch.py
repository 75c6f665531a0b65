"""Batch endpoints of the HubSpot emulator: read, create, update, upsert, archive.

``POST /crm/v3/objects/{type}/batch/{action}`` with at most 100 inputs: create
answers 201, read/update/upsert 200, and 207 (``numErrors``, ``errors``) when some
inputs fail (missing ids, injected per-record faults, unique-value conflicts);
archive answers 204. Invalid values fail the whole request with 400.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import hs_records as rec
from .hs_http import (
    batch_error,
    batch_json,
    bool_param,
    inputs_of,
    json_body,
    record_json,
    started_at,
    validation,
)
from .hs_write import (
    assoc_inputs,
    check_id_property,
    check_values,
    conflict,
    props_of,
    singular,
)
from .state import SandboxState

__all__ = ["handlers"]

SIDE = "hubspot"
Handler = Callable[[Request, str], Awaitable[Response]]


def handlers(state: SandboxState) -> dict[str, Handler]:
    """The batch handlers by action name."""

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
            check_id_property(conn, obj, id_prop, allow_object_id=True)
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
                    f"Could not get some {singular(obj)} objects, they may be deleted or not exist. "
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
            cleaned = [check_values(conn, obj, item.get("properties") or {}) for item in inputs]
            seen: dict[tuple[str, str], int] = {}
            for clean in cleaned:
                for prop, value, existing in rec.unique_conflicts(conn, obj, clean):
                    raise conflict(obj, existing, prop, value)
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
                assoc_inputs(conn, obj, rid, item.get("associations"))
                out = record_json(conn, obj, rec.get_rows(conn, obj, [rid])[rid], sorted(clean))
                if trace:
                    out["objectWriteTraceId"] = trace
                results.append(out)
        return batch_json(results, errors, started, 201)

    def unique_ids(inputs: list[dict[str, Any]]) -> None:
        """HubSpot refuses a batch naming one record twice (the whole batch, 400)."""
        ids = [str(item.get("id", "")) for item in inputs]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise validation(
                f"Duplicate IDs found in batch input: [{', '.join(twice)}]. IDs must be unique"
            )

    async def batch_update(request: Request, obj: str) -> Response:
        body = await json_body(request)
        inputs = inputs_of(body)
        unique_ids(inputs)
        request_id = state.new_request_id()
        started = started_at()
        results, errors, missing = [], [], []
        with state.tx() as conn:
            for item in inputs:
                id_prop = item.get("idProperty") or body.get("idProperty")
                check_id_property(conn, obj, id_prop, allow_object_id=False)
            cleaned = [check_values(conn, obj, item.get("properties") or {}) for item in inputs]
            for item, clean in zip(inputs, cleaned, strict=True):
                raw = str(item.get("id", ""))
                rid = rec.find_id(conn, obj, raw, item.get("idProperty") or body.get("idProperty"))
                row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
                if rid is None or row is None or row["archived"]:
                    missing.append(raw)
                    continue
                conflicts = rec.unique_conflicts(conn, obj, clean, rid)
                fault = state.faults.record_error(
                    SIDE, obj, {**props_of(row), **(item.get("properties") or {})}
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
                    f"Could not get some {singular(obj)} objects, they may be deleted or not exist. Check that ids are valid.",
                    missing,
                )
            )
        return batch_json(results, errors, started, 200)

    async def batch_upsert(request: Request, obj: str) -> Response:
        inputs = inputs_of(await json_body(request))
        unique_ids(inputs)
        request_id = state.new_request_id()
        started = started_at()
        results, errors = [], []
        with state.tx() as conn:
            for item in inputs:
                check_id_property(
                    conn, obj, item.get("idProperty"), allow_object_id=False, required=True
                )
            cleaned = [check_values(conn, obj, item.get("properties") or {}) for item in inputs]
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

    return {
        "read": batch_read,
        "create": batch_create,
        "update": batch_update,
        "upsert": batch_upsert,
        "archive": batch_archive,
    }
