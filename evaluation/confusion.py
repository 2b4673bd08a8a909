"""The 4-way detection confusion matrix and the per-object outcomes behind it.

At one IoU threshold and one score threshold, every prediction with ``score >= threshold``
and every ground-truth object gets exactly one outcome, in three steps:

1. class-aware greedy matching, as pycocotools (by descending score; best IoU >= threshold;
   crowd regions absorb predictions, which are then ``ignored``): pairs are ``tp``;
2. among the predictions and (non-crowd) ground truth still unmatched, greedy matching across
   classes inside each image (by descending score, best IoU >= threshold): these pairs are
   ``mispredicted`` (ground truth of class A found as class B);
3. ground truth still unmatched is ``fn`` (undetected); predictions still unmatched are ``fp``
   (ghosts), and ``duplicate`` when they overlap (IoU >= threshold) a ground-truth object of
   their own class that another, higher-scored prediction already found (TIDE's definition).

The matrix has ``K + 1`` rows (ground-truth classes, then ``background``) and ``K + 1``
columns (predicted classes, then ``background``): ``tp`` on the diagonal, ``mispredicted`` off
it, ``fn`` in the background column, ``fp`` and ``duplicate`` in the background row. Row ``k``
sums to the number of non-crowd ground-truth objects of class ``k``; column ``k`` sums to the
predictions of class ``k`` at or above the score threshold, less those ignored in crowds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet
from detection_debugger.evaluation.matching import (
    CandidatePairs,
    ClassAwarePairs,
    candidate_pairs,
    greedy_match,
    pair_iou,
    rank_within_groups,
)

__all__ = [
    "BACKGROUND",
    "ConfusionMatrix",
    "ObjectOutcomes",
    "Outcome",
    "confusion_matrix",
    "match_outcomes",
]

BACKGROUND = "background"


class Outcome(IntEnum):
    """What happened to one object. ``str(outcome)`` is the name stored in datasets."""

    TP = 0
    FN = 1
    MISPREDICTED = 2
    FP = 3
    DUPLICATE = 4
    IGNORED = 5  # crowd ground truth, or a prediction absorbed by a crowd region
    BELOW_THRESHOLD = 6  # a prediction under the score threshold: not counted

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ObjectOutcomes:
    """Outcome of every object; rows are those of the ``DetectionSet``.

    Attributes:
        gt_outcome: ``(G,)`` int8 :class:`Outcome` (TP, MISPREDICTED, FN or IGNORED).
        gt_match: ``(G,)`` int64 prediction row it was matched to (TP, MISPREDICTED), else -1.
        gt_iou: ``(G,)`` float64 IoU with that prediction, NaN when unmatched.
        pred_outcome: ``(P,)`` int8 :class:`Outcome`.
        pred_match: ``(P,)`` int64 ground-truth row: the matched object (TP, MISPREDICTED),
            the crowd region (IGNORED) or the already-found object (DUPLICATE); else -1.
        pred_iou: ``(P,)`` float64 IoU with ``pred_match``, NaN when there is none.
        iou_threshold: the IoU threshold used.
        score_threshold: the score threshold used.
    """

    gt_outcome: np.ndarray
    gt_match: np.ndarray
    gt_iou: np.ndarray
    pred_outcome: np.ndarray
    pred_match: np.ndarray
    pred_iou: np.ndarray
    iou_threshold: float
    score_threshold: float


@dataclass(frozen=True)
class ConfusionMatrix:
    """``matrix[i, j]``: objects of ground-truth label ``labels[i]`` predicted as ``labels[j]``.

    ``labels`` are the classes then ``background``; ``matrix`` is ``(K + 1, K + 1)`` int64.
    """

    labels: tuple[str, ...]
    matrix: np.ndarray

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> ConfusionMatrix:
        return cls(labels=tuple(d["labels"]), matrix=np.asarray(d["matrix"], dtype=np.int64))


def match_outcomes(
    data: DetectionSet,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.0,
    shared: ClassAwarePairs | None = None,
) -> ObjectOutcomes:
    """Assigns every object its outcome (see the module docstring for the rules).

    ``shared``: the set's class-aware pairs and ranks when the caller has them (with a
    floor of at most ``iou_threshold``), so that they are not computed again.
    """
    num_classes = data.num_classes
    thresholds = np.array([iou_threshold], dtype=np.float64)
    keep = data.pred_scores >= score_threshold
    # 1. class-aware matching (crowd regions are ignored regions, as in pycocotools).
    if shared is not None and shared.min_iou <= iou_threshold:
        # A group's ranks order any subset of it: the kept predictions keep their order.
        rank, same_class = shared.rank, shared.subset(keep, iou_threshold)
    else:
        pred_group = data.pred_image * num_classes + data.pred_class
        active = np.flatnonzero(keep)
        rank = np.zeros(len(data.pred_ids), dtype=np.int64)
        rank[active] = rank_within_groups(pred_group[active], data.pred_scores[active])[1]
        same_class = candidate_pairs(
            active,
            pred_group[active],
            data.pred_boxes[active],
            np.arange(len(data.gt_ids)),
            data.gt_image * num_classes + data.gt_class,
            data.gt_boxes,
            data.gt_crowd,
            iou_threshold,
        )
    first = greedy_match(same_class, rank, data.gt_crowd[None, :], data.gt_crowd, thresholds)[0, 0]
    return complete_outcomes(data, keep, first, iou_threshold, score_threshold, same_class)


def complete_outcomes(
    data: DetectionSet,
    keep: np.ndarray,
    first: np.ndarray,
    iou_threshold: float,
    score_threshold: float,
    same_class: CandidatePairs | None = None,
) -> ObjectOutcomes:
    """The outcomes after the class-aware matching: rules 2 (cross-class) and 3 (duplicates).

    Args:
        keep: ``(P,)`` predictions counted (at or above their score threshold).
        first: ``(P,)`` ground-truth row the class-aware matching gave each prediction, -1.
        same_class: the class-aware candidate pairs when the caller has them (the duplicate
            rule then filters them instead of pairing ghosts and found objects again).
    """
    num_gt, num_pred = len(data.gt_ids), len(data.pred_ids)
    gt_outcome = np.where(data.gt_crowd, Outcome.IGNORED, Outcome.FN).astype(np.int8)
    gt_match = np.full(num_gt, -1, dtype=np.int64)
    pred_outcome = np.where(keep, Outcome.FP, Outcome.BELOW_THRESHOLD).astype(np.int8)
    pred_match = np.full(num_pred, -1, dtype=np.int64)
    found = np.flatnonzero(first >= 0)
    in_crowd = data.gt_crowd[first[found]]
    pred_match[found] = first[found]
    pred_outcome[found] = np.where(in_crowd, Outcome.IGNORED, Outcome.TP)
    tp_pred = found[~in_crowd]
    gt_outcome[first[tp_pred]] = Outcome.TP
    gt_match[first[tp_pred]] = tp_pred
    outcomes = (gt_outcome, gt_match, pred_outcome, pred_match)
    _match_across_classes(data, *outcomes, iou_threshold)
    _mark_duplicates(data, *outcomes, iou_threshold, same_class)
    pred_iou = np.full(num_pred, np.nan)
    has = np.flatnonzero(pred_match >= 0)
    pred_iou[has] = pair_iou(
        data.pred_boxes[has], data.gt_boxes[pred_match[has]], data.gt_crowd[pred_match[has]]
    )
    gt_iou = np.full(num_gt, np.nan)
    matched_gt = np.flatnonzero(gt_match >= 0)
    gt_iou[matched_gt] = pred_iou[gt_match[matched_gt]]
    return ObjectOutcomes(
        gt_outcome=gt_outcome,
        gt_match=gt_match,
        gt_iou=gt_iou,
        pred_outcome=pred_outcome,
        pred_match=pred_match,
        pred_iou=pred_iou,
        iou_threshold=float(iou_threshold),
        score_threshold=float(score_threshold),
    )


def _match_across_classes(data, gt_outcome, gt_match, pred_outcome, pred_match, iou) -> None:
    """Rule 2, in place: greedy matching across classes of what is left, inside each image."""
    left_pred = np.flatnonzero(pred_outcome == Outcome.FP)
    left_gt = np.flatnonzero(gt_outcome == Outcome.FN)
    rank = np.zeros(len(data.pred_ids), dtype=np.int64)
    rank[left_pred] = rank_within_groups(data.pred_image[left_pred], data.pred_scores[left_pred])[1]
    no_crowd = np.zeros(len(data.gt_ids), dtype=bool)
    cross = candidate_pairs(
        left_pred,
        data.pred_image[left_pred],
        data.pred_boxes[left_pred],
        left_gt,
        data.gt_image[left_gt],
        data.gt_boxes[left_gt],
        no_crowd[left_gt],
        iou,
    )
    second = greedy_match(cross, rank, no_crowd[None, :], no_crowd, np.array([iou]))[0, 0]
    swapped = np.flatnonzero(second >= 0)
    pred_match[swapped] = second[swapped]
    pred_outcome[swapped] = Outcome.MISPREDICTED
    gt_outcome[second[swapped]] = Outcome.MISPREDICTED
    gt_match[second[swapped]] = swapped


def _mark_duplicates(data, gt_outcome, gt_match, pred_outcome, pred_match, iou, same_class):
    """Rule 3, in place: a ghost on an object its class already found is a duplicate of the
    one it overlaps most (ties: the later object, in pair order)."""
    if same_class is None:
        ghosts = np.flatnonzero(pred_outcome == Outcome.FP)
        found_gt = np.flatnonzero(gt_outcome == Outcome.TP)
        pred_group = data.pred_image * data.num_classes + data.pred_class
        gt_group = data.gt_image * data.num_classes + data.gt_class
        no_crowd = np.zeros(len(found_gt), dtype=bool)
        dup = candidate_pairs(
            ghosts,
            pred_group[ghosts],
            data.pred_boxes[ghosts],
            found_gt,
            gt_group[found_gt],
            data.gt_boxes[found_gt],
            no_crowd,
            iou,
        )
        dup_pred, dup_gt, dup_iou = dup.pred, dup.gt, dup.iou
    else:
        is_duplicate = (pred_outcome[same_class.pred] == Outcome.FP) & (
            gt_outcome[same_class.gt] == Outcome.TP
        )
        dup_pred = same_class.pred[is_duplicate]
        dup_gt, dup_iou = same_class.gt[is_duplicate], same_class.iou[is_duplicate]
    if not len(dup_pred):
        return
    best = np.lexsort((dup_iou, dup_pred))  # per prediction, highest IoU last
    last = np.r_[dup_pred[best][1:] != dup_pred[best][:-1], True]
    chosen = best[last]
    pred_outcome[dup_pred[chosen]] = Outcome.DUPLICATE
    pred_match[dup_pred[chosen]] = dup_gt[chosen]


def confusion_matrix(
    data: DetectionSet,
    outcomes: ObjectOutcomes,
    image_mask: np.ndarray | None = None,
    gt_mask: np.ndarray | None = None,
    pred_mask: np.ndarray | None = None,
) -> ConfusionMatrix:
    """Counts the outcomes of the selected objects (default: all) into the 4-way matrix.

    Args:
        image_mask: ``(I,)`` bool images to count (default: all).
        gt_mask: ``(G,)`` bool ground truth in the slice; a pair (true positive or
            misprediction) counts only when its ground-truth object does.
        pred_mask: ``(P,)`` bool predictions whose ghosts (fp, duplicate) count.
    """
    num_classes = data.num_classes
    background = num_classes
    gt_keep = np.ones(len(data.gt_ids), bool)
    pred_keep = np.ones(len(data.pred_ids), bool)
    if image_mask is not None:
        image_mask = np.asarray(image_mask, bool)
        gt_keep, pred_keep = image_mask[data.gt_image], image_mask[data.pred_image]
    if gt_mask is not None:
        gt_keep = gt_keep & np.asarray(gt_mask, bool)
    if pred_mask is not None:
        pred_keep = pred_keep & np.asarray(pred_mask, bool)

    found = gt_keep & np.isin(outcomes.gt_outcome, (Outcome.TP, Outcome.MISPREDICTED))
    missed = gt_keep & (outcomes.gt_outcome == Outcome.FN)
    ghosts = pred_keep & np.isin(outcomes.pred_outcome, (Outcome.FP, Outcome.DUPLICATE))
    rows = np.concatenate(
        [
            data.gt_class[found],
            data.gt_class[missed],
            np.full(int(ghosts.sum()), background),
        ]
    )
    cols = np.concatenate(
        [
            data.pred_class[outcomes.gt_match[found]],
            np.full(int(missed.sum()), background),
            data.pred_class[ghosts],
        ]
    )
    size = num_classes + 1
    matrix = np.bincount(rows * size + cols, minlength=size * size).reshape(size, size)
    return ConfusionMatrix(labels=(*data.class_names, BACKGROUND), matrix=matrix.astype(np.int64))
