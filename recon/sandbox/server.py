"""The sandbox HTTP server: one Starlette app answering both CRM APIs and the admin API.

- :func:`create_app` mounts the HubSpot routes (``/crm/...``), the Salesforce routes
  (``/services/...``, when :mod:`recon.sandbox.salesforce` is installed) and the admin
  API under ``/_sandbox/``.
- :class:`SandboxServer` runs that app with uvicorn in a background thread on
  127.0.0.1 and a free (or given) port: what tests and ``recon demo`` use.
- :func:`serve` is ``recon sandbox serve``: blocking, Ctrl-C stops it cleanly.

Examples:
    >>> from recon.sandbox.state import SandboxState
    >>> with SandboxServer(SandboxState(":memory:")) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount

from ..errors import SourceError
from . import admin, hubspot
from .faults import hubspot_error, salesforce_error
from .state import SandboxSettings, SandboxState, check_sandbox_file, refuse_if_served

__all__ = ["SandboxServer", "create_app", "open_state", "serve"]

log = logging.getLogger(__name__)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    detail = exc.detail if isinstance(exc, HTTPException) else "Not Found"
    path = request.url.path
    if path.startswith("/services/"):
        code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
        return salesforce_error(
            status, code, "The requested resource does not exist" if status == 404 else detail
        )
    if path.startswith("/_sandbox"):
        return JSONResponse({"error": detail}, status_code=status)
    return hubspot_error(
        status,
        f"Unable to infer object type from: {path}" if status == 404 else detail,
        "OBJECT_NOT_FOUND" if status == 404 else "VALIDATION_ERROR",
    )


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its request body arrived (a timeout, a killed process): nobody
    reads an answer, and nothing was written; a real CRM just drops the connection too."""
    return Response(status_code=499)


def create_app(state: SandboxState) -> Starlette:
    """The ASGI app of one sandbox.

    Examples:
        >>> app = create_app(SandboxState(":memory:"))
        >>> app.state.sandbox is not None
        True
    """
    routes: list[BaseRoute] = [Mount("/_sandbox", routes=admin.routes(state))]
    routes += hubspot.routes(state)
    sf_routes = state.side_hook("salesforce", "routes")
    if sf_routes is not None:
        routes += sf_routes(state)
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found, ClientDisconnect: _client_gone},
    )
    app.state.sandbox = state
    return app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        in_use = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        raise SourceError(
            f"the sandbox cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port, or stop what is using it"
            if in_use
            else "give --host an address of this machine (127.0.0.1 by default)",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class SandboxServer:
    """Run a sandbox in a background thread (tests, ``recon demo``).

    Args:
        state: the sandbox state to serve.
        host: interface to bind (loopback by default).
        port: 0 for a free port.

    Examples:
        >>> server = SandboxServer(SandboxState(":memory:")).start()
        >>> server.port > 0
        True
        >>> server.stop()
    """

    def __init__(self, state: SandboxState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self._sock = _bind(host, port)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        state.settings.base_url = self.url
        state.announce(self.url)
        config = uvicorn.Config(
            create_app(state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 60.0) -> SandboxServer:
        """Start serving and wait until the server answers; return self."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise SourceError(
                    f"the sandbox did not start on {self.url}", hint="see the log for the cause"
                )
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._thread is None:
            self._sock.close()
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._thread = None
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def open_state(
    db: str | Path,
    *,
    size: str | None = "small",
    seed: int = 0,
    reset: bool = False,
    settings: SandboxSettings | None = None,
) -> SandboxState:
    """Open (or create) a sandbox database, loading demo data unless it already holds them.

    Args:
        db: the SQLite file.
        size: demo data size (``tiny``, ``small``, ``large``) or None for an empty sandbox.
        seed: demo data seed.
        reset: start from an empty database.

    Examples:
        >>> state = open_state(":memory:", size=None)
        >>> state.get_meta("demo") is None
        True
    """
    from . import demo

    check_sandbox_file(db, doing="delete it" if reset else "use it as the sandbox")
    refuse_if_served(db)  # never under a running sandbox: not its data, not its file
    if reset and str(db) != ":memory:":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    state = SandboxState(db, settings=settings)
    if size is not None:
        demo.ensure_demo(state, size=size, seed=seed)
    return state


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    db: str | Path = "data/sandbox.db",
    size: str | None = "small",
    seed: int = 0,
    reset: bool = False,
    on_ready: Callable[[SandboxState], None] | None = None,
) -> None:
    """Serve the sandbox until Ctrl-C (``recon sandbox serve``).

    The database is kept between runs; demo data are generated only when the
    database holds none for this ``size`` and ``seed`` (or with ``reset``), so a
    restart answers at once. ``on_ready(state)`` runs once the port is bound and
    the data are loaded (``state.settings.base_url`` is the URL).
    """
    sock = _bind(host, port)
    try:
        state = open_state(db, size=size, seed=seed, reset=reset)
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        state.settings.base_url = f"http://{shown_host}:{sock.getsockname()[1]}"
        state.announce(state.settings.base_url)
        config = uvicorn.Config(
            create_app(state), log_level="warning", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        log.info("sandbox serving on %s", state.settings.base_url)
        if on_ready is not None:
            on_ready(state)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            # uvicorn shuts down gracefully on SIGINT, then re-raises it: that is a clean stop
            log.info("sandbox stopped")
        finally:
            state.close()
    finally:
        sock.close()


def config_toml(url: str, *, extra: dict[str, dict[str, Any]] | None = None) -> str:
    """A ``recon.toml`` pointing recon at the sandbox at ``url`` (``recon sandbox config``).

    The credentials are the sandbox's dummy literals, which recon's config
    accepts only because every URL they go to is a loopback address. ``extra``
    adds or replaces keys per section (``recon demo`` keeps its store beside it).

    Examples:
        >>> 'base_url = "http://127.0.0.1:8765"' in config_toml("http://127.0.0.1:8765")
        True
        >>> 'path = "recon.db"' in config_toml("http://127.0.0.1:1", extra={"store": {"path": "recon.db"}})
        True
    """
    port = url.rstrip("/").rsplit(":", 1)[-1]
    sections: dict[str, dict[str, Any]] = {
        "store": {"path": "data/recon.db"},
        "hubspot": {
            "base_url": url,
            "access_token": "sandbox-hubspot-token",
            "salesforce_connector_active": False,
        },
        "salesforce": {
            "instance_url": url,
            "login_url": url,
            "auth": "client_credentials",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
            "api_version": "59.0",
        },
        "sandbox": {"port": int(port) if port.isdigit() else 8765},
    }
    for name, values in (extra or {}).items():
        sections.setdefault(name, {}).update(values)
    lines = [
        f"# recon.toml for the local sandbox at {url} (`recon sandbox serve --port {port}`).",
        "# The credentials below are dummy literals: recon accepts them for loopback hosts only.",
    ]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        # JSON scalars are valid TOML for strings, integers and booleans
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
