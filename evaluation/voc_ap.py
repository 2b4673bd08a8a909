"""PASCAL VOC average precision (all-point and 11-point), at one IoU or at per-class IoUs.

The semantics of the VOC devkit (``VOCevaldet.m``) and of its Python ports
(py-faster-rcnn's ``voc_eval.py``, rafaelpadilla's Object-Detection-Metrics), per class:

1. detections are sorted by descending score (stable: equal scores keep input order);
2. each is compared with the ground truth of its class in its image, and takes the one of
   highest IoU (ties: the first object in input order), whether or not it is taken already;
3. if that IoU is ``>=`` the threshold: a *difficult* object (here: ``gt_crowd``) makes the
   detection neither a true nor a false positive; an object not taken yet is taken (true
   positive); an object taken already makes it a false positive (a duplicate). Below the
   threshold, or with no ground truth in the image, it is a false positive;
4. ``recall = TP / (non-difficult objects)``, ``precision = TP / (TP + FP)`` down the list;
5. AP is the area under the interpolated curve (precision made non-increasing from the
   right): *all-point* (VOC2010 and later: every recall change) and *11-point* (VOC2007:
   the mean of the interpolated precision at recall 0, 0.1, ..., 1).

Unlike COCO, a detection never falls back to its second-best object. Crowd regions are
difficult objects, with the ordinary IoU (not COCO's crowd IoU). Classes without
non-difficult ground truth have no AP (None) and are left out of the mean; classes with
ground truth and no detections have AP 0.

Conventions:

* IoU ``>=`` threshold, as the devkit (``ovmax >= minoverlap``) and rafaelpadilla;
  py-faster-rcnn writes ``>`` (they differ only when an IoU equals the threshold exactly).
* The 11 recall levels are ``np.linspace(0, 1, 11)`` and recall is ``TP / npos`` in floats,
  compared as in py-faster-rcnn and rafaelpadilla (so recall 3/10 does not reach the level
  ``0.30000000000000004``).
* ``pixel_offset``: boxes ``[x, y, w, h]`` are read as corners ``x1 = x``, ``x2 = x + w``.
  With ``pixel_offset=False`` (default) boxes are continuous, as COCO and TAO:
  ``width = x2 - x1``. With ``pixel_offset=True`` the corners are inclusive pixel indices,
  as the VOC devkit, py-faster-rcnn's ``voc_eval.py`` and rafaelpadilla's
  Object-Detection-Metrics: widths, heights and intersections get ``+ 1``
  (``(x2 - x1 + 1) * (y2 - y1 + 1)``). Use it to reproduce numbers computed that way
  (rafaelpadilla's published example needs it: 24.57% / 26.84% at IoU 0.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet, InputError

__all__ = ["VOC_RECALL_LEVELS", "VocClassResult", "VocResult", "voc_ap"]

# The recall levels of 11-point AP, with the floats of np.arange(0., 1.1, 0.1) (the same).
VOC_RECALL_LEVELS = np.linspace(0.0, 1.0, 11)


@dataclass(frozen=True)
class VocClassResult:
    """VOC AP of one class.

    Attributes:
        name: the class.
        iou: its IoU threshold.
        num_gt: non-difficult ground truth (``npos``).
        num_tp, num_fp: true and false positives over all detections.
        ap_all_point, ap_11_point: AP, None when ``num_gt`` is 0.
        precision, recall: ``(N,)`` the curve, one point per detection counted (true or false
            positive), in processing order; recall is NaN when ``num_gt`` is 0.
    """

    name: str
    iou: float
    num_gt: int
    num_tp: int
    num_fp: int
    ap_all_point: float | None
    ap_11_point: float | None
    precision: np.ndarray
    recall: np.ndarray


@dataclass(frozen=True)
class VocResult:
    """VOC AP of every class, and the means over the classes that have ground truth.

    Attributes:
        iou: the IoU threshold, or ``{class: threshold}`` for every class.
        classes: per class, in class-id order.
        mAP_all_point, mAP_11_point: means over classes with an AP; None when none has.
    """

    iou: float | dict[str, float]
    classes: dict[str, VocClassResult]
    mAP_all_point: float | None
    mAP_11_point: float | None

    def to_dict(self) -> dict:
        """``{"iou", "classes": {name: {"AP_all_point", "AP_11_point"}}, "mAP_all_point",
        "mAP_11_point"}``."""
        return {
            "iou": dict(self.iou) if isinstance(self.iou, dict) else self.iou,
            "classes": {
                name: {"AP_all_point": c.ap_all_point, "AP_11_point": c.ap_11_point}
                for name, c in self.classes.items()
            },
            "mAP_all_point": self.mAP_all_point,
            "mAP_11_point": self.mAP_11_point,
        }


def _class_ious(data: DetectionSet, iou, default_iou: float) -> np.ndarray:
    if isinstance(iou, Mapping):
        values = np.full(data.num_classes, float(default_iou))
        index = {name: k for k, name in enumerate(data.class_names)}
        for name, value in iou.items():
            if name not in index:
                raise InputError(f"IoU threshold for unknown class {name!r}")
            values[index[name]] = float(value)
    else:
        values = np.full(data.num_classes, float(iou))
    bad = ~((values > 0) & (values <= 1))
    if bad.any():
        raise InputError(f"IoU thresholds must be in (0, 1], got {values[bad][0]}")
    return values


def _corners(boxes: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 4)`` corners ``[x1, y1, x2, y2]`` of ``[x, y, w, h]`` boxes, and their areas
    (``(x2 - x1 + offset) * (y2 - y1 + offset)``, as ``voc_eval.py``)."""
    corners = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    areas = (corners[:, 2] - corners[:, 0] + offset) * (corners[:, 3] - corners[:, 1] + offset)
    return corners, areas


def _pair_iou(d, d_area, g, g_area, offset: float) -> np.ndarray:
    """IoU of aligned corner boxes, with ``voc_eval.py``'s arithmetic."""
    iw = np.minimum(d[:, 2], g[:, 2]) - np.maximum(d[:, 0], g[:, 0]) + offset
    ih = np.minimum(d[:, 3], g[:, 3]) - np.maximum(d[:, 1], g[:, 1]) + offset
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = d_area + g_area - inter
    iou = np.zeros(len(d), dtype=np.float64)
    np.divide(inter, union, out=iou, where=(inter > 0) & (union > 0))
    return iou


def _best_objects(data: DetectionSet, pred_rows, gt_rows, thresholds, offset) -> np.ndarray:
    """``(P,)``: for each prediction, its best object (highest IoU in its image and class,
    first in input order on ties) when that IoU reaches the class's threshold, else -1."""
    num_classes = data.num_classes
    best = np.full(len(data.pred_ids), -1, dtype=np.int64)
    if len(pred_rows) == 0 or len(gt_rows) == 0:
        return best
    pred_group = data.pred_image[pred_rows] * num_classes + data.pred_class[pred_rows]
    gt_group = data.gt_image[gt_rows] * num_classes + data.gt_class[gt_rows]
    gt_order = np.argsort(gt_group, kind="stable")  # rows ascending inside a group
    num_groups = int(max(gt_group.max(), pred_group.max())) + 1
    per_group = np.bincount(gt_group, minlength=num_groups)
    group_first = np.cumsum(per_group) - per_group
    count = per_group[pred_group]
    pred_pos = np.repeat(np.arange(len(pred_rows)), count)
    offset_in_group = np.arange(len(pred_pos)) - np.repeat(np.cumsum(count) - count, count)
    gt_pos = gt_order[np.repeat(group_first[pred_group], count) + offset_in_group]
    # Pairs are sorted by prediction, then by object row.
    p, g = pred_rows[pred_pos], gt_rows[gt_pos]
    d_corners, d_areas = _corners(np.take(data.pred_boxes, pred_rows, axis=0), offset)
    g_corners, g_areas = _corners(np.take(data.gt_boxes, gt_rows, axis=0), offset)
    iou = _pair_iou(
        np.take(d_corners, pred_pos, axis=0),
        d_areas[pred_pos],
        np.take(g_corners, gt_pos, axis=0),
        g_areas[gt_pos],
        offset,
    )
    keep = iou >= thresholds[data.pred_class[p]]
    p, g, iou = p[keep], g[keep], iou[keep]
    if len(p) == 0:
        return best
    # Per prediction: the first object of highest IoU.
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    lengths = np.diff(np.r_[starts, len(p)])
    top = np.flatnonzero(iou == np.repeat(np.maximum.reduceat(iou, starts), lengths))
    first = top[np.r_[True, p[top][1:] != p[top][:-1]]]
    best[p[first]] = g[first]
    return best


def _segment_reverse_max(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """``out[i] = max(values[j] for j >= i in i's segment)``, exactly (segments sorted)."""
    if len(values) == 0:
        return values
    unique, rank = np.unique(values, return_inverse=True)
    # Segments later in the array get lower offsets: a reversed running maximum never
    # carries a value across a segment boundary.
    key = rank.astype(np.int64) + (segment.max() - segment).astype(np.int64) * len(unique)
    running = np.maximum.accumulate(key[::-1])[::-1]
    return unique[running - (segment.max() - segment) * len(unique)]


# long: the VOC devkit's loop, vectorised over all classes at once; its steps share the sorted arrays
def voc_ap(
    data: DetectionSet,
    iou: float | Mapping[str, float] = 0.5,
    image_mask: np.ndarray | None = None,
    pixel_offset: bool = False,
    default_iou: float = 0.5,
) -> VocResult:
    """PASCAL VOC AP per class and its mean (see the module docstring for the rules).

    Args:
        data: ground truth and predictions; ``gt_crowd`` marks difficult objects.
        iou: the IoU threshold, or ``{class name: threshold}`` (KITTI / TAO DetectNet_v2
            ``minimum_overlap``); classes left out use ``default_iou``.
        image_mask: ``(I,)`` bool images to evaluate (default: all).
        pixel_offset: boxes are inclusive pixel indices (``+ 1`` in widths, heights and
            intersections, as the VOC devkit); default: continuous boxes.
        default_iou: the threshold of classes missing from an ``iou`` mapping.
    """
    thresholds = _class_ious(data, iou, default_iou)
    num_classes = data.num_classes
    pred_rows = np.arange(len(data.pred_ids))
    gt_rows = np.arange(len(data.gt_ids))
    if image_mask is not None:
        image_mask = np.asarray(image_mask, bool)
        pred_rows = pred_rows[image_mask[data.pred_image]]
        gt_rows = gt_rows[image_mask[data.gt_image]]
    best = _best_objects(data, pred_rows, gt_rows, thresholds, 1.0 if pixel_offset else 0.0)

    # Processing order: by class, descending score, input order.
    by_score = pred_rows[np.argsort(-data.pred_scores[pred_rows], kind="stable")]
    classes = data.pred_class[by_score]
    if num_classes < 2**15:
        classes = classes.astype(np.int16)  # a stable sort of int16 is a radix sort
    order = by_score[np.argsort(classes, kind="stable")]
    target = best[order]
    difficult = np.zeros(len(order), bool)
    has = target >= 0
    difficult[has] = data.gt_crowd[target[has]]
    # The first detection to reach an object takes it; later ones are duplicates.
    first_reach = np.zeros(len(order), bool)
    reaching = np.flatnonzero(has & ~difficult)
    _, first = np.unique(target[reaching], return_index=True)
    first_reach[reaching[first]] = True
    counted = ~difficult
    order, tp = order[counted], first_reach[counted]
    classes = data.pred_class[order]

    num_gt = np.bincount(
        data.gt_class[gt_rows[~data.gt_crowd[gt_rows]]], minlength=num_classes
    ).astype(np.int64)
    class_start = np.searchsorted(classes, np.arange(num_classes + 1))
    position = np.arange(len(order)) - class_start[classes] + 1  # detections so far
    tp_cum = np.cumsum(tp, dtype=np.int64)
    tp_so_far = tp_cum - np.r_[0, tp_cum][class_start][classes]
    npos = num_gt[classes].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(npos > 0, tp_so_far / npos, np.nan)
    precision = tp_so_far / position

    # Only true positives matter: recall changes there, and the interpolated precision
    # max(precision[i:]) is reached at a true positive (precision falls at false positives).
    tp_at = np.flatnonzero(tp)
    tp_class = classes[tp_at]
    envelope = _segment_reverse_max(precision[tp_at], tp_class)
    v = tp_so_far[tp_at].astype(np.float64)
    n = npos[tp_at]
    step = v / n - (v - 1) / n  # recall change at each true positive, as voc_ap's floats
    ap_all = np.bincount(tp_class, weights=step * envelope, minlength=num_classes)

    # 11-point: interpolated precision at the first true positive with recall >= level.
    num_tp = np.bincount(tp_class, minlength=num_classes)
    tp_start = np.searchsorted(tp_class, np.arange(num_classes))
    ap_11 = np.zeros(num_classes)
    needed = _smallest_counts(num_gt)  # (K, 11)
    for r in range(len(VOC_RECALL_LEVELS)):
        reached = (needed[:, r] <= num_tp) & (num_gt > 0)
        p = np.zeros(num_classes)
        p[reached] = envelope[tp_start[reached] + needed[reached, r] - 1]
        ap_11 += p / 11.0

    num_fp = np.bincount(classes[~tp], minlength=num_classes)
    per_class = {}
    for k, name in enumerate(data.class_names):
        lo, hi = class_start[k], class_start[k + 1]
        defined = num_gt[k] > 0
        per_class[name] = VocClassResult(
            name=name,
            iou=float(thresholds[k]),
            num_gt=int(num_gt[k]),
            num_tp=int(num_tp[k]),
            num_fp=int(num_fp[k]),
            ap_all_point=float(ap_all[k]) if defined else None,
            ap_11_point=float(ap_11[k]) if defined else None,
            precision=precision[lo:hi],
            recall=recall[lo:hi],
        )
    defined = num_gt > 0
    return VocResult(
        iou=(
            {name: float(t) for name, t in zip(data.class_names, thresholds)}
            if isinstance(iou, Mapping)
            else float(iou)
        ),
        classes=per_class,
        mAP_all_point=float(np.mean(ap_all[defined])) if defined.any() else None,
        mAP_11_point=float(np.mean(ap_11[defined])) if defined.any() else None,
    )


def _smallest_counts(num_gt: np.ndarray) -> np.ndarray:
    """``(K, 11)``: the smallest number of true positives ``v >= 1`` whose recall
    ``v / npos`` (float division) reaches each recall level (level 0 needs one: before the
    first true positive precision is 0)."""
    n = np.maximum(num_gt, 1)[:, None].astype(np.float64)
    levels = VOC_RECALL_LEVELS[None, :]
    guess = np.ceil(levels * n)
    out = guess + 1
    for candidate in (guess + 1, guess, guess - 1):
        ok = (candidate >= 0) & (candidate / n >= levels)
        out = np.where(ok, candidate, out)
    return np.maximum(out, 1).astype(np.int64)
