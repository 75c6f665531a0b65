"""Comparison levels: the cheap bounds never turn away a pair the full test would pass."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from recon.match.levels import (
    _bits,
    _byte_sums,
    _char_bags,
    _encode,
    _encode_by_join,
    _unexplained_words,
    _within_bound,
    _word_signature,
)

TEXT = st.text(alphabet="abcdeéz 0&Ωж", min_size=1, max_size=14)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=30))
def test_shared_character_bound_never_rejects_a_passing_pair(values) -> None:
    a = [x for x, _ in values] + [x for x, _ in values]
    # near-copies too, so the passing side of each test is exercised
    b = [y for _, y in values] + [x[:-1] + "q" if len(x) > 1 else x for x, _ in values]
    bags_a, len_a = _char_bags(pl.Series(a))
    bags_b, len_b = _char_bags(pl.Series(b))
    common = np.minimum(bags_a, bags_b).sum(axis=1)
    tests = {
        ("jaro_winkler", 0.95): lambda x, y: JaroWinkler.normalized_similarity(x, y) >= 0.95,
        ("jaro_winkler", 0.85): lambda x, y: JaroWinkler.normalized_similarity(x, y) >= 0.85,
        ("ratio", 0.85): lambda x, y: fuzz.ratio(x, y) >= 85,
        ("edits", 1): lambda x, y: DamerauLevenshtein.distance(x, y) <= 1,
        ("edits", 2): lambda x, y: DamerauLevenshtein.distance(x, y) <= 2,
    }
    for (op, t), passes in tests.items():
        may = _within_bound(common, len_a, len_b, op, t)
        for x, y, m in zip(a, b, may, strict=True):
            assert m or not passes(x, y), (op, t, x, y)


def test_character_bags_count_characters_per_bucket() -> None:
    bags, lengths = _char_bags(pl.Series(["abca", "", None, "Ω"]))
    assert lengths.tolist() == [4, 0, 0, 1]
    assert bags[0].sum() == 4 and bags[0][ord("a") % 32] == 2
    assert bags[1].sum() == bags[2].sum() == 0
    assert bags[3][ord("Ω") % 32] == 1


def test_word_signatures_share_a_bit_when_names_share_a_word() -> None:
    sig = _word_signature(np.array([[5, 9, -1], [9, -1, -1], [6, -1, -1]]))
    assert sig[0] & sig[1] and not sig[0] & sig[2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), TEXT), max_size=12), min_size=1, max_size=3))
def test_value_codes_are_equal_exactly_when_values_are(parts) -> None:
    series = [pl.Series("v", p, dtype=pl.String) for p in parts]
    codes = np.concatenate(_encode(series))
    joined = _encode_by_join(pl.concat(series))
    values = [v for p in parts for v in p]
    assert [c == -1 for c in codes] == [v is None for v in values]
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            if a is not None and b is not None:
                assert (codes[i] == codes[j]) == (a == b) == (joined[i] == joined[j])
    assert codes.max(initial=-1) + 1 == len({v for v in values if v is not None})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 255), min_size=32, max_size=32), min_size=1, max_size=20))
def test_byte_sums_are_row_sums_of_the_bytes(rows) -> None:
    bags = np.array(rows, dtype=np.uint8)
    assert _byte_sums(bags.view(np.uint64)).tolist() == bags.sum(axis=1).tolist()


def test_word_masks_hold_at_most_eight_words() -> None:
    assert _bits(np.ones((2, 8), dtype=bool)).tolist() == [255, 255]
    with pytest.raises(ValueError, match="8 words"):
        _bits(np.ones((1, 9), dtype=bool))


@pytest.mark.parametrize(
    ("a", "b", "other_business"),
    [
        # each name has its own word: two businesses of one family
        ("zanthor pizza springfield", "zanthor pizza shelbyville", True),
        ("brontide foods", "brontide logistics", True),
        ("kestrelon hldg", "kestrelon capital", True),
        # a misspelt word escapes the short form names are normalised to: one business
        ("fameglow hldg", "fameglow holuings", False),
        ("reliance ind", "reliance industreis", False),
        ("huneed tech", "huneed techaologies", False),
        ("usha nternational", "usha intl", False),
        ("knoah sloutions", "knoah soln", False),
        ("star fusion gaoup", "star fusoion grp", False),
        # only one name has words of its own: extra words, not this level
        ("acme", "acme ventures", False),
    ],
)
def test_names_with_words_of_their_own_unless_misspelt(
    a: str, b: str, other_business: bool
) -> None:
    assert _unexplained_words(a, b) is other_business
    assert _unexplained_words(b, a) is other_business
