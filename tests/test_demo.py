"""The demo data and the main job."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from detection_debugger.demo.scenes import CLASSES, FADED_AT, DemoConfig, ensure_demo_files
from detection_debugger.evaluation import DetectionSet, MatchTable
from detection_debugger.formats import read_kitti_folder


def _quiet(*_):
    pass


def test_generator_is_deterministic(tmp_path):
    a = ensure_demo_files(tmp_path / "a", DemoConfig(20, 3), progress=_quiet)
    b = ensure_demo_files(tmp_path / "b", DemoConfig(20, 3), progress=_quiet)
    for key in ("images", "labels", "baseline", "retrained"):
        names = sorted(p.name for p in Path(a[key]).iterdir())
        assert names == sorted(p.name for p in Path(b[key]).iterdir())
        match, mismatch, errors = filecmp.cmpfiles(a[key], b[key], names, shallow=False)
        assert not mismatch and not errors
    assert Path(a["manifest"]).read_text() == Path(b["manifest"]).read_text()
    other = ensure_demo_files(tmp_path / "c", DemoConfig(20, 4), progress=_quiet)
    assert Path(other["manifest"]).read_text() != Path(a["manifest"]).read_text()


def test_manifest_agrees_with_the_labels(tmp_path):
    files = ensure_demo_files(tmp_path, DemoConfig(120, 1), progress=_quiet)
    manifest = json.loads(Path(files["manifest"]).read_text())
    gt = {im.stem: im.objects for im in read_kitti_folder(files["labels"], False)[0]}
    kinds = {e["type"] for e in manifest["errors"]}
    assert kinds == {"missing", "spurious", "wrong_class", "loose_box"}
    for error in manifest["errors"]:
        objects = gt[error["image"]]
        box = pytest.approx(tuple(error["box"]), abs=1e-6)
        if error["type"] == "missing":
            assert not any(o.label == "crosswalks" and o.box == box for o in objects)
        else:
            line = objects[error["line"] - 1]
            assert line.label == error["label"] and line.box == box
        if error["type"] == "wrong_class":
            assert error["true_label"] != error["label"]
        if error["type"] == "loose_box":
            assert error["true_box"] != error["box"]
    for stem, scene in manifest["scenes"].items():
        true = sum(o["label"] == "crosswalks" for o in scene)
        missing = sum(e["image"] == stem and e["type"] == "missing" for e in manifest["errors"])
        spurious = sum(e["image"] == stem and e["type"] == "spurious" for e in manifest["errors"])
        labelled = sum(o.label == "crosswalks" for o in gt[stem])
        assert labelled == true - missing + spurious


def _evaluate_files(files, model):
    """The engine on the demo files directly (no FiftyOne), as a check of the story."""
    gt, _ = read_kitti_folder(files["labels"], False)
    preds = {im.stem: im.objects for im in read_kitti_folder(files[model], True)[0]}
    names = list(CLASSES)
    rows = {"gt": ([], [], []), "pred": ([], [], [], [])}
    for i, image in enumerate(gt):
        for kind, objects in (("gt", image.objects), ("pred", preds.get(image.stem, []))):
            for o in objects:
                x1, y1, x2, y2 = o.box
                rows[kind][0].append(i)
                rows[kind][1].append(names.index(o.label))
                rows[kind][2].append([x1, y1, x2 - x1, y2 - y1])
                if kind == "pred":
                    rows[kind][3].append(o.score)
    data = DetectionSet.from_arrays(
        image_ids=np.arange(len(gt)),
        class_names=names,
        gt_image_ids=rows["gt"][0],
        gt_labels=rows["gt"][1],
        gt_boxes=rows["gt"][2],
        pred_image_ids=rows["pred"][0],
        pred_labels=rows["pred"][1],
        pred_boxes=rows["pred"][2],
        pred_scores=rows["pred"][3],
    )
    return MatchTable.build(data), [im.stem for im in gt]


def test_the_case_study_shape_comes_out_of_the_engine(tmp_path):
    files = ensure_demo_files(tmp_path, DemoConfig(500, 0), progress=_quiet)
    manifest = json.loads(Path(files["manifest"]).read_text())
    baseline, stems = _evaluate_files(files, "baseline")
    retrained, _ = _evaluate_files(files, "retrained")
    faded = np.array(
        [
            any(o["label"] == "crosswalks" and o["fade"] >= FADED_AT for o in manifest["scenes"][s])
            for s in stems
        ]
    )
    result = baseline.evaluate()
    aps = {name: m.AP for name, m in result.classes.items()}
    assert min(aps, key=aps.get) == "crosswalks"
    assert result.most_room_to_improve() == "crosswalks"
    crosswalks = result.classes["crosswalks"]
    assert crosswalks.tp > 0 and crosswalks.fn > 0 and crosswalks.fp > 0
    slice_ap = baseline.evaluate(faded).classes["crosswalks"].AP
    assert slice_ap < 0.7 * crosswalks.AP
    assert retrained.evaluate().classes["crosswalks"].AP > 2 * crosswalks.AP


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


README = Path(__file__).resolve().parent.parent / "README.md"


def _cli(exe, env, *args):
    run = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, f"{args}: {run.stderr}"
    assert "Traceback" not in run.stderr and "deprecat" not in run.stderr.lower(), run.stderr
    return run.stdout


@pytest.mark.fiftyone
def test_readme_sequence_demo_then_cli_in_another_terminal_then_app(tmp_path):
    """`make demo`, then the README's commands in a second terminal (no database settings:
    the project's rule finds the demo's database), the App URL, Ctrl-C; then the same
    command with the demo stopped (it starts the embedded database for itself)."""
    port = _free_port()
    exe = Path(sys.executable).with_name("detection-debugger")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_DATABASE")}
    env["DETECTION_DEBUGGER_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [str(exe), "demo", "--images", "12", "--port", str(port), "--simulated"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url, lines = None, []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and url is None:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if line.startswith("FiftyOne App with the plugin: "):
            url = line.split(": ", 1)[1].strip()
    name = "crosswalks-demo-12-0"
    readme = README.read_text()
    commands = [
        ("slices", "list", "--dataset", name, "--eval-key", "eval_baseline"),
        (
            "slices",
            "evaluate",
            "--dataset",
            name,
            "--eval-key",
            "eval_baseline",
            "--slice",
            "faded crosswalks",
        ),
        (
            "compare",
            "--dataset",
            name,
            "--eval-keys",
            "eval_baseline",
            "eval_retrained",
            "--slice",
            "faded crosswalks",
            "--format",
            "table",
        ),
        (
            "issues",
            "find",
            "--dataset",
            name,
            "--gt-field",
            "ground_truth",
            "--pred-field",
            "baseline",
            "--pred-field",
            "retrained",
        ),
    ]
    try:
        assert url == f"http://127.0.0.1:{port}/datasets/{name}", "".join(lines)
        assert "== the story ==" in "".join(lines)
        assert "== failure slices found automatically (slices discover) ==" in "".join(lines)
        for command in commands:
            documented = " ".join(command[:3]).replace(name, "crosswalks-demo-500-0")
            assert f"detection-debugger {documented}" in readme, documented
        assert "faded crosswalks" in _cli(exe, env, *commands[0])
        assert json.loads(_cli(exe, env, *commands[1]))["params"]["slice"] == "faded crosswalks"
        assert "faded crosswalks" in _cli(exe, env, *commands[2])
        assert "wrong_class" in _cli(exe, env, *commands[3])
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0
    # The demo has stopped: the same command starts the embedded database for its own run.
    assert "faded crosswalks" in _cli(exe, env, *commands[0])
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
