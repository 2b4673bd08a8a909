"""COCO bbox metrics with pycocotools' semantics: match once, accumulate for any image subset.

The arrays follow ``COCOeval.eval``: ``precision`` is ``[T, R, K, A, M]`` (IoU thresholds,
recall thresholds, classes, area ranges, max detections) and ``recall`` is ``[T, K, A, M]``;
-1 marks "undefined" (no ground truth to find).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet
from detection_debugger.evaluation.matching import (
    CandidatePairs,
    ClassAwarePairs,
    class_aware_pairs,
    greedy_match,
    stable_sort_by,
)

__all__ = [
    "AREA_RANGES",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "RECALL_THRESHOLDS",
    "STAT_NAMES",
    "CocoMatches",
    "accumulate",
    "class_aware_pairs_of",
    "interpolated_precision",
    "match_coco",
    "select_objects",
    "per_class_metrics",
    "summarize",
]

# Exactly the expressions of pycocotools' Params.setDetParams (same floating-point values).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0, 1e5**2),
    ("small", 0.0, 32.0**2),
    ("medium", 32.0**2, 96.0**2),
    ("large", 96.0**2, 1e5**2),
)
MAX_DETS: tuple[int, ...] = (1, 10, 100)
STAT_NAMES: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)


def _outside_area_ranges(areas: np.ndarray) -> np.ndarray:
    """``(A, N)`` bool: which areas fall outside each range (bounds inclusive, as pycocotools)."""
    low = np.array([r[1] for r in AREA_RANGES])[:, None]
    high = np.array([r[2] for r in AREA_RANGES])[:, None]
    return (areas[None, :] < low) | (areas[None, :] > high)


@dataclass(frozen=True)
class CocoMatches:
    """Per-object COCO matching outcome, from which any image subset is accumulated.

    Predictions are the ``D`` evaluated ones (the top ``max(MAX_DETS)`` per image and class),
    stored in accumulation order: by class, descending score, image, rank (the order of
    pycocotools' stable sort of the per-image lists).

    Attributes:
        pred_rows: ``(D,)`` rows of the predictions in the ``DetectionSet``.
        pred_class: ``(D,)`` class index (non-decreasing).
        pred_image: ``(D,)`` image index.
        pred_rank: ``(D,)`` rank inside its image and class (0 = highest score).
        pred_tp: ``(T, A, D)`` bool: true positive at IoU threshold ``t``, area range ``a``.
        pred_fp: ``(T, A, D)`` bool: false positive (neither when ignored).
        pred_counted: ``(A, D)`` bool: true or false positive at some threshold. The others
            never change a precision/recall curve, so accumulation skips them.
        gt_class: ``(G,)`` class index of every ground-truth object.
        gt_image: ``(G,)`` image index.
        gt_counted: ``(A, G)`` bool: object counts towards recall in area range ``a``
            (not crowd, area inside the range).
        num_classes: ``K``.
        pred_gt: ``(T, A, D)`` int32 ground-truth row each prediction is matched to, or -1
            (needed only for object-level slices).
    """

    pred_rows: np.ndarray
    pred_class: np.ndarray
    pred_image: np.ndarray
    pred_rank: np.ndarray
    pred_tp: np.ndarray
    pred_fp: np.ndarray
    pred_counted: np.ndarray
    gt_class: np.ndarray
    gt_image: np.ndarray
    gt_counted: np.ndarray
    num_classes: int
    pred_gt: np.ndarray


def match_coco(data: DetectionSet, shared: ClassAwarePairs | None = None) -> CocoMatches:
    """Runs COCO matching for all IoU thresholds and area ranges (``COCOeval.evaluate``).

    Args:
        data: the set to match.
        shared: the set's class-aware pairs (:func:`class_aware_pairs_of`) when the caller
            has them, with a floor of at most 0.5; else they are computed here.
    """
    min_iou = float(IOU_THRESHOLDS.min())
    if shared is None or shared.min_iou > min_iou:
        shared = class_aware_pairs_of(data, min_iou)
    evaluated = shared.rank < MAX_DETS[-1]
    rows = _accumulation_order(data, np.flatnonzero(evaluated))
    # Matching works on positions in `rows` (accumulation order) so that its output needs
    # no reordering.
    pairs = shared.subset(evaluated, min_iou)
    position = np.empty(len(data.pred_ids), dtype=np.int64)
    position[rows] = np.arange(len(rows))
    pairs = CandidatePairs(pred=position[pairs.pred], gt=pairs.gt, iou=pairs.iou)
    del position, evaluated
    gt_ignore = data.gt_crowd[None, :] | _outside_area_ranges(data.gt_areas)  # (A, G)
    pred_rank = shared.rank[rows]
    match = greedy_match(
        pairs, pred_rank, gt_ignore, data.gt_crowd, IOU_THRESHOLDS, threshold_major=True
    )  # (T, A, D)
    del pairs
    pred_tp, pred_fp, pred_counted = _outcome_flags(match, gt_ignore, data.pred_areas[rows])
    return CocoMatches(
        pred_rows=rows,
        pred_class=data.pred_class[rows],
        pred_image=data.pred_image[rows],
        pred_rank=pred_rank,
        pred_tp=pred_tp,
        pred_fp=pred_fp,
        pred_counted=pred_counted,
        gt_class=data.gt_class,
        gt_image=data.gt_image,
        gt_counted=~gt_ignore,
        num_classes=data.num_classes,
        pred_gt=match,
    )


def class_aware_pairs_of(data: DetectionSet, min_iou: float) -> ClassAwarePairs:
    """The candidate pairs of every prediction in its (image, class), with IoU >= ``min_iou``,
    and its rank there (shared by :func:`match_coco` and the 4-way outcomes)."""
    num_classes = data.num_classes
    return class_aware_pairs(
        data.pred_image * num_classes + data.pred_class,
        data.pred_scores,
        data.pred_boxes,
        data.gt_image * num_classes + data.gt_class,
        data.gt_boxes,
        data.gt_crowd,
        min_iou,
    )


def _accumulation_order(data: DetectionSet, evaluated: np.ndarray) -> np.ndarray:
    """``evaluated`` prediction rows sorted by class, descending score, image, then input
    order (which is rank order inside an image and class): pycocotools' accumulation order.

    Stable sorts, least significant key first (a lexsort, faster: integer keys are sorted
    by radix)."""
    rows = stable_sort_by(data.pred_image, evaluated)
    rows = rows[np.argsort(-data.pred_scores[rows], kind="stable")]
    return stable_sort_by(data.pred_class, rows)


def _outcome_flags(
    match: np.ndarray, gt_ignore: np.ndarray, pred_areas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pred_tp``, ``pred_fp`` (``(T, A, D)``) and ``pred_counted`` (``(A, D)``) of the
    matches ``(T, A, D)``, one area range at a time.

    Ignored (neither true nor false positive): matched to an ignored object, or unmatched
    and outside the area range.
    """
    num_thr, num_areas, num_preds = match.shape
    pred_tp = np.zeros(match.shape, bool)
    pred_fp = np.empty(match.shape, bool)
    pred_counted = np.zeros((num_areas, num_preds), bool)
    inside = ~_outside_area_ranges(pred_areas)  # (A, D)
    for t in range(num_thr):  # contiguous (D,) rows: no (T, A, D) temporary
        for a in range(num_areas):
            m = match[t, a]
            unmatched = m < 0
            np.logical_and(unmatched, inside[a], out=pred_fp[t, a])
            matched = np.flatnonzero(~unmatched)  # a true positive unless its object is ignored
            pred_tp[t, a, matched] = ~gt_ignore[a][m[matched]]
            pred_counted[a] |= pred_tp[t, a]
            pred_counted[a] |= pred_fp[t, a]
    return pred_tp, pred_fp, pred_counted


def select_objects(
    matches: CocoMatches,
    image_mask: np.ndarray | None,
    gt_mask: np.ndarray | None,
    pred_mask: np.ndarray | None,
) -> CocoMatches:
    """The matches of an object-level slice, under the stored (whole-set) matching.

    Keeps the predictions of the selected images; a true positive stays one only if its
    ground-truth object is in ``gt_mask`` (else it is ignored: neither true nor false
    positive); a false positive stays one only if the prediction is in ``pred_mask``.

    Args:
        matches: output of :func:`match_coco`.
        image_mask: ``(I,)`` bool selected images, or None for all.
        gt_mask: ``(G,)`` bool ground-truth rows in the slice, or None for all.
        pred_mask: ``(P,)`` bool prediction rows (of the ``DetectionSet``) whose unmatched
            predictions count, or None for all.
    """
    if image_mask is None:
        cols = np.arange(len(matches.pred_rows))
    else:
        cols = np.flatnonzero(np.asarray(image_mask, bool)[matches.pred_image])
    tp, fp = matches.pred_tp[:, :, cols], matches.pred_fp[:, :, cols]
    if gt_mask is not None and len(gt_mask):
        # A true positive always has a partner (>= 0); -1 rows read gt_mask[0] and are
        # masked out by `tp` itself.
        tp = tp & np.asarray(gt_mask, bool)[np.maximum(matches.pred_gt[:, :, cols], 0)]
    if pred_mask is not None:
        fp = fp & np.asarray(pred_mask, bool)[matches.pred_rows[cols]][None, None, :]
    return replace(
        matches,
        pred_rows=matches.pred_rows[cols],
        pred_class=matches.pred_class[cols],
        pred_image=matches.pred_image[cols],
        pred_rank=matches.pred_rank[cols],
        pred_tp=tp,
        pred_fp=fp,
        pred_counted=(tp | fp).any(axis=0),
        pred_gt=matches.pred_gt[:, :, cols],
    )


def accumulate(
    matches: CocoMatches,
    image_mask: np.ndarray | None = None,
    gt_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
    every_curve: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall arrays (``COCOeval.accumulate``) over the selected images.

    Every (class, area range, max detections) curve is computed in one vectorised pass:
    the curves' predictions are laid end to end in a ``(N, T)`` table, with segmented
    cumulative sums, an exact integer search for the recall thresholds and block maxima
    for the interpolated precision. Predictions that are neither true nor false positives
    (ignored, or beyond a max-detections cut) are left out: they never change a curve.
    Only the selected images' columns are visited: an image slice costs its own size.

    Args:
        matches: output of :func:`match_coco`.
        image_mask: ``(I,)`` bool images to include (default: all). Evaluating a subset this
            way gives the same numbers as running pycocotools on those images alone.
        gt_mask, pred_mask: an object-level selection (see :func:`select_objects`):
            ``(G,)`` ground truth in the slice, ``(P,)`` predictions whose false positives
            count. Default: every object of the selected images.
        every_curve: False to compute precision only at the largest max detections (all
            that :func:`summarize` and :func:`per_class_metrics` read; the smaller cuts get
            their recall, counted without a curve, and precision -1). About three times
            less work.

    Returns:
        ``precision`` ``[T, R, K, A, M]`` and ``recall`` ``[T, K, A, M]``, -1 where undefined.
    """
    num_thr, num_rec = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    num_classes, num_areas, num_max = matches.num_classes, len(AREA_RANGES), len(MAX_DETS)
    precision = -np.ones((num_thr, num_rec, num_classes, num_areas, num_max))
    recall = -np.ones((num_thr, num_classes, num_areas, num_max))

    columns = None  # every column of `matches`
    if gt_mask is not None or pred_mask is not None:
        matches = select_objects(matches, image_mask, gt_mask, pred_mask)
    elif image_mask is not None:
        columns = np.flatnonzero(np.asarray(image_mask, bool)[matches.pred_image])
    num_positive = _positives(matches, image_mask, gt_mask)
    cuts = range(num_max) if every_curve else (num_max - 1,)
    curves = _curves(matches, columns, num_positive, cuts)
    if curves is None:
        return precision, recall
    per_row, row_first, tp_precision, found_below = _true_positive_precisions(matches, curves)
    npig = num_positive[curves.k, curves.a]  # (C,)
    found_tp = per_row.reshape(num_thr, len(curves.k))
    recall[:, curves.k, curves.a, curves.m] = found_tp / npig[None, :]
    for m, found in found_below.items():  # the smaller cuts' recall, without their curves
        recall[:, curves.k, curves.a, m] = found.reshape(num_thr, -1) / npig[None, :]
    result = interpolated_precision(per_row, row_first, tp_precision, npig)
    precision[:, :, curves.k, curves.a, curves.m] = result.transpose(0, 2, 1)
    return precision, recall


def _positives(
    matches: CocoMatches, image_mask: np.ndarray | None, gt_mask: np.ndarray | None
) -> np.ndarray:
    """``(K, A)`` the number of ground-truth objects to find in the selection (curves exist
    only where it is > 0)."""
    gt_class, gt_counted = matches.gt_class, matches.gt_counted
    if image_mask is not None or gt_mask is not None:
        gt_keep = np.ones(len(gt_class), bool)
        if image_mask is not None:
            gt_keep &= np.asarray(image_mask, bool)[matches.gt_image]
        if gt_mask is not None:
            gt_keep &= np.asarray(gt_mask, bool)
        gt_class, gt_counted = gt_class[gt_keep], gt_counted[:, gt_keep]
    return np.stack(
        [
            np.bincount(gt_class[gt_counted[a]], minlength=matches.num_classes)
            for a in range(len(AREA_RANGES))
        ],
        axis=1,
    )


class _Curves(NamedTuple):
    """The ``C`` precision/recall curves of :func:`accumulate`, their ``N`` predictions laid
    end to end.

    Attributes:
        k, a, m: ``(C,)`` class, area range and max-detections index of each curve.
        preds: ``(N,)`` the curves' predictions (columns of ``CocoMatches``), in order.
        starts: ``(C,)`` position of each curve's first prediction in ``preds``.
        curve_of: ``(N,)`` curve of each position.
        smaller_cuts: max-detections indices below the curves' own whose recall is
            counted from the curves' true positives (their ranks), with no curve of their own.
    """

    k: np.ndarray
    a: np.ndarray
    m: np.ndarray
    preds: np.ndarray
    starts: np.ndarray
    curve_of: np.ndarray
    smaller_cuts: tuple[int, ...]


def _curves(
    matches: CocoMatches, columns: np.ndarray | None, num_positive: np.ndarray, cuts
) -> _Curves | None:
    """One curve per (class, area, max dets in ``cuts``) with objects to find: its
    predictions (among ``columns``, default all), in accumulation order."""
    num_classes = matches.num_classes
    curve_k, curve_a, curve_m, curve_len, curve_preds = [], [], [], [], []
    for a in range(len(AREA_RANGES)):
        if columns is None:
            preds = np.flatnonzero(matches.pred_counted[a])
        else:
            preds = columns[matches.pred_counted[a, columns]]
        with_gt = num_positive[matches.pred_class[preds], a] > 0
        preds = preds[with_gt]
        classes = np.flatnonzero(num_positive[:, a] > 0)
        for m in cuts:
            if MAX_DETS[m] < MAX_DETS[-1]:
                preds_m = preds[matches.pred_rank[preds] < MAX_DETS[m]]
            else:
                preds_m = preds
            lengths = np.bincount(matches.pred_class[preds_m], minlength=num_classes)[classes]
            curve_k.append(classes)
            curve_a.append(np.full(len(classes), a))
            curve_m.append(np.full(len(classes), m))
            curve_len.append(lengths)
            curve_preds.append(preds_m)
    if not curve_k:
        return None
    curve_k, curve_a, curve_m = map(np.concatenate, (curve_k, curve_a, curve_m))
    lengths, preds = np.concatenate(curve_len), np.concatenate(curve_preds)
    starts = np.cumsum(lengths) - lengths
    curve_of = np.repeat(np.arange(len(curve_k)), lengths)
    smaller = () if len(cuts) > 1 else tuple(range(cuts[0]))
    return _Curves(curve_k, curve_a, curve_m, preds, starts, curve_of, smaller)


def _true_positive_precisions(  # long: one threshold's curves per pass, commented
    matches: CocoMatches, curves: _Curves
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """The precision at every true positive of every curve and threshold.

    Returns:
        ``per_row`` ``(T*C,)`` true positives of each (threshold, curve) row, ``row_first``
        ``(T*C,)`` the position of each row's first one in ``tp_precision``,
        ``tp_precision`` the precisions, grouped by row, and for each of
        ``curves.smaller_cuts`` the ``(T*C,)`` true positives ranked under that cut.
    """
    num_thr, num_curves = len(IOU_THRESHOLDS), len(curves.k)
    starts, curve_of = curves.starts, curves.curve_of
    # The curves' predictions laid end to end, as columns of the (A * D) flags.
    num_preds = matches.pred_tp.shape[2]
    columns = curves.a[curve_of] * num_preds + curves.preds
    ranks = matches.pred_rank[curves.preds] if curves.smaller_cuts else None
    inner = starts > 0
    per_row, tp_precision = [], []
    below = {m: [] for m in curves.smaller_cuts}
    count_type = np.int32 if len(columns) < 2**31 else np.int64
    for t in range(num_thr):  # one threshold at a time: (N,) temporaries, not (T, N)
        tp, counted = _flags_at(matches, t, columns)
        # Predictions counted (tp or fp) up to each position, per curve.
        seen = np.cumsum(counted, dtype=count_type)
        del counted
        seen_before = np.zeros(num_curves, dtype=count_type)
        seen_before[inner] = seen[starts[inner] - 1]
        # A curve's interpolated precision max(precision[i:]) is reached at position i or
        # at a true positive (precision only falls at false positives), and pycocotools'
        # recall lookup lands on a true positive. So only true positives are visited: for
        # the v-th one of a curve, precision = v / (predictions counted so far + eps).
        tp_pos = np.flatnonzero(tp)
        del tp
        tp_curve = curve_of[tp_pos]  # non-decreasing
        count = np.bincount(tp_curve, minlength=num_curves)
        ordinal = (np.arange(len(tp_pos)) - (np.cumsum(count) - count)[tp_curve] + 1).astype(
            np.float64
        )
        counted_so_far = seen[tp_pos] - seen_before[tp_curve]
        tp_precision.append(ordinal / (counted_so_far.astype(np.float64) + np.spacing(1)))
        per_row.append(count)
        for m in curves.smaller_cuts:
            under = ranks[tp_pos] < MAX_DETS[m]
            below[m].append(np.bincount(tp_curve[under], minlength=num_curves))
    per_row = np.concatenate(per_row)
    row_first = np.cumsum(per_row) - per_row
    below = {m: np.concatenate(counts) for m, counts in below.items()}
    return per_row, row_first, np.concatenate(tp_precision), below


def _flags_at(matches: CocoMatches, t: int, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True positives and counted predictions (true or false positives) at threshold ``t``
    of the ``columns`` of the ``(A * D)`` flags. A few columns (a slice's) are gathered from
    each flag array; many (a whole run's, several times each) from one combined code, built
    once (one gather instead of two: 10-20 s less at 3.7M predictions)."""
    tp_flags, fp_flags = matches.pred_tp[t].reshape(-1), matches.pred_fp[t].reshape(-1)
    if len(columns) < len(tp_flags) // 2:
        tp = tp_flags[columns]
        return tp, fp_flags[columns] | tp
    code = fp_flags.view(np.uint8) << 1  # 1: true positive, 2: false positive (never both)
    code |= tp_flags.view(np.uint8)
    code = code[columns]
    return code == 1, code.astype(bool)


def interpolated_precision(
    per_row: np.ndarray, row_first: np.ndarray, tp_precision: np.ndarray, npig: np.ndarray
) -> np.ndarray:
    """``(T, C, R)`` interpolated precision of each curve at each recall threshold (0 where
    the curve does not reach it), from :func:`_true_positive_precisions`; ``npig`` is each
    curve's number of objects to find."""
    num_thr, num_rec, num_curves = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(npig)
    # Recall threshold r is first reached at the v_r-th true positive (exact integer test,
    # see _smallest_counts); precision there is the maximum over true positives >= v_r.
    needed = np.maximum(_smallest_counts(npig), 1)  # (C, R)
    needed = np.broadcast_to(needed, (num_thr, num_curves, num_rec)).reshape(-1, num_rec)
    found = needed <= per_row[:, None]  # (T*C, R)
    row_end = (row_first + per_row)[:, None]
    lookup = np.minimum(row_first[:, None] + needed - 1, row_end)
    bounds = np.concatenate([lookup, row_end], axis=1).ravel()
    values = np.append(tp_precision, 0.0)
    blocks = np.maximum.reduceat(values, bounds).reshape(-1, num_rec + 1)[:, :-1]
    blocks[~found] = -1.0
    envelope = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1]
    return np.where(found, envelope, 0.0).reshape(num_thr, num_curves, num_rec)


def _smallest_counts(num_positive: np.ndarray) -> np.ndarray:
    """``(C, R)``: for each count ``n``, the smallest integer ``v`` with ``v / n >= r``.

    Uses the same float division as pycocotools' ``tp / npig``, so comparisons are exact.
    """
    n = num_positive[:, None].astype(np.float64)
    guess = np.ceil(RECALL_THRESHOLDS[None, :] * n)
    out = guess + 1
    for candidate in (guess + 1, guess, guess - 1):
        ok = (candidate >= 0) & (candidate / n >= RECALL_THRESHOLDS[None, :])
        out = np.where(ok, candidate, out)
    return out.astype(np.int64)


def _mean_defined(values: np.ndarray) -> float | None:
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else None


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float | None]:
    """The 12 ``COCOeval.summarize`` statistics; None where pycocotools prints -1."""
    area = {name: i for i, (name, _, _) in enumerate(AREA_RANGES)}
    max_index = {m: i for i, m in enumerate(MAX_DETS)}
    t50 = np.where(IOU_THRESHOLDS == 0.5)[0]
    t75 = np.where(IOU_THRESHOLDS == 0.75)[0]
    every_t = np.arange(len(IOU_THRESHOLDS))

    def ap(thr: np.ndarray, area_name: str) -> float | None:
        return _mean_defined(precision[thr][:, :, :, area[area_name], max_index[100]])

    def ar(area_name: str, max_dets: int) -> float | None:
        return _mean_defined(recall[:, :, area[area_name], max_index[max_dets]])

    values = (
        ap(every_t, "all"),
        ap(t50, "all"),
        ap(t75, "all"),
        ap(every_t, "small"),
        ap(every_t, "medium"),
        ap(every_t, "large"),
        ar("all", 1),
        ar("all", 10),
        ar("all", 100),
        ar("small", 100),
        ar("medium", 100),
        ar("large", 100),
    )
    return dict(zip(STAT_NAMES, values))


def per_class_metrics(precision: np.ndarray, recall: np.ndarray) -> list[dict[str, float | None]]:
    """Per class: AP@[.5:.95], AP50, AP75 and AR@100 over all areas; None without ground truth."""
    t50 = int(np.where(IOU_THRESHOLDS == 0.5)[0][0])
    t75 = int(np.where(IOU_THRESHOLDS == 0.75)[0][0])
    all_area, max100 = 0, len(MAX_DETS) - 1
    out = []
    for k in range(precision.shape[2]):
        p = precision[:, :, k, all_area, max100]
        out.append(
            {
                "AP": _mean_defined(p),
                "AP50": _mean_defined(p[t50]),
                "AP75": _mean_defined(p[t75]),
                "AR100": _mean_defined(recall[:, k, all_area, max100]),
            }
        )
    return out
