"""Exact COCO AP of many object slices at once, from a run's stored matches.

A *partition* gives every ground-truth object and every prediction a cell (or none). The AP
of class ``k`` on cell ``c`` is what :meth:`~detection_debugger.evaluation.MatchTable.evaluate`
returns with ``gt_mask = gt_cell == c`` and ``pred_mask = pred_cell == c`` (pycocotools' AP,
all areas, 100 detections): a prediction matched at IoU threshold ``t`` belongs to the cell of
the object it is matched to, an unmatched one to its own cell. With image-level cells (every
object takes its image's cell) the numbers are pycocotools' on those images alone.

All cells of several partitions are accumulated in one vectorised pass: the counted
(threshold, prediction) entries are sorted by ``(threshold, partition, class, cell)`` with a
stable radix sort (accumulation order is kept inside each cell); precision is read at the true
positives only and the interpolated precision is a segmented reverse maximum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.coco_metrics import IOU_THRESHOLDS, RECALL_THRESHOLDS
from detection_debugger.evaluation.match_table import MatchTable

__all__ = ["CellEvaluator"]

_ALL_AREAS = 0  # index of the "all" area range in CocoMatches


@dataclass(frozen=True)
class CellEvaluator:
    """A run's COCO matching (all areas, 100 detections) laid out for cell-wise accumulation.

    Most predictions are false positives at every IoU threshold ("pure" ones: ghosts,
    duplicates): their cell does not depend on the threshold, so they are kept once, not once
    per threshold. The others are kept as (threshold, prediction) entries.

    Only the objects of the searched classes are kept: cells are given for the ``G'`` ground
    truth rows ``gt_rows`` and the ``P'`` prediction rows ``pred_rows`` (all of them when
    every class is searched); "row" below means a position in those.

    Attributes:
        gt_rows: ``(G',)`` rows of the ``DetectionSet``'s ground truth kept.
        pred_rows: ``(P',)`` rows of its predictions kept.
        pure_pos: ``(F,)`` accumulation position of each pure false positive (ascending).
        pure_class: ``(F,)`` its class.
        pure_pred: ``(F,)`` its prediction row.
        entry_t: ``(E,)`` IoU-threshold index of each counted entry of the other predictions,
            threshold-major, then accumulation order.
        entry_pos: ``(E,)`` accumulation position of the prediction.
        entry_class: ``(E,)`` its class.
        entry_pred: ``(E,)`` its prediction row.
        entry_gt: ``(E,)`` ground-truth row it is matched to, -1 for a false positive.
        gt_class: ``(G,)`` class of every ground-truth object.
        gt_counted: ``(G,)`` bool object to find (not a crowd region).
        num_classes: ``K``.
        num_positions: ``D``, the evaluated predictions.
        pure_upto: ``(E,)`` pure false positives before each entry's position.
        pure_first: ``(E,)`` index of the first pure false positive of the entry's class.
    """

    gt_rows: np.ndarray
    pred_rows: np.ndarray
    pure_pos: np.ndarray
    pure_class: np.ndarray
    pure_pred: np.ndarray
    entry_t: np.ndarray
    entry_pos: np.ndarray
    entry_class: np.ndarray
    entry_pred: np.ndarray
    entry_gt: np.ndarray
    gt_class: np.ndarray
    gt_counted: np.ndarray
    num_classes: int
    num_positions: int
    pure_upto: np.ndarray
    pure_first: np.ndarray

    @classmethod
    def from_table(cls, table: MatchTable, classes=None) -> CellEvaluator:
        """The entries of ``table``; with ``classes`` (class indices) only theirs (the other
        classes then have no objects)."""
        coco, data = table.coco, table.data
        tp = coco.pred_tp[:, _ALL_AREAS, :]  # (T, D)
        fp = coco.pred_fp[:, _ALL_AREAS, :]
        searched = np.arange(coco.num_classes) if classes is None else np.asarray(classes, int)
        gt_rows = np.flatnonzero(np.isin(data.gt_class, searched))
        pred_rows = np.flatnonzero(np.isin(data.pred_class, searched))
        gt_index = np.full(len(data.gt_ids), -1)
        gt_index[gt_rows] = np.arange(len(gt_rows))
        pred_index = np.full(len(data.pred_ids), -1)
        pred_index[pred_rows] = np.arange(len(pred_rows))
        wanted = np.isin(coco.pred_class, searched)
        pure = fp.all(axis=0)
        (pure_pos,) = np.nonzero(pure & wanted)
        t, d = np.nonzero((tp | fp) & (~pure & wanted)[None, :])  # threshold-major, by position
        matched = coco.pred_gt[t, _ALL_AREAS, d]
        return cls(
            gt_rows=gt_rows,
            pred_rows=pred_rows,
            pure_pos=pure_pos.astype(np.int64),
            pure_class=coco.pred_class[pure_pos].astype(np.int64),
            pure_pred=pred_index[coco.pred_rows[pure_pos]],
            entry_t=t.astype(np.int64),
            entry_pos=d.astype(np.int64),
            entry_class=coco.pred_class[d].astype(np.int64),
            entry_pred=pred_index[coco.pred_rows[d]],
            entry_gt=np.where(tp[t, d], gt_index[np.maximum(matched, 0)], -1).astype(np.int64),
            gt_class=coco.gt_class[gt_rows].astype(np.int64),
            gt_counted=coco.gt_counted[_ALL_AREAS][gt_rows],
            num_classes=coco.num_classes,
            num_positions=len(coco.pred_rows),
            pure_upto=np.searchsorted(pure_pos, d),
            pure_first=np.searchsorted(coco.pred_class[pure_pos], coco.pred_class[d]),
        )

    def num_gt(self, gt_cells: np.ndarray, num_cells: int) -> np.ndarray:
        """``(M, K, C)`` objects to find per partition, class and cell.

        Args:
            gt_cells: ``(M, G')`` int cell of every ground-truth row in each of ``M``
                partitions, -1 for none.
            num_cells: ``C``, cells are ``0..C-1``.
        """
        gt_cells = np.atleast_2d(gt_cells)
        num_parts, k = len(gt_cells), self.num_classes
        part, gt = np.nonzero((gt_cells >= 0) & self.gt_counted[None, :])
        flat = (part * k + self.gt_class[gt]) * num_cells + gt_cells[part, gt]
        counts = np.bincount(flat, minlength=num_parts * k * num_cells)
        return counts.reshape(num_parts, k, num_cells)

    def ap(self, gt_cells: np.ndarray, pred_cells: np.ndarray, num_cells: int) -> np.ndarray:
        """``(M, K, C)`` COCO AP@[.5:.95] of each class on each cell, NaN without objects.

        Args:
            gt_cells: ``(M, G')`` cell of every ground-truth row per partition (-1: none).
            pred_cells: ``(M, P')`` own cell of every prediction row (for unmatched ones).
            num_cells: ``C``.
        """
        gt_cells, pred_cells = np.atleast_2d(gt_cells), np.atleast_2d(pred_cells)
        num_parts, k, num_thr = len(gt_cells), self.num_classes, len(IOU_THRESHOLDS)
        npig = self.num_gt(gt_cells, num_cells)  # (M, K, C)
        total = np.zeros(num_thr * num_parts * k * num_cells)
        tp_keys, tp_precision, tp_ordinal = self._true_positives(gt_cells, pred_cells, num_cells)
        if len(tp_keys):
            n = npig.reshape(-1)[tp_keys % (num_parts * k * num_cells)].astype(np.float64)
            weight = _recall_weights(tp_ordinal, n)
            envelope = _segment_reverse_max(tp_precision, tp_keys)
            total += np.bincount(tp_keys, envelope * weight, minlength=len(total))
        ap = total.reshape(num_thr, num_parts, k, num_cells).mean(axis=0) / len(RECALL_THRESHOLDS)
        return np.where(npig > 0, ap, np.nan)

    def _pure_before(self, pred_cells, num_cells, part, cells, entries):
        """For each query (partition, cell, entry): the pure false positives of that cell and
        of the entry's class before the entry's accumulation position.

        Pure false positives are in accumulation order (by class), so those of class ``k``
        before position ``d`` are a contiguous run; per cell, a running count over them
        answers every query with two lookups.
        """
        own = pred_cells[:, self.pure_pred]  # (M, F)
        cell_ids = np.arange(num_cells, dtype=own.dtype)[None, :, None]
        size = len(self.pure_pos) + 1
        counts = np.uint16 if size <= np.iinfo(np.uint16).max else np.int64  # less traffic
        running = np.zeros((len(own), num_cells, size), dtype=counts)
        np.cumsum(own[:, None, :] == cell_ids, axis=2, out=running[:, :, 1:])
        upto = running[part, cells, self.pure_upto[entries]].astype(np.int64)
        return upto - running[part, cells, self.pure_first[entries]]

    def _true_positives(self, gt_cells, pred_cells, num_cells):
        """Keys ``((t*M + m)*K + k)*C + c``, precision and ordinal (1-based rank in its cell)
        of every true positive of every partition, sorted by key then accumulation order."""
        num_parts, num_entries = len(gt_cells), len(self.entry_t)
        is_tp = self.entry_gt >= 0
        # One gather: an entry's cell is its object's (true positive) or its own.
        source = np.where(is_tp, self.entry_gt, gt_cells.shape[1] + self.entry_pred)
        cells = np.concatenate([gt_cells, pred_cells], axis=1)[:, source]
        flat = np.flatnonzero(cells >= 0)  # partition-major
        cell = cells.reshape(-1)[flat].astype(np.int64)
        part = flat // num_entries if num_parts > 1 else np.zeros(len(flat), np.int64)
        entry = flat - part * num_entries
        keys = (
            (self.entry_t[entry] * num_parts + part) * self.num_classes + self.entry_class[entry]
        ) * num_cells + cell
        keys, order = _sorted_with_order(keys)
        at = np.flatnonzero(is_tp[entry[order]])  # true positives, in sorted order
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        segment = np.searchsorted(starts, at, side="right") - 1
        counted = at - starts[segment] + 1  # entries of the cell so far
        ordinal = np.arange(1, len(at) + 1) - np.searchsorted(at, starts)[segment]
        picked = order[at]
        counted = counted + self._pure_before(
            pred_cells, num_cells, part[picked] if num_parts > 1 else 0, cell[picked], entry[picked]
        )
        ordinal = ordinal.astype(np.float64)
        precision = ordinal / (counted.astype(np.float64) + np.spacing(1))
        return keys[at], precision, ordinal


def _sorted_with_order(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` sorted stably (ties keep their order) and the permutation that does it.

    Sorting ``key << bits | index`` (unique values) is several times faster than a stable
    ``argsort``."""
    bits = max(1, int(len(keys)).bit_length())
    packed = np.sort((keys.astype(np.int64) << bits) | np.arange(len(keys)))
    return packed >> bits, packed & ((1 << bits) - 1)


def _segment_reverse_max(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``max(values[i:end of i's segment])`` for sorted ``keys`` and values in ``[0, 1]``."""
    segment = np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1
    shifted = values - 2.0 * segment  # later segments never exceed earlier ones
    return np.maximum.accumulate(shifted[::-1])[::-1] + 2.0 * segment


def _recall_weights(ordinal: np.ndarray, n: np.ndarray) -> np.ndarray:
    """How many of the 101 recall thresholds read the precision at the ``v``-th true
    positive (``v = ordinal``) of a curve with ``n`` objects: those ``r`` with
    ``(v-1)/n < r <= v/n`` (``r = 0`` reads the first), as pycocotools' ``searchsorted``
    on ``tp / n`` (the same float divisions)."""
    upto = _thresholds_up_to(ordinal / n)
    below = _thresholds_up_to((ordinal - 1.0) / n)
    return (upto - below + (ordinal == 1)).astype(np.float64)


def _thresholds_up_to(x: np.ndarray) -> np.ndarray:
    """``#{r in RECALL_THRESHOLDS: r <= x}`` for ``x`` in ``[0, 1]`` (exact comparisons;
    the thresholds are ``i / 100`` up to rounding, so only two candidates are checked)."""
    last = len(RECALL_THRESHOLDS) - 1
    g = np.clip((x * last).astype(np.int64), 0, last)
    nxt = np.minimum(g + 1, last)
    return g + (RECALL_THRESHOLDS[g] <= x) + ((RECALL_THRESHOLDS[nxt] <= x) & (nxt > g))
