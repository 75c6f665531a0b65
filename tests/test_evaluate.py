"""recon.evaluate: the same figures as ../shared/devset/score.py, and precision from labels."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recon.cli import app
from recon.errors import UsageError
from recon.evaluate import closure_pairs, score_files, score_labels
from recon.store import finish_run, start_run, transaction

SCORE_PY = Path(__file__).resolve().parents[1].parent / "shared" / "devset" / "score.py"


def _write(path: Path, header: str, rows: list[tuple]) -> None:
    path.write_text(
        header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows), encoding="utf-8"
    )


def make_case(folder: Path, seed: int) -> None:
    """Truth, links and duplicates with right, wrong, unknown and chaining proposals."""
    rng = random.Random(seed)
    truth, ents = [], []
    for e in range(rng.randint(5, 60)):
        ent = f"E{e}"
        for src, prefix in (("hubspot", "h"), ("salesforce", "s")):
            for k in range(rng.choice((0, 1, 1, 1, 2, 3))):
                truth.append((src, f"{prefix}{e}_{k}", ent))
        ents.append(ent)
    if seed % 5 == 0:  # a runaway cluster larger than the 200 cap
        truth += [("hubspot", f"big{i}", "BIG") for i in range(230)]
    _write(folder / "truth_entities.csv", "source,record_id,entity", truth)
    hs = [r for s, r, _ in truth if s == "hubspot"]
    sf = [r for s, r, _ in truth if s == "salesforce"]
    links = []
    for _ in range(rng.randint(0, 50)):
        h = rng.choice([*hs, "unknown_h"]) if hs else "unknown_h"
        same = [
            r
            for s, r, e in truth
            if s == "salesforce" and r[1:].split("_")[0] == h[1:].split("_")[0]
        ]
        s = rng.choice(same) if same and rng.random() < 0.7 else rng.choice([*sf, "unknown_s"])
        links.append((h, s, round(rng.random(), 3), rng.choice(("auto", "review", "auto"))))
    if seed % 3 != 1:
        _write(folder / "links.csv", " Hubspot_ID ,salesforce_id,score,TIER", links)
    dups = []
    for src, pool in (("hubspot", hs), ("salesforce", sf)):
        for _ in range(rng.randint(0, 40)):
            if len(pool) > 1:
                a, b = rng.sample(pool, 2)
                dups.append((src, a, b, 0.9, "review"))
    if seed % 5 == 0:
        dups += [("hubspot", f"big{i}", f"big{i + 1}", 0.99, "auto") for i in range(229)]
    if seed % 4 != 2:
        text = "source,record_id_l,record_id_r,score,tier\n" + "".join(
            ",".join(map(str, d)) + "\n" for d in dups
        )
        (folder / "duplicates.csv").write_bytes(("\ufeff" + text).encode())


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_score_py(tmp_path: Path, seed: int) -> None:
    if not SCORE_PY.is_file():
        # CI checks out ../shared beside the clone: there, a missing scorer is a failure
        assert not os.environ.get("CI"), (
            f"the devset scorer {SCORE_PY} is expected beside the clone"
        )
        pytest.skip(f"no devset scorer at {SCORE_PY} (../shared is not beside this checkout)")
    make_case(tmp_path, seed)
    theirs = json.loads(
        subprocess.run(
            [sys.executable, str(SCORE_PY), str(tmp_path), str(tmp_path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert score_files(tmp_path, tmp_path) == theirs


def test_eval_cli_prints_the_same_figures(tmp_path: Path) -> None:
    make_case(tmp_path, 3)
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--truth", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == score_files(tmp_path, tmp_path)
    table = CliRunner().invoke(app, ["eval", str(tmp_path), "--truth", str(tmp_path)])
    assert "links_auto" in table.output and "duplicates" in table.output


def test_missing_truth_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"truth_entities\.csv"):
        score_files(tmp_path, tmp_path / "nowhere")


def test_an_output_folder_without_output_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "truth").mkdir()
    make_case(tmp_path / "truth", 1)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(UsageError, match=r"no links\.csv or duplicates\.csv"):
            score_files(out, tmp_path / "truth")


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        # a blank entity made every such record one entity: all duplicates of each other
        ("hubspot,1,\nhubspot,2,\n", "row 2, column entity: blank"),
        ("hubspot,,e1\n", "row 2, column record_id: blank"),
        # a misspelt source left its records out of the scores
        ("hubspot,1,e1\nHubSpot,2,e1\n", "row 3, column source: 'HubSpot' is not hubspot"),
        # the last entity a record was given won without a word
        ("hubspot,1,e1\nhubspot,2,e2\nhubspot,1,e2\n", "row 4: hubspot record '1' is given"),
    ],
)
def test_a_bad_truth_row_is_named(tmp_path: Path, rows: str, says: str) -> None:
    (tmp_path / "links.csv").write_text("hubspot_id,salesforce_id,score,tier\n", encoding="utf-8")
    truth = tmp_path / "truth_entities.csv"
    truth.write_text("source,record_id,entity\n" + rows, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        score_files(tmp_path, tmp_path)
    assert f"{truth}, {says}" in err.value.message
    assert err.value.hint


def test_closure_chains_pairs() -> None:
    assert closure_pairs([("a", "b"), ("c", "d"), ("b", "c")]) == {
        frozenset(p)
        for p in (("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d"))
    }


def _pair(
    db,
    run_id: str,
    pair_id: str,
    kind: str,
    tier: str,
    left: str,
    right: str,
    cluster_id: str | None = None,
) -> None:
    src_r = "salesforce" if kind == "link" else "hubspot"
    db["pairs"].insert(
        {
            "run_id": run_id,
            "pair_id": pair_id,
            "kind": kind,
            "object": "companies",
            "source_l": "hubspot",
            "record_id_l": left,
            "source_r": src_r,
            "record_id_r": right,
            "score": 0.9,
            "tier": tier,
            "cluster_id": cluster_id,
        }
    )


def _decide(
    db,
    kind: str,
    label: str,
    left: str,
    right: str,
    *,
    item_id: str | None = None,
    by: str = "human",
    superseded: int = 0,
    at: str = "2026-01-01T00:00:00Z",
    swap: bool = False,
) -> None:
    src_l, src_r = "hubspot", ("salesforce" if kind == "link" else "hubspot")
    if swap:  # the decision names the pair the other way round
        src_l, src_r = src_r, src_l
    db["decisions"].insert(
        {
            "kind": kind,
            "object": "companies",
            "source_l": src_l,
            "record_id_l": left,
            "source_r": src_r,
            "record_id_r": right,
            "label": label,
            "item_id": item_id,
            "decided_by": by,
            "decided_at": at,
            "superseded": superseded,
        }
    )


def test_precision_per_tier_from_human_labels(fresh_db) -> None:
    run = start_run(fresh_db, "match")
    finish_run(fresh_db, run)
    with transaction(fresh_db):
        _pair(fresh_db, run, "p1", "link", "auto", "1", "A")
        _pair(fresh_db, run, "p2", "link", "auto", "2", "B")
        _pair(fresh_db, run, "p3", "link", "review", "3", "C")
        _pair(fresh_db, run, "p4", "link", "review", "4", "D")
        _pair(fresh_db, run, "p5", "duplicate", "review", "5", "6")
        _decide(fresh_db, "link", "match", "1", "A", item_id="p1")
        _decide(fresh_db, "link", "non_match", "B", "2", swap=True)  # by the records, either order
        _decide(fresh_db, "link", "non_match", "3", "C", by="policy")  # never counts
        _decide(fresh_db, "link", "non_match", "4", "D", superseded=1)  # replaced by the next one
        _decide(fresh_db, "link", "match", "4", "D", at="2026-01-02T00:00:00Z")
        _decide(fresh_db, "duplicate", "unsure", "5", "6")  # unsure is no label
    out = score_labels(fresh_db)
    assert out["run_id"] == run and out["labelled"] == 3
    assert out["links"]["auto"] == {
        "pairs": 2,
        "labelled": 2,
        "match": 1,
        "non_match": 1,
        "precision": 0.5,
    }
    assert out["links"]["review"] == {
        "pairs": 2,
        "labelled": 1,
        "match": 1,
        "non_match": 0,
        "precision": 1.0,
    }
    assert out["duplicates"]["review"]["precision"] is None


def test_eval_labels_cli(tmp_path: Path) -> None:
    from recon.store import open_store

    db = open_store(tmp_path / "data" / "recon.db")
    run = start_run(db, "match")
    finish_run(db, run)
    with transaction(db):
        _pair(db, run, "p1", "link", "auto", "1", "A")
        _decide(db, "link", "match", "1", "A", item_id="p1")
    db.conn.close()
    (tmp_path / "recon.toml").write_text('[store]\npath = "data/recon.db"\n')
    result = CliRunner().invoke(app, ["eval", "--labels", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["links"]["auto"]["precision"] == 1.0


def test_eval_without_inputs_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["eval"])
    assert isinstance(result.exception, UsageError)


def test_cluster_answers_label_every_pair_of_the_cluster(fresh_db) -> None:
    run = start_run(fresh_db, "match")
    finish_run(fresh_db, run)
    with transaction(fresh_db):
        for pid, left, right in (("d1", "1", "2"), ("d2", "1", "3"), ("d3", "2", "3")):
            _pair(fresh_db, run, pid, "duplicate", "auto", left, right, cluster_id="cA")
        for pid, left, right in (("d4", "4", "5"), ("d5", "4", "6"), ("d6", "5", "6")):
            _pair(fresh_db, run, pid, "duplicate", "review", left, right, cluster_id="cB")
        _decide(fresh_db, "duplicate", "match", "1", "3", item_id="cA")  # the cluster approved
        split = {"groups": [[{"record_id": "4"}, {"record_id": "5"}], [{"record_id": "6"}]]}
        fresh_db["decisions"].insert(
            {"kind": "split", "object": "companies", "label": "non_match", "item_id": "cB",
             "choice": json.dumps(split), "decided_by": "human", "superseded": 0,
             "decided_at": "2026-01-01T00:00:00Z"}
        )  # fmt: skip
    out = score_labels(fresh_db)
    assert out["labelled"] == 6
    assert out["duplicates"]["auto"]["match"] == 3
    # 4 and 5 stay together; each of them with 6 is not one company
    assert (out["duplicates"]["review"]["match"], out["duplicates"]["review"]["non_match"]) == (
        1,
        2,
    )


def test_salesforce_ids_count_in_either_length_and_foreign_ids_are_named(tmp_path: Path) -> None:
    """A truth file written with a report's 15-character ids scores links.csv's 18-character
    ones; output about other records says so instead of scoring zeros silently."""
    (tmp_path / "truth_entities.csv").write_text(
        "source,record_id,entity\nhubspot,1,E1\nsalesforce,0015g0000000001,E1\n"
        "salesforce,0015g0000000002,E1\n"
    )
    (tmp_path / "links.csv").write_text(
        "hubspot_id,salesforce_id,score,tier\n1,0015g0000000001AAA,0.9,auto\n"
    )
    (tmp_path / "duplicates.csv").write_text(
        "source,record_id_l,record_id_r\nsalesforce,0015g0000000001AAA,0015g0000000002AAA\n"
    )
    res = score_files(tmp_path, tmp_path)
    assert res["links"]["precision"] == 1.0 and res["duplicates"]["f1"] == 1.0
    assert "warnings" not in res
    (tmp_path / "links.csv").write_text("hubspot_id,salesforce_id,score,tier\n99,X,0.9,auto\n")
    assert score_files(tmp_path, tmp_path)["warnings"] == [
        "no record of links.csv is in truth_entities.csv: are they the same records?"
    ]


# --------------------------------------------------------------------------- departed links


def _review_store() -> Any:
    """A store with a match and a plan run (bench/bench_review.py:fill_store), queue built."""
    import importlib.util

    from recon import review
    from recon.store import open_store

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_review.py"
    spec = importlib.util.spec_from_file_location("bench_review", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    db = open_store(":memory:")
    bench.fill_store(db, links=40, clusters=4, conflicts=2)
    review.ensure_queue(db)
    return db


def _rematch(db: Any, dropped: list[str]) -> str:
    """The next match run: the latest one's pairs and clusters but the ``dropped`` pairs."""
    old = db.execute(
        "select run_id from runs where stage = 'match' order by started_at desc, rowid desc"
    ).fetchone()[0]
    with transaction(db):
        new = start_run(db, "match")
        for table, key in (("pairs", "pair_id"), ("clusters", "cluster_id")):
            cols = ", ".join(c.name for c in db[table].columns if c.name != "run_id")
            db.execute(
                f"insert into {table} (run_id, {cols}) select ?, {cols} from {table} "
                f"where run_id = ? and {key} not in ({', '.join('?' * len(dropped))})",
                [new, old, *dropped],
            )
    finish_run(db, new)
    return new


def _links(db: Any) -> list[dict[str, Any]]:
    from recon import review

    page = review.queue(db, review.QueueFilter(status="all", kinds=("link",)), page_size=500)
    return sorted(page.items, key=lambda i: (i["tier"], i["item_id"]))


def _decide_links(db: Any, labels: dict[str, str]) -> None:
    from recon import review

    for item_id, label in labels.items():
        review.decide(db, item_id, label, reviewer="ana", based_on_version=0)


def test_tier_precision_and_score_labels_agree_on_departed_links() -> None:
    """Rejected links leave two successive match runs; the review app's tier precision and
    `recon eval --labels` count the same labels in the same tiers (one shared query)."""
    from recon import review

    db = _review_store()
    links = _links(db)
    auto = [i["item_id"] for i in links if i["tier"] == "auto"]
    rev = [i["item_id"] for i in links if i["tier"] == "review"]
    assert len(auto) >= 4 and len(rev) >= 4
    _decide_links(
        db,
        {auto[0]: "approve", auto[1]: "approve", auto[2]: "reject", rev[0]: "approve"}
        | {rev[1]: "reject", rev[2]: "reject", rev[3]: "defer"},
    )
    _rematch(db, [auto[2], rev[1]])  # two rejected links leave the next run
    _decide_links(db, {auto[3]: "reject"})  # decided on the second run
    _rematch(db, [auto[2], rev[1], auto[3]])  # and leaves the third

    queue = {
        p["tier"]: (p["matches"], p["non_matches"], p["labelled"], p["precision"])
        for p in review.tier_precision(db)
        if p["kind"] == "link"
    }
    scored = score_labels(db)["links"]
    labels = {
        tier: (c["match"], c["non_match"], c["labelled"], c["precision"])
        for tier, c in scored.items()
        if c["labelled"]
    }
    assert queue.keys() == labels.keys() == {"auto", "review"}
    for tier, (matches, non_matches, labelled, precision) in queue.items():
        assert labels[tier][:3] == (matches, non_matches, labelled)
        assert labels[tier][3] == pytest.approx(precision, abs=1e-4)
    assert queue["auto"][:3] == (2, 2, 4) and queue["review"][:3] == (1, 2, 3)
    assert (scored["auto"]["departed"], scored["review"]["departed"]) == (2, 1)


def test_score_labels_reads_departed_links_in_one_query() -> None:
    """However many links left the run, their tiers are read at once (not a query each)."""
    db = _review_store()
    auto = [i["item_id"] for i in _links(db) if i["tier"] == "auto"]
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)

    def queries_for(departed: list[str]) -> int:
        _decide_links(db, dict.fromkeys(departed, "reject"))
        _rematch(db, departed)
        statements.clear()
        assert score_labels(db)["links"]["auto"]["departed"] >= len(departed)
        return len(statements)

    assert queries_for(auto[:1]) == queries_for(auto[1:5])
