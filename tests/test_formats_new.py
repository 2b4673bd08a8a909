"""The readers of issue 12 part 2 (pure, no FiftyOne): Ultralytics predictions.json, COCO
results joined by stem, corner txt, Pascal VOC XML, and format recognition (``auto``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detection_debugger.formats import (
    COCO80_TO_COCO91,
    FormatError,
    category_names_from_class_names,
    detect_format,
    read_coco_objects,
    read_coco_result_objects,
    read_corner_txt_folder,
    read_ultralytics_predictions,
    read_voc_folder,
)


def _write_json(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(FormatError) as info:
        call(*args, **kwargs)
    return str(info.value)


def _objects(images) -> dict:
    return {im.stem: im.objects for im in images}


# Ultralytics predictions.json -------------------------------------------------------------

DETS = [
    {"image_id": "street_01", "category_id": 1, "bbox": [10, 20, 30, 40], "score": 0.9},
    {"image_id": 123, "category_id": 2, "bbox": [0, 0, 5.5, 4], "score": 0.25},
    {"image_id": "street_01", "category_id": 2, "bbox": [1, 1, 1, 1], "score": 0.001},
]


def test_ultralytics_stems_numeric_ids_and_class_index_plus_one(tmp_path):
    path = _write_json(tmp_path / "predictions.json", DETS)
    images, report = read_ultralytics_predictions(
        path, ["street_01", "000123", "empty"], class_names=["car", "person"]
    )
    objects = _objects(images)
    assert sorted(objects) == ["000123", "empty", "street_01"]
    first = objects["street_01"][0]
    assert (first.label, first.box, first.score) == ("car", (10.0, 20.0, 40.0, 60.0), 0.9)
    assert objects["000123"][0].label == "person"  # 123 -> 000123.jpg by value
    assert objects["000123"][0].box == (0.0, 0.0, 5.5, 4.0)
    assert objects["empty"] == []
    assert report.notes == ["category ids read as class index + 1 (1..2)"]


def test_ultralytics_coco_model_ids_use_the_80_to_91_map(tmp_path):
    names = [f"class{i}" for i in range(80)]
    dets = [
        {"image_id": 397133, "category_id": 90, "bbox": [1, 2, 3, 4], "score": 0.5},
        {"image_id": 397133, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
    ]
    path = _write_json(tmp_path / "p.json", dets)
    images, report = read_ultralytics_predictions(path, ["000000397133"], class_names=names)
    assert [o.label for o in images[0].objects] == ["class79", "class0"]
    assert "COCO 80 -> 91 id map" in report.notes[0]


def test_ultralytics_categories_from_coco_ground_truth(tmp_path):
    path = _write_json(tmp_path / "p.json", [{**DETS[0], "category_id": 18}])
    images, report = read_ultralytics_predictions(path, ["street_01"], categories={18: "dog"})
    assert images[0].objects[0].label == "dog"
    assert report.notes == ["category ids joined to the COCO ground truth's categories"]


@pytest.mark.parametrize(
    "ids, names, expected, note",
    [
        pytest.param({1, 4}, ["a", "b", "c", "d"], {1: "a", 4: "d"}, "index + 1", id="plus-one"),
        pytest.param({0, 3}, ["a", "b", "c", "d"], {0: "a", 3: "d"}, "start at 0", id="zero"),
        pytest.param({7}, ["a", "b"], {1: "a", 2: "b"}, "index + 1", id="unknown-kept"),
    ],
)
def test_category_numbering(ids, names, expected, note):
    mapping, text = category_names_from_class_names(ids, names)
    assert all(mapping[k] == v for k, v in expected.items())
    assert note in text


def test_coco80_to_coco91_is_ultralytics_table():
    assert len(COCO80_TO_COCO91) == 80 and len(set(COCO80_TO_COCO91)) == 80
    assert COCO80_TO_COCO91[:12] == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13)
    assert COCO80_TO_COCO91[-1] == 90 and 12 not in COCO80_TO_COCO91


@pytest.mark.parametrize(
    "record, reason",
    [
        pytest.param(
            {**DETS[0], "image_id": "nowhere"},
            "unknown image id 'nowhere': no image has that file stem",
            id="unknown-stem",
        ),
        pytest.param(
            {**DETS[0], "image_id": [1]},
            "'image_id' must be an integer or a string, got [1]",
            id="id-list",
        ),
        pytest.param(
            {**DETS[0], "image_id": True},
            "'image_id' must be an integer or a string, got True",
            id="id-bool",
        ),
        pytest.param(
            {**DETS[0], "category_id": "car"},
            "'category_id' must be an integer, got 'car'",
            id="category-text",
        ),
        pytest.param(
            {**DETS[0], "category_id": 9},
            "unknown category id 9 (known ids: 1..2)",
            id="category-unknown",
        ),
        pytest.param(
            {**DETS[0], "bbox": [1, 2, 3]},
            "'bbox' must be a list of 4 numbers, got [1, 2, 3]",
            id="bbox-3",
        ),
        pytest.param(
            {**DETS[0], "score": "high"}, "'score' must be a number, got 'high'", id="score-text"
        ),
        pytest.param(
            {k: v for k, v in DETS[0].items() if k != "score"}, "missing 'score'", id="no-score"
        ),
        pytest.param([1], "expected an object, got list", id="not-object"),
    ],
)
def test_ultralytics_bad_records_name_file_and_record(tmp_path, record, reason):
    path = _write_json(tmp_path / "predictions.json", [DETS[0], record])
    message = _error(read_ultralytics_predictions, path, ["street_01"], ["car", "person"])
    assert message == f"{path}: detections[1]: {reason}"
    images, report = read_ultralytics_predictions(
        path, ["street_01"], ["car", "person"], skip_invalid=True
    )
    assert len(images[0].objects) == 1
    assert [str(s) for s in report.skipped] == [f"{path}:1: detections[1]: {reason}"]


def test_ultralytics_numeric_id_matching_two_stems_is_ambiguous(tmp_path):
    path = _write_json(tmp_path / "p.json", [{**DETS[1]}])
    message = _error(read_ultralytics_predictions, path, ["0123", "123"], ["car", "person"])
    assert message == (
        f"{path}: detections[0]: image id 123 is ambiguous: it matches the numeric stems "
        "0123, 123 (rename the images or write the ids as strings)"
    )


def test_ultralytics_needs_class_names_and_valid_json(tmp_path):
    path = _write_json(tmp_path / "p.json", DETS)
    assert _error(read_ultralytics_predictions, path, ["street_01"]) == (
        f"{path}: category ids need the class names (--class-names data.yaml or classes.txt: "
        "category id = class index + 1) or COCO ground truth in the same import"
    )
    (tmp_path / "bad.json").write_text('[\n  {"image_id": "a",\n  oops\n]')
    message = _error(read_ultralytics_predictions, tmp_path / "bad.json", ["a"], ["car"])
    assert message.startswith(f"{tmp_path / 'bad.json'}:3: invalid JSON: ")


# COCO with string ids and file names ------------------------------------------------------

GT = {
    "images": [
        {"id": "000123", "file_name": "000123.jpg"},
        {"id": 7, "file_name": "imgs/street.png"},
    ],
    "categories": [{"id": 1, "name": "car"}],
    "annotations": [
        {"id": 1, "image_id": "000123", "category_id": 1, "bbox": [1, 2, 3, 4]},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 1},
    ],
}


def test_coco_string_image_ids_and_file_name_ids(tmp_path):
    images, _, stems, names = read_coco_objects(_write_json(tmp_path / "gt.json", GT))
    assert stems == {"000123": "000123", 7: "street"}
    assert [len(o) for o in _objects(images).values()] == [1, 1]
    dets = [
        {"image_id": "000123", "category_id": 1, "bbox": [1, 1, 1, 1], "score": 0.5},
        {"image_id": "street.png", "category_id": 1, "bbox": [1, 1, 1, 1], "score": 0.6},
        {"image_id": 7, "category_id": 1, "bbox": [1, 1, 1, 1], "score": 0.7},
        {"image_id": "imgs/000123.jpg", "category_id": 1.0, "bbox": [1, 1, 1, 1], "score": 0.8},
    ]
    preds, _ = read_coco_result_objects(_write_json(tmp_path / "d.json", dets), stems, names)
    scores = {im.stem: sorted(o.score for o in im.objects) for im in preds}
    assert scores == {"000123": [0.5, 0.8], "street": [0.6, 0.7]}


@pytest.mark.parametrize(
    "change, reason",
    [
        pytest.param(
            {"images": [{"id": [3], "file_name": "a.jpg"}]},
            "images[0]: 'id' must be an integer or a string, got [3]",
            id="image-id",
        ),
        pytest.param(
            {"images": [{"id": 3.5, "file_name": "a.jpg"}]},
            "images[0]: 'id' must be an integer or a string, got 3.5",
            id="image-float",
        ),
        pytest.param(
            {"categories": [{"id": "car", "name": "car"}]},
            "categories[0]: 'id' must be an integer, got 'car'",
            id="category-id",
        ),
        pytest.param(
            {"annotations": [{**GT["annotations"][0], "id": "one"}]},
            "annotations[0]: 'id' must be an integer, got 'one'",
            id="annotation-id",
        ),
        pytest.param(
            {"annotations": [{**GT["annotations"][0], "area": "big"}]},
            "annotations[0]: 'area' must be a number, got 'big'",
            id="area",
        ),
        pytest.param(
            {"annotations": [{**GT["annotations"][0], "image_id": "nope"}]},
            "annotations[0]: unknown image id 'nope'",
            id="unknown-string-id",
        ),
    ],
)
def test_coco_bad_ids_are_format_errors(tmp_path, change, reason):
    path = _write_json(tmp_path / "gt.json", {**GT, **change})
    assert _error(read_coco_objects, path) == f"{path}: {reason}"


# Corner txt ------------------------------------------------------------------------------


def test_corner_txt_ground_truth_difficult_crlf_and_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_bytes(
        b"car 10 20 30.5 40\r\n\r\nperson 1 2 3 4 difficult\r\n   \r\n"
    )
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "classes.txt").write_text("car\nperson\n")  # not a label file
    images, report = read_corner_txt_folder(tmp_path, predictions=False)
    objects = _objects(images)
    assert sorted(objects) == ["a", "b"] and report.files == 2
    car, person = objects["a"]
    assert (car.label, car.box, car.score, car.crowd) == ("car", (10, 20, 30.5, 40), None, False)
    assert (person.label, person.crowd, person.source[1]) == ("person", True, 3)


def test_corner_txt_predictions(tmp_path):
    (tmp_path / "a.txt").write_text("car 0.873 10 20 30 40\nbike 1e-3 0 0 5 5\n")
    images, _ = read_corner_txt_folder(tmp_path, predictions=True)
    assert [(o.label, o.score, o.box) for o in images[0].objects] == [
        ("car", 0.873, (10, 20, 30, 40)),
        ("bike", 0.001, (0, 0, 5, 5)),
    ]


@pytest.mark.parametrize(
    "line, predictions, reason",
    [
        pytest.param(
            "car 1 2 3",
            False,
            "expected 5 or 6 columns (class left top right bottom [difficult]), found 4",
            id="gt-columns",
        ),
        pytest.param(
            "traffic light 1 2 3 4",
            False,
            "column 6 must be 'difficult', found '4'",
            id="space-in-name",
        ),
        pytest.param(
            "car 0.9 1 2 3",
            True,
            "expected 6 columns (class confidence left top right bottom), found 5",
            id="pred-columns",
        ),
        pytest.param("car 1 x 3 4", False, "column 3 (top) is not a number: 'x'", id="number"),
        pytest.param(
            "car 0.5 1 2 3 inf", True, "column 6 (bottom) is not finite: 'inf'", id="finite"
        ),
        pytest.param(
            "car high 1 2 3 4",
            True,
            "column 2 (confidence) is not a number: 'high'",
            id="confidence",
        ),
        pytest.param("car 30 2 10 4", False, "right (10) < left (30)", id="right-lt-left"),
        pytest.param("car 0.5 1 40 3 4", True, "bottom (4) < top (40)", id="bottom-lt-top"),
    ],
)
def test_corner_txt_bad_lines(tmp_path, line, predictions, reason):
    path = tmp_path / "img.txt"
    good = "car 0.5 1 2 3 4" if predictions else "car 1 2 3 4"
    path.write_text(f"{good}\n\n{line}\n")
    assert _error(read_corner_txt_folder, tmp_path, predictions) == f"{path}:3: {reason}"
    images, report = read_corner_txt_folder(tmp_path, predictions, skip_invalid=True)
    assert len(images[0].objects) == 1 and [s.line for s in report.skipped] == [3]


def test_corner_txt_needs_a_folder_of_utf8(tmp_path):
    assert _error(read_corner_txt_folder, tmp_path / "no", False) == (
        f"{tmp_path / 'no'}: not a folder of .txt label files"
    )
    (tmp_path / "x.txt").write_bytes(b"car \xff 1 2 3\n")
    assert _error(read_corner_txt_folder, tmp_path, False).startswith(
        f"{tmp_path / 'x.txt'}:1: not UTF-8 text"
    )


# Pascal VOC ------------------------------------------------------------------------------

VOC = """<annotation>
  <filename>street.jpg</filename>
  <object>
    <name>car</name>
    <difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195.5</xmax><ymax>371</ymax></bndbox>
  </object>
  <object>
    <name>person</name>
    <difficult>1</difficult>
    <bndbox>
      <xmin>8</xmin>
      <ymin>12</ymin>
      <xmax>352</xmax>
      <ymax>498</ymax>
    </bndbox>
  </object>
</annotation>
"""


def test_voc_objects_difficult_and_crlf(tmp_path):
    (tmp_path / "street.xml").write_bytes(VOC.replace("\n", "\r\n").encode())
    (tmp_path / "empty.xml").write_text("<annotation><filename>e.jpg</filename></annotation>")
    images, report = read_voc_folder(tmp_path)
    objects = _objects(images)
    assert objects["empty"] == [] and report.files == 2
    car, person = objects["street"]
    assert (car.label, car.box, car.crowd, car.score) == ("car", (48, 240, 195.5, 371), False, None)
    assert (person.label, person.box, person.crowd) == ("person", (8, 12, 352, 498), True)
    assert car.source[1] == 3 and person.source[1] == 8  # the <object> lines


@pytest.mark.parametrize(
    "old, new, line, reason",
    [
        pytest.param(
            "</object>\n  <object>",
            "</objet>\n  <object>",
            7,
            "invalid XML: mismatched tag (column 5)",
            id="mismatched-tag",
        ),
        pytest.param(
            "<xmax>195.5</xmax>",
            "<xmax>wide</xmax>",
            6,
            "<xmax> is not a number: 'wide'",
            id="not-a-number",
        ),
        pytest.param("<ymin>12</ymin>", "", 11, "<bndbox> has no <ymin>", id="missing-ymin"),
        pytest.param(
            "<xmax>352</xmax>", "<xmax>2</xmax>", 11, "xmax (2) < xmin (8)", id="xmax-lt-xmin"
        ),
        pytest.param(
            "<difficult>1</difficult>",
            "<difficult>yes</difficult>",
            10,
            "<difficult> must be 0 or 1, found 'yes'",
            id="difficult",
        ),
        pytest.param(
            "<name>person</name>", "<name> </name>", 9, "<name> is empty", id="empty-name"
        ),
        pytest.param("<name>car</name>", "", 3, "<object> has no <name>", id="no-name"),
        pytest.param(
            "<annotation>",
            "<annotations>",
            18,
            "invalid XML: mismatched tag (column 3)",
            id="root-mismatch",
        ),
    ],
)
def test_voc_bad_files_name_file_and_line(tmp_path, old, new, line, reason):
    path = tmp_path / "street.xml"
    path.write_text(VOC.replace(old, new, 1))
    assert _error(read_voc_folder, tmp_path) == f"{path}:{line}: {reason}"


def test_voc_wrong_root_missing_box_and_skip_invalid(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("<?xml version='1.0'?>\n<doc>\n</doc>\n")
    assert _error(read_voc_folder, tmp_path) == (
        f"{path}:2: expected an <annotation> root element, found <doc>"
    )
    path.write_text(
        VOC.replace(
            "<bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195.5</xmax><ymax>371</ymax></bndbox>", ""
        )
    )
    assert _error(read_voc_folder, tmp_path) == f"{path}:3: <object> has no <bndbox>"
    (tmp_path / "b.xml").write_text("<annotation>\n<object>\n")
    images, report = read_voc_folder(tmp_path, skip_invalid=True)
    assert [(im.stem, len(im.objects)) for im in images] == [("a", 1)]
    assert [str(s) for s in report.skipped] == [
        f"{path}:3: <object> has no <bndbox>",
        f"{tmp_path / 'b.xml'}:3: invalid XML: no element found (column 1)",
    ]


# Format recognition (auto) ---------------------------------------------------------------


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "labels"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    "files, predictions, expected",
    [
        pytest.param(
            {"a.txt": "0 0.5 0.5 0.2 0.3\n1 0.1 0.2 0.05 0.1\n"}, False, "yolo", id="yolo-gt"
        ),
        pytest.param({"a.txt": "0 0.5 0.5 0.2 0.3 0.9\n"}, True, "yolo", id="yolo-pred"),
        pytest.param(
            {"a.txt": "car 10 20 30 40\nbus 1 2 3 4 difficult\n"}, False, "txt", id="txt-gt"
        ),
        pytest.param({"a.txt": "car 0.9 10 20 30 40\n"}, True, "txt", id="txt-pred"),
        pytest.param({"a.txt": "Car 0 0 0 1 2 3 4 1 1 1 0 0 0 0\n"}, False, "kitti", id="kitti"),
        pytest.param({"a.txt": "car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 0.5\n"}, True, "tao", id="tao"),
        pytest.param({"a.xml": VOC, "classes.txt": "car\n"}, False, "voc", id="voc"),
    ],
)
def test_detect_folders(tmp_path, files, predictions, expected):
    chosen, why = detect_format(_folder(tmp_path, files), predictions)
    assert chosen == expected and why


def test_detect_json_files(tmp_path):
    assert detect_format(_write_json(tmp_path / "gt.json", GT), False)[0] == "coco"
    assert detect_format(_write_json(tmp_path / "u.json", DETS), True)[0] == "ultralytics"
    ints = [{**DETS[1]}]
    assert detect_format(_write_json(tmp_path / "c.json", ints), True)[0] == "coco"
    path = _write_json(tmp_path / "d.json", DETS)
    assert _error(detect_format, path, False) == (
        f"{path}: cannot recognise the format: a list of detections, not ground truth; "
        "give --gt-format"
    )


def test_detect_errors_ask_for_the_format(tmp_path):
    folder = _folder(tmp_path, {"a.txt": "0 0.1 0.1 0.5 0.5\n", "b.xml": VOC})
    assert _error(detect_format, folder, False) == (
        f"{folder}: ambiguous: 1 .xml and 1 .txt label files; give --gt-format"
    )
    (folder / "b.xml").unlink()
    assert _error(detect_format, folder, False) == (
        f"{folder}: ambiguous: the 1 sampled lines fit txt and yolo equally well; "
        "give --gt-format txt (or another)"
    )
    (folder / "a.txt").write_text("\ncar 1 2\n")
    assert _error(detect_format, folder, True) == (
        f"{folder / 'a.txt'}:2: no known label format has lines like this one (3 columns); "
        "give --pred-format"
    )
    (folder / "a.txt").write_text("\n")
    assert _error(detect_format, folder, True) == (
        f"{folder}: every .txt file is empty: give --pred-format"
    )
    assert _error(detect_format, tmp_path / "none", True) == f"{tmp_path / 'none'}: not found"
    (tmp_path / "v").mkdir()
    voc = _folder(tmp_path / "v", {"a.xml": VOC})
    assert _error(detect_format, voc, True) == (
        f"{voc}: a folder of .xml files (Pascal VOC) is ground truth, not predictions"
    )
