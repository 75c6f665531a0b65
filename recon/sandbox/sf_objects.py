"""The sObject types of the Salesforce emulator, as data: Account, Contact, Lead,
Campaign, CampaignMember and User.

One compact line per field (name, type, length and a few flags); every other part
of the emulator (describe, SOQL, writes, Bulk CSV) reads field types, lengths and
writability from here, so the describe answer and the behaviour cannot drift apart.

Examples:
    >>> get_object("lead").required
    ['LastName', 'Company']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "OBJECTS",
    "CHILD_RELATIONSHIPS",
    "TEXT_TYPES",
    "FieldSpec",
    "ObjectSpec",
    "child_relationship",
    "get_object",
    "label_of",
    "object_for_id",
]


def _values(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


INDUSTRY = _values(
    "Agriculture|Apparel|Banking|Biotechnology|Chemicals|Communications|Construction|Consulting|"
    "Education|Electronics|Energy|Engineering|Entertainment|Environmental|Finance|Food & Beverage|"
    "Government|Healthcare|Hospitality|Insurance|Machinery|Manufacturing|Media|Not For Profit|"
    "Recreation|Retail|Shipping|Technology|Telecommunications|Transportation|Utilities|Other"
)
ACCOUNT_TYPE = _values(
    "Prospect|Customer - Direct|Customer - Channel|Channel Partner / Reseller|"
    "Installation Partner|Technology Partner|Other"
)
LEAD_SOURCE = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
LEAD_STATUS = _values(
    "Open - Not Contacted|Working - Contacted|Closed - Converted|Closed - Not Converted"
)
RATING = ("Hot", "Warm", "Cold")
SALUTATION = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
CAMPAIGN_TYPE = ("Conference", "Webinar", "Trade Show", "Public Relations", "Email", "Other")
CAMPAIGN_STATUS = ("Planned", "In Progress", "Completed", "Aborted")
MEMBER_STATUS = ("Sent", "Responded")

TEXT_TYPES = frozenset(
    {"id", "reference", "string", "textarea", "picklist", "email", "phone", "url", "combobox"}
)


@dataclass(frozen=True)
class FieldSpec:
    """One field of an emulated object.

    ``flags`` letters: ``c`` createable, ``u`` updateable, ``n`` nillable,
    ``q`` unique, ``x`` externalId, ``l`` idLookup, ``k`` calculated (formula-like,
    kept by the emulator), ``d`` defaultedOnCreate, ``m`` nameField.
    """

    name: str
    type: str
    length: int = 0
    flags: str = "cun"
    label: str = ""
    picklist: tuple[str, ...] = ()
    reference_to: str | None = None
    relationship: str | None = None
    default: Any = None

    @property
    def createable(self) -> bool:
        return "c" in self.flags

    @property
    def updateable(self) -> bool:
        return "u" in self.flags

    @property
    def nillable(self) -> bool:
        return "n" in self.flags

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def external_id(self) -> bool:
        return "x" in self.flags

    @property
    def required(self) -> bool:
        """Required on create: createable, not nillable, no default."""
        return (
            self.createable and not self.nillable and self.default is None and "d" not in self.flags
        )


def label_of(name: str) -> str:
    """A field label from its API name: ``BillingPostalCode`` -> ``Billing Postal Code``.

    Examples:
        >>> label_of("BillingPostalCode")
        'Billing Postal Code'
    """
    base = name.removesuffix("__c").removesuffix("Id") or name
    out = []
    for i, ch in enumerate(base):
        if ch.isupper() and i and not base[i - 1].isupper() and base[i - 1] != "_":
            out.append(" ")
        out.append(" " if ch == "_" else ch)
    return " ".join("".join(out).split()) or name


@dataclass(frozen=True)
class ObjectSpec:
    """One emulated sObject type."""

    name: str
    key_prefix: str
    label_plural: str
    fields: tuple[FieldSpec, ...]
    mergeable: bool = False
    has_is_deleted: bool = True
    by_lower: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)
    relationships: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self.by_lower[f.name.lower()] = f
            if f.relationship:
                self.relationships[f.relationship.lower()] = f

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name`` (case-insensitive), or None."""
        return self.by_lower.get(name.lower())

    @property
    def required(self) -> list[str]:
        """Fields a create must set."""
        return [f.name for f in self.fields if f.required]


def _audit(owner: bool = True, deleted: bool = True, master: bool = False) -> list[FieldSpec]:
    out = [FieldSpec("Id", "id", 18, "l", "Record ID")]
    if deleted:
        out.append(FieldSpec("IsDeleted", "boolean", 0, "d", "Deleted", default=False))
    if master:
        out.append(FieldSpec("MasterRecordId", "reference", 18, "n", relationship="MasterRecord"))
    if owner:
        out.append(FieldSpec("OwnerId", "reference", 18, "cud", "Owner ID", (), "User", "Owner"))
    out += [
        FieldSpec("CreatedDate", "datetime", 0, "d"),
        FieldSpec("CreatedById", "reference", 18, "d", "Created By ID", (), "User", "CreatedBy"),
        FieldSpec("LastModifiedDate", "datetime", 0, "d"),
        FieldSpec(
            "LastModifiedById",
            "reference",
            18,
            "d",
            "Last Modified By ID",
            (),
            "User",
            "LastModifiedBy",
        ),
        FieldSpec("SystemModstamp", "datetime", 0, "d", "System Modstamp"),
    ]
    return out


def _ref(name: str, to: str, rel: str, flags: str = "cun") -> FieldSpec:
    return FieldSpec(name, "reference", 18, flags, "", (), to, rel)


def _s(name: str, length: int, flags: str = "cun", label: str = "") -> FieldSpec:
    return FieldSpec(name, "string", length, flags, label)


def _pick(name: str, values: tuple[str, ...], flags: str = "cun", default: Any = None) -> FieldSpec:
    return FieldSpec(name, "picklist", 255, flags, "", values, default=default)


def _recon_fields() -> list[FieldSpec]:
    return [
        FieldSpec("Recon_Key__c", "string", 255, "cunqxl", "Recon Key"),
        FieldSpec("HubSpot_Id__c", "string", 40, "cun", "HubSpot ID"),
    ]


def _person(prefix: str = "") -> list[FieldSpec]:
    """Name, contact and address fields shared by Contact and Lead."""
    street, city, state, zip_, country = (
        f"{prefix}Street",
        f"{prefix}City",
        f"{prefix}State",
        f"{prefix}PostalCode",
        f"{prefix}Country",
    )
    return [
        FieldSpec("LastName", "string", 80, "cu", "Last Name"),
        _s("FirstName", 40, label="First Name"),
        _pick("Salutation", SALUTATION),
        FieldSpec("Name", "string", 121, "km", "Full Name"),
        _s("Title", 128),
        FieldSpec("Email", "email", 80, "cunl"),
        FieldSpec("Phone", "phone", 40),
        FieldSpec("MobilePhone", "phone", 40, label="Mobile Phone"),
        FieldSpec("Fax", "phone", 40, label="Business Fax"),
        FieldSpec(street, "textarea", 255),
        _s(city, 40),
        _s(state, 80),
        _s(zip_, 20),
        _s(country, 80),
        _pick("LeadSource", LEAD_SOURCE),
        FieldSpec("Description", "textarea", 32000),
        FieldSpec("HasOptedOutOfEmail", "boolean", 0, "cud", "Email Opt Out", default=False),
    ]


def _fields(*groups: list[FieldSpec]) -> tuple[FieldSpec, ...]:
    return tuple(f for group in groups for f in group)


ACCOUNT = ObjectSpec(
    "Account",
    "001",
    "Accounts",
    _fields(
        _audit(master=True),
        [
            FieldSpec("Name", "string", 255, "cum", "Account Name"),
            _pick("Type", ACCOUNT_TYPE),
            _ref("ParentId", "Account", "Parent"),
            FieldSpec("BillingStreet", "textarea", 255),
            _s("BillingCity", 40),
            _s("BillingState", 80),
            _s("BillingPostalCode", 20),
            _s("BillingCountry", 80),
            FieldSpec("ShippingStreet", "textarea", 255),
            _s("ShippingCity", 40),
            _s("ShippingState", 80),
            _s("ShippingPostalCode", 20),
            _s("ShippingCountry", 80),
            FieldSpec("Phone", "phone", 40, label="Account Phone"),
            FieldSpec("Fax", "phone", 40, label="Account Fax"),
            FieldSpec("Website", "url", 255),
            _pick("Industry", INDUSTRY),
            FieldSpec("AnnualRevenue", "currency", 18),
            FieldSpec("NumberOfEmployees", "int", 8, label="Employees"),
            FieldSpec("Description", "textarea", 32000, label="Account Description"),
            _s("AccountNumber", 40),
            _pick("AccountSource", LEAD_SOURCE),
            _pick("Rating", RATING),
            _s("Site", 80, label="Account Site"),
            FieldSpec("LastActivityDate", "date", 0, "n"),
        ],
        _recon_fields(),
    ),
    mergeable=True,
)

CONTACT = ObjectSpec(
    "Contact",
    "003",
    "Contacts",
    _fields(
        _audit(master=True),
        [_ref("AccountId", "Account", "Account")],
        _person("Mailing"),
        [
            _s("Department", 80),
            FieldSpec("Birthdate", "date", 0),
            _ref("ReportsToId", "Contact", "ReportsTo"),
            FieldSpec("LastActivityDate", "date", 0, "n"),
        ],
        _recon_fields(),
    ),
    mergeable=True,
)

LEAD = ObjectSpec(
    "Lead",
    "00Q",
    "Leads",
    _fields(
        _audit(master=True),
        _person(),
        [
            FieldSpec("Company", "string", 255, "cu"),
            FieldSpec("Website", "url", 255),
            _pick("Status", LEAD_STATUS, "cu", default="Open - Not Contacted"),
            _pick("Rating", RATING),
            _pick("Industry", INDUSTRY),
            FieldSpec("AnnualRevenue", "currency", 18),
            FieldSpec("NumberOfEmployees", "int", 8, label="Employees"),
            FieldSpec("IsConverted", "boolean", 0, "cd", "Converted", default=False),
            FieldSpec("ConvertedDate", "date", 0, "n"),
            _ref("ConvertedAccountId", "Account", "ConvertedAccount", "n"),
            _ref("ConvertedContactId", "Contact", "ConvertedContact", "n"),
            FieldSpec("LastActivityDate", "date", 0, "n"),
        ],
        _recon_fields(),
    ),
    mergeable=True,
)

CAMPAIGN = ObjectSpec(
    "Campaign",
    "701",
    "Campaigns",
    _fields(
        _audit(),
        [
            FieldSpec("Name", "string", 80, "cum", "Campaign Name"),
            _pick("Type", CAMPAIGN_TYPE),
            _pick("Status", CAMPAIGN_STATUS),
            FieldSpec("StartDate", "date", 0),
            FieldSpec("EndDate", "date", 0),
            FieldSpec("IsActive", "boolean", 0, "cud", "Active", default=False),
            _ref("ParentId", "Campaign", "Parent"),
            FieldSpec("Description", "textarea", 32000),
            FieldSpec("NumberOfLeads", "int", 9, "d", "Leads in Campaign"),
            FieldSpec("NumberOfContacts", "int", 9, "d", "Contacts in Campaign"),
        ],
    ),
)

CAMPAIGN_MEMBER = ObjectSpec(
    "CampaignMember",
    "00v",
    "Campaign Members",
    _fields(
        _audit(owner=False),
        [
            _ref("CampaignId", "Campaign", "Campaign", "c"),
            _ref("LeadId", "Lead", "Lead", "cn"),
            _ref("ContactId", "Contact", "Contact", "cn"),
            _pick("Status", MEMBER_STATUS, default="Sent"),
            FieldSpec("HasResponded", "boolean", 0, "d", "Responded", default=False),
            FieldSpec("FirstRespondedDate", "date", 0, "n"),
        ],
    ),
)

USER = ObjectSpec(
    "User",
    "005",
    "Users",
    _fields(
        _audit(owner=False, deleted=False),
        [
            FieldSpec("Username", "string", 80, "cuql"),
            FieldSpec("LastName", "string", 80, "cu", "Last Name"),
            _s("FirstName", 40, label="First Name"),
            FieldSpec("Name", "string", 121, "km", "Full Name"),
            FieldSpec("Alias", "string", 8, "cu"),
            FieldSpec("Email", "email", 128, "cu"),
            FieldSpec("IsActive", "boolean", 0, "cud", "Active", default=True),
            _s("Title", 80),
            _s("Department", 80),
            _s("CompanyName", 80, label="Company Name"),
        ],
    ),
)

#: every emulated object, by API name
OBJECTS: dict[str, ObjectSpec] = {
    o.name: o for o in (ACCOUNT, CONTACT, LEAD, CAMPAIGN, CAMPAIGN_MEMBER, USER)
}
_BY_LOWER = {k.lower(): v for k, v in OBJECTS.items()}
_BY_PREFIX = {o.key_prefix: o for o in OBJECTS.values()}


def get_object(name: str) -> ObjectSpec | None:
    """The object called ``name`` (case-insensitive), or None.

    Examples:
        >>> get_object("account").key_prefix
        '001'
        >>> get_object("Opportunity") is None
        True
    """
    return _BY_LOWER.get(name.lower())


def object_for_id(record_id: str) -> ObjectSpec | None:
    """The object a record id belongs to, by its key prefix."""
    return _BY_PREFIX.get(record_id[:3])


#: child relationships usable in subqueries: parent -> {name: (child object, its field)}
CHILD_RELATIONSHIPS: dict[str, dict[str, tuple[str, str]]] = {
    "Account": {"Contacts": ("Contact", "AccountId"), "ChildAccounts": ("Account", "ParentId")},
    "Contact": {
        "CampaignMembers": ("CampaignMember", "ContactId"),
        "DirectReports": ("Contact", "ReportsToId"),
    },
    "Lead": {"CampaignMembers": ("CampaignMember", "LeadId")},
    "Campaign": {
        "CampaignMembers": ("CampaignMember", "CampaignId"),
        "ChildCampaigns": ("Campaign", "ParentId"),
    },
}


def child_relationship(parent: ObjectSpec, name: str) -> tuple[str, ObjectSpec, str] | None:
    """The child relationship ``name`` of ``parent``: (its name, the child object, the child's field).

    Examples:
        >>> rel, child, fk = child_relationship(get_object("Account"), "contacts")
        >>> rel, child.name, fk
        ('Contacts', 'Contact', 'AccountId')
    """
    for rel, (child, fk) in CHILD_RELATIONSHIPS.get(parent.name, {}).items():
        if rel.lower() == name.lower():
            return rel, OBJECTS[child], fk
    return None
