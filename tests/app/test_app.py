"""The review page under streamlit.testing.v1.AppTest: every action, asserted on the store afterwards."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from streamlit.testing.v1 import AppTest

from recon import review
from recon.lock import acquire, lock_info, release
from recon.models import now_iso
from recon.store import open_store

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
_spec = importlib.util.spec_from_file_location("bench_review", ROOT / "bench" / "bench_review.py")
assert _spec and _spec.loader
bench_review = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_review)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sqlite_utils.Database:
    """A filled store and a recon.toml naming it, found through $RECON_CONFIG."""
    db = open_store(tmp_path / "recon.db")
    bench_review.fill_store(db, links=30, clusters=4, conflicts=4)
    cfg = tmp_path / "conf" / "recon.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        '[store]\npath = "../recon.db"\n[review]\nreviewer = "ana@example.com"\npage_size = 10\n'
        '[hubspot]\nportal_id = "4242"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RECON_CONFIG", str(cfg))
    return db


def keyed(widgets: Any, prefix: str) -> Any:
    """The one widget whose key starts with ``prefix`` (keys carry the choice they opened on)."""
    (hit,) = [w for w in widgets if str(w.key).startswith(prefix)]
    return hit


def start(**state: Any) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def run(target: Any) -> AppTest:
    """Run the app after an interaction (``target`` is the AppTest or a widget of it)."""
    at: AppTest = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def decisions(db: sqlite_utils.Database, item_id: str | None = None) -> list[dict[str, Any]]:
    sql, params = "select * from decisions where superseded = 0", []
    if item_id:
        sql, params = sql + " and item_id = ?", [item_id]
    return [dict(r) for r in db.query(sql + " order by decision_id", params)]


def texts(at: AppTest) -> str:
    return " ".join(
        str(e.value) for kind in ("success", "error", "warning", "info") for e in getattr(at, kind)
    )


def _plain(at: AppTest) -> str:
    """The page's messages and toasts, markdown escapes removed."""
    shown = texts(at) + " " + " ".join(str(t.value) for t in at.toast)
    return shown.replace("\\", "")


def test_first_page_shows_the_best_item_to_review(store: sqlite_utils.Database) -> None:
    at = start()
    best = review.queue(store, page_size=1).items[0]
    assert at.session_state["item"] == best["item_id"]
    assert at.session_state["page"] == 1
    assert any("items · undecided" in m.value for m in at.markdown)
    assert at.text_input(key="reviewer").value == "ana@example.com"
    assert [t.label for t in at.tabs] == ["Queue", "Plan", "Apply", "Audit", "Charts"]


@pytest.mark.parametrize(
    ("kind", "button", "label"),
    [
        ("link", "btn_approve", "match"),
        ("link", "btn_reject", "non_match"),
        ("link", "btn_defer", "unsure"),
        ("duplicate", "btn_approve", "match"),
        ("conflict", "btn_reject", "reject"),
    ],
)
def test_approve_reject_defer(
    store: sqlite_utils.Database, kind: str, button: str, label: str
) -> None:
    at = start(f_kinds=[kind])
    item_id = at.session_state["item"]
    run(at.button(key=button).click())
    [row] = decisions(store, item_id)
    assert (row["label"], row["reviewer"], row["version"], row["based_on_version"]) == (
        label,
        "ana@example.com",
        1,
        0,
    )
    assert "Saved" in texts(at)
    assert at.session_state["item"] != item_id or label == "unsure"  # moved on to the next item


def test_choose_the_surviving_value_of_a_conflict(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["conflict"])
    item_id = at.session_state["item"]
    run(keyed(at.radio, f"value_pick:{item_id}:").set_value(1))
    run(at.button(key="btn_value").click())
    [row] = decisions(store, item_id)
    choice = json.loads(row["choice"])
    assert (row["kind"], row["label"], choice["source"], choice["side"]) == (
        "conflict_value",
        "approve",
        "salesforce",
        "salesforce",
    )
    assert choice["value"] == review.item_detail(store, item_id)["options"][1]["value"]


def test_choose_master_and_surviving_value_of_a_cluster(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    members = keyed(at.selectbox, f"master_pick:{item_id}:").options
    run(keyed(at.selectbox, f"master_pick:{item_id}:").select_index(1))
    run(at.button(key="btn_master").click())
    [row] = decisions(store, item_id)
    assert (row["kind"], row["label"]) == ("master", "approve")
    assert json.loads(row["choice"])["master"] in members[1]
    run(at.selectbox(key=f"survive_field:{item_id}").set_value("city"))
    run(keyed(at.radio, f"survive_value:{item_id}:city:").set_value(1))
    run(at.button(key="btn_survive").click())
    merge = review.item_detail(store, item_id)["merge_item_id"]
    [value] = decisions(store, merge)
    assert json.loads(value["choice"])["fields"] == {"city": "Paris"}


def test_split_a_cluster(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    moved = at.multiselect(key=f"split_pick:{item_id}").options[0]
    run(at.multiselect(key=f"split_pick:{item_id}").select(moved))
    run(at.button(key="btn_split").click())
    [row] = decisions(store, item_id)
    assert (row["kind"], row["label"]) == ("split", "non_match")
    groups = json.loads(row["choice"])["groups"]
    assert len(groups) == 2 and any(
        [m["record_id"] for m in g] == [moved.split(" (")[-1].rstrip(")")]
        or any(m["record_id"] in moved for m in g)
        for g in groups
    )


def test_bulk_approve_a_tier_with_count_and_confirmation(store: sqlite_utils.Database) -> None:
    expected = review.count_bulk(store, tier="auto")
    assert expected > 0
    at = start()
    run(at.radio(key="bulk_scope").set_value("tier"))
    run(at.selectbox(key="bulk_tier").set_value("auto"))
    run(at.button(key="btn_bulk_count").click())
    assert any(f"**{expected}**" in w.value for w in at.warning)
    # what the count is made of, per kind and object: a tier ignores the sidebar's filters
    parts = review.bulk_preview(store, tier="auto").parts
    assert sum(n for _k, _o, n in parts) == expected
    shown = next(w.value for w in at.warning if f"**{expected}**" in w.value)
    assert all(
        f"{n:,} {'links' if k == 'link' else 'clusters'} of {o}" in shown for k, o, n in parts
    )
    assert at.button(key="btn_bulk_apply").disabled  # not before the confirmation
    assert decisions(store) == []
    run(at.checkbox(key="bulk_confirm").check())
    run(at.button(key="btn_bulk_apply").click())
    rows = decisions(store)
    assert len(rows) == expected and {r["label"] for r in rows} == {"match"}
    assert {r["reviewer"] for r in rows} == {"ana@example.com"}
    assert f"Approved {expected} items" in texts(at)


def test_bulk_approve_the_current_filter(store: sqlite_utils.Database) -> None:
    filt = review.QueueFilter(objects=("contacts",), kinds=("link",))
    expected = review.count_bulk(store, filt)
    at = start(f_objects=["contacts"], f_kinds=["link"])
    run(at.button(key="btn_bulk_count").click())
    run(at.checkbox(key="bulk_confirm").check())
    run(at.button(key="btn_bulk_apply").click())
    rows = decisions(store)
    assert len(rows) == expected and {r["object"] for r in rows} == {"contacts"}


def test_undo_the_last_decision(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["link"], f_status="all")
    item_id = at.session_state["item"]
    run(at.button(key="btn_defer").click())
    run(at.selectbox(key="item").set_value(item_id))
    run(at.button(key="btn_approve").click())
    assert [r["label"] for r in decisions(store, item_id)] == ["match"]
    run(at.button(key="btn_undo").click())
    assert [r["label"] for r in decisions(store, item_id)] == ["unsure"]
    undone = store.execute(
        "select note, superseded from decisions where label = 'match'"
    ).fetchone()
    assert undone == ("[undone]", 1)
    assert "Undone" in texts(at) and "applied already" not in texts(at)


def test_undoing_a_decision_whose_write_was_applied_says_the_crm_keeps_it(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_kinds=["link"])
    item_id = at.session_state["item"]
    run(at.button(key="btn_approve").click())
    store["journal"].insert(
        {"run_id": "apply-1", "item_id": item_id, "plan_run_id": "plan-1", "state": "confirmed",
         "updated_at": now_iso()}
    )  # fmt: skip  # as if an apply had written an item this link decides
    run(at.button(key="btn_undo").click())
    assert "applied already: the CRM keeps what was written" in texts(at)
    assert at.session_state["item"] == item_id


def test_an_item_kept_open_after_an_undo_is_let_go_when_the_filter_changes(
    store: sqlite_utils.Database,
) -> None:
    """After an undo the undone item stayed open under any filter, so the keys decided an
    item the table did not show."""
    at = start(f_kinds=["link"])
    item_id = at.session_state["item"]
    run(at.button(key="btn_approve").click())
    run(at.button(key="btn_undo").click())
    assert at.session_state["pinned"] == item_id
    run(at.multiselect(key="f_kinds").set_value(["duplicate"]))
    assert "pinned" not in at.session_state
    assert at.session_state["item"] != item_id


def test_a_reviewer_conflict_is_shown_and_nothing_is_overwritten(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_kinds=["link"])
    item_id = at.session_state["item"]
    review.decide(
        store, item_id, "reject", reviewer="ben@example.com", based_on_version=0
    )  # another session
    run(at.button(key="btn_approve").click())
    assert "Reviewer conflict" in texts(at) and "ben@example" in texts(at)
    assert [(r["reviewer"], r["label"]) for r in decisions(store, item_id)] == [
        ("ben@example.com", "non_match")
    ]


def test_deciding_again_after_a_conflict_goes_on_where_the_queue_was(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_kinds=["link"])
    items = [it["item_id"] for it in review.queue(store, review.QueueFilter(kinds=("link",))).items]
    second, third = items[1], items[2]
    run(at.selectbox(key="item").set_value(second))
    review.decide(store, second, "reject", reviewer="ben@example.com", based_on_version=0)
    run(at.button(key="btn_approve").click())
    assert "Reviewer conflict" in texts(at) and at.session_state["item"] == second
    run(at.button(key="btn_approve").click())  # decided again, knowingly
    assert at.session_state["item"] == third


def test_sign_in_names_the_reviewer(
    store: sqlite_utils.Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "plain.toml"
    cfg.write_text(f'[store]\npath = "{tmp_path / "recon.db"}"\n', encoding="utf-8")
    monkeypatch.setenv("RECON_CONFIG", str(cfg))
    at = start(f_kinds=["link"])
    assert any("Sign in" in w.value for w in at.warning)
    item_id = at.session_state["item"]
    run(at.button(key="btn_approve").click())
    assert decisions(store) == [] and "sign in" in texts(at)
    run(at.text_input(key="reviewer").input("sue@example.com"))
    run(at.button(key="btn_approve").click())
    assert [r["reviewer"] for r in decisions(store, item_id)] == ["sue@example.com"]


def test_filters_and_paging(store: sqlite_utils.Database) -> None:
    at = start()
    total = review.queue(store).total
    assert any(f"{total:,} items" in m.value for m in at.markdown)
    run(at.number_input(key="page").set_value(2))
    second = review.queue(store, page=1, page_size=10).items
    assert at.session_state["item"] == second[0]["item_id"]
    run(at.text_input(key="f_text").input("smith1"))
    assert at.session_state["page"] == 1
    assert "smith1" in review.item_detail(store, at.session_state["item"])["item"]["search"]


@pytest.mark.parametrize("tab", ["Plan", "Apply", "Audit", "Charts"])
def test_other_tabs_render(store: sqlite_utils.Database, tab: str) -> None:
    for item, action in zip(
        review.queue(store, review.QueueFilter(kinds=("link",))).items,
        ("approve", "reject"),
        strict=False,
    ):
        review.decide(store, item["item_id"], action, reviewer="ana", based_on_version=0)
    if tab == "Charts":  # a threshold with five decimals (".4g" showed 0.99995 as "1")
        store.execute(
            "update match_runs set settings = json_set(coalesce(settings, '{}'), "
            "'$.thresholds.auto', 0.99995, '$.thresholds.duplicate_auto', 0.99995)"
        )
    at = start(tab=tab)
    assert not at.error, [e.value for e in at.error]
    if tab == "Plan":
        assert any("dry run" in m.value for m in at.markdown)
        assert at.selectbox(key="plan_action").options[0] == "all"
        plan_run = review.ensure_queue(store)["plan_run_id"]
        shown = at.dataframe[-1].value
        assert len(shown) > 0
        assert list(shown["item_id"]) == [
            r["item_id"] for r in review.plan_page(store, plan_run, size=200)
        ]
        action = at.selectbox(key="plan_action").options[1]
        run(at.selectbox(key="plan_action").select(action))
        assert set(at.dataframe[-1].value["action"]) == {action}
        run(at.button(key="btn_plan_approved").click())
        mark, count = at.session_state["plan_approved"][plan_run]
        assert count == 0 and mark == review.approvals_state(store)
        shown_count = next(m for m in at.metric if m.label == "Approved to apply")
        assert shown_count.value == "0"
        # a decision since the count: the figure is no longer shown as current
        link = review.queue(store, review.QueueFilter(kinds=("link",))).items[0]
        review.decide(store, link["item_id"], "approve", reviewer="ana", based_on_version=0)
        run(at)
        assert next(m for m in at.metric if m.label == "Approved to apply").value == "—"
    if tab == "Charts":
        charts = at.get("vega_lite_chart")
        assert len(charts) == 4
        # the threshold rules say the thresholds as set (a 0.99995 read "1" at four digits)
        match_run = review.ensure_queue(store)["match_run_id"]
        kind, obj = at.session_state["chart_kind"], at.session_state["chart_object"]
        th = review.thresholds(store, match_run)[obj][kind]
        import pyarrow as pa

        spec = json.dumps(json.loads(charts[0].proto.spec), ensure_ascii=False) + " ".join(
            json.dumps(pa.ipc.open_stream(d.data.data).read_all().to_pylist(), ensure_ascii=False)
            for d in charts[0].proto.datasets
        )
        said = [f"{k} ≥ {review.format_threshold(v)}" for k, v in th.items()]
        assert "auto ≥ 0.99995" in said
        assert said and all(f'"{s}"' in spec for s in said), (said, spec[:2000])


def test_plan_tab_approves_creates_with_count_and_confirmation(
    store: sqlite_utils.Database,
) -> None:
    at = start(tab="Plan")
    run(at.selectbox(key="creates_system").set_value("salesforce"))
    run(at.button(key="btn_creates_count").click())
    assert any("**4**" in w.value for w in at.warning)
    assert at.button(key="btn_creates_apply").disabled
    run(at.checkbox(key="creates_confirm").check())
    run(at.button(key="btn_creates_apply").click())
    rows = decisions(store)
    assert len(rows) == 4 and {(r["kind"], r["label"], r["reviewer"]) for r in rows} == {
        ("plan", "approve", "ana@example.com")
    }
    assert "Approved 4 creates" in texts(at)


def test_another_selection_in_the_plan_tab_drops_the_count(store: sqlite_utils.Database) -> None:
    """The box never approves a set it no longer shows: changing where (or which) asks for a
    new count first."""
    at = start(tab="Plan")
    run(at.selectbox(key="creates_system").set_value("salesforce"))
    run(at.button(key="btn_creates_count").click())
    assert [b for b in at.button if b.key == "btn_creates_apply"]
    run(at.selectbox(key="creates_system").set_value("hubspot"))
    assert not [b for b in at.button if b.key == "btn_creates_apply"]
    assert not decisions(store)


def finished(at: AppTest, seconds: float = 30.0) -> AppTest:
    """Rerun the page until the apply the app runs in its own thread has ended."""
    from recon.app import tabs

    deadline = time.monotonic() + seconds
    while tabs._JOB is not None and tabs._JOB.running and time.monotonic() < deadline:
        time.sleep(0.05)
    return run(at)


def test_apply_tab_shows_the_lock_holder_and_waits(store: sqlite_utils.Database) -> None:
    lock = acquire(store, holder="recon run (cron)")
    try:
        at = start(tab="Apply")
        # named in words, as the CLI names it (markdown-escaped: a host name is data)
        assert any(
            w.value.startswith("The store is locked by recon run \\(cron\\) \\(pid ")
            for w in at.warning
        ), [w.value for w in at.warning]
        run(at.checkbox(key="apply_confirm").check())
        assert at.button(key="btn_apply").disabled
    finally:
        release(lock)


def test_apply_tab_starts_a_dry_run_under_the_store_lock(
    store: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = pytest.importorskip("recon.apply")
    real, holders = apply.apply_plan, []

    def recording(db: sqlite_utils.Database, *args: Any, **kwargs: Any) -> Any:
        holders.append(lock_info(db)["holder"])
        return real(db, *args, **kwargs)

    monkeypatch.setattr(apply, "apply_plan", recording)
    at = start(tab="Apply")
    run(at.checkbox(key="apply_confirm").check())
    run(at.button(key="btn_apply").click())
    finished(at)
    assert "summary" in at.session_state["apply_result"], at.session_state["apply_result"]
    runs = [dict(r) for r in store.query("select stage, status from runs where stage = 'apply'")]
    assert runs == [{"stage": "apply", "status": "ok"}]
    assert store.execute("select count(*) from locks where holder is not null").fetchone()[0] == 0
    assert at.checkbox(key="apply_confirm").value is False
    assert holders == ["review app (ana@example.com)"]
    # a dry run wrote nothing: its figure says what it would apply, and the calls it would send
    labels = [m.label for m in at.metric]
    assert "Would apply" in labels and "Applied" not in labels
    assert any("Write calls it would send" in c.value for c in at.caption)


def test_an_apply_goes_on_when_the_page_moves_and_a_stopped_one_can_be_finished(
    store: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's apply runs in a thread of its own: a click elsewhere (a rerun of the page)
    does not stop it, a second start waits for it, and an apply that stopped before its end
    (the server was killed) is offered to be finished."""
    apply = pytest.importorskip("recon.apply")
    import threading

    from recon.models import sleep_noted

    gate, waits, seen = threading.Event(), threading.Event(), []

    def slow(db: sqlite_utils.Database, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("resume"))
        kwargs["progress"](1, 4)
        if not kwargs.get("resume"):
            waits.set()
            sleep_noted(1.5, "HubSpot's rate limit")  # a long wait shows as a wait, not a hang
        gate.wait(20)
        return apply.ApplyResult(
            run_id="apply-x", plan_run_id=None, dry_run=True, items=4, applied=4
        )

    monkeypatch.setattr(apply, "apply_plan", slow)
    at = start(tab="Apply")
    run(at.checkbox(key="apply_confirm").check())
    run(at.button(key="btn_apply").click())
    assert waits.wait(20)
    at.session_state["tab"] = "Queue"  # the analyst looks elsewhere: the page runs again
    run(at)
    at.session_state["tab"] = "Apply"
    run(at)
    texts = [p.text or "" for p in at.get("progress")]
    assert any("1 of 4 items" in t for t in texts), "progress shown"
    assert any("waiting for HubSpot's rate limit" in t for t in texts), texts
    assert at.button(key="btn_apply").disabled  # one apply at a time
    gate.set()
    finished(at)
    assert at.session_state["apply_result"]["summary"]["applied"] == 4
    # an apply run left unfinished (its process died) is offered to be finished here
    from recon.store import start_run

    stopped = start_run(store, "apply", config={"plan_run_id": "plan-old", "dry_run": False})
    # ... and the lock its dead process left on this host holds nobody back
    store.execute(
        "insert into locks (name, holder, pid, host, run_id, started_at, heartbeat_at) "
        "values ('store', 'review app (old)', 999999, ?, null, ?, ?)",
        [socket.gethostname(), now_iso(), now_iso()],
    )
    run(at)
    assert any("stopped before its end" in w.value for w in at.warning)
    assert not any("is locked by" in w.value for w in at.warning)
    # a live holder is named in words: the command, its run and stage, process and time
    store.execute(
        "update locks set holder = 'recon run', pid = ?, run_id = 'run-x' where name = 'store'",
        [os.getpid()],
    )
    run(at)
    locked = [w.value for w in at.warning if "is locked by" in w.value]
    assert locked and "recon run \\(run run\\-x, pid" in locked[0], locked
    assert " UTC\\): an apply cannot start until it ends" in locked[0]
    store.execute("update locks set pid = 999999 where name = 'store'")
    run(at)
    assert at.button(key="btn_apply_resume").disabled  # real writes: confirmed first
    run(at.checkbox(key=f"resume_confirm:{stopped}").check())
    run(at.button(key="btn_apply_resume").click())
    finished(at)
    assert seen == [False, True]
    # a session opened later sees the app's last apply
    later = start(tab="Apply")
    assert [m.label for m in later.metric][:2] == ["Items", "Would apply"]


def test_audit_tab_offers_every_export_format(store: sqlite_utils.Database) -> None:
    audit = pytest.importorskip("recon.audit")
    at = start(tab="Audit")
    run(at.button(key="btn_exports").click())
    labels = [b.label for b in at.get("download_button")]
    assert len(labels) == len(audit.FORMATS) and all("rows" in label for label in labels)


def test_audit_exports_belong_to_the_run_they_were_prepared_for(
    store: sqlite_utils.Database,
) -> None:
    from recon.store import finish_run, start_run

    apply_run = start_run(store, "apply")
    finish_run(store, apply_run)
    at = start(tab="Audit")
    run(at.button(key="btn_exports").click())  # every run's changes
    assert at.get("download_button")
    run(at.selectbox(key="audit_run").select(apply_run))
    assert not at.get("download_button")  # the files of "all" are not offered as this run's


def _stale_write(db: sqlite_utils.Database, merge: bool = False) -> str:
    """A plan item the last apply refused as stale (journal row as apply writes it); its queue id.

    ``merge``: a merge of record 8 into 7, stale because 8 was edited since review."""
    from recon.models import canonical_json, now_iso
    from recon.review_queue import _latest_run
    from recon.review_stale import stale_id

    plan = _latest_run(db, "plan")
    assert plan
    both = {
        "snapshot_modified_at": "2026-01-01T00:00:00Z",
        "current_modified_at": "2026-01-02T09:30:00Z",
        "planned_before": "+1 555 0100",
        "planned_after": "+1 555 0199",
        "current": {"phone": "+1 555 0142"},
        "apply_run_id": "apply-1",
    }
    item = {
        "item_id": "upd-phone", "action": "update", "system": "hubspot", "object": "companies",
        "record_id": "7", "field": "phone", "before": "+1 555 0100", "after": "+1 555 0199",
        "snapshot": both["snapshot_modified_at"], "payload": {}, "seq": 1,
    }  # fmt: skip
    if merge:
        both["changed_members"] = {
            "8": {"reviewed": "2026-01-01T00:00:00Z", "now": "2026-01-03T10:00:00Z"}
        }
        item.update(action="merge", field=None, payload={"master": "7", "victims": ["8"]})
    db["journal"].insert(
        {
            "run_id": "apply-1",
            "item_id": "upd-phone",
            "plan_run_id": plan,
            "state": "stale",
            "attempts": 1,
            "error_class": "stale",
            "error": canonical_json(both),
            "updated_at": now_iso(),
            "item": canonical_json(item),
        }
    )
    db.execute("delete from review_state")  # indexed again on the next read
    return stale_id(plan, "upd-phone", both)


def test_approve_a_stale_write_against_the_new_version(store: sqlite_utils.Database) -> None:
    stale = _stale_write(store)
    at = start(f_kinds=["stale"])
    assert at.session_state["item"] == stale
    [versions] = [d for d in at.dataframe if "Plan writes" in d.value.columns]
    assert versions.value.loc["phone"].tolist() == ["+1 555 0100", "+1 555 0142", "+1 555 0199"]
    assert "changed this record after review" in texts(at)
    run(at.button(key="btn_approve").click())
    [row] = decisions(store, stale)
    choice = json.loads(row["choice"])
    assert (row["kind"], row["label"], row["reviewer"]) == ("plan", "approve", "ana@example.com")
    assert choice == {
        "apply_run_id": "apply-1",
        "modified_at": "2026-01-02T09:30:00Z",
        "stale_of": "upd-phone",
    }


def test_a_stale_merge_names_the_member_that_changed(store: sqlite_utils.Database) -> None:
    """A merge refused for a victim's edit showed its master's time only."""
    _stale_write(store, merge=True)
    at = start(f_kinds=["stale"])
    said = " ".join(texts(at).split())
    assert "records of this merge changed after review: not merged." in said
    assert "`8` reviewed as of 2026-01-01T00:00:00Z · now 2026-01-03T10:00:00Z" in said.replace(
        "\\", ""
    )


def test_a_conflict_pick_does_not_carry_over_to_the_next_item(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_kinds=["conflict"])
    first = at.session_state["item"]
    run(keyed(at.radio, f"value_pick:{first}:").set_value(1))
    run(at.button(key="btn_next").click())
    second = at.session_state["item"]
    assert second != first
    # its own default, not the last pick
    assert keyed(at.radio, f"value_pick:{second}:").value == 0


def test_a_conflict_value_that_writes_nothing_cannot_be_kept(
    store: sqlite_utils.Database,
) -> None:
    item_id = review.queue(store, review.QueueFilter(kinds=("conflict",))).items[0]["item_id"]
    row = store.execute("select payload from plan_items where item_id = ?", [item_id]).fetchone()
    payload = json.loads(row[0])
    payload["hubspot"]["as_salesforce"] = None  # e.g. an option Salesforce does not have
    store.execute(
        "update plan_items set payload = ? where item_id = ?", [json.dumps(payload), item_id]
    )
    at = start(f_kinds=["conflict"], item=item_id)
    run(keyed(at.radio, f"value_pick:{item_id}:").set_value(0))
    assert at.button(key="btn_value").disabled
    assert "writes nothing" in texts(at)
    run(keyed(at.radio, f"value_pick:{item_id}:").set_value(1))
    assert not at.button(key="btn_value").disabled


def test_the_master_picker_opens_on_the_plans_master(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    detail = review.item_detail(store, item_id)
    master = detail["master"]
    assert master is not None and master["by"] == "plan"
    picked = keyed(at.selectbox, f"master_pick:{item_id}:").value
    assert picked.split("|", 1)[1] == master["record_id"]


def test_a_master_choice_leaves_the_cluster_undecided(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    run(keyed(at.selectbox, f"master_pick:{item_id}:").select_index(1))
    run(at.button(key="btn_master").click())
    at.session_state["item"] = item_id
    run(at)
    assert any("Not decided yet" in i.value for i in at.info)


def test_a_conflict_of_a_rejected_link_says_so_and_takes_no_decision(
    store: sqlite_utils.Database,
) -> None:
    """Rejecting a link answers its conflicts: they leave the undecided count (before the next
    plan drops them), and under Decided they show why their buttons are disabled."""
    conflicts = review.queue(store, review.QueueFilter(kinds=("conflict",))).total
    conflict = review.queue(store, review.QueueFilter(kinds=("conflict",))).items[0]
    link = review.item_detail(store, conflict["item_id"])["plan"]["link_item_id"]
    review.decide(store, link, "reject", reviewer="ana@example.com", based_on_version=0)
    at = start(f_kinds=["conflict"])
    assert any(f"{conflicts - 1:,} items · undecided" in m.value for m in at.markdown)
    assert conflict["item_id"] not in at.selectbox(key="item").options
    at = start(f_kinds=["conflict"], f_status="decided", item=conflict["item_id"])
    assert at.session_state["item"] == conflict["item_id"]
    assert "Its link was rejected (by ana@example.com)" in _plain(at)
    assert "Not decided yet" not in texts(at)
    [table] = [d for d in at.dataframe if "Decision" in d.value.columns]
    assert list(table.value["Decision"]) == ["link rejected"]
    for key in ("btn_value", "btn_reject", "btn_defer"):
        assert at.button(key=key).disabled, key
        assert "Nothing to decide" in (at.button(key=key).help or "")


def test_a_cleared_reviewer_field_signs_nobody_in(store: sqlite_utils.Database) -> None:
    at = start()
    item_id = at.session_state["item"]
    run(at.text_input(key="reviewer").set_value(""))
    assert any("Sign in" in w.value for w in at.warning)
    run(at.button(key="btn_defer").click())
    assert decisions(store, item_id) == []  # not recorded under the configured reviewer
    assert "no reviewer" in texts(at)


def test_a_contested_item_stays_open_after_a_reviewer_conflict(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_kinds=["link"])
    item_id = at.session_state["item"]
    # someone else decides it meanwhile: it leaves the undecided filter
    review.decide(store, item_id, "approve", reviewer="ben", based_on_version=0)
    run(at.button(key="btn_reject").click())
    assert "Reviewer conflict" in texts(at)
    assert at.session_state["item"] == item_id
    run(at)  # and on the next rerun, too
    assert at.session_state["item"] == item_id
    assert [(r["reviewer"], r["label"]) for r in decisions(store, item_id)] == [("ben", "match")]


def test_j_and_k_cross_page_edges_and_a_decision_at_the_end_moves_on(
    store: sqlite_utils.Database,
) -> None:
    first_two = review.queue(store, page_size=20).items
    at = start()
    last = first_two[9]["item_id"]  # page size 10
    at.session_state["item"] = last
    run(at)
    run(at.button(key="btn_next").click())  # J past the page's end: the next page's first
    assert (at.session_state["page"], at.session_state["item"]) == (2, first_two[10]["item_id"])
    run(at.button(key="btn_prev").click())  # K back: the previous page's last
    assert (at.session_state["page"], at.session_state["item"]) == (1, last)
    # deferred, it waits behind the unanswered items: as after a decision, the item after it
    # takes its place at the page's end (not the same item again: a second press saved it twice)
    run(at.button(key="btn_defer").click())
    assert (at.session_state["page"], at.session_state["item"]) == (1, first_two[10]["item_id"])
    run(at.button(key="btn_reject").click())  # decided: the item after it takes its place
    assert (at.session_state["page"], at.session_state["item"]) == (1, first_two[11]["item_id"])
    # in a view the deferred item stays in (All), the next page's first opens
    everything = review.queue(store, review.QueueFilter(status="all"), page_size=20).items
    at = start(f_status="all", item=everything[9]["item_id"])
    run(at.button(key="btn_defer").click())
    assert (at.session_state["page"], at.session_state["item"]) == (2, everything[10]["item_id"])


def test_master_and_surviving_value_can_be_saved_twice(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    for _ in range(2):  # the labels never change under the widget: no stale choice
        run(at.button(key="btn_master").click())
        at.session_state["item"] = item_id
        run(at)
    run(at.selectbox(key=f"survive_field:{item_id}").set_value("city"))
    run(keyed(at.radio, f"survive_value:{item_id}:city:").set_value(1))
    for _ in range(2):
        run(at.button(key="btn_survive").click())
        at.session_state["item"] = item_id
        run(at)
    merge = review.item_detail(store, item_id)["merge_item_id"]
    assert decisions(store, merge)  # the value was saved, and saving it again did not break


def test_a_decided_conflict_reopens_on_the_value_kept(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["conflict"])
    item_id = at.session_state["item"]
    run(keyed(at.radio, f"value_pick:{item_id}:").set_value(1))
    run(at.button(key="btn_value").click())
    at = start(f_kinds=["conflict"], f_status="all", item=item_id)
    assert keyed(at.radio, f"value_pick:{item_id}:").value == 1  # not back on the proposal


def test_the_place_in_the_queue_survives_a_visit_to_another_tab(
    store: sqlite_utils.Database,
) -> None:
    at = start()
    run(at.number_input(key="page").set_value(2))
    run(at.button(key="btn_next").click())
    place = (at.session_state["page"], at.session_state["item"])
    # another tab drawn alone: the queue's widgets are not drawn, their state is dropped
    at.session_state["tab"] = "Audit"
    run(at)
    at.session_state["tab"] = "Queue"
    run(at)
    assert (at.session_state["page"], at.session_state["item"]) == place


def test_another_bulk_scope_or_tier_drops_the_count_made_for_the_former(
    store: sqlite_utils.Database,
) -> None:
    at = start(f_objects=["contacts"], f_kinds=["link"])
    run(at.button(key="btn_bulk_count").click())
    assert at.session_state["bulk"]
    run(at.radio(key="bulk_scope").set_value("tier"))
    assert "bulk" not in at.session_state
    assert not [b for b in at.button if b.key == "btn_bulk_apply"]
    run(at.button(key="btn_bulk_count").click())
    assert at.session_state["bulk"]["tier"] == "auto"
    run(at.selectbox(key="bulk_tier").set_value("review"))
    assert "bulk" not in at.session_state


def test_undo_opens_the_undone_item_even_from_another_page(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["link"], f_status="all", page=2)
    item_id = at.session_state["item"]
    run(at.button(key="btn_approve").click())
    run(at.number_input(key="page").set_value(1))
    assert at.session_state["item"] != item_id
    run(at.button(key="btn_undo").click())
    assert at.session_state["item"] == item_id
    assert not [r for r in decisions(store, item_id) if r["label"] == "match"]


def test_the_explanation_shows_the_weight_before_the_long_meaning(
    store: sqlite_utils.Database,
) -> None:
    """The weight column sat behind the long meaning column, off-screen beside the action
    panel: it comes before the meaning, narrow, and the meaning is last."""
    at = start(f_kinds=["link"])
    [table] = [d for d in at.dataframe if "meaning" in d.value.columns]
    assert list(table.value.columns) == ["comparison", "level", "weight", "meaning"]
    config = json.loads(table.proto.columns)
    assert config["weight"]["type_config"] == {"type": "number", "format": "%+.2f"}
    assert isinstance(config["weight"]["width"], int) and config["weight"]["width"] <= 100
    assert config["meaning"]["width"] == "large"


def test_scores_read_alike_everywhere(store: sqlite_utils.Database) -> None:
    """0.99 showed as 0.99 in the item picker and 0.990 in the table and the explanation."""
    first = review.queue(store, review.QueueFilter(kinds=("link",))).items[0]
    item = first["item_id"]
    store.execute("update pairs set score = 0.99 where pair_id = ?", [item])
    store.execute("delete from review_state")  # indexed again with the new score
    at = start(f_kinds=["link"], item=item)
    assert at.session_state["item"] == item
    [label] = [o for o in at.selectbox(key="item").options if o.endswith(" · " + first["title"])]
    assert " · 0.990 · " in label
    assert any(m.value.startswith("**Score 0.990**") for m in at.markdown)
    [table] = [d for d in at.dataframe if "Score" in d.value.columns]
    assert json.loads(table.proto.columns)["Score"]["type_config"]["format"] == review.SCORE_FORMAT
    at = start(f_kinds=["duplicate"])
    cluster = review.item_detail(store, at.session_state["item"])
    weakest = review.format_score(cluster["item"]["score"])
    assert any(f"weakest link {weakest}" in m.value for m in at.markdown)
    [pairs] = [d for d in at.dataframe if "pair" in d.value.columns]
    assert json.loads(pairs.proto.columns)["score"]["type_config"]["format"] == (
        review.SCORE_FORMAT
    )


def test_setting_the_master_a_cluster_has_records_nothing(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    item_id = at.session_state["item"]
    picker = keyed(at.selectbox, f"master_pick:{item_id}:")
    now = picker.format_func(picker.value)
    run(at.button(key="btn_master").click())  # the plan's master, untouched
    assert decisions(store, item_id) == []
    assert f"Master unchanged: {now}" in _plain(at)
    at.session_state["item"] = item_id
    run(at)
    run(keyed(at.selectbox, f"master_pick:{item_id}:").select_index(1))
    run(at.button(key="btn_master").click())
    assert [(r["kind"], r["version"]) for r in decisions(store, item_id)] == [("master", 1)]
    at.session_state["item"] = item_id
    run(at)
    run(at.button(key="btn_master").click())  # the reviewer's own master again
    assert [(r["kind"], r["version"]) for r in decisions(store, item_id)] == [("master", 1)]
    assert "Master unchanged" in texts(at)


def test_messages_name_the_records_not_internal_ids(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["duplicate"])
    cluster = at.session_state["item"]
    title = review.item_title(store, cluster)
    assert title
    records = review.item_detail(store, cluster)["records"]
    other = next(
        r
        for r in records
        if r["record_id"] != review.item_detail(store, cluster)["master"]["record_id"]
    )
    run(
        keyed(at.selectbox, f"master_pick:{cluster}:").set_value(
            f"{other['source']}|{other['record_id']}"
        )
    )
    run(at.button(key="btn_master").click())
    shown = _plain(at)
    assert f"on {title} (master: {other['name']} ({other['record_id']}))" in shown, shown
    assert cluster not in shown
    at.session_state["item"] = cluster
    run(at)
    run(at.selectbox(key=f"survive_field:{cluster}").set_value("city"))
    run(keyed(at.radio, f"survive_value:{cluster}:city:").set_value(1))
    run(at.button(key="btn_survive").click())
    shown = _plain(at)
    merge = review.item_detail(store, cluster)["merge_item_id"]
    assert f"on {title} (city = " in shown and cluster not in shown and merge not in shown
    run(at.button(key="btn_undo").click())  # the value, decided on the merge's plan item
    shown = _plain(at)
    assert f"Undone: conflict_value 'approve' on city of {title}" in shown, shown
    assert merge not in shown
    at.session_state["item"] = cluster
    run(at)
    moved = at.multiselect(key=f"split_pick:{cluster}").options[0]
    run(at.multiselect(key=f"split_pick:{cluster}").select(moved))
    run(at.button(key="btn_split").click())
    shown = _plain(at)
    assert f"on {title} ({moved} moved out" in shown and cluster not in shown, shown


def test_undo_names_an_older_decision_by_its_records_after_its_item_left_the_queue(
    store: sqlite_utils.Database,
) -> None:
    older, newer = review.queue(store, review.QueueFilter(kinds=("link",))).items[:2]
    at = start(f_kinds=["link"], item=older["item_id"])
    run(at.button(key="btn_approve").click())
    run(at.selectbox(key="item").set_value(newer["item_id"]))
    run(at.button(key="btn_reject").click())
    # a new match run no longer proposes the older pair: its item leaves the queue
    store.execute(
        "insert into runs (run_id, stage, status, started_at) "
        "values ('match-2', 'match', 'ok', '2027-01-01T00:00:00Z')"
    )
    store.execute(
        "insert into pairs select 'match-2', pair_id, kind, object, source_l, object_l, "
        "record_id_l, source_r, object_r, record_id_r, score, match_weight, tier, explanation, "
        "cluster_id, flags from pairs where run_id != 'match-2' and pair_id != ?",
        [older["item_id"]],
    )
    run(at.button(key="btn_undo").click())
    assert f"Undone: link 'non_match' on {newer['title']}" in _plain(at)
    run(at.button(key="btn_undo").click())
    shown = _plain(at)
    assert review.item_title(store, older["item_id"]) is None
    assert f"Undone: link 'match' on {older['title']} (decided " in shown, shown
    assert older["item_id"] not in shown


def test_undoing_a_value_chosen_for_a_merge_reopens_its_cluster(
    store: sqlite_utils.Database,
) -> None:
    """A value chosen in a cluster's detail is decided on the merge's plan item, which the
    queue does not hold: undo opened the first item instead of the cluster."""
    first, *_, cluster = [
        it["item_id"]
        for it in review.queue(store, review.QueueFilter(kinds=("duplicate",), status="all")).items
    ]
    at = start(f_kinds=["duplicate"], f_status="all", item=cluster)
    run(at.selectbox(key=f"survive_field:{cluster}").set_value("city"))
    run(keyed(at.radio, f"survive_value:{cluster}:city:").set_value(1))
    run(at.button(key="btn_survive").click())
    merge = review.item_detail(store, cluster)["merge_item_id"]
    assert decisions(store, merge)
    run(at.selectbox(key="item").set_value(first))  # the reviewer moved on
    run(at.button(key="btn_undo").click())
    assert not decisions(store, merge)
    assert at.session_state["item"] == cluster
    assert at.session_state["pinned"] == cluster
    assert f"survive_field:{cluster}" in at.session_state  # the cluster's detail is open


def test_a_deferred_item_waits_behind_the_unanswered_ones(store: sqlite_utils.Database) -> None:
    at = start(f_kinds=["link"])
    deferred = at.session_state["item"]
    run(at.button(key="btn_defer").click())
    assert at.session_state["item"] != deferred
    at = start(f_kinds=["link"])  # a new session: the queue's first item is not the deferred one
    assert at.session_state["item"] != deferred
    run(at.number_input(key="page").set_value(at.number_input(key="page").max))
    table = at.dataframe[0].value
    assert list(table["Decision"])[-1] == "unsure"  # at the end of the Undecided queue


@contextlib.contextmanager
def writing(db: sqlite_utils.Database, holder: str, run_id: str | None = None) -> Iterator[None]:
    """Another process as ``holder`` holds the store lock and is inside a write transaction
    (a plan storing its items, an apply its journal), for the ``with`` block."""
    lock = acquire(db, holder=holder, run_id=run_id)
    writer = open_store(db.execute("pragma database_list").fetchone()[2])
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        release(lock)


def test_a_busy_store_says_at_once_who_holds_it_and_the_page_retries(
    store: sqlite_utils.Database,
) -> None:
    """The queue of a new run must be indexed while a run writes: the page stayed grey for
    30 s, then said only that the store was busy."""
    store["runs"].insert_all(
        [
            {"run_id": "run-9", "stage": "run", "status": "running", "started_at": now_iso()},
            {"run_id": "plan-9", "parent_id": "run-9", "stage": "plan", "status": "running",
             "started_at": now_iso()},
        ]
    )  # fmt: skip
    with writing(store, "recon run", "run-9"):
        started = time.monotonic()
        at = start()
        assert time.monotonic() - started < 15
        shown = _plain(at)
        assert f"recon run (stage plan, run run-9, pid {os.getpid()} on" in shown, shown
        assert "Decisions can be made once it is released" in shown
    run(at.button(key="btn_retry").click())
    assert at.session_state["item"] == review.queue(store, page_size=1).items[0]["item_id"]


def test_a_decision_the_busy_store_cannot_take_says_it_was_not_saved(
    store: sqlite_utils.Database,
) -> None:
    """A decision made while another process wrote waited 30 s, then said the store was
    busy, not that the decision was lost nor who held the store."""
    at = start(f_kinds=["link"])
    item_id, title = at.session_state["item"], review.item_title(store, at.session_state["item"])
    with writing(store, "apply"):  # `recon apply` writing its journal
        started = time.monotonic()
        run(at.button(key="btn_approve").click())
        assert time.monotonic() - started < 15
        shown = _plain(at)
        assert f"Not saved: {title}: the store is busy: recon apply (pid" in shown, shown
        assert not decisions(store, item_id)
        assert at.session_state["item"] == item_id  # kept open, to decide again
        run(at.button(key="btn_undo").click())
        assert "Nothing undone: the store is busy: recon apply (pid" in _plain(at)
    run(at.button(key="btn_approve").click())
    assert [r["label"] for r in decisions(store, item_id)] == ["match"]


def test_a_first_search_while_the_store_is_busy_says_so(store: sqlite_utils.Database) -> None:
    """Search fills the names it searches once per queue (a write): it waited 30 s, then
    broke the page with a traceback."""
    review.ensure_queue(store)
    with writing(store, "match"):
        at = start(f_text="smith")
        assert "Search cannot index names yet" in _plain(at)
        assert "recon match (pid" in _plain(at)
    at = start(f_text="smith")
    assert at.session_state["item"]
