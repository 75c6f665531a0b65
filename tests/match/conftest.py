"""Small generated company and contact frames for the matching tests."""

from __future__ import annotations

import random

import polars as pl
import pytest

SYL = ["ka", "lo", "mi", "ren", "tor", "vex", "zu", "pan", "dri", "qua", "sol", "ber", "nix", "ota"]
WORDS = ["systems", "logistics", "foods", "labs", "capital", "media", "health", "energy", "motors"]
FORMS = ["Inc", "Inc.", "LLC", "Ltd", "GmbH", "Corp", "", "", "Co., Ltd."]
COUNTRIES = [("US", "United States"), ("DE", "Germany"), ("FR", "France"), ("GB", "UK")]


def _base(rng: random.Random) -> str:
    stem = "".join(rng.choice(SYL) for _ in range(rng.randint(2, 3))).capitalize()
    return f"{stem} {rng.choice(WORDS).capitalize()}"


def make_companies(
    n: int, seed: int = 0, dup_share: float = 0.1
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """HubSpot and Salesforce company frames of ``n`` organisations; truth maps (source, id) -> entity."""
    rng = random.Random(seed)
    hs, sf, truth = [], [], {}
    seen = set()
    for e in range(n):
        base = _base(rng)
        while base in seen:
            base = _base(rng)
        seen.add(base)
        dom = base.lower().replace(" ", "") + rng.choice([".com", ".io", ".de"])
        code, cname = rng.choice(COUNTRIES)
        phone = f"+1 {rng.randint(200, 989)} {rng.randint(200, 999)} {rng.randint(1000, 9999)}"
        city = rng.choice(["Springfield", "Berlin", "Lyon", "Leeds", "Austin"])
        copies = [("hubspot", 1), ("salesforce", 1)]
        if rng.random() < dup_share:
            copies.append((rng.choice(["hubspot", "salesforce"]), 1))
        for k, (src, _) in enumerate(copies):
            name = f"{base} {rng.choice(FORMS)}".strip()
            if rng.random() < 0.3:
                name = name.upper()
            rid = f"{src[:2]}{e}-{k}"
            row = {
                "source": src,
                "object": "companies" if src == "hubspot" else "Account",
                "record_id": rid,
                "name": name,
                "website": rng.choice([f"https://www.{dom}/", dom, f"http://{dom}/about", None]),
                "phone": phone if rng.random() < 0.7 else None,
                "city": city if rng.random() < 0.8 else None,
                "country": rng.choice([code, cname]),
            }
            (hs if src == "hubspot" else sf).append(row)
            truth[(src, rid)] = e
    return pl.DataFrame(hs), pl.DataFrame(sf), truth


@pytest.fixture
def companies() -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    return make_companies(150, seed=1)


@pytest.fixture(name="make_companies")
def _make_companies_fixture():  # type: ignore[no-untyped-def]
    return make_companies
