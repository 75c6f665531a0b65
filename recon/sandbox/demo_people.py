"""People of the demo data: HubSpot contacts, Salesforce Contacts and Leads.

Called by :func:`recon.sandbox.demo.generate` once the company entities exist:
each person belongs to a company entity and appears in HubSpot, in Salesforce
(as a Contact of the company's Account, or as a Lead when the company has no
Account), or in both; with nicknames, typos, case and format variants, personal
duplicates, a Lead sharing a Contact's email, and stored cross-system ids.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np

from .demo_pools import (
    FIRST,
    FREEMAIL,
    HS_LEAD_STATUS,
    LEAD_SOURCES,
    LIFECYCLE,
    NICKNAMES,
    PLACES,
    SF_LEAD_STATUS,
    SURNAMES,
    T1,
    TITLES,
    format_phone,
    typo,
    website_form,
)

if TYPE_CHECKING:
    from .demo import Size

__all__ = ["people"]


def people(
    rng: np.random.Generator,
    rnd: random.Random,
    n_entities: int,
    spec: Size,
    bases: list[str],
    domains: list[str],
    place: np.ndarray,
    in_hs: np.ndarray,
    in_sf: np.ndarray,
    hs_index: dict[int, int],
    sf_index: dict[int, int],
    created: np.ndarray,
    owners_hs: list[str],
    owners_sf: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    n_people = int(n_entities * spec.persons_per_company)
    company = rng.integers(0, n_entities, n_people)
    first = rng.integers(0, len(FIRST), n_people)
    last = rng.integers(0, len(SURNAMES), n_people)
    title = rng.integers(0, len(TITLES), n_people)
    pattern = rng.integers(0, 4, n_people)
    digits = rng.integers(10**9, 10**10 - 1, n_people)
    share = rng.random(n_people)
    hs_contacts: list[dict[str, Any]] = []
    sf_contacts: list[dict[str, Any]] = []
    sf_leads: list[dict[str, Any]] = []
    used_emails: set[str] = set()
    t1 = int(T1.timestamp() * 1000)
    for p in range(n_people):
        c = int(company[p])
        fn, ln = FIRST[first[p]], SURNAMES[last[p]]
        local = (f"{fn}.{ln}", f"{fn[0]}{ln}", f"{fn}", f"{fn}_{ln}")[pattern[p]].lower()
        domain = domains[c] if rnd.random() > 0.06 else rnd.choice(FREEMAIL)
        email = f"{local}@{domain}"
        n = 2
        while email in used_emails:
            email = f"{local}{n}@{domain}"
            n += 1
        used_emails.add(email)
        city, _country, cc, hs_country, sf_country = PLACES[place[c]]
        phone = format_phone(cc, str(digits[p]), rnd.randrange(5))
        born = int(created[c]) + rnd.randrange(0, 86_400_000 * 200)
        born = min(born, t1 - 86_400_000)
        entity = f"pe{p}"
        # presence: both systems when the company is in both, mostly
        both = in_hs[c] and in_sf[c] and share[p] < 0.7
        hs_here = (
            both or (in_hs[c] and share[p] >= 0.7 and share[p] < 0.9) or (in_hs[c] and not in_sf[c])
        )
        sf_here = both or (in_sf[c] and not hs_here)

        def stamp(rec: dict[str, Any], born: int = born, entity: str = entity) -> dict[str, Any]:
            rec["_entity"] = entity
            rec["_created"] = born
            rec["_modified"] = born + rnd.randrange(0, max(1, t1 - born))
            return rec

        hs_pos = sf_pos = None
        if hs_here:
            hs_first = NICKNAMES.get(fn, fn) if rnd.random() < 0.1 else fn
            rec = {
                "email": email
                if rnd.random() > 0.1
                else email.title()
                if rnd.random() < 0.5
                else email,
                "firstname": hs_first,
                "lastname": typo(ln, rnd) if rnd.random() < 0.04 else ln,
                "jobtitle": TITLES[title[p]]
                if rnd.random() > 0.15
                else TITLES[(title[p] + 1) % len(TITLES)],
                "phone": phone if rnd.random() > 0.3 else None,
                "company": bases[c] if rnd.random() < 0.7 else None,
                "city": city if rnd.random() > 0.4 else None,
                "country": hs_country if rnd.random() > 0.4 else None,
                "lifecyclestage": rnd.choice(LIFECYCLE),
                "hs_lead_status": rnd.choice(HS_LEAD_STATUS) if rnd.random() < 0.5 else None,
                "hs_email_optout": "true" if rnd.random() < 0.05 else None,
                "hubspot_owner_id": rnd.choice(owners_hs) if rnd.random() > 0.2 else None,
            }
            if c in hs_index:
                rec["_company"] = hs_index[c]
            hs_pos = len(hs_contacts)
            hs_contacts.append(stamp(rec))
            if rnd.random() < 0.03:  # the same person again, under a personal address
                dup = dict(rec)
                alt = f"{fn.lower()}.{ln.lower()}{rnd.randrange(10, 99)}@{rnd.choice(FREEMAIL)}"
                if alt not in used_emails:
                    used_emails.add(alt)
                    dup["email"] = alt
                    dup["phone"] = format_phone(cc, str(digits[p]), rnd.randrange(5))
                    hs_contacts.append(stamp(dup))
        if sf_here:
            sf_email = email if rnd.random() > 0.05 else None
            base_rec = {
                "FirstName": fn,
                "LastName": ln,
                "Email": sf_email.upper() if sf_email and rnd.random() < 0.05 else sf_email,
                "Title": TITLES[title[p]],
                "Phone": format_phone(cc, str(digits[p]), rnd.randrange(5)),
                "LeadSource": rnd.choice(LEAD_SOURCES) if rnd.random() < 0.6 else None,
                "OwnerId": rnd.choice(owners_sf) if owners_sf else None,
            }
            as_lead = c not in sf_index or rnd.random() < 0.15
            if as_lead:
                lead = {
                    **base_rec,
                    "Company": bases[c],
                    "Website": website_form(domains[c], rnd.randrange(6))
                    if rnd.random() < 0.4
                    else None,
                    "City": city,
                    "Country": sf_country,
                    "Status": rnd.choice(SF_LEAD_STATUS),
                }
                sf_pos = ("Lead", len(sf_leads))
                sf_leads.append(stamp(lead))
            else:
                contact = {
                    **base_rec,
                    "MailingCity": city,
                    "MailingCountry": sf_country,
                    "_company": sf_index[c],
                }
                sf_pos = ("Contact", len(sf_contacts))
                sf_contacts.append(stamp(contact))
                if rnd.random() < 0.05 and sf_email:  # also a Lead with the same email
                    lead = {
                        **base_rec,
                        "Company": bases[c],
                        "Status": SF_LEAD_STATUS[0],
                        "City": city,
                    }
                    sf_leads.append(stamp(lead))
                if rnd.random() < 0.03:  # duplicate Contact
                    dup = {**contact, "Phone": format_phone(cc, str(digits[p]), rnd.randrange(5))}
                    sf_contacts.append(stamp(dup))
        if hs_pos is not None and sf_pos is not None:
            if rnd.random() < 0.3:
                prop = "salesforcecontactid" if sf_pos[0] == "Contact" else "salesforceleadid"
                hs_contacts[hs_pos]["_xref"] = (sf_pos[0], sf_pos[1], prop)
            if rnd.random() < 0.2:
                target = sf_contacts if sf_pos[0] == "Contact" else sf_leads
                target[sf_pos[1]]["_xref"] = ("contacts", hs_pos, "HubSpot_Id__c")
    return hs_contacts, sf_contacts, sf_leads
