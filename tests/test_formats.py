"""Format readers and writers (pure: no FiftyOne)."""

from __future__ import annotations

import json

import pytest

from detection_debugger.formats import (
    ClassMap,
    FormatError,
    ImageObjects,
    ObjectRecord,
    format_kitti_line,
    parse_kitti_line,
    read_class_names,
    read_coco_objects,
    read_coco_result_objects,
    read_kitti_folder,
    read_yolo_folder,
    write_kitti_folder,
    write_yolo_folder,
)

TAO_16 = (
    "crosswalks 0.00 0 0.00 100.50 200.00 300.25 260.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.873"
)


@pytest.mark.parametrize(
    "line, score",
    [
        pytest.param(TAO_16, 0.873, id="16-columns"),
        pytest.param(
            "car 0.00 0 0.00 1 2 3 4 0.00 0.00 0.00 0.00 0.00 0.00 0.52", 0.52, id="15-columns"
        ),
        pytest.param("car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 0", 0.0, id="bare-zero"),
        pytest.param("car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 9.8e-20", 9.8e-20, id="scientific"),
        pytest.param("car 0 0 0 1 2 3 4 0 0 0 0 0 0 0 3.75", 3.75, id="detectnet-coverage"),
    ],
)
def test_tao_prediction_variants(line, score):
    record = parse_kitti_line(line, "p.txt", 1, predictions=True)
    assert record.score == score
    assert record.crowd is False


def test_tao_box_is_read_in_pixels():
    record = parse_kitti_line(TAO_16, "p.txt", 1, predictions=True)
    assert record.label == "crosswalks"
    assert record.box == (100.5, 200.0, 300.25, 260.0)


def test_kitti_ground_truth_and_dontcare():
    car = parse_kitti_line("Car 0.5 1 -1.2 10 20 30 40 1.5 1.6 3.9 1 2 3 0.1", "g.txt", 1, False)
    assert car.score is None and not car.crowd
    assert car.attributes["truncated"] == 0.5 and car.attributes["dimensions"] == [1.5, 1.6, 3.9]
    dc = parse_kitti_line(
        "DontCare -1 -1 -10 5 5 50 50 -1 -1 -1 -1000 -1000 -1000 -10", "g", 2, False
    )
    assert dc.crowd


@pytest.mark.parametrize(
    "line, predictions, message",
    [
        pytest.param("car 0 0 0 1 2 3", True, "expected 15 or 16 columns, found 7", id="columns"),
        pytest.param(TAO_16, False, "expected 15 columns, found 16", id="gt-with-score"),
        pytest.param(
            TAO_16.replace("100.50", "abc"), True, "column 5 (x1) is not a number", id="non-number"
        ),
        pytest.param(TAO_16.replace("300.25", "50"), True, "x2 (50) < x1 (100.5)", id="x2-lt-x1"),
        pytest.param(TAO_16.replace("260.00", "199"), True, "y2 (199) < y1 (200)", id="y2-lt-y1"),
        pytest.param(
            TAO_16.replace("0.873", "nan"),
            True,
            "column 16 (confidence) is not finite",
            id="nan-score",
        ),
    ],
)
def test_malformed_lines_name_file_line_and_problem(line, predictions, message):
    with pytest.raises(FormatError) as info:
        parse_kitti_line(line, "labels/000007.txt", 12, predictions)
    assert str(info.value).startswith("labels/000007.txt:12: ")
    assert message in str(info.value)


def test_folder_reading_stops_or_skips_and_reports(tmp_path):
    (tmp_path / "a.txt").write_text(TAO_16 + "\n\ncar 1 2\n" + TAO_16 + "\n")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(FormatError, match=r"a.txt:3: expected 15 or 16 columns"):
        read_kitti_folder(tmp_path, predictions=True)
    images, report = read_kitti_folder(tmp_path, predictions=True, skip_invalid=True)
    assert [(im.stem, len(im.objects)) for im in images] == [("a", 2), ("b", 0)]
    assert [str(s) for s in report.skipped] == [
        f"{tmp_path / 'a.txt'}:3: expected 15 or 16 columns, found 3: 'car 1 2'"
    ]
    assert report.files == 2


def test_scores_above_one_are_kept_and_noted(tmp_path):
    (tmp_path / "a.txt").write_text(TAO_16.replace("0.873", "12.5") + "\n")
    images, report = read_kitti_folder(tmp_path, predictions=True)
    assert images[0].objects[0].score == 12.5
    assert any("exceed 1" in note for note in report.notes)


def test_kitti_write_read_round_trip(tmp_path):
    records = [
        ObjectRecord("car", (10.25, 20.0, 30.5, 40.75), score=0.5),
        ObjectRecord("DontCare", (0, 0, 5, 5), score=None, crowd=True),
    ]
    write_kitti_folder(tmp_path, [ImageObjects("x", records[:1])], with_score=True)
    line = (tmp_path / "x.txt").read_text().strip()
    assert line == "car 0 0 0 10.25 20 30.5 40.75 0 0 0 0 0 0 0 0.5"
    back = parse_kitti_line(line, "x", 1, predictions=True)
    assert back.box == records[0].box and back.score == 0.5
    gt_line = format_kitti_line(records[1], with_score=False)
    assert parse_kitti_line(gt_line, "x", 1, predictions=False).crowd


def test_yolo_round_trip(tmp_path):
    (tmp_path / "classes.txt").write_text("car\nbike\n")
    names = read_class_names(tmp_path / "classes.txt")
    labels = tmp_path / "labels"
    images = [ImageObjects("img", [ObjectRecord("bike", (10.0, 20.0, 50.0, 60.0), score=0.25)])]
    write_yolo_folder(labels, images, names, {"img": (200, 100)}, with_score=True)
    assert (labels / "img.txt").read_text() == "1 0.15 0.4 0.2 0.4 0.25\n"
    back, _ = read_yolo_folder(labels, names, {"img": (200, 100)}, predictions=True)
    assert back[0].objects[0].label == "bike"
    assert back[0].objects[0].box == pytest.approx((10.0, 20.0, 50.0, 60.0))
    (labels / "bad.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(FormatError, match=r"bad.txt:1: class index 7 is not in the 2 names"):
        read_yolo_folder(labels, names, {"img": (200, 100), "bad": (10, 10)}, predictions=False)


def test_coco_objects_and_results_join(tmp_path):
    gt = {
        "images": [{"id": 3, "file_name": "sub/000003.jpg"}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 1}
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    images, _, stems, names = read_coco_objects(tmp_path / "gt.json")
    assert images[0].stem == "000003"
    assert images[0].objects[0].box == (1, 2, 4, 6) and images[0].objects[0].crowd
    dets = [{"image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.4}]
    (tmp_path / "dets.json").write_text(json.dumps(dets + [{**dets[0], "image_id": 8}]))
    with pytest.raises(FormatError, match=r"dets.json: detections\[1\]: unknown image id 8"):
        read_coco_result_objects(tmp_path / "dets.json", stems, names)
    preds, report = read_coco_result_objects(tmp_path / "dets.json", stems, names, True)
    assert preds[0].objects[0].score == 0.4
    assert len(report.skipped) == 1


def test_class_map(tmp_path):
    assert ClassMap().resolve("Car", ["car", "bike"]) == "car"
    assert ClassMap().resolve("truck", ["car"]) == "truck"
    (tmp_path / "map.yaml").write_text("Crosswalk: crosswalks\nPERSON: pedestrians\n")
    mapping = ClassMap.load(tmp_path / "map.yaml")
    assert mapping.resolve("crosswalk", ["crosswalks"]) == "crosswalks"
    assert mapping.resolve("person", []) == "pedestrians"
    (tmp_path / "map.json").write_text('{"a": "b"')
    with pytest.raises(FormatError, match=r"map.json:1: invalid JSON"):
        ClassMap.load(tmp_path / "map.json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(FormatError, match="expected a mapping"):
        ClassMap.load(tmp_path / "list.yaml")


def test_kitti_lines_parse_the_same_through_the_one_match_and_the_checked_path():
    """The one-match path (plain decimals separated by spaces) and the column-by-column path
    give equal objects; lines the one match does not take (other separators, leading spaces,
    exponents, odd labels) go the checked way, with its errors."""
    import random

    from detection_debugger.formats.kitti import _parse_checked

    rng = random.Random(7)
    forms = (
        lambda v: f"{v:g}",
        lambda v: f"{v:.6f}",
        lambda v: f"{v:e}",
        lambda v: f"{v:+.2f}",
        lambda v: str(int(v)),
    )
    for case in range(400):
        predictions = case % 2 == 0
        ncols = rng.choice((15, 16)) if predictions else 15
        x1, y1 = rng.uniform(0, 500), rng.uniform(0, 500)
        values = [rng.uniform(-3, 3) for _ in range(3)]
        values += [x1, y1, x1 + rng.uniform(0, 90), y1 + rng.uniform(0, 90)]
        values += [rng.uniform(-9, 9) for _ in range(ncols - 8)]
        sep = rng.choice((" ", "  ", "\t", " \t"))
        label = rng.choice(("car", "Pedestrian", "traffic_sign", "DontCare", "feu_rouge_é"))
        line = sep.join([label, *(rng.choice(forms)(v) for v in values)])
        line = rng.choice(("", " ")) + line + rng.choice(("", " ", "\t"))
        fast = parse_kitti_line(line, "f.txt", 3, predictions)
        checked = _parse_checked(line, line.split(), "f.txt", 3, predictions)
        assert fast == checked, line
    for bad, reason in (
        ("car 0 0 0 10 10 5 20 0 0 0 0 0 0 0 0.5", "x2"),
        ("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0 1e999", "not finite"),
        ("car\x07 0 0 0 10 10 20 20 0 0 0 0 0 0 0 0.5", "control character"),
        ("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0 1_0", "not a number"),
        ("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0 1e", "not a number"),
        ("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0 nan", "not finite"),
        ("car 0 0 0 10 10 20 20 0 0 0 0 0 0 0 \u0663", "not a number"),
    ):
        with pytest.raises(FormatError, match=reason):
            parse_kitti_line(bad, "f.txt", 3, predictions=True)
