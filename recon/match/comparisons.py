"""Ready-made comparisons: company name, domain, email, phone, person name, city, country, ids.

Each function returns a :class:`~recon.match.settings.Comparison` (plain data);
:mod:`recon.match.scoring` compiles them to vectorised rapidfuzz/polars code.
Level thresholds here are similarities (0..1), not weights: weights are fitted
per run from the data being matched.

Examples:
    >>> [lv.label for lv in domain().levels]
    ['null', 'exact', 'same_stem', 'else']
"""

from __future__ import annotations

from .settings import Comparison, Level

__all__ = [
    "city",
    "company_name",
    "country",
    "cross_ids",
    "domain",
    "email",
    "person_name",
    "phone",
]


def company_name(column: str = "name_norm", name: str = "company_name") -> Comparison:
    """Company names after normalisation: exact, compact, fuzzy, word subsets, acronyms.

    ``other_script`` matches names that agree once letters that come back
    differently from Cyrillic or Greek are folded ("Quostum" / "Κυοστυμ").
    ``idf_overlap`` weighs shared words by their rarity, so "Acme Group" and
    "Acme Holdings" share the identifying word while "Alpha Group" and "Beta
    Group" share only a common one. ``extra_words`` (one name is the other plus
    words: "Acme" / "Acme Ventures", a department or regional arm) and a clearly
    different name veto ``auto``; so does ``extra_country`` (the extra words
    name a country: "Acme" / "Acme Germany", a regional arm).

    Examples:
        >>> company_name().levels[1].label
        'exact'
    """
    return Comparison(
        name=name,
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("compact", "compact"),
            Level("extra_words", "extra_words"),
            Level("extra_country", "extra_country"),
            Level("jw_0.95", "jaro_winkler", 0.95),
            Level("edit_1", "edits", 1),
            Level("other_script", "script"),
            Level("idf_0.8", "idf_overlap", 0.8),
            Level("acronym", "acronym"),
            Level("ratio_0.85", "ratio", 0.85),
            Level("idf_0.65", "idf_overlap", 0.65),
            Level("idf_0.5", "idf_overlap", 0.5),
            Level("subset", "token_set", 1.0),
            Level("else", "else"),
        ),
        tf_adjust=True,
        veto_auto=("else", "subset", "extra_words", "extra_country"),
        # inside one system, names that share only some words are siblings more often
        # than duplicates: never propose a merge on them
        no_duplicate=("idf_0.65", "idf_0.5"),
    )


def domain(column: str = "domain", *, veto_other: bool = False) -> Comparison:
    """Registered domains: exact, same stem under another suffix (acme.de / acme.fr), else.

    ``veto_other`` keeps pairs on different domains out of ``auto`` (people: two
    work addresses at different companies are two people more often than one).
    """
    return Comparison(
        name="domain",
        column=column,
        levels=(
            Level("null", "null"),
            Level("exact", "exact"),
            Level("same_stem", "same_stem"),
            Level("else", "else"),
        ),
        tf_adjust=True,
        veto_auto=("else",) if veto_other else (),
    )


def email(column: str = "email") -> Comparison:
    """Normalised email addresses: exact, same mailbox name, else."""
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
            Level("jw_0.94", "jaro_winkler", 0.94),
            Level("token_set_0.9", "token_set", 0.9),
            Level("jw_0.85", "jaro_winkler", 0.85),
            Level("token_set_0.6", "token_set", 0.6),
            Level("else", "else"),
        ),
        tf_adjust=True,
        veto_auto=("else",),
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
    """ISO country codes: exact or else; a different country vetoes ``auto``."""
    return Comparison(
        name="country",
        column=column,
        levels=(Level("null", "null"), Level("exact", "exact"), Level("else", "else")),
        veto_auto=("else",),
    )


def cross_ids(column: str = "xid") -> Comparison:
    """Stored cross-system ids: the records name each other (exact) or someone else (else)."""
    return Comparison(
        name="cross_ids",
        column=column,
        levels=(Level("null", "null"), Level("exact", "exact"), Level("else", "else")),
    )
