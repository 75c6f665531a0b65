"""The review page: sidebar (reviewer, filters, undo) and the tabs Queue, Plan, Apply, Audit, Charts.

The config is found as the CLI finds it (``$RECON_CONFIG``, else
``./recon.toml``). Each browser session opens its own store connection, kept in
``st.session_state`` (SQLite connections are never shared across sessions).
Tabs are lazy: only the open one runs its queries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils
import streamlit as st

from .. import review
from ..config import ReconConfig, load_config
from ..errors import LockedError, ReconError
from ..store import open_store
from . import BUSY_TIMEOUT
from .detail_view import md

log = logging.getLogger(__name__)

TABS = ["Queue", "Plan", "Apply", "Audit", "Charts"]
KINDS: dict[str, str] = {
    "link": "Links",
    "duplicate": "Duplicates",
    "conflict": "Conflicts",
    "stale": "Stale writes",
}
STATUSES: dict[str, str] = {
    "undecided": "Undecided",
    "decided": "Decided",
    "deferred": "Deferred",
    "all": "All",
}


@dataclass
class Session:
    """What one browser session holds: its config and its own store connection."""

    cfg: ReconConfig
    db: sqlite_utils.Database


def session() -> Session:
    """This browser session's config and store connection (opened on first use)."""
    ses = st.session_state.get("_recon")
    if ses is None:
        cfg = load_config(None)
        ses = Session(cfg=cfg, db=open_store(cfg.store.path, busy_timeout=BUSY_TIMEOUT))
        st.session_state["_recon"] = ses
    return ses


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, in the plural unless one.

    Examples:
        >>> plural(1, "create"), plural(2_465, "link")
        ('1 create', '2,465 links')
    """
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def flash(kind: str, message: str) -> None:
    """Keep a message for the next run of the page (callbacks run before it renders)."""
    st.session_state["_flash"] = (kind, message)


def show_flash() -> None:
    """Show and clear the pending message."""
    pending = st.session_state.pop("_flash", None)
    if pending:
        kind, message = pending
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(
            message
        )


def reviewer() -> str | None:
    """The signed-in reviewer (sidebar field, prefilled from config or $RECON_REVIEWER).

    Once the field exists, it alone names the reviewer: cleared, nobody is signed in (a
    decision is never recorded under the configured name someone erased).
    """
    typed = st.session_state.get("reviewer")
    if typed is not None:
        return str(typed).strip() or None
    return review.resolve_reviewer(session().cfg, None)


def current_filter() -> review.QueueFilter:
    """The queue filter the sidebar widgets describe."""
    ss = st.session_state
    low, high = ss.get("f_score", (0.0, 1.0))
    return review.QueueFilter(
        kinds=tuple(ss.get("f_kinds") or ()),
        objects=tuple(ss.get("f_objects") or ()),
        tiers=tuple(ss.get("f_tiers") or ()),
        score_min=low if low > 0.0 else None,
        score_max=high if high < 1.0 else None,
        text=ss.get("f_text") or None,
        status=ss.get("f_status") or "undecided",
        reviewer=ss.get("f_reviewer") or None,
    )


def busy_text(exc: LockedError, what: str) -> str:
    """A store another process is writing to, said at once: ``what`` could not be done, who
    holds the store, and when to try again (markdown)."""
    return (
        f"{what}: {md(exc.message)}. Decisions can be made once it is released (a short write "
        "takes seconds, a run's stage can take minutes): try again then."
    )


def _undo() -> None:
    try:
        undone = review.undo_last(session().db, reviewer())
    except LockedError as exc:
        flash("error", busy_text(exc, "Nothing undone"))
        return
    except ReconError as exc:
        flash("error", str(exc))
        return
    if not undone:
        flash("info", "Nothing to undo: you have no current decision.")
        return
    first = undone[0]
    # named by its records, as the queue shows them (an older decision's item may have left
    # the queue: its records are named from the decision itself)
    what = (
        f"{len(undone)} bulk decisions"
        if len(undone) > 1
        else f"{first['kind']} '{first['label']}' on {md(_title(first))}"
        f" (decided {str(first.get('decided_at') or '?')[:16].replace('T', ' ')})"
    )
    message = f"Undone: {what}. The previous decision, if there was one, is current again."
    applied = _applied(undone)
    if applied:
        which = "Its write was" if len(undone) == 1 else f"{applied} of them were"
        message += (
            f" {which} applied already: the CRM keeps what was written (`recon undo` with the "
            "apply run takes writes back)."
        )
    flash("success", message)
    st.toast(message)  # seen on every tab (the message above the queue shows in the Queue tab)
    # the queue item the decision was made on (a value chosen for a merge: its cluster)
    item_id = _item_of(first)
    st.session_state["item"] = item_id
    if len(undone) == 1:  # opened even when it is on another page, or left this filter
        st.session_state["pinned"] = item_id


def _title(decision: dict[str, Any]) -> str:
    try:
        return review.decision_title(session().db, decision)
    except Exception:  # a name is a courtesy: never an error of its own
        return str(decision.get("item_id"))


def _item_of(decision: dict[str, Any]) -> str:
    try:
        return review.decision_item(session().db, decision)
    except Exception:  # where to go next is a courtesy: never an error of its own
        return str(decision.get("item_id"))


def _applied(undone: list[dict[str, Any]]) -> int:
    try:
        return review.applied_already(session().db, undone)
    except Exception:  # the note is a courtesy: never an error of its own
        return 0


def _reset_page() -> None:
    st.session_state["page"] = 1
    st.session_state.pop("bulk", None)  # a bulk count belongs to the filter it was made for
    # an item kept open after an undo is let go: the keys decide only what the table shows
    st.session_state.pop("pinned", None)
    st.session_state.pop("pinned_next", None)


def sidebar(ses: Session) -> None:
    """Reviewer sign-in, queue filters and undo."""
    with st.sidebar:
        st.markdown("### recon · review")
        if "reviewer" not in st.session_state:
            st.session_state["reviewer"] = review.resolve_reviewer(ses.cfg) or ""
        st.text_input(
            "Reviewer",
            key="reviewer",
            placeholder="you@example.com",
            help="Saved with every decision.",
        )
        if not reviewer():
            st.warning("Sign in with your name or email to decide.")
        st.markdown("#### Filters")
        st.multiselect(
            "Kind",
            list(KINDS),
            format_func=lambda k: KINDS[k],
            key="f_kinds",
            on_change=_reset_page,
            placeholder="all kinds",
        )
        st.multiselect(
            "Object",
            ["companies", "contacts"],
            key="f_objects",
            on_change=_reset_page,
            placeholder="all objects",
        )
        st.multiselect(
            "Tier",
            ["review", "auto", "reject"],
            key="f_tiers",
            on_change=_reset_page,
            placeholder="all tiers",
        )
        st.slider("Score", 0.0, 1.0, (0.0, 1.0), step=0.01, key="f_score", on_change=_reset_page)
        st.text_input("Search names, emails, domains", key="f_text", on_change=_reset_page)
        if not st.session_state.get("f_status"):
            st.session_state["f_status"] = "undecided"
        st.segmented_control(
            "Status",
            list(STATUSES),
            format_func=lambda k: STATUSES[k],
            key="f_status",
            required=True,
            on_change=_reset_page,
        )
        st.text_input("Decided by (reviewer)", key="f_reviewer", on_change=_reset_page)
        st.divider()
        st.button(
            "↶ Undo my last decision",
            key="btn_undo",
            on_click=_undo,
            width="stretch",
            shortcut="U",
            help="Restores the decision it replaced (a bulk approve is undone as one). Shortcut: U",
        )
        st.caption(f"Store: `{ses.cfg.store.path}`")


def run_page() -> None:
    """Render the review page (the body of ``app.py`` and of ``recon review``)."""
    st.set_page_config(page_title="recon · review", layout="wide")
    try:
        ses = session()
        state = review.ensure_queue(ses.db)
    except LockedError as exc:
        # the queue of a new match or plan run is indexed once the writer lets go
        st.warning(busy_text(exc, "The review queue cannot be indexed for the latest runs yet"))
        st.button("Retry", key="btn_retry", type="primary")
        st.stop()
        return
    except ReconError as exc:
        st.error(f"recon cannot start the review app: {exc}")
        st.stop()
        return
    sidebar(ses)
    st.markdown(
        "<style>div.block-container{padding-top:2.2rem} [data-testid=stMetricValue]{font-size:1.6rem}</style>",
        unsafe_allow_html=True,
    )
    from . import queue_view, tabs

    if not state["match_run_id"] and not state["plan_run_id"]:
        st.info(
            "The store holds no match run yet: run `recon match` (and `recon plan`), then reload."
        )
    containers = st.tabs(TABS, key="tab", on_change="rerun")
    renderers = [queue_view.render, tabs.plan_tab, tabs.apply_tab, tabs.audit_tab, tabs.charts_tab]
    for container, render in zip(containers, renderers, strict=True):
        with container:
            if container.open is not False:
                render(ses, state)


def safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a library function; show a ReconError as a message instead of a traceback."""
    try:
        return fn(*args, **kwargs)
    except ReconError as exc:
        st.error(str(exc))
        return None
