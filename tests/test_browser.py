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
from browser import ARTIFACTS, CHROMIUM, PANEL_CONTENT, free_port, open_panel

pytestmark = pytest.mark.fiftyone


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
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fiftyone.server.main",
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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
        browser, page = open_panel(p, url)
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
        browser, page = open_panel(p, url)
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
