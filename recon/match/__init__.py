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
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from ..errors import MatchError
from .engine import match
from .settings import BlockingRule, Comparison, Level, MatchSettings, Thresholds, default_settings

if TYPE_CHECKING:
    from .run import run_match, train_from_decisions

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
    "train_from_decisions",
]


def __getattr__(name: str) -> Any:
    # the store side (sqlite_utils, pandas) is imported only when used, so that
    # `recon match-files` and notebooks matching frames start fast
    if name in ("run_match", "train_from_decisions"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    Weights are fitted on these records (no labels); links are one-to-one for
    companies; for contacts each Salesforce record links at most once and a
    HubSpot contact may link to one Contact and several Leads. With ``right``
    None only duplicates inside ``left`` are found.

    Raises:
        MatchError: the settings are for another entity, a frame is not a (polars or
            pandas) data frame, has no record_id column, or holds a record twice.

    Examples:
        >>> import polars as pl
        >>> hs = pl.DataFrame({"source": ["hubspot"] * 2, "object": ["companies"] * 2,
        ...     "record_id": ["1", "2"], "name": ["Acme Inc", "Globex"], "domain": ["acme.com", None]})
        >>> sf = pl.DataFrame({"source": ["salesforce"], "object": ["Account"],
        ...     "record_id": ["001A"], "name": ["ACME Incorporated"], "website": ["https://www.acme.com"]})
        >>> r = match_records(hs, sf, entity="companies")
        >>> r.links.select("record_id_l", "record_id_r").rows()
        [('1', '001A')]
    """
    settings = settings or default_settings(entity)
    if settings.entity != entity:
        raise MatchError(f"settings are for {settings.entity}, not {entity}")
    left = _input_frame("left", left)
    right = _input_frame("right", right) if right is not None else None
    if "source" not in left.columns:
        left = left.with_columns(source=pl.lit("hubspot"))
    if right is not None and "source" not in right.columns:
        right = right.with_columns(source=pl.lit("salesforce"))
    # one order whatever order the records came in (rows number the records: ties and
    # samples would otherwise follow the input's order)
    left = _canonical(left)
    right = _canonical(right) if right is not None else None
    links, dups, clusters, weights, counts = match(left, right, settings)
    return MatchResult(links, dups, clusters, settings, weights, counts)


def _input_frame(name: str, frame: Any) -> pl.DataFrame:
    """``frame`` as a polars frame of records, each once, with text record ids.

    A pandas frame is converted (notebooks often hold one); ids read as numbers become
    text, as the store keeps them.

    Raises:
        MatchError: not a data frame, no ``record_id`` column, a blank id, or a record
            (source, object, record_id) given twice.

    Examples:
        >>> import pandas as pd
        >>> _input_frame("left", pd.DataFrame({"record_id": [1.0, 2.0]}))["record_id"].to_list()
        ['1', '2']
        >>> _input_frame("left", pd.DataFrame({"record_id": [1, 2]}))["record_id"].to_list()
        ['1', '2']
        >>> _input_frame("left", pl.DataFrame({"record_id": ["1", "1"]}))
        Traceback (most recent call last):
        ...
        recon.errors.MatchError: the left frame holds record '1' 2 times (1 record(s) repeated) (give each record once (e.g. frame.unique(subset=['record_id'])))
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    elif not isinstance(frame, pl.DataFrame):
        if type(frame).__module__.split(".")[0] == "pandas" and hasattr(frame, "columns"):
            frame = pl.from_pandas(frame)
        else:
            raise MatchError(
                f"the {name} frame is a {type(frame).__name__}, not a data frame",
                hint="pass a polars or pandas DataFrame of records (e.g. recon.records_frame(db, ...))",
            )
    if "record_id" not in frame.columns:
        raise MatchError(
            f"the {name} frame has no record_id column",
            hint="each row is one record: name its id column record_id",
        )
    ids = frame.schema["record_id"]
    if ids.is_float():
        # pandas turns an id column with a blank into floats: 1.0 is the CRM's id "1"
        rid = pl.col("record_id")
        whole = frame.select((rid.is_null() | rid.is_nan() | (rid == rid.round(0))).all()).item()
        if whole:
            frame = frame.with_columns(
                pl.when(rid.is_nan()).then(None).otherwise(rid).cast(pl.Int64).alias("record_id")
            )
    if frame.schema["record_id"] != pl.String:
        frame = frame.with_columns(pl.col("record_id").cast(pl.String))
    blank = frame.select(
        pl.col("record_id").is_null() | (pl.col("record_id").str.strip_chars() == "")
    ).to_series()
    if blank.any():
        row = int(blank.arg_true()[0])
        raise MatchError(
            f"the {name} frame has a blank record_id in row {row} ({int(blank.sum())} row(s) in all)",
            hint="every record needs its CRM id",
        )
    keys = [c for c in ("source", "object", "record_id") if c in frame.columns]
    repeated = frame.group_by(keys, maintain_order=True).len().filter(pl.col("len") > 1)
    if repeated.height:
        first = repeated.row(0, named=True)
        raise MatchError(
            f"the {name} frame holds record {first['record_id']!r} {first['len']} times "
            f"({repeated.height} record(s) repeated)",
            hint="give each record once (e.g. frame.unique(subset=['record_id']))",
        )
    return frame


def _canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in (source, object, record id) order; itself when already so (a store's
    records come that way: no copy)."""
    keys = [c for c in ("source", "object", "record_id") if c in frame.columns]
    if not keys or frame.height < 2:
        return frame
    order = frame.select(pl.arg_sort_by(keys, nulls_last=True, maintain_order=True)).to_series()
    if (order.diff().drop_nulls() == 1).all():
        return frame
    return frame[order]
