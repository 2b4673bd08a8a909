"""Operators run the way the App runs them: through FiftyOne's operator executor."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import fiftyone as fo
import pytest
from fiftyone.operators import execute_operator
from fiftyone.operators.executor import ExecutionError, resolve_type
from fiftyone.operators.registry import OperatorRegistry

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

pytestmark = pytest.mark.fiftyone

PLUGIN = "@datacentric/detection-debugger"


@pytest.fixture
def dataset():
    ds = fo.Dataset(f"ops-{uuid.uuid4().hex[:8]}")
    yield ds
    ds.delete()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    config = SyntheticConfig(
        num_images=8, num_classes=2, image_size=(200, 160), seed=9, class_names=("car", "bike")
    )
    gt, results = make_coco(config)
    paths = write_files(tmp_path_factory.mktemp("files"), gt, results, gt_format="coco")
    return {"gt_dict": gt, "results": results, **paths}


def _path(p):
    return {"absolute_path": str(p)}


def _inputs(name, dataset, params):
    prop = asyncio.run(
        resolve_type(
            OperatorRegistry(), f"{PLUGIN}/{name}", {"dataset_name": dataset.name, "params": params}
        )
    )
    return prop.type.properties


def test_import_ground_truth_then_predictions(dataset, files):
    result = execute_operator(
        f"{PLUGIN}/import_ground_truth",
        ctx={
            "dataset": dataset,
            "params": {
                "images": _path(files["images"]),
                "labels": _path(files["gt"]),
                "format": "coco",
            },
        },
    )
    assert result.error is None, result.error
    assert result.result["field"] == "ground_truth"
    assert any("ground_truth:" in line for line in result.result["summary"])
    result = execute_operator(
        f"{PLUGIN}/import_predictions",
        ctx={
            "dataset": dataset,
            "params": {
                "images": _path(files["images"]),
                "labels": _path(files["pred"]),
                "format": "tao",
                "field": "baseline",
            },
        },
    )
    assert result.error is None, result.error
    dataset.reload()
    assert len(dataset) == 8
    assert dataset.count("ground_truth.detections") == len(files["gt_dict"]["annotations"])
    assert dataset.count("baseline.detections") == len(files["results"])


def test_inline_validation_names_the_bad_line(dataset, files, tmp_path):
    import shutil

    pred = tmp_path / "pred"
    shutil.copytree(files["pred"], pred)
    broken = sorted(pred.glob("*.txt"))[0]
    broken.write_text("car 1 2 3\n")
    props = _inputs(
        "import_predictions",
        dataset,
        {
            "images": _path(files["images"]),
            "labels": _path(pred),
            "format": "tao",
        },
    )
    assert props["labels"].invalid
    assert f"{broken}:1: expected 15 or 16 columns" in props["labels"].error_message
    props = _inputs(
        "import_predictions",
        dataset,
        {
            "images": _path(tmp_path / "nowhere"),
            "labels": _path(files["pred"]),
            "format": "coco",
        },
    )
    assert props["images"].invalid and "is not a folder" in props["images"].error_message
    assert props["labels"].invalid and "is not a file" in props["labels"].error_message
    props = _inputs(
        "import_predictions",
        dataset,
        {
            "images": _path(files["images"]),
            "labels": _path(files["pred"]),
            "format": "tao",
        },
    )
    assert not props["labels"].invalid
    assert "preview" in props


def test_failed_import_leaves_the_dataset_unchanged(dataset, files, tmp_path):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "x.txt").write_text("car 0 0 0 5 5 1 9 0 0 0 0 0 0 0 0.3\n")
    # The form's validation refuses the run: the operator never executes.
    with pytest.raises(ExecutionError, match=r"x.txt:1: x2 \(1\) < x1 \(5\)"):
        execute_operator(
            f"{PLUGIN}/import_predictions",
            ctx={
                "dataset": dataset,
                "params": {
                    "images": _path(files["images"]),
                    "labels": _path(pred),
                    "format": "tao",
                },
            },
        )
    dataset.reload()
    assert len(dataset) == 0 and not dataset.has_field("predictions")


def test_export_dataset(dataset, files, tmp_path):
    execute_operator(
        f"{PLUGIN}/import_ground_truth",
        ctx={
            "dataset": dataset,
            "params": {
                "images": _path(files["images"]),
                "labels": _path(files["gt"]),
                "format": "coco",
            },
        },
    )
    dataset.reload()
    props = _inputs("export_dataset", dataset, {"label_field": "ground_truth"})
    assert props["label_field"].type.values == ["ground_truth"]
    out = tmp_path / "out"
    result = execute_operator(
        f"{PLUGIN}/export_dataset",
        ctx={
            "dataset": dataset,
            "params": {
                "label_field": "ground_truth",
                "format": "kitti",
                "output": _path(out),
            },
        },
    )
    assert result.error is None, result.error
    assert len(list((out / "labels").glob("*.txt"))) == 8
    assert Path(result.result["output"]) == out
    (out / "extra").write_text("x")
    props = _inputs(
        "export_dataset", dataset, {"label_field": "ground_truth", "output": _path(out)}
    )
    assert props["output"].invalid and "not empty" in props["output"].error_message
