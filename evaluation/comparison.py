"""Two results side by side: a slice against the whole set, or one model against another.

:func:`compare_results` puts two :class:`EvaluationResult` next to each other per class with
the difference ``b - a``; :func:`outcome_changes` follows every ground-truth object from one
evaluation to another (which objects a retrained model now finds, which it lost).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection_debugger.evaluation.confusion import Outcome
from detection_debugger.evaluation.results import ClassMetrics, EvaluationResult

__all__ = [
    "CLASS_METRICS",
    "CHANGES",
    "OutcomeChanges",
    "ResultComparison",
    "compare_results",
    "outcome_changes",
]

CLASS_METRICS: tuple[str, ...] = (
    "AP",
    "AP50",
    "AP75",
    "AR100",
    "num_gt",
    "num_pred",
    "tp",
    "fn",
    "mispredicted",
    "fp",
    "duplicate",
)

# Ground-truth outcomes that count as "found" and "not found" when following an object.
FOUND = (Outcome.TP,)
NOT_FOUND = (Outcome.FN, Outcome.MISPREDICTED)
CHANGES: dict[str, str] = {
    "fixed": "not found (undetected or mispredicted) by a, found (tp) by b",
    "regressed": "found (tp) by a, not found (undetected or mispredicted) by b",
    "still_missed": "not found by either",
    "kept": "found by both",
}


def _difference(a: float | int | None, b: float | int | None) -> float | int | None:
    if a is None or b is None:
        return None
    return b - a


@dataclass(frozen=True)
class ResultComparison:
    """Per-class and overall metrics of ``a`` and ``b`` and their difference ``b - a``.

    Attributes:
        labels: names of the two sides, e.g. ``("whole run", "faded crosswalks")``.
        stats: ``{"a": {...}, "b": {...}, "delta": {...}}`` of the 12 COCO statistics.
        classes: ``{class: {"a": {...}, "b": {...}, "delta": {...}}}`` of
            :data:`CLASS_METRICS` (None where a side lacks the class or a value is undefined).
    """

    labels: tuple[str, str]
    stats: dict[str, dict[str, float | None]]
    classes: dict[str, dict[str, dict[str, float | int | None]]]

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "stats": self.stats, "classes": self.classes}

    def format_table(self, metrics: tuple[str, ...] = ("AP", "AP50", "AR100", "tp", "fn")) -> str:
        """A plain-text table: per class, each metric for a, b and the difference."""
        a, b = self.labels
        head = f"{'class':<20}" + "".join(f"{m:>27}" for m in metrics)
        sub = f"{'':<20}" + "".join(f"{a[:8]:>9}{b[:8]:>9}{'Δ':>9}" for _ in metrics)
        lines = [head, sub, "-" * len(head)]

        def fmt(value) -> str:
            if value is None:
                return f"{'n/a':>9}"
            if isinstance(value, int):
                return f"{value:>9d}"
            return f"{value:>9.3f}"

        rows = [(name, sides) for name, sides in self.classes.items()]
        rows.append(("all classes", {side: self.stats[side] for side in ("a", "b", "delta")}))
        for name, sides in rows:
            cells = "".join(
                fmt(sides["a"].get(m)) + fmt(sides["b"].get(m)) + fmt(sides["delta"].get(m))
                for m in metrics
            )
            lines.append(f"{name[:19]:<20}{cells}")
        return "\n".join(lines)


def _metrics(m: ClassMetrics | None) -> dict[str, float | int | None]:
    if m is None:
        return dict.fromkeys(CLASS_METRICS)
    return {name: getattr(m, name) for name in CLASS_METRICS}


def compare_results(
    a: EvaluationResult, b: EvaluationResult, labels: tuple[str, str] = ("a", "b")
) -> ResultComparison:
    """``a`` and ``b`` per class (classes of ``a`` first, then those only in ``b``)."""
    names = list(a.classes) + [name for name in b.classes if name not in a.classes]
    classes = {}
    for name in names:
        ma, mb = _metrics(a.classes.get(name)), _metrics(b.classes.get(name))
        classes[name] = {
            "a": ma,
            "b": mb,
            "delta": {k: _difference(ma[k], mb[k]) for k in CLASS_METRICS},
        }
    stats = {
        "a": dict(a.stats),
        "b": dict(b.stats),
        "delta": {k: _difference(a.stats.get(k), b.stats.get(k)) for k in a.stats},
    }
    return ResultComparison(labels=tuple(labels), stats=stats, classes=classes)


@dataclass(frozen=True)
class OutcomeChanges:
    """How each ground-truth object's outcome changed from evaluation ``a`` to ``b``.

    Attributes:
        class_names: ``K`` class names.
        change: ``(G,)`` object array: a key of :data:`CHANGES`, or None for crowd regions
            and objects missing from one of the evaluations.
        counts: ``{class: {change: count}}``.
    """

    class_names: tuple[str, ...]
    change: np.ndarray
    counts: dict[str, dict[str, int]]

    def to_dict(self) -> dict:
        return {"definitions": dict(CHANGES), "classes": self.counts}


def outcome_changes(
    outcome_a: np.ndarray,
    outcome_b: np.ndarray,
    gt_class: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    mask: np.ndarray | None = None,
) -> OutcomeChanges:
    """Follows the same ground-truth objects through two evaluations.

    Args:
        outcome_a, outcome_b: ``(G,)`` :class:`Outcome` codes of the same objects (same rows)
            in evaluations ``a`` and ``b``; -1 where an evaluation lacks the object.
        gt_class: ``(G,)`` class index of each object.
        class_names: ``K`` names for the class indices.
        mask: ``(G,)`` bool objects to count (a slice), default all.
    """
    outcome_a, outcome_b = np.asarray(outcome_a), np.asarray(outcome_b)
    found_a, found_b = np.isin(outcome_a, FOUND), np.isin(outcome_b, FOUND)
    lost_a, lost_b = np.isin(outcome_a, NOT_FOUND), np.isin(outcome_b, NOT_FOUND)
    change = np.full(len(outcome_a), None, dtype=object)
    change[lost_a & found_b] = "fixed"
    change[found_a & lost_b] = "regressed"
    change[lost_a & lost_b] = "still_missed"
    change[found_a & found_b] = "kept"
    keep = np.ones(len(change), bool) if mask is None else np.asarray(mask, bool)
    counts = {}
    for k, name in enumerate(class_names):
        of_class = keep & (np.asarray(gt_class) == k)
        counts[name] = {c: int(np.sum(of_class & (change == c))) for c in CHANGES}
    return OutcomeChanges(class_names=tuple(class_names), change=change, counts=counts)
