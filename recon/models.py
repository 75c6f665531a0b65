"""Shared vocabulary of recon: sources, objects, records, pairs, decisions, changes.

Object names are the CRMs' own: ``companies`` and ``contacts`` on the HubSpot
side, ``Account``, ``Contact`` and ``Lead`` on the Salesforce side. The matching
vocabulary follows Splink: ``source``, ``record_id``, ``_l``/``_r`` suffixes,
``score``, ``tier``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CANONICAL_ENCODER",
    "Change",
    "DecidedBy",
    "Decision",
    "EntityKind",
    "FALSE_WORDS",
    "HUBSPOT",
    "HUBSPOT_OBJECTS",
    "Label",
    "OPT_OUT_FIELDS",
    "Pair",
    "RECORD_COLUMNS",
    "REFUSING_LABELS",
    "Record",
    "SALESFORCE",
    "SALESFORCE_OBJECTS",
    "SF_ID_PREFIXES",
    "SourceName",
    "TRUE_WORDS",
    "Tier",
    "canonical_json",
    "entity_objects",
    "entity_of",
    "file_in_the_way",
    "hubspot_record_url",
    "is_opt_out",
    "new_run_id",
    "now_iso",
    "opted_out",
    "parse_ts",
    "salesforce_id18",
    "salesforce_record_url",
    "sleep_noted",
    "stable_id",
    "waiting",
]

SourceName = Literal["hubspot", "salesforce"]
HUBSPOT: SourceName = "hubspot"
SALESFORCE: SourceName = "salesforce"

HUBSPOT_OBJECTS: tuple[str, ...] = ("companies", "contacts")
SALESFORCE_OBJECTS: tuple[str, ...] = ("Account", "Contact", "Lead")
#: the canonical record columns, in order: what pull writes as snapshot columns, what export
#: files are mapped to and what matching reads (``archived`` is an integer 0/1/2, the rest text)
RECORD_COLUMNS: tuple[str, ...] = (
    "source",
    "object",
    "record_id",
    "name",
    "domain",
    "website",
    "email",
    "phone",
    "first_name",
    "last_name",
    "company",
    "account_id",
    "city",
    "country",
    "owner_id",
    "external_ids",
    "created_at",
    "modified_at",
    "archived",
    "data",
)

#: Salesforce key prefixes of the objects recon reads.
SF_ID_PREFIXES: dict[str, str] = {
    "001": "Account",
    "003": "Contact",
    "00Q": "Lead",
    "005": "User",
    "701": "Campaign",
    "00v": "CampaignMember",
}


class EntityKind(StrEnum):
    """The two kinds of entity recon matches: organisations and people."""

    COMPANIES = "companies"
    CONTACTS = "contacts"


#: which entity kind each source object stands for
_ENTITY = {
    ("hubspot", "companies"): EntityKind.COMPANIES,
    ("hubspot", "contacts"): EntityKind.CONTACTS,
    ("salesforce", "Account"): EntityKind.COMPANIES,
    ("salesforce", "Contact"): EntityKind.CONTACTS,
    ("salesforce", "Lead"): EntityKind.CONTACTS,
}


def entity_of(source: str, obj: str) -> EntityKind:
    """The entity kind a source object holds.

    Examples:
        >>> entity_of("salesforce", "Lead").value
        'contacts'
    """
    try:
        return _ENTITY[(source, obj)]
    except KeyError:
        raise ValueError(f"unknown object {obj!r} for source {source!r}") from None


def entity_objects(entity: str) -> tuple[str, ...]:
    """The objects of both sources that hold ``entity`` (``companies`` or ``contacts``).

    Examples:
        >>> entity_objects("contacts")
        ('contacts', 'Contact', 'Lead')
    """
    return tuple(obj for (_source, obj), kind in _ENTITY.items() if kind == entity)


class Tier(StrEnum):
    """Confidence tier of a candidate pair."""

    AUTO = "auto"
    REVIEW = "review"
    REJECT = "reject"


class Label(StrEnum):
    """A decision's label: pair labels and plan-item labels."""

    MATCH = "match"
    NON_MATCH = "non_match"
    UNSURE = "unsure"
    APPROVE = "approve"
    REJECT = "reject"
    DEFER = "defer"


#: labels that take nothing a decision chose (a master, a value) into effect
REFUSING_LABELS = frozenset({"reject", "non_match", "defer"})


class DecidedBy(StrEnum):
    """Who decided: a person in review, the headless auto-approve policy, or recon itself (the
    link between a record it created and the record it was created from)."""

    HUMAN = "human"
    POLICY = "policy"
    RECON = "recon"


#: thread id -> (what the thread waits for, when the wait ends on the monotonic clock)
_WAITS: dict[int, tuple[str, float]] = {}


def sleep_noted(seconds: float, what: str) -> None:
    """``time.sleep(seconds)``, noted for :func:`waiting` while it lasts (a rate-limit wait an
    apply running in another thread, such as the review app's, can show)."""
    if seconds <= 0:
        return
    me = threading.get_ident()
    _WAITS[me] = (what, time.monotonic() + seconds)
    try:
        time.sleep(seconds)
    finally:
        _WAITS.pop(me, None)


def waiting(thread_id: int | None) -> tuple[str, float] | None:
    """What thread ``thread_id`` is waiting for and the seconds left, or None.

    Examples:
        >>> waiting(threading.get_ident()) is None
        True
    """
    hit = _WAITS.get(thread_id) if thread_id is not None else None
    if hit is None:
        return None
    what, until = hit
    return what, max(0.0, until - time.monotonic())


def now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds and ``Z``.

    Examples:
        >>> now_iso().endswith("Z")
        True
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


#: a checkbox's words, as CRMs, reports and spreadsheets write it (lower case)
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on", "t", "x", "ja", "oui", "si", "sí"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", "f", "nein", "non"})

#: consent flags (casefolded names) a sync or a merge only ever sets, never clears: a person
#: who opted out in either CRM stays opted out (HubSpot's connector never resubscribes one)
OPT_OUT_FIELDS = frozenset(
    {"hs_email_optout", "hasoptedoutofemail", "hasoptedoutoffax", "donotcall"}
)


def is_opt_out(name: Any) -> bool:
    """Whether a field or property is a consent flag (:data:`OPT_OUT_FIELDS`, or one of
    HubSpot's per-subscription ``hs_email_optout_<id>`` properties).

    Examples:
        >>> is_opt_out("HasOptedOutOfEmail"), is_opt_out("hs_email_optout_1234"), is_opt_out("Phone")
        (True, True, False)
    """
    text = str(name or "").casefold()
    return text in OPT_OUT_FIELDS or text.startswith("hs_email_optout_")


def opted_out(value: Any) -> bool:
    """Whether a consent flag's value says "opted out" (Salesforce ``True``, HubSpot ``"true"``,
    and whatever else :func:`recon.plan_values.norm` reads as true: a file's ``Yes`` or ``1``).

    Examples:
        >>> opted_out(True), opted_out("TRUE"), opted_out("Yes"), opted_out(1), opted_out("false"), opted_out(None)
        (True, True, True, True, False, False)
    """
    if value is True or (type(value) is int and value == 1):
        return True
    return isinstance(value, str) and value.strip().casefold() in TRUE_WORDS


def parse_ts(value: str | None) -> datetime | None:
    """Parse a CRM timestamp (ISO-8601 with ``Z`` or offset, Salesforce ``+0000``, epoch ms).

    Returns an aware UTC datetime, or None for blank input.

    Examples:
        >>> parse_ts("2024-01-02T03:04:05.000+0000").isoformat()
        '2024-01-02T03:04:05+00:00'
        >>> parse_ts("1704164645000").year
        2024
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
        text = text[:-2] + ":" + text[-2:]
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


_HUBSPOT_TYPE_IDS = {"companies": "0-2", "contacts": "0-1"}


def hubspot_record_url(
    app_url: str, portal_id: str | None, obj: str, record_id: str | None
) -> str | None:
    """A record's page in the HubSpot app, or None without a portal id or record id.

    Examples:
        >>> hubspot_record_url("https://app.hubspot.com", "42", "companies", "7")
        'https://app.hubspot.com/contacts/42/record/0-2/7'
    """
    if not record_id or not portal_id:
        return None
    type_id = _HUBSPOT_TYPE_IDS.get(obj, obj)
    return f"{app_url.rstrip('/')}/contacts/{portal_id}/record/{type_id}/{record_id}"


def salesforce_record_url(instance_url: str | None, obj: str, record_id: str | None) -> str | None:
    """A record's Lightning page in Salesforce, or None without an instance URL or record id.

    Examples:
        >>> salesforce_record_url("https://acme.my.salesforce.com", "Account", "001x")
        'https://acme.my.salesforce.com/lightning/r/Account/001x/view'
    """
    if not record_id or not instance_url:
        return None
    return f"{instance_url.rstrip('/')}/lightning/r/{obj}/{record_id}/view"


#: the encoder behind :func:`canonical_json`, built once (``json.dumps`` with options builds one
#: per call, most of the cost of a short value)
CANONICAL_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


_SF_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(record_id: str | None) -> str | None:
    """A Salesforce id in its 18-character form (a 15-character one gets its checksum suffix;
    anything else is returned as it is).

    Examples:
        >>> salesforce_id18("0015g0000000001"), salesforce_id18("0015g0000000001AAA")
        ('0015g0000000001AAA', '0015g0000000001AAA')
    """
    if record_id is None or len(record_id) != 15 or not record_id.isalnum():
        return record_id
    suffix = ""
    for i in range(3):
        chunk = record_id[i * 5 : i * 5 + 5]
        bits = sum(1 << k for k, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SF_SUFFIX[bits]
    return record_id + suffix


def file_in_the_way(path: Path) -> Path | None:
    """A parent of ``path`` that exists as a file, not a folder (``path`` cannot be written
    under it; the OS says only "File exists" or "Not a directory"), else None.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.csv").write_text("x")
        >>> file_in_the_way(folder / "a.csv" / "b.csv") == folder / "a.csv", file_in_the_way(folder / "c")
        (True, None)
    """
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form hashed for stable ids."""
    return CANONICAL_ENCODER.encode(value)


def stable_id(*parts: Any, prefix: str = "", length: int = 16) -> str:
    """A stable id from its parts (sha256, never Python's ``hash()``).

    Examples:
        >>> stable_id("hubspot", "101") == stable_id("hubspot", "101")
        True
    """
    digest = hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:length]
    return f"{prefix}{digest}"


def new_run_id(stage: str) -> str:
    """A new, sortable run id such as ``pull-20261130T053400-3fa9c1``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stage}-{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Record:
    """One CRM record as pulled: its key and all its fields."""

    source: SourceName
    object: str
    record_id: str
    fields: dict[str, Any]
    modified_at: str | None = None
    created_at: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class Pair:
    """A candidate pair of records with its score, tier and explanation."""

    object: str  # entity kind: companies | contacts
    source_l: str
    record_id_l: str
    source_r: str
    record_id_r: str
    score: float
    tier: Tier
    explanation: list[dict[str, Any]] = field(default_factory=list)
    object_l: str | None = None
    object_r: str | None = None

    @property
    def pair_id(self) -> str:
        """Stable id of the pair, independent of the run."""
        return stable_id(
            self.object, self.source_l, self.record_id_l, self.source_r, self.record_id_r
        )


@dataclass
class Decision:
    """A review decision in the labels shape (see STYLE.md habit 4)."""

    kind: str  # link | duplicate | conflict_value | master | split | plan
    label: Label
    object: str | None = None
    source_l: str | None = None
    record_id_l: str | None = None
    source_r: str | None = None
    record_id_r: str | None = None
    salesforce_object: str | None = None
    choice: Any = None
    item_id: str | None = None
    decided_by: DecidedBy = DecidedBy.HUMAN
    reviewer: str | None = None
    decided_at: str | None = None
    version: int = 1
    note: str | None = None


@dataclass
class Change:
    """One field-level change the plan proposes for one CRM record."""

    system: SourceName
    object: str
    record_id: str | None
    action: str  # update | create | associate | merge | ...
    field: str | None = None
    before: Any = None
    after: Any = None
