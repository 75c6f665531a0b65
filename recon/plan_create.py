"""Creates of unmatched records on the other side, and contact ⇄ company associations.

Creates follow the connector: a new HubSpot contact becomes a Salesforce Lead
(``[mapping] new_contact_as = "Contact"`` makes it a Contact when its company is
linked to an Account); Salesforce Contacts and Leads become HubSpot contacts
(one per email, the Contact first); companies and Accounts are created both
ways, except that a HubSpot company becomes an Account only when one of its contacts in
scope is linked to a Salesforce Contact, as the connector does (``[mapping] create_accounts = "always"``: every unmatched company). Only
directions that write to the target object plan creates; records
without an email are skipped when ``[pull] contacts_require_email`` (HubSpot's
default); a record whose natural key (email, domain) already exists on the
other side is never created again. Every create carries an idempotency key and
its natural key; it needs its own ``plan`` decision (kind ``plan``, label ``approve``).
Records outside the ``[[pull.filters]]`` scope of their object are never created.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import filterfalse
from typing import TYPE_CHECKING, Any

from .mapping import same_second
from .plan_fields import fields_for_create
from .plan_values import NOT_PROVIDED, fast_stable_id, lead_converted
from .sources.scope import filter_matches, scope_holds

if TYPE_CHECKING:
    from .plan_build import Planner
    from .plan_load import Rec

__all__ = ["in_scope", "plan_associations", "plan_creates"]

_WRITES_SF = ("two_way", "hubspot_to_salesforce")
_WRITES_HS = ("two_way", "salesforce_to_hubspot")


def in_scope(rec: Rec, flt: Any, fields: dict[str, Any] | None = None) -> bool:
    """Whether a record passes one ``[[pull.filters]]`` scoping filter, judged as pull judges
    it (:func:`recon.sources.scope.filter_matches`: the raw field, else the canonical column).

    ``fields``: ``rec.fields`` when the caller has them decoded already.

    Examples:
        >>> from types import SimpleNamespace as NS
        >>> in_scope(NS(fields={"a": "X"}), NS(field="a", op="in", value=["x", "y"]))
        True
    """
    data = rec.fields if fields is None else fields
    value = data[flt.field] if flt.field in data else getattr(rec, flt.field, None)
    return filter_matches(flt, value)


def _all_in_scope(rec: Rec, scope: list[Any]) -> bool:
    """Whether a record is in its object's scope (:func:`recon.sources.scope.scope_holds`:
    every filter without a group, and one group whole)."""
    raw = rec.fields  # decoded once for all the filters
    return scope_holds(scope, lambda f: in_scope(rec, f, raw))


def _fields_for_sf(
    p: Planner, rec: Rec, obj: str, sf_obj: str, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    return fields_for_create(p, rec, obj, sf_obj, "salesforce", fields)


def _fields_for_hs(
    p: Planner, rec: Rec, obj: str, sf_obj: str, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    return fields_for_create(p, rec, obj, sf_obj, "hubspot", fields)


def _create(
    p: Planner,
    src: Rec,
    system: str,
    target: str,
    fields: dict[str, Any],
    natural_key: dict[str, Any],
    seq: int,
    entity: str,
    extra: list[str] | None = None,
) -> str:
    source, obj, rid = src.source, src.object, src.record_id
    iid = fast_stable_id("create", system, target, source, obj, rid)
    payload = {
        "object": target,
        "fields": fields,
        "idempotency_key": fast_stable_id("recon-create", source, obj, rid),
        "natural_key": natural_key,
        "source": {"system": source, "object": obj, "record_id": rid},
    }
    reason = {
        "rule": "create_missing",
        "why": "unmatched",
        "direction": p.direction[entity],
        "source": f"{source}:{obj}:{rid}",
    }
    if iid in p.items:  # Planner.add, inlined with Planner.item (one create per record)
        p.skipped["duplicate_item"] += 1
        return iid
    made = p.cache.get("creates_made")
    if made is not None:  # counted for --sample: N creates per source object
        made[(source, obj)] = made.get((source, obj), 0) + 1
    p.items[iid] = {
        "item_id": iid,
        "action": "create",
        "system": system,
        "object": target,
        "record_id": None,
        "field": None,
        "before": None,
        "after": fields,
        "snapshot_modified_at": src.modified_at,
        "link_item_id": None,
        "requires": [iid, *extra] if extra else [iid],
        "reason": reason,
        "status": "proposed",
        "seq": seq,
        "payload": payload,
    }
    return iid


def _company_ref(p: Planner, account_id: str) -> tuple[dict[str, Any], str] | None:
    """The HubSpot company an Account is (or will be): linked company, or a planned create."""
    if account_id in p.company_of_account:
        company, pair = p.company_of_account[account_id]
        return {"object": "companies", "id": company}, pair
    if account_id in p.account_create:
        iid = p.account_create[account_id]
        return {"object": "companies", "create_item_id": iid}, iid
    return None


#: the objects a record of ``(source, object)`` could exist as on the other side
_TARGETS = {
    ("hubspot", "companies"): ("Account",),
    ("hubspot", "contacts"): ("Contact", "Lead"),
    ("salesforce", "Account"): ("companies",),
    ("salesforce", "Contact"): ("contacts",),
    ("salesforce", "Lead"): ("contacts",),
}


def plan_creates(p: Planner) -> None:
    """Plan creates of records that have no link on the other side."""
    from .plan_build import SEQ

    if not p.cfg.mapping.create_missing:
        return
    recs = p.view.records
    clustered = {(s, rid) for c in p.view.clusters.values() for (s, _o, rid) in c["members"]}
    clustered |= p.view.held  # a split's groups: one entity each, not created twice

    def emails(*keys: tuple[str, str]) -> set[str]:
        return {
            str(r.email).strip().lower() for k in keys for r in recs.get(k, {}).values() if r.email
        }

    def domains(key: tuple[str, str]) -> set[str]:
        return {str(r.domain).strip().lower() for r in recs.get(key, {}).values() if r.domain}

    filters = [f for f in p.cfg.pull.filters]

    made: dict[tuple[str, str], int] = p.cache.setdefault("creates_made", {})

    def candidates(source: str, obj: str) -> Iterator[Rec]:
        """Unlinked, live, in-scope, unclustered records; with ``--sample N``, until N creates
        were made from them (what a record is skipped for afterwards does not use up N).
        None when the other side was never pulled whole: its records the store lacks may
        well exist there (a ``--sample`` pull), and creating them would duplicate them."""
        scope = [f for f in filters if f.source == source and f.object == obj]
        bucket = recs.get((source, obj), {})
        other = "salesforce" if source == "hubspot" else "hubspot"
        targets = _TARGETS[(source, obj)]
        if not p.cfg.syncs(source, obj) or not any(p.cfg.syncs(other, o) for o in targets):
            # an object the config leaves out of the sync takes no creates, and gives none:
            # its records there were never read (a create could copy one that exists), and
            # stored ones of it are as old as the pull that last read it
            unlinked = sum(1 for rid in bucket if rid not in p.linked.get(source, set()))
            if unlinked:
                p.skipped["create_object_not_synced"] += unlinked
            return
        # an object the config pulls that the store holds nothing of counts too (one the
        # config leaves out is no part of the sync: its absence says nothing)
        partial = sorted(
            o
            for o in targets
            if (other, o) in p.view.incomplete
            or ((other, o) in p.view.never_read and p.cfg.syncs(other, o))
        )
        if partial:
            unlinked = sum(1 for rid in bucket if rid not in p.linked.get(source, set()))
            if unlinked:
                p.skipped["create_target_not_pulled_whole"] += unlinked
                p.partial_targets.update((other, o) for o in partial)
            return
        # unlinked ids picked in C (no set of every id made first)
        for rid in sorted(filterfalse(p.linked.get(source, set()).__contains__, bucket)):
            if p.sample is not None and made.get((source, obj), 0) >= p.sample:
                return
            r = bucket[rid]
            if r.archived:
                continue
            if scope and not _all_in_scope(r, scope):
                p.skipped["create_out_of_scope"] += 1
                continue
            if (source, rid) in clustered:
                p.skipped["create_in_duplicate_cluster"] += 1
                continue
            if (source, obj, rid) in p.view.created:
                # an earlier apply created its copy, which no pull has read yet (a --sample
                # pull): sending the create again would overwrite later edits of the copy
                p.skipped["create_done_before"] += 1
                continue
            yield r

    comp_dir, cont_dir = p.direction["companies"], p.direction["contacts"]
    require_email = p.cfg.pull.contacts_require_email
    if comp_dir in _WRITES_SF:
        sf_domains = domains(("salesforce", "Account"))
        syncing = None
        if p.cfg.mapping.create_accounts == "with_contacts":
            contact_scope = [f for f in filters if f.source == "hubspot" and f.object == "contacts"]
            syncing = _companies_with_syncing_contacts(p, contact_scope)
        for r in candidates("hubspot", "companies"):
            dom = str(r.domain or "").strip().lower()
            if dom and dom in sf_domains:
                p.skipped["create_natural_key_exists"] += 1
                continue
            if syncing is not None and r.record_id not in syncing:
                p.skipped["create_account_no_syncing_contact"] += 1
                continue
            raw = r.fields
            fields = _fields_for_sf(p, r, "companies", "Account", raw)
            fields.setdefault("Name", r.name or raw.get("name") or dom or None)
            if not fields["Name"]:
                p.skipped["create_no_name"] += 1
                continue
            _create(
                p,
                r,
                "salesforce",
                "Account",
                fields,
                {"domain": dom or None, "name": fields["Name"]},
                SEQ["create_companies"],
                "companies",
            )
    if comp_dir in _WRITES_HS:
        hs_domains = domains(("hubspot", "companies"))
        for r in candidates("salesforce", "Account"):
            dom = str(r.domain or "").strip().lower()
            if dom and dom in hs_domains:
                p.skipped["create_natural_key_exists"] += 1
                continue
            fields = _fields_for_hs(p, r, "companies", "Account")
            fields.setdefault("name", r.name or None)
            if not fields["name"] and not dom:
                p.skipped["create_no_name"] += 1
                continue
            p.account_create[r.record_id] = _create(
                p,
                r,
                "hubspot",
                "companies",
                fields,
                {"domain": dom or None, "name": fields["name"]},
                SEQ["create_companies"],
                "companies",
            )
    if cont_dir in _WRITES_SF:
        sf_emails = emails(("salesforce", "Contact"), ("salesforce", "Lead"))
        for r in candidates("hubspot", "contacts"):
            _create_in_salesforce(p, r, sf_emails, require_email, SEQ["create_contacts"])
    if cont_dir in _WRITES_HS:
        hs_emails = emails(("hubspot", "contacts"))
        seen: set[str] = set()
        for sf_obj in ("Contact", "Lead"):
            for r in candidates("salesforce", sf_obj):
                email = str(r.email or "").strip().lower()
                if not email and require_email:
                    p.skipped["create_no_email"] += 1
                    continue
                if email and (email in hs_emails or email in seen):
                    p.skipped["create_natural_key_exists"] += 1
                    continue
                raw = r.fields
                if sf_obj == "Lead" and lead_converted(raw):
                    p.skipped["create_lead_converted"] += 1
                    continue
                seen.add(email)
                fields = _fields_for_hs(p, r, "contacts", sf_obj, raw)
                iid = _create(
                    p,
                    r,
                    "hubspot",
                    "contacts",
                    fields,
                    {"email": email or None},
                    SEQ["create_contacts"],
                    "contacts",
                )
                ref = _company_ref(p, str(r.account_id)) if r.account_id else None
                if comp_dir == "off":  # associations only while companies sync too
                    ref = None
                if ref is not None:
                    end, req = ref
                    _associate(
                        p,
                        "hubspot",
                        "contacts",
                        None,
                        {"object": "contacts", "create_item_id": iid},
                        end,
                        [iid, req],
                        None,
                        None,
                        "contact_to_company",
                    )


def _companies_with_syncing_contacts(p: Planner, scope: list[Any]) -> set[str]:
    """HubSpot companies with a contact in scope that syncs with a Salesforce Contact.

    The connector creates an Account for a HubSpot company only then: not for a company
    without contacts, nor one whose contacts all sync as Leads or are out of the inclusion
    list (seed 003). A contact counts when it is linked to a Contact: an unlinked one is
    created as a Lead (a Contact needs an Account that exists already), so it would never
    join the Account.
    """
    as_contact = {
        link["hs_id"]
        for link in p.norm_links
        if link["object"] == "contacts" and link["sf_object"] == "Contact"
    }
    require_email = p.cfg.pull.contacts_require_email
    contacts = p.view.records.get(("hubspot", "contacts"), {})
    out: set[str] = set()
    for cid, companies in p.view.hs_company_of.items():
        if companies <= out:
            continue
        if cid not in as_contact:
            continue
        rec = contacts.get(cid)
        if rec is None or rec.archived:
            continue
        if require_email and not str(rec.email or "").strip():
            continue
        if scope and not _all_in_scope(rec, scope):
            continue
        out |= companies
    return out


def _create_in_salesforce(
    p: Planner, r: Rec, sf_emails: set[str], require_email: bool, seq: int
) -> None:
    email = str(r.email or r.fields.get("email") or "").strip().lower()
    if not email and require_email:
        p.skipped["create_no_email"] += 1
        return
    if email and email in sf_emails:
        p.skipped["create_natural_key_exists"] += 1
        return
    sf_emails.add(email)
    target, extra, account = "Lead", [], None
    companies = p.view.hs_company_of.get(r.record_id, set())
    ordered = ([str(r.account_id)] if r.account_id else []) + sorted(
        companies - {str(r.account_id)}
    )
    if (
        p.cfg.mapping.new_contact_as == "Contact"
        and p.direction["companies"] != "off"
        and p.cfg.syncs("salesforce", "Contact")
    ):
        for c in ordered:
            if c in p.account_of_company:
                account, pair = p.account_of_company[c]
                target, extra = "Contact", [pair]
                break
    if not p.cfg.syncs("salesforce", target):
        # a Lead where [salesforce] objects leaves Leads out (no Contact to be either): Leads
        # were never read, so the person may well be one there already
        p.skipped["create_object_not_synced"] += 1
        p.unsynced_targets["salesforce", target] += 1
        return
    fields = _fields_for_sf(p, r, "contacts", target)
    fields.setdefault("LastName", NOT_PROVIDED)
    if target == "Contact":
        fields["AccountId"] = account
    else:
        company_name = None
        for c in ordered:
            crec = p.view.records.get(("hubspot", "companies"), {}).get(c)
            if crec is not None and crec.name:
                company_name = crec.name
                break
        fields.setdefault("Company", company_name or NOT_PROVIDED)
    _create(p, r, "salesforce", target, fields, {"email": email or None}, seq, "contacts", extra)


def _associate(
    p: Planner,
    system: str,
    obj: str,
    record_id: str | None,
    frm: dict[str, Any],
    to: dict[str, Any],
    requires: list[str],
    link: str | None,
    modified_at: str | None,
    kind: str,
    extra_payload: dict[str, Any] | None = None,
    before: str | None = None,
) -> None:
    from .plan_build import SEQ

    iid = fast_stable_id("associate", system, frm, to)
    payload = {"from": frm, "to": to, "type": kind, **(extra_payload or {})}
    if kind == "contact_to_company":
        payload["type_id"] = 279  # HUBSPOT_DEFINED contact -> company (unlabelled)
    fname = "AccountId" if kind == "AccountId" else "associations.companies"
    after = to.get("id") or {"create_item_id": to.get("create_item_id")}
    reason = {"rule": "associations", "why": kind, "direction": p.direction["contacts"]}
    p.add(
        p.item(
            iid,
            "associate",
            system,
            obj,
            record_id,
            fname,
            before,
            after,
            modified_at,
            link,
            requires,
            reason,
            payload,
            SEQ["associate"],
        )
    )


def plan_associations(p: Planner) -> None:
    """Contact ⇄ company associations for linked contacts, from AccountId and HubSpot associations.

    Only while both contacts and companies sync (seed 004: associations follow when both
    objects sync). A Salesforce Contact's Account is its HubSpot contact's primary company.
    When the two name different linked companies, the direction decides which side follows.
    ``two_way``: when the time HubSpot's primary company was set is known (its property
    history, read with a two_way mapping's), the side changed last, and nothing when that
    cannot be told (``skipped.association_unclear``); without it the Account decides, as
    HubSpot's connector does (a record's own time moves with any edit: it tells nothing of
    which side moved the contact).
    """
    direction = p.direction["contacts"]
    if direction == "off" or p.direction["companies"] == "off":
        return
    # the contact links plan_links resolved (in link order; records missing or archived left out)
    for link, hs, sf in p.link_groups.get(("contacts", "Contact"), ()):
        pair = link["pair_id"]
        companies = p.view.hs_company_of.get(hs.record_id, set())
        primary = str(hs.account_id) if hs.account_id else None
        if sf.account_id:
            ref = _company_ref(p, str(sf.account_id))
            if ref is None:
                continue
            end, req = ref
            if end.get("id") is not None and end.get("id") == primary:
                continue
            if end.get("id") in companies and primary is None:
                continue  # associated, and no other company is primary
            # which side the other follows: HubSpot's primary company, or the Contact's Account
            hs_leads = direction == "hubspot_to_salesforce"
            hs_time = hs.field_time("associatedcompanyid") if primary is not None else None
            if hs_time is not None and direction == "two_way":
                sf_time = p.view.user_time(sf)
                if sf_time is None or same_second(hs_time, sf_time):
                    p.skipped["association_unclear"] += 1
                    continue
                hs_leads = hs_time > sf_time
            if hs_leads:
                if primary is None:
                    continue
                if primary not in p.account_of_company:
                    # HubSpot's primary company has no linked Account to move the Contact to
                    p.skipped["association_company_unlinked"] += 1
                    continue
                _account_of(p, pair, sf, primary, before=str(sf.account_id))
            elif direction in _WRITES_HS:
                # the Contact's Account is the HubSpot contact's primary company: a contact moved
                # to another Account moves its primary company (the former keeps an unlabelled
                # association; `before` names it for the audit)
                _associate(
                    p,
                    "hubspot",
                    "contacts",
                    hs.record_id,
                    {"object": "contacts", "id": hs.record_id},
                    end,
                    [pair, req],
                    pair,
                    hs.snapshot_time,
                    "contact_to_company",
                    {"primary": True},
                    before=primary,
                )
        elif direction in _WRITES_SF:
            ordered = ([primary] if primary else []) + sorted(companies - {primary})
            for c in ordered:
                if c in p.account_of_company:
                    _account_of(p, pair, sf, c)
                    break


def _account_of(p: Planner, pair: str, sf: Rec, company: str, before: str | None = None) -> None:
    """Plan the Salesforce Contact ``sf``'s AccountId: the Account linked to HubSpot ``company``."""
    account, cpair = p.account_of_company[company]
    _associate(
        p,
        "salesforce",
        "Contact",
        sf.record_id,
        {"object": "Contact", "id": sf.record_id},
        {"object": "Account", "id": account},
        [pair, cpair],
        pair,
        sf.snapshot_time,
        "AccountId",
        {"fields": {"AccountId": account}},
        before=before,
    )
