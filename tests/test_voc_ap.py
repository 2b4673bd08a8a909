"""PASCAL VOC AP: published values, hand-computed fractions, and a loop-by-loop reference
(py-faster-rcnn's ``voc_eval.py``) on seeded random sets."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, InputError
from detection_debugger.evaluation.voc_ap import voc_ap

# ---------------------------------------------------------------- the reference


def reference_voc_ap(rec, prec, use_07_metric=False):
    """py-faster-rcnn ``voc_eval.voc_ap``, verbatim in substance."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = 0 if np.sum(rec >= t) == 0 else np.max(prec[rec >= t])
            ap = ap + p / 11.0
        return ap
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def reference_voc_eval(gt, results, category_id, ovthresh, offset, image_ids=None):
    """py-faster-rcnn ``voc_eval`` for one class, one detection at a time (``iscrowd`` is
    ``difficult``; ``>=`` the threshold, as the VOC devkit). Returns ``(ap_all, ap_11, tp,
    fp)``, APs None without ground truth."""
    class_recs, npos = {}, 0
    for a in gt["annotations"]:
        if a["category_id"] != category_id or (image_ids and a["image_id"] not in image_ids):
            continue
        x, y, w, h = a["bbox"]
        rec = class_recs.setdefault(a["image_id"], {"bbox": [], "difficult": [], "det": []})
        rec["bbox"].append([x, y, x + w, y + h])
        rec["difficult"].append(bool(a.get("iscrowd", 0)))
        rec["det"].append(False)
        npos += not a.get("iscrowd", 0)
    dets = [
        d
        for d in results
        if d["category_id"] == category_id and (not image_ids or d["image_id"] in image_ids)
    ]
    dets = sorted(dets, key=lambda d: -d["score"])  # stable: ties in input order
    tp, fp = np.zeros(len(dets)), np.zeros(len(dets))
    for d, det in enumerate(dets):
        R = class_recs.get(det["image_id"], {"bbox": [], "difficult": [], "det": []})
        x, y, w, h = det["bbox"]
        bb = [x, y, x + w, y + h]
        ovmax, BBGT = -np.inf, np.array(R["bbox"], dtype=np.float64).reshape(-1, 4)
        if BBGT.size > 0:
            ixmin = np.maximum(BBGT[:, 0], bb[0])
            iymin = np.maximum(BBGT[:, 1], bb[1])
            ixmax = np.minimum(BBGT[:, 2], bb[2])
            iymax = np.minimum(BBGT[:, 3], bb[3])
            iw = np.maximum(ixmax - ixmin + offset, 0.0)
            ih = np.maximum(iymax - iymin + offset, 0.0)
            inters = iw * ih
            uni = (
                (bb[2] - bb[0] + offset) * (bb[3] - bb[1] + offset)
                + (BBGT[:, 2] - BBGT[:, 0] + offset) * (BBGT[:, 3] - BBGT[:, 1] + offset)
                - inters
            )
            overlaps = inters / uni
            ovmax, jmax = np.max(overlaps), np.argmax(overlaps)
        if ovmax >= ovthresh:
            if not R["difficult"][jmax]:
                if not R["det"][jmax]:
                    tp[d] = 1.0
                    R["det"][jmax] = True
                else:
                    fp[d] = 1.0
        else:
            fp[d] = 1.0
    num_tp, num_fp = int(tp.sum()), int(fp.sum())
    if npos == 0:
        return None, None, num_tp, num_fp
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return reference_voc_ap(rec, prec), reference_voc_ap(rec, prec, True), num_tp, num_fp


# ------------------------------------------------- rafaelpadilla's published example

# rafaelpadilla/Object-Detection-Metrics, groundtruths/ and detections/ (class "person";
# boxes x y w h; detections: score x y w h), 7 images, 15 objects, 24 detections.
PADILLA_GT = {
    1: [(25, 16, 38, 56), (129, 123, 41, 62)],
    2: [(123, 11, 43, 55), (38, 132, 59, 45)],
    3: [(16, 14, 35, 48), (123, 30, 49, 44), (99, 139, 47, 47)],
    4: [(53, 42, 40, 52), (154, 43, 31, 34)],
    5: [(59, 31, 44, 51), (48, 128, 34, 52)],
    6: [(36, 89, 52, 76), (62, 58, 44, 67)],
    7: [(28, 31, 55, 63), (58, 67, 50, 58)],
}
PADILLA_DETS = {
    1: [(0.88, 5, 67, 31, 48), (0.70, 119, 111, 40, 67), (0.80, 124, 9, 49, 67)],
    2: [(0.71, 64, 111, 64, 58), (0.54, 26, 140, 60, 47), (0.74, 19, 18, 43, 35)],
    3: [
        (0.18, 109, 15, 77, 39),
        (0.67, 86, 63, 46, 45),
        (0.38, 160, 62, 36, 53),
        (0.91, 105, 131, 47, 47),
        (0.44, 18, 148, 40, 44),
    ],
    4: [
        (0.35, 83, 28, 28, 26),
        (0.78, 28, 68, 42, 67),
        (0.45, 87, 89, 25, 39),
        (0.14, 10, 155, 60, 26),
    ],
    5: [
        (0.62, 50, 38, 28, 46),
        (0.44, 95, 11, 53, 28),
        (0.95, 29, 131, 72, 29),
        (0.23, 29, 163, 72, 29),
    ],
    6: [(0.45, 43, 48, 74, 38), (0.84, 17, 155, 29, 35), (0.43, 95, 110, 25, 42)],
    7: [(0.48, 16, 20, 101, 88), (0.95, 33, 116, 37, 49)],
}
# Its results/results.txt, at IoU 0.3.
PADILLA_PRECISION = [
    1.00,
    0.50,
    0.67,
    0.50,
    0.40,
    0.33,
    0.29,
    0.25,
    0.22,
    0.30,
    0.27,
    0.33,
    0.38,
    0.43,
    0.40,
    0.38,
    0.35,
    0.33,
    0.32,
    0.30,
    0.29,
    0.27,
    0.30,
    0.29,
]
PADILLA_RECALL = [
    0.07,
    0.07,
    0.13,
    0.13,
    0.13,
    0.13,
    0.13,
    0.13,
    0.13,
    0.20,
    0.20,
    0.27,
    0.33,
    0.40,
    0.40,
    0.40,
    0.40,
    0.40,
    0.40,
    0.40,
    0.40,
    0.40,
    0.47,
    0.47,
]


def padilla_set() -> DetectionSet:
    gt = [(im, box) for im in sorted(PADILLA_GT) for box in PADILLA_GT[im]]
    dets = [(im, d) for im in sorted(PADILLA_DETS) for d in PADILLA_DETS[im]]
    return DetectionSet.from_arrays(
        image_ids=sorted(PADILLA_GT),
        class_names=["person"],
        gt_image_ids=[im for im, _ in gt],
        gt_labels=[0] * len(gt),
        gt_boxes=[box for _, box in gt],
        pred_image_ids=[im for im, _ in dets],
        pred_labels=[0] * len(dets),
        pred_boxes=[d[1:] for _, d in dets],
        pred_scores=[d[0] for _, d in dets],
    )


def test_rafaelpadilla_published_example():
    """24.57% (all-point) and 26.84% (11-point) at IoU 0.3: that code adds 1 pixel to
    widths, heights and intersections (``pixel_offset=True``)."""
    result = voc_ap(padilla_set(), 0.3, pixel_offset=True)
    person = result.classes["person"]
    assert round(person.ap_all_point * 100, 2) == 24.57
    assert round(person.ap_11_point * 100, 2) == 26.84
    assert person.ap_all_point == pytest.approx(float(Fraction(356, 1449)), rel=1e-13)
    assert person.ap_11_point == pytest.approx(float(Fraction(62, 231)), rel=1e-13)
    np.testing.assert_array_equal(np.round(person.precision, 2), PADILLA_PRECISION)
    np.testing.assert_array_equal(np.round(person.recall, 2), PADILLA_RECALL)
    assert (person.num_gt, person.num_tp, person.num_fp) == (15, 7, 17)
    assert result.to_dict() == {
        "iou": 0.3,
        "classes": {
            "person": {"AP_all_point": person.ap_all_point, "AP_11_point": person.ap_11_point}
        },
        "mAP_all_point": person.ap_all_point,
        "mAP_11_point": person.ap_11_point,
    }
    # Continuous boxes: the 23rd detection (IoU 0.2953 instead of 0.3034) misses.
    continuous = voc_ap(padilla_set(), 0.3).classes["person"]
    assert continuous.ap_all_point == pytest.approx(float(Fraction(71, 315)), rel=1e-13)
    assert continuous.ap_11_point == pytest.approx(float(Fraction(62, 231)), rel=1e-13)
    assert continuous.num_tp == 6


# ------------------------------------------------------------ hand-computed example

G1, G2, G4 = [0, 0, 10, 10], [20, 0, 10, 10], [50, 50, 10, 10]


def hand_set(names=("car", "bus", "bike")) -> DetectionSet:
    """Image 1: car g1, car g2 (difficult); image 2: car g3, car g4, bike g5.

    Car detections, by score: d1 on g1 (tp), d2 on g1 again (IoU 0.82: duplicate, fp),
    d3 on the difficult g2 (neither), d4 on g3 (tp), d5 on background (fp), d6 on g4 (tp).
    Counted: tp fp tp fp tp, precision 1, 1/2, 2/3, 1/2, 3/5, recall 1/3 1/3 2/3 2/3 1.
    """
    gt = [
        (1, 0, G1, False),
        (1, 0, G2, True),
        (2, 0, G1, False),
        (2, 0, G4, False),
        (2, 2, G1, False),
    ]
    dets = [
        (1, 0, [1, 0, 10, 10], 0.8),
        (1, 0, G1, 0.9),
        (1, 0, G2, 0.7),
        (2, 0, [100, 100, 10, 10], 0.5),
        (2, 0, G1, 0.6),
        (2, 0, G4, 0.4),
        (2, 1, G4, 0.9),  # a bus where there is none (the bus class has no ground truth)
    ]
    return DetectionSet.from_arrays(
        image_ids=[1, 2],
        class_names=names,
        gt_image_ids=[g[0] for g in gt],
        gt_labels=[g[1] for g in gt],
        gt_boxes=[g[2] for g in gt],
        gt_crowd=[g[3] for g in gt],
        pred_image_ids=[d[0] for d in dets],
        pred_labels=[d[1] for d in dets],
        pred_boxes=[d[2] for d in dets],
        pred_scores=[d[3] for d in dets],
    )


def test_hand_computed_fractions_and_11_point_differs_from_all_point():
    result = voc_ap(hand_set(), 0.5)
    car = result.classes["car"]
    # All-point: interpolated precision at the three recall steps 1, 2/3, 3/5.
    assert car.ap_all_point == pytest.approx(float(Fraction(34, 45)), rel=1e-13)
    # 11-point: recall levels 0-0.3 see precision 1, 0.4-0.6 see 2/3, 0.7-1 see 3/5.
    assert car.ap_11_point == pytest.approx(float(Fraction(42, 55)), rel=1e-13)
    assert car.ap_all_point != pytest.approx(car.ap_11_point)
    np.testing.assert_allclose(car.precision, [1, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    np.testing.assert_allclose(car.recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    assert (car.num_gt, car.num_tp, car.num_fp) == (3, 3, 2)
    bus, bike = result.classes["bus"], result.classes["bike"]
    assert bus.ap_all_point is None and bus.ap_11_point is None and bus.num_fp == 1
    assert bike.ap_all_point == 0.0 and bike.ap_11_point == 0.0  # ground truth, no detection
    assert result.mAP_all_point == pytest.approx(float(Fraction(34, 45)) / 2, rel=1e-13)
    assert result.mAP_11_point == pytest.approx(float(Fraction(42, 55)) / 2, rel=1e-13)
    d = result.to_dict()
    assert d["classes"]["bus"] == {"AP_all_point": None, "AP_11_point": None}
    assert set(d) == {"iou", "classes", "mAP_all_point", "mAP_11_point"}


def test_per_class_iou_and_pixel_offset():
    half = [5, 0, 10, 10]  # IoU with G1: 50/150 = 1/3 continuous, 66/176 = 0.375 with +1
    data = DetectionSet.from_arrays(
        image_ids=[1],
        class_names=["car", "pedestrian"],
        gt_image_ids=[1, 1],
        gt_labels=[0, 1],
        gt_boxes=[G1, G1],
        pred_image_ids=[1, 1],
        pred_labels=[0, 1],
        pred_boxes=[half, half],
        pred_scores=[0.9, 0.9],
    )
    assert voc_ap(data, 0.35).mAP_all_point == 0.0
    assert voc_ap(data, 0.35, pixel_offset=True).mAP_all_point == 1.0
    assert voc_ap(data, 1 / 3).mAP_all_point == 1.0  # IoU >= threshold
    result = voc_ap(data, {"car": 0.5, "pedestrian": 0.3})
    assert result.classes["car"].ap_all_point == 0.0
    assert result.classes["pedestrian"].ap_all_point == 1.0
    assert result.to_dict()["iou"] == {"car": 0.5, "pedestrian": 0.3}
    assert voc_ap(data, {"pedestrian": 0.3}).iou == {"car": 0.5, "pedestrian": 0.3}
    assert voc_ap(data, {"pedestrian": 0.3}, default_iou=0.2).mAP_all_point == 1.0
    with pytest.raises(InputError, match="unknown class 'truck'"):
        voc_ap(data, {"truck": 0.5})
    with pytest.raises(InputError, match="IoU thresholds"):
        voc_ap(data, 0.0)


def test_best_object_is_taken_even_when_already_matched():
    """VOC never falls back to the second-best object (COCO would)."""
    data = DetectionSet.from_arrays(
        image_ids=[1],
        class_names=["car"],
        gt_image_ids=[1, 1],
        gt_labels=[0, 0],
        gt_boxes=[G1, [6, 0, 10, 10]],
        pred_image_ids=[1, 1],
        pred_labels=[0, 0],
        pred_boxes=[G1, [2, 0, 10, 10]],  # the second overlaps g1 best (0.67), g2 0.43
        pred_scores=[0.9, 0.8],
    )
    car = voc_ap(data, 0.4).classes["car"]
    assert (car.num_tp, car.num_fp) == (1, 1)


def test_iou_ties_go_to_the_first_object():
    """A detection between two objects (IoU 1/3 with each) takes the first (``argmax``); the
    next detection, right on that first object, is then a duplicate."""
    data = DetectionSet.from_arrays(
        image_ids=[1],
        class_names=["car"],
        gt_image_ids=[1, 1],
        gt_labels=[0, 0],
        gt_boxes=[G1, [10, 0, 10, 10]],
        pred_image_ids=[1, 1],
        pred_labels=[0, 0],
        pred_boxes=[[5, 0, 10, 10], G1],
        pred_scores=[0.9, 0.8],
    )
    car = voc_ap(data, 0.3).classes["car"]
    assert (car.num_tp, car.num_fp) == (1, 1)
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": G1},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 0, 10, 10]},
        ],
    }
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [5, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": G1, "score": 0.8},
    ]
    assert reference_voc_eval(gt, results, 1, 0.3, 0.0)[2:] == (1, 1)


# ------------------------------------------------------------ seeded random sets


RANDOM_CONFIGS = [
    SyntheticConfig(num_images=30, num_classes=3, crowd_rate=0.15, score_decimals=1, seed=21),
    SyntheticConfig(
        num_images=25,
        num_classes=4,
        crowd_rate=0.1,
        score_decimals=2,
        duplicates_per_object=1.0,
        seed=22,
    ),
    SyntheticConfig(
        num_images=20,
        num_classes=2,
        crowd_rate=0.3,
        score_decimals=None,
        image_size=(160, 120),
        seed=23,
    ),
    SyntheticConfig(
        num_images=15,
        num_classes=5,
        crowd_rate=0.05,
        empty_image_rate=0.4,
        score_decimals=1,
        seed=24,
    ),
]


@pytest.mark.parametrize("config", RANDOM_CONFIGS, ids=lambda c: f"seed{c.seed}")
@pytest.mark.parametrize(
    "iou, pixel_offset",
    [(0.5, False), (0.5, True), (0.3, False), (0.75, True), ("per-class", False)],
)
def test_equals_the_reference_on_random_sets(config, iou, pixel_offset):
    gt, results = make_coco(config)
    data = DetectionSet.from_coco(gt, results)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    if iou == "per-class":
        iou = {name: (0.7, 0.5, 0.3)[i % 3] for i, name in enumerate(names.values())}
    image_ids = [im["id"] for im in gt["images"]]
    for subset in (None, set(image_ids[::2])):
        mask = None if subset is None else np.isin(data.image_ids, list(subset))
        result = voc_ap(data, iou, image_mask=mask, pixel_offset=pixel_offset)
        aps = []
        for category, name in names.items():
            threshold = iou[name] if isinstance(iou, dict) else iou
            ap_all, ap_11, tp, fp = reference_voc_eval(
                gt, results, category, threshold, float(pixel_offset), subset
            )
            got = result.classes[name]
            assert (got.num_tp, got.num_fp) == (tp, fp), name
            if ap_all is None:
                assert got.ap_all_point is None and got.ap_11_point is None
                continue
            assert got.ap_all_point == pytest.approx(ap_all, rel=1e-12, abs=1e-15)
            assert got.ap_11_point == pytest.approx(ap_11, rel=1e-12, abs=1e-15)
            aps.append((ap_all, ap_11))
        if aps:
            assert result.mAP_all_point == pytest.approx(np.mean([a for a, _ in aps]), rel=1e-12)
            assert result.mAP_11_point == pytest.approx(np.mean([b for _, b in aps]), rel=1e-12)


def test_empty_sets():
    empty = DetectionSet.from_arrays(
        image_ids=[1],
        class_names=["car"],
        gt_image_ids=[],
        gt_labels=[],
        gt_boxes=np.zeros((0, 4)),
        pred_image_ids=[],
        pred_labels=[],
        pred_boxes=np.zeros((0, 4)),
        pred_scores=[],
    )
    result = voc_ap(empty)
    assert result.mAP_all_point is None and result.classes["car"].ap_all_point is None
    only_gt = hand_set()
    no_images = voc_ap(only_gt, image_mask=np.zeros(2, bool))
    assert no_images.mAP_all_point is None
