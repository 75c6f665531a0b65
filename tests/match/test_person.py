"""The ready-made person settings on a small generated person set: generic comparisons on any
column (names with typos, day/month swapped birth dates, postcode typos), link and dedupe."""

from __future__ import annotations

import random

import polars as pl
import pytest

from recon.match import match_records
from recon.match.settings import person_settings

GIVEN = ["james", "mary", "robert", "linda", "michael", "susan", "david", "karen", "thomas", "emma"]
GIVEN += ["oliver", "chloe", "lachlan", "ruby", "jack", "mia", "noah", "zoe", "liam", "ella"]
SUR = ["smith", "jones", "williams", "brown", "wilson", "taylor", "nguyen", "martin", "white"]
SUR += ["kelly", "ryan", "walker", "harris", "lee", "clarke", "young", "mitchell", "campbell"]
SUBURB = ["richmond", "kew", "carlton", "toorak", "hawthorn", "fitzroy", "brunswick", "coburg"]
STREET = ["main street", "high street", "king road", "station road", "park avenue", "hill close"]


def _typo(rng: random.Random, s: str) -> str:
    i = rng.randrange(1, len(s) - 1)
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :] if rng.random() < 0.5 else s[:i] + s[i + 1 :]


def _people(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        p = {
            "given_name": rng.choice(GIVEN),
            "surname": rng.choice(SUR),
            "date_of_birth": f"{rng.randint(1940, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
            "postcode": str(rng.randint(2000, 7999)),
            "suburb": rng.choice(SUBURB),
            "state": rng.choice(["vic", "nsw", "qld"]),
            "street_number": str(rng.randint(1, 200)),
            "address_1": rng.choice(STREET),
        }
        key = (p["given_name"], p["surname"], p["date_of_birth"])
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _corrupt(rng: random.Random, p: dict[str, str]) -> dict[str, str]:
    """One or two errors: a name typo, day/month swapped, a postcode typo, a missing field."""
    q = dict(p)
    for kind in rng.sample(["name", "dob", "postcode", "missing"], 2):
        if kind == "name":
            f = rng.choice(["given_name", "surname"])
            q[f] = _typo(rng, q[f])
        elif kind == "dob":
            d = q["date_of_birth"]
            q["date_of_birth"] = d[:4] + d[6:] + d[4:6]
        elif kind == "postcode":
            q["postcode"] = q["postcode"][:3] + str((int(q["postcode"][3]) + 1) % 10)
        else:
            q[rng.choice(["suburb", "street_number", "state"])] = ""
    return q


def _frame(rows: list[dict[str, str]], source: str, ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(
        source=pl.lit(source), object=pl.lit("contacts"), record_id=pl.Series(ids)
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_person_link(seed: int) -> None:
    rng = random.Random(seed)
    people = _people(300, seed)
    left = _frame(people, "hubspot", [f"a{i}" for i in range(len(people))])
    order = list(range(len(people)))
    rng.shuffle(order)
    right = _frame(
        [_corrupt(rng, people[i]) for i in order], "salesforce", [f"b{i}" for i in order]
    )
    result = match_records(left, right, entity="contacts", settings=person_settings())
    links = result.links.filter(pl.col("tier").is_in(["auto", "review"]))
    got = set(links.select("record_id_l", "record_id_r").rows())
    true = {(f"a{i}", f"b{i}") for i in range(len(people))}
    assert len(got & true) >= 0.98 * len(true)
    assert len(got - true) <= 0.01 * len(true)
    # the swapped birth date is explained as such
    levels = {e["level"] for x in links["explanation"] for e in __import__("json").loads(x)}
    assert "transposed" in levels


def test_person_dedupe() -> None:
    rng = random.Random(5)
    people = _people(200, 5)
    rows, ids, truth = [], [], set()
    for i, p in enumerate(people):
        rows.append(p)
        ids.append(f"r{i}")
        if i % 4 == 0:
            rows.append(_corrupt(rng, p))
            ids.append(f"r{i}-dup")
            truth.add(frozenset((f"r{i}", f"r{i}-dup")))
    frame = _frame(rows, "hubspot", ids)
    result = match_records(frame, None, entity="contacts", settings=person_settings())
    dups = result.duplicates.filter(pl.col("tier").is_in(["auto", "review"]))
    got = {frozenset(r) for r in dups.select("record_id_l", "record_id_r").rows()}
    assert len(got & truth) >= 0.95 * len(truth)
    assert len(got - truth) <= 1


def test_person_settings_columns_absent() -> None:
    """Columns the data lacks are skipped: names and birth dates alone still link."""
    people = _people(50, 9)
    cols = ["given_name", "surname", "date_of_birth"]
    left = _frame(
        [{k: p[k] for k in cols} for p in people], "hubspot", [f"a{i}" for i in range(50)]
    )
    right = _frame(
        [{k: p[k] for k in cols} for p in people], "salesforce", [f"b{i}" for i in range(50)]
    )
    result = match_records(left, right, entity="contacts", settings=person_settings())
    assert result.links.height == 50
    assert set(result.counts["links_candidates"]) >= {"birth_date", "surname"}
    assert "postcode_birth_year" not in result.counts["links_candidates"]


def test_features_pass_other_columns_through() -> None:
    """Non-canonical input columns reach matching stripped and lower-cased; canonical
    columns keep their normalised feature and raw JSON stays out."""
    from recon.match.blocking import features

    frame = pl.DataFrame(
        {
            "record_id": ["1", "2"],
            "name": ["Ann Lee", None],
            "phone": ["+1 415 555 0100", None],
            "Postcode": [" 2615 ", ""],
            "data": ["{}", "{}"],
        }
    )
    f = features(frame, "contacts")
    assert f["Postcode"].to_list() == ["2615", None]
    assert f["phone"].to_list()[0] == "+14155550100"
    assert "data" not in f.columns


def test_comparison_on_joined_columns_sees_swapped_names() -> None:
    """A comparison built from several input columns (given name + surname) is declared in the
    settings, survives the JSON round trip and explains a swapped name at its word-set level."""
    import json

    from recon.match import BlockingRule, MatchSettings
    from recon.match import comparisons as C

    full = C.text("full_name", columns=("given_name", "surname"), tokens=True)
    settings = MatchSettings(
        entity="contacts",
        comparisons=(full, C.date("date_of_birth")),
        blocking_rules=(BlockingRule("dob", "exact", "date_of_birth"),),
    )
    assert MatchSettings.from_json(settings.to_json()) == settings
    people = _people(40, 3)
    left = _frame(people, "hubspot", [f"a{i}" for i in range(40)])
    swapped = [p | {"given_name": p["surname"], "surname": p["given_name"]} for p in people]
    right = _frame(swapped, "salesforce", [f"b{i}" for i in range(40)])
    result = match_records(left, right, entity="contacts", settings=settings)
    first = json.loads(result.links.filter(pl.col("record_id_l") == "a0")["explanation"][0])
    assert {"comparison": "full_name", "level": "token_set_0.9"}.items() <= first[0].items()
