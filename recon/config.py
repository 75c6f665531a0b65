"""recon.toml: find it, read it, validate every key, resolve secrets and paths.

One file configures the CLI, the review app, notebooks and headless runs. It is
found as ``--config PATH``, else ``$RECON_CONFIG``, else ``./recon.toml``; with
none of those, the embedded defaults apply. Relative paths resolve against the
config file's folder. Environment variables ``RECON_<SECTION>__<KEY>`` override
file values (``RECON_STORE__PATH=/tmp/x.db``).

Secrets are ``"env:NAME"`` (read from that environment variable when used) or
a literal, which is accepted only when every URL the secret is sent to is a
loopback address (the sandbox). A :class:`Secret` never prints its value.

Validation reports every problem at once, each with its key path.

Examples:
    >>> cfg = ReconConfig()
    >>> cfg.hubspot.base_url
    'https://api.hubapi.com'
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import BeforeValidator as _Before
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .errors import ConfigError, register_secret

__all__ = [
    "ApplySection",
    "BudgetSection",
    "HubSpotSection",
    "MappingSection",
    "MatchSection",
    "NotifySection",
    "PolicySection",
    "PullSection",
    "ReconConfig",
    "ReviewSection",
    "SalesforceSection",
    "SandboxSection",
    "Secret",
    "StoreSection",
    "config_file",
    "find_config_path",
    "is_loopback_url",
    "load_config",
    "notify_section_of",
    "setting_place",
]

CONFIG_ENV = "RECON_CONFIG"
DEFAULT_CONFIG_NAME = "recon.toml"


def is_loopback_url(url: str | None) -> bool:
    """True when ``url``'s host is a loopback address (127.0.0.0/8, ::1, localhost).

    Examples:
        >>> is_loopback_url("http://127.0.0.1:8765")
        True
        >>> is_loopback_url("https://api.hubapi.com")
        False
    """
    if not url:
        return False
    host = urlparse(url if "//" in url else f"//{url}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Secret:
    """A credential given as ``env:NAME`` or as a literal; it never prints its value.

    Examples:
        >>> s = Secret("env:HUBSPOT_TOKEN")
        >>> str(s)
        'Secret(env:HUBSPOT_TOKEN)'
        >>> str(Secret("pat-123"))
        'Secret(***)'
    """

    __slots__ = ("_literal", "env_name")

    def __init__(self, raw: str) -> None:
        raw = raw.strip()
        if raw.startswith("env:"):
            self.env_name: str | None = raw[4:].strip()
            self._literal: str | None = None
        else:
            self.env_name = None
            self._literal = raw

    @property
    def is_literal(self) -> bool:
        """True when the value was written into the config file itself."""
        return self.env_name is None

    def get(self, key_path: str = "secret") -> str:
        """The secret's value (reads the environment each time).

        Raises:
            ConfigError: the environment variable is not set or empty.
        """
        if self.env_name is None:
            register_secret(self._literal)
            return self._literal or ""
        value, problem = self._read()
        if problem:
            raise ConfigError(
                f"{key_path}: {problem}",
                hint=f"set {self.env_name} to the value alone, on one line"
                if value
                else f"export {self.env_name}=... before running recon",
            )
        return value

    def problem(self) -> str | None:
        """Why :meth:`get` would fail (its variable unset, empty, or holding a line break), or
        None: for reporting every secret a command lacks at once.

        Examples:
            >>> Secret("env:RECON_DOCTEST_UNSET").problem()
            'environment variable RECON_DOCTEST_UNSET is not set'
        """
        return None if self.env_name is None else self._read()[1]

    def _read(self) -> tuple[str, str | None]:
        assert self.env_name is not None
        raw = os.environ.get(self.env_name, "")
        # spaces and line ends around it are no part of it (an env file saved with CRLF): a
        # server strips them from a header, so only the stripped value would be echoed
        value = raw.strip().strip(_INVISIBLE).strip()
        if value and raw != value:  # (a value of spaces alone is no secret to blank)
            register_secret(raw)
        if not value:
            state = "is empty" if self.env_name in os.environ else "is not set"
            return "", f"environment variable {self.env_name} {state}"
        register_secret(value)  # blanked in every error text from now on (errors.redact)
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return value, (
                f"environment variable {self.env_name} holds a line break or another control "
                "character"
            )
        return value, None

    def reference(self) -> str:
        """How the secret is referred to in a config file, without its value."""
        return f"env:{self.env_name}" if self.env_name else "***"

    def __repr__(self) -> str:
        return f"Secret({self.reference()})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and (self.env_name, self._literal) == (
            other.env_name,
            other._literal,
        )

    def __hash__(self) -> int:
        return hash((self.env_name, self._literal))


#: characters no one sees around a pasted value (a byte-order mark, zero-width spaces)
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"

#: an environment variable's name, as shells take it
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: a shell's (or Windows') reference to a variable written as the value itself
_SHELL_REFERENCE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?|%([A-Z_][A-Z0-9_]*)%")


def _looks_like_a_value(name: str) -> bool:
    """Whether what follows ``env:`` is more likely a pasted secret than a variable's name:
    long, with digits, and no underscore (a Salesforce consumer secret in hex, a token).

    Examples:
        >>> _looks_like_a_value("HUBSPOT_TOKEN"), _looks_like_a_value("E5F1A3B9C0D2E4F6A8B0C1D3E5F7A9B1")
        (False, True)
    """
    return len(name) >= 16 and "_" not in name and any(ch.isdigit() for ch in name)


def _to_secret(value: Any) -> Any:
    if isinstance(value, Secret) or value is None:
        return value
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("a secret may not be empty; use env:NAME")
        if value.strip() == "env:":
            raise ValueError("env: needs a variable name, e.g. env:HUBSPOT_TOKEN")
        # a shell's reference ($NAME, ${NAME}, %NAME%) is not expanded: it would be sent as
        # the token. Only a variable's usual spelling (capitals, digits, underscores) is taken
        # for one, and repeated back: a password such as "$Summer2024" is left alone
        shell = _SHELL_REFERENCE.fullmatch(value.strip())
        name = shell and (shell[1] or shell[2])
        if name and not _looks_like_a_value(name):
            raise ValueError(
                f'{value.strip()} is not read from the environment; write "env:{name}"'
            )
        name = value.strip()[4:].strip() if value.strip().startswith("env:") else None
        if name is not None and (not _ENV_NAME.fullmatch(name) or _looks_like_a_value(name)):
            # never repeated back: what follows env: is most likely the secret itself, pasted
            raise ValueError(
                "what follows env: is no environment variable name (letters, digits and "
                "underscores) and looks like a value: write env:NAME and put the value in "
                "that environment variable"
            )
        return Secret(value)
    raise ValueError("a secret must be a string: env:NAME or (for the sandbox only) a literal")


SecretField = Annotated[
    Secret,
    _Before(_to_secret),
    PlainSerializer(lambda s: s.reference(), return_type=str),
    WithJsonSchema({"type": "string"}),
]


def _check_literal_secrets(
    model: BaseModel, secret_fields: tuple[str, ...], urls: list[str | None], section: str
) -> None:
    problems = []
    for name in secret_fields:
        secret = getattr(model, name)
        loopback_only = any(urls) and all(is_loopback_url(u) for u in urls if u)
        if isinstance(secret, Secret) and secret.is_literal and not loopback_only:
            problems.append(name)
    if problems:
        raise ValueError(
            "literal secret(s) "
            + ", ".join(f"{section}.{p}" for p in problems)
            + ' are only accepted for loopback hosts (the sandbox); use "env:NAME" and set that '
            "environment variable"
        )


class Section(BaseModel):
    """Base of every config section: unknown keys are errors."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        validate_default=True,
        hide_input_in_errors=True,  # a value in an error may be a credential (notebooks show it)
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_blank_path(cls, value: Any, info: ValidationInfo) -> Any:
        # "" is the path "." (the config file's folder): a store, export folder or key file
        # there is never what was meant
        field = cls.model_fields.get(info.field_name or "")
        is_path = field is not None and (
            field.annotation is Path or Path in get_args(field.annotation)
        )
        if is_path and isinstance(value, str) and not value.strip():
            raise ValueError("is empty; write a path, or leave the key out for its default")
        return value


class StoreSection(Section):
    """``[store]``: where the local SQLite store lives."""

    path: Path = Path("data/recon.db")
    exports_dir: Path = Path("data/exports")
    # `recon run` deletes the rows of older plan and match runs, keeping this many of each
    # (see `recon prune`); None keeps everything
    keep_runs: int | None = Field(None, ge=1)


def _number_as_text(v: Any) -> Any:
    """An ID written as a number (``portal_id = 1234567``) read as the text it stands for."""
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class HubSpotSection(Section):
    """``[hubspot]``: the HubSpot account recon reads and writes."""

    base_url: str = "https://api.hubapi.com"
    access_token: SecretField | None = None
    # for record links into HubSpot; a number as HubSpot shows it (portal_id = 1234567) is read too
    portal_id: Annotated[str | None, _Before(_number_as_text)] = None
    app_url: str = "https://app.hubspot.com"
    objects: list[Literal["companies", "contacts"]] = ["companies", "contacts"]
    salesforce_connector_active: bool = False
    key_property: str = "recon_key"  # unique property recon creates for idempotent creates
    page_size: int = Field(100, ge=1, le=100)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)

    @field_validator("base_url", "app_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if urlparse(v).scheme not in {"http", "https"} or not urlparse(v).hostname:
            raise ValueError("must be an http(s) URL such as https://api.hubapi.com")
        if urlparse(v).scheme == "http" and not is_loopback_url(v):
            raise ValueError("plain http is only allowed for loopback hosts (the sandbox)")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _secrets(self) -> HubSpotSection:
        _check_literal_secrets(self, ("access_token",), [self.base_url], "hubspot")
        return self


#: the settings each Salesforce sign-in flow (``[salesforce] auth``) needs
SALESFORCE_AUTH_NEEDS: dict[str, tuple[str, ...]] = {
    "client_credentials": ("client_id", "client_secret"),
    "jwt": ("client_id", "username", "private_key_file"),
    "password": ("client_id", "client_secret", "username", "password"),
    "session": ("session_id",),
}


class SalesforceSection(Section):
    """``[salesforce]``: the Salesforce org and how recon authenticates."""

    instance_url: str | None = None
    login_url: str = "https://login.salesforce.com"
    auth: Literal["client_credentials", "jwt", "password", "session"] = "client_credentials"
    client_id: SecretField | None = None
    client_secret: SecretField | None = None
    username: str | None = None
    password: SecretField | None = None
    security_token: SecretField | None = None
    private_key_file: Path | None = None
    session_id: SecretField | None = None
    api_version: str = "59.0"
    objects: list[Literal["Account", "Contact", "Lead"]] = ["Account", "Contact", "Lead"]
    bulk_threshold: int = Field(100_000, ge=0)  # above this many records, Bulk API 2.0 query
    timeout_seconds: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    # the share of the org's rolling 24-hour API allocation recon may use (None: all of it)
    max_org_usage: float | None = Field(None, gt=0, le=1)

    @field_validator("instance_url", "login_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if urlparse(v).scheme not in {"http", "https"} or not urlparse(v).hostname:
            raise ValueError("must be an http(s) URL such as https://example.my.salesforce.com")
        if urlparse(v).scheme == "http" and not is_loopback_url(v):
            raise ValueError("plain http is only allowed for loopback hosts (the sandbox)")
        return v.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str) -> str:
        v = v.lstrip("vV")
        try:
            major = float(v)
        except ValueError:
            raise ValueError("must look like 59.0") from None
        if not 20 <= major < 100:
            raise ValueError("must be a Salesforce API version such as 59.0")
        return v

    @property
    def configured(self) -> bool:
        """True once an org is named (``instance_url``): credentials are then required."""
        return self.instance_url is not None

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceSection:
        # both checks run, so one round names every credential problem
        problems = []
        if self.configured:
            needed = SALESFORCE_AUTH_NEEDS[self.auth]
            missing = [name for name in needed if getattr(self, name) is None]
            if missing:
                problems.append(
                    f"auth = {self.auth!r} needs " + ", ".join(f"salesforce.{m}" for m in missing)
                )
        secret_fields = ("client_id", "client_secret", "password", "security_token", "session_id")
        urls = (
            [self.instance_url] if self.auth == "session" else [self.login_url, self.instance_url]
        )
        try:
            _check_literal_secrets(self, secret_fields, urls, "salesforce")
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return self


_SCOPE_OBJECTS = {
    "hubspot": ("companies", "contacts"),
    "salesforce": ("Account", "Contact", "Lead"),
}


class ScopeFilter(Section):
    """One scoping filter: only records whose ``field`` satisfies ``op value`` are synced."""

    source: Literal["hubspot", "salesforce"]
    object: str
    field: str
    op: Literal["eq", "neq", "in", "not_in", "has_value", "no_value", "contains"] = "eq"
    value: Any = None
    #: filters naming one group must all hold, and a record of the object is in scope when
    #: one of its groups holds whole (and every filter without a group): OR of ANDs, as
    #: HubSpot's filter groups and the connector's inclusion lists read
    group: str | None = None

    @field_validator("group")
    @classmethod
    def _group_name(cls, value: str | None) -> str | None:
        return None if value is None else value.strip()  # "EU " and "EU" name one group

    @model_validator(mode="after")
    def _known_object(self) -> ScopeFilter:
        problems = []
        if not self.field.strip():
            problems.append("field is empty; name the property or field to filter on")
        if self.group == "":
            problems.append(
                'group is empty; name the group (e.g. group = "customers") or leave it out'
            )
        # a misspelt object would leave every record of the intended one unfiltered
        known = _SCOPE_OBJECTS[self.source]
        if self.object not in known:
            problems.append(
                f"object {self.object!r} is not a {self.source} object recon pulls; "
                f"use one of {', '.join(known)}"
            )
        # a value that does not fit its op would put every record out of scope
        scalar = (str, int, float, bool)
        value = self.value
        if self.op in ("has_value", "no_value"):
            if value is not None:
                problems.append(f"op {self.op!r} takes no value; remove value")
        elif self.op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                problems.append(f'op {self.op!r} needs a list of values, e.g. value = ["a", "b"]')
            elif not all(isinstance(v, scalar) for v in value):
                problems.append(f"op {self.op!r} takes a list of texts or numbers")
        elif value is None:
            problems.append(f'op {self.op!r} needs a value, e.g. value = "Open"')
        elif not isinstance(value, scalar):
            problems.append(
                f"op {self.op!r} takes one text or number; for several, use "
                f"op = {'in' if self.op == 'eq' else 'not_in'!r}"
                if self.op in ("eq", "neq")
                else f"op {self.op!r} takes one text"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PullSection(Section):
    """``[pull]``: incremental cursors, scoping, archived sweeps."""

    # re-read this margin before the cursor (content hashes keep unchanged rows); None: 1 s on
    # Salesforce (whole-second SystemModstamp: a second edit in the same second), 0 on HubSpot
    lag_seconds: float | None = Field(None, ge=0)
    # HubSpot search finds a change only once indexed (about 10 s after a create, 60 s after
    # an update): an incremental's cursor stays this far behind the moment its search started
    hubspot_index_delay_seconds: float = Field(120.0, ge=0)
    archived_sweep_hours: float = Field(24.0, ge=0)
    # properties/describe and owners/Users older than this are re-read (always on --full)
    schema_refresh_hours: float = Field(24.0, ge=0)
    owners_refresh_hours: float = Field(24.0, ge=0)
    contacts_require_email: bool = True
    include_deleted: bool = False  # Salesforce queryAll
    filters: list[ScopeFilter] = []
    hubspot_properties: dict[str, list[str]] = {}  # extra properties per object
    salesforce_fields: dict[str, list[str]] = {}  # extra fields per object

    @model_validator(mode="after")
    def _known_objects(self) -> PullSection:
        # a misspelt object's fields would never be fetched, and nothing would say so
        problems = [
            f"{key}: {obj!r} is not a {source} object recon pulls; use one of "
            f"{', '.join(_SCOPE_OBJECTS[source])}"
            for key, source in (
                ("hubspot_properties", "hubspot"),
                ("salesforce_fields", "salesforce"),
            )
            for obj in getattr(self, key)
            if obj not in _SCOPE_OBJECTS[source]
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class MatchSection(Section):
    """``[match]``: settings file and threshold overrides."""

    settings_file: Path | None = None
    objects: list[Literal["companies", "contacts"]] = ["companies", "contacts"]
    thresholds: dict[str, float] = {}

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        from dataclasses import asdict, fields

        from .match.settings import Thresholds

        known, given = [f.name for f in fields(Thresholds)], value
        if info.data.get("settings_file") is None:
            # the other end of a pair is the default one (a settings file may hold others:
            # checked when the file is read, see recon.match.run.settings_for)
            value = {**asdict(Thresholds()), **value}
        problems = [
            f"unknown threshold {k!r}; known: {', '.join(known)}"
            for k in sorted(set(value) - set(known))
        ]
        problems += [
            f"threshold {k!r} must be a probability between 0 and 1"
            for k in sorted(k for k, v in value.items() if k in known and not 0 <= v <= 1)
        ]
        valid = {k: v for k, v in value.items() if k in known and 0 <= v <= 1}
        for low, high in (("review", "auto"), ("duplicate_review", "duplicate_auto")):
            # (a value that is no probability is named above, not compared)
            if low in valid and high in valid and value[low] > value[high]:
                problems.append(
                    f"threshold {low!r} ({value[low]}) must not exceed {high!r} ({value[high]})"
                    + "".join(
                        f" ({k!r} is the default: set both)" for k in (low, high) if k not in given
                    )
                )
        if problems:
            raise ValueError("; ".join(problems))
        return given


ConflictRule = Literal[
    "prefer_salesforce_unless_blank",
    "always_salesforce",
    "two_way",
    "prefer_hubspot_unless_blank",
    "always_hubspot",
    "review",
    "dont_sync",
]


class FieldMapping(Section):
    """A custom field mapping in ``[[mapping.fields]]``."""

    object: Literal["companies", "contacts"]
    hubspot: str
    salesforce: str
    salesforce_object: Literal["Account", "Contact", "Lead"] | None = None
    rule: ConflictRule | None = None
    options: dict[str, str] = {}  # HubSpot option value -> Salesforce picklist value

    @model_validator(mode="after")
    def _object_fits(self) -> FieldMapping:
        if self.salesforce_object:
            ok = {"companies": {"Account"}, "contacts": {"Lead", "Contact"}}[self.object]
            if self.salesforce_object not in ok:
                raise ValueError(
                    f"salesforce_object {self.salesforce_object} does not hold {self.object}; "
                    f"use {' or '.join(sorted(ok))}"
                )
        return self


Direction = Literal["two_way", "hubspot_to_salesforce", "salesforce_to_hubspot", "off"]


class MappingSection(Section):
    """``[mapping]``: direction per object, conflict rules, custom mappings."""

    companies: Direction = "two_way"
    contacts: Direction = "two_way"
    default_rule: ConflictRule = "prefer_salesforce_unless_blank"
    rules: dict[str, ConflictRule] = {}  # "contacts.email" -> rule (defaults: only dont_sync etc.)
    fields: list[FieldMapping] = []
    new_contact_as: Literal["Lead", "Contact"] = "Lead"  # Contact only when its company is linked
    create_missing: bool = True  # plan creates of unmatched records on the other side
    # a HubSpot company becomes an Account only with a contact in scope linked to a Salesforce
    # Contact (the connector's rule); "always": every unmatched company
    create_accounts: Literal["with_contacts", "always"] = "with_contacts"
    campaign_property: str | None = None  # HubSpot contact property for Salesforce campaigns
    lifecycle_to_company: bool = True  # contacts' lifecycle stage onto their company (seed 003)
    master_rule: Literal[
        "oldest", "most_recent", "most_complete", "most_associated", "source_priority"
    ] = "oldest"
    # source_priority master rule: records linked to the other CRM first, then this object order
    source_priority: list[Literal["Account", "Contact", "Lead", "companies", "contacts"]] = [
        "Account",
        "Contact",
        "Lead",
        "companies",
        "contacts",
    ]


class PolicySection(Section):
    """``[policy]``: what a headless run may approve on its own."""

    enabled: bool = True
    link_tiers: list[Literal["auto", "review"]] = ["auto"]
    duplicate_tiers: list[Literal["auto", "review"]] = []
    objects: list[Literal["companies", "contacts"]] = ["companies", "contacts"]
    merges: bool = False  # stands for --confirm-merges in headless runs
    conflicts: bool = False
    creates: bool = False
    # at most this many writes (plan items) one headless apply sends; more holds it for a person
    max_writes: int | None = Field(None, ge=0)


class NotifySection(Section):
    """``[notify]``: Slack and generic webhooks."""

    slack_webhook: SecretField | None = None
    webhook_url: SecretField | None = None
    on_success: bool = False
    timeout_seconds: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=0, le=10)

    @model_validator(mode="after")
    def _secrets(self) -> NotifySection:
        literal = [
            name
            for name in ("slack_webhook", "webhook_url")
            if isinstance(secret := getattr(self, name), Secret)
            and secret.is_literal
            and not is_loopback_url(secret.get())
        ]
        if literal:
            raise ValueError(
                "; ".join(
                    f'literal notify.{name} is only accepted for loopback hosts; use "env:NAME"'
                    for name in literal
                )
            )
        return self


class BudgetSection(Section):
    """``[budget]``: per-run API call budgets (the run stops cleanly and resumes)."""

    hubspot_calls: int | None = Field(None, ge=1)
    salesforce_calls: int | None = Field(None, ge=1)


class ReviewSection(Section):
    """``[review]``: the review app."""

    reviewer: str | None = None  # after the page's sign-in field and $RECON_REVIEWER
    host: str = "127.0.0.1"  # the address `recon review` binds (loopback by default)
    port: int = Field(8501, ge=1, le=65535)
    page_size: int = Field(50, ge=5, le=500)  # queue items per page
    open_browser: bool = True  # `recon review` opens a browser tab (--no-browser overrides)


class ApplySection(Section):
    """``[apply]``: batch sizes and retry behaviour of the writers."""

    hubspot_batch_size: int = Field(100, ge=1, le=100)
    salesforce_batch_size: int = Field(200, ge=1, le=200)
    max_retries: int = Field(5, ge=0, le=20)


class SandboxSection(Section):
    """``[sandbox]``: the local emulators (`recon sandbox`, `recon demo`)."""

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    db: Path = Path("data/sandbox.db")
    size: Literal["tiny", "small", "large"] = "small"
    seed: int = 0


class ReconConfig(BaseSettings):
    """The whole of recon.toml. Every section has defaults.

    ``base_dir`` is the folder of the file it was read from (paths resolve
    against it); ``source_path`` the file itself (None for embedded defaults).
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        env_prefix="RECON_",
        env_nested_delimiter="__",
        arbitrary_types_allowed=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    store: StoreSection = StoreSection()
    hubspot: HubSpotSection = HubSpotSection()
    salesforce: SalesforceSection = SalesforceSection()
    pull: PullSection = PullSection()
    match: MatchSection = MatchSection()
    mapping: MappingSection = MappingSection()
    policy: PolicySection = PolicySection()
    notify: NotifySection = NotifySection()
    budget: BudgetSection = BudgetSection()
    review: ReviewSection = ReviewSection()
    apply: ApplySection = ApplySection()
    sandbox: SandboxSection = SandboxSection()

    source_path: Path | None = Field(None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment overrides the file; no .env files, no secrets dirs
        return (env_settings, init_settings)

    @property
    def base_dir(self) -> Path:
        """Folder relative paths resolve against."""
        return self.source_path.parent if self.source_path else Path.cwd()

    def syncs(self, source: str, obj: str) -> bool:
        """Whether ``[hubspot] objects`` / ``[salesforce] objects`` (``source``) names ``obj``:
        an object left out is no part of the sync (never pulled, created or written).

        Examples:
            >>> ReconConfig(salesforce={"objects": ["Account", "Contact"]}).syncs("salesforce", "Lead")
            False
        """
        return obj in getattr(self, source).objects

    def redacted(self) -> dict[str, Any]:
        """The config as plain data with secrets shown as their references (safe to log/store)."""
        return self.model_dump(mode="json", exclude={"source_path"})


#: the config file :func:`load_config` read last (what hints name; None: embedded defaults)
_loaded_file: Path | None = None


def config_file() -> str:
    """How hints name the config file: the one :func:`load_config` read last, as it was
    named (``--config``, ``$RECON_CONFIG``), else ``recon.toml``.

    Examples:
        >>> _ = load_config(None, overrides={})
        >>> config_file()
        'recon.toml'
    """
    return str(_loaded_file) if _loaded_file is not None else DEFAULT_CONFIG_NAME


def setting_place(section: str, key: str) -> str:
    """Where a hint tells a person to change ``[section] key``: the environment override that
    set it when one did (``$RECON_BUDGET__HUBSPOT_CALLS``: editing the file would change
    nothing), else the key in :func:`config_file`.

    Examples:
        >>> _ = load_config(None, overrides={})
        >>> setting_place("budget", "hubspot_calls")
        '[budget] hubspot_calls in recon.toml'
    """
    named = _section_overrides(section).get(key.lower())
    if named is not None:
        return f"${named[0]} (the environment override that set it)"
    return f"[{section}] {key} in {config_file()}"


def _section_overrides(section: str) -> dict[str, tuple[str, str]]:
    """The environment overrides of ``[section]``: key (lower case) -> (the variable as
    spelt, its value), from ``RECON_<SECTION>__<KEY>`` in any case."""
    prefix = f"RECON_{section}__".upper()
    return {
        k[len(prefix) :].lower(): (k, v)
        for k, v in os.environ.items()
        if k.upper().startswith(prefix)
    }


def find_config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file to use: ``explicit``, else ``$RECON_CONFIG``, else ``./recon.toml``.

    Returns None when no file is named and ``./recon.toml`` does not exist.

    Raises:
        ConfigError: a named file does not exist.
    """
    for origin, candidate in (("--config", explicit), (CONFIG_ENV, os.environ.get(CONFIG_ENV))):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                folder = path.is_dir()
                raise ConfigError(
                    f"config file {path} (from {origin}) "
                    + ("is a folder" if folder else "does not exist"),
                    hint=f"name the file, e.g. {path / DEFAULT_CONFIG_NAME}"
                    if folder
                    else "run `recon init` to write one, or fix the path",
                )
            return path.resolve()
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default.resolve() if default.is_file() else None


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _override_problems() -> list[tuple[str, str]]:
    """``RECON_*`` environment variables that name no setting, each with what to write: a
    misspelt section (``RECON_BUDGETS__HUBSPOT_CALLS``), or one underscore where two go
    (``RECON_STORE_PATH``). Both were ignored without a word."""
    sections = _sections()
    out: list[tuple[str, str]] = []
    for k in sorted(os.environ):
        if not k.upper().startswith("RECON_"):
            continue
        rest = k[6:]
        if "__" in rest:
            section = rest.split("__", 1)[0]
            if section.lower() not in sections:
                out.append((k, f"no section [{section.lower()}]; sections: {', '.join(sections)}"))
        elif any(rest.lower().startswith(f"{name}_") for name in sections):
            section, key = rest.split("_", 1)
            out.append((k, f"use two underscores after the section: RECON_{section}__{key}"))
    return out


def _later_problems(data: dict[str, Any], exc: ValidationError) -> list[tuple[str, str]]:
    """Problems the first validation could not see: a section's checks across its keys
    (credentials an auth needs, literal secrets) run only once every key of it is valid.
    The keys found wrong are left out (their defaults stand in) and the rest validated again,
    up to three rounds, so one run of `recon` names every problem.

    Examples:
        >>> sf = {"instance_url": "https://acme.my.salesforce.com", "timeout_seconds": "slow", "auth": "jwt"}
        >>> try:
        ...     ReconConfig(salesforce=sf)
        ... except ValidationError as e:
        ...     [p for p, _m in _later_problems({"salesforce": sf}, e)]
        ['salesforce']
    """
    import copy

    out: list[tuple[str, str]] = []
    seen = {_format_loc(tuple(e["loc"])) for e in exc.errors()}
    trimmed = copy.deepcopy(data)
    errors = exc.errors()
    for _round in range(3):
        removed = False
        for err in errors:
            loc = tuple(err["loc"])
            node: Any = trimmed
            for part in loc[:-1]:
                try:
                    node = node[part]
                except (KeyError, IndexError, TypeError):
                    node = None
                    break
            if isinstance(node, dict) and loc and loc[-1] in node:
                del node[loc[-1]]
                removed = True
        if not removed:
            return out
        try:
            ReconConfig(**trimmed)
            return out
        except ValidationError as again:
            errors = again.errors()
            fresh = [
                (path, msg)
                for path, msg in _problems(again)
                if path not in seen and not seen.add(path)  # type: ignore[func-returns-value]
            ]
            if not fresh:
                return out
            out += fresh
        except SettingsError:
            return out
    return out


def _section_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """The keys the table at ``loc`` may hold (None: ``loc`` is no table of the config)."""
    model: Any = ReconConfig
    for part in loc:
        if isinstance(part, int):
            continue  # an entry of a list of tables ([[mapping.fields]]): its item's keys
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return None
        inner = [info.annotation, *get_args(info.annotation)]
        model = next((t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)), None)
        if model is None:
            return None
    return [name for name in model.model_fields if name != "source_path"]


def _nearest_key(loc: tuple[Any, ...]) -> str | None:
    """What an unknown key most likely meant: a known key of its table spelt alike
    (``acess_token``, ``[stor]``), or the section a known key belongs in (``max_writes``
    under ``[apply]``). None when nothing is close.

    Examples:
        >>> _nearest_key(("hubspot", "acess_token"))
        "; did you mean 'access_token'?"
        >>> _nearest_key(("stor",))
        '; did you mean [store]?'
        >>> _nearest_key(("apply", "max_writes"))
        '; max_writes is a key of [policy]'
    """
    import difflib

    *parent, key = loc
    known = _section_keys(tuple(parent))
    if not known or not isinstance(key, str):
        return None
    if len(parent) == 1:  # a key of another section, written under the wrong heading
        owners = [
            section
            for section in _sections()
            if section != parent[0] and key in (_section_keys((section,)) or [])
        ]
        if len(owners) == 1:
            return f"; {key} is a key of [{owners[0]}]"
    close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.75)
    if close:
        return f"; did you mean [{close[0]}]?" if not parent else f"; did you mean {close[0]!r}?"
    return None


def _sections() -> list[str]:
    """The sections a ``recon.toml`` may have."""
    return [name for name in ReconConfig.model_fields if name != "source_path"]


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + (
                _nearest_key(tuple(err["loc"]))
                or " (check the spelling; `recon init` writes every known key)"
            )
        elif err["type"] in ("path_type", "path_parsing"):
            msg = 'must be a path in quotes, e.g. "data/recon.db"'
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type") and err["loc"]:
            # not "a valid dictionary or instance of StoreSection": how the file writes a table
            *parent, last = err["loc"]
            heading = (
                f"[[{_format_loc(tuple(parent))}]]"
                if isinstance(last, int)
                else f"[{_format_loc(tuple(err['loc']))}]"
            )
            msg = f"must be a table: a {heading} heading with its keys below it, not a value"
        out.append((_format_loc(tuple(err["loc"])), msg))
    return out


def _unparsed_override(exc: Exception, wrong: list[tuple[str, str]]) -> ConfigError:
    """The error for a ``RECON_*`` override pydantic-settings cannot parse: every variable
    whose JSON is broken, each with where (else every override of the section at fault),
    after the overrides that name no setting (``wrong``)."""
    overrides = sorted(k for k in os.environ if k.upper().startswith("RECON_") and "__" in k)
    problems = list(wrong)
    for k in overrides:  # all of them: pydantic-settings stops at the first section
        text = os.environ[k].strip()
        if text[:1] in ("[", "{"):
            try:
                json.loads(text)
            except ValueError as bad:
                problems.append((k, f"is not valid JSON: {bad}"))
    named = overrides
    hit = re.search(r'field "([^"]+)"', str(exc))
    if hit:  # pydantic-settings names the section ("policy"), not the variable
        section = f"RECON_{hit.group(1).upper()}__"
        named = [k for k in overrides if k.upper().startswith(section)] or overrides
    return ConfigError(
        "an environment override does not parse"
        + ("" if len(problems) > len(wrong) else f" ({', '.join(named) or 'RECON_*'})"),
        problems=problems,
        hint="lists and tables are JSON: RECON_POLICY__LINK_TIERS='[\"auto\"]'",
    )


def _env_named(problems: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], bool]:
    """Problems whose key an environment override set, named as that variable (the file
    may say something else entirely); and whether there was any."""
    env = {k.upper() for k in os.environ if k.upper().startswith("RECON_") and "__" in k}
    out, any_env = [], False
    for loc, msg in problems:
        parts = loc.split(".")
        name = (
            "RECON_"
            + parts[0].split("[")[0].upper()
            + "__"
            + (parts[1].split("[")[0].upper() if len(parts) > 1 else "")
        )
        section = sorted(
            v for v in env if v.startswith(f"RECON_{parts[0].split('[')[0].upper()}__")
        )
        # a list item set on its own (RECON_MAPPING__FIELDS__0__RULE) replaces the whole list
        items = sorted(v for v in env if v.startswith(f"{name}__")) if len(parts) > 1 else []
        if len(parts) > 1 and name in env:
            out.append((loc, f"{msg} (set by the environment variable {name})"))
            any_env = True
        elif items:
            out.append((
                loc,
                f"{msg} (set by the environment variable {', '.join(items)}: a list cannot be "
                f"overridden item by item; set the whole list as JSON in {name})",
            ))  # fmt: skip
            any_env = True
        elif len(parts) == 1 and section:
            # a problem of the section as a whole: the overrides of that section take part
            out.append((loc, f"{msg} (with the environment override {', '.join(section)})"))
            any_env = True
        else:
            out.append((loc, msg))
    return out, any_env


def _resolve_paths(model: BaseModel, base: Path) -> None:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _resolve_paths(value, base)
            continue
        annotation = info.annotation
        is_path = annotation is Path or Path in get_args(annotation)
        if is_path and isinstance(value, Path) and not value.is_absolute():
            object.__setattr__(model, name, (base / value.expanduser()).resolve())


#: a key whose value may be a credential: a line quoted in an error shows it masked
_SECRET_KEY = re.compile(r"token|secret|password|passw|webhook|session|key|auth", re.IGNORECASE)


def _quotable(line: str) -> str:
    """A config line as an error may quote it: the value of a key that may hold a credential
    (or of a line whose key cannot be told) is masked.

    Examples:
        >>> _quotable("path = data.db"), _quotable("access_token = pat-na1-123")
        ('path = data.db', 'access_token = ***')
        >>> _quotable("pat-na1-123"), _quotable("[store")
        ('***', '[store')
    """
    key, eq, _value = line.partition("=")
    if not eq:
        return line if line.startswith("[") else "***"
    return f"{key.rstrip()} = ***" if _SECRET_KEY.search(key) else line


#: what to do about TOML's commonest complaints, by the words of its message
_TOML_HINTS = (
    (
        "Unescaped '\\'",
        "a backslash starts an escape in double quotes: write a Windows path in single quotes "
        "(path = 'C:\\data\\recon.db') or with forward slashes",
    ),
    ("Invalid value", 'text goes in quotes (path = "data/recon.db"); numbers, true and false not'),
    ("twice", "a [section] may appear once: merge its keys under one heading"),
    ("Cannot overwrite a value", "a key may appear once in its section: delete one of them"),
)


def _toml_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """A TOML syntax error naming the file, the line (quoted) and what to do about it.

    Examples:
        >>> text = "[store]\\npath = data.db\\n"
        >>> try:
        ...     tomllib.loads(text)
        ... except tomllib.TOMLDecodeError as e:
        ...     print(_toml_error(Path("recon.toml"), text, e))
        recon.toml is not valid TOML: Invalid value (at line 2, column 8): path = data.db (text goes in quotes (path = "data/recon.db"); numbers, true and false not)
    """
    message = str(exc)
    at = re.search(r"at line (\d+)", message)
    lines = text.splitlines()
    if at and 0 < int(at[1]) <= len(lines) and lines[int(at[1]) - 1].strip():
        message += f": {_quotable(lines[int(at[1]) - 1].strip())[:120]}"
    hint = next((h for words, h in _TOML_HINTS if words in str(exc)), "fix the line named")
    return ConfigError(f"{path} is not valid TOML: {message}", hint=hint)


def load_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> ReconConfig:
    """Find, read and validate the configuration.

    Args:
        path: an explicit file (``--config``); otherwise ``$RECON_CONFIG`` or ``./recon.toml``.
        overrides: section dicts merged over the file (used by notebooks and tests).

    Raises:
        ConfigError: listing every problem with its key path.

    Examples:
        >>> load_config(None).store.path.name
        'recon.db'
    """
    global _loaded_file
    found = find_config_path(path)
    _loaded_file = found
    data: dict[str, Any] = {}
    where = "embedded defaults"
    if found is not None:
        where = str(found)
        try:
            # utf-8-sig: Windows editors (Notepad) may save UTF-8 with a byte-order mark
            text = found.read_text(encoding="utf-8-sig")
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _toml_error(found, text, exc) from None
        except UnicodeDecodeError as exc:
            line = found.read_bytes()[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{found} is not UTF-8 text: line {line} holds a byte UTF-8 has no character "
                f"for (0x{exc.object[exc.start]:02x})",
                hint="save the file as UTF-8",
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {found}: {exc.strerror or exc}") from None
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    for reserved in ("source_path",):
        data.pop(reserved, None)
    # each would leave the setting it meant unset; named with every other problem found
    wrong = _override_problems()
    wrong_hint = "overrides are RECON_<SECTION>__<KEY>, e.g. RECON_BUDGET__HUBSPOT_CALLS=5000"
    try:
        cfg = ReconConfig(**data)
    except ValidationError as exc:
        problems, from_env = _env_named(_problems(exc) + _later_problems(data, exc))
        raise ConfigError(
            f"invalid configuration in {where}"
            + (" or its environment overrides" if from_env or wrong else ""),
            problems=wrong + problems,
            hint="fix the keys listed"
            + (
                "; [N] counts a list's entries from 0"
                if any("[" in k for k, _m in problems)
                else ""
            )
            + (f" ({wrong_hint})" if wrong else ""),
        ) from None
    except SettingsError as exc:  # a RECON_<SECTION>__<KEY> value that does not parse
        raise _unparsed_override(exc, wrong) from None
    if wrong:
        raise ConfigError(
            "an environment override names no setting", problems=wrong, hint=wrong_hint
        )
    object.__setattr__(cfg, "source_path", found)
    _resolve_paths(cfg, cfg.base_dir)
    settings = cfg.match.settings_file
    if settings is not None and not settings.is_file():
        raise ConfigError(
            f"invalid configuration in {where}",
            problems=[
                (
                    "match.settings_file",
                    f"{settings} is a folder, not a file"
                    if settings.is_dir()
                    else f"no such file: {settings}",
                )
            ],
            hint="fix the path (the file is MatchSettings JSON, e.g. a stored run's settings)",
        )
    _register_secrets(cfg)
    return cfg


def notify_section_of(path: str | Path | None = None) -> NotifySection | None:
    """The ``[notify]`` section alone of a config that may not load as a whole (None when it
    cannot be read either): a scheduled run whose config someone broke still says so.

    Read as :func:`load_config` reads it (``--config``, ``$RECON_CONFIG``, ``./recon.toml``;
    ``RECON_NOTIFY__<KEY>`` overrides), and its secrets are registered for redaction.

    Examples:
        >>> notify_section_of(None) is None or isinstance(notify_section_of(None), NotifySection)
        True
    """
    try:
        found = find_config_path(path)
        data = tomllib.loads(found.read_text(encoding="utf-8-sig")) if found else {}
    except (ConfigError, OSError, ValueError):
        return None
    raw = data.get("notify")
    section: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
    section.update({key: value for key, (_name, value) in _section_overrides("notify").items()})
    if not section:
        return None
    try:
        notify = NotifySection(**section)
    except (ValidationError, ValueError):
        return None
    _register_secrets(notify)
    return notify


def _register_secrets(model: BaseModel) -> None:
    """Every secret the config names, known to :func:`recon.errors.redact` from the start:
    an error can echo one before recon itself used it (a HubSpot stage failing with a text
    that quotes Salesforce's client secret)."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, Secret):
            if value.env_name is None:
                register_secret(value._literal)
            else:
                register_secret(os.environ.get(value.env_name) or None)
        elif isinstance(value, BaseModel):
            _register_secrets(value)
