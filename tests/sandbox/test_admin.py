"""The /_sandbox/ admin API: counts, change log, faults, settings, record edits, truth, reset."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from recon.sandbox.state import SandboxState


def admin(sandbox: Any, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox/{path}", timeout=30, **kwargs)


def hs_get(sandbox: Any, path: str) -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", headers={"Authorization": "Bearer x"}, timeout=10)


def test_health(sandbox: Any) -> None:
    body = admin(sandbox, "GET", "health").json()
    assert body["ok"] is True and body["url"] == sandbox.url
    assert body["demo"]["size"] == "tiny"


def test_request_counts_per_side_and_endpoint(sandbox_reset: Any) -> None:
    for _ in range(3):
        hs_get(sandbox_reset, "/crm/v3/objects/companies?limit=1")
    hs_get(sandbox_reset, "/crm/v3/objects/company?limit=1")  # same endpoint by its singular name
    counts = admin(sandbox_reset, "GET", "requests").json()
    assert counts["hubspot"]["GET /crm/v3/objects/companies"] == 4
    only = admin(sandbox_reset, "GET", "requests", params={"side": "hubspot"}).json()
    assert only == counts["hubspot"]


def test_change_log_names_object_id_action_and_request(sandbox_reset: Any) -> None:
    resp = requests.post(
        f"{sandbox_reset.url}/crm/v3/objects/companies",
        json={"properties": {"name": "Logged"}},
        headers={"Authorization": "Bearer x"},
        timeout=10,
    )
    rid = resp.json()["id"]
    changes = admin(sandbox_reset, "GET", "changes").json()["changes"]
    entry = next(c for c in changes if c["record_id"] == rid)
    assert (entry["side"], entry["object"], entry["action"]) == ("hubspot", "companies", "created")
    assert entry["request_id"]
    later = admin(sandbox_reset, "GET", "changes", params={"since": entry["seq"]}).json()["changes"]
    assert all(c["seq"] > entry["seq"] for c in later)


def test_faults_added_listed_removed_and_cleared(sandbox_reset: Any) -> None:
    added = admin(
        sandbox_reset,
        "POST",
        "faults",
        json=[
            {"kind": "server_error", "side": "hubspot", "status": 502, "after": 1, "times": 1},
            {"kind": "latency", "side": "salesforce", "ms": 1},
        ],
    )
    assert added.status_code == 201
    ids = [r["id"] for r in added.json()["faults"]]
    assert hs_get(sandbox_reset, "/crm/v3/objects/companies?limit=1").status_code == 200  # after=1
    assert hs_get(sandbox_reset, "/crm/v3/objects/companies?limit=1").status_code == 502
    assert hs_get(sandbox_reset, "/crm/v3/objects/companies?limit=1").status_code == 200  # times=1
    rules = admin(sandbox_reset, "GET", "faults").json()["faults"]
    assert [(r["seen"], r["fired"]) for r in rules if r["id"] == ids[0]] == [(3, 1)]
    assert admin(sandbox_reset, "DELETE", f"faults/{ids[0]}").status_code == 204
    assert admin(sandbox_reset, "DELETE", f"faults/{ids[0]}").status_code == 404
    assert admin(sandbox_reset, "DELETE", "faults").status_code == 204
    assert admin(sandbox_reset, "GET", "faults").json()["faults"] == []


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "meteor"},
        {"kind": "server_error", "side": "zoho"},
        {"kind": "latency", "colour": "red"},
    ],
)
def test_invalid_fault_rules_are_400(sandbox: Any, rule: dict[str, Any]) -> None:
    assert admin(sandbox, "POST", "faults", json=rule).status_code == 400


def test_every_nth_call_fails() -> None:
    state = SandboxState(":memory:")
    state.faults.add({"kind": "server_error", "every": 3})
    outcomes = [state.faults.check("hubspot", "GET /x") is None for _ in range(7)]
    assert outcomes == [False, True, True, False, True, True, False]


def test_record_error_rules_match_fields_case_insensitively() -> None:
    state = SandboxState(":memory:")
    state.faults.add(
        {"kind": "duplicate", "side": "salesforce", "object": "Account", "match": {"Name": "acme"}}
    )
    state.faults.add({"kind": "validation", "side": "hubspot", "match": {"email": "*"}, "times": 1})
    dup = state.faults.record_error("salesforce", "account", {"name": "ACME"})
    assert dup is not None and dup["code"] == "DUPLICATES_DETECTED" and dup["fields"] == ["Name"]
    assert state.faults.record_error("salesforce", "Account", {"Name": "Other"}) is None
    first = state.faults.record_error("hubspot", "contacts", {"email": "a@b.c"})
    assert first is not None and first["code"] == "VALIDATION_ERROR"
    assert state.faults.record_error("hubspot", "contacts", {"email": "a@b.c"}) is None  # times=1


def test_settings_read_and_changed(sandbox_reset: Any) -> None:
    assert admin(sandbox_reset, "GET", "settings").json()["salesforce_daily_budget"] == 100_000
    changed = admin(sandbox_reset, "PATCH", "settings", json={"salesforce_connector_enabled": True})
    assert changed.json()["salesforce_connector_enabled"] is True
    assert sandbox_reset.state.settings.salesforce_connector_enabled is True
    assert admin(sandbox_reset, "PATCH", "settings", json={"bogus": 1}).status_code == 400


def test_edit_a_hubspot_record_as_a_user(sandbox_reset: Any) -> None:
    company = hs_get(sandbox_reset, "/crm/v3/objects/companies?limit=1").json()["results"][0]
    resp = admin(
        sandbox_reset,
        "POST",
        f"records/hubspot/companies/{company['id']}",
        json={"fields": {"city": "Turku"}},
    )
    assert resp.status_code == 200
    edited = resp.json()
    assert edited["properties"]["city"] == "Turku"
    assert edited["updatedAt"] > company["updatedAt"]
    assert edited["properties"]["hs_lastmodifieddate"] == edited["updatedAt"]
    last = sandbox_reset.state.changes()[-1]
    assert (last["record_id"], last["action"], last["request_id"]) == (
        company["id"],
        "edited",
        "admin",
    )


@pytest.mark.parametrize(
    ("side", "record", "fields", "status"),
    [
        ("hubspot", "999999999", {"city": "X"}, 404),
        ("zoho", None, {"city": "X"}, 400),
        ("hubspot", None, {"hs_object_id": "7"}, 400),  # read-only: no user can set it
        ("hubspot", None, {"no_such_property": "7"}, 400),
    ],
)
def test_edit_errors(
    sandbox: Any, side: str, record: str | None, fields: dict[str, str], status: int
) -> None:
    rid = record or hs_get(sandbox, "/crm/v3/objects/companies?limit=1").json()["results"][0]["id"]
    assert (
        admin(
            sandbox, "POST", f"records/{side}/companies/{rid}", json={"fields": fields}
        ).status_code
        == status
    )


def test_edit_a_salesforce_record_when_available(sandbox_reset: Any) -> None:
    if sandbox_reset.state.side_hook("salesforce", "admin_edit") is None:
        pytest.skip("the Salesforce emulator is not installed")
    with sandbox_reset.state.tx() as conn:
        rid = conn.execute('SELECT "Id" FROM sf_account LIMIT 1').fetchone()[0]
    resp = admin(
        sandbox_reset,
        "POST",
        f"records/salesforce/Account/{rid}",
        json={"fields": {"Name": "Edited Co"}},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["Name"] == "Edited Co"


def test_truth_lists_entities(sandbox: Any) -> None:
    truth = admin(sandbox, "GET", "truth", params={"kind": "company"}).json()["truth"]
    assert truth and {t["kind"] for t in truth} == {"company"}
    assert {t["side"] for t in truth} >= {"hubspot"}


def test_reset_restores_demo_data_or_keeps_it(sandbox_reset: Any) -> None:
    created = requests.post(
        f"{sandbox_reset.url}/crm/v3/objects/companies",
        json={"properties": {"name": "Transient"}},
        headers={"Authorization": "Bearer x"},
        timeout=10,
    ).json()["id"]
    kept = admin(sandbox_reset, "POST", "reset", json={"data": False}).json()
    assert kept["reset"] is True
    assert admin(sandbox_reset, "GET", "changes").json()["changes"] == []
    assert hs_get(sandbox_reset, f"/crm/v3/objects/companies/{created}").status_code == 200
    full = admin(sandbox_reset, "POST", "reset").json()
    assert full["demo"]["size"] == "tiny"
    assert hs_get(sandbox_reset, f"/crm/v3/objects/companies/{created}").status_code == 404
    assert len(admin(sandbox_reset, "GET", "truth").json()["truth"]) > 100


def test_reset_and_serve_refuse_a_file_that_is_not_a_sandbox(tmp_path: Any) -> None:
    """`recon sandbox reset --db` deletes files: only a sandbox's own database (or nothing)."""
    from recon.errors import UsageError
    from recon.sandbox.admin import reset_remote
    from recon.sandbox.server import open_state
    from recon.store import open_store

    store = tmp_path / "recon.db"
    open_store(store).conn.close()
    text = tmp_path / "recon.toml"
    text.write_text("[store]\n", encoding="utf-8")
    for path, what in ((store, "a recon store"), (text, "not an SQLite"), (tmp_path, "a folder")):
        with pytest.raises(UsageError, match=what):
            reset_remote(None, path)
        assert path.exists()
    with pytest.raises(UsageError, match="a recon store"):
        open_state(store, size=None)  # serving it would add the sandbox's tables to the store
    sandbox = tmp_path / "sandbox.db"
    open_state(sandbox, size=None).close()
    assert reset_remote(None, sandbox).startswith("deleted") and not sandbox.exists()


def test_a_running_sandboxs_database_is_never_deleted_under_it(tmp_path: Any) -> None:
    """`recon sandbox reset --db` deleted the file of a sandbox still serving from it (its
    data lost at the next start); a second sandbox on the same file overwrote the first's."""
    from recon.errors import UsageError
    from recon.sandbox.admin import reset_remote
    from recon.sandbox.server import SandboxServer, open_state
    from recon.sandbox.state import sandbox_holder

    path = tmp_path / "sandbox.db"
    state = open_state(path, size=None)
    try:
        with SandboxServer(state, port=0) as server:
            assert sandbox_holder(path) == {"pid": os.getpid(), "url": server.url}
            with pytest.raises(UsageError, match="a sandbox serves from it") as refused:
                reset_remote(None, path)
            assert server.url in str(refused.value) and path.exists()
            for reset in (False, True):
                with pytest.raises(UsageError, match="in use by another sandbox"):
                    open_state(path, size=None, reset=reset)
            assert path.exists()
            # not named, only configured: the sandbox serving it is reset instead
            assert reset_remote(None, path, follow=True) == f"reset the sandbox at {server.url}"
    finally:
        state.close()
    assert sandbox_holder(path) is None  # closed: the lock is given up
    assert reset_remote(None, path).startswith("deleted") and not path.exists()
    assert not (tmp_path / "sandbox.db.lock").exists()


def test_reset_with_port_and_db_is_a_usage_error(tmp_path: Any) -> None:
    from recon.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["sandbox", "reset", "--port", "9", "--db", str(tmp_path / "x.db")])
    assert exit_.value.code == 2


def test_a_reset_gives_the_same_ids_again() -> None:
    """The same seed after a reset is the same records under the same ids (a store pulled
    before a reset names records that exist again)."""
    from recon.sandbox.hs_records import bulk_load

    state = SandboxState(":memory:")
    first = bulk_load(state, "companies", [{"name": "A"}, {"name": "B"}])
    state.reset()
    again = bulk_load(state, "companies", [{"name": "A"}, {"name": "B"}])
    assert again == first
