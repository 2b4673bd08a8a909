"""Two evaluation runs of this plugin side by side, on the whole run or on a slice.

:func:`compare_runs` puts the per-class metrics of two runs on the same ground truth next to
each other (deltas ``b - a``, see :func:`~detection_debugger.evaluation.compare_results`) and
follows every ground-truth object from run ``a`` to run ``b`` (fixed, regressed, still
missed, kept; see :func:`~detection_debugger.evaluation.outcome_changes`), from the runs'
stored matches. The App view of one kind of change is
:func:`detection_debugger.datasets.views.change_view`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection_debugger.datasets.runs import DebuggerResults, load_run
from detection_debugger.datasets.slices import evaluate_view
from detection_debugger.evaluation import (
    OutcomeChanges,
    ResultComparison,
    compare_results,
    outcome_changes,
)

__all__ = ["WHOLE_RUN", "RunComparison", "compare_runs"]

WHOLE_RUN = "whole run"


@dataclass(frozen=True)
class RunComparison:
    """Two runs on the same scope: per-class metrics side by side and per-object changes."""

    eval_keys: tuple[str, str]
    scope: str
    comparison: ResultComparison
    changes: OutcomeChanges

    def to_dict(self) -> dict:
        return {
            "eval_keys": list(self.eval_keys),
            "scope": self.scope,
            **self.comparison.to_dict(),
            "changes": self.changes.to_dict(),
        }


def _aligned_outcomes(a: DebuggerResults, b: DebuggerResults) -> np.ndarray:
    """``(G_a,)`` outcome in run ``b`` of each ground-truth row of run ``a`` (-1 if absent)."""
    rows = b.label_positions("gt", a.label_ids("gt"))
    outcomes = b.table().outcomes.gt_outcome
    return np.where(rows >= 0, outcomes[np.maximum(rows, 0)] if len(outcomes) else -1, -1)


def compare_runs(dataset, key_a: str, key_b: str, view=None, scope: str | None = None):
    """Runs ``key_a`` and ``key_b`` side by side (deltas ``b - a``) on ``view`` (a slice) or
    the whole runs, and how each ground-truth object's outcome changed from ``a`` to ``b``.
    """
    a, b = load_run(dataset, key_a), load_run(dataset, key_b)
    if a.config.gt_field != b.config.gt_field:
        raise ValueError(
            f"runs {key_a!r} and {key_b!r} use different ground truth "
            f"({a.config.gt_field!r} vs {b.config.gt_field!r}): nothing to follow per object"
        )
    if view is None:
        result_a, result_b, gt_mask = a.result, b.result, None
    else:
        result_a, selection = evaluate_view(a, view)
        result_b, _ = evaluate_view(b, view)
        gt_mask, _ = a.table().selection(
            selection.image_mask, selection.gt_mask, selection.pred_mask
        )
    table_a = a.table()
    changes = outcome_changes(
        table_a.outcomes.gt_outcome,
        _aligned_outcomes(a, b),
        table_a.data.gt_class,
        table_a.data.class_names,
        gt_mask,
    )
    comparison = compare_results(result_a, result_b, (key_a, key_b))
    return RunComparison((key_a, key_b), scope or WHOLE_RUN, comparison, changes)
