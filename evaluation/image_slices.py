"""Image slices at the cost of their own size: a match table laid out by image.

:meth:`MatchTable.evaluate` with an image mask filters every array of the run: at 100k images
(3.6M predictions) a 10% slice still scans 3.6M columns times ten IoU thresholds. An
:class:`ImageSliceIndex` (built once per run, stored with it) holds what an image slice needs,
grouped by image, so that a slice reads only its images' rows:

- every count of the result (confusion cells, objects per class, predictions counted,
  duplicates, objects to find per area range) as per-image sums: a slice adds its images';
- the COCO columns (predictions in accumulation order) of each image, and per column and
  area range one 32-bit code of its outcome at each IoU threshold (true positive bit ``t``,
  false positive bit ``10 + t``). A slice gathers its columns, sorts their positions (the
  accumulation order is kept) and visits only its *true positives*, threshold by threshold
  at once: the precision at the ``v``-th true positive of a curve is ``v`` over the
  predictions counted up to it, which is its position in the curve less the (rare)
  predictions ignored at that threshold before it.

The numbers equal :meth:`MatchTable.evaluate` with the same image mask (and so pycocotools
on those images) exactly: same integers, same float operations.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.coco_metrics import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETS,
    RECALL_THRESHOLDS,
    interpolated_precision,
)
from detection_debugger.evaluation.confusion import BACKGROUND, ConfusionMatrix, Outcome
from detection_debugger.evaluation.match_table import MatchTable, evaluation_result
from detection_debugger.evaluation.results import EvaluationResult

__all__ = ["ImageSliceIndex"]

_FP_SHIFT = 10  # false positive bits follow the (at most 10) true positive bits
_ALL_THRESHOLDS = (1 << len(IOU_THRESHOLDS)) - 1


@dataclass(frozen=True)
class ImageSliceIndex:
    """A run's match table by image, for exact image-slice metrics (see the module doc).

    Attributes:
        class_names: the ``K`` classes.
        iou_threshold, score_threshold: the run's 4-way matching thresholds.
        count_starts: ``(I + 1,)`` int64 offsets of each image's entries in the two arrays
            below.
        count_cells: ``(E,)`` int32 which count an entry adds to (see :meth:`_cells`).
        count_values: ``(E,)`` int32 how much.
        column_starts: ``(I + 1,)`` int64 offsets of each image's columns in
            ``image_columns``.
        image_columns: ``(D,)`` int32 COCO columns (accumulation positions), by image.
        class_starts: ``(K + 1,)`` int64 first column of each class (the columns are in
            accumulation order, class by class), then ``D``.
        column_cut: ``(D,)`` uint8 how many of the smaller max-detections cuts (1, 10) the
            column's rank in its image and class reaches (0: counted under every cut).
        codes: ``(A, D)`` uint32 outcome codes per area range (0: never counted).
    """

    class_names: tuple[str, ...]
    iou_threshold: float
    score_threshold: float
    count_starts: np.ndarray
    count_cells: np.ndarray
    count_values: np.ndarray
    column_starts: np.ndarray
    image_columns: np.ndarray
    class_starts: np.ndarray
    column_cut: np.ndarray
    codes: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.column_starts) - 1

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def build(cls, table: MatchTable) -> ImageSliceIndex:
        """The index of ``table`` (a few seconds at 100k images)."""
        if len(IOU_THRESHOLDS) > _FP_SHIFT:
            raise ValueError("outcome codes hold at most 10 IoU thresholds")
        coco, num_images = table.coco, table.data.num_images
        num_classes = table.data.num_classes
        num_cells = _num_cells(num_classes)
        images, cells = _count_entries(table)
        keys, values = _count_keys(images * num_cells + cells, num_images * num_cells)
        order = np.argsort(coco.pred_image, kind="stable")
        return cls(
            class_names=tuple(table.data.class_names),
            iou_threshold=float(table.outcomes.iou_threshold),
            score_threshold=float(table.outcomes.score_threshold),
            count_starts=_starts(keys // num_cells, num_images),
            count_cells=(keys % num_cells).astype(np.int32),
            count_values=values.astype(np.int32),
            column_starts=_starts(coco.pred_image[order], num_images),
            image_columns=order.astype(np.int32),
            class_starts=np.searchsorted(coco.pred_class, np.arange(num_classes + 1)),
            column_cut=_cuts(coco.pred_rank),
            codes=_outcome_codes(coco.pred_tp, coco.pred_fp),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as an array (for storage); :meth:`from_arrays` inverts it."""
        return {name: np.asarray(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, arrays) -> ImageSliceIndex:
        values = {name: arrays[name] for name in cls.__dataclass_fields__}
        values["class_names"] = tuple(str(v) for v in values["class_names"])
        for name in ("iou_threshold", "score_threshold"):
            values[name] = float(values[name])
        return cls(**values)

    def evaluate(self, image_mask: np.ndarray) -> EvaluationResult:
        """Metrics of the images in ``image_mask`` (``(I,)`` bool): equal to
        ``MatchTable.evaluate(image_mask)``."""
        images = np.flatnonzero(np.asarray(image_mask, bool))
        num_classes = self.num_classes
        side = num_classes + 1
        counting = _threads().submit(self._counts, images)  # while the columns are sorted
        columns = np.sort(self.image_columns[_rows_of(self.column_starts, images)])
        counts = counting.result()
        confusion, counts = counts[: side * side].reshape(side, side), counts[side * side :]
        num_gt, num_pred, duplicate = np.split(counts[: 3 * num_classes], 3)
        positives = counts[3 * num_classes :].reshape(num_classes, len(AREA_RANGES))
        precision, recall = self._accumulate(columns, positives)
        return evaluation_result(
            self.class_names,
            precision,
            recall,
            ConfusionMatrix(labels=(*self.class_names, BACKGROUND), matrix=confusion),
            num_gt,
            num_pred,
            duplicate,
            {
                "iou": self.iou_threshold,
                "score_threshold": self.score_threshold,
                "num_images": len(images),
            },
        )

    def _counts(self, images: np.ndarray) -> np.ndarray:
        """Every count of :func:`_num_cells`, summed over ``images``."""
        entries = _rows_of(self.count_starts, images)
        return np.bincount(
            self.count_cells[entries],
            weights=self.count_values[entries],
            minlength=_num_cells(self.num_classes),
        ).astype(np.int64)

    def _accumulate(self, columns: np.ndarray, positives: np.ndarray):
        """``accumulate(..., every_curve=False)`` of the slice's ``columns`` (sorted): the
        area range "all" and the three size ranges (about half the work each) on two
        threads (numpy releases the GIL: two cores, nearly half the time)."""
        num_thr, num_rec = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
        shape = (self.num_classes, len(AREA_RANGES), len(MAX_DETS))
        precision = -np.ones((num_thr, num_rec, *shape))
        recall = -np.ones((num_thr, *shape))
        # Columns are in accumulation order, class by class: each class is a range of them.
        bounds = np.searchsorted(columns, self.class_starts)
        cuts = self.column_cut[columns]
        parts = [
            _threads().submit(_area_curves, self, columns, bounds, cuts, positives, areas)
            for areas in _AREA_GROUPS
        ]
        for part in parts:
            curves = part.result()
            if curves is None:
                continue
            k, a, curve_recall, curve_precision = curves
            recall[:, k, a, :] = curve_recall
            precision[:, :, k, a, -1] = curve_precision
        return precision, recall


_AREA_GROUPS = ((0,), tuple(range(1, len(AREA_RANGES))))  # "all"; small, medium, large
_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=len(_AREA_GROUPS), thread_name_prefix="slices")
    return _pool


def _forget_threads() -> None:
    """A forked child has none of the parent's threads: it makes its own pool."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_threads)


def _area_curves(index, columns, bounds, cuts, positives, areas):
    """The curves of the area ranges ``areas``: ``k``, ``a``, recall ``(T, C, M)`` and
    precision at the largest max detections ``(T, R, C)``; None without any."""
    curves = _slice_curves(index, columns, bounds, cuts, positives, areas)
    if curves is None:
        return None
    k, a, starts, curve_of, codes, code_cuts = curves
    per_row, row_first, tp_precision, event_row, event_cut = _true_positive_events(
        codes, code_cuts, curve_of, starts, len(k)
    )
    num_thr, num_cuts = len(IOU_THRESHOLDS), len(MAX_DETS)
    npig = positives[k, a]
    # A true positive counts under the cut m when its rank is below it (its cut <= m).
    by_cut = np.bincount(
        event_row * np.int32(num_cuts) + event_cut, minlength=len(per_row) * num_cuts
    ).reshape(num_thr, len(k), num_cuts)
    recall = np.cumsum(by_cut, axis=2) / npig[None, :, None]
    result = interpolated_precision(per_row, row_first, tp_precision, npig)
    return k, a, recall, result.transpose(0, 2, 1)


def _num_cells(num_classes: int) -> int:
    """Counts per image: the confusion matrix, then per class the objects to find (not
    crowd), the predictions counted, the duplicates, and per (class, area range) the
    objects COCO counts towards recall."""
    return (num_classes + 1) ** 2 + 3 * num_classes + num_classes * len(AREA_RANGES)


def _count_entries(table: MatchTable) -> tuple[np.ndarray, np.ndarray]:
    """``(image, cell)`` of every count each object adds to (see :func:`_num_cells`)."""
    data, outcomes, coco = table.data, table.outcomes, table.coco
    num_classes = data.num_classes
    side = num_classes + 1
    per_class = side * side
    found = np.isin(outcomes.gt_outcome, (Outcome.TP, Outcome.MISPREDICTED))
    missed = outcomes.gt_outcome == Outcome.FN
    ghosts = np.isin(outcomes.pred_outcome, (Outcome.FP, Outcome.DUPLICATE))
    objects = ~data.gt_crowd
    counted = data.pred_scores >= outcomes.score_threshold
    duplicate = outcomes.pred_outcome == Outcome.DUPLICATE
    parts = [
        (
            data.gt_image[found],
            data.gt_class[found] * side + data.pred_class[outcomes.gt_match[found]],
        ),
        (data.gt_image[missed], data.gt_class[missed] * side + num_classes),
        (data.pred_image[ghosts], num_classes * side + data.pred_class[ghosts]),
        (data.gt_image[objects], per_class + data.gt_class[objects]),
        (data.pred_image[counted], per_class + num_classes + data.pred_class[counted]),
        (data.pred_image[duplicate], per_class + 2 * num_classes + data.pred_class[duplicate]),
    ]
    first_area = per_class + 3 * num_classes
    for a in range(len(AREA_RANGES)):
        keep = coco.gt_counted[a]
        cells = first_area + coco.gt_class[keep] * len(AREA_RANGES) + a
        parts.append((coco.gt_image[keep], cells))
    images = np.concatenate([np.asarray(i, np.int64) for i, _ in parts])
    cells = np.concatenate([np.asarray(c, np.int64) for _, c in parts])
    return images, cells


def _count_keys(keys: np.ndarray, num_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``keys`` (sorted) and how often each occurs: by counting when the key
    space is small enough (a tenth of the time of sorting 10M keys), else by sorting."""
    if num_keys <= 64_000_000:
        counts = np.bincount(keys, minlength=num_keys)
        distinct = np.flatnonzero(counts)
        return distinct, counts[distinct]
    return np.unique(keys, return_counts=True)


def _starts(sorted_images: np.ndarray, num_images: int) -> np.ndarray:
    """``(I + 1,)`` offsets of each image's run in ``sorted_images`` (non-decreasing)."""
    return np.searchsorted(sorted_images, np.arange(num_images + 1)).astype(np.int64)


def _rows_of(starts: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The rows of ``images`` in a table grouped by image (``starts``: its offsets)."""
    first, lengths = starts[images], starts[images + 1] - starts[images]
    total = int(lengths.sum())
    offsets = np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total)


def _outcome_codes(pred_tp: np.ndarray, pred_fp: np.ndarray) -> np.ndarray:
    """``(A, D)`` uint32: bit ``t`` true positive, bit ``10 + t`` false positive at IoU
    threshold ``t`` (from the ``(T, A, D)`` flags)."""
    num_thr, num_areas, num_cols = pred_tp.shape
    codes = np.zeros((num_areas, num_cols), np.uint32)
    for t in range(num_thr):
        for a in range(num_areas):
            codes[a] |= pred_tp[t, a].astype(np.uint32) << np.uint32(t)
            codes[a] |= pred_fp[t, a].astype(np.uint32) << np.uint32(_FP_SHIFT + t)
    return codes


def _cuts(ranks: np.ndarray) -> np.ndarray:
    """Per rank, how many of the smaller max-detections cuts it reaches (``>=``)."""
    cuts = np.zeros(len(ranks), np.uint8)
    for max_dets in MAX_DETS[:-1]:
        cuts += ranks >= max_dets
    return cuts


def _slice_curves(index, columns, bounds, cuts, positives, areas):
    """The (class, area range) curves of the slice's ``columns`` (its classes' ranges
    ``bounds``, their cuts ``cuts``) in the area ranges ``areas``, at the largest max
    detections: ``k``, ``a``, ``starts``, ``curve_of``, and per position its code and its
    cut; None without any."""
    curve_k, curve_a, lengths, codes, cut_parts = [], [], [], [], []
    for a in areas:
        code = np.take(index.codes[a], columns)
        counted = code != 0
        with_gt = positives[:, a] > 0
        for k in np.flatnonzero(~with_gt):  # classes without objects to find: no curve
            counted[bounds[k] : bounds[k + 1]] = False
        keep = np.flatnonzero(counted)
        with_gt = np.flatnonzero(with_gt)
        curve_k.append(with_gt)
        curve_a.append(np.full(len(with_gt), a))
        lengths.append(np.diff(np.searchsorted(keep, bounds))[with_gt])
        codes.append(code[keep])
        cut_parts.append(cuts[keep])
    k = np.concatenate(curve_k)
    if not len(k):
        return None
    lengths = np.concatenate(lengths)
    starts = (np.cumsum(lengths) - lengths).astype(np.int32)
    curve_of = np.repeat(np.arange(len(k), dtype=np.int32), lengths)
    return (
        k,
        np.concatenate(curve_a),
        starts,
        curve_of,
        np.concatenate(codes),
        np.concatenate(cut_parts),
    )


def _true_positive_events(codes, cuts, curve_of, starts, num_curves):  # long: commented steps
    """Every (threshold, true positive) of the curves, with its precision.

    Returns ``per_row`` ``(T*C,)`` true positives of each (threshold, curve) row,
    ``row_first`` the first one's place, ``tp_precision`` the precisions grouped by row,
    and per event its row and its cut.
    """
    num_thr = len(IOU_THRESHOLDS)
    tp_bits = codes & np.uint32(_ALL_THRESHOLDS)
    with_tp = np.flatnonzero(tp_bits)
    bits = tp_bits[with_tp]
    # Per column with a true positive somewhere: its curve and its 1-based place there.
    curve_w = curve_of[with_tp]
    place_w = (with_tp - starts[curve_w] + 1).astype(np.int32)
    ignored = _ignored_positions(codes)
    rows, seen, picked = [], [], []
    for t in range(num_thr):  # threshold-major, then by position: rows come in order
        j = np.flatnonzero(bits & np.uint32(1 << t))
        curve = curve_w[j]
        place = place_w[j]
        if len(ignored[t]):
            # Predictions of the curve before each one that are neither true nor false
            # positives here (matched to an ignored object): rare, so each is placed among
            # the events after the first of them by a binary search and counted by a
            # running sum.
            position = with_tp[j]
            after = int(np.searchsorted(position, ignored[t][0]))
            placed = np.searchsorted(position[after:], ignored[t])
            smaller = np.cumsum(np.bincount(placed, minlength=len(j) - after + 1)[:-1])
            in_curve = np.searchsorted(ignored[t], starts)[curve[after:]]
            place[after:] -= (smaller - in_curve).astype(np.int32)
        rows.append(curve + np.int32(t * num_curves))
        seen.append(place)
        picked.append(j)
    row, seen, picked = np.concatenate(rows), np.concatenate(seen), np.concatenate(picked)
    per_row = np.bincount(row, minlength=num_thr * num_curves)
    row_first = np.cumsum(per_row) - per_row
    ordinal = np.arange(1, len(row) + 1) - row_first[row]
    # Integers convert exactly: the same floats as (seen.astype(float) + eps), in fewer passes.
    tp_precision = ordinal / (seen + np.spacing(1))
    return per_row, row_first, tp_precision, row, cuts[with_tp][picked]


def _ignored_positions(codes: np.ndarray) -> list[np.ndarray]:
    """Per threshold, the sorted positions that are neither true nor false positives there
    while counted at another threshold (matched to an ignored object)."""
    counted = (codes | codes >> np.uint32(_FP_SHIFT)) & np.uint32(_ALL_THRESHOLDS)
    mixed = np.flatnonzero(counted != _ALL_THRESHOLDS)
    missing = ~counted[mixed]
    return [mixed[(missing & np.uint32(1 << t)) != 0] for t in range(len(IOU_THRESHOLDS))]
