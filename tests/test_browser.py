"""The App in a real browser: the panel opens, the matrix renders, a cell click shows its objects;
on 80 COCO classes the matrix labels every row, a TIDE type sets the view and the threshold
slider re-scores.

Headless Debian chromium driven by Playwright; the tests start one App server on the test
database. Screenshots land in ``test-artifacts/`` (look at them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from browser import ARTIFACTS, CHROMIUM, PANEL_CONTENT, free_port, open_panel, settle, snap

pytestmark = pytest.mark.fiftyone


COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
    "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
    "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
    "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup fork "
    "knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake "
    "chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()  # COCO's 80 names (spaces as underscores: the KITTI predictions split on spaces)


@pytest.fixture(scope="module")
def server():
    """One App server on the test database, for every dataset of the module."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("DD_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
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
    yield f"http://127.0.0.1:{port}"
    os.killpg(process.pid, 15)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def app(server, tmp_path_factory):
    from detection_debugger.datasets.descriptors import ensure_descriptors
    from detection_debugger.demo.runner import (
        build_demo_dataset,
        evaluate_demo,
        find_demo_issues,
    )
    from detection_debugger.demo.scenes import DemoConfig

    dataset, files = build_demo_dataset(
        DemoConfig(12, 0), tmp_path_factory.mktemp("demo"), name="browser-demo", simulated=True
    )
    evaluate_demo(dataset)
    find_demo_issues(dataset, files["manifest"])
    ensure_descriptors(dataset, ["baseline"], "ground_truth")  # what Discover needs first
    yield f"{server}/datasets/{dataset.name}", dataset
    dataset.delete()


@pytest.fixture(scope="module")
def coco_app(server, tmp_path_factory):
    """80 COCO classes: synthetic boxes imported and evaluated (key ``eval``; not ``coco``: the
    COCO import writes ``coco_id`` on every object)."""
    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
    from detection_debugger.datasets.runs import evaluate_detections
    from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

    config = SyntheticConfig(
        num_images=60,
        num_classes=80,
        class_names=tuple(COCO_NAMES),
        gt_per_image=8.0,
        confusion_rate=0.15,
        image_size=(320, 240),
        seed=3,
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("coco80"), gt, results, gt_format="coco")
    dataset = apply_import(
        plan_import(
            f"browser-coco80-{uuid.uuid4().hex[:6]}",
            paths["images"],
            [
                LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
                LabelSource(paths["pred"], "tao", "predictions", predictions=True),
            ],
        ),
        progress=False,
    )
    evaluate_detections(dataset, "predictions", eval_key="eval")
    yield f"{server}/datasets/{dataset.name}", dataset
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
        snap(page, "1-panel.png")
        text = page.locator(content).inner_text()
        assert "eval_baseline" in text and "★ crosswalks" in text

        page.locator(content).get_by_role("radio", name="Confusion").click()
        page.locator(content).get_by_text("Classes shown").first.wait_for(timeout=60_000)
        settle(page)
        heatmap = page.locator(f"{content} .js-plotly-plot").first
        heatmap.scroll_into_view_if_needed()
        settle(page)
        snap(page, "2-matrix.png")
        box = heatmap.locator(".nsewdrag").first.bounding_box()
        n = len(labels)
        page.mouse.click(
            box["x"] + (col + 0.5) / n * box["width"], box["y"] + (row + 0.5) / n * box["height"]
        )
        page.get_by_text(f"{undetected} patches").first.wait_for(timeout=60_000)
        settle(page)
        snap(page, "3-undetected-crosswalks.png")
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
        panel.get_by_text("Show all").first.click()  # the App keeps the last test's view
        panel.get_by_text("on the whole run").first.wait_for(timeout=60_000)
        settle(page)
        for tab, expected in (
            ("Search", "Compute embeddings"),
            ("Label issues", "Label issues, highest score first"),
            ("Slices", "faded crosswalks"),
        ):
            panel.get_by_role("radio", name=tab).click()
            panel.get_by_text(expected).first.wait_for(timeout=60_000)
            settle(page)
            if tab == "Label issues":
                snap(page, "4-issues-tab.png")
                # the queue's rows: three actions, in a menu (the counts' rows: Review)
                queued = panel.locator("tbody tr").filter(has_not_text="Review")
                queued.first.locator("button").first.click()
                page.get_by_role("menuitem", name="Show").click()
                panel.get_by_text("1 of 12 samples").first.wait_for(timeout=60_000)
                settle(page)
                snap(page, "4-issue-evidence.png")
        snap(page, "4-slices-tab.png")
        assert "Save current view as slice" in panel.inner_text()
        panel.get_by_text("Discover failure slices").first.click()
        panel.get_by_text(
            re.compile("Failure slices, worst first|loses AP significantly")
        ).first.wait_for(timeout=60_000)
        settle(page)
        panel.get_by_text("Discover failure slices").first.scroll_into_view_if_needed()
        snap(page, "4-discovered-slices.png")

        panel.get_by_text("Load slice").first.click()
        panel.get_by_text("slice 'faded crosswalks' vs the whole run").first.wait_for(
            timeout=60_000
        )
        panel.get_by_text(f"{slice_size} of {len(dataset)} samples").first.wait_for(timeout=60_000)
        settle(page)
        panel.get_by_text("vs the whole run").first.scroll_into_view_if_needed()
        settle(page)
        snap(page, "5-slice-vs-whole-run.png")
        browser.close()


def _ghosts_card(panel) -> int:
    """The number on the panel's *ghosts* summary card."""
    return int(re.search(r"(\d+)\s+ghosts", panel.inner_text(timeout=120_000)).group(1))


def test_80_classes_confusion_tide_and_operating_points(coco_app):
    from playwright.sync_api import sync_playwright

    from detection_debugger.datasets.views import tide_view
    from detection_debugger.evaluation import MAIN_ERRORS
    from detection_debugger.panels.panel_data import confusion_classes

    url, dataset = coco_app
    results = dataset.load_evaluation_results("eval")
    chosen, total = confusion_classes(results.result, 20)
    assert total > 70 and len(chosen) == 20  # classes with objects: most of the 80
    expected_rows = {results.result.confusion.labels[i] for i in chosen} | {"background"}
    # the TIDE type whose objects are on the fewest images (so the view visibly changes)
    sizes = {}
    for error in MAIN_ERRORS:
        n = len(tide_view(dataset, "eval", "ground_truth", "predictions", error))
        if 0 < n < len(dataset):
            sizes[error] = n
    error = min(sizes, key=sizes.get)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser, page = open_panel(p, url)
        panel = page.locator(PANEL_CONTENT)
        snap(page, "6-coco80-classes.png")

        panel.get_by_role("radio", name="Confusion").click()
        heatmap = panel.locator(".js-plotly-plot").first
        heatmap.locator(".ytick").first.wait_for(timeout=60_000)
        settle(page)
        snap(page, "7-coco80-confusion.png")
        rows = heatmap.locator(".yaxislayer-above .ytick text").all_text_contents()
        columns = heatmap.locator(".xaxislayer-above .xtick text").all_text_contents()
        assert set(rows) == expected_rows and len(rows) == 21
        assert set(columns) == expected_rows

        panel.get_by_role("radio", name="Errors (TIDE)").click()
        panel.get_by_text("Show objects").first.wait_for(timeout=60_000)
        settle(page)
        snap(page, "8-coco80-tide.png")
        row = panel.locator("tr").filter(has=page.get_by_text(error, exact=True))
        row.get_by_text("Show objects").click()
        page.get_by_text(f"{sizes[error]} samples").first.wait_for(timeout=60_000)
        settle(page)
        snap(page, f"9-coco80-tide-{error}.png")

        panel.get_by_text("Show all").first.click()
        panel.get_by_text("on the whole run").first.wait_for(timeout=60_000)
        settle(page)
        panel.get_by_role("radio", name="Operating points").click()
        curves = panel.locator(".js-plotly-plot .scatterlayer .trace")
        curves.first.wait_for(timeout=60_000)
        settle(page)
        assert curves.count() >= 10  # ten classes: a line, a best-F1 star each
        snap(page, "10-coco80-operating-points.png")
        before = _ghosts_card(panel)
        thumb = panel.locator(".MuiSlider-root input[type=range]").first
        after = before
        for _ in range(3):  # a re-render between key presses can drop the focus: press again
            for _ in range(8):  # the keyboard moves MUI's slider a step a key: 8 x 0.1 up
                thumb.press("PageUp")
            page.wait_for_timeout(500)
            settle(page, timeout_s=180)  # the slider's calls: re-scored counts, a new matrix
            after = _ghosts_card(panel)
            if after != before:
                break
        # fewer ghosts at a higher score threshold
        assert after < before, " ".join(map(str, page.operator_calls["methods"][-20:]))
        snap(page, "11-coco80-threshold-moved.png")
        browser.close()
