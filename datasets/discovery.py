"""Failure slices found automatically on an evaluation run, and saved as slices.

:func:`discover_slices` makes sure the descriptors are stored
(:func:`~detection_debugger.datasets.descriptors.ensure_descriptors`), gathers them for the
run and searches them (:func:`~detection_debugger.evaluation.slice_discovery.discover`):
the slices of one class (or of every class) where the run loses most AP, evaluated exactly
from the run's stored matches. :func:`hypothesis_view` turns one of them into a FiftyOne view
whose slice evaluation (:func:`~detection_debugger.datasets.slices.evaluate_view`) gives the
same AP, and :func:`save_hypothesis` saves it as a slice.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from fiftyone import ViewField as F

from detection_debugger.datasets.descriptors import (
    EXCLUDE_MARK,
    PREFIX,
    cached_arrays,
    compute_clip_clusters,
    ensure_descriptors,
    run_descriptors,
    stored_descriptors_cover,
)
from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.runs import DebuggerResults, load_run
from detection_debugger.datasets.slices import save_slice
from detection_debugger.evaluation.cell_ap import CellEvaluator
from detection_debugger.evaluation.slice_discovery import (
    OBJECTS,
    DiscoveryConfig,
    DiscoveryResult,
    discover,
)

__all__ = ["discover_run", "discover_slices", "hypothesis_view", "save_hypothesis"]

_EVALUATORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DESCRIPTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _evaluator(results: DebuggerResults, classes) -> CellEvaluator:
    """The run's entries for the searched classes, kept with the (cached) results."""
    per_run = _EVALUATORS.setdefault(results, {})
    key = None if classes is None else tuple(classes)
    if key not in per_run:
        names = results.table().data.class_names
        indices = None if classes is None else [names.index(c) for c in classes]
        per_run[key] = CellEvaluator.from_table(results.table(), indices)
    return per_run[key]


def _state(dataset, exclude: tuple) -> tuple:
    """What the gathered descriptors depend on: the samples' latest ``last_modified_at``,
    the schema and the exclusion marks."""
    schema = dataset.get_field_schema(flat=True)
    marks = tuple(
        sorted(n for n, f in schema.items() if (getattr(f, "info", None) or {}).get(EXCLUDE_MARK))
    )
    return (len(dataset), dataset.max("last_modified_at"), tuple(sorted(schema)), marks, exclude)


def _descriptors(dataset, results: DebuggerResults, exclude: tuple, progress) -> list:
    """The run's descriptors: kept with the (cached) results while :func:`_state` is
    unchanged; otherwise computed where missing (first time) and gathered again."""
    cached = _DESCRIPTORS.get(results)
    if cached is not None and cached[0] == _state(dataset, exclude):
        return cached[1]
    config = results.config
    cached = cached_arrays(dataset)  # one read of the stored descriptors
    if not stored_descriptors_cover(dataset, results, cached):
        ensure_descriptors(dataset, [config.pred_field], config.gt_field, progress)
        cached = None  # computing them dropped the stored copy
    if not dataset.has_field(f"{config.gt_field}.detections.{PREFIX}clip_cluster"):
        if compute_clip_clusters(dataset, config.gt_field, config.pred_field):
            cached = None
    descriptors = run_descriptors(dataset, results, exclude, cached)
    _DESCRIPTORS[results] = (_state(dataset, exclude), descriptors)
    return descriptors


def discover_run(
    dataset,
    eval_key: str,
    cls: str | None = None,
    config: DiscoveryConfig | None = None,
    progress: Callable | None = None,
    exclude=(),
) -> DiscoveryResult:
    """The failure slices of the run ``eval_key`` (of class ``cls``, default every class).

    Args:
        progress: ``progress(done, total)`` while descriptors are computed (first time).
        exclude: sample fields not to slice by.

    Raises:
        ValueError: no such run, or an unknown class.
    """
    dataset = dataset_of(dataset)
    results = load_run(dataset, eval_key)
    names = results.table().data.class_names
    if cls is not None and cls not in names:
        raise ValueError(f"run {eval_key!r} has no class {cls!r} (classes: {', '.join(names)})")
    descriptors = _descriptors(dataset, results, tuple(exclude), progress)
    classes = None if cls is None else [cls]
    return discover(
        results.table(),
        descriptors,
        classes,
        config or DiscoveryConfig(),
        evaluator=_evaluator(results, classes),
    )


def discover_slices(dataset, eval_key: str, cls: str | None = None, top: int = 10) -> list[dict]:
    """:func:`discover_run` as JSON-able rows, best first: ``name``, ``description``,
    ``level`` (``images``/``objects``), ``num_gt``, ``AP``, ``delta_AP``, ``baseline_AP``,
    ``score``, plus ``class``, ``p_value``, ``slice_AP`` (what the saved slice evaluates to)
    and ``conditions`` (for :func:`save_hypothesis`)."""
    config = DiscoveryConfig(top=top)
    return discover_run(dataset, eval_key, cls, config).to_dicts()


def _condition_expression(condition: dict, attribute: bool, root: str = ""):
    """The filter of one condition: on a label attribute (``attribute``) or a sample field
    (``root="$"``: a sample field read from inside a label filter)."""
    value = F(root + condition["field"])
    if condition.get("value") is not None:
        if condition["field"] == "tags":
            tag = condition["descriptor"].removeprefix("tag:")
            has = F(root + "tags").contains(tag)
            return has if condition["value"] == "with" else ~has
        if condition["value"] in ("True", "False") and not attribute:
            return value == (condition["value"] == "True")
        return value == condition["value"]
    parts = [value != None]  # noqa: E711 (missing values sort below numbers in MongoDB)
    if condition.get("low") is not None:
        parts.append(value >= condition["low"])
    if condition.get("high") is not None:
        parts.append(value < condition["high"])
    expression = parts[0]
    for part in parts[1:]:
        expression = expression & part
    return expression


def hypothesis_view(dataset, eval_key: str, hypothesis: dict):
    """The slice of a hypothesis (a row of :func:`discover_slices`) as a view.

    Image conditions alone select samples (its slice evaluation gives the hypothesis's AP).
    With object conditions the slice is a set of objects: the ground truth shown is the
    class's objects meeting every condition (an image condition through their sample) and
    the predictions shown are all of the class's, so that each false positive of the class
    counts; samples showing neither are left out, those with the most of the slice's
    objects come first. Its slice evaluation gives the hypothesis's ``slice_AP`` (the
    hypothesis's ``AP`` is that, normalized).
    """
    dataset = dataset_of(dataset)
    config = load_run(dataset, eval_key).config
    view = dataset.view()
    conditions = hypothesis["conditions"]
    if not any(c["level"] == OBJECTS for c in conditions):
        for condition in conditions:
            view = view.match(_condition_expression(condition, attribute=False))
        return view
    label = F("label") == hypothesis["class"]
    expression = label
    for condition in conditions:
        if condition["level"] == OBJECTS:
            expression = expression & _condition_expression(condition, attribute=True)
        else:
            expression = expression & _condition_expression(condition, False, root="$")
    view = view.filter_labels(config.gt_field, expression, only_matches=False)
    view = view.filter_labels(config.pred_field, label, only_matches=False)
    objects = F(f"{config.gt_field}.detections").length()
    shown = objects + F(f"{config.pred_field}.detections").length()
    # The images holding the slice's objects first (the others hold false positives only).
    return view.match(shown > 0).sort_by(objects, reverse=True)


def save_hypothesis(
    dataset, eval_key: str, hypothesis: dict, name: str | None = None, overwrite: bool = False
) -> str:
    """Saves a hypothesis as a slice (a saved view; default name: the hypothesis's).
    Returns the slice's name."""
    dataset = dataset_of(dataset)
    name = name or hypothesis["name"]
    view = hypothesis_view(dataset, eval_key, hypothesis)
    save_slice(dataset, name, view, hypothesis.get("description"), overwrite=overwrite)
    return name
