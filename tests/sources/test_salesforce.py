"""The Salesforce source against the emulator, through the real ``simple-salesforce``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from recon.config import ReconConfig, load_config
from recon.errors import AuthError, BudgetExhausted, MissingField
from recon.pull import load_cursor, run_pull
from recon.sandbox import SandboxServer, SandboxState
from recon.sandbox.salesforce import load_records

T0 = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture
def sf() -> Iterator[Any]:
    """A fresh emulator: 2,500 Accounts (2 per second), 30 Contacts at one instant, 10 Leads."""
    state = SandboxState(":memory:")
    accounts = load_records(
        state,
        "Account",
        [{"Name": f"Acct {i}", "Website": f"http://www.a{i}.com/x", "BillingCity": "Berlin", "BillingCountry": "DE",
          "HubSpot_Id__c": "7" if i == 0 else None, "SystemModstamp": T0 + timedelta(seconds=i // 2)}
         for i in range(2500)],
    )  # fmt: skip
    contacts = load_records(
        state,
        "Contact",
        [{"LastName": f"L{i}", "FirstName": "F", "Email": f"c{i}@a.com", "AccountId": accounts[i], "SystemModstamp": T0}
         for i in range(30)],
    )  # fmt: skip
    leads = load_records(
        state, "Lead", [{"LastName": f"Lead{i}", "Company": "X GmbH", "Email": f"l{i}@x.com" if i else None} for i in range(10)]
    )  # fmt: skip
    with SandboxServer(state) as server:
        server.accounts, server.contacts, server.leads = accounts, contacts, leads  # type: ignore[attr-defined]
        yield server


def _cfg(server: Any, **sections: Any) -> ReconConfig:
    sf_section = {"instance_url": server.url, "login_url": server.url, "auth": "client_credentials",
                  "client_id": "cid", "client_secret": "secret", **sections.pop("salesforce", {})}  # fmt: skip
    return load_config(None, overrides={"salesforce": sf_section, **sections})


def _fault(server: Any, **rule: Any) -> None:
    requests.post(
        f"{server.url}/_sandbox/faults", json={"side": "salesforce", **rule}, timeout=5
    ).raise_for_status()


def _count(db, obj: str) -> int:
    return int(
        db.execute(
            "select count(*) from snapshots where source='salesforce' and object=?", [obj]
        ).fetchone()[0]
    )


def _delete(server: Any, obj: str, record_id: str) -> None:
    """Delete a record as a Salesforce user would (it goes to the recycle bin)."""
    resp = requests.delete(
        f"{server.url}/services/data/v59.0/sobjects/{obj}/{record_id}",
        headers={"Authorization": "Bearer x"},
        timeout=5,
    )
    assert resp.status_code == 204


def _by_kind(result) -> dict[str, int]:
    return result.summary["sources"]["salesforce"]["calls"]["by_kind"]


def test_full_rest_pull_maps_records_and_counts_calls(sf, fresh_db) -> None:
    result = run_pull(fresh_db, _cfg(sf), sources=["salesforce"])
    assert result.records == {
        "salesforce:Account": 2500,
        "salesforce:Contact": 30,
        "salesforce:Lead": 9,  # the Lead without email is not even fetched (Email != null)
    }
    assert _count(fresh_db, "Lead") == 9  # contacts_require_email
    # per object: describe + one query call per 2,000 records (no COUNT(): the first
    # page's totalSize decides REST or Bulk); Users once
    assert _by_kind(result) == {"describe": 3, "query": 2 + 1 + 1, "owners": 1}
    acct = fresh_db.execute(
        "select name, domain, website, city, country, external_ids, modified_at from snapshots where record_id=?",
        [sf.accounts[0]],
    ).fetchone()
    assert acct[:6] == (
        "Acct 0",
        "a0.com",
        "http://www.a0.com/x",
        "Berlin",
        "DE",
        '{"hubspot_id":"7"}',
    )
    assert acct[6] == T0.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    contact = fresh_db.execute(
        "select name, company, account_id, email from snapshots where record_id=?", [sf.contacts[1]]
    ).fetchone()
    assert contact == ("F L1", "Acct 1", sf.accounts[1], "c1@a.com")
    lead = fresh_db.execute(
        "select company from snapshots where record_id=?", [sf.leads[1]]
    ).fetchone()
    assert lead == ("X GmbH",)
    fields = {
        f["name"] for f in json.loads(fresh_db["schemas"].get(("salesforce", "Account"))["fields"])
    }
    assert {"Name", "Website", "SystemModstamp", "Recon_Key__c"} <= fields
    assert fresh_db["owners"].count >= 1
    assert result.summary["sources"]["salesforce"]["api_usage"]["used"] >= 1


def test_incremental_with_boundary_ties(sf, fresh_db) -> None:
    cfg = _cfg(sf)
    run_pull(fresh_db, cfg, sources=["salesforce"])
    assert len(load_cursor(fresh_db, "salesforce", "Contact", "SystemModstamp").ids_at_value) == 30
    quiet = run_pull(fresh_db, cfg, sources=["salesforce"])
    assert sum(quiet.records.values()) == 0
    for obj in ("Account", "Contact", "Lead"):
        assert quiet.summary["sources"]["salesforce"]["objects"][obj]["calls"] <= 2
    requests.post(
        f"{sf.url}/_sandbox/records/salesforce/Contact/{sf.contacts[4]}",
        json={"Title": "CTO"},
        timeout=5,
    ).raise_for_status()
    changed = run_pull(fresh_db, cfg, sources=["salesforce"])
    assert changed.records == {
        "salesforce:Account": 0,
        "salesforce:Contact": 1,
        "salesforce:Lead": 0,
    }
    assert (
        fresh_db.execute(
            "select run_id from snapshots where record_id=?", [sf.contacts[4]]
        ).fetchone()[0]
        == changed.run_id
    )


def _rest_then_bulk(db: Any, server: Any, obj: str, threshold: int) -> tuple[Any, Any]:
    """A REST pull of ``obj``, then a full pull that Bulk reads (above ``threshold``)."""
    rest = run_pull(db, _cfg(server), sources=["salesforce"], objects=[obj])
    bulk = run_pull(
        db,
        _cfg(server, salesforce={"bulk_threshold": threshold}),
        sources=["salesforce"],
        objects=[obj],
        full=True,
    )
    assert "bulk" not in _by_kind(rest) and "bulk" in _by_kind(bulk)
    return rest, bulk


def test_bulk_query_above_threshold_gives_the_same_rows(sf, fresh_db) -> None:
    _rest, bulk = _rest_then_bulk(fresh_db, sf, "Account", 1000)
    assert bulk.records == {"salesforce:Account": 2500} and _by_kind(bulk)["bulk"] >= 3
    assert bulk.changed == {"salesforce:Account": 0}  # the same content through both paths
    cur = load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp")
    assert set(cur.state) == {"deleted_sweep", "fields"} and len(cur.ids_at_value) == 2


def test_a_contact_without_account_reads_alike_over_rest_and_bulk(fresh_db) -> None:
    state = SandboxState(":memory:")
    [acct] = load_records(state, "Account", [{"Name": "Parent"}])
    load_records(
        state,
        "Contact",
        [{"LastName": f"L{i}", "Email": f"c{i}@x.com", "AccountId": acct if i % 2 else None}
         for i in range(20)],
    )  # fmt: skip
    with SandboxServer(state) as server:
        _rest, bulk = _rest_then_bulk(fresh_db, server, "Contact", 5)
    assert bulk.changed == {"salesforce:Contact": 0}  # a null parent stored alike both ways
    data = [json.loads(d) for (d,) in fresh_db.execute("select data from snapshots")]
    assert all("Account" not in d and "Account.Name" in d for d in data)


def test_include_deleted_uses_query_all(sf, fresh_db) -> None:
    cfg = _cfg(sf, pull={"include_deleted": True})
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    _delete(sf, "Lead", sf.leads[2])
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    assert fresh_db.execute("select record_id from snapshots where archived=1").fetchall() == [
        (sf.leads[2],)
    ]


def test_deletions_are_swept_without_include_deleted(sf, fresh_db) -> None:
    cfg = _cfg(sf, pull={"archived_sweep_hours": 24})
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    _delete(sf, "Lead", sf.leads[2])
    quiet = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    assert _by_kind(quiet) == {"query": 1}  # the sweep is not due yet: the deletion waits
    assert fresh_db.execute("select count(*) from snapshots where archived=1").fetchone()[0] == 0
    due = _cfg(sf, pull={"archived_sweep_hours": 0})
    swept = run_pull(fresh_db, due, sources=["salesforce"], objects=["Lead"])
    # the incremental query, the scope sweep (Email != null) and the queryAll of deletions
    assert _by_kind(swept) == {"query": 3}
    assert fresh_db.execute("select record_id from snapshots where archived=1").fetchall() == [
        (sf.leads[2],)
    ]
    assert swept.records == {"salesforce:Lead": 0}  # bookkeeping, not news


def test_a_full_pull_sweeps_deletions_whenever_it_runs(sf, fresh_db) -> None:
    """`--full` asks for the whole truth: a deletion not yet swept (the sweep is not due) is
    marked by it, not left live for the plan to write to."""
    cfg = _cfg(sf, pull={"archived_sweep_hours": 24})
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    _delete(sf, "Lead", sf.leads[3])
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"], full=True)
    assert fresh_db.execute("select record_id from snapshots where archived=1").fetchall() == [
        (sf.leads[3],)
    ]


def test_a_scope_made_wider_fetches_what_it_let_in(sf, fresh_db) -> None:
    """contacts_require_email switched off: the Lead without email, never fetched, comes in."""
    run_pull(fresh_db, _cfg(sf), sources=["salesforce"], objects=["Lead"])
    assert _count(fresh_db, "Lead") == 9
    wider = _cfg(sf, pull={"contacts_require_email": False})
    run_pull(fresh_db, wider, sources=["salesforce"], objects=["Lead"])
    assert _count(fresh_db, "Lead") == 10
    assert "scope" not in load_cursor(fresh_db, "salesforce", "Lead", "SystemModstamp").state
    again = run_pull(fresh_db, wider, sources=["salesforce"], objects=["Lead"])
    assert _by_kind(again) == {"query": 1}  # no filters left: no sweeps


def test_server_errors_and_429s_are_retried(sf, fresh_db) -> None:
    _fault(sf, kind="server_error", status=503, endpoint="*query*", every=2, times=2)
    _fault(sf, kind="rate_limit", status=429, endpoint="*describe*", times=2)
    result = run_pull(fresh_db, _cfg(sf, salesforce={"max_retries": 3}), sources=["salesforce"])
    calls = result.summary["sources"]["salesforce"]["calls"]
    assert result.status == "ok" and calls["retries"] == 4 and calls["rate_limited"] == 2
    assert _count(fresh_db, "Account") == 2500


def test_the_sandbox_rate_limit_fault_is_the_concurrent_limit_and_is_waited_out(
    sf, fresh_db
) -> None:
    """The sandbox's Salesforce ``rate_limit`` answers the org's concurrent-request limit
    (403 ``REQUEST_LIMIT_EXCEEDED``, "ConcurrentPerOrgLongTxn"), which passes: the pull waits
    and goes on. Only ``request_limit`` (the daily allocation) stops it with exit 6."""
    _fault(sf, kind="rate_limit", endpoint="*query*", times=1)
    result = run_pull(fresh_db, _cfg(sf, salesforce={"max_retries": 3}), sources=["salesforce"])
    calls = result.summary["sources"]["salesforce"]["calls"]
    assert result.status == "ok" and calls["rate_limited"] == 1
    assert _count(fresh_db, "Account") == 2500


def test_the_orgs_request_limit_stops_the_pull_as_a_spent_budget(sf, fresh_db) -> None:
    """The org's rolling 24-hour allocation spent is HubSpot's daily limit: exit 6, resumable
    (at the token endpoint too: no credentials problem)."""
    from recon.sources.sf_auth import request_token

    _fault(sf, kind="request_limit", endpoint="*query*")
    with pytest.raises(BudgetExhausted, match="request limit") as err:
        run_pull(fresh_db, _cfg(sf), sources=["salesforce"])
    assert err.value.exit_code == 6
    requests.delete(f"{sf.url}/_sandbox/faults", timeout=5).raise_for_status()
    _fault(sf, kind="request_limit", endpoint="*oauth2/token*")
    with pytest.raises(BudgetExhausted, match="request limit"):
        request_token(_cfg(sf).salesforce)


def test_max_org_usage_leaves_the_rest_of_the_allocation_to_others(sf, fresh_db) -> None:
    """`[salesforce] max_org_usage`: once the org's reported usage reaches the share, the pull
    stops as on a spent budget (resumable), before the org's own limit."""
    settings = sf.state.settings
    old = settings.salesforce_daily_budget
    settings.salesforce_daily_budget = sf.state.api_usage("salesforce") + 20
    try:
        cfg = _cfg(sf, salesforce={"max_org_usage": 0.01})
        with pytest.raises(BudgetExhausted, match="max_org_usage = 1%") as err:
            run_pull(fresh_db, cfg, sources=["salesforce"])
        assert err.value.exit_code == 6
        assert sf.state.api_usage("salesforce") < settings.salesforce_daily_budget
    finally:
        settings.salesforce_daily_budget = old


@pytest.mark.parametrize(
    "header",
    [
        "api-usage=80/100",
        "api-usage=80/100; api-bursts=1/750",
        "per-app-api-usage=1/250(appName=recon); api-usage=80/100",
    ],
)
def test_org_usage_is_read_from_every_form_of_the_header(header: str) -> None:
    from recon.sources.sf_auth import OrgUsage

    usage = OrgUsage(0.8)
    usage.read({"Sforce-Limit-Info": header})
    assert usage.used == (80, 100)
    with pytest.raises(BudgetExhausted):
        usage.check()


def test_a_concurrency_limit_passes_and_is_retried(sf, fresh_db) -> None:
    """REQUEST_LIMIT_EXCEEDED also means too many long requests at once: that one passes."""
    _fault(sf, kind="request_limit", endpoint="*query*", times=1,
           message="ConcurrentPerOrgLongTxn Limit exceeded.")  # fmt: skip
    result = run_pull(fresh_db, _cfg(sf), sources=["salesforce"], objects=["Lead"])
    assert result.records == {"salesforce:Lead": 9}


def test_expired_session_gets_one_new_token(sf, fresh_db) -> None:
    _fault(sf, kind="expired_session", endpoint="*query*", times=1)
    result = run_pull(fresh_db, _cfg(sf), sources=["salesforce"])
    assert result.status == "ok" and result.summary["sources"]["salesforce"]["token_refreshes"] == 1


def test_expired_configured_session_is_an_auth_error(sf, fresh_db) -> None:
    _fault(sf, kind="expired_session", times=1)
    cfg = _cfg(
        sf,
        salesforce={
            "auth": "session",
            "session_id": "00Dx!sess",
            "client_id": None,
            "client_secret": None,
        },
    )
    with pytest.raises(AuthError) as err:
        run_pull(fresh_db, cfg, sources=["salesforce"])
    assert err.value.exit_code == 7 and "00Dx!sess" not in str(err.value)


def test_killed_rest_pull_resumes_without_loss_or_duplicates(sf, fresh_db) -> None:
    cfg = _cfg(sf)

    def crash(p) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"], progress=crash)
    assert _count(fresh_db, "Account") == 2000
    resumed = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert resumed.records == {"salesforce:Account": 500}
    assert fresh_db.execute("select count(distinct record_id) from snapshots").fetchone()[0] == 2500


def test_the_cursor_never_passes_the_start_of_a_paged_query(sf, fresh_db, monkeypatch) -> None:
    """Records edited while a query pages: one on a page still to come carries a newer time
    than one edited on a page already read; the cursor stops at the query's start, so the
    next pull reads both. (The query is made to start 5 s earlier than the edits: the
    emulator's SystemModstamp has whole seconds.)"""
    import recon.sources.salesforce as source

    class Earlier(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) - timedelta(seconds=5)

    cfg = _cfg(sf)
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    read, later = sf.accounts[10], sf.accounts[2400]
    edited: list[str] = []

    def edit_after_first_page(_progress: Any) -> None:
        if not edited:
            for rid, name in ((read, "read edited"), (later, "later edited")):
                requests.post(
                    f"{sf.url}/_sandbox/records/salesforce/Account/{rid}",
                    json={"Name": name},
                    timeout=5,
                ).raise_for_status()
                edited.append(rid)

    monkeypatch.setattr(source, "datetime", Earlier)
    started = Earlier.now(UTC)
    run_pull(
        fresh_db,
        cfg,
        sources=["salesforce"],
        objects=["Account"],
        full=True,
        progress=edit_after_first_page,
    )
    cursor = load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp")
    assert edited and cursor.value is not None
    assert datetime.fromisoformat(cursor.value) <= started + timedelta(seconds=1)
    monkeypatch.undo()
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    names = dict(
        fresh_db.execute(
            "select record_id, name from snapshots where record_id in (?, ?)", [read, later]
        ).fetchall()
    )
    assert names == {read: "read edited", later: "later edited"}


def test_budget_stop_and_resume(sf, fresh_db) -> None:
    cfg = _cfg(sf, budget={"salesforce_calls": 2})
    with pytest.raises(BudgetExhausted):  # describe, the first 2,000 records
        run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert _count(fresh_db, "Account") == 2000
    assert fresh_db.execute("select status from runs").fetchone()[0] == "budget"
    resumed = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    # the other 500 and the Users (the describe of the first run is fresh: not re-read)
    assert resumed.records == {"salesforce:Account": 500}
    assert _count(fresh_db, "Account") == 2500
    assert fresh_db.execute("select count(distinct record_id) from snapshots").fetchone()[0] == 2500


def test_missing_configured_field(sf, fresh_db) -> None:
    cfg = _cfg(sf, pull={"salesforce_fields": {"Account": ["Nope__c"]}})
    with pytest.raises(MissingField, match="Nope__c") as err:
        run_pull(fresh_db, cfg, sources=["salesforce"])
    assert "field-level security" in str(err.value)


def test_a_configured_field_in_another_case_is_that_field(sf) -> None:
    """`salesforce = "industry"` is Industry (the plan reads it so); the pull said "not found".
    A scoping filter reads records by the exact name: its error names the spelling."""
    from recon.sources.crm import CallMeter
    from recon.sources.salesforce import SalesforceSource

    cfg = _cfg(sf, pull={"salesforce_fields": {"Account": ["industry"]}})
    SalesforceSource(cfg, CallMeter("salesforce")).schema("Account")  # no error
    cfg = _cfg(
        sf,
        pull={"filters": [{"source": "salesforce", "object": "Account", "field": "industry",
                           "op": "eq", "value": "Banking"}]},
    )  # fmt: skip
    with pytest.raises(MissingField, match=r"industry \(Salesforce spells it Industry\)"):
        SalesforceSource(cfg, CallMeter("salesforce")).schema("Account")


def test_a_field_gone_since_describe_is_named_in_the_error(sf) -> None:
    """Salesforce echoes the whole SOQL before "No such column": the message keeps the name."""
    from recon.sources.crm import CallMeter
    from recon.sources.salesforce import SalesforceSource

    src = SalesforceSource(_cfg(sf), CallMeter("salesforce"))
    src.schema("Account")
    src.fields["Account"].append("Gone__c")
    with pytest.raises(MissingField, match="Gone__c"):
        src._call(lambda client: client.query(src._soql("Account", None)))


@pytest.mark.parametrize("kind", ["SalesforceGeneralError", "ValueError"])
def test_a_secret_at_the_end_of_a_long_error_is_blanked_before_the_cut(kind: str) -> None:
    """The error text is cut to 300 characters: cut first, a secret crossing the cut no longer
    matched the blanking and its first characters showed."""
    from simple_salesforce.exceptions import SalesforceGeneralError

    from recon.errors import register_secret
    from recon.sources.salesforce import SalesforceSource

    secret = "SFCLIENTSECRET987654321xyz"
    register_secret(secret)
    text = ("The request could not be processed. " * 8)[:286] + " " + secret
    exc: Exception = (
        SalesforceGeneralError("u", 500, "query", [{"errorCode": "X", "message": text}])
        if kind != "ValueError"
        else ValueError(text)
    )
    src = object.__new__(SalesforceSource)
    src._last_headers = {}
    message = str(src._classify(exc).error)
    assert "SFCLIENTSECR" not in message and "***" in message


def test_campaigns_when_mapped_and_sample(sf, fresh_db) -> None:
    cfg = _cfg(sf, mapping={"campaign_property": "recent_campaign"})
    result = run_pull(fresh_db, cfg, sources=["salesforce"], sample=3)
    assert set(result.records) == {
        f"salesforce:{o}" for o in ("Account", "Contact", "Lead", "Campaign", "CampaignMember")
    }
    assert all(n <= 3 for n in result.records.values())
    assert fresh_db["cursors"].count == 0


@pytest.mark.parametrize("job_gone", [False, True])
def test_killed_bulk_pull_resumes_its_job(sf, fresh_db, monkeypatch, job_gone) -> None:
    from recon.sources import salesforce

    monkeypatch.setattr(salesforce, "BULK_PAGE", 200)
    cfg = _cfg(sf, salesforce={"bulk_threshold": 1000})

    def crash(p) -> None:
        if p.pages == 2:  # the first REST page (2,000), then the first Bulk result page
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"], progress=crash)
    assert 2000 < _count(fresh_db, "Account") < 2500
    job = load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp").state["bulk"]["job"]
    if job_gone:
        requests.delete(
            f"{sf.url}/services/data/v59.0/jobs/query/{job}",
            headers={"Authorization": "Bearer x"},
            timeout=5,
        ).raise_for_status()
    resumed = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert resumed.status == "ok"
    assert fresh_db.execute(
        "select count(*), count(distinct record_id) from snapshots"
    ).fetchone() == (2500, 2500)
    cur = load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp")
    assert set(cur.state) == {"deleted_sweep", "fields"} and cur.value == max(
        r[0] for r in fresh_db.execute("select modified_at from snapshots")
    )


def test_quiet_incremental_reuses_schema_and_users(sf, fresh_db) -> None:
    cfg = _cfg(sf)
    run_pull(fresh_db, cfg, sources=["salesforce"])
    quiet = run_pull(fresh_db, cfg, sources=["salesforce"])
    # fresh describe and Users are reused: one query per object, nothing else
    assert _by_kind(quiet) == {"query": 3} and sum(quiet.records.values()) == 0
    stale = _cfg(sf, pull={"schema_refresh_hours": 0, "owners_refresh_hours": 0})
    before = fresh_db["schemas"].get(("salesforce", "Account"))["fetched_at"]
    again = run_pull(fresh_db, stale, sources=["salesforce"])
    # a stale schema is asked with If-Modified-Since: 304 keeps the stored fields, newly dated
    assert _by_kind(again) == {"describe": 3, "query": 3, "owners": 1}
    row = fresh_db["schemas"].get(("salesforce", "Account"))
    assert row["fetched_at"] > before and "Name" in row["fields"]
    full = run_pull(fresh_db, cfg, sources=["salesforce"], full=True)
    assert _by_kind(full)["describe"] == 3 and _by_kind(full)["owners"] == 1


@pytest.mark.parametrize("lag", [None, 0.0])
def test_same_second_second_edit_is_caught_by_the_default_lag(sf, fresh_db, lag) -> None:
    from recon.sandbox.sf_objects import get_object
    from recon.sandbox.sf_store import write_row

    cfg = _cfg(sf, pull={"lag_seconds": lag})
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Contact"])
    # a second edit within the same whole second: SystemModstamp does not move
    spec = get_object("Contact")
    assert spec is not None
    with sf.state.tx() as conn:
        write_row(conn, spec, sf.contacts[4], {"Title": "CFO"})
    result = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Contact"])
    data = json.loads(
        fresh_db.execute(
            "select data from snapshots where record_id=?", [sf.contacts[4]]
        ).fetchone()[0]
    )
    # the default (1 s) re-reads the boundary second and the content hash finds the change;
    # without lag the closed start skips the ids already read at the cursor value
    assert data.get("Title") == ("CFO" if lag is None else None)
    assert result.changed == {"salesforce:Contact": 1 if lag is None else 0}
    assert result.records == {"salesforce:Contact": 0}  # re-reads inside the margin are no news
    assert fresh_db.execute(
        "select count(*), count(distinct record_id) from snapshots"
    ).fetchone() == (30, 30)
    assert _by_kind(result) == {"query": 1}


def test_filters_go_into_the_soql_and_records_leaving_the_scope_are_marked(sf, fresh_db) -> None:
    scope = {"source": "salesforce", "object": "Account", "field": "BillingCountry", "op": "in",
             "value": ["DE"]}  # fmt: skip
    requests.post(
        f"{sf.url}/_sandbox/records/salesforce/Account/{sf.accounts[0]}",
        json={"BillingCountry": "FR"},
        timeout=5,
    ).raise_for_status()
    cfg = _cfg(sf, pull={"filters": [scope], "archived_sweep_hours": 0})
    first = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    # the French account is not even fetched; a first pull needs no scope sweep (the one
    # query more is the sweep of deleted records, due every 0 hours here)
    assert first.records == {"salesforce:Account": 2499} and _count(fresh_db, "Account") == 2499
    assert _by_kind(first) == {"describe": 1, "query": 2 + 1, "owners": 1}
    requests.post(
        f"{sf.url}/_sandbox/records/salesforce/Account/{sf.accounts[3]}",
        json={"BillingCountry": "US"},
        timeout=5,
    ).raise_for_status()
    again = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    # the filtered query no longer returns account 3; the scope sweep (due: 0 hours) reads
    # what changed since the last one, unfiltered, and marks it out of scope (+ deletions)
    assert again.records == {"salesforce:Account": 0} and _by_kind(again) == {"query": 2 + 1}
    archived = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    assert archived[sf.accounts[3]] == 2 and sum(archived.values()) == 2
    assert sf.accounts[0] not in archived
    data = json.loads(fresh_db["snapshots"].get(("salesforce", "Account", sf.accounts[3]))["data"])
    assert data["BillingCountry"] == "US"


def test_filter_groups_go_into_the_soql_as_or(sf, fresh_db) -> None:
    """Leads with an e-mail (the common rule) that are hot, or from the web in Berlin."""
    edits = {1: {"Rating": "Hot"}, 2: {"LeadSource": "Web", "City": "Berlin"},
             3: {"LeadSource": "Web", "City": "Paris"}, 4: {"City": "Berlin"}, 0: {"Rating": "Hot"}}  # fmt: skip
    for i, edit in edits.items():
        requests.post(
            f"{sf.url}/_sandbox/records/salesforce/Lead/{sf.leads[i]}", json=edit, timeout=5
        ).raise_for_status()
    scope = [
        {"source": "salesforce", "object": "Lead", "field": "Rating", "value": "Hot", "group": "hot"},
        {"source": "salesforce", "object": "Lead", "field": "LeadSource", "value": "Web", "group": "web"},
        {"source": "salesforce", "object": "Lead", "field": "City", "value": "Berlin", "group": "web"},
    ]  # fmt: skip
    cfg = _cfg(sf, pull={"filters": scope})
    result = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Lead"])
    assert result.status == "ok"  # the emulator parsed the SOQL's OR of ANDs
    stored = {r[0] for r in fresh_db.execute("select record_id from snapshots where archived = 0")}
    assert stored == {sf.leads[1], sf.leads[2]}  # lead 0 is hot but has no e-mail


def test_a_field_missing_from_the_stored_schema_reads_describe_again(sf, fresh_db) -> None:
    run_pull(fresh_db, _cfg(sf), sources=["salesforce"], objects=["Account"])
    row = fresh_db["schemas"].get(("salesforce", "Account"))
    fields = [f for f in json.loads(row["fields"]) if f["name"] != "Description"]
    fresh_db["schemas"].update(("salesforce", "Account"), {"fields": json.dumps(fields)})
    # a field created in Salesforce after the (fresh) stored describe, now configured
    cfg = _cfg(sf, pull={"salesforce_fields": {"Account": ["Description"]}})
    result = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert result.status == "ok" and _by_kind(result)["describe"] == 1
    stored = json.loads(fresh_db["schemas"].get(("salesforce", "Account"))["fields"])
    assert "Description" in {f["name"] for f in stored}


def test_a_field_added_since_the_last_pull_is_filled_in_on_every_record(
    sf, fresh_db, caplog
) -> None:
    """A field created in Salesforce after the records were pulled (stood in for here by a
    store pulled without BillingCity): every record is read once, then no more."""
    cfg = _cfg(sf)
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    with fresh_db.conn:
        fresh_db.execute(
            "update snapshots set data = json_remove(data, '$.BillingCity'), content_hash = 'x' "
            "where source = 'salesforce' and object = 'Account'"
        )
        state = json.loads(fresh_db["cursors"].get(("salesforce", "Account"))["state"])
        state["fields"].remove("BillingCity")
        fresh_db["cursors"].update(("salesforce", "Account"), {"state": json.dumps(state)})
    with caplog.at_level("WARNING", logger="recon.sources.crm"):
        filled = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert "salesforce Account: field BillingCity added since the last pull" in caplog.text
    assert filled.records == {"salesforce:Account": 2500}
    cities = fresh_db.execute(
        "select count(*) from snapshots where object = 'Account' "
        "and json_extract(data, '$.BillingCity') = 'Berlin'"
    ).fetchone()[0]
    assert cities == 2500
    quiet = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert _by_kind(quiet) == {"query": 1} and quiet.records == {"salesforce:Account": 0}


def test_a_renamed_account_renames_the_company_of_its_contacts(sf, fresh_db) -> None:
    """Salesforce keeps a Contact's SystemModstamp when its Account is renamed: the store
    carries the new Account.Name over to the Contacts an incremental would not read again."""
    cfg = _cfg(sf)
    run_pull(fresh_db, cfg, sources=["salesforce"])
    account = sf.accounts[1]
    requests.post(
        f"{sf.url}/_sandbox/records/salesforce/Account/{account}",
        json={"fields": {"Name": "Renamed Parent"}},
        timeout=5,
    ).raise_for_status()
    run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    row = fresh_db.execute(
        "select company, json_extract(data, '$.\"Account.Name\"') from snapshots "
        "where record_id = ?",
        [sf.contacts[1]],
    ).fetchone()
    assert row == ("Renamed Parent", "Renamed Parent")
    # the Contact is stored as Salesforce now gives it: a full pull finds it unchanged
    full = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Contact"], full=True)
    assert full.changed.get("salesforce:Contact", 0) == 0


def test_a_tight_budget_resumes_with_the_object_it_stopped_in(sf, fresh_db) -> None:
    """Two calls a run: Account and Contact spend them, the Lead is never reached, run after
    run, unless the next run starts where the last one stopped."""
    run_pull(fresh_db, _cfg(sf), sources=["salesforce"])
    tight = _cfg(sf, budget={"salesforce_calls": 2})
    with pytest.raises(BudgetExhausted):
        run_pull(fresh_db, tight, sources=["salesforce"])
    lead = sf.leads[3]
    requests.post(
        f"{sf.url}/_sandbox/records/salesforce/Lead/{lead}",
        json={"fields": {"Company": "Reached At Last"}},
        timeout=5,
    ).raise_for_status()
    try:
        run_pull(fresh_db, tight, sources=["salesforce"])
    except BudgetExhausted:
        pass
    company = fresh_db.execute(
        "select json_extract(data, '$.Company') from snapshots where record_id = ?", [lead]
    ).fetchone()[0]
    assert company == "Reached At Last"


def test_a_tight_budget_that_stops_at_the_users_resumes_with_them(sf, fresh_db) -> None:
    """Three calls a run: the three queries spent them and the Users call hit the budget,
    run after run; the Users were never read and every run exited 6."""
    run_pull(fresh_db, _cfg(sf), sources=["salesforce"])
    with fresh_db.conn:  # the Users are due again (read a day ago, say)
        fresh_db.execute("delete from owners where source = 'salesforce'")
        fresh_db.execute("delete from cursors where source = 'salesforce' and object = '_owners'")
    tight = _cfg(sf, budget={"salesforce_calls": 3})
    with pytest.raises(BudgetExhausted):
        run_pull(fresh_db, tight, sources=["salesforce"])
    assert fresh_db.execute("select count(*) from owners").fetchone()[0] == 0
    from recon.insights import status_report

    assert status_report(fresh_db)["runs"]["pull"]["errors_by_class"] == {"budget_exhausted": 1}
    try:  # the Users first now; the budget then stops at the last query
        run_pull(fresh_db, tight, sources=["salesforce"])
    except BudgetExhausted:
        pass
    assert fresh_db.execute("select count(*) from owners").fetchone()[0] > 0
    assert run_pull(fresh_db, tight, sources=["salesforce"]).calls == {"salesforce": 3}


def test_a_bulk_job_never_moves_the_cursor_past_its_start(sf, fresh_db, monkeypatch) -> None:
    """Records a Bulk job returns may carry times after the job began (edited while it was
    queued or read): the cursor ends at the job's start, so the next incremental pull
    reads again whatever changed from then on (an edit to a page already read included)."""
    from recon.sources import salesforce

    monkeypatch.setattr(salesforce, "BULK_PAGE", 200)
    cfg = _cfg(sf, salesforce={"bulk_threshold": 1000})

    def crash(p) -> None:
        if p.pages == 2:  # the first REST page, then the first Bulk result page
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"], progress=crash)
    state = json.loads(fresh_db["cursors"].get(("salesforce", "Account"))["state"])
    newest = max(r[0] for r in fresh_db.execute("select modified_at from snapshots"))
    # the job as if it had begun before the newest record read so far was last modified
    state["bulk"]["started"] = early = "2000-01-01T00:00:00Z"
    assert newest > early
    fresh_db["cursors"].update(("salesforce", "Account"), {"state": json.dumps(state)})
    assert run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"]).status == "ok"
    cur = load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp")
    assert cur.value == early and cur.ids_at_value == [] and "bulk" not in cur.state
    # the next pull reads every record modified since the job began (all of them here)
    again = run_pull(fresh_db, cfg, sources=["salesforce"], objects=["Account"])
    assert again.status == "ok" and again.records == {"salesforce:Account": 2500}
    assert load_cursor(fresh_db, "salesforce", "Account", "SystemModstamp").value == max(
        r[0] for r in fresh_db.execute("select modified_at from snapshots")
    )
