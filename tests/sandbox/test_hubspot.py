"""The HubSpot emulator through the real ``hubspot-api-client`` (records, batch, merge, errors)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.contacts import PublicMergeInput as ContactMergeInput
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactCreate
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.properties import PropertyCreate
from urllib3.util.retry import Retry


def client(sandbox: Any, **kwargs: Any) -> HubSpot:
    return HubSpot(access_token="pat-na1-test", host=sandbox.url, **kwargs)


def no_retry(sandbox: Any) -> HubSpot:
    """A client whose urllib3 does not retry (by default it honours Retry-After on 429)."""
    return client(sandbox, retry=Retry(total=0, raise_on_status=False))


def tag() -> str:
    return uuid.uuid4().hex[:8]


def create_company(hs: HubSpot, **props: Any) -> Any:
    return hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties=props))


# --------------------------------------------------------------------------- list / get


def test_get_page_follows_paging_and_serves_own_link(sandbox: Any) -> None:
    hs = client(sandbox)
    page = hs.crm.companies.basic_api.get_page(
        limit=10, properties=["name", "domain"], archived=False
    )
    assert len(page.results) == 10
    first = page.results[0]
    assert set(first.properties) >= {
        "name",
        "domain",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    }
    assert first.properties["hs_object_id"] == first.id
    assert page.paging.next.link.startswith(f"{sandbox.url}/crm/v3/objects/companies?")
    assert f"after={page.paging.next.after}" in page.paging.next.link
    everything = hs.crm.companies.get_all(properties=["name"])
    with sandbox.state.tx() as conn:
        live = conn.execute(
            "SELECT count(*) FROM hs_records WHERE object='companies' AND archived=0"
        ).fetchone()[0]
    assert len(everything) == live
    assert len({c.id for c in everything}) == live


@pytest.mark.parametrize(
    "query",
    [
        "properties=name&properties=domain",
        "properties=name,domain",
        "properties=name%2Cdomain&archived=FALSE&unknownParam=1",
    ],
)
def test_list_accepts_repeated_and_comma_properties_and_ignores_unknown_params(
    sandbox: Any, query: str
) -> None:
    resp = requests.get(
        f"{sandbox.url}/crm/v3/objects/companies?limit=2&{query}",
        headers={"Authorization": "Bearer x"},
        timeout=10,
    )
    assert resp.status_code == 200
    props = resp.json()["results"][0]["properties"]
    assert {"name", "domain"} <= set(props)


@pytest.mark.parametrize("type_name", ["contacts", "contact", "0-1", "CONTACTS"])
def test_object_types_by_plural_singular_and_id(sandbox: Any, type_name: str) -> None:
    page = client(sandbox).crm.objects.basic_api.get_page(type_name, limit=3)
    assert len(page.results) == 3
    assert "email" in page.results[0].properties


def test_unknown_object_type_is_a_400(sandbox: Any) -> None:
    resp = requests.get(
        f"{sandbox.url}/crm/v3/objects/widgets", headers={"Authorization": "Bearer x"}, timeout=10
    )
    assert resp.status_code == 400
    body = resp.json()
    assert body["category"] == "VALIDATION_ERROR" and body["correlationId"]


def test_get_by_id_and_by_unique_id_property(sandbox: Any) -> None:
    hs = client(sandbox)
    contact = hs.crm.contacts.basic_api.get_page(limit=1, properties=["email"]).results[0]
    got = hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["email", "firstname"])
    assert got.id == contact.id and "firstname" in got.properties
    by_email = hs.crm.contacts.basic_api.get_by_id(
        contact.properties["email"].upper(), id_property="email"
    )
    assert by_email.id == contact.id


def test_missing_record_is_a_404_in_hubspot_shape(sandbox: Any) -> None:
    with pytest.raises(CompaniesApiException) as err:
        client(sandbox).crm.companies.basic_api.get_by_id("999999999")
    assert err.value.status == 404
    body = json.loads(err.value.body)
    assert body["status"] == "error" and body["category"] == "OBJECT_NOT_FOUND"
    assert body["correlationId"]


def test_missing_token_is_401(sandbox: Any) -> None:
    hs = HubSpot(host=sandbox.url)
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.basic_api.get_page(limit=1)
    assert err.value.status == 401
    assert json.loads(err.value.body)["category"] == "INVALID_AUTHENTICATION"


# --------------------------------------------------------------------------- single writes


def test_create_update_archive_keep_timestamps_current(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    created = create_company(hs, name=f"Acme {tag()}", domain="acme.example", industry="BANKING")
    assert created is not None, "basic create must answer 201 for the client to deserialize it"
    assert created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] == created.properties["hs_lastmodifieddate"]
    updated = hs.crm.companies.basic_api.update(
        created.id, SimplePublicObjectInput(properties={"numberofemployees": "42", "phone": ""})
    )
    assert updated.updated_at > created.updated_at
    assert updated.properties["hs_lastmodifieddate"] > created.properties["hs_lastmodifieddate"]
    again = hs.crm.companies.basic_api.get_by_id(
        created.id, properties=["numberofemployees", "phone"]
    )
    assert again.properties["numberofemployees"] == "42" and again.properties["phone"] is None
    assert hs.crm.companies.basic_api.archive(created.id) is None
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.basic_api.get_by_id(created.id)
    assert err.value.status == 404
    archived = hs.crm.companies.basic_api.get_by_id(created.id, archived=True)
    assert archived.archived is True
    actions = [
        (c["action"], c["object"])
        for c in sandbox_reset.state.changes()
        if c["record_id"] == created.id and c["side"] == "hubspot"
    ]
    assert actions == [("created", "companies"), ("updated", "companies"), ("deleted", "companies")]


def test_contacts_keep_lastmodifieddate_current(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    c = hs.crm.contacts.basic_api.create(
        ContactCreate(properties={"email": f"{tag()}@example.org", "lastname": "X"})
    )
    assert c.properties["lastmodifieddate"] == c.properties["createdate"]
    got = hs.crm.contacts.basic_api.get_by_id(c.id, properties=["hs_email_domain"])
    assert got.properties["hs_email_domain"] == "example.org"


@pytest.mark.parametrize(
    ("props", "code"),
    [
        ({"hs_object_id": "5"}, "READ_ONLY_VALUE"),
        ({"hs_analytics_source": "OFFLINE"}, "READ_ONLY_VALUE"),
        ({"lifecyclestage": "not-a-stage"}, "INVALID_OPTION"),
        ({"numberofemployees": "many"}, "INVALID_INTEGER"),
        ({"no_such_property": "x"}, "PROPERTY_DOESNT_EXIST"),
    ],
)
def test_invalid_values_are_refused_with_400(
    sandbox: Any, props: dict[str, str], code: str
) -> None:
    with pytest.raises(CompaniesApiException) as err:
        create_company(client(sandbox), name="Bad", **props)
    assert err.value.status == 400
    body = json.loads(err.value.body)
    assert body["category"] == "VALIDATION_ERROR" and code in body["message"]


def test_duplicate_contact_email_is_a_409(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    email = f"{tag()}@dup.example"
    first = hs.crm.contacts.basic_api.create(ContactCreate(properties={"email": email}))
    from hubspot.crm.contacts.exceptions import ApiException

    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.create(ContactCreate(properties={"email": email.upper()}))
    assert err.value.status == 409
    assert f"Existing ID: {first.id}" in json.loads(err.value.body)["message"]


# --------------------------------------------------------------------------- batch


def test_batch_create_201_and_207_with_a_record_fault(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    t = tag()
    ok = hs.crm.companies.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"name": f"B{i} {t}"}} for i in range(3)]
        )
    )
    assert type(ok).__name__ == "BatchResponseSimplePublicObject"
    assert len(ok.results) == 3 and ok.status == "COMPLETE"
    sandbox_reset.state.faults.add(
        {
            "kind": "validation",
            "side": "hubspot",
            "object": "companies",
            "match": {"name": f"Bad {t}"},
        }
    )
    mixed = hs.crm.companies.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": {"name": f"Good {t}"}, "objectWriteTraceId": "a"},
                {"properties": {"name": f"Bad {t}"}, "objectWriteTraceId": "b"},
            ]
        )
    )
    assert type(mixed).__name__.endswith("WithErrors")
    assert mixed.num_errors == 1 and len(mixed.results) == 1
    assert mixed.errors[0].context["objectWriteTraceId"] == ["b"]
    assert mixed.results[0].properties["name"] == f"Good {t}"


def test_batch_read_207_for_missing_ids(sandbox: Any) -> None:
    hs = client(sandbox)
    ids = [c.id for c in hs.crm.companies.basic_api.get_page(limit=2).results]
    out = hs.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in [*ids, "987654321"]],
            properties=["name"],
            properties_with_history=[],
        )
    )
    assert out.num_errors == 1
    assert out.errors[0].category == "OBJECT_NOT_FOUND"
    assert out.errors[0].context == {"ids": ["987654321"]}
    assert sorted(r.id for r in out.results) == sorted(ids)


def test_batch_update_200_and_207(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    ids = [c.id for c in hs.crm.companies.basic_api.get_page(limit=2).results]
    ok = hs.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"city": "Oslo"}} for i in ids]
        )
    )
    assert type(ok).__name__ == "BatchResponseSimplePublicObject"
    assert {r.properties["city"] for r in ok.results} == {"Oslo"}
    mixed = hs.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": ids[0], "properties": {"city": "Bergen"}},
                {"id": "888888888", "properties": {"city": "X"}},
            ]
        )
    )
    assert mixed.num_errors == 1 and len(mixed.results) == 1
    assert mixed.errors[0].category == "OBJECT_NOT_FOUND"
    assert mixed.errors[0].context == {"ids": ["888888888"]}


def test_a_batch_naming_one_record_twice_is_refused_whole(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    [rid] = [c.id for c in hs.crm.companies.basic_api.get_page(limit=1).results]
    twice = BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": rid, "properties": {"city": "A"}}, {"id": rid, "properties": {"city": "B"}}]
    )
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.batch_api.update(twice)
    assert err.value.status == 400
    assert f"Duplicate IDs found in batch input: [{rid}]" in err.value.body
    city = hs.crm.companies.basic_api.get_by_id(rid, properties=["city"]).properties["city"]
    assert city not in ("A", "B")


def test_batch_archive_204(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    ids = [c.id for c in hs.crm.companies.basic_api.get_page(limit=2).results]
    assert (
        hs.crm.companies.batch_api.archive(
            BatchInputSimplePublicObjectId(inputs=[{"id": i} for i in ids])
        )
        is None
    )
    with pytest.raises(CompaniesApiException):
        hs.crm.companies.basic_api.get_by_id(ids[0])


def test_more_than_100_inputs_is_a_400(sandbox: Any) -> None:
    with pytest.raises(CompaniesApiException) as err:
        client(sandbox).crm.companies.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": str(i)} for i in range(101)],
                properties=[],
                properties_with_history=[],
            )
        )
    assert err.value.status == 400
    assert "maximum number of inputs" in json.loads(err.value.body)["message"]


def test_upsert_by_a_created_unique_property(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    prop = hs.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="recon_key",
            label="Recon key",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    assert prop.has_unique_value is True and prop.modification_metadata.read_only_value is False
    existing = create_company(hs, name="Keyed", recon_key="k-1")
    first = hs.crm.companies.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": "k-1", "idProperty": "recon_key", "properties": {"city": "Lyon"}},
                {"id": "k-2", "idProperty": "recon_key", "properties": {"name": "New one"}},
            ]
        )
    )
    by_key = {r.properties.get("recon_key") or r.id: r for r in first.results}
    assert {r.new for r in first.results} == {True, False}
    updated = next(r for r in first.results if not r.new)
    assert updated.id == existing.id
    created = next(r for r in first.results if r.new)
    assert hs.crm.companies.basic_api.get_by_id("k-2", id_property="recon_key").id == created.id
    assert by_key
    again = hs.crm.companies.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[{"id": "k-2", "idProperty": "recon_key", "properties": {"city": "Nice"}}]
        )
    )
    assert again.results[0].new is False and again.results[0].id == created.id
    with pytest.raises(CompaniesApiException) as err:  # a second record cannot take the same key
        create_company(hs, name="Clash", recon_key="K-1")
    assert err.value.status == 409


def test_upsert_by_a_non_unique_property_is_refused(sandbox: Any) -> None:
    with pytest.raises(CompaniesApiException) as err:
        client(sandbox).crm.companies.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[{"id": "acme.com", "idProperty": "domain", "properties": {"name": "A"}}]
            )
        )
    assert err.value.status == 400
    assert "non-unique" in json.loads(err.value.body)["message"]


# --------------------------------------------------------------------------- merge


def test_merge_contacts_keeps_primary_and_redirects_the_merged_id(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    t = tag()
    a = hs.crm.contacts.basic_api.create(
        ContactCreate(properties={"email": f"a{t}@x.org", "firstname": "Ann"})
    )
    b = hs.crm.contacts.basic_api.create(
        ContactCreate(properties={"email": f"b{t}@x.org", "jobtitle": "CFO"})
    )
    merged = hs.crm.contacts.basic_api.merge(
        ContactMergeInput(primary_object_id=a.id, object_id_to_merge=b.id)
    )
    assert merged.id == a.id
    full = hs.crm.contacts.basic_api.get_by_id(
        b.id, properties=["jobtitle", "hs_merged_object_ids", "hs_additional_emails", "email"]
    )
    assert full.id == a.id and full.properties["jobtitle"] == "CFO"
    assert full.properties["hs_merged_object_ids"] == b.id
    assert full.properties["hs_additional_emails"] == f"b{t}@x.org"
    ids = {c.id for c in hs.crm.contacts.get_all()}
    assert a.id in ids and b.id not in ids
    log = [
        (c["record_id"], c["action"])
        for c in sandbox_reset.state.changes()
        if c["action"] == "merged"
    ]
    assert (a.id, "merged") in log and (b.id, "merged") in log


def test_company_merge_refused_while_salesforce_connector_is_on(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    a, b = create_company(hs, name="One"), create_company(hs, name="Two")
    requests.patch(
        f"{sandbox_reset.url}/_sandbox/settings",
        json={"salesforce_connector_enabled": True},
        timeout=10,
    ).raise_for_status()
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.basic_api.merge(
            PublicMergeInput(primary_object_id=a.id, object_id_to_merge=b.id)
        )
    assert err.value.status == 400 and "Salesforce" in json.loads(err.value.body)["message"]
    sandbox_reset.state.settings.update({"salesforce_connector_enabled": False})
    merged = hs.crm.companies.basic_api.merge(
        PublicMergeInput(primary_object_id=a.id, object_id_to_merge=b.id)
    )
    assert merged.id == a.id


# --------------------------------------------------------------------------- faults


def test_429_with_retry_after_is_retried_by_urllib3(sandbox_reset: Any) -> None:
    endpoint = "GET /crm/v3/objects/companies"
    # Counters are cleared after each test that resets, not before: count from here.
    before = sandbox_reset.state.request_counts()["hubspot"].get(endpoint, 0)
    rule = sandbox_reset.state.faults.add(
        {
            "kind": "rate_limit",
            "side": "hubspot",
            "endpoint": "GET /crm/v3/objects/companies",
            "times": 1,
            "retry_after": 1,
        }
    )
    retry = Retry(
        total=3,
        status_forcelist=(429,),
        allowed_methods=None,
        backoff_factor=0,
        raise_on_status=False,
    )
    page = client(sandbox_reset, retry=retry).crm.companies.basic_api.get_page(limit=1)
    assert len(page.results) == 1
    counts = sandbox_reset.state.request_counts()["hubspot"]
    assert counts[endpoint] - before == 2
    assert (
        next(r for r in sandbox_reset.state.faults.rules() if r["id"] == rule["id"])["fired"] == 1
    )


def test_429_without_retry_surfaces_headers_and_policy(sandbox_reset: Any) -> None:
    sandbox_reset.state.faults.add({"kind": "rate_limit", "side": "hubspot", "retry_after": 3})
    with pytest.raises(CompaniesApiException) as err:
        no_retry(sandbox_reset).crm.companies.basic_api.get_page(limit=1)
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "3"
    assert err.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    body = json.loads(err.value.body)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"


def test_rate_limit_setting_refuses_calls_past_the_window(sandbox_reset: Any) -> None:
    sandbox_reset.state.settings.update({"hubspot_rate_limit": 2, "hubspot_rate_interval_s": 600})
    hs = no_retry(sandbox_reset)
    hs.crm.companies.basic_api.get_page(limit=1)
    served = requests.get(
        f"{sandbox_reset.url}/crm/v3/objects/companies?limit=1",
        headers={"Authorization": "Bearer x"},
        timeout=10,
    )
    assert served.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert served.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.basic_api.get_page(limit=1)
    assert err.value.status == 429 and int(err.value.headers["Retry-After"]) >= 1


def test_search_is_exempt_from_the_ten_second_bucket(sandbox_reset: Any) -> None:
    """The spec marks search `x-hubspot-rate-limit-exemptions: ["ten-secondly"]`."""
    sandbox_reset.state.settings.update({"hubspot_rate_limit": 2, "hubspot_rate_interval_s": 600})
    body = {"filterGroups": [], "limit": 1}
    for _ in range(4):
        resp = requests.post(
            f"{sandbox_reset.url}/crm/v3/objects/companies/search",
            json=body,
            headers={"Authorization": "Bearer x"},
            timeout=10,
        )
        assert resp.status_code == 200 and "X-HubSpot-RateLimit-Remaining" not in resp.headers
    hs = no_retry(sandbox_reset)
    hs.crm.companies.basic_api.get_page(limit=1)  # the bucket is untouched by the searches
    hs.crm.companies.basic_api.get_page(limit=1)
    with pytest.raises(CompaniesApiException):
        hs.crm.companies.basic_api.get_page(limit=1)


def test_daily_limit_setting(sandbox_reset: Any) -> None:
    sandbox_reset.state.settings.update({"hubspot_daily_limit": 2})
    hs = no_retry(sandbox_reset)
    hs.crm.companies.basic_api.get_page(limit=1)
    hs.crm.companies.basic_api.get_page(limit=1)
    with pytest.raises(CompaniesApiException) as err:
        hs.crm.companies.basic_api.get_page(limit=1)
    assert err.value.status == 429
    assert json.loads(err.value.body)["policyName"] == "DAILY"


@pytest.mark.parametrize(("kind", "status"), [("server_error", 503), ("expired_session", 401)])
def test_injected_request_faults(sandbox_reset: Any, kind: str, status: int) -> None:
    sandbox_reset.state.faults.add({"kind": kind, "side": "hubspot", "status": status, "times": 2})
    hs = client(sandbox_reset)
    for _ in range(2):
        with pytest.raises(CompaniesApiException) as err:
            hs.crm.companies.basic_api.get_page(limit=1)
        assert err.value.status == status
    assert len(hs.crm.companies.basic_api.get_page(limit=1).results) == 1


def test_email_opt_out_is_set_through_communication_preferences_only(sandbox_reset: Any) -> None:
    """``hs_email_optout`` is read-only to the CRM API (as in HubSpot: a write of it fails the
    request with READ_ONLY_VALUE); ``unsubscribe-all`` of the contact's address sets it."""
    hs = client(sandbox_reset)
    email = f"{tag()}@example.org"
    with pytest.raises(ContactsApiException) as err:
        hs.crm.contacts.basic_api.create(
            ContactCreate(properties={"email": email, "hs_email_optout": "true"})
        )
    assert err.value.status == 400
    assert json.loads(err.value.body)["errors"][0]["code"] == "READ_ONLY_VALUE"
    c = hs.crm.contacts.basic_api.create(ContactCreate(properties={"email": email}))
    api = hs.communication_preferences.status_api.api_client
    resp = api.call_api(
        "/communication-preferences/v4/statuses/{subscriberIdString}/unsubscribe-all",
        "POST",
        path_params={"subscriberIdString": email.upper()},
        query_params=[("channel", "EMAIL")],
        header_params={"Content-Type": "application/json"},
        body={},
        response_types_map={},
        auth_settings=["oauth2"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    assert json.loads(resp.data)["results"][0]["status"] == "NOT_SUBSCRIBED"
    got = hs.crm.contacts.basic_api.get_by_id(c.id, properties=["hs_email_optout"])
    assert got.properties["hs_email_optout"] == "true"
