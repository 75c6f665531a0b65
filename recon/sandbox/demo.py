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


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ADJ = _words(
    "Blue Red Green Silver Golden North South East West Summit Apex Prime Bright Clear Swift Iron Stone "
    "Oak Pine Cedar Maple River Lake Harbor Bay Coastal Alpine Urban Metro Global United Pacific Atlantic "
    "Northern Southern Central Pioneer Frontier Liberty Heritage Royal Crown Star Sun Moon Polar Rapid Vertex "
    "Zenith Nova Quantum Vector Fusion Matrix Nimbus Cobalt Crimson Amber Ivory Onyx Granite Willow Aspen "
    "Falcon Eagle Hawk Orion Atlas Titan Vista Horizon Keystone Beacon Anchor Compass Meridian Sterling"
)
NOUN = _words(
    "Bridge Gate Point Ridge Valley Field Creek Forge Works Labs Peak Path Wave Stream Grove Rock Hill Port "
    "Line Core Loop Link Spark Shift Leaf Root Key Tower Hub Yard Mill Dock Cloud Signal Circuit Arrow Shield "
    "Haven Crest Trail Harvest Meadow Canyon Island Delta Mesa Summit Vale Brook Stone Wood Light Fire Frost"
)
TRADE = _words(
    "Logistics Systems Foods Analytics Software Consulting Partners Holdings Industries Manufacturing Energy "
    "Solutions Technologies Robotics Pharma Capital Insurance Media Networks Construction Engineering Motors "
    "Textiles Chemicals Health Dental Foods Brewing Outfitters Design Studios Security Telecom Freight Retail "
    "Realty Ventures Labs Instruments Materials"
)
SURNAMES = _words(
    "Smith Johnson Miller Brown Davis Wilson Moore Taylor Anderson Thomas Jackson White Harris Martin Thompson "
    "Garcia Martinez Robinson Clark Lewis Lee Walker Hall Allen Young King Wright Scott Green Baker Adams Nelson "
    "Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy Cook "
    "Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett "
    "Gray Hughes Price Sanders Myers Long Ross Foster Jensen Nielsen Larsen Schmidt Schneider Fischer Weber Meyer "
    "Wagner Becker Hoffmann Koch Richter Klein Wolf Dubois Moreau Laurent Simon Michel Lefebvre Leroy Rossi Russo "
    "Ferrari Esposito Bianchi Romano Colombo Ricci Marino Novak Kowalski Nowak Silva Santos Costa Pereira Oliveira "
    "Tanaka Suzuki Sato Kim Park Chen Wang Liu Zhang Singh Patel Sharma Gupta Khan Ali Ahmed Okafor Mensah Diallo"
)
FIRST = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda William Elizabeth David Barbara Richard Susan Joseph "
    "Jessica Thomas Sarah Charles Karen Christopher Nancy Daniel Lisa Matthew Betty Anthony Margaret Mark Sandra "
    "Steven Ashley Paul Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda George Melissa "
    "Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy "
    "Nicholas Angela Eric Shirley Jonathan Anna Stephen Ruth Larry Brenda Justin Pamela Scott Nicole Frank Katherine "
    "Lukas Anna Sofia Leon Mia Noah Emma Elias Lea Felix Hannah Louis Chloe Hugo Ines Lucas Camille Matteo Giulia "
    "Lorenzo Chiara Mateo Lucia Pablo Sara Javier Elena Hiroshi Yuki Min Wei Priya Arjun Aisha Omar Fatima Kwame Ama"
)
NICKNAMES = {
    "Robert": "Bob",
    "William": "Bill",
    "Richard": "Rick",
    "Michael": "Mike",
    "Katherine": "Kate",
    "Elizabeth": "Liz",
    "Jennifer": "Jen",
    "Thomas": "Tom",
    "Joseph": "Joe",
    "Christopher": "Chris",
    "Daniel": "Dan",
    "Matthew": "Matt",
    "Anthony": "Tony",
    "Nicholas": "Nick",
    "Jonathan": "Jon",
    "Stephen": "Steve",
    "Kimberly": "Kim",
    "Margaret": "Maggie",
}
TITLES = (
    "CEO",
    "CFO",
    "CTO",
    "VP Sales",
    "VP Marketing",
    "Head of Operations",
    "Sales Manager",
    "Account Executive",
    "Marketing Manager",
    "Procurement Lead",
    "Office Manager",
    "Engineer",
    "Product Manager",
    "Controller",
    "IT Director",
)
# (city, country, phone country code, HubSpot country text, Salesforce country text)
PLACES = (
    ("New York", "US", "1", "United States", "USA"),
    ("San Francisco", "US", "1", "United States", "United States"),
    ("Chicago", "US", "1", "United States", "US"),
    ("Austin", "US", "1", "United States", "United States"),
    ("Boston", "US", "1", "United States", "USA"),
    ("Toronto", "CA", "1", "Canada", "Canada"),
    ("London", "GB", "44", "United Kingdom", "UK"),
    ("Manchester", "GB", "44", "United Kingdom", "United Kingdom"),
    ("Berlin", "DE", "49", "Germany", "Germany"),
    ("Munich", "DE", "49", "Germany", "Deutschland"),
    ("Paris", "FR", "33", "France", "France"),
    ("Lyon", "FR", "33", "France", "France"),
    ("Amsterdam", "NL", "31", "Netherlands", "The Netherlands"),
    ("Madrid", "ES", "34", "Spain", "Spain"),
    ("Milan", "IT", "39", "Italy", "Italy"),
    ("Stockholm", "SE", "46", "Sweden", "Sweden"),
    ("Sydney", "AU", "61", "Australia", "Australia"),
    ("Singapore", "SG", "65", "Singapore", "Singapore"),
)
# Legal suffixes per country, with their spelling variants.
SUFFIXES = {
    "US": (
        ("Inc", "Inc.", "Incorporated", ", Inc."),
        ("LLC", "L.L.C.", ", LLC"),
        ("Corp", "Corp.", "Corporation"),
    ),
    "CA": (("Inc", "Inc.", "Ltd"), ("Ltd", "Ltd.", "Limited")),
    "GB": (("Ltd", "Ltd.", "Limited"), ("plc", "PLC", "Plc")),
    "DE": (("GmbH", "Gmbh", "G.m.b.H."), ("AG", "A.G.")),
    "FR": (("SA", "S.A."), ("SAS", "S.A.S.")),
    "NL": (("BV", "B.V."), ("NV", "N.V.")),
    "ES": (("SL", "S.L."), ("SA", "S.A.")),
    "IT": (("SpA", "S.p.A."), ("Srl", "S.r.l.")),
    "SE": (("AB", "Aktiebolag"),),
    "AU": (("Pty Ltd", "Pty. Ltd.", "PTY LTD"),),
    "SG": (("Pte Ltd", "Pte. Ltd.", "PTE LTD"),),
}
TLDS = {
    "US": ".com",
    "CA": ".ca",
    "GB": ".co.uk",
    "DE": ".de",
    "FR": ".fr",
    "NL": ".nl",
    "ES": ".es",
    "IT": ".it",
}
REGIONS = ("UK", "Deutschland", "France", "Iberia", "Nordics", "APAC", "Americas", "Benelux")
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com")
# (HubSpot industry, Salesforce Industry)
INDUSTRIES = (
    ("COMPUTER_SOFTWARE", "Technology"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Technology"),
    ("BANKING", "Banking"),
    ("FINANCIAL_SERVICES", "Finance"),
    ("INSURANCE", "Insurance"),
    ("RETAIL", "Retail"),
    ("CONSTRUCTION", "Construction"),
    ("HOSPITAL_HEALTH_CARE", "Healthcare"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
    ("UTILITIES", "Utilities"),
    ("CHEMICALS", "Chemicals"),
    ("BIOTECHNOLOGY", "Biotechnology"),
    ("MANAGEMENT_CONSULTING", "Consulting"),
    ("ENTERTAINMENT", "Entertainment"),
    ("FOOD_BEVERAGES", "Food & Beverage"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Transportation"),
)
LIFECYCLE = (
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "other",
)
HS_LEAD_STATUS = ("NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT")
SF_LEAD_STATUS = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
SF_TYPES = (
    "Prospect",
    "Customer - Direct",
    "Customer - Channel",
    "Channel Partner / Reseller",
    "Other",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")

T0 = datetime(2019, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, tzinfo=UTC)


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


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _typo(text: str, rnd: random.Random) -> str:
    if len(text) < 5:
        return text
    i = rnd.randrange(1, len(text) - 2)
    kind = rnd.random()
    if kind < 0.4:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # swap
    if kind < 0.7:
        return text[:i] + text[i + 1 :]  # drop
    return text[:i] + text[i] + text[i:]  # double


def _phone(cc: str, digits: str, style: int) -> str:
    if cc == "1":
        a, b, c = digits[:3], digits[3:6], digits[6:10]
        return (
            f"+1 {a} {b} {c}",
            f"({a}) {b}-{c}",
            f"{a}.{b}.{c}",
            f"{a}{b}{c}",
            f"+1-{a}-{b}-{c}",
        )[style]
    national = digits[:9]
    return (
        f"+{cc} {national[:2]} {national[2:5]} {national[5:]}",
        f"0{national[:2]} {national[2:5]} {national[5:]}",
        f"+{cc}{national}",
        f"00{cc} {national}",
        f"+{cc} ({national[:2]}) {national[2:]}",
    )[style]


def _website(domain: str, style: int) -> str:
    return (
        f"https://www.{domain}",
        f"http://{domain}/",
        f"www.{domain}",
        domain,
        f"https://{domain}/en/home",
        f"HTTPS://WWW.{domain.upper()}",
    )[style]


def _display_name(base: str, suffix: str | None, rnd: random.Random, mess: float) -> str:
    name = base
    if suffix and rnd.random() < 0.85:
        name = f"{base}{suffix}" if suffix.startswith(",") else f"{base} {suffix}"
    r = rnd.random()
    if r < mess * 0.25:
        name = name.upper()
    elif r < mess * 0.5:
        name = _typo(name, rnd)
    elif r < mess * 0.75 and " & " in name:
        name = name.replace(" & ", " and ")
    elif r < mess:
        name = name.replace(" ", "-", 1) if rnd.random() < 0.3 or name.endswith(".") else name + "."
    return name


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
        slug = _slug(base.replace("&", "and") if p in (7, 8) else base)
        country = PLACES[place[i]][1]
        domain = slug + TLDS.get(country, ".com" if rnd.random() < 0.7 else ".io")
        if domain in seen_domains:
            seen_domains[domain] += 1
            domain = f"{slug}{seen_domains[domain]}{TLDS.get(country, '.com')}"
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
        name = _display_name(bases[i], suffix, rnd, mess)
        modified = int(created[i]) + rnd.randrange(0, int((T1.timestamp() * 1000) - created[i]))
        phone = _phone(cc, str(phone_digits[i]), rnd.randrange(5)) if rnd.random() < 0.8 else None
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
                "website": _website(domains[i], web_style)
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
                "Website": _website(domains[i], web_style) if has_site else None,
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

    contacts, sf_contacts, sf_leads = _people(
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


def _people(
    rng: np.random.Generator,
    rnd: random.Random,
    n_entities: int,
    spec: Size,
    bases: list[str],
    domains: list[str],
    place: np.ndarray,
    in_hs: np.ndarray,
    in_sf: np.ndarray,
    hs_index: dict[int, int],
    sf_index: dict[int, int],
    created: np.ndarray,
    owners_hs: list[str],
    owners_sf: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    n_people = int(n_entities * spec.persons_per_company)
    company = rng.integers(0, n_entities, n_people)
    first = rng.integers(0, len(FIRST), n_people)
    last = rng.integers(0, len(SURNAMES), n_people)
    title = rng.integers(0, len(TITLES), n_people)
    pattern = rng.integers(0, 4, n_people)
    digits = rng.integers(10**9, 10**10 - 1, n_people)
    share = rng.random(n_people)
    hs_contacts: list[dict[str, Any]] = []
    sf_contacts: list[dict[str, Any]] = []
    sf_leads: list[dict[str, Any]] = []
    used_emails: set[str] = set()
    t1 = int(T1.timestamp() * 1000)
    for p in range(n_people):
        c = int(company[p])
        fn, ln = FIRST[first[p]], SURNAMES[last[p]]
        local = (f"{fn}.{ln}", f"{fn[0]}{ln}", f"{fn}", f"{fn}_{ln}")[pattern[p]].lower()
        domain = domains[c] if rnd.random() > 0.06 else rnd.choice(FREEMAIL)
        email = f"{local}@{domain}"
        n = 2
        while email in used_emails:
            email = f"{local}{n}@{domain}"
            n += 1
        used_emails.add(email)
        city, _country, cc, hs_country, sf_country = PLACES[place[c]]
        phone = _phone(cc, str(digits[p]), rnd.randrange(5))
        born = int(created[c]) + rnd.randrange(0, 86_400_000 * 200)
        born = min(born, t1 - 86_400_000)
        entity = f"pe{p}"
        # presence: both systems when the company is in both, mostly
        both = in_hs[c] and in_sf[c] and share[p] < 0.7
        hs_here = (
            both or (in_hs[c] and share[p] >= 0.7 and share[p] < 0.9) or (in_hs[c] and not in_sf[c])
        )
        sf_here = both or (in_sf[c] and not hs_here)

        def stamp(rec: dict[str, Any], born: int = born, entity: str = entity) -> dict[str, Any]:
            rec["_entity"] = entity
            rec["_created"] = born
            rec["_modified"] = born + rnd.randrange(0, max(1, t1 - born))
            return rec

        hs_pos = sf_pos = None
        if hs_here:
            hs_first = NICKNAMES.get(fn, fn) if rnd.random() < 0.1 else fn
            rec = {
                "email": email
                if rnd.random() > 0.1
                else email.title()
                if rnd.random() < 0.5
                else email,
                "firstname": hs_first,
                "lastname": _typo(ln, rnd) if rnd.random() < 0.04 else ln,
                "jobtitle": TITLES[title[p]]
                if rnd.random() > 0.15
                else TITLES[(title[p] + 1) % len(TITLES)],
                "phone": phone if rnd.random() > 0.3 else None,
                "company": bases[c] if rnd.random() < 0.7 else None,
                "city": city if rnd.random() > 0.4 else None,
                "country": hs_country if rnd.random() > 0.4 else None,
                "lifecyclestage": rnd.choice(LIFECYCLE),
                "hs_lead_status": rnd.choice(HS_LEAD_STATUS) if rnd.random() < 0.5 else None,
                "hs_email_optout": "true" if rnd.random() < 0.05 else None,
                "hubspot_owner_id": rnd.choice(owners_hs) if rnd.random() > 0.2 else None,
            }
            if c in hs_index:
                rec["_company"] = hs_index[c]
            hs_pos = len(hs_contacts)
            hs_contacts.append(stamp(rec))
            if rnd.random() < 0.03:  # the same person again, under a personal address
                dup = dict(rec)
                alt = f"{fn.lower()}.{ln.lower()}{rnd.randrange(10, 99)}@{rnd.choice(FREEMAIL)}"
                if alt not in used_emails:
                    used_emails.add(alt)
                    dup["email"] = alt
                    dup["phone"] = _phone(cc, str(digits[p]), rnd.randrange(5))
                    hs_contacts.append(stamp(dup))
        if sf_here:
            sf_email = email if rnd.random() > 0.05 else None
            base_rec = {
                "FirstName": fn,
                "LastName": ln,
                "Email": sf_email.upper() if sf_email and rnd.random() < 0.05 else sf_email,
                "Title": TITLES[title[p]],
                "Phone": _phone(cc, str(digits[p]), rnd.randrange(5)),
                "LeadSource": rnd.choice(LEAD_SOURCES) if rnd.random() < 0.6 else None,
                "OwnerId": rnd.choice(owners_sf) if owners_sf else None,
            }
            as_lead = c not in sf_index or rnd.random() < 0.15
            if as_lead:
                lead = {
                    **base_rec,
                    "Company": bases[c],
                    "Website": _website(domains[c], rnd.randrange(6))
                    if rnd.random() < 0.4
                    else None,
                    "City": city,
                    "Country": sf_country,
                    "Status": rnd.choice(SF_LEAD_STATUS),
                }
                sf_pos = ("Lead", len(sf_leads))
                sf_leads.append(stamp(lead))
            else:
                contact = {
                    **base_rec,
                    "MailingCity": city,
                    "MailingCountry": sf_country,
                    "_company": sf_index[c],
                }
                sf_pos = ("Contact", len(sf_contacts))
                sf_contacts.append(stamp(contact))
                if rnd.random() < 0.05 and sf_email:  # also a Lead with the same email
                    lead = {
                        **base_rec,
                        "Company": bases[c],
                        "Status": SF_LEAD_STATUS[0],
                        "City": city,
                    }
                    sf_leads.append(stamp(lead))
                if rnd.random() < 0.03:  # duplicate Contact
                    dup = {**contact, "Phone": _phone(cc, str(digits[p]), rnd.randrange(5))}
                    sf_contacts.append(stamp(dup))
        if hs_pos is not None and sf_pos is not None:
            if rnd.random() < 0.3:
                prop = "salesforcecontactid" if sf_pos[0] == "Contact" else "salesforceleadid"
                hs_contacts[hs_pos]["_xref"] = (sf_pos[0], sf_pos[1], prop)
            if rnd.random() < 0.2:
                target = sf_contacts if sf_pos[0] == "Contact" else sf_leads
                target[sf_pos[1]]["_xref"] = ("contacts", hs_pos, "HubSpot_Id__c")
    return hs_contacts, sf_contacts, sf_leads


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
