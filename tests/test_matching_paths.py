"""The star shortcut of greedy_match equals the general round-by-round matching."""

from __future__ import annotations

import numpy as np
import pytest

from detection_debugger.evaluation.matching import (
    _match_rounds,
    candidate_pairs,
    greedy_match,
    rank_within_groups,
    stable_sort_by,
)


def _rounds_only(pairs, rank, gt_ignore, crowd, thresholds):
    thresholds = np.minimum(np.asarray(thresholds, np.float64), 1 - 1e-10)
    out = np.full((gt_ignore.shape[0], len(thresholds), len(rank)), -1, np.int64)

    def assign(a, t, pred, gt):
        out[a, t, pred] = gt

    if len(pairs.pred):
        _match_rounds(pairs, rank, gt_ignore, crowd, thresholds, assign)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_greedy_match_equals_rounds(seed):
    rng = np.random.default_rng(seed)
    num_gt, num_pred, num_groups = 60, 200, 8
    gt_group = rng.integers(0, num_groups, num_gt)
    pred_group = rng.integers(0, num_groups, num_pred)
    gt_boxes = np.c_[rng.uniform(0, 50, (num_gt, 2)), rng.uniform(5, 30, (num_gt, 2))]
    # Predictions jittered around objects (stars, and some with two candidates).
    source = rng.integers(0, num_gt, num_pred)
    pred_boxes = gt_boxes[source] + rng.normal(0, 2.5, (num_pred, 4))
    pred_boxes[:, 2:] = np.abs(pred_boxes[:, 2:])
    pred_group = np.where(rng.random(num_pred) < 0.8, gt_group[source], pred_group)
    scores = np.round(rng.random(num_pred), 1)  # ties
    crowd = rng.random(num_gt) < 0.1
    areas = gt_boxes[:, 2] * gt_boxes[:, 3]
    gt_ignore = np.stack([crowd, crowd | (areas < 200), crowd | (areas >= 200)])
    thresholds = np.linspace(0.5, 0.95, 10)
    pairs = candidate_pairs(
        np.arange(num_pred),
        pred_group,
        pred_boxes,
        np.arange(num_gt),
        gt_group,
        gt_boxes,
        crowd,
        0.5,
    )
    rank = rank_within_groups(pred_group, scores)[1]
    expected = _rounds_only(pairs, rank, gt_ignore, crowd, thresholds)
    got = greedy_match(pairs, rank, gt_ignore, crowd, thresholds)
    np.testing.assert_array_equal(got, expected)
    major = greedy_match(pairs, rank, gt_ignore, crowd, thresholds, threshold_major=True)
    np.testing.assert_array_equal(major, expected.transpose(1, 0, 2))


def test_rank_and_stable_sort_equal_lexsort():
    rng = np.random.default_rng(3)
    group = rng.integers(0, 70_000, 5000) * 10_000 + rng.integers(0, 3, 5000)
    scores = np.round(rng.random(5000), 2)
    order, _ = rank_within_groups(group, scores)
    np.testing.assert_array_equal(order, np.lexsort((-scores, group)))
    rows = np.arange(5000)
    np.testing.assert_array_equal(stable_sort_by(group, rows), np.argsort(group, kind="stable"))
