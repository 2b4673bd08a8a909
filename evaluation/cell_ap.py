"""Exact COCO AP of many slices at once, from a run's stored matches.

A *partition* gives every ground-truth object and every prediction a cell (or none). Three
ways to score a cell ``c`` of class ``k`` (pycocotools' AP, all areas, 100 detections):

- :meth:`CellEvaluator.ap`: what :meth:`~detection_debugger.evaluation.MatchTable.evaluate`
  returns with ``gt_mask = gt_cell == c`` and ``pred_mask = pred_cell == c``: a prediction
  matched at IoU threshold ``t`` belongs to the cell of its object, an unmatched one to its
  own cell;
- :meth:`CellEvaluator.image_ap`: the same for cells of whole images (pycocotools on those
  images), faster;
- :meth:`CellEvaluator.object_ap`: the cell's objects against every false positive of the
  class, normalized to the class's number of objects (Hoiem et al. 2012).

One partition and one class at a time, every cell in one pass (a class's arrays stay in the
processor's cache): AP reads the precision at the true positives only, so what a partition
needs is, for each true positive, its rank among the true positives of its (threshold, cell)
and the number of the cell's predictions counted before it. The true positives are sorted
by ``(threshold, cell)`` with numpy's radix sort (8-bit keys; a stable sort keeps the
accumulation order inside each cell). What comes before a true positive:

- object cells: every false positive of the class before it, the same for all partitions
  (computed once);
- image cells: its prediction's rank among the cell's predictions (one sort of the
  predictions), less those matched to a crowd region at that threshold;
- other cells: the (threshold, prediction) entries of the predictions that are a true
  positive somewhere are sorted like the true positives; the pure false positives (false
  positives at every threshold: most predictions) are counted per cell and per gap between
  the positions where some prediction is a true positive, summed along the gaps.

The interpolated precision is a segmented reverse maximum, read where each of the 101
recall thresholds reads it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from detection_debugger.evaluation.coco_metrics import IOU_THRESHOLDS, RECALL_THRESHOLDS
from detection_debugger.evaluation.match_table import MatchTable

__all__ = ["CellEvaluator"]

_ALL_AREAS = 0  # index of the "all" area range in CocoMatches
_NUM_THRESHOLDS = len(IOU_THRESHOLDS)


@dataclass(frozen=True)
class _ClassEntries:
    """One class's share of a run's COCO matching, laid out for cell-wise accumulation.

    Attributes:
        k: the class index.
        source: ``(E,)`` where an entry's cell is read in ``[gt_cells, pred_cells]``
            (concatenated): its object's row for a true positive, ``G'`` + its own row for a
            false positive. Entries are threshold-major, then in accumulation order (score).
        threshold: ``(E,)`` IoU-threshold index of each entry.
        tp: ``(E,)`` bool true positive.
        query: ``(E,)`` for a true positive, 1 + the index of its position among the
            class's ``R`` query positions (where some prediction is a true positive).
        pure_pred: ``(F,)`` prediction row of each pure false positive counted (those after
            the class's last query position are left out: nothing reads them).
        pure_gap: ``(F,)`` query positions before it.
        num_queries: ``R``.
        hit_gt: ``(H,)`` ground-truth row of each true-positive entry (threshold-major,
            accumulation order), for object slices.
        hit_threshold: ``(H,)`` its IoU-threshold index.
        hit_fp_before: ``(H,)`` false positives of the class ranked before it at its
            threshold (every one, whatever its cell: object slices share them).
        false_total: ``(T,)`` false positives of the class at each threshold.
        preds: ``(D,)`` where each prediction of the class, in accumulation order up to the
            last one that is a true positive somewhere, reads its cell in ``[gt_cells,
            pred_cells]`` (for image slices).
        hit_pos: ``(H,)`` accumulation position of each true positive's prediction.
        ignored_threshold, ignored_pos: ``(I,)`` the (threshold, position) of the
            predictions left out at a threshold (matched to a crowd region), up to ``D``.
    """

    k: int
    source: np.ndarray
    threshold: np.ndarray
    tp: np.ndarray
    query: np.ndarray
    pure_pred: np.ndarray
    pure_gap: np.ndarray
    num_queries: int
    hit_gt: np.ndarray
    hit_threshold: np.ndarray
    hit_fp_before: np.ndarray
    false_total: np.ndarray
    preds: np.ndarray
    hit_pos: np.ndarray
    ignored_threshold: np.ndarray
    ignored_pos: np.ndarray
    _keys: dict = field(default_factory=dict, repr=False, compare=False)

    def group_keys(self, num_cells: int) -> tuple[np.ndarray, type]:
        """``(E,)`` ``t * C`` of every entry, 8-bit when the keys fit (cached)."""
        if num_cells not in self._keys:
            size = _NUM_THRESHOLDS * num_cells
            dtype = np.int8 if size < 127 else np.int16 if size < 32767 else np.int64
            self._keys[num_cells] = ((self.threshold * num_cells).astype(dtype), dtype)
        return self._keys[num_cells]

    def hit_keys(self, num_cells: int) -> tuple[np.ndarray, type]:
        """``(H,)`` ``t * C`` of every true-positive entry, 8-bit when the keys fit."""
        if -num_cells not in self._keys:
            size = _NUM_THRESHOLDS * num_cells
            dtype = np.int8 if size < 127 else np.int16 if size < 32767 else np.int64
            self._keys[-num_cells] = ((self.hit_threshold * num_cells).astype(dtype), dtype)
        return self._keys[-num_cells]

    def object_sums(self, gt_cells, num_cells: int, npig, total: int, normalized: bool):
        """``(T, C)`` sum over the 101 recall thresholds of the interpolated precision of
        the cells as object slices: a true positive counts in its object's cell, every
        false positive of the class in every cell, and with ``normalized`` the true
        positives are scaled to the class's ``total`` objects (``tp * total / n``)."""
        base, dtype = self.hit_keys(num_cells)
        mine = gt_cells[self.hit_gt]
        keys = np.where(mine >= 0, base + mine.astype(dtype), dtype(_NUM_THRESHOLDS * num_cells))
        order = np.argsort(keys, kind="stable")[: np.count_nonzero(mine >= 0)]
        if not len(order):
            return np.zeros((_NUM_THRESHOLDS, num_cells))
        curve = keys[order].astype(np.intp)  # t * C + c, non-decreasing
        size = _NUM_THRESHOLDS * num_cells
        first_tp = np.searchsorted(curve, np.arange(size))
        ordinal = np.arange(1, len(order) + 1) - first_tp[curve]
        n = np.tile(npig, _NUM_THRESHOLDS)
        scale = total / np.maximum(n, 1) if normalized else np.ones(size)
        found = ordinal * scale[curve]
        precision = found / (found + self.hit_fp_before[order] + np.spacing(1))
        envelope = _segment_reverse_max(precision, curve)
        last = np.r_[first_tp[1:], len(order)]
        sums = _read_recall(envelope, first_tp, last - first_tp, n)
        return sums.reshape(_NUM_THRESHOLDS, num_cells)

    def image_sums(self, cells, num_cells: int, npig) -> np.ndarray:
        """:meth:`sums` for cells of whole images (a prediction's cell is its image's, so a
        matched one is in its object's cell at every threshold): the entries of a cell up
        to a true positive are its rank among the cell's predictions (one sort of the
        predictions, not of every threshold's entries), less those left out there."""
        own = cells[self.preds]
        by_cell = np.argsort(own, kind="stable")
        rank = np.empty(len(own), dtype=np.intp)
        rank[by_cell] = np.arange(len(own))
        first = np.searchsorted(own[by_cell], np.arange(num_cells, dtype=own.dtype))
        hit_cell = own[self.hit_pos]
        base, dtype = self.hit_keys(num_cells)
        size = _NUM_THRESHOLDS * num_cells
        keys = np.where(hit_cell >= 0, base + hit_cell.astype(dtype), dtype(size))
        order = np.argsort(keys, kind="stable")[: np.count_nonzero(hit_cell >= 0)]
        if not len(order):
            return np.zeros((_NUM_THRESHOLDS, num_cells))
        curve = keys[order].astype(np.intp)  # t * C + c, non-decreasing
        pos = self.hit_pos[order]
        counted = rank[pos] - np.tile(first - 1, _NUM_THRESHOLDS)[curve]
        first_tp = np.searchsorted(curve, np.arange(size))
        last = np.r_[first_tp[1:], len(order)]
        if len(self.ignored_pos):
            counted -= self._ignored_before(own, num_cells, curve, pos, last)
        ordinal = np.arange(1, len(order) + 1) - first_tp[curve]
        precision = ordinal / (counted + np.spacing(1))
        envelope = _segment_reverse_max(precision, curve)
        n = np.tile(npig, _NUM_THRESHOLDS)
        sums = _read_recall(envelope, first_tp, last - first_tp, n)
        return sums.reshape(_NUM_THRESHOLDS, num_cells)

    def _ignored_before(self, own, num_cells, curve, pos, last) -> np.ndarray:
        """Predictions left out at the threshold of each true positive (sorted by ``curve``
        then position ``pos``; ``last``: where each curve's end), in its cell, before it:
        each one counts for the rest of its curve after its place."""
        cell = own[self.ignored_pos]
        keep = cell >= 0
        span = len(own) + 1
        where = self.ignored_threshold[keep] * num_cells + cell[keep]
        start = np.searchsorted(curve * span + pos, where * span + self.ignored_pos[keep])
        steps = np.bincount(start, minlength=len(curve) + 1)
        steps -= np.bincount(last[where], minlength=len(curve) + 1)
        return np.cumsum(steps)[:-1]

    # long: one pass of the partition over the class, each step a few vectorised lines
    def sums(self, cells: np.ndarray, num_cells: int, npig: np.ndarray) -> np.ndarray:
        """``(T, C)`` sum over the 101 recall thresholds of the interpolated precision.

        Args:
            cells: ``(G' + P',)`` int8 cells of the ground-truth rows then the prediction
                rows (-1: none).
            num_cells: ``C``.
            npig: ``(C,)`` objects to find per cell.
        """
        base, dtype = self.group_keys(num_cells)
        mine = cells[self.source]
        # t * C + c; an entry without a cell gets t * C - 1: the stable sort puts it after
        # every entry of the previous threshold's last cell, so it counts for none.
        keys = base + mine.astype(dtype)
        order = np.argsort(keys, kind="stable")  # radix sort for 8/16-bit keys
        keys = keys[order]
        at = np.flatnonzero((self.tp & (mine >= 0))[order])  # true positives, sorted
        size = _NUM_THRESHOLDS * num_cells
        if not len(at):
            return np.zeros((_NUM_THRESHOLDS, num_cells))
        curve = keys[at].astype(np.intp)  # t * C + c, non-decreasing
        curves = np.arange(size)
        first_entry = np.searchsorted(keys, curves.astype(keys.dtype))
        first_tp = np.searchsorted(curve, curves)
        # Entries of the curve up to each true positive (itself included), and the pure
        # false positives of its cell before it.
        counted = at + (1 - first_entry)[curve]
        counted += self._pure_before(cells, num_cells, curve, order[at])
        ordinal = np.arange(1, len(at) + 1) - first_tp[curve]
        precision = ordinal / (counted + np.spacing(1))
        envelope = _segment_reverse_max(precision, curve)
        n = np.tile(npig, _NUM_THRESHOLDS)
        last = np.r_[first_tp[1:], len(at)]
        return _read_recall(envelope, first_tp, last - first_tp, n).reshape(
            _NUM_THRESHOLDS, num_cells
        )

    def _pure_before(self, cells, num_cells, flat, entry) -> np.ndarray:
        """Pure false positives in the cell of each true positive ``entry`` (on the curve
        ``flat = t * C + c``) before it: a ``(C, R + 1)`` running count along the gaps
        (column ``j``: those before query position ``j - 1``), read at each entry's query
        position."""
        slot = cells[self.pure_pred].astype(np.intp) + 1  # slot 0: no cell
        keys = slot * self.num_queries + self.pure_gap
        counts = np.bincount(keys, minlength=(num_cells + 1) * self.num_queries)
        running = np.zeros((num_cells, self.num_queries + 1), dtype=np.intp)
        np.cumsum(counts.reshape(num_cells + 1, -1)[1:], axis=1, out=running[:, 1:])
        row = np.tile(np.arange(num_cells) * (self.num_queries + 1), _NUM_THRESHOLDS)
        return running.reshape(-1)[row[flat] + self.query[entry]]


@dataclass(frozen=True)
class CellEvaluator:
    """A run's COCO matching (all areas, 100 detections) laid out for cell-wise accumulation.

    Only the objects of the searched classes are kept: cells are given for the ``G'`` ground
    truth rows ``gt_rows`` and the ``P'`` prediction rows ``pred_rows`` (all of them when
    every class is searched); "row" below means a position in those.

    Attributes:
        gt_rows: ``(G',)`` rows of the ``DetectionSet``'s ground truth kept.
        pred_rows: ``(P',)`` rows of its predictions kept.
        gt_class: ``(G',)`` class of every kept ground-truth object.
        gt_counted: ``(G',)`` bool object to find (not a crowd region).
        num_classes: ``K``.
        class_objects: ``(K,)`` objects to find of each class.
        burial: ``(G',)`` how deep each object's detection lies among its class's false
            positives: over the 10 IoU thresholds, the mean share of them ranked above the
            prediction matched to it (1 where none is). 0: found before any false positive.
        classes: the searched classes' entries (:class:`_ClassEntries`), one per class.
    """

    gt_rows: np.ndarray
    pred_rows: np.ndarray
    gt_class: np.ndarray
    gt_counted: np.ndarray
    num_classes: int
    class_objects: np.ndarray
    burial: np.ndarray
    classes: tuple[_ClassEntries, ...]

    @classmethod
    def from_table(cls, table: MatchTable, classes=None) -> CellEvaluator:
        """The entries of ``table``; with ``classes`` (class indices) only theirs (the other
        classes then have no objects)."""
        coco, data = table.coco, table.data
        searched = np.arange(coco.num_classes) if classes is None else np.asarray(classes, int)
        gt_rows = np.flatnonzero(np.isin(data.gt_class, searched))
        pred_rows = np.flatnonzero(np.isin(data.pred_class, searched))
        gt_index = np.full(len(data.gt_ids), -1)
        gt_index[gt_rows] = np.arange(len(gt_rows))
        pred_index = np.full(len(data.pred_ids), -1)
        pred_index[pred_rows] = len(gt_rows) + np.arange(len(pred_rows))
        blocks = tuple(
            _class_entries(coco, int(k), gt_index, pred_index) for k in np.unique(searched)
        )
        return cls(
            gt_rows=gt_rows,
            pred_rows=pred_rows,
            gt_class=coco.gt_class[gt_rows].astype(np.int64),
            gt_counted=coco.gt_counted[_ALL_AREAS][gt_rows],
            num_classes=coco.num_classes,
            class_objects=np.bincount(
                coco.gt_class[coco.gt_counted[_ALL_AREAS]], minlength=coco.num_classes
            ),
            burial=_burial(blocks, len(gt_rows)),
            classes=blocks,
        )

    def num_gt(self, gt_cells: np.ndarray, num_cells: int, weights=None) -> np.ndarray:
        """``(M, K, C)`` objects to find per partition, class and cell (with ``weights``,
        ``(G',)`` a value of each object: their sum).

        Args:
            gt_cells: ``(M, G')`` int cell of every ground-truth row in each of ``M``
                partitions, -1 for none.
            num_cells: ``C``, cells are ``0..C-1``.
        """
        gt_cells = np.atleast_2d(gt_cells)
        num_parts, k = len(gt_cells), self.num_classes
        part = np.arange(num_parts)[:, None] * k
        keep = (gt_cells >= 0) & self.gt_counted[None, :]
        flat = ((part + self.gt_class[None, :]) * num_cells + gt_cells)[keep]
        values = None if weights is None else np.broadcast_to(weights, gt_cells.shape)[keep]
        counts = np.bincount(flat, values, minlength=num_parts * k * num_cells)
        return counts.reshape(num_parts, k, num_cells)

    def ap(
        self,
        gt_cells: np.ndarray,
        pred_cells: np.ndarray,
        num_cells: int,
        npig: np.ndarray | None = None,
        classes: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(M, K, C)`` COCO AP@[.5:.95] of each class on each cell, NaN without objects.

        Args:
            gt_cells: ``(M, G')`` cell of every ground-truth row per partition (-1: none).
            pred_cells: ``(M, P')`` own cell of every prediction row (for unmatched ones).
            num_cells: ``C`` (at most 127).
            npig: ``num_gt(gt_cells, num_cells)`` when the caller has it.
            classes: ``(M, K)`` bool, the classes to evaluate in each partition (default:
                all); the others are NaN.
        """
        return self._summed_ap(gt_cells, pred_cells, num_cells, npig, classes, "sums")

    def image_ap(
        self,
        gt_cells: np.ndarray,
        pred_cells: np.ndarray,
        num_cells: int,
        npig: np.ndarray | None = None,
        classes: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`ap` for cells of whole images (every object and prediction takes its
        image's cell: pycocotools on those images), faster."""
        return self._summed_ap(gt_cells, pred_cells, num_cells, npig, classes, "image_sums")

    def _summed_ap(self, gt_cells, pred_cells, num_cells, npig, classes, sums: str):
        """:meth:`ap` with each class block's ``sums`` method (``sums`` or ``image_sums``)."""
        gt_cells, pred_cells = np.atleast_2d(gt_cells), np.atleast_2d(pred_cells)
        if npig is None:
            npig = self.num_gt(gt_cells, num_cells)  # (M, K, C)
        total = np.zeros((len(gt_cells), _NUM_THRESHOLDS, self.num_classes, num_cells))
        wanted = _pick_classes(classes, npig)
        for m in range(len(gt_cells)):
            cells = np.concatenate([gt_cells[m], pred_cells[m]]).astype(np.int8)
            for block in self.classes:
                if wanted[m, block.k]:
                    method = getattr(block, sums)
                    total[m, :, block.k] = method(cells, num_cells, npig[m, block.k])
        ap = total.mean(axis=1) / len(RECALL_THRESHOLDS)
        return np.where((npig > 0) & wanted[:, :, None], ap, np.nan)

    def object_ap(
        self,
        gt_cells: np.ndarray,
        num_cells: int,
        npig: np.ndarray | None = None,
        classes: np.ndarray | None = None,
        normalized: bool = True,
    ) -> np.ndarray:
        """``(M, K, C)`` AP@[.5:.95] of each class's objects in each cell, NaN without
        objects: the cell's objects are the ones to find, a prediction matched to an object
        of another cell is left out, and every false positive of the class counts (Hoiem et
        al., "Diagnosing error in object detectors", 2012). ``normalized``: precision as if
        the class had only objects like these, ``tp * N / n`` for ``n`` objects of the
        class's ``N``; then the AP of the whole class is its usual AP, and a cell's is
        comparable with it. Not normalized, it is what :meth:`MatchTable.evaluate` gives
        with the cell's objects and every prediction.

        Args:
            gt_cells: ``(M, G')`` cell of every ground-truth row per partition (-1: none).
            num_cells: ``C`` (at most 127).
            npig: ``num_gt(gt_cells, num_cells)`` when the caller has it.
            classes: ``(M, K)`` bool, the classes to evaluate (default: all); others NaN.
            normalized: scale the true positives to the class's objects.
        """
        gt_cells = np.atleast_2d(gt_cells)
        if npig is None:
            npig = self.num_gt(gt_cells, num_cells)
        total = np.zeros((len(gt_cells), _NUM_THRESHOLDS, self.num_classes, num_cells))
        wanted = _pick_classes(classes, npig)
        for m in range(len(gt_cells)):
            cells = gt_cells[m].astype(np.int8)
            for block in self.classes:
                if wanted[m, block.k]:
                    objects = int(self.class_objects[block.k])
                    total[m, :, block.k] = block.object_sums(
                        cells, num_cells, npig[m, block.k], objects, normalized
                    )
        ap = total.mean(axis=1) / len(RECALL_THRESHOLDS)
        return np.where((npig > 0) & wanted[:, :, None], ap, np.nan)


def _burial(blocks, num_gt: int) -> np.ndarray:
    """``(G',)`` :attr:`CellEvaluator.burial` of every kept object."""
    out = np.ones(num_gt)
    for block in blocks:
        share = block.hit_fp_before / np.maximum(block.false_total, 1)[block.hit_threshold]
        out += np.bincount(block.hit_gt, share - 1.0, minlength=num_gt) / _NUM_THRESHOLDS
    return out


def _pick_classes(classes, npig: np.ndarray) -> np.ndarray:
    """``(M, K)`` bool: the classes to evaluate (default all)."""
    return np.ones(npig.shape[:2], bool) if classes is None else np.atleast_2d(classes)


def _class_entries(coco, k: int, gt_index, pred_index) -> _ClassEntries:
    """Class ``k``'s entries (see :class:`_ClassEntries`); ``gt_index``/``pred_index`` map
    the set's rows to positions in ``[gt_cells, pred_cells]``."""
    (mine,) = np.nonzero(coco.pred_class == k)  # accumulation positions, by score
    tp = coco.pred_tp[:, _ALL_AREAS, mine]  # (T, D_k)
    fp = coco.pred_fp[:, _ALL_AREAS, mine]
    pure = fp.all(axis=0)
    t, d = np.nonzero((tp | fp) & ~pure[None, :])  # threshold-major, by position
    is_tp = tp[t, d]
    matched = gt_index[np.maximum(coco.pred_gt[t, _ALL_AREAS, mine[d]], 0)]
    hits = np.flatnonzero(is_tp)
    false_before = np.cumsum(fp, axis=1)[t[hits], d[hits]]  # (a true positive is not one)
    queries = np.unique(d[is_tp])  # positions where some prediction is a true positive
    (pure_pos,) = np.nonzero(pure)
    gap = np.searchsorted(queries, pure_pos, side="right")
    counted = gap < len(queries)  # the others come after the last true positive
    last = int(queries[-1]) + 1 if len(queries) else 0
    ignored_t, ignored_d = np.nonzero(~(tp | fp)[:, :last])
    return _ClassEntries(
        k=k,
        source=np.where(is_tp, matched, pred_index[coco.pred_rows[mine[d]]]).astype(np.intp),
        threshold=t.astype(np.int16),
        tp=is_tp,
        query=np.where(is_tp, np.searchsorted(queries, d) + 1, 0).astype(np.intp),
        pure_pred=pred_index[coco.pred_rows[mine[pure_pos[counted]]]].astype(np.intp),
        pure_gap=gap[counted].astype(np.intp),
        num_queries=len(queries),
        hit_gt=matched[hits].astype(np.intp),
        hit_threshold=t[hits].astype(np.int16),
        hit_fp_before=false_before.astype(np.float64),
        false_total=fp.sum(axis=1).astype(np.float64),
        preds=pred_index[coco.pred_rows[mine[:last]]].astype(np.intp),
        hit_pos=d[hits].astype(np.intp),
        ignored_threshold=ignored_t.astype(np.intp),
        ignored_pos=ignored_d.astype(np.intp),
    )


def _segment_reverse_max(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """``max(values[i:end of i's segment])`` for non-decreasing segment ids and values in
    ``[0, 1]``."""
    offset = 2.0 * segment  # later segments never exceed earlier ones
    shifted = values - offset
    np.maximum.accumulate(shifted[::-1], out=shifted[::-1])
    shifted += offset
    return shifted


def _read_recall(envelope, first, count, n) -> np.ndarray:
    """``(S,)`` sum over the 101 recall thresholds of the interpolated precision of ``S``
    curves: ``envelope`` of their true positives, curve by curve (curve ``s`` holds
    ``count[s]`` from ``first[s]`` on) with ``n[s]`` objects.

    pycocotools reads, for recall threshold ``r``, the first detection whose recall
    ``tp / n`` reaches ``r``: the ``v``-th true positive with the smallest ``v`` such that
    ``v / n >= r`` (the same float division), none when the curve has fewer."""
    n = np.asarray(n, np.intp)
    v = _recall_steps(1 << int(n.max()).bit_length())[n]  # (S, 101)
    read = (v <= count[:, None]) & (n[:, None] > 0)
    index = np.where(read, first[:, None] + v - 1, 0)
    return np.where(read, envelope[index], 0.0).sum(axis=1)


@functools.lru_cache(maxsize=32)  # one table per power of two
def _recall_steps(size: int) -> np.ndarray:
    """``(size, 101)``: for a curve of ``n`` objects (row ``n``), the true positive each
    recall threshold ``r`` reads: the smallest ``v >= 1`` with ``v / n >= r``."""
    safe = np.maximum(np.arange(size, dtype=np.float64), 1.0)[:, None]
    r = RECALL_THRESHOLDS[None, :]
    v = np.maximum(np.floor(r * safe) - 1.0, 1.0)  # v - 1 < the answer
    for _ in range(3):
        v += v / safe < r
    return v.astype(np.intp)
