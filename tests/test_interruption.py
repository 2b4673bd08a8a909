"""Interrupted and concurrent work: a killed or Ctrl-C'd import leaves a state that the same
command completes, a half-written field is refused before anything evaluates it, and two
writers on one dataset either both complete or the second is refused with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fiftyone as fo
import pytest

from detection_debugger.datasets import importing as dataset_import
from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.state import (
    COMPLETE,
    WRITING,
    DatasetBusyError,
    PartialFieldError,
    dataset_lock,
    import_records,
)
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

pytestmark = pytest.mark.fiftyone

EXE = Path(sys.executable).with_name("detection-debugger")


def _name() -> str:
    return f"int-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    config = SyntheticConfig(num_images=20, num_classes=3, image_size=(320, 240), seed=11)
    gt, results = make_coco(config)
    return write_files(tmp_path_factory.mktemp("small"), gt, results, gt_format="kitti")


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """Big enough that an import runs for seconds: there is time to kill it mid-way."""
    config = SyntheticConfig(
        num_images=600,
        num_classes=4,
        image_size=(160, 120),
        seed=12,
        gt_per_image=30,
        ghosts_per_image=30,
    )
    gt, results = make_coco(config)
    return write_files(tmp_path_factory.mktemp("large"), gt, results, gt_format="kitti")


def _sources(paths):
    return [
        LabelSource(paths["gt"], "kitti", "ground_truth", predictions=False),
        LabelSource(paths["pred"], "tao", "predictions", predictions=True),
    ]


def _content(dataset) -> dict:
    """Every label of the dataset without its random ids, by image path."""
    out = {}
    for field in ("ground_truth", "predictions"):
        paths, labels, boxes, scores = dataset.values(
            [
                "filepath",
                f"{field}.detections.label",
                f"{field}.detections.bounding_box",
                f"{field}.detections.confidence",
            ]
        )
        out[field] = {
            p: list(zip(lab or [], [tuple(b) for b in bx or []], sc or []))
            for p, lab, bx, sc in zip(paths, labels, boxes, scores)
        }
    out["samples"] = sorted(dataset.values("filepath"))
    return out


def _delete(name):
    if fo.dataset_exists(name):
        fo.delete_dataset(name)


def test_ctrl_c_mid_write_is_refused_by_evaluation_and_completed_by_a_rerun(small, monkeypatch):
    from detection_debugger.datasets.runs import evaluate_detections

    reference, name = _name(), _name()
    try:
        expected = _content(
            apply_import(plan_import(reference, small["images"], _sources(small)), progress=False)
        )
        real_insert = dataset_import.insert_image_samples

        def interrupted(dataset, rows):  # Ctrl-C after half the samples went in
            real_insert(dataset, rows[: len(rows) // 2])
            raise KeyboardInterrupt

        monkeypatch.setattr(dataset_import, "insert_image_samples", interrupted)
        with pytest.raises(KeyboardInterrupt):
            apply_import(plan_import(name, small["images"], _sources(small)), progress=False)
        monkeypatch.undo()
        dataset = fo.load_dataset(name)
        records = import_records(dataset)
        # new samples are inserted with both label fields: both are marked unfinished
        assert records["ground_truth"]["status"] == WRITING
        assert records["predictions"]["status"] == WRITING
        assert 0 < len(dataset) < len(fo.load_dataset(reference))
        assert "lock" not in dataset.info["detection_debugger"]  # released on the way out
        with pytest.raises(PartialFieldError, match="only partly imported.*run the same import"):
            evaluate_detections(dataset, "predictions", "ground_truth", eval_key="eval")
        # the same command again, no --replace: completes to the uninterrupted result
        apply_import(plan_import(name, small["images"], _sources(small)), progress=False)
        assert _content(dataset) == expected
        assert import_records(dataset)["predictions"]["status"] == COMPLETE
        evaluate_detections(dataset, "predictions", "ground_truth", eval_key="eval")
    finally:
        _delete(reference)
        _delete(name)


def _import_command(name, paths):
    return [
        str(EXE),
        "import",
        "--dataset",
        name,
        "--images",
        paths["images"],
        "--gt",
        paths["gt"],
        "--gt-format",
        "kitti",
        "--pred",
        paths["pred"],
        "--pred-format",
        "tao",
    ]


def test_an_import_killed_at_any_point_is_completed_by_the_same_command(large):
    env = dict(os.environ)
    reference = _name()
    started = time.monotonic()
    run = subprocess.run(
        _import_command(reference, large), env=env, capture_output=True, text=True, timeout=600
    )
    duration = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    try:
        expected = _content(fo.load_dataset(reference))
        for fraction in (0.35, 0.6, 0.8, 0.92):
            name = _name()
            process = subprocess.Popen(
                _import_command(name, large),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(duration * fraction)
            process.send_signal(signal.SIGKILL)
            process.wait()
            rerun = subprocess.run(
                _import_command(name, large), env=env, capture_output=True, text=True, timeout=600
            )
            try:
                assert rerun.returncode == 0, (fraction, rerun.stderr)
                dataset = fo.load_dataset(name)
                dataset.reload()
                assert _content(dataset) == expected, fraction
                assert {r["status"] for r in import_records(dataset).values()} == {COMPLETE}
            finally:
                _delete(name)
    finally:
        _delete(reference)


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(small):
    name = _name()
    try:
        dataset = apply_import(
            plan_import(name, small["images"], _sources(small)[:1]), progress=False
        )
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time, fiftyone as fo\n"
                "from detection_debugger.datasets.state import dataset_lock\n"
                f"with dataset_lock(fo.load_dataset({name!r}), 'evaluate'):\n"
                "    print('held', flush=True); time.sleep(60)\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert holder.stdout.readline().strip() == "held"
        try:
            run = subprocess.run(
                [
                    str(EXE),
                    "import",
                    "--dataset",
                    name,
                    "--images",
                    small["images"],
                    "--pred",
                    small["pred"],
                    "--pred-format",
                    "tao",
                ],
                capture_output=True,
                text=True,
                env=dict(os.environ),
                timeout=300,
            )
            assert run.returncode == 2
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and "is busy: evaluate by process" in lines[0], run.stderr
            dataset.reload()
            assert not dataset.has_field("predictions")
            with pytest.raises(DatasetBusyError), dataset_lock(dataset, "import"):
                pass
        finally:
            holder.kill()
            holder.wait()
        # the holder died with the lock held: the next writer takes it over
        with dataset_lock(dataset, "import"):
            assert dataset.info["detection_debugger"]["lock"]["pid"] == os.getpid()
        dataset.reload()
        assert "lock" not in dataset.info["detection_debugger"]
    finally:
        _delete(name)


def test_two_imports_at_once_both_complete_or_one_is_refused(small):
    name = _name()
    env = dict(os.environ)
    commands = [
        [
            str(EXE),
            "import",
            "--dataset",
            name,
            "--images",
            small["images"],
            "--gt",
            small["gt"],
            "--gt-format",
            "kitti",
        ],
        [
            str(EXE),
            "import",
            "--dataset",
            name,
            "--images",
            small["images"],
            "--pred",
            small["pred"],
            "--pred-format",
            "tao",
            "--pred-field",
            "other",
        ],
    ]
    try:
        processes = [
            subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in commands
        ]
        outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
        assert any(code == 0 for code, _ in outcomes), outcomes
        for code, err in outcomes:
            assert code == 0 or (code == 2 and "is busy" in err), outcomes
        dataset = fo.load_dataset(name)
        paths = dataset.values("filepath")
        assert len(paths) == len(set(paths)) == 20  # no image added twice
        records = import_records(dataset)
        done = {"ground_truth", "other"} if all(c == 0 for c, _ in outcomes) else set(records)
        assert set(records) == done and {r["status"] for r in records.values()} == {COMPLETE}
    finally:
        _delete(name)


@pytest.mark.parametrize(
    "command",
    [
        ["evaluate", "--pred-field", "predictions", "--eval-key", "twice"],
        ["issues", "find", "--gt-field", "ground_truth", "--pred-field", "predictions"],
    ],
    ids=["evaluate", "issues"],
)
def test_two_evaluations_or_label_issue_runs_at_once(small, command):
    """Both complete, or the second is refused with one clear line; the dataset ends
    consistent (one run, or one set of findings) either way."""
    name = _name()
    env = dict(os.environ)
    try:
        dataset = apply_import(plan_import(name, small["images"], _sources(small)), progress=False)
        argv = [str(EXE), *command, "--dataset", name]
        processes = [
            subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
        assert any(code == 0 for code, _ in outcomes), outcomes
        for code, err in outcomes:
            assert code == 0 or (code == 2 and "is busy" in err and err.count("\n") == 1), outcomes
        dataset.reload()
        assert "lock" not in dataset.info["detection_debugger"]
        if command[0] == "evaluate":
            assert dataset.list_evaluations() == ["twice"]
            assert dataset.load_evaluation_results("twice").result.stats["AP"] is not None
        else:
            assert dataset.has_field("ground_truth_missing")
    finally:
        _delete(name)
