"""HubSpot emulator: properties (schema), owners and associations v4 endpoints.

- ``/crm/v3/properties/{type}`` answers for every standard object type (its
  properties, or an empty list), 403 ``MISSING_SCOPES`` for custom object types
  (``2-…``, ``p_…``), never 404; ``POST`` creates a custom property (201), incl.
  ``hasUniqueValue`` so recon can create its own key property.
- ``/crm/v3/owners/`` and ``/crm/v3/owners/{id}``, with emails.
- ``/crm/v4/objects/{type}/{id}/associations/...`` and
  ``/crm/v4/associations/{from}/{to}/batch/...`` (read, create, associate/default, archive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

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
    object_type,
    started_at,
    validation,
)
from .hs_schema import ALL_TYPES, property_def, resolve_type, type_id
from .state import SandboxState

__all__ = ["routes"]

PROPERTY_TYPES = {
    "string": {"text", "textarea", "file", "html", "phonenumber"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox", "select", "radio"},
}
_CUSTOM_TYPE = re.compile(r"^(2-\d+|p\d*_\w+)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _singular(obj: str) -> str:
    return ALL_TYPES[obj][1]


def _wrap(
    state: SandboxState, template: str, fn: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        params = {
            k: resolve_type(v) or v
            for k, v in request.path_params.items()
            if k in ("type", "to_type", "from_type")
        }
        stop = await begin(state, request, f"{request.method} {template.format(**params)}")
        if stop is not None:
            return stop
        try:
            response = await fn(request)
            response.headers.update(state.faults.hubspot_rate_headers())
            return response
        except BadRequest as exc:
            return exc.response

    return endpoint


def routes(state: SandboxState) -> list[BaseRoute]:
    """Properties, owners and associations v4 routes."""

    # ------------------------------------------------------------------ properties

    def props_type(raw: str) -> str:
        if _CUSTOM_TYPE.match(raw):
            raise BadRequest(
                error(
                    403,
                    "This app hasn't been granted all required scopes to make this call.",
                    "MISSING_SCOPES",
                    context={"requiredScopes": [f"crm.schemas.custom.read ({raw})"]},
                )
            )
        return object_type(raw)

    async def properties(request: Request) -> Response:
        obj = props_type(request.path_params["type"])
        if request.method == "GET":
            archived = bool_param(request.query_params.get("archived"))
            with state.tx() as conn:
                defs = list(rec.properties_of(conn, obj).values())
            return JSONResponse({"results": [] if archived else defs})
        body = await json_body(request)
        definition = _new_property(obj, body)
        with state.tx() as conn:
            if definition["name"] in rec.properties_of(conn, obj):
                return error(
                    409,
                    f"Property named '{definition['name']}' already exists.",
                    "OBJECT_ALREADY_EXISTS",
                )
            conn.execute(
                "INSERT INTO hs_properties (object, name, definition) VALUES (?, ?, ?)",
                (obj, definition["name"], json.dumps(definition)),
            )
        return JSONResponse(definition, status_code=201)

    async def groups(request: Request) -> Response:
        obj = props_type(request.path_params["type"])
        with state.tx() as conn:
            names = sorted(
                {p["groupName"] for p in rec.properties_of(conn, obj).values() if p["groupName"]}
            )
        return JSONResponse(
            {
                "results": [
                    {
                        "name": n,
                        "label": n.replace("_", " ").title(),
                        "displayOrder": i,
                        "archived": False,
                    }
                    for i, n in enumerate(names)
                ]
            }
        )

    async def one_property(request: Request) -> Response:
        obj = props_type(request.path_params["type"])
        name = request.path_params["name"]
        # read the body before taking the lock: no await may run inside a transaction
        body = await json_body(request) if request.method == "PATCH" else {}
        with state.tx() as conn:
            defs = rec.properties_of(conn, obj)
            if name not in defs:
                return error(
                    404,
                    f"Unable to find property {name} for object type {type_id(obj)}",
                    "OBJECT_NOT_FOUND",
                )
            custom = conn.execute(
                "SELECT 1 FROM hs_properties WHERE object = ? AND name = ?", (obj, name)
            ).fetchone()
            if request.method == "GET":
                return JSONResponse(defs[name])
            if not custom:
                return error(
                    400,
                    f"Property {name} is HubSpot-defined and cannot be changed.",
                    "VALIDATION_ERROR",
                )
            if request.method == "DELETE":
                conn.execute("DELETE FROM hs_properties WHERE object = ? AND name = ?", (obj, name))
                conn.execute("DELETE FROM hs_unique WHERE object = ? AND prop = ?", (obj, name))
                # the values go with the property: a record read afterwards has none
                path = '$."' + name.replace('"', '\\"') + '"'
                conn.execute(
                    "UPDATE hs_records SET props = json_remove(props, ?) "
                    "WHERE object = ? AND json_type(props, ?) IS NOT NULL",
                    (path, obj, path),
                )
                return Response(status_code=204)
            definition = {**defs[name]}
            for key in (
                "label",
                "description",
                "groupName",
                "options",
                "displayOrder",
                "hidden",
                "formField",
                "type",
                "fieldType",
            ):
                if key in body:
                    definition[key] = body[key]
            conn.execute(
                "UPDATE hs_properties SET definition = ? WHERE object = ? AND name = ?",
                (json.dumps(definition), obj, name),
            )
            return JSONResponse(definition)

    # ------------------------------------------------------------------ subscriptions

    async def unsubscribe_all(request: Request) -> Response:
        """``POST /communication-preferences/v4/statuses/{email}/unsubscribe-all?channel=EMAIL``:
        the address opts out of all email; its contact's ``hs_email_optout`` (read-only to the
        CRM API) turns ``true``. An address no contact has is opted out all the same."""
        if str(request.query_params.get("channel") or "").upper() != "EMAIL":
            raise validation("channel must be EMAIL", context={"channel": ["EMAIL"]})
        email = str(request.path_params["subscriber"]).strip()
        if "@" not in email:
            raise validation(f"Invalid email address: {email}")
        started = started_at()
        with state.tx() as conn:
            rid = rec.find_id(conn, "contacts", email, "email")
            row = rec.get_rows(conn, "contacts", [rid]).get(rid) if rid is not None else None
            if (
                rid is not None
                and row is not None
                and not row["archived"]
                and json.loads(row["props"]).get("hs_email_optout") != "true"
            ):
                rec.update_record(
                    state,
                    conn,
                    "contacts",
                    rid,
                    {"hs_email_optout": "true"},
                    request.headers.get("x-request-id") or state.new_request_id(),
                )
        return JSONResponse(
            {
                "status": "COMPLETE",
                "results": [
                    {
                        "subscriberIdString": email.lower(),
                        "channel": "EMAIL",
                        "status": "NOT_SUBSCRIBED",
                        "source": "Public API",
                        "wideStatusType": "PORTAL_WIDE",
                    }
                ],
                "startedAt": started,
                "completedAt": started_at(),
            }
        )

    # ------------------------------------------------------------------ owners

    async def owners(request: Request) -> Response:
        q = request.query_params
        email = (q.get("email") or "").lower()
        limit = max(1, min(int(q.get("limit") or 100), 500))
        after = int(q.get("after") or 0)
        with state.tx() as conn:
            rows = [
                json.loads(r[0]) for r in conn.execute("SELECT data FROM hs_owners ORDER BY id")
            ]
        rows = [o for o in rows if bool(o["archived"]) == bool_param(q.get("archived"))]
        if email:
            rows = [o for o in rows if o["email"].lower() == email]
        page = rows[after : after + limit]
        body: dict[str, Any] = {"results": page}
        if after + limit < len(rows):
            nxt = str(after + limit)
            base = state.settings.base_url or str(request.base_url).rstrip("/")
            params = [(k, v) for k, v in q.multi_items() if k != "after"] + [("after", nxt)]
            body["paging"] = {
                "next": {"after": nxt, "link": f"{base}/crm/v3/owners/?{urlencode(params)}"}
            }
        return JSONResponse(body)

    async def owner(request: Request) -> Response:
        wanted = request.path_params["owner_id"]
        by_user = request.query_params.get("idProperty") == "userId"
        with state.tx() as conn:
            rows = [json.loads(r[0]) for r in conn.execute("SELECT data FROM hs_owners")]
        for o in rows:
            if str(o["userId"] if by_user else o["id"]) == wanted:
                return JSONResponse(o)
        return error(404, f"Owner {wanted} not found", "OBJECT_NOT_FOUND")

    # ------------------------------------------------------------------ associations v4

    def live(conn: Any, obj: str, raw: Any) -> int | None:
        rid = rec.find_id(conn, obj, str(raw))
        row = rec.get_rows(conn, obj, [rid]).get(rid) if rid is not None else None
        return None if row is None or row["archived"] else rid

    def labelled(types: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"category": c, "typeId": t, "label": rec.ASSOC_LABELS.get(t)} for c, t in types]

    async def assoc_list(request: Request) -> Response:
        p = request.path_params
        obj, to_type = object_type(p["type"]), object_type(p["to_type"])
        limit = max(1, min(int(request.query_params.get("limit") or 500), 500))
        after = int(request.query_params.get("after") or 0)
        with state.tx() as conn:
            rid = live(conn, obj, p["id"])
            if rid is None:
                return error(404, f"No {_singular(obj)} with id {p['id']}", "OBJECT_NOT_FOUND")
            found = rec.associations_of(conn, obj, [rid], to_type).get(rid, {})
        items = [
            {"toObjectId": to_id, "associationTypes": labelled(t)}
            for to_id, t in sorted(found.items())
        ]
        body: dict[str, Any] = {"results": items[after : after + limit]}
        if after + limit < len(items):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return JSONResponse(body)

    async def assoc_put(request: Request) -> Response:
        p = request.path_params
        obj, to_type = object_type(p["type"]), object_type(p["to_type"])
        default = request.url.path.split("/associations/")[1].startswith("default/")
        body = None if default else await json_body(request)
        with state.tx() as conn:
            a, b = live(conn, obj, p["id"]), live(conn, to_type, p["to_id"])
            if a is None or b is None:
                return error(404, "One or both objects do not exist", "OBJECT_NOT_FOUND")
            if default:
                pairs = rec.associate(conn, obj, a, to_type, b)
                spec = pairs[0]
                return JSONResponse(
                    {
                        "status": "COMPLETE",
                        "results": [
                            {
                                "from": {"id": str(a)},
                                "to": {"id": str(b)},
                                "associationSpec": {
                                    "associationCategory": spec[0],
                                    "associationTypeId": spec[1],
                                },
                            }
                        ],
                        "startedAt": started_at(),
                        "completedAt": started_at(),
                    }
                )
            if request.method == "DELETE":
                rec.dissociate(conn, obj, a, to_type, b)
                return Response(status_code=204)
            specs = _specs(body)
            rec.associate(conn, obj, a, to_type, b, specs)
            return JSONResponse(
                {
                    "fromObjectTypeId": type_id(obj),
                    "fromObjectId": a,
                    "toObjectTypeId": type_id(to_type),
                    "toObjectId": b,
                    "labels": [rec.ASSOC_LABELS[t] for _c, t in specs if t in rec.ASSOC_LABELS],
                },
                status_code=201,
            )

    async def assoc_batch(request: Request) -> Response:
        p = request.path_params
        obj, to_type = object_type(p["from_type"]), object_type(p["to_type"])
        action = p["action"]
        inputs = inputs_of(await json_body(request), limit=1000 if action == "read" else 2000)
        started = started_at()
        results: list[Any] = []
        missing: list[str] = []
        with state.tx() as conn:
            if action == "read":
                ids = []
                for item in inputs:
                    rid = live(conn, obj, item.get("id"))
                    if rid is None:
                        missing.append(str(item.get("id")))
                    else:
                        ids.append(rid)
                found = rec.associations_of(conn, obj, ids, to_type)
                for rid in ids:
                    if rid in found:
                        to = [
                            {"toObjectId": t, "associationTypes": labelled(ty)}
                            for t, ty in sorted(found[rid].items())
                        ]
                        results.append({"from": {"id": str(rid)}, "to": to})
                    else:
                        missing.append(str(rid))
                errors = [
                    batch_error(
                        "OBJECT_NOT_FOUND",
                        f"No {to_type} is associated with {_singular(obj)} {i}.",
                        [i],
                    )
                    for i in missing
                ]
                return batch_json(results, errors, started, 200)
            for item in inputs:
                a = live(conn, obj, (item.get("from") or {}).get("id"))
                targets = item.get("to")
                targets = targets if isinstance(targets, list) else [targets or {}]
                for target in targets:
                    b = live(conn, to_type, target.get("id"))
                    if a is None or b is None:
                        missing.append(f"{(item.get('from') or {}).get('id')}->{target.get('id')}")
                        continue
                    if action == "archive":
                        rec.dissociate(conn, obj, a, to_type, b)
                    elif action == "associate/default":
                        spec = rec.associate(conn, obj, a, to_type, b)[0]
                        results.append(
                            {
                                "from": {"id": str(a)},
                                "to": {"id": str(b)},
                                "associationSpec": {
                                    "associationCategory": spec[0],
                                    "associationTypeId": spec[1],
                                },
                            }
                        )
                    else:
                        specs = _specs(item.get("types"))
                        rec.associate(conn, obj, a, to_type, b, specs)
                        results.append(
                            {
                                "fromObjectTypeId": type_id(obj),
                                "fromObjectId": a,
                                "toObjectTypeId": type_id(to_type),
                                "toObjectId": b,
                                "labels": [
                                    rec.ASSOC_LABELS[t] for _c, t in specs if t in rec.ASSOC_LABELS
                                ],
                            }
                        )
        if action == "archive":
            return Response(status_code=204)
        errors = [
            batch_error("OBJECT_NOT_FOUND", "One or both objects do not exist", [m])
            for m in missing
        ]
        return batch_json(results, errors, started, 201 if action == "create" else 200)

    v4 = "/crm/v4/objects/{type}/{id}/associations"
    table: list[tuple[str, str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/crm/v3/properties/{type}", "/crm/v3/properties/{type}", properties, ["GET", "POST"]),
        ("/crm/v3/properties/{type}/groups", "/crm/v3/properties/{type}/groups", groups, ["GET"]),
        (
            "/crm/v3/properties/{type}/{name}",
            "/crm/v3/properties/{type}/{{name}}",
            one_property,
            ["GET", "PATCH", "DELETE"],
        ),
        (
            "/communication-preferences/v4/statuses/{subscriber}/unsubscribe-all",
            "/communication-preferences/v4/statuses/{{id}}/unsubscribe-all",
            unsubscribe_all,
            ["POST"],
        ),
        ("/crm/v3/owners", "/crm/v3/owners", owners, ["GET"]),
        ("/crm/v3/owners/", "/crm/v3/owners", owners, ["GET"]),
        ("/crm/v3/owners/{owner_id}", "/crm/v3/owners/{{id}}", owner, ["GET"]),
        (
            f"{v4}/default/{{to_type}}/{{to_id}}",
            "/crm/v4/objects/{type}/{{id}}/associations/default/{to_type}/{{id}}",
            assoc_put,
            ["PUT"],
        ),
        (
            f"{v4}/{{to_type}}/{{to_id}}",
            "/crm/v4/objects/{type}/{{id}}/associations/{to_type}/{{id}}",
            assoc_put,
            ["PUT", "DELETE"],
        ),
        (
            f"{v4}/{{to_type}}",
            "/crm/v4/objects/{type}/{{id}}/associations/{to_type}",
            assoc_list,
            ["GET"],
        ),
        (
            "/crm/v4/associations/{from_type}/{to_type}/batch/{action:path}",
            "/crm/v4/associations/{from_type}/{to_type}/batch",
            assoc_batch,
            ["POST"],
        ),
    ]
    return [
        Route(path, _wrap(state, name, fn), methods=methods) for path, name, fn, methods in table
    ]


def _specs(body: Any) -> list[tuple[str, int]]:
    if not isinstance(body, list) or not body:
        raise validation(
            "Association types must be a non-empty list of {associationCategory, associationTypeId}"
        )
    try:
        return [
            (str(s.get("associationCategory", "HUBSPOT_DEFINED")), int(s["associationTypeId"]))
            for s in body
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise validation(
            "Each association type needs associationCategory and associationTypeId"
        ) from None


def _new_property(obj: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation("Invalid input JSON: expected an object")
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise validation(f"Missing required fields: {', '.join(missing)}")
    name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
    if not _NAME.match(name):
        raise validation(
            f"Property name {name!r} must be lower case letters, digits and underscores"
        )
    if kind not in PROPERTY_TYPES or field_type not in PROPERTY_TYPES[kind]:
        raise validation(f"fieldType {field_type!r} is not valid for type {kind!r}")
    options = body.get("options") or []
    if kind == "enumeration" and not options and field_type != "booleancheckbox":
        raise validation("Enumeration properties need options")
    definition = property_def(
        name,
        str(body["label"]),
        kind,
        field_type,
        group=str(body["groupName"]),
        options=[
            {
                "label": str(o.get("label", o.get("value"))),
                "value": str(o.get("value")),
                "description": str(o.get("description") or ""),
                "displayOrder": int(o.get("displayOrder", i)),
                "hidden": bool(o.get("hidden", False)),
            }
            for i, o in enumerate(options)
        ],
        unique=bool(body.get("hasUniqueValue", False)),
        hubspot_defined=False,
        description=str(body.get("description") or ""),
    )
    definition["formField"] = bool(body.get("formField", True))
    definition["hidden"] = bool(body.get("hidden", False))
    sensitivity = str(body.get("dataSensitivity") or "non_sensitive")
    if sensitivity not in DATA_SENSITIVITY:
        raise validation(
            f"dataSensitivity {sensitivity!r} is not one of {', '.join(DATA_SENSITIVITY)}"
        )
    definition["dataSensitivity"] = sensitivity
    return definition


#: a property's ``dataSensitivity``: the emulator's private apps hold no sensitive-data scope, so
#: values of the other two are left out of every record read (their definitions are listed)
DATA_SENSITIVITY = ("non_sensitive", "sensitive", "highly_sensitive")
