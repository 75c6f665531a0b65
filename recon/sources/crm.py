"""Shared machinery of the CRM API sources: pages, cursors, call metering, retries.

A CRM source (:mod:`recon.sources.hubspot`, :mod:`recon.sources.salesforce`) yields
:class:`Page` objects: canonical snapshot rows plus the :class:`Cursor` to commit in the
SAME transaction as those rows (dlt-style: closed start ``>=``, the ids already seen at
the cursor value, optional lag). :func:`recon.pull.run_pull` writes them.

Every HTTP request a source makes goes through a :class:`CallMeter`: it counts the call,
stops the run cleanly with :class:`~recon.errors.BudgetExhausted` once the per-run
budget is spent, and retries retryable failures (429, 5xx, network) with exponential
backoff that honours ``Retry-After``.

Examples:
    >>> meter = CallMeter("hubspot", budget=2)
    >>> meter.call(lambda: "ok", classify=lambda exc: Failure(exc))
    'ok'
    >>> meter.calls
    1
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

from ..config import setting_place
from ..errors import BudgetExhausted, ErrorClass, RateLimited, ReconError, SourceError

__all__ = [
    "CallMeter",
    "Cursor",
    "Failure",
    "Page",
    "domain_of",
    "fields_added",
    "iso_utc",
    "json_safe",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def iso_utc(value: datetime | str | None) -> str | None:
    """A timestamp as UTC ISO-8601 with milliseconds and ``Z`` (sortable as text).

    Examples:
        >>> iso_utc("2024-05-06T07:08:09.000+0000")
        '2024-05-06T07:08:09.000Z'
        >>> iso_utc("1714979289123")
        '2024-05-06T07:08:09.123Z'
    """
    from ..models import parse_ts

    if value is None or value == "":
        return None
    dt = value if isinstance(value, datetime) else parse_ts(str(value))
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def domain_of(website: str | None) -> str | None:
    """The host of a website value, lower-cased, without ``www.`` (None when blank).

    Examples:
        >>> domain_of("http://WWW.Acme.com/about")
        'acme.com'
    """
    if not website or not str(website).strip():
        return None
    text = str(website).strip()
    host = urlparse(text if "//" in text else f"//{text}").hostname or ""
    host = host.lower().removeprefix("www.")
    return host or None


def json_safe(value: Any) -> Any:
    """Plain JSON data from client objects (OrderedDicts, nested ``attributes``)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@dataclass
class Cursor:
    """Incremental state of one (source, object), as stored in the ``cursors`` table.

    Attributes:
        value: the last committed cursor value (UTC ISO); the next query uses ``>=``.
        ids_at_value: ids already stored whose cursor field equals ``value`` (skipped on resume).
        state: paging position of an unfinished full pull or Bulk job, last archived sweep...
    """

    source: str
    object: str
    field: str
    value: str | None = None
    ids_at_value: list[str] = dc_field(default_factory=list)
    state: dict[str, Any] = dc_field(default_factory=dict)

    def advance(self, records: list[tuple[str, str | None]]) -> None:
        """Move the cursor past ``(record_id, cursor_value)`` pairs read in order (ascending)."""
        for rid, value in records:
            if value is None:
                continue
            if self.value is None or value > self.value:
                self.value = value
                self.ids_at_value = [rid]
            elif value == self.value and rid not in self.ids_at_value:
                self.ids_at_value.append(rid)

    def seen(self, rid: str, value: str | None) -> bool:
        """True when ``rid`` at ``value`` was already committed (the boundary of ``>=``)."""
        return value is not None and value == self.value and rid in self.ids_at_value

    def copy(self) -> Cursor:
        """An independent copy (pages carry snapshots of the cursor)."""
        import copy

        return copy.deepcopy(self)


def fields_added(cursor: Cursor, names: list[str], *, full: bool, sample: int | None) -> list[str]:
    """Fields read from now on that the stored records were read without (a property added
    to the mapping, the filters or ``[pull] hubspot_properties``; a field created in
    Salesforce). An incremental pull would fill them only on records that change again, so
    the source reads every record once instead (a backfill).

    The set read is kept in ``cursor.state["fields"]``, committed with the schema page.
    Returns the added names when that backfill is due: an incremental pull of an object
    pulled before (with a recorded set), not a sample, not already full or resuming one.

    Examples:
        >>> c = Cursor("hubspot", "contacts", "lastmodifieddate", "2024-01-01T00:00:00.000Z")
        >>> fields_added(c, ["email"], full=False, sample=None)  # nothing recorded yet
        []
        >>> fields_added(c, ["email", "favorite_color"], full=False, sample=None)
        ['favorite_color']
        >>> fields_added(c, ["email", "favorite_color"], full=False, sample=None)
        []
    """
    if sample is not None or {"full", "bulk"} & set(cursor.state):
        return []  # a resumed job reads what it started with: the set recorded then stands
    before = cursor.state.get("fields")
    cursor.state["fields"] = sorted(set(names))
    if before is None or full or cursor.value is None:
        return []
    added = sorted(set(names) - set(before))
    if added:
        one = len(added) == 1
        log.warning(
            "%s %s: %s %s added since the last pull; reading every record once to fill %s in",
            cursor.source, cursor.object, "field" if one else "fields", ", ".join(added),
            "it" if one else "them",
        )  # fmt: skip
    return added


@dataclass
class Page:
    """One page of a pull: rows and the cursor to commit with them, in one transaction.

    Attributes:
        object: the source object (``companies``, ``Account``...).
        rows: canonical snapshot rows (promoted columns + ``data``), without run id or hash.
        cursor: the cursor to store with the rows (None: leave the stored cursor alone).
        fetched: records the CRM returned for this page (before scoping filters).
        associations: association rows replacing those of ``assoc_from`` ids.
        assoc_from: (from_object, ids) whose stored associations this page replaces.
        schema: the object's fields/properties, to store in ``schemas`` (when ``schema_fetched``).
        owners: owner rows (HubSpot owners, Salesforce Users).
        total: how many records the whole pull of this object expects, when known.
    """

    object: str
    rows: list[dict[str, Any]] = dc_field(default_factory=list)
    cursor: Cursor | None = None
    fetched: int = 0
    associations: list[dict[str, Any]] = dc_field(default_factory=list)
    assoc_from: tuple[str, list[str]] | None = None
    schema: list[dict[str, Any]] | None = None
    owners: list[dict[str, Any]] = dc_field(default_factory=list)
    total: int | None = None
    schema_fetched: bool = True  # False: ``schema`` is the stored one, reused (not re-stored)
    counts: bool = True  # False: bookkeeping (a scope sweep): written, not counted as fetched


@dataclass
class Failure:
    """How a source classifies one failed call.

    Attributes:
        error: the recon error to raise when not retrying (or when retries are spent).
        retryable: whether the same call may succeed later (429, 5xx, network).
        retry_after: seconds the CRM asked to wait, if it said.
    """

    error: BaseException
    retryable: bool = False
    retry_after: float | None = None


#: calls every pull makes before its first page (schemas, counts, the token): a budget they
#: spend whole can never read a page
_SET_UP_KINDS = frozenset({"properties", "describe", "count", "token", "call", "reserve"})


class CallMeter:
    """Counts a CRM's API calls, enforces the per-run budget and retries with backoff.

    Args:
        crm: ``hubspot`` or ``salesforce`` (for messages).
        budget: the most calls this run may make (None: no limit).
        max_retries: retries of one call before its error is raised.
        backoff: first backoff in seconds (doubles each retry, capped at ``max_backoff``).
        sleep: the sleeping function (time.sleep).
    """

    def __init__(
        self,
        crm: str,
        *,
        budget: int | None = None,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.crm = crm
        self.budget = budget
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.calls = 0
        self.spent = False  # a page the rest of the budget could not finish was refused
        self.paged = False  # a page was started (the calls before the first are set-up reads)
        self.retries = 0
        self.rate_limited = 0
        self.waited = 0.0
        self.by_kind: dict[str, int] = {}

    def charge(self, kind: str = "call") -> None:
        """Count one HTTP request, or raise BudgetExhausted when the budget is spent."""
        if self.budget is not None and (self.calls >= self.budget or self.spent):
            if not self.paged and not self.spent:
                # the set-up reads (schemas) took the whole budget before the first page:
                # every run would repeat them and stop here, so say what a page takes
                self.spent = True
                raise BudgetExhausted(
                    f"{self.crm}: the {self.budget} API calls this pull may use cannot fit one "
                    f"page: the reads before the first page took them all",
                    hint=f"raise {setting_place('budget', f'{self.crm}_calls')} well above "
                    f"{self.budget} (a pull reads "
                    "schemas and counts, then pages of records with the reads that go with them)",
                )
            raise BudgetExhausted(
                f"{self.crm}: the API call budget of {self.budget} calls for this run is spent",
                hint="the next `recon pull` resumes where this one stopped; raise "
                f"{setting_place('budget', f'{self.crm}_calls')} to pull more per run",
            )
        self.calls += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if kind not in _SET_UP_KINDS:
            self.paged = True

    def reserve(self, calls: int) -> None:
        """Raise BudgetExhausted now unless ``calls`` more calls fit (don't start a page that can't finish)."""
        if self.budget is not None and calls > self.budget - self.calls and not self.paged:
            # the budget this pull got cannot finish its first page (with the set-up reads
            # before it, which every run repeats): no later run with the same budget could
            # either, so say what it takes (not "the next run resumes")
            self.spent = True
            need = self.calls + calls
            raise BudgetExhausted(
                f"{self.crm}: the {self.budget} API calls this pull may use cannot fit one page "
                f"({need} calls: the reads before it, the page and the reads that go with it)",
                hint=f"raise {setting_place('budget', f'{self.crm}_calls')} so a pull gets at "
                f"least {need} calls",
            )
        if self.budget is not None and self.calls + calls > self.budget:
            # what is left cannot finish a page: the run's budget counts as spent (no later
            # object starts either), the calls made stay the calls counted
            self.spent = True
            self.charge("reserve")
        self.paged = True

    def wait(self, seconds: float) -> None:
        """Sleep (rate-limit pacing), remembering the total."""
        if seconds > 0:
            self.waited += seconds
            self.sleep(seconds)

    def call(
        self,
        fn: Callable[[], T],
        *,
        classify: Callable[[BaseException], Failure],
        kind: str = "call",
        charge: bool = True,
    ) -> T:
        """Run ``fn`` (one HTTP request), retrying retryable failures.

        Args:
            fn: makes exactly one request.
            classify: maps an exception to a :class:`Failure`.
            kind: label for the per-kind counts (``list``, ``search``, ``query``...).
            charge: count the call here (False when the transport counts requests itself).

        Raises:
            BudgetExhausted: the budget is spent before the call.
            ReconError: the classified error, when not retryable or retries are spent.
        """
        attempt = 0
        while True:
            if charge:
                self.charge(kind)
            try:
                return fn()
            except ReconError:
                raise
            except json.JSONDecodeError:  # requests' own JSONDecodeError is one too
                raise self.not_json(kind) from None
            except Exception as exc:
                failure = classify(exc)
                if failure.retryable and attempt < self.max_retries:
                    delay = self._delay(attempt, failure.retry_after)
                    attempt += 1
                    self.retries += 1
                    if isinstance(failure.error, RateLimited):
                        self.rate_limited += 1
                    log.info(
                        "%s %s failed (%s); retry %d/%d in %.1f s",
                        self.crm,
                        kind,
                        type(failure.error).__name__,
                        attempt,
                        self.max_retries,
                        delay,
                    )
                    self.wait(delay)
                    continue
                if isinstance(failure.error, ReconError):
                    raise failure.error from None
                raise failure.error from exc

    def not_json(self, kind: str) -> SourceError:
        """The error of an answer that is no JSON: whatever answered is not the CRM's API (a
        proxy's or a login page, a wrong base URL), which retrying does not mend."""
        where = "[hubspot] base_url" if self.crm == "hubspot" else "[salesforce] instance_url"
        return SourceError(
            f"{self.crm} {kind}: the answer was not JSON, so not the {self.crm} API's",
            hint=f"check {where} (and any proxy between): it must reach the CRM's REST API",
            error_class=ErrorClass.SERVER_ERROR,
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        exp = min(self.max_backoff, self.backoff * (2**attempt))
        jittered = exp * (0.5 + random.random() / 2)
        if retry_after is not None:
            return min(self.max_backoff, max(float(retry_after), 0.0))
        return jittered

    def summary(self) -> dict[str, Any]:
        """Counts for the run summary."""
        return {
            "calls": self.calls,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "waited_seconds": round(self.waited, 3),
            "by_kind": dict(sorted(self.by_kind.items())),
            "budget": self.budget,
        }
