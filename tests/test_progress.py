"""Long work reports its progress per batch: the callback, the CLI's bar, the operators'
``ctx.set_progress``."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from helpers import run_cli

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files
from detection_debugger.formats.progress import (
    ProgressCounter,
    Throttled,
    counted,
    files_read,
    part,
)

CONFIG = SyntheticConfig(num_images=11, num_classes=3, image_size=(320, 240), seed=17)
PLUGIN = "@datacentric/detection-debugger"


class Recorder:
    def __init__(self):
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done, total, label):
        self.calls.append((done, total, label))


def _assert_per_batch(calls, min_calls: int) -> None:
    """Several calls, one total, counts never decreasing and the last one at the total."""
    assert len(calls) >= min_calls, calls
    totals = {total for _, total, _ in calls}
    assert len(totals) == 1, calls
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[-1] == calls[0][1] > 0, calls


# --- pure --------------------------------------------------------------------------------


def test_counter_counts_up_to_the_total():
    recorder = Recorder()
    counter = ProgressCounter(recorder, 10)
    counter.start("a")
    for _ in counted(range(7), counter, "a", every=3):
        pass
    counter.add(5, "b")  # capped at the total
    assert recorder.calls == [(0, 10, "a"), (3, 10, "a"), (6, 10, "a"), (7, 10, "a"), (10, 10, "b")]
    ProgressCounter(None, 5).add(1, "silent")  # no callback: nothing to call
    ProgressCounter(False, 5).finish("silent")


def test_throttled_passes_the_first_last_and_new_steps_only():
    now = [0.0]
    recorder = Recorder()
    throttled = Throttled(recorder, interval=0.5, clock=lambda: now[0])
    for i in range(1, 10):
        now[0] += 0.1
        throttled(i, 20, "a" if i < 8 else "b")
    throttled(20, 20, "b")
    assert [c[0] for c in recorder.calls] == [1, 6, 8, 20]


def test_part_makes_one_bar_of_several_steps():
    recorder = Recorder()
    part(recorder, 0, 2)(3, 4, "read")
    part(recorder, 1, 2)(4, 4, "write")
    assert recorder.calls == [(3, 8, "read"), (8, 8, "write")]


def test_files_read_reports_per_batch_of_100_files():
    recorder = Recorder()
    assert list(files_read(list(range(250)), recorder)) == list(range(250))
    assert [c[0] for c in recorder.calls] == [0, 100, 200, 250]
    assert {c[1] for c in recorder.calls} == {250}


def test_a_folder_reader_reports_its_files(files):
    from detection_debugger.formats.kitti import read_kitti_folder

    recorder = Recorder()
    images, _report = read_kitti_folder(files["pred"], predictions=True, progress=recorder)
    assert recorder.calls == [(0, 11, "reading label files"), (11, 11, "reading label files")]
    assert len(images) == 11


def test_the_cli_bar_draws_on_its_stream_only_when_asked_or_a_terminal():
    import argparse

    from detection_debugger.cli.common import progress_bar

    stream = io.StringIO()
    assert progress_bar(argparse.Namespace(progress=None), stream) is None  # not a terminal
    assert progress_bar(argparse.Namespace(progress=False), stream) is None
    bar = progress_bar(argparse.Namespace(progress=True), stream)
    bar(0, 4, "writing")
    bar(4, 4, "writing")
    assert stream.getvalue().endswith("writing [" + "#" * 30 + "] 100% 4/4\n")


# --- on a real MongoDB -------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    gt, results = make_coco(CONFIG)
    return write_files(tmp_path_factory.mktemp("progress"), gt, results, gt_format="kitti")


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 3 samples, so an 11-image set takes several."""
    import detection_debugger.datasets.arrays as arrays
    import detection_debugger.datasets.importing as importing
    import detection_debugger.datasets.object_writes as object_writes

    monkeypatch.setattr(importing, "WRITE_BATCH", 3)
    monkeypatch.setattr(object_writes, "WRITE_BATCH", 3)
    monkeypatch.setattr(arrays, "READ_BATCH", 3)


@pytest.fixture
def imported(files, small_batches):
    import fiftyone as fo

    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

    name = f"progress-{uuid.uuid4().hex[:8]}"
    sources = [
        LabelSource(files["gt"], "kitti", "ground_truth", predictions=False),
        LabelSource(files["pred"], "tao", "predictions", predictions=True),
    ]
    reading, writing = Recorder(), Recorder()
    plan = plan_import(name, files["images"], sources, progress=reading)
    dataset = apply_import(plan, progress=writing)
    yield dataset, reading.calls, writing.calls
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


@pytest.mark.fiftyone
def test_import_reports_each_batch(imported):
    _dataset, reading, writing = imported
    _assert_per_batch(reading, 4)
    # 11 images: the first added by FiftyOne (it declares the media type), its fields written
    # after; the other 10 inserted with both fields in batches of 3 (3 units an image).
    _assert_per_batch(writing, 8)
    inserts = [done for done, _, label in writing if label == "adding samples"]
    assert inserts == [0, 9, 18, 27, 30, 31]  # start, 4 batches, the one already there
    assert writing[-1] == (33, 33, "writing predictions")
    steps = [label for _, _, label in writing]
    assert steps.index("adding samples") < steps.index("writing ground_truth")
    assert steps.count("writing ground_truth") == 1 + 1


@pytest.mark.fiftyone
def test_evaluate_and_export_report_each_batch(imported, tmp_path):
    from detection_debugger.datasets.exporting import export_labels
    from detection_debugger.datasets.runs import evaluate_detections

    dataset = imported[0]
    recorder = Recorder()
    evaluate_detections(dataset, "predictions", "ground_truth", eval_key="ev", progress=recorder)
    _assert_per_batch(recorder.calls, 8)
    writes = [c for c in recorder.calls if c[2].startswith("writing predictions")]
    assert len(writes) == 4  # one per batch of 3 samples
    assert len([c for c in recorder.calls if c[2] == "reading boxes"]) == 1 + 4
    assert dataset.count_values("predictions.detections.ev")  # the run is written

    recorder = Recorder()
    export_labels(dataset, "ground_truth", "kitti", tmp_path / "out", progress=recorder)
    _assert_per_batch(recorder.calls, 4)


@pytest.mark.fiftyone
def test_an_operator_run_reports_several_progress_values(imported, monkeypatch):
    from fiftyone.operators import execute_operator
    from fiftyone.operators.executor import ExecutionContext

    import detection_debugger.operators.forms as forms

    shown = []
    monkeypatch.setattr(forms, "PROGRESS_INTERVAL", 0.0)
    monkeypatch.setattr(
        ExecutionContext,
        "set_progress",
        lambda self, progress=None, label=None: shown.append((progress, label)),
    )
    dataset = imported[0]
    result = execute_operator(
        f"{PLUGIN}/evaluate_detections",
        ctx={"dataset": dataset, "params": {"pred_field": "predictions", "eval_key": "op"}},
    )
    assert result.error is None, result.error
    fractions = [p for p, _ in shown]
    assert len(fractions) >= 8 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(label.startswith("writing predictions") and "/" in label for _, label in shown)


@pytest.mark.fiftyone
def test_cli_bar_on_stderr_keeps_stdout_json(files):
    import fiftyone as fo

    name = f"progress-cli-{uuid.uuid4().hex[:8]}"
    try:
        imported = run_cli(
            "import",
            "--dataset",
            name,
            "--images",
            files["images"],
            "--gt",
            files["gt"],
            "--gt-format",
            "kitti",
            "--pred",
            files["pred"],
            "--pred-format",
            "tao",
            "--progress",
        )
        assert imported.returncode == 0, imported.stderr
        assert "writing predictions [" in imported.stderr and "100%" in imported.stderr
        assert "[" not in imported.stdout
        run = run_cli("evaluate", "--dataset", name, "--pred-field", "predictions", "--progress")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["params"]["eval_key"] == "eval_predictions"
        assert "reading boxes [" in run.stderr and "100%" in run.stderr.splitlines()[-1]
        quiet = run_cli("evaluate", "--dataset", name, "--pred-field", "predictions")
        assert quiet.returncode == 0 and quiet.stderr == ""  # not a terminal: no bar
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


@pytest.mark.fiftyone
def test_a_delegated_run_stores_its_progress(imported, monkeypatch):
    """The same reports reach a delegated run's record (what the App's Runs page shows)."""
    from fiftyone.operators import execute_operator
    from fiftyone.operators.delegated import DelegatedOperationService

    import detection_debugger.operators.forms as forms

    monkeypatch.setattr(forms, "PROGRESS_INTERVAL", 0.0)
    stored = []
    real_set_progress = DelegatedOperationService.set_progress

    def set_progress(self, doc_id, progress):
        stored.append(progress.progress)
        return real_set_progress(self, doc_id, progress)

    monkeypatch.setattr(DelegatedOperationService, "set_progress", set_progress)
    dataset = imported[0]
    queued = execute_operator(
        f"{PLUGIN}/evaluate_detections",
        ctx={
            "dataset": dataset,
            "request_delegation": True,
            "params": {"pred_field": "predictions", "eval_key": "queued"},
        },
    )
    assert queued.delegated
    service = DelegatedOperationService()
    service.execute_queued_operations(dataset_name=dataset.name)
    (operation,) = service.list_operations(dataset_name=dataset.name)
    assert operation.run_state == "completed"
    assert len(stored) >= 8 and stored == sorted(stored) and stored[-1] == 1.0
    assert operation.status.progress == 1.0 and operation.status.label.startswith("done")
    dataset.reload()
    assert "queued" in dataset.list_evaluations()


@pytest.mark.fiftyone
def test_boxes_read_in_batches_are_the_boxes_read_at_once(imported):
    import numpy as np

    from detection_debugger.datasets.arrays import detection_set_from_view

    view = imported[0].skip(1)  # a view, not the whole dataset
    whole, whole_ids = detection_set_from_view(view, "ground_truth", "predictions")
    sizes = []
    batched, batched_ids = detection_set_from_view(
        view, "ground_truth", "predictions", on_batch=sizes.append
    )
    assert sizes == [3, 3, 3, 1] and batched_ids == whole_ids
    for name in ("gt_image", "gt_class", "gt_boxes", "gt_crowd", "pred_image", "pred_boxes"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(whole, name))


@pytest.mark.fiftyone
def test_raw_read_equals_fiftyones_values_on_a_label_filtered_view(imported):
    """The one raw aggregation reads exactly what FiftyOne's ``values()`` shows of a view
    that filters labels (ids, classes, boxes, crowd flags, scores, in view order)."""
    import numpy as np
    from fiftyone import ViewField as F

    from detection_debugger.datasets.arrays import detection_set_from_view

    dataset = imported[0]
    view = dataset.skip(2).filter_labels("predictions", F("confidence") > 0.3, only_matches=False)
    data, ids = detection_set_from_view(view, "ground_truth", "predictions")
    assert ids["samples"] == view.values("id")
    for side, field in (("gt", "ground_truth"), ("pred", "predictions")):
        values = view.values(f"{field}.detections.id", unwind=True)
        assert ids[side] == values and len(values) > 0
        labels = view.values(f"{field}.detections.label", unwind=True)
        names = np.asarray(data.class_names)[getattr(data, f"{side}_class")]
        assert names.tolist() == labels
    scores = view.values("predictions.detections.confidence", unwind=True)
    np.testing.assert_array_equal(data.pred_scores, scores)
    assert min(scores) > 0.3
