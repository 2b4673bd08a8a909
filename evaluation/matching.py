"""Greedy matching of predictions to ground truth, exactly as pycocotools does it, vectorised.

pycocotools matches, per image and class, each prediction in descending score order to the
still-unmatched ground-truth object with the highest IoU >= threshold, preferring objects that
are not ignored, breaking IoU ties in favour of the later object, and letting crowd regions
absorb any number of predictions. Predictions of different groups never compete. Most
candidate pairs form "stars" (one object, and predictions with no other candidate): each is
settled at once (the object goes to its first prediction with enough IoU). The rest is
matched by processing the k-th prediction of *every* group at once: one vectorised round per
rank, over all images, classes, IoU thresholds and area ranges together. No Python loop runs
over boxes or box pairs; IoUs are computed in batches, so memory follows the pairs kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CandidatePairs",
    "ClassAwarePairs",
    "candidate_pairs",
    "class_aware_pairs",
    "greedy_match",
    "pair_iou",
    "rank_within_groups",
    "stable_sort_by",
]


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
    # Two stable sorts (score, then group) are a lexsort, in half its time.
    order = np.argsort(-np.asarray(scores), kind="stable")
    order = stable_sort_by(np.asarray(group), order)
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])[: len(order)]
    rank_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = rank_sorted
    return order, rank


def stable_sort_by(keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``order`` stably sorted by ``keys[order]`` (non-negative integers).

    Keys below 2**48 are sorted by 16-bit digits, least significant first (numpy sorts
    16-bit integers by radix: several times faster than its stable sort of int64).
    """
    if not len(order):
        return order
    top = int(keys.max())
    if top < 0 or top >= 2**48 or keys.min() < 0:
        return order[np.argsort(keys[order], kind="stable")]
    shift = 0
    while shift == 0 or top >> shift:
        digit = (keys[order] >> shift).astype(np.uint16)  # the cast keeps the low 16 bits
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


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


@dataclass(frozen=True)
class ClassAwarePairs:
    """Every prediction's candidates in its own (image, class) group, and its rank there:
    computed once, shared by the COCO matching and the 4-way outcomes.

    The rank orders any subset of the predictions too (a group's predictions keep their
    relative order), so each matching filters the pairs it needs and reuses the rest.

    Attributes:
        pairs: pairs of prediction and ground-truth rows with IoU >= ``min_iou``.
        rank: ``(P,)`` rank of every prediction inside its group (0 = highest score).
        min_iou: the IoU floor of ``pairs``.
    """

    pairs: CandidatePairs
    rank: np.ndarray
    min_iou: float

    def subset(self, pred_keep: np.ndarray, min_iou: float) -> CandidatePairs:
        """The pairs of the predictions in ``pred_keep`` (``(P,)`` bool) with IoU >=
        ``min_iou`` (at least the floor), in the same order."""
        if min_iou < self.min_iou:
            raise ValueError(f"pairs start at IoU {self.min_iou}, {min_iou} asked")
        p = self.pairs
        keep = pred_keep[p.pred]
        if min_iou > self.min_iou:
            keep &= p.iou >= min_iou
        keep = np.flatnonzero(keep)
        return CandidatePairs(pred=p.pred[keep], gt=p.gt[keep], iou=p.iou[keep])


def class_aware_pairs(
    pred_group: np.ndarray,
    pred_scores: np.ndarray,
    pred_boxes: np.ndarray,
    gt_group: np.ndarray,
    gt_boxes: np.ndarray,
    gt_crowd: np.ndarray,
    min_iou: float,
) -> ClassAwarePairs:
    """:class:`ClassAwarePairs` of every prediction (rows ``0..P-1``) and ground-truth
    object (rows ``0..G-1``); groups are ``image * K + class``."""
    _, rank = rank_within_groups(pred_group, pred_scores)
    pairs = candidate_pairs(
        np.arange(len(pred_group)),
        pred_group,
        pred_boxes,
        np.arange(len(gt_group)),
        gt_group,
        gt_boxes,
        gt_crowd,
        min_iou,
    )
    return ClassAwarePairs(pairs=pairs, rank=rank, min_iou=float(min_iou))


_PAIRS_PER_BATCH = 1 << 21  # IoUs computed at once by candidate_pairs (bounds its memory)


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

    Pairs come by prediction (in the given order), then ground truth (in the given order).
    The IoUs are computed in batches of predictions, so memory stays bounded by the pairs
    kept, not by all the pairs of a group.

    Args:
        pred_rows: ``(P,)`` row ids of the predictions to pair (returned in ``pred``).
        pred_group: ``(P,)`` group of each of them.
        pred_boxes: ``(P, 4)`` their boxes.
        gt_rows, gt_group, gt_boxes, gt_crowd: the same for ``G`` ground-truth objects.
        min_iou: the floor; must be > 0 (pairs that do not overlap are never candidates).
    """
    if not min_iou > 0:
        raise ValueError(f"IoU threshold must be > 0, got {min_iou}")
    pred_group, gt_group = np.asarray(pred_group), np.asarray(gt_group)
    gt_order = np.argsort(gt_group, kind="stable")
    num_groups = int(max(gt_group.max(initial=-1), pred_group.max(initial=-1))) + 1
    per_group = np.bincount(gt_group, minlength=num_groups)
    first = (np.cumsum(per_group) - per_group)[pred_group]
    count = per_group[pred_group]
    pred_corners, gt_corners = _corners(np.asarray(pred_boxes)), _corners(np.asarray(gt_boxes))
    gt_crowd = np.asarray(gt_crowd)
    pred_parts, gt_parts, iou_parts = (
        [np.zeros(0, np.int64)],
        [np.zeros(0, np.int64)],
        [np.zeros(0)],
    )
    for lo, hi in _batches(count, _PAIRS_PER_BATCH):
        c = count[lo:hi]
        pred_pos = np.repeat(np.arange(lo, hi), c)
        offset = np.arange(len(pred_pos)) - np.repeat(np.cumsum(c) - c, c)
        gt_pos = gt_order[np.repeat(first[lo:hi], c) + offset]
        del offset
        iou = _corner_iou(pred_corners, pred_pos, gt_corners, gt_pos, gt_crowd)
        keep = np.flatnonzero(iou >= min_iou)
        pred_parts.append(pred_pos[keep])
        gt_parts.append(gt_pos[keep])
        iou_parts.append(iou[keep])
    return CandidatePairs(
        pred=np.asarray(pred_rows)[np.concatenate(pred_parts)],
        gt=np.asarray(gt_rows)[np.concatenate(gt_parts)],
        iou=np.concatenate(iou_parts),
    )


def _batches(count: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges of ``count``'s positions summing to about
    ``size`` each (one position may exceed it alone)."""
    if not len(count):
        return []
    ends = np.cumsum(count)
    cuts = np.searchsorted(ends, np.arange(size, int(ends[-1]), size), side="right")
    bounds = np.unique(np.r_[0, cuts, len(count)])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _corners(boxes: np.ndarray) -> np.ndarray:
    """``(5, N)`` rows ``x``, ``y``, ``x + w``, ``y + h``, ``w * h`` of ``[x, y, w, h]`` boxes
    (the same floating-point values pycocotools computes per pair)."""
    boxes = boxes.reshape(-1, 4)
    out = np.empty((5, len(boxes)), np.float64)
    out[0], out[1] = boxes[:, 0], boxes[:, 1]
    np.add(boxes[:, 2], boxes[:, 0], out=out[2])
    np.add(boxes[:, 3], boxes[:, 1], out=out[3])
    np.multiply(boxes[:, 2], boxes[:, 3], out=out[4])
    return out


def _corner_iou(
    d: np.ndarray, d_pos: np.ndarray, g: np.ndarray, g_pos: np.ndarray, crowd: np.ndarray
) -> np.ndarray:
    """:func:`pair_iou` of boxes ``d[:, d_pos]`` and ``g[:, g_pos]`` (``_corners`` rows)."""
    w = np.minimum(d[2][d_pos], g[2][g_pos])
    w -= np.maximum(d[0][d_pos], g[0][g_pos])
    h = np.minimum(d[3][d_pos], g[3][g_pos])
    h -= np.maximum(d[1][d_pos], g[1][g_pos])
    overlap = (w > 0) & (h > 0)
    inter = np.multiply(w, h, out=w)
    inter[~overlap] = 0.0
    del h
    pred_area = d[4][d_pos]
    union = pred_area + g[4][g_pos]
    union -= inter
    crowd = crowd[g_pos]
    union[crowd] = pred_area[crowd]
    iou = np.zeros(len(d_pos), dtype=np.float64)
    np.divide(inter, union, out=iou, where=overlap)
    return iou


def greedy_match(
    pairs: CandidatePairs,
    pred_rank: np.ndarray,
    gt_ignore: np.ndarray,
    gt_crowd: np.ndarray,
    thresholds: np.ndarray,
    *,
    threshold_major: bool = False,
) -> np.ndarray:
    """pycocotools' greedy matching for several ignore settings and IoU thresholds at once.

    Star pairs (see the module) are matched directly, whatever the ignore setting; the
    others in rounds, one per rank (:func:`_match_rounds`).

    Args:
        pairs: candidate pairs (same group, IoU >= ``min(thresholds)``); row ids index the
            arrays below. Ground-truth rows must be in input order inside a group: IoU ties
            go to the later row, as in pycocotools.
        pred_rank: ``(P,)`` processing order of each prediction inside its group.
        gt_ignore: ``(A, G)`` bool, for each of ``A`` settings (COCO area ranges) which
            ground-truth objects are ignored. Non-ignored objects are preferred.
        gt_crowd: ``(G,)`` bool crowd regions, which may absorb several predictions.
        thresholds: ``(T,)`` IoU thresholds.
        threshold_major: return ``(T, A, P)`` instead of ``(A, T, P)``.

    Returns:
        ``(A, T, P)`` int32 (int64 beyond 2**31 objects): the ground-truth row each
        prediction is matched to, or -1.
    """
    num_settings, num_gt = gt_ignore.shape
    thresholds = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    num_thr, num_pred = len(thresholds), len(pred_rank)
    index_type = np.int32 if num_gt < 2**31 else np.int64
    shape = (num_thr, num_settings) if threshold_major else (num_settings, num_thr)
    matches = np.full((*shape, num_pred), -1, dtype=index_type)
    if len(pairs.pred) == 0:
        return matches
    star, rest = _split_stars(pairs, num_pred, num_gt)

    def assign(a: int | np.ndarray, t: int | np.ndarray, pred: np.ndarray, gt: np.ndarray):
        if threshold_major:
            matches[t, a, pred] = gt
        else:
            matches[a, t, pred] = gt

    _match_stars(
        pairs.pred[star],
        pairs.gt[star],
        pairs.iou[star],
        pred_rank,
        gt_crowd,
        thresholds,
        num_settings,
        assign,
    )
    if len(rest):
        subset = CandidatePairs(pred=pairs.pred[rest], gt=pairs.gt[rest], iou=pairs.iou[rest])
        _match_rounds(subset, pred_rank, gt_ignore, gt_crowd, thresholds, assign)
    return matches


def _split_stars(
    pairs: CandidatePairs, num_pred: int, num_gt: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the star pairs (every prediction of their object has no other
    candidate) and of the others. Both sets are closed: no pair of one shares a
    prediction or an object with a pair of the other."""
    several = np.bincount(pairs.pred, minlength=num_pred) > 1
    complex_gt = np.zeros(num_gt, bool)
    complex_gt[pairs.gt[several[pairs.pred]]] = True
    is_complex = complex_gt[pairs.gt]
    return np.flatnonzero(~is_complex), np.flatnonzero(is_complex)


def _match_stars(pred, gt, iou, pred_rank, gt_crowd, thresholds, num_settings, assign) -> None:
    """Greedy matching of star pairs (each prediction has one candidate): an object goes to
    its first prediction in rank order with IoU >= the threshold; a crowd region to all."""
    if not len(pred):
        return
    rank = pred_rank[pred]
    order = np.argsort(gt.astype(np.int64) * (int(rank.max()) + 1) + rank)
    pred, gt, iou = pred[order], gt[order], iou[order]
    del order, rank
    starts = np.flatnonzero(np.r_[True, gt[1:] != gt[:-1]])
    segment = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(gt)]))
    crowd = gt_crowd[gt]
    for t, threshold in enumerate(thresholds):
        available = iou >= threshold
        seen = np.cumsum(available)
        before = (seen - available)[starts]  # available ones before each segment
        win = np.flatnonzero(available & (crowd | (seen - before[segment] == 1)))
        for a in range(num_settings):
            assign(a, t, pred[win], gt[win])


# long: pycocotools' greedy matching, one round per score rank over every image at once
def _match_rounds(pairs, pred_rank, gt_ignore, gt_crowd, thresholds, assign) -> None:
    """Greedy matching of any pairs, for every setting and threshold: one vectorised round
    per rank, over all groups at once (the k-th prediction of every group)."""
    num_settings, num_gt = gt_ignore.shape
    num_thr = len(thresholds)
    rows = num_settings * num_thr
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
        assign(row_idx // num_thr, row_idx % num_thr, p[seg_starts[seg_idx]], chosen_gt)
        taken[row_idx, chosen_gt] = True
