"""The cached match table: match once, then evaluate the whole set or any image slice exactly.

Building a :class:`MatchTable` computes every IoU and runs every matching once. After that,
:meth:`MatchTable.evaluate` on a subset of images only filters rows and accumulates: its
numbers equal those of pycocotools run on that subset alone, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.coco_metrics import (
    IOU_THRESHOLDS,
    CocoMatches,
    accumulate,
    class_aware_pairs_of,
    match_coco,
    per_class_metrics,
    summarize,
)
from detection_debugger.evaluation.confusion import (
    ObjectOutcomes,
    Outcome,
    confusion_matrix,
    match_outcomes,
)
from detection_debugger.evaluation.detections import DetectionSet, InputError
from detection_debugger.evaluation.results import ClassMetrics, EvaluationResult

__all__ = ["MatchTable", "evaluate", "evaluation_result"]


@dataclass(frozen=True)
class MatchTable:
    """Matching results of one prediction set against ground truth, per object.

    Attributes:
        data: the evaluated ground truth and predictions.
        coco: COCO matching state (all IoU thresholds and area ranges).
        outcomes: per-object outcomes of the 4-way matching (one IoU and score threshold).
    """

    data: DetectionSet
    coco: CocoMatches
    outcomes: ObjectOutcomes

    @classmethod
    def build(
        cls, data: DetectionSet, iou_threshold: float = 0.5, score_threshold: float = 0.0
    ) -> MatchTable:
        """Matches ``data`` (COCO protocol, and the 4-way matching at the given thresholds)."""
        if not 0.0 < iou_threshold <= 1.0:
            raise InputError(f"IoU threshold must be in (0, 1], got {iou_threshold}")
        # The class-aware pairs and ranks are computed once, for both matchings.
        shared = class_aware_pairs_of(data, min(iou_threshold, float(IOU_THRESHOLDS.min())))
        return cls(
            data=data,
            coco=match_coco(data, shared),
            outcomes=match_outcomes(data, iou_threshold, score_threshold, shared),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every array of the table, flat (for ``np.savez``); :meth:`from_arrays` inverts it."""
        out: dict[str, np.ndarray] = {}
        for prefix, part in (("data", self.data), ("coco", self.coco), ("outcomes", self.outcomes)):
            for name in part.__dataclass_fields__:
                out[f"{prefix}.{name}"] = np.asarray(getattr(part, name))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MatchTable:
        """Rebuilds a table saved with :meth:`to_arrays` (no IoU is recomputed)."""

        def part(kind, prefix):
            values = {}
            for name, f in kind.__dataclass_fields__.items():
                value = arrays[f"{prefix}.{name}"]
                if f.type in ("int", "float"):
                    value = value.item()
                elif name == "class_names":
                    value = tuple(str(v) for v in value)
                values[name] = value
            return kind(**values)

        return cls(
            data=part(DetectionSet, "data"),
            coco=part(CocoMatches, "coco"),
            outcomes=part(ObjectOutcomes, "outcomes"),
        )

    def image_mask(self, image_ids: Iterable[int]) -> np.ndarray:
        """``(I,)`` bool mask of the given image ids; unknown ids raise :class:`InputError`."""
        wanted = np.unique(np.fromiter((int(i) for i in image_ids), dtype=np.int64))
        index = np.searchsorted(self.data.image_ids, wanted)
        known = index < len(self.data.image_ids)
        known[known] = self.data.image_ids[index[known]] == wanted[known]
        if not known.all():
            raise InputError(f"image id {int(wanted[~known][0])} is not in the evaluated set")
        mask = np.zeros(len(self.data.image_ids), dtype=bool)
        mask[index] = True
        return mask

    def selection(
        self,
        image_mask: np.ndarray | None = None,
        gt_mask: np.ndarray | None = None,
        pred_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(G,)`` ground truth and ``(P,)`` predictions that belong to a slice.

        The slice rule (the stored matching is kept, nothing is re-matched): ground truth
        belongs if its image is selected and it is in ``gt_mask``; a prediction paired with
        ground truth (true positive, misprediction, absorbed by a crowd) belongs exactly when
        that ground truth does; an unpaired prediction (ghost, duplicate, below the score
        threshold) belongs if its image is selected and it is in ``pred_mask``.
        """
        data, outcomes = self.data, self.outcomes
        gt_in = np.ones(len(data.gt_ids), bool)
        pred_in = np.ones(len(data.pred_ids), bool)
        if image_mask is not None:
            image_mask = np.asarray(image_mask, bool)
            gt_in, pred_in = image_mask[data.gt_image], image_mask[data.pred_image]
        if gt_mask is not None:
            gt_in = gt_in & np.asarray(gt_mask, bool)
        paired = np.isin(outcomes.pred_outcome, (Outcome.TP, Outcome.MISPREDICTED, Outcome.IGNORED))
        if gt_mask is not None and len(gt_in):
            pred_in = np.where(paired, gt_in[np.maximum(outcomes.pred_match, 0)], pred_in)
        if pred_mask is not None:
            pred_in = np.where(paired, pred_in, pred_in & np.asarray(pred_mask, bool))
        return gt_in, pred_in

    def evaluate(
        self,
        image_mask: np.ndarray | None = None,
        gt_mask: np.ndarray | None = None,
        pred_mask: np.ndarray | None = None,
    ) -> EvaluationResult:
        """Metrics of a slice from the cached matches (default: everything).

        With ``image_mask`` alone (``(I,)`` bool) the numbers equal those of pycocotools run
        on the selected images. ``gt_mask`` (``(G,)``) and ``pred_mask`` (``(P,)``) select
        objects: see :meth:`selection` for the rule, applied to the COCO matches of every
        IoU threshold (a prediction matched to excluded ground truth is ignored) and to the
        confusion matrix.
        """
        data, outcomes = self.data, self.outcomes
        precision, recall = accumulate(self.coco, image_mask, gt_mask, pred_mask, every_curve=False)
        confusion = confusion_matrix(data, outcomes, image_mask, gt_mask, pred_mask)
        gt_keep, pred_keep = self.selection(image_mask, gt_mask, pred_mask)
        num_images = data.num_images if image_mask is None else int(np.sum(image_mask))

        num_classes = data.num_classes
        num_gt = np.bincount(data.gt_class[gt_keep & ~data.gt_crowd], minlength=num_classes)
        counted = pred_keep & (data.pred_scores >= outcomes.score_threshold)
        num_pred = np.bincount(data.pred_class[counted], minlength=num_classes)
        duplicate = np.bincount(
            data.pred_class[pred_keep & (outcomes.pred_outcome == Outcome.DUPLICATE)],
            minlength=num_classes,
        )
        params = {
            "iou": outcomes.iou_threshold,
            "score_threshold": outcomes.score_threshold,
            "num_images": num_images,
        }
        return evaluation_result(
            data.class_names, precision, recall, confusion, num_gt, num_pred, duplicate, params
        )


def evaluation_result(
    class_names, precision, recall, confusion, num_gt, num_pred, duplicate, params: dict
) -> EvaluationResult:
    """The result of a selection from its COCO ``precision``/``recall`` arrays, its 4-way
    ``confusion`` matrix and its per-class counts (``(K,)`` each)."""
    m = confusion.matrix
    classes = {}
    for k, (name, coco) in enumerate(zip(class_names, per_class_metrics(precision, recall))):
        classes[name] = ClassMetrics(
            **coco,
            num_gt=int(num_gt[k]),
            num_pred=int(num_pred[k]),
            tp=int(m[k, k]),
            fn=int(m[k, -1]),
            mispredicted=int(m[k, :-1].sum() - m[k, k]),
            fp=int(m[-1, k]),
            duplicate=int(duplicate[k]),
        )
    return EvaluationResult(
        stats=summarize(precision, recall), classes=classes, confusion=confusion, params=params
    )


def evaluate(
    data: DetectionSet, iou_threshold: float = 0.5, score_threshold: float = 0.0
) -> EvaluationResult:
    """Evaluates ``data`` in one call: COCO statistics, per-class metrics, confusion matrix."""
    return MatchTable.build(data, iou_threshold, score_threshold).evaluate()
