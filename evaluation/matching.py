"""Greedy matching of predictions to ground truth, exactly as pycocotools does it, vectorised.

pycocotools matches, per image and class, each prediction in descending score order to the
still-unmatched ground-truth object with the highest IoU >= threshold, preferring objects that
are not ignored, breaking IoU ties in favour of the later object, and letting crowd regions
absorb any number of predictions. Predictions of different groups never compete, so this
module processes the k-th prediction of *every* group at once: one vectorised round per rank,
over all images, classes, IoU thresholds and area ranges together. No Python loop runs over
boxes or box pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CandidatePairs", "candidate_pairs", "greedy_match", "pair_iou", "rank_within_groups"]


def pair_iou(pred_boxes: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray) -> np.ndarray:
    """IoU of aligned pairs, with pycocotools' ``bbIou`` arithmetic (bit-identical).

    Args:
        pred_boxes: ``(N, 4)`` ``[x, y, w, h]``.
        gt_boxes: ``(N, 4)`` ``[x, y, w, h]``.
        gt_crowd: ``(N,)`` bool; for crowd regions the union is the prediction's area.

    Returns:
        ``(N,)`` float64 IoU of ``pred_boxes[i]`` with ``gt_boxes[i]``.
    """
    d, g = pred_boxes, gt_boxes
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    overlap = (w > 0) & (h > 0)
    inter = np.where(overlap, w * h, 0.0)
    pred_area = d[:, 2] * d[:, 3]
    gt_area = g[:, 2] * g[:, 3]
    union = np.where(gt_crowd, pred_area, pred_area + gt_area - inter)
    iou = np.zeros(len(d), dtype=np.float64)
    np.divide(inter, union, out=iou, where=overlap)
    return iou


def rank_within_groups(group: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Processing order of predictions inside their groups.

    Args:
        group: ``(P,)`` int group of each prediction (e.g. ``image * K + class``).
        scores: ``(P,)`` confidences.

    Returns:
        ``order``: ``(P,)`` permutation sorting by group, then descending score, then input
        order (pycocotools' stable ``argsort(-score)``); ``rank``: ``(P,)`` position of each
        prediction inside its group in that order (0 = processed first).
    """
    order = np.lexsort((-scores, group))  # stable: ties keep input order
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])[: len(order)]
    rank_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = rank_sorted
    return order, rank


@dataclass(frozen=True)
class CandidatePairs:
    """Prediction/ground-truth pairs of the same group with IoU at or above a floor.

    Attributes:
        pred: ``(N,)`` int64 prediction row.
        gt: ``(N,)`` int64 ground-truth row.
        iou: ``(N,)`` float64 IoU (pycocotools arithmetic).
    """

    pred: np.ndarray
    gt: np.ndarray
    iou: np.ndarray


def candidate_pairs(
    pred_rows: np.ndarray,
    pred_group: np.ndarray,
    pred_boxes: np.ndarray,
    gt_rows: np.ndarray,
    gt_group: np.ndarray,
    gt_boxes: np.ndarray,
    gt_crowd: np.ndarray,
    min_iou: float,
) -> CandidatePairs:
    """All (prediction, ground truth) pairs sharing a group whose IoU is >= ``min_iou``.

    Args:
        pred_rows: ``(P,)`` row ids of the predictions to pair (returned in ``pred``).
        pred_group: ``(P,)`` group of each of them.
        pred_boxes: ``(P, 4)`` their boxes.
        gt_rows, gt_group, gt_boxes, gt_crowd: the same for ``G`` ground-truth objects.
        min_iou: the floor; must be > 0 (pairs that do not overlap are never candidates).
    """
    if not min_iou > 0:
        raise ValueError(f"IoU threshold must be > 0, got {min_iou}")
    gt_order = np.argsort(gt_group, kind="stable")
    num_groups = int(max(gt_group.max(initial=-1), pred_group.max(initial=-1))) + 1
    per_group = np.bincount(gt_group, minlength=num_groups)
    group_first = np.cumsum(per_group) - per_group
    first = group_first[pred_group]
    count = per_group[pred_group]
    total = int(count.sum())
    pred_pos = np.repeat(np.arange(len(pred_group)), count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    gt_pos = gt_order[np.repeat(first, count) + offset]
    iou = pair_iou(pred_boxes[pred_pos], gt_boxes[gt_pos], gt_crowd[gt_pos])
    keep = iou >= min_iou
    return CandidatePairs(
        pred=np.asarray(pred_rows)[pred_pos[keep]],
        gt=np.asarray(gt_rows)[gt_pos[keep]],
        iou=iou[keep],
    )


# long: pycocotools' greedy matching, one round per score rank over every image at once
def greedy_match(
    pairs: CandidatePairs,
    pred_rank: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
) -> np.ndarray:
    """pycocotools' greedy matching for several ignore settings and IoU thresholds at once.

    Args:
        pairs: candidate pairs (same group, IoU >= ``min(thresholds)``); row ids index the
            arrays below. Ground-truth rows must be in input order inside a group: IoU ties
            go to the later row, as in pycocotools.
        pred_rank: ``(P,)`` processing order of each prediction inside its group.
        gt_ignore: ``(A, G)`` bool, for each of ``A`` settings (COCO area ranges) which
            ground-truth objects are ignored. Non-ignored objects are preferred.
        gt_crowd: ``(G,)`` bool crowd regions, which may absorb several predictions.
        thresholds: ``(T,)`` IoU thresholds.

    Returns:
        ``(A, T, P)`` int32 (int64 beyond 2**31 objects): the ground-truth row each prediction is matched to, or -1.
    """
    num_settings, num_gt = gt_ignore.shape
    thresholds = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    num_thr = len(thresholds)
    rows = num_settings * num_thr
    index_type = np.int32 if num_gt < 2**31 else np.int64
    matches = np.full((rows, len(pred_rank)), -1, dtype=index_type)
    if len(pairs.pred) == 0:
        return matches.reshape(num_settings, num_thr, len(pred_rank))

    # Row r of the (A*T)-stacked state is setting r // T at threshold r % T.
    row_thr = np.tile(thresholds, num_settings)[:, None]
    row_ignore = np.repeat(gt_ignore, num_thr, axis=0)
    taken = np.zeros((rows, num_gt), dtype=bool)

    order = np.lexsort((pairs.gt, pairs.pred, pred_rank[pairs.pred]))
    pred, gt, iou = pairs.pred[order], pairs.gt[order], pairs.iou[order]
    rank = pred_rank[pred]
    round_starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
    round_ends = np.r_[round_starts[1:], len(rank)]

    for start, end in zip(round_starts, round_ends):
        p, g, v = pred[start:end], gt[start:end], iou[start:end]
        seg_starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        seg_of = np.repeat(np.arange(len(seg_starts)), np.diff(np.r_[seg_starts, len(p)]))

        available = (v >= row_thr) & (~taken[:, g] | gt_crowd[g])
        counted = ~row_ignore[:, g]
        # A prediction with an available non-ignored object only considers those.
        has_counted = np.logical_or.reduceat(available & counted, seg_starts, axis=1)
        candidate = available & (counted == has_counted[:, seg_of])
        best_iou = np.maximum.reduceat(np.where(candidate, v, -1.0), seg_starts, axis=1)
        candidate &= v == best_iou[:, seg_of]
        # Ties on IoU: the last candidate (pairs are sorted by ground-truth row).
        position = np.where(candidate, np.arange(len(p)), -1)
        chosen = np.maximum.reduceat(position, seg_starts, axis=1)

        row_idx, seg_idx = np.nonzero(chosen >= 0)
        chosen_gt = g[chosen[row_idx, seg_idx]]
        matches[row_idx, p[seg_starts[seg_idx]]] = chosen_gt
        taken[row_idx, chosen_gt] = True
    return matches.reshape(num_settings, num_thr, len(pred_rank))
