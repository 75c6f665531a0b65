"""Normalisers: company names, acronyms, domains, emails, phones, person names, countries.

Every normaliser exists in two shapes:

- a column function over a :class:`polars.Series` (``company_names``,
  ``domains``, ``phones``...), vectorised so that millions of records take
  seconds: library calls are made once per *distinct* value and only where no
  vectorised rule exists (``anyascii`` for text that is still non-ASCII after
  Unicode decomposition);
- a single-value function (``company_name``, ``domain``, ``phone``...) for one
  value; ``domain`` and ``phone`` call tldextract and phonenumbers directly and
  the tests check the vectorised forms against them.

Legal forms come from cleanco's term data (many countries); public suffixes
from tldextract's bundled snapshot (never the network); calling codes and
national prefixes from phonenumbers' metadata; country names (in many
languages) from phonenumbers' locale data. Words that carry little identity
("group", "holdings") are *not* deleted: matching weighs them by term frequency.

All normalisers are idempotent and never raise on any text; blank or unusable
input gives None.

Examples:
    >>> company_name("The Coca-Cola Company, Inc.")
    'coca cola'
    >>> domain("HTTPS://www.Acme.co.uk:8080/about")
    'acme.co.uk'
    >>> phone("(415) 555-0100", "US")
    '+14155550100'
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

import phonenumbers
import polars as pl
from anyascii import anyascii

__all__ = [
    "FREE_MAIL_DOMAINS",
    "acronym",
    "city",
    "cities",
    "companies",
    "company_name",
    "company_names",
    "countries",
    "country",
    "domain",
    "domain_stem",
    "domains",
    "email",
    "emails",
    "fold_ascii",
    "geo_words",
    "person_name",
    "person_names",
    "phone",
    "phones",
    "role_addresses",
    "script_keys",
    "search_text",
    "page_platforms",
    "stale_mark",
    "stale_marks",
    "subhosts",
]

# ----------------------------------------------------------------------------- text


#: the kana voicing marks (゛ ゜ combined): kept through decomposition, or ゼ would read as セ
_KANA_MARKS = frozenset("\u3099\u309a")
#: combining marks dropped after decomposition (accents), the kana voicing marks excepted
_ACCENTS_RE = r"[\p{Mn}--[\x{3099}\x{309A}]]+"
_NON_ASCII_RE = r"[^\x00-\x7f]"


def _fold_one(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn" or c in _KANA_MARKS)
    stripped = unicodedata.normalize("NFC", stripped)
    return stripped if stripped.isascii() else anyascii(stripped)


def search_text(text: str | None) -> str | None:
    """Text as a search stores and matches it: accents and other scripts folded to ASCII,
    lower case (SQLite's own ``lower`` and ``LIKE`` fold A-Z only).

    Examples:
        >>> search_text("Émile Ørsted"), search_text(None)
        ('emile orsted', None)
    """
    if text is None:
        return None
    return (text if text.isascii() else _fold_one(text)).lower()


def fold_ascii(s: pl.Series) -> pl.Series:
    """Unicode to ASCII: decomposition drops accents; other scripts go through anyascii.

    anyascii runs once per distinct value that is still non-ASCII. The kana voicing
    marks survive the decomposition (they are recomposed), so ゼボ reads "zebo", not "seho".

    Examples:
        >>> fold_ascii(pl.Series(["Société", "Москва", "ゼボ"])).to_list()
        ['Societe', 'Moskva', 'zebo']
    """
    s = s.cast(pl.String)
    # ASCII text is its own fold: only the other values are decomposed (most names are ASCII)
    wide = s.str.contains(_NON_ASCII_RE).fill_null(False)
    if not wide.any():
        return s
    out = s.filter(wide).str.normalize("NFKD").str.replace_all(_ACCENTS_RE, "").str.normalize("NFC")
    bad = out.str.contains(_NON_ASCII_RE)
    if bad.any():
        distinct = out.filter(bad).unique()
        mapping = dict(
            zip(distinct.to_list(), [anyascii(v) for v in distinct.to_list()], strict=True)
        )
        out = pl.select(pl.when(pl.lit(bad)).then(out.replace(mapping)).otherwise(out)).to_series()
    return s.clone().scatter(wide.arg_true(), out).alias(s.name)


def _words(s: pl.Series) -> pl.Series:
    """ASCII, lower case, apostrophes and dots dropped, other punctuation to spaces."""
    return (
        fold_ascii(s)
        .str.to_lowercase()
        .str.replace_all("&", " and ", literal=True)
        .str.replace_all(r"['`.]", "")
        .str.replace_all(r"[^a-z0-9]+", " ")
        .str.strip_chars()
    )


# ----------------------------------------------------------------------------- company names

#: short forms of common business words (both sides map to one token)
ABBREVIATIONS: dict[str, str] = {
    "international": "intl",
    "technologies": "tech",
    "technology": "tech",
    "services": "svc",
    "service": "svc",
    "svcs": "svc",
    "manufacturing": "mfg",
    "brothers": "bros",
    "laboratories": "lab",
    "laboratory": "lab",
    "labs": "lab",
    "systems": "sys",
    "system": "sys",
    "associates": "assoc",
    "university": "univ",
    "institute": "inst",
    "national": "natl",
    "management": "mgmt",
    "department": "dept",
    "industries": "ind",
    "industry": "ind",
    "inds": "ind",
    "pharmaceuticals": "pharma",
    "pharmaceutical": "pharma",
    "communications": "comm",
    "communication": "comm",
    "comms": "comm",
    "engineering": "eng",
    "engg": "eng",
    "saint": "st",
    "mount": "mt",
    "center": "ctr",
    "centre": "ctr",
    "holdings": "hldg",
    "holding": "hldg",
    "hldgs": "hldg",
    "group": "grp",
    "solutions": "soln",
    "solution": "soln",
    "products": "prod",
    "product": "prod",
    "financial": "fin",
    "insurance": "ins",
    "development": "dev",
    "enterprises": "ent",
    "enterprise": "ent",
    "america": "amer",
    "american": "amer",
}

_ORDINAL_WORDS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
    "eighteenth", "nineteenth",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENTHS = (
    "twentieth", "thirtieth", "fortieth", "fiftieth", "sixtieth", "seventieth", "eightieth",
    "ninetieth",
)  # fmt: skip


def _ordinals() -> dict[str, str]:
    """Ordinals written with digits, 1st to 99th (any of the four endings: "22th" is a common
    slip), spelt out: "1st National Bank" is "First National Bank", "21st Century" is
    "Twenty-First Century"."""
    words = dict(enumerate(_ORDINAL_WORDS, start=1))
    for i, tens in enumerate(_TENS):
        words[20 + 10 * i] = _TENTHS[i]
        for unit in range(1, 10):
            words[20 + 10 * i + unit] = f"{tens} {_ORDINAL_WORDS[unit - 1]}"
    return {f"{n}{end}": word for n, word in words.items() for end in ("st", "nd", "rd", "th")}


#: the words of names put in one form: business words shortened, ordinals spelt out
_NAME_WORDS: dict[str, str] = {**_ordinals(), **ABBREVIATIONS}

#: legal forms cleanco knows that are also common identifying words in a name
_KEEP_TERMS = {"uk", "private", "ent", "eu", "ok", "at", "et", "as", "sp", "ca", "pp", "ss"}
#: legal forms cleanco lacks (CIS, Balkan, South/South-East Asian companies)
_EXTRA_TERMS = {
    "and co", "and company", "and cie", "et cie", "co inc", "co ltd", "coltd", "co limited",
    "private limited", "pvt", "pvt ltd", "private ltd", "public company limited", "public co ltd",
    # what is left of "Public Company Limited" written short or with another form ("Siam
    # Cement Public", "... Public Corporation"); at the end of a name only ("Public Storage")
    "public",
    "pcl", "plc", "tbk", "bhd", "berhad", "ao", "pao", "oao", "zao", "jsc", "pjsc", "ojsc", "cjsc",
    "eood", "ood", "ead", "sae", "saog", "kk", "yk", "limited liability company", "ltd liability co",
    # legal forms written out in full (cleanco knows most of them only abbreviated)
    "aktiebolag", "ab publ", "publ", "aktiengesellschaft", "aktieselskab", "aksjeselskap",
    "allmennaksjeselskap", "osakeyhtio", "julkinen osakeyhtio", "sociedad anonima",
    "sociedad limitada", "societa per azioni", "societa a responsabilita limitata",
    "societe anonyme", "societe par actions simplifiee", "naamloze vennootschap",
    "besloten vennootschap", "gesellschaft mit beschrankter haftung", "ggmbh",
    "kommanditgesellschaft", "kabushiki kaisha", "kabushikigaisha", "yugen kaisha",
    "godo kaisha", "public limited company", "sendirian berhad", "sdn bhd",
    "spolka z ograniczona odpowiedzialnoscia", "sp z o o", "sp zoo", "spolka akcyjna",
    "zhushihuishe", "youxiangongsi", "youxian gongsi", "jusikhoesa", "chusikhoesa",
}  # fmt: skip
#: legal forms written before the name ("PT Acme", "OOO Acme")
_PREFIX_RE = (
    r"^(?:pt|cv|ooo|oao|zao|pao|ao|tov|jsc|pjsc|ojsc|"
    r"(?:public |open |closed |private )?joint stock (?:company|co)|"
    r"limited liability (?:company|partnership)) (\S)"
)
#: long legal forms whose misspellings ("Corproation") are still legal forms
_LONG_FORMS = ("corporation", "incorporated", "limited", "company", "gesellschaft")
_SHORT_FORMS = ("inc", "ltd", "llc", "corp", "gmbh", "plc", "co")


@functools.cache
def _legal_terms() -> tuple[str, ...]:
    """cleanco's legal forms of every country, in recon's normal form, longest first.

    Shipped in ``recon/_country_data.py`` (deriving them costs ~60 ms per process); a test
    checks them against :func:`legal_terms_from_cleanco`.
    """
    from ._country_data import LEGAL_TERMS

    return LEGAL_TERMS


def legal_terms_from_cleanco() -> tuple[str, ...]:
    """:func:`_legal_terms` derived from the installed cleanco."""
    from cleanco.termdata import terms_by_country, terms_by_type

    raw = {t for ts in terms_by_type.values() for t in ts} | {
        t for ts in terms_by_country.values() for t in ts
    }
    out = set()
    for term in _words(pl.Series(sorted(raw))).to_list():
        if term and term not in _KEEP_TERMS:
            out.add(term)
    # "and co", "and company" as trailing words
    out |= _EXTRA_TERMS
    return tuple(sorted(out, key=lambda t: (-len(t.split()), -len(t), t)))


@functools.cache
def _legal_re() -> str:
    alts = "|".join(re.escape(t).replace(r"\ ", " ") for t in _legal_terms())
    # keep at least one word: lazily take the shortest head whose tail is all legal forms
    return rf"^(\S.*?)(?: (?:{alts}))+$"


#: short words one edit from a short legal form that are words of names, not typos of it
#: ("Holiday Inn", "Data Core", "Pixel Ink", "Bright LED", "Tarrant Ind." for Industries)
_NOT_FORM_TYPOS = frozenset(
    [
        "in",
        "inn",
        "ink",
        "ind",
        "int",
        "inch",
        "zinc",
        "core",
        "cord",
        "cork",
        "corn",
        "coop",
        "carp",
        "crop",
        "corps",
        "led",
        "lid",
        "lab",
        "ins",  # Insurance, as "Insurance" itself is shortened
        "all",
        "pic",
        "ply",
    ]
)


@functools.lru_cache(maxsize=200_000)
def _is_form_typo(token: str) -> bool:
    """A misspelt legal form: 'cororation', 'limted' (one or two edits away), 'icn', 'lcc'
    (one edit from a short form, unless a word names use: :data:`_NOT_FORM_TYPOS`).

    Examples:
        >>> [_is_form_typo(t) for t in ("cororation", "icn", "lcc", "inn", "core", "ind")]
        [True, True, True, False, False, False]
    """
    from rapidfuzz.distance import DamerauLevenshtein

    if len(token) >= 6:
        return any(DamerauLevenshtein.distance(token, f) <= 2 for f in _LONG_FORMS)
    if 2 <= len(token) <= 4 and token not in _NOT_FORM_TYPOS:
        return any(DamerauLevenshtein.distance(token, f) <= 1 for f in _SHORT_FORMS if len(f) >= 3)
    return False


def _strip_form_typos(w: pl.Series) -> pl.Series:
    """Drop a trailing misspelt legal form (looked up once per distinct last word)."""
    multi = w.str.contains(" ").fill_null(False)
    last = w.str.extract(r" (\S+)$")
    distinct = last.filter(multi).drop_nulls().unique().to_list()
    typos = [t for t in distinct if t not in _legal_set() and _is_form_typo(t)]
    if not typos:
        return w
    hit = last.is_in(typos).fill_null(False) & multi
    cut = w.str.replace(r" \S+$", "")
    return pl.select(pl.when(hit).then(cut).otherwise(w).alias(w.name)).to_series()


@functools.cache
def _legal_set() -> frozenset[str]:
    return frozenset(_legal_terms())


def company_names(s: pl.Series) -> pl.Series:
    """Normalise company names: ASCII, lower case, ``&``→and, no punctuation, no
    leading "the", legal forms removed (cleanco's terms of many countries, a few
    more, legal-form prefixes such as "PT"/"OOO", and misspelt legal forms such
    as "Corproation"; before a parenthesised qualifier too: "Acme, Inc. (United States)" is
    "acme united states"), common business words shortened to one form
    ("International"→"intl"), ordinals spelt out ("1st"→"first").

    A name that is only a legal form ("GmbH", "Inc.") or a placeholder ("Unknown", "N/A",
    "Test") names no company: it is null (missing), never evidence. Emoji and other symbols
    are dropped, not spelt out ("🍎 Inc" is no "Apple").

    HTML entities a web form or an import left in a name are read as their characters
    ("Tool &amp; Die"), and the marks admins put on stale copies ("(old)", "DO NOT USE - ",
    "ZZZ - ", "INACTIVE: ", "[INACTIVE]", "- Copy", "(formerly …)"; a leading mark ends at a
    colon or a spaced dash: "Old-Timers Pizza" is a name) are not part of the name: such a copy
    matches its record.

    Examples:
        >>> company_names(pl.Series(["The Coca-Cola Co.", "Müller & Söhne GmbH"])).to_list()
        ['coca cola', 'muller and sohne']
        >>> company_names(pl.Series(["Kessler Tool &amp; Die", "DO NOT USE - Cobalt Wealth (old)", "Cobalt Wealth - Copy 2"])).to_list()
        ['kessler tool and die', 'cobalt wealth', 'cobalt wealth']
        >>> company_names(pl.Series(["GmbH", "N/A", "🍎 Inc", "Acme® Ltd"])).to_list()
        [None, None, None, 'acme']
        >>> company_names(pl.Series(["Sharma Chemicals Aktiebolag", "Kirovan株式会社"])).to_list()
        ['sharma chemicals', 'kirovan']
    """
    text = _unmarked(_unescaped(s.cast(pl.String)))
    return _plain_company_names(_qualified(text)).alias(s.name)


#: a name's last parenthesised part, what comes before it and what follows ("Acme Inc.
#: (Japan) K.K.")
_QUALIFIER_RE = r"^(.*?\S)\s*\(([^()]*)\)([^()]*)$"


def _qualified(text: pl.Series) -> pl.Series:
    """Names with a parenthesised qualifier ("Brooks Sports, Inc. (United States)", "Acme Ltd
    (HQ)") with the part before it normalised on its own, so a legal form before the
    qualifier goes as one at the end of a name does; the qualifier's words are kept, and the
    whole is then read as one name (a legal form after the qualifier, or all it holds, goes:
    "Acme (Canada) Ltd.", "Acme (Pty) Ltd"). A name whose part before the qualifier names
    nothing ("GmbH (Acme)") is left as it was."""
    has = text.str.contains(_QUALIFIER_RE).fill_null(False)
    if not has.any():
        return text
    sub = text.filter(has)
    parts = sub.str.extract_groups(_QUALIFIER_RE)
    head = _plain_company_names(parts.struct.field("1"))
    joined = pl.select(
        pl.when(head.is_not_null())
        .then(
            pl.concat_str([head, parts.struct.field("2"), parts.struct.field("3")], separator=" ")
        )
        .otherwise(sub)
    ).to_series()
    return text.clone().scatter(has.arg_true(), _unmarked(joined))


def _plain_company_names(text: pl.Series) -> pl.Series:
    """:func:`company_names` of names whose entities and marks of stale copies are gone."""
    w = _words(text.str.replace_all(_SYMBOLS, " ").str.replace_all(_CJK_FORMS, " ")).str.replace(
        r"^the ", ""
    )
    # a legal-form prefix goes ("PT Astra", "OOO Gazprom"); "CV" and "AO" stay: as often
    # initials of the name ("A.O. Smith", "CV Sciences, Inc.", "AO World plc") as legal
    # forms, and the text alone cannot tell (the normalised name must normalise to itself)
    sure = w.str.contains(_PREFIX_RE).fill_null(False) & ~w.str.contains(r"^(?:cv|ao) ").fill_null(
        False
    )
    if sure.any():
        w = pl.select(
            pl.when(sure).then(w.str.replace(_PREFIX_RE, "${1}")).otherwise(w).alias(w.name)
        ).to_series()
    # legal forms can hide behind each other: strip until nothing changes (after the first
    # pass, only the names the last pass changed can change again)
    at: pl.Series | None = None
    for _ in range(4):
        before = w if at is None else w.gather(at)
        after = _strip_form_typos(before.str.replace(_legal_re(), "${1}")).str.replace(r"^the ", "")
        changed = before.ne_missing(after)
        if not changed.any():
            break
        pos = changed.arg_true()
        at = pos if at is None else at.gather(pos)
        w = w.clone().scatter(at, after.gather(pos))
    toks = w.str.split(" ").list.eval(pl.element().replace(_NAME_WORDS))
    out = toks.list.join(" ")
    blank = out.is_in(list(_legal_set() | PLACEHOLDER_NAMES)).fill_null(False)
    return pl.select(
        pl.when((out.str.len_bytes() > 0) & ~blank).then(out).alias(text.name)
    ).to_series()


#: HTML entities left in names by web forms and imports, with the character each stands for
_ENTITIES = (
    ("&amp;", "&"), ("&#38;", "&"), ("&#x26;", "&"), ("&quot;", '"'), ("&#34;", '"'),
    ("&apos;", "'"), ("&#39;", "'"), ("&#x27;", "'"), ("&nbsp;", " "), ("&#160;", " "),
    ("&lt;", "<"), ("&gt;", ">"),
)  # fmt: skip

#: marks admins put on stale copies of a record, before or after its name
_STALE_MARKS = (
    # a leading mark ends at a colon or a spaced dash: "Old-Timers" and "OLD_DOMINION" are names
    r"(?i)^\s*(?:(?:do\s+not\s+use\b(?:\s*:\s*|\s+[-–—|]\s*|\s+)"
    r"|(?:dnu|inactive|obsolete|deleted|duplicate|old|z{3,}|x{3,})(?:\s*:\s*|\s+[-–—|]\s*)))+"
    r"|(?i)^\s*copy\s+of\s+"
    r"|(?i)[\(\[]\s*(?:old|duplicate|dup|dupe|inactive|do\s+not\s+use|dnu|copy|deleted|obsolete|"
    r"archived?|closed|formerly\b[^\)\]]*|fka\b[^\)\]]*|f/k/a\b[^\)\]]*)\s*[\)\]]"
    r"|(?i)\s+[-–—]\s*(?:copy|duplicate|dup|old|do\s+not\s+use|dnu)(?:\s*\d+)?\s*$"
)


def _unescaped(s: pl.Series) -> pl.Series:
    """Common HTML entities read as their characters (only where a name holds one)."""
    if not s.str.contains("&", literal=True).any():
        return s
    for entity, char in _ENTITIES:
        s = s.str.replace_all(entity, char, literal=True)
    return s


#: the marks that say a record is no longer used (a former name, "(formerly Beta)", does not)
_STALE_ONLY = _STALE_MARKS.replace(r"|formerly\b[^\)\]]*|fka\b[^\)\]]*|f/k/a\b[^\)\]]*", "")
_STALE_RE = re.compile(_STALE_ONLY.replace("(?i)", ""), re.IGNORECASE)


def stale_marks(s: pl.Series) -> pl.Series:
    """Whether each name carries a mark of a stale copy (:data:`_STALE_MARKS`: "DO NOT USE - ",
    "(old)", "- Copy 2"...): such a record loses a link or a merge to its unmarked twin.

    Examples:
        >>> stale_marks(pl.Series(["DO NOT USE - Cobalt Wealth", "Cobalt Wealth", "Old-Timers Pizza", None])).to_list()
        [True, False, False, False]
    """
    return s.cast(pl.String).str.contains(_STALE_ONLY).fill_null(False).alias(s.name)


def stale_mark(text: Any) -> bool:
    """Whether one name carries a mark of a stale copy (see :func:`stale_marks`).

    Examples:
        >>> stale_mark("Acme Corp (old)"), stale_mark("Acme Corp - Copy"), stale_mark("Old Mill Bakery")
        (True, True, False)
        >>> stale_mark("Acme Corp (formerly Beta)")  # a former name: the record is the live one
        False
    """
    return isinstance(text, str) and _STALE_RE.search(text) is not None


def _unmarked(s: pl.Series) -> pl.Series:
    """Names without the marks of a stale copy (:data:`_STALE_MARKS`); a name that is only
    such a mark is kept as it was (it names nothing else)."""
    out = s.str.replace_all(_STALE_MARKS, " ")
    return pl.select(
        pl.when(out.str.strip_chars().str.len_chars() > 0).then(out).otherwise(s).alias(s.name)
    ).to_series()


#: emoji and other symbols (®, ™, ★): no part of a name to compare (transliterated, "🍎"
#: would read "apple")
_SYMBOLS = r"[\p{So}\x{FE0F}\x{200D}\x{20E3}]"

#: legal forms in Chinese, Japanese and Korean script, before or after the name (spelt out
#: in Latin letters they run into the name: "Kirovan株式会社")
_CJK_FORMS = (
    "株式会社|有限会社|合同会社|股份有限公司|有限责任公司|有限責任公司|有限公司|주식회사|유한회사"
)

#: names (in normal form) that stand for "no name given"
PLACEHOLDER_NAMES = frozenset(
    {
        "unknown", "n a", "na", "none", "null", "nil", "tbd", "tba", "test", "testing",
        "company", "my company", "no name", "noname", "not applicable", "not available",
        "private", "individual", "self employed", "selfemployed", "freelance", "sample",
        "example", "demo", "default", "other", "various", "xxx", "asdf", "unnamed", "new company",
        "not provided",  # "[not provided]": what HubSpot's connector (and recon) fills in
    }
)  # fmt: skip

#: person names (in normal form) that stand for "no name given"
PERSON_PLACEHOLDERS = frozenset(
    {
        "not provided", "unknown", "n a", "na", "none", "null", "nil", "tbd", "tba", "test",
        "no name", "noname", "unnamed", "xxx", "asdf", "anonymous", "not available",
    }
)  # fmt: skip

#: of those, the ones that are no real first or last name either: "Na", "Null" and "Test"
#: are surnames, so they stand for "no name" only as a whole name, never as one part of it
PERSON_PART_PLACEHOLDERS = PERSON_PLACEHOLDERS - {"na", "none", "null", "nil", "test"}


#: romanisations that one name gets back from another script (Cyrillic ц→ts, Greek β→v,
#: χ→ch, υ→y...) folded to one letter: a key to compare names across scripts
_TRANSLIT_FOLDS = (
    ("kh", "h"), ("ch", "h"), ("ph", "f"), ("th", "t"), ("ts", "c"), ("ks", "x"), ("ck", "k"),
    ("q", "k"), ("c", "k"), ("w", "v"), ("b", "v"), ("y", "u"), ("j", "i"), ("z", "s"),
)  # fmt: skip


_FOLDED_LETTERS = "abcdefghiklmnoprstuvx"  # the letters left after folding
_DOUBLED = "|".join(f"({c}){c}+" for c in _FOLDED_LETTERS)
_DOUBLED_TO = "".join(f"${{{i}}}" for i in range(1, len(_FOLDED_LETTERS) + 1))


def _fold_letters(s: pl.Series) -> pl.Series:
    """:func:`script_keys`' letter folding (no word shortening): the romanisations another
    script gives back folded to one letter, then doubled letters collapsed."""
    for a, b in _TRANSLIT_FOLDS:
        s = s.str.replace_all(a, b, literal=True)
    # doubled letters collapse, all letters in one pass (one alternative and group per letter)
    return s.str.replace_all(_DOUBLED, _DOUBLED_TO)


@functools.cache
def _folded_abbreviations() -> dict[str, str]:
    """Business words as they come back from another script, folded, to their folded short
    form ("servitses" and "services" both fold to "servikes", shortened to "svk"); a
    folded word two short forms claim is left alone."""
    longs = _fold_letters(pl.Series(list(ABBREVIATIONS), dtype=pl.String)).to_list()
    shorts = _fold_letters(pl.Series(list(ABBREVIATIONS.values()), dtype=pl.String)).to_list()
    claims: dict[str, set[str]] = {}
    for long, short in zip(longs, shorts, strict=True):
        claims.setdefault(long, set()).add(short)
    return {k: next(iter(v)) for k, v in claims.items() if len(v) == 1}


def script_keys(names_norm: pl.Series) -> pl.Series:
    """A lossy key of normalised names that survives a round trip through Cyrillic or Greek.

    "quostum consulting" and "kyostym konsylting" (its Greek spelling, back in
    Latin letters) get one key. Doubled letters collapse. Common business words
    are shortened after folding too: a Latin name's "services" was shortened to "svc"
    by :func:`company_names`, its Cyrillic spelling comes back as "servitses", and both
    become "svk".

    Examples:
        >>> script_keys(pl.Series(["zacea hldg", "zatsea hldg"])).to_list()
        ['sakea hldg', 'sakea hldg']
        >>> script_keys(pl.Series(["drouhir gairor svc", "droukhir gairor servitses"])).to_list()
        ['drouhir gairor svk', 'drouhir gairor svk']
    """
    words = (
        _fold_letters(names_norm)
        .str.split(" ")
        .list.eval(pl.element().replace(_folded_abbreviations()))
    )
    return words.list.join(" ").alias(names_norm.name)


def company_name(text: str | None) -> str | None:
    """One company name in normal form (see :func:`company_names`).

    Examples:
        >>> company_name("Acme Technologies, Inc.")
        'acme tech'
    """
    if text is None:
        return None
    return company_names(pl.Series([str(text)])).item()


_ACRONYM_SKIP = {"and", "of", "the", "for", "de", "du", "des", "la", "le", "et", "und", "der"}


def acronym(name_norm: str | None) -> str | None:
    """Initials of a normalised multi-word name ("international business machines" → "ibm").

    Examples:
        >>> acronym("international business machines")
        'ibm'
        >>> acronym("acme") is None
        True
    """
    if not name_norm:
        return None
    words = [w for w in name_norm.split() if w not in _ACRONYM_SKIP]
    if len(words) < 2:
        return None
    return "".join(w[0] for w in words)


def acronyms(names_norm: pl.Series) -> pl.Series:
    """Column form of :func:`acronym` (vectorised)."""
    toks = names_norm.str.split(" ").list.filter(~pl.element().is_in(list(_ACRONYM_SKIP)))
    init = toks.list.eval(pl.element().str.slice(0, 1)).list.join("")
    return pl.select(
        pl.when(toks.list.len() >= 2).then(init).otherwise(None).alias(names_norm.name)
    ).to_series()


def companies(s: pl.Series) -> pl.Series:
    """Alias of :func:`company_names` (people's company names use it too)."""
    return company_names(s)


# ----------------------------------------------------------------------------- domains

#: free-mail and ISP mail domains: never a company key
_FREE_MAIL = """gmail.com googlemail.com yahoo.com ymail.com rocketmail.com hotmail.com outlook.com
    live.com msn.com aol.com icloud.com me.com mac.com gmx.com gmx.net gmx.de web.de mail.com
    mail.ru yandex.ru yandex.com qq.com 163.com 126.com sina.com protonmail.com proton.me
    zoho.com comcast.net att.net verizon.net sbcglobal.net btinternet.com orange.fr free.fr
    wanadoo.fr laposte.net t-online.de freenet.de libero.it virgilio.it naver.com hanmail.net
    daum.net rediffmail.com seznam.cz wp.pl o2.pl interia.pl bigpond.com optusnet.com.au
    shaw.ca rogers.com sky.com virginmedia.com ntlworld.com tiscali.it tutanota.com
    fastmail.com hushmail.com inbox.ru bk.ru list.ru rambler.ru ukr.net abv.bg
    cox.net charter.net earthlink.net bellsouth.net optonline.net juno.com aim.com telus.net
    sympatico.ca xtra.co.nz talktalk.net sfr.fr bluewin.ch telenet.be ziggo.nl xs4all.nl
    alice.it uol.com.br terra.com.br bol.com.br sohu.com foxmail.com yeah.net nate.com
    nifty.com tut.by onet.pl centrum.cz freemail.hu arcor.de posteo.de mailbox.org pm.me
    protonmail.ch hey.com example.com example.org example.net test.com none.com"""
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(_FREE_MAIL.split())
#: free-mail providers under any suffix (yahoo.co.uk, hotmail.fr, gmx.at...)
FREE_MAIL_STEMS: frozenset[str] = frozenset(
    {"gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol", "msn"}
)


@functools.cache
def _extractor():  # type: ignore[no-untyped-def]
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.cache
def _suffixes() -> frozenset[str]:
    """Public suffixes (no wildcard or exception rules) of tldextract's bundled snapshot.

    Read from the snapshot file without importing tldextract (which pulls in requests: a
    tenth of a second for a small match); the same set as :func:`_suffixes_tldextract`.
    """
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("tldextract")
    path = Path(spec.origin).parent / ".tld_set_snapshot" if spec and spec.origin else None
    if path is None or not path.is_file():  # pragma: no cover - another tldextract layout
        return _suffixes_tldextract()
    public = path.read_text(encoding="utf-8").partition("// ===BEGIN PRIVATE DOMAINS===")[0]
    found = re.findall(r"^([.*!]*\w\S*)", public, flags=re.MULTILINE)
    return _with_punycode(t for t in found if "*" not in t and "!" not in t)


def _with_punycode(suffixes: Iterable[str]) -> frozenset[str]:
    """The suffixes, each internationalised one in its punycode form too (hosts are)."""
    out = set(suffixes)
    out |= {p for t in out if not t.isascii() and (p := _idna(t))}
    return frozenset(out)


@functools.cache
def _wild_tlds() -> frozenset[str]:
    """The suffixes under which the suffix list has wildcard or exception rules (``bd`` for
    ``*.bd``, ``kawasaki.jp`` for ``!city.kawasaki.jp``): hosts there are read by tldextract."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("tldextract")
    path = Path(spec.origin).parent / ".tld_set_snapshot" if spec and spec.origin else None
    if path is None or not path.is_file():  # pragma: no cover - another tldextract layout
        rules = [t for t in _extractor().tlds if "*" in t or "!" in t]
    else:
        public = path.read_text(encoding="utf-8").partition("// ===BEGIN PRIVATE DOMAINS===")[0]
        rules = [t for t in re.findall(r"^([.*!]*\w\S*)", public, flags=re.MULTILINE)
                 if "*" in t or "!" in t]  # fmt: skip
    parents = set()
    for r in rules:  # "*.sch.uk" -> "sch.uk"; "!city.kawasaki.jp" -> "kawasaki.jp"
        parents.add(r[2:] if r.startswith("*.") else r.lstrip("!").split(".", 1)[-1])
    return frozenset(parents)


def _suffixes_tldextract() -> frozenset[str]:
    return _with_punycode(t for t in _extractor().tlds if "*" not in t and "!" not in t)


#: hosts where a company has a page, not a site: the path names the company
#: ("facebook.com/rosalindbakery"), so such a URL names no company domain (the bare host
#: still names the platform's own company)
PAGE_PLATFORMS: frozenset[str] = frozenset(
    [
        "facebook.com",
        "fb.com",
        "linkedin.com",
        "twitter.com",
        "x.com",
        "instagram.com",
        "youtube.com",
        "tiktok.com",
        "pinterest.com",
        "yelp.com",
        "linktr.ee",
        "medium.com",
        "t.me",
        "wa.me",
        "threads.net",
        "sites.google.com",
        "g.page",
        # maps, reviews, marketplaces, link shorteners: the path names the business
        "google.com",
        "business.google.com",
        "goo.gl",
        "maps.app.goo.gl",
        "fb.me",
        "m.me",
        "bit.ly",
        "etsy.com",
        "amazon.com",
        "tripadvisor.com",
        "booking.com",
        "xing.com",
        "vk.com",
        "whatsapp.com",
        "wa.link",
        # directories and profiles: the path names the business
        "houzz.com",
        "nextdoor.com",
        "yellowpages.com",
        "bbb.org",
        "ok.ru",
        "wix.com",
    ]
)
#: hosts that give each customer a subdomain ("acme.wixsite.com"): the whole host is the
#: company's key, never the platform's registered domain
SITE_PLATFORMS: frozenset[str] = frozenset(
    [
        "wixsite.com",
        "myshopify.com",
        "blogspot.com",
        "github.io",
        "wordpress.com",
        "squarespace.com",
        "weebly.com",
        "webflow.io",
        "godaddysites.com",
        "business.site",
        "carrd.co",
        "notion.site",
        "netlify.app",
        "vercel.app",
        "herokuapp.com",
        "jimdosite.com",
        "strikingly.com",
        "mystrikingly.com",
        "square.site",
        "hs-sites.com",
        "azurewebsites.net",
        "web.app",
        "pages.dev",
        "tumblr.com",
        "substack.com",
        "ueniweb.com",
        "blogspot.co.uk",
        "blogspot.de",
        "blogspot.fr",
        "blogspot.in",
        "blogspot.com.au",
        "blogspot.ca",
    ]
)


#: the registered domains of both kinds of platform (sites.google.com: google.com)
_PLATFORMS = sorted(
    {p if p.count(".") < 2 else p.split(".", 1)[1] for p in PAGE_PLATFORMS} | SITE_PLATFORMS
)


@functools.cache
def _wild_re() -> str:
    """A host under a wildcard or exception rule (:func:`_wild_tlds`), as one regex."""
    alts = "|".join(re.escape(p) for p in sorted(_wild_tlds(), key=len, reverse=True))
    return rf"(?:^|\.)(?:{alts})$"


def _path(s: pl.Series) -> pl.Series:
    """Whether a URL has a path, query or fragment after its host (beyond a lone "/")."""
    rest = (
        s.cast(pl.String)
        .str.strip_chars()
        .str.replace(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "")
        .str.replace(r"^//", "")
        .str.replace(r"^[^/?#\\]*", "")
    )
    return rest.str.contains(r"^[/?#\\].*[^/?#\\\s]").fill_null(False)


def _host(s: pl.Series) -> pl.Series:
    """The host of a website, URL or email, lower case; an internationalised one in its
    ASCII (punycode) form, as DNS knows it: "münchner-brauwerk.de" and
    "xn--mnchner-brauwerk-jzb.de" are one host, "müllerbau.de" and "mullerbau.de" two."""
    host = (
        s.cast(pl.String)
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^mailto:", "")
        .str.replace(r"^[a-z][a-z0-9+.-]*://", "")
        .str.replace(r"^//", "")
        .str.replace(r"[/?#\\].*$", "")
        .str.replace(r"^[^@]*@", "")
        .str.replace(r":[0-9]*$", "")
        .str.replace_all("[。．｡]", ".")  # ideographic and full-width dots
        .str.strip_chars(".")
    )
    wide = host.str.contains(r"[^\x00-\x7f]").fill_null(False)
    if not wide.any():
        return host
    distinct = host.filter(wide).unique().to_list()
    return host.replace({h: _idna(h) for h in distinct}).cast(pl.String).alias(s.name)


def _idna(host: str) -> str | None:
    """One host in IDNA (punycode) form; None when it cannot be one."""
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def domains(s: pl.Series) -> pl.Series:
    """Registered domains from websites, URLs, bare hosts or emails ("acme.co.uk").

    Scheme, userinfo, ``www``/subdomains, port, path and case are dropped; the
    public suffix comes from tldextract's bundled list (no network). Free-mail
    domains become null: they never identify a company.

    A page on a platform (``facebook.com/acme``, :data:`PAGE_PLATFORMS`) names no domain; a
    site on one (``acme.wixsite.com``, :data:`SITE_PLATFORMS`) is keyed by its whole host.

    Examples:
        >>> domains(pl.Series(["https://WWW.acme.de/x", "bob@gmail.com", "shop.acme.co.uk"])).to_list()
        ['acme.de', None, 'acme.co.uk']
        >>> domains(pl.Series(["facebook.com/acmebakery", "https://acme.wixsite.com/home", "facebook.com"])).to_list()
        [None, 'acme.wixsite.com', 'facebook.com']
    """
    host = _host(s)
    ok = host.str.contains(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$").fill_null(False)
    labels = host.str.split(".")
    n = labels.list.len()
    suffixes = list(_suffixes())
    frame = pl.DataFrame({"labels": labels, "n": n, "ok": ok})
    exprs = []
    for k in (3, 2, 1):
        tail = pl.col("labels").list.slice(-k, k).list.join(".")
        exprs.append(
            pl.when(pl.col("ok") & (pl.col("n") > k) & tail.is_in(suffixes))
            .then(pl.col("labels").list.slice(-(k + 1), k + 1).list.join("."))
            .otherwise(None)
        )
    reg = frame.select(pl.coalesce(exprs).alias("d"))["d"]
    # a public suffix itself ("gov.kn") is nobody's registered domain
    reg = pl.select(
        pl.when(host.is_in(suffixes).fill_null(False)).then(None).otherwise(reg).alias("d")
    ).to_series()
    # under a top-level label with wildcard or exception rules, tldextract reads the host
    wild = ok & host.str.contains(_wild_re()).fill_null(False)
    if wild.any():
        hosts = host.filter(wild).unique().to_list()
        extract = _extractor()
        found = {}
        for h in hosts:
            ext = extract(h)
            found[h] = f"{ext.domain}.{ext.suffix}" if ext.domain and ext.suffix else None
        reg = pl.select(
            pl.when(wild)
            .then(host.replace_strict(found, default=None, return_dtype=pl.String))
            .otherwise(reg)
            .alias("d")
        ).to_series()
    stem = reg.str.split(".").list.first()
    free = reg.is_in(list(FREE_MAIL_DOMAINS)) | stem.is_in(list(FREE_MAIL_STEMS))
    # a page on a platform names no domain; a site on one is its whole host (both rare:
    # looked at only where the registered domain is a platform's)
    drop = free.fill_null(False)
    platform = reg.is_in(_PLATFORMS).fill_null(False)
    if platform.any():
        bare = host.str.replace(r"^www\.", "")
        on_page = reg.is_in(list(PAGE_PLATFORMS)) | bare.is_in(list(PAGE_PLATFORMS))
        email = s.cast(pl.String).str.strip_chars().str.contains(r"^[^/@\s]+@[^/@\s]+$")
        page = (on_page & _path(s) & ~email).fill_null(False)
        site = (reg.is_in(list(SITE_PLATFORMS)) & (bare != reg)).fill_null(False)
        reg = pl.select(pl.when(site).then(bare).otherwise(reg).alias("d")).to_series()
        drop = drop | page
    return pl.select(pl.when(drop).then(None).otherwise(reg).alias(s.name)).to_series()


def page_platforms(s: pl.Series) -> pl.Series:
    """For a website that is a page on a platform ("facebook.com/joespizza",
    "sites.google.com/view/acme"), the platform's registered domain, else null.

    A pull or an export keeps such a website's host as the record's ``domain``
    ("facebook.com"): it names the platform, not the company, and must not key it.

    Examples:
        >>> page_platforms(pl.Series(["https://www.facebook.com/joespizza", "sites.google.com/view/a", "facebook.com", "acme.com/x"])).to_list()
        ['facebook.com', 'google.com', None, None]
    """
    host = _host(s)
    bare = host.str.replace(r"^www\.", "")
    platform = domains(host)  # the bare host's registered domain ("sites.google.com": google.com)
    on_page = bare.is_in(list(PAGE_PLATFORMS)) | platform.is_in(list(PAGE_PLATFORMS))
    email = s.cast(pl.String).str.strip_chars().str.contains(r"^[^/@\s]+@[^/@\s]+$")
    page = (on_page & _path(s) & ~email).fill_null(False)
    return pl.select(pl.when(page).then(platform).otherwise(None).alias(s.name)).to_series()


def subhosts(s: pl.Series) -> pl.Series:
    """The host of each website when it names one under its registered domain ("hn" in
    "hn.sgcc.com.cn"; ``www`` does not count), else null.

    Examples:
        >>> subhosts(pl.Series(["https://www.hn.sgcc.com.cn/x", "www.acme.com", "shop.acme.co.uk", None])).to_list()
        ['hn.sgcc.com.cn', None, 'shop.acme.co.uk', None]
    """
    frame = pl.DataFrame({"h": _host(s).str.replace(r"^www[0-9]*\.", ""), "r": domains(s)})
    under = pl.col("h").str.ends_with(pl.lit(".") + pl.col("r")).fill_null(False)
    return frame.select(pl.when(under).then(pl.col("h")).alias(s.name)).to_series()


def domain(text: str | None) -> str | None:
    """One registered domain via tldextract (bundled suffix list, no network).

    Examples:
        >>> domain("mailto:jane@sales.acme.com")
        'acme.com'
        >>> domain("jane@gmail.com") is None
        True
    """
    if text is None:
        return None
    host = _host(pl.Series([str(text)])).item()
    if not host or not re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+", host):
        return None
    ext = _extractor()(host)
    if not ext.suffix or not ext.domain:
        return None
    reg = f"{ext.domain}.{ext.suffix}"
    if reg in FREE_MAIL_DOMAINS or ext.domain in FREE_MAIL_STEMS:
        return None
    text = str(text)
    bare = host.removeprefix("www.")
    on_page = reg in PAGE_PLATFORMS or bare in PAGE_PLATFORMS
    email = re.fullmatch(r"[^/@\s]+@[^/@\s]+", text.strip()) is not None
    if on_page and not email and _path(pl.Series([text])).item():
        return None  # a page on a platform ("facebook.com/acme") names no company domain
    if reg in SITE_PLATFORMS and bare != reg:
        return bare  # a site on a platform ("acme.wixsite.com") is its whole host
    return reg


def domain_stem(registered: str | None) -> str | None:
    """The registered domain without its suffix ("acme.co.uk" → "acme").

    Examples:
        >>> domain_stem("acme.co.uk")
        'acme'
    """
    if not registered:
        return None
    return registered.split(".", 1)[0]


# ----------------------------------------------------------------------------- emails

_EMAIL_RE = r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"


#: mail providers that deliver "name+tag@" to "name@"
_SUBADDRESSING = frozenset(
    {
        "gmail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com",
        "mac.com", "fastmail.com", "proton.me", "protonmail.com", "pm.me", "hey.com",
    }
)  # fmt: skip


def emails(s: pl.Series) -> pl.Series:
    """Emails as mailbox keys: trimmed, lower-cased, ``mailto:`` dropped, a ``+tag`` dropped at
    the providers that deliver it to the untagged mailbox ("kim+crm@gmail.com" is
    kim@gmail.com's), Gmail's dots dropped and googlemail.com read as gmail.com (one Gmail
    mailbox, however written); malformed ones null.

    Examples:
        >>> emails(pl.Series([" Jane.Doe@Acme.COM ", "not an email"])).to_list()
        ['jane.doe@acme.com', None]
        >>> emails(pl.Series(["kim+news@outlook.com", "R.O.S.S.Geller@googlemail.com", "qa+1@acme.com"])).to_list()
        ['kim@outlook.com', 'rossgeller@gmail.com', 'qa+1@acme.com']
    """
    e = (
        fold_ascii(s)
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace(r"^mailto:", "")
        .str.strip_chars()
        .str.replace(r"@googlemail\.com$", "@gmail.com")
    )
    # a +tag is dropped where the provider delivers it to the untagged mailbox (at a company
    # "qa+1@" and "qa+2@" are often two records on purpose)
    tagged = e.str.contains(r"^[^@+]+\+[^@]*@").fill_null(False) & e.str.extract(r"@(.+)$").is_in(
        list(_SUBADDRESSING)
    ).fill_null(False)
    if tagged.any():
        e = pl.select(
            pl.when(tagged).then(e.str.replace(r"^([^@+]+)\+[^@]*@", "${1}@")).otherwise(e)
        ).to_series()
    gmail = e.str.ends_with("@gmail.com").fill_null(False)
    if gmail.any():
        local = e.str.split("@").list.first().str.replace_all(".", "", literal=True)
        e = pl.select(pl.when(gmail).then(local + "@gmail.com").otherwise(e)).to_series()
    return pl.select(pl.when(e.str.contains(_EMAIL_RE)).then(e).alias(s.name)).to_series()


#: local parts of mailboxes a team or a robot reads, not one person
ROLE_LOCAL_PARTS = frozenset(
    {
        "info", "sales", "admin", "office", "contact", "hello", "support", "team", "mail",
        "enquiries", "inquiries", "accounts", "billing", "marketing", "hr", "jobs", "careers",
        "noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "test", "example",
        "none", "null", "na", "unknown", "email",
    }
)  # fmt: skip
#: domains no real mailbox is on (reserved for examples, or typed to pass a form)
PLACEHOLDER_MAIL_DOMAINS = frozenset(
    {"example.com", "example.org", "example.net", "test.com", "test.test", "email.com", "none.com"}
)


def role_addresses(s: pl.Series) -> pl.Series:
    """Whether each (normalised) e-mail address is a role or placeholder mailbox: a local part
    of :data:`ROLE_LOCAL_PARTS` (``info@``, ``noreply@``) or a domain of
    :data:`PLACEHOLDER_MAIL_DOMAINS` (``x@example.com``): no one person's address.

    Examples:
        >>> role_addresses(pl.Series(["info@acme.com", "jane@acme.com", "x@example.com", None])).to_list()
        [True, False, True, False]
    """
    local = s.str.extract(r"^([^@]+)@")
    domain = s.str.extract(r"@(.+)$")
    return (
        local.is_in(list(ROLE_LOCAL_PARTS)).fill_null(False)
        | domain.is_in(list(PLACEHOLDER_MAIL_DOMAINS)).fill_null(False)
    ).alias(s.name)


def email(text: str | None) -> str | None:
    """One email in normal form (see :func:`emails`)."""
    if text is None:
        return None
    return emails(pl.Series([str(text)])).item()


# ----------------------------------------------------------------------------- phones

_EXT_RE = r"(?i)\s*(?:ext\.?|extension|x|#)\s*[0-9]+\s*$"


@functools.cache
def _region_codes() -> dict[str, tuple[str, str]]:
    """ISO region → (calling code, national trunk prefix), shipped in ``recon/_country_data.py``
    (loading every region's phone metadata costs ~50 ms); see :func:`region_calling_codes`."""
    from ._country_data import REGION_CODES

    return dict(REGION_CODES)


def region_calling_codes() -> dict[str, tuple[str, str]]:
    """ISO region → (calling code, national trunk prefix) from the installed phonenumbers."""
    out = {}
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        code = phonenumbers.country_code_for_region(region)
        if meta is not None and code:
            out[region] = (str(code), meta.national_prefix or "")
    return out


@functools.cache
def _trunk_zero_re() -> str:
    """An international prefix whose country dials a trunk 0 at home, then "(0)"."""
    codes: dict[str, set[str]] = {}
    for cc, trunk in _region_codes().values():
        codes.setdefault(cc, set()).add(trunk)
    zero = sorted((cc for cc, trunks in codes.items() if trunks == {"0"}), key=len, reverse=True)
    return rf"^(\s*(?:\+|\(?00)\s*(?:{'|'.join(zero)})\)?)[\s.-]*\(0\)"


#: the digits of placeholders typed where a phone is required
#: (after a calling code or trunk prefix of up to three digits: "+1 (123) 456-7890")
_DUMMIES = frozenset(
    [str(k) * n for k in range(10) for n in range(6, 16)]
    + ["123456789", "1234567890", "0123456789"]
)


def _placeholder_digits(digits: str) -> bool:
    """Whether a phone's digits are a placeholder, after up to three leading digits (the scalar
    form of the test in :func:`phones`).

    Examples:
        >>> _placeholder_digits("11234567890"), _placeholder_digits("4930901820")
        (True, False)
    """
    return any(digits[k:] in _DUMMIES for k in range(4))


def phones(s: pl.Series, regions: pl.Series | None = None, default_region: str = "US") -> pl.Series:
    """Phones to E.164 ("+14155550100"); extensions dropped; impossible lengths null.

    International forms (``+``/``00``) keep their country code; national forms
    take the calling code of the record's ISO country (``regions``), else of
    ``default_region``, after dropping the national trunk prefix.

    A placeholder typed where a phone is required ("000-000-0000", "1234567890", "555-555-5555",
    "+1 (123) 456-7890": one digit repeated, or the digits in a row, after up to three leading
    digits) is no number: null, never evidence of a match (:func:`phone`, which the plan
    compares values by, still reads it as the number it spells).

    Examples:
        >>> phones(pl.Series(["(415) 555-0100 x12", "+44 20 7946 0958", "+44 (0)20 7946 0958"])).to_list()
        ['+14155550100', '+442079460958', '+442079460958']
        >>> phones(pl.Series(["000-000-0000", "1234567890", "555-555-5555", "+1 (123) 456-7890"])).to_list()
        [None, None, None, None]
    """
    raw = s.cast(pl.String).str.replace(_EXT_RE, "")
    # "+44 (0)20 …": the bracketed trunk zero is dialled only at home, never after the code
    # (where the country's trunk prefix is 0: an Italian number keeps its 0, "+39 06 …")
    raw = raw.str.replace(_trunk_zero_re(), "${1}")
    digits = raw.str.replace_all(r"[^0-9]", "")
    stripped = raw.str.strip_chars()
    intl_plus = stripped.str.starts_with("+")
    intl_00 = stripped.str.contains(r"^\(?00")
    codes = _region_codes()
    reg = regions if regions is not None else pl.Series([None] * len(s), dtype=pl.String)
    reg = reg.cast(pl.String).fill_null(default_region)
    cc = reg.replace_strict({k: v[0] for k, v in codes.items()}, default=codes[default_region][0])
    trunk = reg.replace_strict({k: v[1] for k, v in codes.items()}, default="")
    frame = pl.DataFrame({"d": digits, "plus": intl_plus, "z": intl_00, "cc": cc, "trunk": trunk})
    national = (
        pl.when((pl.col("trunk") != "") & pl.col("d").str.starts_with(pl.col("trunk")))
        .then(pl.col("d").str.slice(pl.col("trunk").str.len_chars()))
        .otherwise(pl.col("d"))
    )
    e164 = (
        pl.when(pl.col("plus"))
        .then(pl.col("d"))
        .when(pl.col("z"))
        .then(pl.col("d").str.slice(2))
        .when(pl.col("cc") == "1")
        .then(
            pl.when((pl.col("d").str.len_chars() == 11) & pl.col("d").str.starts_with("1"))
            .then(pl.col("d"))
            .otherwise(pl.lit("1") + pl.col("d"))
        )
        .otherwise(pl.col("cc") + national)
    )
    out = frame.select(
        pl.when(
            e164.str.len_chars().is_between(8, 15)
            & (pl.col("d").str.len_chars() >= 6)
            # North American numbers have exactly 11 digits with the country code
            & (~e164.str.starts_with("1") | (e164.str.len_chars() == 11))
            # what a form takes when a phone is required and none is given: no number
            & ~pl.any_horizontal(pl.col("d").str.slice(k).is_in(list(_DUMMIES)) for k in range(4))
        )
        .then(pl.lit("+") + e164)
        .otherwise(None)
        .alias("p")
    )["p"]
    return out.alias(s.name)


def phone(text: str | None, region: str | None = None, default_region: str = "US") -> str | None:
    """One phone to E.164 via phonenumbers (None when it cannot be a phone number).

    Examples:
        >>> phone("030 1234567", "DE")
        '+49301234567'
    """
    if text is None:
        return None
    try:
        num = phonenumbers.parse(re.sub(_EXT_RE, "", str(text)), region or default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(num):
        return None
    # (a placeholder is still a number here: the plan compares values by it; the matcher's
    # phones() drops placeholders as evidence)
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


# ----------------------------------------------------------------------------- people, places

_TITLES = r"^(?:(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|herr|frau|mme|mlle|m)\s+)+"
#: generational and degree suffixes after a name ("Arthur Kingsley Jr.", "Jane Roe, PhD")
_NAME_SUFFIXES = r"^(\S+\s+\S+.*?)(?:\s+(?:jr|sr|ii|iii|iv|phd|md|esq|mba|cpa|dds|dvm|rn))+$"


def person_names(s: pl.Series, *, part: bool = False) -> pl.Series:
    """Person names: ASCII, lower case, no punctuation, no leading titles; a placeholder
    ("[not provided]", "Unknown", :data:`PERSON_PLACEHOLDERS`) is no name. ``part``: the
    values are first or last names, where only :data:`PERSON_PART_PLACEHOLDERS` are none.

    Examples:
        >>> person_names(pl.Series(["Dr. José O'Brien-Smith", "[not provided]", "Na"])).to_list()
        ['jose obrien smith', None, None]
        >>> person_names(pl.Series(["Arthur Kingsley Jr.", "Henry Fordham III", "Jane Roe, PhD"])).to_list()
        ['arthur kingsley', 'henry fordham', 'jane roe']
        >>> person_names(pl.Series(["Na", "[not provided]"]), part=True).to_list()
        ['na', None]
        >>> person_names(pl.Series(["NULL NULL", "Test Test", "Ji-woo Na", "N/A N/A", "Unknown [not provided]"])).to_list()
        [None, None, 'ji woo na', None, None]
    """
    # a suffix after two words of name ("Naomasa Ii" and "Rahman Md" keep theirs: surnames)
    w = _words(s).str.replace(_TITLES, "").str.replace(_NAME_SUFFIXES, "${1}")
    placeholders = PERSON_PART_PLACEHOLDERS if part else PERSON_PLACEHOLDERS
    blank = w.is_in(list(placeholders)).fill_null(False)
    if not part:  # "Null Null", "N/A N/A", "Unknown Not Provided": placeholders only: none
        words = [p for p in PERSON_PLACEHOLDERS if " " not in p]
        phrases = "|".join(sorted((p for p in PERSON_PLACEHOLDERS if " " in p), key=len)[::-1])
        rest = w.str.replace_all(rf"\b(?:{phrases})\b", " ").str.strip_chars()
        only = (
            rest.str.split(" ")
            .list.eval(pl.element().is_in(words) | (pl.element() == ""))
            .list.all()
        )
        blank = blank | only.fill_null(False)
    return pl.select(pl.when((w.str.len_bytes() > 0) & ~blank).then(w).alias(s.name)).to_series()


def person_name(text: str | None) -> str | None:
    """One person name in normal form (see :func:`person_names`)."""
    if text is None:
        return None
    return person_names(pl.Series([str(text)])).item()


#: a city's name in its own language (ASCII, lower case) -> the English one: one city written
#: both ways is one value ("München" / "Munich")
CITY_EXONYMS: dict[str, str] = {
    "munchen": "munich", "wien": "vienna", "koln": "cologne", "nurnberg": "nuremberg",
    "hannover": "hanover", "frankfurt am main": "frankfurt", "praha": "prague",
    "warszawa": "warsaw", "krakow": "cracow", "roma": "rome", "milano": "milan",
    "firenze": "florence", "napoli": "naples", "venezia": "venice", "torino": "turin",
    "genova": "genoa", "lisboa": "lisbon", "sevilla": "seville", "moskva": "moscow",
    "sankt peterburg": "saint petersburg", "st petersburg": "saint petersburg",
    "bruxelles": "brussels", "brussel": "brussels", "antwerpen": "antwerp",
    "gent": "ghent", "den haag": "the hague", "s gravenhage": "the hague", "hague": "the hague",
    "kobenhavn": "copenhagen", "goteborg": "gothenburg", "geneve": "geneva", "genf": "geneva",
    "luzern": "lucerne", "athina": "athens", "bucuresti": "bucharest",
    "beograd": "belgrade", "kiev": "kyiv", "lvov": "lviv",
    "ciudad de mexico": "mexico city", "cdmx": "mexico city", "new york city": "new york",
    "nyc": "new york", "beijing shi": "beijing", "peking": "beijing", "bombay": "mumbai",
    "calcutta": "kolkata", "madras": "chennai", "bangalore": "bengaluru", "saigon": "ho chi minh city",
    "st louis": "saint louis", "st paul": "saint paul",
}  # fmt: skip


def cities(s: pl.Series) -> pl.Series:
    """City names: ASCII, lower case, no punctuation; a city's name in its own language read
    as the English one (:data:`CITY_EXONYMS`).

    Examples:
        >>> cities(pl.Series(["München", "Munich", "The Hague", "Den Haag", "Springfield"])).to_list()
        ['munich', 'munich', 'the hague', 'the hague', 'springfield']
    """
    w = _words(s).str.replace(r"^(?:city of|the) ", "")
    w = w.replace(CITY_EXONYMS)
    return pl.select(pl.when(w.str.len_bytes() > 0).then(w).alias(s.name)).to_series()


def city(text: str | None) -> str | None:
    """One city in normal form."""
    if text is None:
        return None
    return cities(pl.Series([str(text)])).item()


_COUNTRY_ALIASES = {
    "us": "US",
    "usa": "US",
    "u s": "US",
    "u s a": "US",
    "united states": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u k": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "gbr": "GB",
    "deu": "DE",
    "ger": "DE",
    "fra": "FR",
    "chn": "CN",
    "jpn": "JP",
    "ind": "IN",
    "can": "CA",
    "aus": "AU",
    "bra": "BR",
    "ita": "IT",
    "esp": "ES",
    "mex": "MX",
    "nld": "NL",
    "che": "CH",
    "swe": "SE",
    "nor": "NO",
    "dnk": "DK",
    "fin": "FI",
    "kor": "KR",
    "rus": "RU",
    "zaf": "ZA",
    "irl": "IE",
    "bel": "BE",
    "aut": "AT",
    "pol": "PL",
    "prt": "PT",
    "sgp": "SG",
    "hkg": "HK",
    "twn": "TW",
    "isr": "IL",
    "tur": "TR",
    "arg": "AR",
    "south korea": "KR",
    "korea": "KR",
    "republic of korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "holland": "NL",
    "the netherlands": "NL",
    "uae": "AE",
    "czechia": "CZ",
    "czech republic": "CZ",
    "viet nam": "VN",
    "vietnam": "VN",
    "taiwan": "TW",
    "iran": "IR",
    "hong kong sar": "HK",
    "macau": "MO",
    "prc": "CN",
    "mainland china": "CN",
    "ivory coast": "CI",
}


#: languages whose country names recon recognises (besides codes and English aliases)
_COUNTRY_LANGS = (
    "en",
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "sv",
    "da",
    "fi",
    "pl",
    "cs",
    "tr",
    "id",
)


def locale_country_names() -> tuple[dict[str, str], tuple[str, ...]]:
    """Country names from phonenumbers' locale data: (name key → region, English names).

    ``recon/_country_data.py`` holds this result (importing the locale data costs
    ~0.3 s, more than matching a small file); a test checks the two agree.
    Regenerate with ``python -m recon._country_data``.
    """
    from phonenumbers.geodata.locale import LOCALE_DATA

    table: dict[str, str] = {}
    english: list[str] = []
    for region, names in LOCALE_DATA.items():
        en = names.get("en", "")
        english.append(names.get(en[1:], "") if en.startswith("*") else en)
        if len(region) != 2:
            continue
        for lang in _COUNTRY_LANGS:
            value = names.get(lang, "")
            if value.startswith("*"):
                value = names.get(value[1:], "")
            if value:
                table.setdefault(_country_key(value), region)
        table[region.lower()] = region
    return table, tuple(english)


@functools.cache
def _country_table() -> dict[str, str]:
    from ._country_data import COUNTRY_KEYS
    from ._iso3166 import ALPHA3, OTHER_NAMES

    table = {code.lower(): a2 for code, a2 in ALPHA3.items()}
    table.update(OTHER_NAMES)
    table.update(COUNTRY_KEYS)  # a locale's name wins over an alpha-3 code ("can", "per")
    table.update(_COUNTRY_ALIASES)
    table.update({_country_key(name): code for name, code in _ISO_FORMS.items()})
    return table


#: ISO 3166's inverted and annotated short names, as exports write them
_ISO_FORMS = {
    "Korea, Republic of": "KR",
    "Korea, Democratic People's Republic of": "KP",
    "Congo, The Democratic Republic of the": "CD",
    "Congo, Democratic Republic of the": "CD",
    "Iran, Islamic Republic of": "IR",
    "Moldova, Republic of": "MD",
    "Tanzania, United Republic of": "TZ",
    "Micronesia, Federated States of": "FM",
    "Taiwan, Province of China": "TW",
    "Venezuela, Bolivarian Republic of": "VE",
    "Bolivia, Plurinational State of": "BO",
    "Bolivia (Plurinational State of)": "BO",
    "Venezuela (Bolivarian Republic of)": "VE",
    "Iran (Islamic Republic of)": "IR",
    "Micronesia (Federated States of)": "FM",
    "Macedonia, the Former Yugoslav Republic of": "MK",
    "Palestine, State of": "PS",
    "Virgin Islands, British": "VG",
    "Virgin Islands, U.S.": "VI",
    "Holy See (Vatican City State)": "VA",
    "Saint Helena, Ascension and Tristan da Cunha": "SH",
    "Bonaire, Sint Eustatius and Saba": "BQ",
    # old and other names, and names in their own script (all kept out of geo_words: "Nippon
    # Steel" is a company name, not a country annotation)
    "Burma": "MM",
    "Republic of Ireland": "IE",
    "Eire": "IE",
    "日本": "JP",
    "にほん": "JP",
    "한국": "KR",
    "대한민국": "KR",
}


def _country_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", _fold_one(text).lower().replace(".", "")).strip()


def country(text: str | None) -> str | None:
    """ISO 3166 alpha-2 code of a country given as a code or a name (many languages).

    Examples:
        >>> [country(c) for c in ["U.S.", "Deutschland", "gb", "Atlantis"]]
        ['US', 'DE', 'GB', None]
        >>> [country(c) for c in ["Korea, Republic of", "Korea, Democratic People's Republic of", "日本", "Burma"]]
        ['KR', 'KP', 'JP', 'MM']
    """
    if text is None:
        return None
    return _country_table().get(_country_key(str(text)))


_GEO_STOP = {
    "and", "of", "the", "republic", "islands", "island", "saint", "st", "new", "south", "north",
    "west", "east", "central", "democratic", "people", "peoples", "federal", "state", "union", "sar",
    "city", "great", "holy", "see", "territory", "territories", "outlying", "minor", "french",
    "british", "virgin", "united arab", "cape", "coast", "green", "gold", "ivory", "costa",
    "man", "san", "sao", "jan", "part", "heard", "cook", "martin", "pierre", "vincent", "ocean",
    "western", "southern", "northern", "indian", "isle", "helena", "lucia", "mayen", "sint", "saba",
    "tome", "dutch", "rica", "rico", "puerto", "verde", "sierra", "leone", "mcdonald", "christmas",
    "norfolk", "turks", "solomon", "marshall", "caicos", "nevis", "kitts", "futuna", "wallis",
}  # fmt: skip


@functools.cache
def geo_words() -> frozenset[str]:
    """Words of country names in recon's company-name form ("germany", "japan", "united").

    Matching treats a name that differs from another only by such words
    ("Kairos Power (United States)") as the same name, and leaves the
    distinction to the country comparison.

    Examples:
        >>> "japan" in geo_words() and "north" not in geo_words()
        True
    """
    from ._country_data import ENGLISH_NAMES

    names = [*ENGLISH_NAMES, *(k for k in _COUNTRY_ALIASES if len(k) > 3)]
    words: set[str] = set()
    for key in names:
        for w in _country_key(key).split():
            if len(w) >= 3 and w not in _GEO_STOP:
                words.add(ABBREVIATIONS.get(w, w))
    return frozenset(words)


def countries(s: pl.Series) -> pl.Series:
    """Column form of :func:`country` (one lookup per distinct value)."""
    s = s.cast(pl.String)
    distinct = s.drop_nulls().unique().to_list()
    mapping = {v: country(v) for v in distinct}
    return s.replace_strict(mapping, default=None, return_dtype=pl.String).alias(s.name)
