"""Blocking: named rules, counts before scoring, dedupe pairs ordered."""

from __future__ import annotations

import polars as pl

from recon.match.blocking import candidates, features
from recon.match.settings import BlockingRule, default_settings


def _frame(rows: list[dict]) -> pl.DataFrame:
    return features(pl.DataFrame(rows), "companies")


def test_counts_per_rule(companies) -> None:
    hs, sf, _ = companies
    rules = default_settings("companies").blocking_rules
    pairs, counts = candidates(_frame(hs.to_dicts()), _frame(sf.to_dicts()), rules)
    assert counts["total"] == pairs.height
    assert set(counts) == {r.name for r in rules} | {"total"}
    assert all(v >= 0 for v in counts.values())
    assert counts["domain"] > 0 and counts["name_ngrams"] > 0
    assert pairs.unique().height == pairs.height


def test_exact_rule_and_block_cap() -> None:
    left = _frame(
        [{"record_id": str(i), "name": "Acme", "phone": "+14155550100"} for i in range(5)]
    )
    right = _frame([{"record_id": "r", "name": "Acme", "phone": "+14155550100"}])
    rule = BlockingRule("phone", "exact", "phone", max_block=3)
    _pairs, counts = candidates(left, right, [rule])
    assert counts["phone"] == 0  # five records share the number: a switchboard, skipped
    _pairs, counts = candidates(left, right, [BlockingRule("name", "exact", "name_key")])
    assert counts["name"] == 5


def test_dedupe_pairs_are_ordered() -> None:
    f = _frame(
        [{"record_id": str(i), "name": n} for i, n in enumerate(["Acme", "ACME Inc", "Acme"])]
    )
    pairs, _ = candidates(f, None, [BlockingRule("name", "exact", "name_key")])
    assert pairs.rows() == [(0, 1), (0, 2), (1, 2)]


def test_ids_rule() -> None:
    left = _frame([{"record_id": "1", "name": "X", "external_ids": '{"salesforce_id": "001A"}'}])
    right = _frame([{"record_id": "001A", "name": "Y", "source": "salesforce"}])
    _pairs, counts = candidates(left, right, [BlockingRule("ids", "ids", "xid")])
    assert counts["ids"] == 1
