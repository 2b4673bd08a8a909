"""The 4-way confusion matrix and per-object outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import reference_outcomes

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import (
    BACKGROUND,
    DetectionSet,
    MatchTable,
    Outcome,
    match_outcomes,
)


def _data(anns, dets, categories=("car", "bike")):
    """anns: (class, box[, crowd]); dets: (class, box, score); one image."""
    return DetectionSet.from_arrays(
        image_ids=[1],
        class_names=categories,
        gt_image_ids=np.ones(len(anns), np.int64),
        gt_labels=np.array([a[0] for a in anns], np.int64),
        gt_boxes=np.array([a[1] for a in anns], np.float64).reshape(-1, 4),
        gt_crowd=np.array([a[2] if len(a) > 2 else False for a in anns], bool),
        pred_image_ids=np.ones(len(dets), np.int64),
        pred_labels=np.array([d[0] for d in dets], np.int64),
        pred_boxes=np.array([d[1] for d in dets], np.float64).reshape(-1, 4),
        pred_scores=np.array([d[2] for d in dets], np.float64),
    )


def _outcomes(anns, dets, **kwargs):
    out = match_outcomes(_data(anns, dets), **kwargs)
    return [str(Outcome(o)) for o in out.gt_outcome], [str(Outcome(o)) for o in out.pred_outcome]


BOX = [10, 10, 20, 20]
NEAR = [11, 11, 20, 20]  # IoU with BOX ~0.82
FAR = [60, 60, 20, 20]


@pytest.mark.parametrize(
    "anns, dets, expected_gt, expected_pred",
    [
        pytest.param([], [(0, BOX, 0.9)], [], ["fp"], id="preds-only"),
        pytest.param([(0, BOX)], [], ["fn"], [], id="gt-only"),
        pytest.param([(0, BOX)], [(0, NEAR, 0.9)], ["tp"], ["tp"], id="true-positive"),
        pytest.param(
            [(0, BOX)], [(1, NEAR, 0.9)], ["mispredicted"], ["mispredicted"], id="cross-class"
        ),
        pytest.param(
            [(0, BOX)],
            [(0, NEAR, 0.9), (0, BOX, 0.8)],
            ["tp"],
            ["tp", "duplicate"],
            id="duplicate",
        ),
        pytest.param(
            [(0, BOX)],
            [(1, BOX, 0.95), (0, NEAR, 0.5)],
            ["tp"],
            ["fp", "tp"],
            id="right-class-wins-over-higher-scored-wrong-class",
        ),
        pytest.param(
            [(0, BOX, True)],
            [(0, NEAR, 0.9), (0, BOX, 0.8)],
            ["ignored"],
            ["ignored", "ignored"],
            id="crowd",
        ),
        pytest.param(
            [(0, BOX)], [(0, NEAR, 0.2)], ["fn"], ["below_threshold"], id="below-score-threshold"
        ),
        pytest.param([(0, BOX)], [(0, FAR, 0.9)], ["fn"], ["fp"], id="miss-and-ghost"),
    ],
)
def test_named_outcomes(anns, dets, expected_gt, expected_pred):
    gt_out, pred_out = _outcomes(anns, dets, score_threshold=0.3)
    assert gt_out == expected_gt
    assert pred_out == expected_pred


def test_matrix_cells_of_a_small_scene():
    data = _data(
        [(0, BOX), (0, [50, 10, 20, 20]), (1, [10, 50, 20, 20])],
        [(0, NEAR, 0.9), (1, [51, 11, 20, 20], 0.8), (1, FAR, 0.7)],
    )
    result = MatchTable.build(data).evaluate()
    labels = result.confusion.labels
    assert labels == ("car", "bike", BACKGROUND)
    m = result.confusion.matrix
    # car: one found, one found as bike; bike: undetected; one bike ghost.
    assert m.tolist() == [[1, 1, 0], [0, 0, 1], [0, 1, 0]]
    car, bike = result.classes["car"], result.classes["bike"]
    assert (car.tp, car.fn, car.mispredicted, car.fp) == (1, 0, 1, 0)
    assert (bike.tp, bike.fn, bike.mispredicted, bike.fp) == (0, 1, 0, 1)
    assert (car.num_gt, car.num_pred, bike.num_gt, bike.num_pred) == (2, 1, 1, 2)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("iou, score", [(0.5, 0.0), (0.3, 0.25), (0.75, 0.5)])
def test_outcomes_equal_the_plain_python_reference(seed, iou, score):
    gt, results = make_coco(
        SyntheticConfig(
            num_images=6,
            num_classes=3,
            gt_per_image=8,
            ghosts_per_image=6,
            duplicates_per_object=1.0,
            confusion_rate=0.3,
            crowd_rate=0.1,
            image_size=(160, 120),
            score_decimals=1,
            seed=seed,
        )
    )
    data = DetectionSet.from_coco(gt, results)
    outcomes = match_outcomes(data, iou, score)
    expected_gt, expected_pred = reference_outcomes(gt, results, iou, score)
    assert [str(Outcome(o)) for o in outcomes.gt_outcome] == expected_gt
    assert [str(Outcome(o)) for o in outcomes.pred_outcome] == expected_pred


@pytest.mark.parametrize("seed", range(6))
def test_matrix_invariants(seed):
    gt, results = make_coco(
        SyntheticConfig(num_images=40, num_classes=4, crowd_rate=0.1, seed=seed)
    )
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data, score_threshold=0.3)
    result = table.evaluate()
    m = result.confusion.matrix
    k = data.num_classes
    num_gt = np.bincount(data.gt_class[~data.gt_crowd], minlength=k)
    assert np.array_equal(m[:k].sum(axis=1), num_gt)
    counted = data.pred_scores >= 0.3
    in_crowd = table.outcomes.pred_outcome == Outcome.IGNORED
    expected_cols = np.bincount(data.pred_class[counted & ~in_crowd], minlength=k)
    assert np.array_equal(m[:, :k].sum(axis=0), expected_cols)
    assert m[k, k] == 0
    for i, metrics in enumerate(result.classes.values()):
        assert metrics.tp + metrics.fn + metrics.mispredicted == metrics.num_gt
        assert metrics.fp == m[k, i] and metrics.duplicate <= metrics.fp
    # Matched pairs point at each other, with their IoU.
    out = table.outcomes
    tp = np.flatnonzero(out.gt_outcome == Outcome.TP)
    assert np.array_equal(out.pred_match[out.gt_match[tp]], tp)
    assert np.all(out.gt_iou[tp] >= 0.5)
    assert np.array_equal(out.gt_iou[tp], out.pred_iou[out.gt_match[tp]])


@pytest.mark.parametrize("seed", range(4))
def test_slice_confusion_equals_evaluating_the_slice_alone(seed):
    gt, results = make_coco(SyntheticConfig(num_images=60, num_classes=3, seed=seed))
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data)
    mask = np.random.default_rng(seed).random(data.num_images) < 0.3
    sliced = table.evaluate(mask)
    alone = MatchTable.build(data.subset(mask)).evaluate()
    assert sliced.to_dict() == alone.to_dict()
