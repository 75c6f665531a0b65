"""Notifications after headless runs: a Slack incoming webhook and a generic JSON webhook.

Sent on failure, and on success when ``[notify] on_success = true``. A notice
carries the run id, status, counts and the top error classes — never secrets:
the webhook URL itself is a secret (Slack puts its token in the path), so it
appears nowhere but in the request line, and errors about delivery name only
the kind of hook.

Examples:
    >>> notice = build_notice({"run_id": "run-1", "status": "partial", "exit_code": 4,
    ...     "errors_by_class": {"validation": 3}})
    >>> notice["title"]
    'recon run run-1: partial'
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests

from .config import NotifySection
from .errors import ReconError, redact

__all__ = ["build_notice", "notify_run", "slack_payload"]

log = logging.getLogger(__name__)

_ICONS = {
    "ok": ":white_check_mark:",
    "partial": ":warning:",
    "budget": ":hourglass:",
    "held": ":raised_hand:",
}


def build_notice(summary: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook body for a run summary (plain data, no secrets).

    Args:
        summary: a ``recon run`` summary (run_id, status, exit_code, stages, errors_by_class...).
    """
    errors = dict(summary.get("errors_by_class") or {})
    top = sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {
        "event": "recon.run.finished",
        "title": ("DRY RUN · " if summary.get("dry_run") else "")
        + (f"recon run {summary['run_id']}" if summary.get("run_id") else "recon run")
        + f": {summary.get('status', '?')}",
        "run_id": summary.get("run_id"),
        "status": summary.get("status"),
        "exit_code": summary.get("exit_code"),
        "dry_run": bool(summary.get("dry_run")),
        "counts": summary.get("counts", {}),
        # undecided review items per kind (None: not known, e.g. a run of pull alone)
        "waiting_by_kind": summary.get("waiting_by_kind"),
        "api_calls": summary.get("api_calls", {}),
        "top_error_classes": [{"class": k, "count": v} for k, v in top],
        # an unexpected exception's text is not redacted at its source (ReconError's is)
        "error": redact(str(err)) if (err := summary.get("error")) else err,
        "audit_anchor": summary.get("audit_anchor"),
    }


def _plain(value: Any) -> str:
    """A count, or counts by name, as a person reads them (no Python dict reprs).

    Examples:
        >>> _plain({"hubspot:companies": 1200, "salesforce:Lead": 3}), _plain({})
        ('hubspot:companies 1,200, salesforce:Lead 3', '0')
    """
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items()) or "0"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _slack_escape(text: Any) -> str:
    """``text`` as Slack shows it literally: ``&``, ``<`` and ``>`` escaped, as Slack asks of
    every message text. A CRM's error message passed through unescaped could ping the channel
    (``<!channel>``) or show a link it chose (``<http://…|re-login>``).

    Examples:
        >>> _slack_escape("<!channel> Amount must be < 100 & > 0")
        '&lt;!channel&gt; Amount must be &lt; 100 &amp; &gt; 0'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (text plus blocks) for a notice; every value from the
    run (title, counts, error text) is escaped (:func:`_slack_escape`)."""
    icon = _ICONS.get(str(notice.get("status")), ":x:")
    esc = _slack_escape
    lines = [f"{icon} *{esc(notice['title'])}* (exit {esc(notice.get('exit_code'))})"]
    counts = notice.get("counts") or {}
    if counts:
        # a dry run wrote nothing: it counts what it would apply
        name = {"would_apply": "would apply"}
        lines.append(
            " · ".join(f"{esc(name.get(k, k))}: {esc(_plain(v))}" for k, v in counts.items())
        )
    waiting = {k: v for k, v in (notice.get("waiting_by_kind") or {}).items() if v}
    if waiting:
        lines.append("waiting for review: " + esc(_plain(waiting)))
    calls = notice.get("api_calls") or {}
    if calls:
        lines.append("API calls: " + esc(_plain(calls)))
    if notice.get("top_error_classes"):
        lines.append(
            "errors: "
            + ", ".join(
                f"{esc(e['class'])} ×{esc(e['count'])}" for e in notice["top_error_classes"]
            )
        )
    if notice.get("error"):
        lines.append(f"error: {esc(notice['error'])}")
    text = "\n".join(lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def _post_within(url: str, body: dict[str, Any], seconds: float) -> requests.Response:
    """POST ``body``, giving up after ``seconds`` in all: the ``timeout`` of requests bounds
    each socket read, so a server dripping its answer a byte at a time would hold the run."""
    box: dict[str, Any] = {}

    def send() -> None:
        try:
            box["resp"] = requests.post(url, json=body, timeout=seconds)
        except BaseException as exc:  # handed to the caller
            box["exc"] = exc

    worker = threading.Thread(target=send, name="recon-notify", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise requests.Timeout(f"no complete answer within {seconds:g} s")
    if "exc" in box:
        raise box["exc"]
    resp: requests.Response = box["resp"]
    return resp


def _post(kind: str, url: str, body: dict[str, Any], cfg: NotifySection) -> bool:
    delay = 0.5
    for attempt in range(cfg.retries + 1):
        try:
            resp = _post_within(url, body, cfg.timeout_seconds)
        except Exception as exc:  # a delivery never fails the run (a malformed URL included)
            # the exception text can contain the URL (and so the secret): log its type only
            log.warning(
                "%s notification attempt %d failed: %s", kind, attempt + 1, type(exc).__name__
            )
        else:
            if resp.status_code < 300:
                return True
            log.warning(
                "%s notification attempt %d got HTTP %d", kind, attempt + 1, resp.status_code
            )
            if resp.status_code < 500 and resp.status_code != 429:
                return False
        if attempt < cfg.retries:
            time.sleep(delay)
            delay *= 2
    return False


def notify_run(
    cfg: NotifySection, summary: dict[str, Any], *, force: bool = False
) -> dict[str, bool]:
    """Send the run's notice to every configured hook, when the run's outcome calls for it.

    Sent when the run did not succeed, or when ``on_success`` is set (or ``force``).
    Delivery problems are logged, never raised: a notice must not fail a run.

    Returns:
        ``{"slack": delivered, "webhook": delivered}`` for each hook tried.
    """
    succeeded = summary.get("status") == "ok"
    if succeeded and not (cfg.on_success or force):
        return {}
    notice = build_notice(summary)
    sent: dict[str, bool] = {}
    for kind, secret, key, body in (
        ("slack", cfg.slack_webhook, "notify.slack_webhook", slack_payload(notice)),
        ("webhook", cfg.webhook_url, "notify.webhook_url", notice),
    ):
        if secret is None:
            continue
        try:
            url = secret.get(key)
        except ReconError as exc:  # e.g. "env:NAME" with NAME unset: the run's result stands
            log.warning("%s notification not sent: %s", kind, exc)
            sent[kind] = False
            continue
        sent[kind] = _post(kind, url, body, cfg)
    return sent
