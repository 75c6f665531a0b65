"""The Plan, Apply, Audit and Charts tabs: thin views over the store, recon.apply and recon.audit.

Apply and audit exports are called lazily; while a stage is not installed the
tab says so instead of failing.
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from .. import review
from ..errors import ReconError
from ..lock import lock_info, store_lock
from .entry import Session, reviewer, session

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
    approved = st.session_state.get("plan_approved", {}).get(run)
    cols[3].metric("Approved to apply", "—" if approved is None else f"{approved:,}")
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
    "every item that needs its own approval": None,  # creates, and an undo plan's restores
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
    ss["creates_result"] = (
        "success",
        f"Approved {n} {what} (undo in the sidebar reverts the batch).",
    )


def _creates_box() -> None:
    """Items that need their own approval (creates of missing records, an undo plan's
    restores): counted, confirmed, saved."""
    undo = review.undo_plan_of(session().db)
    title = (
        f"Approve restores (this plan undoes apply run {undo})"
        if undo
        else "Approve creates (records missing on the other side)"
    )
    with st.expander(title, expanded=bool(undo)):
        result = st.session_state.pop("creates_result", None)
        if result:
            (st.success if result[0] == "success" else st.error)(result[1])
        options = list(_OWN_APPROVAL)
        if undo:  # an undo plan has no creates: its restores are what needs approving
            options.reverse()
        st.selectbox("Which", options, key="creates_which")
        st.selectbox("Where", ["both systems", "hubspot", "salesforce"], key="creates_system")
        st.button("Count undecided items", key="btn_creates_count", on_click=_count_creates)
        pending = st.session_state.get("creates")
        if pending:
            where = pending["system"] or "both systems"
            what = "creates" if pending.get("action", "create") == "create" else "items"
            st.warning(
                f"**{pending['count']}** undecided {what} in {where} will be approved by {reviewer() or '?'}."
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
    counts[run] = _approved_count(session().db, run)


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


def _start_apply(dry_run: bool, confirm_merges: bool) -> None:
    # a callback draws above the tabs: the apply runs in the tab (apply_tab), its bar there
    st.session_state["apply_confirm"] = False
    st.session_state["apply_request"] = (dry_run, confirm_merges)


def _run_apply(dry_run: bool, confirm_merges: bool) -> None:
    ss = st.session_state
    try:
        from ..apply import apply_plan
    except ImportError:
        ss["apply_result"] = {"error": "recon apply is not available in this version"}
        return
    ses = session()
    bar = st.progress(0.0, text="starting apply…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0) if total else 1.0, text=f"{done:,} of {total:,} items")

    # one apply per app process (sessions share the process, and the store lock is
    # re-entrant for its holder), and the store lock against every other process
    if not _APPLY_GUARD.acquire(blocking=False):
        ss["apply_result"] = {"error": "another session of this app is applying right now"}
        return
    try:
        with store_lock(ses.db, holder=f"review app ({reviewer()})", heartbeat_every=30):
            result = apply_plan(
                ses.db,
                ses.cfg,
                dry_run=dry_run,
                confirm_merges=confirm_merges,
                reviewer=reviewer(),
                progress=progress,
            )
    except ReconError as exc:
        partial = getattr(exc, "result", None)
        ss["apply_result"] = {
            "error": str(exc),
            **({"summary": partial.summary()} if partial is not None else {}),
        }
        return
    finally:
        _APPLY_GUARD.release()
        bar.empty()
    ss["apply_result"] = {"summary": result.summary()}


def apply_tab(ses: Session, state: dict[str, Any]) -> None:
    """Start apply with a confirmation; show who holds the store lock, progress and the result."""
    try:
        import recon.apply  # noqa: F401
    except ImportError:
        st.info("Apply is not available in this version of recon yet.")
        return
    holder = lock_info(ses.db)
    if holder:
        st.warning(
            f"The store is locked by **{holder['holder']}** (pid {holder['pid']} on {holder['host']}, "
            f"since {holder['started_at']}): apply waits until it finishes."
        )
    st.markdown(f"#### Apply plan `{state['plan_run_id'] or '-'}`")
    st.caption(
        "Writes only the plan items whose decisions are approved, in batches, resumably, audited."
    )
    c1, c2 = st.columns(2)
    dry = c1.toggle("Dry run (send nothing)", value=True, key="apply_dry")
    merges = c2.toggle("Allow merges (irreversible)", value=False, key="apply_merges")
    st.checkbox("I have reviewed the plan and want to apply it", key="apply_confirm")
    st.button(
        "Start dry run" if dry else "Start apply",
        key="btn_apply",
        type="primary",
        disabled=not st.session_state.get("apply_confirm") or bool(holder) or not reviewer(),
        on_click=_start_apply,
        args=(dry, merges),
    )
    request = st.session_state.pop("apply_request", None)
    if request:
        _run_apply(*request)
    result = st.session_state.get("apply_result")
    if result:
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
                        "threshold": f"{k} ≥ {v:.4g}",
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
