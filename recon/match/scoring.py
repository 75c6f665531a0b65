"""Scoring: comparison levels per pair (vectorised), Fellegi–Sunter weights, EM training.

- :func:`~recon.match.levels.compare` (in :mod:`recon.match.levels`) assigns every
  candidate pair a level per comparison.
- :func:`estimate_u` samples random pairs: ``u`` = how often a level occurs
  between records that are not the same entity.
- :func:`estimate_m` runs EM on the candidate pairs with ``u`` fixed: ``m``
  (how often a level occurs between records of one entity) and the share of
  matches among candidates. No labels; weights are fitted per run.
- :func:`score` adds the weights (``log2 m/u``), adjusted by term frequency for
  exact agreement on a common value, and turns the total into a probability.

Examples:
    >>> import numpy as np
    >>> w = Weights(prior=0.0, comparisons={"c": {"labels": ["null", "exact", "else"],
    ...     "m": [0.0, 0.9, 0.1], "u": [0.0, 0.01, 0.99]}})
    >>> round(w.weight("c", 1), 2)
    6.49
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..normalize import geo_words
from .levels import compare, release_record_cache
from .settings import Comparison, MatchSettings

__all__ = [
    "Weights",
    "compare",
    "estimate_m",
    "estimate_u",
    "release_record_cache",
    "score",
    "term_frequencies",
]

_EPS = 1e-6


@dataclass
class Weights:
    """Fitted parameters: ``prior`` (log2 odds of a match among candidates) and per
    comparison the level labels with their ``m`` and ``u`` probabilities."""

    prior: float
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)

    def weight(self, comparison: str, level: int) -> float:
        """log2(m/u) of a level (0 for the null level)."""
        c = self.comparisons[comparison]
        if level == 0:
            return 0.0
        m = max(c["m"][level], _EPS)
        u = max(c["u"][level], _EPS)
        return math.log2(m / u)

    def table(self, comparison: str) -> np.ndarray:
        """Weights of every level of one comparison."""
        n = len(self.comparisons[comparison]["labels"])
        return np.array([self.weight(comparison, k) for k in range(n)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, with the weights spelled out."""
        out: dict[str, Any] = {"prior": self.prior, "comparisons": {}}
        for name, c in self.comparisons.items():
            out["comparisons"][name] = {
                **c,
                "weight": [round(float(w), 4) for w in self.table(name)],
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Weights:
        """Inverse of :meth:`to_dict`."""
        comps = {
            k: {kk: vv for kk, vv in v.items() if kk != "weight"}
            for k, v in data["comparisons"].items()
        }
        return cls(prior=float(data["prior"]), comparisons=comps)


def term_frequencies(frames: list[pl.DataFrame], column: str) -> pl.DataFrame:
    """Share of records holding each value of ``column`` (``value``, ``tf``)."""
    col = pl.concat([f.select(pl.col(column).alias("value")) for f in frames]).drop_nulls()
    total = max(col.height, 1)
    return col.group_by("value").agg((pl.len() / total).alias("tf"))


def token_idf(frames: list[pl.DataFrame], column: str) -> pl.DataFrame:
    """Inverse document frequency (``t``, ``w`` = 1 + log2 N/df) of every word of ``column``."""
    col = pl.concat([f.select(pl.col(column).alias("s")) for f in frames]).drop_nulls()
    n = max(col.height, 1)
    toks = col.select(pl.col("s").str.split(" ").list.unique().alias("t")).explode("t")
    out = toks.group_by("t").agg(w=1.0 + (n / pl.len()).log(2))
    geo = pl.col("t").is_in(list(geo_words() | REGION_WORDS))
    # one letter: the debris of a truncated or misspelt legal form ("Acme Foods C", "Lywem
    # V"), not a department's word ("REWE To Go", "Acme AI" and "Acme 2" are other names)
    debris = (pl.col("t").str.len_chars() == 1) & pl.col("t").str.contains("^[a-z]$") & ~geo
    return out.with_columns(id=pl.int_range(pl.len(), dtype=pl.Int32), geo=geo, debris=debris)


#: words that name a region as a country does ("Acme US", "Acme EMEA", "Acme North"): a
#: name that is another plus such words is a regional arm, and two names that differ by
#: such words on each side ("Kappa Sigma North" / "South") are two arms
REGION_WORDS = frozenset(
    {
        "us", "usa", "uk", "eu", "emea", "apac", "latam", "amer", "americas", "asia", "europe",
        "european", "african", "asian", "pacific", "nordic", "nordics", "dach", "benelux",
        "mena", "anz", "north", "south", "east", "west", "central", "northern", "southern",
        "eastern", "western", "midwest", "northeast", "northwest", "southeast", "southwest",
    }
)  # fmt: skip

#: words per name kept for overlap (the rarest ones); the total weight counts all words
TOKENS_K = 6


def add_token_columns(frame: pl.DataFrame, column: str, idf: pl.DataFrame) -> pl.DataFrame:
    """Add ``{column}_tok`` (word ids), ``{column}_tokw`` (their idf) and ``{column}_tokwsum``.

    ``idf`` has ``t``, ``w`` and ``id``; ``frame._i`` must be the row number.
    """
    n = frame.height
    toks = (
        frame.select("_i", pl.col(column).str.split(" ").list.unique().alias("t"))
        .explode("t")
        .drop_nulls()
        .join(idf, on="t", how="inner")
        .sort(["_i", "w"], descending=[False, True])
        .with_columns(pos=pl.int_range(pl.len()).over("_i"))
    )
    wsum = toks.group_by("_i").agg(pl.col("w").sum())
    toks = toks.filter(pl.col("pos") < TOKENS_K)
    ids = np.full((n, TOKENS_K), -1, np.int32)
    ws = np.zeros((n, TOKENS_K), np.float32)
    geo = np.zeros((n, TOKENS_K), np.bool_)
    debris = np.zeros((n, TOKENS_K), np.bool_)
    i = toks["_i"].to_numpy()
    p = toks["pos"].to_numpy()
    ids[i, p] = toks["id"].to_numpy()
    if "geo" in toks.columns:
        geo[i, p] = toks["geo"].to_numpy()
    if "debris" in toks.columns:
        debris[i, p] = toks["debris"].to_numpy()
    ws[i, p] = toks["w"].to_numpy()
    tot = np.zeros(n, np.float32)
    tot[wsum["_i"].to_numpy()] = wsum["w"].to_numpy()
    return frame.with_columns(
        pl.Series(f"{column}_tok", ids, dtype=pl.Array(pl.Int32, TOKENS_K)),
        pl.Series(f"{column}_tokw", ws, dtype=pl.Array(pl.Float32, TOKENS_K)),
        pl.Series(f"{column}_tokwsum", tot, dtype=pl.Float32),
        pl.Series(f"{column}_tokgeo", geo, dtype=pl.Array(pl.Boolean, TOKENS_K)),
        pl.Series(f"{column}_tokdebris", debris, dtype=pl.Array(pl.Boolean, TOKENS_K)),
    )


def estimate_u(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    settings: MatchSettings,
    idf: dict[str, pl.DataFrame],
) -> dict[str, list[float]]:
    """u probabilities per comparison level from random record pairs."""
    rng = np.random.default_rng(settings.seed)
    r = left if right is None else right
    n = min(settings.u_sample_pairs, max(left.height * r.height, 1))
    il = rng.integers(0, max(left.height, 1), n).astype(np.uint32)
    ir = rng.integers(0, max(r.height, 1), n).astype(np.uint32)
    if right is None:
        keep = il != ir
        il, ir = il[keep], ir[keep]
    g = compare(left, r, il, ir, settings, idf)
    out = {}
    for c, comp in enumerate(settings.comparisons):
        k = len(comp.levels)
        counts = np.bincount(g[:, c], minlength=k).astype(float)
        counts[0] = 0.0
        # add-half smoothing so a level never seen among random pairs keeps a finite weight
        counts[1:] += 0.5
        out[comp.name] = (counts / counts.sum()).tolist()
    return out


def _em(
    g: np.ndarray,
    u: dict[str, np.ndarray],
    comps: list[Comparison],
    active: set[str],
    m: dict[str, np.ndarray],
    lam: float,
    iterations: int,
    update_lambda: bool = True,
) -> tuple[dict[str, np.ndarray], float]:
    """EM over level matrix ``g``: re-estimates m of ``active`` comparisons (and the match share).

    Pairs with the same levels on every comparison behave alike: EM runs over the distinct
    level patterns, each weighted by how many pairs share it (a few thousand patterns stand
    for millions of candidate pairs; the result is the same as over the pairs).
    """
    m = {k: v.copy() for k, v in m.items()}
    g, count = _patterns(g)
    n = g.shape[0]
    total = float(count.sum())
    for _ in range(iterations if n else 0):
        ll = np.full(n, math.log2(lam / (1 - lam)))
        for c, comp in enumerate(comps):
            w = np.log2(np.maximum(m[comp.name], _EPS) / u[comp.name])
            w[0] = 0.0
            ll += w[g[:, c]]
        p = 1.0 / (1.0 + np.exp2(-np.clip(ll, -60, 60)))
        pc = p * count
        new_lam = float(np.clip(pc.sum() / total, 1e-5, 1 - 1e-5))
        for c, comp in enumerate(comps):
            if comp.name not in active:
                continue
            k = len(comp.levels)
            s = np.bincount(g[:, c], weights=pc, minlength=k).astype(np.float64)
            s[0] = 0.0
            if s.sum() > 0:
                s[1:] += 1e-3
                m[comp.name] = s / s.sum()
        done = abs(new_lam - lam) < 1e-7
        if update_lambda:
            lam = new_lam
        if done:
            break
    return m, lam


def _patterns(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of level matrix ``g`` and how often each occurs.

    Examples:
        >>> rows, count = _patterns(np.array([[1, 2], [1, 2], [0, 3]], dtype=np.int8))
        >>> rows.tolist(), count.tolist()
        ([[0, 3], [1, 2]], [1.0, 2.0])
    """
    if g.shape[0] == 0 or g.shape[1] == 0:
        return g, np.ones(g.shape[0])
    bits = [max(int(g[:, c].max()), 1).bit_length() for c in range(g.shape[1])]
    if sum(bits) > 62:  # pragma: no cover - more levels than one integer key holds
        rows, count = np.unique(g, axis=0, return_counts=True)
        return rows, count.astype(np.float64)
    key = np.zeros(g.shape[0], dtype=np.int64)
    for c, b in enumerate(bits):
        key = (key << b) | g[:, c].astype(np.int64)
    uniq, count = np.unique(key, return_counts=True)
    rows = np.empty((len(uniq), g.shape[1]), dtype=g.dtype)
    for c in range(g.shape[1] - 1, -1, -1):
        rows[:, c] = uniq & ((1 << bits[c]) - 1)
        uniq = uniq >> bits[c]
    return rows, count.astype(np.float64)


def _init_m(comp: Comparison) -> np.ndarray:
    k = len(comp.levels)
    init = np.array([0.0] + [0.6 * 0.6**j for j in range(k - 2)] + [0.05])
    return init / init.sum()


def estimate_m(
    g: np.ndarray,
    u: dict[str, list[float]],
    settings: MatchSettings,
    *,
    sessions: list[tuple[np.ndarray, tuple[str, ...]]] = (),  # type: ignore[assignment]
    prior_share: float = 0.3,
) -> Weights:
    """m probabilities by EM with u fixed, then the match share among all candidates.

    ``sessions`` are level matrices of pairs from one strong blocking rule each,
    with the comparisons that rule fixes; each session estimates m of the other
    comparisons (averaged over sessions). Comparisons no session estimates are
    estimated on all candidates ``g``. The match share is then fitted on ``g``
    with every m and u held fixed.
    """
    comps = list(settings.comparisons)
    names = [c.name for c in comps]
    uw = {c.name: np.maximum(np.asarray(u[c.name], dtype=float), _EPS) for c in comps}
    m0 = {c.name: _init_m(c) for c in comps}
    # m given (learnt from reviewers' labels, or carried over from the cross-system fit):
    # used as it is, never re-estimated
    fixed = {
        c.name: np.asarray(settings.m_fixed[c.name], dtype=float)
        for c in comps
        if len(settings.m_fixed.get(c.name, ())) == len(c.levels)
    }
    m0.update(fixed)
    estimates: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for gs, fixes in sessions:
        if gs.shape[0] < 20:
            continue
        cols = [i for i, c in enumerate(comps) if c.name not in fixes]
        sub = [comps[i] for i in cols]
        active = {c.name for c in sub if c.name not in fixed and (gs[:, comps.index(c)] > 0).any()}
        ms, _ = _em(gs[:, cols], uw, sub, active, m0, 0.5, settings.em_iterations)
        for name in active:
            estimates[name].append(ms[name])
    m = dict(m0)
    rest = {
        n
        for n in names
        if n not in fixed and not estimates[n] and g.shape[0] and (g[:, names.index(n)] > 0).any()
    }
    for n in names:
        if estimates[n]:
            m[n] = np.mean(estimates[n], axis=0)
    lam = prior_share if settings.prior is None else settings.prior
    if rest:
        m, lam = _em(g, uw, comps, rest, m, lam, settings.em_iterations)
    if settings.prior is None:
        _, lam = _em(g, uw, comps, set(), m, lam, 100)
    weights = Weights(prior=math.log2(lam / (1 - lam)))
    for comp in comps:
        seen = bool(estimates[comp.name]) or comp.name in rest or comp.name in fixed
        mm = m[comp.name] if seen else uw[comp.name]  # never seen: weight 0
        weights.comparisons[comp.name] = {
            "labels": [lv.label for lv in comp.levels],
            "m": [round(float(x), 6) for x in mm],
            "u": [round(float(x), 8) for x in u[comp.name]],
        }
    return weights


def score(
    g: np.ndarray,
    weights: Weights,
    settings: MatchSettings,
    tf_adjust: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Total match weight (log2 Bayes factor plus prior) and per-comparison weights.

    ``tf_adjust`` maps comparison names to a per-pair adjustment of their weight (0 where
    none applies: a term-frequency adjustment for agreement on a common value).
    """
    n = g.shape[0]
    per = np.zeros((n, len(settings.comparisons)), dtype=np.float32)  # half the memory
    for c, comp in enumerate(settings.comparisons):
        per[:, c] = weights.table(comp.name)[g[:, c]]
        if tf_adjust and comp.name in tf_adjust:
            per[:, c] += tf_adjust[comp.name]
    total = weights.prior + per.sum(axis=1, dtype=np.float64)
    return total, per


def probability(match_weight: np.ndarray) -> np.ndarray:
    """Match probability from a total match weight."""
    return 1.0 / (1.0 + np.exp2(-np.clip(match_weight, -60, 60)))


def fuzzy_levels(comp: Comparison) -> list[int]:
    """Levels of ``comp`` that agree without being equal and may propose a duplicate."""
    weak = set(comp.veto_auto) | set(comp.no_duplicate)
    return [
        k
        for k, lv in enumerate(comp.levels)
        if lv.op not in ("null", "exact", "else") and lv.label not in weak
    ]


def neighbour_density(
    g: np.ndarray, il: np.ndarray, ir: np.ndarray, n: int, settings: MatchSettings
) -> dict[str, np.ndarray]:
    """Per comparison with ``density_adjust``: each record's number of candidates whose
    value is equal or near (a fuzzy level that may propose a duplicate)."""
    out = {}
    for c, comp in enumerate(settings.comparisons):
        if not comp.density_adjust:
            continue
        exact = [k for k, lv in enumerate(comp.levels) if lv.op == "exact"]
        near = np.isin(g[:, c], exact + fuzzy_levels(comp))
        out[comp.name] = np.bincount(il[near], minlength=n) + np.bincount(ir[near], minlength=n)
    return out


def tf_tables(
    frames: list[pl.DataFrame], settings: MatchSettings
) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Term-frequency tables of the comparisons that adjust for them, and the column each counts.

    A comparison's ``exact`` level counts its own column; an ``acronym`` level counts the
    records' acronym keys (initials, or a short one-word name), so a pair of initials shared by
    many names in the data set is weaker evidence than one only two records carry.
    """
    tf: dict[str, pl.DataFrame] = {}
    columns: dict[str, str] = {}
    for comp in settings.comparisons:
        if not comp.tf_adjust or comp.column not in frames[0].columns:
            continue
        tf[comp.name] = term_frequencies(frames, comp.column)
        columns[comp.name] = comp.column
        if any(lv.op == "acronym" for lv in comp.levels) and "acronym_key" in frames[0].columns:
            key = f"{comp.name}:acronym"
            tf[key] = term_frequencies(frames, "acronym_key")
            columns[key] = "acronym_key"
    return tf, columns
