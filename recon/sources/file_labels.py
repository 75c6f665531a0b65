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
from dataclasses import dataclass, field
from typing import Any

from .picklists import picklist

__all__ = [
    "HS_STANDARD_OPTIONS",
    "STANDARD_LABELS",
    "Options",
    "field_names",
    "header_key",
    "objects_of",
    "option_fields",
]


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
    "Email Opt Out": "HasOptedOutOfEmail",
    "Fax Opt Out": "HasOptedOutOfFax",
    "Do Not Call": "DoNotCall",
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
        "Unsubscribed from all email": "hs_email_optout",
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


def _upper_snake(*labels: str) -> dict[str, str]:
    return {label: re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_") for label in labels}


#: HubSpot's standard options, label -> internal value, per (object, property): a file loaded
#: before any HubSpot schema was stored is read with these (a stored schema's options win)
HS_STANDARD_OPTIONS: dict[tuple[str, str], dict[str, str]] = {
    **{
        (obj, "lifecyclestage"): {
            "Subscriber": "subscriber",
            "Lead": "lead",
            "Marketing Qualified Lead": "marketingqualifiedlead",
            "Sales Qualified Lead": "salesqualifiedlead",
            "Opportunity": "opportunity",
            "Customer": "customer",
            "Evangelist": "evangelist",
            "Other": "other",
        }
        for obj in ("companies", "contacts")
    },
    ("contacts", "hs_lead_status"): _upper_snake(
        "New", "Open", "In Progress", "Open Deal", "Unqualified", "Attempted to Contact",
        "Connected", "Bad Timing",
    ),
    ("contacts", "hs_analytics_source"): {
        **_upper_snake(
            "Organic Search", "Paid Search", "Email Marketing", "Social Media", "Referrals",
            "Other Campaigns", "Direct Traffic", "Paid Social", "AI Referrals",
        ),
        "Organic Social": "SOCIAL_MEDIA",
        "Offline Sources": "OFFLINE",
    },
    ("companies", "type"): _upper_snake("Prospect", "Partner", "Reseller", "Vendor", "Other"),
}  # fmt: skip


@dataclass(frozen=True)
class Options:
    """One picklist's options as a file may write them: internal values, or labels (a file's
    column is read through them by :func:`recon.sources.files.option_value`)."""

    values: frozenset[str]
    #: label, case folded and lower case -> internal value
    by_label: dict[str, str] = field(default_factory=dict)
    #: several options in one value, ``;``-separated (HubSpot checkboxes, multi-select picklists)
    multi: bool = False


def _spec_options(source: str, spec: dict[str, Any]) -> Options | None:
    """A HubSpot property's or a Salesforce describe field's options (None: not a picklist).

    Inactive Salesforce values are read too: a record may still hold one, and a report
    writes it by its label like any other.
    """
    picks = picklist(source, spec)
    if picks is None:
        return None
    as_written = picks.by_label(lambda label: label)
    return Options(values=picks.values(), by_label=_folded(as_written), multi=picks.multi)


def _folded(labels: dict[str, str]) -> dict[str, str]:
    """Label -> value keyed as a file's text is looked up: case folded ("GROSSKUNDE"), and
    lower case ("großkunde": ``casefold`` writes ß as ss, polars' ``to_lowercase`` keeps it)."""
    out = {label.casefold(): value for label, value in labels.items()}
    out.update({label.lower(): value for label, value in labels.items()})
    return out


def option_fields(
    source: str, obj: str, schemas: dict[str, list[dict[str, Any]]] | None
) -> dict[str, Options]:
    """API name -> :class:`Options`, for the picklists of a file's object.

    HubSpot exports write an option by its label ("Marketing Qualified Lead"), the API by its
    internal value (``marketingqualifiedlead``); so do Salesforce reports where a picklist's
    label differs from its API value (translations). A file's values are stored as the API
    would give them: read through the stored schema's options, else (HubSpot) through
    :data:`HS_STANDARD_OPTIONS`.

    Examples:
        >>> option_fields("hubspot", "contacts", None)["lifecyclestage"].by_label["sales qualified lead"]
        'salesqualifiedlead'
        >>> spec = {"name": "Status", "type": "picklist", "picklistValues": [{"label": "Offen", "value": "Open"}]}
        >>> option_fields("salesforce", "Lead", {"Lead": [spec]})["Status"].by_label["offen"]
        'Open'
    """
    out: dict[str, Options] = {}
    if source == "hubspot":
        for (one, name), labels in HS_STANDARD_OPTIONS.items():
            if one == obj:
                out[name] = Options(frozenset(labels.values()), _folded(labels))
    stored: dict[str, Options] = {}
    for one in objects_of(source, obj):  # a mixed file: the Contact's options first
        for spec in (schemas or {}).get(one) or []:
            if not isinstance(spec, dict) or not spec.get("name"):
                continue
            opts = _spec_options(source, spec)
            name = str(spec["name"])
            if opts is None:
                continue
            if name in stored:  # on both Contact and Lead: either's options
                first = stored[name]
                opts = Options(
                    first.values | opts.values, {**opts.by_label, **first.by_label}, first.multi
                )
            stored[name] = opts
    return {**out, **stored}
