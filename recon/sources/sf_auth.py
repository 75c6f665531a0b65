"""Salesforce authentication: recon requests the token itself and builds the client.

simple-salesforce's own login paths are hard-wired to ``*.salesforce.com`` (crm_api.md
§2.1), so recon asks ``{login_url}/services/oauth2/token`` for an access token with the
configured flow and then builds ``Salesforce(instance_url=..., session_id=...)``:

- ``client_credentials``: ``client_id`` + ``client_secret`` (server-to-server);
- ``jwt``: JWT-bearer, an RS256 assertion signed with ``private_key_file`` for ``username``;
- ``password``: username-password flow (``password`` + ``security_token``);
- ``session``: a ``session_id`` obtained elsewhere (cannot be refreshed).

simple-salesforce builds every URL as ``https://{host}``; for a loopback instance URL on
plain http (the sandbox) recon mounts a :class:`PlainHTTPAdapter` on the requests session
for exactly that ``https://host:port/`` prefix, so every other host keeps real TLS.

:class:`SalesforceConnection` holds the client and, when a call fails with an expired
session (401 ``INVALID_SESSION_ID``), requests a new token once and retries the call.

Examples:
    >>> s = build_session("http://127.0.0.1:8766")
    >>> type(s.get_adapter("https://127.0.0.1:8766/services/data")).__name__
    'PlainHTTPAdapter'
    >>> type(s.get_adapter("https://example.my.salesforce.com/")).__name__
    'HTTPAdapter'
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter

from ..config import (
    SALESFORCE_AUTH_NEEDS,
    SalesforceSection,
    Secret,
    config_file,
    is_loopback_url,
)
from ..errors import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ErrorClass,
    RateLimited,
    SourceError,
    register_secret,
)

__all__ = [
    "MeteredSession",
    "OrgUsage",
    "PlainHTTPAdapter",
    "SalesforceConnection",
    "Token",
    "build_session",
    "request_token",
]

log = logging.getLogger(__name__)


_API_USAGE = re.compile(r"(?:^|[;\s])api-usage=(\d+)/(\d+)")


class OrgUsage:
    """The org's rolling 24-hour API usage, read from every response's ``Sforce-Limit-Info``
    (``api-usage=used/total``), and the share of it recon may take (``[salesforce]
    max_org_usage``): other integrations share the allocation. Once the usage reached the
    share, the next request stops the run like a spent budget (nothing half-sent; the next
    run resumes).

    Examples:
        >>> usage = OrgUsage(0.8)
        >>> usage.read({"Sforce-Limit-Info": "api-usage=79/100"}); usage.check()
        >>> usage.read({"Sforce-Limit-Info": "api-usage=80/100; api-bursts=1/750"}); usage.check()  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        recon.errors.BudgetExhausted: ...
    """

    def __init__(self, cap: float | None = None) -> None:
        self.cap = cap
        self.used: tuple[int, int] | None = None

    def read(self, headers: Any) -> None:
        """Note the usage a response reports (warned about from 95 %)."""
        # "api-usage=10018/100000; api-bursts=1/750" (also per-app-api-usage=…: not this one)
        found = _API_USAGE.search(str(headers.get("Sforce-Limit-Info", "") or ""))
        if found is None:
            return
        used, total = int(found.group(1)), int(found.group(2))
        self.used = (used, total)
        if total and used >= 0.95 * total:
            log.warning("salesforce org API usage at %d of %d daily requests", used, total)

    def check(self, _request: Any = None) -> None:
        """Raise :class:`BudgetExhausted` when the org's usage reached the cap."""
        if self.cap is None or self.used is None:
            return
        used, total = self.used
        if total and used >= self.cap * total:
            raise BudgetExhausted(
                f"the Salesforce org has used {used:,} of its {total:,} daily API requests, the "
                f"share [salesforce] max_org_usage = {self.cap:.0%} leaves recon; the rest is the "
                "org's other integrations'",
                hint="it resumes once the rolling 24-hour usage falls (the next `recon run` or "
                "`recon pull`, or `recon apply --resume`); or raise [salesforce] max_org_usage",
            )


T = TypeVar("T")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class PlainHTTPAdapter(HTTPAdapter):
    """Sends simple-salesforce's forced ``https://`` requests to a loopback emulator over http.

    Mounted only for one loopback ``https://host:port/`` prefix (see :func:`build_session`).
    """

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if request.url and request.url.startswith("https://"):
            request.url = "http://" + request.url[len("https://") :]
        return super().send(request, **kwargs)


class MeteredSession(requests.Session):
    """A requests session that calls ``before`` ahead of and ``after`` behind every request.

    recon counts and budgets every Salesforce HTTP request here (including Bulk polls);
    ``before`` may raise (BudgetExhausted) to stop the request from being sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.before: Callable[[requests.PreparedRequest], None] | None = None
        self.after: Callable[[requests.Response], None] | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.before is not None:
            self.before(request)
        resp = super().send(request, **kwargs)
        if self.after is not None:
            self.after(resp)
        return resp


def build_session(instance_url: str) -> MeteredSession:
    """A requests session for ``instance_url`` (plain http allowed only for loopback).

    Raises:
        ConfigError: ``instance_url`` is plain http on a non-loopback host.
    """
    session = MeteredSession()
    parsed = urlparse(instance_url)
    if parsed.scheme == "http":
        if not is_loopback_url(instance_url):
            raise ConfigError(
                f"salesforce instance URL {instance_url} is plain http on a non-loopback host",
                hint="use the https URL of your org; plain http is only for the local sandbox",
            )
        port = parsed.port or 80
        session.mount(f"https://{parsed.hostname}:{port}/", PlainHTTPAdapter())
    return session


@dataclass(frozen=True)
class Token:
    """An access token and the instance it is valid for (never logged)."""

    access_token: str
    instance_url: str
    refreshable: bool

    def __post_init__(self) -> None:
        register_secret(self.access_token)  # blanked in any error text that echoes it

    def __repr__(self) -> str:
        return f"Token(instance_url={self.instance_url!r}, access_token=***)"


def _missing(key: str, auth: str, hint: str) -> ConfigError:
    """A setting the flow needs is not there: a setting to fix (exit 3), not a refusal by
    Salesforce (exit 7)."""
    return ConfigError(
        "invalid configuration",
        problems=[(key, f"not configured (needed by auth = {auth!r})")],
        hint=hint,
    )


def _check_flow(cfg: SalesforceSection) -> None:
    """Every setting the sign-in flow lacks, at once: a user exporting one variable per run to
    find the next missing one would run recon once per setting."""
    names = SALESFORCE_AUTH_NEEDS.get(cfg.auth, ())
    if cfg.auth == "password":
        names += ("security_token",)  # sent when set
    problems: list[tuple[str, str]] = []
    variables: list[str] = []
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, Secret) and (problem := value.problem()):
            problems.append((f"salesforce.{name}", problem))
            variables.append(f"{value.env_name}=...")
    if problems:
        raise ConfigError(
            "invalid configuration",
            problems=problems,
            hint=f"export {' '.join(variables)} (each value alone, on one line) before running "
            "recon",
        )


def _secret(cfg: SalesforceSection, name: str) -> str:
    secret = getattr(cfg, name)
    if secret is None:
        raise _missing(
            f"salesforce.{name}",
            cfg.auth,
            f'set [salesforce] {name} = "env:NAME" in {config_file()} and export NAME',
        )
    return str(secret.get(f"salesforce.{name}"))


def _jwt_assertion(cfg: SalesforceSection) -> str:
    import jwt

    if cfg.private_key_file is None or not cfg.username:
        raise _missing(
            "salesforce.private_key_file"
            if cfg.private_key_file is None
            else "salesforce.username",
            "jwt",
            "point private_key_file at the PEM key of the connected app's certificate",
        )
    try:
        key = cfg.private_key_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # a DER (binary) key: PEM is text
        raise ConfigError(
            "invalid configuration",
            problems=[
                (
                    "salesforce.private_key_file",
                    f"cannot sign with {cfg.private_key_file}: it is no RSA private key in PEM "
                    "format (a binary file: DER?)",
                )
            ],
            hint="convert it: openssl pkey -inform DER -in key.der -out key.pem",
        ) from None
    except OSError as exc:
        # a setting to fix (exit 3), not a refusal by Salesforce (exit 7); found when
        # Salesforce is called, so commands that never call it run without the key
        raise ConfigError(
            "invalid configuration",
            problems=[
                (
                    "salesforce.private_key_file",
                    f"cannot read {cfg.private_key_file}: {exc.strerror or exc}",
                )
            ],
            hint="point it at the PEM private key of the connected app's certificate",
        ) from None
    claims = {
        "iss": _secret(cfg, "client_id"),
        "sub": cfg.username,
        "aud": cfg.login_url,
        "exp": int(time.time()) + 180,
    }
    try:
        assertion = str(jwt.encode(claims, key, algorithm="RS256"))
    except Exception as exc:  # an empty, public, encrypted or non-RSA key: a setting to fix
        why = (
            "it is a public key"
            if "PUBLIC KEY" in key
            else "it is encrypted (not supported)"
            if "ENCRYPTED" in key
            else f"it is no RSA private key in PEM format ({type(exc).__name__})"
        )
        raise ConfigError(
            "invalid configuration",
            problems=[
                ("salesforce.private_key_file", f"cannot sign with {cfg.private_key_file}: {why}")
            ],
            hint="give the unencrypted RSA private key (PEM) of the connected app's certificate",
        ) from None
    register_secret(assertion)  # a bearer credential for three minutes
    return assertion


def _token_form(cfg: SalesforceSection) -> dict[str, str]:
    if cfg.auth == "client_credentials":
        return {
            "grant_type": "client_credentials",
            "client_id": _secret(cfg, "client_id"),
            "client_secret": _secret(cfg, "client_secret"),
        }
    if cfg.auth == "jwt":
        return {"grant_type": JWT_GRANT, "assertion": _jwt_assertion(cfg)}
    if cfg.auth == "password":
        if not cfg.username:
            raise _missing("salesforce.username", "password", f"set it in {config_file()}")
        password = _secret(cfg, "password")
        if cfg.security_token is not None:
            password += _secret(cfg, "security_token")
        form = {
            "grant_type": "password",
            "client_id": _secret(cfg, "client_id"),
            "username": cfg.username,
            "password": password,
        }
        if cfg.client_secret is not None:
            form["client_secret"] = _secret(cfg, "client_secret")
        return form
    raise AuthError(f"unknown salesforce.auth {cfg.auth!r}")


def _passing_limit(resp: requests.Response) -> bool:
    """A limit that passes in seconds (429, or the org's concurrent-request limit, 403
    ``REQUEST_LIMIT_EXCEEDED`` "ConcurrentPerOrgLongTxn"): waited out and retried, unlike the
    org's 24-hour allocation (a 403 ``REQUEST_LIMIT_EXCEEDED`` of ``TotalRequests``)."""
    if resp.status_code == 429:
        return True
    text = resp.text.upper() if resp.status_code == 403 else ""
    return "REQUEST_LIMIT_EXCEEDED" in text and "CONCURRENT" in text


def request_token(cfg: SalesforceSection, session: requests.Session | None = None) -> Token:
    """Get an access token with the configured flow.

    ``auth = "session"`` returns the configured ``session_id`` (not refreshable).

    Raises:
        ConfigError: a setting the flow needs is missing (the key file cannot be read).
        AuthError: the token endpoint refused the credentials.
        SourceError: the login URL could not be reached (network), or answered with server
            errors until ``max_retries`` ran out (both are retried with backoff first).

    Examples:
        >>> from recon.config import SalesforceSection
        >>> cfg = SalesforceSection(auth="session", session_id="00Dx!abc",
        ...                         instance_url="http://127.0.0.1:9")
        >>> request_token(cfg)
        Token(instance_url='http://127.0.0.1:9', access_token=***)
    """
    _check_flow(cfg)
    if cfg.auth == "session":
        if not cfg.instance_url:
            raise _missing("salesforce.instance_url", "session", f"set it in {config_file()}")
        return Token(_secret(cfg, "session_id"), cfg.instance_url, refreshable=False)
    form = _token_form(cfg)
    url = f"{cfg.login_url}/services/oauth2/token"
    http = session or requests.Session()
    attempts = max(1, cfg.max_retries + 1)
    for attempt in range(1, attempts + 1):
        # a server error or a lost connection is no refusal of the credentials: retried
        try:
            resp = http.post(
                url, data=form, timeout=cfg.timeout_seconds, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            if attempt < attempts:
                time.sleep(min(8.0, 0.25 * 2 ** (attempt - 1)))
                continue
            raise SourceError(
                f"salesforce: cannot reach the token endpoint {url}: {type(exc).__name__}",
                error_class=ErrorClass.NETWORK,
            ) from None
        passing = _passing_limit(resp)
        if resp.status_code < 500 and not passing:
            break
        if attempt < attempts:
            wait = min(8.0, 0.25 * 2 ** (attempt - 1))
            with contextlib.suppress(TypeError, ValueError):
                wait = min(60.0, max(wait, float(resp.headers.get("Retry-After", ""))))
            time.sleep(wait)
            continue
        if passing:
            raise RateLimited(
                f"salesforce: the token endpoint {url} refused for too many concurrent requests "
                f"in the org (after {attempts} attempts)",
                hint="run recon when the org is quieter",
            )
        raise SourceError(
            f"salesforce: the token endpoint {url} answered {resp.status_code} "
            f"(after {attempts} attempts)",
            error_class=ErrorClass.SERVER_ERROR,
        )
    try:
        body = resp.json()
    except ValueError:
        if resp.status_code == 200:  # something else answered: a proxy's or a login page
            raise SourceError(
                f"salesforce: the token endpoint {url} answered 200 without JSON, so it is not "
                "Salesforce's",
                hint="check [salesforce] login_url / instance_url (and any proxy between)",
                error_class=ErrorClass.SERVER_ERROR,
            ) from None
        body = {}
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = {"error": body[0].get("errorCode"), "error_description": body[0].get("message")}
    if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code = (
            body.get("error", f"HTTP {resp.status_code}")
            if isinstance(body, dict)
            else resp.status_code
        )
        desc = body.get("error_description", "") if isinstance(body, dict) else ""
        if str(code).upper() == "REQUEST_LIMIT_EXCEEDED" or (
            resp.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in str(desc).upper()
        ):
            # the org's request limit, not the credentials: stop cleanly (exit 6), resumable
            raise BudgetExhausted(
                f"salesforce: the token endpoint {url} refused for the org's request limit"
                + (f" ({desc})" if desc else ""),
                hint="the next run resumes once the rolling 24-hour allocation frees up",
            )
        raise AuthError(
            f"salesforce: the token endpoint {url} refused the {cfg.auth} flow: {code}"
            + (f" ({desc})" if desc else ""),
            hint="check the connected app's credentials and that the flow is enabled for it",
        )
    instance_url = str(body.get("instance_url") or cfg.instance_url or "").rstrip("/")
    if not instance_url:
        raise AuthError(
            "salesforce: the token response named no instance_url and none is configured",
            hint="set [salesforce] instance_url",
        )
    return Token(str(body["access_token"]), instance_url, refreshable=True)


class SalesforceConnection:
    """A simple-salesforce client that refreshes an expired session once per failing call.

    Args:
        cfg: the ``[salesforce]`` section.
        before: called ahead of every HTTP request (call counting, budget).
        after: called with every HTTP response (limit headers).
        token_fn: how to get a token (default :func:`request_token`).
    """

    def __init__(
        self,
        cfg: SalesforceSection,
        *,
        before: Callable[[requests.PreparedRequest], None] | None = None,
        after: Callable[[requests.Response], None] | None = None,
        token_fn: Callable[[SalesforceSection], Token] | None = None,
    ) -> None:
        self.cfg = cfg
        self.token_fn = token_fn or (lambda c: request_token(c))
        self.refreshes = 0
        self.token = self.token_fn(cfg)
        self.session = build_session(self.token.instance_url)
        self.session.before, self.session.after = before, after
        self.sf = self._client()

    def _client(self) -> Any:
        from simple_salesforce import Salesforce

        return Salesforce(
            instance_url=self.token.instance_url,
            session_id=self.token.access_token,
            session=self.session,
            version=self.cfg.api_version,
        )

    def refresh(self) -> None:
        """Request a new token and rebuild the client (same session)."""
        if not self.token.refreshable:
            raise AuthError(
                "salesforce: the configured session_id expired or was revoked",
                hint="get a new session id, or configure a client_credentials, jwt or password flow "
                "so recon can refresh it",
            )
        self.token = self.token_fn(self.cfg)
        self.refreshes += 1
        self.sf = self._client()

    def call(self, fn: Callable[[Any], T]) -> T:
        """``fn(sf)``; on an expired session get a new token once and call again.

        Raises:
            AuthError: the session is still refused after the refresh.
        """
        from simple_salesforce.exceptions import SalesforceExpiredSession

        try:
            return fn(self.sf)
        except SalesforceExpiredSession:
            log.info("salesforce session expired; requesting a new token")
            self.refresh()
        try:
            return fn(self.sf)
        except SalesforceExpiredSession:
            raise AuthError(
                "salesforce: the session was refused again right after a new token was issued",
                hint="check the integration user's permissions and session settings",
            ) from None
