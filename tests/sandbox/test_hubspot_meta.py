"""HubSpot properties, owners and associations v4 through the real client."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.crm.properties import PropertyCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from recon.sandbox.hs_schema import ALL_TYPES


def client(sandbox: Any) -> HubSpot:
    return HubSpot(access_token="x", host=sandbox.url)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("object_type", sorted({*ALL_TYPES, "0-1", "company", "0-136"}))
def test_properties_answer_for_every_standard_type(sandbox: Any, object_type: str) -> None:
    results = client(sandbox).crm.properties.core_api.get_all(object_type).results
    assert isinstance(results, list)
    assert all(p.name and p.type and p.field_type for p in results)


def test_custom_object_types_are_403_not_404(sandbox: Any) -> None:
    with pytest.raises(PropertiesApiException) as err:
        client(sandbox).crm.properties.core_api.get_all("2-1234567")
    assert err.value.status == 403
    assert json.loads(err.value.body)["category"] == "MISSING_SCOPES"


@pytest.mark.parametrize(
    ("object_type", "name", "type_", "field_type", "read_only"),
    [
        ("companies", "hs_object_id", "number", "number", True),
        ("companies", "hs_lastmodifieddate", "datetime", "date", True),
        ("companies", "domain", "string", "text", False),
        ("companies", "salesforceaccountid", "string", "text", False),
        ("contacts", "lastmodifieddate", "datetime", "date", True),
        ("contacts", "hs_analytics_source", "enumeration", "select", True),
        ("contacts", "hs_email_optout", "bool", "booleancheckbox", True),
        ("contacts", "lifecyclestage", "enumeration", "radio", False),
        ("contacts", "hubspot_owner_id", "enumeration", "select", False),
        ("contacts", "numemployees", "enumeration", "select", False),
        ("contacts", "salesforcecontactid", "string", "text", False),
        ("contacts", "salesforceleadid", "string", "text", False),
    ],
)
def test_standard_property_definitions(
    sandbox: Any, object_type: str, name: str, type_: str, field_type: str, read_only: bool
) -> None:
    prop = client(sandbox).crm.properties.core_api.get_by_name(object_type, name)
    assert (prop.type, prop.field_type) == (type_, field_type)
    assert prop.modification_metadata.read_only_value is read_only
    if type_ == "enumeration" and name != "hs_analytics_source":
        assert prop.options and all(o.value and o.label for o in prop.options)


def test_lifecyclestage_options_and_owner_options_match_owners(sandbox: Any) -> None:
    hs = client(sandbox)
    stages = [
        o.value
        for o in hs.crm.properties.core_api.get_by_name("contacts", "lifecyclestage").options
    ]
    assert stages[:3] == ["subscriber", "lead", "marketingqualifiedlead"]
    owner_ids = {
        o.value
        for o in hs.crm.properties.core_api.get_by_name("companies", "hubspot_owner_id").options
    }
    assert owner_ids == {o.id for o in hs.crm.owners.owners_api.get_page().results}


def test_create_update_delete_a_custom_property(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    created = hs.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name="recon_tier",
            label="Recon tier",
            type="enumeration",
            field_type="select",
            group_name="contactinformation",
            options=[{"label": "Gold", "value": "gold", "hidden": False}],
        ),
    )
    assert created.name == "recon_tier" and created.hubspot_defined is False
    with pytest.raises(PropertiesApiException) as err:
        hs.crm.properties.core_api.create(
            "contacts",
            PropertyCreate(
                name="recon_tier", label="again", type="string", field_type="text", group_name="g"
            ),
        )
    assert err.value.status == 409
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert "recon_tier" in names
    rid = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "tier@x.org", "recon_tier": "gold"})
    ).id
    assert hs.crm.properties.core_api.archive("contacts", "recon_tier") is None
    # its values went with it: a record read asking for it has no such property
    got = hs.crm.contacts.basic_api.get_by_id(rid, properties=["email", "recon_tier"])
    assert "recon_tier" not in got.properties and got.properties["email"] == "tier@x.org"
    with pytest.raises(PropertiesApiException) as missing:
        hs.crm.properties.core_api.get_by_name("contacts", "recon_tier")
    assert missing.value.status == 404


def test_property_create_refuses_mismatched_field_type(sandbox: Any) -> None:
    with pytest.raises(PropertiesApiException) as err:
        client(sandbox).crm.properties.core_api.create(
            "companies",
            PropertyCreate(
                name="bad_one", label="Bad", type="number", field_type="text", group_name="g"
            ),
        )
    assert err.value.status == 400


# --------------------------------------------------------------------------- owners


def test_owners_with_emails_and_by_id(sandbox: Any) -> None:
    hs = client(sandbox)
    owners = hs.crm.owners.owners_api.get_page(limit=100).results
    assert len(owners) >= 4 and all("@" in o.email for o in owners)
    one = hs.crm.owners.owners_api.get_by_id(int(owners[0].id))
    assert one.email == owners[0].email
    by_email = hs.crm.owners.owners_api.get_page(email=owners[1].email.upper()).results
    assert [o.id for o in by_email] == [owners[1].id]
    paged = hs.crm.owners.owners_api.get_page(limit=2)
    assert len(paged.results) == 2 and paged.paging.next.after == "2"


# --------------------------------------------------------------------------- associations v4


def test_batch_read_contacts_to_companies(sandbox: Any) -> None:
    hs = client(sandbox)
    with sandbox.state.tx() as conn:
        rows = conn.execute(
            "SELECT from_id, to_id FROM hs_assoc WHERE from_type='contacts' AND to_type='companies' "
            "AND type_id = 1 ORDER BY from_id LIMIT 3"
        ).fetchall()
    assert rows, "the tiny demo data associate contacts with companies"
    out = hs.crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": str(r[0])} for r in rows]),
    )
    by_from = {r._from.id: r.to for r in out.results}
    for contact_id, company_id in rows:
        types = {
            t.type_id
            for to in by_from[str(contact_id)]
            for t in to.association_types
            if str(to.to_object_id) == str(company_id)
        }
        assert types == {1, 279}


def test_default_association_create_list_and_archive(sandbox_reset: Any) -> None:
    hs = client(sandbox_reset)
    from hubspot.crm.companies import SimplePublicObjectInputForCreate
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactCreate

    company = hs.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "Assoc Co"})
    )
    contact = hs.crm.contacts.basic_api.create(
        ContactCreate(properties={"email": "assoc@example.org"})
    )
    made = hs.crm.associations.v4.basic_api.create_default(
        "contacts", contact.id, "companies", company.id
    )
    assert made.results[0].association_spec.association_type_id == 279
    listed = hs.crm.associations.v4.basic_api.get_page("companies", company.id, "contacts")
    assert [str(r.to_object_id) for r in listed.results] == [contact.id]
    assert {t.type_id for t in listed.results[0].association_types} == {2, 280}
    got = hs.crm.contacts.basic_api.get_by_id(
        contact.id, properties=["associatedcompanyid"], associations=["companies"]
    )
    assert got.properties["associatedcompanyid"] == company.id
    assert {a.type for a in got.associations["companies"].results} == {
        "contact_to_company",
        "contact_to_company_unlabeled",
    }
    batch = hs.crm.associations.v4.batch_api.create_default(
        "contacts",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[{"from": {"id": contact.id}, "to": {"id": company.id}}]
        ),
    )
    assert batch.status == "COMPLETE"
    hs.crm.associations.v4.batch_api.archive(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[{"from": {"id": contact.id}, "to": [{"id": company.id}]}]
        ),
    )
    assert (
        hs.crm.associations.v4.basic_api.get_page("companies", company.id, "contacts").results == []
    )
    again = hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["associatedcompanyid"])
    assert again.properties["associatedcompanyid"] is None


def test_create_with_inline_association(sandbox_reset: Any) -> None:
    company_id = client(sandbox_reset).crm.companies.basic_api.get_page(limit=1).results[0].id
    resp = requests.post(
        f"{sandbox_reset.url}/crm/v3/objects/contacts",
        headers={"Authorization": "Bearer x"},
        json={
            "properties": {"email": "inline@example.org"},
            "associations": [
                {
                    "to": {"id": company_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        },
        timeout=10,
    )
    assert resp.status_code == 201
    contact = client(sandbox_reset).crm.contacts.basic_api.get_by_id(
        resp.json()["id"], properties=["associatedcompanyid"]
    )
    assert contact.properties["associatedcompanyid"] == company_id
