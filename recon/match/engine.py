"""The match pipeline: features → blocking → levels → weights (u, EM) → scores → tiers →
assignment (links) and clusters (duplicates), with an explanation per pair.

:func:`match_records` in :mod:`recon.match` is the public entry point.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from ..models import stable_id
from .assign import best_per_right, one_to_one
from .blocking import candidates, features
from .clusters import build_clusters
from .comparisons import with_comparison_columns
from .levels import compare, release_record_cache
from .scoring import (
    Weights,
    add_token_columns,
    estimate_m,
    estimate_u,
    fuzzy_levels,
    neighbour_density,
    probability,
    score,
    tf_tables,
    token_idf,
)
from .settings import MatchSettings
from .tiers import (
    AUTO,
    REJECT,
    REVIEW,
    explain,
    no_duplicate_pairs,
    pair_tiers,
    review_duplicate_pairs,
    tier_names,
)

log = logging.getLogger(__name__)

#: pairs sampled per EM training session at most
EM_SESSION_PAIRS = 300_000
#: candidate pairs scored at once when their totals are computed
SCORE_SLICE = 1_000_000
#: link and duplicate stages run at once in this many threads at most...
MAX_THREADS = 3
#: ...when the two frames hold at most this many records together (above it, one stage at a
#: time: the stages' working sets would add up; 1M x 1M companies peak at ~2.9 GB one at a time)
THREADS_UP_TO_RECORDS = 1_000_000
#: match weight (log2 of the Bayes factor) a link pair loses for a record marked as a stale copy
#: ("DO NOT USE - Acme", "Acme (old)"): its unmarked twin takes the link unless the copy is the
#: better match by more than a factor of 16
STALE_PENALTY = 4.0
#: match weight an ``auto`` pair gains in link assignment: a pair a veto keeps out of ``auto``
#: ("Zorblat Dynamics Financial Services" on the Account's website) never takes the record of
#: a pair without one ("Zorblat Dynamics"), however high its score
AUTO_FIRST = 1000.0
_BLOCKING = threading.Lock()


class _Turns:
    """The stages of one match take the blocking lock in a fixed order.

    Blocking is serialised (:data:`_BLOCKING`); without an order the link stage, the
    longest, often blocked last and then ran alone while the other core idled. With it
    first, the duplicate stages fill the other core (80k companies: 3.2 s -> 2.85 s).
    A stage that ends without blocking (too few records, an error) gives up its turn.

    Examples:
        >>> t = _Turns(["links", "dups"])
        >>> with t.turn("links"):
        ...     pass
        >>> t.done("dups"); t.pending
        []
    """

    def __init__(self, keys: list[str]) -> None:
        self.pending = list(keys)
        self._cv = threading.Condition()

    @contextmanager
    def turn(self, key: str) -> Iterator[None]:
        with self._cv:
            self._cv.wait_for(lambda: key not in self.pending or self.pending[0] == key)
        try:
            with _BLOCKING:
                yield
        finally:
            self.done(key)

    def done(self, key: str) -> None:
        with self._cv:
            if key in self.pending:
                self.pending.remove(key)
                self._cv.notify_all()


SHARED_EMAIL_FLAG = "shared_email_lead_and_contact"

LINK_SCHEMA = {
    "record_id_l": pl.String,
    "record_id_r": pl.String,
    "object_l": pl.String,
    "object_r": pl.String,
    "score": pl.Float64,
    "match_weight": pl.Float64,
    "tier": pl.String,
    "explanation": pl.String,
    "flags": pl.String,
}
DUP_SCHEMA = {
    "source": pl.String,
    "object": pl.String,
    "record_id_l": pl.String,
    "record_id_r": pl.String,
    "score": pl.Float64,
    "match_weight": pl.Float64,
    "tier": pl.String,
    "cluster_id": pl.String,
    "explanation": pl.String,
}
CLUSTER_SCHEMA = {
    "source": pl.String,
    "object": pl.String,
    "cluster_id": pl.String,
    "record_id": pl.String,
    "score": pl.Float64,
    "tier": pl.String,
}


@dataclass
class _Scorer:
    """Everything needed to score any pairs between two feature frames."""

    left: pl.DataFrame
    right: pl.DataFrame
    settings: MatchSettings
    idf: dict[str, pl.DataFrame]
    weights: Weights
    tf: dict[str, pl.DataFrame]
    #: the record column each term-frequency table counts
    tf_columns: dict[str, str] = field(default_factory=dict)
    #: per comparison with ``density_adjust``: each record's number of near values
    density: dict[str, np.ndarray] = field(default_factory=dict)
    veto_zero: bool = False
    #: term frequency of each record's value, per comparison (filled on first use)
    _tf_rec: dict[str, np.ndarray] = field(default_factory=dict)

    def levels(self, il: np.ndarray, ir: np.ndarray) -> np.ndarray:
        return compare(self.left, self.right, il, ir, self.settings, self.idf)

    def tf_adjust(
        self, il: np.ndarray, g: np.ndarray, ir: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Per pair and comparison: the term-frequency adjustment of its weight (0 where none).

        Agreement on a common value is weak evidence: at the ``exact`` level the
        comparison's own value, at the ``acronym`` level the shared initials ("GVS"
        is the acronym of every name whose words start with G, V, S). The weight
        drops by log2(value's frequency / the level's u), never rises. Inside one system
        (``density``), a fuzzy agreement also drops by log2 of the larger number of near
        values either record has.
        """
        out = {}
        for c, comp in enumerate(self.settings.comparisons):
            if not comp.tf_adjust and comp.name not in self.density:
                continue
            adj = np.zeros(len(il), dtype=np.float64)
            tf_keys = (("exact", comp.name), ("acronym", f"{comp.name}:acronym"))
            for op, key in tf_keys if comp.tf_adjust else ():
                k = next((i for i, lv in enumerate(comp.levels) if lv.op == op), -1)
                if k < 1 or key not in self.tf:
                    continue
                at = g[:, c] == k
                if not at.any():
                    continue
                u = max(self.weights.comparisons[comp.name]["u"][k], 1e-9)
                tf = self._record_tf(key)[il[at]]
                tf = np.where(np.isnan(tf), u, tf)
                # only ever weaken: a common value is weak evidence
                adj[at] = np.minimum(np.log2(u / np.maximum(tf, 1e-12)), 0.0)
            if comp.name in self.density and ir is not None:
                fuzzy = np.isin(g[:, c], fuzzy_levels(comp))
                near = self.density[comp.name]
                k = np.maximum(near[il[fuzzy]], near[ir[fuzzy]])
                adj[fuzzy] -= np.log2(np.maximum(k, 1))
            if adj.any():
                out[comp.name] = adj
        return out

    def score(self, il: np.ndarray, ir: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self.levels(il, ir)
        total, per = score(g, self.weights, self.settings, self.tf_adjust(il, g, ir))
        return g, total, per

    def _record_tf(self, key: str) -> np.ndarray:
        """Term frequency of each left record's value for ``key`` (once, then indexed per pair)."""
        if key not in self._tf_rec:
            column = self.tf_columns[key]
            self._tf_rec[key] = (
                pl.DataFrame({"value": self.left[column]})
                .join(self.tf[key], on="value", how="left", maintain_order="left")["tf"]
                .to_numpy()
            )
        return self._tf_rec[key]

    def probability(self, il: np.ndarray, ir: np.ndarray) -> np.ndarray:
        g, total, _ = self.score(il, ir)
        prob = probability(total)
        if self.veto_zero:
            prob[no_duplicate_pairs(g, self.settings)] = 0.0
        return prob


def _fit(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    settings: MatchSettings,
    counts: dict[str, Any],
    key: str,
    prior_share: float,
    m_from: Weights | None = None,
    turns: _Turns | None = None,
) -> tuple[_Scorer, pl.DataFrame, np.ndarray, np.ndarray]:
    t0 = time.perf_counter()
    frames = [left] if right is None else [left, right]
    idf: dict[str, pl.DataFrame] = {
        c: token_idf(frames, c) for c in ("name_norm", "company_norm") if c in left.columns
    }
    for c, table in idf.items():
        left = add_token_columns(left, c, table)
        if right is not None:
            right = add_token_columns(right, c, table)
    r = left if right is None else right
    rules = {rule.name: rule for rule in settings.blocking_rules}
    em_rules = [b.rule for b in settings.em_blocks if b.rule in rules] if m_from is None else []
    kept = {k: pl.DataFrame(schema={"_il": pl.UInt32, "_ir": pl.UInt32}) for k in em_rules}
    # one stage blocks at a time: its polars joins already use every core, and the
    # stages' transient join tables would otherwise add up in memory
    with turns.turn(key) if turns is not None else _BLOCKING:
        pairs, rule_counts = candidates(left, right, settings.blocking_rules, kept=kept)
    counts[f"{key}_candidates"] = rule_counts
    t1 = time.perf_counter()
    u = estimate_u(left, right, settings, idf)
    il = pairs["_il"].to_numpy()
    ir = pairs["_ir"].to_numpy()
    g = compare(left, r, il, ir, settings, idf)
    t2 = time.perf_counter()
    sessions = []
    fit_settings = settings
    if m_from is not None:
        # m (how one entity's records agree) carries over from the cross-system fit;
        # u and the match share are the duplicates' own
        fixed = {k: v["m"] for k, v in m_from.comparisons.items()}
        fit_settings = MatchSettings.from_dict(
            {**settings.to_dict(), "m_fixed": {**fixed, **settings.m_fixed}}
        )
    for block in fit_settings.em_blocks if m_from is None else ():
        if block.rule not in rules:
            continue
        sp = kept[block.rule]
        if sp.height > EM_SESSION_PAIRS:  # sorted first: the sample must not depend on join order
            sp = sp.sort("_il", "_ir").sample(EM_SESSION_PAIRS, seed=settings.seed)
        # the rule's pairs are among the candidates: their levels are already known
        pos = (
            pairs.select("_il", "_ir")
            .with_row_index("_k")
            .join(sp.select("_il", "_ir"), on=["_il", "_ir"], how="inner", maintain_order="right")
        )["_k"].to_numpy()
        gs = g[pos]
        sessions.append((gs, block.fixes))
    weights = estimate_m(g, u, fit_settings, sessions=sessions, prior_share=prior_share)
    tf, tf_columns = tf_tables(frames, settings)
    scorer = _Scorer(left, r, settings, idf, weights, tf, tf_columns)
    if right is None:  # inside one system: how crowded each record's neighbourhood is
        scorer.density = neighbour_density(g, il, ir, left.height, settings)
    # totals in slices: the per-comparison weights of every candidate are never held at once
    # (the links' explanations recompute them for the chosen pairs only)
    total = np.empty(len(il), dtype=np.float64)
    for i in range(0, len(il), SCORE_SLICE):
        sl = slice(i, i + SCORE_SLICE)
        total[sl] = score(g[sl], weights, settings, scorer.tf_adjust(il[sl], g[sl], ir[sl]))[0]
    t3 = time.perf_counter()
    counts["timings"][f"{key}_blocking"] = round(t1 - t0, 3)
    counts["timings"][f"{key}_levels"] = round(t2 - t1, 3)
    counts["timings"][f"{key}_weights"] = round(t3 - t2, 3)
    return scorer, pairs, g, total


def _links(
    left: pl.DataFrame,
    right: pl.DataFrame,
    settings: MatchSettings,
    counts: dict[str, Any],
    turns: _Turns | None = None,
    rejected: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, Weights]:
    th = settings.thresholds
    scorer, pairs, g, total = _fit(left, right, settings, counts, "links", 0.3, turns=turns)
    t0 = time.perf_counter()
    prob = probability(total)
    tier = pair_tiers(g, prob, settings, th.auto, th.review)
    tier[_department_pairs(left, right, pairs, g, settings)] = REJECT
    keep = tier != REJECT
    idx = np.flatnonzero(keep)
    il_all, ir_all = pairs["_il"].gather(idx), pairs["_ir"].gather(idx)
    # ranked by match weight (probabilities saturate at 1.0 and tie), a stale copy's pair
    # ("DO NOT USE - Acme") set back by STALE_PENALTY: its live twin, as good a match or
    # nearly, takes the link; pairs without a veto (auto) before those with one
    stale = (left["stale"].gather(il_all) | right["stale"].gather(ir_all)).to_numpy()
    cand = pl.DataFrame(
        {
            "_il": il_all,
            "_ir": ir_all,
            "score": total[idx] - STALE_PENALTY * stale + AUTO_FIRST * (tier[idx] == AUTO),
            "_k": idx,
        }
    )
    if rejected is not None and rejected.height:
        # a rejected pair takes no record: the pair it took one from is proposed instead
        ids = ["record_id_l", "record_id_r"]
        kept = cand.with_columns(
            record_id_l=left["record_id"].gather(cand["_il"]),
            record_id_r=right["record_id"].gather(cand["_ir"]),
        ).join(rejected.select(ids).unique(), on=ids, how="anti")
        counts["links_rejected"] = cand.height - kept.height
        cand = kept.drop(ids)
    if settings.entity == "contacts":
        objr = right["object"].gather(cand["_ir"])
        is_lead = (objr == "Lead").fill_null(False)
        chosen = pl.concat(
            [one_to_one(cand.filter(~is_lead)), best_per_right(cand.filter(is_lead))]
        )
    else:
        chosen = one_to_one(cand)
    k = chosen["_k"].to_numpy()
    il = chosen["_il"].to_numpy()
    ir = chosen["_ir"].to_numpy()
    per_k = score(g[k], scorer.weights, settings, scorer.tf_adjust(il, g[k], ir))[1]
    links = pl.DataFrame(
        {
            "record_id_l": left["record_id"].gather(il),
            "record_id_r": right["record_id"].gather(ir),
            "object_l": left["object"].gather(il),
            "object_r": right["object"].gather(ir),
            "score": np.round(prob[k], 6),
            "match_weight": np.round(total[k], 4),
            "tier": tier_names(tier[k]),
            "explanation": explain(g[k], per_k, total[k], settings),
            "flags": pl.Series(["[]"] * len(k), dtype=pl.String),
        },
        schema=LINK_SCHEMA,
    )
    if settings.entity == "contacts" and links.height:
        links = _flag_shared_email(links, left, right, il, ir)
    links = links.sort("score", "record_id_l", "record_id_r", descending=[True, False, False])
    counts["timings"]["links_assign"] = round(time.perf_counter() - t0, 3)
    release_record_cache()  # the duplicates compare other frames
    return links, scorer.weights


def _hosts_several(frame: pl.DataFrame) -> pl.Series:
    """Per record: its domain carries several different names in its own system."""
    if "domain" not in frame.columns or "name_norm" not in frame.columns:
        return pl.Series([False] * frame.height)
    names = frame.group_by("domain").agg(pl.col("name_norm").n_unique().alias("_names"))
    out = frame.select("domain").join(names, on="domain", how="left", maintain_order="left")
    return ((out["_names"] >= 2) & out["domain"].is_not_null()).fill_null(False)


def _department_pairs(
    left: pl.DataFrame,
    right: pl.DataFrame,
    pairs: pl.DataFrame,
    g: np.ndarray,
    settings: MatchSettings,
) -> np.ndarray:
    """Pairs whose names differ by whole extra words on a website that, inside one system,
    already carries several names: a department or arm next to its parent, not a link."""
    names = [c for c in settings.comparisons if c.column == "name_norm"]
    if not names or g.shape[0] == 0:
        return np.zeros(g.shape[0], dtype=bool)
    c = settings.comparisons.index(names[0])
    labels = [lv.label for lv in names[0].levels]
    extra = np.isin(
        g[:, c], [labels.index(x) for x in ("extra_words", "extra_country") if x in labels]
    )
    if not extra.any():
        return extra
    several_l = _hosts_several(left).to_numpy()[pairs["_il"].to_numpy()]
    several_r = _hosts_several(right).to_numpy()[pairs["_ir"].to_numpy()]
    return extra & (several_l | several_r)


def _flag_shared_email(
    links: pl.DataFrame, left: pl.DataFrame, right: pl.DataFrame, il: np.ndarray, ir: np.ndarray
) -> pl.DataFrame:
    """Flag a HubSpot contact's links when a Lead and a Contact both carry its email."""
    el = left["email"].gather(il)
    er = right["email"].gather(ir)
    same = (el == er).fill_null(False)
    frame = links.with_columns(_same=same, _e=el)
    both = (
        frame.filter(pl.col("_same"))
        .group_by("record_id_l")
        .agg(
            lead=(pl.col("object_r") == "Lead").any(),
            contact=(pl.col("object_r") == "Contact").any(),
        )
        .filter(pl.col("lead") & pl.col("contact"))
        .select("record_id_l", _flag=pl.lit(True))
    )
    frame = frame.join(both, on="record_id_l", how="left", maintain_order="left")
    return frame.with_columns(
        flags=pl.when(pl.col("_flag").fill_null(False) & pl.col("_same"))
        .then(pl.lit(json.dumps([SHARED_EMAIL_FLAG])))
        .otherwise(pl.col("flags"))
    ).drop("_same", "_e", "_flag")


def _duplicates(
    frame: pl.DataFrame,
    settings: MatchSettings,
    counts: dict[str, Any],
    key: str,
    m_from: Weights | None,
    turns: _Turns | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    th = settings.thresholds
    source = frame["source"][0] if frame.height else ""
    obj = frame["object"][0] if frame.height else ""
    if frame.height < 2:
        return pl.DataFrame(schema=DUP_SCHEMA), pl.DataFrame(schema=CLUSTER_SCHEMA), {}
    scorer, pairs, g, total = _fit(frame, None, settings, counts, key, 0.05, m_from, turns)
    t0 = time.perf_counter()
    prob = probability(total)
    # inside one system a department, regional arm or clearly different name is
    # another record, not a duplicate: vetoed pairs never join a cluster
    tier = pair_tiers(g, prob, settings, th.duplicate_auto, th.duplicate_review, veto_rejects=True)
    scorer.veto_zero = True
    sel = np.flatnonzero(tier != REJECT)
    edges = pl.DataFrame(
        {"_il": pairs["_il"].gather(sel), "_ir": pairs["_ir"].gather(sel), "score": prob[sel]}
    )
    groups = build_clusters(frame.height, edges, scorer.probability, cluster_min=th.cluster_min)
    rows_a: list[int] = []
    rows_b: list[int] = []
    cid: list[str] = []
    cluster_rows = []
    ids = frame["record_id"]
    names = ids.to_list()  # one conversion, not one Series lookup per member
    for members in groups:
        rid = sorted([names[m] for m in members])
        cluster_id = "c-" + _hash(source, obj, rid)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                rows_a.append(a)
                rows_b.append(b)
                cid.append(cluster_id)
        cluster_rows.append((cluster_id, members))
    pa = np.asarray(rows_a, dtype=np.uint32)
    pb = np.asarray(rows_b, dtype=np.uint32)
    gg, tt, pp = scorer.score(pa, pb)
    pr = probability(tt)
    tr = pair_tiers(gg, pr, settings, th.duplicate_auto, th.duplicate_review)
    tr[tr == REJECT] = REVIEW  # inside a consistent cluster: still worth a look
    # near names inside one system: the merge waits for a person (review_duplicate)
    tr[(tr == AUTO) & review_duplicate_pairs(gg, settings)] = REVIEW
    dups = pl.DataFrame(
        {
            "source": [source] * len(pa),
            "object": [obj] * len(pa),
            "record_id_l": ids.gather(pa),
            "record_id_r": ids.gather(pb),
            "score": np.round(pr, 6),
            "match_weight": np.round(tt, 4),
            "tier": tier_names(tr),
            "cluster_id": cid,
            "explanation": explain(gg, pp, tt, settings),
        },
        schema=DUP_SCHEMA,
    )
    pair_score = dups.group_by("cluster_id").agg(
        pl.col("score").min().alias("score"), (pl.col("tier") == "auto").all().alias("_auto")
    )
    crow = pl.DataFrame(
        {
            "cluster_id": [c for c, m in cluster_rows for _ in m],
            "record_id": [names[x] for _, m in cluster_rows for x in m],
        },
        schema={"cluster_id": pl.String, "record_id": pl.String},
    )
    clusters = (
        crow.join(pair_score, on="cluster_id", how="left")
        .with_columns(
            source=pl.lit(source),
            object=pl.lit(obj),
            tier=pl.when(pl.col("_auto")).then(pl.lit("auto")).otherwise(pl.lit("review")),
        )
        .select(list(CLUSTER_SCHEMA))
        .cast(CLUSTER_SCHEMA)  # type: ignore[arg-type]
    )
    counts["timings"][f"{key}_clusters"] = round(time.perf_counter() - t0, 3)
    release_record_cache()
    return dups, clusters, scorer.weights.to_dict()


def _run_all(
    jobs: list[tuple[str, Callable[[], Any]]], threads: int, turns: _Turns | None = None
) -> list[tuple[str, Any]]:
    """Run the stages side by side in up to ``threads`` threads; results in the jobs' order.

    ``turns``: the stages' blocking order; a stage gives up its turn when it ends.
    """

    def run(key: str, job: Callable[[], Any]) -> Any:
        try:
            return job()
        finally:
            if turns is not None:
                turns.done(key)

    if len(jobs) <= 1 or threads <= 1:
        return [(key, run(key, job)) for key, job in jobs]
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        # each stage releases its thread's record values when it ends (and the pool's
        # threads end with the pool)
        futures = [(key, pool.submit(run, key, job)) for key, job in jobs]
        return [(key, fut.result()) for key, fut in futures]


def _hash(*parts: Any) -> str:
    return stable_id(*parts, length=12)


def match(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    settings: MatchSettings,
    rejected: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, Any], dict[str, Any]]:
    """Run the whole pipeline; returns links, duplicates, clusters, weights, counts.

    ``rejected`` (``record_id_l``, ``record_id_r``): links a person rejected, left out of the
    link assignment, so each of their records may take its next-best partner (the pair
    that lost the record to the rejected one).
    """
    try:
        return _match(left, right, settings, rejected)
    finally:
        release_record_cache()


def _missing_columns(settings: MatchSettings, frame: pl.DataFrame) -> list[str]:
    """Comparisons whose column the records lack, as warnings: such a comparison is
    missing on every pair (a column a data set may not have, or a misspelt one in a
    settings file, which would keep every link out of ``auto`` without a word)."""
    have = set(frame.columns)
    out = [
        f"comparison {c.name!r} reads column {c.column!r}, which the records do not have: it "
        "compares as missing on every pair (check the settings' column names)"
        for c in settings.comparisons
        if c.column not in have
    ]
    for rule in settings.blocking_rules:
        columns = rule.key_columns() if rule.columns or rule.prefix else (rule.column,)
        lacking = [c for c in columns if c not in have]
        if lacking and rule.kind != "ids":
            out.append(
                f"blocking rule {rule.name!r} reads column {', '.join(map(repr, lacking))}, "
                "which the records do not have: it proposes no pairs (check the settings' "
                "column names)"
            )
    return out


def _match(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    settings: MatchSettings,
    rejected: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()
    counts: dict[str, Any] = {"timings": {}}
    t = time.perf_counter()
    records = left.height + (right.height if right is not None else 0)
    threads = MAX_THREADS if records <= THREADS_UP_TO_RECORDS else 1

    def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
        return with_comparison_columns(features(frame, settings.entity), settings)

    sides: list[tuple[str, Callable[[], Any]]] = [("left", partial(feature_frame, left))]
    if right is not None:
        sides.append(("right", partial(feature_frame, right)))
    frames_by_side = dict(_run_all(sides, threads))
    fl: pl.DataFrame = frames_by_side["left"]
    fr: pl.DataFrame | None = frames_by_side.get("right")
    counts["timings"]["features"] = round(time.perf_counter() - t, 3)
    counts["records"] = {"left": fl.height, "right": fr.height if fr is not None else 0}
    if warnings := _missing_columns(settings, fl):
        counts["warnings"] = warnings
        for warning in warnings:
            log.warning("match %s: %s", settings.entity, warning)
    weights: dict[str, Any] = {}
    # the link stage and each system's duplicate stage share nothing but the feature
    # frames: they run side by side (polars, numpy and rapidfuzz release the GIL)
    stages: list[tuple[str, Callable[..., Any]]] = []
    if fr is not None and fl.height and fr.height:
        stages.append(("links", partial(_links, fl, fr, settings, counts, rejected=rejected)))
    frames = [fl] + ([fr] if fr is not None else [])
    for f in frames:
        for (src, obj), part in f.group_by(["source", "object"], maintain_order=True):
            part = part.with_columns(_i=pl.int_range(part.height, dtype=pl.UInt32))
            key = "_".join(["duplicates", *(str(p) for p in (src, obj) if p is not None)])
            stages.append((key, partial(_duplicates, part, settings, counts, key, None)))
    # the link stage, the longest, blocks first; the duplicate stages follow in order
    turns = _Turns([key for key, _stage in stages])
    jobs: list[tuple[str, Callable[[], Any]]] = [
        (key, partial(stage, turns=turns)) for key, stage in stages
    ]
    results = _run_all(jobs, threads, turns)
    links = pl.DataFrame(schema=LINK_SCHEMA)
    dup_parts = []
    cl_parts = []
    for key, out in results:
        if key == "links":
            links, fitted = out
            weights["links"] = fitted.to_dict()
            continue
        d, c, w = out
        dup_parts.append(d)
        cl_parts.append(c)
        if w:
            weights[key] = w
    dups = pl.concat(dup_parts) if dup_parts else pl.DataFrame(schema=DUP_SCHEMA)
    clusters = pl.concat(cl_parts) if cl_parts else pl.DataFrame(schema=CLUSTER_SCHEMA)
    counts["links"] = dict(links.group_by("tier").len().iter_rows()) if links.height else {}
    counts["links_total"] = links.height
    counts["duplicate_pairs"] = dups.height
    counts["clusters"] = clusters["cluster_id"].n_unique() if clusters.height else 0
    counts["timings"]["total"] = round(time.perf_counter() - started, 3)
    if math.isnan(counts["timings"]["total"]):  # pragma: no cover
        counts["timings"]["total"] = 0.0
    return links, dups, clusters, weights, counts
