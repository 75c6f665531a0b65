"""Comparison levels of record pairs, vectorised: the first level each pair passes, per comparison.

:func:`compare` assigns every pair a level per comparison. Record values are converted once per
frame pair (integer codes, numpy arrays, Python strings, character bags, word signatures) and
then indexed per pair; pairs are compared :data:`CHUNK_PAIRS` at a time, so memory stays flat
however many candidates blocking produced. A level test runs only on the pairs no earlier level
has claimed; cheap necessary conditions (shared characters, shared word bits) decide most pairs
before rapidfuzz's ``cpdist`` scores the rest. Level results are exactly those of the plain tests.

Examples:
    >>> import numpy as np, polars as pl
    >>> from recon.match.blocking import features
    >>> from recon.match.settings import default_settings
    >>> f = features(pl.DataFrame({"record_id": ["1", "2"], "name": ["Acme Inc", "ACME"]}), "companies")
    >>> s = default_settings("companies")
    >>> g = compare(f, f, np.array([0], np.uint32), np.array([1], np.uint32), s, {})
    >>> [lv.label for lv in s.comparisons[0].levels][g[0, 0]]
    'exact'
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from .comparisons import GENERIC_OPS, generic_test
from .settings import Comparison, MatchSettings

__all__ = ["CHUNK_PAIRS", "column_codes", "compare", "release_record_cache"]


#: words kept per name fit one byte: word sets of a pair are bit masks (bit k = kept word k)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _bits(flags: np.ndarray) -> np.ndarray:
    """Per row of a ``(n, k)`` boolean array (k ≤ 8): a byte with bit ``j`` set for column ``j``.

    Examples:
        >>> _bits(np.array([[True, False, True], [False, False, False]])).tolist()
        [5, 0]
    """
    if flags.shape[1] > 8:  # TOKENS_K is 6: a wider setting needs wider masks
        raise ValueError(f"word masks hold 8 words, not {flags.shape[1]}")
    return np.packbits(flags.astype(bool), axis=1, bitorder="little")[:, 0]


def _word_hits(pairs: _Pairs, column: str) -> tuple[np.ndarray, ...]:
    """Which kept words of each side the other side also holds, for every pair of the batch.

    One pass over the word-id arrays serves every word-based level (weighted overlap,
    subsets, extra words): ``(valid_a, valid_b, hit_a, hit_b)``, each a byte per pair with
    bit ``k`` for kept word ``k`` (a word the record holds; one the other side holds too).
    """
    key = f"hits_{column}"
    if key not in pairs.memo:
        # one 64-bit word signature per record: pairs whose signatures share no bit share
        # no word, and only the others are compared word by word
        sig_l, sig_r = pairs.record(
            f"__sig_{column}", lambda f: _word_signature(f[f"{column}_tok"].to_numpy())
        )
        maybe = np.flatnonzero((sig_l[pairs.il] & sig_r[pairs.ir]) != 0)
        a, b = pairs.arrays(f"{column}_tok", maybe)
        hit_a = np.zeros(len(maybe), dtype=np.uint8)
        hit_b = np.zeros(len(maybe), dtype=np.uint8)
        cols_a = [i for i in range(a.shape[1]) if (a[:, i] >= 0).any()]
        cols_b = [j for j in range(b.shape[1]) if (b[:, j] >= 0).any()]
        for i in cols_a:
            ai = a[:, i]
            for j in cols_b:
                eq = (ai == b[:, j]).view(np.uint8)
                hit_a |= eq << np.uint8(i)
                hit_b |= eq << np.uint8(j)
        va, vb = pairs.derived(
            f"__valid_{column}", lambda f: _bits(f[f"{column}_tok"].to_numpy() >= 0), pairs.every
        )
        out_a = np.zeros(len(va), dtype=np.uint8)
        out_b = np.zeros(len(vb), dtype=np.uint8)
        out_a[maybe] = hit_a  # padding (-1) meets padding: masked below
        out_b[maybe] = hit_b
        pairs.memo[key] = (va, vb, out_a & va, out_b & vb)
    return pairs.memo[key]  # type: ignore[no-any-return]


def _word_signature(ids: np.ndarray) -> np.ndarray:
    """Per record (a row of word ids, -1 for none): a 64-bit set of its words (bit ``id mod 64``).

    Examples:
        >>> _word_signature(np.array([[0, 3, -1], [64, -1, -1]])).tolist()
        [9, 1]
    """
    ids = ids.astype(np.int64)
    bits = np.left_shift(np.uint64(1), (ids % 64).astype(np.uint64))
    bits[ids < 0] = 0
    return np.bitwise_or.reduce(bits, axis=1)


def _idf_dice(pairs: _Pairs, column: str, idx: np.ndarray) -> np.ndarray:
    """Weighted Dice overlap of two names' words: rare shared words count most.

    Computed once for every pair of the batch (several levels read it), then indexed.
    """
    key = f"dice_{column}"
    if key not in pairs.memo:
        _, _, hit_a, _ = _word_hits(pairs, column)
        w, _ = pairs.arrays(f"{column}_tokw", pairs.every)
        sa, sb = pairs.arrays(f"{column}_tokwsum", pairs.every)
        # the shared words' weights, added in word order (float32, as a row sum would)
        shared = np.zeros(len(hit_a), dtype=np.float32)
        for k in range(w.shape[1]):
            shared += w[:, k] * ((hit_a >> np.uint8(k)) & np.uint8(1))
        total = sa + sb
        pairs.memo[key] = np.divide(
            2 * shared, total, out=np.zeros(len(total), np.float32), where=total > 0
        )
    return pairs.memo[key][idx]  # type: ignore[no-any-return]


def _geo_debris(pairs: _Pairs, column: str) -> tuple[np.ndarray, ...]:
    """Per pair of the batch, a byte per side with bit ``k`` for kept word ``k`` that is a
    country or region word (``geo_a, geo_b``), and one for a word that is debris of a legal
    form (``debris_a, debris_b``)."""
    geo_a, geo_b = pairs.derived(
        f"__geo_{column}", lambda f: _bits(f[f"{column}_tokgeo"].to_numpy()), pairs.every
    )
    debris_a, debris_b = pairs.derived(
        f"__debris_{column}", lambda f: _bits(f[f"{column}_tokdebris"].to_numpy()), pairs.every
    )
    return geo_a, geo_b, debris_a, debris_b


def _long_names(pairs: _Pairs, column: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The pairs of the batch where a name has more words than the kept ones
    (:data:`~recon.match.scoring.TOKENS_K`, the rarest), and their word vetoes read from the
    names as text (:func:`_word_vetoes`): the word masks never see a long name's common
    words, so "First National Bank of Central Texas" / "... Mortgage" looked one name."""
    key = f"long_{column}"
    if key not in pairs.memo:
        from .scoring import TOKENS_K

        def many(frame: pl.DataFrame) -> np.ndarray:
            words = frame[column].str.split(" ").list.unique().list.len()
            return (words > TOKENS_K).fill_null(False).to_numpy()

        long_a, long_b = pairs.derived(f"__long_{column}", many, pairs.every)
        sub = np.flatnonzero(long_a | long_b)
        left, right = pairs.objects(column, sub)
        found = [_word_vetoes(a, b) for a, b in zip(left, right, strict=True)]
        flags = tuple(np.array(col, dtype=bool) for col in zip(*found, strict=True))
        pairs.memo[key] = (sub, flags or tuple(np.zeros(0, dtype=bool) for _ in range(4)))
    return pairs.memo[key]  # type: ignore[no-any-return]


@functools.cache
def _geo_word_set() -> frozenset[str]:
    from ..normalize import geo_words
    from .scoring import REGION_WORDS

    return geo_words() | REGION_WORDS


def _word_vetoes(a: str, b: str) -> tuple[bool, bool, bool, bool]:
    """The word tests of two names read from their words as text, as the word masks read
    them from the kept words: ``(plain, geo, region, other)``: one name is the other plus a
    word that is no country (:func:`_extra_words`), plus country words only, each has a
    country or region word the other lacks (:func:`_other_region`), each has a plain word
    the other lacks (:func:`_other_words`' candidates). One-letter words are debris.

    Examples:
        >>> _word_vetoes("first national bank of central texas", "first national bank of central texas mortgage")
        (True, False, False, False)
        >>> _word_vetoes("kappa sigma fraternity alumni association chapter north", "kappa sigma fraternity alumni association chapter south")
        (False, False, True, False)
    """
    geo = _geo_word_set()
    wa, wb = set(a.split()), set(b.split())
    only_a, only_b = wa - wb, wb - wa

    def plain(words: set[str]) -> bool:
        return any(w not in geo and not (len(w) == 1 and "a" <= w <= "z") for w in words)

    def country(words: set[str]) -> bool:
        return any(w in geo for w in words)

    extra = only_b if not only_a else only_a if not only_b else set()
    subset = bool(extra) and bool(wa) and bool(wb)
    is_plain = subset and plain(extra)
    return (
        is_plain,
        subset and not is_plain and country(extra),
        bool(wa & wb) and country(only_a) and country(only_b),
        plain(only_a) and plain(only_b),
    )


def _extra_words(pairs: _Pairs, column: str, idx: np.ndarray, *, geo_only: bool) -> np.ndarray:
    """One name's words strictly contain the other's ("acme" / "acme ventures").

    With ``geo_only`` the extra words are country words ("Acme" / "Acme
    Germany": a regional arm, or a country annotation); without it at least one
    extra word is not a country word (a department: "Acme Research"). Extra words of
    one or two letters that are no country are neither: they are what is left of a
    truncated or misspelt legal form ("Lywem V", "Acme Foods C"), and such pairs go on
    to the levels below. Both are computed once for every pair of the batch, then indexed.
    """
    key = f"extra_{column}"
    if key not in pairs.memo:
        valid_a, valid_b, hit_a, hit_b = _word_hits(pairs, column)
        geo_a, geo_b, debris_a, debris_b = _geo_debris(pairs, column)
        na = _POPCOUNT[valid_a]
        nb = _POPCOUNT[valid_b]
        # the words a side holds that the other lacks
        only_a = valid_a & ~hit_a
        only_b = valid_b & ~hit_b
        a_in_b = only_a == 0
        b_in_a = only_b == 0
        # a side has a word the other lacks: a plain one (not a country, not debris), a country
        extra_a_plain = (only_a & ~geo_a & ~debris_a) != 0
        extra_b_plain = (only_b & ~geo_b & ~debris_b) != 0
        extra_a_geo = (only_a & geo_a) != 0
        extra_b_geo = (only_b & geo_b) != 0
        b_bigger = a_in_b & (nb > na)
        a_bigger = b_in_a & (na > nb)
        plain = (b_bigger & extra_b_plain) | (a_bigger & extra_a_plain)
        geo = (b_bigger & extra_b_geo) | (a_bigger & extra_a_geo)
        subset = (b_bigger | a_bigger) & (na > 0) & (nb > 0)
        plain, geo = subset & plain, subset & ~plain & geo
        sub, (long_plain, long_geo, _region, _other) = _long_names(pairs, column)
        plain[sub], geo[sub] = long_plain, long_geo
        pairs.memo[key] = (plain, geo)
    plain, geo = pairs.memo[key]
    return geo[idx] if geo_only else plain[idx]  # type: ignore[no-any-return]


def _name_numbers(names: pl.Series) -> pl.Series:
    """The numbers a name holds, in order, without leading zeros ("store 0512" -> "512"); null
    for a name without digits.

    Examples:
        >>> _name_numbers(pl.Series(["walgreens 1234", "acme", "studio 54 room 007", None])).to_list()
        ['1234', None, '54 7', None]
    """
    nums = names.str.extract_all(r"\d+").list.eval(
        pl.element().str.strip_chars_start("0").replace("", "0")
    )
    joined = nums.list.join(" ")
    return pl.select(
        pl.when(nums.list.len() > 0).then(joined).alias(names.name or "numbers")
    ).to_series()


def _other_region(pairs: _Pairs, column: str, idx: np.ndarray) -> np.ndarray:
    """Each name has a country or region word the other lacks, and they share a word
    ("Kappa Sigma North" / "Kappa Sigma South", "Acme (Europe)" / "Acme (Asia)"): two
    regional arms of one name, not one record."""
    key = f"region_{column}"
    if key not in pairs.memo:
        valid_a, valid_b, hit_a, hit_b = _word_hits(pairs, column)
        geo_a, geo_b, _debris_a, _debris_b = _geo_debris(pairs, column)
        only_a = valid_a & ~hit_a
        only_b = valid_b & ~hit_b
        shared = (valid_a & hit_a) != 0
        region = shared & ((only_a & geo_a) != 0) & ((only_b & geo_b) != 0)
        sub, (_plain, _geo, long_region, _other) = _long_names(pairs, column)
        region[sub] = long_region
        pairs.memo[key] = region
    return pairs.memo[key][idx]  # type: ignore[no-any-return]


def _other_words(pairs: _Pairs, column: str, idx: np.ndarray) -> np.ndarray:
    """Each name has a word the other lacks, and no misspelling explains it, while their shared
    words identify them (weighted overlap ≥ 0.5, as ``idf_0.5``) ("Zanthor Pizza Springfield" / "Zanthor Pizza Shelbyville", "Brontide Foods" /
    "Brontide Logistics"): two businesses of one family (franchisees, sister companies) as
    often as one record, so a shared website is no verdict. A country or region word is
    :func:`_other_region`'s; one- or two-letter debris is neither.

    The word masks pick the candidates; their words are then compared as text: when every
    word of the side with fewer unshared words is a misspelling or short form of one of the
    other side's (:func:`_near_word`: "Industreis" / "Industries", "hldg" / "Holuings"), it
    is one business, not another.
    """
    key = f"otherw_{column}"
    if key not in pairs.memo:
        valid_a, valid_b, hit_a, hit_b = _word_hits(pairs, column)
        geo_a, geo_b, debris_a, debris_b = _geo_debris(pairs, column)
        only_a = valid_a & ~hit_a & ~geo_a & ~debris_a
        only_b = valid_b & ~hit_b & ~geo_b & ~debris_b
        other = (only_a != 0) & (only_b != 0)
        sub, (_plain, _geo, _region, long_other) = _long_names(pairs, column)
        other[sub] = long_other
        pairs.memo[key] = other
    # the words they share must identify (as the idf levels below ask): "Kaka Systems" and
    # "Nixsol Systems" share only a common word, and are simply different names
    cand = pairs.memo[key][idx] & (_idf_dice(pairs, column, idx) >= _OTHER_WORDS_SHARED)
    out = np.zeros(len(idx), dtype=bool)
    sub = np.flatnonzero(cand)
    if sub.size:
        left, right = pairs.objects(column, idx[sub])
        out[sub] = [_unexplained_words(a, b) for a, b in zip(left, right, strict=True)]
    return out


#: the weighted share of words two names must have in common to be one family's names
_OTHER_WORDS_SHARED = 0.5


def _unexplained_words(a: str, b: str) -> bool:
    """Whether names ``a`` and ``b`` each hold a word (3+ letters) the other lacks that no
    near spelling in the other explains.

    Examples:
        >>> _unexplained_words("zanthor pizza springfield", "zanthor pizza shelbyville")
        True
        >>> _unexplained_words("reliance industreis", "reliance industries")
        False
        >>> _unexplained_words("fameglow hldg", "fameglow holuings")  # holdings, misspelt
        False
    """
    wa, wb = set(a.split()), set(b.split())
    only_a = [w for w in wa - wb if len(w) > 2]
    only_b = [w for w in wb - wa if len(w) > 2]
    if not only_a or not only_b:
        return False
    few, many = (only_a, only_b) if len(only_a) <= len(only_b) else (only_b, only_a)
    return not all(any(_near_word(x, y) or _short_typo(x, y) for y in many) for x in few)


def _short_typo(x: str, y: str) -> bool:
    """A three-letter word one keystroke from the other's (an acronym's typo, "bsb" / "brb",
    or a transposition, "hte" / "the").

    Examples:
        >>> _short_typo("hte", "the"), _short_typo("bsb", "brb"), _short_typo("tms", "milbon")
        (True, True, False)
    """
    return min(len(x), len(y)) <= 3 and DamerauLevenshtein.distance(x, y) <= 1


@functools.lru_cache(maxsize=1 << 16)
def _near_word(x: str, y: str) -> bool:
    """Whether two words are one word misspelt or shortened: a near spelling
    ("industreis" / "industries"), either against the other's long forms when it is one of
    the short forms names are normalised to ("hldg" / "holuings": holdings), or one starting
    as the other and holding its letters in order ("intl" / "internationl").

    Examples:
        >>> _near_word("soln", "sloutions"), _near_word("foods", "logistics")
        (True, False)
    """
    for a, b in ((x, y), (y, x)):
        for long in _LONG_FORMS.get(a, (a,)):
            if fuzz.ratio(long, b) >= 75:
                return True
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    if short[0] != long[0]:
        return False
    rest = iter(long)
    return all(ch in rest for ch in short)  # a subsequence: an abbreviation


def _long_forms() -> dict[str, tuple[str, ...]]:
    from ..normalize import ABBREVIATIONS

    out: dict[str, list[str]] = {}
    for long, short in ABBREVIATIONS.items():
        out.setdefault(short, [short]).append(long)
    return {k: tuple(v) for k, v in out.items()}


#: a normalised short form -> itself and the words normalised to it ("hldg": holdings...)
_LONG_FORMS = _long_forms()


def _token_subset(pairs: _Pairs, column: str, idx: np.ndarray) -> np.ndarray:
    """One name's words are all among the other's (token-set ratio 100), from word ids."""
    valid_a, valid_b, hit_a, hit_b = _word_hits(pairs, column)
    a_in_b = (valid_a & ~hit_a) == 0
    b_in_a = (valid_b & ~hit_b) == 0
    # word 0 is kept first: a name with any word has bit 0
    return ((a_in_b | b_in_a) & ((valid_a & 1) > 0) & ((valid_b & 1) > 0))[idx]  # type: ignore[no-any-return]


#: buckets of the character counts behind the common-character bound
_BAG = 32


def _char_bags(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per value: character counts in :data:`_BAG` buckets (code point mod 32, saturating at
    255) and the length in characters. Folding characters into buckets only raises the
    common-character count of a pair, so bounds built on it stay valid."""
    text = values.fill_null("")
    n = text.len()
    lengths = text.str.len_chars().to_numpy().astype(np.int64)
    joined = text.str.join("").item() if n else ""
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32) % _BAG
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    flat = np.bincount(rows * _BAG + codes, minlength=n * _BAG)
    bags = np.minimum(flat, 255).astype(np.uint8).reshape(n, _BAG)
    return bags, lengths


def _common_chars(pairs: _Pairs, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pair of the batch: an upper bound on the characters the two values share
    (multiset intersection), and both lengths. Memoised per batch."""
    key = f"chars_{column}"
    if key not in pairs.memo:
        (bl, ll, sl), (br, lr, sr) = pairs.record(f"__bags_{column}", _wide_bags(column))
        # each side's 32 one-byte counts travel as four 64-bit words
        low = np.minimum(bl[pairs.il].view(np.uint8), br[pairs.ir].view(np.uint8))
        common = _byte_sums(low.view(np.uint64)).astype(np.int64)
        common[sl[pairs.il] | sr[pairs.ir]] = np.iinfo(np.int64).max // 4  # saturated: no bound
        pairs.memo[key] = (common, ll[pairs.il], lr[pairs.ir])
    return pairs.memo[key]  # type: ignore[no-any-return]


def _wide_bags(column: str) -> Callable[[pl.DataFrame], tuple[np.ndarray, ...]]:
    """Record values for :func:`_common_chars`: bags as ``(n, 4)`` 64-bit words, lengths,
    and whether a bucket saturated (255: the count is no longer a bound)."""

    def make(frame: pl.DataFrame) -> tuple[np.ndarray, ...]:
        bags, lengths = _char_bags(frame[column])
        return bags.view(np.uint64), lengths, (bags == 255).any(axis=1)

    return make


_LANES_8 = np.uint64(0x00FF00FF00FF00FF)
_LANES_16 = np.uint64(0x0000FFFF0000FFFF)
_LANES_32 = np.uint64(0xFFFFFFFF)


def _byte_sums(words: np.ndarray) -> np.ndarray:
    """Per row of ``(n, k)`` 64-bit words: the sum of all their bytes (SWAR: bytes added in
    pairs, then 16- and 32-bit lanes, in place of a row sum over ``8 k`` bytes).

    Examples:
        >>> _byte_sums(np.array([[0x0102030405060708, 0xFF], [0, 0]], dtype=np.uint64)).tolist()
        [291, 0]
    """
    x = (words & _LANES_8) + ((words >> np.uint64(8)) & _LANES_8)
    x = (x & _LANES_16) + ((x >> np.uint64(16)) & _LANES_16)
    x = (x & _LANES_32) + (x >> np.uint64(32))
    return x.sum(axis=1, dtype=np.uint64)


def _may_reach(pairs: _Pairs, column: str, idx: np.ndarray, op: str, t: float) -> np.ndarray:
    """Pairs ``idx`` that could pass string level ``op`` at threshold ``t``: a necessary
    condition from the shared characters ``c`` and lengths, so rapidfuzz scores only those.

    - Jaro–Winkler ≥ t needs Jaro ≥ (t − 0.4) / 0.6 (the prefix bonus adds at most
      0.4 (1 − Jaro)), and Jaro ≤ (c/|a| + c/|b| + 1) / 3;
    - ``fuzz.ratio`` ≥ 100 t needs 2c / (|a| + |b|) ≥ t (the common subsequence ≤ c);
    - Damerau–Levenshtein ≤ k needs max(|a|, |b|) − c ≤ k.
    """
    distinct, records = pairs.distinct(column)
    if 10 * distinct < records:
        # very few distinct values (cities): rapidfuzz scores each distinct pair once anyway
        return np.ones(len(idx), dtype=bool)
    common, la, lb = _common_chars(pairs, column)
    return _within_bound(common[idx], la[idx], lb[idx], op, t)


def _within_bound(
    common: np.ndarray, len_a: np.ndarray, len_b: np.ndarray, op: str, t: float
) -> np.ndarray:
    """The necessary condition of :func:`_may_reach`, from shared characters and lengths."""
    c = common.astype(np.float64)
    a = len_a.astype(np.float64)
    b = len_b.astype(np.float64)
    empty = (a == 0) | (b == 0)
    a[empty] = b[empty] = 1.0
    eps = 1e-9
    if op == "jaro_winkler":
        ok = (c / a + c / b + 1) / 3 >= (t - 0.4) / 0.6 - eps
    elif op == "ratio":
        ok = 2 * c / (a + b) >= t - eps
    else:  # edits
        ok = np.maximum(a, b) - c <= t + eps
    return ok | empty  # type: ignore[no-any-return]


def _workers(idx: np.ndarray) -> int:
    """Threads for rapidfuzz: one for small batches (thread start-up costs more)."""
    return -1 if len(idx) > 500_000 else 1


def _encode(series: list[pl.Series]) -> list[np.ndarray]:
    """Integer codes of string series under one code book (null is -1), one array per series.

    Codes are the ranks of the values' 64-bit hashes (a sort of integers, several times
    faster than joining the strings to a book of distinct values). Two values with one
    hash would share a code: the count of distinct hashes is checked against the count of
    distinct values, and on a collision the book is made by a join instead.

    Examples:
        >>> left, right = _encode([pl.Series("v", ["b", None, "a"]), pl.Series("v", ["a"])])
        >>> left[1], left[2] == right[0], left[0] == right[0]
        (np.int32(-1), np.True_, np.False_)
    """
    values = pl.concat(series)
    present = values.is_not_null().to_numpy()
    hashes = values.hash(seed=0).to_numpy()[present]
    book, codes = np.unique(hashes, return_inverse=True)
    if len(book) == values.drop_nulls().n_unique():
        ranks = np.full(len(values), -1, dtype=np.int32)
        ranks[present] = codes
    else:  # pragma: no cover - two distinct values with one 64-bit hash
        ranks = _encode_by_join(values)
    cut = np.cumsum([0, *(len(x) for x in series)])
    return [ranks[cut[i] : cut[i + 1]] for i in range(len(series))]


def _encode_by_join(values: pl.Series) -> np.ndarray:
    """Codes of ``values`` from a book of its distinct values (null is -1)."""
    frame = values.rename("v").to_frame()
    book = frame.drop_nulls().unique().with_row_index("c")
    return (
        frame.join(book, on="v", how="left", maintain_order="left")["c"]
        .cast(pl.Int32)
        .fill_null(-1)
        .to_numpy()
    )


class _Pairs:
    """Left/right values of candidate pairs, fetched lazily per column."""

    def __init__(
        self,
        left: pl.DataFrame,
        right: pl.DataFrame,
        il: np.ndarray,
        ir: np.ndarray,
        records: dict[str, tuple[Any, Any]] | None = None,
    ):
        self.left, self.right, self.il, self.ir = left, right, il, ir
        #: pairs inside one frame (duplicates): record values are converted once for both ends
        self.same = left is right
        self._cache: dict[str, tuple[pl.Series, pl.Series]] = {}
        #: record-level values, kept between batches of one frame pair when the caller shares them
        self._obj: dict[str, tuple[Any, Any]] = {} if records is None else records
        #: values computed once for every pair of this batch
        self.memo: dict[str, Any] = {}
        #: every pair of the batch (memoised values are computed for all of them)
        self.every = np.arange(len(il))

    def record(self, key: str, make: Callable[[pl.DataFrame], Any]) -> tuple[Any, Any]:
        """Record-level values ``make(frame)`` of the left and the right frame, made once per
        frame pair (once for both ends when they are one frame) and kept under ``key``."""
        if key not in self._obj:
            left = make(self.left)
            self._obj[key] = (left, left if self.same else make(self.right))
        return self._obj[key]

    def derived(
        self, key: str, make: Callable[[pl.DataFrame], Any], idx: np.ndarray
    ) -> tuple[Any, Any]:
        """Record-level values ``make(frame)`` (see :meth:`record`) of pairs ``idx``."""
        return self._at(self.record(key, make), idx)

    def _at(self, values: tuple[Any, Any], idx: np.ndarray) -> tuple[Any, Any]:
        """Record values ``values`` (left, right) of pairs ``idx``."""
        la, ra = values
        if idx is self.every:
            return la[self.il], ra[self.ir]
        return la[self.il[idx]], ra[self.ir[idx]]

    def objects(self, column: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Python strings of pairs ``idx`` (records converted once, then indexed)."""

        def strings(frame: pl.DataFrame) -> np.ndarray:
            return frame[column].fill_null("").to_numpy().astype(object)

        return self.derived(f"__obj_{column}", strings, idx)

    def arrays(self, column: str, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """numpy values of pairs ``idx`` (records converted once, then indexed)."""
        return self.derived(f"__np_{column}", lambda f: f[column].to_numpy(), idx)

    def record_codes(
        self, key: str, make: Callable[[pl.DataFrame], list[pl.Series]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integer codes of the record-level series ``make(frame)`` gives, one code book for
        both frames (null is -1): left and right arrays of shape ``(n_series, n_records)``."""
        name = f"__codes_{key}"
        if name not in self._obj:
            ls = make(self.left)
            rs = [] if self.same else make(self.right)
            ranks = _encode([x.cast(pl.String).rename("v") for x in [*ls, *rs]])
            left = np.stack(ranks[: len(ls)])
            self._obj[name] = (left, left if self.same else np.stack(ranks[len(ls) :]))
        return self._obj[name]

    def codes(
        self, key: str, make: Callable[[pl.DataFrame], list[pl.Series]], idx: np.ndarray
    ) -> list[np.ndarray]:
        """Integer codes of derived record values for pairs ``idx`` (equal value, equal code).

        ``make(frame)`` gives one or more record-level series; each is encoded once
        for both sides with one shared code book (null is -1), so a pair test is an
        integer comparison. Returns, per series, the left then the right codes.
        """
        la, ra = self.record_codes(key, make)
        out = []
        for k in range(la.shape[0]):
            out += list(self._at((la[k], ra[k]), idx))
        return out

    def distinct(self, column: str) -> tuple[int, int]:
        """How many distinct values ``column`` holds over both frames, and how many records."""
        la, ra = self.record_codes(column, lambda f: [f[column]])
        return int(max(la.max(initial=0), ra.max(initial=0))) + 1, la.shape[1] + ra.shape[1]

    def arrays_of(
        self, key: str, make: Callable[[pl.Series], pl.Series], column: str, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """numpy values of a derived record column ``make(column)`` for pairs ``idx``."""
        return self.derived(f"__np_{key}", lambda f: make(f[column].fill_null("")).to_numpy(), idx)

    def get(self, column: str) -> tuple[pl.Series, pl.Series]:
        if column not in self._cache:
            self._cache[column] = (
                self.left[column].gather(self.il),
                self.right[column].gather(self.ir),
            )
        return self._cache[column]


def _levels(comp: Comparison, pairs: _Pairs, idf: dict[str, pl.DataFrame]) -> np.ndarray:
    n = len(pairs.il)
    cl, cr = pairs.codes(comp.column, lambda f: [f[comp.column]], np.arange(n))
    null = (cl < 0) | (cr < 0)
    g = np.full(n, len(comp.levels) - 1, dtype=np.int8)
    g[null] = 0
    todo = ~null
    if any(level.op not in _NO_STRING_OPS for level in comp.levels[1:-1]):
        lv, rv = pairs.get(comp.column)
        lf = lv.fill_null("")
        rf = rv.fill_null("")
    else:  # pair values are read as integer codes or Python strings, never gathered here
        lf = rf = pl.Series(dtype=pl.String)
    for k, level in enumerate(comp.levels[1:-1], start=1):
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        test = _test(comp, level.op, level.threshold, lf, rf, idx, pairs, idf)
        hit = idx[test]
        g[hit] = k
        todo[hit] = False
    return g


#: level ops that read pair values as integer codes, numpy arrays or Python strings
#: (any other op gets the pair values as polars string columns)
_NO_STRING_OPS = frozenset(
    {
        "exact", "exact_short", "compact", "jaro_winkler", "ratio", "edits", "token_set",
        "idf_overlap",
        "extra_words", "extra_country", "other_region", "other_words", "other_number",
        "one_word", "script",
        "script_differs", "acronym",
        "same_stem", "other_subdomain",
        "suffix_digits",
    }
)  # fmt: skip


def _same(
    pairs: _Pairs, key: str, make: Callable[[pl.Series], pl.Series], column: str, idx: np.ndarray
) -> np.ndarray:
    """Pairs whose derived values ``make(column)`` are equal and not null (integer codes)."""
    cl, cr = pairs.codes(key, lambda f: [make(f[column])], idx)
    return (cl == cr) & (cl >= 0)


def _cpdist(pairs: _Pairs, column: str, idx: np.ndarray, **kw: Any) -> np.ndarray:
    """rapidfuzz ``cpdist`` over pairs ``idx``; on a column with few distinct values
    (a city) each distinct pair of values is scored once and the scores broadcast."""
    cl, cr = pairs.codes(column, lambda f: [f[column]], idx)
    distinct, records = pairs.distinct(column)
    if len(idx) > 1000 and 2 * distinct < records:
        key = cl.astype(np.int64) * distinct + cr
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        if 2 * len(first) < len(idx):
            sub = idx[first]
            return np.asarray(process.cpdist(*pairs.objects(column, sub), **kw))[inverse]
    return np.asarray(process.cpdist(*pairs.objects(column, idx), **kw))


#: rapidfuzz scorer, score cutoff and pass test of each string level op at threshold t
_STRING_SCORERS: dict[
    str, tuple[Any, Callable[[float], float], Callable[[np.ndarray, float], Any]]
] = {
    "jaro_winkler": (JaroWinkler.normalized_similarity, lambda t: t, lambda s, t: s >= t),
    "ratio": (fuzz.ratio, lambda t: 100 * t, lambda s, t: s >= 100 * t),
    # k edits change the length by at most k and leave all but k characters shared
    "edits": (DamerauLevenshtein.distance, lambda t: int(t), lambda s, t: s <= t),
}


def _string_level(pairs: _Pairs, col: str, idx: np.ndarray, op: str, t: float) -> np.ndarray:
    """Pairs ``idx`` passing a rapidfuzz level: only those the shared-character bound lets
    through are scored."""
    scorer, cutoff, passes = _STRING_SCORERS[op]
    near = _may_reach(pairs, col, idx, op, t)
    out = np.zeros(len(idx), dtype=bool)
    sub = idx[near]
    if sub.size:
        sim = _cpdist(pairs, col, sub, scorer=scorer, score_cutoff=cutoff(t), workers=_workers(sub))
        out[near] = passes(np.asarray(sim), t)
    return out


def _acronym_keys(f: pl.DataFrame, column: str) -> list[pl.Series]:
    """A record's acronym, and its one-word compact name (≥ 2 characters) to meet one."""
    one_word = ~f[column].fill_null("").str.contains(" ") & (f["name_compact"].str.len_chars() >= 2)
    word = pl.select(pl.when(one_word).then(f["name_compact"])).to_series()
    return [f["acronym"], word]


def _test(
    comp: Comparison,
    op: str,
    threshold: float | None,
    lf: pl.Series,
    rf: pl.Series,
    idx: np.ndarray,
    pairs: _Pairs,
    idf: dict[str, pl.DataFrame],
) -> np.ndarray:
    t = 0.0 if threshold is None else float(threshold)
    if op in GENERIC_OPS:  # generic ops on any column (dates, codes, edit similarities)
        return generic_test(op, threshold, lf.gather(idx), rf.gather(idx))
    col = comp.column
    if op == "exact":
        return _same(pairs, col, lambda x: x, col, idx)
    if op == "exact_short":  # equal, and at most ``threshold`` characters long
        same = _same(pairs, col, lambda x: x, col, idx)
        length, _ = pairs.arrays_of(f"{col}_len", lambda x: x.str.len_chars(), col, idx)
        return same & (length <= t)
    if op == "compact":
        return _same(pairs, f"{col}_compact", lambda x: x.str.replace_all(" ", ""), col, idx)
    if op in _STRING_SCORERS:
        return _string_level(pairs, col, idx, op, t)
    if op == "token_set" and t >= 1.0 and f"{comp.column}_tok" in pairs.left.columns:
        return _token_subset(pairs, comp.column, idx)
    if op == "token_set":
        sim = _cpdist(pairs, comp.column, idx, scorer=fuzz.token_set_ratio, workers=_workers(idx))
        return np.asarray(sim) >= 100 * t
    if op == "idf_overlap":
        if f"{comp.column}_tok" not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _idf_dice(pairs, comp.column, idx) >= t
    if op == "extra_words":
        if f"{comp.column}_tok" not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _extra_words(pairs, comp.column, idx, geo_only=False)
    if op == "extra_country":
        if f"{comp.column}_tok" not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _extra_words(pairs, comp.column, idx, geo_only=True)
    if op == "other_region":
        if f"{comp.column}_tok" not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _other_region(pairs, comp.column, idx)
    if op == "other_words":
        if f"{comp.column}_tok" not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _other_words(pairs, comp.column, idx)
    if op == "one_word":
        # one side a single word of the other's whole name ("dalton" / "neil dalton")
        wl, wr = pairs.arrays_of(f"{col}_spaced", lambda x: x.str.contains(" "), col, idx)
        out = np.zeros(len(idx), dtype=bool)
        sub = np.flatnonzero(wl != wr)
        if sub.size:
            left, right = pairs.objects(col, idx[sub])
            out[sub] = [
                bool(a) and bool(b) and (a in b.split() if " " in b else b in a.split())
                for a, b in zip(left, right, strict=True)
            ]
        return out
    if op == "other_number":
        # both names hold numbers, not the same ones ("Store 512" / "Store 513")
        nl, nr = pairs.codes(f"__numbers_{col}", lambda f: [_name_numbers(f[col])], idx)
        return (nl >= 0) & (nr >= 0) & (nl != nr)
    if op == "script":
        # the script key of this comparison's own column (name_norm -> name_script)
        col = "name_script" if comp.column == "name_norm" else f"{comp.column}_script"
        if col not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        return _same(pairs, col, lambda x: x, col, idx)
    if op == "script_differs":
        # one name written in Latin letters, the other in another script
        col = "name_nonlatin" if comp.column == "name_norm" else f"{comp.column}_nonlatin"
        if col not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        lv, rv = pairs.arrays(col, idx)
        return lv != rv  # type: ignore[no-any-return]
    if op == "acronym":
        if not {"acronym", "name_compact"} <= set(pairs.left.columns):
            return np.zeros(len(idx), dtype=bool)
        al, ar, wl, wr = pairs.codes(f"__acronym_{col}", lambda f: _acronym_keys(f, col), idx)
        return ((al == wr) & (al >= 0)) | ((ar == wl) & (ar >= 0))
    if op == "other_subdomain":
        # one registered domain, two different hosts under it ("hn.sgcc.com.cn" /
        # "he.sgcc.com.cn"): two arms of one group, not one company's site
        host = f"{col}_host"
        if host not in pairs.left.columns:
            return np.zeros(len(idx), dtype=bool)
        same = _same(pairs, col, lambda x: x, col, idx)
        hl, hr = pairs.codes(host, lambda f: [f[host]], idx)
        return same & (hl >= 0) & (hr >= 0) & (hl != hr)
    if op == "same_stem":

        def stem(x: pl.Series) -> pl.Series:
            st = x.str.split(".").list.first()
            return pl.select(pl.when(st.str.len_chars() >= 3).then(st)).to_series()

        return _same(pairs, f"{col}_stem", stem, col, idx)
    if op == "suffix_digits":
        k = int(t) or 7

        def suffix(x: pl.Series) -> pl.Series:
            return pl.select(pl.when(x.str.len_chars() >= k).then(x.str.slice(-k))).to_series()

        return _same(pairs, f"{col}_suffix{k}", suffix, col, idx)
    raise ValueError(f"unknown level op {op!r}")


def _xid_levels(pairs: _Pairs) -> np.ndarray:
    """Cross-id comparison: records that name each other, someone else, or nothing."""
    # ids as both name them (a Salesforce id in its 15-character form, whichever was stored)
    xl, xr, idl, idr = pairs.codes("__xid", lambda f: [f["xid"], f["id_key"]], pairs.every)
    named = ((xl >= 0) & (xl == idr)) | ((xr >= 0) & (xr == idl))
    other = ((xl >= 0) & (xl != idr)) | ((xr >= 0) & (xr != idl))
    g = np.zeros(len(xl), dtype=np.int8)
    g[other] = 2
    g[named] = 1
    return g


def compare(
    left: pl.DataFrame,
    right: pl.DataFrame,
    il: np.ndarray,
    ir: np.ndarray,
    settings: MatchSettings,
    idf: dict[str, pl.DataFrame],
) -> np.ndarray:
    """Level index of every pair for every comparison: an ``(n_pairs, n_comparisons)`` int8 array.

    Pairs are compared in chunks of :data:`CHUNK_PAIRS` so memory stays flat
    however many candidates blocking produced.
    """
    shared = _record_cache(left, right)
    if len(il) > CHUNK_PAIRS:
        parts = [
            _compare(
                left, right, il[i : i + CHUNK_PAIRS], ir[i : i + CHUNK_PAIRS], settings, idf, shared
            )
            for i in range(0, len(il), CHUNK_PAIRS)
        ]
        return np.concatenate(parts)
    return _compare(left, right, il, ir, settings, idf, shared)


def column_codes(
    left: pl.DataFrame, right: pl.DataFrame, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``column`` in both frames under one code book (null is -1).

    Kept in this thread's record cache, where the levels comparing the same frames find
    them (blocking on a key and the key's ``exact`` level encode it once).
    """
    none = np.empty(0, dtype=np.uint32)
    pairs = _Pairs(left, right, none, none, _record_cache(left, right))
    la, ra = pairs.record_codes(column, lambda f: [f[column]])
    return la[0], ra[0]


#: record-level values (codes, numpy arrays, Python strings) of the last frame pair compared,
#: per thread: one match compares the same frames many times (u sample, candidates, EM blocks,
#: clusters), and the link and duplicate stages may run in threads of their own
_LOCAL = threading.local()


def _record_cache(
    left: pl.DataFrame, right: pl.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    kept = getattr(_LOCAL, "records", None)
    if kept is not None and kept[0] is left and kept[1] is right:
        return kept[2]
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    _LOCAL.records = (left, right, cache)
    return cache


def release_record_cache() -> None:
    """Drop the record-level values this thread kept between :func:`compare` calls."""
    _LOCAL.records = None


#: pairs compared at once (bounds the memory of gathered pair columns)
CHUNK_PAIRS = 200_000


def _compare(
    left: pl.DataFrame,
    right: pl.DataFrame,
    il: np.ndarray,
    ir: np.ndarray,
    settings: MatchSettings,
    idf: dict[str, pl.DataFrame],
    obj_cache: dict[str, tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    pairs = _Pairs(left, right, il, ir, obj_cache)
    cols = []
    for comp in settings.comparisons:
        if comp.column == "xid":
            cols.append(_xid_levels(pairs))
        elif comp.column not in left.columns:
            cols.append(np.zeros(len(il), dtype=np.int8))
        else:
            cols.append(_levels(comp, pairs, idf))
    if not cols:
        return np.zeros((len(il), 0), dtype=np.int8)
    return np.stack(cols, axis=1)
