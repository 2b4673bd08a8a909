"""The Detection Debugger panel and the views behind its numbers, on a real dataset."""

from __future__ import annotations

import uuid

import fiftyone as fo
import pytest
from fiftyone.operators import execute_operator

from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.runs import evaluate_detections
from detection_debugger.datasets.views import cell_view, error_view
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

pytestmark = pytest.mark.fiftyone

PANEL = "@datacentric/detection-debugger/detection_debugger"


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    config = SyntheticConfig(
        num_images=20,
        num_classes=3,
        seed=4,
        image_size=(200, 150),
        confusion_rate=0.2,
        duplicates_per_object=0.5,
        class_names=("car", "bike", "crosswalks"),
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("panel"), gt, results, gt_format="coco")
    name = f"panel-{uuid.uuid4().hex[:8]}"
    dataset = apply_import(
        plan_import(
            name,
            paths["images"],
            [
                LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
                LabelSource(paths["pred"], "tao", "predictions", predictions=True),
            ],
        ),
        progress=False,
    )
    run = evaluate_detections(dataset, "predictions", eval_key="dd")
    yield dataset, run.result
    dataset.delete()


def _count(view, field):
    if view._is_patches:
        return len(view)
    return view.count(f"{field}.detections")


def test_every_cell_view_holds_exactly_its_objects(evaluated):
    dataset, result = evaluated
    labels = result.confusion.labels
    matrix = result.confusion.matrix
    for i, gt_label in enumerate(labels):
        for j, pred_label in enumerate(labels):
            if gt_label == pred_label == "background":
                continue
            view = cell_view(dataset, "dd", "ground_truth", "predictions", gt_label, pred_label)
            field = "predictions" if gt_label == "background" else "ground_truth"
            assert _count(view, field) == matrix[i, j], (gt_label, pred_label)
            if gt_label not in ("background", pred_label) and pred_label != "background":
                assert view.count("predictions.detections") == matrix[i, j]


def test_error_views_match_the_class_counts(evaluated):
    dataset, result = evaluated

    def count(label, error, field):
        view = error_view(dataset, "dd", "ground_truth", "predictions", label, error)
        return view.count(f"{field}.detections")

    for name, m in result.classes.items():
        assert count(name, "undetected", "ground_truth") == m.fn
        assert count(name, "undetected", "predictions") == 0
        assert count(name, "ghosts", "predictions") == m.fp
        assert count(name, "correct", "ground_truth") == m.tp
        assert count(name, "mispredicted", "ground_truth") == m.mispredicted


def _run(dataset, method, state, **params):
    out = execute_operator(
        PANEL,
        ctx={
            "dataset": dataset,
            "params": {
                "panel_id": "p",
                "__method__": method,
                "panel_state": state,
                **params,
            },
        },
    )
    assert out.error is None, out.error
    return out.executor._requests


def test_panel_loads_and_cells_set_the_view(evaluated):
    dataset, result = evaluated
    requests = _run(dataset, "on_load", {})
    names = [r.operator_uri for r in requests]
    assert "show_panel_output" in names
    state = {}
    for r in requests:
        if r.operator_uri == "patch_panel_state":
            state.update(r.params["state"])
    assert state["eval_key"] == "dd" and "whole run" in state["summary"]
    assert any(row["class"].startswith("★ ") for row in state["classes"])
    data = next(
        r.params["data"]["confusion"]
        for r in requests
        if r.operator_uri == "patch_panel_data" and "confusion" in r.params["data"]
    )
    assert data[0]["text"] == result.confusion.matrix.tolist()

    requests = _run(dataset, "on_cell_click", state, x="background", y="car")
    set_view = [r for r in requests if r.operator_uri == "set_view"]
    assert set_view, [r.operator_uri for r in requests]
    view = fo.DatasetView._build(dataset, set_view[0].params["view"])
    k = result.confusion.labels.index("car")
    assert len(view) == result.confusion.matrix[k, -1]


def _state_after(requests, state=None):
    state = dict(state or {})
    for r in requests:
        if r.operator_uri == "patch_panel_state":
            state.update(r.params["state"])
    return state


def test_panel_compares_a_slice_with_the_whole_run_and_lists_slices(evaluated):
    dataset, result = evaluated
    slice_view = dataset.limit(8)
    dataset.save_view("first eight", slice_view, description="eight images", overwrite=True)
    # The App sends the saved view's name with its stages.
    out = execute_operator(
        PANEL,
        ctx={
            "dataset": dataset,
            "view_name": "first eight",
            "params": {
                "panel_id": "p",
                "__method__": "on_load",
                "panel_state": {},
            },
        },
    )
    assert out.error is None, out.error
    state = _state_after(out.executor._requests)
    assert state["slice_scope"] == "slice 'first eight'"
    expected = dataset.load_evaluation_results("dd").evaluate_samples(slice_view.values("id"))
    rows = {row["class"]: row for row in state["slice_classes"]}
    for name, m in expected.classes.items():
        assert rows[name]["tp"] == m.tp and rows[name]["fn"] == m.fn
        if m.AP is not None and result.classes[name].AP is not None:
            assert rows[name]["AP_delta"] == pytest.approx(
                round(m.AP, 4) - round(result.classes[name].AP, 4), abs=2e-4
            )
    listed = {row["slice"]: row for row in state["slices"]}
    assert listed["first eight"]["samples"] == 8 and listed["first eight"]["level"] == "images"

    requests = _run(dataset, "on_slice_click", state, row=list(listed).index("first eight"))
    set_view = [r for r in requests if r.operator_uri == "set_view"]
    assert set_view and set_view[0].params["name"] == "first eight"


def test_panel_follows_objects_two_runs_changed(evaluated):
    dataset, _ = evaluated
    evaluate_detections(dataset, "predictions", eval_key="strict", iou=0.75)
    state = _state_after(_run(dataset, "on_load", {}))
    state = _state_after(_run(dataset, "on_change_compare", state, value="strict"), state)
    changes = {row["class"]: row for row in state["changes"]}
    regressed = sum(row["regressed"] for row in changes.values())
    assert regressed > 0
    requests = _run(dataset, "show_regressed", state)
    set_view = [r for r in requests if r.operator_uri == "set_view"]
    view = fo.DatasetView._build(dataset, set_view[0].params["view"])
    assert view.count("ground_truth.detections") == regressed
    dataset.delete_evaluation("strict")


def test_panel_lists_label_issues_and_opens_each_type(evaluated):
    from detection_debugger.datasets.label_issues import find_label_issues

    dataset, _ = evaluated
    find_label_issues(dataset, "ground_truth", ["predictions"])
    state = _state_after(_run(dataset, "on_load", {}))
    counts = {row["issue"]: row["flagged"] for row in state["issue_counts"]}
    assert set(counts) == {"missing", "wrong_class", "spurious", "loose_box"}
    assert sum(counts.values()) > 0
    for row, (issue, flagged) in enumerate(counts.items()):
        requests = _run(dataset, "on_issue_click", state, row=row)
        set_view = [r for r in requests if r.operator_uri == "set_view"]
        view = fo.DatasetView._build(dataset, set_view[0].params["view"])
        assert len(view) == flagged, issue
    requests = _run(dataset, "on_find_issues", state)
    prompts = [r for r in requests if r.operator_uri == "prompt_user_for_operation"]
    assert prompts[0].params["operator_uri"].endswith("/find_label_issues")
