"""A corpus of malformed input and faults against every command that reads files
(issue 13): ``import`` (every format, images, class maps, names files), ``evaluate`` (file
mode), ``export``, ``slices``, ``compare`` and ``issues``.

Each case asserts: exit code 2; stderr is exactly one line
``detection-debugger: error: FILE[:LINE]: reason`` (the file and line checked; a plain reason
where no file is involved); no traceback; and the database unchanged: a hash of the
dataset's stored documents before and after (for a dataset that did not exist, it still does
not). The CLI runs in-process (``cli.main``) for speed; a handful of cases also run through the
installed ``detection-debugger`` entry point.

The accept cases: CRLF, a UTF-8 BOM, tabs, blank lines and trailing spaces in every text
format read exactly the same objects as the clean file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import bson
import fiftyone as fo
import fiftyone.core.odm as foo
import pytest

from detection_debugger.cli import main as cli
from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.runs import evaluate_detections
from detection_debugger.formats import (
    ClassMap,
    read_class_names,
    read_coco_objects,
    read_coco_result_objects,
    read_corner_txt_folder,
    read_image_ids,
    read_kitti_folder,
    read_voc_folder,
    read_yolo_folder,
)

pytestmark = pytest.mark.fiftyone

EXISTING = "bad-input-corpus"  # imported once; every case that names it must leave it as it is
NEW = "bad-input-corpus-new"  # never created: a failed import must not create it
VOLATILE = ("last_loaded_at", "last_modified_at")
ERROR = "detection-debugger: error: "

SIZE = (64, 48)
KITTI = {
    "a": "Car 0 0 0 10 10 30 30 0 0 0 0 0 0 0\nPedestrian 0 1 0 2 3 12 40 0 0 0 0 0 0 0\n",
    "b": "Car 0.5 0 -1.5 0 0 63 47 1.5 1.6 3.9 1 2 3 0.1\n",
    "c": "",
}
TAO = {
    "a": "Car 0 0 0 11 10 31 30 0 0 0 0 0 0 0 0.9\nCar 0 0 0 40 5 60 20 0 0 0 0 0 0 0 0.3\n",
    "b": "Pedestrian 0 0 0 0 0 60 47 0 0 0 0 0 0 0 0.75\n",
    "c": "",
}
YOLO = {"a": "0 0.3125 0.41666667 0.3125 0.41666667\n1 0.5 0.5 0.25 0.5\n", "b": "", "c": ""}
CLASSES = "Car\nPedestrian\n"
TXT_GT = {"a": "Car 10 10 30 30\nPedestrian 2 3 12 40 difficult\n", "b": "", "c": ""}
TXT_PRED = {"a": "Car 0.9 11 10 31 30\n", "b": "Pedestrian 0.5 0 0 60 47\n", "c": ""}
VOC = """<annotation>
  <object>
    <name>Car</name>
    <bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>30</ymax></bndbox>
  </object>
</annotation>
"""
COCO_GT = {
    "images": [
        {"id": i, "file_name": f"{s}.png", "width": 64, "height": 48}
        for i, s in enumerate("abc", start=1)
    ],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [10, 10, 20, 20],
            "area": 400,
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 2,
            "category_id": 2,
            "bbox": [2, 3, 10, 37],
            "area": 370,
            "iscrowd": 0,
        },
    ],
    "categories": [{"id": 1, "name": "Car"}, {"id": 2, "name": "Pedestrian"}],
}
COCO_DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9},
    {"image_id": 2, "category_id": 2, "bbox": [2, 3, 10, 30], "score": 0.4},
]
ULTRA = [{"image_id": "a", "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9}]


def _tree(root: Path, files: dict[str, str], suffix: str = ".txt") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for stem, text in files.items():
        (root / f"{stem}{suffix}").write_text(text)
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Clean input of every format for three 64x48 images ``a``, ``b``, ``c``."""
    from PIL import Image

    root = tmp_path_factory.mktemp("corpus")
    (root / "images").mkdir()
    for stem in "abc":
        Image.new("RGB", SIZE, (40, 80, 120)).save(root / "images" / f"{stem}.png")
    _tree(root / "kitti", KITTI)
    _tree(root / "tao", TAO)
    _tree(root / "yolo", YOLO)
    (root / "classes.txt").write_text(CLASSES)
    (root / "data.yaml").write_text("nc: 2\nnames: [Car, Pedestrian]\n")
    _tree(root / "txt_gt", TXT_GT)
    _tree(root / "txt_pred", TXT_PRED)
    _tree(root / "voc", {"a": VOC, "b": VOC.replace("Car", "Pedestrian")}, ".xml")
    (root / "gt.json").write_text(json.dumps(COCO_GT))
    (root / "dets.json").write_text(json.dumps(COCO_DETS))
    (root / "ultra.json").write_text(json.dumps(ULTRA))
    (root / "map.yaml").write_text("car: Car\n")
    (root / "ids.txt").write_text("1\n2\n")
    return root


@pytest.fixture(scope="module")
def existing(base):
    """The dataset ``EXISTING``: KITTI ground truth, two TAO prediction fields, two
    evaluation runs and a slice."""
    if fo.dataset_exists(EXISTING):
        fo.delete_dataset(EXISTING)
    sources = [
        LabelSource(str(base / "kitti"), "kitti", "ground_truth", predictions=False),
        LabelSource(str(base / "tao"), "tao", "predictions", predictions=True),
        LabelSource(str(base / "txt_pred"), "txt", "retrained", predictions=True),
    ]
    dataset = apply_import(plan_import(EXISTING, base / "images", sources), progress=False)
    evaluate_detections(dataset, "predictions", eval_key="eval_a")
    evaluate_detections(dataset, "retrained", eval_key="eval_b")
    dataset.save_view("first two", dataset.limit(2))
    yield dataset
    fo.delete_dataset(EXISTING)


def database_hash(name: str) -> str | None:
    """A hash of the dataset's stored documents: its ``datasets`` document (less the
    volatile time stamps) and every document of its sample collection; None when there is
    no such dataset."""
    db = foo.get_db_conn()
    doc = db.datasets.find_one({"name": name})
    if doc is None:
        return None
    for key in VOLATILE:
        doc.pop(key, None)
    digest = hashlib.sha256(bson.encode(doc))
    for sample in db[doc["sample_collection_name"]].find().sort("_id", 1):
        digest.update(bson.encode(sample))
    return digest.hexdigest()


def test_the_hash_sees_every_change(existing):
    name = "bad-input-corpus-hash"
    dataset = existing.clone(name)
    try:
        before = database_hash(name)
        assert before is not None and database_hash(name) == before
        fo.load_dataset(name)  # loading touches only the volatile time stamps
        assert database_hash(name) == before
        sample = dataset.first()
        sample.tags.append("x")
        sample.save()
        assert database_hash(name) != before
        changed = database_hash(name)
        dataset.info["x"] = 1
        dataset.save()
        assert database_hash(name) != changed
    finally:
        fo.delete_dataset(name)


@dataclass
class Case:
    """A bad input: the command's arguments and the error expected."""

    argv: list
    file: str | None  # the file the message names (None: a plain reason)
    line: int | None
    reason: str  # a substring of the reason
    dataset: str = EXISTING

    def expected_prefix(self) -> str:
        if self.file is None:
            return ERROR
        return f"{ERROR}{self.file}" + (f":{self.line}: " if self.line else ": ")


def copy(base: Path, name: str, tmp: Path, **files) -> Path:
    """A copy of ``base/name`` in ``tmp`` with ``files`` (``{file name: text or bytes}``)
    written in."""
    target = tmp / name
    shutil.copytree(base / name, target)
    for file_name, content in files.items():
        path = target / file_name.replace("__", ".")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return target


def write(tmp: Path, name: str, content) -> Path:
    path = tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def imp(base: Path, *args, dataset: str = EXISTING, images=None) -> list:
    return ["import", "--dataset", dataset, "--images", str(images or base / "images"), *args]


def gt_import(base, path, fmt, *extra, dataset=EXISTING, images=None) -> list:
    return imp(
        base,
        "--gt",
        str(path),
        "--gt-format",
        fmt,
        "--gt-field",
        "gt2",
        *extra,
        dataset=dataset,
        images=images,
    )


def pred_import(base, path, fmt, *extra, dataset=EXISTING, images=None) -> list:
    return imp(
        base,
        "--pred",
        str(path),
        "--pred-format",
        fmt,
        "--pred-field",
        "p2",
        *extra,
        dataset=dataset,
        images=images,
    )


def evaluate(gt, dets, *extra) -> list:
    return ["evaluate", "--gt", str(gt), "--pred", str(dets), *extra]


def _kitti_line(**changes) -> str:
    cols = KITTI["a"].splitlines()[0].split()
    for index, value in changes.items():
        cols[int(index[1:])] = value
    return " ".join(cols) + "\n"


def _mkfifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _loop(path: Path) -> Path:
    path.symlink_to(path.name)  # a link to itself
    return path


# Each builder: (base, tmp) -> Case. The ids name the input and the fault.
def kitti_columns(b, t):
    d = copy(b, "kitti", t, a__txt=KITTI["a"].splitlines()[0] + "\nCar 0 0 0 1 2 3\n")
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 2, "expected 15 columns, found 7")


def kitti_non_number(b, t):
    d = copy(b, "kitti", t, b__txt="\n" + _kitti_line(c4="1O"))
    return Case(gt_import(b, d, "kitti"), f"{d}/b.txt", 2, "column 5 (x1) is not a number: '1O'")


def kitti_x2_lt_x1(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c6="5"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "x2 (5) < x1 (10)")


def kitti_nan(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c5="nan"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "column 6 (y1) is not finite")


def kitti_infinity(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c7="-Infinity"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "column 8 (y2) is not finite")


def kitti_unicode_digit(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c4="\u0661\u0660"))  # Arabic-Indic "10"
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "column 5 (x1) is not a number")


def kitti_underscore_number(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c6="3_0"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "column 7 (x2) is not a number")


def kitti_control_char_class(b, t):
    d = copy(b, "kitti", t, a__txt="Car 0 0 0 1 1 2 2 0 0 0 0 0 0 0\n" + _kitti_line(c0="Ca\x01r"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 2, "contains the control character")


def kitti_nul_bytes(b, t):
    d = copy(b, "kitti", t, b__txt=b"Car 0 0 0 1 1 2 2 0 0 0 0 0 0 0\n\x00\x00\x01\x02")
    return Case(gt_import(b, d, "kitti"), f"{d}/b.txt", 2, "binary data: a NUL byte")


def kitti_latin1(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line(c0="Caf\xe9").encode("latin-1"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", 1, "not UTF-8 text: byte 0xe9")


def kitti_utf16(b, t):
    d = copy(b, "kitti", t, a__txt=_kitti_line().encode("utf-16"))
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", None, "UTF-16 text")


def kitti_directory_as_label_file(b, t):
    d = copy(b, "kitti", t)
    (d / "d.txt").mkdir()
    return Case(gt_import(b, d, "kitti"), f"{d}/d.txt", None, "is a directory")


def kitti_fifo_as_label_file(b, t):
    d = copy(b, "kitti", t)
    (d / "a.txt").unlink()
    _mkfifo(d / "a.txt")
    return Case(gt_import(b, d, "kitti"), f"{d}/a.txt", None, "is a FIFO, not a regular file")


def kitti_symlink_loop(b, t):
    d = copy(b, "kitti", t)
    _loop(d / "loop.txt")
    return Case(gt_import(b, d, "kitti"), f"{d}/loop.txt", None, "symbolic link loop")


def kitti_broken_symlink(b, t):
    d = copy(b, "kitti", t)
    (d / "gone.txt").symlink_to(t / "nowhere.txt")
    return Case(gt_import(b, d, "kitti"), f"{d}/gone.txt", None, "broken symbolic link")


def kitti_missing_folder(b, t):
    return Case(gt_import(b, t / "none", "kitti"), f"{t}/none", None, "not a folder of KITTI")


def tao_columns(b, t):
    d = copy(b, "tao", t, a__txt="Car 0 0 0 1 1 2 2 0 0 0 0 0 0\n")
    return Case(pred_import(b, d, "tao"), f"{d}/a.txt", 1, "expected 15 or 16 columns, found 14")


def tao_confidence_text(b, t):
    d = copy(b, "tao", t, c__txt="Car 0 0 0 1 1 2 2 0 0 0 0 0 0 0 high\n")
    return Case(pred_import(b, d, "tao"), f"{d}/c.txt", 1, "column 16 (confidence) is not a number")


def tao_into_new_dataset(b, t):
    d = copy(b, "tao", t, b__txt="\n\nCar 0 0 0 1 1 2 2 0 0 0 0 0 0 0 nan\n")
    return Case(pred_import(b, d, "tao", dataset=NEW), f"{d}/b.txt", 3, "is not finite", NEW)


# COCO ground truth -----------------------------------------------------------------------


def _coco(t, name="gt.json", **changes) -> Path:
    return write(t, name, {**COCO_GT, **changes})


def _ann(**changes) -> list:
    return [{**COCO_GT["annotations"][0], **changes}, COCO_GT["annotations"][1]]


def coco_invalid_json(b, t):
    p = write(t, "gt.json", '{"images": [\n  {"id": 1},\n  oops]}')
    return Case(gt_import(b, p, "coco"), str(p), 3, "invalid JSON")


def coco_nan_bbox(b, t):
    p = write(
        t, "gt.json", json.dumps({**COCO_GT, "annotations": _ann(bbox=[1, 2, float("nan"), 4])})
    )
    return Case(
        gt_import(b, p, "coco"), str(p), None, "annotations[0]: 'bbox' values must be finite"
    )


def coco_infinite_area(b, t):
    p = write(t, "gt.json", json.dumps({**COCO_GT, "annotations": _ann(area=float("inf"))}))
    return Case(gt_import(b, p, "coco"), str(p), None, "annotations[0]: 'area' must be a finite")


def coco_negative_area(b, t):
    p = _coco(t, annotations=_ann(area=-4))
    return Case(gt_import(b, p, "coco"), str(p), None, "'area' must not be negative")


def coco_duplicate_image_ids(b, t):
    images = [*COCO_GT["images"][:2], {"id": 1, "file_name": "c.png"}]
    p = _coco(t, images=images)
    return Case(gt_import(b, p, "coco"), str(p), None, "images[2]: image id 1 is also images[0]")


def coco_duplicate_category_ids(b, t):
    p = _coco(t, categories=[*COCO_GT["categories"], {"id": 1, "name": "Truck"}])
    return Case(gt_import(b, p, "coco"), str(p), None, "categories[2]: category id 1 is also")


def coco_nul_in_category_name(b, t):
    p = _coco(t, categories=[{"id": 1, "name": "Car\u0000"}, COCO_GT["categories"][1]])
    return Case(gt_import(b, p, "coco"), str(p), None, "categories[0]: name 'Car\\x00' contains")


def coco_empty_category_name(b, t):
    p = _coco(t, categories=[{"id": 1, "name": ""}, COCO_GT["categories"][1]])
    return Case(gt_import(b, p, "coco"), str(p), None, "categories[0]: name is empty")


def coco_iscrowd_string(b, t):
    p = _coco(t, annotations=_ann(iscrowd="0"))
    return Case(gt_import(b, p, "coco"), str(p), None, "annotations[0]: 'iscrowd' must be 0 or 1")


def coco_file_name_null(b, t):
    p = _coco(t, images=[{"id": 1, "file_name": None}, *COCO_GT["images"][1:]])
    return Case(gt_import(b, p, "coco"), str(p), None, "images[0]: 'file_name' must be a file")


def coco_duplicate_file_stem(b, t):
    p = _coco(t, images=[*COCO_GT["images"], {"id": 9, "file_name": "sub/a.jpg"}])
    return Case(gt_import(b, p, "coco"), str(p), None, "images[3]: file stem 'a' is also images[0]")


def coco_not_an_object(b, t):
    p = write(t, "gt.json", [1, 2])
    return Case(gt_import(b, p, "coco"), str(p), None, "expected a COCO object, got a JSON list")


def coco_duplicate_key(b, t):
    text = json.dumps(COCO_GT)[:-1] + ', "annotations": []}'
    p = write(t, "gt.json", text)
    return Case(gt_import(b, p, "coco"), str(p), None, "has the key 'annotations' twice")


def coco_directory(b, t):
    (t / "gt.json").mkdir()
    return Case(gt_import(b, t / "gt.json", "coco"), f"{t}/gt.json", None, "is a directory")


def coco_binary(b, t):
    p = write(t, "gt.json", b'{"images": []}\n\x00\x00')
    return Case(gt_import(b, p, "coco"), str(p), 2, "binary data: a NUL byte")


def coco_category_id_text(b, t):
    p = _coco(t, annotations=_ann(category_id="car"))
    return Case(
        gt_import(b, p, "coco"), str(p), None, "'category_id' must be an integer, got 'car'"
    )


def coco_image_id_fraction(b, t):
    p = _coco(t, annotations=_ann(image_id=1.5))
    return Case(gt_import(b, p, "coco"), str(p), None, "annotations[0]: 'image_id' must be")


def coco_annotation_id_beyond_64_bits(b, t):
    p = _coco(t, annotations=_ann(id=2**70))
    return Case(gt_import(b, p, "coco"), str(p), None, "annotations[0]: 'id' must be an integer")


def coco_missing_file(b, t):
    return Case(gt_import(b, t / "gt.json", "coco"), f"{t}/gt.json", None, "file not found")


# COCO results and Ultralytics --------------------------------------------------------------


def _results(b, t, records, fmt="coco", name="dets.json"):
    p = write(t, name, json.dumps(records))
    args = imp(
        b,
        "--gt",
        str(b / "gt.json"),
        "--gt-format",
        "coco",
        "--gt-field",
        "gt2",
        "--pred",
        str(p),
        "--pred-format",
        fmt,
        "--pred-field",
        "p2",
    )
    return p, args


def results_nan_score(b, t):
    p, args = _results(b, t, [{**COCO_DETS[0], "score": float("nan")}])
    return Case(args, str(p), None, "detections[0]: 'score' must be a finite number, got nan")


def results_infinite_bbox(b, t):
    p, args = _results(b, t, [COCO_DETS[0], {**COCO_DETS[1], "bbox": [1, 1, float("inf"), 1]}])
    return Case(args, str(p), None, "detections[1]: 'bbox' values must be finite")


def results_unknown_category(b, t):
    p, args = _results(b, t, [{**COCO_DETS[0], "category_id": 7}])
    return Case(args, str(p), None, "detections[0]: unknown category id 7 (known ids: 1..2)")


def results_not_a_list(b, t):
    p, args = _results(b, t, {"detections": []})
    return Case(args, str(p), None, "expected a list of detections, got a JSON dict")


def results_short_bbox(b, t):
    p, args = _results(b, t, [{**COCO_DETS[0], "bbox": [1, 2, 3]}])
    return Case(args, str(p), None, "'bbox' must be a list of 4 numbers")


def ultralytics_unknown_stem(b, t):
    p = write(t, "u.json", [{**ULTRA[0], "image_id": "zzz"}])
    args = pred_import(b, p, "ultralytics", "--class-names", str(b / "classes.txt"))
    return Case(args, str(p), None, "detections[0]: unknown image id 'zzz'")


def ultralytics_category_text(b, t):
    p = write(t, "u.json", [{**ULTRA[0], "category_id": "car"}])
    args = pred_import(b, p, "ultralytics", "--class-names", str(b / "classes.txt"))
    return Case(args, str(p), None, "'category_id' must be an integer, got 'car'")


def ultralytics_nan_score(b, t):
    p = write(
        t, "u.json", '[{"image_id": "a", "category_id": 1, "bbox": [1, 1, 2, 2], "score": NaN}]'
    )
    args = pred_import(b, p, "ultralytics", "--class-names", str(b / "classes.txt"))
    return Case(args, str(p), None, "'score' must be a finite number, got nan")


def ultralytics_without_names(b, t):
    return Case(
        pred_import(b, b / "ultra.json", "ultralytics"),
        str(b / "ultra.json"),
        None,
        "category ids need the class names",
    )


# evaluate (file mode) -------------------------------------------------------------------


def eval_missing_gt(b, t):
    return Case(evaluate(t / "gt.json", b / "dets.json"), f"{t}/gt.json", None, "file not found")


def eval_duplicate_image_ids(b, t):
    p = _coco(t, images=[{"id": 1}, {"id": 2}, {"id": 2}])
    return Case(evaluate(p, b / "dets.json"), str(p), None, "images[2]: image id 2 is also")


def eval_nan_area(b, t):
    p = write(t, "gt.json", json.dumps({**COCO_GT, "annotations": _ann(area=float("nan"))}))
    return Case(evaluate(p, b / "dets.json"), str(p), None, "annotations[0]: 'area' must be")


def eval_duplicate_annotation_ids(b, t):
    p = _coco(t, annotations=_ann(id=2))
    return Case(
        evaluate(p, b / "dets.json"),
        str(p),
        None,
        "annotations[1]: annotation id 2 is also annotations[0]",
    )


def eval_image_id_beyond_64_bits(b, t):
    p = _coco(t, images=[{"id": 1}, {"id": 2**64}], annotations=[COCO_GT["annotations"][0]])
    return Case(evaluate(p, b / "dets.json"), str(p), None, "images[1]: 'id' must be a 64-bit")


def eval_nan_score(b, t):
    p = write(t, "dets.json", json.dumps([{**COCO_DETS[0], "score": float("nan")}]))
    return Case(evaluate(b / "gt.json", p), str(p), None, "detection 0: score nan is not finite")


def eval_infinite_box(b, t):
    p = write(t, "dets.json", json.dumps([{**COCO_DETS[0], "bbox": [0, 0, float("inf"), 1]}]))
    return Case(evaluate(b / "gt.json", p), str(p), None, "detection 0: bbox")


def eval_iscrowd_text(b, t):
    p = _coco(t, annotations=_ann(iscrowd="yes"))
    return Case(evaluate(p, b / "dets.json"), str(p), None, "'iscrowd' must be 0 or 1")


def eval_duplicate_category(b, t):
    p = _coco(t, categories=[*COCO_GT["categories"], {"id": 2, "name": "Truck"}])
    return Case(evaluate(p, b / "dets.json"), str(p), None, "categories[2]: category id 2")


def eval_image_ids_underscore(b, t):
    p = write(t, "ids.txt", "1\n1_0\n")
    args = evaluate(b / "gt.json", b / "dets.json", "--image-ids", str(p))
    return Case(args, str(p), 2, "not an integer image id: '1_0'")


def eval_image_ids_fifo(b, t):
    p = _mkfifo(t / "ids.txt")
    args = evaluate(b / "gt.json", b / "dets.json", "--image-ids", str(p))
    return Case(args, str(p), None, "is a FIFO")


def eval_image_ids_unknown(b, t):
    p = write(t, "ids.txt", "# two\n1\n\n7\n")
    args = evaluate(b / "gt.json", b / "dets.json", "--image-ids", str(p))
    return Case(args, str(p), None, "image id 7 is not in")


def eval_text_image_id(b, t):
    p = _coco(t, images=[{"id": "a"}, {"id": 2}], annotations=[COCO_GT["annotations"][1]])
    return Case(evaluate(p, b / "dets.json"), str(p), None, "images[0]: 'id' must be a 64-bit")


def eval_pred_latin1(b, t):
    p = write(t, "dets.json", b'[{"image_id": 1, "note": "caf\xe9"}]')
    return Case(evaluate(b / "gt.json", p), str(p), 1, "not UTF-8 text: byte 0xe9")


def eval_output_is_a_folder(b, t):
    (t / "out").mkdir()
    args = evaluate(b / "gt.json", b / "dets.json", "--output", str(t / "out"))
    return Case(args, f"{t}/out", None, "is a folder; --output takes a file name")


def eval_output_under_a_file(b, t):
    write(t, "file", "x")
    args = evaluate(b / "gt.json", b / "dets.json", "--output", str(t / "file" / "out.json"))
    return Case(args, f"{t}/file/out.json", None, f"{t}/file is a file, not a folder")


# YOLO --------------------------------------------------------------------------------------


def _yolo(b, t, names=None, **files):
    d = copy(b, "yolo", t, **files)
    return d, gt_import(b, d, "yolo", "--class-names", str(names or b / "classes.txt"))


def yolo_outside_unit(b, t):
    d, args = _yolo(b, t, a__txt="0 0.5 0.5 0.2 0.2\n0 1.5 0.5 0.2 0.2\n")
    return Case(args, f"{d}/a.txt", 2, "column 2 (cx) is outside [0, 1]: '1.5'")


def yolo_negative_width(b, t):
    d, args = _yolo(b, t, b__txt="1 0.5 0.5 -0.2 0.2\n")
    return Case(args, f"{d}/b.txt", 1, "column 4 (w) is outside [0, 1]")


def yolo_pixel_values(b, t):
    d, args = _yolo(b, t, c__txt="1 32 24 10 10\n")
    return Case(args, f"{d}/c.txt", 1, "column 2 (cx) is outside [0, 1]: '32'")


def yolo_class_float(b, t):
    d, args = _yolo(b, t, a__txt="1.0 0.5 0.5 0.2 0.2\n")
    return Case(args, f"{d}/a.txt", 1, "class index is not an integer: '1.0'")


def yolo_class_out_of_range(b, t):
    d, args = _yolo(b, t, a__txt="\n2 0.5 0.5 0.2 0.2\n")
    return Case(args, f"{d}/a.txt", 2, "class index 2 is not in the 2 names")


def yolo_class_unicode_digit(b, t):
    d, args = _yolo(b, t, a__txt="\u0661 0.5 0.5 0.2 0.2\n")
    return Case(args, f"{d}/a.txt", 1, "class index is not an integer")


def yolo_binary_label(b, t):
    d, args = _yolo(b, t, b__txt=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    return Case(args, f"{d}/b.txt", 3, "binary data: a NUL byte")


def yolo_label_without_image_binary(b, t):
    d, args = _yolo(b, t, zzz__txt=b"\x00")
    return Case(args, f"{d}/zzz.txt", 1, "binary data")


def yolo_names_binary(b, t):
    p = write(t, "classes.txt", b"Car\n\x00Pedestrian\n")
    return Case(_yolo(b, t, names=p)[1], str(p), 2, "binary data: a NUL byte at column 1")


def yolo_names_control_char(b, t):
    p = write(t, "classes.txt", "Car\nPedes\x1btrian\n")
    return Case(_yolo(b, t, names=p)[1], str(p), 2, "contains the control character '\\x1b'")


def yolo_names_missing(b, t):
    return Case(_yolo(b, t, names=t / "no.txt")[1], f"{t}/no.txt", None, "file not found")


def yolo_names_directory(b, t):
    (t / "names").mkdir()
    return Case(_yolo(b, t, names=t / "names")[1], f"{t}/names", None, "is a directory")


def yolo_names_empty(b, t):
    p = write(t, "classes.txt", "\n  \n")
    return Case(_yolo(b, t, names=p)[1], str(p), None, "no class names in the file")


def yolo_data_yaml_invalid(b, t):
    p = write(t, "data.yaml", "nc: 2\nnames: [Car, Pedestrian\npath: x\n")
    return Case(_yolo(b, t, names=p)[1], str(p), 3, "invalid YAML")


def yolo_data_yaml_gap(b, t):
    p = write(t, "data.yaml", "names:\n  0: Car\n  2: Pedestrian\n")
    return Case(_yolo(b, t, names=p)[1], str(p), None, "'names' keys must be the class indices")


def yolo_data_yaml_nc(b, t):
    p = write(t, "data.yaml", "nc: 3\nnames: [Car, Pedestrian]\n")
    return Case(_yolo(b, t, names=p)[1], str(p), None, "'nc' is 3 but 'names' has 2 names")


def yolo_data_yaml_null_name(b, t):
    p = write(t, "data.yaml", "names: [Car, null]\n")
    return Case(_yolo(b, t, names=p)[1], str(p), None, "names[1] must be a class name, got None")


def yolo_data_yaml_no_names(b, t):
    p = write(t, "data.yaml", "train: images/\n")
    return Case(_yolo(b, t, names=p)[1], str(p), None, "expected a 'names' list")


def yolo_without_names(b, t):
    return Case(gt_import(b, b / "yolo", "yolo"), str(b / "yolo"), None, "need a class names file")


# txt, VOC, auto ---------------------------------------------------------------------------


def txt_right_lt_left(b, t):
    d = copy(b, "txt_pred", t, a__txt="Car 0.9 50 1 20 30\n")
    return Case(pred_import(b, d, "txt"), f"{d}/a.txt", 1, "right (20) < left (50)")


def txt_pred_five_columns(b, t):
    d = copy(b, "txt_pred", t, b__txt="Car 0.9 11 10 31 30\nCar 11 10 31 30\n")
    return Case(pred_import(b, d, "txt"), f"{d}/b.txt", 2, "expected 6 columns")


def txt_gt_sixth_column(b, t):
    d = copy(b, "txt_gt", t, a__txt="Car 10 10 30 30 hard\n")
    return Case(gt_import(b, d, "txt"), f"{d}/a.txt", 1, "column 6 must be 'difficult'")


def txt_escape_in_class(b, t):
    d = copy(b, "txt_gt", t, c__txt="Car 1 1 2 2\n\x1b[31mCar 1 1 2 2\n")
    return Case(gt_import(b, d, "txt"), f"{d}/c.txt", 2, "contains the control character")


def voc_invalid_xml(b, t):
    d = copy(b, "voc", t, a__xml=VOC.replace("</object>", "</objet>"))
    return Case(gt_import(b, d, "voc"), f"{d}/a.xml", 5, "invalid XML: mismatched tag")


def voc_not_a_number(b, t):
    d = copy(b, "voc", t, b__xml=VOC.replace("<xmax>30</xmax>", "<xmax>3O</xmax>"))
    return Case(gt_import(b, d, "voc"), f"{d}/b.xml", 4, "<xmax> is not a number: '3O'")


def voc_tab_in_name(b, t):
    d = copy(b, "voc", t, a__xml=VOC.replace("<name>Car</name>", "<name>Ca\tr</name>"))
    return Case(gt_import(b, d, "voc"), f"{d}/a.xml", 3, "contains the control character '\\t'")


def voc_empty_file(b, t):
    d = copy(b, "voc", t, c__xml="")
    return Case(gt_import(b, d, "voc"), f"{d}/c.xml", 1, "invalid XML: no element found")


def voc_directory(b, t):
    d = copy(b, "voc", t)
    (d / "c.xml").mkdir()
    return Case(gt_import(b, d, "voc"), f"{d}/c.xml", None, "is a directory")


def voc_fifo(b, t):
    d = copy(b, "voc", t)
    _mkfifo(d / "c.xml")
    return Case(gt_import(b, d, "voc"), f"{d}/c.xml", None, "is a FIFO")


def auto_mixed_folder(b, t):
    d = copy(b, "voc", t, c__txt="Car 1 1 2 2\n")
    return Case(gt_import(b, d, "auto"), str(d), None, "ambiguous: 2 .xml and 1 .txt")


def auto_binary_txt(b, t):
    d = copy(b, "txt_gt", t, a__txt=b"\xff\xd8\xff\xe0 JFIF")
    return Case(gt_import(b, d, "auto"), f"{d}/a.txt", 1, "not UTF-8 text: byte 0xff")


# images and class maps --------------------------------------------------------------------


def _images(b, t, **files) -> Path:
    return copy(b, "images", t, **files)


def image_zero_bytes(b, t):
    d = _images(b, t, b__png=b"")
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=d)
    return Case(args, f"{d}/b.png", None, "cannot read the image", NEW)


def image_corrupt(b, t):
    d = _images(b, t, a__png=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=d)
    return Case(args, f"{d}/a.png", None, "cannot read the image", NEW)


def image_not_an_image(b, t):
    d = _images(b, t, c__jpg="this is text\n")
    (d / "c.png").unlink()
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=d)
    return Case(args, f"{d}/c.jpg", None, "cannot read the image", NEW)


def image_corrupt_with_yolo(b, t):
    d = _images(b, t, a__png=b"")
    args = gt_import(
        b, b / "yolo", "yolo", "--class-names", str(b / "classes.txt"), dataset=NEW, images=d
    )
    return Case(args, f"{d}/a.png", None, "cannot read the image", NEW)


def images_missing_folder(b, t):
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=t / "none")
    return Case(args, f"{t}/none", None, "images folder not found", NEW)


def images_is_a_file(b, t):
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=b / "gt.json")
    return Case(args, str(b / "gt.json"), None, "not a folder of images", NEW)


def images_none_found(b, t):
    (t / "empty").mkdir()
    args = gt_import(b, b / "kitti", "kitti", dataset=NEW, images=t / "empty")
    return Case(args, f"{t}/empty", None, "no images", NEW)


def class_map_invalid_yaml(b, t):
    p = write(t, "map.yaml", "car: Car\ntruck: [Truck\n")
    return Case(
        gt_import(b, b / "kitti", "kitti", "--class-map", str(p)), str(p), 2, "invalid YAML"
    )


def class_map_list(b, t):
    p = write(t, "map.yaml", "- car\n- Car\n")
    return Case(
        gt_import(b, b / "kitti", "kitti", "--class-map", str(p)),
        str(p),
        None,
        "expected a mapping of class names",
    )


def class_map_case_collision(b, t):
    p = write(t, "map.yaml", "Car: car\ncar: vehicle\n")
    return Case(
        gt_import(b, b / "kitti", "kitti", "--class-map", str(p)),
        str(p),
        None,
        "'Car' and 'car' are the same name",
    )


def class_map_nul_value(b, t):
    p = write(t, "map.json", '{"Car": "car\\u0000"}')
    return Case(
        gt_import(b, b / "kitti", "kitti", "--class-map", str(p)),
        str(p),
        None,
        "contains the control character",
    )


def class_map_missing(b, t):
    args = gt_import(b, b / "kitti", "kitti", "--class-map", str(t / "map.yaml"))
    return Case(args, f"{t}/map.yaml", None, "file not found")


def class_map_invalid_json(b, t):
    p = write(t, "map.json", '{"Car": "car",\n "x": }')
    return Case(
        gt_import(b, b / "kitti", "kitti", "--class-map", str(p)), str(p), 2, "invalid JSON"
    )


def import_existing_field(b, t):
    args = imp(b, "--pred", str(b / "txt_pred"), "--pred-format", "txt")
    return Case(args, None, None, "already has field(s) predictions")


# export, slices, compare, issues ----------------------------------------------------------


def _export(out, *extra, field="ground_truth"):
    return [
        "export",
        "--dataset",
        EXISTING,
        "--format",
        "kitti",
        "--label-field",
        field,
        "--output",
        str(out),
        *extra,
    ]


def export_missing_field(b, t):
    return Case(
        _export(t / "out", field="nope"),
        None,
        None,
        "no label field 'nope' in 'bad-input-corpus' (its Detections fields: "
        "ground_truth, predictions, retrained)",
    )


def export_not_detections(b, t):
    return Case(_export(t / "out", field="filepath"), None, None, "not a Detections field")


def export_into_a_file(b, t):
    p = write(t, "out", "x")
    return Case(_export(p), str(p), None, "exists and is not a folder")


def export_non_empty(b, t):
    write(t, "out", "x")
    return Case(_export(t), str(t), None, "not empty: choose an empty folder or pass --overwrite")


def export_under_a_file(b, t):
    write(t, "file", "x")
    return Case(_export(t / "file" / "out"), f"{t}/file/out", None, "file is a file, not a folder")


def export_missing_view(b, t):
    return Case(_export(t / "out", "--view", "nope"), None, None, "has no saved view 'nope'")


def export_missing_dataset(b, t):
    args = _export(t / "out")
    args[2] = NEW
    return Case(args, None, None, f"no dataset named '{NEW}'", NEW)


def _slices(action, *extra):
    return ["slices", action, "--dataset", EXISTING, *extra]


def slices_without_eval_key(b, t):
    return Case(_slices("evaluate"), None, None, "slices evaluate needs --eval-key")


def slices_unknown_run(b, t):
    return Case(_slices("evaluate", "--eval-key", "nope"), None, None, "nope")


def slices_unknown_slice(b, t):
    return Case(_slices("evaluate", "--eval-key", "eval_a", "--slice", "nope"), None, None, "nope")


def slices_output_is_a_folder(b, t):
    (t / "o").mkdir()
    args = _slices("evaluate", "--eval-key", "eval_a", "--output", str(t / "o"))
    return Case(args, f"{t}/o", None, "is a folder")


def slices_samples_missing(b, t):
    args = _slices("save", "--slice", "x", "--samples", str(t / "ids.txt"))
    return Case(args, f"{t}/ids.txt", None, "file not found")


def slices_samples_unknown(b, t):
    p = write(t, "ids.txt", f"{b / 'images' / 'a.png'}\n{b / 'images' / 'zz.png'}\n")
    args = _slices("save", "--slice", "x", "--samples", str(p))
    return Case(args, str(p), 2, "is not a sample of 'bad-input-corpus'")


def slices_samples_fifo(b, t):
    p = _mkfifo(t / "ids.txt")
    return Case(_slices("save", "--slice", "x", "--samples", str(p)), str(p), None, "is a FIFO")


def slices_samples_binary(b, t):
    p = write(t, "ids.txt", b"\xff\xfe\x00a")
    return Case(_slices("save", "--slice", "x", "--samples", str(p)), str(p), None, "UTF-16")


def slices_save_existing(b, t):
    p = write(t, "ids.txt", f"{b / 'images' / 'a.png'}\n")
    args = _slices("save", "--slice", "first two", "--samples", str(p))
    return Case(args, None, None, "first two")


def slices_missing_dataset(b, t):
    return Case(["slices", "list", "--dataset", NEW], None, None, "no dataset named", NEW)


def _compare(*extra):
    return ["compare", "--dataset", EXISTING, *extra]


def compare_unknown_run(b, t):
    return Case(_compare("--eval-keys", "eval_a", "nope"), None, None, "nope")


def compare_unknown_slice(b, t):
    return Case(_compare("--eval-keys", "eval_a", "eval_b", "--slice", "nope"), None, None, "nope")


def compare_output_is_a_folder(b, t):
    (t / "o").mkdir()
    args = _compare("--eval-keys", "eval_a", "eval_b", "--output", str(t / "o"))
    return Case(args, f"{t}/o", None, "is a folder")


def issues_missing_gt_field(b, t):
    args = [
        "issues",
        "find",
        "--dataset",
        EXISTING,
        "--gt-field",
        "nope",
        "--pred-field",
        "predictions",
    ]
    return Case(args, None, None, "no field 'nope'")


def issues_missing_pred_field(b, t):
    args = [
        "issues",
        "find",
        "--dataset",
        EXISTING,
        "--gt-field",
        "ground_truth",
        "--pred-field",
        "nope",
    ]
    return Case(args, None, None, "no field 'nope'")


def issues_gt_as_prediction(b, t):
    args = [
        "issues",
        "find",
        "--dataset",
        EXISTING,
        "--gt-field",
        "ground_truth",
        "--pred-field",
        "ground_truth",
    ]
    return Case(args, None, None, "is the ground truth, not a prediction field")


def issues_accept_unknown_label(b, t):
    args = [
        "issues",
        "accept",
        "--dataset",
        EXISTING,
        "--gt-field",
        "ground_truth",
        "--ids",
        "0123456789abcdef01234567",
    ]
    return Case(args, None, None, "0123456789abcdef01234567")


def issues_pred_not_detections(b, t):
    args = [
        "issues",
        "find",
        "--dataset",
        EXISTING,
        "--gt-field",
        "ground_truth",
        "--pred-field",
        "metadata",
    ]
    return Case(args, None, None, "'metadata' is not a Detections field of 'bad-input-corpus'")


def issues_reject_not_an_id(b, t):
    args = ["issues", "reject", "--dataset", EXISTING, "--gt-field", "ground_truth", "--ids", "xyz"]
    return Case(args, None, None, "not label ids (24 hexadecimal digits): ['xyz']")


def issues_accept_label_without_issue(b, t):
    first = fo.load_dataset(EXISTING).values("ground_truth.detections.id", unwind=True)[0]
    args = ["issues", "accept", "--dataset", EXISTING, "--gt-field", "ground_truth", "--ids", first]
    return Case(args, None, None, f"label {first} has no issue: run find_label_issues first")


def issues_accept_type_before_find(b, t):
    args = [
        "issues",
        "accept",
        "--dataset",
        EXISTING,
        "--gt-field",
        "ground_truth",
        "--type",
        "missing",
    ]
    return Case(args, None, None, "no label issues of 'ground_truth' yet")


def issues_embed_objects_not_detections(b, t):
    args = ["embed", "--dataset", EXISTING, "--objects", "filepath"]
    return Case(args, None, None, "has no Detections field 'filepath'")


def issues_missing_dataset(b, t):
    args = ["issues", "find", "--dataset", NEW, "--gt-field", "g", "--pred-field", "p"]
    return Case(args, None, None, "no dataset named", NEW)


CASES = [
    value
    for key, value in dict(globals()).items()
    if callable(value)
    and key.split("_")[0]
    in {
        "kitti",
        "tao",
        "coco",
        "results",
        "ultralytics",
        "eval",
        "yolo",
        "txt",
        "voc",
        "auto",
        "image",
        "images",
        "class",
        "import",
        "export",
        "slices",
        "compare",
        "issues",
    }
    and getattr(value, "__module__", None) == __name__
]


def run_in_process(argv, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check(case: Case, code: int, err: str, before, after) -> None:
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    line = lines[0]
    assert line.startswith(case.expected_prefix()), (line, case.expected_prefix())
    if case.file is not None and case.line is None:  # no line number after the file
        assert not re.match(r"\d+: ", line[len(case.expected_prefix()) :]), line
    assert case.reason in line[len(ERROR) :], line
    assert after == before, "the database changed"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60


@pytest.mark.parametrize("build", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input(build, base, existing, tmp_path, capsys):
    case = build(base, tmp_path)
    before = database_hash(case.dataset)
    assert case.dataset == EXISTING or before is None
    code, out, err = run_in_process(case.argv, capsys)
    check(case, code, err, before, database_hash(case.dataset))


SUBPROCESS = [
    kitti_columns,
    coco_nan_bbox,
    eval_nan_area,
    yolo_names_binary,
    export_into_a_file,
    slices_samples_fifo,
    image_corrupt,
]


@pytest.mark.parametrize("build", SUBPROCESS, ids=[c.__name__ for c in SUBPROCESS])
def test_bad_input_through_the_entry_point(build, base, existing, tmp_path):
    exe = shutil.which("detection-debugger") or str(
        Path(sys.executable).with_name("detection-debugger")
    )
    case = build(base, tmp_path)
    before = database_hash(case.dataset)
    run = subprocess.run(
        [exe, *map(str, case.argv)], capture_output=True, text=True, timeout=300, env={**os.environ}
    )
    check(case, run.returncode, run.stderr, before, database_hash(case.dataset))
    assert run.stdout == ""


# main(): interruptions and bugs ------------------------------------------------------------


def _raising(error):
    def run(args):
        raise error

    return run


@pytest.fixture
def gt_args(base):
    return ["evaluate", "--gt", str(base / "gt.json"), "--pred", str(base / "dets.json")]


def test_ctrl_c_is_one_line_and_exit_130(gt_args, monkeypatch, capsys):
    monkeypatch.setattr(cli, "build_parser", _parser_with(_raising(KeyboardInterrupt())))
    code, out, err = run_in_process(gt_args, capsys)
    assert code == 130 and err == "detection-debugger: interrupted\n"


def _parser_with(run):
    build = cli.build_parser

    def parser():
        p = build()
        p._subparsers._group_actions[0].choices["evaluate"].set_defaults(run=run)
        return p

    return parser


def test_a_bug_is_an_internal_error_in_one_line(gt_args, monkeypatch, capsys):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli, "build_parser", _parser_with(_raising(KeyError("boom"))))
    code, out, err = run_in_process(gt_args, capsys)
    assert code == 1
    assert err == (
        "detection-debugger: internal error: KeyError: 'boom' "
        "(set DETECTION_DEBUGGER_DEBUG=1 for the traceback)\n"
    )
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(KeyError):
        cli.main(gt_args)


def test_a_library_value_error_is_a_bug_ours_is_a_user_error(gt_args, monkeypatch, capsys):
    from detection_debugger.datasets.exporting import export_labels
    from detection_debugger.formats.numbers import format_number

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)

    def unguarded(args):
        return format_number("x")  # float("x") inside our code: a bug, not a message

    def deliberate(args):
        return export_labels(None, "f", "tiff", "out")  # raise ValueError(...) of ours

    monkeypatch.setattr(cli, "build_parser", _parser_with(unguarded))
    code, _, err = run_in_process(gt_args, capsys)
    assert code == 1 and err.startswith("detection-debugger: internal error: ValueError: ")
    monkeypatch.setattr(cli, "build_parser", _parser_with(deliberate))
    code, _, err = run_in_process(gt_args, capsys)
    assert code == 2
    assert err == "detection-debugger: error: unknown export format 'tiff'; choose from " + (
        "('kitti', 'coco', 'yolo')\n"
    )


def test_an_os_error_names_the_file(gt_args, monkeypatch, capsys):
    error = PermissionError(13, "Permission denied", "/data/labels/a.txt")
    monkeypatch.setattr(cli, "build_parser", _parser_with(_raising(error)))
    code, _, err = run_in_process(gt_args, capsys)
    assert code == 2 and err == "detection-debugger: error: /data/labels/a.txt: Permission denied\n"


# --output into a missing folder, and export --overwrite -----------------------------------


def test_output_into_a_missing_folder_is_created(base, existing, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out.json"
    code, _, err = run_in_process(
        evaluate(base / "gt.json", base / "dets.json", "--output", out), capsys
    )
    assert code == 0, err
    assert json.loads(out.read_text())["params"]["num_images"] == 3
    for argv in (
        _slices("evaluate", "--eval-key", "eval_a", "--output", tmp_path / "s" / "x.json"),
        _compare("--eval-keys", "eval_a", "eval_b", "--output", tmp_path / "c" / "x.json"),
    ):
        code, _, err = run_in_process(argv, capsys)
        assert code == 0, err
        assert json.loads(Path(argv[-1]).read_text())


def test_export_overwrite_removes_the_files_of_an_earlier_export(existing, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["export", "--dataset", EXISTING, "--label-field", "predictions", "--output", out]
    assert run_in_process([*argv, "--format", "coco"], capsys)[0] == 0
    assert (out / "results.json").exists() and (out / "annotations.json").exists()
    assert run_in_process([*argv, "--format", "yolo", "--overwrite"], capsys)[0] == 0
    assert (out / "classes.txt").exists() and not (out / "results.json").exists()
    assert not (out / "annotations.json").exists()
    (out / "notes.md").write_text("mine")
    (out / "labels" / "old.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    view_argv = [
        "export",
        "--dataset",
        EXISTING,
        "--label-field",
        "ground_truth",
        "--output",
        out,
        "--format",
        "kitti",
        "--overwrite",
        "--view",
        "first two",
    ]
    assert run_in_process(view_argv, capsys)[0] == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a.txt", "b.txt"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png"]
    assert not (out / "classes.txt").exists()
    assert (out / "notes.md").read_text() == "mine"  # not ours: left alone


# Accept cases: the same objects from messy but valid text --------------------------------


def _messy(text: str, bom=True, crlf=True, tabs=True) -> bytes:
    lines = [line for line in text.splitlines()]
    out = []
    for line in lines:
        if tabs:
            line = "\t".join(line.split(" ")) if line else line
        out.append(line + "  \t")
        out.append("")
    body = ("\r\n" if crlf else "\n").join(out) + ("\r\n" if crlf else "\n")
    return (b"\xef\xbb\xbf" if bom else b"") + body.encode()


def _objects(images) -> list:
    return [
        (im.stem, [(o.label, o.box, o.score, o.crowd, o.attributes) for o in im.objects])
        for im in images
    ]


VARIANTS = {
    "bom-crlf-tabs": {},
    "bom": {"crlf": False, "tabs": False},
    "crlf": {"bom": False, "tabs": False},
    "tabs": {"bom": False, "crlf": False},
}


def _folders(tmp: Path, files: dict, variant: dict, suffix=".txt") -> tuple[Path, Path]:
    clean = _tree(tmp / "clean", files, suffix)
    messy = tmp / "messy"
    messy.mkdir()
    for stem, text in files.items():
        (messy / f"{stem}{suffix}").write_bytes(_messy(text, **variant))
    return clean, messy


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(
    "files, read",
    [
        pytest.param(KITTI, lambda f: read_kitti_folder(f, False), id="kitti"),
        pytest.param(TAO, lambda f: read_kitti_folder(f, True), id="tao"),
        pytest.param(TXT_GT, lambda f: read_corner_txt_folder(f, False), id="txt-gt"),
        pytest.param(TXT_PRED, lambda f: read_corner_txt_folder(f, True), id="txt-pred"),
        pytest.param(
            YOLO,
            lambda f: read_yolo_folder(f, ["Car", "Pedestrian"], dict.fromkeys("abc", SIZE), False),
            id="yolo",
        ),
    ],
)
def test_messy_label_files_read_as_the_clean_ones(tmp_path, files, read, variant):
    clean, messy = _folders(tmp_path, files, VARIANTS[variant])
    clean_images, clean_report = read(clean)
    messy_images, messy_report = read(messy)
    assert _objects(messy_images) == _objects(clean_images)
    assert any(im.objects for im in clean_images)
    assert messy_report.skipped == clean_report.skipped == []
    assert "\ufeff" not in repr(_objects(messy_images))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_messy_names_ids_and_maps_read_as_the_clean_ones(tmp_path, variant):
    options = VARIANTS[variant]
    for name, text, read in (
        ("classes.txt", CLASSES, read_class_names),
        ("data.yaml", "nc: 2\nnames: [Car, Pedestrian]\n", read_class_names),
        ("ids.txt", "# ids\n1\n2\n", read_image_ids),
    ):
        clean, messy = write(tmp_path, "clean-" + name, text), tmp_path / ("messy-" + name)
        messy_text = (
            _messy(text, **{**options, "tabs": False})
            if name != "classes.txt"
            else (_messy(text, **options))
        )
        messy.write_bytes(messy_text)
        assert read(messy) == read(clean), name
    assert read_class_names(messy.with_name("messy-classes.txt"))[0] == "Car"
    clean = write(tmp_path, "map.yaml", "Crosswalk: crosswalks\n")
    messy = tmp_path / "messy-map.yaml"
    messy.write_bytes(_messy("Crosswalk: crosswalks\n", **{**options, "tabs": False}))
    assert ClassMap.load(messy).explicit == ClassMap.load(clean).explicit


def test_bom_and_crlf_in_json_and_xml(base, tmp_path):
    gt = (base / "gt.json").read_text()
    messy = tmp_path / "gt.json"
    messy.write_bytes(b"\xef\xbb\xbf" + gt.replace(", ", ",\r\n\t").encode())
    assert _objects(read_coco_objects(messy)[0]) == _objects(read_coco_objects(base / "gt.json")[0])
    stems = {i["id"]: i["file_name"][:-4] for i in COCO_GT["images"]}
    names = {c["id"]: c["name"] for c in COCO_GT["categories"]}
    dets = tmp_path / "dets.json"
    dets.write_bytes(b"\xef\xbb\xbf" + (base / "dets.json").read_bytes().replace(b", ", b",\r\n"))
    assert _objects(read_coco_result_objects(dets, stems, names)[0]) == _objects(
        read_coco_result_objects(base / "dets.json", stems, names)[0]
    )
    clean, messy_voc = _folders(tmp_path / "voc", {"a": VOC}, {"tabs": False}, ".xml")
    assert _objects(read_voc_folder(messy_voc)[0]) == _objects(read_voc_folder(clean)[0])


def test_yolo_rounding_within_tolerance_is_accepted(tmp_path):
    (tmp_path / "a.txt").write_text("0 1.0000004 0.5 0.2 -0.0000005\n")
    images, _ = read_yolo_folder(tmp_path, ["Car"], {"a": SIZE}, False)
    assert len(images[0].objects) == 1


def test_messy_samples_file_saves_the_same_slice(base, existing, tmp_path, capsys):
    paths = [str(base / "images" / f"{s}.png") for s in "ab"]
    clean = write(tmp_path, "clean.txt", "\n".join(paths) + "\n")
    messy = tmp_path / "messy.txt"
    messy.write_bytes(b"\xef\xbb\xbf" + "\r\n\r\n".join(f"\t{p}  " for p in paths).encode())
    try:
        for name, path in (("clean", clean), ("messy", messy)):
            argv = _slices("save", "--slice", name, "--samples", path)
            assert run_in_process(argv, capsys)[0] == 0
        dataset = fo.load_dataset(EXISTING)
        assert sorted(dataset.load_saved_view("messy").values("filepath")) == sorted(paths)
        assert dataset.load_saved_view("clean").values("id") == dataset.load_saved_view(
            "messy"
        ).values("id")
    finally:
        dataset = fo.load_dataset(EXISTING)
        for name in ("clean", "messy"):
            if dataset.has_saved_view(name):
                dataset.delete_saved_view(name)
