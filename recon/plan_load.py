"""Read what a plan needs from the store: records, pairs, clusters, owners, schemas, sync times.

Everything is read once into plain Python structures so the plan itself is a
pure computation (:mod:`recon.plan_build`); a record's raw fields stay JSON text
until they are used (:attr:`Rec.fields` decodes them).
"""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlite_utils

from .apply_items import norm
from .models import REFUSING_LABELS, SF_ID_PREFIXES, parse_ts, stable_id
from .plan import APPROVED_LABELS, REJECTED_LABELS, field_choices, latest_decisions
from .plan_values import value_key
from .review_detail import CLUSTER_ANSWERS
from .sources.crm import iso_utc
from .store import UNDO_PLAN

__all__ = [
    "DECISION_KINDS_READ",
    "Rec",
    "StoreView",
    "decisions_mark",
    "fields_of",
    "load_view",
    "time_bound",
]


class Rec:
    """One snapshot row: canonical columns plus its raw fields, decoded on demand.

    ``fields`` decodes the stored JSON (``data``) on every access and keeps nothing:
    holding 800k decoded records costs ~1 GB of small objects that must be faulted in,
    walked and freed, while a record decoded when it is used is hot in the cache and its
    memory is reused for the next one. Code that reads several fields of one record
    takes ``fields`` once.
    """

    __slots__ = (
        "account_id",
        "archived",
        "created_at",
        "data",
        "domain",
        "email",
        "from_file",
        "modified_at",
        "name",
        "object",
        "record_id",
        "source",
    )

    def __init__(self, source: str, row: tuple[Any, ...]) -> None:
        (
            self.object,
            self.record_id,
            self.name,
            self.domain,
            self.email,
            self.account_id,
            self.created_at,
            self.modified_at,
            archived,
            self.data,
        ) = row
        self.source = source
        self.archived = bool(archived)
        self.from_file = False  # loaded from an export file: a field it lacks is unknown

    @property
    def fields(self) -> dict[str, Any]:
        """The raw fields (HubSpot's ``properties`` when the JSON wraps them), freshly decoded."""
        data = self.data
        return fields_of(_loads(data) if data else {})

    @property
    def snapshot_time(self) -> str | None:
        """The time apply checks the record against (changed after it: stale).

        A record from an export file is dated only as finely as the file wrote its times:
        HubSpot's export and most reports stop at the minute (``20:23``), the CRM at the
        millisecond (``20:23:42.984``). Its time is then the end of that minute (or second):
        the record itself was not changed since just because the CRM's time has digits the
        file left out (:func:`time_bound`)."""
        return time_bound(self.modified_at) if self.from_file else self.modified_at

    @property
    def history(self) -> dict[str, Any] | None:
        """HubSpot property history (``propertiesWithHistory``), or None."""
        return _fields(self.data)[1]

    def field_time(self, name: str) -> datetime | None:
        """Field-level modification time (HubSpot property history), else None.

        Only entries holding the field's current value count: a time read with another value
        (the field changed since by a file load) says nothing of the value there now."""
        if not self.history:
            return None
        entries = self.history.get(name)
        if not isinstance(entries, list):
            return None
        current = self.fields.get(name) or ""
        times = []
        for e in entries:
            if isinstance(e, dict) and e.get("timestamp") and (e.get("value") or "") == current:
                try:
                    t = parse_ts(str(e["timestamp"]))
                except ValueError:
                    continue
                if t is not None:
                    times.append(t)
        return max(times) if times else None

    def record_time(self) -> datetime | None:
        """Record-level modification time."""
        try:
            return parse_ts(self.modified_at) if self.modified_at else None
        except ValueError:
            return None


_loads = orjson.loads


def fields_of(decoded: Any) -> dict[str, Any]:
    """A snapshot's raw fields from its decoded ``data``: HubSpot's ``properties`` when the
    JSON wraps them, else the object itself ({} for anything but an object).

    Examples:
        >>> fields_of({"id": "7", "properties": {"name": "Acme"}}), fields_of({"Name": "Acme"}), fields_of("x")
        ({'name': 'Acme'}, {'Name': 'Acme'}, {})
    """
    if not isinstance(decoded, dict):
        return {}
    props = decoded.get("properties")
    return props if isinstance(props, dict) else decoded


def _fields(data: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(fields, history)`` of a stored ``data`` JSON."""
    d = orjson.loads(data) if data else {}
    if not isinstance(d, dict):
        d = {}
    props = d.get("properties")
    fields = props if isinstance(props, dict) else d
    hist = d.get("propertiesWithHistory") or fields.get("propertiesWithHistory")
    return fields, hist if isinstance(hist, dict) else None


#: how long after recon's confirmed write a record's modification time may be that write's
#: (the CRM's clock against this machine's, and a CRM's own follow-up updates)
OWN_WRITE_WINDOW = timedelta(seconds=120)

#: journal actions that write fields of an existing record (HubSpot associations change none)
_FIELD_WRITES = {("hubspot", "update"), ("hubspot", "owner"), ("salesforce", "update"),
                 ("salesforce", "owner"), ("salesforce", "associate")}  # fmt: skip


@dataclass(frozen=True)
class ReconWrite:
    """recon's last confirmed write to a record (one apply run's items on it).

    Attributes:
        confirmed: when the apply confirmed it (this machine's clock).
        before: the record's modification time the plan saw before the write.
        written: the fields written, with the values recon wrote.
    """

    confirmed: datetime
    before: datetime | None
    written: dict[str, Any]


def recon_writes(conn: Any) -> Callable[[str, str, str], ReconWrite | None]:
    """A lookup of :class:`ReconWrite` by ``(system, object, record id)`` in the journal
    (through its index on ``crm_record_id``; asked only for the records a ``two_way`` rule
    compares, and remembered)."""
    seen: dict[tuple[str, str, str], ReconWrite | None] = {}

    def lookup(system: str, obj: str, record_id: str) -> ReconWrite | None:
        key = (system, obj, record_id)
        if key in seen:
            return seen[key]
        latest: str | None = None
        confirmed = before = None
        written: dict[str, Any] = {}
        for run_id, at, raw in conn.execute(
            "select run_id, updated_at, item from journal where crm_record_id = ? "
            "and state = 'confirmed' and item is not null order by updated_at desc limit 500",
            [record_id],
        ):
            item = json.loads(raw)
            if item.get("system") != system or item.get("object") != obj:
                continue
            if (system, item.get("action")) not in _FIELD_WRITES:
                continue
            if latest is None:
                latest, confirmed = run_id, parse_ts(at)
            elif run_id != latest:
                break
            try:
                snap = parse_ts(item.get("snapshot"))
            except ValueError:
                snap = None
            before = snap if before is None or (snap is not None and snap < before) else before
            payload = item.get("payload") or {}
            for f, v in (payload.get("properties") or payload.get("fields") or {}).items():
                written.setdefault(f, v)
        found = ReconWrite(confirmed, before, written) if confirmed is not None else None
        seen[key] = found
        return found

    return lookup


@dataclass
class StoreView:
    """Everything a plan reads, as plain data.

    Attributes:
        records: ``{(source, object): {record_id: Rec}}``.
        links: the match run's HubSpot ⇄ Salesforce link pairs (auto and review tiers), as
            ``{pair_id, object, hs_id, sf_id, sf_object, score, tier}``.
        clusters: ``{cluster_id: {"tier", "score", "members": [(source, object, record_id)]}}``.
        owners: ``(source, owner_id, email)`` rows.
        hs_company_of: HubSpot contact id -> company ids it is associated with.
        last_synced: link item id -> time of the last confirmed apply of one of its items.
        campaigns: Salesforce Lead/Contact id -> campaign names (CampaignMember snapshots).
        schemas: ``{(source, object): fields}`` as stored.
        rejected: how many links and clusters were left out because their current decision
            rejects them (``non_match``, a split): ``{"links": n, "clusters": n}``.
        pinned, approved_elsewhere: approved links this match run no longer proposes, kept
            or (an end linked elsewhere now) left out (:func:`pin_approved_links`).
        held: ``(source, record_id)`` of records a split kept together with another (one
            entity: never created on the other side as two records).
        incomplete: ``(source, object)`` pulled only in part so far (a ``--sample`` pull, a
            pull that stopped) and never whole: what the store lacks of them may exist in the
            CRM, so nothing is created there on the strength of its absence.
        asked: ids of the conflicts earlier plans asked (a question stays asked while its
            values stand, even when times would now settle it).
        recon_write: looks up recon's last write to a record (see :meth:`user_time`).
        created: ``(source, object, record id)`` of records an apply created a copy of.
        undone: ``(system, object, record id, field)`` -> the values an applied undo took
            out of that field (as :func:`~recon.plan_values.value_key`) and the apply run that undid them: a plan
            proposing one of them again asks a person (:func:`recon.plan_build.hold_undone`).
    """

    records: dict[tuple[str, str], dict[str, Rec]]
    links: list[dict[str, Any]] = field(default_factory=list)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: list[tuple[str, str, str | None, Any]] = field(default_factory=list)  # + active
    hs_company_of: dict[str, set[str]] = field(default_factory=dict)
    last_synced: dict[str, datetime] = field(default_factory=dict)
    campaigns: dict[str, list[str]] = field(default_factory=dict)
    schemas: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    masters: dict[str, Any] = field(default_factory=dict)
    field_choices: dict[str, Any] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    #: pair ids of approved links this match run no longer proposes, kept
    #: (:func:`pin_approved_links`)
    pinned: list[str] = field(default_factory=list)
    #: approved links left out: this match run links one of their records elsewhere
    approved_elsewhere: int = 0
    elsewhere_examples: list[str] = field(default_factory=list)
    held: set[tuple[str, str]] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)
    incomplete: set[tuple[str, str]] = field(default_factory=set)
    never_read: set[tuple[str, str]] = field(default_factory=set)
    undone: dict[tuple[str, str, str, str], dict[str, str]] = field(default_factory=dict)
    #: writes a reviewer dropped when apply found them stale: the same keys as ``undone``,
    #: the value -> who dropped it (:func:`_dropped`)
    dropped: dict[tuple[str, str, str, str], dict[str, str]] = field(default_factory=dict)
    created: set[tuple[str, str, str]] = field(default_factory=set)
    recon_write: Callable[[str, str, str], ReconWrite | None] | None = None

    def user_time(self, rec: Rec) -> datetime | None:
        """When a person (or another system) last changed ``rec``: its modification time,
        unless that time is recon's own last write to it.

        A record recon wrote keeps the modification time of that write, which says nothing
        of the values people keep there: a ``two_way`` field whose record recon wrote
        (another field of it) would look newer than the other side's later edit. When the
        record has not changed since (its time is within :data:`OWN_WRITE_WINDOW` of the
        write's confirmation and every field recon wrote still holds recon's value), the
        time the record had before recon wrote it is used instead. A person's edit of another
        field right after recon's write looks the same: the planner asks a person whenever
        the two times would decide differently (``own_write_unclear``).
        """
        t = rec.record_time()
        if t is None or self.recon_write is None:
            return t
        own = self.recon_write(rec.source, rec.object, rec.record_id)
        if own is None or own.before is None or own.before >= t:
            return t
        if t > own.confirmed + OWN_WRITE_WINDOW:
            return t  # changed after recon's write
        fields = rec.fields
        if any(norm(fields.get(f)) != norm(v) for f, v in own.written.items()):
            return t  # a field recon wrote holds another value now: someone changed it
        return own.before

    def rec(self, source: str, obj: str | None, record_id: str) -> Rec | None:
        """A record by id (``obj`` may be None for a Salesforce id: its prefix names it)."""
        if obj is None and source == "salesforce":
            obj = SF_ID_PREFIXES.get(str(record_id)[:3])
        if obj is None:
            for (s, _o), recs in self.records.items():
                if s == source and record_id in recs:
                    return recs[record_id]
            return None
        return self.records.get((source, obj), {}).get(record_id)


_SNAP_COLS = "record_id, name, domain, email, account_id, created_at, modified_at, archived, data"
_OBJECTS = (
    ("hubspot", "companies"),
    ("hubspot", "contacts"),
    ("salesforce", "Account"),
    ("salesforce", "Contact"),
    ("salesforce", "Lead"),
)
_MMAP_BYTES = 1 << 31  # at most what SQLite maps by default (2 GiB)
_HS_CONTACTS = _OBJECTS.index(("hubspot", "contacts"))
_BUCKET = (
    "case "
    + " ".join(
        f"when source = '{s}' and object = '{o}' then {i}" for i, (s, o) in enumerate(_OBJECTS)
    )
    + " end"
)


#: the decision kinds a plan reads when it is built (everything else is read when applying)
DECISION_KINDS_READ = ("master", "conflict_value")


def decisions_mark(db: sqlite_utils.Database) -> tuple[int, int, int]:
    """A mark that changes whenever the decisions a plan reads change: how many there are,
    the newest id, how many are superseded (kinds :data:`DECISION_KINDS_READ`).

    Two plans built from one match run, the same snapshots and the same mark are the same
    plan; `recon run` uses it to skip planning again when its policy decided nothing a
    plan reads.

    Examples:
        >>> from recon.store import open_store
        >>> decisions_mark(open_store(":memory:"))
        (0, 0, 0)
    """
    marks = ",".join("?" * len(DECISION_KINDS_READ))
    n, newest, superseded = db.execute(
        "select count(*), coalesce(max(decision_id), 0), coalesce(sum(superseded), 0) "
        f"from decisions where kind in ({marks})",
        DECISION_KINDS_READ,
    ).fetchone()
    return int(n), int(newest), int(superseded)


def load_view(
    db: sqlite_utils.Database, match_run_id: str, *, campaigns: bool = False
) -> StoreView:
    """Read the records, the match run's links and clusters, owners and sync times."""
    conn = db.conn
    records: dict[tuple[str, str], dict[str, Rec]] = {key: {} for key in _OBJECTS}
    companies: dict[str, set[str]] = defaultdict(set)  # HubSpot contact -> company ids
    # one sequential scan (NOT INDEXED: walking the (source, object) index reads the table
    # pages in random order); the cycle collector is paused while ~1M objects are made
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        # every record shares its bucket's source and object strings (the scan names the
        # bucket by number: no two strings made and dropped per row), and equal timestamps
        # share one string (less memory: fewer page faults, fewer cache misses later)
        buckets = [(records[key], key[0], key[1]) for key in _OBJECTS]
        shared: dict[Any, Any] = {None: None}
        share = shared.setdefault
        new = Rec.__new__
        for row in conn.execute(
            f"select {_BUCKET}, {_SNAP_COLS}, origin like 'file:%' from snapshots not indexed "
            f"where {_BUCKET} is not null"
        ):
            # Rec.__init__ inlined (a call per record is measurable at 800k records)
            bucket, source, obj = buckets[row[0]]
            rec = new(Rec)
            (
                code,
                rid,
                rec.name,
                rec.domain,
                rec.email,
                account,
                created,
                modified,
                archived,
                rec.data,
                from_file,
            ) = row
            rec.from_file = from_file == 1
            rec.account_id = account
            if code == _HS_CONTACTS and account:  # a HubSpot contact's primary company
                companies[rid].add(str(account))
            rec.source, rec.object, rec.record_id = source, obj, rid
            rec.created_at = share(created, created)
            rec.modified_at = share(modified, modified)
            rec.archived = bool(archived)
            bucket[rid] = rec
    finally:
        if gc_was_enabled:
            gc.enable()
    view = StoreView(records=records)
    # links come out with their HubSpot and Salesforce ends already told apart (fewer
    # columns to fetch, one dict per link instead of two); in pair id order the pair rows
    # are read at random, so the file is memory-mapped meanwhile (no read call per page)
    mmap_was = conn.execute("pragma mmap_size").fetchone()  # None: an in-memory store
    if mmap_was is not None:
        conn.execute(f"pragma mmap_size = {_MMAP_BYTES}")
    try:
        view.links = _links(conn, match_run_id)
    finally:
        if mmap_was is not None:
            conn.execute(f"pragma mmap_size = {int(mmap_was[0])}")
    for cid, obj, source, robj, rid, score, tier in conn.execute(
        "select cluster_id, object, source, record_object, record_id, score, tier from clusters "
        "where run_id = ? and tier in ('auto', 'review') order by cluster_id, record_id",
        [match_run_id],
    ):
        c = view.clusters.setdefault(
            cid, {"object": obj, "tier": tier, "score": score, "members": []}
        )
        c["members"].append((source, robj, rid))
    # a link or cluster a reviewer rejected (non_match, or a split) is no plan's business:
    # its records are unmatched again (creates may take them), nothing is merged
    answers = latest_decisions(db, kinds=["link", *CLUSTER_ANSWERS])
    rejected = {iid for iid, d in answers.items() if d.get("label") in REJECTED_LABELS}
    if rejected:
        kept = [link for link in view.links if link["pair_id"] not in rejected]
        view.rejected["links"] = len(view.links) - len(kept)
        view.links = kept
        gone = [cid for cid in view.clusters if cid in rejected]
        for cid in gone:
            cluster = view.clusters.pop(cid)
            # a split's groups of two or more are still one entity each: held out of creates
            # (never copied twice into the other CRM); its single records are free
            choice = answers[cid].get("choice")
            groups = choice.get("groups") if isinstance(choice, dict) else None
            if answers[cid].get("kind") == "split" and isinstance(groups, list):
                sources = {str(r): s for s, _o, r in cluster["members"]}
                for group in groups:
                    ids = [str(m.get("record_id") if isinstance(m, dict) else m) for m in group]
                    if len(ids) > 1:
                        view.held.update((sources.get(r, ""), r) for r in ids)
        view.rejected["clusters"] = len(gone)
    pin_approved_links(view, answers)
    # a duplicate cluster of an earlier match run that no one rejected still says its records
    # may be one entity (weights are fitted again each run: a pair near a threshold can drop
    # out): they are held out of creates, as the current run's clusters are
    current = {(s, str(r)) for c in view.clusters.values() for s, _o, r in c["members"]}
    for cid, source, rid in conn.execute(
        "select c.cluster_id, c.source, c.record_id from clusters c join runs r "
        "on r.run_id = c.run_id where c.run_id != ? and r.stage = 'match' and r.status = 'ok' "
        "and c.tier in ('auto', 'review') and c.run_id in (select run_id from runs "
        "where stage = 'match' and status = 'ok' order by started_at desc limit 4)",
        [match_run_id],
    ):
        if cid not in rejected and (source, str(rid)) not in current:
            view.held.add((source, str(rid)))
    view.owners = [
        (s, str(o), e, a)
        for s, o, e, a in conn.execute("select source, owner_id, email, active from owners")
    ]
    for fid, tid in conn.execute(
        "select from_id, to_id from associations where source = 'hubspot' and from_object = 'contacts' "
        "and to_object = 'companies'"
    ):
        companies[str(fid)].add(str(tid))
    for fid, tid in conn.execute(
        "select from_id, to_id from associations where source = 'hubspot' and from_object = 'companies' "
        "and to_object = 'contacts'"
    ):
        companies[str(tid)].add(str(fid))
    view.hs_company_of = dict(companies)
    view.last_synced = _last_synced(db)
    if "journal" in db.table_names():
        view.recon_write = recon_writes(conn)
        view.undone = _undone(conn)
        view.dropped = _dropped(db)
        view.created = {
            (str(a), str(o), str(b))
            for a, o, b in conn.execute(
                "select json_extract(item, '$.payload.source.system'), "
                "json_extract(item, '$.payload.source.object'), "
                "json_extract(item, '$.payload.source.record_id') from journal "
                "where state = 'confirmed' and json_extract(item, '$.action') = 'create'"
            )
            if a and b
        }
    touched, whole = _pulled_objects(conn)
    view.incomplete = touched - whole
    view.never_read = _never_read(conn, touched)
    view.asked = {
        r[0]
        for r in conn.execute("select distinct item_id from plan_items where action = 'conflict'")
    }
    if campaigns:
        view.campaigns = _campaigns(db)
    for item_id, d in latest_decisions(db, kinds=["master"]).items():
        if d.get("label") not in REFUSING_LABELS and d.get("choice") not in (
            None,
            "",
        ):
            view.masters[item_id] = d["choice"]
    view.field_choices = field_choices(db)
    for source, obj, fields in conn.execute("select source, object, fields from schemas"):
        try:
            view.schemas[(source, obj)] = json.loads(fields or "[]")
        except ValueError:
            continue
    return view


def _undone(conn: Any) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """The writes applied undos took back: ``(system, object, record id, field)`` ->
    ``{value_key of the value taken out: the apply run that restored the field}``."""
    out: dict[tuple[str, str, str, str], dict[str, str]] = {}
    rows = conn.execute(
        "select j.run_id, j.crm_record_id, j.item, (select json_extract(o.config, "
        "'$.plan_run_id') from runs u join runs o on o.run_id = json_extract(u.config, "
        "'$.undo_of') where u.run_id = json_extract(a.config, '$.plan_run_id')) "
        "from runs a join journal j on j.run_id = a.run_id "
        "where a.stage = 'apply' and (j.state = 'confirmed' or (j.state = 'skipped' and j.error "
        "like 'the field holds the value to restore%')) and json_extract(a.config, "
        f"'$.plan_run_id') in (select run_id from runs where stage = 'plan' and {UNDO_PLAN})"
    )
    origins: dict[str, list[tuple[str, str]]] = {}  # undone item -> (value, undo apply run)
    plans: dict[str, str] = {}  # undone item -> the plan it came from (a primary-key lookup)
    for run_id, crm_id, text, origin_plan in rows:
        try:
            item = json.loads(text or "{}")
        except ValueError:
            continue
        payload = item.get("payload") or {}
        expect = payload.get("expect")
        if not isinstance(expect, dict):
            continue
        rid = str(crm_id or item.get("record_id") or "")
        for fname, value in expect.items():
            key = (str(item.get("system")), str(item.get("object")), rid, str(fname))
            out.setdefault(key, {})[value_key(value)] = run_id
            if payload.get("undo_of") and origin_plan:
                origins.setdefault(str(payload["undo_of"]), []).append((value_key(value), run_id))
                plans[str(payload["undo_of"])] = str(origin_plan)
    # the same value per link and mapping ("link", pair, mapping, ""): a plan that would now
    # overwrite it on the other record of the link (the value a person set there, which the
    # undo took back from this side) asks a person too
    by_plan: dict[str, list[str]] = {}
    for item_id, plan in plans.items():
        by_plan.setdefault(plan, []).append(item_id)
    for plan, ids in by_plan.items():
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ",".join("?" * len(chunk))
            for item_id, pair, mapping in conn.execute(
                f"select item_id, link_item_id, json_extract(reason, '$.mapping') from plan_items "
                f"where run_id = ? and item_id in ({marks})",
                [plan, *chunk],
            ):
                if pair and mapping:
                    for value, run_id in origins.get(item_id, ()):
                        out.setdefault(("link", str(pair), str(mapping), ""), {})[value] = run_id
    return out


def _dropped(db: sqlite_utils.Database) -> dict[tuple[str, str, str, str], dict[str, str]]:
    """The stale writes a reviewer dropped (*Drop* on a stale write: a ``plan`` decision
    rejecting it): ``(system, object, record id, field)`` -> ``{value_key of the value the
    write would have put there: who dropped it}``. A later plan proposing that value
    for that field again asks a person (:func:`recon.plan_build.hold_undone`): else the
    next nightly run would write what the reviewer refused."""
    from .plan_build import written_values  # (plan_build reads this module)

    out: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for d in latest_decisions(db, kinds=["plan"]).values():
        choice = d.get("choice")
        if d.get("label") not in REJECTED_LABELS or not isinstance(choice, dict):
            continue
        stale_of = choice.get("stale_of")
        if not stale_of:
            continue
        row = db.execute(
            "select crm_record_id, item from journal where plan_run_id = ? and item_id = ? "
            "order by updated_at desc, rowid desc limit 1",
            [d.get("run_id"), stale_of],
        ).fetchone()
        if row is None:
            continue
        try:
            item = json.loads(row[1] or "{}")
        except ValueError:
            continue
        if item.get("action") not in ("update", "owner", "associate"):
            continue
        written = written_values(item)
        rid = str(row[0] or item.get("record_id") or "")
        who = str(d.get("reviewer") or d.get("decided_by") or "a reviewer")
        for fname, value in written.items():
            key = (str(item.get("system")), str(item.get("object")), rid, str(fname))
            out.setdefault(key, {})[value_key(value)] = who
    return out


def time_bound(ts: str | None) -> str | None:
    """The last instant a time written without its seconds (or without its fraction, or a
    date alone, read as midnight) stands for.

    Examples:
        >>> time_bound("2025-07-07T20:23:00.000Z"), time_bound("2025-07-07T20:23:42Z")
        ('2025-07-07T20:23:59.999Z', '2025-07-07T20:23:42.999Z')
        >>> time_bound("2025-07-07T00:00:00.000Z")
        '2025-07-07T23:59:59.999Z'
        >>> time_bound("2025-07-07T20:23:42.984Z"), time_bound(None)
        ('2025-07-07T20:23:42.984Z', None)
    """
    t = parse_ts(ts) if ts else None
    if t is None:
        return ts
    if t.microsecond:
        return ts
    if t.second:
        step = timedelta(seconds=1)
    elif t.hour or t.minute:
        step = timedelta(minutes=1)
    else:  # a "Last Modified Date" column of a report: the whole day
        step = timedelta(days=1)
    return iso_utc(t + step - timedelta(milliseconds=1))


def _pulled_objects(conn: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """``(touched, whole)``: the ``(source, object)`` pull runs counted records of, and those
    some run read whole. Touched but not whole: every run that covered it was a
    ``--sample``, or stopped (budget, error, killed). A finished pull without a sample, or a
    loaded export file, makes an object whole."""
    touched: set[tuple[str, str]] = set()
    whole: set[tuple[str, str]] = set()
    for status, config, summary in conn.execute(
        "select status, config, summary from runs where stage = 'pull'"
    ):
        try:
            cfg = json.loads(config or "{}") or {}
            done = json.loads(summary or "{}") or {}
            records = done.get("records") or {}
            if not isinstance(records, dict):  # a file loaded on its own run: a count
                objects = done.get("objects") or {}
                records = {f"{cfg.get('source')}:{o}": n for o, n in dict(objects).items()}
        except (TypeError, ValueError, AttributeError):
            continue
        keys = {tuple(str(k).split(":", 1)) for k in records if ":" in str(k)}
        touched |= keys  # type: ignore[arg-type]
        if status == "ok" and (cfg.get("sample") is None or cfg.get("file")):
            whole |= keys  # type: ignore[arg-type]
    return touched, whole


def _never_read(conn: Any, touched: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``(source, object)`` no pull or file ever read: no record, schema, cursor or pull count
    (``touched``, :func:`_pulled_objects`) of it in the store. Their records may well exist in
    the CRM: a create there could copy one (a HubSpot contact made a Lead while the store holds
    no Lead at all)."""
    seen = set(touched)
    for table in ("schemas", "cursors"):
        seen |= {(str(a), str(b)) for a, b in conn.execute(f"select distinct source, object from {table}")}  # fmt: skip
    # a record of it: one primary-key probe each (a distinct over 800k snapshots took 2 s)
    return {
        key
        for key in set(_OBJECTS) - seen
        if not conn.execute(
            "select 1 from snapshots where source = ? and object = ? limit 1", list(key)
        ).fetchone()
    }


def pin_approved_links(view: StoreView, answers: dict[str, dict[str, Any]]) -> None:
    """Keep the links a person approved that this match run no longer proposes, while both
    records live and neither end is taken by another link.

    Weights are fitted again each run and records change (a company renamed in one CRM): an
    approved pair can drop out of the candidates. Without it the plan would stop syncing
    the pair and offer to create a copy of each record in the other CRM. A person's
    approval stands until a person rejects it (the review queue lists pinned links, see
    :func:`recon.review_queue._index_pinned`); the policy's approvals do not (they follow the
    match run's tiers), but their records are held out of creates (``view.held``): a pair
    linked yesterday is not copied into the other CRM today. An end is taken as the matcher
    takes it: a Salesforce record is in one link, a HubSpot record in one link per
    Salesforce object (a contact may have a Contact and a Lead). An end this run links
    elsewhere, or a newer pinned approval took, is left to that link (counted:
    ``approved_elsewhere``). Pinned links have tier ``approved`` and no score.
    """
    have = {link["pair_id"] for link in view.links}
    taken: set[tuple[Any, ...]] = {
        ("hubspot", link["object"], link["sf_object"], link["hs_id"]) for link in view.links
    }
    taken |= {("salesforce", link["sf_id"]) for link in view.links}
    pinned: list[dict[str, Any]] = []
    elsewhere = 0
    newest_first = sorted(
        answers.items(), key=lambda kv: str(kv[1].get("decided_at") or ""), reverse=True
    )
    for iid, d in newest_first:
        if d.get("kind") != "link" or d.get("label") not in APPROVED_LABELS or iid in have:
            continue
        link = _approved_link(view, iid, d)
        if link is None:
            continue
        if d.get("decided_by") != "human":
            # the policy's approval follows the run's tiers: no sync, but its records were
            # one entity yesterday: not created in the other CRM on the strength of today
            view.held.update({("hubspot", link["hs_id"]), ("salesforce", link["sf_id"])})
            continue
        ends = (
            ("hubspot", link["object"], link["sf_object"], link["hs_id"]),
            ("salesforce", link["sf_id"]),
        )
        if any(end in taken for end in ends):
            elsewhere += 1  # its records stay out of creates too: one entity with the other
            view.held.update({("hubspot", link["hs_id"]), ("salesforce", link["sf_id"])})
            if len(view.elsewhere_examples) < 3:
                view.elsewhere_examples.append(
                    f"HubSpot {link['object']} {link['hs_id']} ⇄ {link['sf_object']} {link['sf_id']}"
                )
            continue
        taken.update(ends)
        pinned.append(link)
    if pinned:
        view.links = sorted([*view.links, *pinned], key=lambda link: link["pair_id"])
        view.pinned = sorted(link["pair_id"] for link in pinned)
    view.approved_elsewhere = elsewhere


def _approved_link(view: StoreView, pair_id: str, d: dict[str, Any]) -> dict[str, Any] | None:
    """The link an approval names, when both its records are in the store and live."""
    sides = {d.get("source_l"): d.get("record_id_l"), d.get("source_r"): d.get("record_id_r")}
    hs_id, sf_id, obj = sides.get("hubspot"), sides.get("salesforce"), d.get("object")
    if not hs_id or not sf_id or obj not in ("companies", "contacts"):
        return None
    hs_id, sf_id = str(hs_id), str(sf_id)
    sf_obj = (
        "Account"
        if obj == "companies"
        else d.get("salesforce_object") or SF_ID_PREFIXES.get(sf_id[:3])
    )
    hs = view.records.get(("hubspot", obj), {}).get(hs_id)
    sf = view.records.get(("salesforce", sf_obj), {}).get(sf_id) if sf_obj else None
    if hs is None or sf is None or hs.archived or sf.archived:
        return None  # gone: nothing to sync (and nothing to hold out of creates)
    return {"pair_id": pair_id, "object": obj, "hs_id": hs_id, "sf_id": sf_id,
            "sf_object": sf_obj, "score": None, "tier": "approved"}  # fmt: skip


def _links(conn: Any, match_run_id: str) -> list[dict[str, Any]]:
    """The match run's HubSpot ⇄ Salesforce links (auto and review tiers), by pair id."""
    links: list[dict[str, Any]] = []
    for pair_id, obj, hs_id, sf_id, sf_obj, score, tier in conn.execute(
        "select pair_id, object, "
        "case when source_l = 'hubspot' then record_id_l else record_id_r end, "
        "case when source_l = 'hubspot' then record_id_r else record_id_l end, "
        "case when source_l = 'hubspot' then object_r else object_l end, score, tier "
        "from pairs where run_id = ? and kind = 'link' and tier in ('auto', 'review') "
        "and ((source_l = 'hubspot' and source_r = 'salesforce') "
        "or (source_l = 'salesforce' and source_r = 'hubspot')) order by pair_id",
        [match_run_id],
    ):
        hs_id = hs_id if type(hs_id) is str else str(hs_id)
        sf_id = sf_id if type(sf_id) is str else str(sf_id)
        sf_obj = sf_obj or SF_ID_PREFIXES.get(sf_id[:3])
        if sf_obj is None and obj == "companies":
            sf_obj = "Account"
        links.append(
            {
                "pair_id": pair_id,
                "object": obj,
                "hs_id": hs_id,
                "sf_id": sf_id,
                "sf_object": sf_obj,
                "score": score,
                "tier": tier,
            }
        )
    return links


def _last_synced(db: sqlite_utils.Database) -> dict[str, datetime]:
    """Link item id -> time of the last confirmed apply of one of its plan items.

    Direct items join the journal on (plan run, item id); the update items an
    approved conflict expands into have ids ``stable_id(conflict_item_id, system)``
    and are joined through that derivation.
    """
    if "journal" not in db.table_names():
        return {}
    out: dict[str, datetime] = {}

    def note(link: str | None, at: str | None) -> None:
        try:
            ts = parse_ts(at) if at else None
        except ValueError:
            ts = None
        if link and ts and (link not in out or ts > out[link]):
            out[link] = ts

    for link, at in db.conn.execute(
        "select p.link_item_id, max(j.updated_at) from journal j join plan_items p "
        "on p.run_id = j.plan_run_id and p.item_id = j.item_id where j.state = 'confirmed' "
        "group by p.link_item_id"
    ):
        note(link, at)
    derived: dict[str, str] = {}
    for item_id, link in db.conn.execute(
        "select distinct item_id, link_item_id from plan_items where action = 'conflict'"
    ):
        for system in ("hubspot", "salesforce"):
            derived[stable_id(item_id, system)] = link
    if derived:
        for item_id, at in db.conn.execute(
            "select item_id, updated_at from journal where state = 'confirmed'"
        ):
            if item_id in derived:
                note(derived[item_id], at)
    return out


def _campaigns(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """Salesforce Lead/Contact id -> sorted campaign names, from CampaignMember snapshots."""
    names: dict[str, str] = {}
    for rid, name, data in db.conn.execute(
        "select record_id, name, data from snapshots where source = 'salesforce' and object = 'Campaign'"
    ):
        d = json.loads(data or "{}")
        names[rid] = str(name or d.get("Name") or rid)
    members: dict[str, set[str]] = defaultdict(set)
    for (data,) in db.conn.execute(
        "select data from snapshots where source = 'salesforce' and object = 'CampaignMember' "
        "and coalesce(archived, 0) = 0"
    ):
        d = json.loads(data or "{}")
        camp = d.get("CampaignId")
        if not camp:
            continue
        label = names.get(str(camp), str(camp))
        for key in ("LeadId", "ContactId"):
            if d.get(key):
                members[str(d[key])].add(label)
    return {k: sorted(v) for k, v in members.items()}
