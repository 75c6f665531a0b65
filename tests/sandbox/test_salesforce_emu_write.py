"""Salesforce emulator writes through the real simple-salesforce client: sObject rows
(create, GET, PATCH with If-Unmodified-Since, delete, upsert by external id) and
sObject Collections (create, update, upsert, retrieve, delete; allOrNone; injected
validation and duplicate-rule failures)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from recon.sandbox.salesforce import admin_edit
from recon.sandbox.server import SandboxServer

from .sf_client import client


@pytest.fixture
def server(sandbox_reset: SandboxServer) -> SandboxServer:
    """The session sandbox, restored after each test."""
    return sandbox_reset


@pytest.fixture
def sf(server: SandboxServer) -> Salesforce:
    return client(server.url)


@pytest.fixture
def tag() -> str:
    """A unique marker for the records one test creates."""
    return uuid.uuid4().hex[:10]


def http_date(stamp: str, delta: int = 0) -> str:
    ts = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC) + timedelta(
        seconds=delta
    )
    return format_datetime(ts, usegmt=True)


def records(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    return list(sf.query_all(soql)["records"])


def collection(
    sf: Salesforce, method: str, payload: dict[str, Any], path: str = "composite/sobjects"
) -> Any:
    return sf.restful(path, method=method, json=payload)


# ---------------------------------------------------------------------------- rows


def test_a_converted_lead_refuses_updates(sf: Salesforce, server: SandboxServer, tag: str) -> None:
    """Salesforce refuses to change a converted Lead (CANNOT_UPDATE_CONVERTED_LEAD); the
    emulator accepted it, so no test could catch a write planned onto one."""
    rid = sf.Lead.create({"LastName": f"Conv {tag}", "Company": "Acme"})["id"]
    admin_edit(server.state, "Lead", rid, {"IsConverted": True})
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Lead.update(rid, {"Street": "12 Rue de la Paix"})
    assert info.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_create_get_update_delete_one_record(
    sf: Salesforce, server: SandboxServer, tag: str
) -> None:
    created = sf.Account.create(
        {"Name": f"Row {tag}", "Website": "row.example", "NumberOfEmployees": 7}
    )
    assert (
        created["success"] is True and created["id"].startswith("001") and len(created["id"]) == 18
    )
    rid = created["id"]
    got = sf.Account.get(rid)
    assert (got["Name"], got["NumberOfEmployees"], got["IsDeleted"]) == (f"Row {tag}", 7, False)
    some = sf.Account.get(rid, params={"fields": "Name,Website"})
    assert set(some) == {"attributes", "Id", "Name", "Website"}
    assert sf.Account.update(rid, {"Website": None, "Industry": "Retail"}) == 204
    assert sf.Account.get(rid)["Website"] is None
    assert sf.Account.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Account.get(rid)
    assert info.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    actions = [
        (c["record_id"], c["action"])
        for c in server.state.changes(side="salesforce")
        if c["record_id"] == rid
    ]
    assert actions == [(rid, "created"), (rid, "updated"), (rid, "deleted")]


def test_users_cannot_be_deleted(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.User.delete("0055g0000000002AAA")
    assert info.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    assert sf.User.get("0055g0000000002AAA")["Email"] == "maria.schmidt@sandbox.recon.test"


def test_updated_and_deleted_users(sf: Salesforce) -> None:
    start, end = datetime(2019, 12, 31, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC)
    assert len(sf.User.updated(start, end)["ids"]) == 5
    assert sf.User.deleted(start, end)["deletedRecords"] == []


def test_unknown_record_is_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Account.get("0015g0000ZZZZZZAAA")
    assert info.value.content[0]["errorCode"] == "NOT_FOUND"


def test_if_unmodified_since_guards_a_stale_write(
    sf: Salesforce, server: SandboxServer, tag: str
) -> None:
    rid = sf.Contact.create({"LastName": f"Stale {tag}"})["id"]
    read = sf.Contact.get(rid)
    seen = read["LastModifiedDate"]
    assert (
        sf.Contact.update(
            rid, {"Title": "CTO"}, headers={"If-Unmodified-Since": http_date(seen, 5)}
        )
        == 204
    )
    edited = admin_edit(
        server.state, "Contact", rid, {"Title": "CEO"}
    )  # a user edits it in the CRM
    assert edited["LastModifiedDate"] > seen
    current = sf.Contact.get(rid)["LastModifiedDate"]
    with pytest.raises(SalesforceGeneralError) as info:
        sf.Contact.update(
            rid, {"Title": "CFO"}, headers={"If-Unmodified-Since": http_date(current, -1)}
        )
    assert info.value.status == 412
    assert info.value.content[0]["errorCode"] == "PRECONDITION_FAILED"
    assert sf.Contact.get(rid)["Title"] == "CEO"
    assert (
        sf.Contact.update(
            rid, {"Title": "CFO"}, headers={"If-Unmodified-Since": http_date(current)}
        )
        == 204
    )


def test_invalid_if_unmodified_since_is_400(sf: Salesforce, tag: str) -> None:
    rid = sf.Lead.create({"LastName": f"Hdr {tag}", "Company": "Hdr"})["id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(rid, {"Title": "x"}, headers={"If-Unmodified-Since": "yesterday-ish"})


@pytest.mark.parametrize(
    ("obj", "body", "code", "fields"),
    [
        ("Contact", {"FirstName": "No Last"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ("Lead", {"LastName": "No Company"}, "REQUIRED_FIELD_MISSING", ["Company"]),
        ("Account", {"Website": "nameless.example"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        ("Account", {"Name": "X", "Foo__c": 1}, "INVALID_FIELD", ["Foo__c"]),
        ("Account", {"Name": "X" * 256}, "STRING_TOO_LONG", ["Name"]),
        ("Contact", {"LastName": "L", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ("Account", {"Name": "X", "IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsDeleted"]),
        ("Account", {"Name": "X", "SystemModstamp": "2024-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["SystemModstamp"]),
        ("Contact", {"LastName": "L", "AccountId": "0035g0000000001AAA"}, "MALFORMED_ID", ["AccountId"]),
        ("Contact", {"LastName": "L", "AccountId": "0015g0000ZZZZZZAAA"}, "INVALID_CROSS_REFERENCE_KEY", ["AccountId"]),
        ("Account", {"Name": "X", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR", ["NumberOfEmployees"]),
    ],
)  # fmt: skip
def test_create_errors(
    sf: Salesforce, obj: str, body: dict[str, Any], code: str, fields: list[str]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        getattr(sf, obj).create(body)
    assert info.value.content[0]["errorCode"] == code
    assert info.value.content[0]["fields"] == fields


def test_non_updateable_fields_are_refused_on_update(sf: Salesforce, tag: str) -> None:
    rid = sf.Account.create({"Name": f"RO {tag}"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.update(rid, {"CreatedDate": "2020-01-01T00:00:00Z"})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.update(rid, {"Name": None})
    assert info.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_upsert_by_external_id(sf: Salesforce, tag: str) -> None:
    key = f"key-{tag}"
    assert sf.Account.upsert(f"Recon_Key__c/{key}", {"Name": f"Up {tag}"}) == 201
    assert sf.Account.upsert(f"Recon_Key__c/{key}", {"Name": f"Up2 {tag}"}) == 204
    rows = records(sf, f"SELECT Id, Name, Recon_Key__c FROM Account WHERE Recon_Key__c = '{key}'")
    assert [(r["Name"], r["Recon_Key__c"]) for r in rows] == [(f"Up2 {tag}", key)]
    assert sf.Account.get_by_custom_id("Recon_Key__c", key)["Id"] == rows[0]["Id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.upsert(f"Name/{key}", {"Name": "x"})  # Name is not an external id


def test_external_ids_are_unique(sf: Salesforce, tag: str) -> None:
    sf.Contact.create({"LastName": "One", "Recon_Key__c": f"u-{tag}"})
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Contact.create({"LastName": "Two", "Recon_Key__c": f"U-{tag}"})
    assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_updated_and_deleted_resources(sf: Salesforce, tag: str) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    kept = sf.Lead.create({"LastName": f"Upd {tag}", "Company": "C"})["id"]
    gone = sf.Lead.create({"LastName": f"Del {tag}", "Company": "C"})["id"]
    sf.Lead.delete(gone)
    end = datetime.now(UTC) + timedelta(minutes=1)
    assert kept in sf.Lead.updated(start, end)["ids"]
    deleted = sf.Lead.deleted(start, end)
    assert gone in [d["id"] for d in deleted["deletedRecords"]]


# ---------------------------------------------------------------------------- collections


def test_collection_create_reports_each_record_in_order(sf: Salesforce, tag: str) -> None:
    payload = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": f"C1 {tag}"},
            {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
            {"attributes": {"type": "Lead"}, "LastName": f"C3 {tag}", "Company": "Co"},
            {"attributes": {"type": "Account"}, "Name": f"C4 {tag}", "Nope__c": 1},
        ],
    }
    results = collection(sf, "POST", payload)
    assert [r["success"] for r in results] == [True, False, True, False]
    assert results[0]["id"].startswith("001") and results[2]["id"].startswith("00Q")
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[3]["errors"] == [
        {
            "statusCode": "INVALID_FIELD",
            "message": "No such column 'Nope__c' on sobject of type Account",
            "fields": ["Nope__c"],
        }
    ]
    assert "id" not in results[1]


def test_all_or_none_rolls_everything_back(sf: Salesforce, server: SandboxServer, tag: str) -> None:
    before = len(server.state.changes(side="salesforce"))
    payload = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "Name": f"AON1 {tag}", "Site": tag},
            {"attributes": {"type": "Account"}, "Site": tag},
            {"attributes": {"type": "Account"}, "Name": f"AON3 {tag}", "Site": tag},
        ],
    }
    results = collection(sf, "POST", payload)
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert all("id" not in r for r in results)
    assert records(sf, f"SELECT Id FROM Account WHERE Site = '{tag}'") == []
    assert len(server.state.changes(side="salesforce")) == before


def test_collection_update_and_rollback(sf: Salesforce, tag: str) -> None:
    ids = [r["id"] for r in collection(sf, "POST", {"records": [
        {"attributes": {"type": "Contact"}, "LastName": f"U{i} {tag}", "Department": tag} for i in range(3)
    ]})]  # fmt: skip
    ok = collection(sf, "PATCH", {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "id": ids[0], "Title": "A"},
        {"attributes": {"type": "Contact"}, "id": ids[1], "LastName": None},
        {"attributes": {"type": "Contact"}, "id": "0035g0000ZZZZZZAAA", "Title": "C"},
    ]})  # fmt: skip
    assert [(r.get("id"), r["success"]) for r in ok] == [
        (ids[0], True),
        (ids[1], False),
        ("0035g0000ZZZZZZAAA", False),
    ]
    assert ok[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    rolled = collection(sf, "PATCH", {"allOrNone": True, "records": [
        {"attributes": {"type": "Contact"}, "id": ids[2], "Title": "B"},
        {"attributes": {"type": "Contact"}, "id": ids[1], "Email": "bad"},
    ]})  # fmt: skip
    assert rolled[0] == {"id": ids[2], "success": False, "errors": [
        {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
         "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
         "fields": []}]}  # fmt: skip
    titles = {
        r["Id"]: r["Title"]
        for r in records(sf, f"SELECT Id, Title FROM Contact WHERE Department = '{tag}'")
    }
    assert titles == {ids[0]: "A", ids[1]: None, ids[2]: None}


def test_collection_upsert_on_recon_key(sf: Salesforce, tag: str) -> None:
    sf.Lead.create({"LastName": "Existing", "Company": "Co", "Recon_Key__c": f"{tag}-1"})
    results = collection(
        sf,
        "PATCH",
        {"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "Recon_Key__c": f"{tag}-1", "Title": "Updated"},
            {"attributes": {"type": "Lead"}, "Recon_Key__c": f"{tag}-2", "LastName": "New", "Company": "Co"},
            {"attributes": {"type": "Lead"}, "LastName": "No key", "Company": "Co"},
        ]},
        path="composite/sobjects/Lead/Recon_Key__c",
    )  # fmt: skip
    assert [(r["success"], r.get("created")) for r in results] == [
        (True, False),
        (True, True),
        (False, None),
    ]
    rows = records(
        sf,
        f"SELECT Recon_Key__c, Title, LastName FROM Lead WHERE Recon_Key__c LIKE '{tag}%' ORDER BY Recon_Key__c",
    )
    assert [(r["Recon_Key__c"], r["Title"], r["LastName"]) for r in rows] == [
        (f"{tag}-1", "Updated", "Existing"),
        (f"{tag}-2", None, "New"),
    ]


def test_collection_retrieve_and_delete(sf: Salesforce, tag: str) -> None:
    ids = [sf.Account.create({"Name": f"R{i} {tag}"})["id"] for i in range(2)]
    got = sf.restful(
        f"composite/sobjects/Account?ids={ids[0]},{ids[1]},0015g0000ZZZZZZAAA&fields=Name"
    )
    assert [g and g["Name"] for g in got] == [f"R0 {tag}", f"R1 {tag}", None]
    deleted = sf.restful(
        f"composite/sobjects?ids={ids[0]},0015g0000ZZZZZZAAA&allOrNone=false", method="DELETE"
    )
    assert [(d["id"], d["success"]) for d in deleted] == [
        (ids[0], True),
        ("0015g0000ZZZZZZAAA", False),
    ]
    assert records(sf, f"SELECT Id FROM Account WHERE Name LIKE '% {tag}'") == [
        {
            "attributes": {
                "type": "Account",
                "url": f"/services/data/v59.0/sobjects/Account/{ids[1]}",
            },
            "Id": ids[1],
        }
    ]


@pytest.mark.parametrize("path", ["composite/sobjects", "composite/sobjects/Account/Recon_Key__c"])
def test_more_than_200_records_is_a_400(sf: Salesforce, path: str) -> None:
    payload = {
        "records": [
            {"attributes": {"type": "Account"}, "Name": "x", "Recon_Key__c": str(i)}
            for i in range(201)
        ]
    }
    with pytest.raises(SalesforceMalformedRequest) as info:
        collection(sf, "PATCH" if "Recon" in path else "POST", payload, path)
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


@pytest.mark.parametrize(
    ("kind", "code"),
    [("validation", "FIELD_CUSTOM_VALIDATION_EXCEPTION"), ("duplicate", "DUPLICATES_DETECTED")],
)
def test_injected_rule_failures_per_record(
    sf: Salesforce, server: SandboxServer, tag: str, kind: str, code: str
) -> None:
    rule = server.state.faults.add(
        {"kind": kind, "side": "salesforce", "object": "Account", "match": {"Site": f"bad-{tag}"}}
    )
    try:
        results = collection(sf, "POST", {"records": [
            {"attributes": {"type": "Account"}, "Name": "Fine", "Site": f"ok-{tag}"},
            {"attributes": {"type": "Account"}, "Name": "Blocked", "Site": f"bad-{tag}"},
        ]})  # fmt: skip
        assert [r["success"] for r in results] == [True, False]
        assert results[1]["errors"][0]["statusCode"] == code
        with pytest.raises(SalesforceMalformedRequest) as info:
            sf.Account.create({"Name": "Single", "Site": f"bad-{tag}"})
        assert info.value.content[0]["errorCode"] == code
    finally:
        server.state.faults.remove(rule["id"])


def test_campaign_members_and_their_parents(sf: Salesforce, tag: str) -> None:
    campaigns = records(
        sf, "SELECT Id, Name, Owner.Email FROM Campaign WHERE Name = 'Trade Show Berlin'"
    )
    assert campaigns and campaigns[0]["Owner"]["Email"].endswith("@sandbox.recon.test")
    lead = sf.Lead.create(
        {"LastName": f"Member {tag}", "Company": "Co", "Email": f"{tag}@member.test"}
    )["id"]
    member = sf.CampaignMember.create({"CampaignId": campaigns[0]["Id"], "LeadId": lead})["id"]
    assert member.startswith("00v")
    [row] = records(
        sf, f"SELECT Status, Campaign.Name, Lead.Email FROM CampaignMember WHERE LeadId = '{lead}'"
    )
    assert (row["Status"], row["Campaign"]["Name"], row["Lead"]["Email"]) == (
        "Sent",
        "Trade Show Berlin",
        f"{tag}@member.test",
    )
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.CampaignMember.update(member, {"CampaignId": campaigns[0]["Id"]})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "composite/sobjects", b"{not json", 400, "JSON_PARSER_ERROR"),
        ("POST", "composite/sobjects", b'{"records": "nope"}', 400, "JSON_PARSER_ERROR"),
        ("PATCH", "sobjects/Account/0015g0000000001AAA", b"[1, 2]", 400, "JSON_PARSER_ERROR"),
        ("GET", "composite/sobjects/Account?ids=0015g0000000001AAA", None, 400, "MISSING_ARGUMENT"),
        ("DELETE", "composite/sobjects", None, 400, "MISSING_ARGUMENT"),
        ("GET", "sobjects/Account/0015g0000000001AAA?fields=Nope", None, 400, "INVALID_FIELD"),
        ("GET", "sobjects/Widget__c/describe", None, 404, "NOT_FOUND"),
        ("PATCH", "composite/sobjects/Account/Name", b'{"records": []}', 404, "NOT_FOUND"),
    ],
)
def test_malformed_requests(
    server: SandboxServer, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    response = requests.request(
        method,
        f"{server.url}/services/data/v59.0/{path}",
        data=body,
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_if_modified_since_on_records_and_describe(
    sf: Salesforce, server: SandboxServer, tag: str
) -> None:
    rid = sf.Account.create({"Name": f"IMS {tag}"})["id"]
    stamp = sf.Account.get(rid)["LastModifiedDate"]
    url = f"{server.url}/services/data/v59.0/sobjects/Account"
    auth = {"Authorization": "Bearer x"}
    unchanged = requests.get(
        f"{url}/{rid}", headers={**auth, "If-Modified-Since": http_date(stamp)}, timeout=10
    )
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    older = requests.get(
        f"{url}/{rid}", headers={**auth, "If-Modified-Since": http_date(stamp, -1)}, timeout=10
    )
    assert older.status_code == 200 and older.json()["Id"] == rid
    fresh = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert (
        requests.get(
            f"{url}/describe", headers={**auth, "If-Modified-Since": fresh}, timeout=10
        ).status_code
        == 304
    )
    stale = "Sun, 01 Jan 2023 00:00:00 GMT"
    assert (
        requests.get(
            f"{url}/describe", headers={**auth, "If-Modified-Since": stale}, timeout=10
        ).status_code
        == 200
    )
