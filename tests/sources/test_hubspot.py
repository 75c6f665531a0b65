"""The HubSpot source against the emulator, through the real ``hubspot-api-client``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from recon.config import ReconConfig, load_config
from recon.errors import AuthError, BudgetExhausted, MissingField
from recon.models import parse_ts
from recon.pull import load_cursor, run_pull
from recon.sandbox import SandboxServer, SandboxState
from recon.sandbox.hs_records import bulk_associate, bulk_load

NOW = int(time.time() * 1000) - 3_600_000


@pytest.fixture
def hs() -> Iterator[Any]:
    """A fresh, empty emulator with 250 companies and 230 contacts (3 contacts per timestamp)."""
    state = SandboxState(":memory:")
    companies = bulk_load(
        state,
        "companies",
        [{"name": f"Co {i}", "website": f"https://www.co{i}.com/", "salesforceaccountid": "001X" if i == 0 else None} for i in range(250)],
        timestamps=[(NOW, NOW + i * 1000) for i in range(250)],
    )  # fmt: skip
    contacts = bulk_load(
        state,
        "contacts",
        [{"firstname": f"F{i}", "lastname": "L", "email": f"p{i}@co{i}.com" if i != 7 else None} for i in range(230)],
        timestamps=[(NOW, NOW + (i // 3) * 1000) for i in range(230)],
    )  # fmt: skip
    bulk_associate(state, [(contacts[i], companies[i]) for i in range(230)])
    with SandboxServer(state) as server:
        server.companies, server.contacts = companies, contacts  # type: ignore[attr-defined]
        yield server


def _cfg(server: Any, **sections: Any) -> ReconConfig:
    overrides = {"hubspot": {"base_url": server.url, "access_token": "pat-na1-test"}, **sections}
    if "hubspot" in sections:
        overrides["hubspot"] = {
            "base_url": server.url,
            "access_token": "pat-na1-test",
            **sections["hubspot"],
        }
    return load_config(None, overrides=overrides)


def _fault(server: Any, **rule: Any) -> None:
    resp = requests.post(
        f"{server.url}/_sandbox/faults", json={"side": "hubspot", **rule}, timeout=5
    )
    resp.raise_for_status()


def _count(db, obj: str) -> int:
    return int(
        db.execute(
            "select count(*) from snapshots where source='hubspot' and object=?", [obj]
        ).fetchone()[0]
    )


def test_full_pull_maps_records_associations_owners_and_schemas(hs, fresh_db) -> None:
    result = run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    assert result.status == "ok"
    assert _count(fresh_db, "companies") == 250
    assert _count(fresh_db, "contacts") == 229  # one contact has no email (contacts_require_email)
    calls = result.summary["sources"]["hubspot"]["calls"]["by_kind"]
    # list pages of 100, association batch reads of 100 ids, one properties call per object
    assert calls["list"] == 3 + 3 and calls["associations"] == 3 and calls["properties"] == 2
    co = fresh_db.execute(
        "select name, domain, website, external_ids, modified_at, archived, run_id from snapshots "
        "where object='companies' and record_id = ?",
        [hs.companies[0]],
    ).fetchone()
    assert co[:4] == ("Co 0", "co0.com", "https://www.co0.com/", '{"salesforce_id":"001X"}')
    assert co[4].endswith("Z") and co[5] == 0 and co[6] == result.run_id
    ct = fresh_db.execute(
        "select name, first_name, email, account_id from snapshots where object='contacts' and record_id=?",
        [hs.contacts[1]],
    ).fetchone()
    assert ct == ("F1 L", "F1", "p1@co1.com", hs.companies[1])
    assert fresh_db["associations"].count == 230
    assert fresh_db["owners"].count >= 1
    props = json.loads(fresh_db["schemas"].get(("hubspot", "companies"))["fields"])
    assert {"name", "domain", "hs_lastmodifieddate"} <= {p["name"] for p in props}


def test_incremental_with_boundary_ties_reads_only_changes(hs, fresh_db) -> None:
    cfg = _cfg(hs)
    first = run_pull(fresh_db, cfg, sources=["hubspot"])
    cur = load_cursor(fresh_db, "hubspot", "contacts", "lastmodifieddate")
    assert len(cur.ids_at_value) == 2  # the last timestamp is shared by two contacts
    quiet = run_pull(fresh_db, cfg, sources=["hubspot"])
    assert quiet.records == {"hubspot:companies": 0, "hubspot:contacts": 0}
    for obj in ("companies", "contacts"):  # ≤ 2 calls per object without changes
        assert quiet.summary["sources"]["hubspot"]["objects"][obj]["calls"] <= 2
    # a CRM user edits a contact and a company; the next run reads exactly those
    for obj, rid in (("contacts", hs.contacts[3]), ("companies", hs.companies[5])):
        field = {"contacts": {"firstname": "Edited"}, "companies": {"name": "Edited Co"}}[obj]
        requests.post(
            f"{hs.url}/_sandbox/records/hubspot/{obj}/{rid}", json=field, timeout=5
        ).raise_for_status()
    changed = run_pull(fresh_db, cfg, sources=["hubspot"])
    assert changed.records == {"hubspot:companies": 1, "hubspot:contacts": 1}
    runs = dict(fresh_db.execute("select record_id || object, run_id from snapshots").fetchall())
    assert runs[hs.contacts[3] + "contacts"] == changed.run_id
    assert runs[hs.contacts[4] + "contacts"] == first.run_id
    assert _count(fresh_db, "contacts") == 229


def test_search_window_over_10k_records_sharing_one_timestamp(hs, fresh_db) -> None:
    cfg = _cfg(hs, hubspot={"objects": ["companies"]})
    run_pull(fresh_db, cfg, sources=["hubspot"])
    state = hs.state
    at = NOW + 500_000
    bulk_load(
        state,
        "companies",
        [{"name": f"Tie {i}"} for i in range(10_300)],
        timestamps=[(at, at)] * 10_300,
    )
    bulk_load(
        state,
        "companies",
        [{"name": f"Late {i}"} for i in range(150)],
        timestamps=[(at, at + 1 + i % 3) for i in range(150)],
    )
    result = run_pull(fresh_db, cfg, sources=["hubspot"])
    assert result.records == {"hubspot:companies": 10_450}
    assert _count(fresh_db, "companies") == 250 + 10_450
    searches = result.summary["sources"]["hubspot"]["calls"]["by_kind"]["search"]
    assert searches <= -(-10_450 // 200) + 3  # one call per 200 records, plus the tie split's edges
    assert run_pull(fresh_db, cfg, sources=["hubspot"]).records == {"hubspot:companies": 0}


def test_429_storm_is_retried_honouring_retry_after(hs, fresh_db) -> None:
    _fault(hs, kind="rate_limit", endpoint="*", every=2, times=6, retry_after=0)
    result = run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    info = result.summary["sources"]["hubspot"]["calls"]
    assert result.status == "ok" and info["rate_limited"] == 6 and info["retries"] == 6
    assert _count(fresh_db, "companies") == 250


@pytest.mark.parametrize(
    ("rule", "error", "error_class"),
    [
        ({"kind": "request_limit"}, BudgetExhausted, "budget_exhausted"),  # the daily limit
        ({"kind": "expired_session"}, AuthError, "auth_failed"),
    ],
)
def test_distinct_errors(hs, fresh_db, rule, error, error_class) -> None:
    _fault(hs, **rule)
    with pytest.raises(error):
        run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    summary = json.loads(fresh_db.execute("select summary from runs").fetchone()[0])
    info = summary["sources"]["hubspot"]
    if error is BudgetExhausted:  # a clean stop, resumed by the next run
        assert info["status"] == "budget"
    else:
        assert info["error_class"] == error_class


def test_missing_configured_property(hs, fresh_db) -> None:
    cfg = _cfg(hs, pull={"hubspot_properties": {"companies": ["no_such_prop"]}})
    with pytest.raises(MissingField, match="no_such_prop"):
        run_pull(fresh_db, cfg, sources=["hubspot"])


def test_killed_pull_resumes_from_last_committed_page(hs, fresh_db) -> None:
    cfg = _cfg(hs, hubspot={"objects": ["companies"]})
    seen = []

    def crash(p) -> None:
        seen.append(p)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pull(fresh_db, cfg, sources=["hubspot"], progress=crash)
    assert _count(fresh_db, "companies") == 200
    resumed = run_pull(fresh_db, cfg, sources=["hubspot"], full=True)
    assert resumed.records == {"hubspot:companies": 50}
    assert resumed.summary["sources"]["hubspot"]["calls"]["by_kind"]["list"] == 1
    assert _count(fresh_db, "companies") == 250


def test_budget_stop_and_resume(hs, fresh_db) -> None:
    cfg = _cfg(hs, budget={"hubspot_calls": 6})
    with pytest.raises(BudgetExhausted):
        run_pull(fresh_db, cfg, sources=["hubspot"])
    assert fresh_db.execute("select status from runs").fetchone()[0] == "budget"
    for _ in range(6):
        try:
            run_pull(fresh_db, cfg, sources=["hubspot"])
            break
        except BudgetExhausted:
            continue
    assert _count(fresh_db, "companies") == 250 and _count(fresh_db, "contacts") == 229
    assert (
        fresh_db.execute(
            "select count(*), count(distinct record_id || object) from snapshots"
        ).fetchone()[0]
        == 479
    )


def test_archived_sweep_marks_deleted_records(hs, fresh_db) -> None:
    cfg = _cfg(hs, pull={"archived_sweep_hours": 0})
    run_pull(fresh_db, cfg, sources=["hubspot"])
    requests.delete(
        f"{hs.url}/crm/v3/objects/companies/{hs.companies[9]}",
        headers={"Authorization": "Bearer x"},
        timeout=5,
    ).raise_for_status()
    run_pull(fresh_db, cfg, sources=["hubspot"])
    archived = fresh_db.execute("select record_id from snapshots where archived = 1").fetchall()
    assert archived == [(hs.companies[9],)]
    # the contact associated with it is no longer (HubSpot's association reads say so too)
    left = fresh_db.execute(
        "select count(*) from associations where to_object = 'companies' and to_id = ?",
        [hs.companies[9]],
    ).fetchone()[0]
    assert left == 0


def test_sample_and_lag(hs, fresh_db) -> None:
    sample = run_pull(fresh_db, _cfg(hs), sources=["hubspot"], sample=5)
    assert sample.records == {"hubspot:companies": 5, "hubspot:contacts": 5}
    assert fresh_db["cursors"].count == 0
    # owners are read too: the sample's plan maps owners (it warned "no active owner" for
    # owners that exist)
    assert fresh_db["owners"].count > 0
    cfg = _cfg(hs, pull={"lag_seconds": 10})
    first = run_pull(fresh_db, cfg, sources=["hubspot"])
    again = run_pull(fresh_db, cfg, sources=["hubspot"])
    # the lag re-reads the last 10 s of changes: what was read before, unchanged, is neither
    # news nor rewritten, and the contacts' associations are not read again
    assert again.records == {"hubspot:companies": 0, "hubspot:contacts": 0}
    assert sum(again.changed.values()) == 0
    assert again.summary["sources"]["hubspot"]["calls"]["by_kind"] == {"search": 2}
    assert fresh_db.execute("select count(distinct run_id) from snapshots").fetchone()[0] in (1, 2)
    assert first.status == again.status == "ok"


def test_a_full_pull_marks_what_was_archived_whenever_it_runs(hs, fresh_db) -> None:
    """The archived sweep waits `archived_sweep_hours` between incremental pulls; a `--full`
    pull sweeps at once: a record archived since is not left live."""
    cfg = _cfg(hs, pull={"archived_sweep_hours": 24})
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    requests.delete(
        f"{hs.url}/crm/v3/objects/companies/{hs.companies[11]}",
        headers={"Authorization": "Bearer x"},
        timeout=5,
    ).raise_for_status()
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"], full=True)
    archived = fresh_db.execute("select record_id from snapshots where archived = 1").fetchall()
    assert archived == [(hs.companies[11],)]


def test_rolling_rate_limit_is_waited_out(hs, fresh_db) -> None:
    requests.patch(
        f"{hs.url}/_sandbox/settings",
        json={"hubspot_rate_limit": 10, "hubspot_rate_interval_s": 1},
        timeout=5,
    ).raise_for_status()
    result = run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    calls = result.summary["sources"]["hubspot"]["calls"]
    assert result.status == "ok" and calls["rate_limited"] >= 1 and calls["waited_seconds"] >= 1
    assert _count(fresh_db, "companies") == 250 and _count(fresh_db, "contacts") == 229


def test_quiet_incremental_is_one_search_per_object_and_boundary_edits_are_read(
    hs, fresh_db
) -> None:
    cfg = _cfg(hs)
    run_pull(fresh_db, cfg, sources=["hubspot"])
    cur = load_cursor(fresh_db, "hubspot", "contacts", "lastmodifieddate")
    quiet = run_pull(fresh_db, cfg, sources=["hubspot"])
    # fresh properties and owners are reused; the ids at the cursor are not fetched again
    assert quiet.summary["sources"]["hubspot"]["calls"]["by_kind"] == {"search": 2}
    # a contact already read at the cursor instant is edited: it is read again
    requests.post(
        f"{hs.url}/_sandbox/records/hubspot/contacts/{cur.ids_at_value[0]}",
        json={"firstname": "Later"},
        timeout=5,
    ).raise_for_status()
    changed = run_pull(fresh_db, cfg, sources=["hubspot"])
    assert changed.records == {"hubspot:companies": 0, "hubspot:contacts": 1}
    stale = run_pull(fresh_db, _cfg(hs, pull={"schema_refresh_hours": 0}), sources=["hubspot"])
    assert stale.summary["sources"]["hubspot"]["calls"]["by_kind"] == {
        "properties": 2,
        "search": 2,
    }


@pytest.mark.parametrize("delay", [0.0, 5.0])
def test_an_update_indexed_after_a_later_create_is_read_by_the_next_pull(
    hs, fresh_db, delay
) -> None:
    # search finds an update later than a create (HubSpot: ~60 s against ~10 s)
    settings = {"hubspot_search_lag_s": 0, "hubspot_search_update_lag_s": 1.0}
    requests.patch(f"{hs.url}/_sandbox/settings", json=settings, timeout=5).raise_for_status()
    cfg = _cfg(hs, pull={"hubspot_index_delay_seconds": delay})
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    edited = hs.contacts[3]
    requests.post(
        f"{hs.url}/_sandbox/records/hubspot/contacts/{edited}",
        json={"firstname": "Edited"},
        timeout=5,
    ).raise_for_status()
    created = requests.post(
        f"{hs.url}/crm/v3/objects/contacts",
        json={"properties": {"firstname": "New", "lastname": "L", "email": "new@co.com"}},
        headers={"Authorization": "Bearer x"},
        timeout=5,
    )
    created.raise_for_status()
    first = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    assert first.records == {"hubspot:contacts": 1}  # the create; the update is not indexed yet
    time.sleep(1.1)
    second = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    stored = fresh_db.execute(
        "select first_name from snapshots where record_id = ?", [edited]
    ).fetchone()[0]
    if delay == 0:
        # the cursor passed the update while it was not indexed: it is lost
        assert second.records == {"hubspot:contacts": 0}
        assert stored == "F3"
    else:
        # the cursor stayed behind the window search may not have indexed: the update is
        # read; the create, read again unchanged, is not news and its associations are not
        # read again
        assert second.records == {"hubspot:contacts": 1}
        assert stored == "Edited"
        calls = second.summary["sources"]["hubspot"]["calls"]["by_kind"]
        assert calls == {"search": 1, "associations": 1}


def test_scope_goes_into_searches_and_contacts_leaving_it_are_marked(hs, fresh_db) -> None:
    cfg = _cfg(hs, pull={"archived_sweep_hours": 0})
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    for rid, email in ((hs.contacts[5], None), (hs.contacts[7], "back@co7.com")):
        requests.post(
            f"{hs.url}/_sandbox/records/hubspot/contacts/{rid}", json={"email": email}, timeout=5
        ).raise_for_status()
    result = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    # the search asks for contacts with an email only: contact 7 (email now) is read,
    # contact 5 (email removed) is not; the scope sweep (due: 0 hours) reads both unfiltered
    # and marks the stored contact 5 out of scope instead of leaving it stale
    assert result.records == {"hubspot:contacts": 1}
    state = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    assert state[hs.contacts[5]] == 2 and state[hs.contacts[7]] == 0
    assert sum(state.values()) == 2 and len(state) == 230


@pytest.mark.parametrize("groups", [2, 6])
def test_filter_groups_go_into_searches_as_filter_groups(hs, fresh_db, groups: int) -> None:
    """Scope groups are OR-ed: each becomes a search filter group (with the common filters);
    six are more than a search takes (5), so then only the common filter is pushed, and
    recon judges the groups on what it reads: the same records either way."""
    firsts = [f"F{i}" for i in range(1, 10)]
    by_name = [{"field": "lastname", "op": "eq", "value": "Special", "group": "special"}] + (
        [{"field": "firstname", "op": "in", "value": firsts, "group": "low"}]
        if groups == 2
        else [{"field": "firstname", "op": "in", "value": firsts[k::5], "group": f"low {k}"}
              for k in range(5)]
    )  # fmt: skip
    scope = [{"source": "hubspot", "object": "contacts", **f} for f in by_name]
    cfg = _cfg(hs, pull={"filters": scope, "archived_sweep_hours": 0})
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    live = {r[0] for r in fresh_db.execute("select record_id from snapshots where archived = 0")}
    assert live == {hs.contacts[i] for i in range(1, 10) if i != 7}  # 7 has no email
    for rid, edit in (
        (hs.contacts[100], {"lastname": "Special"}),
        (hs.contacts[3], {"firstname": "Z"}),
    ):
        requests.post(
            f"{hs.url}/_sandbox/records/hubspot/contacts/{rid}", json=edit, timeout=5
        ).raise_for_status()
    result = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    assert result.status == "ok"
    # two groups: the search itself left contact 3 out (the scope sweep marked it); six:
    # the search read it too, and recon left it out
    assert result.records == {"hubspot:contacts": 1 if groups == 2 else 2}
    state = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    assert {rid for rid, a in state.items() if a == 0} == {
        hs.contacts[i] for i in (1, 2, 4, 5, 6, 8, 9, 100)
    }
    assert state[hs.contacts[3]] == 2


def test_a_filter_added_later_marks_the_stored_records_it_leaves_out(hs, fresh_db) -> None:
    """A `contains` filter (not pushed into searches) added to a store pulled without it: one
    unfiltered sweep marks the companies it leaves out; later runs need no sweep."""
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["companies"])
    scoped = _cfg(
        hs,
        pull={
            "filters": [
                {"source": "hubspot", "object": "companies", "field": "name", "op": "contains",
                 "value": "Co 1"}
            ]
        },
    )  # fmt: skip
    run_pull(fresh_db, scoped, sources=["hubspot"], objects=["companies"])
    out = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    kept = {c for i, c in enumerate(hs.companies) if str(i).startswith("1")}
    assert {rid for rid, a in out.items() if a == 0} == kept
    assert all(out[rid] == 2 for rid in set(hs.companies) - kept)
    quiet = run_pull(fresh_db, scoped, sources=["hubspot"], objects=["companies"])
    assert quiet.records == {"hubspot:companies": 0}


def test_a_resumed_pull_reads_the_schema_again_for_a_property_it_lacks(hs, fresh_db) -> None:
    """Stopped mid-way, the pull resumes with the properties stored with its first page; a
    property configured since is missing from them: they are read again, not a dead end."""
    with pytest.raises(BudgetExhausted):
        run_pull(fresh_db, _cfg(hs, budget={"hubspot_calls": 3}), sources=["hubspot"],
                 objects=["companies"])  # fmt: skip
    row = fresh_db["schemas"].get(("hubspot", "companies"))
    older = [f for f in json.loads(row["fields"]) if f["name"] != "description"]
    fresh_db["schemas"].update(("hubspot", "companies"), {"fields": json.dumps(older)})
    cfg = _cfg(hs, pull={"hubspot_properties": {"companies": ["description"]}})
    resumed = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    assert _count(fresh_db, "companies") == 250 and resumed.records["hubspot:companies"] > 0


def test_a_lag_reread_never_moves_the_cursor_back(hs, fresh_db) -> None:
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["companies"])
    # the cursor of a full pull that started after the last change (no record at its value)
    later = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW / 1000 + 1800))
    fresh_db["cursors"].update(("hubspot", "companies"), {"value": later, "ids_at_value": "[]"})
    before = load_cursor(fresh_db, "hubspot", "companies", "hs_lastmodifieddate")
    # a margin wider than all the data: every run re-reads it, the cursor stays put
    cfg = _cfg(hs, pull={"lag_seconds": 7200})
    for _ in range(2):
        run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
        after = load_cursor(fresh_db, "hubspot", "companies", "hs_lastmodifieddate")
        assert after.value == before.value == later


def test_an_instant_split_by_ids_inside_the_index_delay_keeps_the_cursor_behind(fresh_db) -> None:
    state = SandboxState(":memory:")
    now_ms = int(time.time() * 1000)
    hour_ago = now_ms - 3_600_000
    bulk_load(state, "companies", [{"name": "Old"}], timestamps=[(hour_ago, hour_ago)])
    with SandboxServer(state) as server:
        cfg = _cfg(server)
        run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
        # an import: 250 records at one instant, 10 s ago (more than a search page: the
        # instant is split by hs_object_id ranges)
        t1 = now_ms - 10_000
        bulk_load(state, "companies", [{"name": f"Bulk {i}"} for i in range(250)],
                  timestamps=[(t1, t1)] * 250)  # fmt: skip
        run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
        cur = load_cursor(fresh_db, "hubspot", "companies", "hs_lastmodifieddate")
        # whatever the mode the split ended in, the cursor stays behind what search has
        # surely indexed: an update stamped before the import but indexed later is read
        bound = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000 - 110))
        assert cur.value is not None and cur.value[:19] <= bound and "search" not in cur.state


def test_the_daily_limit_stops_the_pull_cleanly_to_resume(hs, fresh_db) -> None:
    requests.patch(
        f"{hs.url}/_sandbox/settings", json={"hubspot_daily_limit": 3}, timeout=5
    ).raise_for_status()
    started = time.monotonic()
    with pytest.raises(BudgetExhausted):  # exit 6: the next run resumes
        run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    assert time.monotonic() - started < 10  # no retries that cannot help
    requests.patch(
        f"{hs.url}/_sandbox/settings", json={"hubspot_daily_limit": 0}, timeout=5
    ).raise_for_status()
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"])
    assert _count(fresh_db, "companies") == 250


def test_a_property_added_to_the_pull_is_filled_in_on_records_pulled_before(
    hs, fresh_db, caplog
) -> None:
    """A property configured after the first pull: an incremental pull would fill it only on
    records that change again, so every record is read once (a list pull), then no more."""
    requests.post(
        f"{hs.url}/crm/v3/properties/companies",
        json={"name": "tier", "label": "Tier", "type": "string", "fieldType": "text",
              "groupName": "companyinformation"},
        headers={"Authorization": "Bearer pat-na1-test"},
        timeout=5,
    ).raise_for_status()  # fmt: skip
    first = hs.companies[3]
    requests.post(
        f"{hs.url}/_sandbox/records/hubspot/companies/{first}",
        json={"fields": {"tier": "Gold"}},
        timeout=5,
    ).raise_for_status()
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["companies"])

    def tier() -> Any:
        row = fresh_db["snapshots"].get(("hubspot", "companies", first))
        return json.loads(row["data"]).get("tier")

    assert tier() is None  # not asked for yet
    cfg = _cfg(hs, pull={"hubspot_properties": {"companies": ["tier"]}})
    with caplog.at_level("WARNING", logger="recon.sources.crm"):
        filled = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    assert tier() == "Gold"
    assert filled.records == {"hubspot:companies": 250}
    assert filled.summary["sources"]["hubspot"]["calls"]["by_kind"]["list"] == 3
    assert "hubspot companies: field tier added since the last pull" in caplog.text
    quiet = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    assert quiet.summary["sources"]["hubspot"]["calls"]["by_kind"] == {"search": 1}
    # a property dropped from the configuration reads nothing again
    fewer = run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["companies"])
    assert fewer.summary["sources"]["hubspot"]["calls"]["by_kind"] == {"search": 1}


def test_a_configured_property_deleted_in_hubspot_is_found_and_named_with_every_other(
    hs, fresh_db
) -> None:
    """A mapped property deleted in HubSpot after a pull went unnoticed while the stored schema
    was young (HubSpot leaves a property that does not exist out of its answer): the plan
    proposed writes into it. The pull finds it, stores the schema it reads again (so `recon
    plan` names it), and names a missing property of every object at once."""
    auth = {"Authorization": "Bearer pat-na1-test"}
    for obj in ("companies", "contacts"):
        requests.post(
            f"{hs.url}/crm/v3/properties/{obj}",
            json={"name": "scratch", "label": "Scratch", "type": "string", "fieldType": "text",
                  "groupName": "companyinformation"},
            headers=auth, timeout=5,
        ).raise_for_status()  # fmt: skip
    cfg = _cfg(hs, pull={"hubspot_properties": {"companies": ["scratch"], "contacts": ["scratch"]}})
    run_pull(fresh_db, cfg, sources=["hubspot"])
    for obj in ("companies", "contacts"):
        requests.delete(f"{hs.url}/crm/v3/properties/{obj}/scratch", headers=auth, timeout=5)
    requests.post(
        f"{hs.url}/_sandbox/records/hubspot/companies/{hs.companies[3]}",
        json={"fields": {"name": "Changed"}},
        timeout=5,
    ).raise_for_status()
    with pytest.raises(MissingField) as err:
        run_pull(fresh_db, cfg, sources=["hubspot"])
    assert "hubspot companies" in str(err.value) and "hubspot contacts" in str(err.value)
    assert str(err.value).count("fix [[mapping.fields]]") == 1  # the hint said once
    for obj in ("companies", "contacts"):
        stored = json.loads(fresh_db["schemas"].get(("hubspot", obj))["fields"])
        assert "scratch" not in {f["name"] for f in stored}


def test_a_property_the_app_may_not_read_is_named_as_such_not_as_deleted(hs, fresh_db) -> None:
    """A Sensitive Data property is listed by the properties API but left out of the records
    of an app without the sensitive scope: the pull said it was deleted, read the schema
    again, and failed the same way on every run. It names the scope."""
    auth = {"Authorization": "Bearer pat-na1-test"}
    name = "passport_number"
    requests.post(
        f"{hs.url}/crm/v3/properties/contacts",
        json={"name": name, "label": "Passport", "type": "string", "fieldType": "text",
              "groupName": "contactinformation", "dataSensitivity": "sensitive"},
        headers=auth, timeout=5,
    ).raise_for_status()  # fmt: skip
    listed = requests.get(f"{hs.url}/crm/v3/properties/contacts/{name}", headers=auth, timeout=5)
    assert listed.json()["dataSensitivity"] == "sensitive"
    cfg = _cfg(hs, pull={"hubspot_properties": {"contacts": [name]}})
    try:
        with pytest.raises(MissingField) as err:
            run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    finally:
        requests.delete(f"{hs.url}/crm/v3/properties/contacts/{name}", headers=auth, timeout=5)
    assert "may not read it" in str(err.value) and "deleted" not in str(err.value)
    assert "sensitive" in (err.value.hint or "")


def test_an_answer_that_is_not_json_names_the_setting_to_check(fresh_db, sign_in_page) -> None:
    """A base URL reaching something else (a proxy's or login page answering 200 with text)
    failed with a bare JSONDecodeError: no CRM, no call, no setting to check."""
    from types import SimpleNamespace

    from recon.errors import SourceError

    with pytest.raises(SourceError) as err:
        run_pull(fresh_db, _cfg(SimpleNamespace(url=sign_in_page)), sources=["hubspot"])
    assert "not JSON" in str(err.value) and "[hubspot] base_url" in (err.value.hint or "")
    assert err.value.error_class == "server_error"


def test_a_record_merged_away_in_hubspot_is_archived_in_the_store(hs, fresh_db) -> None:
    """HubSpot returns a merged-away record from no list, search or archived read: the
    survivor's hs_merged_object_ids says it is gone."""
    cfg = _cfg(hs, pull={"archived_sweep_hours": 0})
    run_pull(fresh_db, cfg, sources=["hubspot"])
    keep, gone = hs.contacts[10], hs.contacts[11]
    requests.post(
        f"{hs.url}/crm/v3/objects/contacts/merge",
        json={"primaryObjectId": keep, "objectIdToMerge": gone},
        headers={"Authorization": "Bearer pat-na1-test"},
        timeout=5,
    ).raise_for_status()
    run_pull(fresh_db, cfg, sources=["hubspot"])
    flags = dict(
        fresh_db.execute(
            "select record_id, archived from snapshots where object = 'contacts' "
            "and record_id in (?, ?)",
            [keep, gone],
        ).fetchall()
    )
    assert flags == {keep: 0, gone: 1}
    assoc = fresh_db.execute(
        "select count(*) from associations where from_object = 'contacts' and from_id = ?", [gone]
    ).fetchone()[0]
    assert assoc == 0


def test_an_owner_archived_in_hubspot_is_inactive_in_the_store(hs, fresh_db) -> None:
    cfg = _cfg(hs, pull={"owners_refresh_hours": 0})
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    owners = dict(fresh_db.execute("select owner_id, active from owners").fetchall())
    assert owners and set(owners.values()) == {1}
    gone = sorted(owners)[0]
    with hs.state.tx() as conn:
        data = json.loads(
            conn.execute("select data from hs_owners where id = ?", [gone]).fetchone()[0]
        )
        conn.execute(
            "update hs_owners set data = ? where id = ?",
            [json.dumps({**data, "archived": True}), gone],
        )
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["companies"])
    after = dict(fresh_db.execute("select owner_id, active from owners").fetchall())
    assert after[gone] == 0 and all(v == 1 for k, v in after.items() if k != gone)


def test_a_contact_moved_to_another_company_is_read_by_the_next_incremental(hs, fresh_db) -> None:
    """A new primary company changes the contact's associatedcompanyid, so its modification
    time: an incremental pull reads it and its associations again."""
    cfg = _cfg(hs)
    run_pull(fresh_db, cfg, sources=["hubspot"])
    contact, old, new = hs.contacts[20], hs.companies[20], hs.companies[200]
    auth = {"Authorization": "Bearer pat-na1-test"}
    requests.delete(
        f"{hs.url}/crm/v4/objects/contacts/{contact}/associations/companies/{old}",
        headers=auth, timeout=5,
    ).raise_for_status()  # fmt: skip
    requests.put(
        f"{hs.url}/crm/v4/objects/contacts/{contact}/associations/default/companies/{new}",
        headers=auth, timeout=5,
    ).raise_for_status()  # fmt: skip
    run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    account = fresh_db.execute(
        "select account_id from snapshots where object = 'contacts' and record_id = ?", [contact]
    ).fetchone()[0]
    assert account == new
    to = {r[0] for r in fresh_db.execute(
        "select to_id from associations where from_object = 'contacts' and from_id = ?", [contact]
    )}  # fmt: skip
    assert to == {new}


def test_two_way_properties_carry_their_own_field_times(hs, fresh_db) -> None:
    """A `two_way` property's time is when it was set, not when the record last changed: an
    edit to another property after it does not make it look newer (the plan's newer side)."""
    from recon.plan_load import Rec

    contact = hs.contacts[4]
    url = f"{hs.url}/crm/v3/objects/contacts/{contact}"
    auth = {"Authorization": "Bearer pat-na1-test"}

    def patch(props: dict[str, str]) -> str:
        resp = requests.patch(url, json={"properties": props}, headers=auth, timeout=5)
        resp.raise_for_status()
        return str(resp.json()["updatedAt"])

    set_at = patch({"state": "CA"})
    time.sleep(0.01)
    later = patch({"fax": "+1 555 0100"})
    cfg = _cfg(hs, mapping={"rules": {"contacts.state": "two_way"}})
    result = run_pull(fresh_db, cfg, sources=["hubspot"], full=True)
    calls = result.summary["sources"]["hubspot"]["calls"]["by_kind"]
    # contacts only (no company property is two_way): 50 a call, per page of 100 (100, 100, 30)
    assert calls["history"] == 2 + 2 + 1
    row = fresh_db.execute(
        "select object, record_id, name, domain, email, account_id, created_at, modified_at, "
        "archived, data from snapshots where object = 'contacts' and record_id = ?",
        [str(contact)],
    ).fetchone()
    rec = Rec("hubspot", tuple(row))
    assert rec.fields["state"] == "CA"
    assert rec.field_time("state") == parse_ts(set_at) < rec.record_time() == parse_ts(later)
    assert rec.field_time("fax") is None  # not two_way: the record's time stands in
    # read in the same calls: when each contact's primary company was set (plan_associations)
    rows = fresh_db.execute(
        "select object, record_id, name, domain, email, account_id, created_at, modified_at, "
        "archived, data from snapshots where object = 'contacts' and account_id is not null"
    ).fetchall()
    assert rows and all(Rec("hubspot", tuple(r)).field_time("associatedcompanyid") for r in rows)
    # without a two_way rule no field times are read
    plain = run_pull(fresh_db, _cfg(hs), sources=["hubspot"], full=True)
    assert "history" not in plain.summary["sources"]["hubspot"]["calls"]["by_kind"]


def test_a_two_way_rule_added_later_reads_every_record_once_for_its_field_times(
    hs, fresh_db
) -> None:
    """Records pulled before the rule have no field times: the next pull reads them all once
    with their times (as for a property added to the mapping), then goes on incrementally."""
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["contacts"])
    cfg = _cfg(hs, mapping={"rules": {"contacts.state": "two_way"}})
    backfill = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    calls = backfill.summary["sources"]["hubspot"]["calls"]["by_kind"]
    assert calls.get("list", 0) >= 3 and calls["history"] == 5
    quiet = run_pull(fresh_db, cfg, sources=["hubspot"], objects=["contacts"])
    assert "list" not in quiet.summary["sources"]["hubspot"]["calls"]["by_kind"]


def test_a_loaded_value_keeps_its_time_when_another_property_changes(hs) -> None:
    """The emulator dates a demo record's loaded values from before the first API edit: an
    edit of `name` does not make `website` look newly set (as HubSpot's history would not)."""
    company = hs.companies[20]
    url = f"{hs.url}/crm/v3/objects/companies/{company}"
    auth = {"Authorization": "Bearer pat-na1-test"}
    before = requests.get(url, headers=auth, timeout=5).json()["updatedAt"]
    requests.patch(
        url, json={"properties": {"name": "Renamed"}}, headers=auth, timeout=5
    ).raise_for_status()
    hist = requests.get(
        url, params={"propertiesWithHistory": "website,name"}, headers=auth, timeout=5
    ).json()["propertiesWithHistory"]
    assert hist["website"][0]["timestamp"] == before
    assert hist["name"][0]["value"] == "Renamed" and hist["name"][0]["timestamp"] > before


def test_a_page_the_budget_cannot_finish_is_not_counted_as_calls_made() -> None:
    """A list page of contacts needs its list call and its association call: with one call
    left the page is not started, and the run reports the calls it made, not its budget."""
    from recon.sources.crm import CallMeter

    meter = CallMeter("hubspot", budget=3)
    meter.charge("list")
    meter.charge("list")
    with pytest.raises(BudgetExhausted):
        meter.reserve(2)
    assert meter.calls == 2 and meter.by_kind == {"list": 2}
    with pytest.raises(BudgetExhausted):  # the run's budget counts as spent from then on
        meter.charge("search")
    assert meter.calls == 2


def test_a_search_page_the_budget_cannot_finish_is_not_started(hs, fresh_db) -> None:
    """A search page needs its field-time reads too: with too little budget left it is not
    started (the calls would be spent and the records read again next run)."""
    rules = {"rules": {"companies.city": "two_way"}}
    run_pull(fresh_db, _cfg(hs, mapping=rules), sources=["hubspot"], objects=["companies"])
    before = requests.get(f"{hs.url}/_sandbox/requests", timeout=5).json()
    tight = _cfg(hs, mapping=rules, budget={"hubspot_calls": 2})
    # no run with this budget could finish a page (1 search + 4 field-time reads): it says
    # what a page takes, not "the next run resumes" (it never would)
    with pytest.raises(BudgetExhausted, match=r"cannot fit one page.*at least 5"):
        run_pull(fresh_db, tight, sources=["hubspot"], objects=["companies"])
    after = requests.get(f"{hs.url}/_sandbox/requests", timeout=5).json()
    searches = [k for k in after if "search" in str(k)]
    assert all(after.get(k) == before.get(k) for k in searches), (before, after)


def test_a_budget_spent_by_the_reads_before_the_first_page_says_what_a_page_takes(
    hs, fresh_db
) -> None:
    """The schema read came first: the "cannot fit one page" check (calls == 0) never fired,
    so every run spent its one call on the schema, said "the next run resumes" and exited 6
    for ever. The reads before the first page count toward what a page takes."""
    tight = _cfg(hs, budget={"hubspot_calls": 1})
    for _ in range(2):
        with pytest.raises(BudgetExhausted) as err:
            run_pull(fresh_db, tight, sources=["hubspot"], objects=["companies"])
        assert "cannot fit one page" in str(err.value) and "well above 1" in str(err.value)
        assert "next" not in str(err.value)


def test_a_new_primary_company_takes_the_label_off_the_former_one(hs, fresh_db) -> None:
    contact, former, new = hs.contacts[5], hs.companies[5], hs.companies[40]
    auth = {"Authorization": "Bearer pat-na1-test"}
    requests.put(
        f"{hs.url}/crm/v4/objects/contacts/{contact}/associations/companies/{new}",
        json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
        headers=auth,
        timeout=5,
    ).raise_for_status()
    got = requests.get(
        f"{hs.url}/crm/v4/objects/contacts/{contact}/associations/companies",
        headers=auth,
        timeout=5,
    ).json()["results"]
    primaries = [
        str(r["toObjectId"]) for r in got if any(t["typeId"] == 1 for t in r["associationTypes"])
    ]
    assert primaries == [str(new)] and str(former) in {str(r["toObjectId"]) for r in got}
    run_pull(fresh_db, _cfg(hs), sources=["hubspot"], objects=["contacts"])
    assert fresh_db.execute(
        "select account_id from snapshots where record_id = ?", [str(contact)]
    ).fetchone()[0] == str(new)


def test_a_merged_contacts_primary_company_does_not_become_the_survivors_second(hs) -> None:
    auth = {"Authorization": "Bearer pat-na1-test"}
    keep, gone = hs.contacts[30], hs.contacts[31]
    requests.post(
        f"{hs.url}/crm/v3/objects/contacts/merge",
        json={"primaryObjectId": str(keep), "objectIdToMerge": str(gone)},
        headers=auth,
        timeout=5,
    ).raise_for_status()
    got = requests.get(
        f"{hs.url}/crm/v4/objects/contacts/{keep}/associations/companies", headers=auth, timeout=5
    ).json()["results"]
    primaries = [
        r["toObjectId"] for r in got if any(t["typeId"] == 1 for t in r["associationTypes"])
    ]
    assert [str(p) for p in primaries] == [str(hs.companies[30])]
    assert str(hs.companies[31]) in {str(r["toObjectId"]) for r in got}  # kept, unlabeled


def test_a_secret_at_the_end_of_a_long_error_is_blanked_before_the_cut() -> None:
    """HubSpot's message is cut to 300 characters: blanked first, or a prefix shows."""
    from hubspot.crm.companies.exceptions import ApiException

    from recon.errors import register_secret
    from recon.sources.hs_errors import classify

    secret = "pat-na1-SECRETZZZ123456"
    register_secret(secret)
    exc = ApiException(status=503, reason="Service Unavailable")
    exc.body = json.dumps({"message": ("Could not be processed. " * 12)[:286] + " " + secret})
    message = str(classify(exc).error)
    assert "pat-na" not in message and "***" in message


def test_an_unreachable_hubspot_is_named_with_its_url_and_what_to_check() -> None:
    """ "hubspot: network error: MaxRetryError" said neither where nor what to do."""
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    from recon.errors import ErrorClass
    from recon.sources.hs_errors import classify

    client = HubSpot(access_token="pat-x", host="http://127.0.0.1:9", retry=Retry(total=0))
    with pytest.raises(Exception) as raised:
        client.crm.companies.basic_api.get_page(limit=1)
    failure = classify(raised.value)
    assert failure.retryable and failure.error.error_class is ErrorClass.NETWORK
    assert "reaching http://127.0.0.1:9" in str(failure.error)
    assert "[hubspot] base_url" in str(failure.error)
