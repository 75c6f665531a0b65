"""Link assignment across systems: one-to-one for companies, Contact/Lead rules for contacts.

Assignment is greedy by score (ties broken by row numbers, so results are
deterministic), computed in rounds of vectorised "mutual best" picks: a pair
that is the best remaining pair of both its records is exactly the pair a
global greedy pass would take, so each round takes them all at once.

Examples:
    >>> import polars as pl
    >>> p = pl.DataFrame({"_il": [0, 0, 1], "_ir": [0, 1, 0], "score": [0.9, 0.8, 0.7]})
    >>> one_to_one(p).sort("_il")[["_il", "_ir"]].rows()
    [(0, 0)]
"""

from __future__ import annotations

import polars as pl

__all__ = ["best_per_right", "one_to_one"]


def _ranked(pairs: pl.DataFrame) -> pl.DataFrame:
    return pairs.sort(["score", "_il", "_ir"], descending=[True, False, False]).with_row_index(
        "_rank"
    )


def one_to_one(pairs: pl.DataFrame, max_rounds: int = 200) -> pl.DataFrame:
    """Greedy one-to-one selection: each ``_il`` and each ``_ir`` at most once."""
    rest = _ranked(pairs)
    chosen = []
    for _ in range(max_rounds):
        if rest.height == 0:
            break
        best = rest.with_columns(
            bl=pl.col("_rank").min().over("_il"), br=pl.col("_rank").min().over("_ir")
        ).filter((pl.col("_rank") == pl.col("bl")) & (pl.col("_rank") == pl.col("br")))
        best = best.drop("bl", "br")
        chosen.append(best)
        rest = rest.join(best.select("_il"), on="_il", how="anti").join(
            best.select("_ir"), on="_ir", how="anti"
        )
    if rest.height:  # pathological chains: finish with a plain greedy pass
        used_l: set[int] = set()
        used_r: set[int] = set()
        keep = []
        for rank, il, ir in rest.select("_rank", "_il", "_ir").iter_rows():
            if il not in used_l and ir not in used_r:
                used_l.add(il)
                used_r.add(ir)
                keep.append(rank)
        chosen.append(rest.filter(pl.col("_rank").is_in(keep)))
    if not chosen:
        return pairs.head(0)
    return pl.concat(chosen).sort("_rank").drop("_rank")


def best_per_right(pairs: pl.DataFrame) -> pl.DataFrame:
    """Each ``_ir`` at most once (its best pair); an ``_il`` may keep several."""
    return _ranked(pairs).filter(pl.col("_rank") == pl.col("_rank").min().over("_ir")).drop("_rank")
