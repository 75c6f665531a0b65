"""The Plan, Apply, Audit and Charts tabs: thin views over the store, recon.apply and recon.audit.

Apply and audit exports are called lazily; while a stage is not installed the
tab says so instead of failing.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from .. import review
from ..errors import ReconError
from ..lock import describe_holder, live_lock_info, store_lock
from ..models import waiting
from .detail_view import md
from .entry import Session, plural, reviewer, session

PLAN_PAGE = 200
_APPLY_GUARD = threading.Lock()


# --------------------------------------------------------------------------- plan


def plan_tab(ses: Session, state: dict[str, Any]) -> None:
    """What apply would write: the latest plan's items, counted and paged (a dry run)."""
    run = state["plan_run_id"]
    if not run:
        st.info("No plan yet: run `recon plan` to compute the changes recon proposes.")
        return
    db = ses.db
    st.markdown(f"#### Plan `{run}` — a dry run: nothing is written until you apply")
    counts = pd.DataFrame(review.plan_item_counts(db, run))
    if counts.empty:
        st.info("The plan is empty: both CRMs already agree on every linked record.")
        return
    cols = st.columns(4)
    cols[0].metric("Items", f"{int(counts['items'].sum()):,}")
    planned = int(counts.loc[counts["status"] == "needs_review", "items"].sum())
    waiting = review.queue(
        db, review.QueueFilter(kinds=("conflict", "stale")), page_size=1
    ).total  # what is still undecided of them (and stale writes sent back by an apply)
    cols[1].metric(
        "Waiting for review",
        f"{waiting:,}",
        help=f"Undecided conflicts and stale writes; the plan made {planned:,} items to review.",
    )
    cols[2].metric("Blocked", f"{int(counts.loc[counts['status'] == 'blocked', 'items'].sum()):,}")
    counted = st.session_state.get("plan_approved", {}).get(run)
    # a count made before decisions or an apply changed since is not shown as today's
    approved = counted[1] if counted and counted[0] == review.approvals_state(db) else None
    cols[3].metric(
        "Approved to apply",
        "—" if approved is None else f"{approved:,}",
        help=None if approved is not None else "Count again: decisions or an apply changed it.",
    )
    cols[3].button("Count approved", key="btn_plan_approved", on_click=_count_approved, args=(run,))
    st.dataframe(counts, hide_index=True, width="stretch")
    _creates_box()
    actions = ["all", *sorted(counts["action"].unique())]
    f1, f2 = st.columns([2, 1])
    action = f1.selectbox("Action", actions, key="plan_action")
    chosen = None if action == "all" else action
    shown = counts if chosen is None else counts[counts["action"] == chosen]
    total = int(shown["items"].sum())
    pages = max(1, -(-total // PLAN_PAGE))
    if st.session_state.get("plan_page", 1) > pages:
        st.session_state["plan_page"] = 1
    page = f2.number_input(
        f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="plan_page"
    )
    rows = review.plan_page(db, run, action=chosen, page=int(page), size=PLAN_PAGE)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


#: what the approval box approves: each needs its own decision (kind ``plan``)
_OWN_APPROVAL = {
    "creates": "create",  # records missing on the other side
    # writes an applied undo took back, or stale writes a reviewer dropped, proposed again
    "writes proposed again after an undo or a drop": review.HELD,
    "every item that needs its own approval": None,  # all of these, and an undo plan's restores
}


def _count_creates() -> None:
    system = st.session_state.get("creates_system") or None
    system = None if system == "both systems" else system
    which = st.session_state.get("creates_which") or "creates"
    action = _OWN_APPROVAL.get(which, "create")
    n = review.count_plan_approvals(session().db, action=action, system=system)
    st.session_state["creates"] = {"system": system, "action": action, "count": n}
    st.session_state["creates_confirm"] = False


def _approve_creates() -> None:
    ss = st.session_state
    pending = ss.pop("creates", None)
    ss["creates_confirm"] = False
    if not pending:
        return
    try:
        n = review.approve_plan_items(
            session().db,
            action=pending.get("action", "create"),
            system=pending["system"],
            reviewer=reviewer(),
            expected=pending["count"],
        )
    except ReconError as exc:
        ss["creates_result"] = ("error", f"Nothing approved: {exc}")
        return
    what = "creates" if pending.get("action", "create") == "create" else "items"
    ss.pop("plan_approved", None)  # the "approved to apply" figure is out of date: count again
    ss["creates_result"] = (
        "success",
        f"Approved {plural(n, what[:-1])} (undo in the sidebar reverts the batch).",
    )


def _drop_creates_count() -> None:
    st.session_state.pop("creates", None)
    st.session_state["creates_confirm"] = False


def _creates_box() -> None:
    """Items that need their own approval (creates of missing records, an undo plan's
    restores): counted, confirmed, saved."""
    undo = review.undo_plan_of(session().db)
    title = (
        f"Approve restores (this plan undoes apply run {undo})"
        if undo
        else "Approve items that need their own approval (creates, writes proposed again)"
    )
    with st.expander(title, expanded=bool(undo)):
        result = st.session_state.pop("creates_result", None)
        if result:
            (st.success if result[0] == "success" else st.error)(result[1])
        options = list(_OWN_APPROVAL)
        if undo:  # an undo plan has no creates: its restores are what needs approving
            options.reverse()
        # another selection drops the count: the box never approves a set it no longer shows
        st.selectbox("Which", options, key="creates_which", on_change=_drop_creates_count)
        st.selectbox(
            "Where",
            ["both systems", "hubspot", "salesforce"],
            key="creates_system",
            on_change=_drop_creates_count,
        )
        st.button("Count undecided items", key="btn_creates_count", on_click=_count_creates)
        pending = st.session_state.get("creates")
        if pending:
            where = pending["system"] or "both systems"
            what = "creates" if pending.get("action", "create") == "create" else "items"
            st.warning(
                f"**{pending['count']:,}** undecided {what} in {where} will be approved by "
                f"{reviewer() or '?'}"
                + (
                    " (the associations between the records they create go with them)."
                    if what == "creates"
                    else "."
                )
            )
            st.checkbox(f"Yes, approve these {pending['count']} {what}", key="creates_confirm")
            st.button(
                f"Approve {pending['count']} {what}",
                key="btn_creates_apply",
                type="primary",
                disabled=not st.session_state.get("creates_confirm") or not pending["count"],
                on_click=_approve_creates,
            )


def _count_approved(run: str) -> None:
    # what apply would write now: recon.plan.approved_items over every decision (a second or so)
    counts = st.session_state.setdefault("plan_approved", {})
    db = session().db
    counts[run] = (review.approvals_state(db), _approved_count(db, run))


def _approved_count(db: Any, run: str) -> int | None:
    try:
        from ..apply import pending_items
    except ImportError:
        return None
    try:
        # approved and not applied yet: what the next apply would send
        return len(pending_items(db, run))
    except Exception:  # the plan stage may be mid-change; the count is informative only
        return None


# --------------------------------------------------------------------------- apply


@dataclass
class ApplyJob:
    """An apply the app runs in a thread of its own: it goes on whatever the page does (a
    click reruns the page's script, which would stop an apply running in it)."""

    dry_run: bool
    holder: str
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    #: the thread running it (what it waits for is read by this id: recon.models.waiting)
    thread_id: int | None = None

    @property
    def running(self) -> bool:
        return self.result is None

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


#: the app's apply, one per app process (sessions share it; the store lock keeps other
#: processes out)
_JOB: ApplyJob | None = None


def start_apply_job(
    cfg: Any,
    who: str | None,
    *,
    dry_run: bool,
    confirm_merges: bool,
    resume: bool = False,
    plan_run_id: str | None = None,
) -> ApplyJob | str:
    """Start an apply in a background thread; the job, or why it cannot start."""
    global _JOB
    with _APPLY_GUARD:
        if _JOB is not None and _JOB.running:
            return "another session of this app is applying right now"
        job = _JOB = ApplyJob(dry_run=dry_run, holder=f"review app ({who})")
    threading.Thread(
        target=_apply_worker,
        args=(job, cfg, who, dry_run, confirm_merges, resume, plan_run_id),
        name="recon-apply",
        daemon=True,
    ).start()
    return job


def _apply_worker(
    job: ApplyJob,
    cfg: Any,
    who: str | None,
    dry_run: bool,
    confirm_merges: bool,
    resume: bool,
    plan_run_id: str | None,
) -> None:
    from ..apply import apply_plan
    from ..store import open_store

    db = None
    job.thread_id = threading.get_ident()
    try:
        db = open_store(cfg.store.path)  # its own connection: the thread outlives page runs
        with store_lock(db, holder=job.holder, heartbeat_every=30):
            result = apply_plan(
                db,
                cfg,
                plan_run_id=plan_run_id,
                dry_run=dry_run,
                resume=resume,
                confirm_merges=confirm_merges,
                reviewer=who,
                progress=job.progress,
            )
        job.result = {"summary": result.summary()}
    except ReconError as exc:
        partial = getattr(exc, "result", None)
        job.result = {
            "error": str(exc),
            **({"summary": partial.summary()} if partial is not None else {}),
        }
    except Exception as exc:  # shown in the tab: never a thread dying silently
        job.result = {"error": f"unexpected error: {type(exc).__name__}: {exc}"}
    finally:
        if db is not None:
            db.conn.close()


def _start_apply(
    dry_run: bool, confirm_merges: bool, resume: bool = False, plan: str | None = None
) -> None:
    ss = st.session_state
    ss["apply_confirm"] = False
    ss.pop("apply_result", None)
    # (only apply_tab's buttons call this, after it checked that recon.apply is there)
    job = start_apply_job(
        session().cfg,
        reviewer(),
        dry_run=dry_run,
        confirm_merges=confirm_merges,
        resume=resume,
        plan_run_id=plan,
    )
    if isinstance(job, str):
        ss["apply_result"] = {"error": job}
    else:
        ss["apply_job"] = job


@st.fragment(run_every=1.0)
def _apply_progress() -> None:
    """The running apply's progress, redrawn every second; the result once it ends."""
    job = _JOB
    if job is None:
        return
    if not job.running:
        st.rerun()  # the whole page: the tab shows the result, the lock and the button anew
        return
    what = "Dry run" if job.dry_run else "Applying"
    text = f"{what}: {job.done:,} of {job.total:,} items" if job.total else "starting apply…"
    wait = waiting(job.thread_id)
    if wait is not None:  # a long rate-limit wait is no hang
        text += f" · waiting for {wait[0]}, {wait[1]:.0f} s left"
    st.progress(min(job.done / job.total, 1.0) if job.total else 0.0, text=text)
    st.caption(
        f"Started by {job.holder.removeprefix('review app (').rstrip(')')}. It goes on if you "
        "leave this tab or close the page."
    )


def apply_tab(ses: Session, state: dict[str, Any]) -> None:
    """Start apply with a confirmation; show who holds the store lock, progress and the result."""
    try:
        import recon.apply  # noqa: F401
    except ImportError:
        st.info("Apply is not available in this version of recon yet.")
        return
    holder = live_lock_info(ses.db)
    own = _JOB is not None and _JOB.running
    if (
        holder
        and own
        and (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        and holder["holder"] == _JOB.holder  # type: ignore[union-attr]
    ):
        holder = None  # this app's own apply: its progress shows below
    if holder:
        st.warning(
            f"The store is locked by {md(describe_holder(ses.db, holder))}: an apply cannot start "
            "until it ends."
        )
    st.markdown(f"#### Apply plan `{state['plan_run_id'] or '-'}`")
    st.caption(
        "Writes only the plan items whose decisions are approved, in batches, resumably, audited."
    )
    c1, c2 = st.columns(2)
    dry = c1.toggle("Dry run (send nothing)", value=True, key="apply_dry")
    merges = c2.toggle("Allow merges (irreversible)", value=False, key="apply_merges")
    st.checkbox("I have reviewed the plan and want to apply it", key="apply_confirm")
    busy = _JOB is not None and _JOB.running
    st.button(
        "Start dry run" if dry else "Start apply",
        key="btn_apply",
        type="primary",
        disabled=not st.session_state.get("apply_confirm")
        or bool(holder)
        or not reviewer()
        or busy,
        on_click=_start_apply,
        args=(dry, merges),
    )
    job = _JOB
    mine = st.session_state.get("apply_job")
    if mine is not None and not mine.running:  # this session's apply ended: its result
        st.session_state["apply_result"] = mine.result
        del st.session_state["apply_job"]
    if job is not None and job.running:
        _apply_progress()
    else:
        _offer_resume(ses, holder)
    result = st.session_state.get("apply_result")
    if result is None and job is not None and not job.running:
        result = job.result  # the app's last apply, whoever started it
    if result is None:
        result = _last_apply_result(ses.db)
    if result:
        if result.get("run_id"):
            st.caption(f"Last apply: run `{result['run_id']}` ({result.get('status')})")
        if "error" in result:
            st.error(result["error"])
        if "summary" in result:
            s = result["summary"]
            was_dry = bool(s.get("dry_run"))
            failed = s.get("failed") or {}
            m = st.columns(5)
            m[0].metric("Items", s.get("items", 0))
            m[1].metric("Would apply" if was_dry else "Applied", s.get("applied", 0))
            m[2].metric("Failed", sum(failed.values()))
            m[3].metric("Skipped", s.get("skipped", 0))
            m[4].metric("Stale", s.get("stale", 0))
            calls = s.get("api_calls") or {}
            st.caption(
                ("Write calls it would send: " if was_dry else "API calls: ")
                + ", ".join(f"{crm} {n:,}" for crm, n in calls.items())
            )
            if failed:
                st.warning(
                    "Some records failed, by kind: "
                    + ", ".join(f"{cls} {n:,}" for cls, n in sorted(failed.items()))
                    + ". Fix the cause and apply again: only what failed is sent."
                )
            if s.get("stale"):
                st.warning(
                    "Records changed in the CRM since review were not overwritten: they wait in the "
                    "Queue as *Stale writes* (write anyway, drop or defer; approved ones go out with "
                    "the next apply)."
                )
            st.json(s, expanded=False)


def _last_apply_result(db: Any) -> dict[str, Any] | None:
    """The latest finished apply run's summary (an app restarted, a page opened later)."""
    try:
        row = db.execute(
            "select run_id, status, summary, error from runs where stage = 'apply' and "
            "status != 'running' order by started_at desc, rowid desc limit 1"
        ).fetchone()
    except Exception:  # the store may be mid-change; the figure is informative only
        return None
    if row is None:
        return None
    import json

    try:
        summary = json.loads(row[2] or "{}")
    except ValueError:
        summary = {}
    out: dict[str, Any] = {"run_id": row[0], "status": row[1], "summary": summary}
    if row[3]:
        out["error"] = row[3]
    return out


def _offer_resume(ses: Session, holder: Any) -> None:
    """An apply that stopped before its end (closed by a crash, a budget, a lost network)
    blocks the next one until it is finished: offer to finish it here."""
    from ..apply import unfinished_apply

    try:
        stopped = unfinished_apply(ses.db)
    except Exception:  # the store may be mid-change; the offer is a convenience
        return
    if not stopped or holder:
        return
    run_id, plan = stopped
    st.warning(
        f"Apply run `{run_id}` of plan `{plan}` stopped before its end: an apply of that plan "
        "waits until it is finished. Finishing it checks the items already sent in the CRM "
        "first, then sends the rest of that plan's approved writes (real writes)."
    )
    st.checkbox(
        f"I want to finish apply run {run_id} (plan {plan})", key=f"resume_confirm:{run_id}"
    )
    st.button(
        "Finish the stopped apply",
        key="btn_apply_resume",
        disabled=not reviewer() or not st.session_state.get(f"resume_confirm:{run_id}"),
        on_click=_start_apply,
        args=(False, False, True, plan),
    )


# --------------------------------------------------------------------------- audit


def _prepare_exports(run_id: str | None) -> None:
    try:
        from ..audit import FORMATS, export
    except ImportError:
        st.session_state["exports"] = {"error": "audit exports are not available in this version"}
        return
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            try:
                info = export(session().db, fmt, Path(tmp) / f"audit.{fmt}", run_id=run_id)
            except ReconError as exc:
                out["error"] = str(exc)
                break
            out[fmt] = (Path(info["path"]).read_bytes(), info["rows"])
    out["run"] = run_id or "all"  # the files hold this run's changes: named after it
    st.session_state["exports"] = out


def audit_tab(ses: Session, state: dict[str, Any]) -> None:
    """Runs, the changes each made, and download buttons for the audit exports."""
    db = ses.db
    runs = pd.DataFrame(
        [dict(r) for r in db.query(
            "select run_id, parent_id, stage, status, started_at, ended_at, summary, error from runs "
            "order by started_at desc limit 200"
        )]
    )  # fmt: skip
    if runs.empty:
        st.info("No runs recorded in this store yet.")
        return
    st.markdown("#### Runs")
    st.dataframe(runs, hide_index=True, width="stretch", height=min(38 + 35 * len(runs), 320))
    applies = list(runs.loc[runs["stage"] == "apply", "run_id"])
    run = st.selectbox("Changes of apply run", ["all", *applies], key="audit_run")
    run_id = None if run == "all" else run
    where, params = ("where run_id = ?", [run_id]) if run_id else ("", [])
    changes = pd.DataFrame(
        [
            dict(r)
            for r in db.query(f"select * from audit {where} order by seq desc limit 500", params)
        ]
    )
    st.markdown(f"#### Changes ({'latest 500' if len(changes) == 500 else len(changes)})")
    if changes.empty:
        st.caption("No audited changes for this selection.")
    else:
        st.dataframe(changes, hide_index=True, width="stretch")
    st.button("Prepare exports", key="btn_exports", on_click=_prepare_exports, args=(run_id,))
    exports = st.session_state.get("exports") or {}
    if exports and exports.get("run") != (run_id or "all"):
        exports = {}  # prepared for another run: prepare again
        st.session_state.pop("exports", None)
    if "error" in exports:
        st.info(exports["error"])
    mime = {
        "csv": "text/csv",
        "jsonl": "application/jsonl",
        "parquet": "application/octet-stream",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    cols = st.columns(4)
    for i, (fmt, value) in enumerate(x for x in exports.items() if x[0] not in ("error", "run")):
        data, rows = value
        cols[i % 4].download_button(
            f"Download {fmt.upper()} ({rows} rows)",
            data,
            file_name=f"recon-audit-{exports['run']}.{fmt}",
            mime=mime.get(fmt),
            key=f"dl_{fmt}",
        )


# --------------------------------------------------------------------------- charts


def charts_tab(ses: Session, state: dict[str, Any]) -> None:
    """Score distribution with thresholds, items per tier and kind, decisions over time, precision per tier."""
    db = ses.db
    tiers = pd.DataFrame(review.tier_counts(db))
    scored = tiers[tiers["kind"] != "conflict"] if not tiers.empty else tiers
    left, right = st.columns(2)
    with left:
        st.markdown("#### Score distribution")
        if scored.empty:
            st.caption("No scored items.")
        else:
            c1, c2 = st.columns(2)
            kinds = sorted(scored["kind"].unique(), key=lambda k: k != "link")
            kind = c1.selectbox("Kind", kinds, key="chart_kind")
            objects = sorted(scored.loc[scored["kind"] == kind, "object"].unique())
            if st.session_state.get("chart_object") not in objects:
                st.session_state["chart_object"] = objects[0]
            obj = c2.selectbox("Object", objects, key="chart_object")
            th = review.thresholds(db, state["match_run_id"]).get(obj, {}).get(kind, {})
            low, _ = review.score_range(db, kind, obj) or (0.0, 1.0)
            # a scale in "nines" (-log10(1 - score)): real scores crowd near 1
            nines = [-math.log10(max(1.0 - v, 1e-6)) for v in (low, *th.values())]
            start = max(0.0, math.floor(min(nines) * 4) / 4 - 0.25)
            steps = [start + k * 0.125 for k in range(int((6.0 - start) / 0.125) + 1)]
            edges = [1.0 - 10 ** (-n) for n in steps]
            edges[-1] = 1.0
            data = pd.DataFrame(review.score_histogram(db, edges=edges))
            if not data.empty:
                data = data[(data["kind"] == kind) & (data["object"] == obj)]
                data["x"] = [steps[b] for b in data["bin"]]
                data["x2"] = [steps[b + 1] for b in data["bin"]]
            rules = pd.DataFrame(
                [
                    {
                        "threshold": f"{k} ≥ {review.format_threshold(v)}",
                        "x": -math.log10(max(1.0 - v, 1e-6)),
                        "y": 10 + 16 * i,
                    }
                    for i, (k, v) in enumerate(th.items())
                ]
            )
            axis = alt.Axis(
                values=list(range(math.ceil(start), 7)),
                labelExpr="format(1 - pow(10, -datum.value), '.6~f')",
                title="score (log scale of 1 − score)",
            )
            bars = (
                alt.Chart(data)
                .mark_bar()
                .encode(
                    x=alt.X("x:Q", axis=axis, scale=alt.Scale(domain=[start, 6.0])),
                    x2="x2:Q",
                    y=alt.Y("sum(items):Q", title="items"),
                    color=alt.Color(
                        "tier:N",
                        scale=alt.Scale(
                            domain=["auto", "review", "reject"],
                            range=["#2e7d32", "#f9a825", "#9e9e9e"],
                        ),
                    ),
                    tooltip=["tier", "score_from", "score_to", "items"],
                )
            )
            lines = (
                alt.Chart(rules)
                .mark_rule(strokeDash=[4, 3], color="#1565c0", size=2)
                .encode(x="x:Q", tooltip=["threshold"])
            )
            labels = (
                alt.Chart(rules)
                .mark_text(align="left", dx=4, color="#1565c0")
                .encode(x="x:Q", y=alt.Y("y:Q", scale=None), text="threshold:N")
            )
            st.altair_chart((bars + lines + labels).properties(height=260), width="stretch")
    with right:
        st.markdown("#### Items per tier and kind")
        if tiers.empty:
            st.caption("The queue is empty.")
        else:
            chart = (
                alt.Chart(tiers)
                .mark_bar()
                .encode(
                    x=alt.X("kind:N", title=None, axis=alt.Axis(labelAngle=0)),
                    y=alt.Y("sum(items):Q", title="items"),
                    color=alt.Color(
                        "tier:N",
                        scale=alt.Scale(
                            domain=["auto", "review", "reject"],
                            range=["#2e7d32", "#f9a825", "#9e9e9e"],
                        ),
                    ),
                    tooltip=["kind", "object", "tier", "items", "decided"],
                )
            )
            st.altair_chart(chart.properties(height=260), width="stretch")
    left, right = st.columns(2)
    with left:
        st.markdown("#### Decisions over time")
        over = pd.DataFrame(review.decisions_over_time(db, bucket="day"))
        if not over.empty and over["period"].nunique() < 3:
            over = pd.DataFrame(review.decisions_over_time(db, bucket="hour"))
        if over.empty:
            st.caption("No human decisions yet.")
        else:
            chart = (
                alt.Chart(over)
                .mark_bar()
                .encode(
                    x=alt.X("period:O", title=None),
                    y=alt.Y("sum(decisions):Q", title="decisions"),
                    color="label:N",
                    tooltip=["period", "kind", "label", "decisions"],
                )
            )
            st.altair_chart(chart.properties(height=240), width="stretch")
    with right:
        st.markdown("#### Precision per tier (from human labels)")
        prec = pd.DataFrame(review.tier_precision(db))
        if prec.empty:
            st.caption("No human match / non-match labels yet.")
        else:
            prec["group"] = prec["kind"] + " · " + prec["tier"]
            base = alt.Chart(prec).encode(
                x=alt.X("group:N", title=None, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1])),
            )
            chart = base.mark_bar(color="#1565c0") + base.mark_text(dy=-8).encode(
                text=alt.Text("labelled:Q", format="d")
            )
            st.altair_chart(chart.properties(height=240), width="stretch")
            st.caption("Numbers over the bars: items labelled by reviewers so far.")
