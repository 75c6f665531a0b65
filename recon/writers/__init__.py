"""Writers: send approved changes to a CRM in batches sized to its API maximums.

A writer wraps one official client (``hubspot-api-client`` or
``simple-salesforce``) and knows nothing about plans or journals: it takes
:class:`Op` s (one record each), sends them in as few calls as the API allows
and answers one :class:`Outcome` per op. It also reads back what apply needs
to stay safe: the current modification time and values of records (stale-write
protection), whether a create already landed (by its idempotency key, else by
its natural key) and whether a merge already happened.

Whole-request failures are exceptions from :mod:`recon.errors`: a 429 is
retried inside the writer (the CRM did not process the request); a 5xx or a
network error raises :class:`~recon.errors.SourceError` with
``error_class`` ``server_error``/``network`` — the request *may* have landed,
so apply re-reads before it retries. Every request is counted against an
optional per-run budget (:class:`CallBudget`).

Examples:
    >>> budget = CallBudget("hubspot", limit=2)
    >>> budget.spend(); budget.spend(); budget.calls
    2
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import setting_place
from ..errors import BudgetExhausted, ErrorClass, RateLimited, SourceError, redact
from ..models import sleep_noted

_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}

__all__ = [
    "CallBudget",
    "Op",
    "Outcome",
    "RecordState",
    "Writer",
    "chunks",
    "classify_hubspot",
    "classify_salesforce",
    "network_reason",
    "scrub",
]

log = logging.getLogger(__name__)


@dataclass
class Op:
    """One write to one record.

    Attributes:
        ref: the caller's handle, echoed in the :class:`Outcome`.
        kind: ``update`` | ``create`` | ``associate`` | ``merge``.
        object: the CRM object (``companies``, ``Account``...).
        record_id: target record (None for creates; the survivor for merges).
        properties: field values to write.
        key: idempotency key of a create (written to the recon key field).
        natural: ``(field, value)`` that identifies a created record when the key
            field is missing (email, domain).
        to_object: associations: the other side's object.
        to_id: associations: the other side's record id.
        primary: associations (HubSpot contact → company): label the company primary (the
            contact's former primary company keeps its association, unlabelled).
        merge_ids: merges: the records merged into ``record_id``.
        unmodified_since: updates: the snapshot's modification time; a writer that can send a
            conditional write (Salesforce single-record PATCH, ``If-Unmodified-Since``) refuses
            the write with a ``stale`` outcome when the record changed after it.
    """

    ref: str
    kind: str
    object: str
    record_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    natural: tuple[str, str] | None = None
    to_object: str | None = None
    to_id: str | None = None
    merge_ids: list[str] = field(default_factory=list)
    unmodified_since: str | None = None
    primary: bool = False


@dataclass
class Outcome:
    """What happened to one :class:`Op`."""

    ref: str
    ok: bool
    record_id: str | None = None
    error_class: ErrorClass | None = None
    error: str | None = None
    #: a merge stopped part-way: the victims merged before it stopped (gone from the CRM)
    merged: tuple[str, ...] = ()
    #: records a merge re-parented (their modified time moved because of recon's own write)
    related: tuple[str, ...] = ()
    #: fields of an op that landed without them, with why (a created contact whose opt-out
    #: HubSpot refused): the audit's ``after`` leaves them out and its ``error`` says why
    unwritten: dict[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """Whether sending the op again later can succeed."""
        return self.error_class is not None and self.error_class.retryable


@dataclass
class RecordState:
    """A record as it is in the CRM right now."""

    record_id: str
    modified_at: str | None
    values: dict[str, Any] = field(default_factory=dict)


class CallBudget:
    """Counts API calls of one system and stops the run when its budget is spent.

    Args:
        system: ``hubspot`` or ``salesforce``.
        limit: calls allowed in this run (None: unlimited).
        already: calls already spent by an interrupted run being resumed.
    """

    def __init__(self, system: str, limit: int | None = None, already: int = 0) -> None:
        self.system = system
        self.limit = limit
        self.calls = already

    def spend(self, n: int = 1) -> None:
        """Count ``n`` calls, raising :class:`BudgetExhausted` before the budget is exceeded."""
        if self.limit is not None and self.calls + n > self.limit:
            raise BudgetExhausted(
                f"the {self.system} API call budget of {self.limit} calls for this run is spent",
                hint="run `recon apply --resume` to continue (raise "
                f"{setting_place('budget', f'{self.system}_calls')} for larger runs)",
            )
        self.calls += n


class Writer(Protocol):
    """What apply needs from a CRM writer."""

    system: str
    budget: CallBudget

    def max_batch(self, kind: str) -> int:
        """Largest number of ops of ``kind`` one call may carry."""
        ...

    def write(self, ops: Sequence[Op]) -> list[Outcome]:
        """Send ops (same kind and object, at most :meth:`max_batch`), one outcome each."""
        ...

    def current(
        self, obj: str, record_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RecordState]:
        """Current state of records; ids that no longer exist are absent."""
        ...

    def find_created(self, obj: str, ops: Sequence[Op]) -> dict[str, str]:
        """Records already made by create ops: ``{op.ref: record_id}``."""
        ...

    def merged_away(self, obj: str, record_ids: Sequence[str]) -> set[str]:
        """Of ``record_ids``, those that no longer exist (merged or deleted)."""
        ...

    def prepare(self, objects: Iterable[str]) -> None:
        """One-time setup before creates (e.g. the idempotency key property)."""
        ...

    def record_link(self, obj: str, record_id: str | None) -> str | None:
        """A URL that opens the record in the CRM."""
        ...


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """Split ``items`` into lists of at most ``size``.

    Examples:
        >>> [len(c) for c in chunks(list(range(5)), 2)]
        [2, 2, 1]
    """
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def scrub(text: object, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value replaced by ``***`` (errors can echo requests).

    Examples:
        >>> scrub("bad token pat-123", ["pat-123"])
        'bad token ***'
    """
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return redact(out)[:2000]


def backoff_sleep(
    attempt: int, retry_after: float | None, *, cap: float = 30.0, what: str = "a retry"
) -> float:
    """Sleep before retry ``attempt`` (1-based): ``Retry-After`` if given, else exponential.

    ``what``: what is waited for, shown while the wait lasts (:func:`recon.models.waiting`).
    """
    delay = backoff_delay(attempt, retry_after, cap=cap)
    sleep_noted(delay, what)
    return delay


def backoff_delay(attempt: int, retry_after: float | None, *, cap: float = 30.0) -> float:
    """The seconds :func:`backoff_sleep` waits before retry ``attempt``.

    Examples:
        >>> backoff_delay(1, None), backoff_delay(3, None), backoff_delay(1, 2.5), backoff_delay(1, 99)
        (0.25, 1.0, 2.5, 30.0)
    """
    delay = retry_after if retry_after is not None else min(cap, 0.25 * 2 ** (attempt - 1))
    return max(0.0, min(cap, delay))


_NETWORK_REASONS = (
    ("connection refused", "connection refused"),
    ("timed out", "timed out"),
    ("name or service not known", "host name not known"),
    ("nodename nor servname", "host name not known"),
    ("temporary failure in name resolution", "host name not resolvable"),
    ("connection reset", "connection reset"),
    ("remote end closed", "connection closed by the server"),
    ("certificate verify failed", "TLS certificate not trusted"),
)


def network_reason(exc: BaseException) -> str:
    """A short reason for a failed connection (urllib3's own text runs to several lines of
    pool and adapter detail).

    Examples:
        >>> network_reason(OSError("HTTPConnectionPool(host='x', port=1): Max retries exceeded "
        ...     "(Caused by NewConnectionError('... [Errno 111] Connection refused'))"))
        'connection refused'
    """
    text = str(exc).lower()
    for needle, reason in _NETWORK_REASONS:
        if needle in text:
            return reason
    return type(exc).__name__


def with_rate_limit_retries(
    call: Any, *, system: str, budget: CallBudget, max_retries: int, idempotent: bool = False
) -> Any:
    """Run ``call()`` (one API request), retrying on :class:`RateLimited` (not processed).

    With ``idempotent`` (reads), server and network errors are retried too, with backoff;
    writes leave those to apply, which re-reads before sending again.
    """
    attempt = 0
    while True:
        budget.spend()
        try:
            return call()
        except RateLimited as exc:
            attempt += 1
            if attempt > max_retries:
                raise
            log.info(
                "%s rate limited; retry %d after %.2fs",
                system,
                attempt,
                backoff_delay(attempt, exc.retry_after),
            )
            backoff_sleep(
                attempt, exc.retry_after, what=f"{_NAMES.get(system, system)}'s rate limit"
            )
        except SourceError as exc:
            retry = idempotent and exc.error_class in (ErrorClass.SERVER_ERROR, ErrorClass.NETWORK)
            attempt += 1
            if not retry or attempt > max_retries:
                raise
            log.info("%s read failed (%s); retry %d", system, exc.error_class.value, attempt)
            backoff_sleep(
                attempt, None, what=f"a retry of a failed {_NAMES.get(system, system)} read"
            )


_HUBSPOT_CATEGORIES = {
    "VALIDATION_ERROR": ErrorClass.VALIDATION,
    "OBJECT_NOT_FOUND": ErrorClass.NOT_FOUND,
    "CONFLICT": ErrorClass.DUPLICATE_RULE,
    "OBJECT_ALREADY_EXISTS": ErrorClass.DUPLICATE_RULE,
    "DUPLICATE": ErrorClass.DUPLICATE_RULE,
    "MISSING_SCOPES": ErrorClass.PERMISSION,
    "FORBIDDEN": ErrorClass.PERMISSION,
    "INVALID_AUTHENTICATION": ErrorClass.AUTH_FAILED,
    "EXPIRED_AUTHENTICATION": ErrorClass.AUTH_FAILED,
    "RATE_LIMITS": ErrorClass.RATE_LIMITED,
    "RATE_LIMIT": ErrorClass.RATE_LIMITED,
    # a transient failure of one record in a batch: retried like a 5xx
    "INTERNAL_ERROR": ErrorClass.SERVER_ERROR,
    "SERVICE_UNAVAILABLE": ErrorClass.SERVER_ERROR,
}

_STATUS_CLASSES = {
    400: ErrorClass.VALIDATION,
    401: ErrorClass.AUTH_FAILED,
    403: ErrorClass.PERMISSION,
    404: ErrorClass.NOT_FOUND,
    409: ErrorClass.DUPLICATE_RULE,
    412: ErrorClass.STALE,
    429: ErrorClass.RATE_LIMITED,
}


def classify_hubspot(
    category: str | None, message: str | None = None, status: int | None = None
) -> ErrorClass:
    """The :class:`ErrorClass` of a HubSpot error (category, message, HTTP status).

    Examples:
        >>> classify_hubspot("VALIDATION_ERROR", 'Property "x" does not exist').value
        'missing_field'
        >>> classify_hubspot(None, None, 503).value
        'server_error'
    """
    text = (message or "").lower()
    if ("does not exist" in text and "propert" in text) or "property_doesnt_exist" in text:
        return ErrorClass.MISSING_FIELD
    if "duplicate" in text or "already has that value" in text or "already exists" in text:
        return ErrorClass.DUPLICATE_RULE
    if category and category.upper() in _HUBSPOT_CATEGORIES:
        return _HUBSPOT_CATEGORIES[category.upper()]
    return _status_class(status)


_SF_CODES = {
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": ErrorClass.VALIDATION,
    "STRING_TOO_LONG": ErrorClass.VALIDATION,
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": ErrorClass.VALIDATION,
    "INVALID_EMAIL_ADDRESS": ErrorClass.VALIDATION,
    "FIELD_INTEGRITY_EXCEPTION": ErrorClass.VALIDATION,
    "INVALID_TYPE_ON_FIELD_IN_RECORD": ErrorClass.VALIDATION,
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": ErrorClass.VALIDATION,
    "JSON_PARSER_ERROR": ErrorClass.VALIDATION,
    "DUPLICATES_DETECTED": ErrorClass.DUPLICATE_RULE,
    "DUPLICATE_VALUE": ErrorClass.DUPLICATE_RULE,
    "DUPLICATE_EXTERNAL_ID": ErrorClass.DUPLICATE_RULE,
    "REQUIRED_FIELD_MISSING": ErrorClass.MISSING_FIELD,
    "INVALID_FIELD": ErrorClass.MISSING_FIELD,
    "INVALID_FIELD_FOR_INSERT_UPDATE": ErrorClass.PERMISSION,
    "NO_SUCH_COLUMN": ErrorClass.MISSING_FIELD,
    "INSUFFICIENT_ACCESS": ErrorClass.PERMISSION,
    "INSUFFICIENT_ACCESS_OR_READONLY": ErrorClass.PERMISSION,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": ErrorClass.PERMISSION,
    "FIELD_NOT_UPDATEABLE": ErrorClass.PERMISSION,
    "ENTITY_IS_DELETED": ErrorClass.NOT_FOUND,
    "NOT_FOUND": ErrorClass.NOT_FOUND,
    "INVALID_CROSS_REFERENCE_KEY": ErrorClass.NOT_FOUND,
    "MALFORMED_ID": ErrorClass.NOT_FOUND,
    "INVALID_ID_FIELD": ErrorClass.NOT_FOUND,
    "ENTITY_IS_LOCKED": ErrorClass.PERMISSION,
    "UNABLE_TO_LOCK_ROW": ErrorClass.SERVER_ERROR,
    "REQUEST_LIMIT_EXCEEDED": ErrorClass.RATE_LIMITED,
    "INVALID_SESSION_ID": ErrorClass.AUTH_FAILED,
    "PRECONDITION_FAILED": ErrorClass.STALE,
    "SERVER_UNAVAILABLE": ErrorClass.SERVER_ERROR,
    "UNKNOWN_EXCEPTION": ErrorClass.SERVER_ERROR,
}


def classify_salesforce(code: str | None, status: int | None = None) -> ErrorClass:
    """The :class:`ErrorClass` of a Salesforce error code (``statusCode``/``errorCode``).

    Examples:
        >>> classify_salesforce("DUPLICATES_DETECTED").value
        'duplicate_rule'
        >>> classify_salesforce("REQUIRED_FIELD_MISSING").value
        'missing_field'
    """
    if code and code.upper() in _SF_CODES:
        return _SF_CODES[code.upper()]
    if code and "INSUFFICIENT_ACCESS" in code.upper():
        return ErrorClass.PERMISSION
    return _status_class(status)


def _status_class(status: int | None) -> ErrorClass:
    if status is None:
        return ErrorClass.UNKNOWN
    if status >= 500:
        return ErrorClass.SERVER_ERROR
    return _STATUS_CLASSES.get(status, ErrorClass.UNKNOWN)
