"""HubSpot API errors as recon errors (the classification half of :mod:`recon.sources.hubspot`).

Errors are classified by HTTP ``.status`` (each generated package of
``hubspot-api-client`` has its own ApiException class): 401 → AuthError, 403 →
permission, 429 → RateLimited (retried, honouring ``Retry-After``; the daily limit is not
retried), 5xx and network → retried.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import AuthError, BudgetExhausted, ErrorClass, RateLimited, SourceError, redact
from .crm import Failure

__all__ = ["classify", "header_float"]


def classify(exc: BaseException) -> Failure:
    status = getattr(exc, "status", None)
    headers = getattr(exc, "headers", None) or {}
    body_raw = getattr(exc, "body", None)
    try:
        body = json.loads(body_raw) if body_raw else {}
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    # secrets blanked before the cut: a cut-off secret no longer matches (and would show)
    message = redact(str(body.get("message") or getattr(exc, "reason", "") or type(exc).__name__))[
        :300
    ]
    if status is None or status == 0:
        pool = getattr(exc, "pool", None)  # urllib3's MaxRetryError names the host it tried
        where = (
            f" reaching {pool.scheme}://{pool.host}:{pool.port}"
            if pool is not None and getattr(pool, "host", None)
            else ""
        )
        cause = getattr(exc, "reason", None)
        return Failure(
            SourceError(
                f"hubspot: network error{where}: {type(exc).__name__}"
                + (f" ({type(cause).__name__})" if isinstance(cause, BaseException) else ""),
                error_class=ErrorClass.NETWORK,
                hint="check [hubspot] base_url and that this machine reaches it (proxy, "
                "firewall, DNS)",
            ),
            retryable=True,
        )
    if status == 401:
        return Failure(
            AuthError(
                f"hubspot refused the access token (401 {body.get('category', 'INVALID_AUTHENTICATION')})",
                hint="create or re-copy the private app token and set [hubspot] access_token",
            )
        )
    if status == 403:
        return Failure(
            SourceError(
                f"hubspot: permission denied (403): {message}",
                error_class=ErrorClass.PERMISSION,
                hint="give the private app the crm.objects.*.read and crm.schemas.*.read scopes",
            )
        )
    if status == 429:
        retry_after = header_float(headers.get("Retry-After"))
        daily = str(body.get("policyName", "")).upper() == "DAILY"
        if retry_after is None and not daily:
            interval = header_float(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
            retry_after = interval / 1000 / 10 if interval else None
        if daily:  # the day's calls are spent: stop cleanly; the next run resumes
            return Failure(
                BudgetExhausted(
                    f"hubspot's daily API limit is reached: {message}",
                    hint="the next run resumes once the limit resets; lower [budget] hubspot_calls",
                ),
                retryable=False,
            )
        err = RateLimited(
            f"hubspot rate limit ({body.get('policyName', '429')}): {message}",
            retry_after=retry_after,
        )
        return Failure(err, retryable=True, retry_after=retry_after)
    if status >= 500:
        return Failure(
            SourceError(
                f"hubspot server error ({status}): {message}", error_class=ErrorClass.SERVER_ERROR
            ),
            retryable=True,
            retry_after=header_float(headers.get("Retry-After")),
        )
    error_class = ErrorClass.NOT_FOUND if status == 404 else ErrorClass.VALIDATION
    return Failure(
        SourceError(f"hubspot refused the request ({status}): {message}", error_class=error_class)
    )


def header_float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
