"""Operating points: precision, recall and F1 at every score threshold, from a match table.

Two things are derived from a built :class:`~.match_table.MatchTable`, without matching the
whole set again:

* :func:`operating_points`: per class, precision, recall and F1 as functions of the score
  threshold, one point per distinct score (descending), and the best-F1 threshold.
* :func:`rescore` (and :func:`outcomes_at`): the 4-way confusion matrix and the per-class
  counts at any score threshold, global or per class.

Why this is exact
-----------------
Greedy matching processes the predictions of an (image, class) group by descending score
(ties in input order), and what a prediction gets depends only on the predictions processed
before it. Keeping the predictions with ``score >= t`` keeps a *prefix* of every group's
order, so the matching of the kept predictions is the stored matching restricted to them.
pycocotools' cut to the top 100 detections per image and class is a prefix too, so the
top 100 of the kept predictions are the stored top 100 with ``score >= t``.

* Precision and recall at threshold ``t`` are therefore running counts over the stored
  matching: ``precision = TP / kept``, where ``kept`` counts the predictions at or above
  ``t`` (of the top 100 per image and class) that are true or false positives, so that
  predictions absorbed by crowd regions (pycocotools' ignored detections) are left out;
  ``recall = TP / ground truth`` (non-crowd, area range "all"). These are exactly the
  counts pycocotools reports (``evalImgs`` at that IoU threshold, area "all",
  ``maxDet`` 100) when it is run from scratch on the detections with ``score >= t``.
* The confusion matrix at threshold ``t`` equals the one of
  ``MatchTable.build(data, iou, score_threshold=t)``: its class-aware step (the expensive
  one: every same-class IoU) is the stored one restricted to ``score >= t``; the two cheap
  steps after it (cross-class matching of what is left, duplicates) are run again, with
  IoUs computed from the stored boxes for those leftover pairs only. Below the table's own
  score threshold the table holds no matching: the predictions between ``t`` and it are
  matched then, continuing the stored greedy matching (their IoUs are computed; nothing
  already matched is matched again).

The IoU of the operating points
-------------------------------
The table's IoU threshold (or the ``iou`` argument). When it is one of COCO's ten
thresholds (0.5, 0.55, ... 0.95, within 1e-9) the stored COCO matching of that threshold is
used, which is pycocotools' (its thresholds are ``np.linspace`` values: 0.7 is evaluated as
``0.7000000000000001``). At any other IoU, the table's own 4-way matching (step 1, the same
greedy rule) is used. That path is exact too, with one theoretical difference: it treats
ground truth whose area is outside COCO's "all" range ``[0, 1e10]`` like any other object
while matching (pycocotools matches it last, as ignored); both count it out of recall and
its predictions as ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from detection_debugger.evaluation.coco_metrics import AREA_RANGES, IOU_THRESHOLDS
from detection_debugger.evaluation.confusion import (
    ConfusionMatrix,
    ObjectOutcomes,
    Outcome,
    complete_outcomes,
    confusion_matrix,
)
from detection_debugger.evaluation.detections import InputError
from detection_debugger.evaluation.match_table import MatchTable
from detection_debugger.evaluation.matching import (
    CandidatePairs,
    candidate_pairs,
    greedy_match,
    rank_within_groups,
)

__all__ = ["ClassOperatingPoints", "operating_points", "outcomes_at", "rescore"]

_COCO_IOU_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ClassOperatingPoints:
    """Precision, recall and F1 of one class as functions of the score threshold.

    Point ``i`` is the threshold ``score[i]``: every prediction with ``score >= score[i]``
    is kept. Scores are the distinct scores of the class's counted predictions (true or
    false positives), descending.

    Attributes:
        name: the class.
        iou: the IoU threshold of the matching.
        num_gt: ground truth to find (non-crowd, in the selection).
        score: ``(N,)`` float64 thresholds, descending.
        tp: ``(N,)`` int64 true positives kept at each threshold.
        kept: ``(N,)`` int64 predictions kept and counted (true or false positives).
    """

    name: str
    iou: float
    num_gt: int
    score: np.ndarray
    tp: np.ndarray
    kept: np.ndarray

    @property
    def precision(self) -> np.ndarray:
        """``(N,)`` ``tp / kept``."""
        return self.tp / self.kept

    @property
    def recall(self) -> np.ndarray:
        """``(N,)`` ``tp / num_gt``; NaN when the class has no ground truth."""
        if self.num_gt == 0:
            return np.full(len(self.tp), np.nan)
        return self.tp / self.num_gt

    @property
    def f1(self) -> np.ndarray:
        """``(N,)`` ``2 tp / (kept + num_gt)`` (= 2PR / (P + R)); NaN without ground truth."""
        if self.num_gt == 0:
            return np.full(len(self.tp), np.nan)
        return 2.0 * self.tp / (self.kept + self.num_gt)

    @property
    def best_f1(self) -> dict[str, float] | None:
        """``{"score", "precision", "recall", "f1"}`` at the highest F1 (ties: the higher
        score); None without ground truth or predictions."""
        if self.num_gt == 0 or len(self.score) == 0:
            return None
        f1 = self.f1
        i = int(np.argmax(f1))  # first maximum = highest score
        return {
            "score": float(self.score[i]),
            "precision": float(self.tp[i] / self.kept[i]),
            "recall": float(self.tp[i] / self.num_gt),
            "f1": float(f1[i]),
        }

    def at(self, threshold: float) -> dict[str, float | int]:
        """Counts and rates when predictions with ``score >= threshold`` are kept.

        Returns ``{"tp", "kept", "precision", "recall", "f1"}``; precision is NaN when
        nothing is kept, recall and F1 are NaN without ground truth.
        """
        i = int(np.searchsorted(-self.score, -float(threshold), side="right")) - 1
        tp, kept = (int(self.tp[i]), int(self.kept[i])) if i >= 0 else (0, 0)
        n = self.num_gt
        return {
            "tp": tp,
            "kept": kept,
            "precision": tp / kept if kept else math.nan,
            "recall": tp / n if n else math.nan,
            "f1": 2.0 * tp / (kept + n) if n else math.nan,
        }

    def to_dict(self) -> dict:
        """``{"best_f1": {...} | None, "curve": {"score", "precision", "recall"}}``
        (JSON-ready: undefined recalls are None)."""

        def values(array: np.ndarray) -> list:
            return [None if math.isnan(v) else v for v in array.tolist()]

        return {
            "best_f1": self.best_f1,
            "curve": {
                "score": self.score.tolist(),
                "precision": self.precision.tolist(),
                "recall": values(self.recall),
            },
        }


def operating_points(
    table: MatchTable,
    image_mask: np.ndarray | None = None,
    gt_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
    iou: float | None = None,
) -> dict[str, ClassOperatingPoints]:
    """Per class, precision/recall/F1 at every score threshold (see the module docstring).

    Args:
        table: a built match table.
        image_mask: ``(I,)`` bool images to count (default: all).
        gt_mask, pred_mask: an object-level slice, with the rule of
            :func:`~.coco_metrics.select_objects`: a true positive counts only if its ground
            truth is in ``gt_mask`` (else it is ignored), a false positive only if the
            prediction is in ``pred_mask``.
        iou: the IoU threshold (default: the table's). Must be one of COCO's thresholds or
            the table's own IoU.

    Returns:
        ``{class name: ClassOperatingPoints}`` for every class, in class-id order.
    """
    data = table.data
    own_iou = float(table.outcomes.iou_threshold)
    iou = own_iou if iou is None else float(iou)
    coco_index = np.flatnonzero(np.abs(IOU_THRESHOLDS - iou) <= _COCO_IOU_TOLERANCE)
    if len(coco_index):
        rows, tp, fp, gt_counted = _from_coco(table, int(coco_index[0]), gt_mask, pred_mask)
    elif iou == own_iou:
        rows, tp, fp, gt_counted = _from_outcomes(table, gt_mask, pred_mask)
    else:
        raise InputError(
            f"operating points at IoU {iou}: the table was matched at COCO's IoU thresholds "
            f"and at {own_iou}; evaluate again at this IoU"
        )
    if image_mask is not None:
        image_mask = np.asarray(image_mask, bool)
        in_images = image_mask[data.pred_image[rows]]
        tp, fp = tp & in_images, fp & in_images
        gt_counted = gt_counted & image_mask[data.gt_image]
    if gt_mask is not None:
        gt_counted = gt_counted & np.asarray(gt_mask, bool)
    counted = tp | fp
    rows, tp = rows[counted], tp[counted]
    num_classes = data.num_classes
    num_gt = np.bincount(data.gt_class[gt_counted], minlength=num_classes)
    return _curves(table, rows, tp, num_gt, iou)


def _from_coco(table: MatchTable, t: int, gt_mask, pred_mask):
    """Predictions in accumulation order and their tp/fp flags at COCO threshold ``t``,
    area "all" (the stored pycocotools matching)."""
    coco = table.coco
    tp, fp = coco.pred_tp[t, 0], coco.pred_fp[t, 0]
    if gt_mask is not None and len(gt_mask):
        tp = tp & np.asarray(gt_mask, bool)[np.maximum(coco.pred_gt[t, 0], 0)]
    if pred_mask is not None:
        fp = fp & np.asarray(pred_mask, bool)[coco.pred_rows]
    return coco.pred_rows, tp, fp, coco.gt_counted[0]


def _from_outcomes(table: MatchTable, gt_mask, pred_mask):
    """The same as :func:`_from_coco` at the table's own IoU, from its 4-way matching."""
    data = table.data
    match = _class_aware_match(table, np.ones(len(data.pred_ids), bool))
    # The COCO table holds the top 100 per image and class, in accumulation order.
    rows = table.coco.pred_rows
    match = match[rows]
    _, low, high = AREA_RANGES[0]
    gt_ignored = data.gt_crowd | (data.gt_areas < low) | (data.gt_areas > high)
    pred_areas = data.pred_areas[rows]
    pred_outside = (pred_areas < low) | (pred_areas > high)
    matched = match >= 0
    partner = np.maximum(match, 0)
    tp = matched & ~gt_ignored[partner] if len(gt_ignored) else matched
    fp = ~matched & ~pred_outside
    if gt_mask is not None and len(gt_mask):
        tp &= np.asarray(gt_mask, bool)[partner]
    if pred_mask is not None:
        fp &= np.asarray(pred_mask, bool)[rows]
    return rows, tp, fp, ~gt_ignored


def _curves(table: MatchTable, rows, tp, num_gt, iou) -> dict[str, ClassOperatingPoints]:
    """Curves from the counted predictions ``rows`` (sorted by class, then descending score)."""
    data = table.data
    num_classes = data.num_classes
    classes = data.pred_class[rows]
    scores = data.pred_scores[rows]
    tp_cum = np.cumsum(tp, dtype=np.int64)
    # The last prediction of each (class, score) run is one point.
    last = np.zeros(0, dtype=np.int64)
    if len(rows):
        last = np.flatnonzero(
            np.r_[(classes[1:] != classes[:-1]) | (scores[1:] != scores[:-1]), True]
        )
    class_start = np.searchsorted(classes, np.arange(num_classes + 1))
    tp_before = np.r_[0, tp_cum][class_start]
    point_class = classes[last]
    point_start = np.searchsorted(point_class, np.arange(num_classes + 1))
    point_tp = tp_cum[last] - tp_before[point_class]
    point_kept = last + 1 - class_start[point_class]
    point_score = scores[last]
    out = {}
    for k, name in enumerate(data.class_names):
        lo, hi = point_start[k], point_start[k + 1]
        out[name] = ClassOperatingPoints(
            name=name,
            iou=iou,
            num_gt=int(num_gt[k]),
            score=point_score[lo:hi],
            tp=point_tp[lo:hi],
            kept=point_kept[lo:hi],
        )
    return out


# ---------------------------------------------------------------------- re-scoring


def _class_thresholds(table: MatchTable, thresholds) -> np.ndarray:
    """``(K,)`` score threshold of each class; classes missing from a mapping keep the
    table's own threshold."""
    data = table.data
    if isinstance(thresholds, Mapping):
        per_class = np.full(data.num_classes, float(table.outcomes.score_threshold))
        index = {name: k for k, name in enumerate(data.class_names)}
        for name, value in thresholds.items():
            if name not in index:
                raise InputError(f"score threshold for unknown class {name!r}")
            per_class[index[name]] = float(value)
    else:
        per_class = np.full(data.num_classes, float(thresholds))
    if not np.isfinite(per_class).all():
        raise InputError("score thresholds must be finite numbers")
    return per_class


def _class_aware_match(table: MatchTable, keep: np.ndarray) -> np.ndarray:
    """``(P,)`` ground-truth row of each kept prediction under the class-aware greedy step
    (crowd regions included), -1 when unmatched or not kept.

    ``keep`` must keep, in every (image, class) group, the predictions at or above a score
    threshold. Those at or above the table's own threshold reuse the stored matching; the
    others continue it (only their IoUs are computed).
    """
    data, stored = table.data, table.outcomes
    iou = float(stored.iou_threshold)
    in_table = data.pred_scores >= stored.score_threshold
    step_one = np.isin(stored.pred_outcome, (Outcome.TP, Outcome.IGNORED))
    match = np.where(keep & in_table & step_one, stored.pred_match, -1)
    new = np.flatnonzero(keep & ~in_table)
    if len(new) == 0:
        return match
    num_classes, num_gt = data.num_classes, len(data.gt_ids)
    crowd = data.gt_crowd
    taken = np.zeros(num_gt, bool)
    taken[match[match >= 0]] = True
    taken &= ~crowd
    pred_group = data.pred_image * num_classes + data.pred_class
    pairs = candidate_pairs(
        new,
        pred_group[new],
        data.pred_boxes[new],
        np.arange(num_gt),
        data.gt_image * num_classes + data.gt_class,
        data.gt_boxes,
        crowd,
        iou,
    )
    # Objects the stored matching took are unavailable to the later predictions.
    free = ~taken[pairs.gt]
    pairs = CandidatePairs(pred=pairs.pred[free], gt=pairs.gt[free], iou=pairs.iou[free])
    rank = np.zeros(len(data.pred_ids), dtype=np.int64)
    rank[new] = rank_within_groups(pred_group[new], data.pred_scores[new])[1]
    more = greedy_match(pairs, rank, crowd[None, :], crowd, np.array([iou]))[0, 0]
    match[new] = more[new]
    return match


def outcomes_at(table: MatchTable, thresholds: float | Mapping[str, float]) -> ObjectOutcomes:
    """Every object's 4-way outcome at other score thresholds, at the table's IoU.

    Equal, array for array, to ``match_outcomes(data, iou, t)`` for a global threshold ``t``
    (see the module docstring for why). With per-class thresholds (``{class name: t}``;
    classes left out keep the table's threshold) a prediction is kept when its score is at
    or above its class's threshold; ``score_threshold`` of the result is then the lowest of
    them, and ``pred_outcome`` (``BELOW_THRESHOLD``) tells which predictions were left out.
    """
    data, stored = table.data, table.outcomes
    iou = float(stored.iou_threshold)
    per_class = _class_thresholds(table, thresholds)
    keep = data.pred_scores >= per_class[data.pred_class]
    first = _class_aware_match(table, keep)
    lowest = float(per_class.min()) if len(per_class) else stored.score_threshold
    return complete_outcomes(data, keep, first, iou, lowest)


def rescore(
    table: MatchTable,
    thresholds: float | Mapping[str, float],
    image_mask: np.ndarray | None = None,
    gt_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
) -> tuple[ConfusionMatrix, dict[str, dict[str, int]]]:
    """The confusion matrix and per-class counts at other score thresholds.

    For a global threshold ``t`` both equal those of
    ``MatchTable.build(data, iou, score_threshold=t).evaluate(image_mask, gt_mask,
    pred_mask)`` exactly; see :func:`outcomes_at` for per-class thresholds.

    Returns:
        ``(confusion, counts)``: ``counts[class] = {"num_gt", "num_pred", "tp", "fn",
        "mispredicted", "fp", "duplicate"}`` with the meaning of
        :class:`~.results.ClassMetrics`.
    """
    data = table.data
    outcomes = outcomes_at(table, thresholds)
    confusion = confusion_matrix(data, outcomes, image_mask, gt_mask, pred_mask)
    gt_keep, pred_keep = replace(table, outcomes=outcomes).selection(image_mask, gt_mask, pred_mask)
    num_classes = data.num_classes
    num_gt = np.bincount(data.gt_class[gt_keep & ~data.gt_crowd], minlength=num_classes)
    kept = pred_keep & (outcomes.pred_outcome != Outcome.BELOW_THRESHOLD)
    num_pred = np.bincount(data.pred_class[kept], minlength=num_classes)
    duplicate = np.bincount(
        data.pred_class[pred_keep & (outcomes.pred_outcome == Outcome.DUPLICATE)],
        minlength=num_classes,
    )
    m = confusion.matrix
    counts = {
        name: {
            "num_gt": int(num_gt[k]),
            "num_pred": int(num_pred[k]),
            "tp": int(m[k, k]),
            "fn": int(m[k, -1]),
            "mispredicted": int(m[k, :-1].sum() - m[k, k]),
            "fp": int(m[-1, k]),
            "duplicate": int(duplicate[k]),
        }
        for k, name in enumerate(data.class_names)
    }
    return confusion, counts
