"""The selected item's side-by-side records, explanation and current decisions (Queue tab)."""

from __future__ import annotations

import json
import re
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from .. import review

ICONS = {
    None: "○",
    "match": "✓",
    "approve": "✓",
    "non_match": "✗",
    "reject": "✗",
    "unsure": "…",
    "defer": "…",
}
SOURCES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def md(text: Any) -> str:
    """CRM or reviewer text made safe to embed in markdown (no links, markup or HTML from data)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def record_title(rec: dict[str, Any]) -> str:
    return f"{SOURCES.get(rec['source'], rec['source'])} {rec['object']} · {rec['record_id']}"


def comparison(detail: dict[str, Any]) -> None:
    records = detail["records"]
    heads = [record_title(r) for r in records]
    rows = {
        f["field"]: ["—" if v in (None, "") else str(v) for v in f["values"]]
        for f in detail["fields"]
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=heads)
    differs = {f["field"] for f in detail["fields"] if f["differs"]}
    frame.insert(0, "≠", ["≠" if f in differs else "" for f in frame.index])
    styled = frame.style.apply(
        lambda row: ["background-color: #fff1c2" if row.name in differs else "" for _ in row],
        axis=1,
    )
    # narrow columns: the records side by side even beside the action panel on a laptop
    # (a long value is cut; hovering shows it whole)
    rec_width = max(140, 340 // max(1, len(heads)))
    columns = {"≠": st.column_config.TextColumn("≠", width=32)}
    columns.update({h: st.column_config.TextColumn(h, width=rec_width) for h in heads})
    st.dataframe(
        styled,
        width="stretch",
        height=min(38 + 35 * len(frame), 560),
        column_config=columns,
    )
    links = [f"[{md(record_title(r))} ↗](<{r['link']}>)" for r in records if r.get("link")]
    st.markdown(
        " · ".join(links)
        if links
        else "_Record links need `hubspot.portal_id` and `salesforce.instance_url` in recon.toml._"
    )
    missing = [r["record_id"] for r in records if r.get("missing")]
    if missing:
        st.warning(f"Not in the store's snapshots: {', '.join(missing)}")
    with st.expander("All fields as pulled"):
        # the field times a two_way rule reads are no field of the record
        keys = sorted({k for r in records for k in r.get("data", {})} - {"propertiesWithHistory"})
        data = {k: [_cell(r.get("data", {}).get(k)) for r in records] for k in keys}
        st.dataframe(pd.DataFrame.from_dict(data, orient="index", columns=heads), width="stretch")


def _cell(value: Any) -> str:
    """A pulled value as the comparison above shows it: blanks as "—" (they read "None").

    Examples:
        >>> [_cell(v) for v in (None, "", 0, False, ["a"], "x")]
        ['—', '—', '0', 'False', '["a"]', 'x']
    """
    if value is None or value == "":
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def stale_versions(stale: dict[str, Any]) -> None:
    """A stale write: what the decision saw, what the CRM holds now, what the plan writes."""
    if not stale.get("fields"):
        st.info("No longer stale: this write was settled by a later apply.")
        return
    crm = SOURCES.get(stale.get("system") or "", stale.get("system") or "CRM")
    if stale.get("by_recon_merge"):
        st.warning(
            "Recon's own merge into this record (the same plan, merge item "
            f"`{stale['by_recon_merge']}`) left another value in this field than this write "
            "plans: not overwritten. Choose which value stays: *Write anyway* writes the "
            "planned one, *Drop* keeps the merge's."
        )
        shown = ["Snapshot (reviewed)", "After the merge", "Plan writes"]
    elif stale.get("changed_members"):  # a merge: which of its records changed
        changed = "; ".join(
            f"`{str(rid).replace('`', '')}` reviewed as of {md(t.get('reviewed') or '?')} · now {md(t.get('now') or '?')}"
            for rid, t in sorted(stale["changed_members"].items())
        )
        st.warning(
            f"{crm} records of this merge changed after review: not merged. {changed} "
            f"(apply run `{stale.get('apply_run_id') or '?'}`)."
        )
        shown = ["Snapshot (reviewed)", f"{crm} now", "Plan writes"]
    else:
        st.warning(
            f"{crm} changed this record after review: not overwritten. Snapshot "
            f"{md(stale.get('snapshot_modified_at') or '?')} · now {md(stale.get('current_modified_at') or '?')} "
            f"(apply run `{stale.get('apply_run_id') or '?'}`)."
        )
        shown = ["Snapshot (reviewed)", f"{crm} now", "Plan writes"]
    frame = pd.DataFrame(
        [
            ["—" if f[k] in (None, "") else str(f[k]) for k in ("snapshot", "current", "planned")]
            for f in stale["fields"]
        ],
        index=[f["field"] for f in stale["fields"]],
        columns=shown,
    )
    st.dataframe(frame, width="stretch")


#: the explanation table's columns, in order: the weight (what each comparison adds to the
#: total, log2 Bayes factor) before the long meaning
EXPLANATION_COLUMNS: dict[str, Any] = {
    "comparison": st.column_config.TextColumn("comparison"),  # as wide as their words
    "level": st.column_config.TextColumn("level"),
    "weight": st.column_config.NumberColumn(
        "weight",
        format="%+.2f",
        width=64,
        help="What this comparison adds to the total weight (log2 Bayes factor)",
    ),
    "meaning": st.column_config.TextColumn("meaning", width="large"),
}


def explanation(detail: dict[str, Any]) -> None:
    exp = detail["explanation"]
    if detail["item"]["kind"] == "duplicate":
        st.markdown(
            f"**Cluster of {detail['item']['members']} records** · weakest link {review.format_score(detail['item']['score'])}"
        )
        pairs = [
            {
                "pair": f"{p['record_id_l']} ↔ {p['record_id_r']}",
                "score": p["score"],
                "weight": p["match_weight"],
            }
            for p in detail["pairs"]
        ]
        if pairs:
            st.dataframe(
                pd.DataFrame(pairs),
                hide_index=True,
                width="stretch",
                column_config={
                    "score": st.column_config.NumberColumn(format=review.SCORE_FORMAT),
                    "weight": st.column_config.NumberColumn(format="%+.2f"),
                },
            )
        levels = [lv for p in detail["pairs"][:1] for lv in p["explanation"]]
    elif exp:
        levels = exp["levels"]
    else:
        levels = []
    if exp:
        st.markdown(
            f"**{'Link score' if detail['item']['kind'] == 'conflict' else 'Score'} {review.format_score(exp['score'])}** · total weight {exp['total'] or 0:+.2f} · tier `{exp['tier']}`"
        )
        if exp["flags"]:
            st.warning("Flags: " + ", ".join(exp["flags"]))
        vetoes = [lv for lv in levels if lv.get("vetoes_auto")]
        if vetoes and exp["tier"] != "auto":
            why = ", ".join(f"{lv['comparison']} = {lv['level']}" for lv in vetoes)
            st.info(
                f"Held for review whatever the score: {md(why)} keeps a pair out of *auto* "
                "(a strong key is evidence, not a verdict)."
            )
    if not exp and not levels:
        st.caption(
            "The latest match run scored no pair for these records (a link approved from an "
            "earlier run, or records an edit moved apart): there is no score to explain."
        )
    if levels:
        frame = pd.DataFrame(levels)
        frame["side"] = frame["weight"].map(lambda w: "for a match" if w >= 0 else "against")
        chart = (
            alt.Chart(frame)
            .mark_bar(size=16)
            .encode(
                x=alt.X("weight:Q", title="weight (log2 Bayes factor)"),
                y=alt.Y("comparison:N", sort=None, title=None),
                color=alt.Color(
                    "side:N",
                    scale=alt.Scale(
                        domain=["for a match", "against"], range=["#2e7d32", "#c62828"]
                    ),
                    legend=None,
                ),
                tooltip=["comparison", "level", "meaning", "weight"],
            )
            .properties(height=alt.Step(26))
        )
        st.altair_chart(chart, width="stretch")
        # the weight (what each comparison adds to the total) before the long meaning: seen
        # beside the action panel without scrolling sideways; the meaning last, whole on hover
        st.dataframe(
            frame[list(EXPLANATION_COLUMNS)],
            hide_index=True,
            width="stretch",
            column_config=EXPLANATION_COLUMNS,
        )


#: the decisions that answer an item (a cluster's master and surviving values only shape
#: the merge once it is approved)
ANSWERS = {
    "link": ("link",),
    "duplicate": ("duplicate", "split"),
    "conflict": ("conflict_value",),
    "stale": ("plan",),
}


def status(detail: dict[str, Any], item: dict[str, Any]) -> None:
    current = [h for h in detail["history"] if not h["superseded"]]
    answers = ANSWERS.get(item["kind"], ())
    main = [h for h in current if h["kind"] in answers and h["item_id"] == item["item_id"]]
    if not main and not detail.get("settled"):  # a conflict its link's rejection answers
        st.info("Not decided yet.")
    for h in current:
        choice = json.loads(h["choice"]) if h["choice"] else None
        extra = f" · choice `{json.dumps(choice, ensure_ascii=False)[:120]}`" if choice else ""
        who = (
            f"recon ({md(h.get('note') or 'a record it created')}; no person's review)"
            if h.get("decided_by") == "recon"
            else md(h["reviewer"] or h["decided_by"])
        )
        text = f"{ICONS.get(h['label'], '•')} **{h['kind']}: {h['label']}** by {who} at {h['decided_at'][:19]} (v{h['version']}){extra}"
        if h in main:
            (st.success if h["label"] in review.FINAL_LABELS else st.warning)(text)
        else:  # a master or a surviving value: part of the merge, not its answer
            st.caption(text)
    link = detail.get("link_decision")
    settled = detail.get("settled")
    if settled:
        st.warning(
            f"{md(settled[:1].upper() + settled[1:])}. Nothing to decide here: to decide it, "
            "undo or change the link's decision."
        )
    elif item["kind"] == "conflict" and not (link and link.get("label") in ("match", "approve")):
        st.info(
            "Its link is not approved yet: the value kept here is written once the two "
            "records are confirmed as the same (approve the link, or let the policy)."
        )
