"""Slices from the stored match table (images and objects) and comparisons, in pure numpy.

Image slices equal pycocotools run on the slice's images. Object slices follow the rule of
:meth:`MatchTable.selection`; equivalently, at each IoU threshold they equal pycocotools run
after removing the excluded ground truth, the predictions matched to it at that threshold,
and the unmatched predictions not selected. Both statements are tested here.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_same_as_pycocotools, random_config, run_pycocotools

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import (
    IOU_THRESHOLDS,
    DetectionSet,
    MatchTable,
    Outcome,
    accumulate,
    compare_results,
    outcome_changes,
)

TOL = 1e-9


@pytest.mark.parametrize("seed", range(30))
def test_random_image_slices_match_pycocotools(seed):
    gt, results = make_coco(random_config(300 + seed))
    rng = np.random.default_rng(seed)
    ids = [im["id"] for im in gt["images"]]
    size = int(rng.integers(1, len(ids) + 1))
    subset = sorted(rng.choice(ids, size=size, replace=False).tolist())
    assert_same_as_pycocotools(gt, results, subset)


def _object_reference(gt, results, table, image_ids, gt_mask, pred_mask, t):
    """pycocotools at IoU threshold ``t`` after removing what the slice rule excludes."""
    coco = table.coco
    matched_gt = np.full(len(results), -1)
    matched_gt[coco.pred_rows] = coco.pred_gt[t, 0]  # area range "all"
    keep_pred = np.where(matched_gt >= 0, gt_mask[np.maximum(matched_gt, 0)], pred_mask)
    reduced = dict(gt, annotations=[a for a, k in zip(gt["annotations"], gt_mask) if k])
    kept = [d for d, k in zip(results, keep_pred) if k]
    return run_pycocotools(reduced, kept, image_ids)


@pytest.mark.parametrize("seed", range(12))
def test_random_object_slices_equal_pycocotools_after_removing_the_excluded(seed):
    gt, results = make_coco(random_config(500 + seed))
    rng = np.random.default_rng(seed)
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data)
    ids = [im["id"] for im in gt["images"]]
    image_ids = sorted(rng.choice(ids, size=max(1, len(ids) // 2), replace=False).tolist())
    gt_mask = rng.random(len(gt["annotations"])) < 0.6
    pred_mask = rng.random(len(results)) < 0.7
    mask = table.image_mask(image_ids)
    precision, recall = accumulate(table.coco, mask, gt_mask, pred_mask)
    for t in range(len(IOU_THRESHOLDS)):
        reference = _object_reference(gt, results, table, image_ids, gt_mask, pred_mask, t)
        np.testing.assert_allclose(
            precision[t, :, :, 0, -1], reference.eval["precision"][t, :, :, 0, -1], atol=TOL
        )
        np.testing.assert_allclose(recall[t, :, 0, -1], reference.eval["recall"][t, :, 0, -1])


def test_selecting_every_object_equals_the_image_slice():
    gt, results = make_coco(random_config(7))
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    mask = np.zeros(table.data.num_images, bool)
    mask[::2] = True
    every_gt, every_pred = np.ones(len(table.data.gt_ids), bool), np.ones(len(results), bool)
    images = table.evaluate(mask).to_dict()
    objects = table.evaluate(mask, every_gt, every_pred).to_dict()
    assert objects == images


# One image, class "a": g1 (in the slice) and g2 (excluded), each found by a prediction, a
# ghost scored above both, and a prediction of class "b" mispredicting g2.
SCENE_GT = {
    "images": [{"id": 1, "width": 200, "height": 100}],
    "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 0, 40, 40], "area": 1600},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600},
    ],
}
SCENE_DETS = [
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.5},  # finds g1
    {"image_id": 1, "category_id": 1, "bbox": [100, 0, 40, 40], "score": 0.97},  # finds g2
    {"image_id": 1, "category_id": 1, "bbox": [150, 50, 40, 40], "score": 0.95},  # ghost
    {"image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 40], "score": 0.9},  # mispredicts g3
]


@pytest.fixture
def scene():
    return MatchTable.build(DetectionSet.from_coco(SCENE_GT, SCENE_DETS))


@pytest.mark.parametrize(
    "gt_mask, pred_mask, ap50, fp_a, tp_a, misp_a, num_pred_b",
    [
        # everything: ranks .97 tp, .95 fp, .5 tp -> precision 1 up to recall 1/3, 2/3 at
        # recall 2/3; g3 is mispredicted (never found), so recall stops at 2/3.
        pytest.param([1, 1, 1], [1, 1, 1, 1], (34 * 1 + 33 * 2 / 3) / 101, 1, 2, 1, 1, id="all"),
        # g2 excluded: its prediction (.97) is ignored, not a false positive: ghost, then g1.
        pytest.param([1, 0, 1], [1, 1, 1, 1], 51 / 101 * 0.5, 1, 1, 1, 1, id="g2-excluded"),
        # the ghost unselected as well: g1 found first, recall 1/2 at precision 1.
        pytest.param([1, 0, 1], [1, 1, 0, 1], 51 / 101, 0, 1, 1, 1, id="ghost-unselected"),
        # g3 excluded: its misprediction (class b) leaves the slice with it.
        pytest.param([1, 1, 0], [1, 1, 1, 1], (51 + 50 * 2 / 3) / 101, 1, 2, 0, 0, id="g3-out"),
    ],
)
def test_object_slice_rule_on_a_hand_built_scene(
    scene, gt_mask, pred_mask, ap50, fp_a, tp_a, misp_a, num_pred_b
):
    result = scene.evaluate(None, np.array(gt_mask, bool), np.array(pred_mask, bool))
    a = result.classes["a"]
    assert a.AP50 == pytest.approx(ap50, abs=TOL)
    assert (a.tp, a.fp, a.mispredicted) == (tp_a, fp_a, misp_a)
    assert a.num_gt == sum(gt_mask)
    assert result.classes["b"].num_pred == num_pred_b
    assert result.confusion.matrix.sum() == sum(gt_mask) + fp_a


def test_selection_keeps_pairs_together(scene):
    gt_in, pred_in = scene.selection(None, np.array([1, 0, 0], bool), np.zeros(4, bool))
    assert gt_in.tolist() == [True, False, False]
    # only the prediction paired with g1; the ghost is not selected
    assert pred_in.tolist() == [True, False, False, False]
    assert scene.outcomes.pred_outcome[3] == Outcome.MISPREDICTED


# ---------------------------------------------------------------- comparisons


def test_comparison_deltas_are_the_differences_of_the_two_results():
    gt, results = make_coco(SyntheticConfig(num_images=30, seed=11))
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    mask = np.arange(table.data.num_images) % 3 == 0
    whole, part = table.evaluate(), table.evaluate(mask)
    comparison = compare_results(whole, part, ("whole", "slice"))
    for name, sides in comparison.classes.items():
        for metric, delta in sides["delta"].items():
            a, b = getattr(whole.classes[name], metric), getattr(part.classes[name], metric)
            assert sides["a"][metric] == a and sides["b"][metric] == b
            assert delta == (None if a is None or b is None else b - a)
    assert comparison.stats["delta"]["AP"] == pytest.approx(part.stats["AP"] - whole.stats["AP"])
    text = comparison.format_table()
    assert "whole" in text and "all classes" in text


def test_comparison_keeps_classes_of_either_side():
    gt, results = make_coco(random_config(12))
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    a = table.evaluate()
    b_classes = dict(a.classes)
    name, metrics = b_classes.popitem()
    b = type(a)(stats=a.stats, classes=b_classes, confusion=a.confusion)
    comparison = compare_results(b, a)
    assert list(comparison.classes)[-1] == name
    assert comparison.classes[name]["a"]["AP"] is None
    assert comparison.classes[name]["delta"]["tp"] is None


def test_outcome_changes_follow_each_object():
    tp, fn, misp, crowd = Outcome.TP, Outcome.FN, Outcome.MISPREDICTED, Outcome.IGNORED
    a = np.array([fn, misp, tp, tp, fn, tp, crowd, -1])
    b = np.array([tp, tp, fn, tp, fn, misp, crowd, tp])
    classes = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    changes = outcome_changes(a, b, classes, ("x", "y"))
    assert changes.change.tolist() == [
        "fixed",
        "fixed",
        "regressed",
        "kept",
        "still_missed",
        "regressed",
        None,
        None,
    ]
    assert changes.counts["x"] == {"fixed": 2, "regressed": 1, "still_missed": 0, "kept": 0}
    assert changes.counts["y"] == {"fixed": 0, "regressed": 1, "still_missed": 1, "kept": 1}
    only_first = outcome_changes(a, b, classes, ("x", "y"), mask=np.arange(8) < 2)
    assert only_first.counts["x"]["fixed"] == 2 and only_first.counts["y"]["regressed"] == 0
