"""Label quality in FiftyOne: find annotation errors, review them, build a corrected field.

:func:`find_label_issues` reads the ground truth and every prediction field in bulk, scores
the four issue types with :mod:`detection_debugger.evaluation.label_issues` and writes:

- on each ground-truth object: the scores ``issue_wrong_class``, ``issue_spurious``,
  ``issue_loose_box`` (0 when not a candidate), ``issue_score`` / ``issue_type`` (the top
  one), its evidence ``issue_label`` (the class after the fix), ``issue_source_field``,
  ``issue_source_id``, ``issue_iou``, ``issue_confidence``, the review decision
  ``issue_review`` (``accepted``/``rejected``/None), and the tags ``issue:<type>`` of the
  flagged issues that were not rejected;
- ``<gt_field>_missing``: one object per missing-annotation candidate (the prediction's class
  and box) with the same ``issue_*`` attributes and the tag ``issue:missing``.

:func:`accept_issues` applies issues to ``<gt_field>_fixed`` (created as a copy of the ground
truth on first use): missing objects are added from the prediction, wrong classes changed,
spurious objects removed, loose boxes replaced by the prediction's box. Every changed object
records ``fix_type``, ``fix_source_field``, ``fix_source_id``, ``fix_time`` (and
``fix_previous_label`` / ``fix_previous_box``); every decision, removals included, is logged in
``dataset.info["detection_debugger"]["label_issues"][gt_field]["decisions"]``.
:func:`reject_issues` undoes an accepted change and records the rejection. Neither touches the
original field; re-running the finder keeps the decisions. The exporters export
``<gt_field>_fixed`` when it exists (``dataset_export.FIXED_SUFFIX``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

import numpy as np

from detection_debugger.datasets.arrays import detection_set_from_view
from detection_debugger.datasets.exporting import FIXED_SUFFIX
from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.object_writes import split_per_sample, write_object_attributes
from detection_debugger.datasets.state import writes_dataset
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    ISSUE_TYPES,
    LOOSE_BOX,
    MISSING,
    REJECTED,
    SPURIOUS,
    WRONG_CLASS,
    LabelIssueConfig,
    LabelIssues,
)
from detection_debugger.evaluation.label_issues import find_label_issues as score_label_issues
from detection_debugger.formats.relative_boxes import pixel_boxes

__all__ = [
    "ISSUE_TAGS",
    "MISSING_SUFFIX",
    "Candidate",
    "FindReport",
    "accept_issues",
    "find_label_issues",
    "flagged_label_ids",
    "format_quality",
    "issues_view",
    "manifest_truth",
    "measure_quality",
    "our_candidates",
    "review_issues",
    "reject_issues",
    "review_decisions",
]

ISSUE_TAG_PREFIX = "issue:"
ISSUE_TAGS = {t: f"{ISSUE_TAG_PREFIX}{t}" for t in ISSUE_TYPES}  # the label tags, once
MISSING_SUFFIX = "_missing"  # the field of missing-annotation candidates
INFO_KEY = "label_issues"  # dataset.info["detection_debugger"][INFO_KEY][gt_field]
GT_TYPES = (WRONG_CLASS, SPURIOUS, LOOSE_BOX)  # issues of existing ground-truth objects
SCORE_FIELDS = {t: f"issue_{t}" for t in GT_TYPES}
EVIDENCE_FIELDS = {
    "issue_score": "float", "issue_type": "str", "issue_label": "str",
    "issue_source_field": "str", "issue_source_id": "str", "issue_iou": "float",
    "issue_confidence": "float", "issue_support": "int", "issue_review": "str",
}  # fmt: skip
FIX_FIELDS = {
    "fix_type": "str", "fix_source_field": "str", "fix_source_id": "str", "fix_time": "str",
    "fix_previous_label": "str", "fix_previous_box": "list",
}  # fmt: skip


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _store(dataset, gt_field: str) -> dict:
    """A copy of the label-issue record of ``gt_field`` in ``dataset.info``."""
    info = dataset.info.get("detection_debugger", {})
    store = copy.deepcopy(dict(info.get(INFO_KEY, {}).get(gt_field, {})))
    store.setdefault("decisions", {})
    return store


def _save_store(dataset, gt_field: str, store: dict) -> None:
    """Writes the record back (whole ``info`` replaced: nested edits are not tracked)."""
    info = copy.deepcopy(dict(dataset.info))
    info.setdefault("detection_debugger", {}).setdefault(INFO_KEY, {})[gt_field] = store
    dataset.info = info
    dataset.save()


def review_decisions(dataset, gt_field: str = "ground_truth") -> dict:
    """``{label id: {"type", "status", "time", "source_field", "source_id", ...}}``."""
    return _store(dataset, gt_field)["decisions"]


def _declare(dataset, path: str, kind: str) -> None:
    import fiftyone.core.fields as fof

    if dataset.has_field(path):
        return
    if kind == "list":
        dataset.add_sample_field(path, fof.ListField, subfield=fof.FloatField)
    else:
        ftype = {"float": fof.FloatField, "str": fof.StringField, "int": fof.IntField}[kind]
        dataset.add_sample_field(path, ftype)


def _float_or_none(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


@writes_dataset("find_label_issues", ("gt_field", "pred_fields"))
def find_label_issues(
    samples,
    gt_field: str,
    pred_fields: Sequence[str],
    config: LabelIssueConfig | None = None,
    classes: list[str] | None = None,
    neighbour_support: np.ndarray | None = None,
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
    """
    import fiftyone as fo
    from bson import ObjectId

    pred_fields = list(pred_fields)
    if not pred_fields:
        raise ValueError("at least one prediction field is needed")
    dataset = dataset_of(samples)
    _check_detections_fields(samples, (gt_field, *pred_fields))
    if gt_field in pred_fields:
        raise ValueError(f"{gt_field!r} is the ground truth, not a prediction field")
    config = config or LabelIssueConfig()
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
    issues = score_label_issues(sets, pred_fields, config, neighbour_support)
    gt = sets[0]
    sample_ids = ids[0]["samples"]
    gt_ids = np.array(ids[0]["gt"], dtype=object)
    store = _store(dataset, gt_field)
    decisions = store["decisions"]
    names = np.array(classes, dtype=object)

    # Ground-truth objects: scores, the top issue's evidence, tags.
    num_gt = len(gt_ids)
    scores = {t: np.zeros(num_gt) for t in GT_TYPES}
    evidence = {name: np.full(num_gt, None, dtype=object) for name in EVIDENCE_FIELDS}
    flagged = {t: np.zeros(num_gt, bool) for t in GT_TYPES}
    best = np.zeros(num_gt)
    for t in GT_TYPES:
        s = issues[t]
        scores[t][s.gt] = s.score
        flagged[t][s.gt] = s.flagged
        better = s.score > best[s.gt]
        rows, g = np.flatnonzero(better), s.gt[better]
        best[g] = s.score[rows]
        for i, j in zip(rows, g):
            p = int(s.pred[i])
            evidence["issue_score"][j] = float(s.score[i])
            evidence["issue_type"][j] = t
            evidence["issue_label"][j] = names[s.proposed_label[i]]
            evidence["issue_source_field"][j] = pred_fields[s.pred_set[i]] if p >= 0 else None
            evidence["issue_source_id"][j] = ids[s.pred_set[i]]["pred"][p] if p >= 0 else None
            evidence["issue_iou"][j] = _float_or_none(s.iou[i])
            evidence["issue_confidence"][j] = _float_or_none(s.confidence[i])
            evidence["issue_support"][j] = int(s.support[i])
    reviewed = {t: {ACCEPTED: 0, REJECTED: 0} for t in ISSUE_TYPES}
    for j, label_id in enumerate(gt_ids):
        decision = decisions.get(label_id)
        if decision and evidence["issue_type"][j] == decision["type"]:
            evidence["issue_review"][j] = decision["status"]
            reviewed[decision["type"]][decision["status"]] += 1
    old_tags = samples.values(f"{gt_field}.detections.tags")
    flat_tags = [list(t or []) for per in old_tags for t in (per or [])]
    tags = np.empty(num_gt, dtype=object)
    for j in range(num_gt):
        keep = [t for t in flat_tags[j] if not t.startswith(ISSUE_TAG_PREFIX)]
        decision = decisions.get(gt_ids[j])
        for t in GT_TYPES:
            rejected = decision and decision["type"] == t and decision["status"] == REJECTED
            if flagged[t][j] and not rejected:
                keep.append(ISSUE_TAGS[t])
        tags[j] = keep
    columns = {SCORE_FIELDS[t]: scores[t] for t in GT_TYPES}
    columns.update(evidence)
    columns["tags"] = tags
    for name, kind in {**{v: "float" for v in SCORE_FIELDS.values()}, **EVIDENCE_FIELDS}.items():
        _declare(dataset, f"{gt_field}.detections.{name}", kind)
    per_sample = {
        name: split_per_sample(np.asarray(values, dtype=object), gt.gt_image, gt.num_images)
        for name, values in columns.items()
    }
    write_object_attributes(samples, gt_field, sample_ids, per_sample)

    # Missing candidates: a separate field; ids are kept across runs (same source prediction).
    missing_field = gt_field + MISSING_SUFFIX
    previous = {}
    for key, decision in decisions.items():
        if decision["type"] == MISSING:
            previous[(decision.get("source_field"), decision.get("source_id"))] = key
    if samples.has_field(missing_field):
        old = samples.values(
            [f"{missing_field}.detections.{n}" for n in ("id", "issue_source_field",
                                                         "issue_source_id")]
        )  # fmt: skip
        for per_ids, per_fields, per_src in zip(*old):
            for i, f, s in zip(per_ids or [], per_fields or [], per_src or []):
                previous.setdefault((f, s), i)
    widths, heights = samples.values(["metadata.width", "metadata.height"])
    s = issues[MISSING]
    per_image: list[list] = [[] for _ in sample_ids]
    for i in s.order():
        image, set_index, p = int(s.image[i]), int(s.pred_set[i]), int(s.pred[i])
        source_field, source_id = pred_fields[set_index], ids[set_index]["pred"][p]
        key = previous.get((source_field, source_id))
        decision = decisions.get(key) if key else None
        status = decision["status"] if decision else None
        if status:
            reviewed[MISSING][status] += 1
        w, h = widths[image], heights[image]
        x, y, bw, bh = s.box[i]
        label = names[s.label[i]]
        detection = fo.Detection(
            _id=ObjectId(key) if key else ObjectId(),
            label=label,
            bounding_box=[x / w, y / h, bw / w, bh / h],
            confidence=float(s.confidence[i]),
            tags=[ISSUE_TAGS[MISSING]] if s.flagged[i] and status != REJECTED else [],
            issue_score=float(s.score[i]),
            issue_type=MISSING,
            issue_label=label,
            issue_source_field=source_field,
            issue_source_id=source_id,
            issue_iou=float(s.iou[i]),
            issue_confidence=float(s.confidence[i]),
            issue_support=int(s.support[i]),
            issue_review=status,
        )
        per_image[image].append(detection)
    samples.set_values(missing_field, [fo.Detections(detections=d) for d in per_image],
                       dynamic=True)  # fmt: skip

    run = {"pred_fields": pred_fields, "config": config.to_dict(), "time": _now(),
           "counts": issues.counts()}  # fmt: skip
    store["run"] = run
    _save_store(dataset, gt_field, store)
    return FindReport(
        gt_field=gt_field,
        pred_fields=pred_fields,
        missing_field=missing_field,
        counts=issues.counts(),
        reviewed=reviewed,
        config=config.to_dict(),
        issues=issues,
    )


def issues_view(samples, gt_field: str, issue_type: str, include_rejected: bool = False):
    """Patches of the flagged issues of one type, highest score first.

    ``missing`` shows the objects of ``<gt_field>_missing``, the other types the ground-truth
    objects tagged ``issue:<type>``.
    """
    from fiftyone import ViewField as F

    if issue_type not in ISSUE_TYPES:
        raise ValueError(f"unknown issue type {issue_type!r}; choose from {ISSUE_TYPES}")
    field_name = gt_field + MISSING_SUFFIX if issue_type == MISSING else gt_field
    _check_detections_fields(samples, (gt_field,))
    if not samples.has_field(field_name):
        raise ValueError(f"no label issues of {gt_field!r} yet: run find_label_issues first")
    score = "issue_score" if issue_type == MISSING else SCORE_FIELDS[issue_type]
    keep = F("tags").contains(ISSUE_TAGS[issue_type])
    if include_rejected:
        keep = keep | (F("issue_review") == REJECTED)
    view = samples.filter_labels(field_name, keep)
    return view.to_patches(field_name).sort_by(f"{field_name}.{score}", reverse=True)


# ------------------------------------------------------------------------------ review


def _strip(detection):
    """A copy of a ground-truth object without the finder's attributes and tags (same id)."""
    out = detection.copy()
    out.id = detection.id
    for name in (*SCORE_FIELDS.values(), *EVIDENCE_FIELDS):
        if out.has_field(name):
            out.clear_field(name)
    out.tags = [t for t in (detection.tags or []) if not t.startswith(ISSUE_TAG_PREFIX)]
    return out


def _ensure_fixed(dataset, gt_field: str) -> str:
    """Creates ``<gt_field>_fixed`` as a clean copy of the ground truth when missing."""
    fixed = gt_field + FIXED_SUFFIX
    if dataset.has_field(fixed):
        return fixed
    import fiftyone as fo

    # Written through FiftyOne objects, as every later review edit is, so that undoing an
    # edit gives back the very same stored document.
    originals = dataset.values(gt_field)
    copies = [
        fo.Detections(detections=[_strip(d) for d in value.detections]) if value else None
        for value in originals
    ]
    dataset.set_values(fixed, copies, dynamic=True)
    return fixed


def _check_detections_fields(samples, names) -> None:
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


def _locate(dataset, gt_field: str, label_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{label id: (sample id, field)}`` for ids of ``gt_field`` or its missing field, each
    an object with an issue (checked before anything is written)."""
    from bson import ObjectId

    _check_detections_fields(dataset, (gt_field,))
    invalid = [lid for lid in label_ids if not ObjectId.is_valid(lid)]
    if invalid:
        raise ValueError(f"not label ids (24 hexadecimal digits): {invalid[:3]}")
    missing = gt_field + MISSING_SUFFIX
    fields_ = [gt_field] + ([missing] if dataset.has_field(missing) else [])
    wanted = set(label_ids)
    found, without_issue = {}, []
    view = dataset.select_labels(ids=list(wanted), fields=fields_)
    for name in fields_:
        flagged = f"{name}.detections.issue_type"
        issue_paths = [flagged] if dataset.has_field(flagged) else []
        values = view.values(["id", f"{name}.detections.id", *issue_paths])
        issues = values[2] if issue_paths else [None] * len(values[0])
        for sid, per, types in zip(values[0], values[1], issues):
            for lid, issue in zip(per or [], types or [None] * len(per or [])):
                if lid in wanted:
                    found[lid] = (sid, name)
                    if issue is None:
                        without_issue.append(lid)
    unknown = sorted(wanted - set(found))
    if unknown:
        raise ValueError(f"{len(unknown)} label ids are not objects of {gt_field!r} or "
                         f"{missing!r}: {unknown[:3]}")  # fmt: skip
    if without_issue:
        raise ValueError(
            f"label {without_issue[0]} has no issue: run find_label_issues first"
            + (f" ({len(without_issue)} such labels)" if len(without_issue) > 1 else "")
        )
    return found


def _by_id(detections) -> dict:
    return {d.id: i for i, d in enumerate(detections)}


@writes_dataset("review_label_issues", ("gt_field",))
def review_issues(samples, gt_field: str, label_ids: Sequence[str], status: str) -> dict:
    """Records ``status`` (``accepted``/``rejected``) for the issues of ``label_ids`` and
    applies or undoes their fixes in ``<gt_field>_fixed``; see :func:`accept_issues`."""
    dataset = dataset_of(samples)
    label_ids = list(dict.fromkeys(label_ids))
    if not label_ids:
        return {"accepted": 0, "rejected": 0, "changed": 0}
    located = _locate(dataset, gt_field, label_ids)
    fixed = _ensure_fixed(dataset, gt_field)
    missing = gt_field + MISSING_SUFFIX
    store = _store(dataset, gt_field)
    decisions = store["decisions"]
    by_sample: dict[str, list[str]] = {}
    for lid, (sid, _) in located.items():
        by_sample.setdefault(sid, []).append(lid)
    changed = 0
    now = _now()
    import fiftyone as fo

    for sample in dataset.select(list(by_sample)).iter_samples(autosave=True):
        originals = sample[gt_field].detections if sample[gt_field] else []
        if sample[fixed] is None:
            sample[fixed] = fo.Detections(detections=[_strip(d) for d in originals])
        fixed_dets = list(sample[fixed].detections)
        candidates = sample[missing].detections if sample.has_field(missing) and sample[
            missing] else []  # fmt: skip
        for lid in by_sample[sample.id]:
            field_name = located[lid][1]
            source = (originals if field_name == gt_field else candidates)[
                _by_id(originals if field_name == gt_field else candidates)[lid]
            ]
            issue = source["issue_type"] if source.has_field("issue_type") else None
            if issue is None:
                raise ValueError(f"label {lid} has no issue: run find_label_issues first")
            previous = decisions.get(lid)
            was_accepted = bool(previous and previous["status"] == ACCEPTED)
            position = _by_id(fixed_dets).get(lid)
            if status == ACCEPTED and not was_accepted:
                fixed_dets = _apply(sample, fixed_dets, position, source, originals, now)
                changed += 1
            elif status == REJECTED and was_accepted:
                fixed_dets = _undo(fixed_dets, position, source, originals, issue)
                changed += 1
            if field_name == missing:
                source["issue_review"] = status
                source.tags = [t for t in source.tags if t != ISSUE_TAGS[MISSING]] + (
                    [ISSUE_TAGS[MISSING]] if status == ACCEPTED else []
                )
            decisions[lid] = {
                "type": issue, "status": status, "time": now, "sample_id": sample.id,
                "field": field_name, "label": source["issue_label"],
                "source_field": source["issue_source_field"],
                "source_id": source["issue_source_id"],
            }  # fmt: skip
        sample[fixed] = fo.Detections(detections=fixed_dets)
    _save_store(dataset, gt_field, store)
    for name, kind in FIX_FIELDS.items():
        _declare(dataset, f"{fixed}.detections.{name}", kind)
    counts = {ACCEPTED: 0, REJECTED: 0}
    for lid in label_ids:
        counts[decisions[lid]["status"]] += 1
    return {**counts, "changed": changed}


def _source_prediction(sample, field_name: str | None, label_id: str | None):
    if not field_name or not label_id or not sample[field_name]:
        return None
    for d in sample[field_name].detections:
        if d.id == label_id:
            return d
    return None


def _apply(sample, fixed_dets: list, position, source, originals, now: str) -> list:
    """``fixed_dets`` with the issue of ``source`` applied (provenance recorded)."""
    issue = source["issue_type"]
    provenance = {
        "fix_type": issue, "fix_source_field": source["issue_source_field"],
        "fix_source_id": source["issue_source_id"], "fix_time": now,
    }  # fmt: skip
    if issue == MISSING:
        if position is not None:
            return fixed_dets
        import fiftyone as fo

        added = fo.Detection(label=source.label, bounding_box=list(source.bounding_box),
                             **provenance)  # fmt: skip
        added.id = source.id
        return fixed_dets + [added]
    if position is None:
        raise ValueError(f"label {source.id} is not in the corrected field any more")
    if issue == SPURIOUS:
        return fixed_dets[:position] + fixed_dets[position + 1 :]
    target = fixed_dets[position]
    if issue == WRONG_CLASS:
        target["fix_previous_label"] = target.label
        target.label = source["issue_label"]
    elif issue == LOOSE_BOX:
        pred = _source_prediction(sample, source["issue_source_field"], source["issue_source_id"])
        if pred is None:
            raise ValueError(f"the prediction behind issue {source.id} is gone")
        target["fix_previous_box"] = list(target.bounding_box)
        target.bounding_box = list(pred.bounding_box)
    for name, value in provenance.items():
        target[name] = value
    return fixed_dets


def _undo(fixed_dets: list, position, source, originals, issue: str) -> list:
    """``fixed_dets`` with an accepted change of ``source`` undone."""
    if issue == MISSING:
        return [d for d in fixed_dets if d.id != source.id]
    restored = _strip(source)
    if position is not None:
        return fixed_dets[:position] + [restored] + fixed_dets[position + 1 :]
    # A removed (spurious) object goes back before the next original that is still there.
    order = [d.id for d in originals]
    after = set(order[order.index(source.id) + 1 :])
    index = next((i for i, d in enumerate(fixed_dets) if d.id in after), len(fixed_dets))
    return fixed_dets[:index] + [restored] + fixed_dets[index:]


def accept_issues(samples, gt_field: str, label_ids: Sequence[str]) -> dict:
    """Applies the issues of ``label_ids`` (ground-truth objects or missing candidates) to
    ``<gt_field>_fixed``; returns ``{"accepted", "rejected", "changed"}`` counts."""
    return review_issues(samples, gt_field, label_ids, ACCEPTED)


def reject_issues(samples, gt_field: str, label_ids: Sequence[str]) -> dict:
    """Rejects the issues of ``label_ids``, undoing any accepted change in ``_fixed``."""
    return review_issues(samples, gt_field, label_ids, REJECTED)


def flagged_label_ids(samples, gt_field: str, issue_type: str) -> list[str]:
    """Ids of the objects tagged ``issue:<issue_type>`` in ``samples``."""
    view = issues_view(samples, gt_field, issue_type)
    field_name = gt_field + MISSING_SUFFIX if issue_type == MISSING else gt_field
    return view.values(f"{field_name}.id")


# ------------------------------------------------------------------- measured quality


def manifest_truth(samples, gt_field: str, manifest: dict) -> dict:
    """The planted errors of a demo manifest as label ids and boxes of ``samples``.

    Returns ``{"missing": {sample id: [[x, y, w, h] pixels]}, "<type>": {label ids}}``.
    Samples are matched by file stem; an error's ``line`` is its object's position in the
    ground-truth field (the importers keep file order).
    """
    from pathlib import Path

    stems = {}
    for sid, path, per in zip(*samples.values(["id", "filepath", f"{gt_field}.detections.id"])):
        stems[Path(path).stem] = (sid, per or [])
    truth: dict = {t: set() for t in GT_TYPES}
    truth[MISSING] = {}
    for error in manifest["errors"]:
        if error["image"] not in stems:
            continue
        sid, label_ids = stems[error["image"]]
        if error["type"] == MISSING:
            x1, y1, x2, y2 = error["box"]
            truth[MISSING].setdefault(sid, []).append([x1, y1, x2 - x1, y2 - y1])
        else:
            truth[error["type"]].add(label_ids[error["line"] - 1])
    return truth


@dataclass
class Candidate:
    """One ranked issue of any finder: a label id, or ``(sample id, pixel box)`` (missing)."""

    key: str | tuple
    score: float
    flagged: bool


def our_candidates(samples, gt_field: str) -> dict[str, list[Candidate]]:
    """The issues :func:`find_label_issues` wrote on ``samples``, per type."""
    out: dict[str, list[Candidate]] = {t: [] for t in ISSUE_TYPES}
    values = samples.values(
        [f"{gt_field}.detections.{n}" for n in ("id", "tags", *SCORE_FIELDS.values())]
    )
    for per_sample in zip(*values):
        for lid, tags, *scores in zip(*(v or [] for v in per_sample)):
            for t, score in zip(GT_TYPES, scores):
                if score:
                    out[t].append(Candidate(lid, score, ISSUE_TAGS[t] in (tags or [])))
    missing = gt_field + MISSING_SUFFIX
    sids, widths, heights, boxes, scores, tags = samples.values(
        ["id", "metadata.width", "metadata.height", f"{missing}.detections.bounding_box",
         f"{missing}.detections.issue_score", f"{missing}.detections.tags"]
    )  # fmt: skip
    for sid, w, h, per_box, per_score, per_tags in zip(sids, widths, heights, boxes, scores,
                                                        tags):  # fmt: skip
        per_box = pixel_boxes(per_box or [], [(w, h)] * len(per_box or []))
        for box, score, t in zip(per_box.tolist(), per_score or [], per_tags or []):
            out[MISSING].append(Candidate((sid, tuple(box)), score, ISSUE_TAGS[MISSING] in t))
    return out


def measure_quality(candidates: dict, truth: dict, missing_iou: float = 0.3) -> dict:
    """Precision and recall of ranked candidates against known errors, per type.

    A missing candidate is right when it overlaps a planted missing object of its sample at
    ``missing_iou``; recall counts each planted error once. ``flagged``: at the finder's own
    thresholds; ``top_k``: the ``k`` highest-scored candidates, ``k`` = planted errors.
    """
    from detection_debugger.evaluation.matching import pair_iou

    out = {}
    for t in ISSUE_TYPES:
        ranked = sorted(candidates.get(t, []), key=lambda c: -c.score)
        if t == MISSING:
            planted = sum(len(v) for v in truth[MISSING].values())

            def hit(c, t=t):
                boxes = truth[t].get(c.key[0], [])
                if not boxes:
                    return None
                ious = pair_iou(np.repeat([c.key[1]], len(boxes), 0), np.array(boxes),
                                np.zeros(len(boxes), bool))  # fmt: skip
                best = int(np.argmax(ious))
                return (c.key[0], best) if ious[best] >= missing_iou else None
        else:
            planted = len(truth[t])

            def hit(c, t=t):
                return c.key if c.key in truth[t] else None

        def pr(chosen, hit=hit, planted=planted):
            hits = [hit(c) for c in chosen]
            found = {h for h in hits if h is not None}
            precision = sum(h is not None for h in hits) / len(chosen) if chosen else None
            return precision, (len(found) / planted if planted else None), len(chosen)

        flagged = pr([c for c in ranked if c.flagged])
        top = pr(ranked[:planted])
        out[t] = {
            "planted": planted, "candidates": len(ranked),
            "flagged": flagged[2], "precision": flagged[0], "recall": flagged[1],
            "top_k_precision": top[0], "top_k_recall": top[1],
        }  # fmt: skip
    return out


def format_quality(rows: dict[str, dict]) -> list[str]:
    """A text table of :func:`measure_quality` results: ``{finder name: result}``."""

    def f(v):
        return "   -" if v is None else f"{v:.2f}"

    lines = [f"{'finder':<34}{'type':<13}{'planted':>8}{'flagged':>8}{'P':>6}{'R':>6}"
             f"{'P@k':>6}{'R@k':>6}"]  # fmt: skip
    for name, result in rows.items():
        for t, r in result.items():
            lines.append(
                f"{name:<34}{t:<13}{r['planted']:>8}{r['flagged']:>8}{f(r['precision']):>6}"
                f"{f(r['recall']):>6}{f(r['top_k_precision']):>6}{f(r['top_k_recall']):>6}"
            )
    return lines
