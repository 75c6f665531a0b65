"""The error tree: secrets a CRM echoes back in an error never reach a message, the store or a log."""

from __future__ import annotations

import http.server
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from recon.cli import main
from recon.errors import (
    AuthError,
    ExitCode,
    OutputError,
    ReconError,
    SourceError,
    redact,
    register_secret,
)


def test_registered_secrets_are_blanked_in_every_error_of_the_tree() -> None:
    register_secret("tok-9f8e7d+/=")
    assert redact("grant=tok-9f8e7d%2B%2F%3D&x") == "grant=***&x"  # URL-encoded too
    err = AuthError("refused: Bearer tok-9f8e7d+/=", hint="token tok-9f8e7d+/= expired")
    assert "tok-9f8e7d" not in str(err) and "***" in str(err)
    assert "tok-9f8e7d" not in str(SourceError("x tok-9f8e7d+/= y"))
    register_secret("secret")  # too short to blank safely: ordinary words would go
    assert str(ReconError("client_secret: not set")) == "client_secret: not set"


def test_secrets_are_blanked_inside_json_text() -> None:
    """A password with a quote, a backslash or a non-ASCII letter reads otherwise in JSON
    (a stored run summary, a --summary file): it is blanked there too."""
    from recon.models import canonical_json

    for secret in ('Pa"ss\\word123XYZtoken', "Passwört123tokenABC"):
        register_secret(secret)
        doc = {"error": f"refused: {secret}"}
        for text in (json.dumps(doc), json.dumps(doc, ensure_ascii=False), canonical_json(doc)):
            assert redact(text).count("***") == 1, text
            assert json.loads(redact(text)) == {"error": "refused: ***"}


@pytest.mark.parametrize(
    ("failure", "path", "says", "hint"),
    [
        (PermissionError(13, "Permission denied"), "ro/a.csv", "Permission denied", "folder you may write to"),
        (OSError(28, "No space left on device"), "a.csv", "No space left", "free some disk space"),
        (FileNotFoundError(2, "No such file or directory"), "afile/a.csv", "afile is a file, not a folder", "name another --out"),
        (FileExistsError(17, "File exists"), "afile", "it is a file, not a folder", "name another --out"),
        (RuntimeError("IO error: Read-only file system (os error 30)"), "a.csv", "Read-only file system", "folder you may write to"),
    ],
)  # fmt: skip
def test_an_output_that_cannot_be_written_names_the_path_why_and_what_to_do(
    failure: BaseException, path: str, says: str, hint: str, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    err = OutputError.writing("the export", tmp_path / path, failure, option="--out")
    assert err.exit_code == ExitCode.UNEXPECTED == 1 and isinstance(err, ReconError)
    assert err.message.startswith(f"cannot write the export {tmp_path / path}: ")
    assert says in err.message.split(": ", 1)[1]
    assert err.path == str(tmp_path / path) and hint in (err.hint or "")
    assert "\n" not in str(err)


def _echo(request: http.server.BaseHTTPRequestHandler) -> tuple[int, str, bytes]:
    """A CRM that refuses every request and echoes it back (headers and form) in its error."""
    n = int(request.headers.get("content-length", 0) or 0)
    echo = f"ECHO {request.path} {dict(request.headers)} {request.rfile.read(n).decode()}"
    if "/services/" in request.path:
        body = {"error": "invalid_grant", "error_description": f"bad: {echo}"}
    else:
        body = {
            "status": "error",
            "message": f"bad request: {echo}",
            "category": "VALIDATION_ERROR",
        }
    return 400, "application/json", json.dumps(body).encode()


@pytest.fixture
def echo_url(serve_http: Callable[[Callable[..., tuple[int, str, bytes]]], str]) -> str:
    return serve_http(_echo)


SECRETS = {
    "QA_HS_TOKEN": "pat-na1-SECRETHSTOKEN-7f3a9b",
    "QA_PW": "PWSECRET+env/pw",
    "QA_SF_ID": "SFCLIENTID-SECRET-1122",
    "QA_SF_SECRET": "SFCLIENTSECRET-XyZ-9988",
}


def test_secrets_echoed_by_a_crm_error_reach_no_output_store_or_log(
    echo_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    conf = tmp_path / "recon.toml"
    conf.write_text(
        f'[store]\npath = "{tmp_path / "recon.db"}"\n'
        f'[hubspot]\nbase_url = "{echo_url}"\naccess_token = "env:QA_HS_TOKEN"\n'
        f'[salesforce]\ninstance_url = "{echo_url}"\nlogin_url = "{echo_url}"\nauth = "password"\n'
        'username = "me@example.com"\npassword = "env:QA_PW"\nclient_id = "env:QA_SF_ID"\n'
        'client_secret = "env:QA_SF_SECRET"\n'
    )
    outputs = []
    for source, code in (("hubspot", 1), ("salesforce", 7)):
        with pytest.raises(SystemExit) as exit_:
            main(["-v", "--config", str(conf), "pull", "--source", source])
        out = capsys.readouterr()
        assert exit_.value.code == code, out.err
        assert "ECHO" in out.err  # the CRM's text is shown, its secrets blanked
        outputs.append(out.out + out.err)
    con = sqlite3.connect(tmp_path / "recon.db")
    dump = "\n".join(con.iterdump())
    con.close()
    assert "ECHO" in dump  # the failed runs keep the CRM's error text
    for value in SECRETS.values():
        for text in (*outputs, dump):
            assert value not in text and value.replace("+", "%2B").replace("/", "%2F") not in text


def test_every_configured_secret_is_blanked_from_the_moment_the_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error can quote a secret recon has not used yet (a HubSpot stage failing with a text
    that echoes Salesforce's client secret): reading the config makes it known."""
    from recon.config import load_config

    monkeypatch.setenv("QA_UNUSED_SECRET", "sf-secret-never-read-yet-42")
    conf = tmp_path / "recon.toml"
    conf.write_text(
        '[salesforce]\ninstance_url = "http://127.0.0.1:9"\nlogin_url = "http://127.0.0.1:9"\n'
        'client_id = "literal-client-id-777"\nclient_secret = "env:QA_UNUSED_SECRET"\n'
    )
    load_config(conf)
    err = SourceError(
        "upstream failed: client_secret=sf-secret-never-read-yet-42 id=literal-client-id-777"
    )
    assert "sf-secret-never-read" not in str(err) and "literal-client-id-777" not in str(err)
