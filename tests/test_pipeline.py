"""`recon run` end to end against the emulators: dry run, real apply, faults, budget, lock, notify."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from recon.cli import main
from recon.demo import demo_config_toml
from recon.store import open_store


@pytest.fixture
def run_config(sandbox_reset: Any, tmp_path: Path) -> Path:
    """A recon.toml pointing at the session's emulators (restored after the test)."""
    path = tmp_path / "recon.toml"
    path.write_text(demo_config_toml(sandbox_reset.url), encoding="utf-8")
    return path


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + textwrap.dedent(text), encoding="utf-8")


def run(
    config: Path, *args: str, capsys: pytest.CaptureFixture[str], notify: bool = False
) -> tuple[int, dict[str, Any]]:
    argv = ["--config", str(config), "run", *args, *([] if notify else ["--no-notify"])]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr().out
    return int(exit_.value.code or 0), json.loads(out)


def undo_and_apply(config: Path, apply_run: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`recon undo APPLY_RUN --approve`, then `recon apply` of that undo plan; its plan id."""
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "undo", apply_run, "--approve"])
    assert exit_.value.code == 0, capsys.readouterr().err
    db = open_store(config.parent / "recon.db")
    undo_plan = str(
        db.execute(
            "select run_id from runs where stage = 'plan' and "
            "json_extract(config, '$.undo_of') = ? order by started_at desc limit 1",
            [apply_run],
        ).fetchone()[0]
    )
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "apply", "--plan", undo_plan, "--yes"])
    assert exit_.value.code == 0, capsys.readouterr().err
    capsys.readouterr()
    return undo_plan


def changes(sandbox: Any) -> list[dict[str, Any]]:
    body = requests.get(f"{sandbox.url}/_sandbox/changes", timeout=10).json()
    return list(body["changes"] if isinstance(body, dict) else body)


def test_dry_run_on_a_sample_writes_nothing(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(changes(sandbox))
    code, summary = run(run_config, "--dry-run", "--sample", "30", capsys=capsys)
    assert code == 0, summary.get("error")
    assert summary["status"] == "ok" and summary["dry_run"] is True
    assert {"pull", "match", "plan", "policy", "replan", "apply"} <= set(summary["stages"])
    pulled = summary["stages"]["pull"]["records"]
    assert pulled and max(pulled.values()) <= 30
    assert summary["stages"]["policy"]["links"] >= 1
    assert len(changes(sandbox)) == before
    db = open_store(run_config.parent / "recon.db")
    kids = {
        r["stage"]
        for r in db.query("select stage from runs where parent_id = ?", [summary["run_id"]])
    }
    assert {"pull", "match", "plan", "apply"} <= kids
    # the policy's approvals shaped what the dry apply would send, then were taken back: a
    # later real run under another policy never applies them
    policy = db.execute("select count(*) from decisions where decided_by = 'policy'").fetchone()[0]
    assert policy == 0 and summary["stages"]["apply"]["applied"] >= 1
    # a plan stage reports its counts, never its rows
    plan = summary["stages"]["plan"]
    assert isinstance(plan["items"], int) and plan["items"] > 0 and plan["by_action"]
    parent = db.execute("select summary from runs where run_id = ?", [summary["run_id"]]).fetchone()
    assert len(parent[0]) < 100_000


def test_full_run_applies_audits_and_exports(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = run(run_config, "--export", "jsonl", "--export", "csv", capsys=capsys)
    assert code == 0, summary.get("error")
    applied = summary["stages"]["apply"]
    assert applied["applied"] > 0
    assert summary["audit_anchor"]
    assert len(summary["exports"]) == 2 and all(Path(p).exists() for p in summary["exports"])
    db = open_store(run_config.parent / "recon.db")
    assert db.execute("select count(*) from audit where outcome = 'confirmed'").fetchone()[0] > 0
    writes = [c for c in changes(sandbox) if c.get("action") in ("updated", "update")]
    assert writes, "the emulators saw no write"
    # status shows the run's stages with their API calls
    with pytest.raises(SystemExit):
        main(["--config", str(run_config), "status", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert status["runs"]["run"]["status"] == "ok"
    assert status["runs"]["pull"]["api_calls"]
    # `--stage export` alone exports the latest apply's audit
    code, only = run(run_config, "--stage", "export", "--export", "csv", capsys=capsys)
    assert code == 0 and len(only["exports"]) == 1 and Path(only["exports"][0]).exists()
    assert only["apply_run_id"] == summary["apply_run_id"]


def test_partial_failure_exits_4_and_notifies(
    sandbox: Any, run_config: Path, receiver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    append(run_config, f'[notify]\nwebhook_url = "{receiver.url}/hook"\n')
    rules = [
        {
            "kind": "validation",
            "side": "*",
            "match": {},
            "message": "blocked by a validation rule",
        }
    ]
    resp = requests.post(f"{sandbox.url}/_sandbox/faults", json=rules, timeout=10)
    assert resp.status_code < 300, resp.text
    code, summary = run(run_config, capsys=capsys, notify=True)
    print(
        "FAULTS",
        requests.get(f"{sandbox.url}/_sandbox/faults", timeout=10).json(),
        requests.get(f"{sandbox.url}/_sandbox/requests", timeout=10).json(),
    )
    assert code == 4, json.dumps(summary["stages"].get("apply"), default=str)
    assert summary["status"] == "partial"
    assert summary["errors_by_class"].get("validation", 0) > 0
    # the error counts the run's failures and says what was applied (it said "the rest were
    # applied" when nothing was)
    failed = sum(summary["errors_by_class"].values())
    apply = summary["stages"]["apply"]
    applied = int(apply.get("applied_now", apply.get("applied")) or 0)
    assert summary["error"].startswith(
        f"{failed:,} item(s) failed; "
        + (f"{applied:,} applied" if applied else "nothing was applied")
    ), summary["error"]
    hooks = [r["body"] for r in receiver.requests if r["path"] == "/hook"]
    assert hooks and hooks[0]["exit_code"] == 4
    assert hooks[0]["top_error_classes"][0]["class"] == "validation"


def test_budget_exhausted_exits_6_and_resumes(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3: the reads before the first page (schema, count) and a page; then it runs out
    append(run_config, "[budget]\nhubspot_calls = 3\nsalesforce_calls = 5000\n")
    code, summary = run(run_config, "--stage", "pull", capsys=capsys)
    assert code == 6, summary
    assert summary["status"] == "budget"
    # the run's own budget, and no `recon apply --resume` to type: the next run resumes
    assert summary["error"] == (
        "the API call budget of this run is spent ([budget] hubspot_calls = 3); the next run "
        "resumes where this one stopped (or raise the budget)"
    )


def test_an_apply_larger_than_max_writes_is_held_and_sends_nothing(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append(run_config, "[policy]\nmax_writes = 1\n")
    before = len(changes(sandbox))
    code, summary = run(run_config, "--sample", "30", capsys=capsys)
    assert code == 8, summary
    assert summary["status"] == "held" and "[policy] max_writes = 1" in summary["error"]
    held = summary["stages"]["apply"]
    assert held["status"] == "held" and held["pending"] > 1 and held["max_writes"] == 1
    assert sum(held["by_action"].values()) == held["pending"]
    assert summary["counts"]["pending"] == held["pending"]
    assert len(changes(sandbox)) == before  # nothing was sent
    # the summary (and the notice) say what waits for a person
    waiting = summary["waiting_by_kind"]
    assert set(waiting) == {"link", "duplicate", "conflict", "stale"}
    assert summary["waiting_for_review"] == sum(waiting.values())
    assert summary["counts"]["held"] == held["by_action"]
    db = open_store(run_config.parent / "recon.db")
    assert db.execute("select count(*) from runs where stage = 'apply'").fetchone()[0] == 0
    # a dry run is never held: it sends nothing
    code, dry = run(run_config, "--dry-run", "--sample", "30", capsys=capsys)
    assert code == 0 and dry["status"] == "ok", dry.get("error")


def test_locked_store_exits_5(run_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = run_config.parent / "recon.db"
    open_store(store).conn.close()
    script = textwrap.dedent(
        f"""
        import sys
        from recon.store import open_store
        from recon.lock import store_lock
        with store_lock(open_store({str(store)!r}), holder="other run"):
            print("held", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        code, summary = run(run_config, "--dry-run", capsys=capsys)
        assert code == 5
        assert "other run" in summary["error"]
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=20)


def test_a_command_kept_out_by_a_run_names_the_run(tmp_path: Path) -> None:
    """The lock a `recon run` holds names its run: a command it keeps out (exit 5) says which
    run holds the store, not only a process id."""
    from recon.config import load_config
    from recon.lock import holder_text
    from recon.pipeline import run_pipeline

    config = tmp_path / "recon.toml"
    config.write_text('[store]\npath = "recon.db"\n', encoding="utf-8")
    prune = [sys.executable, "-m", "recon", "--config", str(config), "prune"]
    refused: list[subprocess.CompletedProcess[str]] = []
    said: list[str | None] = []

    def progress(stage: str, info: dict[str, Any]) -> None:
        if stage == "run":  # the run holds the lock now
            db = open_store(tmp_path / "recon.db")
            said.append(holder_text(db))
            db.conn.close()
            refused.append(subprocess.run(prune, capture_output=True, text=True, timeout=120))

    summary = run_pipeline(load_config(config), stages=["export"], notify=False, progress=progress)
    assert summary["status"] == "ok", summary.get("error")
    assert refused[0].returncode == 5, refused[0].stderr
    assert f"locked by recon run (run {summary['run_id']}, pid " in refused[0].stderr
    assert said[0] is not None and said[0].startswith(f"recon run (run {summary['run_id']}, pid ")


def test_a_store_that_cannot_be_opened_is_a_failed_run_with_a_notice(
    tmp_path: Path, receiver: Any
) -> None:
    """A scheduled run whose store cannot be opened (not a store, a full disk) fails every
    night: like any run that does not succeed, it sends its notice."""
    from recon.config import load_config
    from recon.pipeline import run_pipeline

    store = tmp_path / "recon.db"
    store.write_text("not a database", encoding="utf-8")
    cfg = load_config(
        None,
        overrides={"store": {"path": str(store)},
                   "notify": {"webhook_url": f"{receiver.url}/hook", "retries": 0}},
    )  # fmt: skip
    summary = run_pipeline(cfg)
    assert summary["status"] == "failed" and summary["exit_code"] == 1
    assert "cannot open the store" in summary["error"]
    assert summary["notified"] == {"webhook": True}
    (notice,) = (r["body"] for r in receiver.requests)
    assert notice["status"] == "failed" and "cannot open the store" in notice["error"]


def test_auth_failure_exits_7(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = [{"kind": "expired_session", "side": "hubspot"}]
    requests.post(f"{sandbox.url}/_sandbox/faults", json=rules, timeout=10)
    code, summary = run(run_config, "--stage", "pull", capsys=capsys)
    assert code == 7, summary
    assert summary["errors_by_class"].get("auth_failed") == 1


def test_a_failed_apply_is_resumed_by_the_next_run(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An apply stopped by an authentication failure (exit 7) is finished by the next run."""
    rules = [{"kind": "expired_session", "side": "hubspot", "endpoint": "POST */batch/update"}]
    requests.post(f"{sandbox.url}/_sandbox/faults", json=rules, timeout=10)
    code, summary = run(run_config, capsys=capsys)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10)
    assert code == 7, summary
    db = open_store(run_config.parent / "recon.db")
    failed = db.execute("select run_id, status from runs where stage = 'apply'").fetchone()
    assert failed[1] == "failed"
    # the next run's resume stops the same way: what it wrote is exported all the same
    requests.post(f"{sandbox.url}/_sandbox/faults", json=rules, timeout=10)
    code, summary = run(run_config, "--stage", "apply", "--stage", "export", capsys=capsys)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10)
    assert code == 7, summary
    assert summary["resumed_apply_run_id"] == failed[0]
    assert any("resumed" in f for f in summary["exports"])

    def confirmed() -> int:
        return int(
            db.execute(
                "select count(*) from journal where run_id = ? and state = 'confirmed'",
                [failed[0]],
            ).fetchone()[0]
        )

    before = confirmed()
    code, summary = run(run_config, "--stage", "apply", capsys=capsys)
    assert code == 0, summary.get("error")
    assert summary["stages"]["resume"]["run_id"] == failed[0]
    # what this run wrote, not the resumed apply's whole tally
    assert summary["counts"]["applied"] == confirmed() - before
    left = db.execute(
        "select count(*) from journal where run_id = ? and state in ('planned', 'sent')",
        [failed[0]],
    ).fetchone()[0]
    assert left == 0


def test_unknown_stage_is_a_usage_error(run_config: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(run_config), "run", "--stage", "bogus"])
    assert exit_.value.code == 2
    # an export format typo is refused before any stage runs (nothing pulled, nothing written)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(run_config), "run", "--export", "jsnol"])
    assert exit_.value.code == 2
    assert not (run_config.parent / "recon.db").exists()


@pytest.mark.parametrize(
    ("stages", "says"),
    [(["aply"], "unknown stage 'aply'"), ([], "no stage"), (["replan"], "runs only with the plan")],
)
def test_run_pipeline_refuses_unknown_stages_as_the_cli_does(
    run_config: Path, stages: list[str], says: str
) -> None:
    """A scheduled script's typo ("aply") is not a clean run that did nothing; a single
    stage given as text is that stage, not its letters."""
    from recon.config import load_config
    from recon.errors import UsageError
    from recon.pipeline import run_pipeline

    cfg = load_config(run_config)
    with pytest.raises(UsageError, match=says):
        run_pipeline(cfg, notify=False, stages=stages)
    summary = run_pipeline(cfg, notify=False, stages="export")
    assert summary["stages"] == {} and "exports" in summary  # the export ran, nothing else


def test_run_resumes_an_apply_killed_mid_batch(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 during the apply's first write; the next `recon run` finishes that apply first."""
    import signal

    slow = [
        {"kind": "latency", "side": "hubspot", "endpoint": "POST */batch/update", "ms": 4000},
        {
            "kind": "latency",
            "side": "salesforce",
            "endpoint": "PATCH */composite/sobjects*",
            "ms": 4000,
        },
    ]
    resp = requests.post(f"{sandbox.url}/_sandbox/faults", json=slow, timeout=10)
    assert resp.status_code < 300, resp.text
    store = run_config.parent / "recon.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon", "--config", str(run_config), "run", "--no-notify"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        sent = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    db = open_store(store, migrate=False)
                    sent = db.execute(
                        "select count(*) from journal where state = 'sent'"
                    ).fetchone()[0]
                    db.conn.close()
                except Exception:  # the store is being created or migrated
                    sent = 0
            if sent:
                break
            time.sleep(0.1)
        assert sent, "the apply never reached a sent batch"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10)
    db = open_store(store)
    crashed, started = db.execute(
        "select run_id, started_at from runs where stage = 'apply'"
    ).fetchone()
    assert (
        db.execute("select status from runs where run_id = ?", [crashed]).fetchone()[0] == "running"
    )
    code, summary = run(run_config, capsys=capsys)
    assert code == 0, summary.get("error")
    assert "resume" in summary["stages"]
    assert summary["stages"]["resume"]["run_id"] == crashed
    # the run keeps the time it started; the takeover is counted in its config
    row = db.execute(
        "select started_at, json_extract(config, '$.resumed') from runs where run_id = ?",
        [crashed],
    ).fetchone()
    assert tuple(row) == (started, 1)
    left = db.execute(
        "select count(*) from journal where run_id = ? and state in ('planned', 'sent')", [crashed]
    ).fetchone()[0]
    assert left == 0
    assert db.execute("select status from runs where run_id = ?", [crashed]).fetchone()[0] == "ok"
    # the lock the killed run held was taken over (its process is gone)
    assert db.execute("select count(*) from locks where holder is not null").fetchone()[0] == 0


def _plans_of(db: Any, parent: str) -> list[str]:
    return [
        r["run_id"]
        for r in db.query(
            "select run_id from runs where parent_id = ? and stage = 'plan' order by started_at, rowid",
            [parent],
        )
    ]


def test_replan_is_skipped_when_the_policy_decided_nothing_a_plan_reads(
    run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = run(run_config, "--dry-run", "--sample", "20", capsys=capsys)
    assert code == 0, summary.get("error")
    db = open_store(run_config.parent / "recon.db")
    (plan,) = _plans_of(db, summary["run_id"])
    assert summary["stages"]["replan"] == {"run_id": plan, "reused": True}
    assert summary["stages"]["policy"]["links"] > 0  # approvals are read by apply, not the plan
    apply_plan = db.execute(
        "select json_extract(config, '$.plan_run_id') from runs where stage = 'apply' and parent_id = ?",
        [summary["run_id"]],
    ).fetchone()[0]
    assert apply_plan == plan


def test_replan_runs_when_a_decision_a_plan_reads_changed(
    run_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import recon.policy

    approve = recon.policy.auto_approve

    def and_a_master(db: Any, *args: Any, **kw: Any) -> dict[str, int]:
        db["decisions"].insert(
            {"kind": "master", "label": "approve", "item_id": "cl-x", "superseded": 0}
        )
        return approve(db, *args, **kw)

    monkeypatch.setattr(recon.policy, "auto_approve", and_a_master)
    code, summary = run(run_config, "--dry-run", "--sample", "20", capsys=capsys)
    assert code == 0, summary.get("error")
    plans = _plans_of(open_store(run_config.parent / "recon.db"), summary["run_id"])
    assert len(plans) == 2 and summary["stages"]["replan"]["run_id"] == plans[1]


def test_keep_runs_prunes_the_plans_of_earlier_runs(
    run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = run_config.read_text(encoding="utf-8")
    run_config.write_text(text.replace("[store]\n", "[store]\nkeep_runs = 1\n", 1), "utf-8")
    summaries = []
    for _ in range(2):
        code, summary = run(run_config, "--dry-run", "--sample", "20", capsys=capsys)
        assert code == 0, summary.get("error")
        summaries.append(summary)
    db = open_store(run_config.parent / "recon.db")
    (first,), (second,) = (_plans_of(db, s["run_id"]) for s in summaries)
    assert summaries[0]["stages"]["prune"]["runs"]["plan"] == []
    assert summaries[1]["stages"]["prune"]["runs"]["plan"] == [first]
    items = dict(db.execute("select run_id, count(*) from plan_items group by run_id").fetchall())
    assert first not in items and items[second] > 0


def test_a_policy_stage_without_the_match_stage_approves_the_plans_links(
    run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, summary = run(
        run_config, "--stage", "pull", "--stage", "match", "--sample", "20", capsys=capsys
    )
    assert code == 0, summary.get("error")
    code, summary = run(
        run_config, "--dry-run", "--stage", "plan", "--stage", "policy", capsys=capsys
    )
    assert code == 0, summary.get("error")
    # the links of the match run the plan was built from
    assert summary["stages"]["policy"]["links"] > 0


def test_the_budget_caps_the_whole_run_not_each_stage(
    run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first = run(run_config, "--stage", "pull", "--sample", "20", capsys=capsys)
    assert code == 0, first.get("error")
    budget = first["api_calls"]["hubspot"]  # what a full pull of the sample costs
    # the next run's incremental pull spends less; its apply gets only what is left
    append(run_config, f"[budget]\nhubspot_calls = {budget}\n")
    code, summary = run(run_config, "--sample", "20", capsys=capsys)
    assert summary["api_calls"]["hubspot"] <= budget, (budget, summary["api_calls"])
    assert code in (0, 6) and summary["status"] in ("ok", "budget")


def test_a_schedule_meeting_the_same_holder_again_notifies_once(
    tmp_path: Path, receiver: Any
) -> None:
    """A long apply holds the lock across several scheduled runs: the first one kept out sends
    its notice, the next ones stay quiet; a new holder is news again."""
    from recon.config import load_config
    from recon.pipeline import run_pipeline

    cfg = load_config(
        None,
        overrides={"store": {"path": str(tmp_path / "recon.db")},
                   "notify": {"webhook_url": f"{receiver.url}/hook", "retries": 0}},
    )  # fmt: skip
    db = open_store(cfg.store.path)
    other = subprocess.Popen(["sleep", "60"])  # a live process on this host holds the lock
    try:

        def hold(started: str) -> None:
            db["locks"].upsert(
                {"name": "store", "holder": "recon run", "pid": other.pid, "host": socket.gethostname(),
                 "run_id": "run-1", "started_at": started, "heartbeat_at": "2999-01-01T00:00:00.000Z",
                 "notified_at": None},
                pk="name",
            )  # fmt: skip

        from recon.models import now_iso

        # (a lock taken before its holder's process started would be another process's pid)
        hold(now_iso())
        first = run_pipeline(cfg)
        again = run_pipeline(cfg)
        assert first["status"] == again["status"] == "locked" and again["exit_code"] == 5
        assert first["notified"] == {"webhook": True}
        assert again["notified"] == {} and "not sent" in again["notice"]
        assert len(receiver.requests) == 1
        hold("2999-01-01T00:00:00.000Z")  # the next long run
        assert run_pipeline(cfg)["notified"] == {"webhook": True}
        assert len(receiver.requests) == 2
    finally:
        other.kill()
        other.wait()


def test_two_way_an_older_hubspot_value_never_overwrites_a_newer_salesforce_edit(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HubSpot's `state` set first, Salesforce's MailingState later, then another HubSpot
    property: the HubSpot record is newest, its `state` is not. Salesforce's value wins."""
    append(run_config, '[mapping]\nrules = { "contacts.state" = "two_way" }\n')

    def cli(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(run_config), *args])
        out = capsys.readouterr()
        assert exit_.value.code == 0, out.err
        return out.out

    cli("pull")
    cli("match")
    db = open_store(run_config.parent / "recon.db")
    hs_id, sf_id = db.execute(
        "select record_id_l, record_id_r from pairs where kind = 'link' and object = 'contacts' "
        "and object_r = 'Contact' and tier = 'auto' order by pair_id limit 1"
    ).fetchone()
    hs_url = f"{sandbox.url}/crm/v3/objects/contacts/{hs_id}"
    sf_url = f"{sandbox.url}/services/data/v59.0/sobjects/Contact/{sf_id}"
    auth = {"Authorization": "Bearer x"}
    requests.patch(hs_url, json={"properties": {"state": "HS-OLD"}}, headers=auth, timeout=5)
    time.sleep(1.1)  # Salesforce stamps whole seconds
    requests.patch(sf_url, json={"MailingState": "SF-NEW"}, headers=auth, timeout=5)
    time.sleep(1.1)
    requests.patch(hs_url, json={"properties": {"fax": "+1 555 0100"}}, headers=auth, timeout=5)
    cli("pull", "--full")
    cli("match")
    from recon.config import load_config
    from recon.plan import build_plan

    items = build_plan(db, load_config(run_config), dry_run=True).items
    state = [
        i
        for i in items
        if (i["record_id"], i["field"]) in ((hs_id, "state"), (sf_id, "MailingState"))
        or (i["action"] == "conflict" and i["field"] == "state" and "HS-OLD" in json.dumps(i))
    ]
    assert [(i["system"], i["field"], i["after"]) for i in state] == [
        ("hubspot", "state", "SF-NEW")
    ], state
    assert state[0]["reason"]["why"] == "salesforce_newer"


def test_a_nightly_run_does_not_write_again_what_an_undo_took_back(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `recon undo` of a run is applied, the next run proposes those writes again (their
    links are still approved) but holds them for a person: nothing undone is written back."""
    code, first = run(run_config, capsys=capsys)
    assert code == 0, first.get("error")
    undo_plan = undo_and_apply(run_config, first["apply_run_id"], capsys)
    db = open_store(run_config.parent / "recon.db")
    restored = {
        (r[0], r[1])
        for r in db.execute(
            "select record_id, field from audit where run_id = (select run_id from runs where "
            "stage = 'apply' and json_extract(config, '$.plan_run_id') = ?) and outcome = 'confirmed'",
            [undo_plan],
        )
    }
    assert restored
    code, second = run(run_config, capsys=capsys)
    assert code == 0, second.get("error")
    rewritten = {
        (r[0], r[1])
        for r in db.execute(
            "select record_id, field from audit where run_id = ? and outcome = 'confirmed'",
            [second["apply_run_id"]],
        )
    }
    assert not restored & rewritten
    plan = second["stages"]["replan"].get("run_id") or second["stages"]["plan"]["run_id"]
    held = db.execute(
        "select count(*) from plan_items where run_id = ? and status = 'needs_review' "
        "and json_extract(reason, '$.why') = 'undone_before'",
        [plan],
    ).fetchone()[0]
    assert held >= 1


def test_after_an_undo_a_persons_edit_on_the_other_side_is_not_overwritten(
    sandbox: Any, run_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person's HubSpot title was synced to Salesforce, then that write was undone: the
    undo said Salesforce keeps its title. The next run must not write it over the person's
    HubSpot title (recon's own undo write made Salesforce look newer): a person decides."""
    append(run_config, '[mapping]\nrules = { "contacts.jobtitle" = "two_way" }\n')
    code, first = run(run_config, capsys=capsys)
    assert code == 0, first.get("error")
    db = open_store(run_config.parent / "recon.db")
    hs_id, sf_id, sf_obj = db.execute(
        "select record_id_l, record_id_r, object_r from pairs where kind = 'link' and "
        "object = 'contacts' and tier = 'auto' and run_id = (select max(run_id) from pairs "
        "where kind = 'link') order by pair_id limit 1"
    ).fetchone()
    auth = {"Authorization": "Bearer x"}
    time.sleep(1.1)
    requests.patch(f"{sandbox.url}/crm/v3/objects/contacts/{hs_id}",
                   json={"properties": {"jobtitle": "Person Title"}}, headers=auth, timeout=5)  # fmt: skip
    code, synced = run(run_config, capsys=capsys)
    assert code == 0, synced.get("error")
    sf_url = f"{sandbox.url}/services/data/v59.0/sobjects/{sf_obj}/{sf_id}"
    assert requests.get(sf_url, headers=auth, timeout=5).json()["Title"] == "Person Title"
    undo_and_apply(run_config, synced["apply_run_id"], capsys)
    assert requests.get(sf_url, headers=auth, timeout=5).json()["Title"] != "Person Title"
    code, after = run(run_config, capsys=capsys)
    assert code == 0, after.get("error")
    hs_now = requests.get(
        f"{sandbox.url}/crm/v3/objects/contacts/{hs_id}?properties=jobtitle",
        headers=auth,
        timeout=5,
    ).json()["properties"]["jobtitle"]
    assert hs_now == "Person Title"


def test_the_summary_file_says_running_until_the_run_ends_and_the_log_is_dated(
    run_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed on the way (kill -9, a reboot) left last night's "ok" in the summary
    file, or an empty file; a cron log had no time and wrapped errors at 80 columns."""
    import recon.pipeline

    summary_file = run_config.parent / "last-run.json"
    summary_file.write_text('{"status": "ok"}', encoding="utf-8")  # last night's
    seen: dict[str, Any] = {}

    def fake(cfg: Any, **kw: Any) -> dict[str, Any]:
        seen.update(json.loads(summary_file.read_text(encoding="utf-8")))
        kw["progress"]("run", {"event": "started", "run_id": "run-1"})  # it took the lock
        seen["then"] = json.loads(summary_file.read_text(encoding="utf-8"))
        return {"run_id": "run-1", "status": "failed", "exit_code": 1, "stages": {},
                "error": "x " * 60 + "end"}  # fmt: skip

    monkeypatch.setattr(recon.pipeline, "run_pipeline", fake)
    with pytest.raises(SystemExit):
        main(["--config", str(run_config), "run", "--no-notify", "--summary", str(summary_file)])
    assert seen["status"] == "running" and seen["started_at"] and seen["run_id"] is None
    # once the run has its id, the running file names it (a monitor can look the run up)
    assert seen["then"]["status"] == "running" and seen["then"]["run_id"] == "run-1"
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith(" recon run starts") and err[0][:4].isdigit()
    assert any(line.startswith("error: x x") and line.endswith("end") for line in err)
    assert err[-1].endswith("recon run run-1 ends: failed (exit 1)")
    blocked = run_config.parent / "o.txt"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "--config",
                str(run_config),
                "run",
                "--no-notify",
                "--summary",
                str(blocked / "s.json"),
            ]
        )
    assert exit_.value.code == 1 and "o.txt is a file, not a folder" in capsys.readouterr().err
    # refused after the "running" placeholder: the file says failed, not running for ever
    monkeypatch.undo()
    for argv in (["--stage", "replan"], []):
        if not argv:  # refused by run_pipeline itself (a store that cannot be opened)
            from recon.errors import StoreError

            def refuse(cfg: Any, **kw: Any) -> dict[str, Any]:
                raise StoreError("cannot open the store")

            monkeypatch.setattr(recon.pipeline, "run_pipeline", refuse)
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(run_config), "run", "--no-notify", "--summary", str(summary_file),
                  *argv])  # fmt: skip
        done = json.loads(summary_file.read_text(encoding="utf-8"))
        assert done["status"] == "failed" and done["exit_code"] == exit_.value.code, done


def test_an_unexpected_error_echoing_a_secret_is_blanked_everywhere(
    run_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception that is no recon error kept its text as it was: a token it echoed reached
    the summary, the stored runs (and `recon status --json`) and stderr."""
    from recon.errors import register_secret

    secret = "pat-na1-UNEXPECTED-SECRET-42"
    register_secret(secret)

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError(f"upstream said: invalid header 'Authorization: Bearer {secret}'")

    monkeypatch.setattr("recon.pull._pull_object", boom)
    monkeypatch.setattr("tempfile.tempdir", str(run_config.parent))  # the crash logs go here
    summary_file = run_config.parent / "summary.json"
    code, _ = run(run_config, "--stage", "pull", capsys=capsys)
    assert code == 1
    with pytest.raises(SystemExit):
        main(["--config", str(run_config), "run", "--stage", "pull", "--no-notify",
              "--summary", str(summary_file)])  # fmt: skip
    err = capsys.readouterr().err
    assert "RuntimeError" in err and secret not in err
    assert "Traceback" not in err  # the traceback is in a crash log, which the error names
    assert "Bearer ***" in summary_file.read_text() and secret not in summary_file.read_text()
    error = json.loads(summary_file.read_text())["error"]
    crash = Path(error.split("traceback written to ")[1].rstrip(")"))
    assert "Traceback" in crash.read_text() and secret not in crash.read_text()
    db = open_store(run_config.parent / "recon.db")
    stored = db.execute(
        "select group_concat(coalesce(summary, '') || coalesce(error, '')) from runs"
    )
    assert secret not in stored.fetchone()[0]
    with pytest.raises(SystemExit):
        main(["--config", str(run_config), "status", "--json"])
    assert secret not in capsys.readouterr().out


def test_ctrl_c_cancels_the_runs_and_says_so(sandbox: Any, run_config: Path) -> None:
    """A Ctrl-C exited 130 without a word, left the pull `failed` without a reason (or a match
    `running`, later "killed") and the --summary file at "running"."""
    import signal

    resp = requests.post(
        f"{sandbox.url}/_sandbox/faults",
        json=[{"kind": "latency", "side": "hubspot", "endpoint": "*", "ms": 1500}],
        timeout=10,
    )
    assert resp.status_code < 300, resp.text
    summary = run_config.parent / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon", "--config", str(run_config), "run", "--stage", "pull",
         "--no-notify", "--summary", str(summary)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            summary.exists() and "running" in summary.read_text()
        ):
            time.sleep(0.1)
        time.sleep(1.0)  # inside the pull's first (slow) request
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        requests.delete(f"{sandbox.url}/_sandbox/faults", timeout=10)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "cancelled" in err
    assert json.loads(summary.read_text())["status"] == "cancelled"
    db = open_store(run_config.parent / "recon.db")
    rows = db.execute("select stage, status, error from runs").fetchall()
    assert rows and all(status == "cancelled" for _stage, status, _e in rows), rows
    assert all(error for _stage, _status, error in rows), rows


def test_an_export_it_cannot_write_names_the_setting_to_change(tmp_path: Path) -> None:
    """`recon run` writes its exports into `[store] exports_dir`; the error named `--out`, an
    option `recon run` does not have."""
    from recon.audit import append
    from recon.config import load_config
    from recon.pipeline import _export
    from recon.store import start_run, transaction

    db = open_store(":memory:")
    run = start_run(db, "apply")
    with transaction(db):
        append(db, [{"run_id": run, "item_id": "i1", "after": "b", "outcome": "confirmed"}])
    (tmp_path / "afile").write_text("in the way", encoding="utf-8")
    cfg = load_config(None, overrides={"store": {"exports_dir": str(tmp_path / "afile")}})
    summary: dict[str, Any] = {"apply_run_id": run}
    _export(db, cfg, "run-1", summary, ["csv"])
    (failed,) = summary["export_errors"]
    assert "afile is a file, not a folder" in failed["error"]
    assert "name another [store] exports_dir" in failed["error"] and "--out" not in failed["error"]


def test_a_config_that_does_not_load_is_still_notified(
    tmp_path: Path,
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A scheduled run whose recon.toml someone broke says so through its [notify] hook."""
    toml = tmp_path / "recon.toml"
    toml.write_text(
        '[budget]\nhubspot_calls = -1\n[notify]\nwebhook_url = "env:RECON_TEST_HOOK"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RECON_TEST_HOOK", f"{receiver.url}/hook")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(toml), "run", "--dry-run"])
    assert exit_.value.code == 3
    err = capsys.readouterr().err
    assert "notice sent: the configuration does not load" in err and receiver.url not in err
    hooks = [r["body"] for r in receiver.requests if r["path"] == "/hook"]
    assert len(hooks) == 1
    assert hooks[0]["status"] == "failed" and hooks[0]["exit_code"] == 3
    assert hooks[0]["dry_run"] is True and hooks[0]["run_id"] is None
    assert "budget.hubspot_calls" in hooks[0]["error"]

    # --no-notify sends nothing
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(toml), "run", "--no-notify"])
    assert exit_.value.code == 3 and len(receiver.requests) == 1


def test_a_broken_notify_section_sends_nothing(
    tmp_path: Path, receiver: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from recon.config import notify_section_of
    from recon.errors import ConfigError
    from recon.pipeline import notify_config_failure

    toml = tmp_path / "recon.toml"
    toml.write_text(
        f'[notify]\nwebhook_url = "{receiver.url}/hook"\nretries = "many"\n', encoding="utf-8"
    )
    assert notify_section_of(toml) is None
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(toml), "run"])
    assert exit_.value.code == 3 and receiver.requests == []
    assert "notice sent" not in capsys.readouterr().err
    # no file, or a file that is not TOML: nothing to read a hook from
    assert notify_config_failure(tmp_path / "none.toml", ConfigError("x")) == {}
    (tmp_path / "bad.toml").write_text("[notify\n", encoding="utf-8")
    assert notify_section_of(tmp_path / "bad.toml") is None


def test_a_run_the_lock_keeps_out_leaves_the_running_runs_summary_file(
    run_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two schedules sharing one --summary: the run refused by the lock overwrote the running
    run's "running" with its own "locked"."""
    import subprocess
    import sys

    import recon.pipeline

    summary_file = run_config.parent / "last-run.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = {"run_id": "run-0", "status": "running", "pid": other.pid, "stages": {}}
        summary_file.write_text(json.dumps(held), encoding="utf-8")
        took: list[bool] = []

        def fake(cfg: Any, **kw: Any) -> dict[str, Any]:
            if took:  # this time the lock is free
                kw["progress"]("run", {"event": "started", "run_id": "run-2"})
                seen = json.loads(summary_file.read_text(encoding="utf-8"))
                assert seen["status"] == "running" and seen["run_id"] == "run-2"
                return {"run_id": "run-2", "status": "ok", "exit_code": 0, "stages": {}}
            return {"run_id": None, "status": "locked", "exit_code": 5, "stages": {},
                    "error": "the store is locked by recon run run-0"}  # fmt: skip

        monkeypatch.setattr(recon.pipeline, "run_pipeline", fake)
        argv = ["--config", str(run_config), "run", "--no-notify", "--summary", str(summary_file)]
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 5
        out, err = capsys.readouterr()
        assert json.loads(summary_file.read_text(encoding="utf-8")) == held
        assert json.loads(out)["status"] == "locked"
        assert f"is left to the run still running (pid {other.pid})" in " ".join(err.split())
        # a run that takes the lock writes the file (the lock says the other one is over)
        took.append(True)
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
        assert json.loads(summary_file.read_text(encoding="utf-8"))["run_id"] == "run-2"
    finally:
        other.kill()
        other.wait()
    # a config that does not load leaves a live run's file alone too
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held["pid"] = other.pid
        summary_file.write_text(json.dumps(held), encoding="utf-8")
        broken = run_config.parent / "broken.toml"
        broken.write_text("[budget]\nhubspot_calls = -1\n", encoding="utf-8")
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(broken), "run", "--no-notify", "--summary", str(summary_file)])
        assert exit_.value.code == 3
        assert json.loads(summary_file.read_text(encoding="utf-8")) == held
    finally:
        other.kill()
        other.wait()
    # a "running" file of a process gone is no one's: written over from the start
    summary_file.write_text(json.dumps(held), encoding="utf-8")
    took.clear()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert json.loads(summary_file.read_text(encoding="utf-8"))["status"] == "locked"
