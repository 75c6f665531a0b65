"""Export-file headers as API names: the labels HubSpot and Salesforce reports write.

A HubSpot export names its columns by property label ("Company name", "Phone Number"), a
Salesforce report by field label ("Account Name", "Billing City"), a Data Loader file by API
name in any case (``BILLINGCITY``). The plan, the scoping filters and the review app read a
record's fields by API name, so a file's fields are stored under the API name its header
stands for: the stored schema's names and labels first (what the CRM itself calls them), then
the standard labels below, then the default mappings' API names; a header none of them knows
(a custom field by its label, with no schema stored) is kept as written.

Examples:
    >>> names = field_names("salesforce", "Account", None)
    >>> names[header_key("Billing City")], names[header_key("BILLINGCITY")]
    ('BillingCity', 'BillingCity')
    >>> field_names("hubspot", "companies", None)[header_key("Company Domain Name")]
    'domain'
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["STANDARD_LABELS", "field_names", "header_key", "objects_of"]


def header_key(label: str) -> str:
    """A header compared as files spell it: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", label.lower())


_HS_COMMON = {
    "Record ID": "hs_object_id",
    "Create Date": "createdate",
    "Street Address": "address",
    "City": "city",
    "State/Region": "state",
    "Postal Code": "zip",
    "Country/Region": "country",
    "Phone Number": "phone",
    "Website URL": "website",
    "Industry": "industry",
    "Annual Revenue": "annualrevenue",
    "Description": "description",
    "Lifecycle Stage": "lifecyclestage",
}
_SF_ADDRESS = {
    "Billing Street": "BillingStreet",
    "Billing City": "BillingCity",
    "Billing State/Province": "BillingState",
    "Billing Zip/Postal Code": "BillingPostalCode",
    "Billing Country": "BillingCountry",
    "Shipping Street": "ShippingStreet",
    "Shipping City": "ShippingCity",
    "Shipping State/Province": "ShippingState",
    "Shipping Zip/Postal Code": "ShippingPostalCode",
    "Shipping Country": "ShippingCountry",
}
_SF_PERSON = {
    "First Name": "FirstName",
    "Last Name": "LastName",
    "Salutation": "Salutation",
    "Title": "Title",
    "Email": "Email",
    "Phone": "Phone",
    "Mobile": "MobilePhone",
    "Mobile Phone": "MobilePhone",
    "Fax": "Fax",
    "Lead Source": "LeadSource",
    "Description": "Description",
    "Created Date": "CreatedDate",
    "Last Modified Date": "LastModifiedDate",
}

#: (source, object) -> {label as exported: API name}; owners and lookups only by their id
#: labels ("Account Owner" in a report, "Company owner" in a HubSpot export are names, no ids)
STANDARD_LABELS: dict[tuple[str, str], dict[str, str]] = {
    ("hubspot", "companies"): {
        **_HS_COMMON,
        "Company name": "name",
        "Company Domain Name": "domain",
        "Number of Employees": "numberofemployees",
        "Type": "type",
        "Last Modified Date": "hs_lastmodifieddate",
        "Salesforce Account ID": "salesforceaccountid",
        "Merged Company IDs": "hs_merged_object_ids",
    },
    ("hubspot", "contacts"): {
        **_HS_COMMON,
        "First Name": "firstname",
        "Last Name": "lastname",
        "Email": "email",
        "Mobile Phone Number": "mobilephone",
        "Company Name": "company",
        "Job Title": "jobtitle",
        "Fax Number": "fax",
        "Salutation": "salutation",
        "Number of Employees": "numemployees",
        "Lead Status": "hs_lead_status",
        "Original Source": "hs_analytics_source",
        "Last Modified Date": "lastmodifieddate",
        "Associated Company ID": "associatedcompanyid",
        "Salesforce Contact ID": "salesforcecontactid",
        "Salesforce Lead ID": "salesforceleadid",
        "Salesforce Account ID": "salesforceaccountid",
        "Merged Contact IDs": "hs_merged_object_ids",
    },
    ("salesforce", "Account"): {
        "Account ID": "Id",
        "Account Name": "Name",
        "Account Owner ID": "OwnerId",
        "Website": "Website",
        "Phone": "Phone",
        "Fax": "Fax",
        "Industry": "Industry",
        "Type": "Type",
        "Account Type": "Type",
        "Employees": "NumberOfEmployees",
        "Annual Revenue": "AnnualRevenue",
        "Description": "Description",
        "Created Date": "CreatedDate",
        "Last Modified Date": "LastModifiedDate",
        **_SF_ADDRESS,
    },
    ("salesforce", "Contact"): {
        **_SF_PERSON,
        "Contact ID": "Id",
        "Contact Owner ID": "OwnerId",
        "Account ID": "AccountId",
        "Account Name": "Account.Name",
        "Department": "Department",
        "Mailing Street": "MailingStreet",
        "Mailing City": "MailingCity",
        "Mailing State/Province": "MailingState",
        "Mailing Zip/Postal Code": "MailingPostalCode",
        "Mailing Country": "MailingCountry",
    },
    ("salesforce", "Lead"): {
        **_SF_PERSON,
        "Lead ID": "Id",
        "Lead Owner ID": "OwnerId",
        "Company": "Company",
        "Company / Account": "Company",
        "Website": "Website",
        "Industry": "Industry",
        "Annual Revenue": "AnnualRevenue",
        "No. of Employees": "NumberOfEmployees",
        "Lead Status": "Status",
        "Rating": "Rating",
        "Street": "Street",
        "City": "City",
        "State/Province": "State",
        "Zip/Postal Code": "PostalCode",
        "Country": "Country",
    },
}

_SYSTEM = {
    "salesforce": (
        "Id", "Name", "OwnerId", "CreatedDate", "LastModifiedDate", "SystemModstamp",
        "IsDeleted", "AccountId",
    ),
    "hubspot": ("hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"),
}  # fmt: skip


def _holds_ids(field: dict[str, Any]) -> bool:
    """A field whose values are ids of other records (an owner, an Account lookup): exports
    write it by label as a name ("Maria Schmidt", "Brooks & Wagner"), which is no id, so its
    label is not read as the field (its API name still is: Data Loader writes ids)."""
    return (
        field.get("type") in ("reference", "id")
        or bool(field.get("referencedObjectType"))
        or field.get("name") == "hubspot_owner_id"
    )


def objects_of(source: str, obj: str) -> tuple[str, ...]:
    """The CRM objects a file ``--as`` ``source:obj`` holds (a mixed Salesforce file: both).

    Examples:
        >>> objects_of("salesforce", "contacts"), objects_of("hubspot", "contacts")
        (('Contact', 'Lead'), ('contacts',))
    """
    return ("Contact", "Lead") if (source, obj) == ("salesforce", "contacts") else (obj,)


def field_names(
    source: str, obj: str, schemas: dict[str, list[dict[str, Any]]] | None
) -> dict[str, str]:
    """Header key (:func:`header_key`) -> the API name it stands for, for one file's object.

    Args:
        source: ``hubspot`` or ``salesforce``.
        obj: the object ``--as`` names (``contacts`` for a mixed Salesforce Contact/Lead file).
        schemas: the stored schema's fields per object (``{"Contact": [{"name", "label"}]}``),
            or None.
    """
    from ..mapping import default_mappings

    out: dict[str, str] = {}
    objects = objects_of(source, obj)
    # weakest first: each later source overrides what an earlier one said (the stored
    # schema last: what this CRM calls its fields)
    for m in default_mappings():
        if source == "hubspot" and m.object == obj and m.hubspot:
            out[header_key(m.hubspot)] = m.hubspot
        elif source == "salesforce" and m.salesforce_object in objects and m.salesforce:
            out[header_key(m.salesforce)] = m.salesforce
    for name in _SYSTEM[source]:
        out[header_key(name)] = name
    for one in reversed(objects):  # a mixed file: the Contact's reading wins
        for label, name in STANDARD_LABELS.get((source, one), {}).items():
            out[header_key(label)] = name
    for one in reversed(objects):
        fields = (schemas or {}).get(one) or []
        for f in fields:
            if isinstance(f, dict) and f.get("name") and f.get("label") and not _holds_ids(f):
                out[header_key(str(f["label"]))] = str(f["name"])
        for f in fields:  # a label another field's name spells is that field (names win)
            if isinstance(f, dict) and f.get("name"):
                out[header_key(str(f["name"]))] = str(f["name"])
    return out
