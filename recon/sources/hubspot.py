"""HubSpot source: companies, contacts, their associations and owners, on ``hubspot-api-client``.

- Properties are discovered from ``/crm/v3/properties/{type}`` (stored in ``schemas``;
  re-read when older than ``[pull] schema_refresh_hours`` or on ``--full``);
  recon requests the ones it maps (canonical, default mappings, ``[[mapping.fields]]``,
  ``[pull] hubspot_properties``, filter fields) that exist. A configured property that
  does not exist raises :class:`~recon.errors.MissingField`.
- A property requested for the first time on an object pulled before makes that pull a
  full one, once (:func:`recon.sources.crm.fields_added`): the records already stored get it.
- A first (or ``--full``) pull pages through the list endpoint (100 a call); the paging
  token is committed with every page, so a killed pull resumes where it stopped.
- Incremental pulls use search on the last-modified property (companies
  ``hs_lastmodifieddate``, contacts ``lastmodifieddate``), keyset style: every call asks
  for ``>= value`` sorted ascending (closed start), ids already committed at ``value``
  are left out by the query itself (``> value OR (= value AND hs_object_id NOT_IN
  ids)``, up to 100 ids; beyond, skipped when read), so each call re-anchors the time window and the 10,000-result cap of
  search is never reached. When a whole page shares one timestamp, that instant is
  split by ``hs_object_id`` ranges (``EQ value AND hs_object_id > last``) until it is
  exhausted; then the window continues with ``> value``.
- Search finds a change only once it is indexed (about 10 s after a create, 60 s after
  an update), so a record changed just before a search may be found only by a later one,
  below a cursor that has moved on. The committed cursor therefore never passes the
  moment the search pull started less ``[pull] hubspot_index_delay_seconds`` (120 s):
  the next incremental reads that window again. What it reads again unchanged (the
  stored modified time is the same) is dropped: no rewrite, no association read.
- ``[pull] lag_seconds`` (default 0) re-reads a further margin before the cursor.
- Contacts' company associations come from the v4 batch read (100 ids a call); the
  primary company becomes ``account_id``.
- Properties a ``two_way`` rule syncs get their own modification time: list and search
  return none, so each page's records are read again in batches of 50 with
  ``propertiesWithHistory`` (one call per 50 records; none without a ``two_way`` rule).
  The time of the newest history entry holding the pulled value is stored with the
  record (``propertiesWithHistory`` in its data), so an edit to another property does not
  make this one look newer (:meth:`recon.plan_load.Rec.field_time`).
- Search never returns archived records: every ``[pull] archived_sweep_hours`` the list
  endpoint with ``archived=true`` is read and those records stored with ``archived=1``.

Errors are classified in :mod:`recon.sources.hs_errors`; scoping filters are pushed into
searches as :mod:`recon.sources.scope` describes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import ReconConfig, config_file
from ..errors import ConfigError, MissingField
from ..models import canonical_json, parse_ts
from .crm import CallMeter, Cursor, Page, fields_added, iso_utc
from .hs_errors import classify, header_float
from .hs_map import CURSOR_FIELDS, KNOWN_PROPERTIES, map_company, map_contact
from .scope import hubspot_scope_groups, scope_filters, scope_sweep_done, scope_sweep_plan

__all__ = [
    "CURSOR_FIELDS",
    "HubSpotSource",
    "map_company",
    "map_contact",
]

log = logging.getLogger(__name__)

#: where recon.toml names the HubSpot properties a pull reads (what a missing one's hint points at)
_NAMED_IN = "[[mapping.fields]] / [pull] hubspot_properties / filters / [mapping] campaign_property"

LIST_PAGE = 100
SEARCH_PAGE = 200
MAX_IN_VALUES = 100  # values of one IN / NOT_IN search filter
MAX_SCOPE_FILTERS = 6  # pushed per filter group (search: 10 a group, 25 in all)
MAX_FILTER_GROUPS = 5  # filter groups of one search
ASSOC_BATCH = 100
HISTORY_BATCH = 50  # batch read inputs with propertiesWithHistory
PRIMARY_TYPE_IDS = {1}  # contact -> company primary


def _shift(iso: str, seconds: float) -> str:
    dt = parse_ts(iso)
    assert dt is not None
    return iso_utc(dt + timedelta(seconds=seconds)) or iso


def _value_times(props: dict[str, Any], history: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{property: [{"value", "timestamp"}]}``: per property, the newest history entry that
    holds the value read (a value changed between the two reads keeps no time: the record's
    own time stands in).

    Examples:
        >>> _value_times({"state": "CA", "city": "X"}, {"state": [
        ...     {"value": "NY", "timestamp": "2026-02-01T00:00:00Z"},
        ...     {"value": "CA", "timestamp": "2026-01-01T00:00:00Z"}],
        ...     "city": [{"value": "Y", "timestamp": "2026-03-01T00:00:00Z"}]})
        {'state': [{'value': 'CA', 'timestamp': '2026-01-01T00:00:00Z'}]}
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for name, entries in history.items():
        value = props.get(name) or ""
        listed = entries if isinstance(entries, list) else []
        held = [
            e
            for e in listed
            if isinstance(e, dict) and e.get("timestamp") and (e.get("value") or "") == value
        ]
        if held:
            top = max(held, key=lambda e: iso_utc(str(e["timestamp"])) or "")
            out[name] = [{"value": top.get("value"), "timestamp": top["timestamp"]}]
    return out


def _id_key(rid: str) -> tuple[int, str]:
    return (int(rid), rid) if rid.isdigit() else (0, rid)


def _ms(iso: str) -> str:
    dt = parse_ts(iso)
    assert dt is not None
    return str(int(dt.timestamp() * 1000))


class HubSpotSource:
    """Reads HubSpot through ``hubspot-api-client`` (see the module docstring).

    Args:
        cfg: the whole config (``[hubspot]``, ``[pull]``, ``[mapping]``).
        meter: counts and budgets the calls.
        client: an existing ``hubspot.HubSpot`` (default: built from the config).
    """

    source = "hubspot"

    def __init__(self, cfg: ReconConfig, meter: CallMeter, client: Any = None) -> None:
        self.cfg = cfg
        self.meter = meter
        if client is None:
            if cfg.hubspot.access_token is None:
                raise ConfigError(  # a setting to fix (exit 3), not a refusal by HubSpot
                    "invalid configuration",
                    problems=[("hubspot.access_token", "not configured")],
                    hint=f'set access_token = "env:HUBSPOT_TOKEN" in {config_file()} and export the token',
                )
            from hubspot import HubSpot
            from urllib3.util.retry import Retry

            # recon retries (and counts) every attempt itself: urllib3 would silently retry
            # GETs answered 429 with Retry-After, hiding calls from the budget
            client = HubSpot(
                access_token=cfg.hubspot.access_token.get("hubspot.access_token"),
                host=cfg.hubspot.base_url,
                retry=Retry(total=0, raise_on_status=False, respect_retry_after_header=False),
            )
        self.client = client
        self.properties: dict[str, list[str]] = {}
        self.schema_read: dict[str, bool] = {}  # whether a schema was read from HubSpot this run
        self.configured: dict[str, list[str]] = {}  # the properties recon.toml names, per object
        self._history: dict[str, list[str]] = {}  # object -> properties whose times are read
        self._scoped = True  # push the scoping filters into searches (off for scope sweeps)

    # ------------------------------------------------------------------ calls

    def _call(self, fn: Any, kind: str, **kwargs: Any) -> dict[str, Any]:
        timeout = self.cfg.hubspot.timeout_seconds

        def once() -> Any:
            return fn(_preload_content=False, _request_timeout=timeout, **kwargs)

        resp = self.meter.call(once, classify=classify, kind=kind)
        self._pace(resp.headers)
        data = resp.data
        try:
            return json.loads(data) if data else {}
        except ValueError:
            raise self.meter.not_json(kind) from None

    def _pace(self, headers: Any) -> None:
        """Slow down before the 10-second bucket is empty (rate-limit headers)."""
        remaining = header_float(headers.get("X-HubSpot-RateLimit-Remaining"))
        limit = header_float(headers.get("X-HubSpot-RateLimit-Max"))
        interval = header_float(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        if remaining is not None and remaining <= 1 and limit and interval:
            self.meter.wait(interval / 1000 / limit)

    def objects(self) -> tuple[str, ...]:
        """The objects pulled by default (``[hubspot] objects``)."""
        return tuple(self.cfg.hubspot.objects)

    def _api(self, obj: str) -> Any:
        return getattr(self.client.crm, obj)

    # ------------------------------------------------------------------ schema

    def schema(self, obj: str, known: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The object's properties (one call, or ``known`` ones); sets the properties recon requests.

        Raises:
            MissingField: a configured property does not exist in HubSpot.
        """
        if known is not None:
            return self._use_schema(obj, known)
        body = self._call(
            self.client.crm.properties.core_api.get_all,
            "properties",
            object_type=obj,
            archived=False,
        )
        # stored whole: the plan stage reads types, options and read-only flags from them
        fields = [dict(p) for p in body.get("results", [])]
        return self._use_schema(obj, fields, fetched=True)

    def _use_schema(
        self, obj: str, fields: list[dict[str, Any]], *, fetched: bool = False
    ) -> list[dict[str, Any]]:
        existing = {f["name"] for f in fields}
        wanted = list(KNOWN_PROPERTIES.get(obj, []))
        configured = list(self.cfg.pull.hubspot_properties.get(obj, []))
        configured += [m.hubspot for m in self.cfg.mapping.fields if m.object == obj]
        configured += [
            f.field for f in self.cfg.pull.filters if f.source == "hubspot" and f.object == obj
        ]
        if obj == "contacts" and self.cfg.mapping.campaign_property:
            configured.append(self.cfg.mapping.campaign_property)
        missing = sorted({p for p in configured if p not in existing})
        if missing:
            exc = MissingField(
                f"hubspot {obj}: configured propert{'y' if len(missing) == 1 else 'ies'} "
                f"{', '.join(missing)} not found (or not visible to the private app)",
                hint=f"fix {_NAMED_IN}, create the property in HubSpot, or give the app access "
                "to it",
            )
            # the properties just read are stored all the same: `recon plan` checks every
            # mapping against them and names every missing one with its key
            exc.schema = fields if fetched else None  # type: ignore[attr-defined]
            raise exc
        self.configured[obj] = sorted(set(configured))
        self.schema_read[obj] = fetched
        self.properties[obj] = [p for p in dict.fromkeys(wanted + configured) if p in existing]
        if CURSOR_FIELDS[obj] not in self.properties[obj] and CURSOR_FIELDS[obj] in existing:
            self.properties[obj].append(CURSOR_FIELDS[obj])
        return fields

    # ------------------------------------------------------------------ owners

    def owners(self) -> Iterator[list[dict[str, Any]]]:
        """Owner rows (``owners`` table), page by page."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 500, "archived": False}
            if after:
                kwargs["after"] = after
            body = self._call(self.client.crm.owners.owners_api.get_page, "owners", **kwargs)
            rows = []
            for o in body.get("results", []):
                name = " ".join(x for x in (o.get("firstName"), o.get("lastName")) if x) or None
                rows.append(
                    {"source": "hubspot", "owner_id": str(o.get("id")), "email": o.get("email"), "name": name,
                     "active": 0 if o.get("archived") else 1, "data": canonical_json(o)}
                )  # fmt: skip
            yield rows
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    # ------------------------------------------------------------------ records

    def history_properties(self, obj: str) -> list[str]:
        """The properties of ``obj`` a ``two_way`` rule syncs (their field times decide which
        side is newer), among those requested."""
        hit = self._history.get(obj)
        if hit is None:
            from ..mapping import check_mappings

            wanted = {
                m.hubspot
                for m in check_mappings(self.cfg.mapping).mappings
                if m.object == obj and m.rule == "two_way" and m.derived is None and m.hubspot
            }
            if wanted and obj == "contacts" and self.cfg.mapping.contacts == "two_way":
                # read in the same calls: when the primary company changed (a two_way plan
                # tells a HubSpot move from a Salesforce one by it, see plan_associations)
                wanted.add("associatedcompanyid")
            hit = self._history[obj] = sorted(wanted & set(self.properties.get(obj, ())))
        return hit

    def _page_extra(self, obj: str, limit: int) -> int:
        """The calls a page of ``limit`` records needs after its own: association reads
        (contacts) and field-time reads (properties a two_way rule syncs)."""
        assoc = -(-limit // ASSOC_BATCH) if obj == "contacts" else 0
        times = -(-limit // HISTORY_BATCH) if self.history_properties(obj) else 0
        return assoc + times

    def _attach_history(self, obj: str, records: list[dict[str, Any]], names: list[str]) -> None:
        """Add each record's field times of ``names`` (``propertiesWithHistory``: the newest
        entry holding the value read, one per property) to its properties."""
        by_id = {str(r["id"]): r for r in records}
        ids = list(by_id)
        api = self._api(obj).batch_api.read
        for i in range(0, len(ids), HISTORY_BATCH):
            chunk = ids[i : i + HISTORY_BATCH]
            body = self._call(
                api,
                "history",
                batch_read_input_simple_public_object_id={
                    "properties": [],
                    "propertiesWithHistory": names,
                    "inputs": [{"id": c} for c in chunk],
                },
                archived=False,
            )
            for res in body.get("results", []):
                rec = by_id.get(str(res.get("id")))
                if rec is None:
                    continue
                props = rec.setdefault("properties", {})
                times = _value_times(props, res.get("propertiesWithHistory") or {})
                if times:
                    props["propertiesWithHistory"] = times

    def _rows(
        self, obj: str, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self._check_present(obj, records)
        if records and (names := self.history_properties(obj)):
            self._attach_history(obj, records, names)
        if obj == "companies":
            return [map_company(r) for r in records], []
        ids = [str(r["id"]) for r in records]
        assoc, primary = self.associations(ids)
        # a contact labelled primary at two companies (HubSpot allows it for a moment): the one
        # its associatedcompanyid names
        both: dict[str, set[str]] = {}
        for a in assoc:
            if a["kind"] == "primary":
                both.setdefault(a["from_id"], set()).add(a["to_id"])
        out = []
        for r in records:
            rid = str(r["id"])
            named = str((r.get("properties") or {}).get("associatedcompanyid") or "")
            company = named if named in both.get(rid, ()) else primary.get(rid)
            out.append(map_contact(r, company))
        return out, assoc

    def _check_present(self, obj: str, records: list[dict[str, Any]]) -> None:
        """HubSpot answers every requested property that exists (null when blank) and leaves
        out one that does not: a configured property absent from every record of a page was
        deleted since the schema was read (a stored schema, younger than
        ``schema_refresh_hours``). Raised as missing: the pull reads the schema again."""
        if not records:
            return
        gone = [
            p
            for p in self.configured.get(obj, ())
            if p in self.properties.get(obj, ())
            and not any(p in (r.get("properties") or {}) for r in records)
        ]
        if not gone:
            return
        what = (
            f"hubspot {obj}: configured propert{'y' if len(gone) == 1 else 'ies'} {', '.join(gone)}"
        )
        if self.schema_read.get(obj):
            # listed by the properties read this run, left out of the records: not deleted, but
            # not readable by the private app (HubSpot leaves out sensitive data without its scope)
            raise MissingField(
                f"{what} listed by HubSpot but left out of its records: the private app may not "
                "read it",
                hint=f"give the app the scope to read it (sensitive data: "
                f"crm.objects.{obj}.sensitive.read.v2; highly sensitive: "
                f"crm.objects.{obj}.highly_sensitive.read.v2), or drop it from {_NAMED_IN}",
            )
        raise MissingField(
            f"{what} not in HubSpot's answer (deleted since its schema was read?)",
            hint=f"fix {_NAMED_IN}, or create the property in HubSpot again",
        )

    def associations(self, contact_ids: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Contact → company associations (v4 batch read, 100 ids a call) and primary companies."""
        rows: list[dict[str, Any]] = []
        primary: dict[str, str] = {}
        api = self.client.crm.associations.v4.batch_api.get_page
        for i in range(0, len(contact_ids), ASSOC_BATCH):
            chunk = contact_ids[i : i + ASSOC_BATCH]
            body = self._call(
                api,
                "associations",
                from_object_type="contacts",
                to_object_type="companies",
                batch_input_public_fetch_associations_batch_request={
                    "inputs": [{"id": c} for c in chunk]
                },
            )
            for res in body.get("results", []):
                cid = str((res.get("from") or {}).get("id"))
                for to in res.get("to", []):
                    coid = str(to.get("toObjectId"))
                    type_ids = {t.get("typeId") for t in to.get("associationTypes", [])}
                    is_primary = bool(type_ids & PRIMARY_TYPE_IDS)
                    rows.append(
                        {"source": "hubspot", "from_object": "contacts", "from_id": cid, "to_object": "companies",
                         "to_id": coid, "kind": "primary" if is_primary else "unlabeled"}
                    )  # fmt: skip
                    if is_primary or cid not in primary:
                        primary[cid] = coid if is_primary or cid not in primary else primary[cid]
        return rows, primary

    def pull(
        self,
        obj: str,
        cursor: Cursor,
        *,
        full: bool = False,
        sample: int | None = None,
        schema: list[dict[str, Any]] | None = None,
        schema_since: Any = None,
        stored: Callable[[list[str]], dict[str, str | None]] | None = None,
    ) -> Iterator[Page]:
        """Pages of ``obj``: a list pull when there is no cursor (or ``full``), else a search pull.

        The cursor of each page is committed with its rows. Afterwards, when due, the
        archived sweep runs. ``schema``: the stored properties, reused (no call) when
        resuming or while younger than ``[pull] schema_refresh_hours``. ``schema_since``:
        a stale stored schema (the properties endpoint has no conditional read: re-read).
        ``stored``: the stored modified times of records by id; records the lag margin reads
        again unchanged are left out of the page (no association reads for them).
        """
        now = datetime.now(UTC)
        fields = self.schema(obj, schema)
        # field times a two_way rule needs are read like a field: a rule added later backfills
        read = [*self.properties[obj], *(f"{p}:times" for p in self.history_properties(obj))]
        if fields_added(cursor, read, full=full, sample=sample):
            full = True  # a backfill: every record once, with the new fields (or field times)
        if (full or cursor.value is None) and "full" not in cursor.state:
            cursor.state["full"] = {"after": None, "started": iso_utc(now), "max": None, "ids": []}
            cursor.state.pop("search", None)  # an unfinished tie split belongs to the old cursor
            if sample is None:
                # one search of one record tells the total: the progress bar's ETA
                body = self._call(
                    self._api(obj).search_api.do_search,
                    "count",
                    public_object_search_request={"limit": 1},
                )
                cursor.state["full"]["total"] = body.get("total")
        # committed with the schema: a resumed run knows a full pull is under way
        yield Page(object=obj, schema=fields, cursor=cursor.copy(), schema_fetched=schema is None)
        # a list pull reads every record unfiltered: what left the scope is seen (and marked)
        first = "full" in cursor.state
        if "full" in cursor.state:
            yield from self._list_pull(obj, cursor, sample)
        else:
            yield from self._search_pull(obj, cursor, sample, stored=stored)
        if sample is None:
            yield from self._archived_sweep(obj, cursor, now, force=first)
            if scope_filters(self.cfg, "hubspot", obj) or "scope" in cursor.state:
                yield from self._scope_sweep(obj, cursor, now, first)

    def _scope_of(self, obj: str, searched: int = 1) -> list[list[dict[str, Any]]]:
        """The scoping filter groups pushed into searches of ``searched`` filter groups of
        their own (see recon.sources.scope): every pair of a search's group and a scope's
        group is one filter group. When that is more than a search takes, only the filters
        common to every scope group are pushed; the rest stays recon's."""
        groups = hubspot_scope_groups(
            scope_filters(self.cfg, "hubspot", obj),
            set(self.properties[obj]),
            max_groups=MAX_FILTER_GROUPS // searched,
        )
        return groups if all(len(g) <= MAX_SCOPE_FILTERS for g in groups) else []

    def _scope_sweep(self, obj: str, cursor: Cursor, now: datetime, first: bool) -> Iterator[Page]:
        """Re-read, unfiltered, what changed since the last scope sweep (see recon.sources.scope)."""
        before = (cursor.state.get("scope"), cursor.state.get("scope_sweep"))
        due, since = scope_sweep_plan(
            self.cfg, "hubspot", obj, cursor, now, first=first, pushed=bool(self._scope_of(obj))
        )
        if due:
            # as far back as the main cursor stays behind: an edit search indexed late
            margin = max(60.0, self.cfg.pull.hubspot_index_delay_seconds)
            start = _shift(since, -margin) if since else "1970-01-01T00:00:00.000Z"
            scratch = Cursor("hubspot", obj, cursor.field, start)
            self._scoped = False
            try:
                yield from self._search_pull(obj, scratch, None, commit=False)
            finally:
                self._scoped = True
        scope_sweep_done(self.cfg, "hubspot", obj, cursor)
        if before != (cursor.state.get("scope"), cursor.state.get("scope_sweep")):
            yield Page(object=obj, cursor=cursor.copy(), counts=False)

    def _list_pull(self, obj: str, cursor: Cursor, sample: int | None) -> Iterator[Page]:
        state = cursor.state["full"]
        api = self._api(obj).basic_api.get_page
        got = 0
        while True:
            limit = LIST_PAGE if sample is None else max(1, min(LIST_PAGE, sample - got))
            kwargs: dict[str, Any] = {
                "limit": limit,
                "properties": self.properties[obj],
                "archived": False,
            }
            if state.get("after"):
                kwargs["after"] = state["after"]
            # a list page is only worth its call with its associations and field times
            extra = self._page_extra(obj, limit)
            if extra:
                self.meter.reserve(1 + extra)
            body = self._call(api, "list", **kwargs)
            records = body.get("results", [])
            rows, assoc = self._rows(obj, records)
            got += len(records)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            for row in rows:
                m = row["modified_at"]
                if m is None:
                    continue
                if state["max"] is None or m > state["max"]:
                    state["max"], state["ids"] = m, [row["record_id"]]
                elif m == state["max"]:
                    state["ids"].append(row["record_id"])
            done = not after or (sample is not None and got >= sample)
            state["after"] = after
            if done and after is None:
                # finished: the next incremental starts at the earlier of the newest record seen
                # and the moment the full pull started (records changed meanwhile are re-read)
                started, high = state["started"], state["max"]
                cursor.state.pop("full")
                if high is not None and high <= started:
                    cursor.value, cursor.ids_at_value = high, list(state["ids"])
                else:
                    cursor.value, cursor.ids_at_value = started, []
                cursor.state.setdefault("last_sweep", started)
            yield Page(
                object=obj,
                rows=rows,
                cursor=cursor.copy(),
                fetched=len(records),
                associations=assoc,
                assoc_from=("contacts", [r["record_id"] for r in rows])
                if obj == "contacts"
                else None,
                total=state.get("total"),
            )
            if done:
                return

    def _search_body(
        self,
        obj: str,
        filters: list[dict[str, Any]] | list[list[dict[str, Any]]],
        sort: str,
        limit: int,
    ) -> dict[str, Any]:
        groups = filters if filters and isinstance(filters[0], list) else [filters]
        scope = self._scope_of(obj, len(groups)) if self._scoped else []
        if scope:
            # out-of-scope records are not fetched at all (recon's own filter stays the
            # backstop): each of the search's groups with each of the scope's (OR of ANDs)
            groups = [[*g, *s] for g in groups for s in scope]  # type: ignore[list-item]
        return {
            "filterGroups": [{"filters": g} for g in groups],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": self.properties[obj],
            "limit": limit,
            "after": "0",
        }

    def _search_pull(
        self,
        obj: str,
        cursor: Cursor,
        sample: int | None,
        *,
        commit: bool = True,
        stored: Callable[[list[str]], dict[str, str | None]] | None = None,
    ) -> Iterator[Page]:
        """Keyset search: (anchor value, ids read at it, mode normal | tie | gt), one call a page."""
        field = CURSOR_FIELDS[obj]
        api = self._api(obj).search_api.do_search
        assert cursor.value is not None
        mode: dict[str, Any] = dict(cursor.state.get("search") or {"mode": "normal"})
        anchor: str = cursor.value
        floor: tuple[str, list[str]] = (anchor, list(cursor.ids_at_value))  # never commit below
        seen: set[str] = set(cursor.ids_at_value)
        lag = self.cfg.pull.lag_seconds or 0.0  # default 0: HubSpot stamps carry milliseconds
        if lag > 0 and mode["mode"] == "normal":
            # dlt-style lag: re-read a margin before the cursor (unchanged rows are dropped)
            anchor = _shift(anchor, -lag)
            seen = set()
        # a change is found by search only once indexed: the committed cursor stays this far
        # behind the start of this search, so the next one reads that window again
        delay = self.cfg.pull.hubspot_index_delay_seconds
        indexed = iso_utc(datetime.now(UTC) - timedelta(seconds=delay)) or floor[0]
        got = 0
        while True:
            limit = SEARCH_PAGE if sample is None else max(1, min(SEARCH_PAGE, sample - got))
            filters: list[dict[str, Any]]
            if mode["mode"] == "tie":
                filters = [
                    {"propertyName": field, "operator": "EQ", "value": _ms(anchor)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": str(mode["after"])},
                ]
                request = self._search_body(obj, filters, "hs_object_id", limit)
            else:
                op = "GT" if mode["mode"] == "gt" else "GTE"
                filters = [{"propertyName": field, "operator": op, "value": _ms(anchor)}]
                request = self._search_body(obj, filters, field, limit)
                if op == "GTE" and 0 < len(seen) <= MAX_IN_VALUES:
                    # (> anchor) OR (= anchor AND not an id already read at it): every page
                    # brings only new records (and contacts' association reads stay full)
                    stamp = _ms(anchor)
                    groups: list[list[dict[str, Any]]] = [
                        [{"propertyName": field, "operator": "GT", "value": stamp}],
                        [{"propertyName": field, "operator": "EQ", "value": stamp},
                         {"propertyName": "hs_object_id", "operator": "NOT_IN",
                          "values": sorted(seen, key=_id_key)}],
                    ]  # fmt: skip
                    request = self._search_body(obj, groups, field, limit)
            # a page is only worth its search with its associations and field times: not
            # started when the budget cannot finish it (its records would be read again)
            extra = self._page_extra(obj, limit)
            if extra:
                self.meter.reserve(1 + extra)
            body = self._call(api, "search", public_object_search_request=request)
            results = body.get("results", [])
            has_next = bool(((body.get("paging") or {}).get("next") or {}).get("after"))
            stamped = [
                (
                    rec,
                    str(rec["id"]),
                    iso_utc((rec.get("properties") or {}).get(field) or rec.get("updatedAt")),
                )
                for rec in results
            ]
            fresh = [t for t in stamped if not (t[2] == anchor and t[1] in seen)]
            left_tie = False
            if mode["mode"] == "tie":
                if results:
                    mode["after"] = max(int(rid) for _, rid, _ in stamped)
                if not has_next:
                    mode, seen, left_tie = {"mode": "gt"}, set(), True
            else:
                for _, rid, m in fresh:
                    if m is None:
                        continue
                    if m > anchor:
                        anchor, seen = m, {rid}
                        mode = {"mode": "normal"}
                    elif m == anchor:
                        seen.add(rid)
                stamps = {m for _, _, m in stamped}
                if has_next and len(results) >= limit and len(stamps) == 1 and anchor in stamps:
                    # a whole page at one instant: split that instant by hs_object_id ranges
                    mode = {"mode": "tie", "after": 0}
            news = fresh
            if stored is not None and fresh:
                # read before and unchanged (a window or margin read again): not news
                known = stored([rid for _, rid, _ in fresh])
                news = [t for t in fresh if t[1] not in known or known[t[1]] != t[2]]
            rows, assoc = self._rows(obj, [rec for rec, _, _ in news])
            got += len(fresh)
            below = anchor < floor[0] and mode["mode"] == "normal"
            if sample is None and below:
                # a lag re-read below the stored cursor: keep the stored cursor
                cursor.value, cursor.ids_at_value = floor[0], list(floor[1])
            elif sample is None and anchor > max(indexed, floor[0]):
                # not past what search has surely indexed (nor back below the stored cursor),
                # whatever the mode: an instant split by ids is read again from there if the
                # run stops (records read again unchanged are dropped)
                if indexed > floor[0]:
                    cursor.value, cursor.ids_at_value = indexed, []
                else:
                    cursor.value, cursor.ids_at_value = floor[0], list(floor[1])
                cursor.state.pop("search", None)
            elif sample is None:
                cursor.value = anchor
                cursor.ids_at_value = sorted(seen) if mode["mode"] != "gt" else []
                if mode["mode"] == "normal":
                    cursor.state.pop("search", None)
                else:
                    cursor.state["search"] = dict(mode)
            yield Page(
                object=obj,
                rows=rows,
                cursor=cursor.copy() if sample is None and commit else None,
                fetched=len(news),
                associations=assoc,
                assoc_from=("contacts", [r["record_id"] for r in rows])
                if obj == "contacts"
                else None,
                total=body.get("total"),
                counts=commit,
            )
            if sample is not None and got >= sample:
                return
            if not has_next and not left_tie:
                return

    def _archived_sweep(
        self, obj: str, cursor: Cursor, now: datetime, *, force: bool = False
    ) -> Iterator[Page]:
        """Archived records, every ``[pull] archived_sweep_hours`` and on every full pull
        (a full re-read asks for the whole truth: what was archived since is marked too)."""
        hours = self.cfg.pull.archived_sweep_hours
        last = parse_ts(cursor.state.get("last_sweep"))
        sweep = cursor.state.get("sweep")
        due = force or last is None or now - last >= timedelta(hours=hours)
        if sweep is None and not due:
            return
        if sweep is None:
            sweep = {"after": None, "started": iso_utc(now)}
            cursor.state["sweep"] = sweep
        api = self._api(obj).basic_api.get_page
        while True:
            kwargs: dict[str, Any] = {
                "limit": LIST_PAGE,
                "properties": self.properties[obj],
                "archived": True,
            }
            if sweep.get("after"):
                kwargs["after"] = sweep["after"]
            body = self._call(api, "archived", **kwargs)
            records = body.get("results", [])
            for r in records:
                r["archived"] = True
            rows = [map_company(r) if obj == "companies" else map_contact(r) for r in records]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            sweep["after"] = after
            if not after:
                cursor.state.pop("sweep", None)
                cursor.state["last_sweep"] = sweep["started"]
            yield Page(object=obj, rows=rows, cursor=cursor.copy(), fetched=len(records))
            if not after:
                return
