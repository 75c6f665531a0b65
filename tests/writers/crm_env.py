"""Test helpers for apply, audit and the writers: a sandbox, a config on it, records, plans.

Imported by tests/test_apply.py, tests/test_audit.py and tests/writers/ (``tests/`` is on
``sys.path`` through its conftest). The emulator is the shared session ``sandbox``
fixture when tests/conftest.py has it, else one started here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlite_utils

from recon.config import ReconConfig, load_config
from recon.models import canonical_json, now_iso, stable_id
from recon.store import finish_run, open_store, start_run, transaction

#: known secrets: tests grep every table and export for them
HS_TOKEN = "pat-na1-SANDBOX-SECRET-7f3a9c21"
SF_SESSION = "00DSANDBOX!SECRET-SESSION-5b2e8d44"


@pytest.fixture(scope="session")
def _own_sandbox() -> Iterator[Any]:
    from recon.sandbox import SandboxServer, SandboxState

    with SandboxServer(SandboxState(":memory:")) as server:
        yield server


@pytest.fixture(name="crm")
def crm_fixture(request: pytest.FixtureRequest) -> Iterator[CrmEnv]:
    """The emulator (shared ``sandbox`` fixture if there is one), faults cleared after the test."""
    try:
        server = request.getfixturevalue("sandbox")
    except pytest.FixtureLookupError:
        server = request.getfixturevalue("_own_sandbox")
    env = CrmEnv(server.url.rstrip("/"))
    env.clear_faults()
    yield env
    env.clear_faults()


@dataclass
class CrmEnv:
    """The sandbox as tests see it: clients, admin API, config."""

    url: str

    # ------------------------------------------------------------------ config and store

    def config(self, tmp_path: Path, **sections: dict[str, Any]) -> ReconConfig:
        base: dict[str, Any] = {
            "store": {"path": str(tmp_path / "recon.db"), "exports_dir": str(tmp_path / "exports")},
            "hubspot": {"base_url": self.url, "access_token": HS_TOKEN, "portal_id": "999"},
            "salesforce": {"instance_url": self.url, "auth": "session", "session_id": SF_SESSION},
            "apply": {"max_retries": 5},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return load_config(None, overrides=base)

    def db(self, cfg: ReconConfig) -> sqlite_utils.Database:
        return open_store(cfg.store.path)

    # ------------------------------------------------------------------ clients

    def hs(self) -> Any:
        from hubspot import HubSpot

        return HubSpot(access_token=HS_TOKEN, host=self.url)

    def sf(self) -> Any:
        from recon.sources.sf_auth import SalesforceConnection

        cfg = load_config(
            None,
            overrides={
                "salesforce": {
                    "instance_url": self.url,
                    "auth": "session",
                    "session_id": SF_SESSION,
                }
            },
        )
        return SalesforceConnection(cfg.salesforce).sf

    # ------------------------------------------------------------------ admin API

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        resp = requests.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=30)
        assert resp.status_code < 300, resp.text
        return resp.json() if resp.content else None

    def fault(self, **rule: Any) -> None:
        self.admin("POST", "faults", rule)

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_sandbox/faults", timeout=30)

    def edit(self, side: str, obj: str, record_id: str, fields: dict[str, Any]) -> Any:
        return self.admin("POST", f"records/{side}/{obj}/{record_id}", {"fields": fields})

    def changes(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"changes?since={since}")["changes"])

    def last_change(self) -> int:
        rows = self.changes()
        return max((r["seq"] for r in rows), default=0)

    # ------------------------------------------------------------------ records

    def hs_create(self, obj: str, records: list[dict[str, Any]]) -> list[str]:
        mod = _hs_models(obj)
        api = getattr(self.hs().crm, obj).batch_api
        body = mod.BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[mod.SimplePublicObjectBatchInputForCreate(properties=r) for r in records]
        )
        resp = api.create(body)
        key = "name" if obj == "companies" else "email"
        by_key = {rec.properties.get(key): str(rec.id) for rec in resp.results}
        return [by_key[r[key]] for r in records]

    def hs_get(self, obj: str, record_id: str, props: list[str]) -> dict[str, Any]:
        from recon.writers.hubspot import LAST_MODIFIED

        api = getattr(self.hs().crm, obj).basic_api
        rec = api.get_by_id(record_id, properties=[*props, LAST_MODIFIED[obj]])
        return dict(rec.properties)

    def sf_create(self, obj: str, records: list[dict[str, Any]]) -> list[str]:
        payload = {
            "allOrNone": True,
            "records": [{"attributes": {"type": obj}, **r} for r in records],
        }
        results = self.sf().restful("composite/sobjects", method="POST", json=payload)
        assert all(r["success"] for r in results), results
        return [str(r["id"]) for r in results]

    def sf_get(self, obj: str, record_id: str, fields: list[str]) -> dict[str, Any]:
        cols = ", ".join(["Id", "SystemModstamp", *fields])
        rows = self.sf().query(f"SELECT {cols} FROM {obj} WHERE Id = '{record_id}'")["records"]
        return dict(rows[0]) if rows else {}

    def modified(self, system: str, obj: str, record_id: str) -> str:
        if system == "hubspot":
            from recon.writers.hubspot import LAST_MODIFIED

            return str(self.hs_get(obj, record_id, [])[LAST_MODIFIED[obj]])
        return str(self.sf_get(obj, record_id, [])["SystemModstamp"])


def _hs_models(obj: str) -> Any:
    if obj == "companies":
        import hubspot.crm.companies as mod
    else:
        import hubspot.crm.contacts as mod
    return mod


def uid() -> str:
    """A short unique suffix so tests sharing one sandbox never collide."""
    return uuid.uuid4().hex[:10]


# --------------------------------------------------------------------------- plans


#: run order as recon.plan writes it: merges, creates, updates, associations
_SEQ = {"merge": 10, "create": 30, "update": 50, "owner": 50, "associate": 70}


def make_plan(
    db: sqlite_utils.Database,
    items: list[dict[str, Any]],
    *,
    approve: bool = True,
    reviewer: str = "ana@example.com",
) -> str:
    """A plan run with ``items`` (plan_items rows, defaults filled) approved through one link decision."""
    plan = start_run(db, "plan", config={"test": True})
    link = f"pair-{uid()}"
    rows = []
    for seq, item in enumerate(items, start=1):
        row = {
            "run_id": plan,
            "item_id": item.get("item_id")
            or stable_id(plan, seq, item.get("record_id"), item.get("field")),
            "action": "update",
            "system": "hubspot",
            "object": "companies",
            "record_id": None,
            "field": None,
            "before": None,
            "after": None,
            "snapshot_modified_at": None,
            "link_item_id": link,
            "requires": [link],
            "reason": {"rule": "test"},
            "status": "proposed",
            "seq": _SEQ.get(item.get("action", "update"), 50),
            "payload": {},
        }
        row.update(item)
        for col in ("before", "after", "requires", "reason", "payload"):
            row[col] = canonical_json(row[col])
        rows.append(row)
    with transaction(db):
        db["plan_items"].insert_all(rows, pk=("run_id", "item_id"))
        if approve:
            approve_ids(db, [link], reviewer=reviewer, kind="link", label="match")
    finish_run(db, plan, summary={"items": len(rows)})
    return plan


def approve_ids(
    db: sqlite_utils.Database,
    ids: list[str],
    *,
    reviewer: str = "ana@example.com",
    kind: str = "plan",
    label: str = "approve",
) -> None:
    """Record approving decisions for ``ids``."""
    with transaction(db):
        db["decisions"].insert_all(
            [
                {
                    "kind": kind,
                    "item_id": i,
                    "label": label,
                    "decided_by": "human",
                    "reviewer": reviewer,
                    "decided_at": now_iso(),
                    "version": 1,
                    "superseded": 0,
                }
                for i in ids
            ]
        )


def hs_update(
    record_id: str, field: str, before: Any, after: Any, snapshot: str, obj: str = "companies"
) -> dict[str, Any]:
    """A HubSpot field update item."""
    return {
        "action": "update",
        "system": "hubspot",
        "object": obj,
        "record_id": record_id,
        "field": field,
        "before": before,
        "after": after,
        "snapshot_modified_at": snapshot,
        "payload": {"properties": {field: after}},
    }


def hs_merge(crm: CrmEnv, ids: list[str], obj: str = "companies") -> dict[str, Any]:
    """A HubSpot merge item: ``ids[0]`` survives, the others are merged into it."""
    return {
        "action": "merge",
        "system": "hubspot",
        "object": obj,
        "record_id": ids[0],
        "snapshot_modified_at": crm.modified("hubspot", obj, ids[0]),
        "payload": {"master": ids[0], "victims": list(ids[1:])},
    }


def sf_update(
    record_id: str, field: str, before: Any, after: Any, snapshot: str, obj: str = "Account"
) -> dict[str, Any]:
    """A Salesforce field update item."""
    return {
        "action": "update",
        "system": "salesforce",
        "object": obj,
        "record_id": record_id,
        "field": field,
        "before": before,
        "after": after,
        "snapshot_modified_at": snapshot,
        "payload": {"fields": {field: after}},
    }


def create(
    system: str, obj: str, fields: dict[str, Any], natural: str | None = None
) -> dict[str, Any]:
    """A create item."""
    return {
        "action": "create",
        "system": system,
        "object": obj,
        "after": fields,
        "payload": {
            "object": obj,
            "fields": fields,
            **({"natural_key": natural} if natural else {}),
        },
    }
