"""The ``recon`` command line: thin commands over the library.

Each command loads the config, opens the store, calls one library function and
turns library errors into a one-line message and the pinned exit code (see
:mod:`recon.errors`). Unexpected exceptions print one short line plus the path
of the logged traceback.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sqlite3
import sys
import traceback
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import ConfigError, ExitCode, OutputError, ReconError, UsageError, crash_logged, redact

if TYPE_CHECKING:
    import sqlite_utils

    from .apply import Approved
    from .config import ReconConfig


class _Command(typer.core.TyperCommand):
    """A command whose help names its arguments as click does, by their metavar alone.

    Typer writes a required argument as ``{NAME}`` in the usage line and adds a Python-ish
    type (``<path>``, ``<list[Path]>``) beside each argument; here the usage line reads
    ``NAME``, ``[NAME]`` (optional) or ``NAME...`` (several), and the Arguments section lists the
    same ``NAME``. Options name their value with ``metavar=`` (``FILE``, ``DIR``, ``RUN_ID``...).
    """

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            name = _argument_name(param)
            pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(param: Any) -> str:
    """``FILE``, or ``FILE...`` for an argument that takes several values."""
    name = param.metavar or param.name.upper()
    return f"{name}..." if param.nargs != 1 else name


# the store (sqlite-utils, which imports pandas) and the config (pydantic) load on
# first use, so that commands which need neither, such as `match-files`, start fast

app = typer.Typer(
    name="recon",
    help="Reconcile HubSpot and Salesforce: pull, match, review, apply, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console()
err_console = Console(stderr=True)
# into a log file or a pipe, a message stays one line (grep finds it): no wrap at 80 columns
err_console.soft_wrap = not err_console.is_terminal


def _say(text: str) -> None:
    """A plain line on stderr (no markup or highlighting: the text may hold data)."""
    err_console.print(text, markup=False, highlight=False)


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="recon.toml to use (else $RECON_CONFIG, else ./recon.toml).",
    ),
]


class _State:
    config_path: Path | None = None


state = _State()


def _version(value: bool) -> None:
    if value:
        console.print(f"recon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: ConfigOpt = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Log more to stderr: each stage's outcome, retries, rate-limit waits.",
        ),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Reconcile HubSpot and Salesforce: pull, match, review, apply, audit."""
    state.config_path = config
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # urllib3 logs every request line at debug level: a Slack webhook's path is its secret
    logging.getLogger("urllib3").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Redacting) for f in handler.filters):
            handler.addFilter(_Redacting())


class _Redacting(logging.Filter):
    """Blanks every secret recon read or was issued (:func:`recon.errors.redact`) in log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # a traceback's exception text may echo a secret: formatted here, blanked (the
            # formatter prints exc_text when set)
            record.exc_text = redact(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            )
        return True


def get_config(config: Path | None = None) -> ReconConfig:
    """The config named by the command's ``--config``, the global one, or the defaults."""
    from .config import load_config

    return load_config(config or state.config_path)


def open_db(
    cfg: ReconConfig, *, create: bool = False, busy_timeout: float = 30.0
) -> sqlite_utils.Database:
    """Open the store the config names (``busy_timeout``: see :func:`recon.store.open_store`).

    Only ``pull`` (and ``run``, ``demo``) create the store: the other commands refuse a
    store that is not there, config file or not. A command run in the wrong folder, or a
    mistyped ``[store] path``, would otherwise report on a new, empty store ("audit ok:
    0 rows") and leave it (and its folders) behind.
    """
    from .errors import StoreError
    from .store import open_store

    try:
        return open_store(cfg.store.path, create=create, busy_timeout=busy_timeout)
    except StoreError as exc:
        if "no recon store" not in exc.message:
            raise
        named = any(k.upper() == "RECON_STORE__PATH" for k in os.environ)
        if cfg.source_path is not None and not named:
            exc.message += f" (the [store] path of {cfg.source_path})"
            exc.hint = (
                "a project's store is made by its first `recon pull`; if it has one, check "
                "[store] path (relative paths resolve against the config file's folder)"
            )
        elif not named:
            exc.message += " (no recon.toml was found here: the default settings were used)"
        raise


# --------------------------------------------------------------------------- init / status


INIT_TEMPLATE = """\
# recon.toml: one file configures the CLI, the review app, notebooks and headless runs.
# Secrets: write "env:NAME" and export NAME; literal secrets are accepted only for
# loopback hosts (the local sandbox). Relative paths resolve against this file's folder.

[store]
path = "data/recon.db"            # the local SQLite store
exports_dir = "data/exports"      # audit exports
# keep_runs = 3                   # `recon run` keeps the rows of this many plan and match runs

[hubspot]
base_url = "https://api.hubapi.com"
access_token = "env:HUBSPOT_TOKEN"   # private app token
# portal_id = "1234567"              # for record links into HubSpot
salesforce_connector_active = false  # HubSpot refuses company merges while its connector is on
# app_url = "https://app.hubspot.com"  # record links
# objects = ["companies", "contacts"]
# key_property = "recon_key"         # unique property recon creates for idempotent creates
# page_size = 100                    # records per list/search page (at most 100)
# timeout_seconds = 30
# max_retries = 6                    # retries of a 429 / 5xx

[salesforce]
instance_url = "https://example.my.salesforce.com"
login_url = "https://login.salesforce.com"
auth = "client_credentials"          # client_credentials | jwt | password | session
client_id = "env:SF_CLIENT_ID"
client_secret = "env:SF_CLIENT_SECRET"
# username = "integration@example.com"   # jwt and password flows
# password = "env:SF_PASSWORD"
# private_key_file = "keys/sf.pem"       # jwt flow
# session_id = "env:SF_SESSION_ID"       # auth = "session": a token obtained elsewhere
# security_token = "env:SF_SECURITY_TOKEN"   # password flow, when the org asks for one
api_version = "59.0"
# objects = ["Account", "Contact", "Lead"]
# bulk_threshold = 100000        # above this many records, a Bulk API 2.0 query
# timeout_seconds = 60
# max_retries = 6
# max_org_usage = 0.8                # share of the org's daily API allocation recon may use

[pull]
# lag_seconds = 1                # re-read this margin before the cursor (default: Salesforce 1, HubSpot 0)
# hubspot_index_delay_seconds = 120  # HubSpot search finds a change this late: the cursor stays behind
archived_sweep_hours = 24        # how often to look for archived/deleted records
schema_refresh_hours = 24        # re-read properties/describe when older (always on --full)
owners_refresh_hours = 24        # re-read owners/Users when older (always on --full)
contacts_require_email = true    # sync only contacts with an email (HubSpot's default)
# include_deleted = false        # Salesforce queryAll (deleted records too)
# hubspot_properties = { contacts = ["favorite_color"] }   # extra properties per object
# salesforce_fields = { Lead = ["Rating"] }                # extra fields per object
# [[pull.filters]]               # scoping: only records matching the filters are synced
# source = "hubspot"             # ops: eq neq in not_in has_value no_value contains
# object = "contacts"
# field = "hs_lead_status"
# op = "in"
# value = ["OPEN", "NEW"]
# group = "open leads"           # optional: filters of one group must all match, and a
#                                # record needs one of its object's groups (OR of ANDs)

[match]
# settings_file = "match_settings.json"   # declarative MatchSettings; defaults otherwise
# objects = ["companies", "contacts"]
# thresholds = { auto = 0.99, review = 0.9 }   # also duplicate_auto, duplicate_review, cluster_min

[mapping]
companies = "two_way"            # two_way | hubspot_to_salesforce | salesforce_to_hubspot | off
contacts = "two_way"
default_rule = "prefer_salesforce_unless_blank"
new_contact_as = "Lead"          # a new HubSpot contact becomes a Lead (or Contact)
# rules = { "contacts.jobtitle" = "two_way", "contacts.fax" = "dont_sync" }
# rules: prefer_salesforce_unless_blank | always_salesforce | two_way | prefer_hubspot_unless_blank
#        | always_hubspot | review | dont_sync (defaults cannot be removed, only set to dont_sync)
create_missing = true            # plan creates of unmatched records on the other side
create_accounts = "with_contacts"  # an Account only for a company with a contact linked to a Contact (or "always")
master_rule = "oldest"           # oldest | most_recent | most_complete | most_associated | source_priority
# source_priority = ["Account", "Contact", "Lead", "companies", "contacts"]   # for source_priority
lifecycle_to_company = true      # contacts' lifecycle stage onto their company
# campaign_property = "sf_campaigns"   # Salesforce campaign names into this HubSpot contact property
# [[mapping.fields]]             # custom mappings, e.g.
# object = "contacts"
# hubspot = "birthday"
# salesforce = "Birthdate"
# salesforce_object = "Contact"
# rule = "two_way"
# options = { "PARTNER" = "Partner" }   # picklists: HubSpot option value = Salesforce value

[policy]
# enabled = true                 # false: headless runs approve nothing on their own
link_tiers = ["auto"]            # headless runs approve only these tiers of links
# duplicate_tiers = []           # and these tiers of duplicate clusters (merged only with merges)
# objects = ["companies", "contacts"]
merges = false                   # never merge unattended unless true (= --confirm-merges)
# conflicts = false              # true: take the plan's proposed value for a conflict
# creates = false                # true: create records missing on the other side
# max_writes = 5000              # a headless apply that would send more is held (exit 8)

[notify]
# slack_webhook = "env:SLACK_WEBHOOK_URL"
# webhook_url = "env:RECON_WEBHOOK_URL"
on_success = false
# timeout_seconds = 10
# retries = 3

[budget]
# hubspot_calls = 10000          # per-run API call budget; the run stops cleanly and resumes
# salesforce_calls = 10000

[apply]
hubspot_batch_size = 100         # inputs per HubSpot batch call (at most 100)
salesforce_batch_size = 200      # records per sObject Collections call (at most 200)
max_retries = 5                  # retries of a 429 / 5xx before an item fails

[review]
# reviewer = "analyst@example.com"   # when nobody signed in on the page and $RECON_REVIEWER is unset
host = "127.0.0.1"                 # the address `recon review` binds; the app has no sign-in: keep it on loopback
port = 8501
# page_size = 50                   # queue items per page
# open_browser = true              # false: serve only (same as --no-browser)

[sandbox]
host = "127.0.0.1"                 # `recon sandbox` and `recon demo`: the local emulators
port = 8765
db = "data/sandbox.db"
size = "small"                     # tiny | small | large
seed = 0
"""


@app.command(cls=_Command)
def init(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the config.")] = Path(
        "recon.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented recon.toml with every section."""
    if path.is_dir():
        raise OutputError(
            f"cannot write the config {path}: it is a folder",
            path=path,
            hint=f"name a file, e.g. {path / 'recon.toml'}",
        )
    if path.exists() and not force:
        raise UsageError(f"{path} exists", hint="pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(INIT_TEMPLATE, encoding="utf-8")
    except OSError as exc:
        raise OutputError.writing("the config", path, exc, option="FILE") from None
    console.print(f"wrote {path}")


def _list_runs(db: sqlite_utils.Database, stage: str, limit: int, as_json: bool) -> None:
    """``recon status --runs STAGE``: the newest runs, whole ids."""
    from .insights import RUN_STAGES, runs_frame

    if stage not in (*RUN_STAGES, "all"):
        raise UsageError(
            f"--runs {stage!r} is no stage", hint="give one of " + ", ".join((*RUN_STAGES, "all"))
        )
    frame = runs_frame(db, None if stage == "all" else stage).reverse().head(limit)
    rows = frame.to_dicts()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if not rows:
        console.print(f"no {'' if stage == 'all' else stage + ' '}runs in the store", markup=False)
        return
    table = Table(title=f"{'runs' if stage == 'all' else stage + ' runs'}, newest first")
    width = max(len(r["run_id"]) for r in rows)
    table.add_column("run", no_wrap=True, min_width=width)  # ids are never cut
    for col in ("stage", "status", "started", "ended", "part of"):
        table.add_column(col)
    for r in rows:
        note = (f" (sample {r['sample']})" if r["sample"] else "") + (
            " (dry run)" if r["dry_run"] else ""
        )
        table.add_row(
            r["run_id"], r["stage"], f"{r['status']}{note}", r["started_at"],
            r["ended_at"] or "", r["parent_id"] or "",
        )  # fmt: skip
    console.print(table)


@app.command(cls=_Command)
def status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    runs: Annotated[
        str | None,
        typer.Option(
            "--runs",
            metavar="STAGE",
            help="List the runs of a stage (pull, match, plan, apply, run, or all), newest first, "
            "with their whole ids (for --plan, `recon undo`...), instead of the summary.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="How many runs --runs lists.")
    ] = 20,
) -> None:
    """Show what the store holds per stage: records, runs, reviews waiting, last apply."""
    from .insights import status_report

    cfg = get_config(config)
    if runs is not None:
        _list_runs(open_db(cfg), runs, limit, as_json)
        return
    path = Path(cfg.store.path)
    made = str(path) == ":memory:" or path.exists()
    if not made and cfg.source_path is not None:
        # a new project's status, without making its store (nor a mistyped path's)
        from .store import open_store

        db = open_store(":memory:")
    else:
        db = open_db(cfg)
    info = status_report(db)
    info["store"] = str(cfg.store.path)
    info["store_exists"] = made
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2, default=str) + "\n")
        return
    console.print(f"store: {cfg.store.path}", markup=False, highlight=False)
    if not made:
        console.print(
            f"no store there yet: a project's store is made by its first `recon pull` (if it "
            f"has one, check [store] path in {cfg.source_path})",
            markup=False,
            highlight=False,
        )
    table = Table(title="records")
    for col in ("source", "object", "records", "archived", "last modified"):
        table.add_column(col)
    for row in info["records"]:
        table.add_row(
            row["source"],
            row["object"],
            str(row["records"]),
            str(row["archived"] or 0),
            str(row["last_modified"] or ""),
        )
    console.print(table)
    last = Table(title="last run per stage (all runs: --runs STAGE)")
    width = max((len(r["run_id"]) for r in info["runs"].values()), default=3)
    for col in ("stage", "run", "status", "started", "ended", "API calls", "errors by class"):
        # run ids are never cut (they are what --plan and `recon undo` take)
        wide = col == "run"
        last.add_column(col, no_wrap=wide, min_width=width if wide else None)
    for stage, row in info["runs"].items():
        calls = ", ".join(f"{k}={v}" for k, v in row.get("api_calls", {}).items())
        errors = ", ".join(f"{k}={v}" for k, v in row.get("errors_by_class", {}).items())
        last.add_row(
            stage,
            row["run_id"],
            row["status"]
            + (f" (sample {row['sample']})" if row.get("sample") else "")
            + (" (dry run)" if row.get("dry_run") else ""),
            row["started_at"],
            row["ended_at"] or "",
            calls,
            errors,
        )
    console.print(last)
    by_kind = info.get("waiting_by_kind") or {}
    detail = " (" + ", ".join(f"{k}: {v}" for k, v in by_kind.items()) + ")" if by_kind else ""
    console.print(
        f"waiting for review: {info['waiting_for_review']}{detail}   decisions: {info['decisions']}",
        markup=False,
        highlight=False,
    )


# --------------------------------------------------------------------------- pull


def _pull_table(summary: dict[str, Any]) -> Table:
    table = Table(title="pull")
    for col in ("source", "object", "records", "changed", "pages", "calls"):
        table.add_column(col, justify="left" if col in ("source", "object") else "right")
    for source, info in summary.get("sources", {}).items():
        for obj, stats in info.get("objects", {}).items():
            table.add_row(
                source,
                obj,
                str(stats["fetched"]),
                str(stats["written"]),
                str(stats["pages"]),
                str(stats.get("calls", "")),
            )
        status = info.get("status", "")
        table.add_row(
            source, f"(all) {status}", "", "", "", str(summary.get("calls", {}).get(source, 0))
        )
    if "file" in summary:
        changed = summary.get("changed", {})
        for key, n in summary.get("records", {}).items():
            table.add_row(*key.split(":", 1), str(n), str(changed.get(key, n)), "", "0")
    return table


@app.command(cls=_Command)
def pull(
    config: ConfigOpt = None,
    source: Annotated[
        str, typer.Option("--source", metavar="SOURCE", help="hubspot, salesforce or all.")
    ] = "all",
    objects: Annotated[
        list[str] | None,
        typer.Option(
            "--object",
            metavar="OBJECT",
            help="Only this object (repeatable): companies, contacts, Account, Contact, Lead...",
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Re-read everything instead of changes since the cursor.")
    ] = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            metavar="N",
            help="At most N records per object (a test run; cursors untouched).",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="Load a CRM export file instead of calling the APIs (the scoping filters apply).",
        ),
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="SOURCE:OBJECT",
            help="What --file holds: hubspot:companies|hubspot:contacts|salesforce:Account|"
            "salesforce:Contact|salesforce:Lead|salesforce:contacts (Contacts and Leads in one file).",
        ),
    ] = None,
) -> None:
    """Pull companies and contacts from HubSpot and Accounts, Contacts, Leads from Salesforce."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from .lock import store_lock
    from .pull import PullProgress, load_file, run_pull
    from .store import get_run, resolve_run_id

    if (file is None) != (as_ is None):
        raise UsageError(
            "--file and --as go together", hint="e.g. --file companies.csv --as hubspot:companies"
        )
    if source not in ("hubspot", "salesforce", "all"):
        raise UsageError(f"unknown --source {source!r}", hint="use hubspot, salesforce or all")
    if file is not None:
        # a file is loaded whole: options of an API pull would be silently ignored
        extra = [
            name
            for name, given in (("--source", source != "all"), ("--object", bool(objects)),
                                ("--full", full), ("--sample", sample is not None))
            if given
        ]  # fmt: skip
        if extra:
            raise UsageError(
                f"{', '.join(extra)} do{'es' if len(extra) == 1 else ''} not apply to --file",
                hint="--as says what the file holds; a file is always loaded whole",
            )
        if file.is_dir():
            raise UsageError(f"--file {file} is a folder", hint="name the export file itself")
    if as_ is not None:
        from .sources.files import AS_CHOICES, check_file, parse_as

        try:
            parse_as(as_)
        except ReconError:
            raise UsageError(
                f"unknown --as {as_!r}", hint=f"use one of: {', '.join(AS_CHOICES)}"
            ) from None
        if file is not None:
            check_file(file)  # a mistyped name makes no store and records no failed run
    cfg = get_config(config)
    db = open_db(cfg, create=True)
    sources = ["hubspot", "salesforce"] if source == "all" else [source]
    with store_lock(db, holder="pull", heartbeat_every=30):
        if file is not None and as_ is not None:
            result = load_file(db, file, as_, cfg=cfg)
            console.print(_pull_table(result.summary))
            if n := result.summary.get("out_of_scope"):
                console.print(
                    f"{n:,} row{'' if n == 1 else 's'} out of scope (\\[pull] filters, "
                    "contacts_require_email): not stored"
                )
            if n := result.summary.get("older"):
                console.print(
                    f"{n:,} row{'' if n == 1 else 's'} left alone: the store holds a newer version"
                )
            if n := result.summary.get("no_time"):
                console.print(
                    f"{n:,} row{'' if n == 1 else 's'} left alone: no modification time to show "
                    "they are newer than the stored records (export the last-modified column)"
                )
            if n := result.summary.get("absent"):
                console.print(
                    f"{n:,} record{'' if n == 1 else 's'} an earlier export loaded "
                    f"{'is' if n == 1 else 'are'} not in this file: kept as they were (deleted "
                    "in the CRM? a filtered export?); `recon pull` reads deletions"
                )
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        with Progress(
            *columns, console=err_console, transient=False, disable=not err_console.is_terminal
        ) as bar:
            tasks: dict[str, Any] = {}

            def show(p: PullProgress) -> None:
                key = f"{p.source}:{p.object}"
                if key not in tasks:
                    tasks[key] = bar.add_task(key, total=p.total, info="")
                bar.update(
                    tasks[key],
                    completed=p.records,
                    total=max(p.total or 0, p.records) or None,
                    info=f"pages {p.pages} · calls {p.calls}",
                )

            earlier = resolve_run_id(db, None, "pull")
            try:
                result = run_pull(
                    db,
                    cfg,
                    sources=sources,
                    objects=objects,
                    full=full,
                    sample=sample,
                    progress=show,
                )
            except ReconError:
                # what this pull did before it failed (none when it failed before it started)
                run_id = resolve_run_id(db, None, "pull")
                if run_id and run_id != earlier:
                    console.print(_pull_table(get_run(db, run_id)["summary"]))
                raise
    console.print(_pull_table(result.summary))
    console.print(f"run {result.run_id}: {result.status}")


# --------------------------------------------------------------------------- match


@app.command(cls=_Command)
def match(
    config: ConfigOpt = None,
    object_: Annotated[
        list[str] | None,
        typer.Option(
            "--object",
            metavar="OBJECT",
            help="companies or contacts (repeatable; default: [match] objects).",
        ),
    ] = None,
    train: Annotated[
        bool, typer.Option("--train", help="Re-estimate m from human review decisions first.")
    ] = False,
) -> None:
    """Match records across HubSpot and Salesforce and find duplicates inside each."""
    from .lock import store_lock
    from .match import run_match, train_from_decisions
    from .match.run import settings_for
    from .models import entity_objects

    cfg = get_config(config)
    db = open_db(cfg)
    objects = tuple(object_ or cfg.match.objects)
    bad = [o for o in objects if o not in ("companies", "contacts")]
    if bad:
        raise UsageError(f"unknown --object {bad[0]!r}", hint="use companies or contacts")
    settings: dict[str, Any] | ReconConfig = cfg
    if train:
        settings = {o: train_from_decisions(db, o, settings_for(o, cfg))[0] for o in objects}
    # one writer at a time: a match run beside a scheduled run's pull would read it half-done
    with (
        store_lock(db, holder="match", heartbeat_every=30),
        err_console.status(f"matching {', '.join(objects)}…"),
    ):
        if not db.execute("select 1 from snapshots limit 1").fetchone():
            raise UsageError(
                "there are no pulled records to match",
                hint="run `recon pull` (or `pull --file`) first",
            )
        held: dict[str, bool] = {}
        for obj in objects:
            kinds = entity_objects(obj)
            marks = ", ".join("?" * len(kinds))
            held[obj] = bool(
                db.execute(
                    f"select 1 from snapshots where object in ({marks}) limit 1", list(kinds)
                ).fetchone()
            )
        if not object_ and any(held.values()):
            # the configured objects: those nothing was pulled for are left out, said (a
            # store of company files alone was refused: "no pulled contacts")
            for obj in (o for o in objects if not held[o]):
                err_console.print(
                    f"note: no {obj} were pulled: only {', '.join(o for o in objects if held[o])}"
                    " matched",
                    markup=False,
                    highlight=False,
                )
            objects = tuple(o for o in objects if held[o])
        for obj in (o for o in objects if not held[o]):
            raise UsageError(
                f"there are no pulled {obj} to match",
                hint=f"pull them first (`recon pull`, or `pull --file` with --as …:{obj})",
            )
        run_id = run_match(db, settings, objects=objects)
    table = Table(title=f"match run {run_id}")
    for col in ("object", "kind", "tier", "pairs"):
        table.add_column(col)
    for row in db.query(
        "select object, kind, tier, count(*) as n from pairs where run_id = ? "
        "group by object, kind, tier order by object, kind, tier",
        [run_id],
    ):
        table.add_row(row["object"], row["kind"], row["tier"], str(row["n"]))
    console.print(table)
    stored = db.execute("select summary from runs where run_id = ?", [run_id]).fetchone()
    for entity, info in json.loads(stored[0] or "{}").items() if stored else ():
        for warning in info.get("warnings", []) if isinstance(info, dict) else ():
            err_console.print(f"warning: {entity}: {warning}", markup=False, highlight=False)


@app.command("match-files", cls=_Command)
def match_files(
    hubspot_file: Annotated[
        Path,
        typer.Argument(
            metavar="HUBSPOT_FILE", help="HubSpot companies or contacts export (CSV/XLSX)."
        ),
    ],
    salesforce_files: Annotated[
        list[Path],
        typer.Argument(
            metavar="SALESFORCE_FILE",
            help="Salesforce Account exports, or Contact and/or Lead exports.",
        ),
    ],
    object_: Annotated[
        str, typer.Option("--object", metavar="OBJECT", help="companies or contacts.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for links.csv and duplicates.csv."),
    ],
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", metavar="FILE", help="MatchSettings JSON file (else the defaults)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary (counts, seconds) as JSON.")
    ] = False,
) -> None:
    """Match CRM export files (no store) and write DIR/links.csv and DIR/duplicates.csv."""
    from .match_files import match_files as run_match_files
    from .match_files import read_settings

    summary = run_match_files(
        hubspot_file,
        salesforce_files,
        entity=object_,
        out_dir=out,
        settings=read_settings(settings, object_),
    )
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    tiers = ", ".join(f"{t} {n}" for t, n in summary["links_by_tier"].items())
    console.print(
        f"{summary['links']} links ({tiers}), {summary['duplicates']} duplicate pairs -> {out}"
    )


@app.command("eval", cls=_Command)
def eval_(
    out_dir: Annotated[
        Path | None, typer.Argument(metavar="DIR", help="Folder with links.csv and duplicates.csv.")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", metavar="TRUTH_DIR", help="Folder with truth_entities.csv."),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option("--labels", help="Precision per tier from human review labels in the store."),
    ] = False,
    run_id: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID", help="Match run for --labels (default: latest)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Score match output against truth files or review labels: precision, recall, F1."""
    from .evaluate import score_files, score_labels

    if labels and (out_dir is not None or truth is not None):
        # one of them would be ignored without a word: the table would not be what was asked
        raise UsageError(
            "--labels scores the store's review labels; DIR and --truth score match-files output",
            hint="give DIR --truth TRUTH_DIR, or --labels [--run RUN_ID]",
        )
    if run_id is not None and not labels:
        raise UsageError("--run names the match run of --labels", hint="add --labels")
    if labels:
        result = score_labels(open_db(get_config(config)), run_id)
    elif out_dir is None or truth is None:
        raise UsageError(
            "give DIR and --truth TRUTH_DIR, or --labels", hint="see `recon eval --help`"
        )
    else:
        result = score_files(out_dir, truth)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return
    table = Table(
        title=f"labels of match run {result['run_id']}" if labels else f"{out_dir} vs {truth}"
    )
    cols = (
        ("kind", "tier", "pairs", "labelled", "precision")
        if labels
        else ("", "n", "precision", "recall", "f1")
    )
    for col in cols:
        table.add_column(col)
    if labels:
        for kind in ("links", "duplicates"):
            for tier, c in sorted(result[kind].items()):
                table.add_row(kind, tier, str(c["pairs"]), str(c["labelled"]), str(c["precision"]))
    else:
        for key, c in result.items():
            if key == "warnings":
                continue
            n = c.get("n", c.get("pairs"))
            table.add_row(key, str(n), str(c["precision"]), str(c["recall"]), str(c["f1"]))
    console.print(table)
    for warning in result.get("warnings") or ():
        err_console.print(f"warning: {warning}", markup=False, highlight=False)


# --------------------------------------------------------------------------- plan


@app.command(cls=_Command)
def plan(
    config: ConfigOpt = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="RUN_ID",
            help="Match run (or parent `recon run`) to plan from; default: the latest.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Compute and show the plan without storing a plan run."),
    ] = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="Output: table (counts and a preview), csv (counts) or json (summary).",
        ),
    ] = "table",
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=1,
            metavar="N",
            help="Plan for at most N links and clusters per object, and N creates from each "
            "source object (links and records skipped along the way do not count).",
        ),
    ] = None,
    items_out: Annotated[
        str | None,
        typer.Option(
            "--items",
            metavar="PATH",
            help="Also write every item, one row each in run order, to this file (.csv, .jsonl, "
            ".parquet or .xlsx; a folder gets <plan run>.csv).",
        ),
    ] = None,
) -> None:
    """Build the change plan from matches, mappings and conflict rules (nothing is written to a CRM)."""
    from .lock import store_lock
    from .plan import build_plan
    from .plan_run import export_items, items_format, render_plan

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format must be table, csv or json, not {fmt!r}")
    if items_out is not None:
        items_format(items_out)  # a bad name is said before the plan is built
    cfg = get_config(config)
    db = open_db(cfg)
    # a stored plan waits for no one but takes its turn (a dry run stores nothing: no lock)
    held: AbstractContextManager[Any] = (
        nullcontext() if dry_run else store_lock(db, holder="plan", heartbeat_every=30)
    )
    with held, err_console.status("planning (a large store takes a minute)…"):
        result = build_plan(db, cfg, match_run_id=run_id, sample=sample, dry_run=dry_run)
    render_plan(result, fmt, console)
    if items_out is not None:
        wrote = export_items(result, items_out)
        err_console.print(f"wrote {wrote['rows']:,} items to {wrote['path']}", highlight=False)


@app.command(cls=_Command)
def prune(
    config: ConfigOpt = None,
    keep: Annotated[
        int | None,
        typer.Option(
            "--keep",
            min=1,
            metavar="N",
            help="Runs of each stage that keep their rows (default: [store] keep_runs, else 3).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Delete the rows of old plan and match runs (kept: the newest, applied plans and what they need)."""
    from .lock import store_lock
    from .store import prune_runs

    cfg = get_config(config)
    db = open_db(cfg)
    with store_lock(db, holder="prune"):
        result = prune_runs(db, keep or cfg.store.keep_runs or 3, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"{verb} (keeping the newest {result['keep']} runs of each stage)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in result["rows"].items():
        table.add_row(name, str(n))
    console.print(table)
    done = "to prune" if dry_run else "pruned"  # a dry run deleted nothing
    for stage, runs in result["runs"].items():
        console.print(f"{stage} runs {done}: {len(runs)}", markup=False, highlight=False)


# --------------------------------------------------------------------------- review


@app.command(cls=_Command)
def review(
    config: ConfigOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            metavar="PORT",
            help="Port to serve on (default: [review] port, 8501).",
        ),
    ] = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Serve only; do not open a browser tab.")
    ] = False,
) -> None:
    """Open the review app in the browser (links, duplicates, conflicts, stale writes); binds 127.0.0.1 by default."""
    import signal
    import subprocess

    from .app import BUSY_TIMEOUT, port_in_use, streamlit_command
    from .config import is_loopback_url
    from .errors import LockedError
    from .review import ensure_queue

    cfg = get_config(config)
    import socket

    serve_port = port or cfg.review.port
    host = cfg.review.host
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    try:
        busy = port_in_use(host, serve_port)
    except socket.gaierror as exc:
        raise UsageError(
            f"[review] host {host!r} does not resolve ({exc.strerror})",
            hint="use an address of this machine, such as 127.0.0.1",
        ) from None
    except OSError as exc:
        raise UsageError(
            f"[review] host {host!r} is not an address of this machine ({exc.strerror})",
            hint="use an address of this machine, such as 127.0.0.1 (or 0.0.0.0 for all)",
        ) from None
    if busy:
        raise UsageError(
            f"port {serve_port} on {host} is in use (another review app?)",
            hint="stop it, or pass --port with a free port",
        )
    if not is_loopback_url(f"http://{shown}/"):
        err_console.print(
            f"warning: the review app has no sign-in and binds {cfg.review.host}: anyone who "
            "can reach it can decide and apply; keep [review] host on 127.0.0.1 behind a proxy "
            "that authenticates",
            markup=False,
            highlight=False,
        )
    # fails here, with a clear message, if the store cannot open; a busy store is said within
    # seconds, as the page says it (a queue already indexed is only read: no wait)
    db = open_db(cfg, busy_timeout=BUSY_TIMEOUT)
    try:
        with console.status("indexing the review queue (once per match or plan run)"):
            queue = ensure_queue(db)
    except LockedError as exc:
        raise LockedError(
            f"the review queue is not indexed for the latest runs yet, and {exc.message}",
            hint="wait until it is done (`recon status` shows what runs), then run `recon review` "
            "again; once the queue is indexed, the page starts while other commands write",
        ) from None
    finally:
        db.conn.close()
    console.print(f"review queue: {queue['items']:,} items", markup=False)
    argv, env = streamlit_command(cfg, port=port, open_browser=False if no_browser else None)
    url = f"http://{shown}:{serve_port}/"
    console.print(f"recon review: serving {url} (Ctrl-C stops it)")
    proc = subprocess.Popen(argv, env=env)

    def stop(_signum: int, _frame: Any) -> None:  # a SIGTERM (a service stop) stops the app too
        proc.terminate()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the app got the Ctrl-C as well: let it finish
        code = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


# --------------------------------------------------------------------------- apply / audit / undo


def _apply_summary(result: Any) -> None:
    table = Table(title=f"apply {result.run_id}" + (" (dry run)" if result.dry_run else ""))
    table.add_column("")
    table.add_column("items", justify="right")
    table.add_row("would apply" if result.dry_run else "applied", str(result.applied))
    for cls, n in result.failed.items():
        table.add_row(f"failed: {cls}", str(n))
    table.add_row("skipped", str(result.skipped))
    table.add_row("stale (back to review)", str(result.stale))
    if result.pending:
        table.add_row("not finished (resume)", str(result.pending))
    for system, n in result.api_calls.items():
        # a dry run counts the write batches it would send (stale-check reads come on top)
        label = "API write calls (would send)" if result.dry_run else "API calls"
        table.add_row(f"{label}: {system}", str(n))
    console.print(table)
    console.print(f"audit anchor: {result.anchor or '-'}", markup=False, highlight=False)


def _refused_lines(db: sqlite_utils.Database, result: Any) -> None:
    """Name the items an apply run refused as stale or saw fail (the first ten)."""
    from .apply import refused_items

    if result.dry_run or not (result.stale or result.failed_total):
        return
    total, rows = refused_items(db, result.run_id)
    if not rows:
        return
    shown = f"first {len(rows)} of {total:,}" if total > len(rows) else f"{total:,}"
    console.print(f"stale and failed items ({shown}):", markup=False, highlight=False)
    for r in rows:
        what = " ".join(
            str(v) for v in (r["action"], r["system"], r["object"], r["record_id"]) if v
        ) + (f" {r['field']}" if r["field"] else "")
        label = "stale" if r["state"] == "stale" else f"failed ({r['error_class'] or 'error'})"
        console.print(f"  {label}: {what}: {r['detail']}", markup=False, highlight=False)
    if result.stale:
        console.print(
            "stale items changed in the CRM since review: decide them again in `recon review`; "
            "the next `recon apply` sends those approved",
            markup=False,
            highlight=False,
        )
    console.print(
        f"all of them: `recon audit export --run {result.run_id} --out audit.csv`",
        markup=False,
        highlight=False,
    )


def _apply_question(
    db: sqlite_utils.Database, plan_run: str | None, confirm_merges: bool
) -> tuple[str | None, Approved | None]:
    """The confirmation question, with what the apply would send, and the approved items
    read for it (:class:`recon.apply.Approved`, passed on to the apply); no question (and a
    note) when the plan holds nothing approved that waits to be sent."""
    from .apply import pending_items, read_approved
    from .store import resolve_run_id

    plan = resolve_run_id(db, plan_run, "plan", finished=True)
    if plan is None:
        # apply says what is wrong
        return "Write the approved changes to HubSpot and Salesforce?", None
    approved = read_approved(db, plan)
    pending = pending_items(db, plan, approved)
    merges = sum(1 for i in pending if i.get("action") == "merge")
    sent = len(pending) - (0 if confirm_merges else merges)
    if sent == 0:
        waiting = db.execute(
            "select count(*) from plan_items where run_id = ? and status != 'blocked'", [plan]
        ).fetchone()[0]
        note = f"nothing to apply: plan {plan} has no approved change waiting to be sent"
        if merges:
            note += f" but {merges:,} merge(s), sent only with --confirm-merges"
        elif waiting:
            note += (
                f" (of its {waiting:,} items, none is approved and unsent: approve links, "
                "duplicates and conflicts in `recon review`, or by [policy] in `recon run`)"
            )
        console.print(note, markup=False, highlight=False)
        return None, approved
    per_action = Counter(str(i.get("action")) for i in pending)
    if not confirm_merges:
        per_action.pop("merge", None)
    what = ", ".join(f"{a} {n:,}" for a, n in sorted(per_action.items()))
    skipped = (
        f"; {merges:,} merge(s) skipped without --confirm-merges"
        if merges and not confirm_merges
        else ""
    )
    question = f"Write {sent:,} approved change(s) of plan {plan} ({what}{skipped}) to HubSpot and Salesforce?"
    return question, approved


@app.command(cls=_Command)
def apply(
    config: ConfigOpt = None,
    plan_run: Annotated[
        str | None,
        typer.Option(
            "--plan",
            metavar="RUN_ID",
            help="Plan run (or `recon run` id) to apply; default the latest.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Send nothing; show what would be sent.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Finish an interrupted apply (of --plan, else the latest one interrupted; "
            "sent items are checked in the CRM first). Without one it is an error.",
        ),
    ] = False,
    confirm_merges: Annotated[
        bool,
        typer.Option(
            "--confirm-merges", help="Allow merges (irreversible); without it they are skipped."
        ),
    ] = False,
) -> None:
    """Write approved changes to HubSpot and Salesforce: batched, resumable, audited."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .apply import apply_plan
    from .errors import BudgetExhausted, PartialFailure

    cfg = get_config(config)
    db = open_db(cfg)
    if resume:  # a dry run too: it shows what the resume would send, of the stopped apply's plan
        from .apply import unfinished_apply
        from .store import resolve_run_id

        plan = resolve_run_id(db, plan_run, "plan") if plan_run else None
        pending = unfinished_apply(db, plan)
        if pending is None:
            raise UsageError(
                "there is no interrupted apply to resume" + (f" of plan {plan}" if plan else ""),
                hint="`recon apply` (without --resume) applies the latest plan",
            )
        plan_run = pending[1]  # the plan of the apply to finish, not a newer one
    approved: Approved | None = None  # read for the question: the apply does not read them again
    if not resume:
        question, approved = _apply_question(db, plan_run, confirm_merges)
        if question is None:
            return  # nothing waits to be sent: said so, and no apply run is recorded
    else:
        question = "Finish the interrupted apply, writing to HubSpot and Salesforce?"
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "apply writes to the CRMs and needs confirmation", hint="pass --yes in scripts"
            )
        typer.confirm(question, abort=True)
    columns = (TextColumn("apply"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    ) as bar:
        task = bar.add_task("apply", total=None)
        try:
            result = apply_plan(
                db,
                cfg,
                plan_run_id=plan_run,
                dry_run=dry_run,
                resume=resume,
                confirm_merges=confirm_merges,
                reviewer=cfg.review.reviewer,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                approved=approved,
            )
        except BudgetExhausted as exc:
            if getattr(exc, "result", None) is not None:
                _apply_summary(exc.result)  # type: ignore[attr-defined]
                _refused_lines(db, exc.result)  # type: ignore[attr-defined]
            raise
    _apply_summary(result)
    _refused_lines(db, result)
    if result.dry_run and result.items:
        from .plan_run import written_since_pull

        # "would apply" counts those too
        for _key, msg in written_since_pull(db, result.plan_run_id):
            err_console.print(
                f"note: {msg} (apply skips values it finds in place)", markup=False, highlight=False
            )
    if result.failed_total:
        raise PartialFailure(
            f"{result.failed_total} of {result.items} items failed ("
            + ", ".join(f"{k}: {v}" for k, v in result.failed.items())
            + ")",
            counts=result.failed,
            hint="fix the causes, then `recon apply` again: it applies only what is not confirmed yet",
        )


audit_app = typer.Typer(
    help="Verify and export the audit trail of every write.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify", cls=_Command)
def audit_verify(
    config: ConfigOpt = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            metavar="HASH",
            help="A hash printed by an earlier run or export: also detects a cut tail.",
        ),
    ] = None,
) -> None:
    """Recompute the hash chain; exit 1 if any row was edited, deleted or cut off."""
    from .audit import verify
    from .errors import AuditError

    cfg = get_config(config)
    result = verify(open_db(cfg), anchor=anchor)
    if not result.ok:
        raise AuditError(
            f"the audit chain does not verify ({len(result.problems)} problem"
            f"{'' if len(result.problems) == 1 else 's'}): " + "; ".join(result.problems[:5]),
            hint="the audit table was changed outside recon; compare with an earlier export",
        )
    console.print(
        f"audit ok: {result.rows} rows, anchor {result.anchor or '-'}",
        markup=False,
        highlight=False,
    )


@audit_app.command("export", cls=_Command)
def audit_export(
    out: Annotated[
        str,  # text, not Path: a trailing "/" names a folder
        typer.Option(
            "--out", metavar="PATH", help="File to write, or a folder for audit-<run>.<format>."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="csv | jsonl | parquet | xlsx (else the one --out's file name ends in, else csv).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID", help="Only this apply run (or `recon run` id)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Export the audit (with its anchor) as csv, jsonl, parquet or xlsx."""
    from .audit import export

    cfg = get_config(config)
    info = export(open_db(cfg), fmt, out, run_id=run_id)
    console.print(
        f"wrote {info['rows']} audit rows to {info['path']} (anchor {info['anchor'] or '-'})",
        markup=False,
        highlight=False,
    )
    if info.get("long_cells"):
        console.print(
            f"note: {info['long_cells']} value(s) are longer than a spreadsheet cell holds "
            "(32,767 characters): their cells say so, and the whole values are in the sheet "
            "'long values' (the jsonl and parquet exports hold them as they are)",
            markup=False,
            highlight=False,
        )


@app.command(cls=_Command)
def undo(
    run_id: Annotated[
        str,
        typer.Argument(
            metavar="RUN_ID",
            help="The apply run (or `recon run` id) to undo (`recon status --runs apply`).",
        ),
    ],
    config: ConfigOpt = None,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve",
            help="Approve every restore at once as $RECON_REVIEWER or [review] reviewer (else "
            "approve them in the review app's Plan tab).",
        ),
    ] = False,
) -> None:
    """Build a plan that restores the before-values of an apply run (approve it, then apply it)."""
    from .audit import build_undo_plan
    from .config import config_file
    from .lock import store_lock
    from .review import approve_plan_items, count_plan_approvals, resolve_reviewer

    cfg = get_config(config)
    db = open_db(cfg)
    reviewer = resolve_reviewer(cfg)  # $RECON_REVIEWER, else [review] reviewer
    if approve and not reviewer:
        raise UsageError(
            "--approve needs a reviewer to record",
            hint=f"set $RECON_REVIEWER or [review] reviewer in {config_file()}",
        )
    # a stored plan, like `recon plan`'s: not built while another run writes the store
    with store_lock(db, holder="undo"):
        info = build_undo_plan(db, run_id, reviewer=reviewer)
        plan_run = info["plan_run_id"]
        n = 0
        if approve:
            # the undo plan just built (a plan another run finished meanwhile is not approved)
            n = count_plan_approvals(db, action=None, plan_run_id=plan_run)
            approve_plan_items(db, action=None, reviewer=reviewer, expected=n, plan_run_id=plan_run)
    kept = (
        f"; {info['consent_kept']} opt-out(s) kept: recon does not untick a consent flag it set"
        if info.get("consent_kept")
        else ""
    )
    console.print(
        f"undo plan {plan_run}: {info['items']} items "
        f"({info['irreversible']} irreversible: merges, creates and HubSpot associations are "
        f"not undone{kept})",
        markup=False,
        highlight=False,
    )
    if approve:
        console.print(
            f"approved {n} restores as {reviewer}; next: `recon apply --plan {plan_run}`",
            markup=False,
            highlight=False,
        )
    else:
        console.print(
            f"next: approve the restores in the review app (Plan tab), then `recon apply --plan "
            f"{plan_run}`; or run `recon undo {run_id} --approve` (a new undo plan, approved at "
            "once) and apply the plan it names",
            markup=False,
            highlight=False,
        )


# --------------------------------------------------------------------------- run / sandbox / demo


@app.command(cls=_Command)
def run(
    config: ConfigOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Pull, match, plan and auto-approve, but write nothing to the CRMs."
        ),
    ] = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=1,
            metavar="N",
            help="At most N records per object: a test run on a sample.",
        ),
    ] = None,
    summary_file: Annotated[
        Path | None,
        typer.Option(
            "--summary",
            metavar="FILE",
            help="Write the JSON summary to this file instead of stdout.",
        ),
    ] = None,
    stage: Annotated[
        list[str] | None,
        typer.Option(
            "--stage",
            metavar="STAGE",
            help="Run only these stages (repeatable): pull match plan policy replan apply "
            "export (replan only with plan).",
        ),
    ] = None,
    export_format: Annotated[
        list[str] | None,
        typer.Option(
            "--export",
            metavar="FORMAT",
            help="Audit export format: csv, jsonl, parquet or xlsx (repeatable; default jsonl).",
        ),
    ] = None,
    no_notify: Annotated[
        bool, typer.Option("--no-notify", help="Do not send the webhook notice.")
    ] = False,
) -> None:
    """Headless run: pull, match, plan, auto-approve by policy, apply, export the audit.

    Takes the store lock, prints a JSON summary and exits 0 (ok), 1 (error), 2 (usage), 3 (configuration),
    4 (some records failed), 5 (locked), 6 (API budget spent; the next run resumes),
    7 (authentication failed) or 8 (apply held: more writes than [policy] max_writes).
    An apply left unfinished by a crash is resumed first.
    """
    from .pipeline import STAGES, notify_config_failure, run_pipeline

    # a file another live run writes its summary to (a schedule sharing one --summary, the
    # next run starting while the last one still runs) is that run's until this one takes the
    # lock: a run refused before it (the lock, its config) prints its summary instead of
    # overwriting "running"
    owner = _summary_owner(summary_file) if summary_file is not None else None
    took_lock = False
    try:
        try:
            cfg = get_config(config)
        except ConfigError as exc:
            # a scheduled run's broken config must not fail in silence: [notify] read alone
            if not no_notify and any(
                notify_config_failure(config or state.config_path, exc, dry_run=dry_run).values()
            ):
                _say("notice sent: the configuration does not load")
            raise
        unknown = [s for s in stage or [] if s not in STAGES]
        if unknown:
            raise UsageError(f"unknown stage {unknown[0]!r}", hint="stages: " + " ".join(STAGES))
        if stage and "replan" in stage and "plan" not in stage:
            raise UsageError(
                "the replan stage runs only with the plan stage", hint="add --stage plan"
            )
        from .audit import FORMATS

        # checked before any stage runs: a typo must not wait until after the CRMs were written
        bad = [f for f in export_format or [] if f not in FORMATS]
        if bad:
            raise UsageError(
                f"unknown export format {bad[0]!r}", hint="use one of: " + ", ".join(FORMATS)
            )
    except ReconError as exc:
        _failed_summary(summary_file if owner is None else None, exc)
        raise
    from .models import now_iso

    started = now_iso()
    running: dict[str, Any] = {}
    if summary_file is not None and owner is not None:
        _say(
            f"{summary_file} holds the summary of a run still running (pid {owner}): this "
            "run writes it only once it takes the lock"
        )
    elif summary_file is not None:  # before any stage: the summary must have somewhere to go
        try:
            if summary_file.is_dir():
                raise IsADirectoryError(21, "it is a folder")
            summary_file.parent.mkdir(parents=True, exist_ok=True)
            # until the run ends, the file says one is running: a run killed on the way (kill -9,
            # a reboot) must not leave last night's "ok" in place, nor an empty file
            running = {"run_id": None, "status": "running", "started_at": started,
                       "pid": os.getpid(), "stages": {}}  # fmt: skip
            summary_file.write_text(json.dumps(running, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError.writing(
                "the summary", summary_file, exc, option="--summary"
            ) from None
    _say(f"{started} recon run starts")

    def progress(name: str, info: dict[str, Any]) -> None:
        if name == "run":  # the run has its id (it took the lock): the running summary names it
            _say(f"{now_iso()} recon run {info.get('run_id')}")
            nonlocal took_lock
            took_lock = True
            if summary_file is not None:
                running.update(run_id=info.get("run_id"), status="running",
                               started_at=started, pid=os.getpid(), stages={})  # fmt: skip
                with contextlib.suppress(OSError):  # the final summary reports what fails
                    summary_file.write_text(json.dumps(running, indent=2) + "\n", encoding="utf-8")
            return
        _say(f"{now_iso()} [{name}] {info.get('event')}")

    try:
        summary = run_pipeline(
            cfg,
            dry_run=dry_run,
            sample=sample,
            stages=stage or STAGES,
            export_formats=export_format or ("jsonl",),
            notify=not no_notify,
            progress=progress,
        )
    except ReconError as exc:  # refused before its stages (an unknown stage)
        _failed_summary(summary_file if owner is None or took_lock else None, exc)
        raise
    except KeyboardInterrupt:  # the summary file must not say "running" for ever
        _failed_summary(summary_file if owner is None or took_lock else None, None)
        err_console.print(f"{now_iso()} recon run ends: cancelled (exit 130)", markup=False)
        raise
    # every secret blanked: an unexpected error's text may echo one
    text = redact(json.dumps(summary, indent=2, default=str))
    written = False
    if summary_file and owner is not None and not took_lock:
        _say(
            f"{summary_file} is left to the run still running (pid {owner}); this run's "
            "summary is printed here"
        )
    elif summary_file:
        try:
            summary_file.write_text(text + "\n", encoding="utf-8")
            written = True
            err_console.print(f"summary written to {summary_file}", markup=False)
        except OSError as exc:  # the run's own exit code stands; the summary goes to stdout
            err_console.print(
                f"cannot write the summary to {summary_file}: {exc.strerror or exc}; "
                "printed here instead",
                markup=False,
            )
    if not written:
        sys.stdout.write(text + "\n")
    if summary.get("error"):
        _say(f"error: {redact(str(summary['error']))}")
    _say(
        f"{now_iso()} recon run {summary.get('run_id') or '-'} ends: {summary.get('status')} "
        f"(exit {summary['exit_code']})"
    )
    raise typer.Exit(int(summary["exit_code"]))


def _summary_owner(path: Path) -> int | None:
    """The pid of another live ``recon run`` whose "running" summary ``path`` holds, else None
    (no such file, another status, this process, or a process gone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = data.get("pid") if isinstance(data, dict) and data.get("status") == "running" else None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return pid
    except OSError:
        return None
    return pid


def _failed_summary(summary_file: Path | None, exc: ReconError | None) -> None:
    """A scheduled run's summary file says this run failed, or was cancelled (``exc`` None: a
    Ctrl-C), not last night's success, nor "running" for ever."""
    if summary_file is None:
        return
    from .models import now_iso

    failed = (
        {"status": "failed", "exit_code": int(exc.exit_code), "error": str(exc)}
        if exc is not None
        else {"status": "cancelled", "exit_code": 130, "error": "interrupted (Ctrl-C)"}
    )
    failed.update(ended_at=now_iso(), stages={})
    try:
        summary_file.write_text(json.dumps(failed, indent=2) + "\n", encoding="utf-8")
    except OSError:  # the error itself is what the run reports
        pass


sandbox_app = typer.Typer(
    help="Local emulators of the HubSpot and Salesforce APIs, with demo data.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
SANDBOX_SIZES = ("tiny", "small", "large")


@sandbox_app.command("serve", cls=_Command)
def sandbox_serve(
    config: ConfigOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            metavar="PORT",
            help="Port (default: [sandbox] port, 8765; 0: a free one).",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="Interface (default: [sandbox] host, 127.0.0.1)."),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="SQLite file (default: [sandbox] db, data/sandbox.db)."),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE", help="Demo data: tiny, small or large (default: [sandbox] size, small)."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="SEED", help="Demo data seed (default: [sandbox] seed, 0)."),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Start from a new database.")] = False,
) -> None:
    """Serve both emulators and the /_sandbox/ admin API until Ctrl-C."""
    from .sandbox import serve

    s = get_config(config).sandbox
    if size is not None and size not in SANDBOX_SIZES:
        raise UsageError(f"--size must be one of {', '.join(SANDBOX_SIZES)}, not {size!r}")

    def ready(state: Any) -> None:
        url = state.settings.base_url
        console.print(
            f"sandbox on {url}  (admin: {url}/_sandbox/health; Ctrl-C stops)",
            markup=False,
            soft_wrap=True,
        )

    port = s.port if port is None else port
    seed = s.seed if seed is None else seed
    serve(host or s.host, port, db or s.db, size or s.size, seed, reset, on_ready=ready)


@sandbox_app.command("config", cls=_Command)
def sandbox_config(
    config: ConfigOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, metavar="PORT", help="The sandbox's port (default: [sandbox] port)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(metavar="HOST", help="The sandbox's host.")] = "127.0.0.1",
) -> None:
    """Print a recon.toml that points recon at a running sandbox."""
    from .config import is_loopback_url
    from .sandbox import config_toml

    shown = f"[{host}]" if ":" in host else host
    if not is_loopback_url(f"http://{shown}/"):
        # its secrets are literals and its URLs plain http: recon accepts both only on loopback
        raise UsageError(
            f"--host {host} is not a loopback address: recon would refuse the config printed",
            hint="the sandbox serves this machine only: use 127.0.0.1 (or localhost, ::1)",
        )
    sys.stdout.write(
        config_toml(f"http://{shown}:{get_config(config).sandbox.port if port is None else port}")
    )


@sandbox_app.command("reset", cls=_Command)
def sandbox_reset(
    config: ConfigOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, metavar="PORT", help="Reset the sandbox running on this port."
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Else delete this sandbox database file.")
    ] = None,
) -> None:
    """Reset a running sandbox (reload its demo data), or delete a stopped one's database.

    Without options: the sandbox serving from [sandbox] db is reset, else that file deleted.
    A database a running sandbox serves from is never deleted."""
    from .sandbox.admin import reset_remote

    if port is not None and db is not None:
        raise UsageError(
            "--port and --db name two different resets",
            hint="--port reloads a running sandbox's demo data; --db deletes a stopped one's file",
        )
    s = get_config(config).sandbox
    url = f"http://127.0.0.1:{port}" if port is not None else None
    # no --db: the configured database, or the sandbox serving from it
    console.print(reset_remote(url, db or s.db, follow=db is None), markup=False)


@app.command(cls=_Command)
def demo(
    config: ConfigOpt = None,
    folder: Annotated[
        Path,
        typer.Option(
            "--dir",
            metavar="DIR",
            help="Folder for the demo's emulator database, store and config.",
        ),
    ] = Path("data/demo"),
    size: Annotated[
        str | None,
        typer.Option(
            "--size",
            metavar="SIZE",
            help="Demo data size: tiny, small or large (else [sandbox] size).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="SEED", help="Seed of the demo data (else [sandbox] seed)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            min=1,
            max=65535,
            metavar="PORT",
            help="Port of the review app (else [review] port).",
        ),
    ] = None,
    sandbox_port: Annotated[
        int | None,
        typer.Option(
            "--sandbox-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Port of the CRM emulators (else [sandbox] port; 0 or taken: a free one).",
        ),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Start from fresh demo data and an empty store.")
    ] = False,
    no_review: Annotated[
        bool,
        typer.Option(
            "--no-review", help="Prepare the store, then stop instead of serving the review app."
        ),
    ] = False,
    open_browser: Annotated[
        bool,
        typer.Option("--open-browser", help="Also open the review app in this machine's browser."),
    ] = False,
) -> None:
    """Start the emulators, pull, match, plan and open the review app (Ctrl-C stops it all).

    Defaults come from the [sandbox] and [review] sections of the config, if any.
    """
    from .demo import run_demo

    cfg = get_config(config)
    size = size or cfg.sandbox.size
    if size not in ("tiny", "small", "large"):
        raise UsageError(f"unknown size {size!r}", hint="use tiny, small or large")
    result = run_demo(
        folder,
        size=size,
        seed=cfg.sandbox.seed if seed is None else seed,
        sandbox_port=cfg.sandbox.port if sandbox_port is None else sandbox_port,
        review_port=cfg.review.port if port is None else port,
        open_review=not no_review,
        open_browser=open_browser,
        reset=reset,
        say=lambda m: console.print(m, markup=False, highlight=False),
    )
    console.print(f"demo config: {result.config_path}", markup=False, highlight=False)


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry: run the app and map errors to exit codes.

    Called without ``argv`` (the ``recon`` command), the process ends right after: the
    objects still alive go to the cycle collector's permanent generation first, so the
    collection at interpreter shutdown does not walk them all (~0.1 s after a large match).
    """
    from .store import close_stores, track_stores

    if argv is None:
        track_stores()
    try:
        _main(argv)
    finally:
        if argv is None:
            close_stores()  # the write-ahead log folded into the store file: a copy is whole
            gc.freeze()


def _main(argv: list[str] | None) -> Any:
    try:
        # with standalone_mode off, click returns the code of a typer.Exit instead of raising
        code = app(args=argv, prog_name="recon", standalone_mode=False)
    except ReconError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(int(exc.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        # typer vendors its own click: recognise its usage errors by shape
        if callable(getattr(exc, "show", None)) and isinstance(
            getattr(exc, "exit_code", None), int
        ):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        from .store import store_problem

        if isinstance(exc, sqlite3.DatabaseError) and (store := store_problem(exc)):
            err_console.print(f"error: {store}", markup=False, highlight=False)
            sys.exit(ExitCode.UNEXPECTED)
        err_console.print(
            f"unexpected error: {type(exc).__name__}; {crash_logged(exc)}",
            markup=False,
            highlight=False,
        )
        sys.exit(ExitCode.UNEXPECTED)
    if code == 130:  # typer turns a Ctrl-C into exit code 130 without a word
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _interrupted() -> None:
    """A Ctrl-C: the runs this command left running are cancelled (not "killed" later), and it
    says so, with how to go on."""
    from .store import cancel_my_runs

    runs = cancel_my_runs("interrupted (Ctrl-C)")
    err_console.print(
        "interrupted"
        + (f": run {', '.join(runs)} cancelled" if runs else "")
        + " (a pull goes on where it stopped; `recon apply --resume` finishes an apply)",
        markup=False,
        highlight=False,
    )
    sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
