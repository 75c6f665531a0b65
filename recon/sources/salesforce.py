"""Salesforce source: Account, Contact, Lead (+ Campaign, CampaignMember) and Users, on simple-salesforce.

- Fields come from ``describe`` (stored in ``schemas``); recon queries only fields that
  exist (compound address/location and base64 fields excepted). A field named in
  ``[[mapping.fields]]``, ``[pull] salesforce_fields`` or a filter that does not exist
  raises :class:`~recon.errors.MissingField`.
- Every pull is one query ordered by ``SystemModstamp, Id`` with a closed start
  (``SystemModstamp >= value``; ids already committed at ``value`` are skipped), paged
  through ``nextRecordsUrl``; the cursor is committed with every page, so a killed pull
  resumes at its last page. ``[pull] include_deleted`` uses ``queryAll`` (deleted rows
  are stored with ``archived=1``); without it, a ``queryAll`` of the records deleted since
  runs every ``[pull] archived_sweep_hours`` (:meth:`SalesforceSource._deleted_sweep`).
- No ``COUNT()``: when the first REST page's ``totalSize`` is above ``[salesforce]
  bulk_threshold``, that page is kept and a Bulk API 2.0 query job reads the rest from
  the cursor that follows it (result pages of ``BULK_PAGE``); its job id and result
  locator are committed with every result page.
- ``[pull] lag_seconds`` defaults to 1 s here: SystemModstamp has whole seconds, so a
  second edit within a second already read is re-read (content hashes decide).
- ``describe`` is re-read when older than ``[pull] schema_refresh_hours`` (with
  ``If-Modified-Since``) or on ``--full``; scoping filters go into the SOQL ``WHERE``
  (:mod:`recon.sources.scope`); records are mapped by :mod:`recon.sources.sf_map`.
- Every HTTP request is counted and budgeted (Bulk polls too); ``Sforce-Limit-Info`` is
  read after each call. An expired session gets one new token and the call is retried.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus, urlparse

import requests

from ..config import ReconConfig
from ..errors import (
    AuthError,
    BudgetExhausted,
    ErrorClass,
    MissingField,
    RateLimited,
    SourceError,
    redact,
)
from ..models import canonical_json, parse_ts
from .crm import CallMeter, Cursor, Failure, Page, fields_added, iso_utc, json_safe
from .scope import scope_filters, scope_sweep_done, scope_sweep_plan, soql_scope
from .sf_auth import OrgUsage, SalesforceConnection
from .sf_map import CURSOR_FIELD, flatten, map_record, typed

__all__ = ["CURSOR_FIELD", "SalesforceSource", "map_record"]

log = logging.getLogger(__name__)

SKIP_TYPES = {"address", "location", "base64"}
#: Bulk 2.0 result page (maxRecords): fewer, larger pages (each is one call)
BULK_PAGE = 50_000
DEFAULT_LAG = 1.0  # seconds; SystemModstamp has whole seconds
PARENT_FIELDS = {"Contact": ["Account.Name"]}


def _shift(iso: str, seconds: float) -> str:
    dt = parse_ts(iso)
    assert dt is not None
    return iso_utc(dt + timedelta(seconds=seconds)) or iso


def _before_cursor(rec: dict[str, Any], value: str | None, ids: set[str]) -> bool:
    """Whether ``rec`` lies at or before a stored cursor (read by an earlier pull)."""
    m = iso_utc(rec.get(CURSOR_FIELD))
    if value is None or m is None:
        return False
    return m < value or (m == value and rec["Id"] in ids)


def _soql_ts(iso: str) -> str:
    """A SOQL datetime literal (unquoted) from a UTC ISO value."""
    dt = parse_ts(iso)
    assert dt is not None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"


class SalesforceSource:
    """Reads Salesforce through simple-salesforce (see the module docstring).

    Args:
        cfg: the whole config (``[salesforce]``, ``[pull]``, ``[mapping]``).
        meter: counts and budgets the calls.
        connection: an existing :class:`SalesforceConnection` (default: authenticate now).
    """

    source = "salesforce"

    def __init__(
        self, cfg: ReconConfig, meter: CallMeter, connection: SalesforceConnection | None = None
    ):
        self.cfg = cfg
        self.meter = meter
        self.usage = OrgUsage(cfg.salesforce.max_org_usage)
        self._last_headers: Any = {}
        self.conn = connection or SalesforceConnection(
            cfg.salesforce, before=self._before, after=self._after
        )
        self.types: dict[str, dict[str, str]] = {}
        self.fields: dict[str, list[str]] = {}
        self._parent_cache: dict[tuple[str, int, int], list[tuple[str, list[str]]]] = {}

    # ------------------------------------------------------------------ calls

    def _before(self, request: requests.PreparedRequest) -> None:
        url = request.path_url or ""
        path = url.split("?")[0]
        kind = "call"
        if "/jobs/" in path:
            kind = "bulk"
        elif "describe" in path:
            kind = "describe"
        elif "/query" in path:
            query = unquote_plus(url.partition("?q=")[2]).upper()
            kind = "count" if "COUNT()" in query else "owners" if " FROM USER" in query else "query"
        self.usage.check()
        self.meter.charge(kind)

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """The org's daily API usage (used, total) the last response reported."""
        return self.usage.used

    def _after(self, resp: requests.Response) -> None:
        self._last_headers = resp.headers
        self.usage.read(resp.headers)

    def _classify(self, exc: BaseException) -> Failure:
        from simple_salesforce.exceptions import (
            SalesforceError,
            SalesforceExpiredSession,
            SalesforceMalformedRequest,
            SalesforceRefusedRequest,
            SalesforceResourceNotFound,
        )

        if isinstance(exc, requests.RequestException):
            url = getattr(getattr(exc, "request", None), "url", None)
            where = f" reaching {urlparse(url).scheme}://{urlparse(url).netloc}" if url else ""
            return Failure(
                SourceError(
                    f"salesforce: network error{where}: {type(exc).__name__}",
                    error_class=ErrorClass.NETWORK,
                    hint="check [salesforce] instance_url and that this machine reaches it "
                    "(proxy, firewall, DNS)",
                ),
                retryable=True,
            )
        if not isinstance(exc, SalesforceError):
            # secrets blanked before the cut: a cut-off secret no longer matches
            return Failure(
                SourceError(f"salesforce: {type(exc).__name__}: {redact(str(exc))[:300]}")
            )
        content: list[Any] = exc.content if isinstance(exc.content, list) and exc.content else [{}]
        first = content[0] if isinstance(content[0], dict) else {}
        code, message = first.get("errorCode", ""), str(first.get("message", ""))
        # a SOQL error echoes the whole query first (recon selects every field): keep the part
        # that names the field
        named = message.find("No such column")
        message = redact(message[named:] if named > 0 else message)[:300]
        where = f"salesforce {exc.resource_name or ''}".strip()
        retry_after = None
        try:
            retry_after = float(self._last_headers.get("Retry-After"))
        except (TypeError, ValueError):
            pass
        if isinstance(exc, SalesforceExpiredSession):
            return Failure(
                AuthError(f"{where}: session refused (401 {code})", hint="check the credentials")
            )
        if isinstance(exc, SalesforceRefusedRequest):
            if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in message.lower():
                # too many long requests at once in the org (ConcurrentPerOrgLongTxn): passes
                return Failure(
                    RateLimited(
                        f"{where}: too many concurrent long requests in the org ({message})",
                        hint="retried with backoff; run recon when the org is quieter",
                    ),
                    retryable=True,
                    retry_after=retry_after,
                )
            if code == "REQUEST_LIMIT_EXCEEDED":
                # the org's rolling 24-hour allocation is spent (HubSpot's daily limit): stop
                # cleanly, exit 6; the next run resumes where this one stopped
                return Failure(
                    BudgetExhausted(
                        f"{where}: the org's API request limit is exceeded ({message})",
                        hint="the next run resumes once the rolling 24-hour allocation frees up; "
                        "lower [budget] salesforce_calls",
                    )
                )
            return Failure(
                SourceError(
                    f"{where}: refused (403 {code}): {message}", error_class=ErrorClass.PERMISSION
                )
            )
        if isinstance(exc, SalesforceMalformedRequest):
            if code == "INVALID_FIELD":
                return Failure(
                    MissingField(
                        f"{where}: {message}",
                        hint="the field is gone or not visible to the integration user: fix the mapping or "
                        "the field-level security",
                    )
                )
            return Failure(
                SourceError(
                    f"{where}: bad request ({code}): {message}", error_class=ErrorClass.VALIDATION
                )
            )
        if isinstance(exc, SalesforceResourceNotFound):
            return Failure(
                SourceError(f"{where}: not found ({code})", error_class=ErrorClass.NOT_FOUND)
            )
        status = getattr(exc, "status", 0) or 0
        if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
            return Failure(
                RateLimited(f"{where}: rate limited ({status})", retry_after=retry_after),
                True,
                retry_after,
            )
        if status >= 500:
            return Failure(
                SourceError(
                    f"{where}: server error ({status}): {message}",
                    error_class=ErrorClass.SERVER_ERROR,
                ),
                retryable=True,
                retry_after=retry_after,
            )
        return Failure(SourceError(f"{where}: {type(exc).__name__} ({status} {code}): {message}"))

    def _call(self, fn: Any) -> Any:
        return self.meter.call(lambda: self.conn.call(fn), classify=self._classify, charge=False)

    # ------------------------------------------------------------------ schema

    def objects(self) -> tuple[str, ...]:
        """Objects pulled by default: ``[salesforce] objects`` (+ campaigns when mapped)."""
        objs: list[str] = list(self.cfg.salesforce.objects)
        if self.cfg.mapping.campaign_property:
            objs += ["Campaign", "CampaignMember"]
        return tuple(objs)

    def schema(self, obj: str, known: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """``describe`` the object (one call, or ``known`` fields); sets the fields recon queries.

        Raises:
            MissingField: a configured field does not exist on the object.
        """
        if known is not None:
            return self._use_schema(obj, known)
        desc = self._call(lambda sf: getattr(sf, obj).describe())
        # stored whole: the plan stage reads types, picklists and writability from them
        fields = [json_safe(f) for f in desc.get("fields", [])]
        return self._use_schema(obj, fields, fetched=True)

    def _describe_since(
        self, obj: str, stored: list[dict[str, Any]], since: datetime | None
    ) -> list[dict[str, Any]]:
        """``describe`` with ``If-Modified-Since``: a 304 (unchanged) keeps ``stored``."""
        from email.utils import format_datetime

        from simple_salesforce.exceptions import SalesforceGeneralError

        if since is None:
            return self.schema(obj)
        headers = {"If-Modified-Since": format_datetime(since.astimezone(UTC), usegmt=True)}

        def describe(sf: Any) -> Any:
            try:
                return getattr(sf, obj).describe(headers=headers)
            except SalesforceGeneralError as exc:
                if exc.status == 304:
                    return None
                raise

        desc = self._call(describe)
        if desc is None:
            return self._use_schema(obj, stored)
        return self._use_schema(obj, [json_safe(f) for f in desc.get("fields", [])], fetched=True)

    def _use_schema(
        self, obj: str, fields: list[dict[str, Any]], *, fetched: bool = False
    ) -> list[dict[str, Any]]:
        existing = {f["name"]: f["type"] for f in fields}
        configured = list(self.cfg.pull.salesforce_fields.get(obj, []))
        configured += [
            m.salesforce
            for m in self.cfg.mapping.fields
            # a contacts mapping without salesforce_object may name a Lead-only or Contact-only
            # field: the plan stage checks those against both schemas
            if (m.salesforce_object or {"companies": "Account"}.get(m.object)) == obj
        ]
        # field names are case-insensitive in Salesforce ("title" is Title, as the plan reads
        # a mapping); a scoping filter reads records by the exact name, so it must spell it so
        spelt = {n.casefold(): n for n in existing}
        missing = sorted({f for f in configured if f.casefold() not in spelt and "." not in f})
        filters = [
            f.field for f in self.cfg.pull.filters if f.source == "salesforce" and f.object == obj
        ]
        missing += sorted({f for f in filters if f not in existing and "." not in f} - set(missing))
        if missing:
            named = [
                f"{f} (Salesforce spells it {spelt[f.casefold()]})" if f.casefold() in spelt else f
                for f in missing
            ]
            exc = MissingField(
                f"salesforce {obj}: configured field{'s' if len(missing) > 1 else ''} {', '.join(named)} "
                "not found (or not visible to the integration user)",
                hint="fix [[mapping.fields]] / [pull] salesforce_fields / filters, or grant field-level "
                "security on it to the integration user",
            )
            exc.schema = fields if fetched else None  # type: ignore[attr-defined]
            raise exc
        self.types[obj] = existing
        names = [n for n, t in existing.items() if t not in SKIP_TYPES]
        for parent in PARENT_FIELDS.get(obj, []):
            if parent.split(".")[0] + "Id" in existing:
                names.append(parent)
        self.fields[obj] = names
        return fields

    def _record(self, obj: str, raw: dict[str, Any]) -> dict[str, Any]:
        types = self.types.get(obj, {})
        # a null parent ("Account": null over REST) reads as its selected fields, blank, as a
        # Bulk CSV gives them ("Account.Name" empty): one record, one content hash either way
        for parent, selected in self._parents(obj):
            if parent in raw and raw[parent] is None:
                del raw[parent]
                for field in selected:
                    raw.setdefault(field, None)
        return {k: typed(v, types.get(k)) for k, v in raw.items()}

    def _parents(self, obj: str) -> list[tuple[str, list[str]]]:
        """The parent relationships ``obj``'s query selects, with their selected fields."""
        fields = self.fields.get(obj, [])
        key = (obj, id(fields), len(fields))
        hit = self._parent_cache.get(key)
        if hit is None:
            by_parent: dict[str, list[str]] = {}
            for field in fields:
                parent, dot, _ = field.partition(".")
                if dot:
                    by_parent.setdefault(parent, []).append(field)
            hit = self._parent_cache[key] = list(by_parent.items())
        return hit

    # ------------------------------------------------------------------ owners

    def _query_pages(self, soql: str, *, deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """The records of one query, a page at a time (``deleted``: ``queryAll``)."""
        body = self._call(lambda sf: sf.query(soql, include_deleted=deleted))
        while True:
            yield body.get("records", [])
            url = body.get("nextRecordsUrl")
            if body.get("done", True) or not url:
                return
            body = self._call(
                lambda sf, u=url: sf.query_more(u, identifier_is_url=True, include_deleted=deleted)
            )

    def owners(self) -> Iterator[list[dict[str, Any]]]:
        """User rows for the ``owners`` table, page by page."""
        for records in self._query_pages("SELECT Id, Name, Email, IsActive, Username FROM User"):
            yield [
                {"source": "salesforce", "owner_id": r["Id"], "email": r.get("Email"), "name": r.get("Name"),
                 "active": 1 if r.get("IsActive") else 0, "data": canonical_json(flatten(r))}
                for r in records
            ]  # fmt: skip

    # ------------------------------------------------------------------ records

    def _scope(self, obj: str) -> str | None:
        return soql_scope(scope_filters(self.cfg, "salesforce", obj), self.types.get(obj, {}))

    def _soql(
        self,
        obj: str,
        since: str | None,
        *,
        count: bool = False,
        order: bool = True,
        scoped: bool = True,
    ) -> str:
        select = "COUNT()" if count else ", ".join(self.fields[obj])
        soql = f"SELECT {select} FROM {obj}"
        where = [f"{CURSOR_FIELD} >= {_soql_ts(since)}"] if since is not None else []
        scope = self._scope(obj) if scoped else None
        if scope:
            where.append(f"({scope})")  # out-of-scope records are not fetched at all
        if where:
            soql += " WHERE " + " AND ".join(where)
        if order and not count:
            soql += f" ORDER BY {CURSOR_FIELD} ASC, Id ASC"
        return soql

    def pull(
        self,
        obj: str,
        cursor: Cursor,
        *,
        full: bool = False,
        sample: int | None = None,
        schema: list[dict[str, Any]] | None = None,
        schema_since: tuple[list[dict[str, Any]], datetime | None] | None = None,
    ) -> Iterator[Page]:
        """Pages of ``obj`` from ``cursor`` on (everything when ``full`` or no cursor).

        ``schema``: the stored describe fields, reused (no call) when resuming an
        unfinished pull or while younger than ``[pull] schema_refresh_hours``.
        ``schema_since``: a stale stored schema and when it was read: ``describe`` is
        asked with ``If-Modified-Since`` (a 304 keeps the stored fields).
        """
        if schema is None and schema_since is not None:
            fields = self._describe_since(obj, *schema_since)
        else:
            fields = self.schema(obj, schema)
        if cursor.value is None and not cursor.state and sample is None:
            # the first pull of this object: deletions from now on are swept (_deleted_sweep)
            cursor.state["deleted_sweep"] = iso_utc(datetime.now(UTC))
        if fields_added(cursor, self.fields[obj], full=full, sample=sample):
            full = True  # a backfill: every record once, with the new fields
        if full and "full" not in cursor.state and "bulk" not in cursor.state:
            cursor.state["full"] = {"started": iso_utc(datetime.now(UTC))}
            cursor.value, cursor.ids_at_value = None, []
        yield Page(object=obj, schema=fields, cursor=cursor.copy(), schema_fetched=schema is None)
        first = cursor.value is None and "full" not in cursor.state  # nothing stored before
        first = first or (full and "scope" not in cursor.state)
        yield from self._records(obj, cursor, sample)
        if sample is None and (
            scope_filters(self.cfg, "salesforce", obj) or "scope" in cursor.state
        ):
            yield from self._scope_sweep(obj, cursor, first)
        if sample is None:
            yield from self._deleted_sweep(obj, cursor, force=full)

    def _deleted_sweep(self, obj: str, cursor: Cursor, *, force: bool = False) -> Iterator[Page]:
        """Records deleted (or merged away) in Salesforce since the last sweep, stored archived.

        Queries skip deleted records unless ``[pull] include_deleted``; so every
        ``[pull] archived_sweep_hours`` a ``queryAll`` reads those deleted since (a minute of
        overlap), as HubSpot's archived sweep does. The first pull of an object notes when it
        started (see :meth:`pull`: nothing stored before can have been deleted); a store pulled
        before sweeps existed reads the whole recycle bin once.
        """
        if self.cfg.pull.include_deleted or "IsDeleted" not in self.fields.get(obj, ()):
            return  # every query reads deleted records already
        now = datetime.now(UTC)
        last = cursor.state.get("deleted_sweep")
        hours = self.cfg.pull.archived_sweep_hours
        if (
            not force
            and last is not None
            and now - (parse_ts(last) or now) < timedelta(hours=hours)
        ):
            return  # a full pull sweeps whatever the time: it asks for the whole truth
        soql = self._soql(obj, _shift(last, -60) if last else None, scoped=False, order=False)
        soql += (" AND " if " WHERE " in soql else " WHERE ") + "IsDeleted = true"
        for records in self._query_pages(soql, deleted=True):
            rows = [map_record(obj, self._record(obj, flatten(r))) for r in records]
            yield Page(object=obj, rows=rows, counts=False)
        cursor.state["deleted_sweep"] = iso_utc(now)  # committed once the sweep is read
        yield Page(object=obj, cursor=cursor.copy(), counts=False)

    def _scope_sweep(self, obj: str, cursor: Cursor, first: bool) -> Iterator[Page]:
        """Re-read, unfiltered, what changed since the last scope sweep (see recon.sources.scope)."""
        now = datetime.now(UTC)
        before = (cursor.state.get("scope"), cursor.state.get("scope_sweep"))
        due, since = scope_sweep_plan(
            self.cfg, "salesforce", obj, cursor, now, first=first, pushed=bool(self._scope(obj))
        )
        if due:
            # a minute of overlap: a record changed around the last sweep is read again
            since = _shift(since, -60) if since is not None else None
            soql = self._soql(obj, since, scoped=False, order=False)
            for records in self._query_pages(soql, deleted=self.cfg.pull.include_deleted):
                rows = [map_record(obj, self._record(obj, flatten(r))) for r in records]
                # a check of stored rows, not news: recon marks those now out of scope
                yield Page(object=obj, rows=rows, counts=False)
        scope_sweep_done(self.cfg, "salesforce", obj, cursor)
        if before != (cursor.state.get("scope"), cursor.state.get("scope_sweep")):
            # the sweep's state (signature, time) is committed once it is done
            yield Page(object=obj, cursor=cursor.copy(), counts=False)

    def _records(self, obj: str, cursor: Cursor, sample: int | None) -> Iterator[Page]:
        deleted = self.cfg.pull.include_deleted
        if "bulk" in cursor.state and sample is None:
            yield from self._bulk(obj, cursor, deleted)
            return
        since = cursor.value
        ids = set(cursor.ids_at_value)
        floor, floor_ids = cursor.value, set(cursor.ids_at_value)
        lag = self.cfg.pull.lag_seconds
        lag = DEFAULT_LAG if lag is None else lag
        if since is not None and lag > 0:
            # re-read a margin before the cursor: a second edit within the same whole second
            # of SystemModstamp is caught; content hashes keep unchanged rows as they are
            since = _shift(since, -lag)
            ids = set()
        threshold = self.cfg.salesforce.bulk_threshold
        # a query's later pages return the records' current values in the order of the first:
        # a record edited while it pages can carry a newer time than one edited earlier on a
        # page already read. The cursor never passes the moment the query started (what
        # changed since is read again next time; content hashes keep unchanged rows)
        started = iso_utc(datetime.now(UTC))
        soql = self._soql(obj, since)
        if sample is not None:
            soql += f" LIMIT {int(sample)}"
        # no COUNT(): the first REST page tells totalSize; above the threshold its records are
        # kept and a Bulk 2.0 job reads the rest from the cursor that follows them
        body = self._call(lambda sf: sf.query(soql, include_deleted=deleted))
        to_bulk = sample is None and int(body.get("totalSize", 0)) > threshold
        while True:
            records = [self._record(obj, flatten(r)) for r in body.get("records", [])]
            fresh = [
                r for r in records if not (iso_utc(r.get(CURSOR_FIELD)) == since and r["Id"] in ids)
            ]
            done = to_bulk or body.get("done", True) or not body.get("nextRecordsUrl")
            if sample is None:
                cursor.advance([(r["Id"], iso_utc(r.get(CURSOR_FIELD))) for r in fresh])
                if started is not None and cursor.value is not None and cursor.value > started:
                    cursor.value, cursor.ids_at_value = started, []
                if done and not to_bulk:
                    cursor.state.pop("full", None)
                if to_bulk:
                    cursor.state["bulk"] = None  # set by _bulk; a killed run resumes the job
            yield Page(
                object=obj,
                rows=[map_record(obj, r) for r in fresh],
                cursor=cursor.copy() if sample is None else None,
                # records inside the lag margin that were read before are a check, not news
                fetched=sum(1 for r in fresh if not _before_cursor(r, floor, floor_ids)),
                total=body.get("totalSize"),
            )
            if to_bulk:
                yield from self._bulk(obj, cursor, deleted)
                return
            if done:
                return
            url = body["nextRecordsUrl"]
            body = self._call(
                lambda sf, u=url: sf.query_more(u, identifier_is_url=True, include_deleted=deleted)
            )

    def _bulk(self, obj: str, cursor: Cursor, deleted: bool) -> Iterator[Page]:
        """Bulk API 2.0 query; the job id and result locator are committed with each page."""
        from simple_salesforce.bulk2 import Operation

        state = cursor.state.get("bulk")
        client = lambda sf: getattr(sf.bulk2, obj)._client  # noqa: E731
        if state is None:
            soql = self._soql(obj, cursor.value, order=False)
            op = Operation.query_all if deleted else Operation.query
            job = self._call(lambda sf: client(sf).create_job(op, soql))
            state = {
                "job": job["id"],
                "locator": "",
                "max": cursor.value,
                "ids": list(cursor.ids_at_value),
                # a record edited while the job's pages are read carries a newer time than
                # one edited before on a page already read: the cursor never passes this
                "started": iso_utc(datetime.now(UTC)),
            }
            cursor.state["bulk"] = state
        since, seen = cursor.value, set(cursor.ids_at_value)
        try:
            self._call(lambda sf: client(sf).wait_for_job(state["job"], True, 0.5))
        except SourceError as exc:
            if (
                exc.error_class is not ErrorClass.NOT_FOUND
                or "locator" not in state
                or not state["locator"]
            ):
                raise
            # a resumed job that Salesforce no longer keeps (7 days): start a new one from the cursor
            log.info("salesforce bulk job %s is gone; starting a new one", state["job"])
            cursor.state.pop("bulk", None)
            yield from self._bulk(obj, cursor, deleted)
            return
        while True:
            page = self._call(
                lambda sf: client(sf).get_query_results(state["job"], state["locator"], BULK_PAGE)
            )
            reader = csv.DictReader(io.StringIO(page["records"]))
            records = [self._record(obj, dict(r)) for r in reader]
            fresh = [
                r
                for r in records
                if not (iso_utc(r.get(CURSOR_FIELD)) == since and r["Id"] in seen)
            ]
            for r in fresh:
                m = iso_utc(r.get(CURSOR_FIELD))
                if m is None:
                    continue
                if state["max"] is None or m > state["max"]:
                    state["max"], state["ids"] = m, [r["Id"]]
                elif m == state["max"] and r["Id"] not in state["ids"]:
                    state["ids"].append(r["Id"])
            state["locator"] = page["locator"] or ""
            if not state["locator"]:
                cursor.state.pop("bulk", None)
                cursor.state.pop("full", None)
                cursor.value, cursor.ids_at_value = state["max"], list(state["ids"])
                started = state.get("started")
                if started and cursor.value is not None and cursor.value > started:
                    cursor.value, cursor.ids_at_value = started, []
            yield Page(
                object=obj,
                rows=[map_record(obj, r) for r in fresh],
                cursor=cursor.copy(),
                fetched=len(fresh),
            )
            if not state["locator"]:
                return
