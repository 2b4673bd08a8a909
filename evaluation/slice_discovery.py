"""Failure slices found automatically: which range of which descriptor costs a class its AP.

For an evaluation run (its :class:`~detection_debugger.evaluation.MatchTable`) and a set of
:class:`Descriptor` s (values of every ground-truth object and prediction: box size, patch
contrast, a sample field...), :func:`discover` searches, per class:

- **single-descriptor slices**: for a numeric descriptor the ranges below the class's 10th,
  25th, 33rd and 50th percentiles, above the 50th, 67th, 75th and 90th, and between the 25th
  and 75th and the 33rd and 67th; for a categorical one each frequent value;
- **pairs**: every cell of the 3 x 3 grid of two descriptors' tertiles (frequent values).

Each slice is evaluated **exactly** from the stored matches (:class:`CellEvaluator`):

- an **image slice** (image descriptors only) by pycocotools' AP on its images;
- an **object slice** (a descriptor of the objects in it) by the normalized AP of its
  objects against every false positive of the class (:meth:`CellEvaluator.object_ap`,
  Hoiem et al. 2012): the class's AP if all its objects were like these.

**Ranking.** ``score = (baseline_AP - AP) * num_gt / class_num_gt``: the AP the slice loses
against the class on the whole run, weighted by the share of the class's objects it holds.

**Chance.** A slice of ``n`` objects drawn at random also loses AP, more so when ``n`` is
small. An object slice is tested by a one-sided Mann-Whitney test (:func:`_mann_whitney`):
are its objects' detections buried deeper among the class's false positives
(:attr:`CellEvaluator.burial`) than the rest of the class's? An image slice against the
spread of random image slices, measured per class from random partitions of the images into
2, 4 and 8 parts: ``Var(AP_n) ~ s^2 (1/n - 1/N)`` (sampling without replacement), a p-value
that of ``z = (baseline - AP) / sd(n)``. A slice is kept only if its p-value times the
number of slices tried (Bonferroni correction) is at most ``alpha`` and it has at least
``min_support`` objects. A pair is kept only when it loses more than its worse
one-descriptor parent and is significantly worse than the rest of that parent (same tests),
a pair cell that is one of its parents again is not tried, and a slice whose objects mostly
overlap a better ranked one of the same class (or lie mostly inside it) is dropped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from detection_debugger.evaluation.cell_ap import CellEvaluator
from detection_debugger.evaluation.match_table import MatchTable

__all__ = [
    "Condition",
    "Descriptor",
    "DiscoveryConfig",
    "DiscoveryResult",
    "Hypothesis",
    "discover",
]

IMAGES, OBJECTS = "images", "objects"
QUANTILES = (0.1, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.9)  # fine bins 0..7
_PERCENT = ("10th", "25th", "33rd", "50th", "67th", "75th", "90th")
# Single-descriptor partitions of the fine bins (each a list of inclusive bin ranges).
_SINGLE_PARTITIONS = (
    ((0, 0), (1, 6), (7, 7)),
    ((0, 1), (2, 5), (6, 7)),
    ((0, 2), (3, 4), (5, 7)),  # tertiles: the parents of the pairs
    ((0, 3), (4, 7)),
)
_TERTILES = _SINGLE_PARTITIONS[2]
_MAX_CATEGORIES = 8  # single slices: the most frequent values; pairs: the 2 most + other
_WORKERS = min(8, os.cpu_count() or 1)  # threads evaluating partitions


@dataclass(frozen=True)
class Descriptor:
    """One property of every object of a run.

    Attributes:
        name: short name (``contrast``, ``size``, ``weather``...).
        level: ``"images"`` (a property of the image: every object takes its image's value)
            or ``"objects"``.
        gt_values: ``(G,)`` values of the ground truth: float64 (NaN when unknown), or for a
            categorical descriptor int codes into ``categories`` (-1 when unknown).
        pred_values: ``(P,)`` the same for the predictions.
        categories: the values of a categorical descriptor, None for a numeric one.
        field: where the values live (the FiftyOne path; used to save a slice).
        text: what it is, in words (``"patch contrast / image contrast"``).
    """

    name: str
    level: str
    gt_values: np.ndarray
    pred_values: np.ndarray
    categories: tuple[str, ...] | None = None
    field: str = ""
    text: str = ""

    @classmethod
    def of_images(cls, name: str, image_values, table: MatchTable, **kwargs) -> Descriptor:
        """A descriptor of the images (``(I,)`` values in the table's image order)."""
        values = np.asarray(image_values)
        data = table.data
        return cls(name, IMAGES, values[data.gt_image], values[data.pred_image], **kwargs)

    @property
    def numeric(self) -> bool:
        return self.categories is None


@dataclass(frozen=True)
class Condition:
    """``low <= descriptor < high`` (numeric; None: unbounded) or ``descriptor == value``."""

    descriptor: str
    field: str
    level: str
    low: float | None = None
    high: float | None = None
    value: str | None = None
    code: int | None = None
    text: str = ""
    note: str = ""  # e.g. "lowest 25% of the class"

    def mask(self, values: np.ndarray) -> np.ndarray:
        """Which of ``values`` (a descriptor's values or codes) satisfy the condition."""
        if self.code is not None:
            return values == self.code
        keep = np.isfinite(values)
        if self.low is not None:
            keep &= values >= self.low
        if self.high is not None:
            keep &= values < self.high
        return keep

    def describe(self) -> str:
        name = self.text or self.descriptor
        if self.code is not None:
            return f"{name} = {self.value}"
        if self.low is None:
            return f"{name} < {self.high:.3g} ({self.note})"
        if self.high is None:
            return f"{name} >= {self.low:.3g} ({self.note})"
        return f"{self.low:.3g} <= {name} < {self.high:.3g} ({self.note})"

    def short(self) -> str:
        if self.code is not None:
            return f"{self.descriptor}={self.value}"
        if self.low is None:
            return f"{self.descriptor}<{self.high:.3g}"
        if self.high is None:
            return f"{self.descriptor}>={self.low:.3g}"
        return f"{self.descriptor} in [{self.low:.3g}, {self.high:.3g})"

    def to_dict(self) -> dict:
        keys = ("descriptor", "field", "level", "low", "high", "value")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class Hypothesis:
    """A slice of one class that loses AP: where the model may fail.

    ``AP`` of an object slice is its normalized AP (:meth:`CellEvaluator.object_ap`: the
    class's AP if all its objects were like these); ``slice_AP`` is what the saved slice
    evaluates to (these objects against every prediction of the class, not normalized).
    For an image slice both are pycocotools' AP on those images."""

    cls: str
    conditions: tuple[Condition, ...]
    num_gt: int
    AP: float
    baseline_AP: float
    class_num_gt: int
    p_value: float  # Bonferroni-adjusted
    slice_AP: float = float("nan")  # what the saved slice's evaluation gives

    @property
    def level(self) -> str:
        return OBJECTS if any(c.level == OBJECTS for c in self.conditions) else IMAGES

    @property
    def delta_AP(self) -> float:
        return self.AP - self.baseline_AP

    @property
    def score(self) -> float:
        return -self.delta_AP * self.num_gt / self.class_num_gt

    @property
    def name(self) -> str:
        return f"{self.cls}: " + " & ".join(c.short() for c in self.conditions)

    @property
    def description(self) -> str:
        where = " and ".join(c.describe() for c in self.conditions)
        scope = "objects" if self.level == OBJECTS else "objects in images"
        metric = "normalized AP" if self.level == OBJECTS else "AP"
        return (
            f"{self.cls} {scope} where {where}: {metric} {self.AP:.3f} vs {self.baseline_AP:.3f} "
            f"for the class ({self.num_gt} of {self.class_num_gt} objects)"
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "level": self.level,
            "num_gt": self.num_gt,
            "AP": self.AP,
            "delta_AP": self.delta_AP,
            "baseline_AP": self.baseline_AP,
            "score": self.score,
            "class": self.cls,
            "class_num_gt": self.class_num_gt,
            "p_value": self.p_value,
            "slice_AP": self.slice_AP,
            "conditions": [c.to_dict() for c in self.conditions],
        }


@dataclass(frozen=True)
class DiscoveryConfig:
    """Parameters of :func:`discover`.

    Attributes:
        min_support: fewest ground-truth objects of a reported slice.
        max_fraction: largest share of the class's objects in a slice (a bigger one is the
            class, not a slice).
        alpha: family-wise error rate of the Bonferroni correction.
        pairs: search pairs of descriptors too.
        top: hypotheses returned.
        max_overlap: drop a slice sharing more than this Jaccard overlap of objects with a
            better-ranked one of the same class.
        max_nested: drop a slice with more than this share of its objects inside a
            better-ranked one of the same class.
        pair_margin: AP a pair must lose beyond both of its parents.
        null_parts: random partitions of the images measuring the chance AP of image slices
            (each size, each seed; object slices are tested by rank, see the module).
        seed: of the random partitions.
    """

    min_support: int = 20
    max_fraction: float = 0.75
    alpha: float = 0.05
    pairs: bool = True
    top: int = 10
    max_overlap: float = 0.6
    max_nested: float = 0.8
    pair_margin: float = 0.02
    null_parts: tuple[int, ...] = (2, 4, 8)
    null_seeds: int = 3
    seed: int = 0


@dataclass(frozen=True)
class DiscoveryResult:
    """What :func:`discover` found.

    Attributes:
        hypotheses: the best slices, best first.
        num_tested: slices evaluated with enough support (the Bonferroni factor).
        num_significant: of those, the ones that passed the correction.
        baseline: AP of each searched class on the whole run.
        descriptors: names of the descriptors searched.
    """

    hypotheses: list[Hypothesis]
    num_tested: int
    num_significant: int
    baseline: dict[str, float]
    descriptors: list[str] = field(default_factory=list)

    def to_dicts(self) -> list[dict]:
        return [h.to_dict() for h in self.hypotheses]


# ---------------------------------------------------------------- binning


@dataclass(frozen=True)
class _Binned:
    """A descriptor's values as small integers: per class fine bins or category codes.

    ``gt_bins``/``pred_bins`` are -1 when unknown; ``edges`` is ``(K, 7)`` per-class
    quantile edges (numeric) and ``top`` the codes of the most frequent values
    (categorical)."""

    descriptor: Descriptor
    gt_bins: np.ndarray
    pred_bins: np.ndarray
    edges: np.ndarray | None
    top: np.ndarray | None


@dataclass(frozen=True)
class _Objects:
    """The searched classes' objects (the evaluator's rows) and what binning needs of them."""

    gt_rows: np.ndarray
    pred_rows: np.ndarray
    gt_class: np.ndarray
    gt_counted: np.ndarray
    pred_class: np.ndarray
    gt_image: np.ndarray
    pred_image: np.ndarray
    num_classes: int
    num_images: int

    @classmethod
    def of(cls, table: MatchTable, evaluator: CellEvaluator) -> _Objects:
        data, gt, pred = table.data, evaluator.gt_rows, evaluator.pred_rows
        return cls(
            gt,
            pred,
            data.gt_class[gt],
            ~data.gt_crowd[gt],
            data.pred_class[pred],
            data.gt_image[gt],
            data.pred_image[pred],
            data.num_classes,
            data.num_images,
        )


def _bin(descriptor: Descriptor, data: _Objects, classes: np.ndarray) -> _Binned | None:
    gt = np.asarray(descriptor.gt_values)[data.gt_rows]
    pred = np.asarray(descriptor.pred_values)[data.pred_rows]
    counted = data.gt_counted
    if not descriptor.numeric:
        known = gt[counted & (gt >= 0)].astype(np.int64)
        if len(np.unique(known)) < 2:
            return None
        top = np.argsort(-np.bincount(known), kind="stable")[:_MAX_CATEGORIES]
        return _Binned(descriptor, gt.astype(np.int64), pred.astype(np.int64), None, top)
    edges = np.full((data.num_classes, len(QUANTILES)), np.nan)
    for k in classes:
        values = gt[counted & (data.gt_class == k) & np.isfinite(gt)]
        if len(np.unique(values)) >= 2:
            edges[k] = np.quantile(values, QUANTILES, method="lower")
    if np.isnan(edges[classes]).all():
        return None
    return _Binned(
        descriptor,
        _fine_bins(gt, data.gt_class, edges),
        _fine_bins(pred, data.pred_class, edges),
        edges,
        None,
    )


def _fine_bins(values: np.ndarray, classes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin ``b`` of each value under its class's edges (``edges[b-1] <= v < edges[b]``)."""
    bins = np.zeros(len(values), dtype=np.int8)
    for b in range(edges.shape[1]):
        bins += values >= edges[classes, b]
    unknown = ~np.isfinite(values) | np.isnan(edges[classes, 0])
    bins[unknown] = -1
    return bins


def _cells(binned: _Binned, ranges) -> tuple[np.ndarray, np.ndarray]:
    """Cells of a numeric partition (``ranges`` of fine bins) or of categories (None: every
    frequent value; ``"pair"``: the two most frequent and the rest)."""
    if binned.edges is not None:
        lookup = np.full(len(QUANTILES) + 2, -1, dtype=np.int8)
        for cell, (lo, hi) in enumerate(ranges):
            lookup[lo : hi + 1] = cell
        return lookup[binned.gt_bins], lookup[binned.pred_bins]
    top = binned.top if ranges is None else binned.top[:2]
    size = max(int(binned.top.max()), int(binned.gt_bins.max()), int(binned.pred_bins.max())) + 2
    lookup = np.full(size, -1, dtype=np.int8)  # the last slot: unknown (-1)
    lookup[top] = np.arange(len(top))
    return lookup[binned.gt_bins], lookup[binned.pred_bins]


def _condition(binned: _Binned, k: int, ranges, cell: int) -> Condition:
    """The condition of ``cell`` of a partition, for class ``k``."""
    d = binned.descriptor
    base = {"descriptor": d.name, "field": d.field, "level": d.level, "text": d.text}
    if binned.edges is None:
        code = int((binned.top if ranges is None else binned.top[:2])[cell])
        return Condition(**base, value=d.categories[code], code=code)
    lo, hi = ranges[cell]
    low = float(binned.edges[k, lo - 1]) if lo > 0 else None
    high = float(binned.edges[k, hi]) if hi < len(QUANTILES) else None
    if low is None:
        note = f"below the class's {_PERCENT[hi]} percentile"
    elif high is None:
        note = f"from the class's {_PERCENT[lo - 1]} percentile up"
    else:
        note = f"{_PERCENT[lo - 1]} to {_PERCENT[hi]} percentile"
    return Condition(**base, low=low, high=high, note=note)


# ---------------------------------------------------------------- partitions


@dataclass(frozen=True)
class _Partition:
    """One partition searched: one descriptor's cells, or the 3 x 3 cells of two."""

    parts: tuple[tuple[_Binned, object], ...]  # (binned descriptor, ranges) per descriptor
    gt_cells: np.ndarray
    pred_cells: np.ndarray
    num_cells: int

    def conditions(self, k: int, cell: int) -> tuple[Condition, ...]:
        if len(self.parts) == 1:
            binned, ranges = self.parts[0]
            return (_condition(binned, k, ranges, cell),)
        (a, ra), (b, rb) = self.parts
        return (_condition(a, k, ra, cell // 3), _condition(b, k, rb, cell % 3))

    def parent_cells(self, cell: int) -> tuple[int, int]:
        return cell // 3, cell % 3


def _single_partitions(binned: _Binned) -> list[_Partition]:
    if binned.edges is None:
        gt, pred = _cells(binned, None)
        return [_Partition(((binned, None),), gt, pred, len(binned.top))]
    out = []
    for ranges in _SINGLE_PARTITIONS:
        gt, pred = _cells(binned, ranges)
        out.append(_Partition(((binned, ranges),), gt, pred, len(ranges)))
    return out


def _pair_ranges(binned: _Binned):
    return _TERTILES if binned.edges is not None else "pair"


# Cell of a pair from its two parents' cells (-1..2 each) as (a + 1) * 4 + (b + 1).
_PAIR_CELL = np.array(
    [-1 if a < 0 or b < 0 else a * 3 + b for a in range(-1, 3) for b in range(-1, 3)],
    dtype=np.int8,
)


def _pair_partition(a: _Binned, b: _Binned, parents: dict) -> _Partition:
    """The 3 x 3 cells of ``a`` and ``b``; ``parents`` caches each descriptor's cells."""
    cells = []
    for binned in (a, b):
        if id(binned) not in parents:
            parents[id(binned)] = _cells(binned, _pair_ranges(binned))
        cells.append(parents[id(binned)])
    (ga, pa), (gb, pb) = cells
    gt = _PAIR_CELL[(ga + 1) * 4 + (gb + 1)]
    pred = _PAIR_CELL[(pa + 1) * 4 + (pb + 1)]
    return _Partition(((a, _pair_ranges(a)), (b, _pair_ranges(b))), gt, pred, 9)


def _evaluate(evaluator: CellEvaluator, partitions: list[_Partition], needed, ranks):
    """``(M, K, C)`` AP, objects and sum of the objects' ``ranks`` of every partition's
    cells, one partition a task on the machine's cores (numpy releases the GIL in its
    sorts, scans and gathers).

    ``needed(counts)`` says, from a partition's ``(K, C)`` objects per class and cell, which
    classes need their AP (``(K,)`` bool); the others are not evaluated (NaN): none of their
    cells has the support to be reported or to be a pair's parent."""
    width = max(p.num_cells for p in partitions)
    shape = (len(partitions), evaluator.num_classes, width)
    ap, n, w = np.full(shape, np.nan), np.zeros(shape, dtype=np.int64), np.zeros(shape)

    def run(i: int) -> None:
        p = partitions[i]
        counts = evaluator.num_gt(p.gt_cells, p.num_cells)  # (1, K, C)
        n[i, :, : p.num_cells] = counts[0]
        w[i, :, : p.num_cells] = evaluator.num_gt(p.gt_cells, p.num_cells, ranks)[0]
        classes = needed(counts[0])
        if classes.any():
            ap[i, :, : p.num_cells] = _ap(evaluator, p, counts, classes[None, :])[0]

    workers = min(_WORKERS, len(partitions))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, range(len(partitions))))
    else:
        for i in range(len(partitions)):
            run(i)
    return ap, n, w


def _ap(evaluator: CellEvaluator, partition: _Partition, counts, classes) -> np.ndarray:
    """``(1, K, C)`` AP of a partition's cells: object slices (a descriptor of the objects
    is in it) by :meth:`CellEvaluator.object_ap`, normalized; image slices by
    :meth:`CellEvaluator.ap` (pycocotools on those images)."""
    if _level(partition) == OBJECTS:
        return evaluator.object_ap(partition.gt_cells, partition.num_cells, counts, classes)
    return evaluator.image_ap(
        partition.gt_cells, partition.pred_cells, partition.num_cells, counts, classes
    )


# ---------------------------------------------------------------- chance


def _chance_spread(evaluator: CellEvaluator, data: _Objects, config, baseline, totals):
    """``{level: (K,) s^2}``: the spread of random-slice AP, ``Var(AP_n) ~ s^2 (1/n - 1/N)``,
    fitted on random partitions of the images (image slices; object slices are tested by
    :func:`_mann_whitney`) into 2, 4, 8 parts."""
    rng = np.random.default_rng(config.seed)
    cells = max(config.null_parts)
    out = {}
    for level in (IMAGES,):
        gt, pred = [], []
        for parts in config.null_parts:
            for _ in range(config.null_seeds):
                if level == IMAGES:
                    image = rng.integers(0, parts, data.num_images, dtype=np.int8)
                    gt.append(image[data.gt_image])
                    pred.append(image[data.pred_image])
                else:
                    gt.append(rng.integers(0, parts, len(data.gt_rows), dtype=np.int8))
                    pred.append(rng.integers(0, parts, len(data.pred_rows), dtype=np.int8))
        gt, pred = np.stack(gt), np.stack(pred)
        n = evaluator.num_gt(gt, cells)
        ap = evaluator.image_ap(gt, pred, cells, n)  # (M, K, C)
        n = n.astype(np.float64)
        total = totals[None, :, None].astype(np.float64)
        usable = (n > 0) & (n < total) & np.isfinite(ap)
        scale = np.where(usable, 1.0 / np.maximum(n, 1) - 1.0 / np.maximum(total, 1), 1.0)
        deviation = np.where(usable, (ap - baseline[None, :, None]) ** 2 / scale, 0.0)
        used = usable.sum(axis=(0, 2))
        out[level] = np.where(used > 0, deviation.sum(axis=(0, 2)) / np.maximum(used, 1), np.nan)
    return out


def _p_values(delta, n, total, spread) -> np.ndarray:
    """One-sided p-values of AP losses ``delta`` (>0: the slice is worse) of slices of ``n``
    objects out of ``total``, under random-slice spread ``spread``."""
    sd = np.sqrt(np.maximum(spread * (1.0 / n - 1.0 / total), 1e-12))
    z = delta / sd
    return 0.5 * np.array([math.erfc(v / math.sqrt(2.0)) for v in z.ravel()]).reshape(z.shape)


def _burial_ranks(burial, gt_class, counted, num_classes) -> tuple[np.ndarray, np.ndarray]:
    """``(G',)`` rank of each object's burial among its class's objects (1: found first;
    ties share their mean rank; 0 for the objects not counted) and ``(K,)`` the ties'
    ``sum(t^3 - t)`` of each class (the Mann-Whitney variance correction)."""
    rows = np.flatnonzero(counted)
    order = rows[np.lexsort((burial[rows], gt_class[rows]))]
    cls, value = gt_class[order], burial[order]
    new = np.r_[True, (cls[1:] != cls[:-1]) | (value[1:] != value[:-1])]
    start = np.flatnonzero(new)
    size = np.diff(np.r_[start, len(order)]).astype(np.float64)
    class_start = np.searchsorted(cls, np.arange(num_classes))
    ranks = np.zeros(len(burial))
    ranks[order] = (start + (size - 1) / 2.0)[np.cumsum(new) - 1] - class_start[cls] + 1
    ties = np.bincount(cls[start], size**3 - size, minlength=num_classes)
    return ranks, ties


def _mann_whitney(rank_sum, n, total, ties) -> np.ndarray:
    """One-sided p-values (normal approximation, continuity and tie corrections) that the
    ``n`` objects of a slice, whose ranks among the ``total`` of their class sum to
    ``rank_sum``, are ranked higher (found later or not at all) than the others."""
    n, total = np.asarray(n, np.float64), np.asarray(total, np.float64)
    other = total - n
    u = rank_sum - n * (n + 1) / 2
    var = n * other / 12 * ((total + 1) - ties / np.maximum(total * (total - 1), 1))
    z = (u - n * other / 2 - 0.5) / np.sqrt(np.maximum(var, 1e-12))
    return 0.5 * np.array([math.erfc(v / math.sqrt(2.0)) for v in np.ravel(z)]).reshape(z.shape)


# ---------------------------------------------------------------- search


@dataclass(frozen=True)
class _Candidates:
    """Every evaluated slice with enough support, flat: partition, class, cell, objects, AP,
    the objects' rank sum and (pairs) the AP, objects, single partition and cell of its
    worse one-descriptor parent."""

    partition: np.ndarray
    k: np.ndarray
    cell: np.ndarray
    n: np.ndarray
    ap: np.ndarray
    rank_sum: np.ndarray
    parent_ap: np.ndarray | None = None
    parent_n: np.ndarray | None = None
    parent_partition: np.ndarray | None = None
    parent_cell: np.ndarray | None = None


def _candidates(evaluated, classes, totals, config, parents=None) -> _Candidates:
    """The cells with enough support; of pairs, not those holding all the objects of one
    of their parents (a descriptor's tertiles collapse when its values tie, e.g. a
    border flag: the pair cell is then a one-descriptor slice again)."""
    ap, n, w = evaluated
    mask = np.zeros(ap.shape, dtype=bool)
    mask[:, classes, :] = True
    upper = np.floor(config.max_fraction * totals)[None, :, None]
    mask &= (n >= config.min_support) & (n <= upper) & np.isfinite(ap)
    if parents is not None:
        *parents, n_first, n_second = parents
        mask &= (n != n_first) & (n != n_second)
    at = np.nonzero(mask)
    found = [a[at] for a in (n, ap, w)]
    if parents is not None:
        found += [a[at] for a in parents]
    return _Candidates(*at, *found)


def _pair_parents(pairs, ap_single, n_single, single_index):
    """``(M, K, 9)`` AP, objects, single partition and cell of the worse (lower-AP)
    one-descriptor parent (tertile or value) of each pair cell, and the objects of each of
    its two parents."""
    ap_single = np.nan_to_num(ap_single, nan=np.inf)
    ap = np.full((len(pairs), ap_single.shape[1], 9), np.inf)
    n, n_first, n_second = np.zeros(ap.shape), np.full(ap.shape, -1), np.full(ap.shape, -1)
    part, where = np.zeros(ap.shape, dtype=int), np.zeros(ap.shape, dtype=int)
    width = ap_single.shape[2]
    for i, pair in enumerate(pairs):
        (a, _), (b, _) = pair.parts
        ia, ib = single_index[id(a)], single_index[id(b)]
        cells = [c for c in range(9) if max(pair.parent_cells(c)) < width]
        ca = np.array([pair.parent_cells(c)[0] for c in cells], dtype=int)
        cb = np.array([pair.parent_cells(c)[1] for c in cells], dtype=int)
        first, second = ap_single[ia][:, ca], ap_single[ib][:, cb]  # (K, cells)
        a_worse = first <= second
        ap[i][:, cells] = np.where(a_worse, first, second)
        n[i][:, cells] = np.where(a_worse, n_single[ia][:, ca], n_single[ib][:, cb])
        part[i][:, cells] = np.where(a_worse, ia, ib)
        where[i][:, cells] = np.where(a_worse, ca, cb)
        n_first[i][:, cells], n_second[i][:, cells] = n_single[ia][:, ca], n_single[ib][:, cb]
    return ap, n, part, where, n_first, n_second


@dataclass(frozen=True)
class _Tests:
    """The significance tests, Bonferroni-corrected for the ``num_tested`` slices.

    Object slices: :func:`_mann_whitney` on the objects' burial ranks (the slice against the
    rest of its class; a pair against the rest of its worse parent). Image slices: the AP
    loss against the spread of random image slices (:func:`_chance_spread`)."""

    data: _Objects
    baseline: np.ndarray
    totals: np.ndarray
    spread: np.ndarray  # (K,) s^2 of image slices
    ties: np.ndarray
    burial: np.ndarray  # (G',) of every object
    num_tested: int

    def slices(self, partitions, cands: _Candidates, config, singles) -> tuple:
        """``(p, keep)``: adjusted p-values and which candidates are reported."""
        k = cands.k
        objects = np.array([_level(partitions[m]) == OBJECTS for m in cands.partition], bool)
        delta = self.baseline[k] - cands.ap
        raw = np.where(
            objects,
            _mann_whitney(cands.rank_sum, cands.n, self.totals[k], self.ties[k]),
            _p_values(delta, cands.n, self.totals[k], self.spread[k]),
        )
        p = np.minimum(1.0, raw * self.num_tested)
        keep = (delta > 0) & (p <= config.alpha)
        if cands.parent_ap is not None:  # a pair must lose more than its worse parent
            keep &= cands.parent_ap - cands.ap > config.pair_margin
            for i in np.flatnonzero(keep):
                p[i] = max(p[i], min(1.0, self._beyond_parent(partitions, cands, i, singles)))
            keep &= p <= config.alpha
        return p, keep

    def _beyond_parent(self, partitions, cands: _Candidates, i: int, singles) -> float:
        """Bonferroni-adjusted p that pair cell ``i`` is worse than the rest of its parent."""
        k, n = cands.k[i], cands.n[i]
        if _level(partitions[cands.partition[i]]) != OBJECTS:
            beyond = cands.parent_ap[i] - cands.ap[i]
            raw = _p_values(beyond, n, max(cands.parent_n[i], n + 1), self.spread[k])
            return float(raw * self.num_tested)
        data = self.data
        mine = (data.gt_class == k) & data.gt_counted
        parent = mine & (singles[cands.parent_partition[i]].gt_cells == cands.parent_cell[i])
        inside = parent & (partitions[cands.partition[i]].gt_cells == cands.cell[i])
        values = self.burial[parent]
        same = np.zeros(len(values), dtype=int)
        ranks, ties = _burial_ranks(values, same, np.ones(len(values), bool), 1)
        raw = _mann_whitney(ranks[inside[parent]].sum(), n, len(values), ties[0])
        return float(raw * self.num_tested)


# long: the search in order (bins, singles, pairs, chance, correction, ranking)
def discover(
    table: MatchTable,
    descriptors: Sequence[Descriptor],
    classes: Sequence[str] | None = None,
    config: DiscoveryConfig = DiscoveryConfig(),
    evaluator: CellEvaluator | None = None,
) -> DiscoveryResult:
    """The slices of ``descriptors`` where the run loses most AP, per class.

    Args:
        table: the run's match table.
        descriptors: values of every object (see :class:`Descriptor`).
        classes: class names to search (default: every class with enough objects).
        config: search parameters.
        evaluator: ``CellEvaluator.from_table(table)`` (or of the searched classes), when
            the caller keeps one.
    """
    wanted = _class_indices(table.data.class_names, classes)
    evaluator = evaluator or CellEvaluator.from_table(table, wanted)
    data = _Objects.of(table, evaluator)
    whole_gt, whole_pred = (
        np.zeros((1, len(data.gt_rows)), int),
        np.zeros((1, len(data.pred_rows)), int),
    )
    baseline = evaluator.ap(whole_gt, whole_pred, 1)[0, :, 0]
    totals = evaluator.num_gt(whole_gt, 1)[0, :, 0]
    searched = [k for k in wanted if totals[k] >= 2 * config.min_support and baseline[k] > 0]
    binned = [b for d in descriptors if (b := _bin(d, data, np.array(searched, int))) is not None]
    names = {k: table.data.class_names[k] for k in searched}
    if not searched or not binned:
        return DiscoveryResult([], 0, 0, {v: float(baseline[k]) for k, v in names.items()})

    singles, single_index = [], {}
    for b in binned:
        parts = _single_partitions(b)
        single_index[id(b)] = len(singles) + (2 if b.edges is not None else 0)
        singles.extend(parts)
    parents: dict = {}
    pairs = (
        [_pair_partition(a, b, parents) for i, a in enumerate(binned) for b in binned[i + 1 :]]
        if config.pairs
        else []
    )
    in_search = np.isin(np.arange(evaluator.num_classes), searched)
    upper = np.floor(config.max_fraction * totals)[:, None]
    ranks, ties = _burial_ranks(evaluator.burial, data.gt_class, data.gt_counted, data.num_classes)
    found_s = _evaluate(  # a single cell above the maximum may be a pair's parent
        evaluator, singles, lambda n: in_search & (n >= config.min_support).any(axis=1), ranks
    )
    groups = [(singles, _candidates(found_s, searched, totals, config))]
    if pairs:
        found_p = _evaluate(
            evaluator,
            pairs,
            lambda n: in_search & ((n >= config.min_support) & (n <= upper)).any(axis=1),
            ranks,
        )
        parents = _pair_parents(pairs, found_s[0], found_s[1], single_index)
        groups.append((pairs, _candidates(found_p, searched, totals, config, parents)))

    spread = _chance_spread(evaluator, data, config, baseline, totals)[IMAGES]
    tests = _Tests(
        data, baseline, totals, spread, ties, evaluator.burial, sum(len(c.k) for _, c in groups)
    )
    ranked = []
    for partitions, cands in groups:
        p, keep = tests.slices(partitions, cands, config, singles)
        score = (baseline[cands.k] - cands.ap) * cands.n / totals[cands.k]
        for i in np.flatnonzero(keep):
            ranked.append((score[i], partitions[cands.partition[i]], cands, i, p[i]))
    ranked.sort(key=lambda r: -r[0])
    hypotheses = _pick(ranked, data, baseline, totals, names, config, evaluator)
    return DiscoveryResult(
        hypotheses,
        tests.num_tested,
        len(ranked),
        {v: float(baseline[k]) for k, v in names.items()},
        [b.descriptor.name for b in binned],
    )


def _class_indices(names: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    if wanted is None:
        return list(range(len(names)))
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise ValueError(f"unknown classes {unknown} (classes: {', '.join(names)})")
    return [names.index(c) for c in wanted]


def _level(partition: _Partition) -> str:
    levels = {binned.descriptor.level for binned, _ in partition.parts}
    return OBJECTS if OBJECTS in levels else IMAGES


def _redundant(members: np.ndarray, other: np.ndarray, config: DiscoveryConfig) -> bool:
    """Whether a slice repeats a better-ranked one: mostly the same objects (Jaccard), or
    mostly inside it (a narrower range of the same failure)."""
    shared = (members & other).sum()
    return bool(
        shared > config.max_overlap * (members | other).sum()
        or shared > config.max_nested * members.sum()
    )


def _slice_ap(evaluator: CellEvaluator, partition: _Partition, k: int, cell: int, ap) -> float:
    """The AP the slice's saved view gives (:func:`~detection_debugger.datasets.discovery.
    hypothesis_view`): an object slice's objects against every prediction of the class,
    not normalized; an image slice's AP."""
    if _level(partition) != OBJECTS:
        return float(ap)
    cells = np.where(partition.gt_cells == cell, 0, -1)
    classes = np.arange(evaluator.num_classes) == k
    return float(evaluator.object_ap(cells, 1, classes=classes[None, :], normalized=False)[0, k, 0])


def _pick(ranked, data, baseline, totals, names, config, evaluator) -> list[Hypothesis]:
    """The best ``top`` slices, skipping those overlapping a better one of their class."""
    chosen: list[tuple[int, np.ndarray]] = []
    out = []
    counted = data.gt_counted
    for _score, partition, cands, i, p in ranked:
        k, cell = int(cands.k[i]), int(cands.cell[i])
        members = (partition.gt_cells == cell) & (data.gt_class == k) & counted
        if any(kk == k and _redundant(members, other, config) for kk, other in chosen):
            continue
        chosen.append((k, members))
        out.append(
            Hypothesis(
                cls=names[k],
                conditions=partition.conditions(k, cell),
                num_gt=int(cands.n[i]),
                AP=float(cands.ap[i]),
                baseline_AP=float(baseline[k]),
                class_num_gt=int(totals[k]),
                p_value=float(p),
                slice_AP=_slice_ap(evaluator, partition, k, cell, cands.ap[i]),
            )
        )
        if len(out) >= config.top:
            break
    return out
