"""Demo data: deterministic, overlapping, messy in the ways real CRM pairs are, with ground truth."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from recon.errors import UsageError
from recon.sandbox import SandboxState
from recon.sandbox.demo import DemoData, ensure_demo, generate, load

LEGAL = re.compile(
    r"\b(inc|llc|l\.l\.c|corp|ltd|limited|gmbh|ag|sa|sas|bv|nv|sl|spa|srl|ab|plc|pty|pte)\b\.?",
    re.I,
)


@pytest.fixture(scope="module")
def small() -> DemoData:
    return generate("small", seed=0)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = generate("tiny", 1), generate("tiny", 1), generate("tiny", 2)
    assert a.hubspot == b.hubspot and a.salesforce == b.salesforce
    assert a.hubspot["companies"] != c.hubspot["companies"]


@pytest.mark.parametrize(("size", "low", "high"), [("tiny", 70, 140), ("small", 1_800, 2_300)])
def test_sizes(size: str, low: int, high: int) -> None:
    counts = generate(size).counts()
    assert low <= counts["hubspot.companies"] <= high
    assert low <= counts["salesforce.Account"] <= high


def test_small_has_about_5k_people_per_side(small: DemoData) -> None:
    counts = small.counts()
    assert 4_000 <= counts["hubspot.contacts"] <= 6_000
    assert 4_000 <= counts["salesforce.Contact"] + counts["salesforce.Lead"] <= 6_000


def test_unknown_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown demo size"):
        generate("enormous")


def entities(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["_entity"] for r in records)


def test_systems_overlap_partly(small: DemoData) -> None:
    hs, sf = set(entities(small.hubspot["companies"])), set(entities(small.salesforce["Account"]))
    both = len(hs & sf) / len(hs | sf)
    assert 0.4 < both < 0.7
    assert hs - sf and sf - hs


def test_duplicates_inside_each_system(small: DemoData) -> None:
    for records in (
        small.hubspot["companies"],
        small.salesforce["Account"],
        small.salesforce["Contact"],
    ):
        dupes = [e for e, n in entities(records).items() if n > 1]
        assert len(dupes) >= 0.01 * len(records)


def test_name_and_website_mess(small: DemoData) -> None:
    names = [r["Name"] for r in small.salesforce["Account"]]
    assert sum(bool(LEGAL.search(n)) for n in names) > 0.5 * len(names)
    assert any(n.isupper() for n in names) and any(" and " in n for n in names)
    websites = [r["Website"] for r in small.salesforce["Account"] if r["Website"]]
    assert any(w.startswith("http://") for w in websites) and any(
        w.startswith("www.") for w in websites
    )
    assert any("/en/home" in w for w in websites)
    domains = [r["domain"] for r in small.hubspot["companies"]]
    assert 0.05 < domains.count(None) / len(domains) < 0.4


def test_phone_formats_differ_between_systems(small: DemoData) -> None:
    shapes = {re.sub(r"\d", "9", r["Phone"]) for r in small.salesforce["Account"] if r["Phone"]}
    assert len(shapes) >= 5


def test_distinct_companies_share_a_website(small: DemoData) -> None:
    by_domain: dict[str, set[str]] = defaultdict(set)
    for r in small.hubspot["companies"]:
        if r["domain"]:
            by_domain[r["domain"]].add(r["_entity"])
    assert any(len(e) > 1 for e in by_domain.values())


def test_leads_and_contacts_share_an_email(small: DemoData) -> None:
    contact_emails = {r["Email"].lower() for r in small.salesforce["Contact"] if r["Email"]}
    assert any(
        r["Email"] and r["Email"].lower() in contact_emails for r in small.salesforce["Lead"]
    )


def test_conflicting_values_with_different_modification_times(small: DemoData) -> None:
    hs = {r["_entity"]: r for r in small.hubspot["companies"]}
    pairs = [(hs[r["_entity"]], r) for r in small.salesforce["Account"] if r["_entity"] in hs]
    differ = [h for h, s in pairs if h["numberofemployees"] != s["NumberOfEmployees"]]
    assert differ and any(h["_modified"] != s["_modified"] for h, s in pairs)


def test_hubspot_emails_are_unique_case_insensitively(small: DemoData) -> None:
    emails = [r["email"].lower() for r in small.hubspot["contacts"] if r["email"]]
    assert len(emails) == len(set(emails))


def test_loaded_with_truth_and_cross_ids() -> None:
    state = SandboxState(":memory:")
    data = generate("tiny", 0)
    counts = load(state, data)
    assert counts["hubspot.companies"] == len(data.hubspot["companies"])
    truth = state.truth()
    assert len(truth) == sum(counts.values())
    by_record = {(t["side"], t["object"], t["record_id"]): t["entity"] for t in truth}
    with state.tx() as conn:
        linked = conn.execute(
            "SELECT id, json_extract(props, '$.salesforceaccountid') FROM hs_records "
            "WHERE object = 'companies' AND json_extract(props, '$.salesforceaccountid') IS NOT NULL"
        ).fetchall()
        assert linked
        for hs_id, sf_id in linked:
            assert (
                by_record[("hubspot", "companies", str(hs_id))]
                == by_record[("salesforce", "Account", sf_id)]
            )
        assoc = conn.execute(
            "SELECT count(*) FROM hs_assoc WHERE from_type='contacts' AND type_id=1"
        ).fetchone()[0]
        assert assoc > 0.5 * counts["hubspot.contacts"]
        if state.side_hook("salesforce", "load_records") is not None:
            back = conn.execute(
                'SELECT "Id", "HubSpot_Id__c" FROM sf_account WHERE "HubSpot_Id__c" IS NOT NULL'
            ).fetchall()
            assert back
            for sf_id, hs_id in back:
                assert (
                    by_record[("salesforce", "Account", sf_id)]
                    == by_record[("hubspot", "companies", hs_id)]
                )


def test_ensure_demo_loads_once_per_size_and_seed() -> None:
    state = SandboxState(":memory:")
    first = ensure_demo(state, size="tiny", seed=0)
    assert ensure_demo(state, size="tiny", seed=0) == first
    with state.tx() as conn:
        n = conn.execute("SELECT count(*) FROM hs_records").fetchone()[0]
    assert n == first["counts"]["hubspot.companies"] + first["counts"]["hubspot.contacts"]
    other = ensure_demo(state, size="tiny", seed=5)
    assert other["seed"] == 5
    with state.tx() as conn:
        n = conn.execute("SELECT count(*) FROM hs_records").fetchone()[0]
    assert n == other["counts"]["hubspot.companies"] + other["counts"]["hubspot.contacts"]
