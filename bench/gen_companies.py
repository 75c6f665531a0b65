"""Generate a HubSpot company export, a Salesforce Account export and the truth, at any size.

The organisations are invented (pseudo-words from syllables, so 1M distinct names exist), the
noise is what real CRM pairs show, plus kinds of variation the development set does not hold:

- regional arms and departments of one organisation sharing its website (``acme.com`` for
  "Acme Deutschland GmbH" and "Acme Research Division"): distinct entities, hard non-matches;
- names written in another script (Cyrillic, Greek or katakana transliterations) in one system;
- acronyms ("International Business Machines" / "IBM"), legal forms added, dropped or swapped,
  abbreviations, ``&``/``and``, "The", typos, letter case, accents;
- website forms (scheme, ``www``, paths, upper case, country TLD variants) or none; phone formats
  and branch numbers; countries as codes or names; missing or other cities;
- similar-named siblings (same first word, another industry word, another domain).

Files have the devset's columns: HubSpot labels (``Record ID``, ``Company name``...) and
Salesforce Data Loader upper-case API names (``ID``, ``NAME``...).

    python bench/gen_companies.py OUT_DIR --orgs 10000 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import random
import string
from pathlib import Path

#: bumped whenever the output for a given size and seed changes (benchmarks cache by it)
VERSION = 2

HS_HEADER = [
    "Record ID", "Company name", "Company Domain Name", "Website URL", "Phone Number", "City",
    "State/Region", "Country/Region", "Industry", "Number of Employees", "Create Date",
    "Last Modified Date", "Company owner",
]  # fmt: skip
SF_HEADER = [
    "ID", "NAME", "WEBSITE", "PHONE", "BILLINGSTREET", "BILLINGCITY", "BILLINGSTATE",
    "BILLINGPOSTALCODE", "BILLINGCOUNTRY", "INDUSTRY", "NUMBEROFEMPLOYEES", "CREATEDDATE",
    "LASTMODIFIEDDATE", "OWNERID",
]  # fmt: skip

#: country: (ISO code, names as CRMs write them, TLD, cities, phone country code, legal forms, script)
COUNTRIES = {
    "US": (
        ["US", "USA", "United States", "U.S.", "United States of America"],
        "com",
        ["New York", "Austin", "Chicago", "Seattle", "Boston", "Denver"],
        "1",
        ["Inc", "Inc.", "LLC", "Corp", "Corporation", "Co"],
        None,
    ),
    "GB": (
        ["GB", "UK", "United Kingdom", "England", "Great Britain"],
        "co.uk",
        ["London", "Leeds", "Bristol", "Manchester"],
        "44",
        ["Ltd", "Limited", "PLC", "LLP"],
        None,
    ),
    "DE": (
        ["DE", "Germany", "Deutschland", "DEU"],
        "de",
        ["Berlin", "München", "Köln", "Hamburg", "Stuttgart"],
        "49",
        ["GmbH", "AG", "KG", "GmbH & Co. KG"],
        None,
    ),
    "FR": (
        ["FR", "France", "FRA"],
        "fr",
        ["Paris", "Lyon", "Toulouse", "Nantes"],
        "33",
        ["SA", "SAS", "SARL"],
        None,
    ),
    "RU": (
        ["RU", "Russia", "Russian Federation", "RUS"],
        "ru",
        ["Moscow", "Kazan", "Novosibirsk", "Saint Petersburg"],
        "7",
        ["OOO", "AO", "PAO"],
        "cyrillic",
    ),
    "GR": (
        ["GR", "Greece", "Hellas", "GRC"],
        "gr",
        ["Athens", "Thessaloniki", "Patras"],
        "30",
        ["SA", "AE", "EPE"],
        "greek",
    ),
    "BG": (
        ["BG", "Bulgaria", "BGR"],
        "bg",
        ["Sofia", "Plovdiv", "Varna"],
        "359",
        ["OOD", "EOOD", "AD"],
        "cyrillic",
    ),
    "JP": (
        ["JP", "Japan", "JPN"],
        "co.jp",
        ["Tokyo", "Osaka", "Nagoya"],
        "81",
        ["KK", "Co., Ltd.", "Corporation"],
        "katakana",
    ),
    "IN": (
        ["IN", "India", "IND"],
        "in",
        ["Mumbai", "Bengaluru", "Chennai", "Pune"],
        "91",
        ["Pvt Ltd", "Private Limited", "Ltd"],
        None,
    ),
    "BR": (
        ["BR", "Brazil", "Brasil", "BRA"],
        "com.br",
        ["São Paulo", "Rio de Janeiro", "Curitiba"],
        "55",
        ["Ltda", "SA"],
        None,
    ),
    "NL": (
        ["NL", "Netherlands", "Holland", "The Netherlands"],
        "nl",
        ["Amsterdam", "Rotterdam", "Utrecht"],
        "31",
        ["BV", "B.V.", "NV"],
        None,
    ),
    "ES": (
        ["ES", "Spain", "España", "ESP"],
        "es",
        ["Madrid", "Barcelona", "Valencia"],
        "34",
        ["SL", "SA", "S.L."],
        None,
    ),
}
COUNTRY_WEIGHTS = {
    "US": 30,
    "GB": 10,
    "DE": 10,
    "FR": 7,
    "RU": 6,
    "GR": 4,
    "BG": 3,
    "JP": 6,
    "IN": 8,
    "BR": 6,
    "NL": 5,
    "ES": 5,
}
INDUSTRY_WORDS = {
    "Technology": ["Systems", "Software", "Technologies", "Digital", "Networks", "Labs"],
    "Finance": ["Capital", "Partners", "Financial", "Holdings", "Investments", "Bank"],
    "Manufacturing": ["Industries", "Manufacturing", "Engineering", "Machines", "Metals"],
    "Logistics": ["Logistics", "Freight", "Shipping", "Transport"],
    "Food": ["Foods", "Beverages", "Farms", "Kitchen", "Bakery"],
    "Health": ["Health", "Medical", "Pharma", "Clinics", "Biotech"],
    "Services": ["Services", "Consulting", "Solutions", "Group", "Associates"],
    "Energy": ["Energy", "Power", "Solar", "Oil & Gas", "Utilities"],
}
ABBREV = {
    "International": "Intl",
    "Technologies": "Tech",
    "Services": "Svcs",
    "Manufacturing": "Mfg",
    "Engineering": "Eng",
    "Associates": "Assoc",
    "Corporation": "Corp",
    "Company": "Co",
    "Brothers": "Bros",
    "Industries": "Inds",
}
SWAP_FORMS = {
    "Inc": "Incorporated",
    "Incorporated": "Inc",
    "Ltd": "Limited",
    "Limited": "Ltd",
    "Corp": "Corporation",
    "Corporation": "Corp",
    "LLC": "L.L.C.",
    "GmbH": "G.m.b.H.",
    "BV": "B.V.",
    "B.V.": "BV",
    "SA": "S.A.",
    "AG": "A.G.",
}
CYR = dict(zip("abvgdezijklmnoprstufhcy", "абвгдезийклмнопрстуфхцы", strict=True)) | {
    "w": "в",
    "x": "кс",
    "q": "к",
}
GRK = dict(zip("abgdezijklmnoprstufhcyvw", "αβγδεζιικλμνοπρστυφχκυββ", strict=True)) | {
    "x": "ξ",
    "q": "κ",
}
ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "w",
    "z",
]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
CODAS = ["", "", "", "n", "r", "s", "x", "l", "m", "nt", "ck"]
DIRECTIONS = [
    "North",
    "South",
    "East",
    "West",
    "Central",
    "Pacific",
    "Atlantic",
    "Global",
    "United",
    "First",
    "Royal",
    "Golden",
]


def pseudo_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(
        CODAS
    )


class Org:
    __slots__ = (
        "city",
        "country",
        "domain",
        "entity",
        "form",
        "industry",
        "phone",
        "website_path",
        "words",
    )

    def __init__(
        self,
        entity: str,
        words: list[str],
        form: str,
        industry: str,
        country: str,
        domain: str | None,
        phone: str,
        city: str,
    ) -> None:
        self.entity, self.words, self.form, self.industry = entity, words, form, industry
        self.country, self.domain, self.phone, self.city = country, domain, phone, city
        self.website_path = ""

    @property
    def name(self) -> str:
        return " ".join(self.words) + (f" {self.form}" if self.form else "")


def make_orgs(rng: random.Random, n: int) -> list[Org]:
    countries = list(COUNTRY_WEIGHTS)
    weights = list(COUNTRY_WEIGHTS.values())
    used_names: set[str] = set()
    used_domains: set[str] = set()
    orgs: list[Org] = []
    while len(orgs) < n:
        cc = rng.choices(countries, weights)[0]
        _, tld, cities, _code, forms, _ = COUNTRIES[cc]
        industry = rng.choice(list(INDUSTRY_WORDS))
        shape = rng.random()
        base = pseudo_word(rng, rng.choice((2, 2, 3))).capitalize()
        if shape < 0.45:
            words = [base, rng.choice(INDUSTRY_WORDS[industry])]
        elif shape < 0.65:
            words = [base]
        elif shape < 0.8:
            words = [rng.choice(DIRECTIONS), base, rng.choice(INDUSTRY_WORDS[industry])]
        elif shape < 0.9:  # long names: acronym candidates
            words = [
                base,
                pseudo_word(rng, 2).capitalize(),
                rng.choice(
                    ["International", "Industries", "Technologies", "Services", "Engineering"]
                ),
            ]
        else:
            words = [base, "&", pseudo_word(rng, 2).capitalize()]
        key = " ".join(words).lower()
        if key in used_names:
            continue
        used_names.add(key)
        slug = "".join(w for w in words if w != "&").lower().replace(" ", "")
        if rng.random() < 0.5:
            slug = base.lower()
        domain = f"{slug}.{tld if rng.random() < 0.6 else 'com'}"
        while domain in used_domains:
            domain = f"{slug}{rng.randint(1, 999)}.{tld}"
        used_domains.add(domain)
        phone = "".join(rng.choice(string.digits) for _ in range(10))
        org = Org(
            f"G{len(orgs):07d}",
            words,
            rng.choice(forms),
            industry,
            cc,
            domain,
            phone,
            rng.choice(cities),
        )
        orgs.append(org)
        r = rng.random()
        if r < 0.04 and len(orgs) < n:  # a regional arm on the same website, in another country
            cc2 = rng.choice([c for c in countries if c != cc])
            arm_words = [*words[:2], COUNTRIES[cc2][0][1]]
            arm = Org(
                f"G{len(orgs):07d}",
                arm_words,
                rng.choice(COUNTRIES[cc2][4]),
                industry,
                cc2,
                domain,
                "".join(rng.choice(string.digits) for _ in range(10)),
                rng.choice(COUNTRIES[cc2][2]),
            )
            arm.website_path = "/" + cc2.lower()
            orgs.append(arm)
        elif r < 0.07 and len(orgs) < n:  # a department on the same website, same country
            dept = Org(
                f"G{len(orgs):07d}",
                [*words, rng.choice(["Research", "Foundation", "Ventures", "Academy", "Studios"])],
                "",
                industry,
                cc,
                domain,
                "".join(rng.choice(string.digits) for _ in range(10)),
                org.city,
            )
            dept.website_path = "/" + dept.words[-1].lower()
            orgs.append(dept)
        elif r < 0.12 and len(orgs) < n:  # a sibling: similar name, another organisation
            other = rng.choice(
                [w for w in INDUSTRY_WORDS[industry] if w not in words] or ["Partners"]
            )
            sib_words = [base, other]
            sib_domain = f"{base.lower()}{other.lower().replace(' & ', '')}.{tld}"
            if sib_domain not in used_domains and " ".join(sib_words).lower() not in used_names:
                used_domains.add(sib_domain)
                used_names.add(" ".join(sib_words).lower())
                orgs.append(
                    Org(
                        f"G{len(orgs):07d}",
                        sib_words,
                        rng.choice(forms),
                        industry,
                        cc,
                        sib_domain,
                        "".join(rng.choice(string.digits) for _ in range(10)),
                        rng.choice(cities),
                    )
                )
    return orgs[:n]


def typo(rng: random.Random, s: str) -> str:
    letters = [i for i, ch in enumerate(s) if ch.isalpha()]
    if len(letters) < 5:
        return s
    i = rng.choice(letters[1:])
    op = rng.random()
    if op < 0.35:
        return s[:i] + s[i + 1 :]
    if op < 0.7:
        return s[:i] + rng.choice(string.ascii_lowercase) + s[i + 1 :]
    if i + 1 < len(s):
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return s


def transliterate(s: str, table: dict[str, str]) -> str:
    out = []
    for ch in s:
        low = ch.lower()
        t = table.get(low, ch)
        out.append(t.upper() if ch.isupper() and t != ch else t)
    return "".join(out)


_KANA_ROWS = {
    "": "アイウエオ", "k": "カキクケコ", "s": "サシスセソ", "t": "タチツテト", "n": "ナニヌネノ",
    "h": "ハヒフヘホ", "m": "マミムメモ", "y": "ヤイユエヨ", "r": "ラリルレロ", "w": "ワイウエヲ",
    "g": "ガギグゲゴ", "z": "ザジズゼゾ", "d": "ダヂヅデド", "b": "バビブベボ", "p": "パピプペポ",
}  # fmt: skip
_KANA_ALONE = {"k": "ク", "s": "ス", "t": "ト", "n": "ン", "h": "フ", "m": "ム", "r": "ル", "g": "グ", "z": "ズ", "d": "ド", "b": "ブ", "p": "プ", "y": "イ", "w": "ウ"}  # fmt: skip
_KANA_CONS = {"c": "k", "q": "k", "l": "r", "v": "b", "f": "h", "j": "z"}


def katakana(text: str) -> str:
    """A rough katakana transliteration of Latin words ("Brio Systems" -> "ブリオ システムス")."""
    out = []
    for word in text.lower().split():
        letters = word.replace("x", "ks")
        kana, i = [], 0
        while i < len(letters):
            ch = letters[i]
            if ch in "aiueoy" and (
                ch != "y" or i + 1 >= len(letters) or letters[i + 1] not in "aiueo"
            ):
                kana.append(_KANA_ROWS[""]["aiueo".index("i" if ch == "y" else ch)])
                i += 1
                continue
            cons = _KANA_CONS.get(ch, ch)
            nxt = letters[i + 1] if i + 1 < len(letters) else ""
            if cons in _KANA_ROWS and nxt in "aiueo" and nxt:
                kana.append(_KANA_ROWS[cons]["aiueo".index(nxt)])
                i += 2
            else:
                kana.append(_KANA_ALONE.get(cons, ""))
                i += 1
        out.append("".join(kana))
    return " ".join(w for w in out if w)


def noisy_name(rng: random.Random, org: Org, *, script_ok: bool) -> str:
    words = list(org.words)
    form = org.form
    r = rng.random()
    if r < 0.25:
        form = ""
    elif r < 0.4:
        form = SWAP_FORMS.get(form, form)
    elif r < 0.45:
        form = rng.choice(COUNTRIES[org.country][4])
    if rng.random() < 0.15:
        words = [ABBREV.get(w, w) for w in words]
    if "&" in words and rng.random() < 0.4:
        words = ["and" if w == "&" else w for w in words]
    if len(words) >= 3 and "&" not in words and rng.random() < 0.12:  # the acronym
        words = ["".join(w[0] for w in words).upper()]
    name = " ".join(words) + (f" {form}" if form else "")
    if rng.random() < 0.04:
        name = "The " + name
    if rng.random() < 0.12:
        name = typo(rng, name)
    r = rng.random()
    if r < 0.15:
        name = name.lower()
    elif r < 0.22:
        name = name.upper()
    if rng.random() < 0.08:
        name = name.replace(" ", ", ", 1) if " " in name else name + "."
    script = COUNTRIES[org.country][5]
    if script_ok and script and rng.random() < 0.35:
        plain = " ".join(w for w in words if w != "&")
        if script == "katakana":
            written = katakana(plain)
        else:
            written = transliterate(" ".join(words), CYR if script == "cyrillic" else GRK)
        name = written + (f" {form}" if form and rng.random() < 0.5 else "")
    return name


def noisy_website(rng: random.Random, org: Org) -> str:
    if org.domain is None or rng.random() < 0.22:
        return ""
    domain = org.domain
    if rng.random() < 0.05 and not org.website_path:  # a country TLD variant of the same name
        stem = domain.split(".")[0]
        domain = f"{stem}.{rng.choice(['com', 'net', COUNTRIES[org.country][1]])}"
    form = rng.random()
    if form < 0.3:
        url = domain
    elif form < 0.55:
        url = "www." + domain
    elif form < 0.8:
        url = "https://www." + domain + "/"
    else:
        url = "http://" + domain + rng.choice(["", "/home", "/en", "/about-us"])
    if org.website_path and rng.random() < 0.6:
        url = url.rstrip("/") + org.website_path
    return url.upper() if rng.random() < 0.05 else url


def noisy_phone(rng: random.Random, org: Org) -> str:
    if rng.random() < 0.4:
        return ""
    code = COUNTRIES[org.country][3]
    digits = org.phone
    if rng.random() < 0.1:  # a branch number
        digits = digits[:-3] + "".join(rng.choice(string.digits) for _ in range(3))
    style = rng.random()
    if style < 0.3:
        return f"+{code} {digits[:3]} {digits[3:6]} {digits[6:]}"
    if style < 0.6:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if style < 0.8:
        return digits
    return f"+{code}{digits}"


def noisy_city(rng: random.Random, org: Org) -> str:
    r = rng.random()
    if r < 0.3:
        return ""
    if r < 0.38:
        return rng.choice(COUNTRIES[org.country][2])  # another branch
    return org.city.lower() if rng.random() < 0.2 else org.city


def noisy_country(rng: random.Random, org: Org) -> str:
    return "" if rng.random() < 0.2 else rng.choice(COUNTRIES[org.country][0])


def _date(rng: random.Random, year0: int, year1: int) -> str:
    return f"{rng.randint(year0, year1)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"


_SF_CHARS = string.ascii_letters + string.digits


def generate(
    out_dir: str | Path,
    *,
    orgs: int,
    seed: int = 1,
    p_hs: float = 0.8,
    p_sf: float = 0.8,
    p_dup: float = 0.08,
) -> dict[str, int]:
    """Write ``companies_hubspot.csv``, ``companies_salesforce.csv`` and ``truth_entities.csv``."""
    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hs_ids: set[str] = set()
    sf_ids: set[str] = set()
    counts = {"orgs": orgs, "hubspot": 0, "salesforce": 0}
    with (
        (out / "companies_hubspot.csv").open("w", newline="", encoding="utf-8") as fh,
        (out / "companies_salesforce.csv").open("w", newline="", encoding="utf-8") as fs,
        (out / "truth_entities.csv").open("w", newline="", encoding="utf-8") as ft,
    ):
        hs, sf, truth = csv.writer(fh), csv.writer(fs), csv.writer(ft)
        hs.writerow(HS_HEADER)
        sf.writerow(SF_HEADER)
        truth.writerow(["source", "record_id", "entity"])
        in_sf_script = rng.random() < 0.5  # which system holds the other-script names
        for org in make_orgs(rng, orgs):
            for source, p in (("hubspot", p_hs), ("salesforce", p_sf)):
                if rng.random() >= p:
                    continue
                copies = 1 + (rng.random() < p_dup) + (rng.random() < p_dup / 4)
                for _ in range(copies):
                    name = noisy_name(rng, org, script_ok=(source == "salesforce") == in_sf_script)
                    website = noisy_website(rng, org)
                    if source == "hubspot":
                        rid = str(rng.randint(10**10, 10**11 - 1))
                        while rid in hs_ids:
                            rid = str(rng.randint(10**10, 10**11 - 1))
                        hs_ids.add(rid)
                        domain = "" if not website or rng.random() < 0.15 else (org.domain or "")
                        hs.writerow(
                            [
                                rid,
                                name,
                                domain,
                                website,
                                noisy_phone(rng, org),
                                noisy_city(rng, org),
                                "",
                                noisy_country(rng, org),
                                org.industry.upper() if rng.random() < 0.5 else "",
                                "",
                                _date(rng, 2015, 2022),
                                _date(rng, 2023, 2026),
                                "",
                            ]
                        )
                    else:
                        rid = "001" + "".join(rng.choice(_SF_CHARS) for _ in range(15))
                        while rid in sf_ids:
                            rid = "001" + "".join(rng.choice(_SF_CHARS) for _ in range(15))
                        sf_ids.add(rid)
                        sf.writerow(
                            [
                                rid,
                                name,
                                website,
                                noisy_phone(rng, org),
                                "",
                                noisy_city(rng, org),
                                "",
                                "",
                                noisy_country(rng, org),
                                org.industry.lower(),
                                "",
                                _date(rng, 2015, 2022),
                                _date(rng, 2023, 2026),
                                "005" + "".join(rng.choice(_SF_CHARS) for _ in range(15)),
                            ]
                        )
                    truth.writerow([source, rid, org.entity])
                    counts[source] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--orgs", type=int, default=10_000, help="number of organisations")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(generate(args.out_dir, orgs=args.orgs, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
