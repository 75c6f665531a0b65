"""Tiers and explanations: which pairs are ``auto``, ``review`` or rejected, and why.

A pair's tier comes from its match probability and two thresholds, unless a comparison
vetoes ``auto`` at the pair's level (``veto_auto``: strong keys are evidence, not verdicts).
Inside one system some levels never propose a duplicate (``no_duplicate``) and some only
with another agreeing field (``needs_support``). Explanations list every comparison's level
and weight (``vetoes_auto`` on a level that keeps the pair out of ``auto``), the prior and
the total, as JSON.

Examples:
    >>> TIERS[AUTO], TIERS[REVIEW], TIERS[REJECT]
    ('auto', 'review', 'reject')
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .settings import MatchSettings

#: tier names by code (pairs carry int8 codes until the kept rows are written out)
TIERS = ("reject", "review", "auto")
REJECT, REVIEW, AUTO = 0, 1, 2


def _at_levels(
    g: np.ndarray, settings: MatchSettings, attr: str, but: str | None = None
) -> np.ndarray:
    """Pairs at a level some comparison lists in its ``attr`` (``veto_auto``, ``no_duplicate``)
    and not in its ``but``."""
    out = np.zeros(g.shape[0], dtype=bool)
    for c, comp in enumerate(settings.comparisons):
        labels = [lv.label for lv in comp.levels]
        skip = set(getattr(comp, but)) if but else set()
        listed = [
            labels.index(lab) for lab in getattr(comp, attr) if lab in labels and lab not in skip
        ]
        if listed:
            out |= np.isin(g[:, c], listed)
    return out


def veto_pairs(g: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """Pairs at a level some comparison lists in ``veto_auto`` (a clearly different name...),
    but for ``liftable`` vetoes where another comparison agrees at a ``lifts_veto`` level (a
    strong key: the same e-mail address)."""
    veto = _at_levels(g, settings, "veto_auto", but="liftable")
    if any(c.liftable for c in settings.comparisons):
        veto |= _at_levels(g, settings, "liftable") & ~_lifted(g, settings)
    return veto


def _lifted(g: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """Pairs where a comparison agrees at a ``lifts_veto`` level (a strong key: one e-mail
    address), when some comparison has a ``liftable`` veto; else none."""
    if any(c.liftable for c in settings.comparisons):
        return _at_levels(g, settings, "lifts_veto")
    return np.zeros(g.shape[0], dtype=bool)


def pair_tiers(
    g: np.ndarray,
    prob: np.ndarray,
    settings: MatchSettings,
    auto: float,
    review: float,
    *,
    veto_rejects: bool = False,
) -> np.ndarray:
    """Tier code of every pair (index into :data:`TIERS`: reject, review, auto)."""
    veto = veto_pairs(g, settings)
    if veto_rejects:  # inside one system: some levels keep a merge for a person to decide
        veto_auto_only = review_duplicate_pairs(g, settings)
    else:
        veto_auto_only = np.zeros(len(prob), dtype=bool)
    tier = np.zeros(len(prob), dtype=np.int8)
    tier[prob >= review] = REVIEW
    tier[(prob >= auto) & ~veto & ~veto_auto_only] = AUTO
    if veto_rejects:
        tier[no_duplicate_pairs(g, settings)] = REJECT
    return tier


def review_duplicate_pairs(g: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """Pairs at a level some comparison lists in ``review_duplicate`` (never an automatic merge)."""
    return _at_levels(g, settings, "review_duplicate")


def tier_names(codes: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(TIERS, dtype=object)[codes], dtype=pl.String)


def no_duplicate_pairs(g: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """Pairs that may not be duplicates: vetoed (at a level not also listed in
    ``review_duplicate``, which a person decides), at a level listed in ``no_duplicate``, or at
    a level listed in ``needs_support`` while no other supporting comparison agrees."""
    out = _at_levels(g, settings, "veto_auto", but="review_duplicate") | _at_levels(
        g, settings, "no_duplicate"
    )
    comps = settings.comparisons
    if not any(comp.needs_support for comp in comps):
        return out
    # agreeing: any level but null (0) and else (the last)
    agrees = [(g[:, k] > 0) & (g[:, k] < len(comp.levels) - 1) for k, comp in enumerate(comps)]
    for c, comp in enumerate(comps):
        labels = [lv.label for lv in comp.levels]
        needy = [labels.index(lab) for lab in comp.needs_support if lab in labels]
        if needy:
            others = np.zeros(g.shape[0], dtype=bool)
            for k, other in enumerate(comps):
                if k != c and other.supports:
                    others |= agrees[k]
            out |= np.isin(g[:, c], needy) & ~others
    return out


#: explanations are built this many pairs at a time (bounds the string temporaries)
EXPLAIN_SLICE = 200_000


def explain(
    g: np.ndarray, per: np.ndarray, total: np.ndarray, settings: MatchSettings
) -> pl.Series:
    if len(total) == 0:
        return pl.Series("explanation", [], pl.String)
    if len(total) > EXPLAIN_SLICE:
        return pl.concat(
            [
                explain(g[i : i + EXPLAIN_SLICE], per[i : i + EXPLAIN_SLICE],
                         total[i : i + EXPLAIN_SLICE], settings)
                for i in range(0, len(total), EXPLAIN_SLICE)
            ]
        )  # fmt: skip
    parts = []
    # a liftable veto a strong key lifted (one e-mail address) keeps no pair out of auto
    lifted = _lifted(g, settings)
    for c, comp in enumerate(settings.comparisons):
        labels = pl.Series([lv.label for lv in comp.levels])
        codes = g[:, c].astype(np.int64)
        lab = labels.gather(codes)
        w = pl.Series(np.round(per[:, c], 3)).cast(pl.String)
        # a level that keeps the pair out of auto whatever its score says so
        vetoing = [k for k, lv in enumerate(comp.levels) if lv.label in comp.veto_auto]
        liftable = [k for k, lv in enumerate(comp.levels) if lv.label in comp.liftable]
        says = np.isin(codes, vetoing) & ~(np.isin(codes, liftable) & lifted)
        veto = pl.Series(np.where(says, ',"vetoes_auto":true', ""))
        parts.append(
            pl.concat_str(
                [
                    pl.lit(f'{{"comparison":"{comp.name}","level":"'),
                    pl.lit(lab),
                    pl.lit('","weight":'),
                    pl.lit(w),
                    pl.lit(veto),
                    pl.lit("}"),
                ]
            )
        )
    # the starting odds (how common a match is among candidates): with it the weights add up
    prior = total - per.sum(axis=1, dtype=np.float64)
    parts.append(
        pl.concat_str(
            [
                pl.lit('{"comparison":"prior","level":"match_share","weight":'),
                pl.lit(pl.Series(np.round(prior, 3)).cast(pl.String)),
                pl.lit("}"),
            ]
        )
    )
    tot = pl.Series(np.round(total, 3)).cast(pl.String)
    parts.append(
        pl.concat_str(
            [pl.lit('{"comparison":"total","level":"sum","weight":'), pl.lit(tot), pl.lit("}")]
        )
    )
    return pl.select(
        pl.concat_str([pl.lit("["), pl.concat_str(parts, separator=","), pl.lit("]")]).alias(
            "explanation"
        )
    ).to_series()
