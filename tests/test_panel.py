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
                "panel_state": {"tab": "slices"},  # a tab's own data comes with the tab
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
    state = _state_after(_run(dataset, "on_load", {"tab": "compare"}))
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
    assert "issue_counts" not in state  # computed when the tab opens
    state = _state_after(_run(dataset, "on_change_tab", state, value="issues"), state)
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


def _rendered_handlers(requests):
    """Every ``uri#method`` the rendered panel asks the App to call."""
    import json
    import re

    output = [r.params for r in requests if r.operator_uri == "show_panel_output"]
    return set(re.findall(r"detection_debugger#(\w+)", json.dumps(output, default=str)))


def test_every_handler_the_app_calls_exists(evaluated):
    from detection_debugger.panels.debugger_panel import TABS, DetectionDebuggerPanel

    dataset, _ = evaluated
    state = _state_after(_run(dataset, "on_load", {}))
    names = set()
    for tab, _ in TABS:
        names |= _rendered_handlers(
            _run(dataset, "on_change_tab", {**state, "tab": None}, value=tab)
        )
    # An input reporting the value the panel has changes nothing and renders nothing.
    assert not _rendered_handlers(_run(dataset, "on_change_tab", state, value=state["tab"]))
    assert {"on_tide_click", "on_change_threshold", "on_save_thresholds"} <= names
    assert {"show_undetected", "on_change_sort", "on_change_top_n"} <= names
    missing = [n for n in names if not callable(getattr(DetectionDebuggerPanel, n, None))]
    assert not missing, missing


def test_tide_section_counts_and_each_type_opens_its_objects(evaluated):
    from detection_debugger.evaluation import tide_errors

    dataset, _ = evaluated
    results = dataset.load_evaluation_results("dd")
    expected = tide_errors(results.table().data)
    state = _state_after(_run(dataset, "on_load", {"tab": "tide"}))
    rows = {row["type"]: row for row in state["tide_rows"]}
    assert {t: r["count"] for t, r in rows.items()} == expected.counts
    assert rows["Cls"]["dAP"] == round(expected.main["Cls"], 2)
    assert sum(r["count"] for r in rows.values()) > 0
    for i, row in enumerate(state["tide_rows"]):
        requests = _run(dataset, "on_tide_click", state, row=i)
        set_view = [r for r in requests if r.operator_uri == "set_view"]
        view = fo.DatasetView._build(dataset, set_view[0].params["view"])
        field = "ground_truth" if row["type"] == "Miss" else "predictions"
        assert view.count(f"{field}.detections") == row["count"], row["type"]
    state = _state_after(_run(dataset, "on_change_tide_class", state, value="car"), state)
    car = {row["type"]: row for row in state["tide_rows"]}
    assert car["Miss"]["dAP_class"] == round(expected.classes["car"]["main"]["Miss"], 2)
    requests = _run(dataset, "on_tide_click", state, row=list(car).index("Miss"))
    view = fo.DatasetView._build(
        dataset, next(r for r in requests if r.operator_uri == "set_view").params["view"]
    )
    assert view.count("ground_truth.detections") == car["Miss"]["count_class"]
    assert set(view.distinct("ground_truth.detections.label")) <= {"car"}


def test_tide_on_a_slice_uses_the_slice_images(evaluated):
    from detection_debugger.evaluation import tide_errors

    dataset, _ = evaluated
    slice_view = dataset.limit(8)
    dataset.save_view("tide eight", slice_view, overwrite=True)
    out = execute_operator(
        PANEL,
        ctx={
            "dataset": dataset,
            "view_name": "tide eight",
            "params": {"panel_id": "p", "__method__": "on_load", "panel_state": {"tab": "tide"}},
        },
    )
    assert out.error is None, out.error
    state = _state_after(out.executor._requests)
    results = dataset.load_evaluation_results("dd")
    mask, _ = results.sample_rows(slice_view.values("id"))
    expected = tide_errors(results.table().data, image_mask=mask)
    assert {r["type"]: r["count"] for r in state["tide_rows"]} == expected.counts
    dataset.delete_saved_view("tide eight")


def test_threshold_slider_rescores_and_thresholds_are_saved_with_the_run(evaluated):
    from detection_debugger.evaluation import rescore

    dataset, _ = evaluated
    results = dataset.load_evaluation_results("dd")
    state = _state_after(_run(dataset, "on_load", {"tab": "operating"}))
    assert state.get("threshold") is None and state["pr_layout"]
    requests = _run(dataset, "on_change_threshold", state, value=0.6)
    state = _state_after(requests, state)
    confusion, counts = rescore(results.table(), 0.6)
    rows = {row["class"].removeprefix("★ "): row for row in state["classes"]}
    for name, c in counts.items():
        assert (rows[name]["tp"], rows[name]["fp"], rows[name]["fn"]) == (
            c["tp"],
            c["fp"],
            c["fn"],
        )
    data = next(
        r.params["data"]["confusion"]
        for r in requests
        if r.operator_uri == "patch_panel_data" and "confusion" in r.params["data"]
    )
    assert data[0]["text"] == confusion.matrix.tolist()
    ops = {row["class"]: row for row in state["operating"]}
    assert all(row["threshold"] == 0.6 for row in ops.values())
    # one class on its own
    state = _state_after(_run(dataset, "on_change_op_class", state, value="bike"), state)
    state = _state_after(_run(dataset, "on_change_threshold", state, value=0.8), state)
    assert state["class_thresholds"] == {"bike": 0.8}
    _run(dataset, "on_save_thresholds", state)
    reloaded = _state_after(_run(dataset, "on_load", {}))
    assert reloaded["threshold"] == 0.6 and reloaded["class_thresholds"] == {"bike": 0.8}
    _, counts = rescore(results.table(), {**{n: 0.6 for n in counts}, "bike": 0.8})
    rows = {row["class"].removeprefix("★ "): row for row in reloaded["classes"]}
    assert rows["bike"]["tp"] == counts["bike"]["tp"]
    _run(dataset, "on_reset_thresholds", reloaded)
    _run(dataset, "on_save_thresholds", {**reloaded, "threshold": None, "class_thresholds": {}})


def test_confusion_options_top_n_focus_and_errors_only(evaluated):
    dataset, result = evaluated
    state = _state_after(_run(dataset, "on_load", {}))
    assert state["top_n"] == "all"
    requests = _run(dataset, "on_change_off_diagonal", state, value=True)
    state = _state_after(requests, state)
    heatmap = next(
        r.params["data"]["confusion"][0]
        for r in requests
        if r.operator_uri == "patch_panel_data" and "confusion" in r.params["data"]
    )
    assert all(heatmap["z"][i][i] is None for i in range(len(heatmap["z"])))
    assert state["confusion_layout"]["yaxis"]["ticktext"] == heatmap["y"]
    requests = _run(dataset, "on_change_top_n", state, value="10")
    state = _state_after(_run(dataset, "on_change_order", state, value="name"), state)
    assert state["confusion_layout"]["yaxis"]["ticktext"] == sorted(
        result.confusion.labels[:-1], key=str.lower
    ) + ["background"]
    state = _state_after(_run(dataset, "on_change_off_diagonal", state, value=False), state)
    _run(dataset, "on_change_order", state, value="class order")


def test_inputs_reporting_on_mount_and_an_unchanged_view_render_nothing(evaluated):
    """The App's inputs report their value when they mount and it reports an unchanged view
    when the panel re-mounts; the App writes a changed value into the state before the call."""
    dataset, _ = evaluated
    state = _state_after(_run(dataset, "on_load", {}))
    assert state["shown"]["top_n"] == "all" and state["shown"]["focus"] == "all classes"
    for method, value in (
        ("on_change_top_n", "all"),
        ("on_change_focus", "all classes"),
        ("on_change_off_diagonal", False),
        ("on_change_tab", state["tab"]),
    ):
        assert _run(dataset, method, state, value=value) == [], method
    assert _run(dataset, "on_change_view", state, value=[]) == []
    # a change the App has already written into the state is still a change
    requests = _run(dataset, "on_change_tab", {**state, "tab": "confusion"}, value="confusion")
    assert "show_panel_output" in [r.operator_uri for r in requests]
    assert _state_after(requests, state)["shown"]["tab"] == "confusion"
    requests = _run(dataset, "on_change_top_n", {**state, "top_n": "10"}, value="10")
    assert "show_panel_output" in [r.operator_uri for r in requests]
    # a new view is refreshed
    moved = {**state, "view_signature": "another view"}
    assert "show_panel_output" in [r.operator_uri for r in _run(dataset, "on_change_view", moved)]


@pytest.fixture(scope="module")
def faint_signs(tmp_path_factory):
    """Signs whose faint ones the model misses (tests/helpers.py)."""
    from helpers import faint_signs_dataset

    folder = tmp_path_factory.mktemp("panel-discovery")
    dataset = faint_signs_dataset(folder, f"panel-discovery-{uuid.uuid4().hex[:8]}")
    yield dataset
    dataset.delete()


def test_panel_discovers_failure_slices_shows_and_saves_them(faint_signs):
    from helpers import FAINT_SIGNS_KEY as KEY

    from detection_debugger.datasets.descriptors import ensure_descriptors
    from detection_debugger.datasets.discovery import discover_slices, hypothesis_view

    dataset = faint_signs
    state = _state_after(_run(dataset, "on_load", {}))
    # no descriptors yet: the operator computes them (with progress), the panel says so
    requests = _run(dataset, "on_discover", state)
    prompts = [r for r in requests if r.operator_uri == "prompt_user_for_operation"]
    assert prompts and prompts[0].params["operator_uri"].endswith("/discover_slices")
    ensure_descriptors(dataset, ["predictions"], "ground_truth")
    state = _state_after(_run(dataset, "on_change_discover_class", state, value="sign"), state)
    state = _state_after(_run(dataset, "on_discover", state), state)
    expected = discover_slices(dataset, KEY, "sign", top=10)
    assert expected and [row["name"] for row in state["hypotheses"]] == [
        row["name"] for row in expected
    ]
    assert state["hypotheses"][0]["AP"] == round(expected[0]["AP"], 3)
    requests = _run(dataset, "on_hypothesis_show", state, row=0)
    view = fo.DatasetView._build(dataset, _set_view(requests)["view"])
    assert len(view) == len(hypothesis_view(dataset, KEY, expected[0]))
    state = _state_after(_run(dataset, "on_hypothesis_save", state, row=0), state)
    assert expected[0]["name"] in dataset.list_saved_views()
    assert expected[0]["name"] in [row["slice"] for row in state["slices"]]


def _set_view(requests) -> dict:
    return next(r.params for r in requests if r.operator_uri == "set_view")


def test_review_queue_highest_score_first_shows_evidence_and_accepts(evaluated):
    from detection_debugger.datasets.label_issues import find_label_issues
    from detection_debugger.datasets.review import review_queue

    dataset, _ = evaluated
    find_label_issues(dataset, "ground_truth", ["predictions"])
    state = _state_after(_run(dataset, "on_load", {"tab": "issues"}))
    queue = review_queue(dataset, "ground_truth")
    assert queue and len(state["queue"]) == min(len(queue), 25)
    scores = [row["score"] for row in state["queue"]]
    assert scores == sorted(scores, reverse=True)
    assert [row["label_id"] for row in state["queue"]] == [i["label_id"] for i in queue[:25]]
    # one type only
    state = _state_after(_run(dataset, "on_change_queue_type", state, value="wrong_class"), state)
    assert state["queue"] and {row["type"] for row in state["queue"]} == {"wrong_class"}
    row = state["queue"][0]
    # Show: the image with the object and the prediction behind it, nothing else of either
    view = fo.DatasetView._build(
        dataset, _set_view(_run(dataset, "on_queue_show", state, row=0))["view"]
    )
    sample = view.first()
    assert sample.id == row["sample_id"] and len(view) == 1
    assert [d.id for d in sample.ground_truth.detections] == [row["label_id"]]
    assert [d.id for d in sample[row["source_field"]].detections] == [row["source_id"]]
    # Accept: the decision is stored, the fix goes into ground_truth_fixed, the original stays
    original = dataset[row["sample_id"]].ground_truth.detections
    state = _state_after(_run(dataset, "on_queue_accept", state, row=0), state)
    assert state["queue"][0]["label_id"] == row["label_id"]
    assert state["queue"][0]["review"] == "accepted"
    sample = dataset[row["sample_id"]]
    assert [d.label for d in sample.ground_truth.detections] == [d.label for d in original]
    fixed = {d.id: d.label for d in sample.ground_truth_fixed.detections}
    assert fixed[row["label_id"]] == row["proposed"]
    state = _state_after(_run(dataset, "on_queue_reject", state, row=0), state)
    assert state["queue"][0]["review"] == "rejected"
    assert {d.id: d.label for d in dataset[row["sample_id"]].ground_truth_fixed.detections}[
        row["label_id"]
    ] == row["label"]


def test_first_render_of_the_whole_run_decodes_no_match_table(evaluated):
    """The whole run's first render (the Classes tab) shows the stored summary, confusion
    matrix and TIDE figures: the run's match table is not decoded (at 100k images that
    takes seconds); a tab that needs it decodes it."""
    from detection_debugger.datasets.runs import load_run

    dataset, result = evaluated
    dataset.clear_cache()
    state = _state_after(_run(dataset, "on_load", {}))
    assert load_run(dataset, "dd")._table is None
    assert any(title == "largest TIDE error" for title, _ in state["cards"])
    assert state["summary"] and len(state["classes"]) == len(result.classes)
    _run(dataset, "on_change_tab", state, value="tide")
    assert load_run(dataset, "dd")._table is not None
