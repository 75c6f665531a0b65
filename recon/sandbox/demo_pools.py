"""Word pools and text variants of the demo data generator (:mod:`recon.sandbox.demo`).

Company-name parts, people's names and nicknames, job titles, places with their
phone codes and country spellings per CRM, legal suffixes with their variants,
and the HubSpot/Salesforce picklist values the generator draws from. Written
for recon; shares nothing with any other data set.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

__all__ = [
    "ADJ",
    "FIRST",
    "FREEMAIL",
    "HS_LEAD_STATUS",
    "INDUSTRIES",
    "LEAD_SOURCES",
    "LIFECYCLE",
    "NICKNAMES",
    "NOUN",
    "PLACES",
    "REGIONS",
    "SF_LEAD_STATUS",
    "SF_TYPES",
    "SUFFIXES",
    "SURNAMES",
    "TITLES",
    "TLDS",
    "T0",
    "T1",
    "TRADE",
    "display_name",
    "format_phone",
    "slug",
    "typo",
    "website_form",
]


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


# --------------------------------------------------------------------------- text variants


def slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def typo(text: str, rnd: random.Random) -> str:
    if len(text) < 5:
        return text
    i = rnd.randrange(1, len(text) - 2)
    kind = rnd.random()
    if kind < 0.4:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # swap
    if kind < 0.7:
        return text[:i] + text[i + 1 :]  # drop
    return text[:i] + text[i] + text[i:]  # double


def format_phone(cc: str, digits: str, style: int) -> str:
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


def website_form(domain: str, style: int) -> str:
    return (
        f"https://www.{domain}",
        f"http://{domain}/",
        f"www.{domain}",
        domain,
        f"https://{domain}/en/home",
        f"HTTPS://WWW.{domain.upper()}",
    )[style]


def display_name(base: str, suffix: str | None, rnd: random.Random, mess: float) -> str:
    name = base
    if suffix and rnd.random() < 0.85:
        name = f"{base}{suffix}" if suffix.startswith(",") else f"{base} {suffix}"
    r = rnd.random()
    if r < mess * 0.25:
        name = name.upper()
    elif r < mess * 0.5:
        name = typo(name, rnd)
    elif r < mess * 0.75 and " & " in name:
        name = name.replace(" & ", " and ")
    elif r < mess:
        name = name.replace(" ", "-", 1) if rnd.random() < 0.3 or name.endswith(".") else name + "."
    return name
