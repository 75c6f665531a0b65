"""Fault injection and limits for the emulators, switched at runtime.

:class:`FaultInjector` answers two questions the API handlers ask:

- :meth:`FaultInjector.check` (before a request is served): should this call fail
  as a whole? It applies the configured limits (HubSpot's 10-second, search and
  daily buckets; Salesforce's daily API budget) and the injected request rules,
  and returns the error response in that side's shape, or None.
- :meth:`FaultInjector.record_error` (per record, by the writers): should this
  record fail validation or a duplicate rule? Returns an error description the
  side turns into a 207 item (HubSpot) or a SaveResult error (Salesforce).

A rule is a dict (the admin API takes the same JSON)::

    {"kind": "rate_limit", "side": "hubspot", "endpoint": "*search*", "after": 2, "times": 1,
     "retry_after": 1}

Request kinds: ``rate_limit`` (HubSpot 429 + ``Retry-After`` + rate-limit headers;
Salesforce 403 ``REQUEST_LIMIT_EXCEEDED``, the concurrent-request limit), ``server_error`` (``status`` 500/502/503/504),
``latency`` (``ms`` added before answering), ``expired_session`` (401 in the side's
shape), ``request_limit`` (daily limit spent: HubSpot 429 ``DAILY``, Salesforce 403).
Record kinds: ``validation``, ``duplicate``, ``error`` with ``object`` and ``match``
(``{field: value}``, all must equal case-insensitively; ``"*"`` = any non-empty value).

Common keys: ``side`` (``hubspot``/``salesforce``/``*``), ``endpoint`` (an fnmatch
pattern over endpoint names such as ``POST /crm/v3/objects/companies/search``),
``after`` (let this many matching calls through first), ``times`` (fire this many
times, then stop; default unlimited), ``every`` (fire on every n-th eligible call),
``status``, ``message``.

Examples:
    >>> from recon.sandbox.state import SandboxState
    >>> state = SandboxState(":memory:")
    >>> rule = state.faults.add({"kind": "server_error", "side": "hubspot", "times": 1})
    >>> state.faults.check("hubspot", "GET /crm/v3/objects/companies").status_code
    500
    >>> state.faults.check("hubspot", "GET /crm/v3/objects/companies") is None
    True
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import itertools
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from ..errors import UsageError

if TYPE_CHECKING:
    from .state import SandboxState

__all__ = [
    "REQUEST_KINDS",
    "RECORD_KINDS",
    "FaultInjector",
    "enter",
    "hubspot_error",
    "salesforce_error",
]

REQUEST_KINDS = ("rate_limit", "server_error", "latency", "expired_session", "request_limit")
RECORD_KINDS = ("validation", "duplicate", "error")
KNOWN_KEYS = {
    "id",
    "kind",
    "side",
    "endpoint",
    "after",
    "times",
    "every",
    "status",
    "message",
    "retry_after",
    "ms",
    "object",
    "match",
    "code",
    "fields",
}


def hubspot_error(
    status: int, message: str, category: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A HubSpot error response: ``{status, message, correlationId, category, ...}``.

    Examples:
        >>> hubspot_error(404, "Object not found", "OBJECT_NOT_FOUND").status_code
        404
    """
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
    }
    if category:
        body["category"] = category
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def salesforce_error(
    status: int,
    code: str,
    message: str,
    fields: list[str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A Salesforce REST error response: ``[{message, errorCode, fields}]``.

    Examples:
        >>> salesforce_error(400, "MALFORMED_QUERY", "unexpected token: FORM").status_code
        400
    """
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return JSONResponse([item], status_code=status, headers=headers)


def _rate_headers(limit: int, interval_s: float, retry_after: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(0, round(retry_after))),
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(interval_s * 1000)),
    }


class FaultInjector:
    """Limits and injected faults of one :class:`~recon.sandbox.state.SandboxState`.

    Rules live in memory (a restart or reset clears them); see the module docstring.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._rules: list[dict[str, Any]] = []
        self._seen: dict[str, int] = {}
        self._fired: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._hs_window: collections.deque[float] = collections.deque()
        self._hs_search_window: collections.deque[float] = collections.deque()

    # ------------------------------------------------------------------ rule management

    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Add a rule (see the module docstring); return it with its ``id``.

        Raises:
            UsageError: unknown kind, side or key.
        """
        kind = rule.get("kind")
        if kind not in REQUEST_KINDS + RECORD_KINDS:
            raise UsageError(
                f"unknown fault kind {kind!r}",
                hint=f"one of {', '.join(REQUEST_KINDS + RECORD_KINDS)}",
            )
        unknown = set(rule) - KNOWN_KEYS
        if unknown:
            raise UsageError(f"unknown fault rule key(s): {', '.join(sorted(unknown))}")
        if rule.get("side", "*") not in ("*", "hubspot", "salesforce"):
            raise UsageError(
                f"fault side must be hubspot, salesforce or *, not {rule.get('side')!r}"
            )
        if kind in RECORD_KINDS and not isinstance(rule.get("match", {}), dict):
            raise UsageError("a record fault's match must be an object {field: value}")
        with self.state.lock:
            stored = {"side": "*", "endpoint": "*", "after": 0, "every": 1, "times": None, **rule}
            stored["id"] = str(rule.get("id") or f"f{next(self._ids)}")
            self._rules.append(stored)
            self._seen[stored["id"]] = 0
            self._fired[stored["id"]] = 0
            return dict(stored)

    def remove(self, rule_id: str) -> bool:
        """Remove one rule; True if it existed."""
        with self.state.lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r["id"] != rule_id]
            return len(self._rules) < before

    def clear(self) -> None:
        """Remove every rule and empty the rate-limit windows."""
        with self.state.lock:
            self._rules.clear()
            self._seen.clear()
            self._fired.clear()
            self._hs_window.clear()
            self._hs_search_window.clear()

    def rules(self) -> list[dict[str, Any]]:
        """The active rules, each with ``seen`` (matching calls) and ``fired`` counts."""
        with self.state.lock:
            return [
                {**r, "seen": self._seen[r["id"]], "fired": self._fired[r["id"]]}
                for r in self._rules
            ]

    # ------------------------------------------------------------------ matching

    def _fires(self, rule: dict[str, Any], side: str, endpoint: str | None) -> bool:
        """Count a matching call against ``rule``; True when the rule fires for it."""
        if rule["side"] not in ("*", side):
            return False
        if endpoint is not None and not fnmatch.fnmatchcase(endpoint, rule["endpoint"]):
            return False
        rid = rule["id"]
        self._seen[rid] += 1
        eligible = self._seen[rid] - int(rule["after"])
        if eligible <= 0:
            return False
        if rule["times"] is not None and self._fired[rid] >= int(rule["times"]):
            return False
        if (eligible - 1) % max(1, int(rule["every"])) != 0:
            return False
        self._fired[rid] += 1
        return True

    def latency(self, side: str, endpoint: str) -> float:
        """Seconds to wait before answering: the ``latency_ms`` setting plus latency rules."""
        with self.state.lock:
            ms = float(self.state.settings.latency_ms)
            for rule in self._rules:
                if rule["kind"] == "latency" and self._fires(rule, side, endpoint):
                    ms += float(rule.get("ms", 100))
            return ms / 1000.0

    def check(self, side: str, endpoint: str) -> Response | None:
        """The error response this call must get (limits first, then injected rules), or None."""
        with self.state.lock:
            limited = self._limits(side, endpoint)
            if limited is not None:
                return limited
            for rule in self._rules:
                if rule["kind"] in ("latency", *RECORD_KINDS):
                    continue
                if self._fires(rule, side, endpoint):
                    return self._response(rule, side)
            return None

    def _limits(self, side: str, endpoint: str) -> Response | None:
        settings = self.state.settings
        if side == "salesforce":
            budget = settings.salesforce_daily_budget
            if budget and self.state.api_usage("salesforce") > budget:
                return salesforce_error(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            return None
        now = time.monotonic()
        if (
            settings.hubspot_daily_limit
            and self.state.api_usage("hubspot") > settings.hubspot_daily_limit
        ):
            return self._hubspot_429("DAILY", "You have reached your daily limit.", 0, 86400.0, 60)
        if "/search" in endpoint and settings.hubspot_search_rate_limit:
            window = self._hs_search_window
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= settings.hubspot_search_rate_limit:
                return self._hubspot_429(
                    "SECONDLY",
                    "You have reached your secondly limit.",
                    settings.hubspot_search_rate_limit,
                    1.0,
                    1,
                )
            window.append(now)
        if "/search" in endpoint:
            return None  # search has its own limit, not the ten-second bucket (exempt in the spec)
        if settings.hubspot_rate_limit:
            window, interval = self._hs_window, settings.hubspot_rate_interval_s
            while window and now - window[0] >= interval:
                window.popleft()
            if len(window) >= settings.hubspot_rate_limit:
                wait = interval - (now - window[0])
                return self._hubspot_429(
                    "TEN_SECONDLY_ROLLING",
                    "You have reached your ten_secondly_rolling limit.",
                    settings.hubspot_rate_limit,
                    interval,
                    max(1, int(wait + 0.999)),
                )
            window.append(now)
        return None

    def hubspot_rate_headers(self) -> dict[str, str]:
        """``X-HubSpot-RateLimit-*`` headers for a served call while HubSpot limits are set."""
        settings = self.state.settings
        out: dict[str, str] = {}
        with self.state.lock:
            if settings.hubspot_rate_limit:
                out["X-HubSpot-RateLimit-Max"] = str(settings.hubspot_rate_limit)
                out["X-HubSpot-RateLimit-Remaining"] = str(
                    max(0, settings.hubspot_rate_limit - len(self._hs_window))
                )
                out["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                    int(settings.hubspot_rate_interval_s * 1000)
                )
            if settings.hubspot_daily_limit:
                out["X-HubSpot-RateLimit-Daily"] = str(settings.hubspot_daily_limit)
                out["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(0, settings.hubspot_daily_limit - self.state.api_usage("hubspot"))
                )
        return out

    @staticmethod
    def _hubspot_429(
        policy: str, message: str, limit: int, interval_s: float, retry_after: float
    ) -> Response:
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        }
        return JSONResponse(
            body, status_code=429, headers=_rate_headers(limit, interval_s, retry_after)
        )

    def _response(self, rule: dict[str, Any], side: str) -> Response:
        kind = rule["kind"]
        message = rule.get("message")
        if kind == "rate_limit":
            if side == "salesforce":
                return salesforce_error(
                    int(rule.get("status", 403)),
                    "REQUEST_LIMIT_EXCEEDED",
                    # the org's concurrent long-request limit: temporary, unlike the daily
                    # allocation (``request_limit``)
                    message or "ConcurrentPerOrgLongTxn Limit exceeded.",
                )
            return self._hubspot_429(
                "TEN_SECONDLY_ROLLING",
                message or "You have reached your ten_secondly_rolling limit.",
                190,
                10.0,
                float(rule.get("retry_after", 1)),
            )
        if kind == "request_limit":
            if side == "salesforce":
                return salesforce_error(
                    403, "REQUEST_LIMIT_EXCEEDED", message or "TotalRequests Limit exceeded."
                )
            return self._hubspot_429(
                "DAILY", message or "You have reached your daily limit.", 0, 86400.0, 60
            )
        if kind == "expired_session":
            if side == "salesforce":
                return salesforce_error(
                    401, "INVALID_SESSION_ID", message or "Session expired or invalid"
                )
            return hubspot_error(
                401,
                message or "The OAuth token used to make this call expired.",
                "EXPIRED_AUTHENTICATION",
            )
        status = int(rule.get("status", 500))
        if side == "salesforce":
            code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
            return salesforce_error(
                status, code, message or "An unexpected error occurred. Please try again."
            )
        return hubspot_error(
            status,
            message or "internal error",
            "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
        )

    # ------------------------------------------------------------------ per-record errors

    def record_error(
        self, side: str, object: str, record_fields: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The injected error for one record a writer is about to save, or None.

        Returns ``{"kind", "code", "message", "fields"}``: ``code`` in the side's
        vocabulary (Salesforce ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` /
        ``DUPLICATES_DETECTED``; HubSpot ``VALIDATION_ERROR`` / ``CONFLICT``).
        ``object`` matches case-insensitively, so ``contacts`` and ``Contact`` differ
        but ``Account`` and ``account`` do not.
        """
        with self.state.lock:
            for rule in self._rules:
                if rule["kind"] not in RECORD_KINDS:
                    continue
                if rule.get("object") and str(rule["object"]).lower() != str(object).lower():
                    continue
                if not _matches(rule.get("match") or {}, record_fields):
                    continue
                if not self._fires(rule, side, None):
                    continue
                return _describe(rule, side)
            return None


def _matches(match: dict[str, Any], record: dict[str, Any]) -> bool:
    lowered = {str(k).lower(): v for k, v in record.items()}
    for field, want in match.items():
        have = lowered.get(str(field).lower())
        if want == "*":
            if have in (None, ""):
                return False
        elif (
            str(have if have is not None else "").lower()
            != str(want if want is not None else "").lower()
        ):
            return False
    return True


def _describe(rule: dict[str, Any], side: str) -> dict[str, Any]:
    kind = rule["kind"]
    fields = list(rule.get("fields") or list((rule.get("match") or {}).keys()))
    if side == "salesforce":
        code = {
            "validation": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "duplicate": "DUPLICATES_DETECTED",
        }.get(kind, "UNKNOWN_EXCEPTION")
        message = {
            "validation": "Validation rule failed",
            "duplicate": "Use one of these records?",
            "error": "An unexpected error occurred.",
        }[kind]
    else:
        code = {"validation": "VALIDATION_ERROR", "duplicate": "CONFLICT"}.get(
            kind, "INTERNAL_ERROR"
        )
        message = {
            "validation": "Property values were not valid",
            "duplicate": "A record with this value already exists",
            "error": "internal error",
        }[kind]
    return {
        "kind": kind,
        "code": rule.get("code") or code,
        "message": rule.get("message") or message,
        "fields": fields,
        "status": int(
            rule.get("status", 409 if kind == "duplicate" and side == "hubspot" else 400)
        ),
    }


async def enter(state: SandboxState, side: str, endpoint: str) -> Response | None:
    """What every API handler does first: count the call, wait any latency, check faults.

    Returns the fault response to send instead of serving the call, or None.

    Examples:
        >>> import asyncio
        >>> from recon.sandbox.state import SandboxState
        >>> asyncio.run(enter(SandboxState(":memory:"), "hubspot", "GET /crm/v3/owners")) is None
        True
    """
    state.count_request(side, endpoint)
    delay = state.faults.latency(side, endpoint)
    if delay:
        await asyncio.sleep(delay)
    return state.faults.check(side, endpoint)
