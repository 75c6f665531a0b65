"""Declarative match settings: comparisons as ordered levels, blocking rules, thresholds.

A :class:`MatchSettings` is plain data with a JSON round trip
(``MatchSettings.from_json(s.to_json()) == s``); every match run stores the
settings it used, so any result can be reproduced. Ready-made settings for
companies and contacts come from :func:`default_settings`; the ready-made
comparisons live in :mod:`recon.match.comparisons`.

A comparison is an ordered list of levels. Each level names an operation
(``null``, ``exact``, ``exact_short``, ``jaro_winkler``, ``token_set``, ``idf_overlap``,
``acronym``, ``same_stem``, ``suffix_digits``, ``else``) with an optional
threshold; the first level whose test passes is the pair's level. Weights for
every level are fitted per run (u from random pairs, m by EM) and stored with the run.

Comparisons and blocking rules may name ANY column of the input frames, not only the
canonical record columns, with the generic ops ``levenshtein``, ``damerau``,
``prefix``, ``date_transposed``, ``date_within``, ``same_year`` and ``shared_tokens`` (see
:mod:`recon.match.comparisons`) and composite or first-n-character blocking keys;
:func:`person_settings` is a ready-made preset for person records.

Examples:
    >>> s = default_settings("companies")
    >>> MatchSettings.from_json(s.to_json()) == s
    True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import MatchError

__all__ = [
    "BlockingRule",
    "Comparison",
    "EmBlock",
    "Level",
    "MatchSettings",
    "Thresholds",
    "default_settings",
    "person_settings",
]

Entity = Literal["companies", "contacts"]

#: operations a level may use (see module docstring)
#: level ops computed by :func:`recon.match.comparisons.generic_test`: usable on any column
GENERIC_OPS = frozenset(
    {
        "levenshtein",
        "damerau",
        "prefix",
        "date_transposed",
        "date_within",
        "same_year",
        "shared_tokens",
    }
)
LEVEL_OPS = GENERIC_OPS | frozenset(
    {
        "null",
        "exact",
        "exact_short",
        "compact",
        "jaro_winkler",
        "ratio",
        "edits",
        "script",
        "script_differs",
        "token_set",
        "idf_overlap",
        "extra_words",
        "extra_country",
        "other_region",
        "other_words",
        "other_number",
        "one_word",
        "acronym",
        "same_stem",
        "other_subdomain",
        "suffix_digits",
        "else",
    }
)
#: kinds of blocking rule
BLOCKING_KINDS = frozenset({"exact", "tokens", "ngrams", "ids"})


@dataclass(frozen=True)
class Level:
    """One level of a comparison: ``op`` (with ``threshold`` for fuzzy ops) and a label."""

    label: str
    op: str
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.op not in LEVEL_OPS:
            raise MatchError(
                f"level {self.label!r}: unknown op {self.op!r}",
                hint="use one of " + ", ".join(sorted(LEVEL_OPS)),
            )


def _level(i: int, j: int, data: Any) -> Level:
    """A level from its JSON object (a clear error for anything else)."""
    if not isinstance(data, dict):
        raise MatchError(
            f"match settings invalid: comparisons[{i}].levels[{j}] must be an object such as "
            f'{{"label": "exact", "op": "exact"}}, not {data!r}',
            hint="start from `default_settings(...)`.to_json() and edit it",
        )
    return Level(**data)


@dataclass(frozen=True)
class Comparison:
    """A named comparison of one feature column, as an ordered list of levels.

    ``column`` names a column of the normalised record frame (see
    :func:`recon.match.blocking.features`) or any other input column. With
    ``columns``, ``column`` is built from those input columns joined by a space
    (``("given_name", "surname")``: a full name, where a word-set level sees
    swapped names). ``tf_adjust`` adjusts the weight
    of exact agreement by the value's term frequency (a common value is weaker
    evidence). ``veto_auto`` lists level labels that keep a pair out of the
    ``auto`` tier whatever its total (strong keys are evidence, not verdicts).
    ``density_adjust`` (duplicates inside one system): a fuzzy agreement ("Groudrul" /
    "Groudru") is split among the near values each record has, so in a large data set
    full of similar names it weighs less than in a small one. ``needs_support`` lists levels
    that, inside one system, propose a duplicate only when another comparison whose
    ``supports`` is true agrees at any level but null and else (a near-identical name alone
    is a sibling as often as a copy; a shared website, phone or city makes it a duplicate).
    """

    name: str
    column: str
    levels: tuple[Level, ...]
    tf_adjust: bool = False
    veto_auto: tuple[str, ...] = ()
    #: levels too weak to propose a duplicate inside one system (besides ``veto_auto``)
    no_duplicate: tuple[str, ...] = ()
    #: input columns joined (space, nulls skipped) into ``column``
    columns: tuple[str, ...] = ()
    #: inside one system, weaken a fuzzy agreement by how many near values the records have
    density_adjust: bool = False
    #: inside one system, levels that propose a duplicate only when another comparison agrees
    needs_support: tuple[str, ...] = ()
    #: whether agreement here supports another comparison's ``needs_support`` levels
    supports: bool = True
    #: inside one system, levels that keep a duplicate pair in review (a merge a person
    #: decides: two similar names at one company are colleagues or relatives as often as one
    #: person), whatever its score
    review_duplicate: tuple[str, ...] = ()
    #: ``veto_auto`` levels that a strong key lifts: a pair at one of them is ``auto`` after
    #: all when another comparison agrees at one of its ``lifts_veto`` levels ("Neil" /
    #: "Neil Dalton" on one e-mail address is one person)
    liftable: tuple[str, ...] = ()
    #: levels at which this comparison is a strong key that lifts ``liftable`` vetoes
    lifts_veto: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.levels or self.levels[0].op != "null" or self.levels[-1].op != "else":
            raise MatchError(
                f"comparison {self.name!r}: levels must start with a null level and end with else"
            )
        labels = [lv.label for lv in self.levels]
        if len(set(labels)) != len(labels):
            raise MatchError(f"comparison {self.name!r}: level labels must be unique")


@dataclass(frozen=True)
class BlockingRule:
    """A named blocking rule producing candidate pairs.

    kinds: ``exact`` (equal non-null ``column``), ``tokens`` (share one of the
    ``keep`` rarest tokens of ``column``), ``ngrams`` (share one of the ``keep``
    rarest character ``n``-grams of ``column``; with ``min_shared`` at least that many
    of them), ``ids`` (a stored cross-system id names the other record). Keys held by
    more than ``max_block`` records on one side are skipped (a shared switchboard phone,
    a generic word).

    ``columns`` makes a composite ``exact`` key on any input columns (all must be
    present); ``prefix`` keeps only the first ``prefix`` characters of each key part
    (``BlockingRule("dob_sur", "exact", "", columns=("date_of_birth", "surname"),
    prefix=4)`` blocks on birth year and the surname's first four letters).
    """

    name: str
    kind: str
    column: str
    keep: int = 2
    n: int = 4
    max_block: int = 50
    columns: tuple[str, ...] = ()
    prefix: int = 0
    #: ``tokens``/``ngrams``: pairs must share at least this many of their kept values...
    min_shared: int = 1
    #: ...and pairs inside one system (duplicates) this many (0: ``min_shared``)
    dedupe_min_shared: int = 0
    #: ``exact``: a key held by more than ``max_block`` records pairs as a star (each with the
    #: first) instead of being skipped: for keys that identify (a domain, an email, a whole
    #: name), where a crowd is many copies of one record; not for partial keys (a prefix)
    star: bool = False

    def key_columns(self) -> tuple[str, ...]:
        """The input columns this rule reads."""
        return self.columns or (self.column,)

    def key_name(self) -> str:
        """The column holding this rule's key (``column`` itself for a plain rule)."""
        return f"_key_{self.name}" if self.columns or self.prefix else self.column

    def key_expr(self) -> Any:
        """A polars expression for the rule's key (null when a part is missing or empty).

        Examples:
            >>> import polars as pl
            >>> r = BlockingRule("k", "exact", "", columns=("a", "b"), prefix=2)
            >>> pl.DataFrame({"a": ["abc"], "b": ["xyz"]}).select(r.key_expr()).item()
            'ab|xy'
        """
        import polars as pl

        parts = []
        for c in self.key_columns():
            e = pl.col(c).cast(pl.String).str.strip_chars()
            if self.prefix:
                e = e.str.slice(0, self.prefix)
            parts.append(pl.when(e.str.len_chars() > 0).then(e))
        return pl.concat_str(parts, separator="|", ignore_nulls=False).alias(self.key_name())

    def __post_init__(self) -> None:
        if self.kind not in BLOCKING_KINDS:
            raise MatchError(
                f"blocking rule {self.name!r}: unknown kind {self.kind!r}",
                hint="use one of " + ", ".join(sorted(BLOCKING_KINDS)),
            )


@dataclass(frozen=True)
class EmBlock:
    """One EM training session: pairs from blocking rule ``rule``; the comparisons in
    ``fixes`` agree by construction there, so their m is not estimated in it.

    Training on pairs that one strong key proposes, and estimating only the
    *other* comparisons, keeps EM from mistaking pairs that blocking made alike
    for matches (Splink trains the same way).
    """

    rule: str
    fixes: tuple[str, ...]


@dataclass(frozen=True)
class Thresholds:
    """Probability thresholds: ``auto`` and ``review`` tiers (below review: reject).

    ``duplicate_auto``/``duplicate_review`` apply to pairs inside one system;
    ``cluster_min`` is the weakest pair probability allowed inside a duplicate
    cluster (clusters never chain through one loose pair).
    """

    auto: float = 0.99
    review: float = 0.9
    duplicate_auto: float = 0.99
    duplicate_review: float = 0.98
    cluster_min: float = 0.98


@dataclass(frozen=True)
class MatchSettings:
    """Everything that shapes a match run, as data.

    Examples:
        >>> s = default_settings("contacts")
        >>> s.entity
        'contacts'
    """

    entity: Entity
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[BlockingRule, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    em_blocks: tuple[EmBlock, ...] = ()
    em_iterations: int = 25
    #: random pairs that estimate u; 50k estimate the company levels as well as 100k did
    #: (devset: same links F1, duplicates F1 0.9727 → 0.9741) at half the cost
    u_sample_pairs: int = 50_000
    seed: int = 0
    prior: float | None = None  # P(match) of a candidate pair; None: estimated by EM
    #: m probabilities per comparison learnt from human labels (`recon match --train`);
    #: comparisons listed here are not re-estimated by EM
    m_fixed: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        return asdict(self)

    def to_json(self) -> str:
        """JSON text of the settings (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchSettings:
        """Build settings from plain data.

        Raises:
            MatchError: unknown keys, ops or kinds.
        """

        def at(path: str, build: Callable[..., Any], *args: Any) -> Any:
            try:
                return build(*args)
            except MatchError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise MatchError(
                    f"match settings invalid: {_explain(path, exc)}",
                    hint="start from `default_settings(...)`.to_json() and edit it",
                ) from None

        def names(path: str, x: dict[str, Any], key: str) -> tuple[str, ...]:
            """A list of names (columns, level labels): a lone string is not split into
            letters, and every entry must be a non-empty string."""
            value = x.get(key, ())
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise MatchError(
                    f"match settings invalid: {path}.{key} must be a list of names, not {value!r}",
                    hint=f'write it as a list: "{key}": [{json.dumps(value)}]'
                    if isinstance(value, str)
                    else "start from `default_settings(...)`.to_json() and edit it",
                )
            bad = [v for v in value if not isinstance(v, str) or not v]
            if bad:
                raise MatchError(
                    f"match settings invalid: {path}.{key} must hold names (text), not {bad[0]!r}",
                    hint="start from `default_settings(...)`.to_json() and edit it",
                )
            return tuple(value)

        def text(path: str, x: dict[str, Any], key: str, *, blank: bool = False) -> str:
            value = x[key]
            if not isinstance(value, str) or (not value and not blank):
                raise MatchError(
                    f"match settings invalid: {path}.{key} must be "
                    f"{'text' if blank else 'a name (non-empty text)'}, not {value!r}",
                    hint="start from `default_settings(...)`.to_json() and edit it",
                )
            return value

        def comparison(i: int, c: dict[str, Any]) -> Comparison:
            levels = at(f"comparisons[{i}]", lambda: c["levels"])
            path = f"comparisons[{i}]"
            return Comparison(
                name=text(path, c, "name"),
                column=text(path, c, "column"),
                levels=tuple(
                    at(f"comparisons[{i}].levels[{j}]", _level, i, j, lv)
                    for j, lv in enumerate(levels)
                ),
                tf_adjust=bool(c.get("tf_adjust", False)),
                veto_auto=names(path, c, "veto_auto"),
                no_duplicate=names(path, c, "no_duplicate"),
                columns=names(path, c, "columns"),
                density_adjust=bool(c.get("density_adjust", False)),
                needs_support=names(path, c, "needs_support"),
                supports=bool(c.get("supports", True)),
                review_duplicate=names(path, c, "review_duplicate"),
                liftable=names(path, c, "liftable"),
                lifts_veto=names(path, c, "lifts_veto"),
            )

        def blocking_rule(i: int, x: dict[str, Any]) -> BlockingRule:
            path = f"blocking_rules[{i}]"
            cols = names(path, x, "columns")
            if not cols:
                text(path, x, "column")
            return BlockingRule(**{**x, "columns": cols})

        shapes = [
            (key, kind, name)
            for key, kind, name in (
                ("comparisons", (list, tuple), "a list"),
                ("blocking_rules", (list, tuple), "a list"),
                ("m_fixed", dict, "an object"),
                ("em_blocks", (list, tuple), "a list"),
                ("thresholds", dict, "an object"),
            )
            if key in data and not isinstance(data[key], kind)
        ]
        if shapes:  # a null or a scalar where a structure goes: named, not a crash
            raise MatchError(
                "match settings invalid: "
                + "; ".join(f"{k} must be {n}, not {data[k]!r}" for k, _t, n in shapes),
                hint="start from `default_settings(...)`.to_json() and edit it",
            )
        comps = tuple(
            at(f"comparisons[{i}]", comparison, i, c)
            for i, c in enumerate(at("the settings", lambda: data["comparisons"]))
        )
        rules = tuple(
            at(f"blocking_rules[{i}]", blocking_rule, i, r)
            for i, r in enumerate(at("the settings", lambda: data["blocking_rules"]))
        )
        rest = {
            k: v
            for k, v in data.items()
            if k not in {"comparisons", "blocking_rules", "thresholds", "em_blocks"}
        }
        blocks = tuple(
            at(f"em_blocks[{i}]", lambda x: EmBlock(rule=x["rule"], fixes=tuple(x["fixes"])), b)
            for i, b in enumerate(data.get("em_blocks", ()))
        )
        thresholds = at("thresholds", lambda: Thresholds(**data.get("thresholds", {})))
        settings = at(
            "the settings",
            lambda: cls(
                comparisons=comps,
                blocking_rules=rules,
                em_blocks=blocks,
                thresholds=thresholds,
                **rest,
            ),
        )
        problems = settings.problems()
        if problems:
            raise MatchError(
                "match settings invalid: " + "; ".join(problems),
                hint="start from `default_settings(...)`.to_json() and edit it",
            )
        return settings

    def problems(self) -> list[str]:
        """What is wrong with these settings: every problem, each naming its key.

        Examples:
            >>> default_settings("companies").problems()
            []
        """
        out: list[str] = []
        if self.entity not in ("companies", "contacts"):
            out.append(f"entity {self.entity!r} is not companies or contacts")
        for name, value in asdict(self.thresholds).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                out.append(f"thresholds.{name} must be a number, not {value!r}")
            elif not 0 <= value <= 1:
                out.append(f"thresholds.{name} must lie between 0 and 1, not {value}")
        th = self.thresholds
        if not out and th.review > th.auto:
            out.append("thresholds.review must not exceed thresholds.auto")
        if not out and th.duplicate_review > th.duplicate_auto:
            out.append("thresholds.duplicate_review must not exceed thresholds.duplicate_auto")
        for c in self.comparisons:
            labels = {lv.label for lv in c.levels}
            for key in (
                "veto_auto",
                "no_duplicate",
                "needs_support",
                "review_duplicate",
                "liftable",
                "lifts_veto",
            ):
                for label in getattr(c, key):
                    if label not in labels and label != "null":
                        out.append(
                            f"comparisons[{c.name}].{key}: no level {label!r} "
                            f"(levels: {', '.join(sorted(labels))})"
                        )

        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def number(value: Any) -> bool:  # a finite number (NaN compares false with anything)
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )

        if self.prior is not None and (not number(self.prior) or not 0 < self.prior < 1):
            out.append(
                f"prior must be a number between 0 and 1 (or null: estimated), not {self.prior!r}"
            )
        if not whole(self.seed) or not 0 <= self.seed < 2**32:
            out.append(f"seed must be a whole number from 0 to 4294967295, not {self.seed!r}")
        if not whole(self.u_sample_pairs) or self.u_sample_pairs < 1:
            out.append(
                f"u_sample_pairs must be a whole number of at least 1, not {self.u_sample_pairs!r}"
            )
        if not whole(self.em_iterations) or self.em_iterations < 0:
            out.append(
                f"em_iterations must be a whole number of at least 0, not {self.em_iterations!r}"
            )
        for c in self.comparisons:
            for lv in c.levels:
                t = lv.threshold
                if t is not None and (not number(t) or t < 0):
                    out.append(
                        f"comparisons[{c.name}].levels[{lv.label}].threshold must be a number of "
                        f"at least 0, not {t!r}"
                    )
        for r in self.blocking_rules:
            for key, least in (("keep", 1), ("n", 1), ("max_block", 1)):
                got = getattr(r, key)
                if not whole(got) or got < least:
                    out.append(
                        f"blocking_rules[{r.name}].{key} must be a whole number of at least "
                        f"{least}, not {got!r}"
                    )
        rule_names = {r.name for r in self.blocking_rules}
        for b in self.em_blocks:
            if b.rule not in rule_names:
                out.append(f"em_blocks: no blocking rule {b.rule!r}")
        comparisons = {c.name for c in self.comparisons}
        for b in self.em_blocks:
            for fixed in b.fixes:
                if fixed not in comparisons:
                    out.append(f"em_blocks[{b.rule}].fixes: no comparison {fixed!r}")
        levels = {c.name: len(c.levels) for c in self.comparisons}
        for name, ms in self.m_fixed.items():
            if name not in comparisons:
                out.append(f"m_fixed: no comparison {name!r}")
            elif (
                not isinstance(ms, list | tuple)
                or len(ms) != levels[name]
                or not all(number(m) and 0 <= m <= 1 for m in ms)
            ):
                out.append(
                    f"m_fixed[{name}] must be {levels[name]} probabilities (one per level, each "
                    f"from 0 to 1), not {ms!r}"
                )
        return out

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> MatchSettings:
        """Parse settings from JSON text (``source``: the file it came from, for messages).

        Raises:
            MatchError: the text is not valid settings JSON.
        """
        where = f" in {source}" if source else ""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MatchError(f"match settings{where} are not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MatchError(f"match settings{where} must be a JSON object")
        try:
            return cls.from_dict(data)
        except MatchError as exc:
            if not source:
                raise
            raise MatchError(f"{source}: {exc.message}", hint=exc.hint) from None

    def comparison(self, name: str) -> Comparison:
        """The comparison called ``name``."""
        for c in self.comparisons:
            if c.name == name:
                return c
        raise MatchError(f"no comparison {name!r} in the match settings")


def _explain(path: str, exc: BaseException) -> str:
    """What is wrong at ``path`` of the settings, in words (not Python's).

    Examples:
        >>> _explain("comparisons[0]", KeyError("column"))
        "comparisons[0] has no 'column'"
        >>> _explain("the settings", TypeError("__init__() got an unexpected keyword argument 'blocking'"))
        "the settings: unknown key 'blocking'"
    """
    text = str(exc)
    if isinstance(exc, KeyError):
        return f"{path} has no {exc.args[0]!r}"
    if m := re.search(r"unexpected keyword argument '(\w+)'", text):
        return f"{path}: unknown key {m[1]!r}"
    if m := re.search(r"missing \d+ required (?:positional|keyword-only) arguments?: (.+)$", text):
        return f"{path} has no {m[1]}"
    if "indices must be integers" in text or "not a mapping" in text or "has no attribute" in text:
        return f"{path} must be a JSON object"
    if "not iterable" in text:
        return f"{path} must be a JSON list"
    return f"{path}: {text}"


def person_settings(
    *,
    given_name: str = "given_name",
    surname: str = "surname",
    birth_date: str = "date_of_birth",
    postcode: str = "postcode",
    suburb: str = "suburb",
    state: str = "state",
    address: str = "address_1",
    street_number: str = "street_number",
    person_id: str = "soc_sec_id",
) -> MatchSettings:
    """Ready-made settings for person records on any columns (name parts, birth date, address,
    an identity number); pass the names your frames use. Columns absent from the data are
    skipped (a comparison on a missing column carries no weight; its blocking rules are off).

    Examples:
        >>> s = person_settings(person_id="ssn")
        >>> s.comparison("person_id").column
        'ssn'
        >>> MatchSettings.from_json(s.to_json()) == s
        True
    """
    from . import comparisons as C

    return MatchSettings(
        entity="contacts",
        comparisons=(
            C.text(given_name, "given_name"),
            C.text(surname, "surname"),
            C.date(birth_date, "birth_date"),
            C.code(postcode, "postcode"),
            C.text(suburb, "suburb", light=True),
            C.generic("state", state, [("exact", "exact", None)]),
            C.text(address, "address", light=True),
            C.code(street_number, "street_number", prefix=0),
            C.code(person_id, "person_id", prefix=0),
        ),
        blocking_rules=(
            BlockingRule("person_id", "exact", person_id, max_block=10),
            BlockingRule("birth_date", "exact", birth_date, max_block=30),
            BlockingRule("surname", "exact", surname, max_block=50),
            BlockingRule("given_name_postcode", "exact", "", columns=(given_name, postcode)),
            BlockingRule(
                "given_name_surname_3", "exact", "", columns=(given_name, surname), prefix=3
            ),
            BlockingRule(
                "postcode_birth_year", "exact", "", columns=(postcode, birth_date), prefix=4
            ),
            BlockingRule("address", "exact", "", columns=(street_number, address)),
        ),
        # EM trains on pairs one key proposes, without re-estimating that key: blocking on a
        # surname makes surnames agree, and a set without duplicates would otherwise teach
        # EM that agreeing surnames are a match (FEBRL4's sides: 34k false duplicate pairs)
        em_blocks=(
            EmBlock("birth_date", ("birth_date",)),
            EmBlock("person_id", ("person_id",)),
        ),
        thresholds=Thresholds(auto=0.99, review=0.5, duplicate_auto=0.99, duplicate_review=0.9),
        # nine comparisons with fuzzy levels: 40k random pairs estimate u as well as 100k
        # (FEBRL3/4: same F1) at under half the cost
        u_sample_pairs=40_000,
    )


def default_settings(entity: Entity | Literal["person"]) -> MatchSettings:
    """The ready-made settings for ``companies`` or ``contacts``; ``person``: :func:`person_settings`.

    Examples:
        >>> [r.name for r in default_settings("companies").blocking_rules][:2]
        ['ids', 'domain']
    """
    from . import comparisons as C

    if entity == "companies":
        return MatchSettings(
            entity="companies",
            comparisons=(
                C.company_name(veto_missing=True),
                C.domain(),
                C.phone(),
                C.city(),
                C.country(),
                C.cross_ids(),
                C.shared_contacts(),
            ),
            blocking_rules=(
                BlockingRule("ids", "ids", "xid"),
                BlockingRule("domain", "exact", "domain", star=True),
                BlockingRule("shared_contacts", "tokens", "contact_emails", keep=3, max_block=10),
                BlockingRule("domain_stem", "exact", "domain_stem", max_block=20),
                BlockingRule("name", "exact", "name_key", star=True),
                BlockingRule("acronym", "exact", "acronym_key", max_block=20),
                BlockingRule("name_tokens", "tokens", "name_norm", keep=2, max_block=10),
                BlockingRule(
                    "name_ngrams",
                    "ngrams",
                    "name_compact",
                    keep=3,
                    n=4,
                    max_block=25,
                    dedupe_min_shared=2,
                ),
                BlockingRule("name_script", "exact", "name_script", max_block=30),
                BlockingRule("name_prefix", "exact", "name_prefix", max_block=30),
                BlockingRule("name_suffix", "exact", "name_suffix", max_block=30),
                BlockingRule("phone", "exact", "phone", max_block=10),
            ),
            em_blocks=(
                EmBlock("domain", ("domain",)),
                EmBlock("name", ("company_name",)),
                EmBlock("phone", ("phone",)),
            ),
        )
    if entity == "contacts":
        return MatchSettings(
            entity="contacts",
            comparisons=(
                C.email(),
                C.person_name(),
                C.company_name(column="company_norm", name="company"),
                C.domain(veto_other=True),
                C.phone(),
                C.city(),
                C.country(),
                C.cross_ids(),
            ),
            blocking_rules=(
                BlockingRule("ids", "ids", "xid"),
                BlockingRule("email", "exact", "email", max_block=20, star=True),
                BlockingRule("name", "exact", "name_key", max_block=30, star=True),
                BlockingRule("last_name_company", "exact", "last_company_key", max_block=30),
                BlockingRule("name_ngrams", "ngrams", "name_compact", keep=2, n=4, max_block=30),
                BlockingRule("phone", "exact", "phone", max_block=10),
            ),
            em_blocks=(
                EmBlock("email", ("email",)),
                EmBlock("name", ("person_name",)),
                EmBlock("phone", ("phone",)),
            ),
        )
    if entity == "person":
        return person_settings()
    raise MatchError(f"unknown entity {entity!r}", hint="use companies, contacts or person")
