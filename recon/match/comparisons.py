"""Ready-made comparisons: company name, domain, email, phone, person name, city, country, ids;
and generic comparisons on ANY column of the input frames (names, dates, codes, text).

Each function returns a :class:`~recon.match.settings.Comparison` (plain data);
:mod:`recon.match.scoring` compiles them to vectorised rapidfuzz/polars code.
Level thresholds here are similarities (0..1), not weights: weights are fitted
per run from the data being matched.

Generic comparisons (:func:`generic`, :func:`text`, :func:`date`, :func:`code`)
name a column of the input frames as it comes (columns that are not canonical
record columns are passed through matching, stripped and lower-cased) and use
the generic level ops, tested by :func:`generic_test`:

- ``levenshtein`` / ``damerau`` / ``jaro_winkler``: normalised similarity ≥ threshold;
- ``prefix``: the first ``threshold`` characters agree (postcodes, ids);
- ``date_transposed``: same year, day and month swapped; ``date_within``: at most
  ``threshold`` days apart; ``same_year``: same year (dates as ``YYYY-MM-DD``,
  ``YYYYMMDD``, ``YYYY/MM/DD``, ``DD/MM/YYYY`` or ``DD.MM.YYYY``);
- ``shared_tokens``: at least ``threshold`` space-separated values in common (sets of
  keys: a company's contacts' e-mail addresses);
- plus ``exact``, ``token_set``, ``ratio``, ``edits``, ``null``, ``else``.

Examples:
    >>> [lv.label for lv in domain().levels]
    ['null', 'other_subdomain', 'exact', 'same_stem', 'else']
    >>> [lv.label for lv in date("dob").levels]
    ['null', 'exact', 'transposed', 'edit_1', 'within_31', 'same_year', 'else']
"""

from __future__ import annotations

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein

from .settings import GENERIC_OPS, Comparison, Level, MatchSettings

__all__ = [
    "GENERIC_OPS",
    "LEVEL_MEANINGS",
    "city",
    "code",
    "company_name",
    "country",
    "cross_ids",
    "date",
    "describe_level",
    "domain",
    "email",
    "generic",
    "generic_test",
    "person_name",
    "phone",
    "shared_contacts",
    "text",
    "with_comparison_columns",
]

#: what the ready-made level labels mean, for people reading an explanation
LEVEL_MEANINGS: dict[str, str] = {
    "null": "missing on one side: no evidence either way",
    "exact": "the same value",
    "exact_short": "the same name of at most three characters (often initials: weak)",
    "compact": "the same once spaces are ignored",
    "extra_words": "one name is the other plus words (a department or arm)",
    "extra_country": "one name is the other plus a country (a regional arm)",
    "other_region": "the names name different countries or regions (two regional arms)",
    "other_words": "each name has words the other lacks (two businesses of one family)",
    "other_number": "the names hold different numbers (two numbered stores or branches)",
    "one_word": "one word against a whole name (a surname or first name alone: weak)",
    "other_subdomain": "one registered domain, different hosts under it (two arms of a group)",
    "jw_0.95": "nearly identical spelling",
    "jw_0.94": "nearly identical spelling",
    "jw_0.9": "similar spelling",
    "jw_0.85": "similar spelling",
    "edit_1": "one typing error apart",
    "other_script": "the same name written in another script",
    "script_differs": "names in two scripts that do not spell alike: not compared letter by letter",
    "idf_0.8": "most of the distinctive words shared",
    "idf_0.65": "many of the distinctive words shared",
    "idf_0.5": "some distinctive words shared",
    "acronym": "one name is the other's initials",
    "ratio_0.85": "mostly the same letters",
    "subset": "one name's words are all in the other",
    "same_stem": "the same domain under another ending (acme.de / acme.fr)",
    "suffix_7": "the same last seven digits",
    "token_set_0.9": "the same words, nearly, in any order",
    "token_set_0.6": "some of the same words (a shared surname, say)",
    "damerau_0.8": "a few typing errors apart",
    "transposed": "day and month swapped",
    "within_31": "within a month",
    "same_year": "the same year",
    "shared_2": "two or more of the same contacts (e-mail addresses) associated",
    "shared_1": "one of the same contacts (an e-mail address) associated",
    "else": "different",
    "match_share": "the starting odds: how common a match is among the candidates",
    "sum": "all comparisons together",
}


def describe_level(label: str) -> str:
    """What a level label means in words (the label itself when recon has no words for it).

    Examples:
        >>> describe_level("acronym")
        "one name is the other's initials"
        >>> describe_level("prefix_3")
        'prefix_3'
    """
    return LEVEL_MEANINGS.get(label, label)


def company_name(
    column: str = "name_norm", name: str = "company_name", *, veto_missing: bool = False
) -> Comparison:
    """Company names after normalisation: exact, compact, fuzzy, word subsets, acronyms.

    ``other_script`` matches names that agree once letters that come back
    differently from Cyrillic or Greek are folded ("Quostum" / "Κυοστυμ").
    ``idf_overlap`` weighs shared words by their rarity, so "Acme Group" and
    "Acme Holdings" share the identifying word while "Alpha Group" and "Beta
    Group" share only a common one. ``extra_words`` (one name is the other plus
    words: "Acme" / "Acme Ventures", a department or regional arm) and a clearly
    different name veto ``auto``; so does ``extra_country`` (the extra words
    name a country: "Acme" / "Acme Germany", a regional arm) and ``other_region`` (each
    name has a country or region word the other lacks: "Acme North" / "Acme South").

    ``script_differs``: one name is written in Latin letters, the other in another script,
    and they do not spell alike even once folded (katakana spells "Central" as "kentoraru"):
    the names are no evidence against the pair (no veto, a weight of their own), so the
    domain, phone and place decide a link. Inside one system such a pair never proposes a
    duplicate (a company's arm abroad shares its website more often than a record is
    copied in another script).

    ``exact_short`` is exact agreement on a name of at most three characters ("WPS"): at
    scale many organisations share such a name, so it gets a weight of its own, fitted
    like every other level, instead of the weight of a long name's exact agreement.
    Inside one system, names sharing only part of their words (``idf_*``) never propose
    a duplicate: those are siblings and regional arms more often than copies.

    ``veto_missing``: a pair whose name is missing on either side is never ``auto`` (for
    companies, where a name is the record; not for a contact's company, often blank): a
    shared domain or phone alone is evidence, not a verdict.

    Examples:
        >>> [lv.label for lv in company_name().levels[1:3]]
        ['exact_short', 'exact']
    """
    return Comparison(
        name=name,
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact_short", "exact_short", 3),
            Level("exact", "exact"),
            Level("compact", "compact"),
            Level("other_number", "other_number"),
            Level("extra_words", "extra_words"),
            Level("extra_country", "extra_country"),
            Level("other_region", "other_region"),
            # before the near spellings: long names that differ in a word ("... Pemberton
            # Foods" / "... Pemberton Logistics") are near as whole strings
            Level("other_words", "other_words"),
            Level("jw_0.95", "jaro_winkler", 0.95),
            Level("edit_1", "edits", 1),
            Level("other_script", "script"),
            Level("idf_0.8", "idf_overlap", 0.8),
            Level("acronym", "acronym"),
            Level("ratio_0.85", "ratio", 0.85),
            Level("idf_0.65", "idf_overlap", 0.65),
            Level("idf_0.5", "idf_overlap", 0.5),
            Level("subset", "token_set", 1.0),
            Level("script_differs", "script_differs"),
            Level("else", "else"),
        ),
        tf_adjust=True,
        veto_auto=(
            "else",
            "subset",
            "extra_words",
            "extra_country",
            "other_region",
            "other_words",
            "other_number",
        )
        + (("null",) if veto_missing else ()),
        # inside one system, names that share only some words are siblings more often
        # than duplicates: never propose a merge on them
        no_duplicate=("idf_0.8", "idf_0.65", "idf_0.5", "script_differs", "other_number"),
        density_adjust=True,
        # near-identical names inside one system are siblings as often as copies (but not
        # names equal once spaces or scripts are set aside)
        needs_support=("exact_short", "jw_0.95", "edit_1", "acronym", "ratio_0.85"),
    )


def domain(column: str = "domain", *, veto_other: bool = False) -> Comparison:
    """Registered domains: exact, same stem under another suffix (acme.de / acme.fr), else.

    ``other_subdomain``: one registered domain, but both websites name a host under it and
    the hosts differ ("hn.sgcc.com.cn" / "he.sgcc.com.cn", "us.acme.com" / "uk.acme.com"):
    two arms of one group. It vetoes ``auto`` (and so never proposes a duplicate).

    ``veto_other`` keeps pairs on different domains out of ``auto`` (people: two
    work addresses at different companies are two people more often than one).
    """
    return Comparison(
        name="domain",
        column=column,
        levels=(
            Level("null", "null"),
            Level("other_subdomain", "other_subdomain"),
            Level("exact", "exact"),
            Level("same_stem", "same_stem"),
            Level("else", "else"),
        ),
        tf_adjust=True,
        veto_auto=("other_subdomain", "else") if veto_other else ("other_subdomain",),
    )


def email(column: str = "email") -> Comparison:
    """Normalised email addresses: exact, nearly the same, else.

    Inside one system two different addresses ("mark@" / "mary@", "john.smith@" /
    "jsmith@") are two mailboxes, most often two people: such a pair is never an automatic
    merge, whatever names and company agree.
    """
    return Comparison(
        name="email",
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("jw_0.95", "jaro_winkler", 0.95),
            Level("else", "else"),
        ),
        tf_adjust=True,
        review_duplicate=("jw_0.95", "else"),
        lifts_veto=("exact",),
    )


def phone(column: str = "phone") -> Comparison:
    """E.164 phones: exact, same last 7 digits (branch lines, lost country code), else."""
    return Comparison(
        name="phone",
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("suffix_7", "suffix_digits", 7),
            Level("else", "else"),
        ),
        tf_adjust=True,
    )


def person_name(column: str = "person_norm") -> Comparison:
    """Full person names (first + last, ASCII, lower case): exact, fuzzy, swapped order."""
    return Comparison(
        name="person_name",
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("one_word", "one_word"),
            Level("jw_0.94", "jaro_winkler", 0.94),
            Level("token_set_0.9", "token_set", 0.9),
            Level("jw_0.85", "jaro_winkler", 0.85),
            Level("token_set_0.6", "token_set", 0.6),
            Level("else", "else"),
        ),
        tf_adjust=True,
        # a shared surname (or first name) alone is how colleagues at one company look: the
        # weakest name levels never decide `auto`, whatever company, domain and city agree;
        # nor does a name that only comes near ("Carol Rossi" / "Ronald Rossi") or one word
        # against a whole name ("Mr. Dalton" / "Neil Dalton")
        veto_auto=("one_word", "jw_0.85", "token_set_0.6", "else"),
        # ...unless one e-mail address says it is one person ("Neil" / "Neil Dalton")
        liftable=("one_word",),
        density_adjust=True,
        # inside one system a full name alone (no phone, company, city or address agreeing)
        # is a namesake as often as a copy: never a duplicate on its own
        needs_support=("exact", "one_word", "jw_0.94", "token_set_0.9", "jw_0.85", "token_set_0.6"),
        # names that only come near ("Carol Rossi" / "Ronald Rossi", "Jeffrey Khan" / "Jeffrey
        # Kelly") at one company are colleagues or relatives as often as one person: such a
        # merge is a person's decision, never automatic
        review_duplicate=("one_word", "jw_0.85"),
    )


def city(column: str = "city") -> Comparison:
    """Cities: exact, fuzzy (spelling), else."""
    return Comparison(
        name="city",
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("jw_0.9", "jaro_winkler", 0.9),
            Level("else", "else"),
        ),
    )


def country(column: str = "country") -> Comparison:
    """ISO country codes: exact or else; a different country vetoes ``auto``. Sharing a
    country is too common to support a near-identical name as a duplicate."""
    return Comparison(
        name="country",
        column=column,
        levels=(Level("null", "null"), Level("exact", "exact"), Level("else", "else")),
        veto_auto=("else",),
        supports=False,
    )


def cross_ids(column: str = "xid") -> Comparison:
    """Stored cross-system ids: the records name each other (exact) or someone else (else)."""
    return Comparison(
        name="cross_ids",
        column=column,
        levels=(Level("null", "null"), Level("exact", "exact"), Level("else", "else")),
        lifts_veto=("exact",),
    )


def shared_contacts(column: str = "contact_emails") -> Comparison:
    """Companies whose associated contacts are the same people (their e-mail addresses): two
    or more, one, or none in common; missing when either company has no contact with an
    address. HubSpot's connector pairs an Account with the company that has "the same
    associated contacts" (seed 003): a trade name and a legal name ("Google" / "Alphabet
    Inc"), a company without a website, are found by their people.

    Examples:
        >>> [lv.label for lv in shared_contacts().levels]
        ['null', 'shared_2', 'shared_1', 'else']
    """
    return Comparison(
        name="shared_contacts",
        column=column,
        levels=(
            Level("null", "null"),
            Level("shared_2", "shared_tokens", 2),
            Level("shared_1", "shared_tokens", 1),
            Level("else", "else"),
        ),
    )


def generic(
    name: str,
    column: str,
    levels: list[tuple[str, str, float | None]] | tuple[tuple[str, str, float | None], ...],
    *,
    tf_adjust: bool = False,
    veto_auto: tuple[str, ...] = (),
    columns: tuple[str, ...] = (),
) -> Comparison:
    """A comparison of any input column from ``(label, op, threshold)`` levels.

    The ``null`` first level and ``else`` last level are added. With ``columns``,
    ``column`` is a new column: those input columns joined by a space.

    Examples:
        >>> c = generic("state", "state", [("exact", "exact", None)])
        >>> [lv.label for lv in c.levels]
        ['null', 'exact', 'else']
    """
    return Comparison(
        name=name,
        column=column,
        levels=(
            Level("null", "null"),
            *(Level(lab, op, t) for lab, op, t in levels),
            Level("else", "else"),
        ),
        tf_adjust=tf_adjust,
        veto_auto=veto_auto,
        columns=tuple(columns),
    )


def with_comparison_columns(frame: pl.DataFrame, settings: MatchSettings) -> pl.DataFrame:
    """Add the columns that comparisons build from several input columns (``columns``).

    A column that already exists is kept; input columns absent from ``frame`` are skipped.

    Examples:
        >>> from recon.match.settings import MatchSettings
        >>> c = text("full_name", columns=("given_name", "surname"), tokens=True)
        >>> s = MatchSettings(entity="contacts", comparisons=(c,), blocking_rules=())
        >>> f = pl.DataFrame({"given_name": ["ann", None], "surname": ["lee", None]})
        >>> with_comparison_columns(f, s)["full_name"].to_list()
        ['ann lee', None]
    """
    new = {}
    for comp in settings.comparisons:
        parts = [c for c in comp.columns if c in frame.columns]
        if not parts or comp.column in frame.columns or comp.column in new:
            continue
        joined = pl.concat_str(
            [pl.col(c).cast(pl.String) for c in parts], separator=" ", ignore_nulls=True
        )
        new[comp.column] = pl.when(joined.str.len_chars() > 0).then(joined)
    return frame.with_columns(**new) if new else frame


def text(
    column: str,
    name: str | None = None,
    *,
    tf_adjust: bool = True,
    tokens: bool = False,
    light: bool = False,
    columns: tuple[str, ...] = (),
) -> Comparison:
    """Short text (a given name, surname, suburb, street): exact, then fuzzy levels.

    ``tokens`` adds a word-set level (words in another order, one name inside the other);
    ``light`` keeps only exact and one close-spelling level (places, streets: cheaper, and
    their finer levels add little beside names and dates).

    Examples:
        >>> [lv.label for lv in text("surname").levels]
        ['null', 'exact', 'jw_0.95', 'damerau_0.8', 'jw_0.85', 'else']
        >>> [lv.label for lv in text("suburb", light=True).levels]
        ['null', 'exact', 'jw_0.9', 'else']
    """
    levels: list[tuple[str, str, float | None]] = [
        ("exact", "exact", None),
        ("jw_0.95", "jaro_winkler", 0.95),
        ("damerau_0.8", "damerau", 0.8),
        ("jw_0.85", "jaro_winkler", 0.85),
    ]
    if light:
        levels = [("exact", "exact", None), ("jw_0.9", "jaro_winkler", 0.9)]
    if tokens:
        levels.insert(-1 if light else 3, ("token_set_0.9", "token_set", 0.9))
    return generic(name or column, column, levels, tf_adjust=tf_adjust, columns=columns)


def date(column: str, name: str | None = None) -> Comparison:
    """Dates (of birth): exact, day/month swapped, one typing error, within a month, same year."""
    return generic(
        name or column,
        column,
        [
            ("exact", "exact", None),
            ("transposed", "date_transposed", None),
            ("edit_1", "edits", 1),
            ("within_31", "date_within", 31),
            ("same_year", "same_year", None),
        ],
    )


def code(column: str, name: str | None = None, *, prefix: int = 3) -> Comparison:
    """Codes and numbers (postcodes, ids, street numbers): exact, one typing error, same prefix.

    Examples:
        >>> [lv.label for lv in code("postcode").levels]
        ['null', 'exact', 'edit_1', 'prefix_3', 'else']
    """
    levels: list[tuple[str, str, float | None]] = [
        ("exact", "exact", None),
        ("edit_1", "edits", 1),
    ]
    if prefix:
        levels.append((f"prefix_{prefix}", "prefix", prefix))
    return generic(name or column, column, levels, tf_adjust=True)


def _ymd(s: pl.Series) -> pl.Series:
    """Dates as ``YYYYMMDD`` text (``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYY/MM/DD``, ``DD/MM/YYYY``,
    ``DD.MM.YYYY``); an impossible date keeps its digits (a swapped day/month). Regex only:
    no date parsing per pair."""
    s = s.cast(pl.String).str.strip_chars()
    ymd = s.str.extract_groups(r"^(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})$")
    dmy = s.str.extract_groups(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")

    def parts(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
        return pl.concat_str([y, m.str.zfill(2), d.str.zfill(2)])

    return pl.select(
        pl.coalesce(
            parts(*(pl.lit(ymd.struct.field(f)) for f in ("1", "2", "3"))),
            parts(*(pl.lit(dmy.struct.field(f)) for f in ("3", "2", "1"))),
        )
    ).to_series()


def generic_test(op: str, threshold: float | None, a: pl.Series, b: pl.Series) -> np.ndarray:
    """Which value pairs ``a[i]``, ``b[i]`` pass the generic level ``op`` (strings; "" is missing).

    Examples:
        >>> a = pl.Series(["19800312", "1980-03-12", "2090"])
        >>> b = pl.Series(["19801203", "1980-04-02", "2091"])
        >>> generic_test("date_transposed", None, a, b).tolist()
        [True, False, False]
        >>> generic_test("date_within", 31, a, b).tolist()
        [False, True, False]
        >>> generic_test("prefix", 3, a, b).tolist()
        [True, True, True]
        >>> generic_test("shared_tokens", 2, pl.Series(["a@x.io b@x.io", "a@x.io"]), pl.Series(["b@x.io a@x.io c@y.io", "a@x.io"])).tolist()
        [True, False]
    """
    t = 0.0 if threshold is None else float(threshold)
    if op == "shared_tokens":
        common = (
            a.str.split(" ")
            .list.set_intersection(b.str.split(" "))
            .list.eval(pl.element().filter(pl.element() != ""))
            .list.len()
        )
        return (common >= max(int(t), 1)).fill_null(False).to_numpy()
    if op in {"levenshtein", "damerau"}:
        scorer = Levenshtein if op == "levenshtein" else DamerauLevenshtein
        sim = process.cpdist(
            a.fill_null("").to_list(),
            b.fill_null("").to_list(),
            scorer=scorer.normalized_similarity,
            score_cutoff=max(t - 1e-6, 0.0),
            workers=-1 if a.len() > 500_000 else 1,
        )
        # cpdist returns float32: 0.8 comes back as 0.79999995
        close = np.asarray(sim, dtype=np.float64) >= t - 1e-6
        return close & (a.str.len_chars() > 0).fill_null(False).to_numpy()
    if op == "prefix":
        k = max(int(t), 1)
        same = (a.str.slice(0, k) == b.str.slice(0, k)) & (a.str.len_chars() >= k)
        return same.fill_null(False).to_numpy()
    # pairs repeat records: parse each distinct value once
    uniq = pl.concat([a, b]).drop_nulls().unique()
    table = _ymd(uniq)
    da = a.replace_strict(uniq, table, default=None, return_dtype=pl.String)
    db = b.replace_strict(uniq, table, default=None, return_dtype=pl.String)
    if op == "same_year":
        return (da.str.slice(0, 4) == db.str.slice(0, 4)).fill_null(False).to_numpy()
    if op == "date_transposed":
        swapped = (
            (da.str.slice(0, 4) == db.str.slice(0, 4))
            & (da.str.slice(4, 2) == db.str.slice(6, 2))
            & (da.str.slice(6, 2) == db.str.slice(4, 2))
            & (da != db)
        )
        return swapped.fill_null(False).to_numpy()
    if op == "date_within":
        pa = da.str.strptime(pl.Date, "%Y%m%d", strict=False)
        pb = db.str.strptime(pl.Date, "%Y%m%d", strict=False)
        days = (pa - pb).dt.total_days().abs()
        return (days <= t).fill_null(False).to_numpy()
    raise ValueError(f"unknown generic level op {op!r}")
