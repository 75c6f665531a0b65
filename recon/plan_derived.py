"""Derived values: the contacts' lifecycle stage onto their company (seed 003).

HubSpot's connector moves a company's lifecycle stage forward when one of its
contacts advances; recon plans the same as the ``companies.lifecyclestage``
mapping (``[mapping] lifecycle_to_company``), for linked companies only, forward only
(a company at ``other`` or a stage of the portal's own is never moved), under the
mapping's rule like a value coming to HubSpot (``always_hubspot`` never writes it,
``review`` asks for each write's approval).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .mapping import FieldMap
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = ["LIFECYCLE_STAGES", "lifecycle_sources", "plan_lifecycle"]


#: HubSpot lifecycle stages, earliest first ("other" never propagates)
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
_RANK = {s: i for i, s in enumerate(LIFECYCLE_STAGES)}


def _seq(name: str) -> int:
    from .plan_build import SEQ

    return SEQ[name]


def lifecycle_sources(p: Planner, known: dict[str, Any] | None = None) -> None:
    """The most advanced lifecycle stage among each HubSpot company's contacts (seed 003).

    ``known``: raw ``lifecyclestage`` values of contacts already decoded (others are decoded here).
    """
    p.company_stage = {}
    if not any(
        m.derived == "lifecycle" and m.rule != "dont_sync" for ms in p.maps.values() for m in ms
    ):
        return
    rank = _RANK
    known = known or {}
    for cid, rec in p.view.records.get(("hubspot", "contacts"), {}).items():
        if rec.archived:
            continue
        raw = known.get(cid, _MISSING)
        if raw is _MISSING:
            raw = rec.fields.get("lifecyclestage")
        stage = str(raw or "").strip().lower()
        if stage not in rank:
            continue
        for company in p.view.hs_company_of.get(cid, ()):
            cur = p.company_stage.get(company)
            if cur is None or rank[stage] > rank[cur]:
                p.company_stage[company] = stage


_MISSING = object()


def plan_lifecycle(
    p: Planner, fm: FieldMap, link: dict[str, Any], hs: Rec, fields: dict[str, Any] | None = None
) -> None:
    """Move a linked company's lifecycle stage forward to its most advanced contact's.

    ``fields``: ``hs.fields`` when the caller has them decoded already.
    """
    src = p.company_stage.get(hs.record_id)
    if src is None:
        return
    if p.direction[fm.object] not in ("two_way", "salesforce_to_hubspot"):
        p.skipped["direction"] += 1  # a write onto HubSpot companies, which the direction forbids
        return
    if fields is None:
        fields = hs.fields
    cur = str(fields.get(fm.hubspot) or "").strip().lower()
    rank = _RANK
    if cur and cur not in rank:
        # "other" (last in HubSpot's order) or a stage of the portal's own: no stage of the
        # contacts is known to be ahead of it, and stages only move forward
        p.skipped["lifecycle_stage_unranked"] += 1
        return
    if cur in rank and rank[cur] >= rank[src]:
        return  # lifecycle stages only move forward
    # the mapping's rule, as for a value coming to HubSpot: the contacts' stage is the value
    # offered, the company's own the one it would replace (blank, or set and different)
    code, why = p.cells(fm)[1 if not cur else 2]
    if code == "skip":
        p.skipped[why] += 1
        return
    if code not in ("to_hubspot", "newer", "review"):  # a rule whose winner is HubSpot's value
        p.skipped[f"rule_{fm.rule}"] += 1
        return
    reason = {
        "rule": "lifecycle_to_company",
        "mapping_rule": fm.rule,
        "why": "contact_stage_ahead",
        "mapping": fm.key,
        "score": link["score"],
        "tier": link["tier"],
        "direction": "hubspot",
    }
    before = fields.get(fm.hubspot)
    p.update(link, "hubspot", "companies", hs, fm.hubspot, before, src, fm, reason, _seq("derived"))
    if code == "review":  # the `review` rule: this write needs its own approval
        kept = p.hs_writes.get(("companies", hs.record_id, fm.hubspot))
        if kept is not None and kept[1]["reason"] is reason:
            item = kept[1]
            item["status"] = "needs_review"
            item["requires"] = [*item["requires"], item["item_id"]]
