"""The Composite resource of the Salesforce emulator through simple-salesforce's restful()."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from recon.sandbox.server import SandboxServer

from .sf_client import client


@pytest.fixture
def server(sandbox_reset: SandboxServer) -> SandboxServer:
    """The session sandbox, restored after each test."""
    return sandbox_reset


@pytest.fixture
def sf(server: SandboxServer) -> Salesforce:
    return client(server.url)


def composite(
    sf: Salesforce, subrequests: list[dict[str, Any]], all_or_none: bool = False
) -> list[dict[str, Any]]:
    answer = sf.restful(
        "composite", method="POST", json={"allOrNone": all_or_none, "compositeRequest": subrequests}
    )
    return list(answer["compositeResponse"])


def test_references_chain_subrequests_and_count_once(sf: Salesforce, server: SandboxServer) -> None:
    tag = uuid.uuid4().hex[:8]
    base = "/services/data/v59.0"
    before = server.state.api_usage("salesforce")
    answers = composite(
        sf,
        [
            {"method": "POST", "url": f"{base}/sobjects/Account", "referenceId": "acc", "body": {"Name": f"Comp {tag}"}},
            {"method": "POST", "url": f"{base}/sobjects/Contact", "referenceId": "con",
             "body": {"LastName": f"Comp {tag}", "AccountId": "@{acc.id}"}},
            {"method": "GET", "url": f"{base}/query?q=SELECT+Id,Account.Name+FROM+Contact+WHERE+Id='@{{con.id}}'",
             "referenceId": "q"},
            {"method": "PATCH", "url": f"{base}/sobjects/Account/@{{acc.id}}", "referenceId": "upd",
             "body": {"Website": "comp.example"}},
        ],
    )  # fmt: skip
    assert [a["httpStatusCode"] for a in answers] == [201, 201, 200, 204]
    assert answers[0]["httpHeaders"]["Location"].endswith(answers[0]["body"]["id"])
    assert answers[2]["body"]["records"][0]["Account"]["Name"] == f"Comp {tag}"
    assert sf.Account.get(answers[0]["body"]["id"])["Website"] == "comp.example"
    assert (
        server.state.api_usage("salesforce") - before == 2
    )  # the composite call, then the GET above


def test_all_or_none_rolls_back_every_subrequest(sf: Salesforce) -> None:
    tag = uuid.uuid4().hex[:8]
    base = "/services/data/v59.0"
    answers = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{base}/sobjects/Account",
                "referenceId": "ok",
                "body": {"Name": f"AON {tag}"},
            },
            {
                "method": "POST",
                "url": f"{base}/sobjects/Contact",
                "referenceId": "bad",
                "body": {"FirstName": "x"},
            },
        ],
        all_or_none=True,
    )
    assert [a["httpStatusCode"] for a in answers] == [400, 400]
    assert answers[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert answers[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Name = 'AON {tag}'")["totalSize"] == 0


def test_reference_to_a_failed_subrequest_halts_it(sf: Salesforce) -> None:
    base = "/services/data/v59.0"
    answers = composite(
        sf,
        [
            {"method": "POST", "url": f"{base}/sobjects/Account", "referenceId": "bad", "body": {}},
            {"method": "GET", "url": f"{base}/sobjects/Account/@{{bad.id}}", "referenceId": "next"},
        ],
    )
    assert [a["httpStatusCode"] for a in answers] == [400, 400]
    assert answers[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_unknown_subrequest_url_is_a_404_answer(sf: Salesforce) -> None:
    [answer] = composite(
        sf, [{"method": "GET", "url": "/services/data/v59.0/nope", "referenceId": "x"}]
    )
    assert answer["httpStatusCode"] == 404
    assert answer["body"][0]["errorCode"] == "NOT_FOUND"


def test_more_than_25_subrequests_is_a_400(sf: Salesforce) -> None:
    subrequests = [
        {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": f"r{i}"}
        for i in range(26)
    ]
    with pytest.raises(SalesforceMalformedRequest) as info:
        composite(sf, subrequests)
    assert info.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"


def test_composite_batch(sf: Salesforce) -> None:
    rid = sf.Account.create({"Name": "Batch Co"})["id"]
    answer = sf.restful(
        "composite/batch",
        method="POST",
        json={
            "haltOnError": True,
            "batchRequests": [
                {
                    "method": "PATCH",
                    "url": f"v59.0/sobjects/Account/{rid}",
                    "richInput": {"Website": "batch.example"},
                },
                {"method": "GET", "url": f"v59.0/sobjects/Account/{rid}?fields=Website"},
                {"method": "GET", "url": "v59.0/sobjects/Account/0015g0000ZZZZZZAAA"},
                {"method": "GET", "url": "v59.0/limits"},
            ],
        },
    )
    assert answer["hasErrors"] is True
    assert [r["statusCode"] for r in answer["results"]] == [204, 200, 404, 412]
    assert answer["results"][1]["result"]["Website"] == "batch.example"


def test_composite_tree_creates_parents_and_children_all_or_none(sf: Salesforce) -> None:
    tag = uuid.uuid4().hex[:8]
    tree = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "acc1"},
                "Name": f"Tree {tag}",
                "Contacts": {"records": [
                    {"attributes": {"type": "Contact", "referenceId": "c1"}, "LastName": f"Leaf {tag}"},
                    {"attributes": {"type": "Contact", "referenceId": "c2"}, "LastName": f"Leaf2 {tag}"},
                ]},
            }
        ]
    }  # fmt: skip
    answer = sf.restful("composite/tree/Account", method="POST", json=tree)
    assert answer["hasErrors"] is False
    refs = {r["referenceId"]: r["id"] for r in answer["results"]}
    assert set(refs) == {"acc1", "c1", "c2"}
    contacts = sf.query(f"SELECT AccountId FROM Contact WHERE LastName LIKE 'Leaf% {tag}'")[
        "records"
    ]
    assert {c["AccountId"] for c in contacts} == {refs["acc1"]}
    broken = {"records": [{"attributes": {"type": "Account", "referenceId": "a"}, "Name": f"Broken {tag}",
                           "Contacts": {"records": [{"attributes": {"type": "Contact", "referenceId": "bad"}}]}}]}  # fmt: skip
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/tree/Account", method="POST", json=broken)
    assert info.value.content["results"][0]["referenceId"] == "bad"
    assert sf.query(f"SELECT COUNT() FROM Account WHERE Name = 'Broken {tag}'")["totalSize"] == 0
