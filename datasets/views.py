"""From a number on screen to the objects behind it: FiftyOne views of an evaluation run.

Every function takes the dataset (or view) the user is looking at, the run's key and
fields, and returns a view showing exactly the objects of one confusion-matrix cell or one
error type, using the per-object fields the run wrote (``KEY_outcome``,
``KEY_confused_with``), or one kind of per-object change between two runs.

:func:`issues_view` shows the flagged label issues of one type (written by
:func:`~detection_debugger.datasets.label_issues.find_label_issues`).
"""

from __future__ import annotations

from fiftyone import ViewField as F

from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.issue_fields import (
    ISSUE_TAGS,
    SCORE_FIELDS,
    TYPE_FIELDS,
    check_detections_fields,
    issue_field,
)
from detection_debugger.evaluation import BACKGROUND, CHANGES, MAIN_ERRORS, Outcome
from detection_debugger.evaluation.label_issues import ISSUE_TYPES, MISSING, REJECTED

__all__ = [
    "BACKGROUND",
    "ERROR_TYPES",
    "cell_view",
    "change_view",
    "class_view",
    "error_view",
    "issues_view",
    "tide_view",
]

TP, FN, MISPREDICTED = str(Outcome.TP), str(Outcome.FN), str(Outcome.MISPREDICTED)
ERROR_TYPES = {  # the panel's error buttons -> the outcomes they show
    "correct": (TP,),
    "undetected": (FN,),
    MISPREDICTED: (MISPREDICTED,),
    "ghosts": (str(Outcome.FP), str(Outcome.DUPLICATE)),
}


def _hide(view, field: str):
    """Shows no object of ``field`` (samples are kept)."""
    return view.filter_labels(field, F("_id") == None, only_matches=False)  # noqa: E711


def cell_view(view, eval_key: str, gt_field: str, pred_field: str, gt_label: str, pred_label: str):
    """The objects of one confusion-matrix cell (row ``gt_label``, column ``pred_label``).

    - same class: the true positives, as evaluation patches (each pair side by side);
    - two classes: the mispredictions (ground truth of ``gt_label`` found as ``pred_label``),
      both objects shown on their images;
    - ``background`` column: the undetected ground truth, as patches;
    - ``background`` row: the ghosts of ``pred_label``, as patches.
    """
    outcome, confused = F(f"{eval_key}_outcome"), F(f"{eval_key}_confused_with")
    if gt_label == BACKGROUND and pred_label == BACKGROUND:
        raise ValueError("the background/background cell is empty by definition")
    if pred_label == BACKGROUND:
        found = view.filter_labels(gt_field, (outcome == FN) & (F("label") == gt_label))
        return found.to_patches(gt_field)
    if gt_label == BACKGROUND:
        ghosts = view.filter_labels(
            pred_field, outcome.is_in(ERROR_TYPES["ghosts"]) & (F("label") == pred_label)
        )
        return ghosts.to_patches(pred_field)
    if gt_label == pred_label:
        patches = view.to_evaluation_patches(eval_key)
        # Crowd regions are "tp" patches in FiftyOne's convention; the outcome excludes them.
        return patches.match(F("type") == "tp").filter_labels(
            gt_field, (F("label") == gt_label) & (outcome == TP)
        )
    both = view.filter_labels(
        gt_field,
        (outcome == MISPREDICTED) & (F("label") == gt_label) & (confused == pred_label),
    ).filter_labels(
        pred_field,
        (outcome == MISPREDICTED) & (F("label") == pred_label) & (confused == gt_label),
    )
    return both


def error_view(view, eval_key: str, gt_field: str, pred_field: str, label: str, error: str):
    """The objects of class ``label`` with one error type (keys of :data:`ERROR_TYPES`)."""
    if error not in ERROR_TYPES:
        raise ValueError(f"unknown error type {error!r}; choose from {list(ERROR_TYPES)}")
    outcome = F(f"{eval_key}_outcome")
    wanted = outcome.is_in(ERROR_TYPES[error]) & (F("label") == label)
    if error == "ghosts":
        return _hide(view.filter_labels(pred_field, wanted), gt_field)
    if error == "undetected":
        return _hide(view.filter_labels(gt_field, wanted), pred_field)
    if error == "correct":
        return view.filter_labels(gt_field, wanted).filter_labels(pred_field, wanted)
    # mispredicted ground truth of this class, with the predictions that took it
    return view.filter_labels(gt_field, wanted).filter_labels(
        pred_field, (outcome == MISPREDICTED) & (F(f"{eval_key}_confused_with") == label)
    )


def tide_view(view, eval_key: str, gt_field: str, pred_field: str, error: str, label=None):
    """The objects of one TIDE error type (``KEY_tide``; one of
    :data:`~detection_debugger.evaluation.MAIN_ERRORS`), optionally of class ``label``.

    ``Miss`` shows the missed ground truth, the other types the predictions with that error;
    the other field stays whole (the context a ``Cls`` or ``Loc`` error is judged in).
    """
    if error not in MAIN_ERRORS:
        raise ValueError(f"unknown TIDE error type {error!r}; choose from {list(MAIN_ERRORS)}")
    wanted = F(f"{eval_key}_tide") == error
    if label is not None:
        wanted = wanted & (F("label") == label)
    return view.filter_labels(gt_field if error == "Miss" else pred_field, wanted)


def class_view(view, gt_field: str, pred_field: str, label: str):
    """Only the objects of class ``label`` (both fields), on the images that have any."""
    return (
        view.filter_labels(gt_field, F("label") == label, only_matches=False)
        .filter_labels(pred_field, F("label") == label, only_matches=False)
        .match(
            (F(f"{gt_field}.detections").length() > 0)
            | (F(f"{pred_field}.detections").length() > 0)
        )
    )


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
    found, lost = (TP,), (FN, MISPREDICTED)
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
        out = _hide(out, field)
    return out


def issues_view(samples, gt_field: str, issue_type: str, include_rejected: bool = False):
    """Patches of the flagged label issues of one type, highest score first.

    ``missing`` shows the objects of ``<gt_field>_missing``, the other types the ground-truth
    objects tagged ``issue:<type>``. ``include_rejected``: also the objects whose issue of
    this type was rejected (each issue of an object has its own decision,
    ``issue_<type>_review``; a missing candidate's is ``issue_review``), whatever their
    other issues.
    """
    if issue_type not in ISSUE_TYPES:
        raise ValueError(f"unknown issue type {issue_type!r}; choose from {ISSUE_TYPES}")
    field_name = issue_field(gt_field, issue_type)
    check_detections_fields(samples, (gt_field,))
    if not samples.has_field(field_name):
        raise ValueError(f"no label issues of {gt_field!r} yet: run find_label_issues first")
    score = "issue_score" if issue_type == MISSING else SCORE_FIELDS[issue_type]
    keep = F("tags").contains(ISSUE_TAGS[issue_type])
    if include_rejected:
        decision = "issue_review" if issue_type == MISSING else TYPE_FIELDS[issue_type]["review"][0]
        keep = keep | (F(decision) == REJECTED)
    view = samples.filter_labels(field_name, keep)
    return view.to_patches(field_name).sort_by(f"{field_name}.{score}", reverse=True)


def issue_evidence_view(samples, item: dict):
    """The image of one queued label issue (an item of
    :func:`~detection_debugger.datasets.review.review_queue`) showing its object and the
    prediction behind it side by side: the other objects of those two fields are hidden
    (ids compared as strings: the view travels to the App as JSON)."""
    view = samples.select(item["sample_id"])
    view = view.filter_labels(
        item["field"], F("_id").to_string() == item["label_id"], only_matches=False
    )
    source, source_id = item.get("source_field"), item.get("source_id")
    if source and source_id and source != item["field"] and samples.has_field(source):
        view = view.filter_labels(source, F("_id").to_string() == source_id, only_matches=False)
    return view
