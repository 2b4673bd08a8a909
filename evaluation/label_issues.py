"""Label quality: score annotation errors from one or more sets of predictions.

Four issue types, each scored in ``[0, 1]`` with every threshold a parameter of
:class:`LabelIssueConfig`. The scores work with one prediction set; several sets that agree
make stronger evidence.

- ``missing``: a confident prediction on no annotated object: below ``missing_max_iou`` with
  every same-class object that no other prediction fits better (so a person next to an
  annotated person in a crowd is still a candidate), below ``missing_matched_iou`` with any
  same-class object (its match or a duplicate), below ``missing_other_iou`` with other
  classes (a wrong class) and not a box around a group. Predictions of every set on the
  same spot form one candidate. The score is the mean of the sets' *calibrated*
  confidences (how often the set is right at that class and confidence, the class's curve
  shrunk towards every class's so that small classes are not capped; 0 for a silent set,
  whose weight grows with its recall of the class), times the support of annotated objects
  of that class and size elsewhere.
- ``wrong_class``: an object that a confident prediction of another class covers (IoU >=
  ``wrong_class_iou``) while no prediction of its own class does; the score is the mean over
  the sets of that other class's confidence, optionally blended with embedding-neighbour
  support (the share of the object's nearest neighbours that carry the proposed class). Or
  an object whose box shape is rare for its class while most boxes of that shape carry
  another (a person-shaped box annotated as a truck), and that no prediction of its own
  class prefers, however faint: scored by the other class's share of that shape times the
  chance that the sets would miss an object of that class and size (a model that finds
  them and is silent here points at a box on background instead; a faint prediction of
  that class lifts the doubt).
- ``spurious``: an object on which no prediction fires although the sets find objects of its
  class *and size* elsewhere: one minus the chance that every silent set misses a real object
  (their miss rates at that class and size), its odds raised by a set that fires with a
  calibrated confidence above 0.5, and weighed by the *traces*: a set that leaves faint
  predictions on most objects it misses and none at all on this box points at a box on
  background; a faint trace points at a real object the set is unsure of.
- ``loose_box``: a confident same-class prediction overlapping at ``loose_min_iou <= IoU <
  loose_max_iou`` while the set has no good (``IoU >= loose_max_iou``) same-class match; the
  score is the prediction's confidence times how rarely the set fits objects of that class
  that loosely, times ``(1 + share of the prediction inside the box) / 2``, averaged over the
  sets.

Every prediction set shares the ground truth: pass the :class:`DetectionSet` of each set (same
images, classes and ground-truth arrays). Crowd regions are never issues and a prediction in
one is never a missing object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from detection_debugger.evaluation.detections import DetectionSet, InputError
from detection_debugger.evaluation.matching import candidate_pairs, pair_iou

__all__ = [
    "ACCEPTED",
    "ISSUE_TYPES",
    "LOOSE_BOX",
    "MISSING",
    "REJECTED",
    "SPURIOUS",
    "WRONG_CLASS",
    "IssueScores",
    "LabelIssueConfig",
    "LabelIssues",
    "find_label_issues",
    "neighbour_support",
]

MISSING, WRONG_CLASS, SPURIOUS, LOOSE_BOX = "missing", "wrong_class", "spurious", "loose_box"
ISSUE_TYPES = (MISSING, WRONG_CLASS, SPURIOUS, LOOSE_BOX)
ACCEPTED, REJECTED = "accepted", "rejected"  # review decisions on an issue
_ANY_OVERLAP = 1e-12  # "overlaps at all" as an IoU floor (candidate_pairs needs > 0)


@dataclass(frozen=True)
class LabelIssueConfig:
    """Thresholds of the label-issue scores.

    Args:
        confidence: a prediction at or above it is *confident* (wrong_class and loose_box
            evidence; the reliability statistics count these).
        fire_confidence: a prediction at or above it *fires*: it counts as the model seeing
            an object (an own-class prediction that vetoes wrong_class, a good match that
            vetoes loose_box, a prediction that weakens spurious).
        missing_confidence: predictions at or above it can be missing objects.
        missing_max_iou: a missing candidate overlaps no same-class object that no other
            prediction matches (nor a crowd region) at this IoU or more.
        missing_matched_iou: nor any same-class object at this IoU or more.
        missing_max_contained: nor holds more than this many annotated objects (half of
            each inside): a box around a group.
        missing_other_iou: nor overlaps an object of another class at this IoU or more.
        missing_silence_weight: with several sets, a set that stays silent on a candidate
            weighs this many times its recall odds.
        agreement_iou: predictions of the same class at this IoU or more (across sets, or
            duplicates within one) are the same object.
        min_annotated, shape_tolerance: a missing candidate gets full support when at least
            ``min_annotated`` objects of its class with width and height within a factor
            ``shape_tolerance`` of its box are annotated elsewhere (a class with fewer than
            ``4 * min_annotated`` objects needs a quarter of them); fewer scale the score
            down linearly (0 disables the check).
        reliability_iou: IoU at which a prediction "finds" a ground-truth object when the
            per-set, per-class precision, recall and calibration are estimated.
        calibration_window: a prediction's calibrated confidence is the share of right
            predictions of its set and class within this distance of its confidence.
        calibration_prior: pseudo-counts that shrink a class's statistics (calibration,
            IoU fit; a quarter of it for recall at a size) towards those of every class.
        wrong_class_iou: a prediction of another class covers the object at this IoU or more,
            and own-class predictions at this IoU or more veto the issue.
        shape_max_share, shape_weight, shape_prior: an object whose class makes up at most
            ``shape_max_share`` of the annotated objects of its shape (width and height within
            about ``shape_tolerance``, ``shape_prior`` pseudo-objects at the class shares) is
            a wrong_class candidate towards the other class that holds most of them, scored
            ``shape_weight`` times that class's share, unless a prediction of its own class,
            however faint, is at least as confident as the proposed class's on it
            (``shape_max_share`` 0 disables the shape evidence).
        spurious_iou: a prediction of any class at this IoU or more fires on the object.
        spurious_faint_iou: a prediction of any class and confidence at this IoU or more is a
            trace on the object.
        size_tolerance: objects whose box side (square root of the area) is within this
            factor have the same size (spurious: recall at the object's size).
        spurious_trace_odds: the most one set's traces (or their absence) change the odds
            of a spurious box.
        loose_min_iou, loose_max_iou: a loose-box prediction overlaps in
            ``[loose_min_iou, loose_max_iou)``; a same-class one at ``loose_max_iou`` or more
            is a good match (no issue for that set).
        neighbour_weight: weight of the embedding-neighbour support in the wrong_class score
            (only when neighbour support is given).
        missing_threshold, wrong_class_threshold, spurious_threshold, loose_box_threshold:
            the score at which an issue is flagged (tagged in FiftyOne).
    """

    confidence: float = 0.25
    fire_confidence: float = 0.1
    missing_confidence: float = 0.25
    missing_max_iou: float = 0.3
    missing_matched_iou: float = 0.5
    missing_max_contained: int = 2
    missing_silence_weight: float = 2.0
    missing_other_iou: float = 0.5
    agreement_iou: float = 0.5
    min_annotated: int = 3
    shape_tolerance: float = 1.5
    reliability_iou: float = 0.5
    calibration_window: float = 0.1
    calibration_prior: float = 20.0
    wrong_class_iou: float = 0.4
    shape_max_share: float = 0.08
    shape_weight: float = 0.5
    shape_prior: float = 2.0
    spurious_iou: float = 0.3
    spurious_faint_iou: float = 0.1
    size_tolerance: float = 1.5
    spurious_trace_odds: float = 8.0
    loose_min_iou: float = 0.1
    loose_max_iou: float = 0.6
    neighbour_weight: float = 0.5
    missing_threshold: float = 0.4
    wrong_class_threshold: float = 0.25
    spurious_threshold: float = 0.6
    loose_box_threshold: float = 0.4

    def __post_init__(self):
        for name in (
            "confidence",
            "fire_confidence",
            "missing_confidence",
            "neighbour_weight",
            "calibration_window",
            "shape_max_share",
            "shape_weight",
        ) + tuple(f"{t}_threshold" for t in ISSUE_TYPES):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {value}")
        for name in (
            "missing_max_iou",
            "missing_matched_iou",
            "missing_other_iou",
            "agreement_iou",
            "reliability_iou",
            "wrong_class_iou",
            "spurious_iou",
            "spurious_faint_iou",
            "loose_min_iou",
            "loose_max_iou",
        ):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise InputError(f"{name} must be in (0, 1], got {value}")
        if self.loose_min_iou >= self.loose_max_iou:
            raise InputError("loose_min_iou must be below loose_max_iou")
        if self.missing_silence_weight < 0:
            raise InputError(
                f"missing_silence_weight must be >= 0, got {self.missing_silence_weight}"
            )
        if self.spurious_trace_odds < 1:
            raise InputError(f"spurious_trace_odds must be >= 1, got {self.spurious_trace_odds}")
        if self.size_tolerance < 1:
            raise InputError(f"size_tolerance must be >= 1, got {self.size_tolerance}")
        if self.shape_tolerance < 1:
            raise InputError(f"shape_tolerance must be >= 1, got {self.shape_tolerance}")
        if self.shape_prior < 0:
            raise InputError(f"shape_prior must be >= 0, got {self.shape_prior}")
        if self.calibration_prior < 0:
            raise InputError(f"calibration_prior must be >= 0, got {self.calibration_prior}")
        if self.min_annotated < 0:
            raise InputError(f"min_annotated must be >= 0, got {self.min_annotated}")

    def threshold(self, issue_type: str) -> float:
        """The flagging threshold of ``issue_type``."""
        return getattr(self, f"{issue_type}_threshold")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LabelIssueConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class IssueScores:
    """Scored candidates of one issue type, one row per candidate (score > 0).

    Attributes:
        issue_type: one of :data:`ISSUE_TYPES`.
        image: ``(N,)`` int64 image index (into ``DetectionSet.image_ids``).
        gt: ``(N,)`` int64 ground-truth row of the object, -1 for ``missing``.
        label: ``(N,)`` int64 class index of the object as annotated (``missing``: predicted).
        proposed_label: ``(N,)`` int64 class index after the fix (``wrong_class``: the other
            class; else ``label``).
        box: ``(N, 4)`` float64 ``[x, y, w, h]`` after the fix (``missing``/``loose_box``: the
            evidence prediction's box; else the ground-truth box).
        score: ``(N,)`` float64 in ``(0, 1]``.
        pred_set: ``(N,)`` int64 prediction set of the strongest evidence, -1 when none
            (``spurious`` with no prediction near).
        pred: ``(N,)`` int64 prediction row in that set, -1 when none.
        iou: ``(N,)`` float64 IoU of that prediction with the object (``missing``: the largest
            IoU with any ground truth), NaN when none.
        confidence: ``(N,)`` float64 its confidence, NaN when none.
        support: ``(N,)`` int64 number of prediction sets backing the issue (``spurious``:
            the sets that do not fire on the object).
        flagged: ``(N,)`` bool ``score >= threshold`` of the type.
    """

    issue_type: str
    image: np.ndarray
    gt: np.ndarray
    label: np.ndarray
    proposed_label: np.ndarray
    box: np.ndarray
    score: np.ndarray
    pred_set: np.ndarray
    pred: np.ndarray
    iou: np.ndarray
    confidence: np.ndarray
    support: np.ndarray
    flagged: np.ndarray

    def __len__(self) -> int:
        return len(self.score)

    def order(self) -> np.ndarray:
        """Row order by descending score (ties: input order)."""
        return np.argsort(-self.score, kind="stable")

    def records(self, class_names: Sequence[str], set_names: Sequence[str]) -> list[dict]:
        """One JSON-ready dict per candidate, by descending score."""
        out = []
        for i in self.order():
            s = int(self.pred_set[i])
            out.append(
                {
                    "type": self.issue_type,
                    "image": int(self.image[i]),
                    "gt": int(self.gt[i]),
                    "label": class_names[self.label[i]],
                    "proposed_label": class_names[self.proposed_label[i]],
                    "box": [float(v) for v in self.box[i]],
                    "score": float(self.score[i]),
                    "flagged": bool(self.flagged[i]),
                    "evidence": None
                    if s < 0
                    else {
                        "prediction_set": set_names[s],
                        "prediction": int(self.pred[i]),
                        "iou": float(self.iou[i]),
                        "confidence": float(self.confidence[i]),
                        "support": int(self.support[i]),
                    },
                }
            )
        return out

    def to_dict(self) -> dict:
        """The arrays as lists (``from_dict`` inverts it)."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> IssueScores:
        dtypes = {
            "box": np.float64,
            "score": np.float64,
            "iou": np.float64,
            "confidence": np.float64,
            "flagged": bool,
        }
        values = {}
        for name in cls.__dataclass_fields__:
            if name == "issue_type":
                values[name] = d[name]
            else:
                array = np.asarray(d[name], dtype=dtypes.get(name, np.int64))
                values[name] = array.reshape(-1, 4) if name == "box" else array
        return cls(**values)


@dataclass(frozen=True)
class LabelIssues:
    """Every scored label issue of a set of images.

    Attributes:
        scores: ``{issue type: IssueScores}`` for every type of :data:`ISSUE_TYPES`.
        class_names: the ``K`` class names (``label`` indexes them).
        set_names: names of the prediction sets (``pred_set`` indexes them).
        config: the thresholds used.
        precision: ``(S, K)`` float64 share of each set's confident predictions of each class
            that find a ground-truth object of that class (NaN: no confident prediction).
        recall: ``(S, K)`` float64 share of each class's ground truth that each set finds
            with a confident prediction (NaN: no ground truth).
    """

    scores: dict[str, IssueScores]
    class_names: tuple[str, ...]
    set_names: tuple[str, ...]
    config: LabelIssueConfig
    precision: np.ndarray = field(repr=False)
    recall: np.ndarray = field(repr=False)

    def __getitem__(self, issue_type: str) -> IssueScores:
        return self.scores[issue_type]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{type: {"candidates": n, "flagged": n}}``."""
        return {
            t: {"candidates": len(s), "flagged": int(s.flagged.sum())}
            for t, s in self.scores.items()
        }

    def to_dict(self) -> dict:
        def nan_to_none(array):
            return [[None if np.isnan(v) else float(v) for v in row] for row in array]

        return {
            "config": self.config.to_dict(),
            "class_names": list(self.class_names),
            "set_names": list(self.set_names),
            "counts": self.counts(),
            "precision": nan_to_none(self.precision),
            "recall": nan_to_none(self.recall),
            "issues": {t: s.to_dict() for t, s in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> LabelIssues:
        def none_to_nan(rows):
            return np.array([[np.nan if v is None else v for v in r] for r in rows], np.float64)

        return cls(
            scores={t: IssueScores.from_dict(s) for t, s in d["issues"].items()},
            class_names=tuple(d["class_names"]),
            set_names=tuple(d["set_names"]),
            config=LabelIssueConfig.from_dict(d["config"]),
            precision=none_to_nan(d["precision"]),
            recall=none_to_nan(d["recall"]),
        )


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Overlaps:
    """Every overlapping (prediction, ground truth) pair of one set, same image, any class.

    Attributes:
        pred, gt: ``(N,)`` int64 rows; ``iou``: ``(N,)`` float64 (crowd regions: the share
        of the prediction inside them); ``same``: ``(N,)`` bool same class.
    """

    pred: np.ndarray
    gt: np.ndarray
    iou: np.ndarray
    same: np.ndarray


def _overlaps(data: DetectionSet) -> _Overlaps:
    pairs = candidate_pairs(
        np.arange(len(data.pred_ids)),
        data.pred_image,
        data.pred_boxes,
        np.arange(len(data.gt_ids)),
        data.gt_image,
        data.gt_boxes,
        data.gt_crowd,
        _ANY_OVERLAP,
    )
    same = data.pred_class[pairs.pred] == data.gt_class[pairs.gt]
    return _Overlaps(pairs.pred, pairs.gt, pairs.iou, same)


def _group_max(
    keys: np.ndarray, values: np.ndarray, size: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per key (``0..size-1``), the largest value and the row holding it (first on ties).

    Returns ``(best (size,) float64, -inf where empty; row (size,) int64, -1 where empty)``.
    """
    best = np.full(size, -np.inf)
    row = np.full(size, -1, dtype=np.int64)
    if len(keys) == 0:
        return best, row
    order = np.lexsort((-values, keys))  # by key, then descending value
    k, v = keys[order], values[order]
    first = np.r_[True, k[1:] != k[:-1]]
    best[k[first]] = v[first]
    row[k[first]] = (order if rows is None else rows[order])[first]
    return best, row


def _reliability(data: DetectionSet, ov: _Overlaps, config: LabelIssueConfig):
    """Per-class statistics of one set, from its confident predictions.

    Returns ``(found (G,) bool, precision (K,), recall (K,))``: whether each ground-truth
    object has a confident same-class prediction at ``reliability_iou``; the share of
    confident predictions of each class with such a ground-truth object; the share of each
    class's non-crowd ground truth found.
    """
    num_classes = data.num_classes
    confident = data.pred_scores >= config.confidence
    hit = ov.same & (ov.iou >= config.reliability_iou) & confident[ov.pred]
    hit &= ~data.gt_crowd[ov.gt]
    found = np.zeros(len(data.gt_ids), bool)
    found[ov.gt[hit]] = True
    right = np.zeros(len(data.pred_ids), bool)
    right[ov.pred[hit]] = True
    with np.errstate(invalid="ignore", divide="ignore"):
        n_pred = np.bincount(data.pred_class[confident], minlength=num_classes)
        precision = np.bincount(data.pred_class[right], minlength=num_classes) / n_pred
        counted = ~data.gt_crowd
        n_gt = np.bincount(data.gt_class[counted], minlength=num_classes)
        recall = np.bincount(data.gt_class[found & counted], minlength=num_classes) / n_gt
    return found, precision, recall


def _window_counts(scores: np.ndarray, right: np.ndarray, w: float):
    """``(right, n)`` per row: right rows and rows with a score within ``w`` of its own."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    cum_right = np.r_[0, np.cumsum(right[order])]
    lo = np.searchsorted(sorted_scores, scores - w, side="left")
    hi = np.searchsorted(sorted_scores, scores + w, side="right")
    return cum_right[hi] - cum_right[lo], hi - lo


def _calibration(data: DetectionSet, ov: _Overlaps, config: LabelIssueConfig) -> np.ndarray:
    """``(P,)`` float64 how often this set is right at this class and confidence.

    For each prediction: among the set's predictions whose confidence lies within
    ``calibration_window`` of its own, the share that finds a ground-truth object of its
    class at ``reliability_iou``; the class's own share, shrunk towards the share of every
    class by ``calibration_prior`` pseudo-predictions (a small class borrows the curve of
    the others instead of being capped), made non-decreasing in the confidence.
    """
    hit = ov.same & (ov.iou >= config.reliability_iou) & ~data.gt_crowd[ov.gt]
    right = np.zeros(len(data.pred_ids), bool)
    right[ov.pred[hit]] = True
    out = np.empty(len(data.pred_ids))
    w, m = config.calibration_window, config.calibration_prior
    pooled_right, pooled_n = _window_counts(data.pred_scores, right, w)
    pooled = (pooled_right + 1.0) / (pooled_n + 2.0)
    for k in range(data.num_classes):
        rows = np.flatnonzero(data.pred_class == k)
        if not len(rows):
            continue
        r, n = _window_counts(data.pred_scores[rows], right[rows], w)
        value = (r + m * pooled[rows]) / (n + m)
        order = np.argsort(data.pred_scores[rows], kind="stable")
        value[order] = np.maximum.accumulate(value[order])
        out[rows] = value
    return out


def _count_close(query: np.ndarray, ref: np.ndarray, tol: float, cap: int) -> np.ndarray:
    """``(n,)`` int: for each point of ``query`` (``(n, 2)``), how many points of ``ref``
    (``(R, 2)``) lie within ``tol`` of it in both coordinates, counted up to ``cap`` (exact
    below it).

    Without comparing every pair (1M candidates x 66k objects at 100k images): the points are
    binned in cells a third of ``tol`` wide, and 2D prefix sums count the cells that lie
    inside a query's window whatever the rounding (two cells in from its edges). A query
    with ``cap`` points there is done; the others, in sparse regions, compare the points of
    the cells around their window, one contiguous run of the sorted points per column.
    """
    out = np.zeros(len(query), dtype=np.int64)
    if len(query) == 0 or len(ref) == 0 or cap <= 0:
        return out
    step = tol / 3
    origin = np.minimum(ref.min(axis=0), query.min(axis=0)) - 2 * tol
    cells = np.floor((ref - origin) / step).astype(np.int64) + 2
    size = np.floor((np.maximum(ref.max(axis=0), query.max(axis=0)) + 2 * tol - origin) / step)
    nx, ny = (size.astype(np.int64) + 6).tolist()
    lo = np.floor((query - tol - origin) / step).astype(np.int64) + 2
    hi = np.floor((query + tol - origin) / step).astype(np.int64) + 2
    grid = np.zeros((nx + 1, ny + 1), dtype=np.int64)
    np.add.at(grid, (cells[:, 0] + 1, cells[:, 1] + 1), 1)
    prefix = grid.cumsum(axis=0).cumsum(axis=1)  # prefix[i, j]: cells < i, < j
    a, b = lo + 2, hi - 1  # inner cells [a, b): inside the window in both coordinates
    b = np.maximum(a, b)
    inner = (
        prefix[b[:, 0], b[:, 1]]
        - prefix[a[:, 0], b[:, 1]]
        - prefix[b[:, 0], a[:, 1]]
        + prefix[a[:, 0], a[:, 1]]
    )
    out[:] = np.minimum(inner, cap)
    todo = np.flatnonzero(inner < cap)
    if len(todo) == 0:
        return out
    key = cells[:, 0] * (ny + 2) + cells[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_key, sorted_ref = key[order], ref[order]
    counts = np.zeros(len(todo), dtype=np.int64)
    for dx in range(int((hi - lo).max()) + 3):  # columns lo-1 .. hi+1
        column = lo[todo, 0] - 1 + dx
        valid = column <= hi[todo, 0] + 1
        first = np.searchsorted(sorted_key, column * (ny + 2) + lo[todo, 1] - 1)
        last = np.searchsorted(sorted_key, column * (ny + 2) + hi[todo, 1] + 2)
        length = np.where(valid, last - first, 0)
        owner = np.repeat(np.arange(len(todo)), length)
        starts = np.repeat(first - np.cumsum(length) + length, length)
        rows = starts + np.arange(len(owner))
        close = (np.abs(sorted_ref[rows] - query[todo[owner]]) <= tol).all(axis=1)
        counts += np.bincount(owner[close], minlength=len(todo))
    out[todo] = np.minimum(counts, cap)
    return out


def _shape_support(
    gt: DetectionSet, label: np.ndarray, boxes: np.ndarray, config: LabelIssueConfig
) -> np.ndarray:
    """``(N,)`` float64 in ``[0, 1]``: are objects like these annotated elsewhere?

    The number of non-crowd ground-truth objects of the same class whose width and height
    are both within a factor ``shape_tolerance`` of the box's, over ``min_annotated``
    (a class with fewer than ``4 * min_annotated`` objects needs a quarter of them, at least
    one), capped at 1; 1 when ``min_annotated`` is 0.
    """
    if config.min_annotated == 0:
        return np.ones(len(label))
    counted = ~gt.gt_crowd
    sizes = np.log(np.maximum(gt.gt_boxes[counted, 2:], 1e-6))
    classes = gt.gt_class[counted]
    query = np.log(np.maximum(boxes[:, 2:], 1e-6))
    tol = np.log(config.shape_tolerance)
    out = np.zeros(len(label))
    for k in np.unique(label):
        rows = np.flatnonzero(label == k)
        ref = sizes[classes == k]  # (R, 2)
        needed = max(1, min(config.min_annotated, len(ref) // 4))
        close = _count_close(query[rows], ref, tol, needed) if tol > 0 else None
        if close is None:  # shape_tolerance 1: equal sides only
            close = (np.abs(query[rows, None, :] - ref[None]) <= tol).all(axis=2).sum(axis=1)
        out[rows] = np.minimum(1.0, close / needed)
    return out


def _odds(p: np.ndarray) -> np.ndarray:
    return p / (1.0 - p)


def _empty(issue_type: str) -> IssueScores:
    i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return IssueScores(
        issue_type, i, i, i, i, np.zeros((0, 4)), f, i, i, f, f, i, np.zeros(0, bool)
    )


def _check_sets(sets: Sequence[DetectionSet]) -> DetectionSet:
    if not sets:
        raise InputError("at least one prediction set is needed")
    first = sets[0]
    for i, other in enumerate(sets[1:], 1):
        same = (
            np.array_equal(first.image_ids, other.image_ids)
            and first.class_names == other.class_names
            and np.array_equal(first.gt_image, other.gt_image)
            and np.array_equal(first.gt_class, other.gt_class)
            and np.array_equal(first.gt_boxes, other.gt_boxes)
        )
        if not same:
            raise InputError(
                f"prediction set {i} does not share the images, classes and ground truth of set 0"
            )
    return first


# ---------------------------------------------------------------------------- issue types


def _inside_share(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``(N,)`` share of each ``inner`` box's area inside the aligned ``outer`` box."""
    w = np.minimum(outer[:, 0] + outer[:, 2], inner[:, 0] + inner[:, 2])
    w -= np.maximum(outer[:, 0], inner[:, 0])
    h = np.minimum(outer[:, 1] + outer[:, 3], inner[:, 1] + inner[:, 3])
    h -= np.maximum(outer[:, 1], inner[:, 1])
    area = np.maximum(inner[:, 2] * inner[:, 3], 1e-12)
    return np.clip(w, 0, None) * np.clip(h, 0, None) / area


def _missing_rows(data: DetectionSet, ov: _Overlaps, config: LabelIssueConfig):
    """The confident predictions of one set on no ground truth: ``(rows, largest IoU with
    any ground truth or crowd region)``.

    A prediction is a candidate when it overlaps no same-class object at
    ``missing_max_iou`` or more, except objects that another prediction fits better (a
    neighbour in a crowd of people or a row of parked cars, found by its own prediction),
    and none at ``missing_matched_iou`` or more (then it is that object's match or a
    duplicate); a box holding more than ``missing_max_contained`` annotated objects (half of each
    inside) is a box around a group, not an object.
    """
    num = len(data.pred_ids)
    crowd = data.gt_crowd[ov.gt]
    same = ov.same & ~crowd
    fires = data.pred_scores[ov.pred] >= config.fire_confidence
    best_fit, _ = _group_max(ov.gt[same & fires], ov.iou[same & fires], len(data.gt_ids))
    free = same & (ov.iou >= best_fit[ov.gt])  # no other prediction fits the object better
    near_free, _ = _group_max(ov.pred[free], ov.iou[free], num)
    near_same, _ = _group_max(ov.pred[same], ov.iou[same], num)
    near_other, _ = _group_max(ov.pred[~same & ~crowd], ov.iou[~same & ~crowd], num)
    near_crowd, _ = _group_max(ov.pred[crowd], ov.iou[crowd], num)
    inside = _inside_share(data.pred_boxes[ov.pred], data.gt_boxes[ov.gt]) >= 0.5
    contains = np.bincount(ov.pred[inside & ~crowd], minlength=num)
    keep = (
        (data.pred_scores >= config.missing_confidence)
        & (contains <= config.missing_max_contained)
        & (near_free < config.missing_max_iou)
        & (near_same < config.missing_matched_iou)
        & (near_crowd < config.missing_max_iou)
        & (near_other < config.missing_other_iou)
    )
    rows = np.flatnonzero(keep)
    near = np.maximum(np.maximum(near_same, near_other), np.maximum(near_crowd, 0.0))
    return rows, near[rows]


def _cluster(keys: np.ndarray, right: np.ndarray, boxes: np.ndarray, agreement_iou: float):
    """Greedy clustering by descending calibrated confidence ``right``: a prediction joins
    the strongest cluster of its key (image and class) whose leading box it overlaps at
    ``agreement_iou``. Returns ``(cluster (N,) int64, leader rows (C,) int64)``."""
    order = np.lexsort((-right, keys))
    cluster = np.full(len(order), -1, dtype=np.int64)
    leaders: list[int] = []
    bounds = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1], True])
    for start, end in zip(bounds[:-1], bounds[1:]):
        group: list[int] = []
        for r in order[start:end]:
            if group:
                lead = np.array(group)
                ious = pair_iou(
                    np.repeat(boxes[r][None], len(lead), 0), boxes[lead], np.zeros(len(lead), bool)
                )
                best = int(np.argmax(ious))
                if ious[best] >= agreement_iou:
                    cluster[r] = cluster[lead[best]]
                    continue
            cluster[r] = len(leaders)
            leaders.append(int(r))
            group.append(int(r))
    return cluster, np.array(leaders, dtype=np.int64)


def _agreement(cluster, set_of, right, num_sets: int, recall, lead_label, silence: float):
    """Per cluster, ``(score, fired (C, S) bool)``: the mean of the sets' calibrated
    confidences (a duplicate of the same set counts once; a silent set counts 0), each set
    weighted by the odds of its recall of the class, a silent set's weight times
    ``silence``, so the silence of a set that finds the class reliably elsewhere weighs
    most (one set: its calibrated confidence)."""
    per_set = np.zeros((len(lead_label), num_sets))
    np.maximum.at(per_set, (cluster, set_of), right)
    weight = _odds(np.clip(np.nan_to_num(recall[:, lead_label].T, nan=0.0), 0.0, 0.99))
    weight = np.where(per_set > 0, weight, weight * silence)
    total = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.where(total > 0, (weight * per_set).sum(axis=1) / total, 0.0)
    return combined, per_set > 0


def _missing(sets, overlaps, calibrated, recall, config: LabelIssueConfig) -> IssueScores:
    """Confident predictions on no ground truth, clustered across sets into candidates."""
    parts = [_missing_rows(data, ov, config) for data, ov in zip(sets, overlaps)]
    set_of = np.concatenate([np.full(len(r), s, np.int64) for s, (r, _) in enumerate(parts)])
    if not len(set_of):
        return _empty(MISSING)
    pred_of = np.concatenate([r for r, _ in parts])
    near_of = np.concatenate([n for _, n in parts])
    image = np.concatenate([d.pred_image[r] for d, (r, _) in zip(sets, parts)])
    label = np.concatenate([d.pred_class[r] for d, (r, _) in zip(sets, parts)])
    conf = np.concatenate([d.pred_scores[r] for d, (r, _) in zip(sets, parts)])
    boxes = np.concatenate([d.pred_boxes[r] for d, (r, _) in zip(sets, parts)]).reshape(-1, 4)
    right = np.concatenate([c[r] for c, (r, _) in zip(calibrated, parts)])
    gt = sets[0]
    cluster, leaders = _cluster(image * gt.num_classes + label, right, boxes, config.agreement_iou)
    combined, fired = _agreement(
        cluster, set_of, right, len(sets), recall, label[leaders], config.missing_silence_weight
    )
    support = _shape_support(gt, label[leaders], boxes[leaders], config)
    score = np.clip(combined * support, 0.0, 1.0)
    # The evidence shown is the most confident member prediction of the cluster.
    _, best_row = _group_max(cluster, conf, len(leaders))
    keep = score > 0
    b = best_row[keep]
    return IssueScores(
        issue_type=MISSING,
        image=image[b],
        gt=np.full(len(b), -1, dtype=np.int64),
        label=label[b],
        proposed_label=label[b],
        box=boxes[b],
        score=score[keep],
        pred_set=set_of[b],
        pred=pred_of[b],
        iou=near_of[b],
        confidence=conf[b],
        support=fired[keep].sum(axis=1),
        flagged=score[keep] >= config.missing_threshold,
    )


def _shape_shares(gt: DetectionSet, config: LabelIssueConfig) -> np.ndarray:
    """``(G, K)`` float64: the share of each class among the other non-crowd objects of each
    object's shape, ``shape_prior`` pseudo-objects at the class shares added.

    An object's shape neighbours have width and height within about ``shape_tolerance`` of
    its own: the log sides are binned in cells ``log(shape_tolerance) / 2`` wide and the
    counts summed over the 5 x 5 cells around the object's (memory: cells x classes, not
    objects squared). A person-shaped box annotated as a truck gets a low share of trucks.
    """
    num_gt, num_classes = len(gt.gt_ids), gt.num_classes
    counted = ~gt.gt_crowd
    prior = np.bincount(gt.gt_class[counted], minlength=num_classes) / max(counted.sum(), 1)
    if not num_gt:
        return np.zeros((0, num_classes))
    logs = np.log(np.maximum(gt.gt_boxes[:, 2:], 1e-6))  # (G, 2)
    cell = max(np.log(config.shape_tolerance) / 2, 1e-3)
    idx = np.floor((logs - logs.min(axis=0)) / cell).astype(np.int64) + 2  # 2 cells of margin
    grid = np.zeros((num_classes, *(idx.max(axis=0) + 3)))
    np.add.at(grid, (gt.gt_class[counted], idx[counted, 0], idx[counted, 1]), 1.0)
    cum = np.pad(grid.cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    x0, y0, x1, y1 = idx[:, 0] - 2, idx[:, 1] - 2, idx[:, 0] + 3, idx[:, 1] + 3
    counts = (cum[:, x1, y1] - cum[:, x0, y1] - cum[:, x1, y0] + cum[:, x0, y0]).T  # (G, K)
    counts[np.flatnonzero(counted), gt.gt_class[counted]] -= 1.0  # leave the object out
    m = config.shape_prior
    total = counts.sum(axis=1, keepdims=True) + m
    return np.where(total > 0, (counts + m * prior) / np.maximum(total, 1e-12), 0.0)


def _shape_evidence(sets, overlaps, config: LabelIssueConfig):
    """``(score (G,), proposed (G,), traced (G,) bool)`` of the shape evidence for
    wrong_class: an object whose class is rare among objects of its shape (at most
    ``shape_max_share``) is proposed the other class that holds most objects of that
    shape (over half), scored ``shape_weight`` times its share; 0 when any set's most
    confident own-class prediction on it (IoU >= ``wrong_class_iou``, any confidence) is
    at least as confident as its most confident proposed-class one. ``traced``: some set
    leaves a proposed-class prediction on it, however faint, above any of its own class
    (the model saw such an object there)."""
    gt = sets[0]
    num_gt, num_classes = len(gt.gt_ids), gt.num_classes
    if config.shape_max_share <= 0 or not num_gt:
        return np.zeros(num_gt), np.zeros(num_gt, np.int64), np.zeros(num_gt, bool)
    shares = _shape_shares(gt, config)
    rows = np.arange(num_gt)
    own = shares[rows, gt.gt_class]
    others = np.where(np.arange(num_classes)[None] == gt.gt_class[:, None], -1.0, shares)
    proposed = np.argmax(others, axis=1)
    majority = others[rows, proposed]
    implausible = (own <= config.shape_max_share) & (majority > 0.5)
    score = np.where(implausible, config.shape_weight * majority, 0.0)
    traced = np.zeros(num_gt, bool)
    for data, ov in zip(sets, overlaps):
        near = ov.iou >= config.wrong_class_iou
        cls, conf = data.pred_class[ov.pred], data.pred_scores[ov.pred]
        own_rows, prop_rows = near & ov.same, near & (cls == proposed[ov.gt])
        own_faint = np.maximum(_group_max(ov.gt[own_rows], conf[own_rows], num_gt)[0], 0.0)
        prop_faint = np.maximum(_group_max(ov.gt[prop_rows], conf[prop_rows], num_gt)[0], 0.0)
        score[(own_faint > 0) & (own_faint >= prop_faint)] = 0.0
        traced |= prop_faint > own_faint
    return score, proposed, traced


def _other_class_evidence(sets, overlaps, config: LabelIssueConfig):
    """Per set, the most confident prediction of each other class covering each object.

    Returns ``(conf (S, G, K), row (S, G, K) prediction row or -1, iou (S, G, K), vetoed
    (G,) bool: an own-class prediction at ``fire_confidence`` covers it)``."""
    gt = sets[0]
    num_gt, num_classes, num_sets = len(gt.gt_ids), gt.num_classes, len(sets)
    other_conf = np.zeros((num_sets, num_gt, num_classes))
    other_row = np.full((num_sets, num_gt, num_classes), -1, dtype=np.int64)
    other_iou = np.full((num_sets, num_gt, num_classes), np.nan)
    vetoed = np.zeros(num_gt, bool)
    for s, (data, ov) in enumerate(zip(sets, overlaps)):
        covers = ov.iou >= config.wrong_class_iou
        own = covers & ov.same & (data.pred_scores[ov.pred] >= config.fire_confidence)
        vetoed[ov.gt[own]] = True
        other = covers & ~ov.same & (data.pred_scores[ov.pred] >= config.confidence)
        keys = ov.gt[other] * num_classes + data.pred_class[ov.pred[other]]
        best, row = _group_max(
            keys, data.pred_scores[ov.pred[other]], num_gt * num_classes, rows=np.flatnonzero(other)
        )
        has = row >= 0
        other_conf[s].reshape(-1)[has] = best[has]
        other_row[s].reshape(-1)[has] = ov.pred[row[has]]
        other_iou[s].reshape(-1)[has] = ov.iou[row[has]]
    return other_conf, other_row, other_iou, vetoed


def _wrong_class(
    sets, overlaps, config: LabelIssueConfig, neighbour_support, found: np.ndarray
) -> IssueScores:
    """Objects covered by a confident prediction of another class (the mean of the sets'
    confidences, blended with the embedding neighbours' support when given), or whose
    shape is implausible for their class (:func:`_shape_evidence`), times the chance that
    every set misses an object of the proposed class at that size unless one leaves a faint
    prediction of that class on it (``found``: ``(S, G)`` bool; a set that finds such
    objects and is silent here points at a box on background, not at another class); the
    stronger wins."""
    gt = sets[0]
    num_gt, num_classes = len(gt.gt_ids), gt.num_classes
    other_conf, other_row, other_iou, vetoed = _other_class_evidence(sets, overlaps, config)
    mean_conf = other_conf.mean(axis=0)  # (G, K): agreement counts
    proposed = np.argmax(mean_conf, axis=1)
    rows = np.arange(num_gt)
    score = mean_conf[rows, proposed]
    if neighbour_support is not None:
        nb = np.asarray(neighbour_support, dtype=np.float64)
        if nb.shape != (num_gt, num_classes):
            raise InputError(
                f"neighbour_support must have shape {(num_gt, num_classes)}, got {nb.shape}"
            )
        w = config.neighbour_weight
        score = np.where(score > 0, (1 - w) * score + w * np.clip(nb[rows, proposed], 0, 1), 0)
    shape_score, shape_proposed, traced = _shape_evidence(sets, overlaps, config)
    for found_s in found:  # would every set have missed an object of that class here?
        miss = 1.0 - _recall_of(gt, found_s, shape_proposed, gt.gt_boxes, config)
        shape_score *= np.where(traced, 1.0, miss)
    by_shape = shape_score > score
    score = np.where(by_shape, shape_score, score)
    proposed = np.where(by_shape, shape_proposed, proposed)
    keep = (score > 0) & ~vetoed & ~gt.gt_crowd
    g = np.flatnonzero(keep)
    k = proposed[g]
    best_set = np.argmax(other_conf[:, g, k], axis=0) if len(g) else np.zeros(0, np.int64)
    backed = ~by_shape[g]
    return IssueScores(
        issue_type=WRONG_CLASS,
        image=gt.gt_image[g],
        gt=g,
        label=gt.gt_class[g],
        proposed_label=k,
        box=gt.gt_boxes[g],
        score=np.clip(score[g], 0.0, 1.0),
        pred_set=np.where(backed, best_set, -1),
        pred=np.where(backed, other_row[best_set, g, k], -1),
        iou=np.where(backed, other_iou[best_set, g, k], np.nan),
        confidence=np.where(backed, other_conf[best_set, g, k], np.nan),
        support=np.where(backed, (other_conf[:, g, k] > 0).sum(axis=0), 0),
        flagged=score[g] >= config.wrong_class_threshold,
    )


def _recall_at_size(gt: DetectionSet, found: np.ndarray, counted: np.ndarray, config):
    """``(G,)`` float64 a set's recall of each object's class at its size, the object left
    out: the share found of the other objects of the class whose box side (square root of
    the area) is within a factor ``size_tolerance`` of its own, shrunk towards the class's
    recall by ``calibration_prior`` pseudo-objects (small detectors miss tiny objects, so
    silence on a tiny box says less than silence on a large one)."""
    out = np.zeros(len(found))
    side = np.log(np.sqrt(np.maximum(gt.gt_boxes[:, 2] * gt.gt_boxes[:, 3], 1e-12)))
    for k in range(gt.num_classes):
        rows = np.flatnonzero((gt.gt_class == k) & counted)
        if len(rows) < 2:
            continue
        r, n = _window_counts(side[rows], found[rows], np.log(config.size_tolerance))
        r, n = r - found[rows], n - 1  # leave the object out
        overall = (found[rows].sum() - found[rows]) / (len(rows) - 1)
        m = config.calibration_prior / 4
        out[rows] = (r + m * overall) / (n + m)
    return out


def _recall_of(gt: DetectionSet, found: np.ndarray, label: np.ndarray, boxes: np.ndarray, config):
    """``(N,)`` float64 a set's recall of class ``label[i]`` at the size of ``boxes[i]``: the
    share found of the non-crowd objects of that class whose box side is within a factor
    ``size_tolerance``, shrunk towards the class's recall by ``calibration_prior / 4``
    pseudo-objects (0 for a class with no objects). ``found``: ``(G,)`` bool."""
    out = np.zeros(len(label))
    side = np.log(np.sqrt(np.maximum(gt.gt_boxes[:, 2] * gt.gt_boxes[:, 3], 1e-12)))
    query = np.log(np.sqrt(np.maximum(boxes[:, 2] * boxes[:, 3], 1e-12)))
    tol, m = np.log(config.size_tolerance), config.calibration_prior / 4
    for k in np.unique(label):
        rows = np.flatnonzero((gt.gt_class == k) & ~gt.gt_crowd)
        if not len(rows):
            continue
        order = np.argsort(side[rows], kind="stable")
        sides, cum = side[rows][order], np.r_[0, np.cumsum(found[rows][order])]
        q = np.flatnonzero(label == k)
        lo = np.searchsorted(sides, query[q] - tol, side="left")
        hi = np.searchsorted(sides, query[q] + tol, side="right")
        out[q] = (cum[hi] - cum[lo] + m * found[rows].mean()) / (hi - lo + m)
    return out


def _trace_odds(sets, overlaps, fire_row, config: LabelIssueConfig) -> np.ndarray:
    """``(G,)`` float64 odds ratio of the traces: does a set leave *some* prediction (any
    class, however faint) at ``spurious_faint_iou`` on each object it does not find?

    A set that leaves a trace on most annotated objects it misses (the share ``t``, measured
    on them) and none on this one makes it a box on background: the odds of the issue grow
    by ``1 / (1 - t)``, capped at ``spurious_trace_odds``; a trace divides them by
    ``spurious_trace_odds``. A set that seldom leaves traces (predictions cut at a high
    confidence) changes little.
    """
    num_gt = len(sets[0].gt_ids)
    counted = ~sets[0].gt_crowd
    out = np.ones(num_gt)
    cap = config.spurious_trace_odds
    for s, ov in enumerate(overlaps):
        near = np.zeros(num_gt, bool)
        near[ov.gt[ov.iou >= config.spurious_faint_iou]] = True
        missed = counted & (fire_row[s] < 0)
        rate = near[missed].mean() if missed.any() else 0.0
        silent = np.where(near, 1.0 / cap, min(cap, 1.0 / max(1.0 - rate, 1e-9)))
        out *= np.where(fire_row[s] < 0, silent, 1.0)  # a set that fires is weighed apart
    return out


def _spurious(sets, overlaps, found, calibrated, config) -> IssueScores:
    """Ground truth on which the sets stay silent although they find the class elsewhere."""
    gt = sets[0]
    num_gt, num_sets = len(gt.gt_ids), len(sets)
    counted = ~gt.gt_crowd
    factor = np.ones((num_sets, num_gt))
    fire_conf = np.zeros((num_sets, num_gt))
    fire_row = np.full((num_sets, num_gt), -1, dtype=np.int64)
    fire_iou = np.full((num_sets, num_gt), np.nan)
    for s, (data, ov) in enumerate(zip(sets, overlaps)):
        scores = data.pred_scores[ov.pred]
        fires = (ov.iou >= config.spurious_iou) & (scores >= config.fire_confidence)
        best, row = _group_max(ov.gt[fires], scores[fires], num_gt, rows=np.flatnonzero(fires))
        has = row >= 0
        fire_conf[s, has] = best[has]
        fire_row[s, has] = ov.pred[row[has]]
        fire_iou[s, has] = ov.iou[row[has]]
        right, _ = _group_max(ov.gt[fires], calibrated[s][ov.pred[fires]], num_gt)
        recall_elsewhere = _recall_at_size(gt, found[s] & counted, counted, config)
        # Odds that the object is real: a silent set lowers them by its miss rate, a set
        # that fires raises them by its calibrated odds (never lowers them).
        factor[s] = np.where(
            has, np.maximum(1.0, _odds(np.where(has, right, 0.5))), 1.0 - recall_elsewhere
        )
    # 1 - (the chance that every silent set would miss a real object, raised by the sets
    # that fire): 0 when no set is reliable for the class or a confident one fires.
    score = np.clip(1.0 - np.prod(factor, axis=0), 0.0, 1.0)
    odds = _odds(np.clip(score, 0.0, 0.999)) * _trace_odds(sets, overlaps, fire_row, config)
    score = odds / (1.0 + odds)
    score[factor.min(axis=0) >= 1.0] = 0.0  # no set is reliable for the class, or one fires
    support = (fire_row < 0).sum(axis=0)
    keep = (support > 0) & counted & (score > 0)
    g = np.flatnonzero(keep)
    best_set = np.argmax(fire_conf[:, g], axis=0) if len(g) else np.zeros(0, np.int64)
    fired = fire_row[best_set, g] >= 0
    return IssueScores(
        issue_type=SPURIOUS,
        image=gt.gt_image[g],
        gt=g,
        label=gt.gt_class[g],
        proposed_label=gt.gt_class[g],
        box=gt.gt_boxes[g],
        score=np.clip(score[g], 0.0, 1.0),
        pred_set=np.where(fired, best_set, -1),
        pred=np.where(fired, fire_row[best_set, g], -1),
        iou=np.where(fired, fire_iou[best_set, g], np.nan),
        confidence=np.where(fired, fire_conf[best_set, g], np.nan),
        support=support[g],
        flagged=score[g] >= config.spurious_threshold,
    )


def _iou_rarity(data: DetectionSet, ov: _Overlaps, iou: np.ndarray, label: np.ndarray, config):
    """``(N,)`` float64 how rarely this set's confident predictions of class ``label`` fit
    an annotated object worse than ``iou``: the share of their best same-class IoUs (those
    at ``reliability_iou`` or more) above it, shrunk towards every class's share by
    ``calibration_prior`` pseudo-matches. A detector that fits cars at 0.9 makes a car box
    at 0.6 an outlier; one that fits people at 0.6 does not."""
    confident = data.pred_scores[ov.pred] >= config.confidence
    fit, _ = _group_max(
        ov.pred[ov.same & confident], ov.iou[ov.same & confident], len(data.pred_ids)
    )
    good = fit >= config.reliability_iou
    pooled_ious = np.sort(fit[good])
    out = np.zeros(len(iou))
    for k in np.unique(label):
        rows = np.flatnonzero(label == k)
        own = np.sort(fit[good & (data.pred_class == k)])
        above = len(own) - np.searchsorted(own, iou[rows], side="right")
        pooled = (len(pooled_ious) - np.searchsorted(pooled_ious, iou[rows], side="right") + 1) / (
            len(pooled_ious) + 2
        )
        m = config.calibration_prior
        out[rows] = (above + m * pooled) / (len(own) + m)
    return out


def _loose_box(sets, overlaps, config: LabelIssueConfig) -> IssueScores:
    """Objects whose best same-class confident prediction fits them loosely: the score is
    the prediction's confidence times how rare so loose a fit is for the set and class
    (:func:`_iou_rarity`) times the share of the prediction inside the annotated box (an
    annotation drawn too large or shifted holds the object; a prediction spilling over a
    tight box is more often the detector's error)."""
    gt = sets[0]
    num_gt, num_sets = len(gt.gt_ids), len(sets)
    conf = np.zeros((num_sets, num_gt))
    value = np.zeros((num_sets, num_gt))
    pred_row = np.full((num_sets, num_gt), -1, dtype=np.int64)
    iou = np.full((num_sets, num_gt), np.nan)
    for s, (data, ov) in enumerate(zip(sets, overlaps)):
        scores = data.pred_scores[ov.pred]
        good = ov.same & (ov.iou >= config.loose_max_iou) & (scores >= config.fire_confidence)
        matched = np.zeros(num_gt, bool)
        matched[ov.gt[good]] = True
        loose = np.flatnonzero(
            ov.same
            & (ov.iou >= config.loose_min_iou)
            & (ov.iou < config.loose_max_iou)
            & (scores >= config.confidence)
            & ~matched[ov.gt]
        )
        p, g = ov.pred[loose], ov.gt[loose]
        evidence = scores[loose] * _iou_rarity(data, ov, ov.iou[loose], data.pred_class[p], config)
        evidence *= 0.5 + 0.5 * _inside_share(data.gt_boxes[g], data.pred_boxes[p])
        best, row = _group_max(g, evidence, num_gt, rows=loose)
        has = row >= 0
        value[s, has] = best[has]
        conf[s, has] = scores[row[has]]
        pred_row[s, has] = ov.pred[row[has]]
        iou[s, has] = ov.iou[row[has]]
    score = value.mean(axis=0)
    keep = (score > 0) & ~gt.gt_crowd
    g = np.flatnonzero(keep)
    best_set = np.argmax(value[:, g], axis=0) if len(g) else np.zeros(0, np.int64)
    rows = pred_row[best_set, g]
    boxes = np.array([sets[s].pred_boxes[p] for s, p in zip(best_set, rows)]).reshape(-1, 4)
    return IssueScores(
        issue_type=LOOSE_BOX,
        image=gt.gt_image[g],
        gt=g,
        label=gt.gt_class[g],
        proposed_label=gt.gt_class[g],
        box=boxes,
        score=np.clip(score[g], 0.0, 1.0),
        pred_set=best_set,
        pred=rows,
        iou=iou[best_set, g],
        confidence=conf[best_set, g],
        support=(conf[:, g] > 0).sum(axis=0),
        flagged=score[g] >= config.loose_box_threshold,
    )


def neighbour_support(
    embeddings: np.ndarray, labels: np.ndarray, num_classes: int, k: int = 10, chunk: int = 512
) -> np.ndarray:
    """``(G, K)`` float64: for each object, the share of its ``k`` nearest neighbours (cosine
    similarity of ``embeddings``, itself left out) that carry each class; the input of the
    wrong_class score's embedding support.

    Args:
        embeddings: ``(G, D)`` e.g. CLIP embeddings of the object crops; a row of NaN (no
            embedding) gets no support and is nobody's neighbour.
        labels: ``(G,)`` int64 class index of each object.
        num_classes: ``K``.
        k: neighbours per object (fewer when fewer objects have embeddings).
        chunk: rows compared at once (memory: ``chunk * G`` floats).
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    num = len(emb)
    out = np.zeros((num, num_classes))
    valid = ~np.isnan(emb).any(axis=1) if emb.ndim == 2 and num else np.zeros(num, bool)
    rows = np.flatnonzero(valid)
    k = min(k, len(rows) - 1)
    if k < 1:
        return out
    unit = emb[rows] / np.maximum(np.linalg.norm(emb[rows], axis=1, keepdims=True), 1e-12)
    for start in range(0, len(rows), chunk):
        sims = unit[start : start + chunk] @ unit.T  # (c, V)
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (c, k)
        counts = np.zeros((len(sims), num_classes))
        np.add.at(counts, (np.repeat(np.arange(len(sims)), k), labels[rows][nearest].ravel()), 1)
        out[rows[start : start + chunk]] = counts / k
    return out


def find_label_issues(
    prediction_sets: Sequence[DetectionSet],
    set_names: Sequence[str] | None = None,
    config: LabelIssueConfig | None = None,
    neighbour_support: np.ndarray | None = None,
) -> LabelIssues:
    """Scores the four issue types of the ground truth shared by ``prediction_sets``.

    Args:
        prediction_sets: ``S >= 1`` sets with the same images, classes and ground truth
            (``gt_*`` arrays), each with the predictions of one model.
        set_names: ``S`` names (default ``"0"``, ``"1"``, ...), e.g. the prediction fields.
        config: thresholds (default :class:`LabelIssueConfig`).
        neighbour_support: optional ``(G, K)`` float in ``[0, 1]``: for each ground-truth
            object, the share of its embedding neighbours (e.g. CLIP patch embeddings) whose
            class is ``k``; supports ``wrong_class`` towards ``k``.

    Returns:
        :class:`LabelIssues` with every candidate scored and flagged at the thresholds.
    """
    config = config or LabelIssueConfig()
    sets = list(prediction_sets)
    gt = _check_sets(sets)
    names = tuple(str(n) for n in (set_names or range(len(sets))))
    if len(names) != len(sets):
        raise InputError(f"{len(names)} set names for {len(sets)} prediction sets")
    overlaps = [_overlaps(d) for d in sets]
    stats = [_reliability(d, ov, config) for d, ov in zip(sets, overlaps)]
    found = np.array([s[0] for s in stats]).reshape(len(sets), len(gt.gt_ids))
    precision = np.array([s[1] for s in stats]).reshape(len(sets), gt.num_classes)
    recall = np.array([s[2] for s in stats]).reshape(len(sets), gt.num_classes)
    calibrated = [_calibration(d, ov, config) for d, ov in zip(sets, overlaps)]
    scores = {
        MISSING: _missing(sets, overlaps, calibrated, recall, config),
        WRONG_CLASS: _wrong_class(sets, overlaps, config, neighbour_support, found),
        SPURIOUS: _spurious(sets, overlaps, found, calibrated, config),
        LOOSE_BOX: _loose_box(sets, overlaps, config),
    }
    return LabelIssues(
        scores=scores,
        class_names=gt.class_names,
        set_names=names,
        config=config,
        precision=precision,
        recall=recall,
    )
