"""Notifications: delivered to a local receiver, retried, never carrying secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recon.config import NotifySection
from recon.notify import build_notice, notify_run, slack_payload

SECRET_PATH = "/services/T000/B000/XXXXSECRETXXXX"


SUMMARY = {
    "run_id": "run-20261130-abc",
    "status": "partial",
    "exit_code": 4,
    "counts": {"applied": 10, "failed": 3},
    "errors_by_class": {"validation": 2, "duplicate_rule": 1},
}


def test_notice_has_counts_and_top_error_classes() -> None:
    notice = build_notice(SUMMARY)
    assert notice["top_error_classes"] == [
        {"class": "validation", "count": 2},
        {"class": "duplicate_rule", "count": 1},
    ]
    assert "validation ×2" in slack_payload(notice)["text"]


def test_notice_says_what_waits_for_a_person() -> None:
    notice = build_notice(
        {**SUMMARY, "waiting_by_kind": {"link": 3, "duplicate": 0, "conflict": 1200, "stale": 0}}
    )
    assert notice["waiting_by_kind"]["conflict"] == 1200
    assert "waiting for review: link 3, conflict 1,200" in slack_payload(notice)["text"]
    assert "waiting for review" not in slack_payload(build_notice(SUMMARY))["text"]


def test_failure_sent_to_slack_and_webhook(receiver: Any) -> None:
    cfg = NotifySection(
        slack_webhook=receiver.url + SECRET_PATH, webhook_url=receiver.url + "/hook"
    )
    sent = notify_run(cfg, SUMMARY)
    assert sent == {"slack": True, "webhook": True}
    paths = sorted(r["path"] for r in receiver.requests)
    assert paths == ["/hook", SECRET_PATH]
    generic = next(r["body"] for r in receiver.requests if r["path"] == "/hook")
    assert generic["status"] == "partial" and generic["exit_code"] == 4
    for request in receiver.requests:
        assert "SECRET" not in json.dumps(request["body"])


def test_success_only_when_asked(receiver: Any) -> None:
    ok = {**SUMMARY, "status": "ok", "exit_code": 0}
    assert notify_run(NotifySection(webhook_url=receiver.url + "/hook"), ok) == {}
    assert receiver.requests == []
    cfg = NotifySection(webhook_url=receiver.url + "/hook", on_success=True)
    assert notify_run(cfg, ok) == {"webhook": True}


def test_retried_on_server_errors(receiver: Any) -> None:
    receiver.fail_first = 2
    cfg = NotifySection(webhook_url=receiver.url + "/hook", retries=3)
    assert notify_run(cfg, SUMMARY) == {"webhook": True}
    assert len(receiver.requests) == 3


def test_undeliverable_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    cfg = NotifySection(webhook_url="http://127.0.0.1:9/SECRETPATH", retries=1, timeout_seconds=0.5)
    assert notify_run(cfg, SUMMARY) == {"webhook": False}
    assert "SECRETPATH" not in caplog.text


def test_a_malformed_hook_url_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty host label is urllib3's LocationParseError, no requests error: it crashed the
    run after it had finished."""
    monkeypatch.setenv("HOOK_URL", "https://hooks..slack.com/services/SECRETPATH")
    cfg = NotifySection(webhook_url="env:HOOK_URL", retries=0)
    assert notify_run(cfg, SUMMARY) == {"webhook": False}
    assert "SECRETPATH" not in caplog.text


def test_a_hook_dripping_its_answer_is_cut_off_at_the_timeout() -> None:
    """requests' timeout bounds each read; the notice gives up after timeout_seconds in all."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.1)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    port = server.getsockname()[1]
    cfg = NotifySection(webhook_url=f"http://127.0.0.1:{port}/hook", retries=0, timeout_seconds=0.5)
    started = time.monotonic()
    assert notify_run(cfg, SUMMARY) == {"webhook": False}
    assert time.monotonic() - started < 2
    stop.set()
    server.close()


def test_a_hook_whose_secret_is_unset_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RECON_TEST_HOOK", raising=False)
    cfg = NotifySection(webhook_url="env:RECON_TEST_HOOK")
    assert notify_run(cfg, SUMMARY) == {"webhook": False}  # the run's own result stands
    assert "RECON_TEST_HOOK" in caplog.text


def test_a_dry_run_says_so() -> None:
    from recon.notify import build_notice, slack_payload

    notice = build_notice(
        {"run_id": "run-1", "status": "ok", "exit_code": 0, "dry_run": True,
         "counts": {"would_apply": 685}}
    )  # fmt: skip
    text = slack_payload(notice)["text"]
    assert "DRY RUN" in text and "would apply: 685" in text and "applied: 685" not in text


def test_slack_shows_a_crm_error_text_literally() -> None:
    """A CRM's error message reached Slack's formatting as it was: `<!channel>` pinged the
    channel, `<http://…|re-login here>` showed a link the message chose, and `Amount < 100`
    was mangled. Slack asks for `&`, `<` and `>` escaped; the webhook JSON keeps the text."""
    said = "<!channel> token expired & <http://evil.example|re-login here>; Amount < 100"
    notice = build_notice({**SUMMARY, "status": "failed", "error": said})
    payload = slack_payload(notice)
    for text in (payload["text"], payload["blocks"][0]["text"]["text"]):
        assert "<!channel>" not in text and "<http" not in text
        assert (
            "&lt;!channel&gt; token expired &amp; &lt;http://evil.example|re-login here&gt;; "
            "Amount &lt; 100"
        ) in text
    assert notice["error"] == said  # the generic webhook's JSON carries it as it was
