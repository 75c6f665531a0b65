"""Match the records in the store: one match run per call, written in one transaction.

:func:`run_match` reads the latest snapshots, matches each entity kind, and
writes ``match_runs`` (settings, fitted weights, counts), ``pairs`` (links and
duplicates with their explanations) and ``clusters``; the ``runs`` row records
the stage ``match``. :func:`train_from_decisions` re-estimates m from human
review decisions (never ``policy`` ones) for ``recon match --train``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sqlite_utils

from ..errors import ConfigError, MatchError
from ..models import canonical_json, now_iso, stable_id
from ..store import finish_run, start_run, transaction
from .blocking import CANONICAL_COLUMNS, features
from .engine import match
from .levels import compare
from .scoring import Weights, add_token_columns, token_idf
from .settings import MatchSettings, default_settings

log = logging.getLogger(__name__)

__all__ = ["load_records", "run_match", "settings_for", "train_from_decisions"]

_OBJECTS = {
    "companies": (("hubspot", ("companies",)), ("salesforce", ("Account",))),
    "contacts": (("hubspot", ("contacts",)), ("salesforce", ("Contact", "Lead"))),
}


def load_records(db: sqlite_utils.Database, source: str, objects: tuple[str, ...]) -> pl.DataFrame:
    """Live (not archived) snapshot rows of ``source``/``objects`` as a canonical frame."""
    marks = ",".join("?" for _ in objects)
    cols = ", ".join(CANONICAL_COLUMNS)
    rows = list(
        db.query(
            f"select {cols} from snapshots where source = ? and object in ({marks}) "
            "and coalesce(archived, 0) = 0 order by object, record_id",
            [source, *objects],
        )
    )
    schema = dict.fromkeys(CANONICAL_COLUMNS, pl.String)
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


#: contact e-mail addresses kept per company (the first in order; a big account's people are
#: mostly the same in both systems, and its candidate pairs compare these lists)
CONTACT_EMAILS_PER_COMPANY = 200


def contact_emails(db: sqlite_utils.Database, source: str) -> pl.DataFrame:
    """``record_id`` -> ``contact_emails``: the normalised e-mail addresses of each company's
    live contacts, sorted and space-separated (role addresses such as ``info@``, and addresses
    on more than two companies of the system, left out).

    HubSpot: contacts associated with the company (either direction of the stored
    associations) or naming it as their primary company; Salesforce: Contacts whose
    ``AccountId`` is the Account (Leads name no Account).
    """
    from .. import normalize as N

    live = "coalesce(s.archived, 0) = 0 and coalesce(s.email, '') != ''"
    if source == "hubspot":
        sql = (
            "select a.to_id, s.email from associations a join snapshots s on s.source = "
            "'hubspot' and s.object = 'contacts' and s.record_id = a.from_id where a.source = "
            f"'hubspot' and a.from_object = 'contacts' and a.to_object = 'companies' and {live} "
            "union select a.from_id, s.email from associations a join snapshots s on s.source "
            "= 'hubspot' and s.object = 'contacts' and s.record_id = a.to_id where a.source = "
            f"'hubspot' and a.from_object = 'companies' and a.to_object = 'contacts' and {live} "
            "union select s.account_id, s.email from snapshots s where s.source = 'hubspot' and "
            f"s.object = 'contacts' and coalesce(s.account_id, '') != '' and {live}"
        )
    else:
        sql = (
            "select s.account_id, s.email from snapshots s where s.source = 'salesforce' and "
            f"s.object = 'Contact' and coalesce(s.account_id, '') != '' and {live}"
        )
    rows = db.execute(sql).fetchall()
    schema = {"record_id": pl.String, "contact_emails": pl.String}
    if not rows:
        return pl.DataFrame(schema=schema)
    pairs = pl.DataFrame(rows, schema={"record_id": pl.String, "email": pl.String}, orient="row")
    email = N.emails(pairs["email"])
    pairs = pairs.with_columns(email=pl.when(~N.role_addresses(email)).then(email)).drop_nulls()
    # an address on more than two companies (an agency's or an accountant's contact, associated
    # with every client) says nothing of which company is which; two: a company and its copy
    pairs = pairs.unique().filter(pl.col("record_id").count().over("email") <= 2)
    return (
        pairs.sort("record_id", "email")
        .group_by("record_id", maintain_order=True)
        .agg(pl.col("email").head(CONTACT_EMAILS_PER_COMPANY).str.join(" ").alias("contact_emails"))
    )


def entity_records(db: sqlite_utils.Database, entity: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The live HubSpot and Salesforce records ``entity`` matches; companies carry their
    contacts' e-mail addresses (:func:`contact_emails`) for the ``shared_contacts`` comparison."""
    (src_l, objs_l), (src_r, objs_r) = _OBJECTS[entity]
    left = load_records(db, src_l, objs_l)
    right = load_records(db, src_r, objs_r)
    if entity == "companies":
        left = left.join(contact_emails(db, src_l), on="record_id", how="left")
        right = right.join(contact_emails(db, src_r), on="record_id", how="left")
    return left, right


def rejected_links(db: sqlite_utils.Database, entity: str) -> pl.DataFrame:
    """The links of ``entity`` whose standing decision is a rejection (``non_match``), as
    ``record_id_l``, ``record_id_r``: matching assigns their records to other partners."""
    rows = db.execute(
        "select record_id_l, record_id_r from decisions where kind = 'link' and object = ? "
        "and label = 'non_match' and coalesce(superseded, 0) = 0",
        [entity],
    ).fetchall()
    schema = {"record_id_l": pl.String, "record_id_r": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


def settings_for(entity: str, cfg_or_settings: Any = None) -> MatchSettings:
    """The settings for ``entity``: given settings, the config's settings file, or defaults.

    A settings file holds one settings object, or ``{"companies": ..., "contacts": ...}``.
    """
    if isinstance(cfg_or_settings, MatchSettings):
        return cfg_or_settings
    if isinstance(cfg_or_settings, dict):
        return cfg_or_settings.get(entity) or default_settings(entity)  # type: ignore[arg-type]
    match_cfg = getattr(cfg_or_settings, "match", None)
    path: Path | None = getattr(match_cfg, "settings_file", None)
    settings = default_settings(entity)  # type: ignore[arg-type]
    if path is not None:
        settings = _settings_file(Path(path), entity) or settings
    overrides = dict(getattr(match_cfg, "thresholds", {}) or {})
    if overrides:
        th = {**settings.to_dict()["thresholds"], **overrides}
        try:
            settings = MatchSettings.from_dict({**settings.to_dict(), "thresholds": th})
        except MatchError as exc:  # e.g. auto below the default review: the file's setting
            from ..config import config_file

            raise ConfigError(
                f"invalid configuration in {config_file()}"
                + (f" (with the thresholds of {path})" if path is not None else ""),
                problems=[
                    ("match.thresholds", exc.message.removeprefix("match settings invalid: "))
                ],
                hint="give thresholds that keep review <= auto (and duplicate_review <= duplicate_auto)",
            ) from None
    return settings


def _settings_file(path: Path, entity: str) -> MatchSettings | None:
    """``entity``'s settings in ``[match] settings_file`` (None: the file has none for it).

    Raises:
        ConfigError: the file cannot be read, is not settings JSON, or holds invalid settings.
    """

    def bad(msg: str) -> ConfigError:
        return ConfigError(
            "invalid match settings file",
            problems=[("match.settings_file", f"{path}: {msg}")],
            hint="start from a stored run's settings, or `default_settings(...)`.to_json()",
        )

    if path.is_dir():
        raise bad("is a folder, not a settings file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise bad(f"cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise bad("not a JSON object")
    if "entity" not in data:  # {"companies": {...}, "contacts": {...}}
        unknown = sorted(set(data) - {"companies", "contacts"})
        if unknown:
            raise bad(f"unknown key(s) {', '.join(unknown)}: name companies and/or contacts")
        data = data.get(entity)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise bad(f"{entity}: not a JSON object of settings")
    if data.get("entity") != entity:
        if "entity" in data and data["entity"] not in ("companies", "contacts"):
            raise bad(f"entity {data['entity']!r} is not companies or contacts")
        return None  # one object's settings: the other object keeps its defaults
    try:
        return MatchSettings.from_dict(data)
    except MatchError as exc:
        raise bad(exc.message) from None


#: ``pairs`` columns in the order :func:`_pair_rows` gives them
PAIR_COLUMNS = (
    "run_id", "pair_id", "kind", "object", "source_l", "object_l", "record_id_l", "source_r",
    "object_r", "record_id_r", "score", "match_weight", "tier", "explanation", "cluster_id",
    "flags",
)  # fmt: skip
#: ``clusters`` columns in the order the run writes them
CLUSTER_COLUMNS = (
    "run_id", "cluster_id", "object", "source", "record_object", "record_id", "score", "tier",
)  # fmt: skip


def _pair_rows(
    run_id: str, entity: str, links: pl.DataFrame, dups: pl.DataFrame
) -> list[tuple[Any, ...]]:
    """``pairs`` rows (:data:`PAIR_COLUMNS`) of a run's links, then its duplicate pairs."""
    rows: list[tuple[Any, ...]] = [
        (
            run_id,
            stable_id(entity, "hubspot", rid_l, "salesforce", rid_r),
            "link",
            entity,
            "hubspot",
            obj_l,
            rid_l,
            "salesforce",
            obj_r,
            rid_r,
            score,
            weight,
            tier,
            explanation,
            None,
            flags,
        )
        for rid_l, rid_r, obj_l, obj_r, score, weight, tier, explanation, flags in links.select(
            "record_id_l", "record_id_r", "object_l", "object_r", "score", "match_weight",
            "tier", "explanation", "flags",
        ).iter_rows()
    ]  # fmt: skip
    rows += [
        (
            run_id,
            stable_id(entity, source, rid_l, source, rid_r),
            "duplicate",
            entity,
            source,
            obj,
            rid_l,
            source,
            obj,
            rid_r,
            score,
            weight,
            tier,
            explanation,
            cluster_id,
            "[]",
        )
        for source, obj, rid_l, rid_r, score, weight, tier, cluster_id, explanation in dups.select(
            "source", "object", "record_id_l", "record_id_r", "score", "match_weight", "tier",
            "cluster_id", "explanation",
        ).iter_rows()
    ]  # fmt: skip
    return rows


def _insert(db: sqlite_utils.Database, table: str, columns: tuple[str, ...], rows: Any) -> None:
    """Plain inserts of row tuples (one prepared statement; the caller holds the transaction)."""
    sql = f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})"
    db.conn.executemany(sql, rows)


def run_match(
    db: sqlite_utils.Database,
    cfg_or_settings: Any = None,
    *,
    objects: tuple[str, ...] = ("companies", "contacts"),
    parent_run_id: str | None = None,
) -> str:
    """Match the store's snapshots and write one match run; return its run id.

    ``cfg_or_settings`` is a :class:`~recon.config.ReconConfig` (its ``[match]``
    section), a :class:`MatchSettings` (for one entity), a dict entity → settings,
    or None (defaults).

    Raises:
        MatchError: invalid settings, or matching failed (the run is marked failed).

    Examples:
        >>> from recon.store import open_store
        >>> db = open_store(":memory:")
        >>> run_id = run_match(db, objects=("companies",))
        >>> db["match_runs"].count
        1
    """
    used = {e: settings_for(e, cfg_or_settings).to_dict() for e in objects}
    run_id = start_run(
        db, "match", parent_id=parent_run_id, config={"objects": list(objects), "settings": used}
    )
    summary: dict[str, Any] = {}
    try:
        results = []
        for entity in objects:
            settings = settings_for(entity, cfg_or_settings)
            left, right = entity_records(db, entity)
            links, dups, clusters, weights, counts = match(
                left, right, settings, rejected_links(db, entity)
            )
            results.append((entity, settings, links, dups, clusters, weights, counts))
            summary[entity] = {
                "records": counts["records"],
                "links": counts["links"],
                "duplicate_pairs": counts["duplicate_pairs"],
                "clusters": counts["clusters"],
            }
            if counts.get("warnings"):
                summary[entity]["warnings"] = counts["warnings"]
        with transaction(db):
            for entity, settings, links, dups, clusters, weights, counts in results:
                db["match_runs"].insert(
                    {
                        "run_id": run_id,
                        "object": entity,
                        "settings": settings.to_json(),
                        "weights": canonical_json(weights),
                        "counts": canonical_json(counts),
                        "created_at": now_iso(),
                    }
                )
                _insert(db, "pairs", PAIR_COLUMNS, _pair_rows(run_id, entity, links, dups))
                _insert(
                    db,
                    "clusters",
                    CLUSTER_COLUMNS,
                    clusters.select(
                        pl.lit(run_id).alias("run_id"),
                        "cluster_id",
                        pl.lit(entity).alias("entity"),
                        "source",
                        "object",
                        "record_id",
                        "score",
                        "tier",
                    ).iter_rows(),
                )
    except Exception as exc:
        finish_run(
            db, run_id, status="failed", summary=summary, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    finish_run(db, run_id, status="ok", summary=summary)
    log.info("match run %s: %s", run_id, summary)
    return run_id


def train_from_decisions(
    db: sqlite_utils.Database, entity: str, settings: MatchSettings
) -> tuple[MatchSettings, dict[str, Any]]:
    """Re-estimate m from human link decisions in the store (``recon match --train``).

    Only ``decided_by = 'human'`` labels ``match``/``non_match`` that are not
    superseded count. m of every comparison is the level distribution among the
    labelled matches (add-half smoothed); it is written into the returned
    settings' ``m_fixed`` (EM leaves those alone). u stays estimated from random
    pairs, so weights still follow the data being matched.

    Raises:
        MatchError: there are no usable human decisions for ``entity``.
    """
    rows = list(
        db.query(
            "select record_id_l, record_id_r, label from decisions where kind = 'link' and object = ? "
            "and decided_by = 'human' and coalesce(superseded, 0) = 0 and label in ('match', 'non_match')",
            [entity],
        )
    )
    if not rows:
        raise MatchError(
            f"no human link decisions for {entity} to train from",
            hint="review some pairs first (`recon review`); policy decisions never train",
        )
    left, right = entity_records(db, entity)
    fl, fr = features(left, entity), features(right, entity)
    pos_l = dict(zip(fl["record_id"].to_list(), range(fl.height), strict=True))
    pos_r = dict(zip(fr["record_id"].to_list(), range(fr.height), strict=True))
    keep = [r for r in rows if r["record_id_l"] in pos_l and r["record_id_r"] in pos_r]
    if not keep:
        raise MatchError(f"the decided {entity} pairs are no longer in the store")
    il = np.array([pos_l[r["record_id_l"]] for r in keep], dtype=np.uint32)
    ir = np.array([pos_r[r["record_id_r"]] for r in keep], dtype=np.uint32)
    label = np.array([r["label"] == "match" for r in keep])
    idf: dict[str, pl.DataFrame] = {
        col: token_idf([fl, fr], col) for col in ("name_norm", "company_norm") if col in fl.columns
    }
    for col, table in idf.items():
        fl = add_token_columns(fl, col, table)
        fr = add_token_columns(fr, col, table)
    g = compare(fl, fr, il, ir, settings, idf)
    report: dict[str, Any] = {"labels": len(keep), "matches": int(label.sum()), "m": {}}
    for c, comp in enumerate(settings.comparisons):
        k = len(comp.levels)
        counts = np.bincount(g[label, c], minlength=k).astype(float)
        counts[0] = 0.0
        counts[1:] += 0.5
        report["m"][comp.name] = [round(float(x), 6) for x in counts / counts.sum()]
    share = float(label.mean())
    report["match_share"] = round(share, 4)
    new = MatchSettings.from_dict({**settings.to_dict(), "m_fixed": report["m"]})
    return new, report


def weights_of_run(db: sqlite_utils.Database, run_id: str, entity: str) -> Weights:
    """The link weights a match run fitted (for explanations and notebooks)."""
    row = db["match_runs"].get((run_id, entity))
    return Weights.from_dict(json.loads(row["weights"])["links"])
