"""Shared fixtures: a fresh store, a config in a temp folder, and (added by the
sandbox) one emulator per test session."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import settings

from recon.store import open_store

# CI explores the same examples on every run (a property test never fails a landing by the
# luck of a new seed); locally each run explores new ones (`CI=true make test` replays CI's)
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def fresh_db() -> sqlite_utils.Database:
    """A new, migrated, in-memory store."""
    return open_store(":memory:")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Path of a new on-disk store in a temp folder."""
    return tmp_path / "recon.db"


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep a developer's RECON_* environment and ./recon.toml out of tests."""
    import os

    for key in list(os.environ):
        if key.startswith("RECON_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


class Receiver:
    """A local HTTP receiver for webhook notifications (records every POST)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "body": json.loads(body)})
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free loopback port; ``.url``, ``.requests``, ``.fail_first``."""
    r = Receiver()
    yield r
    r.close()


#: how a test server answers a request: (status, content type, body)
Answer = Callable[[BaseHTTPRequestHandler], tuple[int, str, bytes]]


@pytest.fixture
def serve_http() -> Iterator[Callable[[Answer], str]]:
    """Serve ``answer`` to every GET, POST and PATCH on a free loopback port for the test
    (quietly: no request log); its URL."""
    servers: list[ThreadingHTTPServer] = []

    def serve(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                status, content_type, body = answer(self)
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _reply

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sign_in_page(serve_http: Callable[[Answer], str]) -> str:
    """The URL of a server answering every request with 200 and an HTML page (a proxy's or
    a login page where a CRM API was expected): something that is no CRM API."""
    return serve_http(lambda _request: (200, "text/html", b"<html>please sign in</html>"))


# --------------------------------------------------------------------------- sandbox (emulators)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One emulator per test session (per xdist worker): tiny demo data in a temp database.

    A :class:`recon.sandbox.SandboxServer`: ``.url``, ``.state`` (settings, faults,
    change log). Delays and limits are off. Tests that change data use
    ``sandbox_reset`` (or create their own records); tests that set faults or
    settings must use ``sandbox_reset`` so they are cleared afterwards.
    """
    from recon.sandbox import SandboxServer
    from recon.sandbox.server import open_state

    state = open_state(tmp_path_factory.mktemp("sandbox") / "sandbox.db", size="tiny", seed=0)
    state.checkpoint()
    with SandboxServer(state) as server:
        yield server
    state.close()


@pytest.fixture
def sandbox_reset(sandbox: Any) -> Iterator[Any]:
    """The session ``sandbox``, restored after the test: data, counters, faults and settings.

    Its request counters and change log start empty: tests on ``sandbox`` alone may have run
    before on the same worker (a count asserted as a total would otherwise depend on them).
    """
    from dataclasses import fields

    from recon.sandbox import SandboxSettings

    sandbox.state.reset(keep_data=True)
    yield sandbox
    state = sandbox.state
    state.restore()
    defaults = SandboxSettings()
    state.settings.update(
        {f.name: getattr(defaults, f.name) for f in fields(defaults) if f.name != "base_url"}
    )
