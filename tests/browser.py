"""Helpers of the browser tests: headless Debian chromium driven by Playwright."""

from __future__ import annotations

import socket
import time
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


def track_operators(page) -> dict:
    """Counts the page's operator calls in flight (``settle`` waits for them)."""
    calls = {"pending": 0, "last": time.monotonic(), "methods": []}

    def change(step):
        def handler(request):
            if "/operators/execute" in request.url:
                calls["pending"] += step
                calls["last"] = time.monotonic()
                if step > 0:
                    params = (request.post_data_json or {}).get("params") or {}
                    calls["methods"].append(params.get("__method__"))

        return handler

    page.on("request", change(1))
    page.on("requestfinished", change(-1))
    page.on("requestfailed", change(-1))
    page.operator_calls = calls
    return calls


def settle(page, quiet_s: float = 1.5, timeout_s: float = 90) -> None:
    """Waits until the panel's operator calls are answered and none came for ``quiet_s``
    (a call's answer can re-render the panel and replace its plots)."""
    calls = page.operator_calls
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if calls["pending"] <= 0 and time.monotonic() - calls["last"] > quiet_s:
            page.wait_for_timeout(300)  # the last answer rendered
            return
        page.wait_for_timeout(200)
    raise TimeoutError(
        f"the panel's operator calls did not settle in {timeout_s} s: {calls['pending']} "
        f"pending, the last ones {calls['methods'][-12:]}"
    )


def snap(page, name: str) -> None:
    """A screenshot in ``test-artifacts/`` (look at them); a busy machine renders slowly."""
    page.screenshot(path=str(ARTIFACTS / name), timeout=120_000)


def open_panel(p, url):
    """A browser page on ``url`` with the Detection Debugger panel open; returns both."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 2400, "height": 1300})
    track_operators(page)
    page.goto(url)
    page.wait_for_selector('[data-cy="fo-grid"]', timeout=120_000)
    dismiss = page.get_by_text("Dismiss")
    if dismiss.count():
        dismiss.first.click()
    page.wait_for_timeout(1500)
    if not page.locator(PANEL_CONTENT).count():  # the App server may restore an open panel
        page.click('[data-cy="new-panel-btn"]')
        page.click('[data-cy="new-panel-option-detection_debugger"]')
    classes = page.locator(PANEL_CONTENT).get_by_role("radio", name="Classes")
    classes.wait_for(timeout=90_000)
    settle(page)
    if not classes.is_checked():  # the App server restores the panel with its last tab
        classes.click()
    page.wait_for_selector(f"{PANEL_CONTENT} .js-plotly-plot", timeout=90_000)
    settle(page)
    return browser, page
