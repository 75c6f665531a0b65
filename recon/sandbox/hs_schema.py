"""HubSpot object types and standard property definitions served by the emulator.

Object types resolve by plural name, singular name or object-type id
(``contacts``/``contact``/``0-1``). Every standard type is known; the emulator
stores records of any of them, and defines properties in detail for companies,
contacts and leads (the others get the few properties every object has).

Property definitions follow ``GET /crm/v3/properties/{type}``: name, label,
type, fieldType, groupName, options, ``hasUniqueValue``,
``modificationMetadata.readOnlyValue`` and so on. :func:`coerce_value` checks a
value written through the API against its definition, as HubSpot does.

Examples:
    >>> resolve_type("contact"), resolve_type("0-2")
    ('contacts', 'companies')
    >>> prop = standard_properties("companies")["hs_object_id"]
    >>> prop["modificationMetadata"]["readOnlyValue"]
    True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ALL_TYPES",
    "DEFAULT_PROPERTIES",
    "LASTMOD",
    "OWNERS",
    "coerce_value",
    "property_def",
    "resolve_type",
    "standard_properties",
    "type_id",
]

# plural name -> (object type id, singular name)
ALL_TYPES: dict[str, tuple[str, str]] = {
    "contacts": ("0-1", "contact"),
    "companies": ("0-2", "company"),
    "deals": ("0-3", "deal"),
    "tickets": ("0-5", "ticket"),
    "products": ("0-7", "product"),
    "line_items": ("0-8", "line_item"),
    "quotes": ("0-14", "quote"),
    "communications": ("0-18", "communication"),
    "feedback_submissions": ("0-19", "feedback_submission"),
    "tasks": ("0-27", "task"),
    "notes": ("0-46", "note"),
    "meetings": ("0-47", "meeting"),
    "calls": ("0-48", "call"),
    "emails": ("0-49", "email"),
    "postal_mail": ("0-116", "postal_mail"),
    "leads": ("0-136", "lead"),
}
_ALIASES = {
    alias: plural
    for plural, (tid, singular) in ALL_TYPES.items()
    for alias in (plural, singular, tid, plural.replace("_", ""), singular.replace("_", ""))
}

# Properties returned when a request names none (HubSpot's defaults).
DEFAULT_PROPERTIES: dict[str, list[str]] = {
    "contacts": [
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "leads": ["createdate", "hs_lastmodifieddate", "hs_lead_name", "hs_object_id"],
}
# The last-modified property of each type (contacts differ).
LASTMOD: dict[str, str] = {"contacts": "lastmodifieddate"}

# Owners every sandbox has (the Salesforce side's Users share these emails).
OWNERS: list[dict[str, Any]] = [
    {
        "id": str(70_000_001 + i),
        "userId": 9_100_001 + i,
        "email": email,
        "firstName": first,
        "lastName": last,
    }
    for i, (first, last, email) in enumerate(
        [
            # the first four are also Salesforce users (same emails); the others are HubSpot-only
            ("Maria", "Schmidt", "maria.schmidt@sandbox.recon.test"),
            ("James", "Okafor", "james.okafor@sandbox.recon.test"),
            ("Priya", "Raman", "priya.raman@sandbox.recon.test"),
            ("Tom", "Becker", "tom.becker@sandbox.recon.test"),
            ("Ana", "Silva", "ana.silva@sandbox.recon.test"),
            ("Grace", "Kim", "grace.kim@sandbox.recon.test"),
        ]
    )
]

_EPOCH = "2019-06-01T00:00:00.000Z"


def resolve_type(name: str) -> str | None:
    """The plural object-type name for ``name`` (plural, singular or id), or None."""
    return _ALIASES.get(name.lower())


def type_id(plural: str) -> str:
    """The object-type id of a plural name: ``companies`` -> ``0-2``."""
    return ALL_TYPES[plural][0]


def _opts(*pairs: str | tuple[str, str]) -> list[dict[str, Any]]:
    out = []
    for i, pair in enumerate(pairs):
        value, label = pair if isinstance(pair, tuple) else (pair, pair.replace("_", " ").title())
        out.append(
            {"label": label, "value": value, "description": "", "displayOrder": i, "hidden": False}
        )
    return out


def property_def(
    name: str,
    label: str,
    type_: str = "string",
    field_type: str = "text",
    *,
    group: str = "",
    options: list[dict[str, Any]] | None = None,
    read_only: bool = False,
    unique: bool = False,
    calculated: bool = False,
    hubspot_defined: bool = True,
    description: str = "",
) -> dict[str, Any]:
    """One property definition in HubSpot's wire shape.

    Examples:
        >>> property_def("name", "Name")["fieldType"]
        'text'
    """
    return {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "groupName": group,
        "description": description,
        "options": options or [],
        "displayOrder": -1,
        "hidden": False,
        "formField": not read_only,
        "calculated": calculated,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hubspotDefined": hubspot_defined,
        "createdAt": _EPOCH,
        "updatedAt": _EPOCH,
        "archived": False,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only,
        },
    }


LIFECYCLE = _opts(
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
)
LEAD_STATUS = _opts(
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
ANALYTICS_SOURCE = _opts(
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
)
INDUSTRY = _opts(
    "ACCOUNTING",
    "AIRLINES_AVIATION",
    "APPAREL_FASHION",
    "AUTOMOTIVE",
    "BANKING",
    "BIOTECHNOLOGY",
    "CHEMICALS",
    "COMPUTER_SOFTWARE",
    "CONSTRUCTION",
    "CONSUMER_GOODS",
    "EDUCATION_MANAGEMENT",
    "ENTERTAINMENT",
    "FINANCIAL_SERVICES",
    "FOOD_BEVERAGES",
    "HOSPITAL_HEALTH_CARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "INSURANCE",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "MANAGEMENT_CONSULTING",
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
    "PHARMACEUTICALS",
    "REAL_ESTATE",
    "RETAIL",
    "TELECOMMUNICATIONS",
    "UTILITIES",
)
COMPANY_TYPE = _opts("PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER")
EMPLOYEE_BANDS = _opts("1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+")


def _owner_options() -> list[dict[str, Any]]:
    return _opts(*[(o["id"], f"{o['firstName']} {o['lastName']}") for o in OWNERS])


def _common(obj: str, group: str) -> list[dict[str, Any]]:
    lastmod = LASTMOD.get(obj, "hs_lastmodifieddate")
    props = [
        property_def("hs_object_id", "Record ID", "number", "number", group=group, read_only=True),
        property_def("createdate", "Create Date", "datetime", "date", group=group, read_only=True),
        property_def(
            lastmod, "Last Modified Date", "datetime", "date", group=group, read_only=True
        ),
        property_def(
            "hs_merged_object_ids",
            "Merged Record IDs",
            "enumeration",
            "checkbox",
            group=group,
            read_only=True,
        ),
        property_def(
            "hubspot_owner_id",
            "Owner",
            "enumeration",
            "select",
            group=group,
            options=_owner_options(),
        ),
        property_def(
            "hs_analytics_source",
            "Original Source",
            "enumeration",
            "select",
            group="analyticsinformation",
            options=ANALYTICS_SOURCE,
            read_only=True,
            calculated=True,
        ),
    ]
    if lastmod != "hs_lastmodifieddate":
        props.append(
            property_def(
                "hs_lastmodifieddate",
                "Object last modified date/time",
                "datetime",
                "date",
                read_only=True,
            )
        )
    return props


def _address(group: str) -> list[dict[str, Any]]:
    return [
        property_def("address", "Street Address", group=group),
        property_def("city", "City", group=group),
        property_def("state", "State/Region", group=group),
        property_def("zip", "Postal Code", group=group),
        property_def("country", "Country/Region", group=group),
        property_def("phone", "Phone Number", "string", "phonenumber", group=group),
    ]


def _companies() -> list[dict[str, Any]]:
    g = "companyinformation"
    return [
        *_common("companies", g),
        property_def("name", "Company name", group=g),
        property_def("domain", "Company Domain Name", group=g),
        property_def("website", "Website URL", group=g),
        *_address(g),
        property_def("industry", "Industry", "enumeration", "select", group=g, options=INDUSTRY),
        property_def("type", "Type", "enumeration", "select", group=g, options=COMPANY_TYPE),
        property_def("numberofemployees", "Number of Employees", "number", "number", group=g),
        property_def("annualrevenue", "Annual Revenue", "number", "number", group=g),
        property_def("description", "Description", "string", "textarea", group=g),
        property_def(
            "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", group=g, options=LIFECYCLE
        ),
        property_def(
            "hs_lead_status", "Lead Status", "enumeration", "radio", group=g, options=LEAD_STATUS
        ),
        property_def(
            "linkedin_company_page", "LinkedIn Company Page", group="socialmediainformation"
        ),
        property_def("founded_year", "Year Founded", group=g),
        property_def("timezone", "Time Zone", group=g),
        property_def("salesforceaccountid", "Salesforce Account ID", group="salesforceinformation"),
        property_def(
            "num_associated_contacts",
            "Number of Associated Contacts",
            "number",
            "number",
            group=g,
            read_only=True,
        ),
    ]


def _contacts() -> list[dict[str, Any]]:
    g = "contactinformation"
    return [
        *_common("contacts", g),
        property_def("email", "Email", group=g),
        property_def("firstname", "First Name", group=g),
        property_def("lastname", "Last Name", group=g),
        property_def("salutation", "Salutation", group=g),
        property_def("jobtitle", "Job Title", group=g),
        property_def("company", "Company Name", group=g),
        property_def("website", "Website URL", group=g),
        *_address(g),
        property_def("mobilephone", "Mobile Phone Number", "string", "phonenumber", group=g),
        property_def("fax", "Fax Number", group=g),
        property_def("industry", "Industry", group=g),
        property_def("annualrevenue", "Annual Revenue", group=g),
        property_def(
            "numemployees",
            "Number of Employees",
            "enumeration",
            "select",
            group=g,
            options=EMPLOYEE_BANDS,
        ),
        property_def("description", "Contact Description", "string", "textarea", group=g),
        property_def("rating", "Rating", group=g),
        property_def(
            "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", group=g, options=LIFECYCLE
        ),
        property_def(
            "hs_lead_status",
            "Lead Status",
            "enumeration",
            "radio",
            group="sales_properties",
            options=LEAD_STATUS,
        ),
        property_def(
            "hs_email_optout",
            "Unsubscribed from all email",
            "bool",
            "booleancheckbox",
            group="emailinformation",
            options=_opts(("true", "Yes"), ("false", "No")),
            # as in HubSpot: set through the communication preferences API, not the CRM API
            read_only=True,
        ),
        property_def(
            "hs_email_domain",
            "Email Domain",
            group="emailinformation",
            read_only=True,
            calculated=True,
        ),
        property_def(
            "hs_additional_emails",
            "Additional email addresses",
            "enumeration",
            "checkbox",
            group=g,
            read_only=True,
        ),
        property_def(
            "associatedcompanyid", "Primary Associated Company ID", "number", "number", group=g
        ),
        property_def("salesforceaccountid", "Salesforce Account ID", group="salesforceinformation"),
        property_def("salesforcecontactid", "Salesforce Contact ID", group="salesforceinformation"),
        property_def("salesforceleadid", "Salesforce Lead ID", group="salesforceinformation"),
        property_def("salesforceownerid", "Salesforce Owner ID", group="salesforceinformation"),
        property_def(
            "hs_calculated_merged_vids",
            "Merged Contact IDs",
            "enumeration",
            "checkbox",
            group=g,
            read_only=True,
        ),
    ]


def _leads() -> list[dict[str, Any]]:
    g = "lead_information"
    return [
        *_common("leads", g),
        property_def("hs_lead_name", "Lead name", group=g),
        property_def(
            "hs_pipeline_stage",
            "Lead stage",
            "enumeration",
            "select",
            group=g,
            options=_opts(
                "new-stage-id", "attempting-stage-id", "connected-stage-id", "qualified-stage-id"
            ),
        ),
    ]


_BUILDERS = {"companies": _companies, "contacts": _contacts, "leads": _leads}
_CACHE: dict[str, dict[str, dict[str, Any]]] = {}


def standard_properties(obj: str) -> dict[str, dict[str, Any]]:
    """The standard property definitions of a type, by name (``{}`` for none)."""
    if obj not in _CACHE:
        builder = _BUILDERS.get(obj)
        props = (
            builder()
            if builder
            else _common(obj, f"{ALL_TYPES[obj][1]}information")
            if obj in ALL_TYPES
            else []
        )
        _CACHE[obj] = {p["name"]: p for p in props}
    return _CACHE[obj]


_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def _to_iso(value: str, *, date_only: bool) -> str | None:
    text = value.strip()
    try:
        if text.lstrip("-").isdigit():
            ts = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        else:
            ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if date_only:
        return ts.strftime("%Y-%m-%d")
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def coerce_value(prop: dict[str, Any], value: Any) -> tuple[str | None, str | None]:
    """Check and normalise one written value: ``(stored value or None to clear, error code)``.

    Error codes are HubSpot's: ``INVALID_OPTION``, ``INVALID_INTEGER``,
    ``INVALID_DATE``, ``INVALID_BOOLEAN``.

    Examples:
        >>> coerce_value(property_def("x", "X", "bool", "booleancheckbox"), "TRUE")
        ('true', None)
        >>> coerce_value(property_def("n", "N", "number", "number"), "abc")[1]
        'INVALID_INTEGER'
    """
    if value is None or value == "":
        return None, None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    kind = prop["type"]
    if kind == "number":
        return (text, None) if _NUMBER.match(text.strip()) else (None, "INVALID_INTEGER")
    if kind == "bool":
        low = text.strip().lower()
        return (low, None) if low in ("true", "false") else (None, "INVALID_BOOLEAN")
    if kind in ("date", "datetime"):
        iso = _to_iso(text, date_only=kind == "date")
        return (iso, None) if iso else (None, "INVALID_DATE")
    if kind == "enumeration" and prop["options"]:
        allowed = {o["value"] for o in prop["options"]}
        parts = text.split(";") if prop["fieldType"] == "checkbox" else [text]
        if not all(p in allowed for p in parts):
            return None, "INVALID_OPTION"
    return text, None
