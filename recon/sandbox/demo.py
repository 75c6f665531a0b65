"""Seeded demo data for the sandbox: two CRMs that overlap partly, with real-world mess.

:func:`generate` builds plain dicts per side from word pools (no per-row Faker
calls, so 200k companies per side take seconds); :func:`load` writes them into a
sandbox (HubSpot through :func:`~recon.sandbox.hs_records.bulk_load`, Salesforce
through ``recon.sandbox.salesforce.load_records``) together with the ground truth
(``sandbox_truth``: which records stand for the same company or person), and
:func:`ensure_demo` does both unless the database already holds that size and seed.

The mess, each at a set rate: legal-suffix and punctuation variants, upper-case
names and typos; ``www.``/``http://``/path forms of websites and missing domains;
phone numbers in several formats; duplicates inside each system; distinct
companies (regional arms) sharing one website; a person who is both a Lead and a
Contact with the same email; conflicting values with different modification
times; cross-system ids stored on some records (``salesforceaccountid``,
``salesforcecontactid``, ``HubSpot_Id__c``).

Sizes: ``tiny`` (~100 companies per side, for tests), ``small`` (~2k companies and
~5k contacts per side), ``large`` (~200k companies and ~200k contacts per side).

Examples:
    >>> data = generate("tiny", seed=0)
    >>> 80 <= len(data.hubspot["companies"]) <= 130
    True
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ..errors import UsageError
from . import hs_records
from .demo_people import people
from .demo_pools import (
    ADJ,
    INDUSTRIES,
    LIFECYCLE,
    NOUN,
    PLACES,
    REGIONS,
    SF_TYPES,
    SUFFIXES,
    SURNAMES,
    T0,
    T1,
    TLDS,
    TRADE,
    display_name,
    format_phone,
    slug,
    website_form,
)
from .hs_schema import OWNERS
from .state import SandboxState

__all__ = ["SIZES", "DemoData", "ensure_demo", "generate", "load"]

log = logging.getLogger(__name__)

DEMO_VERSION = 1


@dataclass(frozen=True)
class Size:
    """How much demo data: companies per side and persons per company entity."""

    companies: int
    persons_per_company: float


SIZES = {
    "tiny": Size(100, 2.0),
    "small": Size(2_000, 2.6),
    "large": Size(200_000, 1.05),
}

# Shares of company entities present in both systems / HubSpot only / Salesforce only.
BOTH, HS_ONLY = 0.56, 0.22


@dataclass
class DemoData:
    """Generated records per side, before loading.

    Keys starting with ``_`` are loader instructions, not fields: ``_entity`` (ground
    truth), ``_company`` (index of the record's company on the same side), ``_xref``
    (``(object, index)`` of the record on the other side whose id to store),
    ``_created``/``_modified`` (epoch ms).
    """

    size: str
    seed: int
    hubspot: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    salesforce: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Records per side and object."""
        out = {f"hubspot.{k}": len(v) for k, v in self.hubspot.items()}
        out.update({f"salesforce.{k}": len(v) for k, v in self.salesforce.items()})
        return out


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- generation


def generate(size: str = "small", seed: int = 0) -> DemoData:
    """Generate demo records for both sides (deterministic for a size and seed).

    Raises:
        UsageError: unknown size.

    Examples:
        >>> a, b = generate("tiny", 3), generate("tiny", 3)
        >>> a.hubspot["companies"][0]["name"] == b.hubspot["companies"][0]["name"]
        True
    """
    if size not in SIZES:
        raise UsageError(f"unknown demo size {size!r}", hint=f"one of {', '.join(SIZES)}")
    spec = SIZES[size]
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    n_entities = int(spec.companies / (BOTH + (1 - BOTH - HS_ONLY) / 2 + HS_ONLY / 2) / 1.02)
    n_entities = max(n_entities, 10)

    # ---- company entities (vectorised draws, one pass to build strings)
    pattern = rng.integers(0, 10, n_entities)
    adj = rng.integers(0, len(ADJ), n_entities)
    noun = rng.integers(0, len(NOUN), n_entities)
    trade = rng.integers(0, len(TRADE), n_entities)
    sur1 = rng.integers(0, len(SURNAMES), n_entities)
    sur2 = rng.integers(0, len(SURNAMES), n_entities)
    place = rng.integers(0, len(PLACES), n_entities)
    suffix_pick = rng.integers(0, 6, n_entities)
    presence = rng.random(n_entities)
    industry = rng.integers(0, len(INDUSTRIES), n_entities)
    employees = np.round(np.exp(rng.normal(4.0, 1.6, n_entities))).astype(int) + 1
    revenue = employees * rng.integers(60, 400, n_entities) * 1000
    phone_digits = rng.integers(10**9, 10**10 - 1, n_entities)
    created = rng.integers(
        int(T0.timestamp() * 1000), int((T1 - timedelta(days=30)).timestamp() * 1000), n_entities
    )

    bases: list[str] = []
    domains: list[str] = []
    seen_domains: dict[str, int] = {}
    for i in range(n_entities):
        p = pattern[i]
        if p < 5:
            base = f"{ADJ[adj[i]]} {NOUN[noun[i]]} {TRADE[trade[i]]}"
        elif p < 7:
            base = f"{SURNAMES[sur1[i]]} {TRADE[trade[i]]}"
        elif p < 9:
            base = f"{SURNAMES[sur1[i]]} & {SURNAMES[sur2[i]]}"
        else:
            base = f"{ADJ[adj[i]]}{NOUN[noun[i]].lower()}"
        stem = slug(base.replace("&", "and") if p in (7, 8) else base)
        country = PLACES[place[i]][1]
        domain = stem + TLDS.get(country, ".com" if rnd.random() < 0.7 else ".io")
        if domain in seen_domains:
            seen_domains[domain] += 1
            domain = f"{stem}{seen_domains[domain]}{TLDS.get(country, '.com')}"
        seen_domains.setdefault(domain, 1)
        bases.append(base)
        domains.append(domain)

    # regional arms: distinct companies sharing a parent's website
    arm_of = np.full(n_entities, -1)
    for i in range(1, n_entities):
        if rnd.random() < 0.015:
            parent = rnd.randrange(0, i)
            if arm_of[parent] == -1:
                arm_of[i] = parent
                bases[i] = f"{bases[parent]} {rnd.choice(REGIONS)}"
                domains[i] = domains[parent]

    in_hs = presence < BOTH + HS_ONLY
    in_sf = (presence < BOTH) | (presence >= BOTH + HS_ONLY)

    hs_companies: list[dict[str, Any]] = []
    sf_accounts: list[dict[str, Any]] = []
    hs_index: dict[int, int] = {}
    sf_index: dict[int, int] = {}
    owners_hs = [o["id"] for o in OWNERS]
    owners_sf = _sf_owner_ids()

    def company_copy(i: int, side: str, duplicate: bool) -> dict[str, Any]:
        city, country, cc, hs_country, sf_country = PLACES[place[i]]
        suffix_sets = SUFFIXES.get(country, ((None,),))
        suffix_set = suffix_sets[suffix_pick[i] % len(suffix_sets)]
        suffix = suffix_set[rnd.randrange(len(suffix_set))] if suffix_pick[i] < 5 else None
        mess = 0.35 if duplicate else 0.12
        name = display_name(bases[i], suffix, rnd, mess)
        modified = int(created[i]) + rnd.randrange(0, int((T1.timestamp() * 1000) - created[i]))
        phone = (
            format_phone(cc, str(phone_digits[i]), rnd.randrange(5)) if rnd.random() < 0.8 else None
        )
        emp = (
            int(employees[i])
            if rnd.random() > 0.15
            else int(employees[i] * rnd.uniform(0.7, 1.4)) + 1
        )
        web_style = rnd.randrange(6)
        has_site = rnd.random() > (0.25 if duplicate else 0.08)
        hs_ind, sf_ind = INDUSTRIES[industry[i]]
        if side == "hubspot":
            rec: dict[str, Any] = {
                "name": name,
                "domain": domains[i] if has_site and rnd.random() < 0.9 else None,
                "website": website_form(domains[i], web_style)
                if has_site and rnd.random() < 0.6
                else None,
                "phone": phone,
                "city": city if rnd.random() > 0.1 else None,
                "country": hs_country,
                "industry": hs_ind if rnd.random() > 0.2 else None,
                "numberofemployees": emp,
                "annualrevenue": int(revenue[i]) if rnd.random() > 0.3 else None,
                "lifecyclestage": rnd.choice(LIFECYCLE),
                "hubspot_owner_id": rnd.choice(owners_hs) if rnd.random() > 0.1 else None,
            }
        else:
            rec = {
                "Name": name,
                "Website": website_form(domains[i], web_style) if has_site else None,
                "Phone": phone,
                "BillingCity": city if rnd.random() > 0.1 else None,
                "BillingCountry": sf_country,
                "Industry": sf_ind if rnd.random() > 0.2 else None,
                "NumberOfEmployees": emp,
                "AnnualRevenue": float(revenue[i]) if rnd.random() > 0.3 else None,
                "Type": rnd.choice(SF_TYPES),
                "OwnerId": rnd.choice(owners_sf) if owners_sf else None,
            }
        rec["_entity"] = f"co{i}"
        rec["_created"] = int(created[i]) + (rnd.randrange(0, 86_400_000 * 30) if duplicate else 0)
        rec["_modified"] = max(modified, rec["_created"])
        return rec

    for i in range(n_entities):
        for side, flag, out, index in (
            ("hubspot", in_hs[i], hs_companies, hs_index),
            ("salesforce", in_sf[i], sf_accounts, sf_index),
        ):
            if not flag:
                continue
            index[i] = len(out)
            out.append(company_copy(i, side, False))
            if rnd.random() < 0.04:
                out.append(company_copy(i, side, True))
    # stored cross-system ids on some linked records
    for i, h in hs_index.items():
        if i in sf_index and rnd.random() < 0.3:
            hs_companies[h]["_xref"] = ("Account", sf_index[i], "salesforceaccountid")
        if i in sf_index and rnd.random() < 0.2:
            sf_accounts[sf_index[i]]["_xref"] = ("companies", h, "HubSpot_Id__c")

    contacts, sf_contacts, sf_leads = people(
        rng,
        rnd,
        n_entities,
        spec,
        bases,
        domains,
        place,
        in_hs,
        in_sf,
        hs_index,
        sf_index,
        created,
        owners_hs,
        owners_sf,
    )
    return DemoData(
        size=size,
        seed=seed,
        hubspot={"companies": hs_companies, "contacts": contacts},
        salesforce={"Account": sf_accounts, "Contact": sf_contacts, "Lead": sf_leads},
    )


def _sf_owner_ids() -> list[str]:
    try:
        from .sf_common import make_id
    except ImportError:  # the Salesforce emulator is not installed
        return []
    return [make_id("005", n) for n in range(2, 6)]


# --------------------------------------------------------------------------- loading


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_") and v is not None}


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC)


def load(state: SandboxState, data: DemoData) -> dict[str, int]:
    """Write generated records and their ground truth into ``state``; return counts.

    HubSpot ids are assigned in sequence by :func:`~recon.sandbox.hs_records.bulk_load`,
    so they are known in advance: Salesforce loads first (Accounts, then Contacts
    with ``AccountId`` and Leads, carrying ``HubSpot_Id__c`` where set), then
    HubSpot with the Salesforce ids it stores.
    """
    truth: list[tuple[str, str, str, str, str]] = []
    hs_data = {obj: data.hubspot.get(obj, []) for obj in ("companies", "contacts")}
    first = hs_records.next_id(state)
    hs_ids = {
        "companies": [str(first + i) for i in range(len(hs_data["companies"]))],
        "contacts": [
            str(first + len(hs_data["companies"]) + i) for i in range(len(hs_data["contacts"]))
        ],
    }
    sf_ids: dict[str, list[str]] = {}
    loader = state.side_hook("salesforce", "load_records")
    if loader is None:
        log.warning("the Salesforce emulator is not available; demo data loaded for HubSpot only")
    for obj in ("Account", "Contact", "Lead") if loader is not None else ():
        rows = []
        for r in data.salesforce.get(obj, []):
            row = _fields(r)
            row["CreatedDate"] = _dt(r["_created"])
            row["LastModifiedDate"] = row["SystemModstamp"] = _dt(r["_modified"])
            if "_company" in r:
                row["AccountId"] = sf_ids["Account"][r["_company"]]
            xref = r.get("_xref")
            if xref:
                row[xref[2]] = hs_ids[xref[0]][xref[1]]
            rows.append(row)
        assert loader is not None
        sf_ids[obj] = loader(state, obj, rows)
        kind = "company" if obj == "Account" else "person"
        truth += [
            (r["_entity"], kind, "salesforce", obj, rid)
            for r, rid in zip(data.salesforce.get(obj, []), sf_ids[obj], strict=True)
        ]
    links = []
    for obj in ("companies", "contacts"):
        records = []
        for i, r in enumerate(hs_data[obj]):
            fields = _fields(r)
            xref = r.get("_xref")
            if xref and xref[0] in sf_ids:
                fields[xref[2]] = sf_ids[xref[0]][xref[1]]
            if "_company" in r:
                fields["associatedcompanyid"] = hs_ids["companies"][r["_company"]]
                links.append((hs_ids["contacts"][i], fields["associatedcompanyid"]))
            records.append(fields)
        stamps = [(r["_created"], r["_modified"]) for r in hs_data[obj]]
        ids = hs_records.bulk_load(state, obj, records, timestamps=stamps)
        assert ids == hs_ids[obj], "HubSpot ids were not assigned in sequence"
        kind = "company" if obj == "companies" else "person"
        truth += [
            (r["_entity"], kind, "hubspot", obj, rid)
            for r, rid in zip(hs_data[obj], ids, strict=True)
        ]
    hs_records.bulk_associate(state, links, set_primary=False)
    state.add_truth(truth)
    counts = {f"hubspot.{k}": len(v) for k, v in hs_ids.items()}
    counts.update({f"salesforce.{k}": len(v) for k, v in sf_ids.items()})
    return counts


def ensure_demo(state: SandboxState, *, size: str = "small", seed: int = 0) -> dict[str, Any]:
    """Load demo data unless the sandbox already holds this size and seed; return the demo info.

    A sandbox holding other demo data (or other records) is emptied first.

    Examples:
        >>> state = SandboxState(":memory:")
        >>> ensure_demo(state, size="tiny")["size"]
        'tiny'
    """
    want = {"size": size, "seed": seed, "version": DEMO_VERSION}
    have = state.get_meta("demo")
    if have and {k: have.get(k) for k in want} == want:
        return dict(have)
    if have is not None:
        state.reset()
    counts = load(state, generate(size, seed))
    info = {**want, "counts": counts}
    state.set_meta("demo", info)
    return info
