"""The review app: a thin Streamlit page over :mod:`recon.review`.

``recon review`` serves :data:`PAGE` (the page file inside the installed
package) with ``streamlit run``; ``app.py`` in a checkout runs the same page.
Only this package imports streamlit; the logic lives in :mod:`recon.review`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["BUSY_TIMEOUT", "PAGE", "port_in_use", "streamlit_command"]

#: seconds a write of the page (or of ``recon review`` indexing its queue) waits for another
#: process's write (a plan storing its items, a run's match) before it says who holds the
#: store, instead of a frozen page or a silent half minute
BUSY_TIMEOUT = 3.0

#: the script ``streamlit run`` serves
PAGE = Path(__file__).resolve().parent / "page.py"


def streamlit_command(
    cfg: Any, *, port: int | None = None, open_browser: bool | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that serve the review page for ``cfg``.

    Binds ``[review] host`` (127.0.0.1 by default) and ``port``; passes the
    config file as ``RECON_CONFIG`` so the page finds it as the CLI did.

    Examples:
        >>> from recon.config import ReconConfig
        >>> argv, env = streamlit_command(ReconConfig(), port=9000, open_browser=False)
        >>> argv[argv.index("--server.port") + 1], argv[argv.index("--server.address") + 1]
        ('9000', '127.0.0.1')
    """
    browser = cfg.review.open_browser if open_browser is None else open_browser
    argv = [
        sys.executable, "-m", "streamlit", "run", str(PAGE),
        "--server.address", cfg.review.host,
        "--server.port", str(port or cfg.review.port),
        "--server.headless", "false" if browser else "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    env = dict(os.environ)
    if cfg.source_path is not None:
        env["RECON_CONFIG"] = str(cfg.source_path)
    return argv, env


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (the app could not serve there).

    Raises:
        socket.gaierror: ``host`` does not resolve.
        OSError: ``host`` is not an address of this machine (``EADDRNOTAVAIL``).

    Examples:
        >>> import socket
        >>> s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
        >>> port_in_use("127.0.0.1", s.getsockname()[1])
        True
        >>> s.close()
    """
    import errno
    import socket

    # the address family of the host as given (an IPv6 loopback "::1" too); a host that does
    # not resolve is the caller's error, not a busy port (socket.gaierror propagates)
    family, kind, proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise  # not busy: no address of this machine
        return True  # taken (or this family unusable here): the app could not serve there
    return False
