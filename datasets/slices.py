"""Data slices: saved views, re-evaluated exactly from an evaluation run's stored matches.

A slice is a FiftyOne saved view (``dataset.save_view``). Evaluating a slice never recomputes
an IoU: the run's match table (see :mod:`.evaluation_run`) is filtered to the slice.

- **Image slices** (the view selects samples and shows all their objects): the numbers equal
  pycocotools run on those images alone.
- **Object slices** (the view filters labels, or is a patches view): the rule of
  :meth:`~detection_debugger.evaluation.MatchTable.selection`, with the whole run's matching
  kept. Ground truth in the slice is what the view shows; a prediction matched to it counts
  (shown or not); a prediction matched to ground truth outside the slice is ignored; an
  unmatched prediction (ghost, duplicate) counts if the view shows it, and, when the view
  filters the ground truth, only in the classes of the slice's ground truth. Equivalently, at
  each IoU threshold: pycocotools after removing the excluded ground truth, the predictions
  matched to it and the unselected unmatched predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from detection_debugger.datasets.fiftyone_private import dataset_of, is_patches_view
from detection_debugger.datasets.runs import METHOD, DebuggerResults
from detection_debugger.evaluation import (
    CHANGES,
    EvaluationResult,
    OutcomeChanges,
    ResultComparison,
    compare_results,
    outcome_changes,
)

__all__ = [
    "RunComparison",
    "SliceSelection",
    "change_view",
    "compare_runs",
    "debugger_runs",
    "evaluate_slice",
    "evaluate_view",
    "format_slice_list",
    "list_slices",
    "load_run",
    "load_slice",
    "save_slice",
    "slice_selection",
]

WHOLE_RUN = "whole run"


# ---------------------------------------------------------------- slices as saved views


def save_slice(dataset, name: str, view, description: str | None = None, overwrite=False) -> None:
    """Saves ``view`` as the slice ``name`` (a saved view of ``dataset``).

    Raises:
        ValueError: a slice ``name`` exists and ``overwrite`` is False, or the view belongs to
            another dataset.
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("a slice needs a name")
    if dataset.has_saved_view(name) and not overwrite:
        raise ValueError(f"dataset {dataset.name!r} already has a slice {name!r}")
    dataset.save_view(name, view, description=description or None, overwrite=overwrite)


def list_slices(dataset, results: DebuggerResults | None = None) -> list[dict]:
    """Every slice: ``name``, ``description``, ``num_samples``, ``created_at``; with a run's
    ``results`` also ``selection`` (``images``/``objects``), the run's ``AP`` on the slice,
    ``AP_whole_run`` and ``error`` (why the slice could not be evaluated, else None)."""
    whole = None if results is None else results.result.stats["AP"]
    out = []
    for info in dataset.list_saved_views(info=True):
        view = dataset.load_saved_view(info["name"])
        row = {
            "name": info["name"],
            "description": info.get("description") or "",
            "num_samples": len(view),
            "created_at": info.get("created_at"),
        }
        if results is not None:
            try:
                result, selection = evaluate_view(results, view)
                row.update(selection=selection.level, AP=result.stats["AP"], error=None)
            except ValueError as error:
                row.update(selection="n/a", AP=None, error=str(error))
            row["AP_whole_run"] = whole
        out.append(row)
    return out


def format_slice_list(rows: list[dict], eval_key: str | None = None) -> str:
    """The rows of :func:`list_slices` as a text table (with AP columns when evaluated)."""
    if not rows:
        return "no slices (save a view as a slice with the save_slice operator)"
    head = f"{'slice':<28}{'samples':>8}"
    if eval_key:
        head += f"{'level':>9}{'AP':>8}{'AP (all)':>10}"
    lines = [head + "  description", "-" * (len(head) + 13)]

    def fmt(value):
        return f"{'n/a':>8}" if value is None else f"{value:8.3f}"

    for row in rows:
        line = f"{row['name'][:27]:<28}{row['num_samples']:>8}"
        if eval_key:
            line += f"{row['selection']:>9}{fmt(row['AP'])}{fmt(row['AP_whole_run']):>10}"
        lines.append(line + "  " + row["description"])
    return "\n".join(lines)


def load_slice(dataset, name: str):
    """The saved view ``name``.

    Raises:
        ValueError: no such slice (the message lists the existing ones).
    """
    if not dataset.has_saved_view(name):
        names = ", ".join(dataset.list_saved_views()) or "none"
        raise ValueError(f"dataset {dataset.name!r} has no slice {name!r} (slices: {names})")
    return dataset.load_saved_view(name)


# ---------------------------------------------------------------- runs


def debugger_runs(dataset) -> list[str]:
    """Keys of the dataset's evaluation runs made by this plugin."""
    return [
        key
        for key in dataset.list_evaluations()
        if getattr(dataset.get_evaluation_info(key).config, "method", None) == METHOD
    ]


def load_run(dataset, eval_key: str) -> DebuggerResults:
    """The results of a run of this plugin (cached by FiftyOne with its decoded table).

    Raises:
        ValueError: no such run, or a run made by another method.
    """
    if not dataset.has_evaluation(eval_key):
        keys = ", ".join(debugger_runs(dataset)) or "none"
        raise ValueError(f"dataset {dataset.name!r} has no evaluation {eval_key!r} (runs: {keys})")
    results = dataset.load_evaluation_results(eval_key, cache=True)
    if not isinstance(results, DebuggerResults):
        raise ValueError(
            f"evaluation {eval_key!r} was not made by detection-debugger: run "
            "evaluate_detections of this plugin to re-evaluate slices exactly"
        )
    return results


# ---------------------------------------------------------------- slice evaluation


@dataclass(frozen=True)
class SliceSelection:
    """What a view selects of a run's match table.

    Attributes:
        image_mask: ``(I,)`` bool samples of the run in the view.
        gt_mask: ``(G,)`` bool ground truth in the slice, None for all of the images'.
        pred_mask: ``(P,)`` bool predictions whose ghosts count, None for all.
        outside_samples: samples of the view that the run did not evaluate (left out).
        outside_labels: labels of the view that the run did not evaluate (left out).
    """

    image_mask: np.ndarray
    gt_mask: np.ndarray | None
    pred_mask: np.ndarray | None
    outside_samples: int = 0
    outside_labels: int = 0

    @property
    def level(self) -> str:
        """``"images"`` or ``"objects"``."""
        return "images" if self.gt_mask is None and self.pred_mask is None else "objects"

    @property
    def num_images(self) -> int:
        return int(self.image_mask.sum())


def _label_paths(view, field: str) -> tuple[str, str] | None:
    """The list path and the id path of a label field of ``view``, None if absent."""
    if not view.has_field(field):
        return None
    document_type = getattr(view.get_field(field), "document_type", None)
    if document_type is not None and issubclass(document_type, fo.Detections):
        return f"{field}.detections", f"{field}.detections.id"
    return field, f"{field}.id"


def _shown_labels(view, field, expected: int, patches: bool) -> list[str] | None:
    """Ids of the ``field`` labels the view shows; None when it shows all ``expected``."""
    paths = _label_paths(view, field)
    if paths is None:
        return None
    if not patches and view.count(paths[0]) == expected:
        return None  # same samples, same number of labels: nothing is filtered
    ids = view.values(paths[1], unwind=True)
    return [i for i in ids if i is not None]


def slice_selection(results: DebuggerResults, view) -> SliceSelection:
    """The part of the run ``results`` that ``view`` (a slice) selects."""
    config = results.config
    table = results.table()
    data = table.data
    patches = is_patches_view(view)  # patches views map to their samples
    sample_ids = view.distinct("sample_id") if patches else view.values("id")
    image_mask, outside_samples = results.sample_rows(sample_ids)

    outside_labels = 0
    masks = {}
    for side, field, image in (
        ("gt", config.gt_field, data.gt_image), ("pred", config.pred_field, data.pred_image)
    ):  # fmt: skip
        expected = int(image_mask[image].sum())
        shown = _shown_labels(view, field, expected, patches)
        if shown is None:
            masks[side] = None
            continue
        masks[side], unknown = results.label_rows(side, shown)
        outside_labels += unknown
    gt_mask, pred_mask = masks["gt"], masks["pred"]
    if gt_mask is not None:
        # Ghosts count only in the classes of the slice's ground truth.
        classes = np.zeros(data.num_classes, bool)
        classes[np.unique(data.gt_class[gt_mask & image_mask[data.gt_image]])] = True
        in_classes = classes[data.pred_class]
        pred_mask = in_classes if pred_mask is None else pred_mask & in_classes
    return SliceSelection(image_mask, gt_mask, pred_mask, outside_samples, outside_labels)


def evaluate_view(results: DebuggerResults, view) -> tuple[EvaluationResult, SliceSelection]:
    """Exact metrics of the run on ``view``, and what the view selected."""
    selection = slice_selection(results, view)
    result = results.table().evaluate(selection.image_mask, selection.gt_mask, selection.pred_mask)
    result.params["selection"] = selection.level
    return result, selection


def evaluate_slice(dataset, eval_key: str, slice_name: str | None = None) -> EvaluationResult:
    """The run ``eval_key`` on the slice ``slice_name`` (default: the whole run).

    ``params`` of the result name the slice, its level (``images``/``objects``) and the
    samples and labels of the slice that the run did not evaluate (left out).
    """
    results = load_run(dataset, eval_key)
    if slice_name is None:
        result = results.result
        result.params.update(slice=None, selection="images")
        return result
    result, selection = evaluate_view(results, load_slice(dataset, slice_name))
    result.params.update(
        slice=slice_name,
        outside_samples=selection.outside_samples,
        outside_labels=selection.outside_labels,
    )
    return result


# ---------------------------------------------------------------- comparing two runs


@dataclass(frozen=True)
class RunComparison:
    """Two runs on the same scope: per-class metrics side by side and per-object changes."""

    eval_keys: tuple[str, str]
    scope: str
    comparison: ResultComparison
    changes: OutcomeChanges

    def format_text(self) -> str:
        """The comparison as text: a per-class table and the per-object changes."""
        a, b = self.eval_keys
        lines = [f"{a} vs {b} on {self.scope} (Δ = {b} - {a})", self.comparison.format_table()]
        lines.append(f"\nground-truth objects from {a} to {b}:")
        lines.append(f"{'class':<20}" + "".join(f"{c:>14}" for c in CHANGES))
        for name, counts in self.changes.counts.items():
            lines.append(f"{name[:19]:<20}" + "".join(f"{counts[c]:>14}" for c in CHANGES))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "eval_keys": list(self.eval_keys),
            "scope": self.scope,
            **self.comparison.to_dict(),
            "changes": self.changes.to_dict(),
        }


def _aligned_outcomes(a: DebuggerResults, b: DebuggerResults) -> np.ndarray:
    """``(G_a,)`` outcome in run ``b`` of each ground-truth row of run ``a`` (-1 if absent)."""
    ids_a = a.label_ids("gt")
    if ids_a is None:
        raise ValueError(f"evaluation {a.key!r} was saved by an older version: evaluate again")
    rows = b.label_positions("gt", ids_a)
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


def change_view(view, key_a: str, key_b: str, gt_field: str, change: str, label=None):
    """The ground-truth objects with one change from run ``key_a`` to ``key_b``.

    ``change`` is a key of :data:`~detection_debugger.evaluation.CHANGES`. The view keeps the
    images with such objects and shows only them, plus, for ``fixed``, the prediction of
    ``key_b`` that found each and, for ``regressed``, that of ``key_a``.
    """
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r}; choose from {list(CHANGES)}")
    dataset = dataset_of(view)
    before, after = F(f"{key_a}_outcome"), F(f"{key_b}_outcome")
    found, lost = ("tp",), ("fn", "mispredicted")
    wanted = {
        "fixed": before.is_in(lost) & after.is_in(found),
        "regressed": before.is_in(found) & after.is_in(lost),
        "still_missed": before.is_in(lost) & after.is_in(lost),
        "kept": before.is_in(found) & after.is_in(found),
    }[change]
    if label is not None:
        wanted = wanted & (F("label") == label)
    out = view.filter_labels(gt_field, wanted)
    pred_a = dataset.get_evaluation_info(key_a).config.pred_field
    pred_b = dataset.get_evaluation_info(key_b).config.pred_field
    partners = {
        "fixed": (pred_b, key_b),
        "regressed": (pred_a, key_a),
        "kept": (pred_b, key_b),
    }
    shown_fields = set()
    if change in partners:
        field, key = partners[change]
        ids = [i for i in out.values(f"{gt_field}.detections.{key}_id", unwind=True) if i]
        # Compared as strings: the view must survive JSON serialisation to the App.
        out = out.filter_labels(field, F("_id").to_string().is_in(ids), only_matches=False)
        shown_fields.add(field)
    for field in {pred_a, pred_b} - shown_fields:
        out = out.filter_labels(field, F("_id") == None, only_matches=False)  # noqa: E711
    return out
