"""formats.coco_columns: the fast path of evaluate's results reading accepts only what the
strict reader accepts, with the same values, and leaves every other file to it."""

import json

import numpy as np
import pytest

from detection_debugger.evaluation import DetectionSet
from detection_debugger.formats import read_coco_results
from detection_debugger.formats.coco_columns import read_coco_result_columns

GT = {
    "images": [{"id": 1}, {"id": 7}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 40], "area": 1200},
        {"id": 2, "image_id": 7, "category_id": 5, "bbox": [5, 5, 10, 10], "iscrowd": 0},
    ],
    "categories": [{"id": 3, "name": "car"}, {"id": 5, "name": "person"}],
}
DETS = [
    {"image_id": 1, "category_id": 3, "bbox": [1.5, 2, 29.25, 40], "score": 0.9},
    {"score": 0.12345678901234567, "bbox": [0, 0, 1e-3, 2e2], "category_id": 5, "image_id": 7},
    {"image_id": 7, "category_id": 3, "bbox": [-1, 0, 0, 0], "score": -0.0},
]


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "dets.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize("indent", [None, 2])
def test_columns_equal_the_strict_reader(tmp_path, indent):
    path = _write(tmp_path, json.dumps(DETS, indent=indent))
    columns = read_coco_result_columns(path)
    assert columns is not None
    records = read_coco_results(path)
    np.testing.assert_array_equal(columns["image_id"], [r["image_id"] for r in records])
    np.testing.assert_array_equal(columns["category_id"], [r["category_id"] for r in records])
    np.testing.assert_array_equal(columns["bbox"], [r["bbox"] for r in records])
    np.testing.assert_array_equal(columns["score"], [r["score"] for r in records])
    assert columns["image_id"].dtype == np.int64 and columns["bbox"].shape == (3, 4)
    fast, strict = DetectionSet.from_coco(GT, columns), DetectionSet.from_coco(GT, records)
    for field in fast.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(fast, field), getattr(strict, field))


def test_bom_and_empty_list(tmp_path):
    columns = read_coco_result_columns(_write(tmp_path, b"\xef\xbb\xbf[]"))
    assert columns is not None and columns["bbox"].shape == (0, 4)


@pytest.mark.parametrize(
    "text",
    [
        '[{"image_id":1,"image_id":7,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,4],"score":0.5,"score":0.5}]',
        '[{"image\\u005fid":1,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,4],"score":0.5,"id":1}]',
        '[{"image_id":1.0,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '[{"image_id":true,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,4,5],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,NaN],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,1e400],"score":0.5}]',
        '[{"image_id":1,"category_id":3,"bbox":[1,2,3,4]}]',
        '[{"image_id":99999999999999999999,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '[{"image_id":18446744073709551615,"category_id":3,"bbox":[1,2,3,4],"score":0.5}]',
        '{"annotations": []}',
        "[] []",
        "[",
        "",
    ],
)
def test_anything_else_goes_to_the_strict_reader(tmp_path, text):
    assert read_coco_result_columns(_write(tmp_path, text)) is None


def test_missing_file_is_a_format_error(tmp_path):
    from detection_debugger.formats import FormatError

    with pytest.raises(FormatError, match="dets.json"):
        read_coco_result_columns(tmp_path / "dets.json")


def test_cli_output_is_the_same_on_both_paths(tmp_path, capsys):
    from detection_debugger.cli.main import main

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(GT))
    plain = _write(tmp_path, json.dumps(DETS))
    other = tmp_path / "other.json"  # an extra key: the strict reader's path
    other.write_text(json.dumps([{**d, "id": i + 1} for i, d in enumerate(DETS)]))
    assert read_coco_result_columns(plain) is not None
    assert read_coco_result_columns(other) is None
    outputs = []
    for path in (plain, other):
        assert main(["evaluate", "--gt", str(gt), "--pred", str(path)]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


BASE = {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 30, 40]}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"area": 12.5, "iscrowd": 1},
        {"iscrowd": True},
        {"id": 1.0},
        {"id": "1"},
        {"id": 2**63},
        {"id": True},
        {"bbox": [1, 2, 3, float("nan")]},
        {"bbox": [1, 2, 3, 10**400]},
        {"bbox": [1, 2, -3, 4]},
        {"bbox": [1, 2, 3, True]},
        {"bbox": (1, 2, 3, 4)},
        {"area": -1},
        {"area": float("inf")},
        {"iscrowd": 2},
        {"segmentation": [[1, 2, 3, 4, 5, 6]], "score": "x"},
    ],
)
def test_the_annotation_glance_accepts_only_what_the_full_check_accepts(change):
    from detection_debugger.formats.coco import _integer_problem, _plain_annotation, _problem

    record = {**BASE, **change}
    keys = ("id", "image_id", "category_id", "bbox")
    try:
        problem = _problem(record, keys) or _integer_problem(record, keys[:3])
    except OverflowError:
        problem = "overflow"
    if _plain_annotation(record):
        assert problem is None


def test_repeated_annotation_id_message():
    from detection_debugger.formats import FormatError, check_coco_ground_truth

    gt = json.loads(json.dumps(GT))
    gt["annotations"].append({**gt["annotations"][0]})
    with pytest.raises(
        FormatError, match=r"annotations\[2\]: annotation id 1 is also annotations\[0\]"
    ):
        check_coco_ground_truth(gt, "gt.json")


def test_columns_missing_a_key_is_an_input_error():
    from detection_debugger.evaluation import InputError

    with pytest.raises(InputError, match="missing 'score'"):
        DetectionSet.from_coco(GT, {"image_id": [], "category_id": [], "bbox": []})


def test_ground_truth_errors_come_first(tmp_path, capsys):
    from detection_debugger.cli.main import main

    gt = tmp_path / "gt.json"
    gt.write_text('{"images": [], "annotations": [], "categories": 3}')
    assert main(["evaluate", "--gt", str(gt), "--pred", str(tmp_path / "none.json")]) != 0
    assert "gt.json" in capsys.readouterr().err
