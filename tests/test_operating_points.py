"""Operating points and re-scoring from a match table, against matching from scratch.

Precision/recall at a score threshold ``t`` must equal pycocotools run from scratch on the
detections with ``score >= t`` (true positives read from ``evalImgs`` at that IoU, area
"all", 100 detections); the confusion matrix at ``t`` must equal the one of
``MatchTable.build(data, iou, score_threshold=t)``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from dataclasses import replace

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, InputError, MatchTable, match_outcomes
from detection_debugger.evaluation.confusion import confusion_matrix
from detection_debugger.evaluation.operating_points import operating_points, outcomes_at, rescore


def pycocotools_counts(gt: dict, results: list, iou: float, image_ids=None) -> dict:
    """``{category_id: (tp, kept, npos)}`` of pycocotools' matching at one IoU threshold,
    area "all", 100 detections per image and class, from scratch."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        else:
            coco_dt = COCO()
            coco_dt.dataset = {**copy.deepcopy(gt), "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        params = evaluator.params
        # COCO's own thresholds are kept as pycocotools has them (0.7000000000000001).
        close = np.flatnonzero(np.abs(params.iouThrs - iou) <= 1e-9)
        t = int(close[0]) if len(close) else 0
        if not len(close):
            params.iouThrs = np.array([iou])
        if image_ids is not None:
            params.imgIds = sorted(image_ids)
        evaluator.evaluate()
    counts = {c: [0, 0, 0] for c in params.catIds}
    for e in evaluator.evalImgs:
        if e is None or e["aRng"] != params.areaRng[0]:
            continue
        matched = e["dtMatches"][t] > 0
        ignored = e["dtIgnore"][t].astype(bool)
        c = counts[e["category_id"]]
        c[0] += int(np.sum(matched & ~ignored))
        c[1] += int(np.sum(~ignored))
        c[2] += int(np.sum(~np.asarray(e["gtIgnore"], bool)))
    return {k: tuple(v) for k, v in counts.items()}


def thresholds_to_try(results: list, count: int = 14) -> list[float]:
    """Distinct scores (ties included), values between them, 0 and above the maximum."""
    scores = np.unique([d["score"] for d in results])
    rng = np.random.default_rng(len(scores))
    picked = rng.choice(scores, size=min(count, len(scores)), replace=False).tolist()
    between = [(a + b) / 2 for a, b in zip(scores[:-1], scores[1:])][:: max(1, len(scores) // 4)]
    return sorted({0.0, float(scores.max()) + 0.1, *picked, *between[:4]})


CONFIGS = [
    # crowds, and scores with 1 or 2 decimals: many ties.
    SyntheticConfig(num_images=40, num_classes=3, crowd_rate=0.15, score_decimals=1, seed=1),
    SyntheticConfig(num_images=30, num_classes=4, crowd_rate=0.1, score_decimals=2, seed=2),
    SyntheticConfig(num_images=25, num_classes=2, crowd_rate=0.05, score_decimals=None, seed=3),
    # more than 100 detections per image and class: pycocotools' cut.
    SyntheticConfig(
        num_images=4,
        num_classes=1,
        gt_per_image=30,
        ghosts_per_image=150,
        duplicates_per_object=2.0,
        crowd_rate=0.1,
        score_decimals=2,
        seed=4,
    ),
]


def assert_points_match(points, gt, results, iou, image_ids=None):
    """Every threshold of ``thresholds_to_try``: counts and rates equal pycocotools'."""
    names = {c["id"]: c["name"] for c in gt["categories"]}
    for t in thresholds_to_try(results):
        kept_results = [d for d in results if d["score"] >= t]
        reference = pycocotools_counts(gt, kept_results, iou, image_ids)
        for category, (tp, kept, npos) in reference.items():
            got = points[names[category]]
            assert got.num_gt == npos
            at = got.at(t)
            assert (at["tp"], at["kept"]) == (tp, kept), (t, names[category])
            if kept:
                assert at["precision"] == tp / kept
            if npos:
                assert at["recall"] == tp / npos
                assert at["f1"] == pytest.approx(
                    0.0 if tp == 0 else 2 * (tp / kept) * (tp / npos) / (tp / kept + tp / npos)
                )
            # A threshold that is a point of the curve reads the same numbers there.
            hits = np.flatnonzero(got.score == t)
            if len(hits):
                i = int(hits[0])
                assert (got.tp[i], got.kept[i]) == (tp, kept)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"seed{c.seed}")
def test_precision_recall_equal_pycocotools_from_scratch(config):
    gt, results = make_coco(config)
    table = MatchTable.build(DetectionSet.from_coco(gt, results), 0.5)
    assert_points_match(operating_points(table), gt, results, 0.5)


@pytest.mark.parametrize("iou", [0.75, 0.7])
def test_other_coco_thresholds(iou):
    gt, results = make_coco(CONFIGS[0])
    table = MatchTable.build(DetectionSet.from_coco(gt, results), iou)
    # pycocotools evaluates its own linspace value (0.7000000000000001 for 0.7).
    assert_points_match(operating_points(table), gt, results, iou)


@pytest.mark.parametrize("iou, table_score", [(0.3, 0.0), (0.62, 0.0), (0.3, 0.45)])
@pytest.mark.parametrize("config", CONFIGS[:2] + CONFIGS[3:], ids=lambda c: f"seed{c.seed}")
def test_iou_outside_coco_thresholds_from_the_table_outcomes(config, iou, table_score):
    """At a non-COCO IoU the table's own matching is used; below the table's score
    threshold, the stored matching is continued."""
    gt, results = make_coco(config)
    table = MatchTable.build(DetectionSet.from_coco(gt, results), iou, table_score)
    assert_points_match(operating_points(table), gt, results, iou)


def test_image_slice_equals_pycocotools_on_those_images():
    gt, results = make_coco(CONFIGS[1])
    table = MatchTable.build(DetectionSet.from_coco(gt, results), 0.5)
    image_ids = [im["id"] for im in gt["images"]][::3]
    points = operating_points(table, image_mask=table.image_mask(image_ids))
    assert_points_match(points, gt, results, 0.5, image_ids)


def test_object_slice_follows_the_select_objects_rule():
    """With gt/pred masks: a tp counts when its object is selected, a fp when it is."""
    gt, results = make_coco(CONFIGS[0])
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, 0.5)
    rng = np.random.default_rng(0)
    gt_mask = rng.random(len(data.gt_ids)) < 0.6
    pred_mask = rng.random(len(data.pred_ids)) < 0.6
    points = operating_points(table, gt_mask=gt_mask, pred_mask=pred_mask)
    coco = table.coco
    tp = coco.pred_tp[0, 0] & gt_mask[np.maximum(coco.pred_gt[0, 0], 0)]
    fp = coco.pred_fp[0, 0] & pred_mask[coco.pred_rows]
    scores = data.pred_scores[coco.pred_rows]
    for k, name in enumerate(data.class_names):
        mine = coco.pred_class == k
        for t in (0.0, 0.3, 0.6):
            kept = mine & (scores >= t)
            at = points[name].at(t)
            assert at["tp"] == int((tp & kept).sum())
            assert at["kept"] == int(((tp | fp) & kept).sum())
        npos = int((~data.gt_crowd & gt_mask & (data.gt_class == k)).sum())
        assert points[name].num_gt == npos
    # The same at a non-COCO IoU (the outcomes path) on a full mask equals no mask.
    table3 = MatchTable.build(data, 0.3)
    full = operating_points(table3, gt_mask=np.ones(len(data.gt_ids), bool))
    for name, expected in operating_points(table3).items():
        np.testing.assert_array_equal(full[name].tp, expected.tp)
        np.testing.assert_array_equal(full[name].kept, expected.kept)


def _one_image(anns, dets, names=("car",)):
    """anns: (class, box[, crowd]); dets: (class, box, score)."""
    return DetectionSet.from_arrays(
        image_ids=[1],
        class_names=names,
        gt_image_ids=np.ones(len(anns), np.int64),
        gt_labels=np.array([a[0] for a in anns], np.int64),
        gt_boxes=np.array([a[1] for a in anns], np.float64).reshape(-1, 4),
        gt_crowd=np.array([a[2] if len(a) > 2 else False for a in anns], bool),
        pred_image_ids=np.ones(len(dets), np.int64),
        pred_labels=np.array([d[0] for d in dets], np.int64),
        pred_boxes=np.array([d[1] for d in dets], np.float64).reshape(-1, 4),
        pred_scores=np.array([d[2] for d in dets], np.float64),
    )


A, B, FAR, CROWD = [0, 0, 10, 10], [20, 0, 10, 10], [100, 100, 10, 10], [40, 0, 30, 30]


def test_hand_example_curve_best_f1_ties_and_to_dict():
    # Two objects; predictions 0.9 tp, 0.8 fp, 0.8 inside a crowd (ignored), 0.7 fp, 0.6 tp.
    data = _one_image(
        [(0, A), (0, B), (0, CROWD, True)],
        [(0, A, 0.9), (0, FAR, 0.8), (0, [45, 5, 10, 10], 0.8), (0, FAR, 0.7), (0, B, 0.6)],
    )
    car = operating_points(MatchTable.build(data, 0.5))["car"]
    np.testing.assert_array_equal(car.score, [0.9, 0.8, 0.7, 0.6])
    np.testing.assert_array_equal(car.tp, [1, 1, 1, 2])
    np.testing.assert_array_equal(car.kept, [1, 2, 3, 4])  # the crowd one is left out
    np.testing.assert_allclose(car.precision, [1, 1 / 2, 1 / 3, 1 / 2])
    np.testing.assert_allclose(car.recall, [1 / 2, 1 / 2, 1 / 2, 1])
    # F1 = 2 tp / (kept + 2): 2/3, 1/2, 2/5, 2/3: a tie, won by the higher score.
    np.testing.assert_allclose(car.f1, [2 / 3, 1 / 2, 2 / 5, 2 / 3])
    assert car.best_f1 == {"score": 0.9, "precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    assert car.to_dict() == {
        "best_f1": {"score": 0.9, "precision": 1.0, "recall": 0.5, "f1": 2 / 3},
        "curve": {
            "score": [0.9, 0.8, 0.7, 0.6],
            "precision": [1.0, 0.5, 1 / 3, 0.5],
            "recall": [0.5, 0.5, 0.5, 1.0],
        },
    }
    nothing = car.at(0.95)
    assert (nothing["tp"], nothing["kept"], nothing["recall"], nothing["f1"]) == (0, 0, 0.0, 0.0)
    assert math.isnan(nothing["precision"])
    assert car.at(0.65)["kept"] == 3 and car.at(0.0)["tp"] == 2


def test_classes_without_ground_truth_or_predictions():
    data = _one_image([(0, A)], [(1, FAR, 0.5)], names=("car", "bike", "bus"))
    points = operating_points(MatchTable.build(data, 0.5))
    car, bike, bus = points["car"], points["bike"], points["bus"]
    assert car.num_gt == 1 and len(car.score) == 0 and car.best_f1 is None
    assert car.to_dict() == {"best_f1": None, "curve": {"score": [], "precision": [], "recall": []}}
    assert bike.num_gt == 0 and bike.best_f1 is None
    assert bike.to_dict()["curve"] == {"score": [0.5], "precision": [0.0], "recall": [None]}
    assert bus.to_dict() == car.to_dict()
    assert car.at(0.1)["recall"] == 0.0


def test_unavailable_iou_is_refused():
    gt, results = make_coco(CONFIGS[0])
    table = MatchTable.build(DetectionSet.from_coco(gt, results), 0.3)
    with pytest.raises(InputError, match="IoU 0.4"):
        operating_points(table, iou=0.4)
    assert operating_points(table, iou=0.55)["class_0"].iou == 0.55


# ---------------------------------------------------------------------- rescore


def assert_same_outcomes(got, expected):
    for name in expected.__dataclass_fields__:
        a, b = getattr(got, name), getattr(expected, name)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name


RESCORE_CONFIGS = [
    SyntheticConfig(
        num_images=60, num_classes=4, crowd_rate=0.1, confusion_rate=0.2, score_decimals=1, seed=11
    ),
    SyntheticConfig(
        num_images=40,
        num_classes=3,
        crowd_rate=0.05,
        confusion_rate=0.3,
        duplicates_per_object=1.0,
        score_decimals=None,
        seed=12,
    ),
]


@pytest.mark.parametrize("config", RESCORE_CONFIGS, ids=lambda c: f"seed{c.seed}")
@pytest.mark.parametrize("iou, table_score", [(0.5, 0.0), (0.3, 0.35), (0.75, 0.6)])
def test_rescore_equals_building_the_table_at_that_threshold(config, iou, table_score):
    gt, results = make_coco(config)
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, iou, table_score)
    mask = np.zeros(data.num_images, bool)
    mask[::2] = True
    for t in thresholds_to_try(results, count=8):
        expected_outcomes = match_outcomes(data, iou, t)
        assert_same_outcomes(outcomes_at(table, t), expected_outcomes)
        expected = MatchTable(data, table.coco, expected_outcomes)
        for image_mask in (None, mask):
            confusion, counts = rescore(table, t, image_mask=image_mask)
            result = expected.evaluate(image_mask)
            np.testing.assert_array_equal(confusion.matrix, result.confusion.matrix)
            assert confusion.labels == result.confusion.labels
            for name, metrics in result.classes.items():
                assert counts[name] == {
                    key: getattr(metrics, key)
                    for key in ("num_gt", "num_pred", "tp", "fn", "mispredicted", "fp", "duplicate")
                }
    # The definition, literally, at one threshold.
    built = MatchTable.build(data, iou, 0.45).evaluate()
    np.testing.assert_array_equal(rescore(table, 0.45)[0].matrix, built.confusion.matrix)


def test_rescore_object_slices_equal_the_built_table():
    gt, results = make_coco(RESCORE_CONFIGS[0])
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, 0.5)
    rng = np.random.default_rng(5)
    gt_mask = rng.random(len(data.gt_ids)) < 0.5
    pred_mask = rng.random(len(data.pred_ids)) < 0.5
    for t in (0.2, 0.55):
        built = MatchTable.build(data, 0.5, t).evaluate(None, gt_mask, pred_mask)
        confusion, counts = rescore(table, t, gt_mask=gt_mask, pred_mask=pred_mask)
        np.testing.assert_array_equal(confusion.matrix, built.confusion.matrix)
        assert counts["class_0"]["num_pred"] == built.classes["class_0"].num_pred
        assert counts["class_1"]["duplicate"] == built.classes["class_1"].duplicate


@pytest.mark.parametrize("table_score", [0.0, 0.5])
def test_per_class_thresholds_equal_matching_the_kept_predictions(table_score):
    gt, results = make_coco(RESCORE_CONFIGS[1])
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, 0.5, table_score)
    thresholds = {"class_0": 0.7, "class_2": 0.2}  # class_1 keeps the table's threshold
    per_class = np.array([0.7, table_score, 0.2])
    keep = data.pred_scores >= per_class[data.pred_class]
    kept = replace(
        data,
        pred_image=data.pred_image[keep],
        pred_class=data.pred_class[keep],
        pred_boxes=data.pred_boxes[keep],
        pred_scores=data.pred_scores[keep],
        pred_ids=data.pred_ids[keep],
    )
    expected = match_outcomes(kept, 0.5, -np.inf)
    got = outcomes_at(table, thresholds)
    np.testing.assert_array_equal(got.gt_outcome, expected.gt_outcome)
    np.testing.assert_array_equal(got.pred_outcome[keep], expected.pred_outcome)
    assert (got.pred_outcome[~keep] == 6).all()  # BELOW_THRESHOLD
    confusion, counts = rescore(table, thresholds)
    np.testing.assert_array_equal(confusion.matrix, confusion_matrix(kept, expected).matrix)
    assert counts["class_0"]["num_pred"] == int(keep[data.pred_class == 0].sum())
    assert got.score_threshold == min(0.2, table_score)


def test_rescore_refuses_unknown_classes():
    gt, results = make_coco(RESCORE_CONFIGS[0])
    table = MatchTable.build(DetectionSet.from_coco(gt, results), 0.5)
    with pytest.raises(InputError, match="unknown class 'truck'"):
        rescore(table, {"truck": 0.5})


def test_rescore_at_the_best_f1_thresholds():
    """The use the two are made for: the confusion matrix at each class's best-F1 score."""
    gt, results = make_coco(RESCORE_CONFIGS[0])
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, 0.5)
    points = operating_points(table)
    best = {name: p.best_f1["score"] for name, p in points.items() if p.best_f1}
    _, counts = rescore(table, best)
    for name, p in points.items():
        # Class-aware true positives at the threshold are the curve's (no 100-cut here).
        assert counts[name]["tp"] == p.at(best[name])["tp"]
