"""Contracts of the pull framework: pages + cursor in one transaction, change-only run ids,
scoping, budget stop and resume, retries — with a scripted in-memory source (the real
clients against the emulator are in tests/sources/)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from recon.config import ReconConfig, load_config
from recon.errors import (
    AuthError,
    BudgetExhausted,
    ErrorClass,
    MissingField,
    RateLimited,
    SourceError,
)
from recon.pull import in_scope, load_cursor, run_pull
from recon.sources.crm import CallMeter, Cursor, Failure, Page, iso_utc


def _row(rid: str, modified: str, email: str | None = "a@x.org", name: str = "n") -> dict[str, Any]:
    return {
        "source": "hubspot", "object": "contacts", "record_id": rid, "name": name, "domain": None,
        "website": None, "email": email, "phone": None, "first_name": None, "last_name": None,
        "company": None, "account_id": None, "city": None, "country": None, "owner_id": None,
        "external_ids": None, "created_at": None, "modified_at": modified, "archived": 0,
        "data": json.dumps({"email": email, "lifecyclestage": "lead" if rid != "3" else "customer"}),
    }  # fmt: skip


class ScriptedSource:
    """A source over a list of records, one API call per page of 2, ordered by modified time."""

    source = "hubspot"

    def __init__(self, records: list[dict[str, Any]], meter: CallMeter) -> None:
        self.records = sorted(records, key=lambda r: (r["modified_at"], r["record_id"]))
        self.meter = meter

    def objects(self) -> tuple[str, ...]:
        return ("contacts",)

    def owners(self) -> Iterator[list[dict[str, Any]]]:
        self.meter.charge("owners")
        yield [
            {
                "source": "hubspot",
                "owner_id": "1",
                "email": "o@x.org",
                "name": "O",
                "active": 1,
                "data": "{}",
            }
        ]

    def pull(
        self,
        obj: str,
        cursor: Cursor,
        *,
        full: bool = False,
        sample: int | None = None,
        schema: Any = None,
        stored: Any = None,
    ) -> Iterator[Page]:
        todo = [
            r for r in self.records
            if full or cursor.value is None or (r["modified_at"] >= cursor.value
            and not cursor.seen(r["record_id"], r["modified_at"]))
        ]  # fmt: skip
        if sample is not None:
            todo = todo[:sample]
        for i in range(0, max(len(todo), 1), 2):
            self.meter.charge("list")
            chunk = todo[i : i + 2]
            cursor.advance([(r["record_id"], r["modified_at"]) for r in chunk])
            yield Page(obj, rows=chunk, cursor=cursor.copy(), fetched=len(chunk), total=len(todo))


def _factory(records: list[dict[str, Any]]):
    return lambda name, cfg, meter: ScriptedSource(records, meter)


@pytest.fixture
def open_sources(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[..., Any]], None]:
    """``open_sources(factory)``: the pulls that follow open each source as
    ``factory(name, cfg, meter)`` instead of the real clients (``recon.pull._open_source``)."""

    def use(factory: Callable[..., Any]) -> None:
        monkeypatch.setattr("recon.pull._open_source", factory)

    return use


RECORDS = [_row(str(i), f"2024-01-0{1 + i // 2}T00:00:00.000Z") for i in range(1, 8)]


def test_run_pull_takes_the_parameters_the_readme_documents() -> None:
    """Notebooks see the documented signature, each parameter in the docstring: no test seam
    (the tests here serve scripted sources through ``open_sources``)."""
    import inspect
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"recon\.pull\.run_pull\(([^)]*)\)", readme)
    assert documented is not None
    names = [part.split("=")[0].strip() for part in documented.group(1).split(",")]
    assert list(inspect.signature(run_pull).parameters) == names
    assert all(f"    {name}: " in (run_pull.__doc__ or "") for name in names)


def test_pull_writes_rows_cursor_and_summary(open_sources, fresh_db) -> None:
    open_sources(_factory(RECORDS))
    result = run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
    assert result.status == "ok"
    assert result.records == {"hubspot:contacts": 7} and result.changed == {"hubspot:contacts": 7}
    assert result.calls == {"hubspot": 1 + 4}
    cur = load_cursor(fresh_db, "hubspot", "contacts", "lastmodifieddate")
    assert cur.value == "2024-01-04T00:00:00.000Z" and cur.ids_at_value == ["6", "7"]
    run = fresh_db["runs"].get(result.run_id)
    summary = json.loads(run["summary"])
    assert run["status"] == "ok" and summary["calls"] == {"hubspot": 5}
    assert summary["sources"]["hubspot"]["objects"]["contacts"]["pages"] == 4
    assert fresh_db["owners"].count == 1


def test_only_changed_rows_get_the_new_run_id(open_sources, fresh_db) -> None:
    open_sources(_factory(RECORDS))
    first = run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
    changed = [dict(r) for r in RECORDS]
    changed[6] = {**changed[6], "name": "renamed", "modified_at": "2024-01-05T00:00:00.000Z"}
    open_sources(_factory(changed))
    second = run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
    # closed start (>=) with the boundary ids skipped: only record 7 is read again
    assert second.records == {"hubspot:contacts": 1}
    runs = dict(fresh_db.execute("select record_id, run_id from snapshots").fetchall())
    assert runs["7"] == second.run_id
    assert {runs[str(i)] for i in range(1, 7)} == {first.run_id}


def test_crash_mid_pull_resumes_without_loss_or_duplicates(open_sources, fresh_db) -> None:
    pages = []

    def crash_after_two(p) -> None:
        pages.append(p)
        if len(pages) == 2:
            raise KeyboardInterrupt

    open_sources(_factory(RECORDS))
    with pytest.raises(KeyboardInterrupt):
        run_pull(
            fresh_db,
            ReconConfig(),
            sources=["hubspot"],
            progress=crash_after_two,
        )
    assert fresh_db["snapshots"].count == 4
    assert fresh_db.execute("select status from runs").fetchone()[0] == "cancelled"
    resumed = run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
    assert resumed.records == {"hubspot:contacts": 3}  # only what was not committed
    ids = [r[0] for r in fresh_db.execute("select record_id from snapshots order by 0 + record_id")]
    assert ids == [str(i) for i in range(1, 8)]


def test_budget_stops_cleanly_and_the_next_run_resumes(open_sources, fresh_db) -> None:
    cfg = load_config(None, overrides={"budget": {"hubspot_calls": 3}})
    open_sources(_factory(RECORDS))
    with pytest.raises(BudgetExhausted) as err:
        run_pull(fresh_db, cfg, sources=["hubspot"])
    assert err.value.exit_code == 6
    assert fresh_db["snapshots"].count == 6  # 3 pages of 2 (owners come last)
    run = fresh_db.execute("select status, summary from runs").fetchone()
    assert run[0] == "budget" and json.loads(run[1])["calls"] == {"hubspot": 3}
    again = run_pull(fresh_db, cfg, sources=["hubspot"])
    assert again.status == "ok" and fresh_db["snapshots"].count == 7


@pytest.mark.parametrize(
    ("filters", "require_email", "kept"),
    [
        ([], True, {"1", "2", "3", "4"}),
        ([], False, {"1", "2", "3", "4", "5"}),
        (
            [
                {
                    "source": "hubspot",
                    "object": "contacts",
                    "field": "lifecyclestage",
                    "op": "eq",
                    "value": "customer",
                }
            ],
            True,
            {"3"},
        ),
        (
            [
                {
                    "source": "hubspot",
                    "object": "contacts",
                    "field": "lifecyclestage",
                    "op": "not_in",
                    "value": ["customer"],
                }
            ],
            False,
            {"1", "2", "4", "5"},
        ),
    ],
)
def test_scoping_filters_apply_on_every_run(
    open_sources, fresh_db, filters, require_email, kept
) -> None:
    records = [
        _row(str(i), "2024-01-01T00:00:00.000Z", email=None if i == 5 else f"{i}@x.org")
        for i in range(1, 6)
    ]
    cfg = load_config(
        None, overrides={"pull": {"filters": filters, "contacts_require_email": require_email}}
    )
    open_sources(_factory(records))
    run_pull(fresh_db, cfg, sources=["hubspot"])
    assert {r[0] for r in fresh_db.execute("select record_id from snapshots")} == kept


def test_sample_pulls_at_most_n_and_leaves_cursors(open_sources, fresh_db) -> None:
    open_sources(_factory(RECORDS))
    result = run_pull(fresh_db, ReconConfig(), sources=["hubspot"], sample=3)
    assert result.records == {"hubspot:contacts": 3}
    assert fresh_db["cursors"].count == 0


def test_in_scope_reads_raw_fields_then_columns() -> None:
    cfg = load_config(
        None,
        overrides={
            "pull": {
                "filters": [
                    {
                        "source": "salesforce",
                        "object": "Account",
                        "field": "country",
                        "op": "in",
                        "value": ["DE", "FR"],
                    }
                ]
            }
        },
    )
    row = {"source": "salesforce", "object": "Account", "country": "de", "data": "{}"}
    assert in_scope(row, cfg)
    assert not in_scope({**row, "country": "US"}, cfg)


def test_filter_groups_are_or_ed_and_filters_without_a_group_hold_for_every_record() -> None:
    def f(field: str, op: str, value: Any = None, group: str | None = None) -> dict[str, Any]:
        return {"source": "hubspot", "object": "contacts", "field": field, "op": op,
                "value": value, "group": group}  # fmt: skip

    cfg = load_config(
        None,
        overrides={
            "pull": {
                "contacts_require_email": False,
                "filters": [
                    f("country", "neq", "US"),  # no group: every record
                    f("lifecyclestage", "eq", "customer", "customers"),
                    f("lifecyclestage", "eq", "lead", "open leads"),
                    f("hs_lead_status", "in", ["OPEN", "NEW"], "open leads"),
                ],
            }
        },
    )

    def row(**data: Any) -> dict[str, Any]:
        return {"source": "hubspot", "object": "contacts", "email": None, "data": json.dumps(data)}

    assert in_scope(row(lifecyclestage="customer"), cfg)
    assert in_scope(row(lifecyclestage="lead", hs_lead_status="open"), cfg)
    assert not in_scope(row(lifecyclestage="lead", hs_lead_status="UNQUALIFIED"), cfg)  # half
    assert not in_scope(row(lifecyclestage="subscriber", hs_lead_status="OPEN"), cfg)
    assert not in_scope(row(lifecyclestage="customer", country="US"), cfg)  # the common one
    # another object's filters are not its scope
    assert in_scope({**row(), "object": "companies"}, cfg)


@pytest.mark.parametrize(
    ("stored", "op", "value", "kept"),
    [
        (1000000.0, "eq", 1000000, True),  # a Salesforce currency comes back as a float
        (1000000.0, "eq", "1000000", True),
        (2.5, "in", ["2.50", "3"], True),
        (True, "eq", "TRUE", True),
        (1000000.0, "neq", 1000000, False),
        ("007", "eq", "7", False),  # text stays text (a postal code is not a number)
    ],
)
def test_filters_compare_numbers_as_numbers(stored: Any, op: str, value: Any, kept: bool) -> None:
    flt = {"source": "salesforce", "object": "Account", "field": "AnnualRevenue", "op": op,
           "value": value}  # fmt: skip
    cfg = load_config(None, overrides={"pull": {"filters": [flt]}})
    row = {
        "source": "salesforce",
        "object": "Account",
        "data": json.dumps({"AnnualRevenue": stored}),
    }
    assert in_scope(row, cfg) is kept


@pytest.mark.parametrize(
    ("op", "value", "kept"),
    [
        ("eq", False, {None, "false"}),
        ("neq", True, {None, "false"}),
        ("eq", True, {"true"}),
        ("in", [False], {None, "false"}),
        ("not_in", [False], {"true"}),
    ],
)
def test_a_checkbox_filter_reads_a_blank_box_as_unticked(op: str, value: Any, kept: set) -> None:  # type: ignore[type-arg]
    """HubSpot leaves a box never ticked blank: `value = false` left every such contact out
    of scope, and the search sent "False" (HubSpot writes "false")."""
    from recon.sources.scope import hubspot_scope

    flt = {"source": "hubspot", "object": "contacts", "field": "hs_email_optout", "op": op,
           "value": value}  # fmt: skip
    cfg = load_config(None, overrides={"pull": {"filters": [flt]}})
    got = set()
    for box in (None, "false", "true"):
        data = {} if box is None else {"hs_email_optout": box}
        row = {
            "source": "hubspot",
            "object": "contacts",
            "email": "a@x.org",
            "data": json.dumps(data),
        }
        if in_scope(row, cfg):
            got.add(box)
    assert got == kept
    pushed = hubspot_scope([("hs_email_optout", op, value)], {"hs_email_optout"})
    # a filter taking in blank boxes is not sent to the search (it would leave them out)
    assert bool(pushed) == (None not in kept)
    assert all(f.get("value", "true") in ("true", "false") for f in pushed)


def test_cursor_advance_and_boundary() -> None:
    c = Cursor("hubspot", "contacts", "lastmodifieddate")
    c.advance([("1", "a"), ("2", "b"), ("3", "b")])
    assert (c.value, c.ids_at_value) == ("b", ["2", "3"])
    assert c.seen("3", "b") and not c.seen("1", "a") and not c.seen("4", "b")
    assert iso_utc("2024-05-06T07:08:09+02:00") == "2024-05-06T05:08:09.000Z"


def test_meter_retries_retryable_and_honours_retry_after() -> None:
    slept: list[float] = []
    meter = CallMeter("hubspot", max_retries=3, sleep=slept.append)
    attempts = iter([RuntimeError(), RuntimeError(), "ok"])

    def fn() -> str:
        v = next(attempts)
        if isinstance(v, Exception):
            raise v
        return v

    out = meter.call(fn, classify=lambda e: Failure(RateLimited("429", retry_after=2), True, 2.0))
    assert out == "ok" and meter.calls == 3 and meter.retries == 2 and slept == [2.0, 2.0]
    assert meter.rate_limited == 2


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Failure(AuthError("401")), AuthError),
        (Failure(SourceError("boom", error_class=ErrorClass.SERVER_ERROR), True), SourceError),
    ],
)
def test_meter_raises_classified_errors(failure, error) -> None:
    meter = CallMeter("salesforce", max_retries=1, sleep=lambda s: None)
    with pytest.raises(error):
        meter.call(lambda: (_ for _ in ()).throw(ValueError()), classify=lambda e: failure)
    assert meter.calls == (2 if failure.retryable else 1)


def test_meter_budget() -> None:
    meter = CallMeter("hubspot", budget=1)
    meter.charge("list")  # a page: the next run resumes after it
    with pytest.raises(BudgetExhausted, match="budget of 1 calls"):
        meter.charge("list")
    # spent by the reads before the first page: no run with this budget reads a page
    meter = CallMeter("hubspot", budget=1)
    meter.charge("properties")
    with pytest.raises(BudgetExhausted, match=r"cannot fit one page: the reads before"):
        meter.charge("list")


def test_source_error_is_recorded_and_raised_after_the_other_source(open_sources, fresh_db) -> None:
    def factory(name, cfg, meter):
        if name == "hubspot":
            raise AuthError("hubspot refused the access token (401)")
        return ScriptedSource([], meter)

    open_sources(factory)
    with pytest.raises(AuthError):
        run_pull(fresh_db, ReconConfig())
    run = fresh_db.execute("select status, summary from runs").fetchone()
    summary = json.loads(run[1])
    assert run[0] == "partial"
    assert summary["sources"]["hubspot"]["error_class"] == "auth_failed"
    assert summary["sources"]["salesforce"]["status"] == "ok"
    # `recon status` groups it by class (it read the summary's top level only: nothing shown)
    from recon.insights import status_report

    assert status_report(fresh_db)["runs"]["pull"]["errors_by_class"] == {"auth_failed": 1}


def test_when_both_sources_fail_the_one_to_act_on_is_raised_naming_the_other(
    open_sources, fresh_db
) -> None:
    """HubSpot's server error came first, Salesforce refused the credentials: the pull
    raises the authentication error (exit 7: a person must act), names HubSpot's error too,
    and a `recon run` counts both classes."""
    from recon.pipeline import _errors_by_class

    def factory(name, cfg, meter):
        if name == "hubspot":
            raise SourceError(
                "hubspot server error (503)",
                error_class=ErrorClass.SERVER_ERROR,
                hint="try again later",
            )
        raise AuthError(
            "salesforce refused the credentials (invalid_grant)", hint="re-copy the key"
        )

    open_sources(factory)
    with pytest.raises(AuthError) as err:
        run_pull(fresh_db, ReconConfig())
    assert int(err.value.exit_code) == 7
    assert err.value.hint == "re-copy the key; try again later"  # what to do about each
    assert str(err.value).startswith(
        "salesforce refused the credentials (invalid_grant); also hubspot server error (503)"
    )
    assert err.value.error_classes == ["server_error", "auth_failed"]  # type: ignore[attr-defined]
    stage = {"pull": {"error_class": "auth_failed", "error_classes": err.value.error_classes}}  # type: ignore[attr-defined]
    assert _errors_by_class(stage) == {"server_error": 1, "auth_failed": 1}


def test_a_source_missing_a_setting_does_not_stop_the_other(open_sources, fresh_db) -> None:
    """A missing HubSpot token (exit 3) stopped the whole pull: Salesforce was not read."""
    from recon.errors import ConfigError

    reached: list[str] = []

    def factory(name, cfg, meter):
        if name == "hubspot":
            raise ConfigError("invalid configuration", problems=[("hubspot.access_token", "no")])
        reached.append(name)
        return ScriptedSource([], meter)

    open_sources(factory)
    with pytest.raises(ConfigError) as err:
        run_pull(fresh_db, ReconConfig())
    assert reached == ["salesforce"] and int(err.value.exit_code) == 3
    summary = json.loads(fresh_db.execute("select summary from runs").fetchone()[0])
    assert summary["sources"]["hubspot"]["error_class"] == "configuration"


class _GoneField(ScriptedSource):
    """Companies name a property that is gone; contacts read fine, or stop on the budget."""

    def __init__(self, records: list[dict[str, Any]], meter: CallMeter, then: str) -> None:
        super().__init__(records, meter)
        self.then = then

    def objects(self) -> tuple[str, ...]:
        return ("companies", "contacts")

    def pull(self, obj: str, cursor: Cursor, **kw: Any) -> Iterator[Page]:
        if obj == "companies":
            raise MissingField(
                "hubspot companies: property 'scratch' no longer exists", hint="fix the mapping"
            )
        if self.then == "budget":
            raise BudgetExhausted("hubspot: the run's budget of 1 calls is spent")
        if self.then == "crash":
            raise RuntimeError("something unforeseen")
        yield from super().pull(obj, cursor, **kw)


@pytest.mark.parametrize("then", ["ok", "budget", "crash"])
def test_a_missing_field_is_named_whatever_stops_the_source_after_it(
    open_sources, fresh_db, then
) -> None:
    """A missing field was collected and the other objects read on, but a later spent budget
    (or an unexpected error) dropped it from the report (the field was never named), and the
    owners were not read."""
    records = [_row("1", "2024-01-01T00:00:00.000Z")]

    def factory(name, cfg, meter):
        return _GoneField(records, meter, then)

    open_sources(factory)
    if then == "crash":  # the error stands; the stored run names the missing field too
        with pytest.raises(RuntimeError):
            run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
        stored = fresh_db.execute("select error from runs where stage = 'pull'").fetchone()[0]
        assert "something unforeseen" in stored and "'scratch' no longer exists" in stored
        return
    with pytest.raises(MissingField if then == "ok" else SourceError) as err:
        run_pull(fresh_db, ReconConfig(), sources=["hubspot"])
    assert "property 'scratch' no longer exists" in str(err.value)
    if then == "budget":
        assert "budget of 1 calls is spent" in str(err.value)  # both are said
    else:  # the other objects and the owners were read before the error
        assert fresh_db["snapshots"].count == 1 and fresh_db["owners"].count == 1


# --------------------------------------------------------------------------- CLI (session sandbox)


def _toml(sandbox, tmp_path, extra: str = "") -> str:
    from recon.sandbox.server import config_toml

    path = tmp_path / "recon.toml"
    path.write_text(config_toml(sandbox.url) + extra, encoding="utf-8")
    return str(path)


def _exit(argv: list[str]) -> int:
    from recon.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0)


def test_cli_pull_both_crms_then_incremental(sandbox, tmp_path, capsys) -> None:
    conf = _toml(sandbox, tmp_path)
    assert _exit(["--config", conf, "pull"]) == 0
    out = capsys.readouterr().out
    assert "hubspot" in out and "Account" in out and ": ok" in out
    from recon.store import open_store

    db = open_store(tmp_path / "data" / "recon.db")
    counts = dict(
        db.execute("select source || ':' || object, count(*) from snapshots group by 1").fetchall()
    )
    assert set(counts) == {
        "hubspot:companies",
        "hubspot:contacts",
        "salesforce:Account",
        "salesforce:Contact",
        "salesforce:Lead",
    }
    assert _exit(["--config", conf, "pull", "--source", "salesforce", "--object", "Lead"]) == 0
    summary = json.loads(
        db.execute("select summary from runs order by rowid desc limit 1").fetchone()[0]
    )
    assert summary["records"] == {"salesforce:Lead": 0} and summary["calls"]["salesforce"] <= 3


def test_cli_pull_budget_exits_6_and_sample(sandbox, tmp_path, capsys) -> None:
    conf = _toml(sandbox, tmp_path, "\n[budget]\nhubspot_calls = 2\n")
    assert _exit(["--config", conf, "pull", "--source", "hubspot"]) == 6
    assert "budget" in capsys.readouterr().err
    conf = _toml(sandbox, tmp_path)
    assert _exit(["--config", conf, "pull", "--source", "hubspot", "--sample", "3"]) == 0
    assert "3" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["pull", "--source", "pipedrive"],
        ["pull", "--file", "x.csv"],
        ["pull", "--sample", "0", "--source", "hubspot"],
    ],
)
def test_cli_pull_usage_errors_exit_2(tmp_path, argv) -> None:
    assert _exit(argv) == 2


def test_cli_pull_file(tmp_path, capsys) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("ID,NAME,WEBSITE\n001000000000001AAA,Acme,acme.com\n", encoding="utf-8")
    assert _exit(["pull", "--file", str(path), "--as", "salesforce:Account"]) == 0
    assert "Account" in capsys.readouterr().out


def test_objects_select_sources_and_unknown_objects_are_usage_errors(
    open_sources, fresh_db
) -> None:
    from recon.errors import UsageError

    opened = []

    def factory(name, cfg, meter):
        opened.append(name)
        return ScriptedSource(RECORDS, meter)

    open_sources(factory)
    run_pull(fresh_db, ReconConfig(), objects=["contacts"])
    assert opened == ["hubspot"]  # Salesforce has no object named contacts: not even signed in
    with pytest.raises(UsageError, match="no object 'Deal'"):
        run_pull(fresh_db, ReconConfig(), objects=["Deal"])


def test_sigkilled_pull_subprocess_resumes_without_loss(sandbox_reset, tmp_path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from recon.store import open_store

    sandbox = sandbox_reset
    sandbox.state.settings.update({"latency_ms": 150})
    conf = _toml(sandbox, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon", "--config", conf, "pull", "--source", "hubspot"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = tmp_path / "data" / "recon.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.exists():
            try:
                if (
                    open_store(store, migrate=False)
                    .execute("select count(*) from snapshots")
                    .fetchone()[0]
                ):
                    break
            except Exception:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = open_store(store).execute("select count(*) from snapshots").fetchone()[0]
    sandbox.state.settings.update({"latency_ms": 0})
    assert _exit(["--config", conf, "pull", "--source", "hubspot"]) == 0
    db = open_store(store)
    got = db.execute(
        "select count(*), count(distinct object || record_id) from snapshots"
    ).fetchone()
    reference = open_store(":memory:")
    from recon.config import load_config

    run_pull(reference, load_config(conf), sources=["hubspot"])
    want = reference.execute("select count(*) from snapshots").fetchone()[0]
    assert 0 < killed_at < want and got == (want, want)


def test_stored_records_that_fall_out_of_scope_are_marked_not_left_stale(
    open_sources, fresh_db
) -> None:
    cfg = ReconConfig()  # contacts_require_email
    records = [_row("1", iso_utc("2024-01-01") or ""), _row("2", iso_utc("2024-01-01") or "")]
    records.append(_row("9", iso_utc("2024-01-01") or "", email=None))  # never in scope
    open_sources(_factory(records))
    run_pull(fresh_db, cfg, sources=["hubspot"])
    assert [r[0] for r in fresh_db.execute("select record_id from snapshots")] == ["1", "2"]
    # contact 2 loses its email in the CRM: still stored, marked out of scope (archived = 2)
    records[1] = _row("2", iso_utc("2024-02-01") or "", email=None)
    gone = run_pull(fresh_db, cfg, sources=["hubspot"])
    state = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    assert state == {"1": 0, "2": 2} and gone.changed == {"hubspot:contacts": 1}
    # it has an email again: live again
    records[1] = _row("2", iso_utc("2024-03-01") or "")
    run_pull(fresh_db, cfg, sources=["hubspot"])
    state = dict(fresh_db.execute("select record_id, archived from snapshots").fetchall())
    assert state == {"1": 0, "2": 0}
