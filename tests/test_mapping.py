"""Field mappings: defaults, the conflict-rule truth table, directions, validation, values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from plan_testdata import hs_prop, schemas, sf_field

from recon.config import MappingSection, load_config
from recon.errors import ConfigError, MappingError
from recon.mapping import (
    DEFAULT_CONTACT_MAPPINGS,
    RULES,
    FieldMap,
    Outcome,
    allowed,
    check_mappings,
    decide,
    default_mappings,
    resolve_mappings,
)
from recon.plan_schema import field_info
from recon.plan_values import OwnerMap, for_hubspot, for_salesforce, norm, values_equal

# --------------------------------------------------------------------------- truth table

# (rule) -> (SF blank & HS set, SF set & HS blank, both set and different); two_way's last cell is timed
TABLE = {
    "prefer_salesforce_unless_blank": ("to_salesforce", "to_hubspot", "to_hubspot"),
    "always_salesforce": ("none", "to_hubspot", "to_hubspot"),
    "two_way": ("to_salesforce", "to_hubspot", None),
    "prefer_hubspot_unless_blank": ("to_salesforce", "to_hubspot", "to_salesforce"),
    "always_hubspot": ("to_salesforce", "none", "to_salesforce"),
    "review": ("to_salesforce", "to_hubspot", "review"),
    "dont_sync": ("none", "none", "none"),
}
T0 = datetime(2024, 6, 1, tzinfo=UTC)
OLDER, NEWER = T0 - timedelta(days=1), T0 + timedelta(days=1)
CASES = {"sf_blank": (False, True), "hs_blank": (True, False), "both_set": (False, False)}


def test_every_rule_is_in_the_table() -> None:
    assert set(TABLE) == set(RULES)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("hs_newer", [True, False], ids=["hs_newer", "sf_newer"])
def test_truth_table(rule: str, case: str, hs_newer: bool) -> None:
    hs_blank, sf_blank = CASES[case]
    hs_t, sf_t = (NEWER, OLDER) if hs_newer else (OLDER, NEWER)
    out = decide(
        rule, hs_blank=hs_blank, sf_blank=sf_blank, equal=False, hs_time=hs_t, sf_time=sf_t
    )
    expected = TABLE[rule][list(CASES).index(case)]
    if expected is None:  # two_way, both set: the newer side wins
        expected = "to_salesforce" if hs_newer else "to_hubspot"
    assert out.action == expected


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("hs_newer", [True, False])
def test_blank_winner_never_blanks_the_other_side(rule: str, hs_newer: bool) -> None:
    """Whatever the times, a blank side is never written over the set one."""
    hs_t, sf_t = (NEWER, OLDER) if hs_newer else (OLDER, NEWER)
    sf_empty = decide(rule, hs_blank=False, sf_blank=True, equal=False, hs_time=hs_t, sf_time=sf_t)
    hs_empty = decide(rule, hs_blank=True, sf_blank=False, equal=False, hs_time=hs_t, sf_time=sf_t)
    assert sf_empty.action != "to_hubspot"
    assert hs_empty.action != "to_salesforce"


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    ("hs_blank", "sf_blank", "equal"), [(True, True, False), (False, False, True)]
)
def test_nothing_to_do_when_both_blank_or_equal(
    rule: str, hs_blank: bool, sf_blank: bool, equal: bool
) -> None:
    assert decide(rule, hs_blank=hs_blank, sf_blank=sf_blank, equal=equal).action == "none"


@pytest.mark.parametrize(
    ("hs_t", "sf_t", "synced", "action", "why"),
    [
        (NEWER, OLDER, None, "to_salesforce", "hubspot_newer"),
        (OLDER, NEWER, None, "to_hubspot", "salesforce_newer"),
        (None, NEWER, None, "review", "times_missing"),
        (NEWER, None, None, "review", "times_missing"),
        (T0, T0, None, "review", "same_time"),
        # Salesforce stamps whole seconds: HubSpot's .708 in the same second is not newer
        (T0 + timedelta(milliseconds=708), T0, None, "review", "same_time"),
        (NEWER, NEWER + timedelta(hours=1), T0, "review", "both_changed_since_sync"),
        (NEWER, OLDER, T0, "to_salesforce", "hubspot_newer"),  # only HubSpot changed since the sync
        (OLDER, NEWER, T0, "to_hubspot", "salesforce_newer"),
    ],
)
def test_two_way_times(hs_t: Any, sf_t: Any, synced: Any, action: str, why: str) -> None:
    out = decide(
        "two_way",
        hs_blank=False,
        sf_blank=False,
        equal=False,
        hs_time=hs_t,
        sf_time=sf_t,
        last_synced=synced,
    )
    assert out == Outcome(action, why)


def test_unknown_rule_is_a_mapping_error() -> None:
    with pytest.raises(MappingError):
        decide("whatever", hs_blank=False, sf_blank=True, equal=False)


@pytest.mark.parametrize(
    ("direction", "action", "ok"),
    [
        ("two_way", "to_salesforce", True),
        ("two_way", "to_hubspot", True),
        ("hubspot_to_salesforce", "to_salesforce", True),
        ("hubspot_to_salesforce", "to_hubspot", False),
        ("salesforce_to_hubspot", "to_hubspot", True),
        ("salesforce_to_hubspot", "to_salesforce", False),
        ("off", "to_salesforce", False),
        ("off", "to_hubspot", False),
        ("off", "review", False),
        ("two_way", "none", False),
    ],
)
def test_direction_may_forbid_a_write(direction: str, action: str, ok: bool) -> None:
    fm = FieldMap("contacts", "email", "Email", "Lead")
    assert allowed(Outcome(action, "x"), fm, direction) is ok


def test_read_only_side_is_never_written() -> None:
    src = next(m for m in DEFAULT_CONTACT_MAPPINGS if m.hubspot == "hs_analytics_source")
    assert not allowed(Outcome("to_hubspot", "x"), src, "two_way")
    assert allowed(Outcome("to_salesforce", "x"), src, "two_way")


# --------------------------------------------------------------------------- defaults


def test_default_contact_list_is_seed_001() -> None:
    labels = {m.label for m in DEFAULT_CONTACT_MAPPINGS}
    seed = {
        "Account ID",
        "Annual Revenue",
        "City",
        "Mailing City",
        "Company",
        "Owner ID",
        "Country",
        "Mailing Country",
        "Email",
        "Employees",
        "Business Fax",
        "First Name",
        "Industry",
        "Title",
        "Last Name",
        "Lead Source",
        "Contact Description",
        "Email Opt Out",
        "Business Phone",
        "Mailing Zip/Postal Code",
        "Zip/Postal Code",
        "Rating",
        "Salutation",
        "Mailing State/Province",
        "State/Province",
        "Status",
        "Mailing Street",
        "Street",
        "Website",
    }
    assert labels == seed


@pytest.mark.parametrize(
    ("hs", "lead", "contact"),
    [
        ("email", "Email", "Email"),  # shared internal name: syncs to both
        ("city", "City", "MailingCity"),
        ("zip", "PostalCode", "MailingPostalCode"),
        ("salesforceaccountid", None, "AccountId"),  # only on Contact
        ("website", "Website", None),  # only on Lead
        ("hs_lead_status", "Status", None),
    ],
)
def test_default_contact_pairs(hs: str, lead: str | None, contact: str | None) -> None:
    got = {m.salesforce_object: m.salesforce for m in DEFAULT_CONTACT_MAPPINGS if m.hubspot == hs}
    assert got.get("Lead") == lead
    assert got.get("Contact") == contact


def test_defaults_cannot_be_removed_only_switched_off() -> None:
    chk = resolve_mappings(MappingSection(rules={"contacts.fax": "dont_sync"}), schemas())
    fax = [m for m in chk.mappings if m.key == "contacts.fax"]
    assert {m.salesforce_object for m in fax} == {"Lead", "Contact"}
    assert {m.rule for m in fax} == {"dont_sync"}


def test_defaults_fit_the_test_schemas_without_problems() -> None:
    chk = check_mappings(MappingSection(), schemas())
    assert chk.errors == []
    assert all("read-only" in msg for _p, msg in chk.warnings)
    src = [m for m in chk.mappings if m.hubspot == "hs_analytics_source"]
    assert src and not any(m.to_hubspot for m in src)


def test_extras_are_mappings_like_any_other() -> None:
    maps = default_mappings(campaign_property="sf_campaigns")
    assert {m.derived for m in maps} >= {"campaigns", "lifecycle", "account_name"}
    chk = resolve_mappings(
        MappingSection(
            campaign_property="sf_campaigns", rules={"companies.lifecyclestage": "dont_sync"}
        ),
        schemas(),
    )
    life = next(m for m in chk.mappings if m.derived == "lifecycle")
    assert life.rule == "dont_sync"
    assert any(m.derived == "campaigns" and m.hubspot == "sf_campaigns" for m in chk.mappings)


def test_no_schemas_means_no_checks() -> None:
    chk = check_mappings(
        MappingSection(fields=[{"object": "contacts", "hubspot": "x", "salesforce": "X__c"}])
    )
    assert chk.errors == []
    assert {m.salesforce_object for m in chk.mappings if m.hubspot == "x"} == {"Lead", "Contact"}


@pytest.mark.parametrize(
    ("stored", "spec", "kind"),
    [
        ("salesforce", sf_field("X__c", "boolean"), "bool"),
        ("salesforce", sf_field("X__c", "double"), "number"),
        ("salesforce", sf_field("X__c", "multipicklist", picklist=["a", "b"]), "multi"),
        ("salesforce", sf_field("X__c", "phone"), "phone"),
        ("salesforce", sf_field("X__c", "string"), "text"),
        ("hubspot", hs_prop("x", "bool", "booleancheckbox"), "bool"),
        ("hubspot", hs_prop("x", "number", "number"), "number"),
        ("hubspot", hs_prop("x", "date", "date"), "date"),
    ],
)
def test_a_custom_mapping_with_one_schema_stored_takes_its_fields_kind(
    stored: str, spec: dict[str, Any], kind: str
) -> None:
    """The other system's records come from export files (no schema): the field known says
    how the values compare; a default mapping keeps its own kind."""
    sch = schemas()
    if stored == "salesforce":
        sch[("salesforce", "Lead")] = [*sch[("salesforce", "Lead")], spec]
        del sch[("hubspot", "contacts")]
    else:
        sch[("hubspot", "contacts")] = [*sch[("hubspot", "contacts")], spec]
        del sch[("salesforce", "Lead")]
    section = MappingSection(
        fields=[
            {
                "object": "contacts",
                "hubspot": "x",
                "salesforce": "X__c",
                "salesforce_object": "Lead",
            }
        ]
    )
    chk = check_mappings(section, sch)
    assert chk.errors == []
    kinds = {(m.hubspot, m.kind) for m in chk.for_object("contacts", "Lead")}
    assert ("x", kind) in kinds
    assert {("annualrevenue", "number"), ("country", "country"), ("website", "url")} <= kinds


# --------------------------------------------------------------------------- validation


def _section(*fields: dict[str, Any], **kw: Any) -> MappingSection:
    return MappingSection(fields=list(fields), **kw)


BAD = {
    "mapped_twice_hubspot": (
        {
            "object": "contacts",
            "hubspot": "jobtitle",
            "salesforce": "Description",
            "salesforce_object": "Lead",
        },
        "mapped twice",
    ),
    "mapped_twice_salesforce": (
        {
            "object": "contacts",
            "hubspot": "birthday",
            "salesforce": "Title",
            "salesforce_object": "Contact",
        },
        "mapped twice",
    ),
    # Salesforce names are case-insensitive: "title" is Title, mapped by jobtitle already
    "mapped_twice_salesforce_other_case": (
        {
            "object": "contacts",
            "hubspot": "birthday",
            "salesforce": "title",
            "salesforce_object": "Contact",
        },
        "mapped twice",
    ),
    "incompatible_types": (
        {"object": "companies", "hubspot": "founded", "salesforce": "NumberOfEmployees"},
        "incompatible types",
    ),
    "missing_hubspot_property": (
        {
            "object": "contacts",
            "hubspot": "gone_property",
            "salesforce": "Birthdate",
            "salesforce_object": "Contact",
        },
        "missing field",
    ),
    "missing_salesforce_field": (
        {"object": "companies", "hubspot": "founded", "salesforce": "Gone__c"},
        "missing field",
    ),
    "read_only_target": (
        {
            "object": "contacts",
            "hubspot": "hs_object_id",
            "salesforce": "AnnualRevenue",
            "salesforce_object": "Lead",
            "rule": "always_salesforce",
        },
        "read-only target",
    ),
    "read_only_salesforce_target": (
        {
            "object": "contacts",
            "hubspot": "sf_campaigns",
            "salesforce": "Name",
            "salesforce_object": "Lead",
            "rule": "always_hubspot",
        },
        "read-only target",
    ),
    "multi_value_labelled": (
        {
            "object": "contacts",
            "hubspot": "hs_additional_emails",
            "salesforce": "Birthdate",
            "salesforce_object": "Contact",
        },
        "labelled values",
    ),
    "compound_salesforce_field": (
        {
            "object": "contacts",
            "hubspot": "birthday",
            "salesforce": "Address",
            "salesforce_object": "Lead",
        },
        "labelled values",
    ),
    "unsupported_type": (
        {"object": "companies", "hubspot": "founded", "salesforce": "Logo__c"},
        "cannot sync",
    ),
    "option_not_on_target": (
        {
            "object": "companies",
            "hubspot": "type",
            "salesforce": "Industry",
            "rule": "always_hubspot",
            "options": {"PROSPECT": "Technology", "PARTNER": "Nope", "OTHER": "Other"},
        },
        "does not exist on Salesforce",
    ),
    "option_not_on_source": (
        {
            "object": "companies",
            "hubspot": "type",
            "salesforce": "Industry",
            "rule": "always_hubspot",
            "options": {
                "GHOST": "Other",
                "PROSPECT": "Technology",
                "PARTNER": "Banking",
                "OTHER": "Other",
            },
        },
        "does not exist on HubSpot",
    ),
    "unmapped_source_option": (
        {
            "object": "companies",
            "hubspot": "type",
            "salesforce": "Industry",
            "rule": "always_hubspot",
            "options": {"PROSPECT": "Technology"},
        },
        "have no value on Salesforce",
    ),
    "unmapped_target_option": (
        {
            "object": "companies",
            "hubspot": "type",
            "salesforce": "Industry",
            "rule": "always_salesforce",
            "options": {"PROSPECT": "Technology"},
        },
        "have no HubSpot option",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_validation_failure(case: str) -> None:
    fm, needle = BAD[case]
    with pytest.raises(MappingError) as err:
        resolve_mappings(_section(fm), schemas())
    assert any(needle in msg for _p, msg in err.value.problems), err.value.problems
    assert all(p.startswith("mapping.fields[0]") for p, _m in err.value.problems)
    assert err.value.exit_code == 3


@pytest.mark.parametrize("active", [True, False])
def test_an_option_pairs_by_label_only_with_a_salesforce_value_that_can_be_written(
    active: bool,
) -> None:
    """HubSpot's "Gold" pairs with the Salesforce value labelled "Gold"; once that value is
    inactive (Salesforce refuses to write it), the label no longer pairs them: the HubSpot
    option has no value on Salesforce (it used to pair with the inactive one)."""
    sch = schemas()
    sch[("hubspot", "companies")] = [
        *sch[("hubspot", "companies")],
        hs_prop("tier", "enumeration", "select")
        | {"options": [{"value": "gold", "label": "Gold"}]},
    ]
    sch[("salesforce", "Account")] = [
        *sch[("salesforce", "Account")],
        sf_field("Tier__c", "picklist") | {
            "picklistValues": [
                {"value": "G1", "label": "Gold", "active": active},
                {"value": "Platinum", "label": "Platinum", "active": True},
            ]
        },
    ]  # fmt: skip
    fm = {
        "object": "companies",
        "hubspot": "tier",
        "salesforce": "Tier__c",
        "rule": "always_hubspot",
    }
    if active:
        chk = check_mappings(_section(fm), sch)
        assert chk.errors == []
        (m,) = [m for m in chk.for_object("companies", "Account") if m.hubspot == "tier"]
        assert m.options == {"gold": "G1"}
        return
    with pytest.raises(MappingError) as err:
        resolve_mappings(_section(fm), sch)
    assert any(
        "'gold'" in msg and "have no value on Salesforce" in msg for _p, msg in err.value.problems
    )


def test_a_contacts_mapping_for_leads_and_contacts_says_a_problem_once() -> None:
    """Checked for Leads and for Contacts, a missing HubSpot property was the same line twice."""
    fm = {"object": "contacts", "hubspot": "nonexistent_prop", "salesforce": "Title"}
    with pytest.raises(MappingError) as err:
        resolve_mappings(_section(fm), schemas())
    lines = [m for _p, m in err.value.problems if "nonexistent_prop" in m]
    assert len(lines) == 1, err.value.problems


def test_every_problem_is_reported_at_once() -> None:
    cases = [
        BAD[c][0]
        for c in ("incompatible_types", "missing_hubspot_property", "multi_value_labelled")
    ]
    with pytest.raises(MappingError) as err:
        resolve_mappings(_section(*cases, rules={"contacts.nope": "review"}), schemas())
    paths = {p for p, _m in err.value.problems}
    assert {
        "mapping.fields[0]",
        "mapping.fields[1]",
        "mapping.fields[2]",
        "mapping.rules.contacts.nope",
    } <= paths
    assert "mapping.fields[2]" in str(err.value)


def test_a_read_only_target_is_reported_with_a_type_problem() -> None:
    sch = schemas()
    sch[("hubspot", "contacts")] = [
        *sch[("hubspot", "contacts")],
        hs_prop("visits", "number", "number"),
    ]
    sch[("salesforce", "Lead")] = [
        *sch[("salesforce", "Lead")],
        sf_field("Seen__c", "boolean", updateable=False),
    ]
    chk = check_mappings(
        _section({"object": "contacts", "hubspot": "visits", "salesforce": "Seen__c",
                  "salesforce_object": "Lead", "rule": "always_hubspot"}),
        sch,
    )  # fmt: skip
    problems = [m for p, m in chk.errors if p == "mapping.fields[0]"]
    assert any("incompatible types" in m for m in problems), problems
    assert any("read-only target" in m for m in problems), problems


@pytest.mark.parametrize("where", ["entry", "rules"])
def test_a_rule_set_on_a_default_that_writes_a_read_only_side_is_an_error(where: str) -> None:
    """`two_way` on the default HubSpot analytics source ⇄ LeadSource pair (read-only in
    HubSpot) was cut down to one way without a word: the rule is the user's, as in a custom
    mapping, so writing the read-only side is an error where the rule was set."""
    if where == "entry":
        section = _section({"object": "contacts", "hubspot": "hs_analytics_source",
                            "salesforce": "LeadSource", "salesforce_object": "Lead",
                            "rule": "two_way"})  # fmt: skip
        at = "mapping.fields[0]"
    else:
        section = _section(rules={"contacts.hs_analytics_source": "two_way"})
        at = "mapping.rules.contacts.hs_analytics_source"
    chk = check_mappings(section, schemas())
    problems = [m for p, m in chk.errors if p == at]
    assert problems and all(
        "read-only target: hubspot 'hs_analytics_source'" in m for m in problems
    )
    # the default rule reads it only: no problem at all
    assert not [e for e in check_mappings(_section(), schemas()).errors if "hs_analytics" in e[1]]


def test_a_rule_set_on_a_default_the_crm_lacks_still_only_disables_it() -> None:
    """A default pair whose field the CRM lacks stays a warning with a rule of the user's
    (`dont_sync` on a field a portal does not have must not stop every plan)."""
    sch = schemas()
    sch[("hubspot", "contacts")] = [p for p in sch[("hubspot", "contacts")] if p["name"] != "fax"]
    for rule in ("dont_sync", "two_way"):
        chk = check_mappings(_section(rules={"contacts.fax": rule}), sch)
        assert not chk.errors
        assert any("fax" in p and "disabled" in m for p, m in chk.warnings)


@pytest.mark.parametrize(
    ("prop", "says"), [("no_such_prop", "missing field"), ("firstname", "mapped twice")]
)
def test_a_campaign_property_that_does_not_fit_is_an_error_there(prop: str, says: str) -> None:
    """A wrong `[mapping] campaign_property` was a warning on a default mapping's path the
    user never wrote, and campaign sync was off without a word (`recon pull` refused it)."""
    chk = check_mappings(_section(campaign_property=prop), schemas())
    problems = [m for p, m in chk.errors if p == "mapping.campaign_property"]
    assert problems and any(says in m for m in problems), chk.errors
    assert not [w for w in chk.warnings if prop in w[0]]
    assert not check_mappings(_section(campaign_property="sf_campaigns"), schemas()).errors


def test_salesforce_field_names_are_case_insensitive() -> None:
    chk = resolve_mappings(
        _section({"object": "companies", "hubspot": "founded", "salesforce": "founded__C"}),
        schemas(),
    )
    founded = next(m for m in chk.mappings if m.hubspot == "founded")
    assert founded.salesforce == "Founded__c"  # describe's spelling, as the API answers


def test_one_default_pair_named_twice_is_an_error() -> None:
    entry = {"object": "companies", "hubspot": "type", "salesforce": "Type"}
    chk = check_mappings(
        _section({**entry, "rule": "always_hubspot"}, {**entry, "rule": "review"}), schemas()
    )
    assert [p for p, m in chk.errors if "mapped twice" in m] == ["mapping.fields[1]"]


def test_a_rule_given_at_an_entry_and_in_rules_differently_is_an_error() -> None:
    """`[mapping] rules` used to win over the entry's own rule without a word (the plan
    wrote the other way round from what the entry asked for)."""
    from recon.config import MappingSection

    entry = {"object": "companies", "hubspot": "city", "salesforce": "BillingCity"}
    section = MappingSection(
        fields=[{**entry, "rule": "always_salesforce"}],
        rules={"companies.city": "always_hubspot"},
    )
    chk = check_mappings(section, schemas())
    assert [(p, m) for p, m in chk.errors if "keep one" in m] == [
        (
            "mapping.fields[0]",
            "rule 'always_salesforce' here, but mapping.rules.companies.city says "
            "'always_hubspot': keep one",
        )
    ]
    same = MappingSection(
        fields=[{**entry, "rule": "always_hubspot"}], rules={"companies.city": "always_hubspot"}
    )
    assert not check_mappings(same, schemas()).errors


def test_default_rule_applies_to_the_default_mappings() -> None:
    chk = resolve_mappings(
        _section(
            {"object": "companies", "hubspot": "type", "salesforce": "Type",
             "options": {"PARTNER": "Partner"}},  # options only: the rule stays
            default_rule="review",
        ),
        schemas(),
    )  # fmt: skip
    rules = {m.key: m.rule for m in chk.mappings}
    assert (
        rules["companies.industry"]
        == rules["companies.type"]
        == rules["contacts.email"]
        == "review"
    )
    # the connector's one-way extras keep their own rule
    assert [m.rule for m in chk.mappings if m.derived == "lifecycle"] == ["always_salesforce"]


def test_valid_custom_mappings_and_overrides() -> None:
    sec = _section(
        {
            "object": "contacts",
            "hubspot": "birthday",
            "salesforce": "Birthdate",
            "salesforce_object": "Contact",
            "rule": "two_way",
        },
        {"object": "companies", "hubspot": "founded", "salesforce": "Founded__c"},
        {
            "object": "companies",
            "hubspot": "type",
            "salesforce": "Type",
            "options": {"PARTNER": "Partner"},
        },  # names a default pair: overrides its options
    )
    chk = resolve_mappings(sec, schemas())
    bday = next(m for m in chk.mappings if m.hubspot == "birthday")
    assert (bday.kind, bday.rule, bday.default) == ("date", "two_way", False)
    typ = next(m for m in chk.mappings if m.key == "companies.type")
    assert (
        typ.default
        and typ.options["PARTNER"] == "Partner"
        and typ.options["PROSPECT"] == "Prospect"
    )


def test_problems_with_a_default_only_disable_it() -> None:
    sch = schemas()
    sch[("salesforce", "Lead")] = [f for f in sch[("salesforce", "Lead")] if f["name"] != "Fax"]
    chk = resolve_mappings(MappingSection(), sch)
    assert not [m for m in chk.mappings if m.salesforce_object == "Lead" and m.salesforce == "Fax"]
    assert any("Fax" in msg and "disabled" in msg for _p, msg in chk.warnings)


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"default_rule": "newest"}, "mapping.default_rule"),
        ({"rules": {"contacts.email": "sometimes"}}, "mapping.rules.contacts.email"),
        (
            {
                "fields": [
                    {
                        "object": "companies",
                        "hubspot": "x",
                        "salesforce": "Y",
                        "salesforce_object": "Lead",
                    }
                ]
            },
            "mapping.fields[0]",
        ),
        ({"companies": "sideways"}, "mapping.companies"),
        # a typo in the master rule's order was accepted, and that object ranked last
        ({"source_priority": ["Opportunity", "Lead"]}, "mapping.source_priority[0]"),
    ],
)
def test_config_level_errors(bad: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides={"mapping": bad})
    assert any(p.startswith(path) for p, _m in err.value.problems)


# --------------------------------------------------------------------------- schema kinds


@pytest.mark.parametrize(
    ("source", "spec", "kind"),
    [
        ("hubspot", hs_prop("a"), "text"),
        ("hubspot", hs_prop("a", "number", "number"), "number"),
        ("hubspot", hs_prop("a", "date", "date"), "date"),
        ("hubspot", hs_prop("a", "datetime", "date"), "datetime"),
        ("hubspot", hs_prop("a", "bool", "booleancheckbox"), "bool"),
        ("hubspot", hs_prop("a", "enumeration", "booleancheckbox"), "bool"),
        ("hubspot", hs_prop("a", "enumeration", "select"), "enum"),
        ("hubspot", hs_prop("a", "enumeration", "radio"), "enum"),
        ("hubspot", hs_prop("a", "enumeration", "checkbox"), "multi"),
        ("hubspot", hs_prop("hubspot_owner_id", "enumeration", "select"), "owner"),
        ("hubspot", hs_prop("a", "phone_number", "phonenumber"), "text"),
        ("hubspot", hs_prop("a", "weird", "x"), "unknown"),
        ("salesforce", sf_field("A", "string"), "text"),
        ("salesforce", sf_field("A", "email"), "text"),
        ("salesforce", sf_field("A", "currency"), "number"),
        ("salesforce", sf_field("A", "int"), "number"),
        ("salesforce", sf_field("A", "boolean"), "bool"),
        ("salesforce", sf_field("A", "date"), "date"),
        ("salesforce", sf_field("A", "datetime"), "datetime"),
        ("salesforce", sf_field("A", "picklist"), "enum"),
        ("salesforce", sf_field("A", "multipicklist"), "multi"),
        ("salesforce", sf_field("OwnerId", "reference", referenceTo=["User"]), "owner"),
        ("salesforce", sf_field("AccountId", "reference", referenceTo=["Account"]), "reference"),
        ("salesforce", sf_field("A", "address"), "compound"),
        ("salesforce", sf_field("A", "base64"), "unknown"),
    ],
)
def test_field_kinds(source: str, spec: dict[str, Any], kind: str) -> None:
    assert field_info(source, spec).kind == kind


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("number", "17", 17.0),
        ("number", "1,000.50", 1000.5),
        ("bool", "true", True),
        ("bool", "false", False),
        ("date", "2024-01-02", "2024-01-02T10:00:00Z"),
        ("datetime", "2024-01-02T03:04:05.000+0000", "2024-01-02T03:04:05Z"),
        ("datetime", "1704164645000", "2024-01-02T03:04:05Z"),
        ("multi", "b;a", "a;b"),
        ("text", " Acme ", "Acme"),
    ],
)
def test_values_equal_after_normalisation(kind: str, a: Any, b: Any) -> None:
    assert norm(kind, a) == norm(kind, b)


@pytest.mark.parametrize("blank", [None, "", "   ", []])
def test_blank_values(blank: Any) -> None:
    assert norm("text", blank) is None


def test_zero_and_false_are_values() -> None:
    assert norm("number", 0) == 0.0
    assert norm("bool", "false") is False


@pytest.mark.parametrize(
    ("kind", "value", "hs", "sf"),
    [
        ("number", 17.0, "17", 17),
        ("number", 2.5, "2.5", 2.5),
        ("bool", True, "true", True),
        ("multi", ("a", "b"), "a;b", "a;b"),
        ("date", "2024-01-02", "2024-01-02", "2024-01-02"),
    ],
)
def test_conversions(kind: str, value: Any, hs: Any, sf: Any) -> None:
    assert for_hubspot(kind, value) == hs
    assert for_salesforce(kind, value) == sf


def test_options_and_owners_compare_across_systems() -> None:
    om = OwnerMap([("hubspot", "7", "ann@corp.com"), ("salesforce", "005A", "ANN@corp.com")])
    owner = FieldMap("contacts", "hubspot_owner_id", "OwnerId", "Lead", kind="owner")
    status = next(m for m in DEFAULT_CONTACT_MAPPINGS if m.hubspot == "hs_lead_status")
    assert values_equal(owner, "7", "005A", om)
    assert not values_equal(owner, "7", "005B", om)
    assert values_equal(status, "CONNECTED", "Working - Contacted", om)
    assert not values_equal(status, "NEW", "Working - Contacted", om)
    multi = FieldMap("contacts", "interests", "Interests__c", "Lead", kind="multi")
    # one set of options, spelt in other cases and orders
    assert values_equal(multi, norm("multi", "b;A"), norm("multi", "a;B"), om)
    assert not values_equal(multi, norm("multi", "a;b"), norm("multi", "a;c"), om)


def test_a_wrong_option_written_for_a_default_pair_is_an_error_at_its_entry() -> None:
    entry = {"object": "companies", "hubspot": "industry", "salesforce": "Industry",
             "options": {"NOPE": "Technology"}}  # fmt: skip
    with pytest.raises(MappingError) as err:
        resolve_mappings(_section(entry), schemas())
    assert err.value.exit_code == 3
    assert any(p == "mapping.fields[0]" and "'NOPE'" in m for p, m in err.value.problems), (
        err.value.problems
    )
    # the same default pair named with a rule only stays a default: no error
    fine = resolve_mappings(
        _section({"object": "companies", "hubspot": "industry", "salesforce": "Industry",
                  "rule": "always_salesforce"}),
        schemas(),
    )  # fmt: skip
    assert any(m.hubspot == "industry" for m in fine.mappings)


def test_a_rule_that_can_never_write_is_warned_about() -> None:
    """`always_salesforce` writes to HubSpot only; the default LeadSource mapping syncs into
    Salesforce only: together nothing ever syncs, which a warning says."""
    chk = check_mappings(
        MappingSection(rules={"contacts.hs_analytics_source": "always_salesforce"})
    )
    said = [m for path, m in chk.warnings if "hs_analytics_source" in path and "never syncs" in m]
    assert len(said) == 2 and "pick a rule that writes to salesforce" in said[0]
    assert not [m for _p, m in check_mappings(MappingSection()).warnings if "never syncs" in m]


def test_options_on_a_mapping_that_is_no_picklist_are_warned_about() -> None:
    sch = schemas()
    sch[("hubspot", "contacts")] = [
        *sch[("hubspot", "contacts")],
        hs_prop("visits", "number", "number"),
    ]
    sch[("salesforce", "Lead")] = [*sch[("salesforce", "Lead")], sf_field("Visits__c", "double")]
    chk = check_mappings(
        _section({"object": "contacts", "hubspot": "visits", "salesforce": "Visits__c",
                  "salesforce_object": "Lead", "options": {"a": "b"}}),
        sch,
    )  # fmt: skip
    assert not chk.errors
    assert any("not a picklist: they are ignored" in m for _p, m in chk.warnings), chk.warnings


def test_options_mapping_several_hubspot_values_to_one_are_warned_about() -> None:
    """The way back is ambiguous: a Salesforce "Technology" becomes the first HubSpot value
    mapped to it, which the warning names."""
    chk = check_mappings(
        _section({"object": "companies", "hubspot": "industry", "salesforce": "Industry",
                  "options": {"TECHNOLOGY": "Technology", "OTHER": "Technology"}}),
        schemas(),
    )  # fmt: skip
    said = [m for _p, m in chk.warnings if "options map" in m]
    assert said == [
        "options map 'OTHER', 'TECHNOLOGY' to 'Technology': a Salesforce 'Technology' "
        "is written to HubSpot as 'OTHER' (a HubSpot value among them is left as it is); "
        "map one of them only if another is meant"
    ], chk.warnings
