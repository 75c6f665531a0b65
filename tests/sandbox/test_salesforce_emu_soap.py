"""The Salesforce emulator's OAuth token endpoint and SOAP merge, with plain HTTP
(simple-salesforce cannot reach either at a local URL)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

import jwt
import pytest
import requests

from recon.sandbox.salesforce import load_records
from recon.sandbox.server import SandboxServer
from recon.sandbox.state import SandboxState

NS = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "p": "urn:partner.soap.sforce.com"}


@pytest.fixture
def server(sandbox_reset: SandboxServer) -> SandboxServer:
    """The session sandbox, restored after each test."""
    return sandbox_reset


def token(server: SandboxServer, **form: str) -> requests.Response:
    return requests.post(f"{server.url}/services/oauth2/token", data=form, timeout=10)


def assertion(**claims: Any) -> str:
    payload = {"iss": "client-id", "sub": "user@example.com", "aud": "https://login.salesforce.com",
               "exp": int(time.time()) + 300, **claims}  # fmt: skip
    return jwt.encode(payload, "not-checked-by-the-sandbox-0123456789", algorithm="HS256")


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "secret"},
        {
            "grant_type": "password",
            "client_id": "cid",
            "client_secret": "s",
            "username": "u@x.test",
            "password": "pwTOKEN",
        },
        {"grant_type": "refresh_token", "client_id": "cid", "refresh_token": "5Aep861..."},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion()},
    ],
)
def test_token_grants(server: SandboxServer, form: dict[str, str]) -> None:
    response = token(server, **form)
    assert response.status_code == 200
    body = response.json()
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"} <= set(
        body
    )
    assert body["instance_url"] == server.url
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    # the token works as a bearer token
    listed = requests.get(
        f"{body['instance_url']}/services/data/v59.0/sobjects",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert listed.status_code == 200


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials", "client_id": "cid"}, "invalid_client"),
        ({"grant_type": "password", "username": "u", "password": "p"}, "invalid_client_id"),
        ({"grant_type": "password", "client_id": "cid", "username": "u"}, "invalid_grant"),
        ({"grant_type": "refresh_token", "client_id": "cid"}, "invalid_grant"),
        (
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "not.a.jwt"},
            "invalid_grant",
        ),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
    ],
)
def test_token_errors(server: SandboxServer, form: dict[str, str], error: str) -> None:
    response = token(server, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def envelope(body: str, session: str | None = "00Dxx!sandbox") -> str:
    header = (
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>"
        if session
        else ""
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
        f"{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def merge_body(obj: str, master: str, victims: list[str], fields: str = "") -> str:
    ids = "".join(f"<urn:recordToMergeIds>{v}</urn:recordToMergeIds>" for v in victims)
    return (
        f"<urn:merge><urn:request><urn:masterRecord><urn1:type>{obj}</urn1:type><urn1:Id>{master}</urn1:Id>"
        f"{fields}</urn:masterRecord>{ids}</urn:request></urn:merge>"
    )


def soap(server: SandboxServer, xml: str, version: str = "59.0") -> requests.Response:
    return requests.post(
        f"{server.url}/services/Soap/u/{version}",
        data=xml.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "merge"},
        timeout=10,
    )


def results(response: requests.Response) -> list[ET.Element]:
    root = ET.fromstring(response.content)
    return root.findall("s:Body/p:mergeResponse/p:result", NS)


def rows(state: SandboxState, table: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    with state.tx() as conn:
        cur = conn.execute(
            f'SELECT * FROM {table} WHERE "Id" IN ({",".join("?" for _ in ids)})', ids
        )
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_merge_accounts_deletes_victims_and_reparents_contacts(server: SandboxServer) -> None:
    state = server.state
    master, v1, v2 = load_records(
        state, "Account", [{"Name": "Acme"}, {"Name": "Acme Inc"}, {"Name": "ACME"}]
    )
    contacts = load_records(
        state, "Contact", [{"LastName": "A", "AccountId": v1}, {"LastName": "B", "AccountId": v2}]
    )
    response = soap(
        server,
        envelope(merge_body("Account", master, [v1, v2], "<urn1:Website>acme.com</urn1:Website>")),
    )
    assert response.status_code == 200
    [result] = results(response)
    assert result.findtext("p:success", namespaces=NS) == "true"
    assert result.findtext("p:id", namespaces=NS) == master
    assert [e.text for e in result.findall("p:mergedRecordIds", NS)] == [v1, v2]
    assert sorted(e.text or "" for e in result.findall("p:updatedRelatedIds", NS)) == sorted(
        contacts
    )
    accounts = rows(state, "sf_account", [master, v1, v2])
    assert accounts[master]["Website"] == "acme.com" and accounts[master]["IsDeleted"] == 0
    assert [(accounts[v]["IsDeleted"], accounts[v]["MasterRecordId"]) for v in (v1, v2)] == [
        (1, master),
        (1, master),
    ]
    assert {r["AccountId"] for r in rows(state, "sf_contact", contacts).values()} == {master}
    log = {(c["record_id"], c["action"]) for c in state.changes(side="salesforce")}
    assert {(v1, "merged"), (v2, "merged"), (master, "updated")} <= log


@pytest.mark.parametrize(
    ("obj", "records"),
    [
        (
            "Contact",
            [
                {"LastName": "Lee", "Email": "lee@x.test"},
                {"LastName": "Lee", "Email": "LEE@x.test"},
            ],
        ),
        ("Lead", [{"LastName": "Ng", "Company": "Co"}, {"LastName": "Ng", "Company": "Co."}]),
    ],
)
def test_merge_people(server: SandboxServer, obj: str, records: list[dict[str, Any]]) -> None:
    master, victim = load_records(server.state, obj, records)
    [result] = results(soap(server, envelope(merge_body(obj, master, [victim]))))
    assert result.findtext("p:success", namespaces=NS) == "true"
    victim_row = rows(server.state, f"sf_{obj.lower()}", [victim])[victim]
    assert (victim_row["IsDeleted"], victim_row["MasterRecordId"]) == (1, master)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("three victims", "LIMIT_EXCEEDED"),
        ("victim is master", "INVALID_ID_FIELD"),
        ("unknown victim", "INVALID_CROSS_REFERENCE_KEY"),
        ("deleted victim", "ENTITY_IS_DELETED"),
    ],
)
def test_merge_record_errors_are_results(server: SandboxServer, case: str, code: str) -> None:
    master, a, b, c = load_records(server.state, "Account", [{"Name": n} for n in "MABC"])
    victims = {
        "three victims": [a, b, c],
        "victim is master": [master],
        "unknown victim": ["0015g0000ZZZZZZAAA"],
        "deleted victim": [a],
    }[case]
    if case == "deleted victim":
        with server.state.tx() as conn:
            conn.execute('UPDATE sf_account SET "IsDeleted" = 1 WHERE "Id" = ?', (a,))
    [result] = results(soap(server, envelope(merge_body("Account", master, victims))))
    assert result.findtext("p:success", namespaces=NS) == "false"
    assert result.findtext("p:errors/p:statusCode", namespaces=NS) == code


@pytest.mark.parametrize(
    ("xml", "faultcode"),
    [
        (
            envelope(merge_body("Account", "0015g0000000001AAA", []), session=None),
            "sf:INVALID_SESSION_ID",
        ),
        ("<not xml", "soapenv:Client"),
        (envelope("<urn:upsert/>"), "soapenv:Client"),
        (envelope("<urn:merge/>"), "soapenv:Client"),
        (
            envelope(merge_body("Campaign", "7015g0000000001AAA", ["7015g0000000002AAA"])),
            "sf:INVALID_TYPE",
        ),
    ],
)
def test_soap_faults(server: SandboxServer, xml: str, faultcode: str) -> None:
    response = soap(server, xml)
    assert response.status_code == 500
    fault = ET.fromstring(response.content).find("s:Body/s:Fault", NS)
    assert fault is not None
    assert fault.findtext("faultcode") == faultcode
    assert fault.findtext("faultstring")


def test_soap_any_version_in_range(server: SandboxServer) -> None:
    master, victim = load_records(server.state, "Lead", [{"LastName": "V", "Company": "C"}] * 2)
    assert soap(server, envelope(merge_body("Lead", master, [victim])), "62.0").status_code == 200
    assert soap(server, envelope(merge_body("Lead", master, [victim])), "40.0").status_code == 500


@pytest.mark.parametrize(
    ("rule", "faultcode", "message"),
    [
        ({"kind": "expired_session"}, "sf:INVALID_SESSION_ID", "Invalid Session ID"),
        # the daily allocation (spent) and the concurrent limit (passes) are told apart by
        # their message, in SOAP as in REST
        ({"kind": "request_limit"}, "sf:REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        (
            {"kind": "rate_limit"},
            "sf:REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        ),
    ],
)
def test_injected_faults_reach_soap(
    server: SandboxServer, rule: dict[str, Any], faultcode: str, message: str
) -> None:
    master, victim = load_records(server.state, "Lead", [{"LastName": "F", "Company": "C"}] * 2)
    added = server.state.faults.add(
        {**rule, "side": "salesforce", "endpoint": "*Soap*", "times": 1}
    )
    try:
        response = soap(server, envelope(merge_body("Lead", master, [victim])))
    finally:
        server.state.faults.remove(added["id"])
    assert response.status_code == 500 and message in response.text
    assert (
        ET.fromstring(response.content).findtext("s:Body/s:Fault/faultcode", namespaces=NS)
        == faultcode
    )
    assert rows(server.state, "sf_lead", [victim])[victim]["IsDeleted"] == 0


def test_fields_to_null_go_between_type_and_id(server: SandboxServer) -> None:
    """The partner WSDL's sObject is a sequence (type, fieldsToNull*, Id, fields): a
    ``fieldsToNull`` after ``Id`` or a field is refused, as Salesforce's parser does."""
    master, victim = load_records(
        server.state, "Lead", [{"LastName": "N", "Company": "C", "Phone": "1"}] * 2
    )
    null = "<urn1:fieldsToNull>Phone</urn1:fieldsToNull>"
    late = merge_body("Lead", master, [victim], f"<urn1:Title>T</urn1:Title>{null}")
    response = soap(server, envelope(late))
    assert response.status_code == 500 and "fieldsToNull" in response.text
    assert rows(server.state, "sf_lead", [victim])[victim]["IsDeleted"] == 0
    ok = envelope(merge_body("Lead", master, [victim]).replace("<urn1:Id>", f"{null}<urn1:Id>", 1))
    response = soap(server, ok)
    assert response.status_code == 200, response.text
    assert rows(server.state, "sf_lead", [master])[master]["Phone"] is None


def test_admin_edit_through_the_admin_api(server: SandboxServer) -> None:
    [rid] = load_records(server.state, "Account", [{"Name": "Before"}])
    before = rows(server.state, "sf_account", [rid])[rid]["SystemModstamp"]
    response = requests.post(
        f"{server.url}/_sandbox/records/salesforce/Account/{rid}",
        json={"fields": {"Name": "After"}},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["Name"] == "After"
    after = rows(server.state, "sf_account", [rid])[rid]
    assert after["Name"] == "After" and after["SystemModstamp"] > before
    assert [
        c["action"] for c in server.state.changes(side="salesforce") if c["record_id"] == rid
    ] == ["edited"]
    missing = requests.post(
        f"{server.url}/_sandbox/records/salesforce/Account/0015g0000ZZZZZZAAA",
        json={"fields": {"Name": "x"}},
        timeout=10,
    )
    assert missing.status_code == 404


def test_identity_url_userinfo_and_revoke(server: SandboxServer) -> None:
    answer = token(server, grant_type="client_credentials", client_id="c", client_secret="s").json()
    auth = {"Authorization": f"Bearer {answer['access_token']}"}
    who = requests.get(answer["id"], headers=auth, timeout=10)
    assert who.status_code == 200
    assert (who.json()["user_id"], who.json()["email"]) == (
        "0055g0000000001AAA",
        "integration@sandbox.recon.test",
    )
    assert who.json()["urls"]["rest"] == f"{server.url}/services/data/v{{version}}/"
    info = requests.get(f"{server.url}/services/oauth2/userinfo", headers=auth, timeout=10).json()
    assert info["preferred_username"] == "integration@sandbox.recon.test"
    assert requests.get(answer["id"], timeout=10).status_code == 403
    revoked = requests.post(
        f"{server.url}/services/oauth2/revoke", data={"token": answer["access_token"]}, timeout=10
    )
    assert revoked.status_code == 200
