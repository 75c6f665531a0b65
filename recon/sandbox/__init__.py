"""Local emulators of the HubSpot CRM v3 and Salesforce REST APIs, with demo data.

One Starlette app answers both APIs (and an admin API under ``/_sandbox/``) from
one SQLite database, so the unmodified official clients (``hubspot-api-client``,
``simple-salesforce``) work against it. Start it in-process with
:class:`SandboxServer` or from the shell with ``recon sandbox serve``.

Examples:
    >>> from recon.sandbox import SandboxServer, SandboxState
    >>> with SandboxServer(SandboxState(":memory:")) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

from .faults import FaultInjector
from .server import SandboxServer, config_toml, create_app, open_state, serve
from .state import SandboxSettings, SandboxState

__all__ = [
    "FaultInjector",
    "SandboxServer",
    "SandboxSettings",
    "SandboxState",
    "config_toml",
    "create_app",
    "open_state",
    "serve",
]
