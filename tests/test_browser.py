"""The App in a real browser: the panel opens, the matrix renders, a cell click shows its objects.

Headless Debian chromium driven by Playwright; the test starts its own App server on the
test database. Screenshots land in ``test-artifacts/`` (look at them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.fiftyone

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        if os.environ.get("DD_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs it)")
    from detection_debugger.demo.runner import (
        build_demo_dataset,
        evaluate_demo,
        find_demo_issues,
    )
    from detection_debugger.demo.scenes import DemoConfig

    dataset, files = build_demo_dataset(
        DemoConfig(12, 0), tmp_path_factory.mktemp("demo"), name="browser-demo"
    )
    evaluate_demo(dataset)
    find_demo_issues(dataset, files["manifest"])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "fiftyone.server.main", "--address", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.25)
    yield f"http://127.0.0.1:{port}/datasets/{dataset.name}", dataset
    os.killpg(server.pid, 15)
    server.wait(timeout=30)
    dataset.delete()


def _open_panel(p, url):
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


PANEL_CONTENT = '[data-cy="panel-content-detection_debugger"]'


def test_panel_renders_and_a_cell_click_shows_the_undetected_crosswalks(app):
    from playwright.sync_api import sync_playwright

    url, dataset = app
    result = dataset.load_evaluation_results("eval_baseline").result
    labels = list(result.confusion.labels)
    row, col = labels.index("crosswalks"), labels.index("background")
    undetected = int(result.confusion.matrix[row, col])
    assert undetected > 0
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir()
    with sync_playwright() as p:
        browser, page = _open_panel(p, url)
        content = PANEL_CONTENT
        page.screenshot(path=str(ARTIFACTS / "1-panel.png"))
        text = page.locator(content).inner_text()
        assert "eval_baseline" in text and "★ crosswalks" in text

        heatmap = page.locator(f"{content} .js-plotly-plot").nth(1)
        heatmap.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "2-matrix.png"))
        box = heatmap.locator(".nsewdrag").first.bounding_box()
        n = len(labels)
        page.mouse.click(
            box["x"] + (col + 0.5) / n * box["width"], box["y"] + (row + 0.5) / n * box["height"]
        )
        page.get_by_text(f"{undetected} patches").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "3-undetected-crosswalks.png"))
        browser.close()


def test_slice_list_loads_a_slice_and_label_issues_are_listed(app):
    from playwright.sync_api import sync_playwright

    url, dataset = app
    slice_size = len(dataset.load_saved_view("faded crosswalks"))
    assert slice_size > 0
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = _open_panel(p, url)
        panel = page.locator(PANEL_CONTENT)
        title = panel.get_by_text("Flagged label issues").first
        title.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "4-slices-search-issues.png"))
        text = panel.inner_text()
        assert "faded crosswalks" in text and "Save current view as slice" in text
        assert "Search..." in text and "wrong_class" in text

        panel.get_by_text("Load slice").first.click()
        panel.get_by_text("vs the whole run").first.wait_for(timeout=60_000)
        page.get_by_text(f"{slice_size} samples").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        panel.get_by_text("vs the whole run").first.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "5-slice-vs-whole-run.png"))
        browser.close()
