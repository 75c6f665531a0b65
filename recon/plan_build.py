"""The plan computation: field updates, conflicts and owners for every link.

:class:`Planner` turns a :class:`~recon.plan_load.StoreView` and the resolved
mappings into plan items (dicts shaped like ``plan_items`` rows); creates and
associations come from :mod:`recon.plan_create`, merges from
:mod:`recon.plan_merge`, the comparison of linked pairs from :mod:`recon.plan_links`;
:mod:`recon.plan_run` loads, computes and stores.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import eq, itemgetter
from typing import Any

import numpy as np

from .mapping import FieldMap, MappingCheck, allowed, decide, same_second
from .plan_create import plan_associations, plan_creates
from .plan_item import FieldWrite, Item, field_reason, write_payload
from .plan_links import contact_decides, diff_pairs, diff_plan, plan_links
from .plan_load import Rec, StoreView
from .plan_merge import plan_merges
from .plan_values import (
    TEXT_KINDS,
    OwnerMap,
    fast_stable_id,
    is_opt_out,
    norm_fast,
    opted_out,
    to_hubspot_value,
    to_salesforce_value,
    value_key,
    values_equal,
)

__all__ = ["SEQ", "Planner", "hold_undone", "run_order", "written_values"]

log = logging.getLogger(__name__)

#: run order of the item kinds (lower first)
SEQ = {
    "merge_salesforce": 10,
    "merge_hubspot": 20,
    "create_companies": 30,
    "create_contacts": 40,
    "update": 50,
    "derived": 60,
    "associate": 70,
}
_WRITES_SF = ("two_way", "hubspot_to_salesforce")
_WRITES_HS = ("two_way", "salesforce_to_hubspot")


class Planner:
    """Computes plan items from a store view, resolved mappings and the config."""

    def __init__(
        self, view: StoreView, chk: MappingCheck, cfg: Any, sample: int | None = None
    ) -> None:
        self.view = view
        self.cfg = cfg
        self.sample = sample
        self.om = OwnerMap(view.owners)
        self.direction = {"companies": cfg.mapping.companies, "contacts": cfg.mapping.contacts}
        self.maps: dict[tuple[str, str], list[FieldMap]] = {}
        for m in chk.mappings:
            self.maps.setdefault((m.object, m.salesforce_object), []).append(m)
        self.items: dict[str, Item] = {}
        self.skipped: Counter[str] = Counter()
        for what, n in view.rejected.items():  # rejected by a reviewer: left out of the plan
            if n:
                self.skipped[f"{what[:-1]}_rejected"] += n
        if view.approved_elsewhere:  # an approved link whose record this run links elsewhere
            self.skipped["approved_link_elsewhere"] += view.approved_elsewhere
        # (object, record id, property) -> (rank, item, its id): one HubSpot write per property
        self.hs_writes: dict[tuple[str, str, str], tuple[tuple[Any, ...], Item, str]] = {}
        # (HubSpot contact, property) -> item ids of writes onto its linked Leads
        self.lead_writes: dict[tuple[str, str], list[str]] = {}
        # link indexes (all links, even when sampling: creates must not duplicate linked records)
        self.linked: dict[str, set[str]] = {"hubspot": set(), "salesforce": set()}  # ids per side
        self.company_of_account: dict[str, tuple[str, str]] = {}  # SF Account -> (HS company, pair)
        self.account_of_company: dict[str, tuple[str, str]] = {}  # HS company -> (SF Account, pair)
        self.norm_links: list[dict[str, Any]] = []
        self.sampled_links: list[dict[str, Any]] = []  # the links compared (a sample: its own)
        # (object, Salesforce object) -> resolved (link, HubSpot record, Salesforce record)
        self.link_groups: dict[tuple[str, str], list[tuple[dict[str, Any], Rec, Rec]]] = {}
        self.account_create: dict[str, str] = {}  # SF Account -> item creating its HS company
        self.assoc_counts: Counter[tuple[str, str]] | None = None  # most_associated master rule
        self.company_stage: dict[str, str] = {}  # HS company -> most advanced contact stage
        self.cache: dict[Any, Any] = {}
        # (source, object) creates were held back for: the store has them only in part
        self.partial_targets: set[tuple[str, str]] = set()
        #: creates held back per object they would go to that the config leaves out of the sync
        self.unsynced_targets: Counter[tuple[str, str]] = Counter()
        #: two_way HubSpot properties compared without their field times (not pulled yet)
        self.times_unread: set[str] = set()
        self.undone_held = 0  # writes an applied undo took back, proposed again (hold_undone)
        self.gaps: dict[tuple[str, str, str, str, str], dict[str, int]] = {}
        self.eq_cache: dict[tuple[int, type, Any, type, Any], bool] = {}
        self.cell_cache: dict[int, tuple[tuple[str, str], ...]] = {}
        # (mapping, value) -> (converted value, problem)
        self.conv_sf: dict[tuple[int, type, Any], tuple[Any, str | None]] = {}
        self.conv_hs: dict[tuple[int, type, Any], tuple[Any, str | None]] = {}
        links = view.links  # HubSpot ⇄ Salesforce links only (see load_view)
        self.norm_links = list(links)
        # the link indexes, column by column in C
        hs_ids = list(map(itemgetter("hs_id"), links))
        sf_ids = list(map(itemgetter("sf_id"), links))
        self.linked["hubspot"].update(hs_ids)
        self.linked["salesforce"].update(sf_ids)
        company = list(map(eq, map(itemgetter("object"), links), repeat("companies")))
        c_hs, c_sf = list(compress(hs_ids, company)), list(compress(sf_ids, company))
        c_pair = list(compress(map(itemgetter("pair_id"), links), company))
        # a company link with a missing or archived end says nothing of where contacts go
        hs_co = view.records.get(("hubspot", "companies"), {})
        sf_acc = view.records.get(("salesforce", "Account"), {})
        live = [
            a is not None and b is not None and not a.archived and not b.archived
            for a, b in zip(map(hs_co.get, c_hs), map(sf_acc.get, c_sf), strict=True)
        ]
        c_hs, c_sf = list(compress(c_hs, live)), list(compress(c_sf, live))
        c_pair = list(compress(c_pair, live))
        # the first link of a record wins: built from the last, the first assignment stays
        self.company_of_account = dict(
            zip(reversed(c_sf), reversed(list(zip(c_hs, c_pair, strict=True))), strict=True)
        )
        self.account_of_company = dict(
            zip(reversed(c_hs), reversed(list(zip(c_sf, c_pair, strict=True))), strict=True)
        )

    # ------------------------------------------------------------------ helpers

    def _sampled(self, rows: list[Any], key: Any = None) -> list[Any]:
        if self.sample is None:
            return rows
        counts: Counter[Any] = Counter()
        out = []
        for r in rows:
            k = key(r) if key else None
            if counts[k] < self.sample:
                counts[k] += 1
                out.append(r)
        return out

    def add(self, item: Item) -> str:
        """Add one item (first one wins on an id collision); its id."""
        self.add_all((item,))
        iid: str = item["item_id"]
        return iid

    def add_all(self, items: Iterable[Item]) -> None:
        """Add items in order (the first of an id wins; later ones count as ``duplicate_item``)."""
        have, skipped = self.items, self.skipped
        for item in items:
            iid = item["item_id"]
            if iid in have:
                skipped["duplicate_item"] += 1
            else:
                have[iid] = item

    @staticmethod
    def item(
        item_id: str,
        action: str,
        system: str,
        obj: str,
        record_id: str | None,
        field: str | None,
        before: Any,
        after: Any,
        modified_at: str | None,
        link: str | None,
        requires: list[str],
        reason: dict[str, Any],
        payload: dict[str, Any],
        seq: int,
        status: str = "proposed",
    ) -> dict[str, Any]:
        """A plan item dict (JSON columns still as Python values)."""
        return {
            "item_id": item_id,
            "action": action,
            "system": system,
            "object": obj,
            "record_id": record_id,
            "field": field,
            "before": before,
            "after": after,
            "snapshot_modified_at": modified_at,
            "link_item_id": link,
            "requires": requires,
            "reason": reason,
            "status": status,
            "seq": seq,
            "payload": payload,
        }

    def sf_value(self, sf: Rec, fm: FieldMap, fields: dict[str, Any] | None = None) -> Any:
        """The Salesforce-side value of a mapping (derived values computed).

        ``fields``: ``sf.fields`` when the caller has them decoded already.
        """
        if fields is None:
            fields = sf.fields
        if fm.derived == "account_name":  # pull flattens the relationship as "Account.Name"
            if fields.get("Account.Name") is not None:
                return fields["Account.Name"]
            acct = self.view.records.get(("salesforce", "Account"), {}).get(
                str(sf.account_id or "")
            )
            return acct.name if acct is not None else None
        if fm.derived == "campaigns":
            names = self.view.campaigns.get(sf.record_id)
            return ";".join(names) if names else None
        return fields.get(fm.salesforce)

    def to_sf(self, fm: FieldMap, hn: Any) -> tuple[Any, str | None]:
        """A normalised HubSpot value as the Salesforce field takes it, or (None, problem)."""
        key = (id(fm), type(hn), hn)
        hit = self.conv_sf.get(key)
        if hit is None:  # options, owners and numbers repeat: each value converted once
            hit = self.conv_sf[key] = to_salesforce_value(fm, hn, self.om)
        value, problem = hit
        if problem:
            self._gap(fm, "salesforce", problem, hn)
        return value, problem

    def to_hs(self, fm: FieldMap, sn: Any) -> tuple[Any, str | None]:
        """A normalised Salesforce value as the HubSpot property takes it, or (None, problem)."""
        key = (id(fm), type(sn), sn)
        hit = self.conv_hs.get(key)
        if hit is None:
            hit = self.conv_hs[key] = to_hubspot_value(fm, sn, self.om)
        value, problem = hit
        if problem:
            self._gap(fm, "hubspot", problem, sn)
        return value, problem

    def _gap(self, fm: FieldMap, target: str, problem: str, value: Any) -> None:
        key = (fm.key, fm.salesforce_object, fm.salesforce, target, problem)
        seen = self.gaps.setdefault(key, {})
        text = ";".join(value) if isinstance(value, tuple) else str(value)
        if problem == "owner_unmapped":  # named by e-mail too: the join a person can fix
            other = "hubspot" if target == "salesforce" else "salesforce"
            email = self.om.email.get((other, text))
            text = f"{text} <{email}>" if email else text
        if text in seen or len(seen) < 5:
            seen[text] = seen.get(text, 0) + 1
        else:
            seen["…"] = seen.get("…", 0) + 1

    def gap_warnings(self) -> list[tuple[str, str]]:
        """Values that could not be written (no such option, not a number), and creates held
        back for objects pulled only in part, as warnings."""
        out = [
            (
                f"{source}.{obj}",
                f"no record is created in {source} {obj}: "
                + (
                    "the store holds none of its records (never pulled nor loaded from a "
                    "file), so a create could copy one that exists there; pull it first "
                    f"(`recon pull --source {source}`)"
                    if (source, obj) in self.view.never_read
                    else "it was pulled only in part (a --sample pull, or one that stopped); "
                    "run a whole `recon pull` first"
                ),
            )
            for source, obj in sorted(self.partial_targets)
        ]
        out += [
            (
                f"{source}.{obj}",
                f"{count:,} record(s) are not created: they "
                f"would become {source} {obj} records, which [{source}] objects leaves out of "
                f"the sync (recon never reads them, so a create could copy one that exists "
                f'there); add "{obj}" to [{source}] objects'
                + (
                    ', or set [mapping] new_contact_as = "Contact" to create the HubSpot contacts '
                    "whose company is linked to an Account as Contacts"
                    if obj == "Lead" and self.cfg.mapping.new_contact_as == "Lead"
                    else ""
                ),
            )
            for (source, obj), count in sorted(self.unsynced_targets.items())
        ]
        if self.times_unread:
            out.append(
                (
                    "two_way",
                    f"{', '.join(sorted(self.times_unread))}: no field times in the store (made "
                    "two_way since the last pull): their differing values wait for review "
                    "(times_missing); `recon pull` reads the times (every record once)",
                )
            )
        if self.view.pinned:
            out.append(
                (
                    "links",
                    f"{len(self.view.pinned)} approved link(s) the match run no longer proposes "
                    "are kept (an edit moved their records apart, or the weights changed): they "
                    'still sync; the review queue lists them (tier "approved"): reject one '
                    "there to unlink its records",
                )
            )
        if self.view.approved_elsewhere:
            out.append(
                (
                    "links",
                    f"{self.view.approved_elsewhere} link(s) a person approved are not synced: "
                    "the match run (or a newer approval) links one of their records elsewhere "
                    f"(e.g. {'; '.join(self.view.elsewhere_examples)}); the policy does not "
                    "approve such a new link: a person decides between them in review",
                )
            )
        if self.undone_held:
            out.append(
                (
                    "undo",
                    f"{self.undone_held} write(s) an applied `recon undo` took back (or a "
                    "reviewer dropped as stale) are proposed "
                    "again: each needs its own approval (the review app's Plan tab, \"writes "
                    "proposed again after an undo or a drop\"); the links' approvals alone do not "
                    "apply them",
                )
            )
        for (key, sf_obj, sf_field, target, problem), seen in sorted(self.gaps.items()):
            where = (
                f"Salesforce {sf_obj}.{sf_field}" if target == "salesforce" else f"HubSpot {key}"
            )
            values = ", ".join(repr(v) for v in seen if v != "…")
            n = sum(seen.values())
            what = {
                "option_missing": "no option on",
                "not_an_integer": "not a whole number for",
                "owner_unmapped": "no active owner with the same e-mail for",
            }.get(problem, "not a number for")
            hint = {
                "option_missing": "map them with options in [[mapping.fields]]",
                "owner_unmapped": "give the person a user with that e-mail (or activate it)",
            }.get(problem, "fix the values or the mapping")
            out.append(
                (
                    f"mapping.{key}@{sf_obj}",
                    f"{n} value(s) have {what} {where} (e.g. {values}); {hint}; they are not synced",
                )
            )
        return out

    # ------------------------------------------------------------------ links

    def plan_links(self) -> None:
        """Field updates, owners and conflicts for every (sampled) link (see :mod:`recon.plan_links`)."""
        plan_links(self)

    def _diff_plan(
        self, obj: str, sf_obj: str
    ) -> tuple[list[FieldMap], list[str], list[str], list[FieldMap]]:
        return diff_plan(self, obj, sf_obj)

    def diff(self, link: dict[str, Any], hs: Rec, sf: Rec) -> None:
        """Compare every mapped field of one linked pair and plan what the rules say."""
        diff_pairs(self, link["object"], link["sf_object"], [(link, hs, sf)])

    def decided_by_contact(self) -> dict[str, frozenset[str]]:
        """HubSpot contact id -> the properties its link to a Salesforce Contact decides
        (:func:`recon.plan_links.contact_decides`, read once per plan)."""
        hit = self.cache.get("contact_decides")
        if hit is None:
            hit = self.cache["contact_decides"] = contact_decides(self)
        result: dict[str, frozenset[str]] = hit
        return result

    def cells(self, fm: FieldMap) -> tuple[tuple[str, str], ...]:
        """What ``fm``'s rule does under its object's direction, per blank case.

        ``(code, why)`` for a HubSpot value with a blank Salesforce one, a Salesforce value
        with a blank HubSpot one, and two different values: ``code`` is ``to_salesforce``,
        ``to_hubspot``, ``review``, ``newer`` (two-way: the times decide) or ``skip`` (``why``
        is then the ``skipped`` counter). Read from :func:`~recon.mapping.decide` and
        :func:`~recon.mapping.allowed` once per mapping, so the truth table has one home.
        """
        hit = self.cell_cache.get(id(fm))
        if hit is not None:
            return hit
        direction = self.direction[fm.object]
        out: list[tuple[str, str]] = []
        for hs_blank, sf_blank in ((False, True), (True, False), (False, False)):
            if fm.rule == "two_way" and not hs_blank and not sf_blank:
                out.append(("newer", ""))
                continue
            o = decide(fm.rule, hs_blank=hs_blank, sf_blank=sf_blank, equal=False)
            if o.action == "none":
                out.append(("skip", f"rule_{fm.rule}"))
            elif not allowed(o, fm, direction):
                out.append(("skip", "direction"))
            else:
                out.append((o.action, o.why))
        cells = self.cell_cache[id(fm)] = tuple(out)
        return cells

    def opt_out(self, fm: FieldMap) -> bool:
        """Whether ``fm`` maps a consent flag (:func:`~recon.plan_values.is_opt_out`), read once."""
        key = ("opt_out", id(fm))
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = is_opt_out(fm.hubspot) or is_opt_out(fm.salesforce)
        return bool(hit)

    def diff_field(
        self, link: dict[str, Any], hs: Rec, sf: Rec, fm: FieldMap, hs_raw: Any, sf_raw: Any
    ) -> None:
        """Apply the rule of one mapping to one linked pair whose raw values differ."""
        kind = fm.kind
        hn, sn = norm_fast(kind, hs_raw), norm_fast(kind, sf_raw)
        if hn == sn if kind == "text" else values_equal(fm, hn, sn, self.om):
            return
        if fm.hubspot == "email" and hn and sn and str(hn).lower() == str(sn).lower():
            return  # HubSpot keeps e-mails in lower case: a case difference is no change
        # a Salesforce checkbox is never blank: unticked is its "no value" (a ticked HubSpot
        # box against it is the "Salesforce blank, HubSpot set" case, not a disagreement)
        sf_blank = sn is None or (kind == "bool" and sn is False)
        code, why = self.cells(fm)[0 if sf_blank else 1 if hn is None else 2]
        if code == "skip":
            self.skipped[why] += 1
            return
        obj, pair_id = link["object"], link["pair_id"]
        direction = self.direction[obj]
        proposal = None
        if code == "newer":
            # times of people's edits: recon's own writes to other fields of a record are not
            # news about this one (StoreView.user_time)
            view = self.view
            hs_time = hs.field_time(fm.hubspot)
            if hs_time is None and (hs.from_file or fm.hubspot in (hs.history or {})):
                # a file carries no field times (nor a value a file changed since): the
                # record's time. A record read from the API without this property's times
                # (made two_way since the last pull) has none: a person decides, since any
                # edit of another property would make the record look newer
                hs_time = view.user_time(hs)
            elif hs_time is None:
                self.times_unread.add(f"{obj}.{fm.hubspot}")
            sf_time = view.user_time(sf)
            out = decide(
                fm.rule,
                hs_blank=False,
                sf_blank=False,
                equal=False,
                hs_time=hs_time,
                sf_time=sf_time,
                last_synced=self.view.last_synced.get(pair_id),
            )
            if not allowed(out, fm, direction):
                self.skipped["direction"] += 1
                return
            code, why = out.action, out.why
            raw_hs, raw_sf = hs.field_time(fm.hubspot) or hs.record_time(), sf.record_time()
            if code != "review" and (raw_hs, raw_sf) != (hs_time, sf_time):
                # a time was taken from before recon's own last write, which cannot be told
                # for sure from a person's edit of another field right after it: when the
                # record's own time would decide otherwise, a person decides
                plain = decide(
                    fm.rule, hs_blank=False, sf_blank=False, equal=False,
                    hs_time=raw_hs, sf_time=raw_sf, last_synced=view.last_synced.get(pair_id),
                )  # fmt: skip
                if plain.action != out.action:
                    code, why = "review", "own_write_unclear"
            if code != "review" and self.conflict_id(pair_id, fm, hs_raw, sf_raw) in view.asked:
                # an earlier plan asked a person about these very values: the question stands
                # (times that settle it now must not answer it behind the reviewer's back)
                code, why = "review", "asked_before"
                proposal = "hubspot" if out.action == "to_salesforce" else "salesforce"
            if why == "both_changed_since_sync" and not same_second(hs_time, sf_time):
                # a person decides; the newer side is what a policy may take ([policy] conflicts)
                proposal = "hubspot" if hs_time > sf_time else "salesforce"  # type: ignore[operator]
        if self.opt_out(fm):
            # a consent flag is only ever set: a person who opted out in one CRM is not
            # resubscribed by the other's unticked box, whatever the rule or the times say
            if (code == "to_salesforce" and opted_out(sn) and not opted_out(hn)) or (
                code == "to_hubspot" and opted_out(hn) and not opted_out(sn)
            ):
                self.skipped["opt_out_kept"] += 1
                return
            if proposal is not None and not opted_out(hn if proposal == "hubspot" else sn):
                proposal = None  # no policy clears one: a person chooses
        if code == "review":
            reason = field_reason(fm, link, why, direction, hs_raw, sf_raw)
            self.conflict(link, fm, hs, sf, hs_raw, sf_raw, hn, sn, reason, proposal)
            return
        # the reason of a write (field_reason) is kept as its parts: FieldWrite builds it
        # when read
        if code == "to_salesforce":
            # text is written as compared; other kinds are converted (options, owners, numbers)
            after, problem = (hn, None) if kind in TEXT_KINDS else self.to_sf(fm, hn)
            system, target, rec, fname, before = (
                "salesforce",
                link["sf_object"],
                sf,
                fm.salesforce,
                sf_raw,
            )
        else:
            after, problem = (sn, None) if kind in TEXT_KINDS else self.to_hs(fm, sn)
            system, target, rec, fname, before = "hubspot", obj, hs, fm.hubspot, hs_raw
        if problem:
            self.skipped[problem] += 1
            return
        rid = rec.record_id
        iid = fast_stable_id("update", system, target, rid, fname, pair_id)
        write = FieldWrite(
            iid, "owner" if kind == "owner" else "update", system, target, rid, fname, before,
            after, rec.snapshot_time, SEQ["update"], link, fm, why, direction, hs_raw, sf_raw,
        )  # fmt: skip
        self._keep_write(link, system, obj, rid, fm, iid, write)

    def update(
        self,
        link: dict[str, Any],
        system: str,
        obj: str,
        rec: Rec,
        fname: str,
        before: Any,
        after: Any,
        fm: FieldMap,
        reason: dict[str, Any],
        seq: int | None = None,
    ) -> None:
        """Plan one field write onto a linked record, with its own ``reason`` (derived values:
        plain mappings' writes are made by :meth:`diff_field`)."""
        pair_id = link["pair_id"]
        iid = fast_stable_id("update", system, obj, rec.record_id, fname, pair_id)
        item = self.item(
            iid,
            "owner" if fm.kind == "owner" else "update",
            system,
            obj,
            rec.record_id,
            fname,
            before,
            after,
            rec.snapshot_time,
            pair_id,
            [pair_id],
            reason,
            write_payload(system, fname, after),
            seq or SEQ["update"],
        )
        self._keep_write(link, system, link["object"], rec.record_id, fm, iid, item)

    def _keep_write(
        self,
        link: dict[str, Any],
        system: str,
        obj: str,
        record_id: str,
        fm: FieldMap,
        iid: str,
        item: Item,
    ) -> None:
        """Keep a field write: a Salesforce one at once, a HubSpot one per (record,
        property) until :func:`~recon.plan_links.add_hubspot_writes` adds the winners."""
        if system != "hubspot":
            if iid in self.items:
                self.skipped["duplicate_item"] += 1
                return
            self.items[iid] = item
            if link["sf_object"] == "Lead":
                # the HubSpot value it copies may be one the contact's Contact link replaces
                # (see recon.plan_links.add_hubspot_writes)
                self.lead_writes.setdefault((link["hs_id"], fm.hubspot), []).append(iid)
            return
        # a HubSpot contact linked to a Lead and a Contact gets one value: the Contact's wins
        rank = (link["sf_object"] == "Contact", link["score"] or 0.0, link["pair_id"])
        key = (
            obj,
            record_id,
            fm.hubspot,
        )  # ids are per object: a company and a contact may share one
        prev = self.hs_writes.get(key)
        if prev is None or rank > prev[0]:
            if prev is not None:
                self.skipped["hubspot_write_superseded"] += 1
            self.hs_writes[key] = (rank, item, iid)
        else:
            self.skipped["hubspot_write_superseded"] += 1

    @staticmethod
    def conflict_id(pair_id: str, fm: FieldMap, hs_raw: Any, sf_raw: Any) -> str:
        """The id of a conflict. The values are part of the question: a decision answers
        these values, and a conflict whose values changed since (someone edited a side) is
        a new question."""
        return fast_stable_id(
            "conflict", pair_id, fm.hubspot, fm.salesforce_object, fm.salesforce, hs_raw, sf_raw
        )

    def conflict(
        self,
        link: dict[str, Any],
        fm: FieldMap,
        hs: Rec,
        sf: Rec,
        hs_raw: Any,
        sf_raw: Any,
        hn: Any,
        sn: Any,
        reason: dict[str, Any],
        proposal: str | None = None,
    ) -> None:
        """A value the rules cannot settle: a review item attached to its link.

        ``proposal``: the side whose value the plan proposes (``hubspot`` or ``salesforce``:
        the newer one when both changed since the last sync); its ``after`` is then
        ``{"side", "value"}``, which ``[policy] conflicts = true`` may approve. Without one
        (times missing or equal, the ``review`` rule) ``after`` is None: a person chooses.
        """
        pair_id = link["pair_id"]
        direction = self.direction[link["object"]]
        if link["sf_object"] == "Lead" and fm.hubspot in self.decided_by_contact().get(
            hs.record_id, ()
        ):
            # the contact's Salesforce Contact decides this property: a Lead's value is no
            # question to ask (answering both would leave the three records differing)
            self.skipped["hubspot_write_superseded"] += 1
            return
        iid = self.conflict_id(pair_id, fm, hs_raw, sf_raw)
        as_sf = self.to_sf(fm, hn)[0] if hn is not None else None
        as_hs = self.to_hs(fm, sn)[0] if sn is not None else None
        payload: dict[str, Any] = {
            "kind": fm.kind,
            "sf_type": fm.sf_type,
            "hubspot": {
                "object": link["object"],
                "record_id": hs.record_id,
                "field": fm.hubspot,
                "value": hs_raw,
                "as_salesforce": as_sf,
                "modified_at": hs.snapshot_time,
                "writable": fm.to_hubspot and direction in _WRITES_HS,
            },
            "salesforce": {
                "object": link["sf_object"],
                "record_id": sf.record_id,
                "field": fm.salesforce,
                "value": sf_raw,
                "as_hubspot": as_hs,
                "modified_at": sf.snapshot_time,
                "writable": fm.to_salesforce and direction in _WRITES_SF,
            },
        }
        if fm.kind in ("enum", "multi"):
            # a value a reviewer types in is an option of one side: the other side's is
            # mapped from it (plan._option_sides)
            if fm.options:
                payload["options"] = dict(fm.options)
            if fm.hs_options is not None:
                payload["hs_options"] = sorted(fm.hs_options)
            if fm.sf_options is not None:
                payload["sf_options"] = sorted(fm.sf_options)
        self.add(
            self.item(
                iid,
                "conflict",
                "both",
                link["object"],
                None,
                fm.hubspot,
                {"hubspot": hs_raw, "salesforce": sf_raw},
                _proposed(payload, proposal),
                None,
                pair_id,
                [pair_id, iid],
                reason,
                payload,
                SEQ["update"],
                status="needs_review",
            )
        )

    # ------------------------------------------------------------------ all

    def compute(self) -> list[Item]:
        """Compute every item; return them in the order they were made (see :func:`run_order`)."""
        plan_merges(self)
        plan_creates(self)
        self.plan_links()
        plan_associations(self)
        items = list(self.items.values())
        if self.view.undone or self.view.dropped:
            self.undone_held = hold_undone(items, self.view.undone, self.view.dropped)
        return items

    def run(self) -> list[Item]:
        """Compute every item; return them sorted by (seq, item_id)."""
        items = self.compute()
        return list(map(items.__getitem__, run_order(items)))


def hold_undone(
    items: list[Item],
    undone: dict[tuple[str, str, str, str], dict[str, str]],
    dropped: dict[tuple[str, str, str, str], dict[str, str]] | None = None,
) -> int:
    """Writes an applied undo took back need a person again: each such item requires its
    own approval (a ``plan`` decision, the review app's Plan tab) besides its link's, and is
    ``needs_review`` with ``why = "undone_before"``. Without this the next run, its links
    still approved, would write them again. Returns how many items were held.

    ``dropped``: stale writes a reviewer dropped (the same keys): such a write proposed
    again is held the same way, ``why = "dropped_before"`` and ``dropped_by`` the reviewer.

    Examples:
        >>> item = {"item_id": "u1", "action": "update", "system": "hubspot", "object": "companies",
        ...         "record_id": "7", "payload": {"properties": {"name": "Acme"}},
        ...         "requires": ["pair-1"], "reason": {"why": "salesforce_wins"}, "status": "proposed"}
        >>> hold_undone([item], {("hubspot", "companies", "7", "name"): {value_key("Acme"): "apply-9"}})
        1
        >>> item["status"], item["requires"], item["reason"]["why"], item["reason"]["undone_by"]
        ('needs_review', ['pair-1', 'u1'], 'undone_before', 'apply-9')
    """
    held = 0
    for item in items:
        if item["action"] not in ("update", "owner", "associate") or item["status"] != "proposed":
            continue
        written = written_values(item)
        by = None
        for fname, value in written.items():
            key = (item["system"], item["object"], str(item["record_id"]), fname)
            by = undone.get(key, {}).get(value_key(value))
            if by is not None:
                break
        reason = item.get("reason") or {}
        if by is None and item.get("link_item_id") and reason.get("mapping"):
            # the value this write would replace is one an undo took back from the link's
            # other record: the undo said that side keeps its own; this side's a person decides
            side = undone.get(("link", str(item["link_item_id"]), str(reason["mapping"]), ""), {})
            by = side.get(value_key(item.get("before")))
        why = "undone"
        if by is None and dropped:
            for fname, value in written.items():
                key = (item["system"], item["object"], str(item["record_id"]), fname)
                by = dropped.get(key, {}).get(value_key(value))
                if by is not None:
                    why = "dropped"
                    break
        if by is not None:
            item["status"] = "needs_review"
            item["requires"] = [*item["requires"], item["item_id"]]
            item["reason"] = {**reason, "why": f"{why}_before", f"{why}_by": by}
            held += 1
    return held


def written_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """Field -> value a plan item (or a journal item) writes: its properties or fields, and
    a Salesforce association's ``AccountId`` (an update like any other).

    Examples:
        >>> written_values({"action": "update", "system": "hubspot", "payload": {"properties": {"city": "Oslo"}}})
        {'city': 'Oslo'}
        >>> written_values({"action": "associate", "system": "salesforce", "field": "AccountId",
        ...                 "payload": {"to": {"object": "Account", "id": "001A"}}})
        {'AccountId': '001A'}
    """
    payload = item.get("payload") or {}
    written: dict[str, Any] = payload.get("properties") or payload.get("fields") or {}
    if not written and item.get("action") == "associate" and item.get("system") == "salesforce":
        to = payload.get("to")
        tid = (to.get("id") if isinstance(to, dict) else None) or payload.get("to_id")
        if tid:
            written = {str(item.get("field") or "AccountId"): str(tid)}
    return written


def _proposed(payload: dict[str, Any], side: str | None) -> dict[str, Any] | None:
    """A conflict's proposed value ``{"side", "value"}``, when ``side`` wins and its value can
    be written onto the other side (else None).

    Examples:
        >>> ends = {"hubspot": {"value": "a", "as_salesforce": "a", "writable": False},
        ...         "salesforce": {"value": "b", "as_hubspot": "b", "writable": True}}
        >>> _proposed(ends, "hubspot"), _proposed(ends, "salesforce")
        ({'side': 'hubspot', 'value': 'a'}, None)
    """
    if side is None:
        return None
    other = "salesforce" if side == "hubspot" else "hubspot"
    converted = payload[side].get(f"as_{other}")
    if converted is None or not payload[other].get("writable"):
        return None
    return {"side": side, "value": payload[side]["value"]}


def run_order(items: Sequence[Mapping[str, Any]]) -> list[int]:
    """Positions of ``items`` in run order: by (seq, item_id).

    Examples:
        >>> run_order([{"seq": 50, "item_id": "b"}, {"seq": 50, "item_id": "a"}, {"seq": 10, "item_id": "c"}])
        [2, 1, 0]
    """
    # keys read once in the order the items were made (their memory in order), sorted in C;
    # item ids are unique, so the order is total. numpy compares text by code point, as
    # Python does (ids hold no NUL, the one character its fixed-width text drops)
    if not items:
        return []
    # (a field write's attributes read directly: its mapping protocol is a call per key)
    fw = FieldWrite
    ids = np.array(
        [i.item_id if type(i) is fw else i["item_id"] for i in items],  # type: ignore[attr-defined]
        dtype=np.str_,
    )
    seqs = np.fromiter(
        [i.seq if type(i) is fw else i["seq"] for i in items],  # type: ignore[attr-defined]
        dtype=np.int64,
        count=len(items),
    )
    order: list[int] = np.lexsort((ids, seqs)).tolist()
    return order
