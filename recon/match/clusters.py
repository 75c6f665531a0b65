"""Duplicate clusters inside one system that never chain unrelated records.

Scored pairs above the review threshold form a graph. Its connected
components are only *candidates*: every pair inside a component is scored
(also pairs that no blocking rule proposed), and the component is rebuilt by
complete-linkage merging: two groups join only when every pair across them
scores at least ``cluster_min``. So A~B and B~C never put A with C unless
A and C look alike too (plain transitive closure of loose pairs would).

Examples:
    >>> import numpy as np
    >>> groups = complete_linkage(3, [(0, 1, 0.9), (1, 2, 0.9), (0, 2, 0.01)], 0.3)
    >>> sorted(len(g) for g in groups)
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from .blocking import sorted_distinct

__all__ = ["build_clusters", "complete_linkage", "components"]

#: components larger than this are split on their strongest edges first
MAX_COMPONENT = 60
#: a giant component whose edges are all equally strong is checked pair by pair up to this size
MAX_FLAT = 1_000


def complete_linkage(
    n: int, scored: list[tuple[int, int, float]], cluster_min: float
) -> list[list[int]]:
    """Groups of ``0..n-1``: merge by descending pair score while every cross pair ≥ ``cluster_min``.

    ``scored`` must hold every pair of the component (missing pairs count as 0).
    """
    sim = np.zeros((n, n))
    for a, b, s in scored:
        sim[a, b] = sim[b, a] = s
    group = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for a, b, s in sorted(scored, key=lambda t: -t[2]):
        ga, gb = group[a], group[b]
        if ga == gb or s < cluster_min:
            continue
        ma, mb = members[ga], members[gb]
        if sim[np.ix_(ma, mb)].min() < cluster_min:
            continue
        members[ga] = ma + mb
        for x in mb:
            group[x] = ga
        del members[gb]
    return list(members.values())


def components(n: int, il: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``0..n-1`` over the edges ``il``–``ir``.

    The label is the smallest row number in the component (min-label propagation
    with pointer jumping; numpy only, so scipy is never imported).

    Examples:
        >>> components(5, np.array([0, 3]), np.array([1, 4])).tolist()
        [0, 0, 2, 3, 3]
    """
    label = np.arange(n)
    il = np.asarray(il, dtype=np.int64)
    ir = np.asarray(ir, dtype=np.int64)
    while True:
        low = np.minimum(label[il], label[ir])
        new = label.copy()
        np.minimum.at(new, il, low)
        np.minimum.at(new, ir, low)
        new = new[new]
        if np.array_equal(new, label):
            return label
        label = new


def build_clusters(
    n_records: int,
    edges: pl.DataFrame,
    score_pairs: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    cluster_min: float,
) -> list[list[int]]:
    """Clusters (lists of row numbers, size ≥ 2) from scored edges ``_il, _ir, score``.

    ``score_pairs(il, ir)`` scores any pairs of rows (used for the pairs inside
    a component that blocking did not propose).
    """
    if edges.height == 0:
        return []
    il = edges["_il"].to_numpy()
    ir = edges["_ir"].to_numpy()
    label = components(n_records, il, ir)
    comp = pl.DataFrame({"_i": np.arange(n_records), "c": label})
    nodes = sorted_distinct(np.concatenate([il, ir]))
    sizes = (
        comp.filter(pl.col("_i").is_in(nodes)).group_by("c", maintain_order=True).agg(pl.col("_i"))
    )
    out: list[list[int]] = []
    big: list[list[int]] = []
    all_a: list[np.ndarray] = []
    all_b: list[np.ndarray] = []
    comps: list[list[int]] = []
    for members in sizes["_i"].to_list():
        if len(members) == 2:
            out.append(sorted(members))
        elif len(members) > MAX_COMPONENT:
            big.append(members)
        else:
            members = sorted(members)
            a, b = np.triu_indices(len(members), 1)
            m = np.asarray(members)
            all_a.append(m[a])
            all_b.append(m[b])
            comps.append(members)
    if comps:
        a = np.concatenate(all_a)
        b = np.concatenate(all_b)
        s = score_pairs(a, b)
        lookup = {(int(x), int(y)): float(v) for x, y, v in zip(a, b, s, strict=True)}
        for members in comps:
            pos = {r: k for k, r in enumerate(members)}
            scored = [
                (pos[x], pos[y], lookup[(x, y)])
                for i, x in enumerate(members)
                for y in members[i + 1 :]
            ]
            for g in complete_linkage(len(members), scored, cluster_min):
                if len(g) > 1:
                    out.append(sorted(members[k] for k in g))
    if big:
        # giant components: keep only each one's strongest edges and cluster those again, all
        # in one pass (the edges split by component once, one recursion for all of them)
        big_labels = np.asarray(sorted({int(label[m[0]]) for m in big}), dtype=np.int64)
        members_of = {int(label[m[0]]): m for m in big}
        tagged = edges.with_columns(_c=pl.Series(label[il].astype(np.int64)))
        tagged = tagged.filter(pl.col("_c").is_in(big_labels))
        stronger_parts = []
        for (c,), sub in tagged.partition_by("_c", as_dict=True, maintain_order=True).items():
            scores = sub["score"].to_numpy()
            cut = float(scores.mean())
            stronger = sub.filter(pl.col("score") > cut)
            if 0 < stronger.height < sub.height:
                stronger_parts.append(stronger.drop("_c"))
                continue
            ids = np.asarray(members_of[int(c)])
            if float(scores.min()) >= cluster_min and len(ids) <= MAX_FLAT:
                # every edge equally strong (many copies of one record): no edge is weaker
                # to cut. The component is one cluster when every pair of it is strong enough
                a, b = np.triu_indices(len(ids), 1)
                if bool((score_pairs(ids[a], ids[b]) >= cluster_min).all()):
                    out.append(sorted(int(x) for x in ids))
        if stronger_parts:
            out.extend(
                build_clusters(
                    n_records, pl.concat(stronger_parts), score_pairs, cluster_min=cluster_min
                )
            )
    return out
