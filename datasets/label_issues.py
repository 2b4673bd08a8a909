"""Label quality in FiftyOne: find annotation errors and write them on the dataset.

:func:`find_label_issues` reads the ground truth and every prediction field in bulk, scores
the four issue types with :mod:`detection_debugger.evaluation.label_issues` and writes (the
names are those of :mod:`detection_debugger.datasets.issue_fields`):

- on each ground-truth object: the scores ``issue_wrong_class``, ``issue_spurious``,
  ``issue_loose_box`` (0 when not a candidate), ``issue_score`` / ``issue_type`` (the top
  one), its evidence ``issue_label`` (the class after the fix), ``issue_source_field``,
  ``issue_source_id``, ``issue_iou``, ``issue_confidence``, its review decision
  ``issue_review`` (``accepted``/``rejected``/None); per type, ``issue_<type>_label``,
  ``issue_<type>_source_field``, ``issue_<type>_source_id``, ``issue_<type>_box`` (the
  prediction's relative box) and the decision ``issue_<type>_review``; and the tags
  ``issue:<type>`` of the flagged issues that were not rejected;
- ``<gt_field>_missing``: one object per missing-annotation candidate (the prediction's class
  and box) with the same ``issue_*`` attributes and the tag ``issue:missing``.

Decisions of the review (:mod:`detection_debugger.datasets.review`) live on the objects and
are kept: a re-run carries them over (a missing candidate keeps its id), and records itself
in the review log of ``gt_field``. The issues are shown
by :func:`detection_debugger.datasets.views.issues_view`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from detection_debugger.datasets.arrays import detection_set_from_view
from detection_debugger.datasets.exporting import FIXED_SUFFIX
from detection_debugger.datasets.fiftyone_private import bulk_write, dataset_of
from detection_debugger.datasets.issue_fields import (
    EVIDENCE_FIELDS,
    GT_TYPES,
    ISSUE_TAG_PREFIX,
    ISSUE_TAGS,
    SCORE_FIELDS,
    TYPE_FIELDS,
    check_detections_fields,
    declare_attribute,
    missing_field,
)
from detection_debugger.datasets.object_writes import (
    WRITE_BATCH,
    modified_now,
    split_per_sample,
    stamped,
    write_object_attributes,
)
from detection_debugger.datasets.review import read_review_log, timestamp, write_review_log
from detection_debugger.datasets.state import writes_dataset
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    ISSUE_TYPES,
    MISSING,
    REJECTED,
    IssueScores,
    LabelIssueConfig,
    LabelIssues,
)
from detection_debugger.evaluation.label_issues import find_label_issues as score_label_issues
from detection_debugger.evaluation.label_issues import (
    neighbour_support as support_from_embeddings,
)

__all__ = ["FindReport", "find_label_issues"]


@dataclass
class FindReport:
    """What :func:`find_label_issues` found and wrote.

    Attributes:
        gt_field, pred_fields, missing_field: the fields read and written.
        counts: ``{type: {"candidates": n, "flagged": n}}``.
        reviewed: ``{type: {"accepted": n, "rejected": n}}`` decisions carried over.
        config: the thresholds used.
        issues: the engine's scores (not serialised).
    """

    gt_field: str
    pred_fields: list[str]
    missing_field: str
    counts: dict
    reviewed: dict
    config: dict
    issues: LabelIssues | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "issues"}

    def summary(self) -> list[str]:
        lines = [f"label issues of {self.gt_field!r} from {', '.join(self.pred_fields)}:"]
        for t in ISSUE_TYPES:
            c, r = self.counts[t], self.reviewed.get(t, {})
            lines.append(
                f"  {t:<12}{c['flagged']:>6} flagged ({ISSUE_TAGS[t]}) of {c['candidates']} "
                f"candidates; {r.get(ACCEPTED, 0)} accepted, {r.get(REJECTED, 0)} rejected"
            )
        lines.append(f"  missing candidates are objects of {self.missing_field!r}")
        return lines


@dataclass(frozen=True)
class _Read:
    """What the finder read: the class names, the prediction fields and, per prediction
    field, its ``DetectionSet`` (all sharing the ground truth) and object ids."""

    classes: np.ndarray
    pred_fields: list[str]
    sets: list
    ids: list[dict]

    def source(self, set_index: int, pred: int) -> tuple[str, str]:
        """``(field, label id)`` of prediction ``pred`` of set ``set_index``."""
        return self.pred_fields[set_index], self.ids[set_index]["pred"][pred]


@writes_dataset("find_label_issues", ("gt_field", "pred_fields"))
def find_label_issues(
    samples,
    gt_field: str,
    pred_fields: Sequence[str],
    config: LabelIssueConfig | None = None,
    classes: list[str] | None = None,
    neighbour_support: np.ndarray | None = None,
    embeddings_key: str | None = None,
) -> FindReport:
    """Scores label issues of ``gt_field`` on ``samples`` and writes them (see module doc).

    Args:
        samples: a dataset or view (only its samples and visible objects are written).
        gt_field: the ground-truth ``Detections`` field.
        pred_fields: one or more prediction ``Detections`` fields (several sets agreeing make
            stronger evidence).
        config: thresholds (default :class:`LabelIssueConfig`).
        classes: class names (default: every label of the fields).
        neighbour_support: optional ``(G, K)`` embedding-neighbour support of the objects of
            ``gt_field`` (flattened view order) towards each class, for ``wrong_class``.
        embeddings_key: or the brain key of a similarity index over the objects of
            ``gt_field`` (e.g. ``clip_ground_truth`` from ``detection-debugger embed
            --objects``): the support is computed from its embeddings (the classes of each
            object's nearest neighbours).
    """
    pred_fields = list(pred_fields)
    _check_fields(samples, gt_field, pred_fields)
    dataset = dataset_of(samples)
    config = config or LabelIssueConfig()
    read = _read(samples, gt_field, pred_fields, classes)
    if embeddings_key is not None:
        if neighbour_support is not None:
            raise ValueError("give neighbour_support or embeddings_key, not both")
        neighbour_support = _support_from_index(dataset, embeddings_key, read)
    issues = score_label_issues(read.sets, pred_fields, config, neighbour_support)
    log = read_review_log(dataset, gt_field)
    reviewed = {t: {ACCEPTED: 0, REJECTED: 0} for t in ISSUE_TYPES}
    _write_gt_issues(samples, gt_field, issues, read, reviewed)
    _write_missing(samples, gt_field, issues[MISSING], read, reviewed)
    log["run"] = {
        "pred_fields": pred_fields,
        "config": config.to_dict(),
        "time": timestamp(),
        "counts": issues.counts(),
    }
    write_review_log(dataset, gt_field, log)
    return FindReport(
        gt_field=gt_field,
        pred_fields=pred_fields,
        missing_field=missing_field(gt_field),
        counts=issues.counts(),
        reviewed=reviewed,
        config=config.to_dict(),
        issues=issues,
    )


def _check_fields(samples, gt_field: str, pred_fields: list[str]) -> None:
    if not pred_fields:
        raise ValueError("at least one prediction field is needed")
    check_detections_fields(samples, (gt_field, *pred_fields))
    if gt_field in pred_fields:
        raise ValueError(f"{gt_field!r} is the ground truth, not a prediction field")


def _read(samples, gt_field: str, pred_fields: list[str], classes: list[str] | None) -> _Read:
    """Reads the ground truth with each prediction field, in bulk."""
    if classes is None:
        labels = set()
        for name in (gt_field, *pred_fields):
            labels.update(samples.distinct(f"{name}.detections.label"))
        classes = sorted(labels)
    sets, ids = [], []
    for name in pred_fields:
        data, object_ids = detection_set_from_view(samples, gt_field, name, classes=classes)
        sets.append(data)
        ids.append(object_ids)
    return _Read(np.array(classes, dtype=object), pred_fields, sets, ids)


def _support_from_index(dataset, brain_key: str, read: _Read) -> np.ndarray:
    """``(G, K)`` neighbour support of the ground-truth objects from the embeddings of the
    similarity index ``brain_key`` (objects it does not hold get none)."""
    if brain_key not in dataset.list_brain_runs():
        raise ValueError(f"no similarity index {brain_key!r} in dataset {dataset.name!r}")
    embeddings, _, label_ids = dataset.load_brain_results(brain_key).get_embeddings()
    if label_ids is None:
        raise ValueError(f"{brain_key!r} indexes images, not objects")
    row_of = {lid: j for j, lid in enumerate(read.ids[0]["gt"])}
    table = np.full((len(row_of), embeddings.shape[1]), np.nan)
    for lid, vector in zip(label_ids, embeddings):
        if lid in row_of:
            table[row_of[lid]] = vector
    gt = read.sets[0]
    return support_from_embeddings(table, gt.gt_class, gt.num_classes)


def _float_or_none(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


# --------------------------------------------------------------- ground-truth objects


def _write_gt_issues(samples, gt_field: str, issues, read: _Read, reviewed) -> None:
    """Writes the scores, the evidence (top issue and per type) and the tags of every
    ground-truth object; the review decisions stored on the objects stay (counted in
    ``reviewed``) and a rejected issue is not tagged again."""
    gt = read.sets[0]
    gt_ids = np.array(read.ids[0]["gt"], dtype=object)
    sizes = _object_sizes(samples, gt)
    scores, evidence, flagged, per_type = _gt_evidence(issues, read, len(gt_ids), sizes)
    decided = _gt_reviews(samples, gt_field, len(gt_ids))
    for t in GT_TYPES:
        for status in (ACCEPTED, REJECTED):
            reviewed[t][status] += int(np.sum(decided[t] == status))
    top = evidence["issue_type"]
    evidence["issue_review"] = np.array(
        [decided[t][j] if t else None for j, t in enumerate(top)], dtype=object
    )
    columns = {SCORE_FIELDS[t]: scores[t] for t in GT_TYPES}
    columns.update(evidence)
    columns.update(per_type)
    columns["tags"] = _gt_tags(samples, gt_field, flagged, decided, len(gt_ids))
    dataset = dataset_of(samples)
    kinds = {**{v: "float" for v in SCORE_FIELDS.values()}, **EVIDENCE_FIELDS}
    kinds.update(
        {name: kind for fields_ in TYPE_FIELDS.values() for name, kind in fields_.values()}
    )
    for name, kind in kinds.items():
        declare_attribute(dataset, f"{gt_field}.detections.{name}", kind)
    per_sample = {
        name: split_per_sample(np.asarray(values, dtype=object), gt.gt_image, gt.num_images)
        for name, values in columns.items()
    }
    write_object_attributes(samples, gt_field, read.ids[0]["samples"], per_sample)


def _object_sizes(samples, gt) -> np.ndarray:
    """``(G, 2)`` float64 width and height of each ground-truth object's image."""
    widths, heights = samples.values(["metadata.width", "metadata.height"])
    sizes = np.array([widths, heights], dtype=np.float64).T.reshape(-1, 2)
    return sizes[gt.gt_image]


def _gt_reviews(samples, gt_field: str, num_gt: int) -> dict:
    """``{type: (G,) object array}`` the review decision stored on each object, or None."""
    out = {}
    for t in GT_TYPES:
        name, _ = TYPE_FIELDS[t]["review"]
        path = f"{gt_field}.detections.{name}"
        if samples.has_field(path):
            flat = [v for per in samples.values(path) for v in (per or [])]
            out[t] = np.array(flat, dtype=object).reshape(-1)
        else:
            out[t] = np.full(num_gt, None, dtype=object)
    return out


def _gt_evidence(issues, read: _Read, num_gt: int, sizes: np.ndarray):  # long: four outputs
    """``(scores, evidence, flagged, per_type)`` per ground-truth object: ``{type: (G,)
    score}``, ``{evidence field: (G,) value of the top-scored issue}``, ``{type: (G,)
    bool}``, ``{per-type field: (G,) value}`` (see ``TYPE_FIELDS``; boxes relative)."""
    scores = {t: np.zeros(num_gt) for t in GT_TYPES}
    evidence = {name: np.full(num_gt, None, dtype=object) for name in EVIDENCE_FIELDS}
    flagged = {t: np.zeros(num_gt, bool) for t in GT_TYPES}
    per_type = {
        name: np.full(num_gt, None, dtype=object)
        for t in GT_TYPES
        for field_, (name, _) in TYPE_FIELDS[t].items()
        if field_ != "review"
    }
    best = np.zeros(num_gt)
    for t in GT_TYPES:
        s, names = issues[t], TYPE_FIELDS[t]
        scores[t][s.gt] = s.score
        flagged[t][s.gt] = s.flagged
        for i, j in enumerate(s.gt):
            p, set_index = int(s.pred[i]), int(s.pred_set[i])
            source_field, source_id = read.source(set_index, p) if p >= 0 else (None, None)
            per_type[names["label"][0]][j] = read.classes[s.proposed_label[i]]
            per_type[names["source_field"][0]][j] = source_field
            per_type[names["source_id"][0]][j] = source_id
            if p >= 0:
                box = read.sets[set_index].pred_boxes[p] / np.tile(sizes[j], 2)
                per_type[names["box"][0]][j] = [float(v) for v in box]
            if s.score[i] > best[j]:
                best[j] = s.score[i]
                evidence["issue_score"][j] = float(s.score[i])
                evidence["issue_type"][j] = t
                evidence["issue_label"][j] = read.classes[s.proposed_label[i]]
                evidence["issue_source_field"][j] = source_field
                evidence["issue_source_id"][j] = source_id
                evidence["issue_iou"][j] = _float_or_none(s.iou[i])
                evidence["issue_confidence"][j] = _float_or_none(s.confidence[i])
                evidence["issue_support"][j] = int(s.support[i])
    return scores, evidence, flagged, per_type


def _gt_tags(samples, gt_field: str, flagged: dict, decided: dict, num_gt: int) -> np.ndarray:
    """Each object's tags: its own, plus ``issue:<type>`` per flagged issue not rejected."""
    old_tags = [t for per in samples.values(f"{gt_field}.detections.tags") for t in (per or [])]
    tags = np.empty(num_gt, dtype=object)
    for j in range(num_gt):
        keep = [t for t in (old_tags[j] or []) if not t.startswith(ISSUE_TAG_PREFIX)]
        for t in GT_TYPES:
            if flagged[t][j] and decided[t][j] != REJECTED:
                keep.append(ISSUE_TAGS[t])
        tags[j] = keep
    return tags


# ----------------------------------------------------------------- missing candidates


def _flat(samples, paths: list[str]) -> list[list]:
    """Per path, the values of every object of ``samples`` in order (``unwind`` would also
    flatten list attributes)."""
    return [[v for per in column for v in (per or [])] for column in samples.values(paths)]


def _previous_missing(samples, gt_field: str) -> dict:
    """``{(source field, source id): (label id, review status)}`` of the missing candidates
    already known: those of ``<gt_field>_missing`` and those accepted into
    ``<gt_field>_fixed``. A candidate keeps its id and its decision across runs."""
    previous = {}
    fixed = gt_field + FIXED_SUFFIX
    path = f"{fixed}.detections.fix_type"
    if samples.has_field(path):
        names = ("id", "fix_type", "fix_source_field", "fix_source_id")
        values = _flat(samples, [f"{fixed}.detections.{n}" for n in names])
        for i, kind, f, src in zip(*values):
            if kind == MISSING:
                previous[(f, src)] = (i, ACCEPTED)
    missing = missing_field(gt_field)
    if samples.has_field(f"{missing}.detections.issue_review"):
        names = ("id", "issue_source_field", "issue_source_id", "issue_review")
        values = _flat(samples, [f"{missing}.detections.{n}" for n in names])
        for i, f, src, status in zip(*values):
            previous.setdefault((f, src), (i, status))
    return previous


def _declare_missing(dataset, missing: str) -> None:
    """Declares ``<gt>_missing`` and the evidence attributes of its objects."""
    import fiftyone as fo

    if not dataset.has_field(missing):
        dataset.add_sample_field(missing, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    for name, kind in EVIDENCE_FIELDS.items():
        declare_attribute(dataset, f"{missing}.detections.{name}", kind)


def _write_missing(samples, gt_field: str, s: IssueScores, read: _Read, reviewed):
    """Writes ``<gt_field>_missing``: one object per missing candidate, its decision carried
    over (and counted in ``reviewed``), in FiftyOne's stored form, one bulk update per
    :data:`WRITE_BATCH` samples (label objects validated one by one took minutes at 50k
    candidates)."""
    from bson import ObjectId
    from pymongo import UpdateOne

    missing = missing_field(gt_field)
    previous = _previous_missing(samples, gt_field)
    widths, heights = samples.values(["metadata.width", "metadata.height"])
    sample_ids = read.ids[0]["samples"]
    per_image: list[list] = [[] for _ in sample_ids]
    for i in s.order():
        image = int(s.image[i])
        source = read.source(int(s.pred_set[i]), int(s.pred[i]))
        key, status = previous.get(source, (None, None))
        if status:
            reviewed[MISSING][status] += 1
        size = (widths[image], heights[image])
        detection = _missing_detection(s, i, read.classes, source, key, status, size)
        per_image[image].append(detection)
    dataset = dataset_of(samples)
    _declare_missing(dataset, missing)
    for start in range(0, len(sample_ids), WRITE_BATCH):
        batch = sample_ids[start : start + WRITE_BATCH]
        now = modified_now()
        ops = [
            UpdateOne(
                {"_id": ObjectId(sample_id)},
                stamped(
                    {"$set": {missing: {"_cls": "Detections", "detections": per_image[start + k]}}},
                    now,
                ),
            )
            for k, sample_id in enumerate(batch)
        ]
        bulk_write(dataset, ops, batch)


def _missing_detection(s: IssueScores, i: int, classes, source, key, status, size) -> dict:
    """The object of missing candidate ``i`` in FiftyOne's stored form: the prediction's
    class and relative box, with id ``key`` (a new one when None) and its evidence;
    ``source``: ``(field, label id)`` of the prediction, ``size``: the image's ``(width,
    height)``."""
    from bson import ObjectId

    w, h = size
    x, y, bw, bh = s.box[i]
    label = classes[s.label[i]]
    source_field, source_id = source
    return {
        "_id": ObjectId(key) if key else ObjectId(),
        "_cls": "Detection",
        "tags": [ISSUE_TAGS[MISSING]] if s.flagged[i] and status != REJECTED else [],
        "label": label,
        "bounding_box": [float(x / w), float(y / h), float(bw / w), float(bh / h)],
        "confidence": float(s.confidence[i]),
        "issue_score": float(s.score[i]),
        "issue_type": MISSING,
        "issue_label": label,
        "issue_source_field": source_field,
        "issue_source_id": source_id,
        "issue_iou": float(s.iou[i]),
        "issue_confidence": float(s.confidence[i]),
        "issue_support": int(s.support[i]),
        "issue_review": status,
    }
