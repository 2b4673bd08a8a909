"""Data slices: saved views, re-evaluated exactly from an evaluation run's stored matches.

A slice is a FiftyOne saved view (``dataset.save_view``). Evaluating a slice never recomputes
an IoU: the run's match table (see :mod:`detection_debugger.datasets.runs`) is filtered to the
slice. Two runs side by side: :mod:`detection_debugger.datasets.comparison`.

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

from dataclasses import dataclass, replace

import fiftyone as fo
import numpy as np

from detection_debugger.datasets.fiftyone_private import is_patches_view, shows_every_label
from detection_debugger.datasets.run_index import RunIndex, load_run_index, save_run_index
from detection_debugger.datasets.runs import DebuggerResults, check_run, debugger_runs, load_run
from detection_debugger.datasets.view_membership import view_sample_ids
from detection_debugger.evaluation import EvaluationResult
from detection_debugger.evaluation.image_slices import ImageSliceIndex

__all__ = [
    "SliceSelection",
    "debugger_runs",
    "evaluate_slice",
    "evaluate_view",
    "list_slices",
    "load_run",
    "load_slice",
    "save_slice",
    "slice_selection",
]


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
    patches = is_patches_view(view)  # patches views map to their samples
    sample_ids = view.distinct("sample_id") if patches else view_sample_ids(view)
    image_mask, outside_samples = results.sample_rows(sample_ids)
    if not patches and shows_every_label(view):  # every label of its samples: no table needed
        return SliceSelection(image_mask, None, None, outside_samples, 0)

    data = results.table().data
    outside_labels = 0
    masks = {}
    for side, field, image in (
        ("gt", config.gt_field, data.gt_image),
        ("pred", config.pred_field, data.pred_image),
    ):
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


def evaluate_selection(results: DebuggerResults, selection: SliceSelection) -> EvaluationResult:
    """Exact metrics of the run on what a view selected."""
    result = results.table().evaluate(selection.image_mask, selection.gt_mask, selection.pred_mask)
    return _with_params(result, selection=selection.level)


def evaluate_view(results: DebuggerResults, view) -> tuple[EvaluationResult, SliceSelection]:
    """Exact metrics of the run on ``view``, and what the view selected."""
    selection = slice_selection(results, view)
    return evaluate_selection(results, selection), selection


def evaluate_slice(dataset, eval_key: str, slice_name: str | None = None) -> EvaluationResult:
    """The run ``eval_key`` on the slice ``slice_name`` (default: the whole run).

    ``params`` of the result name the slice, its level (``images``/``objects``) and the
    samples and labels of the slice that the run did not evaluate (left out). An image
    slice is evaluated from the run's by-image index (:mod:`~.run_index`) without loading
    the run's results; an object slice from its match table.
    """
    if slice_name is None:
        return _with_params(load_run(dataset, eval_key).result, slice=None, selection="images")
    view = load_slice(dataset, slice_name)
    if not is_patches_view(view) and shows_every_label(view):
        run_index = _run_index(dataset, eval_key)
        image_mask, outside_samples = run_index.image_mask(view_sample_ids(view))
        result = _with_params(run_index.index.evaluate(image_mask), selection="images")
        outside_labels = 0
    else:
        result, selection = evaluate_view(load_run(dataset, eval_key), view)
        outside_samples, outside_labels = selection.outside_samples, selection.outside_labels
    return _with_params(
        result,
        slice=slice_name,
        outside_samples=outside_samples,
        outside_labels=outside_labels,
    )


def _run_index(dataset, eval_key: str) -> RunIndex:
    """The by-image index of the run ``eval_key``: stored with it, else built from its
    results (a run stored before the index existed) and stored for next time.

    Raises:
        ValueError: no such run, or a run made by another method (see :func:`load_run`).
    """
    check_run(dataset, eval_key)
    run_index = load_run_index(dataset, eval_key)
    if run_index is None:
        results = load_run(dataset, eval_key)
        index = ImageSliceIndex.build(results.table())
        run_index = save_run_index(dataset, eval_key, index, results.sample_ids)
    return run_index


def _with_params(result: EvaluationResult, **params) -> EvaluationResult:
    """``result`` with ``params`` added to its parameters (a new result; it is frozen)."""
    return replace(result, params={**result.params, **params})
