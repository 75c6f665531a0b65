"""Blocking: named rules, counts before scoring, dedupe pairs ordered."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.match.blocking import _code_pairs, _key_pairs, _packed_grams, candidates, features
from recon.match.levels import column_codes
from recon.match.settings import BlockingRule, default_settings


def _frame(rows: list[dict]) -> pl.DataFrame:
    return features(pl.DataFrame(rows), "companies")


def test_counts_per_rule(companies) -> None:
    hs, sf, _ = companies
    rules = default_settings("companies").blocking_rules
    pairs, counts = candidates(_frame(hs.to_dicts()), _frame(sf.to_dicts()), rules)
    assert counts["total"] == pairs.height
    assert set(counts) == {r.name for r in rules} | {"total"}
    assert all(v >= 0 for v in counts.values())
    assert counts["domain"] > 0 and counts["name_ngrams"] > 0
    assert pairs.unique().height == pairs.height


def test_exact_rule_and_block_cap() -> None:
    left = _frame(
        [{"record_id": str(i), "name": "Acme", "phone": "+14155550100"} for i in range(5)]
    )
    right = _frame([{"record_id": "r", "name": "Acme", "phone": "+14155550100"}])
    rule = BlockingRule("phone", "exact", "phone", max_block=3)
    _pairs, counts = candidates(left, right, [rule])
    assert counts["phone"] == 0  # five records share the number: a switchboard, skipped
    # an identifying key (star): no block of all of them, one star pair
    starred = BlockingRule("phone", "exact", "phone", max_block=3, star=True)
    assert candidates(left, right, [starred])[1]["phone"] == 1
    _pairs, counts = candidates(left, right, [BlockingRule("name", "exact", "name_key")])
    assert counts["name"] == 5


def test_dedupe_pairs_are_ordered() -> None:
    f = _frame(
        [{"record_id": str(i), "name": n} for i, n in enumerate(["Acme", "ACME Inc", "Acme"])]
    )
    pairs, _ = candidates(f, None, [BlockingRule("name", "exact", "name_key")])
    assert pairs.rows() == [(0, 1), (0, 2), (1, 2)]


def test_ids_rule() -> None:
    left = _frame([{"record_id": "1", "name": "X", "external_ids": '{"salesforce_id": "001A"}'}])
    right = _frame([{"record_id": "001A", "name": "Y", "source": "salesforce"}])
    _pairs, counts = candidates(left, right, [BlockingRule("ids", "ids", "xid")])
    assert counts["ids"] == 1


def test_the_host_of_a_page_on_a_platform_keys_no_domain() -> None:
    """A pull or an export keeps a Facebook page's host as the domain: two businesses with
    Facebook pages (or Google Sites) share no domain; the platform's own record keeps its."""
    rows = [
        {"record_id": "1", "name": "Joe's Pizza", "domain": "facebook.com",
         "website": "https://www.facebook.com/joespizzanyc"},
        {"record_id": "2", "name": "Smile", "domain": "sites.google.com",
         "website": "https://sites.google.com/view/smile-austin"},
        {"record_id": "3", "name": "Meta", "domain": "facebook.com", "website": "facebook.com"},
        {"record_id": "4", "name": "Acme", "domain": "acme.com",
         "website": "https://www.facebook.com/acme"},
        {"record_id": "5", "name": "Rosalind", "domain": None,
         "website": "https://www.facebook.com/rosalind"},
    ]  # fmt: skip
    got = _frame(rows)["domain"].to_list()
    assert got == [None, None, "facebook.com", "acme.com", None]


@pytest.mark.parametrize(
    ("stored", "sf_id"),
    [
        ("001A0000001abcd", "001A0000001abcdEFG"),  # a report export's 15 against the API's 18
        ("001A0000001abcdEFG", "001A0000001abcd"),
        ("001A0000001abcdEFG", "001A0000001abcdEFG"),
    ],
)
def test_a_salesforce_id_names_its_record_in_15_or_18_characters(stored: str, sf_id: str) -> None:
    from recon.match.levels import compare

    left = _frame(
        [{"record_id": "1", "name": "X", "external_ids": f'{{"salesforce_id": "{stored}"}}'}]
    )
    right = _frame([{"record_id": sf_id, "name": "Y", "source": "salesforce"}])
    pairs, counts = candidates(left, right, [BlockingRule("ids", "ids", "xid")])
    assert counts["ids"] == 1
    s = default_settings("companies")
    g = compare(left, right, pairs["_il"].to_numpy(), pairs["_ir"].to_numpy(), s, None)
    levels = s.comparison("cross_ids").levels
    at = [c.name for c in s.comparisons].index("cross_ids")
    assert levels[int(g[0, at])].label == "exact"  # they name each other, not someone else
    # another record's id, in either length, still names someone else
    other = _frame([{"record_id": "001A0000001abcX", "name": "Z", "source": "salesforce"}])
    g2 = compare(left, other, pairs["_il"].to_numpy(), pairs["_ir"].to_numpy(), s, None)
    assert levels[int(g2[0, at])].label == "else"


def _string_grams(values: list[str], n: int) -> set[tuple[int, str]]:
    return {(i, v[k : k + n]) for i, v in enumerate(values) for k in range(max(len(v) - n + 1, 1))}


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_packed_grams_are_the_string_grams(n: int) -> None:
    """ASCII values' n-grams as integers: one integer per distinct string gram, big-endian
    bytes (so they order as the strings do; the rarest-gram tie-break reads that order)."""
    rng = random.Random(n)
    values = ["".join(rng.choice("abcz09&") for _ in range(rng.randint(1, 12))) for _ in range(300)]
    packed = _packed_grams(pl.DataFrame({"_i": list(range(len(values))), "s": values}), n)
    strings = _string_grams(values, n)
    assert packed.height == len(strings)
    assert packed["g"].n_unique() == len({g for _, g in strings})
    for i in range(len(values)):
        mine = sorted(packed.filter(pl.col("_i") == i)["g"].to_list())
        full = sorted(
            int.from_bytes(g.encode(), "big") for j, g in strings if j == i and len(g) == n
        )
        assert [g for g in mine if g < 1 << (8 * n)] == full
        assert len(mine) == len({g for j, g in strings if j == i})


def test_ngram_pairs_equal_on_ascii_and_other_values() -> None:
    """The integer path (ASCII values) and the string path give the same candidate pairs."""
    names = ["acme widgets", "acme widgetz", "akme widgets", "zorvex", "zorvexx", "q"]
    rule = BlockingRule("ng", "ngrams", "nick", keep=3, n=4, max_block=10)

    def pairs(nicks: list[str]) -> list[tuple[int, int]]:
        rows = [{"record_id": str(i), "nick": x} for i, x in enumerate(nicks)]
        found, _ = candidates(_frame(rows), None, [rule])
        return found.filter(pl.col("_ir") < len(names)).rows()

    # one non-ASCII value sends the whole column down the string path
    assert pairs(names) == pairs([*names, "ωmega"])
    assert (0, 1) in pairs(names)


def test_min_shared_and_its_dedupe_form() -> None:
    """Gram rules may ask pairs to share several of their kept grams, inside one system only."""
    names = ["zorvexwidgets", "zorvexgadgets", "qualmwidgets"]
    frame = _frame([{"record_id": str(i), "name": x} for i, x in enumerate(names)])
    loose = BlockingRule("ng", "ngrams", "name_compact", keep=6, n=4, max_block=10)
    strict = BlockingRule("ng", "ngrams", "name_compact", keep=6, n=4, max_block=10, min_shared=3)
    dedupe_only = BlockingRule(
        "ng", "ngrams", "name_compact", keep=6, n=4, max_block=10, dedupe_min_shared=3
    )
    every, _ = candidates(frame, None, [loose])
    fewer, _ = candidates(frame, None, [strict])
    assert set(fewer.rows()) < set(every.rows())
    assert candidates(frame, None, [dedupe_only])[0].rows() == fewer.rows()
    # across systems the dedupe form leaves pairs alone
    assert (
        candidates(frame, frame, [dedupe_only])[0].rows()
        == candidates(frame, frame, [loose])[0].rows()
    )


KEYS = st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "é"])), max_size=25)


@settings(max_examples=200, deadline=None)
@given(KEYS, KEYS, st.integers(1, 6), st.booleans(), st.booleans())
def test_exact_key_pairs_from_codes_are_the_join_pairs(left, right, cap, dedupe, star) -> None:
    """Pairs found by sorting integer codes are the pairs the join of the keys finds."""
    lf = pl.DataFrame({"_i": range(len(left)), "k": left}, schema={"_i": pl.UInt32, "k": pl.String})
    rf = (
        lf
        if dedupe
        else pl.DataFrame(
            {"_i": range(len(right)), "k": right}, schema={"_i": pl.UInt32, "k": pl.String}
        )
    )
    cl, cr = column_codes(lf, rf, "k")
    got = _code_pairs(cl, cr, cap, dedupe, star)
    want = _key_pairs(lf, rf, "k", cap, dedupe, star=star)
    assert got.schema == want.schema
    assert sorted(got.rows()) == sorted(want.rows())


def test_a_crowded_exact_key_pairs_as_a_star() -> None:
    """Many copies of one record (past the cap) are still found, in linear pairs."""
    rows = [{"record_id": str(i), "name": "Acme", "phone": "+14155550100"} for i in range(60)]
    rule = BlockingRule("phone", "exact", "phone", max_block=50, star=True)
    pairs, counts = candidates(_frame(rows), None, [rule])
    assert counts["phone"] == 59 and sorted(pairs.rows()) == [(0, i) for i in range(1, 60)]
    # a partial key (no star) still skips its crowds
    plain = BlockingRule("phone", "exact", "phone", max_block=50)
    assert candidates(_frame(rows), None, [plain])[1]["phone"] == 0
