"""The command line: every command has real --help, init/status work, errors map to exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recon.cli import app, main
from recon.config import load_config
from recon.store import open_store

COMMANDS = [
    "init",
    "status",
    "pull",
    "match",
    "match-files",
    "eval",
    "plan",
    "review",
    "apply",
    "audit",
    "undo",
    "run",
    "sandbox",
    "demo",
    "prune",
]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recon", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def registered() -> set[str]:
    import typer.main

    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_every_pipeline_verb_is_registered() -> None:
    assert set(COMMANDS) <= registered()


def test_root_help_lists_every_command() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command has real --help and accepts --config (as `recon --config PATH CMD`)."""
    conf = tmp_path / "given.toml"
    conf.write_text("[store]\npath = 'given.db'\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Usage:" in out
    assert len(out.splitlines()) > 4


def command_paths() -> list[list[str]]:
    """Every command and group below `recon`, as the words that call it (`[]` is `recon`)."""
    import typer.main

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


# FILE, [FILE], SALESFORCE_FILE..., SOURCE:OBJECT, [OPTIONS], COMMAND, [ARGS]...
METAVAR = re.compile(r"\[?[A-Z][A-Z0-9_]*(:[A-Z][A-Z0-9_]*)?\]?(\.\.\.)?")
TYPE_NAMES = {"TEXT", "STR", "INT", "INTEGER", "FLOAT", "BOOL", "BOOLEAN", "LIST"}


def help_terms(out: str, path: list[str]) -> list[str]:
    """The usage line's pieces after the command, and the names column of Arguments and Options."""
    usage = out.split("Usage: ", 1)[1].split("\n\n", 1)[0].split()
    terms = usage[1 + len(path) :]
    section = ""
    for line in out.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
        elif section in ("Arguments", "Options") and (row := re.match(r"  (\S+(?: \S+)*)", line)):
            terms += [t for t in re.split(r",? ", row.group(1)) if not t.startswith("-")]
    return terms


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(["recon", *p]))
def test_help_names_values_in_upper_case(
    path: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arguments and option values read FILE, DIR, RUN_ID...: no {RUN_ID}, <path>, <int range>,
    list[Path] or bare Python type names in any --help."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    terms = help_terms(out, path)
    assert terms or not path, out
    bad = [t for t in terms if not METAVAR.fullmatch(t) or t.strip("[].") in TYPE_NAMES]
    assert bad == [], out


def test_init_writes_a_config_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["init"])
    assert exit_.value.code == 0
    cfg = load_config(tmp_path / "recon.toml")
    assert cfg.hubspot.access_token is not None
    assert cfg.hubspot.access_token.reference() == "env:HUBSPOT_TOKEN"
    with pytest.raises(SystemExit) as again:
        main(["init"])
    assert again.value.code == 2
    assert "--force" in capsys.readouterr().err


def test_init_names_every_known_key() -> None:
    """The template shows every setting (commented out where the default is fine)."""
    import re

    from recon.cli import INIT_TEMPLATE
    from recon.config import ReconConfig

    named: dict[str, set[str]] = {}
    section = ""
    for line in INIT_TEMPLATE.splitlines():
        if table := re.match(r"#?\s*\[\[(\w+)\.(\w+)\]\]", line):  # [[pull.filters]]
            named.setdefault(table.group(1), set()).add(table.group(2))
            section = f"{table.group(1)}.{table.group(2)}"
        elif head := re.match(r"#?\s*\[(\w+)\]", line):
            section = head.group(1)
        elif key := re.match(r"#?\s*(\w+)\s*=", line):
            named.setdefault(section, set()).add(key.group(1))
    missing = {
        name: sorted(set(field.annotation.model_fields) - named.get(name, set()))
        for name, field in ReconConfig.model_fields.items()
        if hasattr(field.annotation, "model_fields")
    }
    assert {k: v for k, v in missing.items() if v} == {}


def test_status_json_on_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "recon.toml").write_text("[store]\n", encoding="utf-8")  # a new project
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--json"])
    assert exit_.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["records"] == []
    assert info["waiting_for_review"] == 0
    assert Path(info["store"]) == tmp_path / "data" / "recon.db"
    assert info["store_exists"] is False
    assert not (tmp_path / "data").exists()  # status made neither the store nor its folder


def test_commands_refuse_a_store_a_config_names_but_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped ``[store] path`` is named, not opened as a new empty store."""
    conf = tmp_path / "recon.toml"
    conf.write_text('[store]\npath = "nosuch/recon.db"\n', encoding="utf-8")
    for args in (["audit", "verify"], ["match"], ["plan"], ["apply", "--yes"], ["prune"]):
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(conf), *args])
        err = " ".join(capsys.readouterr().err.split())
        assert exit_.value.code == 1, (args, err)
        assert "no recon store at" in err and str(conf) in err and "[store] path" in err, args
    assert not (tmp_path / "nosuch").exists()


@pytest.mark.parametrize(
    "args", [["status"], ["audit", "verify"], ["audit", "export", "--out", "x.csv"], ["plan"]]
)
def test_readers_without_a_config_or_a_store_say_so(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run in a folder without its recon.toml, a reader names the store it did not find
    instead of creating an empty one and reporting on it ("audit ok: 0 rows")."""
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 1
    said = " ".join(capsys.readouterr().err.split())
    assert "there is no recon store at" in said and "no recon.toml was found here" in said
    assert "--config" in said and not (tmp_path / "data" / "recon.db").exists()


def test_status_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "recon.toml").write_text("[store]\n", encoding="utf-8")  # a new project
    with pytest.raises(SystemExit) as exit_:
        main(["status"])
    assert exit_.value.code == 0
    assert "waiting for review" in capsys.readouterr().out


def test_status_names_a_test_run_on_a_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `pull --sample 5` looked like a whole pull in the table and the JSON, as a dry
    run of apply looked like an apply."""
    from rich.console import Console

    from recon.store import finish_run, open_store, start_run

    monkeypatch.setattr("recon.cli.console", Console(width=250))
    (tmp_path / "recon.toml").write_text("[store]\n", encoding="utf-8")
    db = open_store(tmp_path / "data" / "recon.db")
    finish_run(db, start_run(db, "pull", config={"sample": 5}), summary={})
    finish_run(db, start_run(db, "match", config={}), summary={})
    finish_run(db, start_run(db, "apply", config={"dry_run": True}), summary={})
    from recon.insights import runs_frame

    frame = runs_frame(db)
    assert frame.select("stage", "dry_run", "sample").rows() == [
        ("pull", False, 5), ("match", False, None), ("apply", True, None)
    ]  # fmt: skip
    db.close()
    with pytest.raises(SystemExit):
        main(["status", "--json"])
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs["pull"]["sample"] == 5 and "sample" not in runs["match"]
    assert runs["apply"]["dry_run"] is True and "dry_run" not in runs["pull"]
    with pytest.raises(SystemExit):
        main(["status"])
    said = " ".join(capsys.readouterr().out.split())
    assert "ok (sample 5)" in said and "ok (dry run)" in said


def test_status_runs_lists_whole_run_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids `recon undo` and `--plan` take, for any older run, uncut on a narrow console
    (a cron log): the summary showed only the last run per stage, its ids cut to `pull-202…`."""
    from rich.console import Console

    from recon.store import finish_run, open_store, start_run

    monkeypatch.setattr("recon.cli.console", Console(width=80))  # a log file's width
    (tmp_path / "recon.toml").write_text("[store]\n", encoding="utf-8")
    db = open_store(tmp_path / "data" / "recon.db")
    applies = [start_run(db, "apply", config={"dry_run": k == 0}) for k in range(3)]
    for rid in applies:
        finish_run(db, rid, summary={})
    finish_run(db, start_run(db, "pull", config={}), summary={})
    db.close()
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--runs", "apply"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(rid in out for rid in applies) and "pull-" not in out
    with pytest.raises(SystemExit):
        main(["status", "--runs", "all", "--limit", "2", "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert [r["stage"] for r in listed] == ["pull", "apply"] and listed[1]["run_id"] == applies[2]
    with pytest.raises(SystemExit):
        main(["status", "--runs", "apply", "--json"])
    assert [r["dry_run"] for r in json.loads(capsys.readouterr().out)] == [False, False, True]
    with pytest.raises(SystemExit):
        main(["status"])
    said = capsys.readouterr().out
    assert applies[2] in said  # the summary's ids are whole too
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--runs", "apply-runs"])
    assert exit_.value.code == 2 and "is no stage" in capsys.readouterr().err


def test_config_error_exits_3_with_key_path(tmp_path: Path) -> None:
    (tmp_path / "recon.toml").write_text("[store]\nnope = 1\n")
    out = run_cli("status", cwd=tmp_path)
    assert out.returncode == 3
    assert "store.nope" in out.stderr


def test_global_config_option(tmp_path: Path) -> None:
    conf = tmp_path / "elsewhere.toml"
    conf.write_text('[store]\npath = "x/custom.db"\n')
    out = run_cli("--config", str(conf), "status", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["store"].endswith("x/custom.db")


def test_usage_error_exits_2() -> None:
    out = run_cli("status", "--no-such-flag")
    assert out.returncode == 2


def test_unexpected_error_prints_one_line_and_logs_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr("recon.insights.status_report", boom)
    Path("recon.toml").write_text("[store]\n", encoding="utf-8")  # a new project
    with pytest.raises(SystemExit) as exit_:
        main(["status"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) <= 2
    assert "RuntimeError" in err
    log_path = Path(err.split("traceback written to ")[1].split()[0])
    assert "kaboom" in log_path.read_text()


def test_a_logged_traceback_and_the_crash_log_blank_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """log.exception printed the exception's text as it was (only the message was blanked);
    the crash log is this user's alone, and a crash log that cannot be written is no crash."""
    import logging
    import os
    import sys

    from recon.cli import _Redacting
    from recon.errors import register_secret
    from recon.errors import write_crash_log as _crash_log

    secret = "sk-TRACEBACK-SECRET-77"
    register_secret(secret)
    try:
        raise RuntimeError(f"echo {secret}")
    except RuntimeError as exc:
        caught = exc
        record = logging.LogRecord(
            "recon", logging.ERROR, __file__, 1, "run failed", None, sys.exc_info()
        )
    assert _Redacting().filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError: echo ***" in text and secret not in text
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    path = _crash_log(caught)
    assert path is not None and secret not in path.read_text()
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    full = tmp_path / "full"  # a folder where the log cannot go: no second crash
    full.mkdir()
    (full / f"recon-logs-{os.getuid()}").write_text("a file in the way")
    monkeypatch.setattr("tempfile.tempdir", str(full))
    assert _crash_log(caught) is None


def test_prune_deletes_old_plan_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from plan_testdata import World, cfg, linked_leads

    from recon.plan import build_plan
    from recon.store import open_store

    w = World(open_store(Path("data") / "recon.db"))  # the default store, in the test's folder
    linked_leads(w, ["0"], {"jobtitle": "CEO"})
    w.done()
    old, new = (build_plan(w.db, cfg()).run_id for _ in range(2))
    for args, left in ((["--dry-run"], 2), ([], 1)):
        with pytest.raises(SystemExit) as exit_:
            main(["prune", "--keep", "1", "--json", *args])
        assert exit_.value.code == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["runs"]["plan"] == [old] and doc["rows"]["plan_items"] == 1
        runs = [r[0] for r in w.db.execute("select distinct run_id from plan_items")]
        assert len(runs) == left and new in runs
    with pytest.raises(SystemExit):
        main(["prune"])  # the default keeps three: nothing left to delete
    assert "deleted" in capsys.readouterr().out


def test_prune_dry_run_says_what_it_would_prune(capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run's table and lines say what would go: it pruned nothing."""
    from plan_testdata import World, cfg, linked_leads

    from recon.plan import build_plan
    from recon.store import open_store

    w = World(open_store(Path("data") / "recon.db"))
    linked_leads(w, ["0"], {"jobtitle": "CEO"})
    w.done()
    for _ in range(2):
        build_plan(w.db, cfg())
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "--keep", "1", "--dry-run"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "would delete" in out and "plan runs to prune: 1" in out
    assert "pruned" not in out


def test_verbose_keeps_request_lines_out_of_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """urllib3 logs each request line at debug level; a Slack webhook's path is its secret."""
    import logging

    with pytest.raises(SystemExit):
        main(["-v", "status", "--json"])
    assert logging.getLogger("urllib3").getEffectiveLevel() > logging.DEBUG


def test_review_refuses_a_port_in_use_or_out_of_range(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli("review", "--port", str(port), "--no-browser", cwd=tmp_path)
    assert taken.returncode == 2 and f"port {port}" in taken.stderr and "in use" in taken.stderr
    wrong = run_cli("review", "--port", "99999", cwd=tmp_path)
    assert wrong.returncode == 2 and "65535" in wrong.stderr


def test_pull_usage_errors_exit_2_and_show_no_earlier_run(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("Record ID,Name\n1,A\n", encoding="utf-8")
    bad_as = run_cli("pull", "--file", "x.csv", "--as", "hubspot:deals", cwd=tmp_path)
    assert bad_as.returncode == 2 and "unknown --as 'hubspot:deals'" in bad_as.stderr
    assert "hubspot:companies" in bad_as.stderr
    from recon.store import finish_run, open_store, start_run

    db = open_store(tmp_path / "data" / "recon.db")
    finish_run(db, start_run(db, "pull"), summary={"records": {"hubspot:companies": 7}})
    db.conn.close()
    zero = run_cli("pull", "--sample", "0", cwd=tmp_path)
    assert zero.returncode == 2 and "hubspot:companies" not in zero.stdout


def test_review_names_a_host_that_does_not_resolve(
    tmp_path: Path,
) -> None:
    (tmp_path / "recon.toml").write_text(
        '[review]\nhost = "no-such-host.invalid"\n', encoding="utf-8"
    )
    bad = run_cli("review", "--no-browser", cwd=tmp_path)
    assert bad.returncode == 2 and "does not resolve" in bad.stderr


def test_user_mistakes_with_paths_are_one_line_errors(tmp_path: Path) -> None:
    """Folders where files go, files where folders go, unwritable places: a message naming
    the path and an exit code, never an unexpected error with a traceback."""
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    (tmp_path / "adir").mkdir()
    hs = tmp_path / "hs.csv"
    hs.write_text("Record ID,Company name,Company Domain Name\n1,Acme,acme.com\n", encoding="utf-8")
    sf = tmp_path / "sf.csv"
    sf.write_text("Id,Name,Website\n0015g00000AAAAAAA1,Acme,acme.com\n", encoding="utf-8")
    bad_settings = tmp_path / "s.json"
    bad_settings.write_bytes(b'{"a":"\xff"}')
    (tmp_path / "out" / "links.csv").mkdir(parents=True)
    cases = [
        (["init", str(tmp_path / "new" / "sub" / "recon.toml")], 0, "wrote"),
        (["init", str(tmp_path / "adir"), "--force"], 1, "it is a folder"),
        (["init", "/proc/recon.toml"], 1, "cannot write"),
        (["match-files", str(hs), str(sf), "--object", "companies", "--out", str(tmp_path / "afile")], 1, "cannot write the results"),
        (["match-files", str(hs), str(sf), "--object", "companies", "--out", str(tmp_path / "out")], 1, "cannot write the results"),
        (["match-files", str(hs), str(sf), "--object", "companies", "--out", str(tmp_path / "o2"), "--settings", str(bad_settings)], 2, "not UTF-8"),
        (["demo", "--dir", str(tmp_path / "afile"), "--no-review"], 1, "cannot write the demo folder"),
        (["--config", str(tmp_path / "nope.toml"), "run", "--summary", str(tmp_path / "adir")], 3, ""),
    ]  # fmt: skip
    for args, code, says in cases:
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        said = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
        assert says in said, (args, done.stderr)
        assert "unexpected error" not in said and "Traceback" not in said


def test_run_checks_its_summary_path_before_any_stage(tmp_path: Path) -> None:
    conf = tmp_path / "recon.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "r.db"}"\n', encoding="utf-8")
    (tmp_path / "adir").mkdir()
    done = run_cli(
        "--config", str(conf), "run", "--stage", "match", "--summary", str(tmp_path / "adir")
    )
    assert done.returncode == 1 and "cannot write the summary" in " ".join(done.stderr.split())
    assert not (tmp_path / "r.db").exists()  # nothing ran


_WRITERS = {
    # command line before the output path, the option naming it, what the error calls it
    "init": (["init"], "FILE", "the config"),  # the argument `recon init --help` names
    "match-files": (["match-files", "hs.csv", "sf.csv", "--object", "companies", "--out"], "--out",
                    "the results"),
    "plan --items": (["plan", "--dry-run", "--items"], "--items", "the plan items"),
    "audit export": (["audit", "export", "--out"], "--out", "the audit export"),
    "run --summary": (["run", "--summary"], "--summary", "the summary"),
    "demo": (["demo", "--no-review", "--dir"], "--dir", "the demo folder"),
}  # fmt: skip


@pytest.mark.parametrize("where", ["under a file", "where nobody may write"])
@pytest.mark.parametrize("command", list(_WRITERS))
def test_an_output_that_cannot_be_written_is_one_error_in_every_command(
    command: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`match-files` exited 2 and `audit export` 1 for the same problem: every command that
    writes a file says it cannot alike (OutputError, exit 1), in one line naming the path and
    why, with a hint naming the option to change."""
    from plan_testdata import World, linked_leads

    w = World(open_store(tmp_path / "data" / "recon.db"))  # the default store, for plan and audit
    linked_leads(w, ["0"], {"jobtitle": "CEO"})
    w.done()
    (tmp_path / "hs.csv").write_text("Record ID,Company name\n1,Acme\n", encoding="utf-8")
    (tmp_path / "sf.csv").write_text("Id,Name\n0015g00000AAAAAAA1,Acme\n", encoding="utf-8")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    args, option, what = _WRITERS[command]
    suffix = ".xlsx" if command == "plan --items" else ".csv"
    target = (
        tmp_path / "afile" / f"out{suffix}"
        if where == "under a file"
        else Path(f"/proc/recon-no/out{suffix}")
    )
    with pytest.raises(SystemExit) as exit_:
        main([*args, str(target)])
    err = capsys.readouterr().err
    assert exit_.value.code == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: cannot write {what} {target}: "), line
    assert line.endswith(")") and option in line  # the hint names the option to change
    if where == "under a file":
        assert f"{tmp_path / 'afile'} is a file, not a folder" in line


def test_eval_refuses_files_it_cannot_score(tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "truth_entities.csv").write_text(
        "source,record_id,entity\nhubspot,1,E\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "links.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    done = run_cli("eval", str(out), "--truth", str(truth))
    assert done.returncode == 2 and "no column hubspot_id, salesforce_id" in " ".join(
        done.stderr.split()
    )
    (out / "links.csv").write_text("", encoding="utf-8")
    done = run_cli("eval", str(out), "--truth", str(truth))
    assert done.returncode == 2 and "the file is empty" in " ".join(done.stderr.split())
    (out / "links.csv").write_text("hubspot_id,salesforce_id\n", encoding="utf-8")
    (truth / "truth_entities.csv").write_bytes(b"source,record_id,entity\nhubspot,\xff,E\n")
    done = run_cli("eval", str(out), "--truth", str(truth))
    assert done.returncode == 2 and "not UTF-8" in " ".join(done.stderr.split())


def test_options_that_contradict_their_command_are_usage_errors(tmp_path: Path) -> None:
    conf = tmp_path / "recon.toml"
    conf.write_text(
        f'[store]\npath = "{tmp_path / "r.db"}"\n[review]\nhost = "192.0.2.1"\n', encoding="utf-8"
    )
    open_store(tmp_path / "r.db").conn.close()  # a project's store, before its first pull
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("Record ID,Company name\n1,A\n", encoding="utf-8")
    cases = [
        (["pull", "--file", str(csv_file), "--as", "hubspot:companies", "--sample", "1", "--full"],
         "--full, --sample do not apply to --file"),
        (["pull", "--file", str(tmp_path), "--as", "hubspot:companies"], "is a folder"),
        (["review", "--no-browser", "--port", "28555"], "is not an address of this machine"),
        (["apply", "--dry-run"], "there is no plan to apply"),
        # --resume with nothing interrupted: not a new apply of the latest plan
        (["apply", "--resume", "--yes"], "there is no interrupted apply to resume"),
        # and no dry run of a new apply either (its help: "Without one it is an error")
        (["apply", "--resume", "--dry-run"], "there is no interrupted apply to resume"),
        (["match"], "there are no pulled records to match"),
        # one way of scoring at a time: the other was ignored without a word
        (["eval", str(tmp_path), "--truth", str(tmp_path), "--labels"], "--labels scores the"),
        (["eval", str(tmp_path), "--truth", str(tmp_path), "--run", "m-1"], "--run names the"),
    ]  # fmt: skip
    for args, says in cases:
        done = run_cli("--config", str(conf), *args)
        said = " ".join(done.stderr.split())
        assert done.returncode == 2 and says in said, (args, done.stderr)


def test_pull_of_a_mistyped_file_makes_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon pull --file` of a file that is not there made the store (and its folder) and
    recorded a failed pull run in it before it found the file missing."""
    conf = tmp_path / "recon.toml"
    conf.write_text('[store]\npath = "data/recon.db"\n', encoding="utf-8")
    missing = tmp_path / "companeis.csv"
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "pull", "--file", str(missing), "--as", "hubspot:companies"])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 1 and f"file {missing}: no such file" in err
    assert not (tmp_path / "data").exists()


def test_sandbox_serve_help_names_the_settings_its_defaults_come_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--db` said "default data/sandbox.db" while a recon.toml's [sandbox] db is used (the
    demo's says sandbox.db); --host, --size and --seed alike."""
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["sandbox", "serve", "--help"])
    options = capsys.readouterr().out.split("Options:", 1)[1]
    for key in ("port", "host", "db", "size", "seed"):
        (line,) = [row for row in options.splitlines() if row.strip().startswith(f"--{key} ")]
        assert f"[sandbox] {key}" in line, line


def test_sandbox_config_only_for_loopback_and_config_folders_named(tmp_path: Path) -> None:
    done = run_cli("sandbox", "config", "--host", "10.1.2.3", "--port", "9999")
    assert done.returncode == 2 and "not a loopback address" in " ".join(done.stderr.split())
    done = run_cli("sandbox", "config", "--host", "::1", "--port", "9999")
    assert done.returncode == 0 and "http://[::1]:9999" in done.stdout
    done = run_cli("--config", str(tmp_path), "status")
    assert done.returncode == 3 and "is a folder" in " ".join(done.stderr.split())


def test_match_and_a_stored_plan_wait_for_no_other_holder_of_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon match` and `recon plan` write runs: while a scheduled run holds the store (its
    pull half done) they stop with exit 5 naming the holder; a dry-run plan stores nothing
    and goes on."""
    from recon.models import now_iso
    from recon.store import open_store, transaction

    conf = tmp_path / "recon.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "recon.db"}"\n')
    db = open_store(tmp_path / "recon.db")
    with transaction(db):
        db["locks"].insert(
            {"name": "store", "holder": "recon run", "pid": 999999, "host": "other-host",
             "run_id": "run-9", "started_at": now_iso(), "heartbeat_at": now_iso()}
        )  # fmt: skip
    for args, code in (
        (["match"], 5),
        (["plan"], 5),
        (
            ["plan", "--dry-run"],
            2,
        ),  # not locked: there is no match run to plan from (a usage error)
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(conf), *args])
        err = capsys.readouterr().err
        assert exit_.value.code == code, (args, err)
        if code == 5:
            assert "recon run" in err and "other-host" in err
        else:
            assert "no match run" in err
    assert db.execute("select count(*) from runs").fetchone()[0] == 0


def test_a_store_copied_after_a_command_is_whole(tmp_path: Path) -> None:
    """The command's store connection is closed on exit: the write-ahead log is folded into
    the store file, so copying recon.db alone copies everything."""
    import shutil
    import sqlite3

    conf = tmp_path / "recon.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "recon.db"}"\n')
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("Record ID,Company name\n1,A\n2,B\n")
    done = run_cli(
        "--config", str(conf), "pull", "--file", str(csv_file), "--as", "hubspot:companies"
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "recon.db-wal").exists()
    shutil.copy(tmp_path / "recon.db", tmp_path / "copy.db")
    con = sqlite3.connect(tmp_path / "copy.db")
    assert con.execute("select count(*) from snapshots").fetchone()[0] == 2
    con.close()


def test_a_run_refused_before_its_stages_still_writes_its_summary(tmp_path: Path) -> None:
    """A scheduled run's summary file must not keep last night's success when tonight's run
    stopped at its configuration or its command line."""
    summary = tmp_path / "last-run.json"
    summary.write_text('{"status": "ok", "exit_code": 0}\n')
    conf = tmp_path / "recon.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "recon.db"}"\n')
    done = run_cli("--config", str(conf), "run", "--stage", "bogus", "--summary", str(summary))
    assert done.returncode == 2
    got = json.loads(summary.read_text())
    assert got["status"] == "failed" and got["exit_code"] == 2 and "bogus" in got["error"]


def test_a_missing_access_token_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing was sent: exit 3 naming the setting, not exit 7 "authentication failed"."""
    conf = tmp_path / "recon.toml"
    conf.write_text('[hubspot]\nbase_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "pull", "--source", "hubspot"])
    assert exit_.value.code == 3
    assert "hubspot.access_token: not configured" in capsys.readouterr().err


def test_hints_name_the_config_file_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `--config prod.toml` a hint saying "set ... in recon.toml" sent the user to a file
    this run never read."""
    conf = tmp_path / "prod.toml"
    conf.write_text('[hubspot]\nbase_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "pull", "--source", "hubspot"])
    assert exit_.value.code == 3
    err = capsys.readouterr().err.replace("\n", "")
    assert f"in {conf} and export the token" in err and "recon.toml" not in err


def test_match_of_an_object_nothing_was_pulled_for_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Companies pulled from a file, contacts not: `match --object contacts` exited 0 with an
    empty table."""
    conf = tmp_path / "recon.toml"
    conf.write_text(f'[store]\npath = "{tmp_path / "r.db"}"\n', encoding="utf-8")
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("Record ID,Company name\n1,Acme\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "pull", "--file", str(csv_file), "--as", "hubspot:companies"])
    assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "match", "--object", "contacts"])
    assert exit_.value.code == 2
    assert "there are no pulled contacts to match" in " ".join(capsys.readouterr().err.split())
    # without --object, the configured objects nothing was pulled for are left out, said
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(conf), "match"])
    assert exit_.value.code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: no contacts were pulled: only companies matched" in err


def test_a_settings_file_that_is_a_folder_is_named_as_one(tmp_path: Path) -> None:
    from recon.config import load_config
    from recon.errors import ConfigError

    (tmp_path / "s").mkdir()
    conf = tmp_path / "recon.toml"
    conf.write_text('[match]\nsettings_file = "s"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(conf)


def test_a_damaged_store_is_named_not_an_unexpected_error(tmp_path: Path) -> None:
    """A store with damaged pages gave "unexpected error: DatabaseError" (the reason only in
    the crash log)."""
    from recon.store import open_store, start_run

    (tmp_path / "recon.toml").write_text('[store]\npath = "recon.db"\n', encoding="utf-8")
    db = open_store(tmp_path / "recon.db")
    for i in range(3000):  # own ids: 3,000 random ones within a few seconds may collide
        start_run(db, "match", config={"x": "y" * 50}, run_id=f"match-{i:05d}")
    db.conn.close()
    with (tmp_path / "recon.db").open("r+b") as f:  # pages of the runs table, not the schema
        f.seek(4096 * 200)
        f.write(b"\x13" * 4096 * 3)
    out = run_cli("status", cwd=tmp_path)
    assert out.returncode == 1
    assert "recon.db is damaged (database disk image is malformed)" in out.stderr, out.stderr
    assert "unexpected error" not in out.stderr and "integrity_check" in out.stderr


def test_recon_run_names_a_damaged_store_in_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`recon run` printed a traceback and "DatabaseError: database disk image is malformed"."""
    import sqlite3

    from recon.config import load_config
    from recon.pipeline import run_pipeline

    def damaged(*_a: object, **_k: object) -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr("recon.match.run_match", damaged)
    cfg = load_config(None, overrides={"store": {"path": str(tmp_path / "recon.db")}})
    summary = run_pipeline(cfg, notify=False, stages=("match",))
    assert summary["status"] == "failed" and summary["exit_code"] == 1
    assert summary["error"].startswith(f"{tmp_path / 'recon.db'} is damaged"), summary["error"]
    assert "Traceback" not in caplog.text


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_review_says_at_once_who_holds_a_busy_store(tmp_path: Path) -> None:
    """A store another process is writing to (here a `recon apply` in a long write): with the
    queue of the latest runs not indexed yet, `recon review` says within seconds who holds the
    store and what to do (exit 5), not after SQLite's half minute; once the queue is indexed,
    the page starts while the writer goes on (indexing it was the only write)."""
    import sqlite3
    import time

    from recon.lock import store_lock
    from recon.review import ensure_queue
    from recon.store import finish_run, open_store, start_run

    path = tmp_path / "data" / "recon.db"
    db = open_store(path)
    finish_run(db, start_run(db, "match"))
    writer = sqlite3.connect(path)
    with store_lock(db, holder="apply"):
        writer.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            busy = run_cli("review", "--no-browser", "--port", str(_free_port()), cwd=tmp_path)
            took = time.monotonic() - started
        finally:
            writer.rollback()  # the lock is released by a write too
        said = " ".join(busy.stderr.split())
        assert busy.returncode == 5 and took < 20, (took, said)
        assert "review queue is not indexed" in said and "recon apply" in said, said
        assert "run `recon review` again" in said
        ensure_queue(db)  # indexed (as a first `recon review` or the page does)
        writer.execute("BEGIN IMMEDIATE")
        proc = subprocess.Popen(
            [sys.executable, "-m", "recon", "review", "--no-browser", "--port", str(_free_port())],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            assert lines[0].startswith("review queue: 0 items"), lines
            assert "serving http://127.0.0.1:" in lines[1], lines
        finally:
            writer.rollback()
            with contextlib.suppress(ProcessLookupError):  # it stopped on its own
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            assert proc.stdout is not None
            proc.stdout.close()
    writer.close()
    db.conn.close()
