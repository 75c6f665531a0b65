"""Field mappings between HubSpot and Salesforce, their validation, and the conflict rules.

A :class:`FieldMap` pairs one HubSpot property with one Salesforce field on one
Salesforce object (a HubSpot contact maps to a Lead *and* to a Contact: a
property whose Lead and Contact fields share a name syncs to both). The defaults
are the connector's (seed 001 for contacts, the usual Account pairs for
companies); they cannot be removed, only switched to ``dont_sync`` in
``[mapping] rules``. Custom mappings come from ``[[mapping.fields]]``.

:func:`check_mappings` validates every mapping against the schemas as last
pulled (HubSpot properties, Salesforce describe fields) and reports *every*
problem at once; :func:`resolve_mappings` raises :class:`~recon.errors.MappingError`
when a custom mapping is invalid. Problems with a default mapping only disable
that default (a warning), because the defaults are not the user's to fix.

:func:`decide` is the conflict-rule truth table; value normalisation and
conversion live in :mod:`recon.plan_values`.

Examples:
    >>> decide("prefer_salesforce_unless_blank", hs_blank=False, sf_blank=True, equal=False).action
    'to_salesforce'
    >>> decide("always_salesforce", hs_blank=False, sf_blank=True, equal=False).action
    'none'
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, get_args

from .config import ConflictRule, Direction, config_file
from .errors import MappingError

__all__ = [
    "DEFAULT_COMPANY_MAPPINGS",
    "DEFAULT_CONTACT_MAPPINGS",
    "DIRECTIONS",
    "RULES",
    "FieldMap",
    "MappingCheck",
    "Outcome",
    "check_mappings",
    "decide",
    "default_mappings",
    "resolve_mappings",
    "same_second",
]

log = logging.getLogger(__name__)

#: per-field conflict rules (README "Plan" has the truth table)
RULES: tuple[str, ...] = get_args(ConflictRule)
#: per-object directions
DIRECTIONS: tuple[str, ...] = get_args(Direction)

#: value kinds both sides are reduced to before compatibility checks and comparisons
KINDS = (
    "text",
    "phone",
    "url",
    "country",
    "number",
    "date",
    "datetime",
    "bool",
    "enum",
    "multi",
    "owner",
    "reference",
)

#: (HubSpot kind, Salesforce kind) pairs that may be mapped
COMPATIBLE: frozenset[tuple[str, str]] = frozenset(
    {
        ("text", "text"),
        ("number", "number"),
        ("date", "date"),
        ("datetime", "datetime"),
        ("date", "datetime"),
        ("datetime", "date"),
        ("bool", "bool"),
        ("enum", "enum"),
        ("multi", "multi"),
        ("owner", "owner"),
        ("text", "reference"),
    }
)
#: pairs the connector's own default mappings use (HubSpot keeps e.g. a contact's industry,
#: rating and annual revenue as text): accepted for defaults only; a value that is not an
#: option or not a number on the other side is not written (counted, with a warning)
LENIENT_DEFAULTS: frozenset[tuple[str, str]] = frozenset(
    {("text", "enum"), ("enum", "text"), ("text", "number"), ("number", "text")}
)


@dataclass(frozen=True, eq=False)
class FieldMap:
    """One HubSpot property ⇄ one Salesforce field on one Salesforce object.

    Attributes:
        object: ``companies`` or ``contacts``.
        hubspot: HubSpot internal property name.
        salesforce: Salesforce API field name (or a derived value, see ``derived``).
        salesforce_object: ``Account``, ``Contact`` or ``Lead``.
        rule: one of :data:`RULES`.
        default: a built-in mapping (cannot be removed, only set to ``dont_sync``).
        to_salesforce / to_hubspot: directions the mapping itself allows (a read-only
            side is never written).
        kind: the value kind (see ``KINDS``); from the schemas when they are known.
        options: HubSpot option value -> Salesforce picklist value (enumerations).
        hs_options / sf_options: option values present on each side (None: unknown).
        derived: ``account_name`` (Contact's Account.Name), ``campaigns`` (Salesforce
            campaign membership) or ``lifecycle`` (contacts' lifecycle stage onto
            their company); None for plain fields.
        label: the connector's label.
    """

    object: str
    hubspot: str
    salesforce: str
    salesforce_object: str
    rule: str = "prefer_salesforce_unless_blank"
    default: bool = True
    to_salesforce: bool = True
    to_hubspot: bool = True
    kind: str = "text"
    options: Mapping[str, str] = field(default_factory=dict)
    hs_options: frozenset[str] | None = None
    sf_options: frozenset[str] | None = None
    derived: str | None = None
    label: str = ""
    sf_type: str | None = None

    @functools.cached_property
    def key(self) -> str:
        """The ``[mapping] rules`` key of this mapping: ``<object>.<hubspot property>``."""
        return f"{self.object}.{self.hubspot}"

    @property
    def path(self) -> str:
        """Where problems with this mapping are reported."""
        origin = "defaults" if self.default else "fields"
        return f"mapping.{origin}.{self.object}.{self.hubspot}@{self.salesforce_object}.{self.salesforce}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for plan run configs and the README table)."""
        return {
            "object": self.object,
            "hubspot": self.hubspot,
            "salesforce": self.salesforce,
            "salesforce_object": self.salesforce_object,
            "rule": self.rule,
            "default": self.default,
            "to_salesforce": self.to_salesforce,
            "to_hubspot": self.to_hubspot,
            "kind": self.kind,
            "derived": self.derived,
        }


def _c(
    label: str, hs: str, lead: str | None, contact: str | None, kind: str = "text", **kw: Any
) -> list[FieldMap]:
    out = []
    for sf_object, sf_field in (("Lead", lead), ("Contact", contact)):
        if sf_field:
            out.append(FieldMap("contacts", hs, sf_field, sf_object, kind=kind, label=label, **kw))
    return out


#: the HubSpot analytics source values the connector writes into LeadSource
_ANALYTICS_TO_LEADSOURCE = {
    "ORGANIC_SEARCH": "Web",
    "PAID_SEARCH": "Web",
    "DIRECT_TRAFFIC": "Web",
    "SOCIAL_MEDIA": "Web",
    "PAID_SOCIAL": "Web",
    "EMAIL_MARKETING": "Other",
    "REFERRALS": "Partner Referral",
    "OTHER_CAMPAIGNS": "Other",
    "OFFLINE": "Other",
}
_LEAD_STATUS = {
    "NEW": "Open - Not Contacted",
    "OPEN": "Open - Not Contacted",
    "IN_PROGRESS": "Working - Contacted",
    "ATTEMPTED_TO_CONTACT": "Working - Contacted",
    "CONNECTED": "Working - Contacted",
    "OPEN_DEAL": "Closed - Converted",
    "UNQUALIFIED": "Closed - Not Converted",
    "BAD_TIMING": "Closed - Not Converted",
}

#: seed 001: HubSpot contact ⇄ Salesforce Lead / Contact (cannot be deleted)
DEFAULT_CONTACT_MAPPINGS: tuple[FieldMap, ...] = tuple(
    _c("Account ID", "salesforceaccountid", None, "AccountId", "reference", to_salesforce=False)
    + _c("Annual Revenue", "annualrevenue", "AnnualRevenue", None, "number")
    + _c("City", "city", "City", None)
    + _c("Mailing City", "city", None, "MailingCity")
    + _c("Company", "company", "Company", None)
    + _c("Company", "company", None, "Account.Name", derived="account_name", to_salesforce=False)
    + _c("Owner ID", "hubspot_owner_id", "OwnerId", "OwnerId", "owner")
    + _c("Country", "country", "Country", None, "country")
    + _c("Mailing Country", "country", None, "MailingCountry", "country")
    + _c("Email", "email", "Email", "Email")
    + _c("Employees", "numemployees", "NumberOfEmployees", None, "number")
    + _c("Business Fax", "fax", "Fax", "Fax", "phone")
    + _c("First Name", "firstname", "FirstName", "FirstName")
    + _c("Industry", "industry", "Industry", None, "enum")
    + _c("Title", "jobtitle", "Title", "Title")
    + _c("Last Name", "lastname", "LastName", "LastName")
    + _c(
        "Lead Source",
        "hs_analytics_source",
        "LeadSource",
        "LeadSource",
        "enum",
        to_hubspot=False,  # read-only in HubSpot: HubSpot -> Salesforce only
        options=_ANALYTICS_TO_LEADSOURCE,
    )
    + _c("Contact Description", "description", "Description", "Description")
    + _c("Email Opt Out", "hs_email_optout", "HasOptedOutOfEmail", "HasOptedOutOfEmail", "bool")
    + _c("Business Phone", "phone", "Phone", "Phone", "phone")
    + _c("Mailing Zip/Postal Code", "zip", None, "MailingPostalCode")
    + _c("Zip/Postal Code", "zip", "PostalCode", None)
    + _c("Rating", "rating", "Rating", None, "enum")
    + _c("Salutation", "salutation", "Salutation", "Salutation", "enum")
    + _c("Mailing State/Province", "state", None, "MailingState")
    + _c("State/Province", "state", "State", None)
    + _c("Status", "hs_lead_status", "Status", None, "enum", options=_LEAD_STATUS)
    + _c("Mailing Street", "address", None, "MailingStreet")
    + _c("Street", "address", "Street", None)
    + _c("Website", "website", "Website", None, "url")
)


def _a(hs: str, sf: str, kind: str = "text", **kw: Any) -> FieldMap:
    return FieldMap("companies", hs, sf, "Account", kind=kind, label=hs, **kw)


#: company ⇄ Account (field_mappings.md "Company ↔ Account")
DEFAULT_COMPANY_MAPPINGS: tuple[FieldMap, ...] = (
    _a("name", "Name"),
    _a("website", "Website", "url"),
    _a("phone", "Phone", "phone"),
    _a("address", "BillingStreet"),
    _a("city", "BillingCity"),
    _a("state", "BillingState"),
    _a("zip", "BillingPostalCode"),
    _a("country", "BillingCountry", "country"),
    _a("industry", "Industry", "enum"),
    _a("numberofemployees", "NumberOfEmployees", "number"),
    _a("annualrevenue", "AnnualRevenue", "number"),
    _a("description", "Description"),
    _a("hubspot_owner_id", "OwnerId", "owner"),
    _a("type", "Type", "enum"),
)

#: the connector's extras, mapped like any other field (seed 001 campaigns, seed 003 lifecycle)
LIFECYCLE_MAPPING = FieldMap(
    "companies",
    "lifecyclestage",
    "contacts.lifecyclestage",
    "Account",
    rule="always_salesforce",
    kind="enum",
    to_salesforce=False,
    derived="lifecycle",
    label="Lifecycle stage (from the company's contacts)",
)


def campaign_mappings(prop: str) -> list[FieldMap]:
    """Salesforce campaign membership (CampaignMember → Campaign.Name) into HubSpot ``prop``."""
    return [
        FieldMap(
            "contacts",
            prop,
            "CampaignMember.Campaign.Name",
            sf_object,
            rule="always_salesforce",
            kind="multi",
            to_salesforce=False,
            derived="campaigns",
            label="Salesforce Campaigns",
        )
        for sf_object in ("Lead", "Contact")
    ]


def default_mappings(
    *, campaign_property: str | None = None, lifecycle: bool = True
) -> list[FieldMap]:
    """The built-in mappings (contacts, companies and the connector's extras).

    Examples:
        >>> [m.salesforce_object for m in default_mappings() if m.hubspot == "email"]
        ['Lead', 'Contact']
    """
    out = list(DEFAULT_CONTACT_MAPPINGS) + list(DEFAULT_COMPANY_MAPPINGS)
    if lifecycle:
        out.append(LIFECYCLE_MAPPING)
    if campaign_property:
        out.extend(campaign_mappings(campaign_property))
    return out


# --------------------------------------------------------------------------- validation


def check_mappings(section: Any, schemas: Schemas | None = None) -> MappingCheck:
    """Build the mappings of a ``[mapping]`` section and validate them against ``schemas``.

    Every problem is collected; nothing is raised. ``schemas`` maps
    ``(source, object)`` to the field list as stored in the ``schemas`` table
    (HubSpot properties or Salesforce describe fields); objects without a stored
    schema are not checked (a warning says so). Problems with a custom mapping are
    ``errors``; problems with a default only disable or narrow it (``warnings``).
    Implementation: :mod:`recon.plan_schema`.

    Args:
        section: a :class:`~recon.config.MappingSection`.
        schemas: ``{("hubspot", "contacts"): [...], ("salesforce", "Lead"): [...], ...}``.

    Examples:
        >>> from recon.config import MappingSection
        >>> chk = check_mappings(MappingSection())
        >>> chk.errors, len(chk.mappings) > 40
        ([], True)
    """
    from .plan_schema import check

    return check(section, schemas)


def resolve_mappings(section: Any, schemas: Schemas | None = None) -> MappingCheck:
    """:func:`check_mappings`, raising when any custom mapping or rule is invalid.

    Raises:
        MappingError: listing every problem with its key path.

    Examples:
        >>> from recon.config import MappingSection
        >>> len(resolve_mappings(MappingSection()).for_object("contacts", "Lead")) > 10
        True
    """
    chk = check_mappings(section, schemas)
    if chk.errors:
        raise MappingError(
            "field mappings do not fit the CRM schemas",
            problems=chk.errors,
            hint=f"fix [mapping] in {config_file()} (or the CRM fields) and run `recon plan` again",
        )
    for path, msg in chk.warnings:
        log.info("mapping %s: %s", path, msg)
    return chk


@dataclass
class MappingCheck:
    """The result of :func:`check_mappings`.

    Attributes:
        mappings: the usable mappings (kinds, options and writable directions from the schemas).
        errors: ``(key path, message)`` problems that make the configuration invalid.
        warnings: ``(key path, message)`` problems that only disabled or narrowed a default.
    """

    mappings: list[FieldMap]
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def for_object(self, obj: str, sf_object: str) -> list[FieldMap]:
        """The mappings of one HubSpot object to one Salesforce object."""
        return [m for m in self.mappings if m.object == obj and m.salesforce_object == sf_object]


Schemas = Mapping[tuple[str, str], Iterable[Mapping[str, Any]]]


# --------------------------------------------------------------------------- conflict rules


@dataclass(frozen=True)
class Outcome:
    """What a rule decides for one field of one linked pair.

    ``action`` is ``none``, ``to_salesforce`` (write the HubSpot value into
    Salesforce), ``to_hubspot`` or ``review``; ``why`` names the table cell.
    """

    action: str
    why: str


_TABLE: dict[str, tuple[str, str, str]] = {
    # rule: (SF blank & HS set, SF set & HS blank, both set and different)
    "prefer_salesforce_unless_blank": ("to_salesforce", "to_hubspot", "to_hubspot"),
    "always_salesforce": ("none", "to_hubspot", "to_hubspot"),
    "two_way": ("to_salesforce", "to_hubspot", "newer"),
    "prefer_hubspot_unless_blank": ("to_salesforce", "to_hubspot", "to_salesforce"),
    "always_hubspot": ("to_salesforce", "none", "to_salesforce"),
    "review": ("to_salesforce", "to_hubspot", "review"),
    "dont_sync": ("none", "none", "none"),
}


def writes_of(rule: str, direction: str) -> set[str]:
    """The systems a rule under an object direction can ever write to.

    Examples:
        >>> sorted(writes_of("always_salesforce", "two_way"))
        ['hubspot']
    """
    by_rule = {
        "always_salesforce": {"hubspot"},
        "always_hubspot": {"salesforce"},
        "dont_sync": set(),
    }.get(rule, {"hubspot", "salesforce"})
    by_dir = {
        "two_way": {"hubspot", "salesforce"},
        "hubspot_to_salesforce": {"salesforce"},
        "salesforce_to_hubspot": {"hubspot"},
        "off": set(),
    }[direction]
    return by_rule & by_dir


def same_second(a: datetime | None, b: datetime | None) -> bool:
    """Whether two modification times fall in one whole second (or one is missing).

    Salesforce stamps whole seconds and HubSpot milliseconds: an edit in the same second
    on both sides cannot be ordered.

    Examples:
        >>> from datetime import UTC, datetime
        >>> same_second(datetime(2026, 1, 1, 0, 0, 1, 708000, UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
        True
    """
    if a is None or b is None:
        return True
    return a.replace(microsecond=0) == b.replace(microsecond=0)


def decide(
    rule: str,
    *,
    hs_blank: bool,
    sf_blank: bool,
    equal: bool,
    hs_time: datetime | None = None,
    sf_time: datetime | None = None,
    last_synced: datetime | None = None,
) -> Outcome:
    """The conflict-rule truth table for one field (before direction is applied).

    ``two_way`` with both values set picks the newer side by ``hs_time`` /
    ``sf_time`` (field-level where the CRM keeps one, else record-level); it asks
    for review when a time is missing, when the times fall in one second, or when both
    sides changed after ``last_synced`` (the last confirmed apply of the pair).

    Examples:
        >>> decide("two_way", hs_blank=False, sf_blank=False, equal=False).action
        'review'
    """
    if rule not in _TABLE:
        raise MappingError(
            f"unknown conflict rule {rule!r}",
            problems=[("mapping.rules", f"use one of {', '.join(RULES)}")],
        )
    if hs_blank and sf_blank:
        return Outcome("none", "both_blank")
    if equal:
        return Outcome("none", "equal")
    sf_blank_cell, hs_blank_cell, both_cell = _TABLE[rule]
    if sf_blank:
        return Outcome(sf_blank_cell, "salesforce_blank")
    if hs_blank:
        return Outcome(hs_blank_cell, "hubspot_blank")
    if both_cell != "newer":
        return Outcome(both_cell, "both_set")
    if hs_time is None or sf_time is None:
        return Outcome("review", "times_missing")
    if last_synced is not None and hs_time > last_synced and sf_time > last_synced:
        return Outcome("review", "both_changed_since_sync")
    if same_second(hs_time, sf_time):
        return Outcome("review", "same_time")
    return (
        Outcome("to_salesforce", "hubspot_newer")
        if hs_time > sf_time
        else Outcome("to_hubspot", "salesforce_newer")
    )


def allowed(outcome: Outcome, m: FieldMap, direction: str) -> bool:
    """Whether the object direction and the mapping's own directions permit ``outcome``'s write.

    Examples:
        >>> allowed(Outcome("to_hubspot", "x"), DEFAULT_COMPANY_MAPPINGS[0], "hubspot_to_salesforce")
        False
    """
    if outcome.action == "to_salesforce":
        return m.to_salesforce and direction in ("two_way", "hubspot_to_salesforce")
    if outcome.action == "to_hubspot":
        return m.to_hubspot and direction in ("two_way", "salesforce_to_hubspot")
    if outcome.action == "review":
        return direction != "off"
    return False
