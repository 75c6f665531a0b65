"""Bulk API 2.0 query jobs of the Salesforce emulator through simple-salesforce's bulk2."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from recon.sandbox.salesforce import load_records
from recon.sandbox.server import SandboxServer

from .sf_client import client

N_ROWS = 2345


@pytest.fixture(scope="module")
def server(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The session sandbox with this module's records, restored when the module is done."""
    state = sandbox.state
    ids = load_records(
        state,
        "Account",
        [
            {
                "Name": f'Bulk "{i}", Inc',
                "Site": "bulk",
                "NumberOfEmployees": i,
                "AnnualRevenue": 1.5 * i,
            }
            for i in range(N_ROWS)
        ],
    )
    load_records(
        state,
        "Contact",
        [{"LastName": "Bulktest", "AccountId": ids[7], "HasOptedOutOfEmail": True}],
    )
    load_records(state, "Account", [{"Name": "Gone", "Site": "bulk", "IsDeleted": True}])
    yield sandbox
    state.restore()


@pytest.fixture
def sf(server: SandboxServer) -> Salesforce:
    return client(server.url)


def rows(page: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(page)))


def test_bulk_query_pages_with_locators(sf: Salesforce) -> None:
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, NumberOfEmployees FROM Account WHERE Site = 'bulk' ORDER BY NumberOfEmployees",
            max_records=1000,
            wait=0.01,
        )
    )
    assert len(pages) == 3
    parsed = [rows(p) for p in pages]
    assert [len(p) for p in parsed] == [1000, 1000, N_ROWS - 2000]
    flat = [r for p in parsed for r in p]
    assert [int(r["NumberOfEmployees"]) for r in flat] == list(range(N_ROWS))
    assert flat[3]["Name"] == 'Bulk "3", Inc'  # quoting survives the round trip
    assert pages[0].splitlines()[0] == '"Id","Name","NumberOfEmployees"'


def test_bulk_query_all_includes_deleted_rows(sf: Salesforce) -> None:
    soql = "SELECT Id, IsDeleted FROM Account WHERE Name = 'Gone'"
    assert rows("".join(sf.bulk2.Account.query(soql, wait=0.01))) == []
    [deleted] = rows("".join(sf.bulk2.Account.query_all(soql, wait=0.01)))
    assert deleted["IsDeleted"] == "true"


def test_bulk_csv_values_and_parent_fields(sf: Salesforce) -> None:
    page = "".join(
        sf.bulk2.Contact.query(
            "SELECT Id, Account.Name, HasOptedOutOfEmail, CreatedDate FROM Contact WHERE LastName = 'Bulktest'",
            wait=0.01,
        )
    )
    [row] = rows(page)
    assert row["Account.Name"] == 'Bulk "7", Inc'
    assert row["HasOptedOutOfEmail"] == "true"
    assert row["CreatedDate"].endswith(".000Z")


def test_job_lifecycle_with_processing_delay(sf: Salesforce, server: SandboxServer) -> None:
    settings = server.state.settings
    settings.salesforce_bulk_seconds = 60
    try:
        job = sf.restful(
            "jobs/query",
            method="POST",
            json={"operation": "query", "query": "SELECT Id FROM Account WHERE Site = 'bulk'"},
        )
        assert (job["state"], job["object"], job["id"][:3]) == ("UploadComplete", "Account", "750")
        assert sf.restful(f"jobs/query/{job['id']}")["state"] == "InProgress"
        with pytest.raises(SalesforceGeneralError) as info:
            sf.restful(f"jobs/query/{job['id']}/results")
        assert info.value.status == 412
        assert info.value.content[0]["errorCode"] == "JOB_NOT_COMPLETE"
        aborted = sf.restful(f"jobs/query/{job['id']}", method="PATCH", json={"state": "Aborted"})
        assert aborted["state"] == "Aborted"
        assert any(j["id"] == job["id"] for j in sf.restful("jobs/query")["records"])
        assert sf.restful(f"jobs/query/{job['id']}", method="DELETE") is None
        with pytest.raises(SalesforceResourceNotFound):
            sf.restful(f"jobs/query/{job['id']}")
    finally:
        settings.salesforce_bulk_seconds = 0


def test_completed_job_reports_processed_records(sf: Salesforce) -> None:
    job = sf.restful(
        "jobs/query",
        method="POST",
        json={"operation": "queryAll", "query": "SELECT Id FROM Account WHERE Site = 'bulk'"},
    )
    done = sf.restful(f"jobs/query/{job['id']}")
    assert (done["state"], done["numberRecordsProcessed"]) == ("JobComplete", N_ROWS + 1)
    response = sf.session.get(
        f"{sf.bulk2_url}query/{job['id']}/results", params={"maxRecords": 5}, headers=sf.headers
    )
    assert response.headers["Sforce-NumberOfRecords"] == "5"
    assert response.headers["Sforce-Locator"] not in ("", "null")
    assert response.headers["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"operation": "query", "query": "SELECT Nope FROM Account"}, "INVALID_FIELD"),
        ({"operation": "query", "query": "SELECT FROM"}, "MALFORMED_QUERY"),
        ({"operation": "insert", "query": "SELECT Id FROM Account"}, "INVALIDJOB"),
        ({"operation": "query", "query": "SELECT COUNT() FROM Account"}, "INVALIDJOB"),
        (
            {"operation": "query", "query": "SELECT Id, (SELECT Id FROM Contacts) FROM Account"},
            "INVALIDJOB",
        ),
    ],
)
def test_bad_jobs_are_refused(sf: Salesforce, body: dict[str, Any], code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("jobs/query", method="POST", json=body)
    assert info.value.content[0]["errorCode"] == code
