"""Salesforce emulator through the real simple-salesforce client: query, queryAll,
paging, describe, limits, auth and API versions."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from recon.sandbox.salesforce import load_records
from recon.sandbox.server import SandboxServer

from .sf_client import client

N_PAGING = 4500
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")


@pytest.fixture(scope="module")
def server(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The session sandbox with this module's records, restored when the module is done.

    Tests here that change settings or faults undo them themselves (``sandbox_reset``
    would restore the checkpoint and drop the module's records).
    """
    state = sandbox.state
    ids = load_records(
        state,
        "Account",
        [
            {
                "Name": f"Paging {i:05d}",
                "Site": "paging",
                "SystemModstamp": f"2024-01-{1 + i % 28:02d}T00:00:00Z",
            }
            for i in range(N_PAGING)
        ],
    )
    load_records(
        state,
        "Contact",
        [
            {
                "FirstName": "Ann",
                "LastName": "Querytest",
                "AccountId": ids[0],
                "Email": "ann@paging.test",
            },
            {"LastName": "Querytest", "Email": "orphan@paging.test"},
        ],
    )
    yield sandbox
    state.restore()


@pytest.fixture
def sf(server: SandboxServer) -> Salesforce:
    return client(server.url)


def test_query_all_pages_past_2000_rows_in_cursor_order(
    sf: Salesforce, server: SandboxServer
) -> None:
    before = server.state.request_counts()["salesforce"]
    result = sf.query_all(
        "SELECT Id, Name, SystemModstamp FROM Account WHERE Site = 'paging' ORDER BY SystemModstamp, Id"
    )
    records = result["records"]
    assert result["totalSize"] == len(records) == N_PAGING
    assert len({r["Id"] for r in records}) == N_PAGING
    keys = [(r["SystemModstamp"], r["Id"]) for r in records]
    assert keys == sorted(keys)
    assert all(DATETIME.match(r["SystemModstamp"]) for r in records)
    after = server.state.request_counts()["salesforce"]
    assert after.get("GET /services/data/query", 0) - before.get("GET /services/data/query", 0) == 1
    assert (
        after["GET /services/data/query/{locator}"]
        - before.get("GET /services/data/query/{locator}", 0)
        == 2
    )


def test_first_page_has_next_records_url_and_any_client_form_follows_it(sf: Salesforce) -> None:
    first = sf.query("SELECT Id FROM Account WHERE Site = 'paging'")
    assert (first["totalSize"], first["done"], len(first["records"])) == (N_PAGING, False, 2000)
    url = first["nextRecordsUrl"]
    assert re.match(r"^/services/data/v59\.0/query/01g\w{15}-2000$", url)
    by_url = sf.query_more(url, identifier_is_url=True)
    by_id = sf.query_more(url.rsplit("/", 1)[1])  # the client builds .../query/{identifier}
    assert by_url["records"] == by_id["records"]
    assert by_url["nextRecordsUrl"].endswith("-4000")
    last = sf.query_more(by_url["nextRecordsUrl"], identifier_is_url=True)
    assert (last["done"], len(last["records"]), "nextRecordsUrl" in last) == (True, 500, False)
    ids = [r["Id"] for page in (first, by_url, last) for r in page["records"]]
    assert len(set(ids)) == N_PAGING


def test_batch_size_header_is_honoured(server: SandboxServer) -> None:
    sf = client(server.url)
    sf.headers["Sforce-Query-Options"] = "batchSize=500"
    page = sf.query("SELECT Id FROM Account WHERE Site = 'paging'")
    assert len(page["records"]) == 500


def test_query_without_paging_is_done(sf: Salesforce) -> None:
    result = sf.query("SELECT Id FROM Account WHERE Site = 'paging' LIMIT 3")
    assert (result["totalSize"], result["done"], len(result["records"])) == (3, True, 3)
    assert "nextRecordsUrl" not in result


def test_unknown_locator_is_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more("01g5gFFFFFFFFFFAAA-2000")
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_returns_deleted_rows(sf: Salesforce) -> None:
    rid = sf.Account.create({"Name": "Deleted Soon", "Site": "deleted-test"})["id"]
    sf.Account.delete(rid)
    soql = "SELECT Id, IsDeleted FROM Account WHERE Site = 'deleted-test'"
    assert sf.query(soql)["records"] == []
    rows = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(rid, True)]
    deleted = sf.query_all(
        "SELECT Id FROM Account WHERE IsDeleted = true AND Site = 'deleted-test'",
        include_deleted=True,
    )
    assert deleted["totalSize"] == 1


def test_parent_fields_are_nested_objects(sf: Salesforce) -> None:
    rows = sf.query(
        "SELECT Name, Account.Name, Owner.Email FROM Contact WHERE LastName = 'Querytest' ORDER BY Email"
    )["records"]
    ann, orphan = rows
    assert ann["Account"]["attributes"]["type"] == "Account"
    assert ann["Account"]["Name"] == "Paging 00000"
    assert ann["Owner"]["Email"].endswith("@sandbox.recon.test")
    assert orphan["Account"] is None


@pytest.mark.parametrize(
    ("soql", "total"),
    [
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND (Name LIKE 'Paging 0000%' OR Name = 'Paging 04499')",
            11,
        ),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND NOT (Name LIKE 'Paging 00%' OR Name LIKE 'Paging 01%')",
            2500,
        ),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND Name IN ('Paging 00001', 'paging 00002', 'nope')",
            2,
        ),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND Name NOT IN ('Paging 00001') AND Name LIKE 'Paging 0000%'",
            9,
        ),
        ("SELECT Id FROM Account WHERE Site = 'paging' ORDER BY Name DESC LIMIT 10 OFFSET 5", 10),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND SystemModstamp >= 2024-01-28T00:00:00Z",
            160,
        ),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND SystemModstamp >= 2024-01-27T16:00:00-08:00",
            160,
        ),
        (
            "SELECT Id FROM Account WHERE Site = 'paging' AND SystemModstamp > 2024-01-27T00:00:00.000+00:00",
            160,
        ),
        ("SELECT Id FROM Account WHERE Site = 'paging' AND CreatedDate = LAST_N_DAYS:1", N_PAGING),
        ("SELECT Id FROM Account WHERE Site = 'paging' AND CreatedDate < LAST_YEAR", 0),
        ("SELECT Account.Name FROM Contact WHERE Account.Site = 'paging'", 1),
    ],
)
def test_queries_recon_never_sends(sf: Salesforce, soql: str, total: int) -> None:
    assert sf.query_all(soql)["totalSize"] == total


def test_subqueries_and_semi_joins_through_the_client(sf: Salesforce) -> None:
    rows = sf.query(
        "SELECT Name, (SELECT Email FROM Contacts) FROM Account "
        "WHERE Id IN (SELECT AccountId FROM Contact WHERE LastName = 'Querytest')"
    )["records"]
    assert [(r["Name"], r["Contacts"]["records"][0]["Email"]) for r in rows] == [
        ("Paging 00000", "ann@paging.test")
    ]
    fields = sf.query("SELECT FIELDS(ALL) FROM Account WHERE Site = 'paging' LIMIT 1")["records"][0]
    assert {"Recon_Key__c", "HubSpot_Id__c", "Name", "SystemModstamp"} <= set(fields)


def test_group_by_through_the_client(sf: Salesforce) -> None:
    result = sf.query("SELECT Site, COUNT(Id) n FROM Account WHERE Site = 'paging' GROUP BY Site")
    assert result["totalSize"] == 1 and result["done"] is True
    assert result["records"] == [
        {"attributes": {"type": "AggregateResult"}, "Site": "paging", "n": N_PAGING}
    ]


def test_count_queries(sf: Salesforce) -> None:
    counted = sf.query("SELECT COUNT() FROM Account WHERE Site = 'paging'")
    assert (counted["totalSize"], counted["records"]) == (N_PAGING, [])
    aggregate = sf.query(
        "SELECT COUNT(Id) FROM Account WHERE Site = 'paging' AND Name LIKE 'Paging 000%'"
    )
    assert aggregate["records"][0]["expr0"] == 100


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELEC Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Site = 'b' OR Site = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id, Foo FROM Account", "INVALID_FIELD"),
        ("SELECT Bogus.Name FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
        ("SELECT Id FROM Account WHERE SystemModstamp > 2024-13-45", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
    ],
)
def test_malformed_soql_is_a_400(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    assert info.value.content[0]["errorCode"] == code
    assert info.value.content[0]["message"]


def test_describe_serves_the_mapped_fields_and_recon_key(sf: Salesforce) -> None:
    described = sf.Account.describe()
    assert (described["name"], described["keyPrefix"], described["mergeable"]) == (
        "Account",
        "001",
        True,
    )
    fields = {f["name"]: f for f in described["fields"]}
    for name in ("Name", "Website", "Phone", "BillingCity", "Industry", "NumberOfEmployees", "AnnualRevenue",
                 "Description", "OwnerId", "Type", "IsDeleted", "MasterRecordId", "SystemModstamp"):  # fmt: skip
        assert name in fields
    key = fields["Recon_Key__c"]
    assert (key["externalId"], key["unique"], key["custom"], key["type"]) == (
        True,
        True,
        True,
        "string",
    )
    assert fields["HubSpot_Id__c"]["custom"] and not fields["HubSpot_Id__c"]["externalId"]
    assert fields["Name"]["nillable"] is False and fields["Name"]["length"] == 255
    assert fields["SystemModstamp"]["updateable"] is False
    assert (
        fields["OwnerId"]["referenceTo"] == ["User"]
        and fields["OwnerId"]["relationshipName"] == "Owner"
    )
    assert any(p["value"] == "Technology" for p in fields["Industry"]["picklistValues"])


@pytest.mark.parametrize(
    ("obj", "prefix", "present"),
    [
        (
            "Contact",
            "003",
            ["AccountId", "LastName", "Email", "MailingCity", "HasOptedOutOfEmail", "Recon_Key__c"],
        ),
        ("Lead", "00Q", ["Company", "Status", "Rating", "Website", "PostalCode", "Recon_Key__c"]),
        ("Campaign", "701", ["Name", "Status", "StartDate"]),
        ("CampaignMember", "00v", ["CampaignId", "LeadId", "ContactId"]),
        ("User", "005", ["Username", "Email", "IsActive"]),
    ],
)
def test_describe_every_object(sf: Salesforce, obj: str, prefix: str, present: list[str]) -> None:
    described = getattr(sf, obj).describe()
    assert described["keyPrefix"] == prefix
    names = {f["name"] for f in described["fields"]}
    assert set(present) <= names


def test_global_describe_lists_the_objects(sf: Salesforce) -> None:
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert names == {"Account", "Contact", "Lead", "Campaign", "CampaignMember", "User"}


def test_object_metadata(sf: Salesforce) -> None:
    meta = sf.Lead.metadata()
    assert meta["objectDescribe"]["keyPrefix"] == "00Q"
    assert meta["recentItems"] == []


def test_unknown_object_describe_is_404(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.describe()


def test_api_usage_header_and_limits(sf: Salesforce, server: SandboxServer) -> None:
    sf.query("SELECT Id FROM User")
    usage = sf.api_usage["api-usage"]
    assert usage.total == 100_000
    assert usage.used == server.state.api_usage("salesforce")
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert limits["DailyApiRequests"]["Remaining"] == 100_000 - server.state.api_usage("salesforce")
    assert "DailyBulkV2QueryJobs" in limits


def test_request_limit_exceeded_once_the_budget_is_spent(server: SandboxServer) -> None:
    sf = client(server.url)
    settings = server.state.settings
    old = settings.salesforce_daily_budget
    settings.salesforce_daily_budget = server.state.api_usage("salesforce") + 1
    try:
        sf.query("SELECT Id FROM User")  # the last allowed call
        with pytest.raises(SalesforceRefusedRequest) as info:
            sf.query("SELECT Id FROM User")
        assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    finally:
        settings.salesforce_daily_budget = old


def test_missing_bearer_is_401(server: SandboxServer) -> None:
    response = requests.get(
        f"{server.url}/services/data/v59.0/query?q=SELECT+Id+FROM+User", timeout=10
    )
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_expired_session_fault(server: SandboxServer) -> None:
    rule = server.state.faults.add({"kind": "expired_session", "side": "salesforce", "times": 1})
    try:
        with pytest.raises(SalesforceExpiredSession):
            client(server.url).query("SELECT Id FROM User")
    finally:
        server.state.faults.remove(rule["id"])


@pytest.mark.parametrize("version", ["50.0", "55.0", "59.0", "62.0"])
def test_any_api_version_from_50_to_62(server: SandboxServer, version: str) -> None:
    sf = client(server.url, version)
    first = sf.query("SELECT Id FROM Account WHERE Site = 'paging'")
    assert first["nextRecordsUrl"].startswith(f"/services/data/v{version}/query/")
    assert first["records"][0]["attributes"]["url"].startswith(
        f"/services/data/v{version}/sobjects/Account/"
    )


@pytest.mark.parametrize("version", ["49.0", "63.0", "abc"])
def test_other_versions_are_404(server: SandboxServer, version: str) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        client(server.url, version).query("SELECT Id FROM User")
