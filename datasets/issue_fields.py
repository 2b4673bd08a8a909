"""The names label-issue finding writes into a dataset, declared once.

Read by the finder (:mod:`detection_debugger.datasets.label_issues`), the review
(:mod:`detection_debugger.datasets.review`), the issue views (:mod:`detection_debugger.datasets
.views`), the measurement of the demo (:mod:`detection_debugger.demo.label_quality`) and the
front ends:

- on each ground-truth object: the scores :data:`SCORE_FIELDS` (one per issue type of an
  existing object), the evidence of the top-scored issue :data:`EVIDENCE_FIELDS`, the
  evidence and review decision of each type :data:`TYPE_FIELDS` (so that several issues of
  one object can be reviewed) and the tags :data:`ISSUE_TAGS`;
- ``<gt_field>`` + :data:`MISSING_SUFFIX`: the missing-annotation candidates.

Importing this module imports no FiftyOne.
"""

from __future__ import annotations

from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.evaluation.label_issues import (
    ISSUE_TYPES,
    LOOSE_BOX,
    MISSING,
    SPURIOUS,
    WRONG_CLASS,
)

__all__ = [
    "EVIDENCE_FIELDS",
    "GT_TYPES",
    "ISSUE_TAGS",
    "ISSUE_TAG_PREFIX",
    "MISSING_SUFFIX",
    "SCORE_FIELDS",
    "TYPE_FIELDS",
    "check_detections_fields",
    "declare_attribute",
    "issue_field",
    "missing_field",
]

ISSUE_TAG_PREFIX = "issue:"
ISSUE_TAGS = {t: f"{ISSUE_TAG_PREFIX}{t}" for t in ISSUE_TYPES}  # the label tags, once
MISSING_SUFFIX = "_missing"  # the field of missing-annotation candidates
GT_TYPES = (WRONG_CLASS, SPURIOUS, LOOSE_BOX)  # issues of existing ground-truth objects
SCORE_FIELDS = {t: f"issue_{t}" for t in GT_TYPES}
EVIDENCE_FIELDS = {
    "issue_score": "float",
    "issue_type": "str",
    "issue_label": "str",
    "issue_source_field": "str",
    "issue_source_id": "str",
    "issue_iou": "float",
    "issue_confidence": "float",
    "issue_support": "int",
    "issue_review": "str",
}


# Per issue type of a ground-truth object: the proposed class, the prediction behind the issue
# (field, id), its box (relative [x, y, w, h]) and the review decision of that issue.
TYPE_FIELDS = {
    t: {
        "label": (f"issue_{t}_label", "str"),
        "source_field": (f"issue_{t}_source_field", "str"),
        "source_id": (f"issue_{t}_source_id", "str"),
        "box": (f"issue_{t}_box", "list"),
        "review": (f"issue_{t}_review", "str"),
    }
    for t in GT_TYPES
}


def missing_field(gt_field: str) -> str:
    """The field of the missing-annotation candidates of ``gt_field``."""
    return gt_field + MISSING_SUFFIX


def issue_field(gt_field: str, issue_type: str) -> str:
    """The field whose objects carry the issues of ``issue_type``."""
    return missing_field(gt_field) if issue_type == MISSING else gt_field


def check_detections_fields(samples, names) -> None:
    """Raises ``ValueError`` unless every field of ``names`` is a ``Detections`` field."""
    import fiftyone as fo

    detections = samples.get_field_schema(embedded_doc_type=fo.Detections)
    for name in names:
        if not samples.has_field(name):
            raise ValueError(f"no field {name!r} in dataset {dataset_of(samples).name!r}")
        if name not in detections:
            known = ", ".join(sorted(detections)) or "none"
            raise ValueError(
                f"{name!r} is not a Detections field of {dataset_of(samples).name!r} "
                f"(its Detections fields: {known})"
            )


def declare_attribute(dataset, path: str, kind: str) -> None:
    """Declares the object attribute ``path`` (``float``, ``str``, ``int`` or a ``list`` of
    floats) in the dataset's schema unless it is there already."""
    import fiftyone.core.fields as fof

    if dataset.has_field(path):
        return
    if kind == "list":
        dataset.add_sample_field(path, fof.ListField, subfield=fof.FloatField)
    else:
        ftype = {"float": fof.FloatField, "str": fof.StringField, "int": fof.IntField}[kind]
        dataset.add_sample_field(path, ftype)
