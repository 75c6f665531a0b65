"""The Queue tab: one page of items, the selected item side by side, and the actions.

Every action is a button callback bound to the version of the item the reviewer
saw when the page rendered, so a decision made meanwhile by someone else is
reported as a reviewer conflict instead of silently overwritten.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pandas as pd
import streamlit as st

from .. import review
from ..errors import LockedError, ReconError, ReviewerConflict
from ..models import stable_id
from .detail_view import ICONS, SOURCES, comparison, explanation, md, stale_versions, status
from .entry import (
    KINDS,
    Session,
    busy_text,
    current_filter,
    flash,
    plural,
    reviewer,
    session,
    show_flash,
)

BUTTONS = {
    "link": ("✓ Same", "✗ Different", "Defer"),
    "duplicate": ("✓ Merge", "✗ Distinct", "Defer"),
    "conflict": ("✓ Keep value", "✗ Neither", "Defer"),
    "stale": ("✓ Write anyway", "✗ Drop", "Defer"),
}
HELP = {
    "link": (
        "The two records are the same: link them (A)",
        "Different records: never link them (X)",
    ),
    "duplicate": (
        "These records are duplicates: merge them (A)",
        "Not duplicates: never merge them (X)",
    ),
    "conflict": ("Keep the selected value on both sides (A)", "Change neither side (X)"),
    "stale": (
        "Write the planned value over the CRM's new version at the next apply (A)",
        "Keep the CRM's value: drop this write (X)",
    ),
}


# --------------------------------------------------------------------------- callbacks


def _run(action: Any, done: str, next_id: str | None, unchanged: str = "") -> None:
    """Record a decision; ``done`` names what was decided (the records, as the queue shows
    them); ``unchanged`` is said when the library records nothing (the choice stands already)."""
    try:
        row = action()
    except ReviewerConflict as exc:
        flash("error", f"Reviewer conflict: {md(exc)}")
        # keep the contested item open (decided meanwhile, it may have left the filter), and
        # where the queue goes after it
        st.session_state["pinned"] = st.session_state.get("item")
        st.session_state["pinned_next"] = next_id
        return
    except LockedError as exc:
        # said at once, the item kept open: the reviewer decides again once the store is free
        flash("error", busy_text(exc, f"Not saved: {md(done)}"))
        return
    except ReconError as exc:
        flash("error", md(exc))
        return
    if row is None:
        flash("info", unchanged or "Unchanged: nothing recorded.")
        return
    flash(
        "success",
        f"Saved: {row['kind']} {row['label']} on {md(done)} (v{row['version']}, {md(row['reviewer'])}).",
    )
    ss = st.session_state
    if next_id:
        ss["item"] = next_id
    elif ss.get("at_last") == ss.get("item"):
        _past_the_last()


def _past_the_last() -> None:
    """A decision on the page's last item moves on: when the item left the page (decided, or
    deferred to the end of the Undecided queue), its successor takes its place at the page's
    end; when it stays (the Decided or All view), the next page's first item opens (on the
    last page the item stays)."""
    ss = st.session_state
    ses = session()
    page = int(ss.get("page", 1))
    pg = review.queue(ses.db, current_filter(), page=page - 1, page_size=ses.cfg.review.page_size)
    if ss.get("item") not in {it["item_id"] for it in pg.items}:
        ss["edge"] = "last"
    elif page < pg.pages:  # (a callback: the page widget may still be set here)
        ss["page"] = page + 1
        ss.pop("item", None)
        ss["edge"] = "next"


def _decide(item_id: str, action: str, version: int, next_id: str | None, title: str) -> None:
    db = session().db
    _run(
        lambda: review.decide(db, item_id, action, reviewer=reviewer(), based_on_version=version),
        title,
        next_id,
    )


def _choose_value(
    item_id: str,
    field_name: str,
    options: list[dict[str, Any]],
    version: int,
    widget: str,
    title: str = "",
    next_id: str | None = None,
) -> None:
    pick = options[int(st.session_state.get(widget) or 0)]
    db = session().db
    whose = pick.get("who") or SOURCES.get(pick["source"], pick["source"])
    _run(
        lambda: review.choose_value(
            db,
            item_id,
            field_name,
            pick["value"],
            source=pick["source"],
            reviewer=reviewer(),
            based_on_version=version,
        ),
        f"{title or review.item_title(db, item_id) or item_id} "
        f"({field_name} = {pick['value']!r} from {whose})",
        next_id,
    )


def _choose_master(
    item_id: str, version: int, widget: str, names: dict[str, str], title: str = ""
) -> None:
    picked = str(st.session_state[widget])
    source, record_id = picked.split("|", 1)
    db = session().db
    name = names.get(picked, record_id)
    _run(
        lambda: review.choose_master(
            db, item_id, source, record_id, reviewer=reviewer(), based_on_version=version
        ),
        f"{title} (master: {name})" if title else f"master {name}",
        None,
        unchanged=f"Master unchanged: {md(name)} already is the master of this cluster; "
        "nothing recorded.",
    )


def _split(
    item_id: str,
    members: list[str],
    version: int,
    next_id: str | None = None,
    names: dict[str, str] | None = None,
    title: str = "",
) -> None:
    moved = list(st.session_state.get(f"split_pick:{item_id}") or [])
    rest = [m for m in members if m not in moved]
    db = session().db
    out = ", ".join((names or {}).get(m, m) for m in moved)
    _run(
        lambda: review.split_cluster(
            db, item_id, [moved, rest], reviewer=reviewer(), based_on_version=version
        ),
        f"{title or review.item_title(db, item_id) or item_id} ({out} moved out, {len(rest)} stay)",
        next_id,
    )


def _goto(item_id: str | None) -> None:
    if item_id:
        st.session_state["item"] = item_id


def _turn_page(step: int) -> None:
    """J past a page's last item opens the next page's first; K before its first, the
    previous page's last."""
    ss = st.session_state
    ss["page"] = max(1, int(ss.get("page", 1)) + step)
    ss.pop("item", None)
    ss["edge"] = "back" if step < 0 else "next"


def _bulk_count() -> None:
    ss = st.session_state
    tier = ss.get("bulk_tier") if ss.get("bulk_scope") == "tier" else None
    filt = review.QueueFilter(status="all") if tier else current_filter()
    preview = review.bulk_preview(session().db, filt, tier=tier)
    ss["bulk"] = {"filter": filt, "tier": tier, "count": preview.count, "preview": preview}
    ss["bulk_confirm"] = False


def _bulk_apply() -> None:
    ss = st.session_state
    bulk = ss.pop("bulk", None)
    ss["bulk_confirm"] = False
    if not bulk:
        return
    try:
        n = review.bulk_approve(
            session().db,
            bulk["filter"],
            tier=bulk["tier"],
            reviewer=reviewer(),
            expected=bulk["preview"],
        )
    except ReconError as exc:
        flash("error", f"Nothing approved: {exc}")
        return
    flash(
        "success",
        f"Approved {plural(n, 'item')} as matches (one undo reverts the whole batch).",
    )


# --------------------------------------------------------------------------- rendering


def _open_row(key: str, ids: list[str]) -> None:
    rows = st.session_state[key].selection.rows
    if rows:
        st.session_state["item"] = ids[rows[0]]


def _queue_table(items: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(
        [
            {
                "": ICONS.get(it["label"] or ("reject" if it.get("link_rejected") else None), "•"),
                "Kind": it["kind"],
                "Object": it["object"],
                "Tier": it["tier"],
                "Score": it["score"],
                "Item": it["title"],
                # a conflict of a rejected link: answered by the link's rejection
                "Decision": it["label"] or ("link rejected" if it.get("link_rejected") else ""),
                "By": it["reviewer"] or "",
            }
            for it in items
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        height=min(38 + 35 * len(items), 300),
        column_config={
            "": st.column_config.TextColumn(width=30),
            "Score": st.column_config.ProgressColumn(
                min_value=0.0, max_value=1.0, format=review.SCORE_FORMAT, width="small"
            ),
            "Item": st.column_config.TextColumn(width="large"),
        },
        # a click opens the row; the key follows the open item so no stale highlight remains
        key=(key := f"queue_table:{st.session_state.get('item')}"),
        on_select=functools.partial(_open_row, key, [it["item_id"] for it in items]),
        selection_mode="single-row",
    )


def _bulk_forget() -> None:
    """Another scope or tier: the count made for the former one must not be approved."""
    st.session_state.pop("bulk", None)


def _bulk_box() -> None:
    # keyed: a message banner appearing or going above it never remounts it closed
    with st.expander("Bulk approve", key="bulk_box"):
        st.radio(
            "Approve every undecided link and cluster in",
            ["filter", "tier"],
            format_func=lambda k: {"filter": "the current filter", "tier": "one tier"}[k],
            key="bulk_scope",
            horizontal=True,
            on_change=_bulk_forget,
        )
        st.selectbox(
            "Tier",
            ["auto", "review"],
            key="bulk_tier",
            disabled=st.session_state.get("bulk_scope") != "tier",
            on_change=_bulk_forget,
        )
        st.button("Count items", key="btn_bulk_count", on_click=_bulk_count)
        bulk = st.session_state.get("bulk")
        if bulk:
            scope = (
                f"tier {bulk['tier']} (every kind and object, whatever the sidebar shows)"
                if bulk["tier"]
                else "the current filter"
            )
            parts = bulk["preview"].parts
            made_of = ", ".join(
                f"{plural(n, 'link' if kind == 'link' else 'cluster')} of {obj}"
                for kind, obj, n in parts
            )
            st.warning(
                f"**{bulk['count']:,}** undecided links and clusters in {scope} will be labelled *match* by {reviewer() or '?'}"
                + (f": {made_of}" if made_of else "")
                + ". Conflicts and items a reviewer deferred are never bulk approved."
            )
            st.checkbox(f"Yes, approve these {bulk['count']} items", key="bulk_confirm")
            st.button(
                f"Approve {bulk['count']} items",
                key="btn_bulk_apply",
                type="primary",
                disabled=not st.session_state.get("bulk_confirm") or not bulk["count"],
                on_click=_bulk_apply,
            )


def _actions(detail: dict[str, Any], next_id: str | None) -> None:
    item = detail["item"]
    versions = detail["versions"]
    kind, iid, title = item["kind"], item["item_id"], item["title"]
    primary = {"conflict": f"conflict_value:{item['field']}", "stale": "plan"}.get(kind, kind)
    version = versions.get(primary, 0)
    labels = BUTTONS[kind]
    first: tuple[str, str, Any, tuple[Any, ...]]
    if kind == "conflict":
        reason = (
            detail["plan"].get("reason") if isinstance(detail["plan"].get("reason"), dict) else {}
        )
        st.markdown(
            f"**Which value of `{item['field']}` survives?** · rule `{reason.get('rule', '?')}` {reason.get('why') or ''}"
        )
        options = detail["options"]
        # opened on the current choice, else the plan's proposal; keyed per item and version,
        # so one item's pick never carries to the next and a new decision reopens it
        widget = f"value_pick:{iid}:{version}"
        chosen = _current_choice(detail, iid)
        start = next(
            (
                i
                for i, o in enumerate(options)
                if chosen
                and (o["source"] == chosen.get("side") or o["value"] == chosen.get("value"))
            ),
            next((i for i, o in enumerate(options) if o.get("proposed")), 0),
        )
        st.radio(
            "Surviving value",
            range(len(options)),
            index=start,
            format_func=lambda i: _option_text(options[i]),
            key=widget,
        )
        picked = options[int(st.session_state.get(widget) or 0)]
        writes = picked.get("writes") or {}
        if writes and not writes.get("ok"):
            st.warning(
                f"Keeping this value writes nothing: {md(writes.get('why') or '')}. "
                "Choose the other value, or *Neither*."
            )
        first = (
            labels[0],
            "btn_value",
            _choose_value,
            (iid, item["field"], options, version, widget, title, next_id),
        )
        blocked = bool(writes) and not writes.get("ok")
    else:
        first = (labels[0], "btn_approve", _decide, (iid, "approve", version, next_id, title))
        blocked = False
    # a conflict of a rejected link: the rejection answers it (the status above says so)
    settled = detail.get("settled")
    c1, c2, c3 = st.columns(3)
    c1.button(
        first[0],
        key=first[1],
        type="primary",
        width="stretch",
        on_click=first[2],
        args=first[3],
        shortcut="A",
        help=_settled_help(settled) or HELP[kind][0],
        disabled=blocked or bool(settled),
    )
    c2.button(
        labels[1],
        key="btn_reject",
        width="stretch",
        on_click=_decide,
        args=(iid, "reject", version, next_id, title),
        shortcut="X",
        help=_settled_help(settled) or HELP[kind][1],
        disabled=bool(settled),
    )
    c3.button(
        labels[2],
        key="btn_defer",
        width="stretch",
        on_click=_decide,
        args=(iid, "defer", version, next_id, title),
        shortcut="D",
        help=_settled_help(settled)
        or "Decide later: back of the undecided queue, after the unanswered items (D)",
        disabled=bool(settled),
    )
    if kind == "duplicate":
        _cluster_actions(detail, versions, next_id)


def _settled_help(settled: str | None) -> str | None:
    """A disabled button's help: why the item takes no decision."""
    if not settled:
        return None
    return f"Nothing to decide: {settled}. To decide it, undo or change the link's decision."


def _current_choice(detail: dict[str, Any], item_id: str) -> dict[str, Any] | None:
    """The value a conflict's current decision keeps (``side``, ``value``), or None."""
    for h in detail["history"]:
        if h["item_id"] == item_id and h["kind"] == "conflict_value" and not h["superseded"]:
            if h["label"] not in ("approve", "match"):
                return None
            try:
                choice = json.loads(h["choice"]) if h["choice"] else None
            except ValueError:
                return None
            return choice if isinstance(choice, dict) else None
    return None


def _option_text(option: dict[str, Any]) -> str:
    """A conflict option: the value, its side, and what keeping it writes on the other side."""
    source = SOURCES.get(option["source"], option["source"])
    # option labels are plain text (not markdown) and never change between runs: the widget
    # keeps its choice by label
    text = f"{option['value']!r}  ({source}" + (
        ", newer: proposed)" if option.get("proposed") else ")"
    )
    writes = option.get("writes")
    if writes:
        other = SOURCES.get(writes["system"], writes["system"])
        text += (
            f" → {other} gets {writes['value']!r}"
            if writes.get("ok")
            else f" → nothing can be written to {other}"
        )
    return text


def _cluster_actions(
    detail: dict[str, Any], versions: dict[str, int], next_id: str | None = None
) -> None:
    iid, records = detail["item"]["item_id"], detail["records"]
    members = [f"{r['source']}|{r['record_id']}" for r in records]
    names = {
        f"{r['source']}|{r['record_id']}": f"{r.get('name') or r.get('email') or ''} ({r['record_id']})"
        for r in records
    }
    master = detail.get("master") or {}
    current = next((m for m in members if m.split("|", 1)[1] == master.get("record_id")), None)
    st.markdown("**Master record** (the one the others merge into)")
    if current is not None:
        who = "the reviewer's choice" if master["by"] == "reviewer" else "the plan's choice"
        st.caption(f"Now: {md(names[current])} ({who})")
    m1, m2 = st.columns([3, 1])
    # keyed per cluster and opened on the current master: "Set master" untouched changes nothing
    m1.selectbox(
        "Master",
        members,
        index=members.index(current) if current is not None else 0,
        format_func=lambda k: names[k],
        key=f"master_pick:{iid}:{master.get('record_id')}",  # opened anew when it changes
        label_visibility="collapsed",
    )
    title = detail["item"]["title"]
    m2.button(
        "Set master",
        key="btn_master",
        on_click=_choose_master,
        args=(
            iid,
            versions.get("master", 0),
            f"master_pick:{iid}:{master.get('record_id')}",
            names,
            title,
        ),
        width="stretch",
    )
    st.markdown("**Split** (move records out of this cluster)")
    s1, s2 = st.columns([3, 1])
    ids = [r["record_id"] for r in records]
    by_id = {r["record_id"]: names[f"{r['source']}|{r['record_id']}"] for r in records}
    s1.multiselect(
        "Move out",
        ids,
        format_func=lambda k: by_id[k],
        key=f"split_pick:{iid}",
        label_visibility="collapsed",
        placeholder="records to move out",
    )
    s2.button(
        "Split",
        key="btn_split",
        on_click=_split,
        args=(iid, ids, versions.get("split", 0), next_id, by_id, title),
        width="stretch",
    )
    # the fields the merge compares, by the CRM's own names (what a choice must name)
    per_field: dict[str, dict[str, Any]] = master.get("values") or {}
    if not per_field or not detail.get("merge_item_id"):
        return
    st.markdown("**Surviving value per field** (written onto the master after the merge)")
    fields = sorted(per_field)
    field_key = f"survive_field:{iid}"
    if st.session_state.get(field_key) not in fields:
        st.session_state[field_key] = fields[0]
    f1, f2 = st.columns([1, 2])
    name = f1.selectbox("Field", fields, key=field_key, label_visibility="collapsed")
    per = per_field[name]
    options = [
        {
            "value": per.get(r["record_id"]),
            "source": f"{r['source']}:{r['record_id']}",
            "who": names[f"{r['source']}|{r['record_id']}"],  # the record, as messages name it
        }
        for r in records
        if per.get(r["record_id"]) not in (None, "")
    ]
    chosen = detail.get("chosen") or {}
    # opened on what survives now: the reviewer's choice, else the plan's survivorship
    survives = chosen.get(name, (master.get("survivors") or {}).get(name))
    at = next((i for i, o in enumerate(options) if o["value"] == survives), None)
    if at is not None:
        st.caption(f"Survives now: {md(repr(survives))}")
    # keyed by what survives: a new choice opens the widget anew on it (labels stay fixed)
    widget = f"survive_value:{iid}:{name}:{stable_id(repr(survives), length=8)}"
    f2.radio(
        "Value",
        range(len(options)),
        index=at if at is not None else 0,
        format_func=lambda i: f"{options[i]['value']}  ({options[i]['source']})",
        key=widget,
        label_visibility="collapsed",
    )
    if chosen:
        st.caption("Chosen so far: " + ", ".join(f"{k} = {v!r}" for k, v in chosen.items()))
    st.button(
        "Keep this value",
        key="btn_survive",
        on_click=_choose_value,
        args=(iid, name, options, versions.get(f"conflict_value:{name}", 0), widget, title),
    )


def render(ses: Session, state: dict[str, Any]) -> None:
    """The Queue tab."""
    show_flash()
    ss = st.session_state
    # a tab not drawn drops its widgets' state: the place in the queue is kept aside too
    for key in ("page", "item"):
        if key not in ss and f"_kept_{key}" in ss:
            ss[key] = ss[f"_kept_{key}"]
    filt = current_filter()
    size = ses.cfg.review.page_size
    if filt.text:
        with st.spinner("Indexing names, emails and domains for search (once per match run)…"):
            try:
                review.ensure_search(ses.db)
            except LockedError as exc:
                st.warning(busy_text(exc, "Search cannot index names yet (clear it to review)"))
                return
    pg = review.queue(ses.db, filt, page=int(ss.get("page", 1)) - 1, page_size=size)
    if int(ss.get("page", 1)) > pg.pages:
        ss["page"] = pg.pages
        pg = review.queue(ses.db, filt, page=pg.pages - 1, page_size=size)
    top = st.columns([2, 1, 1])
    noun = "item" if pg.total == 1 else "items"
    top[0].markdown(f"#### {pg.total:,} {noun} · {STATUS_TEXT.get(filt.status, filt.status)}")
    top[1].number_input(
        f"Page (of {pg.pages:,})", min_value=1, max_value=pg.pages, step=1, key="page"
    )
    top[2].caption(
        f"match run `{state['match_run_id'] or '-'}`  \nplan run `{state['plan_run_id'] or '-'}`"
    )
    _bulk_box()
    ids = [it["item_id"] for it in pg.items]
    by_id = {it["item_id"]: it for it in pg.items}
    pinned = ss.get("pinned")
    if pinned and pinned != ss.get("item"):
        ss.pop("pinned", None)  # the reviewer moved on
        ss.pop("pinned_next", None)
    elif pinned and pinned not in by_id:
        try:
            row = review.item_detail(ses.db, pinned, ses.cfg)["item"]
        except ReconError:
            row = None
        if row is not None:
            ids.insert(0, pinned)
            by_id[pinned] = row
    if not ids:
        st.success("Nothing to review with these filters.")
        return
    edge = ss.pop("edge", None)  # a move past this page's first or last item
    if ss.get("item") not in by_id:
        # decided at the page's end, the item left the filter: the one after it took its
        # place at the end; arrived from the next page (K): its last item
        ss["item"] = ids[-1] if edge in ("last", "back") else ids[0]
    _queue_table(pg.items)
    pos = ids.index(ss["item"])
    prev_id = ids[pos - 1] if pos > 0 else None
    next_id = ids[pos + 1] if pos + 1 < len(ids) else None
    if ss["item"] == ss.get("pinned") and ss.get("pinned_next") in by_id:
        next_id = ss["pinned_next"]  # decided again, the queue goes on where it was
    page = int(ss.get("page", 1))
    more_after, more_before = page < pg.pages, page > 1
    pick, back, forward = st.columns([10, 1, 1], vertical_alignment="bottom")
    pick.selectbox(
        "Item",
        ids,
        # no decision icon in the label: a label that changes under the widget (a decision
        # made) would make it lose its choice and jump to another item
        format_func=lambda i: (
            f"{KINDS[by_id[i]['kind']][:-1]} · {by_id[i]['tier']} · {review.format_score(by_id[i]['score'])} · {by_id[i]['title']}"
        ),
        key="item",
    )
    back.button(
        "◀",
        key="btn_prev",
        on_click=_goto if prev_id is not None else _turn_page,
        args=(prev_id,) if prev_id is not None else (-1,),
        disabled=prev_id is None and not more_before,
        shortcut="K",
        help="Previous item (K)",
        width="stretch",
    )
    forward.button(
        "▶",
        key="btn_next",
        on_click=_goto if next_id is not None else _turn_page,
        args=(next_id,) if next_id is not None else (1,),
        disabled=next_id is None and not more_after,
        shortcut="J",
        help="Next item (J)",
        width="stretch",
    )
    if next_id is None:
        ss["at_last"] = ss["item"]  # a decision here moves on to what takes its place
    item_id = ss["item"]
    ss["_kept_page"], ss["_kept_item"] = int(ss.get("page", 1)), item_id
    try:
        detail = review.item_detail(ses.db, item_id, ses.cfg)
    except ReconError as exc:
        st.error(str(exc))
        return
    st.divider()
    left, right = st.columns([3, 2], gap="medium")
    with left:
        item = detail["item"]
        st.markdown(f"### {md(item['title'])}")
        st.caption(
            f"{KINDS[item['kind']][:-1]} · {item['object']} · tier **{item['tier']}** · id `{item_id}`"
        )
        if item["kind"] == "stale":
            stale_versions(detail.get("stale") or {})
        comparison(detail)
        if detail["related"]:
            with st.expander(f"Related records ({len(detail['related'])})"):
                st.dataframe(pd.DataFrame(detail["related"]), hide_index=True, width="stretch")
        if detail["history"]:
            with st.expander(f"Decision history ({len(detail['history'])})"):
                cols = [
                    "decision_id",
                    "kind",
                    "label",
                    "choice",
                    "reviewer",
                    "decided_at",
                    "version",
                    "based_on_version",
                    "superseded",
                    "note",
                ]
                st.dataframe(
                    pd.DataFrame(detail["history"])[cols], hide_index=True, width="stretch"
                )
    with right:
        status(detail, item)
        _actions(detail, next_id)
        st.markdown("#### Why recon suggests this")
        if item.get("tier") == "approved" and item.get("kind") == "link":
            st.info(
                "The latest match run no longer proposes this pair (an edit moved the records "
                "apart, or the weights changed). It stays a link because a person approved it: "
                "its records keep syncing. Reject it to unlink them."
            )
        else:
            explanation(detail)


STATUS_TEXT = {
    "undecided": "undecided",
    "decided": "decided",
    "deferred": "deferred",
    "all": "all statuses",
}
