"""Salesforce records as canonical snapshot rows (the mapping half of :mod:`recon.sources.salesforce`).

REST records are flattened (``attributes`` dropped, parent objects become ``Account.Name``
keys) and every value is typed from the describe, so REST JSON and Bulk CSV give the same
content (and the same content hashes).
"""

from __future__ import annotations

from typing import Any

from ..models import canonical_json
from .crm import domain_of, iso_utc, json_safe

__all__ = ["CURSOR_FIELD", "flatten", "map_record", "typed"]

CURSOR_FIELD = "SystemModstamp"


def _s(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def map_record(obj: str, rec: dict[str, Any]) -> dict[str, Any]:
    """A Salesforce record (flat field dict) as a canonical snapshot row.

    Examples:
        >>> row = map_record("Account", {"Id": "001A", "Name": "Acme", "Website": "https://acme.com/x",
        ...     "HubSpot_Id__c": "7", "SystemModstamp": "2024-05-06T07:08:09.000+0000"})
        >>> row["domain"], row["external_ids"], row["modified_at"]
        ('acme.com', '{"hubspot_id":"7"}', '2024-05-06T07:08:09.000Z')
    """
    g = rec.get
    first, last = _s(g("FirstName")), _s(g("LastName"))
    person = obj in {"Contact", "Lead"}
    name = _s(g("Name"))
    if person and not name:
        name = " ".join(x for x in (first, last) if x) or None
    ext = {"hubspot_id": str(g("HubSpot_Id__c"))} if g("HubSpot_Id__c") else {}
    city = (
        g("BillingCity")
        if obj == "Account"
        else g("MailingCity")
        if obj == "Contact"
        else g("City")
    )
    country = (
        g("BillingCountry")
        if obj == "Account"
        else g("MailingCountry")
        if obj == "Contact"
        else g("Country")
    )
    company = g("Company") if obj == "Lead" else g("Account.Name") if obj == "Contact" else None
    return {
        "source": "salesforce",
        "object": obj,
        "record_id": str(g("Id")),
        "name": name,
        "domain": domain_of(g("Website")) if obj == "Account" else None,
        "website": _s(g("Website")),
        "email": _s(g("Email")),
        "phone": _s(g("Phone")) or (_s(g("MobilePhone")) if person else None),
        "first_name": first,
        "last_name": last,
        "company": _s(company),
        "account_id": _s(g("AccountId")) if obj == "Contact" else None,
        "city": _s(city),
        "country": _s(country),
        "owner_id": _s(g("OwnerId")),
        "external_ids": canonical_json(ext) if ext else None,
        "created_at": iso_utc(g("CreatedDate")),
        "modified_at": iso_utc(g(CURSOR_FIELD)),
        "archived": 1 if g("IsDeleted") in (True, "true", "True") else 0,
        "data": canonical_json(rec),
    }


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    """REST records: drop ``attributes``, parent objects become ``Account.Name`` keys."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            for sub, v in json_safe(value).items():
                out[f"{key}.{sub}"] = v
        else:
            out[key] = value
    return out


def typed(value: Any, sf_type: str | None) -> Any:
    """One value in the same form from REST JSON and Bulk CSV (so content hashes agree)."""
    if value is None or value == "":
        return None
    if sf_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if sf_type in {"int"}:
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return value
    if sf_type in {"double", "currency", "percent"}:
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if sf_type == "datetime":
        return iso_utc(str(value))
    return value
