"""Small generated stores and schemas for the mapping and plan tests (no devset data)."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from recon.config import ReconConfig, load_config
from recon.models import stable_id
from recon.plan import PlanResult, build_plan
from recon.store import finish_run, open_store, start_run

EMAIL = "jo@acme.com"

HS_TEXT = {"type": "string", "fieldType": "text"}


def hs_prop(name: str, typ: str = "string", field_type: str = "text", **kw: Any) -> dict[str, Any]:
    """A HubSpot property as GET /crm/v3/properties returns it."""
    read_only = kw.pop("read_only", False)
    options = kw.pop("options", None)
    return {
        "name": name,
        "label": name,
        "type": typ,
        "fieldType": field_type,
        "options": [{"label": o, "value": o} for o in (options or [])],
        "modificationMetadata": {"readOnlyValue": read_only},
        **kw,
    }


def sf_field(name: str, typ: str = "string", **kw: Any) -> dict[str, Any]:
    """A Salesforce describe field."""
    picks = kw.pop("picklist", None)
    return {
        "name": name,
        "type": typ,
        "updateable": kw.pop("updateable", True),
        "createable": kw.pop("createable", True),
        "picklistValues": [{"value": v, "label": v, "active": True} for v in (picks or [])],
        **kw,
    }


STATUS = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]
LEAD_SOURCE = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
INDUSTRY = ["Technology", "Banking", "Other"]


def schemas() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Schemas that fit every default mapping (so defaults produce no warnings)."""
    text = ["city", "company", "country", "email", "fax", "firstname", "jobtitle", "lastname"]
    text += ["description", "phone", "zip", "state", "address", "website", "salesforceaccountid"]
    hs_contacts = [hs_prop(n) for n in text] + [
        hs_prop("annualrevenue", "number", "number"),
        hs_prop("numemployees", "number", "number"),
        hs_prop("hubspot_owner_id", "enumeration", "select", referencedObjectType="OWNER"),
        hs_prop("industry", "enumeration", "select", options=["TECHNOLOGY", "BANKING", "OTHER"]),
        hs_prop(
            "hs_analytics_source",
            "enumeration",
            "select",
            read_only=True,
            options=[
                "ORGANIC_SEARCH",
                "PAID_SEARCH",
                "DIRECT_TRAFFIC",
                "SOCIAL_MEDIA",
                "PAID_SOCIAL",
                "EMAIL_MARKETING",
                "REFERRALS",
                "OTHER_CAMPAIGNS",
                "OFFLINE",
            ],
        ),
        hs_prop("hs_email_optout", "bool", "booleancheckbox"),
        hs_prop("rating", "enumeration", "select", options=["Hot", "Warm", "Cold"]),
        hs_prop("salutation", "enumeration", "select", options=["Mr.", "Ms.", "Dr."]),
        hs_prop(
            "hs_lead_status",
            "enumeration",
            "select",
            options=[
                "NEW",
                "OPEN",
                "IN_PROGRESS",
                "OPEN_DEAL",
                "UNQUALIFIED",
                "ATTEMPTED_TO_CONTACT",
                "CONNECTED",
                "BAD_TIMING",
            ],
        ),
        hs_prop("lifecyclestage", "enumeration", "radio", options=["lead", "customer"]),
        hs_prop("birthday", "date", "date"),
        hs_prop("hs_additional_emails", "string", "textarea"),
        hs_prop("sf_campaigns", "string", "textarea"),
        hs_prop("hs_object_id", "number", "number", read_only=True),
    ]
    hs_companies = [
        hs_prop(n) for n in ("name", "website", "phone", "address", "city", "state", "zip")
    ] + [
        hs_prop("country"),
        hs_prop("description", "string", "textarea"),
        hs_prop("industry", "enumeration", "select", options=["TECHNOLOGY", "BANKING", "OTHER"]),
        hs_prop("numberofemployees", "number", "number"),
        hs_prop("annualrevenue", "number", "number"),
        hs_prop("hubspot_owner_id", "enumeration", "select", referencedObjectType="OWNER"),
        hs_prop("type", "enumeration", "select", options=["PROSPECT", "PARTNER", "OTHER"]),
        hs_prop("lifecyclestage", "enumeration", "radio", options=["lead", "customer"]),
        hs_prop("founded", "date", "date"),
    ]
    person = [sf_field(n) for n in ("FirstName", "LastName", "Title", "Description")] + [
        sf_field("Email", "email"),
        sf_field("Phone", "phone"),
        sf_field("Fax", "phone"),
        sf_field("OwnerId", "reference", referenceTo=["User"]),
        sf_field("LeadSource", "picklist", picklist=LEAD_SOURCE),
        sf_field("Salutation", "picklist", picklist=["Mr.", "Ms.", "Dr."]),
        sf_field("HasOptedOutOfEmail", "boolean"),
        sf_field("Birthdate", "date"),
        sf_field("Name", "string", updateable=False, createable=False),
    ]
    lead = (
        person
        + [sf_field(n) for n in ("City", "Country", "PostalCode", "State", "Company")]
        + [
            sf_field("Street", "textarea"),
            sf_field("Website", "url"),
            sf_field("AnnualRevenue", "currency"),
            sf_field("NumberOfEmployees", "int"),
            sf_field("Industry", "picklist", picklist=INDUSTRY),
            sf_field("Rating", "picklist", picklist=["Hot", "Warm", "Cold"]),
            sf_field("Status", "picklist", picklist=STATUS),
            sf_field("Address", "address", updateable=False),
        ]
    )
    contact = person + [
        sf_field(n) for n in ("MailingCity", "MailingCountry", "MailingPostalCode", "MailingState")
    ]
    contact += [
        sf_field("MailingStreet", "textarea"),
        sf_field("AccountId", "reference", referenceTo=["Account"]),
    ]
    account = [
        sf_field(n)
        for n in ("Name", "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry")
    ]
    account += [
        sf_field("Website", "url"),
        sf_field("Phone", "phone"),
        sf_field("BillingStreet", "textarea"),
        sf_field("Industry", "picklist", picklist=INDUSTRY),
        sf_field("NumberOfEmployees", "int"),
        sf_field("AnnualRevenue", "currency"),
        sf_field("Description", "textarea"),
        sf_field("OwnerId", "reference", referenceTo=["User"]),
        sf_field("Type", "picklist", picklist=["Prospect", "Partner", "Other"]),
        sf_field("Founded__c", "date"),
        sf_field("Logo__c", "base64"),
    ]
    return {
        ("hubspot", "contacts"): hs_contacts,
        ("hubspot", "companies"): hs_companies,
        ("salesforce", "Lead"): lead,
        ("salesforce", "Contact"): contact,
        ("salesforce", "Account"): account,
    }


class World:
    """A store filled row by row: snapshots, one match run's pairs and clusters, decisions."""

    def __init__(
        self,
        db: sqlite_utils.Database | None = None,
        *,
        with_schemas: bool = True,
        owners: bool = True,
    ) -> None:
        self.db = db or open_store(":memory:")
        self.match_run = start_run(self.db, "match")
        if with_schemas:
            self.db["schemas"].insert_all(
                {"source": s, "object": o, "fields": json.dumps(f)}
                for (s, o), f in schemas().items()
            )
        if not owners:
            return
        self.db["owners"].insert_all(
            [
                {"source": "hubspot", "owner_id": "7", "email": "ann@corp.com"},
                {"source": "hubspot", "owner_id": "8", "email": "bob@corp.com"},
                {"source": "salesforce", "owner_id": "005A", "email": "Ann@corp.com"},
                {"source": "salesforce", "owner_id": "005B", "email": "bob@corp.com"},
                {"source": "hubspot", "owner_id": "9", "email": "solo@corp.com"},
            ]
        )

    def snap(
        self, source: str, obj: str, rid: str, data: dict[str, Any] | None = None, **cols: Any
    ) -> str:
        row = {
            "source": source,
            "object": obj,
            "record_id": rid,
            "data": json.dumps(data or {}),
            "archived": 0,
            "created_at": "2024-01-01T00:00:00.000Z",
            "modified_at": "2024-06-01T00:00:00.000Z",
            **cols,
        }
        self.db["snapshots"].upsert(row, pk=("source", "object", "record_id"))
        return rid

    def link(
        self,
        obj: str,
        hs_id: str,
        sf_obj: str,
        sf_id: str,
        *,
        tier: str = "auto",
        score: float = 0.97,
    ) -> str:
        pid = stable_id(obj, "hubspot", hs_id, "salesforce", sf_id)
        hs_obj = obj
        self.db["pairs"].insert(
            {
                "run_id": self.match_run,
                "pair_id": pid,
                "kind": "link",
                "object": obj,
                "source_l": "hubspot",
                "object_l": hs_obj,
                "record_id_l": hs_id,
                "source_r": "salesforce",
                "object_r": sf_obj,
                "record_id_r": sf_id,
                "score": score,
                "tier": tier,
            }
        )
        return pid

    def cluster(
        self, cid: str, obj: str, source: str, members: list[tuple[str, str]], tier: str = "auto"
    ) -> str:
        self.db["clusters"].insert_all(
            {
                "run_id": self.match_run,
                "cluster_id": cid,
                "object": obj,
                "source": source,
                "record_object": robj,
                "record_id": rid,
                "score": 0.9,
                "tier": tier,
            }
            for robj, rid in members
        )
        return cid

    def decide(
        self,
        item_id: str,
        kind: str,
        label: str,
        choice: Any = None,
        *,
        version: int = 1,
        superseded: int = 0,
        at: str = "2024-07-01T00:00:00Z",
        reviewer: str = "ana@corp.com",
    ) -> None:
        self.db["decisions"].insert(
            {
                "kind": kind,
                "label": label,
                "item_id": item_id,
                "version": version,
                "superseded": superseded,
                "choice": json.dumps(choice) if choice is not None else None,
                "decided_at": at,
                "reviewer": reviewer,
                "decided_by": "human",
            }
        )

    def done(self) -> str:
        finish_run(self.db, self.match_run)
        return self.match_run


def by(items: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    """Items whose keys equal ``match``."""
    return [i for i in items if all(i.get(k) == v for k, v in match.items())]


def cfg(**mapping: Any) -> ReconConfig:
    """The embedded defaults with ``[mapping]`` keys (and ``hubspot={...}``) overridden."""
    sections: dict[str, Any] = {"mapping": mapping} if mapping else {}
    hubspot = mapping.pop("hubspot", None)
    if hubspot:
        sections["hubspot"] = hubspot
    return load_config(None, overrides=sections)


def linked_leads(w: World, ids: list[str], hs: dict[str, Any]) -> None:
    """HubSpot contact ``2<id>`` (``hs`` fields, email ``p<id>@x.com``) linked to Lead ``00Q<id>``, per id."""
    for n in ids:
        email = f"p{n}@x.com"
        w.snap("hubspot", "contacts", f"2{n}", {"email": email, **hs}, email=email)
        w.snap("salesforce", "Lead", f"00Q{n}", {"Email": email}, email=email)
        w.link("contacts", f"2{n}", "Lead", f"00Q{n}")


def linked_contact(
    w: World,
    hs: dict[str, Any],
    sf: dict[str, Any],
    *,
    sf_obj: str = "Contact",
    hs_cols: dict[str, Any] | None = None,
    sf_cols: dict[str, Any] | None = None,
) -> str:
    """HubSpot contact 201 linked to Salesforce Contact 003A (or Lead 00QA); returns the pair id."""
    w.snap("hubspot", "contacts", "201", hs, email=hs.get("email"), **(hs_cols or {}))
    sf_id = "003A" if sf_obj == "Contact" else "00QA"
    w.snap("salesforce", sf_obj, sf_id, sf, email=sf.get("Email"), **(sf_cols or {}))
    return w.link("contacts", "201", sf_obj, sf_id)


def plan(w: World, c: ReconConfig | None = None, **kw: Any) -> PlanResult:
    """Close the match run and build a plan (creates off unless ``c`` says otherwise)."""
    w.done()
    return build_plan(w.db, c or cfg(create_missing=False), **kw)
