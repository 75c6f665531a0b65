"""The change plan built from generated stores: updates, conflicts, owners, runs, stability."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plan_testdata import EMAIL, World, by, cfg, linked_contact, plan, schemas

from recon.config import ReconConfig
from recon.errors import MappingError, PlanError
from recon.mapping import resolve_mappings
from recon.models import stable_id
from recon.plan import PlanResult, build_plan, survivorship
from recon.store import get_run, open_store

# --------------------------------------------------------------------------- rules at plan level


@pytest.mark.parametrize(
    ("rule", "hs_title", "sf_title", "hs_newer", "expect"),
    [
        ("prefer_salesforce_unless_blank", "CEO", None, True, ("salesforce", "CEO")),
        ("prefer_salesforce_unless_blank", None, "CTO", True, ("hubspot", "CTO")),
        ("prefer_salesforce_unless_blank", "CEO", "CTO", True, ("hubspot", "CTO")),
        ("always_salesforce", "CEO", None, True, None),
        ("always_salesforce", "CEO", "CTO", True, ("hubspot", "CTO")),
        ("two_way", "CEO", "CTO", True, ("salesforce", "CEO")),
        ("two_way", "CEO", "CTO", False, ("hubspot", "CTO")),
        ("prefer_hubspot_unless_blank", None, "CTO", True, ("hubspot", "CTO")),
        ("prefer_hubspot_unless_blank", "CEO", "CTO", False, ("salesforce", "CEO")),
        ("always_hubspot", None, "CTO", False, None),
        ("always_hubspot", "CEO", "CTO", False, ("salesforce", "CEO")),
        ("review", "CEO", "CTO", True, "conflict"),
        ("review", "CEO", None, True, ("salesforce", "CEO")),
        ("dont_sync", "CEO", "CTO", True, None),
        ("dont_sync", "CEO", None, True, None),
    ],
)
def test_rules_on_a_linked_pair(
    rule: str, hs_title: Any, sf_title: Any, hs_newer: bool, expect: Any
) -> None:
    w = World()
    newer, older = "2024-07-01T00:00:00.000Z", "2024-05-01T00:00:00.000Z"
    hs_time = newer if hs_newer else older
    # a pull under a two_way rule reads when the property got its value (HubSpot's history)
    history = {"jobtitle": [{"value": hs_title, "timestamp": hs_time}]} if hs_title else {}
    pid = linked_contact(
        w,
        {"email": EMAIL, "jobtitle": hs_title, "propertiesWithHistory": history},
        {"Email": EMAIL, "Title": sf_title},
        hs_cols={"modified_at": hs_time},
        sf_cols={"modified_at": older if hs_newer else newer},
    )
    res = plan(w, cfg(create_missing=False, rules={"contacts.jobtitle": rule}))
    title = [i for i in res.items if i["field"] in ("jobtitle", "Title")]
    if expect is None:
        assert title == []
    elif expect == "conflict":
        (item,) = title
        assert (item["action"], item["status"], item["link_item_id"]) == (
            "conflict",
            "needs_review",
            pid,
        )
        assert item["requires"] == [pid, item["item_id"]]
        assert item["reason"]["rule"] == "review"
    else:
        (item,) = title
        assert (item["system"], item["after"]) == expect
        assert item["requires"] == [pid] and item["status"] == "proposed"
        assert item["reason"]["rule"] == rule and item["reason"]["score"] == pytest.approx(0.97)


@pytest.mark.parametrize(
    ("direction", "systems"),
    [
        ("two_way", {"hubspot", "salesforce"}),
        ("hubspot_to_salesforce", {"salesforce"}),
        ("salesforce_to_hubspot", {"hubspot"}),
        ("off", set()),
    ],
)
def test_direction_per_object(direction: str, systems: set[str]) -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, "jobtitle": "CEO"}, {"Email": EMAIL, "Phone": "+1 555"})
    res = plan(w, cfg(create_missing=False, contacts=direction))
    assert {i["system"] for i in res.items} == systems


def _two_way_title() -> tuple[World, str, Any]:
    """A linked contact whose title is two-way: HubSpot's field history (Aug) is newer than
    Salesforce's record (Jul), HubSpot's record time (Jan) older than both."""
    w = World()
    hist = {
        "propertiesWithHistory": {
            "jobtitle": [{"value": "CEO", "timestamp": "2024-08-01T00:00:00Z"}]
        }
    }
    pid = linked_contact(
        w,
        {"email": EMAIL, "jobtitle": "CEO", **hist},
        {"Email": EMAIL, "Title": "CTO"},
        hs_cols={"modified_at": "2024-01-01T00:00:00Z"},  # record-level older, field-level newer
        sf_cols={"modified_at": "2024-07-01T00:00:00Z"},
    )
    return w, pid, cfg(create_missing=False, rules={"contacts.jobtitle": "two_way"})


def _synced(w: World, item: dict[str, Any], plan_run_id: str, at: str) -> None:
    """recon last synced the item's pair at ``at`` (a confirmed journal row)."""
    w.db["journal"].insert(
        {
            "run_id": "apply-1",
            "item_id": item["item_id"],
            "plan_run_id": plan_run_id,
            "state": "confirmed",
            "updated_at": at,
        }
    )


def test_two_way_uses_hubspot_field_history_and_last_sync() -> None:
    w, pid, c = _two_way_title()
    first = plan(w, c)
    (item,) = by(first.items, field="Title")
    assert (item["system"], item["after"], item["reason"]["why"]) == (
        "salesforce",
        "CEO",
        "hubspot_newer",
    )
    # recon last synced the pair before both changes: neither side may win silently
    _synced(w, item, str(first.run_id), "2024-06-01T00:00:00Z")
    second = build_plan(w.db, c)
    (again,) = [i for i in second.items if i["field"] == "jobtitle"]
    assert again["action"] == "conflict" and again["reason"]["why"] == "both_changed_since_sync"
    assert again["link_item_id"] == pid
    # a person decides; the newer side (HubSpot's field history) is what a policy may take
    assert again["after"] == {"side": "hubspot", "value": "CEO"}


def test_a_conflict_without_times_proposes_nothing() -> None:
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "jobtitle": "CEO"},
        {"Email": EMAIL, "Title": "CTO"},
        hs_cols={"modified_at": None},
        sf_cols={"modified_at": "2024-07-01T00:00:00Z"},
    )
    res = plan(w, cfg(create_missing=False, rules={"contacts.jobtitle": "two_way"}))
    (item,) = [i for i in res.items if i["field"] == "jobtitle"]
    assert (item["action"], item["reason"]["why"], item["after"]) == (
        "conflict",
        "times_missing",
        None,
    )


@pytest.mark.parametrize(
    ("hs", "sf"),
    [
        ({"annualrevenue": "17"}, {"AnnualRevenue": 17.0}),
        ({"hs_email_optout": "true"}, {"HasOptedOutOfEmail": True}),
        ({"hs_lead_status": "CONNECTED"}, {"Status": "Working - Contacted"}),
        ({"hubspot_owner_id": "7"}, {"OwnerId": "005A"}),
        ({"numemployees": "250"}, {"NumberOfEmployees": 250}),
        ({"firstname": " Jo "}, {"FirstName": "Jo"}),
    ],
)
def test_equal_after_normalisation_plans_nothing(hs: dict[str, Any], sf: dict[str, Any]) -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, **hs}, {"Email": EMAIL, **sf}, sf_obj="Lead")
    assert plan(w).items == []


_FLAG, _SEATS = ("vip", "VIP__c"), ("seats", "Seats__c")


@pytest.mark.parametrize(
    ("from_file", "field", "file_value", "api_value", "writes"),
    [
        # HubSpot's records from an export file (no HubSpot schema stored), Salesforce's JSON
        *(("hubspot", _FLAG, typed, False, []) for typed in ("false", "False", "0", "No")),
        *(("hubspot", _FLAG, typed, True, []) for typed in ("true", "1", "Yes", "TRUE")),
        ("hubspot", _FLAG, "", False, []),  # unticked is Salesforce's "no value"
        ("hubspot", _FLAG, "true", False, [("salesforce", "VIP__c", True)]),
        ("hubspot", _FLAG, "No", True, [("hubspot", "vip", "true")]),
        ("hubspot", _FLAG, None, True, [("hubspot", "vip", "true")]),
        *(("hubspot", _SEATS, typed, 17, []) for typed in ("17", "17.0", " 17 ")),
        ("hubspot", _SEATS, "1,000", 1000.0, []),
        ("hubspot", _SEATS, "18", 17, [("hubspot", "seats", "17")]),
        ("hubspot", _SEATS, "", 0, [("hubspot", "seats", "0")]),  # a blank stays blank
        ("hubspot", _SEATS, "17", None, [("salesforce", "Seats__c", 17.0)]),
        # Salesforce's records from an export file (no Salesforce schema), HubSpot's strings
        *(("salesforce", _FLAG, typed, "false", []) for typed in ("false", "False", "0", "No")),
        *(("salesforce", _FLAG, typed, "true", []) for typed in ("true", "1", "Yes")),
        ("salesforce", _FLAG, "", "false", []),
        ("salesforce", _FLAG, "0", "true", [("salesforce", "VIP__c", True)]),
        *(("salesforce", _SEATS, typed, "17", []) for typed in ("17", "17.0", "17.00")),
        ("salesforce", _SEATS, "1,000", "1000", []),
        ("salesforce", _SEATS, "1,000", "100", [("hubspot", "seats", "1000")]),
    ],
)
def test_a_custom_mappings_values_from_an_export_file_compare_by_the_known_fields_kind(
    from_file: str, field: tuple[str, str], file_value: Any, api_value: Any, writes: list[Any]
) -> None:
    """A custom mapping whose one side was only loaded from export files (no schema stored for
    it) compared as text: a file's "0", "Yes" or "17.0" against the API's false, true or 17
    was planned as a change (and Salesforce's true written to HubSpot as "True"). The field
    the other side's schema knows says what the values are."""
    sch = schemas()
    sch[("hubspot", "contacts")] += [
        {"name": "vip", "type": "bool", "fieldType": "booleancheckbox"},
        {"name": "seats", "type": "number", "fieldType": "number"},
    ]
    sch[("salesforce", "Lead")] += [
        {"name": "VIP__c", "type": "boolean", "updateable": True, "createable": True},
        {"name": "Seats__c", "type": "double", "updateable": True, "createable": True},
    ]
    del sch[("hubspot", "contacts") if from_file == "hubspot" else ("salesforce", "Lead")]
    hs_prop, sf_field = field
    hs_value, sf_value = (
        (file_value, api_value) if from_file == "hubspot" else (api_value, file_value)
    )
    w = World(with_schemas=False)
    origin = {"origin": "file:export.csv"}
    linked_contact(
        w,
        {"email": EMAIL, hs_prop: hs_value},
        {"Email": EMAIL, sf_field: sf_value},
        sf_obj="Lead",
        hs_cols=origin if from_file == "hubspot" else None,
        sf_cols=origin if from_file == "salesforce" else None,
    )
    custom = [
        {"object": "contacts", "hubspot": h, "salesforce": s, "salesforce_object": "Lead"}
        for h, s in (_FLAG, _SEATS)
    ]
    res = plan(w, cfg(create_missing=False, fields=custom), schemas=sch)
    assert [(i["system"], i["field"], i["after"]) for i in res.items] == writes


def test_owner_mapping_by_email() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, "hubspot_owner_id": "8"}, {"Email": EMAIL, "OwnerId": None})
    (item,) = plan(w).items
    assert (item["action"], item["system"], item["field"], item["after"]) == (
        "owner",
        "salesforce",
        "OwnerId",
        "005B",
    )
    assert item["payload"] == {"fields": {"OwnerId": "005B"}}


def test_unmapped_owner_is_skipped_not_guessed() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, "hubspot_owner_id": "9"}, {"Email": EMAIL})
    res = plan(w)
    assert res.items == [] and res.skipped["owner_unmapped"] == 1


def test_picklist_values_are_mapped_and_missing_options_are_reported() -> None:
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_lead_status": "OPEN_DEAL", "industry": "TECHNOLOGY"},
        {"Email": EMAIL, "Industry": None},
        sf_obj="Lead",
    )
    w.snap(
        "hubspot", "contacts", "202", {"email": "b@x.com", "salutation": "Prof."}, email="b@x.com"
    )
    w.snap("salesforce", "Lead", "00QB", {"Email": "b@x.com"}, email="b@x.com")
    w.link("contacts", "202", "Lead", "00QB")
    res = plan(w)
    (status,) = by(res.items, field="Status")
    assert status["after"] == "Closed - Converted"
    (industry,) = by(res.items, field="Industry")
    assert industry["after"] == "Technology"  # auto-matched option (same value, other case)
    assert by(res.items, field="Salutation") == [] and res.skipped["option_missing"] == 1
    (warning,) = [msg for path, msg in res.warnings if path == "mapping.contacts.salutation@Lead"]
    assert "'Prof.'" in warning and "no option on Salesforce Lead.Salutation" in warning


@pytest.mark.parametrize(
    ("hs", "sf", "writes"),
    [
        (
            {"phone": "+49 96 907 0744"},
            {"Phone": "0049 969070744"},
            [],
        ),  # same number, other format
        (
            {"phone": "+49 96 907 0744"},
            {"Phone": "+49 96 907 0745"},
            [("hubspot", "phone", "+49 96 907 0745")],
        ),
        (
            {"phone": "070 004 4132", "country": "France"},
            {"Phone": "+33 (70) 0044132", "MailingCountry": "FR"},
            [],
        ),  # a national number read in its record's country
        (
            {"phone": "070 004 4132", "country": "France"},
            {"Phone": "+33 (70) 0044133", "MailingCountry": "FR"},
            [("hubspot", "phone", "+33 (70) 0044133")],
        ),
        (
            {"phone": "070 004 4132", "country": "Germany"},
            {"Phone": "+33 (70) 0044132", "MailingCountry": "Germany"},
            [("hubspot", "phone", "+33 (70) 0044132")],
        ),  # a German national number is not the French one
        (
            {"phone": "(415) 555-0100"},
            {"Phone": "+1 415 555 0100"},
            [],
        ),  # no country: the default region
        (
            {"hs_email_optout": None},
            {"HasOptedOutOfEmail": False},
            [],
        ),  # SF checkboxes are never blank
        (
            {"hs_email_optout": None},
            {"HasOptedOutOfEmail": True},
            [("hubspot", "hs_email_optout", "true")],
        ),
    ],
)
def test_phones_and_checkboxes(hs: dict[str, Any], sf: dict[str, Any], writes: list[Any]) -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, **hs}, {"Email": EMAIL, **sf})
    assert [(i["system"], i["field"], i["after"]) for i in plan(w).items] == writes


_SITE = ("website", "Website")
_COUNTRY = ("country", "Country")


@pytest.mark.parametrize(
    ("field", "hs_value", "sf_value", "writes"),
    [
        (_SITE, "http://www.Acme.com/", "acme.com", []),  # one site written two ways
        (_SITE, "HTTPS://WWW.ACME.COM:443", "https://acme.com", []),
        (_SITE, "acme.com", "acme.de", ["acme.de"]),  # another host
        (_SITE, "acme.com", "acme.com/en/home", ["acme.com/en/home"]),  # another page
        (_SITE, None, "www.acme.com", ["www.acme.com"]),
        (_COUNTRY, "United Kingdom", "UK", []),  # one country written two ways
        (_COUNTRY, "Germany", "Deutschland", []),
        (_COUNTRY, "united states", "USA", []),
        (_COUNTRY, "Germany", "Italy", ["Italy"]),  # another country
        (_COUNTRY, "Atlantis", "Atlantis ", []),  # no known country: the same text
        (_COUNTRY, "Atlantis", "Lemuria", ["Lemuria"]),  # no known country: other text
        (_COUNTRY, None, "UK", ["UK"]),
    ],
)
def test_websites_and_countries_compare_by_their_keys_not_as_text(
    field: tuple[str, str], hs_value: str | None, sf_value: str, writes: list[str]
) -> None:
    hs_prop, sf_field = field
    w = World()
    linked_contact(
        w, {"email": EMAIL, hs_prop: hs_value}, {"Email": EMAIL, sf_field: sf_value}, sf_obj="Lead"
    )
    res = plan(w)
    assert [
        (i["system"], i["field"], i["after"]) for i in res.items if i["action"] == "update"
    ] == [("hubspot", hs_prop, v) for v in writes]
    kinds = {
        m.kind for m in resolve_mappings(cfg().mapping, schemas()).mappings if m.hubspot == hs_prop
    }
    assert kinds == {"url" if hs_prop == "website" else "country"}


def test_connector_defaults_between_text_and_picklists_or_numbers() -> None:
    sch = schemas()
    for key, name in (
        (("hubspot", "contacts"), "industry"),
        (("hubspot", "contacts"), "annualrevenue"),
    ):
        sch[key] = [f for f in sch[key] if f["name"] != name] + [
            {"name": name, "type": "string", "fieldType": "text"}
        ]
    w = World(with_schemas=False)
    linked_contact(
        w,
        {"email": EMAIL, "industry": "Banking", "annualrevenue": "lots"},
        {"Email": EMAIL, "Industry": None, "AnnualRevenue": None},
        sf_obj="Lead",
    )
    res = plan(w, schemas=sch)
    assert [(i["field"], i["after"]) for i in res.items] == [("Industry", "Banking")]
    assert res.skipped["not_a_number"] == 1
    assert any("not a number" in msg for _p, msg in res.warnings)


def test_read_only_hubspot_source_only_writes_to_salesforce() -> None:
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_analytics_source": "REFERRALS"},
        {"Email": EMAIL, "LeadSource": None},
    )
    w.snap("hubspot", "contacts", "202", {"email": "b@x.com"}, email="b@x.com")
    w.snap(
        "salesforce", "Contact", "003B", {"Email": "b@x.com", "LeadSource": "Web"}, email="b@x.com"
    )
    w.link("contacts", "202", "Contact", "003B")
    res = plan(w)
    (item,) = res.items
    assert (item["system"], item["field"], item["after"]) == (
        "salesforce",
        "LeadSource",
        "Partner Referral",
    )


def test_contact_linked_to_lead_and_contact_gets_one_hubspot_value() -> None:
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL}, email=EMAIL)
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "Title": "Lead title"}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "Title": "Contact title"}, email=EMAIL)
    w.link("contacts", "201", "Lead", "00QA", score=0.99)
    w.link("contacts", "201", "Contact", "003A", score=0.9)
    res = plan(w)
    (title,) = by(res.items, field="jobtitle")
    assert title["after"] == "Contact title"
    assert res.skipped["hubspot_write_superseded"] == 1


def _titles(hs: str, contact: str, lead: str | None) -> PlanResult:
    """A plan of HubSpot contact 201 linked to Contact 003A and Lead 00QA, with these titles."""
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "jobtitle": hs}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "Title": contact}, email=EMAIL)
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "Title": lead}, email=EMAIL)
    w.link("contacts", "201", "Contact", "003A")
    w.link("contacts", "201", "Lead", "00QA", score=0.99)
    return plan(w, cfg(create_missing=False))


@pytest.mark.parametrize("lead_title", [None, "CEO"])
def test_a_lead_is_not_given_the_hubspot_value_its_contact_link_replaces(
    lead_title: str | None,
) -> None:
    """HubSpot CEO, Contact CTO: HubSpot takes CTO, and a blank Lead is not given the CEO
    this plan replaces (a Lead's writes to HubSpot never win, so it would keep it for good):
    the next plan gives it the CTO HubSpot then holds."""
    res = _titles("CEO", "CTO", lead_title)
    writes = [(i["system"], i["object"], i["field"], i["after"]) for i in res.items]
    assert writes == [("hubspot", "contacts", "jobtitle", "CTO")]
    assert res.skipped.get("lead_write_superseded", 0) == (1 if lead_title is None else 0)
    # applied: HubSpot holds CTO; a blank Lead takes it, a Lead with its own value keeps it
    # (prefer_salesforce_unless_blank: the Lead's value wins, and the Contact decides HubSpot)
    again = [
        (i["system"], i["object"], i["field"], i["after"])
        for i in _titles("CTO", "CTO", lead_title).items
    ]
    assert again == ([("salesforce", "Lead", "Title", "CTO")] if lead_title is None else [])


def test_a_leads_opt_out_reaches_hubspot_though_a_contact_link_decides_the_property() -> None:
    """Consent is only ever set: the Contact link decides the contact's values, but a linked
    Lead's opt-out is not dropped as superseded (the next plan ticks the Contact too)."""
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "hs_email_optout": "false"}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A",
           {"Email": EMAIL, "HasOptedOutOfEmail": False}, email=EMAIL)  # fmt: skip
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "HasOptedOutOfEmail": True}, email=EMAIL)
    w.link("contacts", "201", "Contact", "003A")
    w.link("contacts", "201", "Lead", "00QA", score=0.99)
    res = plan(w, cfg(create_missing=False))
    (item,) = by(res.items, field="hs_email_optout")
    assert (item["system"], item["after"]) == ("hubspot", "true")
    assert res.skipped.get("hubspot_write_superseded", 0) == 0


@pytest.mark.parametrize("hs_title", ["CEO", "Founder"])
def test_a_contact_link_decides_hubspot_even_when_it_changes_nothing(hs_title: str) -> None:
    # HubSpot already holds the Contact's value: the linked Lead's value is not written,
    # and once it is, the plan writes the Contact's back (the plans settle, never alternate)
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "jobtitle": hs_title}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "Title": "CEO"}, email=EMAIL)
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "Title": "Founder"}, email=EMAIL)
    w.link("contacts", "201", "Contact", "003A")
    w.link("contacts", "201", "Lead", "00QA", score=0.99)
    res = plan(w, cfg(create_missing=False))
    writes = [(i["system"], i["after"]) for i in by(res.items, field="jobtitle")]
    assert writes == ([] if hs_title == "CEO" else [("hubspot", "CEO")])
    assert res.skipped.get("hubspot_write_superseded", 0) == (hs_title == "CEO")


def test_derived_company_name_and_account_id_onto_hubspot_contact() -> None:
    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme Inc"}, name="Acme Inc")
    linked_contact(
        w, {"email": EMAIL}, {"Email": EMAIL, "AccountId": "001A"}, sf_cols={"account_id": "001A"}
    )
    res = plan(w)
    got = {i["field"]: i["after"] for i in res.items if i["system"] == "hubspot"}
    assert got == {"company": "Acme Inc", "salesforceaccountid": "001A"}


def _two_campaigns(w: World) -> None:
    """Contact 003A is a member of the campaigns "Spring Webinar" and "Expo"."""
    w.snap("salesforce", "Campaign", "701A", {"Name": "Spring Webinar"}, name="Spring Webinar")
    w.snap("salesforce", "Campaign", "701B", {"Name": "Expo"}, name="Expo")
    for i, camp in enumerate(("701A", "701B")):
        w.snap("salesforce", "CampaignMember", f"00v{i}", {"CampaignId": camp, "ContactId": "003A"})


def test_campaign_membership_into_a_hubspot_property() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL, "sf_campaigns": "Old"}, {"Email": EMAIL})
    _two_campaigns(w)
    res = plan(w, cfg(create_missing=False, campaign_property="sf_campaigns"))
    (item,) = res.items
    assert (item["system"], item["field"], item["after"]) == (
        "hubspot",
        "sf_campaigns",
        "Expo;Spring Webinar",
    )


def test_campaign_names_take_the_checkbox_options_labelled_with_them() -> None:
    """A checkbox property whose options are labelled with the campaigns' names (values
    `spring`, `expo`) got nothing: the same-label options that map themselves elsewhere were
    only paired against a Salesforce picklist, which campaign names have none of."""
    w = World()
    row = w.db.execute(
        "select fields from schemas where source = 'hubspot' and object = 'contacts'"
    ).fetchone()
    fields = [f for f in json.loads(row[0]) if f["name"] != "sf_campaigns"]
    fields.append(
        {"name": "sf_campaigns", "label": "Campaigns", "type": "enumeration",
         "fieldType": "checkbox", "modificationMetadata": {"readOnlyValue": False},
         "options": [{"label": "Spring Webinar", "value": "spring"},
                     {"label": "Expo", "value": "expo"}]}
    )  # fmt: skip
    w.db.execute(
        "update schemas set fields = ? where source = 'hubspot' and object = 'contacts'",
        [json.dumps(fields)],
    )
    linked_contact(w, {"email": EMAIL, "sf_campaigns": "expo"}, {"Email": EMAIL})
    _two_campaigns(w)
    res = plan(w, cfg(create_missing=False, campaign_property="sf_campaigns"))
    (item,) = res.items
    assert (item["field"], item["after"]) == ("sf_campaigns", "expo;spring")
    assert not [m for _k, m in res.warnings if "no option" in m]


def test_lifecycle_stage_moves_forward_onto_the_company() -> None:
    w = World()
    w.snap("hubspot", "companies", "101", {"name": "Acme", "lifecyclestage": "lead"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    w.link("companies", "101", "Account", "001A")
    w.snap(
        "hubspot",
        "contacts",
        "201",
        {"email": EMAIL, "lifecyclestage": "customer"},
        account_id="101",
    )
    w.snap("hubspot", "contacts", "202", {"email": "b@x.com", "lifecyclestage": "subscriber"})
    w.db["associations"].insert(
        {
            "source": "hubspot",
            "from_object": "contacts",
            "from_id": "202",
            "to_object": "companies",
            "to_id": "101",
        }
    )
    res = plan(w)
    (item,) = by(res.items, field="lifecyclestage")
    assert (item["after"], item["seq"], item["reason"]["rule"]) == (
        "customer",
        60,
        "lifecycle_to_company",
    )
    off = build_plan(w.db, cfg(create_missing=False, lifecycle_to_company=False))
    assert by(off.items, field="lifecyclestage") == []
    # a write onto HubSpot companies: not while recon only writes Salesforce companies
    one_way = build_plan(w.db, cfg(create_missing=False, companies="hubspot_to_salesforce"))
    assert by(one_way.items, field="lifecyclestage") == []


def _stage_world(company_stage: str | None) -> World:
    """HubSpot company 101 (stage ``company_stage``) linked to Account 001A; its contact 201 is
    a customer."""
    w = World()
    fields = {"name": "Acme", **({"lifecyclestage": company_stage} if company_stage else {})}
    w.snap("hubspot", "companies", "101", fields, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    w.link("companies", "101", "Account", "001A")
    w.snap(
        "hubspot", "contacts", "201", {"email": EMAIL, "lifecyclestage": "customer"},
        account_id="101",
    )  # fmt: skip
    return w


@pytest.mark.parametrize(
    ("stage", "rule", "want"),
    [
        ("lead", None, "proposed"),
        (None, None, "proposed"),
        # HubSpot orders "other" last; a stage of the portal's own cannot be ranked: never moved
        ("other", None, None),
        ("partner_tier", None, None),
        # the mapping's rule is honoured (it warned "never syncs" and wrote all the same)
        ("lead", "always_hubspot", None),
        (None, "always_hubspot", None),
        ("lead", "prefer_hubspot_unless_blank", None),
        (None, "prefer_hubspot_unless_blank", "proposed"),
        ("lead", "review", "needs_review"),
    ],
)
def test_the_lifecycle_stage_onto_the_company_follows_its_rule_and_never_moves_back(
    stage: str | None, rule: str | None, want: str | None
) -> None:
    w = _stage_world(stage)
    rules = {"rules": {"companies.lifecyclestage": rule}} if rule else {}
    res = plan(w, cfg(create_missing=False, **rules))
    items = by(res.items, field="lifecyclestage")
    if want is None:
        assert items == []
        return
    (item,) = items
    assert (item["after"], item["status"]) == ("customer", want)
    if want == "needs_review":  # approved on its own, not by the link's approval
        assert item["item_id"] in item["requires"]


@pytest.mark.parametrize(
    ("hs_last", "want"),
    [
        (None, []),  # the placeholder is no value: never written back to HubSpot
        ("Smith", [("salesforce", "LastName", "Smith")]),  # a real name replaces it
    ],
)
def test_the_not_provided_placeholder_is_blank(hs_last: str | None, want: list[Any]) -> None:
    """A Lead recon created with LastName/Company "[not provided]": the next plan wrote the
    placeholder into the HubSpot contact's lastname and company as if it were data."""
    w = World()
    hs = {"email": EMAIL, **({"lastname": hs_last} if hs_last else {})}
    linked_contact(
        w, hs, {"Email": EMAIL, "LastName": "[not provided]", "Company": "[not provided]"},
        sf_obj="Lead",
    )  # fmt: skip
    res = plan(w)
    got = [
        (i["system"], i["field"], i["after"])
        for i in res.items
        if i["field"] in ("lastname", "company", "LastName", "Company")
    ]
    assert got == want


def test_a_converted_lead_is_history_no_writes_either_way() -> None:
    """A Lead converted in Salesforce after recon linked it: updates were planned onto it
    (Salesforce refuses them) and its Status went to HubSpot's lead status."""
    w = World()
    linked_contact(
        w, {"email": EMAIL, "address": "12 Rue de la Paix"},
        {"Email": EMAIL, "Street": None, "Status": "Closed - Converted", "IsConverted": True},
        sf_obj="Lead",
    )  # fmt: skip
    res = plan(w)
    assert [i for i in res.items if i["action"] in ("update", "conflict", "owner")] == []
    assert res.skipped["lead_converted"] == 1


def test_backfill_plans_a_new_mapping_for_existing_links() -> None:
    w = World()
    linked_contact(
        w, {"email": EMAIL, "birthday": "1990-04-01"}, {"Email": EMAIL, "Birthdate": None}
    )
    assert plan(w).items == []
    mapping = {
        "create_missing": False,
        "fields": [
            {
                "object": "contacts",
                "hubspot": "birthday",
                "salesforce": "Birthdate",
                "salesforce_object": "Contact",
            }
        ],
    }
    res = build_plan(w.db, cfg(**mapping))
    (item,) = res.items
    assert (item["field"], item["after"]) == ("Birthdate", "1990-04-01")


def test_invalid_custom_mapping_stops_the_plan() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL}, {"Email": EMAIL})
    bad = {
        "fields": [
            {
                "object": "contacts",
                "hubspot": "nope",
                "salesforce": "Title",
                "salesforce_object": "Lead",
            }
        ]
    }
    with pytest.raises(MappingError) as err:
        plan(w, cfg(**bad))
    assert len(err.value.problems) == 2  # missing property and Title mapped twice


def test_no_match_run_is_a_plan_error() -> None:
    with pytest.raises(PlanError):
        build_plan(open_store(":memory:"), ReconConfig())


# --------------------------------------------------------------------------- runs, stability, sample


def _world_for_stability() -> World:
    w = World()
    for n in range(6):
        w.snap(
            "hubspot",
            "contacts",
            f"2{n}",
            {"email": f"p{n}@x.com", "jobtitle": f"T{n}"},
            email=f"p{n}@x.com",
        )
        w.snap(
            "salesforce",
            "Contact",
            f"003{n}",
            {"Email": f"p{n}@x.com", "Phone": f"{n}"},
            email=f"p{n}@x.com",
        )
        w.link("contacts", f"2{n}", "Contact", f"003{n}")
    w.snap("hubspot", "contacts", "399", {"email": "solo@x.com"}, email="solo@x.com")
    return w


def test_same_inputs_same_plan_ids() -> None:
    w = _world_for_stability()
    first = plan(w, cfg())
    second = build_plan(w.db, cfg())
    strip = [{k: v for k, v in i.items()} for i in first.items]
    assert first.run_id != second.run_id
    assert [i["item_id"] for i in first.items] == [i["item_id"] for i in second.items]
    assert strip == second.items
    other = _world_for_stability()
    assert [i["item_id"] for i in plan(other, cfg()).items] == [i["item_id"] for i in first.items]


def test_plan_run_is_stored_in_one_piece() -> None:
    w = _world_for_stability()
    res = plan(w, cfg(), parent_run_id="run-parent")
    run = get_run(w.db, res.run_id)
    assert (run["stage"], run["status"], run["parent_id"]) == ("plan", "ok", "run-parent")
    assert run["summary"]["items"] == res.total == 13
    assert run["config"]["match_run_id"] == res.match_run_id
    rows = list(w.db.query("select * from plan_items where run_id = ?", [res.run_id]))
    assert len(rows) == res.total
    assert json.loads(rows[0]["requires"]) and json.loads(rows[0]["reason"])


def test_dry_run_stores_nothing() -> None:
    w = _world_for_stability()
    res = plan(w, cfg(), dry_run=True)
    assert res.run_id is None and res.total == 13
    assert w.db["plan_items"].count == 0
    assert not list(w.db.query("select 1 from runs where stage = 'plan'"))


def test_sample_limits_links_and_creates() -> None:
    w = _world_for_stability()
    res = plan(w, cfg(), sample=2)
    assert len({i["link_item_id"] for i in res.items if i["link_item_id"]}) == 2
    assert len(by(res.items, action="create")) == 1


def test_a_sample_takes_links_that_can_be_planned() -> None:
    """A sampled link whose record was archived (or missing, or out of the sync) took one of
    the N places: `--sample 2` planned one link."""
    w = _world_for_stability()
    links = sorted(r["pair_id"] for r in w.db.query("select pair_id from pairs"))
    # archive the HubSpot end of whichever link the sample takes first
    res = plan(w, cfg(), sample=1, dry_run=True)
    (first,) = {i["link_item_id"] for i in res.items if i["link_item_id"]}
    (hs_id,) = [
        r["record_id_l"] for r in w.db.query("select * from pairs where pair_id = ?", [first])
    ]
    w.db["snapshots"].update(("hubspot", "contacts", hs_id), {"archived": 1})
    res = plan(w, cfg(), sample=2, dry_run=True)
    planned = {i["link_item_id"] for i in res.items if i["link_item_id"]}
    assert len(planned) == 2 and first not in planned and planned <= set(links)
    assert res.skipped["archived"] == 1


def test_a_converted_lead_leaves_its_sample_place_to_the_next_link() -> None:
    """A converted Lead is skipped when compared: in a sample it took one of the N places."""
    w = World()
    for n in range(3):
        w.snap("hubspot", "contacts", f"5{n}", {"email": f"l{n}@x.com", "jobtitle": "T"},
               email=f"l{n}@x.com")  # fmt: skip
        fields = {"Email": f"l{n}@x.com", "Title": f"Lead {n}"}
        if n == 0:
            fields["IsConverted"] = True
        w.snap("salesforce", "Lead", f"00Q{n}", fields, email=f"l{n}@x.com")
        w.link("contacts", f"5{n}", "Lead", f"00Q{n}")
    res = plan(w, cfg(), sample=1, dry_run=True)
    planned = {i["record_id"] for i in res.items if i["link_item_id"]}
    assert res.skipped["lead_converted"] == 1
    assert planned & {"50", "00Q0"} == set() and len(planned & {"51", "00Q1"}) >= 1
    assert planned & {"52", "00Q2"} == set()


def test_a_sample_of_creates_counts_only_records_created() -> None:
    w = World()
    # the first unlinked contacts (by id) exist in Salesforce already: skipped, not sampled
    for n in range(4):
        email = f"p{n}@x.com"
        w.snap("hubspot", "contacts", f"30{n}", {"email": email, "lastname": "L"}, email=email)
        if n < 2:
            w.snap("salesforce", "Lead", f"00Q{n}", {"Email": email}, email=email)
    res = plan(w, cfg(create_missing=True, contacts="hubspot_to_salesforce"), sample=1)
    (create,) = by(res.items, action="create")
    assert create["payload"]["source"]["record_id"] == "302"
    assert res.skipped["create_natural_key_exists"] == 2


def test_given_match_run_is_used() -> None:
    w = _world_for_stability()
    first = w.done()
    later = World(w.db, with_schemas=False, owners=False)
    later.done()  # a newer match run with no pairs
    assert build_plan(w.db, cfg(create_missing=False)).items == []
    res = build_plan(w.db, cfg(create_missing=False), match_run_id=first)
    assert res.match_run_id == first and res.total == 12


def test_schemas_can_be_passed_as_plain_data() -> None:
    w = World(with_schemas=False)
    linked_contact(w, {"email": EMAIL, "jobtitle": "CEO"}, {"Email": EMAIL})
    sch = schemas()
    sch[("salesforce", "Contact")] = [
        f for f in sch[("salesforce", "Contact")] if f["name"] != "Title"
    ]
    res = plan(w, schemas=sch)
    assert res.items == []
    assert any("Title" in msg for _p, msg in res.warnings)


@pytest.mark.parametrize(
    "parts",
    [
        ("update", "hubspot", "contacts", "201", "jobtitle", "abc"),
        ("create", "salesforce", "Lead", "hubspot", "contacts", 'ü"x\\\n'),
        ("associate", "hubspot", {"object": "contacts", "id": "1"}, {"b": None, "a": "x"}),
        ("merge", 1, 2.5, None, True),
    ],
)
def test_fast_ids_are_models_stable_ids(parts: tuple[Any, ...]) -> None:
    from recon.plan_values import fast_stable_id

    assert fast_stable_id(*parts) == stable_id(*parts)


def test_flattened_account_name_from_the_pull_is_used() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL}, {"Email": EMAIL, "Account.Name": "Flat Inc"})
    (item,) = by(plan(w).items, field="company")
    assert item["after"] == "Flat Inc"


def test_approving_a_proposed_conflict_writes_the_newer_side() -> None:
    """review.decide(approve) on a conflict takes the plan's proposal: the newer side's value."""
    from recon import review
    from recon.plan import approved_items

    w, pid, c = _two_way_title()
    first = plan(w, c)
    (item,) = by(first.items, field="Title")
    _synced(w, item, str(first.run_id), "2024-06-01T00:00:00Z")
    second = build_plan(w.db, c)
    (conflict,) = [i for i in second.items if i["action"] == "conflict"]
    review.decide(w.db, pid, "approve", reviewer="ana", based_on_version=0)
    row = review.decide(w.db, conflict["item_id"], "approve", reviewer="ana", based_on_version=0)
    assert json.loads(row["choice"])["side"] == "hubspot"
    writes = [
        (i["system"], i["field"], i["after"])
        for i in approved_items(w.db, str(second.run_id))
        if i.get("conflict_item_id")
    ]
    assert writes == [("salesforce", "Title", "CEO")]


def _title_conflict() -> tuple[World, str, Any, dict[str, Any]]:
    """A linked contact whose job titles differ under the review rule: the world, the link,
    the config and the plan's conflict."""
    w = World()
    pid = linked_contact(w, {"email": EMAIL, "jobtitle": "CTO"}, {"Email": EMAIL, "Title": "CEO"})
    w.done()
    c = cfg(create_missing=False, rules={"contacts.jobtitle": "review"})
    (conflict,) = by(build_plan(w.db, c).items, action="conflict")
    return w, pid, c, conflict


def test_a_conflict_whose_values_changed_is_a_new_question() -> None:
    """A value chosen for one pair of values is never applied to the values someone typed since."""
    from recon import review
    from recon.plan import approved_items

    w, pid, c, old = _title_conflict()
    review.decide(w.db, pid, "approve", reviewer="ana", based_on_version=0)
    review.choose_value(w.db, old["item_id"], "jobtitle", "CEO", source="salesforce",
                        reviewer="ana", based_on_version=0)  # fmt: skip
    # HubSpot is edited before the apply: the conflict now asks about other values
    w.db["snapshots"].update(
        ("hubspot", "contacts", "201"), {"data": json.dumps({"email": EMAIL, "jobtitle": "VP"})}
    )
    second = build_plan(w.db, c)
    (new,) = by(second.items, action="conflict")
    assert new["item_id"] != old["item_id"]
    assert not [i for i in approved_items(w.db, str(second.run_id)) if i.get("conflict_item_id")]
    assert review.queue(w.db, review.QueueFilter(kinds=("conflict",))).total == 1  # asked again


def test_a_company_and_a_contact_sharing_an_id_keep_their_own_writes() -> None:
    """HubSpot ids are per object type (a file import may number both from 1)."""
    w = World()
    w.snap("hubspot", "companies", "501", {"name": "Acme", "phone": "+47 1"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme", "Phone": "+47 2"}, name="Acme")
    w.link("companies", "501", "Account", "001A")
    w.snap("hubspot", "contacts", "501", {"email": EMAIL, "phone": "+47 3"}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "Phone": "+47 4"}, email=EMAIL)
    w.link("contacts", "501", "Contact", "003A")
    res = plan(w, cfg(create_missing=False))
    phones = sorted(
        (i["object"], i["after"]) for i in by(res.items, system="hubspot", field="phone")
    )
    assert phones == [("companies", "+47 2"), ("contacts", "+47 4")]


def test_a_lead_conflict_on_a_property_its_contact_link_decides_is_not_asked() -> None:
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "jobtitle": "CTO"}, email=EMAIL)
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "Title": "CEO"}, email=EMAIL)
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "Title": "Founder"}, email=EMAIL)
    w.link("contacts", "201", "Contact", "003A")
    w.link("contacts", "201", "Lead", "00QA", score=0.99)
    res = plan(w, cfg(create_missing=False, rules={"contacts.jobtitle": "review"}))
    conflicts = by(res.items, action="conflict")
    # one question, HubSpot against the Contact; none against the Lead
    assert [c["payload"]["salesforce"]["object"] for c in conflicts] == ["Contact"]
    assert res.skipped["hubspot_write_superseded"] >= 1


def test_decisions_on_conflicts_under_their_former_ids_are_carried_over() -> None:
    """An upgraded store keeps its answered conflicts (ids now include the values)."""
    from recon import review
    from recon.plan import approved_items
    from recon.plan_values import fast_stable_id
    from recon.store import m010_conflict_ids_with_values

    w, pid, c, conflict = _title_conflict()
    # as an earlier release stored it: the id without the values, a decision on that id
    legacy = fast_stable_id("conflict", pid, "jobtitle", "Contact", "Title")
    w.db.execute(
        "update plan_items set item_id = ? where item_id = ?", [legacy, conflict["item_id"]]
    )
    review.decide(w.db, pid, "approve", reviewer="ana", based_on_version=0)
    w.db["decisions"].insert(
        {"kind": "conflict_value", "label": "approve", "item_id": legacy, "decided_by": "human",
         "reviewer": "ana", "version": 1, "superseded": 0,
         "choice": json.dumps({"field": "jobtitle", "value": "CEO", "side": "salesforce"})}
    )  # fmt: skip
    old_plan = w.db.execute("select run_id from plan_items where item_id = ?", [legacy]).fetchone()[
        0
    ]
    m010_conflict_ids_with_values(w.db)
    m010_conflict_ids_with_values(w.db)  # twice: harmless
    # the plan stored before the upgrade still applies the choice (copied, not moved)
    kept = [i for i in approved_items(w.db, old_plan) if i.get("conflict_item_id")]
    assert [(i["system"], i["after"]) for i in kept] == [("hubspot", "CEO")]
    again = build_plan(w.db, c)
    writes = [i for i in approved_items(w.db, str(again.run_id)) if i.get("conflict_item_id")]
    assert [(i["system"], i["after"]) for i in writes] == [("hubspot", "CEO")]


# --------------------------------------------------------------------------- two_way and recon's own writes


def _own_write(w: World, record_id: str, fields: dict[str, Any], snapshot: str, at: str) -> None:
    """recon wrote ``fields`` of HubSpot contact ``record_id`` at ``at`` (the record's time
    before that write was ``snapshot``): a confirmed journal row, as apply leaves it."""
    item = {"action": "update", "system": "hubspot", "object": "contacts", "record_id": record_id,
            "field": next(iter(fields)), "payload": {"properties": fields}, "snapshot": snapshot}  # fmt: skip
    w.db["journal"].insert(
        {
            "run_id": "apply-own",
            "item_id": "own-1",
            "plan_run_id": "plan-x",
            "state": "confirmed",
            "crm_record_id": record_id,
            "updated_at": at,
            "item": json.dumps(item),
        }
    )


@pytest.mark.parametrize(
    ("city_now", "winner"),
    [("Leeds", ("conflict", "both", None)), ("Bath", ("update", "salesforce", "A-hs (older)"))],
)
def test_recon_writing_another_field_does_not_make_a_record_newer(
    city_now: str, winner: tuple[str, str, Any]
) -> None:
    """HubSpot's title was edited before Salesforce's; then recon wrote the HubSpot city. The
    record's time may be recon's write, which says nothing of the title (or a person's edit
    right after it): HubSpot is not taken as newer, a person decides. When the city holds
    another value now, a person changed the record after recon: its time counts."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "jobtitle": "A-hs (older)", "city": city_now},
        {"Email": EMAIL, "Title": "B-sf (newer)", "MailingCity": city_now},
        # read from an export file (no field times: the record's time is all there is)
        hs_cols={"modified_at": "2024-07-01T10:05:00.020Z", "origin": "file:contacts.csv"},
        sf_cols={"modified_at": "2024-07-01T10:01:00.000Z"},
    )
    _own_write(w, "201", {"city": "Leeds"}, "2024-07-01T10:00:00.000Z", "2024-07-01T10:05:00.000Z")
    res = plan(w, cfg(create_missing=False, rules={"contacts.jobtitle": "two_way"}))
    (item,) = [i for i in res.items if i["field"] in ("jobtitle", "Title")]
    assert (item["action"], item["system"], item["after"]) == winner
    if item["action"] == "conflict":
        assert item["reason"]["why"] == "own_write_unclear"


def test_a_record_from_an_export_file_is_dated_to_the_end_of_its_minute() -> None:
    """HubSpot's export writes times to the minute (10:05), the CRM keeps milliseconds
    (10:05:42.984): apply found nearly every write to a record loaded from an export "changed
    since" and held it as stale. Its snapshot time is the end of the minute it stands for."""
    from recon.apply_items import newer

    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "city": None},
        {"Email": EMAIL, "MailingCity": "Leeds"},
        hs_cols={"modified_at": "2024-07-01T10:05:00.000Z", "origin": "file:contacts.csv"},
        sf_cols={"modified_at": "2024-07-01T10:01:00.000Z"},
    )
    (item,) = [i for i in plan(w).items if i["field"] == "city"]
    assert item["snapshot_modified_at"] == "2024-07-01T10:05:59.999Z"
    assert not newer("2024-07-01T10:05:42.984Z", item["snapshot_modified_at"])
    assert newer("2024-07-01T10:06:00.000Z", item["snapshot_modified_at"])


def test_a_merges_members_from_an_export_file_are_dated_to_the_end_of_their_minute() -> None:
    """Apply checks a merge's victims against the times the review saw (an edit since would be
    deleted with them): a file's minute stands for its end, or every victim read from an
    export would look changed."""
    w = World()
    for rid in ("K1", "K2"):
        w.snap("hubspot", "companies", rid, {"name": "Acme"}, name="Acme",
               modified_at="2024-07-01T10:05:00.000Z", origin="file:companies.csv")  # fmt: skip
    w.cluster("cl-1", "companies", "hubspot", [("companies", "K1"), ("companies", "K2")], "auto")
    (merge,) = by(plan(w).items, action="merge")
    assert merge["payload"]["modified"] == dict.fromkeys(("K1", "K2"), "2024-07-01T10:05:59.999Z")


def test_a_two_way_property_without_its_field_times_waits_for_a_person() -> None:
    """A property made two_way after the last pull has no field times in the store: the plan
    compared the HubSpot record's time, which an edit of any other property moves, and the
    older value overwrote the newer. A person decides, and the plan says to pull."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "jobtitle": "HS (set first)", "zip": "99999"},  # zip edited last
        {"Email": EMAIL, "Title": "SF (set later)"},
        hs_cols={"modified_at": "2024-07-01T00:00:10.000Z"},
        sf_cols={"modified_at": "2024-07-01T00:00:05.000Z"},
    )
    res = plan(w, cfg(create_missing=False, rules={"contacts.jobtitle": "two_way"}))
    (item,) = [i for i in res.items if i["field"] in ("jobtitle", "Title")]
    assert (item["action"], item["reason"]["why"]) == ("conflict", "times_missing")
    (said,) = [m for k, m in res.warnings if k == "two_way"]
    assert "contacts.jobtitle" in said and "recon pull" in said


def test_a_conflict_once_asked_stays_asked_while_its_values_stand() -> None:
    """A question a person was asked is not answered by the times of a later plan."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "jobtitle": "CEO"},
        {"Email": EMAIL, "Title": "CTO"},
        # an export file's record without a time: a person is asked
        hs_cols={"modified_at": None, "origin": "file:contacts.csv"},
        sf_cols={"modified_at": "2024-07-01T00:00:00Z"},
    )
    c = cfg(create_missing=False, rules={"contacts.jobtitle": "two_way"})
    (asked,) = [i for i in plan(w, c).items if i["field"] == "jobtitle"]
    assert asked["action"] == "conflict"
    w.db["snapshots"].update(
        ("hubspot", "contacts", "201"), {"modified_at": "2024-08-01T00:00:00Z"}
    )
    (again,) = [i for i in build_plan(w.db, c).items if i["field"] == "jobtitle"]
    assert (again["item_id"], again["action"], again["reason"]["why"]) == (
        asked["item_id"],
        "conflict",
        "asked_before",
    )
    assert again["after"] == {"side": "hubspot", "value": "CEO"}  # the newer side, proposed
    # new values are a new question, which the times settle
    w.db["snapshots"].update(
        ("hubspot", "contacts", "201"), {"data": json.dumps({"email": EMAIL, "jobtitle": "CFO"})}
    )
    (settled,) = [i for i in build_plan(w.db, c).items if i["field"] in ("jobtitle", "Title")]
    assert (settled["action"], settled["after"], settled["reason"]["why"]) == (
        "update",
        "CFO",
        "hubspot_newer",
    )


def test_a_ticked_hubspot_box_reaches_salesforce_whose_box_is_never_blank() -> None:
    """An unticked Salesforce checkbox is its "no value": a contact who opted out in
    HubSpot is opted out in Salesforce, not subscribed again in HubSpot."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_email_optout": "true"},
        {"Email": EMAIL, "HasOptedOutOfEmail": False},
    )
    (item,) = [i for i in plan(w).items if i["field"] in ("hs_email_optout", "HasOptedOutOfEmail")]
    assert (item["system"], item["field"], item["after"]) == (
        "salesforce",
        "HasOptedOutOfEmail",
        True,
    )


_OPT_OUT_HISTORY = {
    "propertiesWithHistory": {
        "hs_email_optout": [{"value": "false", "timestamp": "2024-08-01T00:00:00Z"}]
    }
}


@pytest.mark.parametrize("rule", ["always_hubspot", "prefer_hubspot_unless_blank", "two_way"])
def test_no_rule_resubscribes_a_person_who_opted_out_in_salesforce(rule: str) -> None:
    """A consent flag is only ever set: HubSpot's unticked box (newer, or winning by rule)
    does not clear Salesforce's opt-out, which still reaches HubSpot where the rule lets it."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_email_optout": "false", **_OPT_OUT_HISTORY},
        {"Email": EMAIL, "HasOptedOutOfEmail": True},
        hs_cols={"modified_at": "2024-08-01T00:00:00Z"},  # HubSpot's the newer value
        sf_cols={"modified_at": "2024-01-01T00:00:00Z"},
    )
    res = plan(w, cfg(create_missing=False, rules={"contacts.hs_email_optout": rule}))
    assert [i for i in res.items if i["field"] in ("hs_email_optout", "HasOptedOutOfEmail")] == []
    assert res.skipped["opt_out_kept"] == 1


def test_an_opt_out_still_wins_where_the_rule_sets_it() -> None:
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_email_optout": "false"},
        {"Email": EMAIL, "HasOptedOutOfEmail": True},
    )
    (item,) = [i for i in plan(w).items if i["field"] == "hs_email_optout"]
    assert (item["system"], item["after"]) == ("hubspot", "true")


def test_a_conflict_never_proposes_clearing_an_opt_out() -> None:
    """Both sides changed since recon last synced the pair: a person decides, and the newer
    side (HubSpot's unticked box) is not offered to ``[policy] conflicts``."""
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "hs_email_optout": "false", "jobtitle": "CEO", **_OPT_OUT_HISTORY},
        {"Email": EMAIL, "HasOptedOutOfEmail": True, "Title": "CTO"},
        hs_cols={"modified_at": "2024-08-01T00:00:00Z"},
        sf_cols={"modified_at": "2024-07-01T00:00:00Z"},
    )
    c = cfg(create_missing=False, rules={"contacts.hs_email_optout": "two_way"})
    first = plan(w, c)
    (title,) = by(first.items, field="jobtitle")
    _synced(w, title, str(first.run_id), "2024-06-01T00:00:00Z")
    (item,) = by(build_plan(w.db, c).items, field="hs_email_optout")
    assert (item["action"], item["reason"]["why"]) == ("conflict", "both_changed_since_sync")
    assert item["after"] is None


def test_a_merge_keeps_an_opt_out_of_any_member() -> None:
    """The master's unticked box does not survive a duplicate's opt-out (DoNotCall too)."""
    writes, detail = survivorship(
        "a",
        ["a", "b", "c"],
        {
            "HasOptedOutOfEmail": {"a": False, "b": False, "c": True},
            "DoNotCall": {"a": None, "b": True, "c": False},
            "hs_email_optout": {"a": "false", "b": "true", "c": None},
            # as a report writes checkboxes (read as "not opted out", the copy was merged away)
            "HasOptedOutOfFax": {"a": "No", "b": "Yes", "c": None},
            "Title": {"a": "CEO", "b": "CTO", "c": None},
        },
    )
    assert writes == {"HasOptedOutOfEmail": True, "DoNotCall": True, "hs_email_optout": "true",
                      "HasOptedOutOfFax": "true"}  # fmt: skip
    assert detail["HasOptedOutOfEmail"] == {"value": True, "from": "c", "why": "opt_out_kept"}
    # a reviewer's explicit choice is a person's decision
    assert survivorship("a", ["a", "c"], {"HasOptedOutOfEmail": {"a": False, "c": True}},
                        {"HasOptedOutOfEmail": False})[0] == {}  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "written"),
    [("1,5", 1.5), ("1.234,5", 1234.5), ("1,234.5", 1234.5), ("2.500.000", 2500000.0)],
)
def test_numbers_typed_in_a_locale_are_read_as_typed(typed: str, written: float) -> None:
    w = World()
    linked_contact(
        w,
        {"email": EMAIL, "annualrevenue": typed},
        {"Email": EMAIL, "AnnualRevenue": None},
        sf_obj="Lead",
    )
    (item,) = [i for i in plan(w).items if i["field"] == "AnnualRevenue"]
    assert item["after"] == written


def test_an_owner_whose_user_is_deactivated_is_not_assigned_and_is_named() -> None:
    """Salesforce refuses an inactive owner; the warning names the person to fix."""
    w = World()
    w.db["owners"].insert(
        {"source": "salesforce", "owner_id": "005X", "email": "gone@corp.com", "active": 0}
    )
    w.db["owners"].insert({"source": "hubspot", "owner_id": "11", "email": "gone@corp.com"})
    linked_contact(w, {"email": EMAIL, "hubspot_owner_id": "11"}, {"Email": EMAIL})
    res = plan(w)
    assert not [i for i in res.items if i["action"] == "owner"]
    assert res.skipped["owner_unmapped"] == 1
    assert any("gone@corp.com" in msg for _k, msg in res.warnings)


@pytest.mark.parametrize("create", [False, True])
def test_an_archived_hubspot_owner_is_not_assigned_and_is_named(create: bool) -> None:
    """The HubSpot side of the rule above: a pull marks an owner HubSpot no longer lists
    (archived: the person left) inactive, yet a Salesforce User with its e-mail was mapped
    onto it, on a linked contact and on a contact created from a Salesforce Contact."""
    w = World()
    w.db["owners"].insert(
        {"source": "hubspot", "owner_id": "12", "email": "left@corp.com", "active": 0}
    )
    w.db["owners"].insert({"source": "salesforce", "owner_id": "005L", "email": "left@corp.com"})
    sf = {"Email": EMAIL, "LastName": "Jo", "OwnerId": "005L"}
    if create:
        w.snap("salesforce", "Contact", "003A", sf, email=EMAIL)
    else:
        linked_contact(w, {"email": EMAIL, "lastname": "Jo"}, sf)
    res = plan(w, cfg(create_missing=create))
    assert [i["action"] for i in res.items] == (["create"] if create else [])
    assert "hubspot_owner_id" not in (res.items[0]["after"] if create else {})
    assert res.skipped["create_field_owner_unmapped" if create else "owner_unmapped"] == 1
    assert any("left@corp.com" in msg for _k, msg in res.warnings)


def test_an_email_differing_only_in_case_is_no_change() -> None:
    w = World()
    linked_contact(w, {"email": "ama.richter@icloud.com"}, {"Email": "AMA.RICHTER@ICLOUD.COM"})
    assert [i for i in plan(w).items if i["field"] in ("email", "Email")] == []


@pytest.mark.parametrize("large", [False, True])
def test_the_survivors_of_a_large_build_are_kept_out_of_the_collector(
    monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    import gc

    import recon.plan as plan

    monkeypatch.setattr(plan, "_FREEZE_OVER", 1_000 if large else 10_000_000)

    @plan.gc_paused
    def build() -> list[list[int]]:
        assert not gc.isenabled()
        return [[k] for k in range(20_000)]

    frozen = gc.get_freeze_count()
    try:
        items = build()
        assert gc.isenabled()
        assert (gc.get_freeze_count() >= frozen + len(items)) is large
    finally:
        gc.unfreeze()
