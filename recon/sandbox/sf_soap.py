"""The OAuth token endpoint and the SOAP ``merge`` call of the Salesforce emulator.

``POST /services/oauth2/token`` answers the ``client_credentials``, JWT bearer
(``urn:ietf:params:oauth:grant-type:jwt-bearer``; any well-formed JWT is accepted,
the signature is not checked), ``password`` and ``refresh_token`` grants with
``{access_token, instance_url, id, token_type, issued_at, signature}`` and errors
``{error, error_description}`` (400).

``POST /services/Soap/u/{version}`` answers the partner API's ``merge`` (the one
write REST lacks): a master record (``type``, ``Id`` and fields to set) and up to two
``recordToMergeIds`` per request, for Account, Contact and Lead. Victims are deleted
with ``MasterRecordId`` set; Contacts of merged Accounts (and campaign members of
merged Contacts/Leads) move to the master. Bad input gets a SOAP fault.

Also answered: the token answer's ``id`` URL (``/id/{org}/{user}``) and
``/services/oauth2/userinfo`` (the API user's identity), ``/services/oauth2/revoke``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from .faults import enter
from .sf_common import SfError
from .sf_describe import get_object
from .sf_store import API_USER_ID
from .sf_write import save_many

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = ["ORG_ID", "routes"]

ORG_ID = "00D5g000004SBXAEAW"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
SOBJECT = "urn:sobject.partner.soap.sforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_MERGE_REQUESTS = 200
_VERSIONS = tuple(f"{v}.0" for v in range(50, 63))


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _token_answer(base_url: str, client_secret: str | None) -> dict[str, Any]:
    issued = str(int(time.time() * 1000))
    identity = f"{base_url}/id/{ORG_ID}/{API_USER_ID}"
    key = (client_secret or "sandbox").encode()
    signature = base64.b64encode(
        hmac.new(key, (identity + issued).encode(), hashlib.sha256).digest()
    )
    return {
        "access_token": f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}",
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued,
        "signature": signature.decode(),
        "scope": "api",
    }


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _fault(code: str, message: str, client: bool = False) -> Response:
    faultcode = "soapenv:Client" if client else f"sf:{code}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>{faultcode}</faultcode><faultstring>{escape(f'{code}: {message}')}</faultstring>"
        f'<detail><sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault"><sf:exceptionCode>{code}'
        f"</sf:exceptionCode><sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=500, media_type="text/xml")


def _result_xml(result: dict[str, Any]) -> str:
    parts = ["<result>"]
    for err in result.get("errors", []):
        fields = "".join(f"<fields>{escape(f)}</fields>" for f in err.get("fields") or [])
        parts.append(
            f"<errors>{fields}<message>{escape(err['message'])}</message>"
            f"<statusCode>{escape(err['statusCode'])}</statusCode></errors>"
        )
    if result.get("id"):
        parts.append(f"<id>{result['id']}</id>")
    parts += [f"<mergedRecordIds>{i}</mergedRecordIds>" for i in result.get("mergedRecordIds", [])]
    parts.append(f"<success>{'true' if result['success'] else 'false'}</success>")
    parts += [
        f"<updatedRelatedIds>{i}</updatedRelatedIds>" for i in result.get("updatedRelatedIds", [])
    ]
    parts.append("</result>")
    return "".join(parts)


def _parse_requests(op: ET.Element) -> list[dict[str, Any]]:
    """The ``request`` elements of a ``merge`` call as dicts; ValueError when malformed."""
    requests_ = [el for el in op if _local(el.tag) == "request"]
    if not requests_:
        raise ValueError("merge needs at least one request element")
    if len(requests_) > MAX_MERGE_REQUESTS:
        raise ValueError(f"merge accepts at most {MAX_MERGE_REQUESTS} requests per call")
    out = []
    for req in requests_:
        master = next((el for el in req if _local(el.tag) == "masterRecord"), None)
        if master is None:
            raise ValueError("request element without masterRecord")
        record: dict[str, Any] = {}
        nulls: list[str] = []
        for el in master:
            name = _local(el.tag)
            if name == "fieldsToNull":
                # the partner WSDL's sObject is a sequence: type, fieldsToNull*, Id, fields
                if set(record) - {"type"}:
                    raise ValueError(
                        "Unexpected element {urn:sobject.partner.soap.sforce.com}fieldsToNull "
                        "during simple type deserialization: fieldsToNull goes after type and "
                        "before Id and the fields"
                    )
                nulls.append((el.text or "").strip())
            elif el.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true":
                record[name] = None
            else:
                record[name] = (el.text or "").strip()
        if not record.get("type"):
            raise ValueError("masterRecord without type")
        if nulls:
            record["fieldsToNull"] = nulls
        victims = [(el.text or "").strip() for el in req if _local(el.tag) == "recordToMergeIds"]
        out.append({"master": record, "victims": victims})
    return out


def routes(state: SandboxState) -> list[BaseRoute]:
    """The OAuth token route and the SOAP endpoint."""

    async def token(request: Request) -> Response:
        fault = await enter(state, "salesforce", "POST /services/oauth2/token")
        if fault is not None:
            return fault
        # parsed by hand: starlette's request.form() needs python-multipart
        raw = (await request.body()).decode("utf-8", "replace")
        p = dict(parse_qsl(raw, keep_blank_values=True))
        p.update({k: v for k, v in request.query_params.items() if k not in p})
        grant = p.get("grant_type", "")
        base = state.settings.base_url or str(request.base_url).rstrip("/")
        if grant == "password":
            if not p.get("client_id"):
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if not p.get("username") or not p.get("password"):
                return _oauth_error("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            if not p.get("client_id") or not p.get("client_secret"):
                return _oauth_error("invalid_client", "invalid client credentials")
        elif grant == JWT_GRANT:
            assertion = p.get("assertion", "")
            try:
                claims = jwt.decode(assertion, options={"verify_signature": False})
            except jwt.PyJWTError:
                return _oauth_error("invalid_grant", "invalid assertion")
            if not isinstance(claims, dict) or not claims.get("sub"):
                return _oauth_error("invalid_grant", "invalid assertion")
        elif grant == "refresh_token":
            if not p.get("refresh_token"):
                return _oauth_error("invalid_grant", "expired access/refresh token")
            if not p.get("client_id"):
                return _oauth_error("invalid_client_id", "client identifier invalid")
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        return JSONResponse(_token_answer(base, p.get("client_secret")))

    async def soap(request: Request) -> Response:
        if request.path_params["version"] not in _VERSIONS:
            return _fault(
                "UNSUPPORTED_API_VERSION",
                f"Invalid Api version specified on URL: {request.path_params['version']}",
            )
        try:
            envelope = ET.fromstring(await request.body())
        except ET.ParseError as exc:
            return _fault(
                "INVALID_XML", f"Premature end of file or malformed XML: {exc}", client=True
            )
        header = envelope.find(f"{{{SOAPENV}}}Header")
        session = None
        if header is not None:
            session = next((el.text for el in header.iter() if _local(el.tag) == "sessionId"), None)
        if not session or not session.strip():
            return _fault(
                "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
            )
        body = envelope.find(f"{{{SOAPENV}}}Body")
        op = body[0] if body is not None and len(body) else None
        if op is None:
            return _fault("INVALID_OPERATION", "No operation in the SOAP Body", client=True)
        if _local(op.tag) != "merge":
            return _fault(
                "INVALID_OPERATION", f"No operation available for request {op.tag}", client=True
            )
        fault = await enter(state, "salesforce", "POST /services/Soap/u/merge")
        if fault is not None:
            if fault.status_code == 401:
                return _fault(
                    "INVALID_SESSION_ID",
                    "Invalid Session ID found in SessionHeader: Illegal Session",
                )
            if fault.status_code == 403:  # the fault's own message: concurrent or daily limit
                try:
                    message = json.loads(bytes(fault.body))[0]["message"]
                except (ValueError, LookupError, TypeError):
                    message = "TotalRequests Limit exceeded."
                return _fault("REQUEST_LIMIT_EXCEEDED", message)
            return fault  # 5xx bursts keep their status
        try:
            items = _parse_requests(op)
        except ValueError as exc:
            return _fault("INVALID_FIELD", str(exc), client=True)
        for item in items:
            spec = get_object(str(item["master"]["type"]))
            if spec is None or not spec.mergeable:
                return _fault(
                    "INVALID_TYPE", f"Cannot merge records of type {item['master']['type']}"
                )
        request_id = state.new_request_id()

        def run(writer: Any, item: dict[str, Any]) -> dict[str, Any]:
            spec = get_object(str(item["master"]["type"]))
            assert spec is not None
            master = {k: v for k, v in item["master"].items() if k != "type"}
            return writer.merge(spec, master, item["victims"])

        try:
            results = save_many(state, request_id, items, run, all_or_none=False)
        except SfError as exc:  # pragma: no cover - per-record errors are caught by save_many
            return _fault(exc.code, exc.message)
        used = state.api_usage("salesforce")
        budget = state.settings.salesforce_daily_budget
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns="{PARTNER}">'
            "<soapenv:Header><LimitInfoHeader><limitInfo>"
            f"<current>{used}</current><limit>{budget}</limit><type>API REQUESTS</type>"
            "</limitInfo></LimitInfoHeader></soapenv:Header>"
            "<soapenv:Body><mergeResponse>"
            + "".join(_result_xml(r) for r in results)
            + "</mergeResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(xml, media_type="text/xml")

    def identity(request: Request) -> dict[str, Any]:
        base = state.settings.base_url or str(request.base_url).rstrip("/")
        with state.tx() as conn:
            row = conn.execute(
                'SELECT "Username", "Email", "FirstName", "LastName", "Name" FROM sf_user WHERE "Id" = ?',
                (API_USER_ID,),
            ).fetchone()
        username, email, first, last, name = tuple(row) if row else ("", "", "", "", "")
        data = f"{base}/services/data/v{{version}}/"
        return {
            "id": f"{base}/id/{ORG_ID}/{API_USER_ID}",
            "user_id": API_USER_ID,
            "organization_id": ORG_ID,
            "username": username,
            "email": email,
            "first_name": first,
            "last_name": last,
            "display_name": name,
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": {
                "rest": data,
                "sobjects": data + "sobjects/",
                "query": data + "query/",
                "limits": data + "limits/",
                "partner": f"{base}/services/Soap/u/{{version}}/{ORG_ID[:15]}",
            },
        }

    async def identity_url(request: Request) -> Response:
        """The ``id`` URL of a token answer (also ``/services/oauth2/userinfo``)."""
        from .sf_rest import session_token

        if session_token(request) is None:
            return PlainTextResponse("Bad_OAuth_Token", status_code=403)
        fault = await enter(state, "salesforce", "GET /id")
        if fault is not None:
            return fault
        info = identity(request)
        if request.url.path.endswith("/userinfo"):
            info = {
                "sub": info["id"],
                "user_id": API_USER_ID,
                "organization_id": ORG_ID,
                "preferred_username": info["username"],
                "email": info["email"],
                "name": info["display_name"],
                "given_name": info["first_name"],
                "family_name": info["last_name"],
                "urls": info["urls"],
            }
        return JSONResponse(info)

    async def revoke(request: Request) -> Response:
        """``/services/oauth2/revoke``: always 200 (tokens are not tracked)."""
        return Response(status_code=200)

    return [
        Route("/services/oauth2/token", token, methods=["POST"]),
        Route("/services/oauth2/revoke", revoke, methods=["GET", "POST"]),
        Route("/services/oauth2/userinfo", identity_url, methods=["GET", "POST"]),
        Route("/id/{org}/{user}", identity_url, methods=["GET", "POST"]),
        Route("/services/Soap/u/{version}", soap, methods=["POST"]),
    ]
