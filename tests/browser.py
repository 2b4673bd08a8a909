"""Helpers of the browser tests: headless Debian chromium driven by Playwright."""

from __future__ import annotations

import socket
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


PANEL_CONTENT = '[data-cy="panel-content-detection_debugger"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_panel(p, url):
    """A browser page on ``url`` with the Detection Debugger panel open; returns both."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 2400, "height": 1300})
    page.goto(url)
    page.wait_for_selector('[data-cy="fo-grid"]', timeout=120_000)
    dismiss = page.get_by_text("Dismiss")
    if dismiss.count():
        dismiss.first.click()
    page.wait_for_timeout(1500)
    if not page.locator(PANEL_CONTENT).count():  # the App server may restore an open panel
        page.click('[data-cy="new-panel-btn"]')
        page.click('[data-cy="new-panel-option-detection_debugger"]')
    page.wait_for_selector(f"{PANEL_CONTENT} .js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(2000)
    return browser, page
