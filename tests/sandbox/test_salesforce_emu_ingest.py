"""Bulk API 2.0 ingest jobs of the Salesforce emulator through simple-salesforce's bulk2."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

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
    return uuid.uuid4().hex[:10]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_insert_then_upsert_then_delete(sf: Salesforce, tag: str) -> None:
    inserted = sf.bulk2.Account.insert(
        records=[
            {"Name": f"Ingest {i} {tag}", "Site": tag, "Recon_Key__c": f"{tag}-{i}"}
            for i in range(3)
        ]
        + [{"Site": tag}],
        wait=0.01,
    )
    [summary] = inserted
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (4, 1)
    ok = rows(sf.bulk2.Account.get_successful_records(summary["job_id"]))
    assert [r["sf__Created"] for r in ok] == ["true"] * 3
    assert all(r["sf__Id"].startswith("001") for r in ok)
    [failed] = rows(sf.bulk2.Account.get_failed_records(summary["job_id"]))
    assert failed["sf__Error"].startswith("REQUIRED_FIELD_MISSING:")

    [upserted] = sf.bulk2.Account.upsert(
        records=[
            {"Recon_Key__c": f"{tag}-0", "Phone": "+49 30 1234"},
            {"Recon_Key__c": f"{tag}-9", "Name": "New", "Site": tag},
        ],
        external_id_field="Recon_Key__c",
        wait=0.01,
    )
    assert upserted["numberRecordsFailed"] == 0
    created = {
        r["Recon_Key__c"]: r["sf__Created"]
        for r in rows(sf.bulk2.Account.get_successful_records(upserted["job_id"]))
    }
    assert created == {f"{tag}-0": "false", f"{tag}-9": "true"}
    phone = sf.query(f"SELECT Phone, Name FROM Account WHERE Recon_Key__c = '{tag}-0'")["records"][
        0
    ]
    assert (phone["Phone"], phone["Name"]) == (
        "+49 30 1234",
        f"Ingest 0 {tag}",
    )  # empty cells leave fields alone

    ids = [r["sf__Id"] for r in ok]
    [deleted] = sf.bulk2.Account.delete(records=[{"Id": i} for i in ids], wait=0.01)
    assert deleted["numberRecordsFailed"] == 0
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Site = '{tag}'")["totalSize"] == 1


def test_update_and_clearing_with_na(sf: Salesforce, tag: str) -> None:
    rid = sf.Contact.create({"LastName": f"Bulk {tag}", "Title": "CTO", "Department": "IT"})["id"]
    [summary] = sf.bulk2.Contact.update(
        records=[{"Id": rid, "Title": "#N/A", "Department": "Ops"}], wait=0.01
    )
    assert summary["numberRecordsFailed"] == 0
    got = sf.Contact.get(rid)
    assert (got["Title"], got["Department"]) == (None, "Ops")


def test_unknown_column_fails_the_job(sf: Salesforce) -> None:
    with pytest.raises(SalesforceOperationError):
        sf.bulk2.Account.insert(records=[{"Name": "X", "Nope__c": "1"}], wait=0.01)


def test_injected_duplicate_rule_fails_one_row(
    sf: Salesforce, server: SandboxServer, tag: str
) -> None:
    server.state.faults.add(
        {
            "kind": "duplicate",
            "side": "salesforce",
            "object": "Lead",
            "match": {"Company": f"Dup {tag}"},
        }
    )
    [summary] = sf.bulk2.Lead.insert(
        records=[
            {"LastName": "A", "Company": f"Dup {tag}"},
            {"LastName": "B", "Company": f"Fine {tag}"},
        ],
        wait=0.01,
    )
    assert (summary["numberRecordsProcessed"], summary["numberRecordsFailed"]) == (2, 1)
    [failed] = rows(sf.bulk2.Lead.get_failed_records(summary["job_id"]))
    assert failed["sf__Error"].startswith("DUPLICATES_DETECTED:")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"object": "Widget__c", "operation": "insert"}, "Unable to find object"),
        ({"object": "Account", "operation": "merge"}, "Invalid operation"),
        (
            {"object": "Account", "operation": "upsert", "externalIdFieldName": "Name"},
            "External ID",
        ),
    ],
)
def test_bad_ingest_jobs(sf: Salesforce, body: dict[str, Any], text: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("jobs/ingest", method="POST", json=body)
    assert text in info.value.content[0]["message"]


def test_abort_keeps_data_unprocessed(sf: Salesforce, server: SandboxServer) -> None:
    job = sf.restful(
        "jobs/ingest", method="POST", json={"object": "Account", "operation": "insert"}
    )
    assert job["state"] == "Open"
    url = f"{server.url}/services/data/v59.0/jobs/ingest/{job['id']}"
    auth = {"Authorization": "Bearer x"}
    put = requests.put(
        f"{url}/batches",
        data=b"Name\nAborted Co\n",
        headers={**auth, "Content-Type": "text/csv"},
        timeout=10,
    )
    assert put.status_code == 201
    aborted = sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "Aborted"})
    assert aborted["state"] == "Aborted"
    assert (
        requests.get(f"{url}/unprocessedrecords", headers=auth, timeout=10).text
        == "Name\nAborted Co\n"
    )
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Aborted Co'")["totalSize"] == 0
    assert sf.restful(f"jobs/ingest/{job['id']}", method="DELETE") is None
