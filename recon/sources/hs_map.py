"""HubSpot records as canonical snapshot rows, and the properties recon maps by default.

Examples:
    >>> map_company({"id": "1", "properties": {"name": "Acme", "domain": "ACME.com"}})["domain"]
    'acme.com'
"""

from __future__ import annotations

from typing import Any

from ..models import canonical_json
from .crm import domain_of, iso_utc

__all__ = ["CURSOR_FIELDS", "KNOWN_PROPERTIES", "map_company", "map_contact"]

#: last-modified property per object (search on contacts' hs_lastmodifieddate is unreliable)
CURSOR_FIELDS = {"companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate"}

#: properties recon maps by default (those that exist are requested)
KNOWN_PROPERTIES = {
    "companies": [
        "name", "domain", "website", "phone", "address", "city", "state", "zip", "country",
        "industry", "numberofemployees", "annualrevenue", "description", "type",
        "hubspot_owner_id", "lifecyclestage", "salesforceaccountid", "hs_object_id",
        "createdate", "hs_lastmodifieddate", "hs_merged_object_ids",
    ],
    "contacts": [
        "firstname", "lastname", "email", "phone", "mobilephone", "company", "jobtitle",
        "address", "city", "state", "zip", "country", "website", "hubspot_owner_id",
        "salesforcecontactid", "salesforceleadid", "salesforceaccountid", "annualrevenue",
        "industry", "numemployees", "fax", "salutation", "description", "hs_lead_status",
        "rating", "hs_email_optout", "hs_analytics_source", "lifecyclestage", "hs_object_id",
        "createdate", "lastmodifieddate", "associatedcompanyid", "hs_merged_object_ids",
    ],
}  # fmt: skip


def map_company(rec: dict[str, Any], cursor_field: str = "hs_lastmodifieddate") -> dict[str, Any]:
    """A HubSpot company (API JSON) as a canonical snapshot row.

    Examples:
        >>> row = map_company({"id": "7", "properties": {"name": "Acme", "website": "www.acme.com",
        ...     "salesforceaccountid": "001A"}, "archived": False})
        >>> row["domain"], row["external_ids"]
        ('acme.com', '{"salesforce_id":"001A"}')
    """
    p = rec.get("properties") or {}
    ext = {"salesforce_id": p["salesforceaccountid"]} if p.get("salesforceaccountid") else {}
    return {
        "source": "hubspot",
        "object": "companies",
        "record_id": str(rec["id"]),
        "name": p.get("name"),
        "domain": (p.get("domain") or "").strip().lower() or domain_of(p.get("website")),
        "website": p.get("website"),
        "email": None,
        "phone": p.get("phone"),
        "first_name": None,
        "last_name": None,
        "company": None,
        "account_id": None,
        "city": p.get("city"),
        "country": p.get("country"),
        "owner_id": p.get("hubspot_owner_id"),
        "external_ids": canonical_json(ext) if ext else None,
        "created_at": iso_utc(p.get("createdate") or rec.get("createdAt")),
        "modified_at": iso_utc(p.get(cursor_field) or rec.get("updatedAt")),
        "archived": 1 if rec.get("archived") else 0,
        "data": canonical_json(p),
    }


def map_contact(rec: dict[str, Any], company_id: str | None = None) -> dict[str, Any]:
    """A HubSpot contact (API JSON) as a canonical snapshot row.

    ``company_id`` is the primary associated company (from the v4 associations).

    Examples:
        >>> row = map_contact({"id": "9", "properties": {"firstname": "Ada", "lastname": "Lovelace",
        ...     "email": "ADA@x.org", "salesforcecontactid": "003B"}}, "7")
        >>> row["name"], row["account_id"], row["external_ids"]
        ('Ada Lovelace', '7', '{"salesforce_contact_id":"003B","salesforce_id":"003B"}')
    """
    p = rec.get("properties") or {}
    ext: dict[str, str] = {}
    if p.get("salesforcecontactid"):
        ext["salesforce_contact_id"] = p["salesforcecontactid"]
    if p.get("salesforceleadid"):
        ext["salesforce_lead_id"] = p["salesforceleadid"]
    if p.get("salesforceaccountid"):
        ext["salesforce_account_id"] = p["salesforceaccountid"]
    sf_id = p.get("salesforcecontactid") or p.get("salesforceleadid")
    if sf_id:
        ext["salesforce_id"] = sf_id
    first, last = p.get("firstname"), p.get("lastname")
    name = " ".join(x.strip() for x in (first, last) if x and x.strip()) or None
    return {
        "source": "hubspot",
        "object": "contacts",
        "record_id": str(rec["id"]),
        "name": name,
        "domain": None,
        "website": p.get("website"),
        "email": p.get("email"),
        "phone": p.get("phone") or p.get("mobilephone"),
        "first_name": first,
        "last_name": last,
        "company": p.get("company"),
        "account_id": company_id or p.get("associatedcompanyid") or None,
        "city": p.get("city"),
        "country": p.get("country"),
        "owner_id": p.get("hubspot_owner_id"),
        "external_ids": canonical_json(ext) if ext else None,
        "created_at": iso_utc(p.get("createdate") or rec.get("createdAt")),
        "modified_at": iso_utc(p.get("lastmodifieddate") or rec.get("updatedAt")),
        "archived": 1 if rec.get("archived") else 0,
        "data": canonical_json(p),
    }
