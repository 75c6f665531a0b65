"""The notebooks execute against a store built from the emulators' demo data, and compute sense.

The store comes from a real headless run (pull through the real clients, match, plan, policy,
apply); review decisions are labelled from the emulators' ground truth, as a careful reviewer
would. Each notebook is executed with nbclient; a last cell added here reports what it computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from recon.config import load_config
from recon.demo import demo_config_toml
from recon.pipeline import run_pipeline
from recon.store import open_store, transaction

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

REPORTS = {
    "01_explore_snapshots.py": "{'fills': fills.to_dicts(), 'coverage': coverage.to_dicts(), "
    "'duplicates': duplicates.to_dicts(), 'clusters': clusters.to_dicts()}",
    "02_tune_thresholds.py": "{'labels': labels.to_dicts(), 'curve': curve.to_dicts(), "
    "'suggested': suggested}",
    "03_audit_report.py": "{'runs': runs.height, 'report': report.to_dicts(), "
    "'ok': verification.ok, 'rows': verification.rows}",
}


@pytest.fixture(scope="module")
def demo_store(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store from a headless run against the session emulators, with truthful human labels."""
    folder = tmp_path_factory.mktemp("nbstore")
    config = folder / "recon.toml"
    config.write_text(demo_config_toml(sandbox.url), encoding="utf-8")
    cfg = load_config(config)
    summary = run_pipeline(cfg, notify=False)
    assert summary["exit_code"] == 0, summary.get("error")
    entity = {(row["side"], row["record_id"]): row["entity"] for row in sandbox.state.truth()}
    db = open_store(cfg.store.path)
    pairs = list(
        db.query(
            "select * from pairs where kind = 'link' and run_id = "
            "(select run_id from runs where stage = 'match' order by started_at desc limit 1)"
        )
    )
    with transaction(db):
        for n, pair in enumerate(pairs):
            truth = (
                entity.get(("hubspot", pair["record_id_l"]))
                == entity.get(("salesforce", pair["record_id_r"]))
                and entity.get(("hubspot", pair["record_id_l"])) is not None
            )
            db["decisions"].insert(
                {
                    "kind": "link",
                    "object": pair["object"],
                    "source_l": pair["source_l"],
                    "record_id_l": pair["record_id_l"],
                    "source_r": pair["source_r"],
                    "record_id_r": pair["record_id_r"],
                    "label": "match" if truth else "non_match",
                    "item_id": pair["pair_id"],
                    "decided_by": "human",
                    "reviewer": "analyst",
                    "decided_at": f"2026-11-30T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                    "version": 2,
                    "superseded": 0,
                }
            )
    # the emulators are shared by the session: put back what the run changed
    sandbox.state.restore()
    return config


def execute(name: str, config: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    notebook = jupytext.read(NOTEBOOKS / name)
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            f"import json as _json\nprint(_json.dumps({REPORTS[name]}, default=str))"
        )
    )
    monkeypatch.setenv("RECON_CONFIG", str(config))
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(config.parent)}},
    )
    client.execute()
    # a notebook shows an analyst no warnings (deprecations, chained assignments...)
    said = [
        o.get("text", "")
        for cell in notebook.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]
    assert said == [], f"{name} printed to stderr: {said}"
    outputs = notebook.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    return dict(json.loads(text))


def test_every_notebook_is_checked() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == sorted(REPORTS)


def test_01_explore(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = execute("01_explore_snapshots.py", demo_store, monkeypatch)
    objects = {(r["source"], r["object"]) for r in out["coverage"]}
    assert {("hubspot", "companies"), ("salesforce", "Account")} <= objects
    assert all(0 <= r["rate"] <= 1 for r in out["fills"])
    names = [r for r in out["fills"] if r["column"] == "name" and r["object"] == "companies"]
    assert names and names[0]["rate"] > 0.9
    companies = next(r for r in out["coverage"] if r["object"] == "companies")
    assert 0.3 < companies["coverage"] <= 1
    assert any(r["groups"] > 0 for r in out["duplicates"]), "demo data hold duplicates"
    assert out["clusters"], "the match run found duplicate clusters"


def test_02_thresholds(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = execute("02_tune_thresholds.py", demo_store, monkeypatch)
    labels = {r["label"]: r["decisions"] for r in out["labels"]}
    assert labels.get("match", 0) > 0
    curve = out["curve"]
    assert len(curve) == 21
    measured = [r for r in curve if r["precision"] is not None]
    assert measured and all(0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 for r in measured)
    recalls = [r["recall"] for r in measured]
    assert recalls == sorted(recalls, reverse=True), "recall falls as the threshold rises"
    # the grid starts at the lowest labelled score: no threshold below what people saw
    lowest = min(r["threshold"] for r in curve)
    assert lowest >= 0.85 and curve[0]["proposed"] == max(r["proposed"] for r in curve)
    assert out["suggested"] is None or lowest <= out["suggested"] <= 1


def test_03_audit(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = execute("03_audit_report.py", demo_store, monkeypatch)
    assert out["runs"] >= 1
    assert out["report"], "the run wrote to the CRMs"
    assert {r["outcome"] for r in out["report"]} <= {"confirmed", "failed", "stale", "skipped"}
    assert sum(r["changes"] for r in out["report"]) > 0
    assert out["ok"] is True and out["rows"] > 0
