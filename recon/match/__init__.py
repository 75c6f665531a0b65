"""The matching engine: links across HubSpot and Salesforce, duplicates inside each.

Public facade:

- :func:`match_records` matches two canonical record frames (polars) and
  returns a :class:`MatchResult` (links, duplicates, clusters, the settings
  and fitted weights used, counts and timings);
- :func:`run_match` reads snapshots from the store, matches, and writes
  ``match_runs``, ``pairs`` and ``clusters`` in one transaction;
- :class:`MatchSettings` / :func:`default_settings`: declarative settings.

Frames hold the canonical record columns (source, object, record_id, name,
domain, website, email, phone, first_name, last_name, company, account_id,
city, country, external_ids, created_at, modified_at); any may be null or absent.
``left`` is HubSpot, ``right`` Salesforce (Account for companies; Contact and
Lead rows for contacts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from .settings import BlockingRule, Comparison, Level, MatchSettings, Thresholds, default_settings

__all__ = [
    "BlockingRule",
    "Comparison",
    "Level",
    "MatchResult",
    "MatchSettings",
    "Thresholds",
    "default_settings",
    "match_records",
    "run_match",
]


@dataclass
class MatchResult:
    """What a match produced.

    Attributes:
        links: record_id_l, record_id_r, object_r, score (0..1), match_weight,
            tier (auto|review), explanation (JSON list of {comparison, level, weight}),
            flags (JSON list).
        duplicates: source, object, record_id_l, record_id_r, score, tier,
            cluster_id, explanation.
        clusters: source, object, cluster_id, record_id, score (weakest internal pair), tier.
        settings: the MatchSettings used.
        weights: fitted m/u probabilities and weights per comparison level (JSON-serialisable).
        counts: records, candidate pairs per blocking rule, links, clusters, timings.
    """

    links: pl.DataFrame
    duplicates: pl.DataFrame
    clusters: pl.DataFrame
    settings: MatchSettings
    weights: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


def match_records(
    left: pl.DataFrame,
    right: pl.DataFrame | None,
    *,
    entity: Literal["companies", "contacts"],
    settings: MatchSettings | None = None,
) -> MatchResult:
    """Match HubSpot records (``left``) to Salesforce records (``right``) and find duplicates.

    Examples:
        >>> import polars as pl
        >>> r = match_records(pl.DataFrame({"record_id": ["1"], "name": ["Acme"]}), None,
        ...                   entity="companies")  # doctest: +SKIP
    """
    raise NotImplementedError


def run_match(
    db: Any,
    cfg_or_settings: Any = None,
    *,
    objects: tuple[str, ...] = ("companies", "contacts"),
    parent_run_id: str | None = None,
) -> str:
    """Match the records in the store and write one match run; return its run id."""
    raise NotImplementedError
