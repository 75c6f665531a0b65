"""One real-browser path: Debian's Chromium, driven by Playwright, against `streamlit run app.py`.

Open the queue, approve the first item, reload, and check both the page (the
item shows as decided) and the store (the label is saved). No browser is ever
downloaded: the test uses /usr/bin/chromium, and fails in CI when it is absent.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from review_server import free_port, serve

from recon import review
from recon.store import open_store

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"), pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_spec = importlib.util.spec_from_file_location("bench_review", ROOT / "bench" / "bench_review.py")
assert _spec and _spec.loader
bench_review = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_review)


def test_approve_in_chromium(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                "/usr/bin/chromium is missing in CI: `make chromium` installs Debian's package"
            )
        pytest.skip("/usr/bin/chromium is not installed (make chromium)")
    from playwright import sync_api  # a dev dependency: never skipped in CI

    db = open_store(tmp_path / "recon.db")
    bench_review.fill_store(db, links=24, clusters=0, conflicts=0)
    item = review.queue(db, page_size=1).items[0]
    cfg = tmp_path / "recon.toml"
    cfg.write_text(
        '[store]\npath = "recon.db"\n[review]\nreviewer = "browser@example.com"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["RECON_CONFIG"] = str(cfg)
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--server.port", str(port), "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # fmt: skip
    url = serve(request, argv, env, port, tmp_path / "streamlit.log")
    shot = tmp_path / "review-approved.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=60_000)
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        page.set_default_timeout(45_000)
        page.goto(url)
        page.get_by_text(f"id {item['item_id']}").wait_for()
        page.get_by_role("button", name="✓ Same").click()
        page.get_by_text(f"Saved: link match on {item['title']}").wait_for()
        rows = [
            dict(r)
            for r in db.query("select * from decisions where item_id = ?", [item["item_id"]])
        ]
        assert [(r["label"], r["reviewer"], r["superseded"]) for r in rows] == [
            ("match", "browser@example.com", 0)
        ]
        page.reload()
        page.get_by_text("Why recon suggests this").wait_for()
        # a fresh session: show decided items and find ours
        page.get_by_label("Search names, emails, domains").fill(item["title"].split("  ↔  ")[0])
        page.get_by_label("Search names, emails, domains").press("Enter")
        page.get_by_role("radiogroup", name="Status").get_by_role(
            "radio", name="Decided", exact=True
        ).click()
        page.get_by_text(f"id {item['item_id']}").wait_for()
        page.get_by_text("link: match by browser@example.com").wait_for()
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    again = [
        dict(r)
        for r in db.query(
            "select label from decisions where item_id = ? and superseded = 0", [item["item_id"]]
        )
    ]
    assert again == [{"label": "match"}]
