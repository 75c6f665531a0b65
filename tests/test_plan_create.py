"""Creates of unmatched records and contact ⇄ company associations in the plan."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plan_testdata import EMAIL, World, by, cfg, linked_contact, plan

from recon.config import load_config
from recon.models import stable_id
from recon.plan import build_plan

# --------------------------------------------------------------------------- creates


@pytest.mark.parametrize("label", ["non_match", "match"])
def test_a_rejected_link_leaves_both_records_to_create(label: str) -> None:
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo"}, email=EMAIL)
    w.snap(
        "salesforce", "Lead", "00QA", {"Email": "joe@o.com", "LastName": "Jo"}, email="joe@o.com"
    )
    pair = w.link("contacts", "201", "Lead", "00QA", tier="review", score=0.6)
    w.decide(pair, "link", label)
    res = plan(w, cfg())
    creates = sorted((i["system"], i["object"]) for i in by(res.items, action="create"))
    if label == "match":
        assert creates == [] and by(res.items, link_item_id=pair)
    else:  # two people: each is created on the other side, nothing follows the link
        assert creates == [("hubspot", "contacts"), ("salesforce", "Lead")]
        assert not by(res.items, link_item_id=pair) and res.skipped["link_rejected"] == 1


@pytest.mark.parametrize("kind", ["duplicate", "split"])
def test_a_rejected_cluster_is_not_merged_and_its_records_are_created(kind: str) -> None:
    w = World()
    for rid, name in (("K1", "A"), ("K2", "B")):
        email = f"{name.lower()}@x.com"
        w.snap("hubspot", "contacts", rid, {"email": email, "lastname": name}, email=email)
    w.cluster("cl-1", "contacts", "hubspot", [("contacts", "K1"), ("contacts", "K2")], "review")
    w.decide("cl-1", kind, "non_match")
    res = plan(w, cfg())
    assert not by(res.items, action="merge") and res.skipped["cluster_rejected"] == 1
    assert sorted(i["payload"]["source"]["record_id"] for i in by(res.items, action="create")) == [
        "K1",
        "K2",
    ]


def test_a_company_linked_to_an_archived_account_places_no_contact_under_it() -> None:
    w = World()
    w.snap("hubspot", "companies", "C", {"name": "Acme"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", archived=1)
    w.link("companies", "C", "Account", "001A")
    for rid in ("K", "L"):  # K unlinked, L linked to a Contact without an Account
        email = f"{rid.lower()}@acme.com"
        w.snap("hubspot", "contacts", rid, {"email": email, "lastname": rid}, email=email,
               account_id="C")  # fmt: skip
    w.snap("salesforce", "Contact", "003L", {"Email": "l@acme.com", "LastName": "L"})
    w.link("contacts", "L", "Contact", "003L")
    res = plan(w, cfg(new_contact_as="Contact"))
    (create,) = by(res.items, action="create")
    # not a Contact of the deleted Account: a Lead, as for a company with no Account
    assert (create["object"], create["payload"]["fields"].get("AccountId")) == ("Lead", None)
    assert not by(res.items, action="associate")


def test_new_hubspot_contact_becomes_a_lead_with_keys() -> None:
    w = World()
    w.snap(
        "hubspot",
        "contacts",
        "300",
        {"email": "New@X.com", "firstname": "Nia", "hubspot_owner_id": "7"},
        email="New@X.com",
    )
    res = plan(w, cfg())
    (item,) = res.items
    assert (item["action"], item["system"], item["object"], item["seq"]) == (
        "create",
        "salesforce",
        "Lead",
        40,
    )
    p = item["payload"]
    assert p["fields"] == {
        "Email": "New@X.com",
        "FirstName": "Nia",
        "OwnerId": "005A",
        "LastName": "[not provided]",
        "Company": "[not provided]",
    }
    assert p["natural_key"] == {"email": "new@x.com"}
    assert p["idempotency_key"] == stable_id("recon-create", "hubspot", "contacts", "300")
    assert item["requires"] == [item["item_id"]]


def test_a_record_an_earlier_apply_created_a_copy_of_is_not_created_again() -> None:
    """A --sample pull has not read the copy yet: planning its create again would send it
    again (an upsert overwriting later edits of the copy)."""
    w = World()
    w.snap(
        "hubspot", "contacts", "300", {"email": "new@x.com", "firstname": "Nia"}, email="new@x.com"
    )
    (item,) = plan(w, cfg()).items
    w.db["journal"].insert(
        {"run_id": "apply-1", "item_id": item["item_id"], "plan_run_id": "plan-1",
         "state": "confirmed", "item": json.dumps(item)},
    )  # fmt: skip
    again = plan(w, cfg())
    assert again.items == [] and again.skipped["create_done_before"] == 1


def test_new_contact_as_contact_when_its_company_is_linked() -> None:
    w = World()
    w.snap("hubspot", "companies", "101", {"name": "Acme"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    cpair = w.link("companies", "101", "Account", "001A")
    w.snap(
        "hubspot",
        "contacts",
        "300",
        {"email": "n@acme.com", "lastname": "Ng"},
        email="n@acme.com",
        account_id="101",
    )
    w.snap("hubspot", "contacts", "301", {"email": "m@other.com"}, email="m@other.com")
    res = plan(w, cfg(new_contact_as="Contact"))
    contact = by(res.items, action="create", object="Contact")[0]
    assert contact["payload"]["fields"]["AccountId"] == "001A"
    assert contact["requires"] == [contact["item_id"], cpair]
    lead = by(res.items, action="create", object="Lead")[0]  # its company is not linked
    assert lead["payload"]["source"]["record_id"] == "301"


def test_salesforce_records_become_hubspot_contacts_once_with_association() -> None:
    w = World()
    w.snap(
        "salesforce",
        "Account",
        "001N",
        {"Name": "Newco", "Website": "newco.io"},
        name="Newco",
        domain="newco.io",
    )
    w.snap(
        "salesforce",
        "Contact",
        "003N",
        {"Email": "x@newco.io", "LastName": "X", "AccountId": "001N"},
        email="x@newco.io",
        account_id="001N",
    )
    w.snap(
        "salesforce", "Lead", "00QN", {"Email": "X@newco.io", "LastName": "X"}, email="X@newco.io"
    )
    w.snap("salesforce", "Lead", "00QE", {"LastName": "No email"})
    res = plan(w, cfg())
    creates = by(res.items, action="create")
    assert sorted((i["object"], i["payload"]["source"]["record_id"]) for i in creates) == [
        ("companies", "001N"),
        ("contacts", "003N"),
    ]
    company = by(creates, object="companies")[0]
    assert company["seq"] < by(creates, object="contacts")[0]["seq"]
    (assoc,) = by(res.items, action="associate")
    contact = by(creates, object="contacts")[0]
    assert assoc["payload"]["from"] == {"object": "contacts", "create_item_id": contact["item_id"]}
    assert assoc["payload"]["to"] == {"object": "companies", "create_item_id": company["item_id"]}
    assert assoc["seq"] == 70 and set(assoc["requires"]) == {contact["item_id"], company["item_id"]}
    assert res.skipped["create_natural_key_exists"] == 1 and res.skipped["create_no_email"] == 1


@pytest.mark.parametrize("placeholder", ["[not provided]", " [not provided] "])
def test_the_not_provided_placeholder_is_not_copied_into_a_create(placeholder: str) -> None:
    """A Lead the connector made from a HubSpot contact without a last name or company holds
    "[not provided]" there: no value (blank everywhere else in the plan), yet a HubSpot
    contact created from such a Lead was given it as its last name and company."""
    w = World()
    lead = {"Email": "z@x.com", "FirstName": "Zoe", "LastName": placeholder, "Company": placeholder}
    w.snap("salesforce", "Lead", "00QZ", lead, email="z@x.com")
    res = plan(w, cfg(contacts="salesforce_to_hubspot"))
    (create,) = by(res.items, action="create")
    assert create["after"] == {"email": "z@x.com", "firstname": "Zoe"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"salesforce", "hubspot"}),
        ({"contacts": "hubspot_to_salesforce"}, {"salesforce"}),
        ({"contacts": "salesforce_to_hubspot"}, {"hubspot"}),
        ({"create_missing": False}, set()),
    ],
)
def test_creates_follow_direction(overrides: dict[str, Any], expected: set[str]) -> None:
    w = World()
    w.snap("hubspot", "contacts", "300", {"email": "a@x.com"}, email="a@x.com")
    w.snap("salesforce", "Lead", "00QZ", {"Email": "z@x.com", "LastName": "Z"}, email="z@x.com")
    res = plan(w, cfg(**overrides))
    assert {i["system"] for i in by(res.items, action="create")} == expected


def test_existing_natural_key_and_linked_records_are_not_created() -> None:
    w = World()
    linked_contact(w, {"email": EMAIL}, {"Email": EMAIL})
    w.snap("hubspot", "contacts", "301", {"email": "dup@x.com"}, email="dup@x.com")
    w.snap("salesforce", "Lead", "00QD", {"Email": "DUP@x.com", "LastName": "D"}, email="DUP@x.com")
    res = plan(w, cfg())
    assert by(res.items, action="create") == []
    assert res.skipped["create_natural_key_exists"] == 2


# --------------------------------------------------------------------------- associations


def test_association_from_account_id_into_hubspot() -> None:
    w = World()
    w.snap("hubspot", "companies", "101", {"name": "Acme"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    cpair = w.link("companies", "101", "Account", "001A")
    pid = linked_contact(
        w,
        {"email": EMAIL, "salesforceaccountid": "001A", "company": "Acme"},
        {"Email": EMAIL, "AccountId": "001A"},
        sf_cols={"account_id": "001A"},
    )
    (item,) = plan(w).items
    assert (item["action"], item["system"], item["record_id"]) == ("associate", "hubspot", "201")
    assert item["payload"]["to"] == {"object": "companies", "id": "101"}
    assert item["requires"] == [pid, cpair] and item["payload"]["type_id"] == 279
    # associations follow only while companies sync as well (seed 004)
    assert not by(plan(w, cfg(companies="off")).items, action="associate")


OLD, NEW = "2024-06-01T00:00:00.000Z", "2024-07-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("direction", "primary_set", "sf_time", "follows"),
    [
        ("salesforce_to_hubspot", NEW, OLD, "hubspot"),
        ("hubspot_to_salesforce", OLD, NEW, "salesforce"),
        ("two_way", OLD, NEW, "hubspot"),  # the Contact moved last: HubSpot follows
        ("two_way", NEW, OLD, "salesforce"),  # the primary company changed last: SF follows
        ("two_way", OLD, OLD, None),  # cannot be told: nothing, counted
        # when the primary company was set is not known: the Account decides (the record
        # times, newer on HubSpot's side here, tell nothing of which side moved the contact)
        ("two_way", None, OLD, "hubspot"),
    ],
)
def test_a_contact_s_account_and_primary_company_follow_the_side_that_moved(
    direction: str, primary_set: str | None, sf_time: str, follows: str | None
) -> None:
    """A Salesforce Contact moved to another Account: the HubSpot contact got an unlabelled
    association to the new company and kept the former one as its primary
    (`associatedcompanyid`), so company, salesforceaccountid and the primary disagreed. And
    a HubSpot contact whose primary company a person changed must not be moved back under
    `two_way`: the side that changed last leads, by the time the primary company was set."""
    history = (
        {"associatedcompanyid": [{"value": "101", "timestamp": primary_set}]} if primary_set else {}
    )
    w = World()
    for hs_id, sf_id, name in (("101", "001A", "Old Co"), ("102", "001B", "New Co")):
        w.snap("hubspot", "companies", hs_id, {"name": name}, name=name)
        w.snap("salesforce", "Account", sf_id, {"Name": name}, name=name)
        w.link("companies", hs_id, "Account", sf_id)
    linked_contact(
        w,
        {"email": EMAIL, "associatedcompanyid": "101", "propertiesWithHistory": history},
        {"Email": EMAIL, "AccountId": "001B"},
        hs_cols={"account_id": "101", "modified_at": NEW},  # any edit moves the record's time
        sf_cols={"account_id": "001B", "modified_at": sf_time},
    )
    w.db["associations"].insert_all(
        [{"source": "hubspot", "from_object": "contacts", "from_id": "201",
          "to_object": "companies", "to_id": to, "kind": kind}
         for to, kind in (("101", "primary"), ("102", "unlabeled"))]
    )  # fmt: skip
    res = plan(w, cfg(contacts=direction))
    items = by(res.items, action="associate")
    if follows is None:
        assert items == [] and res.skipped["association_unclear"] == 1
        return
    (item,) = items
    assert item["system"] == follows
    if follows == "hubspot":  # the primary label moves; the former primary is the before
        assert item["payload"]["to"] == {"object": "companies", "id": "102"}
        assert item["payload"]["primary"] is True and item["before"] == "101"
    else:  # the Contact moves to the primary company's Account; undo restores the former
        assert item["payload"]["fields"] == {"AccountId": "001A"}
        assert item["before"] == "001B" and item["after"] == "001A"


def test_a_contact_already_under_its_account_s_company_needs_no_association() -> None:
    w2 = World()
    w2.snap("hubspot", "companies", "102", {"name": "New Co"}, name="New Co")
    w2.snap("salesforce", "Account", "001B", {"Name": "New Co"}, name="New Co")
    w2.link("companies", "102", "Account", "001B")
    linked_contact(
        w2, {"email": EMAIL}, {"Email": EMAIL, "AccountId": "001B"},
        hs_cols={"account_id": "102"}, sf_cols={"account_id": "001B"},
    )  # fmt: skip
    assert by(plan(w2).items, action="associate") == []


def test_association_from_hubspot_into_account_id() -> None:
    w = World()
    w.snap("hubspot", "companies", "101", {"name": "Acme"}, name="Acme")
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme")
    w.link("companies", "101", "Account", "001A")
    linked_contact(w, {"email": EMAIL}, {"Email": EMAIL}, hs_cols={"account_id": "101"})
    (item,) = by(plan(w).items, action="associate")
    assert (item["system"], item["object"], item["record_id"], item["field"]) == (
        "salesforce",
        "Contact",
        "003A",
        "AccountId",
    )
    assert item["payload"]["fields"] == {"AccountId": "001A"}
    assert not by(plan(w, cfg(companies="off")).items, action="associate")


def test_creates_respect_scoping_filters() -> None:
    w = World()
    w.snap("hubspot", "contacts", "300", {"email": "a@x.com", "sync": "yes"}, email="a@x.com")
    w.snap("hubspot", "contacts", "301", {"email": "b@x.com", "sync": "no"}, email="b@x.com")
    w.done()
    c = load_config(
        None,
        overrides={
            "pull": {
                "filters": [
                    {"source": "hubspot", "object": "contacts", "field": "sync", "value": "yes"}
                ]
            }
        },
    )
    res = build_plan(w.db, c)
    assert [i["payload"]["source"]["record_id"] for i in by(res.items, action="create")] == ["300"]
    assert res.skipped["create_out_of_scope"] == 1


def test_creates_read_scope_groups_as_or() -> None:
    w = World()
    for rid, data in (("300", {"tier": "gold"}), ("301", {"tier": "silver", "region": "EU"}),
                      ("302", {"tier": "silver"}), ("303", {"region": "EU"})):  # fmt: skip
        w.snap("hubspot", "contacts", rid, {"email": f"{rid}@x.com", **data}, email=f"{rid}@x.com")
    w.done()
    flt = {"source": "hubspot", "object": "contacts"}
    c = load_config(
        None,
        overrides={
            "pull": {
                "filters": [
                    {**flt, "field": "tier", "value": "gold", "group": "gold"},
                    {**flt, "field": "tier", "value": "silver", "group": "eu silver"},
                    {**flt, "field": "region", "value": "EU", "group": "eu silver"},
                ]
            }
        },
    )
    res = build_plan(w.db, c)
    created = sorted(i["payload"]["source"]["record_id"] for i in by(res.items, action="create"))
    assert created == ["300", "301"] and res.skipped["create_out_of_scope"] == 2


@pytest.mark.parametrize(
    ("obj", "rid", "data", "flt"),
    [
        ("contacts", "K1", {"email": "k@x.com", "lifecyclestage": "Customer"},
         {"field": "lifecyclestage", "op": "in", "value": ["customer"]}),
        ("Account", "001A", {"Name": "Big", "AnnualRevenue": 1000000.0},
         {"field": "AnnualRevenue", "op": "eq", "value": 1000000}),
    ],
)  # fmt: skip
def test_creates_judge_scope_as_pull_does(
    obj: str, rid: str, data: dict[str, Any], flt: dict[str, Any]
) -> None:
    from recon.sources.scope import in_scope as pulled

    source = "hubspot" if obj == "contacts" else "salesforce"
    w = World()
    w.snap(source, obj, rid, data, email=data.get("email"), name=data.get("Name"))
    w.done()
    flt = {"source": source, "object": obj, **flt}
    c = load_config(None, overrides={"pull": {"filters": [flt]}})
    row = {"source": source, "object": obj, "email": data.get("email"), "data": json.dumps(data)}
    assert pulled(row, c)  # pull keeps it: "Customer" is "customer", 1000000.0 is 1000000
    res = build_plan(w.db, c)
    assert len(by(res.items, action="create")) == 1 and "create_out_of_scope" not in res.skipped


def _company_with(w: World, cid: str, contact: str | None, email: str = "c@x.com") -> None:
    w.snap("hubspot", "companies", cid, {"name": f"Co {cid}"}, name=f"Co {cid}")
    if contact is not None:
        w.snap("hubspot", "contacts", contact, {"email": email, "tier": "gold"}, email=email,
               account_id=cid)  # fmt: skip


@pytest.mark.parametrize(
    ("case", "mapping", "account"),
    [
        ("no contacts", {}, False),
        ("no contacts", {"create_accounts": "always"}, True),
        ("linked to a Lead", {}, False),
        ("linked to a Contact", {}, True),
        ("unlinked", {}, False),  # created as a Lead
        # a new contact needs an existing Account to become a Contact: it stays a Lead
        ("unlinked", {"new_contact_as": "Contact"}, False),
        ("out of scope", {}, False),
    ],
)
def test_a_hubspot_company_becomes_an_account_only_with_a_contact_linked_to_a_contact(
    case: str, mapping: dict[str, Any], account: bool
) -> None:
    w = World()
    _company_with(w, "C", None if case == "no contacts" else "K", "k@x.com")
    if case.startswith("linked") or case == "out of scope":  # out of scope: linked, filtered
        sf_obj, sf_id = ("Lead", "00QK") if "Lead" in case else ("Contact", "003K")
        w.snap("salesforce", sf_obj, sf_id, {"Email": "k@x.com", "LastName": "K"})
        w.link("contacts", "K", sf_obj, sf_id)
    w.done()
    overrides: dict[str, Any] = {"mapping": mapping}
    if case == "out of scope":
        flt = {"source": "hubspot", "object": "contacts", "field": "tier", "value": "silver"}
        overrides["pull"] = {"filters": [flt]}
    res = build_plan(w.db, load_config(None, overrides=overrides))
    accounts = by(res.items, action="create", object="Account")
    assert len(accounts) == account, case
    if not account:
        assert res.skipped["create_account_no_syncing_contact"] == 1


def test_a_split_keeps_its_groups_of_two_or_more_out_of_creates() -> None:
    w = World()
    for rid in ("A", "B", "C"):
        w.snap("hubspot", "companies", rid, {"name": f"Acme {rid}"}, name=f"Acme {rid}")
    members = [("companies", "A"), ("companies", "B"), ("companies", "C")]
    w.cluster("cl-1", "companies", "hubspot", members, "review")
    group = [{"source": "hubspot", "object": "companies", "record_id": r} for r in ("A", "B")]
    w.decide("cl-1", "split", "non_match", {"groups": [group, [{**group[0], "record_id": "C"}]]})
    res = plan(w, cfg(create_accounts="always"))
    assert not by(res.items, action="merge")
    # A and B are one company (not created twice); C is free
    created = sorted(i["payload"]["source"]["record_id"] for i in by(res.items, action="create"))
    assert created == ["C"]


def test_nothing_is_created_where_the_store_holds_only_a_sample() -> None:
    """After `--sample` pulls, the records the store lacks may well exist in the CRM: creating
    them there would duplicate them. A whole pull of that side lifts the hold."""
    from recon.store import finish_run, start_run

    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", domain="acme.com")
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo"}, email=EMAIL)

    def pulled(sample: int | None, records: dict[str, int], status: str = "ok") -> None:
        run = start_run(w.db, "pull", config={"sample": sample, "full": False})
        finish_run(w.db, run, status=status, summary={"records": records})

    pulled(5, {"hubspot:companies": 5, "hubspot:contacts": 5, "salesforce:Account": 5,
               "salesforce:Contact": 5, "salesforce:Lead": 5})  # fmt: skip
    res = plan(w, cfg())
    assert by(res.items, action="create") == []
    assert res.skipped["create_target_not_pulled_whole"] == 2
    assert any("pulled only in part" in msg for _k, msg in res.warnings)
    pulled(None, {"hubspot:companies": 40})  # HubSpot companies read whole since
    again = build_plan(w.db, cfg())
    assert [(i["system"], i["object"]) for i in by(again.items, action="create")] == [
        ("hubspot", "companies")
    ]


def test_a_record_an_earlier_match_run_clustered_is_not_created() -> None:
    """Weights are fitted again each run: a duplicate pair near the threshold can drop out
    of the latest run. A cluster no one rejected still holds its records out of creates."""
    from recon.store import finish_run, start_run

    w = World()
    for rid in ("001A", "001B"):
        w.snap("salesforce", "Account", rid, {"Name": "Vista Wave"}, name="Vista Wave")
    earlier = start_run(w.db, "match")
    w.db["clusters"].insert_all(
        {"run_id": earlier, "cluster_id": "c-old", "object": "companies", "source": "salesforce",
         "record_object": "Account", "record_id": rid, "score": 0.98, "tier": "review"}
        for rid in ("001A", "001B")
    )  # fmt: skip
    finish_run(w.db, earlier)
    w.db.execute(
        "update runs set started_at = '2000-01-01T00:00:00.000Z' where run_id = ?", [earlier]
    )
    res = plan(w, cfg())
    assert by(res.items, action="create") == []
    assert res.skipped["create_in_duplicate_cluster"] == 2
    w.decide("c-old", "duplicate", "non_match")  # a person: two companies
    again = build_plan(w.db, cfg())
    assert len(by(again.items, action="create")) == 2


def test_nothing_is_created_in_an_object_the_store_never_read() -> None:
    """Salesforce people never pulled (only Accounts loaded from a report): every unlinked
    HubSpot contact was planned as a new Lead, though many exist in Salesforce. An object the
    store holds nothing of (no record, schema, cursor or pull count) takes no creates."""
    from recon.store import finish_run, start_run

    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", domain="acme.com")
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo"}, email=EMAIL)
    w.db.execute(
        "delete from schemas where source = 'salesforce' and object in ('Contact', 'Lead')"
    )
    res = plan(w, cfg())
    assert [i["object"] for i in by(res.items, action="create")] == ["companies"]
    assert res.skipped["create_target_not_pulled_whole"] == 1
    (warning,) = [m for k, m in res.warnings if k == "salesforce.Lead"]
    assert "holds none of its records" in warning and "recon pull --source salesforce" in warning
    # a whole pull that found no Lead at all (an org without Leads) lifts the hold
    run = start_run(w.db, "pull", config={"sample": None, "full": False})
    finish_run(w.db, run, summary={"records": {"salesforce:Contact": 0, "salesforce:Lead": 0}})
    again = build_plan(w.db, cfg())
    assert sorted(i["object"] for i in by(again.items, action="create")) == ["Lead", "companies"]


def test_an_object_the_config_does_not_pull_holds_no_create_back() -> None:
    """An org that leaves Leads out of `[salesforce] objects` never stores one: that absence
    is no missing pull (no "pull it first" hold, which a pull would never lift)."""
    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", domain="acme.com")
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo"}, email=EMAIL)
    w.db.execute("delete from schemas where source = 'salesforce' and object = 'Lead'")
    c = cfg()
    c.salesforce.objects = ["Account", "Contact"]
    res = plan(w, c)
    assert res.skipped.get("create_target_not_pulled_whole", 0) == 0
    assert not [m for _k, m in res.warnings if "pull" in m]  # Leads are never pulled
    assert sorted(i["object"] for i in by(res.items, action="create")) == ["companies"]


def test_no_lead_is_created_where_the_config_leaves_leads_out() -> None:
    """With Leads out of `[salesforce] objects`, every unlinked HubSpot contact was created as
    a Lead: recon never reads Leads, so the people who are Leads there already were copied.
    The warning says how to get them created (as Contacts, under their linked company)."""
    w = World()
    w.snap("hubspot", "companies", "C", {"name": "Acme", "domain": "acme.com"}, name="Acme",
           domain="acme.com")  # fmt: skip
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", domain="acme.com")
    w.link("companies", "C", "Account", "001A")
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo"}, email=EMAIL,
           account_id="C")  # fmt: skip
    w.snap("hubspot", "contacts", "202", {"email": "kim@else.org", "lastname": "Kim"},
           email="kim@else.org")  # fmt: skip
    c = cfg()
    c.salesforce.objects = ["Account", "Contact"]
    res = plan(w, c)
    assert not by(res.items, action="create")
    assert res.skipped["create_object_not_synced"] == 2
    (warning,) = [m for k, m in res.warnings if k == "salesforce.Lead"]
    assert (
        warning.startswith("2 record(s) are not created")
        and 'new_contact_as = "Contact"' in warning
    )
    c.mapping.new_contact_as = "Contact"
    again = plan(w, c)
    (made,) = by(again.items, action="create")
    assert (made["object"], made["payload"]["fields"]["AccountId"]) == ("Contact", "001A")
    assert again.skipped["create_object_not_synced"] == 1  # Kim has no linked company


@pytest.mark.parametrize("side", ["hubspot", "salesforce"])
def test_an_object_left_out_of_the_sync_takes_and_gives_no_creates(side: str) -> None:
    """Companies left out of `[hubspot] objects` (or Accounts out of `[salesforce] objects`):
    every Account was planned as a new HubSpot company (or every stored company, as old as the
    last pull that read it, as a new Account)."""
    w = World()
    w.snap("salesforce", "Account", "001A", {"Name": "Acme"}, name="Acme", domain="acme.com")
    w.snap("hubspot", "companies", "C9", {"name": "Beta"}, name="Beta", domain="beta.com")
    c = cfg(create_accounts="always")
    if side == "hubspot":
        c.hubspot.objects = ["contacts"]
    else:
        c.salesforce.objects = ["Contact", "Lead"]
    res = plan(w, c)
    assert not by(res.items, action="create")
    assert res.skipped["create_object_not_synced"] == 2
    assert not [k for k, _m in res.warnings if k.endswith(("companies", "Account"))]


def test_records_of_an_object_left_out_of_the_sync_are_not_synced_nor_merged() -> None:
    """Leads left out of `[salesforce] objects` after a pull read them: the stored Leads are
    as old as that pull, yet their links still planned updates both ways, and their duplicate
    clusters merges. Such a link still keeps its HubSpot contact from being created."""
    w = World()
    w.snap("hubspot", "contacts", "201", {"email": EMAIL, "lastname": "Jo", "jobtitle": "CEO"},
           email=EMAIL)  # fmt: skip
    w.snap("salesforce", "Lead", "00QA", {"Email": EMAIL, "LastName": "Jo", "Title": "CTO"},
           email=EMAIL)  # fmt: skip
    w.snap("salesforce", "Lead", "00QB", {"Email": EMAIL, "LastName": "Jo"}, email=EMAIL)
    w.link("contacts", "201", "Lead", "00QA")
    w.cluster("cl-L", "contacts", "salesforce", [("Lead", "00QA"), ("Lead", "00QB")], "auto")
    assert by(plan(w, cfg()).items, action="update")  # synced: Title differs
    c = cfg()
    c.salesforce.objects = ["Account", "Contact"]
    res = plan(w, c)
    assert res.items == []
    assert res.skipped["object_not_synced"] == 2  # the link and the cluster
