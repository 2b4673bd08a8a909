"""Import into and export out of FiftyOne, on the project's own MongoDB."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from detection_debugger.datasets.arrays import detection_set_from_view
from detection_debugger.datasets.exporting import export_labels
from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files
from detection_debugger.evaluation import DetectionSet, MatchTable
from detection_debugger.formats import ClassMap, FormatError

pytestmark = pytest.mark.fiftyone

CONFIG = SyntheticConfig(
    num_images=12,
    num_classes=3,
    crowd_rate=0.1,
    image_size=(320, 240),
    seed=5,
    class_names=("car", "bike", "crosswalks"),
)


@pytest.fixture
def name():
    dataset_name = f"test-{uuid.uuid4().hex[:8]}"
    yield dataset_name
    if fo.dataset_exists(dataset_name):
        fo.delete_dataset(dataset_name)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    gt, results = make_coco(CONFIG)
    kitti = write_files(tmp_path_factory.mktemp("kitti"), gt, results, gt_format="kitti")
    coco = write_files(tmp_path_factory.mktemp("coco"), gt, results, gt_format="coco")
    return {"gt": gt, "results": results, "kitti": kitti, "coco": coco}


def _import(name, paths, gt_format, pred_field="predictions", **kwargs):
    sources = [
        LabelSource(paths["gt"], gt_format, "ground_truth", predictions=False),
        LabelSource(paths["pred"], "tao", pred_field, predictions=True),
    ]
    plan = plan_import(name, paths["images"], sources, **kwargs)
    return plan, apply_import(plan, progress=False)


def test_kitti_and_tao_import(files, name):
    plan, dataset = _import(name, files["kitti"], "kitti")
    gt, results = files["gt"], files["results"]
    assert len(dataset) == CONFIG.num_images
    assert dataset.persistent
    num_gt = dataset.count("ground_truth.detections")
    assert num_gt == len(gt["annotations"])
    assert dataset.count("predictions.detections") == len(results)
    crowd = dataset.filter_labels("ground_truth", fo.ViewField("iscrowd") == True)  # noqa: E712
    assert crowd.count("ground_truth.detections") == sum(a["iscrowd"] for a in gt["annotations"])
    assert set(dataset.distinct("metadata.width")) == {320}
    info = dataset.info["detection_debugger"]["imports"]
    assert info["predictions"]["format"] == "tao" and info["ground_truth"]["format"] == "kitti"
    assert any("predictions:" in line for line in plan.summary())
    schema = dataset.get_field_schema(flat=True)
    for attribute in ("truncated", "occluded", "alpha", "dimensions", "location", "rotation_y"):
        assert f"ground_truth.detections.{attribute}" in schema
    assert "ground_truth.detections.iscrowd" in schema
    detection = dataset.first()["predictions"].detections[0]
    assert isinstance(detection, fo.Detection) and 0 <= detection.confidence <= 1
    assert detection["dimensions"] == [0.0, 0.0, 0.0]


def test_imported_data_evaluates_like_the_coco_files(files, name):
    _, dataset = _import(name, files["coco"], "coco")
    gt, results = files["gt"], files["results"]
    names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    data, _ = detection_set_from_view(dataset, "ground_truth", "predictions", classes=names)
    from_fiftyone = MatchTable.build(data).evaluate()
    from_files = MatchTable.build(DetectionSet.from_coco(gt, results)).evaluate()
    a = np.array([-1 if v is None else v for v in from_fiftyone.stats.values()])
    b = np.array([-1 if v is None else v for v in from_files.stats.values()])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert from_fiftyone.confusion.matrix.tolist() == from_files.confusion.matrix.tolist()


def test_second_prediction_set_leaves_the_first_untouched(files, name):
    _, dataset = _import(name, files["kitti"], "kitti")
    before = dataset.values("predictions")
    source = LabelSource(files["kitti"]["pred"], "tao", "retrained", predictions=True)
    plan = plan_import(name, files["kitti"]["images"], [source], known_classes=["car"])
    apply_import(plan, progress=False)
    dataset.reload()
    assert dataset.values("predictions") == before
    assert dataset.count("retrained.detections") == dataset.count("predictions.detections")
    _touch_a_file(files["kitti"]["pred"])  # the same unchanged input would be a no-op rerun
    plan = plan_import(name, files["kitti"]["images"], [source], known_classes=["car"])
    with pytest.raises(ValueError, match="already has field"):
        apply_import(plan, progress=False)


def _touch_a_file(folder) -> None:
    """Changes a label file's modification time: the input is no longer the one imported."""
    import os

    path = sorted(Path(folder).glob("*.txt"))[0]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_malformed_input_writes_nothing(files, name, tmp_path):
    import shutil

    pred = tmp_path / "pred"
    shutil.copytree(files["kitti"]["pred"], pred)
    first = sorted(pred.glob("*.txt"))[3]
    first.write_text(first.read_text() + "car 0 0 0 10 10 5 20 0 0 0 0 0 0 0 0.5\n")
    bad_line = len(first.read_text().splitlines())
    paths = {**files["kitti"], "pred": str(pred)}
    with pytest.raises(FormatError) as info:
        _import(name, paths, "kitti")
    assert f"{first}:{bad_line}: x2 (5) < x1 (10)" in str(info.value)
    assert not fo.dataset_exists(name)
    plan, dataset = _import(name, paths, "kitti", skip_invalid=True)
    assert dataset.count("predictions.detections") == len(files["results"])
    assert [s.line for s in plan.labels[1].report.skipped] == [bad_line]


def test_unknown_classes_and_unmatched_files_are_reported(files, name, tmp_path):
    import shutil

    pred = tmp_path / "pred"
    shutil.copytree(files["kitti"]["pred"], pred)
    (pred / "no_such_image.txt").write_text("car 0 0 0 1 1 5 5 0 0 0 0 0 0 0 0.5\n")
    some = sorted(pred.glob("0*.txt"))
    some[0].unlink()
    some[1].write_text(
        "Truck 0 0 0 1 1 5 5 0 0 0 0 0 0 0 0.5\nCAR 0 0 0 1 1 5 5 0 0 0 0 0 0 0 0.5\n"
    )
    plan, dataset = _import(name, {**files["kitti"], "pred": str(pred)}, "kitti")
    pred_plan = plan.labels[1]
    assert pred_plan.files_without_image == ["no_such_image"]
    assert pred_plan.images_without_labels == 1
    assert dict(pred_plan.unknown_classes) == {"Truck": 1}
    assert "CAR" not in dataset.distinct("predictions.detections.label")  # case-insensitive
    text = "\n".join(plan.summary())
    assert "1 label files have no image" in text and "Truck (1)" in text


def test_class_map_is_applied(files, name, tmp_path):
    mapping = ClassMap({"crosswalks": "Crossing"})
    _, dataset = _import(name, files["kitti"], "kitti", class_map=mapping)
    assert "Crossing" in dataset.distinct("ground_truth.detections.label")
    assert "Crossing" in dataset.distinct("predictions.detections.label")


def test_coco_round_trip_preserves_boxes_classes_and_scores(files, name, tmp_path):
    _, dataset = _import(name, files["coco"], "coco")
    export_labels(dataset, "ground_truth", "coco", tmp_path / "gt_out")
    export_labels(dataset, "predictions", "coco", tmp_path / "pred_out")
    out = json.loads((tmp_path / "gt_out" / "annotations.json").read_text())
    gt = files["gt"]
    names = {c["id"]: c["name"] for c in gt["categories"]}
    out_names = {c["id"]: c["name"] for c in out["categories"]}
    out_stems = {im["id"]: Path(im["file_name"]).stem for im in out["images"]}
    stems = {im["id"]: Path(im["file_name"]).stem for im in gt["images"]}

    def key(ann, cat_names, image_stems):
        return (
            image_stems[ann["image_id"]],
            cat_names[ann["category_id"]],
            tuple(round(v, 6) for v in ann["bbox"]),
            int(ann["iscrowd"]),
        )

    assert sorted(key(a, out_names, out_stems) for a in out["annotations"]) == sorted(
        key(a, names, stems) for a in gt["annotations"]
    )
    assert all((tmp_path / "gt_out" / "images" / im["file_name"]).exists() for im in out["images"])
    scored = json.loads((tmp_path / "pred_out" / "results.json").read_text())
    assert sorted(d["score"] for d in scored) == sorted(d["score"] for d in files["results"])


def test_kitti_round_trip_is_line_for_line(files, name, tmp_path):
    _, dataset = _import(name, files["kitti"], "kitti")
    export_labels(dataset, "ground_truth", "kitti", tmp_path / "gt")
    export_labels(dataset, "predictions", "kitti", tmp_path / "pred")
    for source, out in (
        (files["kitti"]["gt"], tmp_path / "gt"),
        (files["kitti"]["pred"], tmp_path / "pred"),
    ):
        for original in Path(source).glob("*.txt"):
            assert (out / "labels" / original.name).read_text() == original.read_text()
    assert len(list((tmp_path / "gt" / "images").iterdir())) == CONFIG.num_images


def test_export_refuses_non_empty_folder_and_prefers_corrections(files, name, tmp_path):
    _, dataset = _import(name, files["kitti"], "kitti")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        export_labels(dataset, "ground_truth", "kitti", tmp_path / "out")
    dataset.clone_sample_field("ground_truth", "ground_truth_fixed")
    first = dataset.first()
    first["ground_truth_fixed"].detections = first["ground_truth_fixed"].detections[:1]
    first.save()
    report = export_labels(dataset, "ground_truth", "kitti", tmp_path / "out", overwrite=True)
    assert report.used_corrected_field and report.label_field == "ground_truth_fixed"
    stem = Path(first.filepath).stem
    assert len((tmp_path / "out" / "labels" / f"{stem}.txt").read_text().splitlines()) == 1
    assert len(dataset.first()["ground_truth"].detections) > 1  # original untouched


def _cli(*args):
    exe = Path(sys.executable).with_name("detection-debugger")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_cli_import_and_export(files, name, tmp_path):
    paths = files["kitti"]
    run = _cli(
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
    )
    assert run.returncode == 0, run.stderr
    assert "predictions:" in run.stdout
    _touch_a_file(paths["pred"])  # the same unchanged input would be a no-op rerun
    again = _cli(
        "import",
        "--dataset",
        name,
        "--images",
        paths["images"],
        "--pred",
        paths["pred"],
        "--pred-format",
        "tao",
    )
    assert again.returncode == 2 and "already has field(s) predictions" in again.stderr
    out = tmp_path / "export"
    run = _cli(
        "export",
        "--dataset",
        name,
        "--format",
        "yolo",
        "--label-field",
        "ground_truth",
        "--output",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    assert (out / "classes.txt").read_text().split() == ["bike", "car", "crosswalks"]
    run = _cli(
        "export",
        "--dataset",
        name,
        "--format",
        "kitti",
        "--label-field",
        "ground_truth",
        "--output",
        str(out),
    )
    assert run.returncode == 2 and "not empty" in run.stderr
    dataset = fo.load_dataset(name)
    dataset.save_view("first-three", dataset.limit(3))
    run = _cli(
        "export",
        "--dataset",
        name,
        "--view",
        "first-three",
        "--format",
        "kitti",
        "--label-field",
        "predictions",
        "--output",
        str(tmp_path / "three"),
    )
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "three" / "labels").glob("*.txt"))) == 3
    line = next((tmp_path / "three" / "labels").glob("*.txt")).read_text().splitlines()[0]
    assert len(line.split()) == 16  # predictions keep their confidence
