"""Measure matching: precision, recall and F1 against truth files, or precision from review labels.

:func:`score_files` scores a ``links.csv`` / ``duplicates.csv`` pair (what ``recon match-files``
writes) against a ``truth_entities.csv`` (``source,record_id,entity``) with exactly the semantics
of the development set's ``score.py``:

- links: precision = share of proposed links whose two records are one entity; recall = share
  of entities present in both systems that got at least one correct link; the same again for
  the rows of tier ``auto`` alone (``links_auto``);
- duplicates: pairwise precision and recall per source over the transitive closure of the
  proposed pairs (a runaway cluster counts only its first 200 members), summed over sources.

:func:`score_labels` needs no truth: it reads the human decisions in the store and reports, for
each kind and tier of a match run's pairs, how many were labelled and the share labelled
``match`` (only ``human`` decisions count, never ``policy`` ones).

Examples:
    >>> f1(1.0, 0.5)
    0.6667
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .models import salesforce_id18

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["closure_pairs", "f1", "score_files", "score_labels"]

#: a cluster larger than this counts only its first members (the quadratic blow-up is capped)
CLUSTER_CAP = 200


def _read(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV file (none when it does not exist), keys in lower case.

    Raises:
        UsageError: the file is not UTF-8 text, or lacks one of the ``required`` columns.
    """
    if not path.exists():
        return []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = {h.strip().lower() for h in reader.fieldnames or () if h}
            missing = [c for c in required if c not in header]
            if missing:
                raise UsageError(
                    f"{path}: no column {', '.join(missing)}"
                    + (" (the file is empty)" if not header else ""),
                    hint=f"its header must name {','.join(required)}",
                )
            return [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k}
                | {"_line": str(reader.line_num)}
                for r in reader
            ]
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise UsageError(f"{path}: not a readable CSV file ({exc})") from None


def _entities(path: Path, truth: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    """``(source, record_id) -> entity`` of a truth file's rows, each row checked: a blank
    entity would make every such record one entity (all duplicates of each other), a source
    misspelt would leave its records out, and a record given two entities would keep the
    last without a word.

    Raises:
        UsageError: naming the file, row and column, and what to do.
    """
    ent: dict[tuple[str, str], str] = {}
    line: dict[tuple[str, str], str] = {}
    for t in truth:
        where = f"{path}, row {t['_line']}"
        if t["source"] not in ("hubspot", "salesforce"):
            raise UsageError(
                f"{where}, column source: {t['source']!r} is not hubspot or salesforce",
                hint="write each record's system as hubspot or salesforce",
            )
        for column in ("record_id", "entity"):
            if not t[column]:
                raise UsageError(
                    f"{where}, column {column}: blank",
                    hint="every row needs its record id and the entity it belongs to",
                )
        # a Salesforce id counts in its 18-character form (reports export 15, links.csv 18)
        key = (t["source"], _sf18(t["source"], t["record_id"]))
        if ent.setdefault(key, t["entity"]) != t["entity"]:
            raise UsageError(
                f"{where}: {t['source']} record {t['record_id']!r} is given the entity "
                f"{t['entity']!r} here and {ent[key]!r} in row {line[key]}",
                hint="give each record one entity",
            )
        line.setdefault(key, t["_line"])
    return ent


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def f1(precision: float, recall: float) -> float:
    """F1 of a precision and a recall, rounded to 4 places (0 when both are 0).

    Examples:
        >>> f1(0.0, 0.0)
        0.0
    """
    return round(_f1(precision, recall), 4)


def closure_pairs(pairs: Iterable[tuple[str, str]]) -> set[frozenset[str]]:
    """Every pair inside the transitive closure (connected components) of ``pairs``.

    Examples:
        >>> sorted(sorted(p) for p in closure_pairs([("a", "b"), ("b", "c")]))
        [['a', 'b'], ['a', 'c'], ['b', 'c']]
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    out: set[frozenset[str]] = set()
    for g in groups.values():
        if len(g) > CLUSTER_CAP:
            g = g[:CLUSTER_CAP]
        out.update(frozenset(p) for p in combinations(sorted(g), 2))
    return out


def score_files(out_dir: str | Path, truth_dir: str | Path) -> dict[str, Any]:
    """Score ``out_dir/links.csv`` and ``out_dir/duplicates.csv`` against ``truth_dir/truth_entities.csv``.

    Returns:
        ``{"links": {n, precision, recall, f1}, "links_auto": {...}, "duplicates":
        {pairs, true_pairs, precision, recall, f1}}`` with figures rounded to 4 places, the same
        numbers ``score.py`` prints.

    Raises:
        UsageError: the truth file is missing, or ``out_dir`` holds neither output file.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "truth_entities.csv").write_text(
        ...     "source,record_id,entity\\nhubspot,1,E1\\nsalesforce,A,E1\\n")
        >>> _ = (d / "links.csv").write_text("hubspot_id,salesforce_id,score,tier\\n1,A,0.9,auto\\n")
        >>> score_files(d, d)["links"]["f1"]
        1.0
    """
    out_dir, truth_dir = Path(out_dir), Path(truth_dir)
    truth_path = truth_dir / "truth_entities.csv"
    if not truth_path.is_file():
        raise UsageError(
            f"no truth file {truth_path}",
            hint="--truth names a folder holding truth_entities.csv (source,record_id,entity)",
        )
    if not any((out_dir / name).is_file() for name in ("links.csv", "duplicates.csv")):
        # scoring nothing would print zeros as if the matcher had found nothing
        raise UsageError(
            f"no links.csv or duplicates.csv in {out_dir}",
            hint="name the folder `recon match-files --out` wrote",
        )
    truth = _read(truth_path, ("source", "record_id", "entity"))
    if not truth:
        raise UsageError(f"{truth_path} holds no rows", hint="every record needs its entity")
    ent = _entities(truth_path, truth)
    hs_ents = {t["entity"] for t in truth if t["source"] == "hubspot"}
    sf_ents = {t["entity"] for t in truth if t["source"] == "salesforce"}
    both = hs_ents & sf_ents
    links = _read(out_dir / "links.csv", ("hubspot_id", "salesforce_id"))
    res: dict[str, Any] = {}
    for tier_filter in (None, "auto"):
        rows = [x for x in links if tier_filter is None or x.get("tier") == tier_filter]
        correct_ents = set()
        tp = 0
        for x in rows:
            eh = ent.get(("hubspot", x.get("hubspot_id", "")))
            es = ent.get(("salesforce", _sf18("salesforce", x.get("salesforce_id", ""))))
            if eh is not None and eh == es:
                tp += 1
                correct_ents.add(eh)
        p = tp / len(rows) if rows else 0.0
        r = len(correct_ents) / len(both) if both else 0.0
        key = "links" if tier_filter is None else "links_auto"
        res[key] = {
            "n": len(rows),
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(_f1(p, r), 4),
        }
    dups = _read(out_dir / "duplicates.csv", ("source", "record_id_l", "record_id_r"))
    by_source: dict[str, dict[str, list[str]]] = {
        "hubspot": defaultdict(list),
        "salesforce": defaultdict(list),
    }
    for (s, rid), e in ent.items():
        if s in by_source:
            by_source[s][e].append(rid)
    tp_all = pred_all = true_all = 0
    for src in ("hubspot", "salesforce"):
        pred = closure_pairs(
            (_sf18(src, d["record_id_l"]), _sf18(src, d["record_id_r"]))
            for d in dups
            if d.get("source") == src
        )
        true: set[frozenset[str]] = set()
        for rids in by_source[src].values():
            true.update(frozenset(p) for p in combinations(sorted(rids), 2))
        tp_all += len(pred & true)
        pred_all += len(pred)
        true_all += len(true)
    p = tp_all / pred_all if pred_all else 0.0
    r = tp_all / true_all if true_all else 0.0
    res["duplicates"] = {
        "pairs": pred_all,
        "true_pairs": true_all,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(_f1(p, r), 4),
    }
    unknown = [
        name
        for name, ids in (
            ("links.csv", [("hubspot", x.get("hubspot_id", "")) for x in links]),
            ("duplicates.csv", [(d.get("source", ""), d["record_id_l"]) for d in dups]),
        )
        if ids and not any((s, _sf18(s, r)) in ent for s, r in ids)
    ]
    if unknown:
        # zeros that mean "other records", not "nothing found"
        res["warnings"] = [
            f"no record of {name} is in {truth_path.name}: are they the same records?"
            for name in unknown
        ]
    return res


def _sf18(source: str, record_id: str) -> str:
    return (salesforce_id18(record_id) or record_id) if source == "salesforce" else record_id


#: the links a view still holds (their labels are not departed): the review queue's items, or
#: one match run's pairs and the decisions made on that run
_HELD = {
    "queue": "exists (select 1 from review_queue q where q.item_id = d.item_id)",
    "run": "(d.run_id = :run or exists "
    "(select 1 from pairs h where h.run_id = :run and h.pair_id = d.item_id))",
}


def departed_link_labels(
    db: sqlite_utils.Database, run_id: str | None = None
) -> list[dict[str, Any]]:
    """The standing human labels of links no longer held, each at its pair's tier when decided.

    A rejected link leaves the next match run (its records go to other partners), and so the
    review queue: without its label, every re-match would show a tier more precise than it is.
    Shared by :func:`score_labels` and :func:`recon.review.tier_precision`; one query for all
    such links.

    Args:
        db: the store.
        run_id: the match run that holds links: those it holds or that were decided on it are
            not departed, nor are links decided on runs started after it. None: the review queue
            holds them (the latest match run's links and the approved links the plan kept;
            build it first with :func:`recon.review.ensure_queue`).

    Returns:
        One row per current (not superseded) ``human`` link decision labelled ``match`` or
        ``non_match`` whose link is not held: ``item_id, run_id, label`` and the ``tier,
        source_l, record_id_l, record_id_r`` its pair had in the run it was decided on (a
        decision whose run's rows are pruned is left out: its tier is unknown), in the order
        the decisions were made.

    Examples:
        >>> from recon.store import open_store
        >>> departed_link_labels(open_store(":memory:"), "match-1")
        []
    """
    held = _HELD["queue" if run_id is None else "run"]
    this = "(select started_at from runs where run_id = :run)"  # null without a run
    rows = db.query(
        "select d.item_id, d.run_id, d.label, p.tier, p.source_l, p.record_id_l, p.record_id_r "
        "from decisions d join pairs p on p.run_id = d.run_id and p.pair_id = d.item_id "
        "and p.kind = 'link' join runs r on r.run_id = d.run_id "
        "where d.kind = 'link' and d.decided_by = 'human' and d.superseded = 0 "
        f"and d.label in ('match', 'non_match') and not {held} "
        f"and ({this} is null or r.started_at <= {this}) "
        "order by d.decided_at, d.version, d.decision_id",
        {"run": run_id},
    )
    return [dict(r) for r in rows]


def _count_departed(
    rows: list[dict[str, Any]],
    decided_on: dict[str, str],
    by_item: dict[str, str],
    seen: set[str],
    out: dict[str, Any],
) -> None:
    """Count each departed link once (``departed`` in its tier), in the tier of the run its
    latest label was made on, unless the run holds the same pair by its records."""
    counted: set[str] = set()
    for row in rows:
        item_id = row["item_id"]
        if item_id in counted or decided_on.get(item_id) != row["run_id"]:
            continue
        if row["source_l"] + "\x1f" + row["record_id_l"] + "\x1f" + row["record_id_r"] in seen:
            continue
        counted.add(item_id)
        cell = out["links"].setdefault(
            row["tier"], {"pairs": 0, "labelled": 0, "match": 0, "non_match": 0}
        )
        cell["labelled"] += 1
        cell[by_item[item_id]] += 1
        cell["departed"] = cell.get("departed", 0) + 1
        out["labelled"] += 1


def score_labels(db: sqlite_utils.Database, run_id: str | None = None) -> dict[str, Any]:
    """Precision per kind and tier of a match run's pairs, from human review labels alone.

    A pair counts when its latest (not superseded) ``human`` decision labels it ``match`` or
    ``non_match``; ``unsure`` and ``policy`` decisions are left out. A link labelled on an
    earlier run that this run no longer holds (a rejected link leaves the next run) counts in
    the tier it had there, as ``departed`` (while that run's rows are kept). A decision belongs to a
    pair by its ``item_id`` (the pair id) or by the two records it names (either order); a
    duplicate pair also takes its cluster's answer (approved: a match; split: a non-match
    across groups, a match inside one).

    Args:
        db: the store.
        run_id: a match run (or a ``recon run`` holding one); the latest match run if None.

    Returns:
        ``{"run_id", "labelled", "links": {tier: {pairs, labelled, match, non_match,
        precision}}, "duplicates": {...}}``; precision is None for a tier with no labels.

    Raises:
        UsageError: the store holds no match run, or ``run_id`` names none.

    Examples:
        >>> from recon.store import open_store
        >>> score_labels(open_store(":memory:"))  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.UsageError: the store holds no match run
    """
    from .store import resolve_run_id

    rid = resolve_run_id(db, run_id, "match", finished=True)
    if rid is None:
        raise UsageError(
            "the store holds no match run", hint="run `recon match` first, then review some pairs"
        )
    by_item: dict[str, str] = {}
    by_pair: dict[tuple[str, frozenset[tuple[str, str]]], str] = {}
    decided_on: dict[str, str] = {}  # a link decision's pair id: the match run it was made on
    decisions = db.query(
        "select kind, source_l, record_id_l, source_r, record_id_r, item_id, label, run_id "
        "from decisions "
        "where decided_by = 'human' and superseded = 0 and kind in ('link', 'duplicate') "
        "and label in ('match', 'non_match') order by decided_at, version, decision_id"
    )
    for d in decisions:  # later decisions overwrite earlier ones
        if d["item_id"]:
            by_item[d["item_id"]] = d["label"]
            if d["kind"] == "link" and d["run_id"]:
                decided_on[d["item_id"]] = d["run_id"]
        key = frozenset(
            {
                (d["source_l"] or "", d["record_id_l"] or ""),
                (d["source_r"] or "", d["record_id_r"] or ""),
            }
        )
        by_pair[(d["kind"], key)] = d["label"]
    # a cluster's answer labels its pairs: approved, every pair is a match; split, pairs
    # across groups are non-matches and pairs inside one group matches
    groups_of: dict[str, dict[str, int]] = {}
    for d in db.query(
        "select item_id, choice from decisions where decided_by = 'human' and superseded = 0 "
        "and kind = 'split' and item_id is not null order by decided_at, version, decision_id"
    ):
        try:
            groups = (json.loads(d["choice"] or "{}") or {}).get("groups") or []
        except (TypeError, ValueError, AttributeError):
            continue
        member_group: dict[str, int] = {}
        for k, group in enumerate(groups):
            for m in group:
                rid_m = m.get("record_id") if isinstance(m, dict) else m
                member_group[str(rid_m)] = k
        groups_of[d["item_id"]] = member_group
    out: dict[str, Any] = {"run_id": rid, "labelled": 0, "links": {}, "duplicates": {}}
    pairs = db.query(
        "select pair_id, kind, tier, source_l, record_id_l, source_r, record_id_r, cluster_id "
        "from pairs where run_id = ?",
        [rid],
    )
    seen: set[str] = set()
    for p in pairs:
        seen.add(p["pair_id"])
        seen.add(p["source_l"] + "\x1f" + p["record_id_l"] + "\x1f" + p["record_id_r"])
        kind = "links" if p["kind"] == "link" else "duplicates"
        cell = out[kind].setdefault(
            p["tier"], {"pairs": 0, "labelled": 0, "match": 0, "non_match": 0}
        )
        cell["pairs"] += 1
        key = frozenset({(p["source_l"], p["record_id_l"]), (p["source_r"], p["record_id_r"])})
        label = by_item.get(p["pair_id"]) or by_pair.get((p["kind"], key))
        cid = p["cluster_id"]
        if label is None and cid and p["kind"] != "link":
            if cid in groups_of:
                split = groups_of[cid]
                gl, gr = split.get(str(p["record_id_l"])), split.get(str(p["record_id_r"]))
                if gl is not None and gr is not None:
                    label = "match" if gl == gr else "non_match"
            else:
                label = by_item.get(cid)
        if label is None:
            continue
        cell["labelled"] += 1
        cell[label] += 1
        out["labelled"] += 1
    _count_departed(departed_link_labels(db, rid), decided_on, by_item, seen, out)
    for kind in ("links", "duplicates"):
        for cell in out[kind].values():
            n = cell["match"] + cell["non_match"]
            cell["precision"] = round(cell["match"] / n, 4) if n else None
    return out
