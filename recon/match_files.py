"""Match CRM export files without a store: what ``recon match-files`` does.

Reads one HubSpot export and one or more Salesforce exports with the file source, matches them
with :func:`recon.match.match_records`, and writes two files with a fixed contract (benchmarks
and ``recon eval`` read them):

- ``links.csv``: ``hubspot_id,salesforce_id,score,tier`` (contacts add ``salesforce_object``);
  score in 0..1, tier ``auto`` or ``review``. Companies are one-to-one (each id at most once);
  for contacts each Salesforce id appears at most once and a HubSpot contact links to at most
  one Contact (and possibly several Leads).
- ``duplicates.csv``: ``source,record_id_l,record_id_r,score,tier``, one row per duplicate pair
  inside one system (``source`` is ``hubspot`` or ``salesforce``).

Examples:
    >>> LINK_COLUMNS["companies"]
    ('hubspot_id', 'salesforce_id', 'score', 'tier')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from .errors import FileFormatError, MatchError, OutputError, UsageError
from .sources.files import read_export

__all__ = ["DUPLICATE_COLUMNS", "LINK_COLUMNS", "match_files", "read_settings"]

log = logging.getLogger(__name__)

LINK_COLUMNS: dict[str, tuple[str, ...]] = {
    "companies": ("hubspot_id", "salesforce_id", "score", "tier"),
    "contacts": ("hubspot_id", "salesforce_id", "salesforce_object", "score", "tier"),
}
DUPLICATE_COLUMNS: tuple[str, ...] = ("source", "record_id_l", "record_id_r", "score", "tier")
_KEPT_TIERS = ("auto", "review")


def read_settings(path: str | Path | None, entity: str | None = None) -> Any:
    """The :class:`~recon.match.MatchSettings` in a JSON file, or None for the defaults.

    The file holds one settings object, or, as ``[match] settings_file`` may, one per object
    (``{"companies": {...}, "contacts": {...}}``): with ``entity``, that object's.

    Raises:
        UsageError: the file is missing.
        MatchError: the file is not valid settings JSON, or holds no settings for ``entity``.

    Examples:
        >>> read_settings(None) is None
        True
    """
    if path is None:
        return None
    from .match import MatchSettings

    path = Path(path)
    if not path.is_file():
        raise UsageError(
            f"settings file {path} is a folder" if path.is_dir() else f"no settings file {path}",
            hint="--settings names a JSON file of MatchSettings",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the settings file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"settings file {path} is not UTF-8 text (byte {exc.start})",
            hint="save it as UTF-8 JSON",
        ) from None
    import json

    try:
        data = json.loads(text)
    except ValueError:
        data = None  # from_json names what is wrong with it
    if isinstance(data, dict) and "entity" not in data and set(data) & set(LINK_COLUMNS):
        # the [match] settings_file shape: settings per object
        if entity is None or entity not in data:
            raise MatchError(
                f"settings file {path} holds settings for {', '.join(sorted(data))} only"
                + (f", not {entity}" if entity else ""),
                hint="give a file with settings for this object, or leave --settings out for "
                "the defaults",
            )
        text = json.dumps(data[entity])
    settings = MatchSettings.from_json(text, source=str(path))
    if entity in LINK_COLUMNS and settings.entity != entity:
        raise MatchError(
            f"settings file {path} holds settings for {settings.entity}, not {entity}",
            hint=f"run with --object {settings.entity}, or give settings for {entity}",
        )
    return settings


def _hint_for_match_files(hint: str | None, entity: str) -> str | None:
    """``read_export``'s hint (it speaks of `recon pull --as`) in this command's terms.

    Examples:
        >>> _hint_for_match_files("load this file with the --as that names its object (salesforce:Contact)", "companies")
        'these are contacts: run with --object contacts'
        >>> _hint_for_match_files("this looks like a Salesforce export: load it with --as salesforce:<object>", "companies")
        'give the HubSpot export first, then the Salesforce exports'
    """
    if not hint or "--as" not in hint:
        return hint
    other = "companies" if entity == "contacts" else "contacts"
    says_other = (
        any(o in hint for o in ("salesforce:Contact", "salesforce:Lead", "salesforce:contacts"))
        if entity == "companies"
        else "salesforce:Account" in hint
    ) or f"hubspot:{other}" in hint
    if says_other:
        return f"these are {other}: run with --object {other}"
    return "give the HubSpot export first, then the Salesforce exports"


def _read_salesforce(files: Sequence[Path], entity: str) -> pl.DataFrame:
    as_ = "salesforce:Account" if entity == "companies" else "salesforce:contacts"
    frames = [read_export(f, as_, lean=True) for f in files]
    frame = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    if len(frames) > 1:
        dup = frame.filter(pl.col("record_id").is_duplicated()).head(1)
        if dup.height:
            rid = dup["record_id"][0]
            where = [
                str(f)
                for f, fr in zip(files, frames, strict=True)
                if rid in set(fr["record_id"].to_list())
            ]
            raise FileFormatError(
                f"Salesforce id {rid!r} is in more than one file ({', '.join(where)})",
                path=where[-1],
                column="Id",
                hint="give each record in one file only",
            )
    return frame


def _one_to_one(links: pl.DataFrame, entity: str) -> pl.DataFrame:
    """Keep the contract even if the engine proposed too much: best score first."""
    ranked = links.sort(["score", "hubspot_id", "salesforce_id"], descending=[True, False, False])
    kept = ranked.filter(pl.col("salesforce_id").is_first_distinct())
    if entity == "companies":
        kept = kept.filter(pl.col("hubspot_id").is_first_distinct())
    else:  # one Contact per HubSpot contact; Leads sharing its email may all be listed
        is_contact = pl.col("salesforce_object") == "Contact"
        kept = kept.filter(~is_contact | pl.struct("hubspot_id", is_contact).is_first_distinct())
    if kept.height < links.height:
        log.warning(
            "dropped %d links that broke the one-to-one contract", links.height - kept.height
        )
    return kept


def match_files(
    hubspot_file: str | Path,
    salesforce_files: Sequence[str | Path],
    *,
    entity: str,
    out_dir: str | Path,
    settings: Any = None,
) -> dict[str, Any]:
    """Match a HubSpot export with Salesforce exports and write ``links.csv`` and ``duplicates.csv``.

    Args:
        hubspot_file: a HubSpot companies or contacts export (CSV or XLSX).
        salesforce_files: Salesforce Account exports (companies), or Contact and/or Lead exports
            (contacts; each row's object from its Id prefix ``003``/``00Q`` or a type column).
        entity: ``companies`` or ``contacts``.
        out_dir: folder for the two CSV files (created if needed).
        settings: a :class:`~recon.match.MatchSettings` (the defaults if None).

    Returns:
        A summary: records read, links and duplicate pairs written per tier, seconds spent.

    Raises:
        UsageError: ``entity`` is neither companies nor contacts, or no Salesforce file.
        OutputError: ``out_dir`` or a file in it cannot be written.
        FileFormatError: an export file is malformed (see :func:`recon.sources.files.read_export`).

    Examples:
        >>> match_files("hs.csv", [], entity="deals", out_dir="out")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.UsageError: --object must be companies or contacts, not 'deals'
    """
    if entity not in LINK_COLUMNS:
        raise UsageError(f"--object must be companies or contacts, not {entity!r}")
    if not salesforce_files:
        raise UsageError("give at least one Salesforce export file")
    started = time.perf_counter()
    try:
        left = read_export(hubspot_file, f"hubspot:{entity}", lean=True)
        right = _read_salesforce([Path(f) for f in salesforce_files], entity)
    except FileFormatError as exc:
        exc.hint = _hint_for_match_files(exc.hint, entity)
        raise
    read_s = time.perf_counter() - started

    from .match import match_records

    result = match_records(left, right, entity=entity, settings=settings)  # type: ignore[arg-type]
    match_s = time.perf_counter() - started - read_s
    links = result.links.filter(pl.col("tier").is_in(_KEPT_TIERS)).select(
        pl.col("record_id_l").cast(pl.String).alias("hubspot_id"),
        pl.col("record_id_r").cast(pl.String).alias("salesforce_id"),
        (pl.col("object_r") if "object_r" in result.links.columns else pl.lit("Account"))
        .cast(pl.String)
        .alias("salesforce_object"),
        pl.col("score").cast(pl.Float64).clip(0.0, 1.0).round(4),
        pl.col("tier").cast(pl.String),
    )
    links = _one_to_one(links, entity).select(LINK_COLUMNS[entity])
    dups = result.duplicates.filter(pl.col("tier").is_in(_KEPT_TIERS)).select(
        pl.col("source").cast(pl.String),
        pl.col("record_id_l").cast(pl.String),
        pl.col("record_id_r").cast(pl.String),
        pl.col("score").cast(pl.Float64).clip(0.0, 1.0).round(4),
        pl.col("tier").cast(pl.String),
    )
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        links.sort(["hubspot_id", "salesforce_id"]).write_csv(out / "links.csv")
        dups.sort(["source", "record_id_l", "record_id_r"]).write_csv(out / "duplicates.csv")
    except OSError as exc:
        # the file in the folder that failed (links.csv a folder), else the folder given
        inside = exc.filename is not None and Path(exc.filename).parent == out
        where = Path(exc.filename) if inside else out
        raise OutputError.writing("the results", where, exc, option="--out") from None
    tiers = {t: n for t, n in links.group_by("tier").len().rows()}
    summary = {
        "records": {"hubspot": left.height, "salesforce": right.height},
        "links": links.height,
        "links_by_tier": {t: tiers.get(t, 0) for t in _KEPT_TIERS},
        "duplicates": dups.height,
        "seconds": {
            "read": round(read_s, 3),
            "match": round(match_s, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        "out": str(out),
    }
    log.info("match-files: %s", summary)
    return summary
