"""Merges of duplicate clusters: each master rule, survivorship, order, blocked merges."""

from __future__ import annotations

from typing import Any

import pytest
from plan_testdata import EMAIL, World, by

from recon.config import load_config
from recon.plan import approved_items, build_plan, survivorship
from recon.plan_merge import MASTER_RULES


def cfg(**mapping: Any) -> Any:
    hubspot = mapping.pop("hubspot", {})
    return load_config(
        None, overrides={"mapping": {"create_missing": False, **mapping}, "hubspot": hubspot}
    )


def company_cluster(w: World) -> str:
    """Three HubSpot duplicates; each master rule picks a different one."""
    w.snap(
        "hubspot",
        "companies",
        "A",
        {"name": "Acme", "phone": None, "city": "Oslo"},
        name="Acme",
        created_at="2020-01-01T00:00:00Z",
        modified_at="2021-01-01T00:00:00Z",
    )
    w.snap(
        "hubspot",
        "companies",
        "B",
        {
            "name": "ACME AS",
            "phone": "+47 1",
            "city": "Bergen",
            "zip": "5003",
            "industry": "OTHER",
            "description": "x",
        },
        name="ACME AS",
        created_at="2022-01-01T00:00:00Z",
        modified_at="2022-06-01T00:00:00Z",
    )
    w.snap(
        "hubspot",
        "companies",
        "C",
        {"name": "Acme"},
        name="Acme",
        created_at="2023-01-01T00:00:00Z",
        modified_at="2024-09-01T00:00:00Z",
    )
    w.snap("salesforce", "Account", "001C", {"Name": "Acme"}, name="Acme")
    w.link("companies", "C", "Account", "001C")
    for n in range(3):
        w.db["associations"].insert(
            {
                "source": "hubspot",
                "from_object": "contacts",
                "from_id": f"c{n}",
                "to_object": "companies",
                "to_id": "B" if n else "A",
            }
        )
    return w.cluster(
        "cl-1", "companies", "hubspot", [("companies", "A"), ("companies", "B"), ("companies", "C")]
    )


@pytest.mark.parametrize(
    ("rule", "master"),
    [
        ("oldest", "A"),
        ("most_recent", "C"),
        ("most_complete", "B"),
        ("most_associated", "B"),
        ("source_priority", "C"),  # the one linked to Salesforce
    ],
)
def test_master_rules(rule: str, master: str) -> None:
    w = World()
    cid = company_cluster(w)
    w.done()
    res = build_plan(w.db, cfg(master_rule=rule))
    (item,) = by(res.items, action="merge")
    p = item["payload"]
    assert (item["record_id"], p["master"]) == (master, master)
    assert sorted([p["master"], *p["victims"]]) == ["A", "B", "C"]
    assert item["requires"] == [cid] and item["link_item_id"] == cid
    assert item["reason"]["rule"] == rule and p["rule"] == rule and p["irreversible"]


@pytest.mark.parametrize(
    ("rule", "stale", "master"),
    [
        ("oldest", "A", "B"),
        ("most_recent", "C", "B"),
        ("most_complete", "B", "A"),
        ("most_associated", "B", "A"),
        ("source_priority", "C", "A"),
    ],
)
def test_a_copy_marked_stale_is_never_the_master_while_a_live_record_is_left(
    rule: str, stale: str, master: str
) -> None:
    """The record a rule would keep is the one an admin marked "DO NOT USE": merging into it
    would delete the live records, so the next one in the rule's order survives."""
    w = World()
    company_cluster(w)
    w.db.execute("update snapshots set name = 'DO NOT USE - ' || name where record_id = ?", [stale])
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule=rule)).items, action="merge")
    assert item["payload"]["master"] == master
    assert item["payload"]["order"][-1] == stale
    assert item["reason"]["stale_copies"] == [stale]


def test_most_associated_leaves_archived_records_out() -> None:
    """B's two contacts were archived: they made B the master by association count."""
    w = World()
    company_cluster(w)  # B has contacts c1 and c2, A has c0
    for rid in ("c1", "c2"):
        w.snap("hubspot", "contacts", rid, {"email": f"{rid}@x.com"}, archived=1)
    w.snap("hubspot", "contacts", "c0", {"email": "c0@x.com"})
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule="most_associated")).items, action="merge")
    assert item["payload"]["master"] == "A"


def test_every_master_rule_is_tested() -> None:
    assert set(MASTER_RULES) == {
        "oldest",
        "most_recent",
        "most_complete",
        "most_associated",
        "source_priority",
    }


def test_survivorship_fills_blanks_from_the_ranked_members() -> None:
    w = World()
    company_cluster(w)
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule="oldest")).items, action="merge")
    p = item["payload"]
    assert p["fields"]["phone"] == "+47 1"  # master A has none: first non-blank by rank
    assert "city" not in p["fields"]  # master keeps its own value
    assert p["survivorship"]["city"] == {"value": "Oslo", "from": "A", "why": "master"}
    assert p["survivorship"]["phone"]["why"] == "first_non_blank"
    assert item["before"] == {f: None for f in p["fields"]}


@pytest.mark.parametrize("campaign_property", [None, "sf_campaigns"])
def test_most_associated_counts_campaign_memberships_whatever_the_mappings(
    campaign_property: str | None,
) -> None:
    w = World()
    for rid, year in (("00Q1", "2020"), ("00Q2", "2021")):
        w.snap("salesforce", "Lead", rid, {"Email": EMAIL, "LastName": "A"}, email=EMAIL,
               created_at=f"{year}-01-01T00:00:00Z")  # fmt: skip
    for k, camp in enumerate(("701A", "701B")):
        w.snap("salesforce", "Campaign", camp, {"Name": camp}, name=camp)
        w.snap("salesforce", "CampaignMember", f"00v{k}", {"CampaignId": camp, "LeadId": "00Q2"})
    w.cluster("cl-1", "contacts", "salesforce", [("Lead", "00Q1"), ("Lead", "00Q2")])
    w.done()
    extra = {"campaign_property": campaign_property} if campaign_property else {}
    c = cfg(create_missing=False, master_rule="most_associated", **extra)
    (item,) = by(build_plan(w.db, c).items, action="merge")
    assert item["payload"]["master"] == "00Q2"  # two campaign memberships, the other none


def test_survivorship_never_writes_a_read_only_property() -> None:
    w = World()
    for rid, source, year in (("1", None, "2020"), ("2", "PAID_SEARCH", "2021")):
        data = {"email": EMAIL, "hs_analytics_source": source}
        w.snap("hubspot", "contacts", rid, data, email=EMAIL, created_at=f"{year}-01-01T00:00:00Z")
    w.cluster("cl-1", "contacts", "hubspot", [("contacts", "1"), ("contacts", "2")])
    w.done()
    (item,) = by(build_plan(w.db, cfg(create_missing=False)).items, action="merge")
    # hs_analytics_source is read-only in HubSpot (schemas()): HubSpot would refuse the write
    assert "hs_analytics_source" not in item["payload"]["fields"]
    assert "hs_analytics_source" not in item["payload"]["survivorship"]


def test_reviewer_master_and_field_choices_override() -> None:
    w = World()
    cid = company_cluster(w)
    w.decide(cid, "master", "approve", {"master": "C", "fields": {"city": "Trondheim"}})
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule="oldest")).items, action="merge")
    p = item["payload"]
    assert p["master"] == "C" and item["reason"]["master_chosen_by"] == "reviewer"
    assert p["fields"]["city"] == "Trondheim" and p["survivorship"]["city"]["why"] == "override"
    w.decide(item["item_id"], "conflict_value", "approve", {"phone": "+47 9"})
    (again,) = by(build_plan(w.db, cfg(master_rule="oldest")).items, action="merge")
    assert again["item_id"] == item["item_id"] and again["payload"]["fields"]["phone"] == "+47 9"


def test_a_master_chosen_after_the_plan_brings_its_own_before_values_and_time() -> None:
    w = World()
    cid = company_cluster(w)
    w.decide(cid, "duplicate", "match")
    w.done()
    res = build_plan(w.db, cfg(master_rule="oldest"))
    (planned,) = by(res.items, action="merge")
    assert planned["record_id"] == "A"
    w.decide(cid, "master", "approve", {"master": "B"}, at="2024-08-01T00:00:00Z")
    (merge,) = [i for i in approved_items(w.db, res.run_id) if i["action"] == "merge"]
    fields = merge["payload"]["fields"]
    assert merge["record_id"] == "B" and merge["after"] == fields
    # B's own values are what the merge replaces, and B's time is what it was computed from
    values = merge["payload"]["values"]
    assert merge["before"] == {f: values[f]["B"] for f in fields}
    assert merge["snapshot_modified_at"] == "2022-06-01T00:00:00Z"
    assert merge["reason"]["master_chosen_by"] == "reviewer"


def test_a_master_choice_outside_the_cluster_falls_back_to_the_rule_and_says_so() -> None:
    w = World()
    cid = company_cluster(w)
    w.decide(cid, "master", "approve", {"master": "ZZZ"})
    w.done()
    res = build_plan(w.db, cfg(master_rule="oldest"))
    (item,) = by(res.items, action="merge")
    assert item["payload"]["master"] == "A" and item["reason"]["master_chosen_by"] == "rule"
    assert res.skipped["master_choice_not_a_member"] == 1


def test_a_chosen_value_applies_to_a_field_all_members_agree_on() -> None:
    w = World()
    for rid, year in (("A", "2020"), ("B", "2021")):
        w.snap("hubspot", "companies", rid, {"name": "Acme", "city": "Oslo"}, name="Acme",
               created_at=f"{year}-01-01T00:00:00Z")  # fmt: skip
    cid = w.cluster("cl-1", "companies", "hubspot", [("companies", "A"), ("companies", "B")])
    w.decide(cid, "master", "approve", {"master": "A", "fields": {"city": "Trondheim"}})
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule="oldest")).items, action="merge")
    assert item["payload"]["fields"] == {"city": "Trondheim"}
    assert item["before"] == {"city": "Oslo"}


def test_a_record_in_two_clusters_blocks_the_later_merge() -> None:
    w = World()
    for rid in ("A", "B", "D"):
        w.snap("hubspot", "companies", rid, {"name": "Acme"}, name="Acme")
    w.cluster("cl-1", "companies", "hubspot", [("companies", "A"), ("companies", "B")])
    w.cluster("cl-2", "companies", "hubspot", [("companies", "B"), ("companies", "D")])
    w.done()
    merges = by(build_plan(w.db, cfg()).items, action="merge")
    assert [
        (m["link_item_id"], m["status"]) for m in sorted(merges, key=lambda m: m["link_item_id"])
    ] == [
        ("cl-1", "proposed"),
        ("cl-2", "blocked"),
    ]


def test_salesforce_merges_run_first_and_connector_blocks_hubspot_company_merges() -> None:
    w = World()
    company_cluster(w)
    for rid, created in (("001X", "2020-01-01T00:00:00Z"), ("001Y", "2021-01-01T00:00:00Z")):
        w.snap("salesforce", "Account", rid, {"Name": "Dup"}, name="Dup", created_at=created)
    w.cluster("cl-2", "companies", "salesforce", [("Account", "001X"), ("Account", "001Y")])
    w.done()
    free = build_plan(w.db, cfg())
    merges = by(free.items, action="merge")
    assert [m["system"] for m in merges] == ["salesforce", "hubspot"]
    assert merges[0]["seq"] < merges[1]["seq"]
    assert {m["status"] for m in merges} == {"proposed"}
    blocked = build_plan(w.db, cfg(hubspot={"salesforce_connector_active": True}))
    hs = by(blocked.items, action="merge", system="hubspot")[0]
    assert hs["status"] == "blocked" and hs["reason"]["why"].startswith("connector_active")
    assert by(blocked.items, action="merge", system="salesforce")[0]["status"] == "proposed"


def test_mixed_lead_and_contact_cluster_is_blocked() -> None:
    w = World()
    w.snap("salesforce", "Lead", "00Q1", {"Email": "a@x.com", "LastName": "A"}, email="a@x.com")
    w.snap("salesforce", "Contact", "0031", {"Email": "a@x.com", "LastName": "A"}, email="a@x.com")
    w.cluster("cl-3", "contacts", "salesforce", [("Lead", "00Q1"), ("Contact", "0031")])
    w.done()
    (item,) = by(build_plan(w.db, cfg()).items, action="merge")
    assert item["status"] == "blocked" and "convert the Leads" in item["reason"]["why"]


def test_cluster_with_an_archived_member_left_is_skipped() -> None:
    w = World()
    w.snap("hubspot", "contacts", "1", {"email": "a@x.com"}, email="a@x.com")
    w.snap("hubspot", "contacts", "2", {"email": "a@x.com"}, email="a@x.com", archived=1)
    w.cluster("cl-4", "contacts", "hubspot", [("contacts", "1"), ("contacts", "2")])
    w.done()
    res = build_plan(w.db, cfg())
    assert by(res.items, action="merge") == [] and res.skipped["cluster_too_small"] == 1


@pytest.mark.parametrize(
    ("values", "overrides", "writes"),
    [
        ({"phone": {"m": "1", "v": "2"}}, None, {}),
        ({"phone": {"m": None, "v": "2"}}, None, {"phone": "2"}),
        ({"phone": {"m": "1", "v": "2"}}, {"phone": "3"}, {"phone": "3"}),
        ({"phone": {"m": "1", "v": None}}, {"phone": ""}, {}),  # a blank override never blanks
    ],
)
def test_survivorship_function(
    values: dict[str, Any], overrides: Any, writes: dict[str, Any]
) -> None:
    assert survivorship("m", ["m", "v"], values, overrides)[0] == writes


@pytest.mark.parametrize(
    ("field", "a", "b", "differ"),
    [
        ("website", "https://www.acme.com/", "acme.com", False),  # one site spelt two ways
        ("website", "acme.com", "acme.de", True),
        ("phone", "+47 22 33 44 55", "0047 22334455", False),  # one number
        ("phone", "+47 22 33 44 55", "+47 22 33 44 56", True),
        ("country", "Norway", "NO", False),
        ("country", "Norway", "Sweden", True),
        ("city", "Oslo", "oslo", True),  # text compares as text
    ],
)
def test_merge_values_list_only_fields_that_differ_as_values(
    field: str, a: str, b: str, differ: bool
) -> None:
    w = World()
    for rid, value in (("A", a), ("B", b)):
        w.snap("hubspot", "companies", rid, {"name": "Acme", field: value}, name="Acme")
    w.cluster("cl-1", "companies", "hubspot", [("companies", "A"), ("companies", "B")])
    w.done()
    (item,) = by(build_plan(w.db, cfg()).items, action="merge")
    assert (field in item["payload"]["values"]) is differ


def test_survivorship_writes_a_field_synced_one_way_only() -> None:
    """The Contact's AccountId is synced Salesforce → HubSpot only, yet a merge of two
    Contacts keeps it: the mapping's direction says nothing of what Salesforce lets a merge write."""
    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    w.snap("salesforce", "Contact", "003A", {"Email": EMAIL, "LastName": "Jo"}, email=EMAIL,
           created_at="2020-01-01T00:00:00.000Z")  # fmt: skip
    w.snap("salesforce", "Contact", "003B", {"Email": EMAIL, "LastName": "Jo", "AccountId": "001A"},
           email=EMAIL, account_id="001A")  # fmt: skip
    w.cluster("cl", "contacts", "salesforce", [("Contact", "003A"), ("Contact", "003B")])
    w.done()
    (item,) = by(build_plan(w.db, cfg(create_missing=False)).items, action="merge")
    assert item["record_id"] == "003A" and item["payload"]["fields"] == {"AccountId": "001A"}


def test_the_review_shows_what_survives_under_the_master_the_reviewer_chose() -> None:
    """ "Survives now" is what the merge will write: survivorship for the chosen master."""
    from recon.review_detail import item_detail

    w = World()
    cid = company_cluster(w)
    w.done()
    res = build_plan(w.db, cfg(master_rule="oldest"))
    (planned,) = by(res.items, action="merge")
    assert planned["record_id"] == "A"
    assert item_detail(w.db, cid)["master"]["survivors"]["city"] == "Oslo"  # A's
    w.decide(cid, "master", "approve", {"master": "B"})
    master = item_detail(w.db, cid)["master"]
    assert (master["record_id"], master["by"]) == ("B", "reviewer")
    assert master["survivors"]["city"] == "Bergen"  # B's own, as the merge will keep
    w.decide(planned["item_id"], "conflict_value", "approve", {"city": "Trondheim"})
    assert item_detail(w.db, cid)["master"]["survivors"]["city"] == "Trondheim"


def test_a_merge_watches_the_consent_flags_its_members_agree_on() -> None:
    """Apply re-reads them on the victims (an opt-out ticked after review makes the merge
    stale); flags the members disagree on are survivorship's."""
    w = World()
    for rid in ("003A", "003B"):
        w.snap("salesforce", "Contact", rid,
               {"Email": EMAIL, "LastName": "A", "HasOptedOutOfEmail": False, "DoNotCall": rid == "003B"},
               email=EMAIL)  # fmt: skip
    w.cluster("cl-1", "contacts", "salesforce", [("Contact", "003A"), ("Contact", "003B")])
    w.done()
    (item,) = by(build_plan(w.db, cfg(master_rule="oldest")).items, action="merge")
    p = item["payload"]
    assert p["watch"]["HasOptedOutOfEmail"] == {"003A": False, "003B": False}
    assert "DoNotCall" not in p["watch"]
