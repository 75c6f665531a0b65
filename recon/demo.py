"""``recon demo``: the whole product on one machine, against the local CRM emulators.

Starts the HubSpot and Salesforce emulators with seeded demo data, writes a
``recon.toml`` that points recon at them, pulls both CRMs through the real
client libraries, matches, plans, and serves the review app, printing its URL.
Ctrl-C stops the app and the emulators cleanly. Everything lives in one
folder (default ``data/demo/``): the emulators' database, the store and the
config, so a second ``recon demo`` starts in seconds and pulls incrementally.

Examples:
    >>> prepare_demo(Path("/tmp/recon-demo"), size="tiny")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ReconConfig, load_config
from .errors import OutputError, UsageError
from .store import open_store

__all__ = ["DemoResult", "demo_config_toml", "prepare_demo", "run_demo"]

log = logging.getLogger(__name__)

Say = Callable[[str], None]


def demo_config_toml(
    url: str,
    *,
    store: str = "recon.db",
    sandbox_db: str = "sandbox.db",
    size: str = "small",
    seed: int = 0,
) -> str:
    """A ``recon.toml`` for the demo: the sandbox's config with the store beside it.

    The credentials are the sandbox's dummy ones, written as literals: recon
    accepts literal secrets only for loopback hosts. ``[sandbox]`` names the demo data's
    size and seed: `recon sandbox serve` with this file serves the data the store was pulled
    from (with the default size it would make other data in its place).
    """
    from .sandbox.server import config_toml

    return config_toml(
        url,
        extra={
            "store": {"path": store, "exports_dir": "exports"},
            "hubspot": {"portal_id": "1000001"},
            "sandbox": {"db": sandbox_db, "size": size, "seed": seed},
            "review": {"reviewer": "demo-analyst"},
        },
    )


@dataclass
class DemoResult:
    """What :func:`prepare_demo` did."""

    folder: Path
    config_path: Path
    sandbox_url: str
    pull: dict[str, Any] = field(default_factory=dict)
    match_run_id: str | None = None
    plan_run_id: str | None = None
    waiting_for_review: int = 0


def prepare_demo(
    folder: Path,
    *,
    size: str = "small",
    seed: int = 0,
    port: int = 0,
    reset: bool = False,
    say: Say = lambda _m: None,
) -> tuple[DemoResult, Any]:
    """Start the emulators and fill the store: pull, match, plan.

    Returns the result and the running sandbox server (the caller stops it).
    """
    from .match import run_match
    from .plan import build_plan
    from .pull import run_pull
    from .sandbox.server import SandboxServer, open_state

    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError.writing("the demo folder", folder, exc, option="--dir") from None
    # the store holds what was pulled from the emulators' data of one size and seed: other
    # data (the emulators regenerate it) would be pulled into it incrementally, over the old
    marker = folder / "demo-data.json"
    try:
        before = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None
    except (OSError, ValueError):
        before = None
    other_data = before is not None and before != {"size": size, "seed": seed}
    if other_data and not reset and isinstance(before, dict):
        say(
            f"the store was pulled from {before.get('size')} demo data, seed {before.get('seed')}: "
            f"starting a new store for {size}, seed {seed}"
        )
    if reset or other_data:
        for name in ("recon.db", "recon.db-wal", "recon.db-shm"):
            (folder / name).unlink(missing_ok=True)
    say(f"starting the CRM emulators ({size} demo data, seed {seed})…")
    state = open_state(folder / "sandbox.db", size=size, seed=seed, reset=reset)
    try:
        server = SandboxServer(state, port=port).start()
    except OSError:
        server = SandboxServer(state, port=0).start()  # the usual port is taken
    config_path = folder / "recon.toml"
    config_path.write_text(demo_config_toml(server.url, size=size, seed=seed), encoding="utf-8")
    cfg = load_config(config_path)
    db = open_store(cfg.store.path)
    result = DemoResult(folder=folder, config_path=config_path, sandbox_url=server.url)
    say(f"emulators serving on {server.url}; pulling both CRMs through the real clients…")
    pulled = run_pull(db, cfg)
    marker.write_text(json.dumps({"size": size, "seed": seed}) + "\n", encoding="utf-8")
    result.pull = {"records": pulled.records, "calls": pulled.calls}
    say(
        f"pulled {sum(pulled.records.values())} records with {sum(pulled.calls.values())} API calls; matching…"
    )
    result.match_run_id = run_match(db, cfg)
    say("planning…")
    result.plan_run_id = build_plan(db, cfg, match_run_id=result.match_run_id).run_id
    result.waiting_for_review = _waiting(db)
    db.conn.close()
    return result, server


def _waiting(db: Any) -> int:
    try:
        from .review import QueueFilter, queue

        return int(queue(db, QueueFilter(status="undecided"), page_size=1).total)
    except Exception:  # the count is informative only
        log.debug("could not count the review queue", exc_info=True)
        return 0


def run_demo(
    folder: Path,
    *,
    size: str = "small",
    seed: int = 0,
    sandbox_port: int = 8765,
    review_port: int = 8501,
    open_review: bool = True,
    open_browser: bool = False,
    reset: bool = False,
    say: Say = lambda _m: None,
) -> DemoResult:
    """Prepare the demo and serve the review app until Ctrl-C (or until it exits).

    Raises:
        UsageError: ``review_port`` is taken (said before the emulators start and the pull,
            not after them as the review app's own exit).
    """
    if open_review:
        from .app import port_in_use

        host = ReconConfig().review.host  # the demo's config leaves [review] host at its default
        if port_in_use(host, review_port):
            raise UsageError(
                f"port {review_port} on {host} is in use (another review app?): the demo's "
                "review app cannot serve there",
                hint="stop it, or pass --port with a free port (or --no-review)",
            )
    result, server = prepare_demo(
        folder, size=size, seed=seed, port=sandbox_port, reset=reset, say=say
    )
    try:
        say(f"{result.waiting_for_review} items wait for review")
        if not open_review:
            return result
        from .app import streamlit_command

        cfg: ReconConfig = load_config(result.config_path)
        cmd, env = streamlit_command(cfg, port=review_port, open_browser=open_browser)
        proc = subprocess.Popen(cmd, env=env, cwd=str(result.folder))
        say(f"review app: http://{cfg.review.host}:{review_port}  (Ctrl-C stops the demo)")
        try:
            while proc.poll() is None:
                time.sleep(0.5)
            if proc.returncode not in (0, None):
                raise UsageError(f"the review app exited with code {proc.returncode}")
        except KeyboardInterrupt:
            say("stopping…")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        return result
    finally:
        server.stop()
        server.state.close()
