"""Importing the formats of issue 12 part 2 into FiftyOne: the real dashcam set (YOLO ground
truth + Ultralytics predictions) in one CLI command, VOC/txt/auto imports, bad input through
the CLI (exit 2, one line, dataset unchanged) and the App operator."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import fiftyone as fo
import pytest
from fiftyone.operators import execute_operator

from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

pytestmark = pytest.mark.fiftyone

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "real-data"
DASHCAM = REAL_DATA / "dashcam"
PLUGIN = "@datacentric/detection-debugger"

VOC = """<annotation>
  <object>
    <name>car</name>
    <bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax><ymax>70</ymax></bndbox>
  </object>
  <object>
    <name>person</name>
    <difficult>1</difficult>
    <bndbox><xmin>0</xmin><ymin>0</ymin><xmax>8</xmax><ymax>9</ymax></bndbox>
  </object>
</annotation>
"""


@pytest.fixture
def name():
    dataset_name = f"test-{uuid.uuid4().hex[:8]}"
    yield dataset_name
    if fo.dataset_exists(dataset_name):
        fo.delete_dataset(dataset_name)


@pytest.fixture
def files(tmp_path):
    """Three 100x80 images (one with a numeric stem), VOC ground truth, txt predictions,
    Ultralytics predictions and a classes.txt."""
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for stem in ("street", "000123", "empty"):
        Image.new("RGB", (100, 80)).save(images / f"{stem}.png")
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "street.xml").write_text(VOC)
    (voc / "000123.xml").write_text(VOC.replace("<difficult>1</difficult>", ""))
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "street.txt").write_text("car 0.9 11 19 61 70\r\nperson 0.2 0 0 9 9\r\n")
    (txt / "000123.txt").write_text("\ncar 0.8 10 20 60 70\n")
    dets = [
        {"image_id": "street", "category_id": 1, "bbox": [11, 19, 50, 51], "score": 0.9},
        {"image_id": 123, "category_id": 2, "bbox": [0, 0, 8, 9], "score": 0.4},
    ]
    (tmp_path / "predictions.json").write_text(json.dumps(dets))
    (tmp_path / "classes.txt").write_text("car\nperson\n")
    return tmp_path


def _cli(*args):
    exe = Path(sys.executable).with_name("detection-debugger")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not DASHCAM.is_dir(), reason="../shared/real-data/dashcam is absent")
def test_dashcam_yolo_and_ultralytics_in_one_command(name):
    data = DASHCAM / "data"
    run = _cli(
        "import",
        "--dataset",
        name,
        "--images",
        data / "valid" / "images",
        "--gt",
        data / "valid" / "labels",
        "--gt-format",
        "yolo",
        "--class-names",
        data / "data.yaml",
        "--pred",
        DASHCAM / "runs" / "detect" / "val3" / "predictions.json",
        "--pred-format",
        "ultralytics",
    )
    assert run.returncode == 0, run.stderr
    assert "predictions: 4177 objects (predictions, ultralytics) on 251 images" in run.stdout
    dataset = fo.load_dataset(name)
    assert len(dataset) == 251
    assert dataset.count("ground_truth.detections") == 695
    assert dataset.count("predictions.detections") == 4177
    classes = ["Mobil", "Motor", "Orang", "Truk"]
    assert dataset.distinct("ground_truth.detections.label") == classes
    assert dataset.distinct("predictions.detections.label") == classes
    info = dataset.info["detection_debugger"]["imports"]["predictions"]
    assert info["format"] == "ultralytics" and info["unknown_classes"] == {}
    assert min(dataset.values("predictions.detections.confidence", unwind=True)) >= 0.001


def test_voc_ground_truth_with_txt_and_ultralytics_predictions(files, name):
    sources = [
        LabelSource(str(files / "voc"), "voc", "ground_truth", predictions=False),
        LabelSource(str(files / "txt"), "txt", "predictions", predictions=True),
        LabelSource(
            str(files / "predictions.json"),
            "ultralytics",
            "yolo_model",
            predictions=True,
            class_names=str(files / "classes.txt"),
        ),
    ]
    plan = plan_import(name, files / "images", sources)
    dataset = apply_import(plan, progress=False)
    assert dataset.count("ground_truth.detections") == 4
    crowd = dataset.filter_labels("ground_truth", fo.ViewField("iscrowd") == True)  # noqa: E712
    assert crowd.count("ground_truth.detections") == 1
    street = dataset.match(fo.ViewField("filepath").ends_with("street.png")).first()
    car = street["ground_truth"].detections[0]
    assert car.label == "car" and car.bounding_box == pytest.approx([0.1, 0.25, 0.5, 0.625])
    assert dataset.count("predictions.detections") == 3
    numeric = dataset.match(fo.ViewField("filepath").ends_with("000123.png")).first()
    assert [d.label for d in numeric["yolo_model"].detections] == ["person"]
    assert numeric["yolo_model"].detections[0].confidence == 0.4


def test_auto_formats_are_chosen_and_reported(files, name):
    sources = [
        LabelSource(str(files / "voc"), "auto", "ground_truth", predictions=False),
        LabelSource(
            str(files / "predictions.json"),
            "auto",
            "predictions",
            predictions=True,
            class_names=str(files / "classes.txt"),
        ),
    ]
    plan = plan_import(name, files / "images", sources)
    assert [p.source.format for p in plan.labels] == ["voc", "ultralytics"]
    text = "\n".join(plan.summary())
    assert "note: format auto: voc (2 Pascal VOC .xml files)" in text
    assert "note: format auto: ultralytics (a COCO-style results list" in text
    dataset = apply_import(plan, progress=False)
    imports = dataset.info["detection_debugger"]["imports"]
    assert imports["predictions"]["format"] == "ultralytics"
    assert imports["predictions"]["notes"][0].startswith("format auto: ultralytics")


def _break(files: Path, kind: str) -> tuple[list[str], str]:
    """CLI arguments importing a broken label set of ``kind``, and the expected message."""
    if kind == "txt":
        path = files / "txt" / "street.txt"
        path.write_text("car 0.9 11 19 61 70\ncar 0.5 50 19 20 70\n")
        return ["--pred", files / "txt", "--pred-format", "txt"], (
            f"{path}:2: right (20) < left (50)"
        )
    if kind == "voc":
        path = files / "voc" / "street.xml"
        path.write_text(VOC.replace("<xmax>60</xmax>", "<xmax>6O</xmax>"))
        return ["--gt", files / "voc", "--gt-format", "voc", "--gt-field", "voc_gt"], (
            f"{path}:4: <xmax> is not a number: '6O'"
        )
    path = files / "predictions.json"
    path.write_text(
        json.dumps([{"image_id": "street", "category_id": 3, "bbox": [1, 1, 1, 1], "score": 0.5}])
    )
    args = ["--pred", path, "--pred-format", "ultralytics", "--class-names", files / "classes.txt"]
    return args, f"{path}: detections[0]: unknown category id 3 (known ids: 1..2)"


@pytest.mark.parametrize("kind", ["txt", "voc", "ultralytics"])
def test_cli_bad_input_exits_2_with_one_line_and_leaves_the_dataset(files, name, kind):
    sources = [LabelSource(str(files / "voc"), "voc", "ground_truth", predictions=False)]
    apply_import(plan_import(name, files / "images", sources), progress=False)
    before = fo.load_dataset(name).get_field_schema()
    args, message = _break(files, kind)
    run = _cli("import", "--dataset", name, "--images", files / "images", *args)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [f"detection-debugger: error: {message}"]
    dataset = fo.load_dataset(name)
    assert dataset.get_field_schema() == before and len(dataset) == 3
    assert "predictions" not in dataset.info["detection_debugger"]["imports"]


def test_operator_imports_ultralytics_predictions(files, name):
    dataset = fo.Dataset(name)
    result = execute_operator(
        f"{PLUGIN}/import_predictions",
        ctx={
            "dataset": dataset,
            "params": {
                "images": {"absolute_path": str(files / "images")},
                "labels": {"absolute_path": str(files / "predictions.json")},
                "format": "auto",
                "class_names": {"absolute_path": str(files / "classes.txt")},
            },
        },
    )
    assert result.error is None, result.error
    dataset.reload()
    assert dataset.count("predictions.detections") == 2
    assert any("format auto: ultralytics" in line for line in result.result["summary"])


def test_operator_form_validates_an_auto_folder_inline(files, name):
    import asyncio

    from fiftyone.operators.executor import resolve_type
    from fiftyone.operators.registry import OperatorRegistry

    dataset = fo.Dataset(name)
    broken = files / "txt" / "street.txt"
    broken.write_text("car 0.9 50 19 20 70\n")
    params = {
        "images": {"absolute_path": str(files / "images")},
        "labels": {"absolute_path": str(files / "txt")},
        "format": "auto",
    }
    request = {"dataset_name": dataset.name, "params": params}
    prop = asyncio.run(resolve_type(OperatorRegistry(), f"{PLUGIN}/import_predictions", request))
    labels = prop.type.properties["labels"]
    assert labels.invalid and labels.error_message == f"{broken}:1: right (20) < left (50)"
    params["labels"] = {"absolute_path": str(files / "nowhere")}
    prop = asyncio.run(resolve_type(OperatorRegistry(), f"{PLUGIN}/import_predictions", request))
    labels = prop.type.properties["labels"]
    assert labels.invalid and labels.error_message == f"{files / 'nowhere'} does not exist"
