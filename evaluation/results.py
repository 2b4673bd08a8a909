"""What an evaluation returns: COCO statistics, per-class metrics and the confusion matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detection_debugger.evaluation.confusion import ConfusionMatrix

__all__ = ["ClassMetrics", "EvaluationResult"]


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class.

    ``AP`` (COCO AP@[.5:.95]), ``AP50``, ``AP75`` and ``AR100`` follow pycocotools (all areas,
    100 detections per image and class) and are None when the class has no ground truth.
    The counts come from the confusion matrix: ``tp`` its diagonal cell, ``fn`` the
    background column, ``mispredicted`` the rest of the class's row, ``fp`` the background row
    (ghosts, ``duplicate`` among them). ``num_gt`` counts non-crowd ground truth, ``num_pred``
    the predictions at or above the score threshold.
    """

    AP: float | None
    AP50: float | None
    AP75: float | None
    AR100: float | None
    num_gt: int
    num_pred: int
    tp: int
    fn: int
    mispredicted: int
    fp: int
    duplicate: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> ClassMetrics:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class EvaluationResult:
    """Result of evaluating a set of images (the whole set or a slice).

    Attributes:
        stats: the 12 COCO summary statistics (``AP``, ``AP50``, ..., ``ARl``), None where
            undefined (pycocotools prints -1).
        classes: per-class metrics by class name, in class-id order.
        confusion: the 4-way confusion matrix.
        params: the evaluation parameters and the number of images evaluated.
    """

    stats: dict[str, float | None]
    classes: dict[str, ClassMetrics]
    confusion: ConfusionMatrix
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON document of ``detection-debugger evaluate`` (see the README)."""
        return {
            "stats": dict(self.stats),
            "classes": {name: m.to_dict() for name, m in self.classes.items()},
            "confusion": self.confusion.to_dict(),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict) -> EvaluationResult:
        return cls(
            stats=dict(d["stats"]),
            classes={name: ClassMetrics.from_dict(m) for name, m in d["classes"].items()},
            confusion=ConfusionMatrix.from_dict(d["confusion"]),
            params=dict(d.get("params", {})),
        )

    def most_room_to_improve(self) -> str | None:
        """The class with the lowest AP, weighted by how often it occurs.

        Score: ``(1 - AP) * ln(1 + num_gt)``. The AP gap counts most; the logarithm of the
        number of ground-truth objects lets a frequent class outrank a slightly worse rare
        one, without letting sheer frequency hide a class that fails. None when no class has
        ground truth.
        """
        gaps = {
            name: (1.0 - m.AP) * math.log1p(m.num_gt)
            for name, m in self.classes.items()
            if m.AP is not None
        }
        return max(gaps, key=gaps.__getitem__) if gaps else None

    def format_table(self) -> str:
        """A plain-text per-class table for terminals."""
        header = (
            f"{'class':<20}{'AP':>7}{'AP50':>7}{'AR100':>7}{'#GT':>7}{'#pred':>7}"
            f"{'TP':>6}{'FN':>6}{'misp':>6}{'FP':>6}"
        )
        lines = [header, "-" * len(header)]

        def fmt(value: float | None) -> str:
            return "   n/a" if value is None else f"{value:6.3f}"

        for name, m in self.classes.items():
            lines.append(
                f"{name[:19]:<20} {fmt(m.AP)} {fmt(m.AP50)} {fmt(m.AR100)}"
                f"{m.num_gt:>7}{m.num_pred:>7}{m.tp:>6}{m.fn:>6}{m.mispredicted:>6}{m.fp:>6}"
            )
        stats = self.stats
        lines.append("-" * len(header))
        lines.append(
            "all classes: "
            + "  ".join(f"{k}={fmt(stats[k]).strip()}" for k in ("AP", "AP50", "AP75", "AR100"))
        )
        worst = self.most_room_to_improve()
        if worst is not None:
            lines.append(f"most room to improve: {worst}")
        return "\n".join(lines)

    def format_confusion(self) -> str:
        """The confusion matrix as a text table (rows: ground truth, columns: predicted)."""
        labels = self.confusion.labels
        width = max(len(label) for label in labels) + 2
        lines = ["confusion matrix (rows: ground truth, columns: predicted)"]
        lines.append(" " * width + "".join(f"{label[: width - 2]:>{width}}" for label in labels))
        for label, row in zip(labels, self.confusion.matrix.tolist()):
            lines.append(f"{label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
        return "\n".join(lines)
