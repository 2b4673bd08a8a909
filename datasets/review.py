"""Review of label issues: accept or reject them into ``<gt_field>_fixed``, with a decision log.

:func:`accept_issues` applies issues to ``<gt_field>_fixed`` (created as a copy of the ground
truth on first use): missing objects are added from the prediction, wrong classes changed,
spurious objects removed, loose boxes replaced by the prediction's box. Every changed object
records :data:`FIX_FIELDS` (``fix_type``, ``fix_source_field``, ``fix_source_id``, ``fix_time``
and ``fix_previous_label`` / ``fix_previous_box``). :func:`reject_issues` undoes an accepted
change and records the rejection. Neither touches the original field. The exporters export
``<gt_field>_fixed`` when it exists (``exporting.FIXED_SUFFIX``).

Every decision, removals included, is logged in the review log of ``gt_field``,
``dataset.info[state.INFO_KEY][REVIEW_LOG_KEY][gt_field]``: its ``decisions`` (``{label id:
{"type", "status", "time", "sample_id", "field", "label", "source_field", "source_id"}}``)
and the finder's last ``run``. Re-running the finder keeps the decisions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timezone

from detection_debugger.datasets.exporting import FIXED_SUFFIX
from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.issue_fields import (
    EVIDENCE_FIELDS,
    ISSUE_TAG_PREFIX,
    ISSUE_TAGS,
    SCORE_FIELDS,
    check_detections_fields,
    declare_attribute,
    issue_field,
    missing_field,
)
from detection_debugger.datasets.state import INFO_KEY, writes_dataset
from detection_debugger.datasets.views import issues_view
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    LOOSE_BOX,
    MISSING,
    REJECTED,
    SPURIOUS,
    WRONG_CLASS,
)

__all__ = [
    "FIX_FIELDS",
    "REVIEW_LOG_KEY",
    "accept_issues",
    "flagged_label_ids",
    "read_review_log",
    "reject_issues",
    "review_decisions",
    "review_issues",
    "timestamp",
    "write_review_log",
]

REVIEW_LOG_KEY = "label_issues"  # dataset.info[INFO_KEY][REVIEW_LOG_KEY][gt_field]
FIX_FIELDS = {
    "fix_type": "str",
    "fix_source_field": "str",
    "fix_source_id": "str",
    "fix_time": "str",
    "fix_previous_label": "str",
    "fix_previous_box": "list",
}


# -------------------------------------------------------------------------- the log


def timestamp() -> str:
    """Now, UTC, to the second (the time of a decision or of a finder run)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_review_log(dataset, gt_field: str) -> dict:
    """A copy of the review log of ``gt_field`` (``decisions`` always present)."""
    info = dataset.info.get(INFO_KEY, {})
    log = copy.deepcopy(dict(info.get(REVIEW_LOG_KEY, {}).get(gt_field, {})))
    log.setdefault("decisions", {})
    return log


def write_review_log(dataset, gt_field: str, log: dict) -> None:
    """Writes the log back (whole ``info`` replaced: nested edits are not tracked)."""
    info = copy.deepcopy(dict(dataset.info))
    info.setdefault(INFO_KEY, {}).setdefault(REVIEW_LOG_KEY, {})[gt_field] = log
    dataset.info = info
    dataset.save()


def review_decisions(dataset, gt_field: str = "ground_truth") -> dict:
    """``{label id: {"type", "status", "time", "source_field", "source_id", ...}}``."""
    return read_review_log(dataset, gt_field)["decisions"]


# ------------------------------------------------------------------- the fixed field


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


def _locate(dataset, gt_field: str, label_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{label id: (sample id, field)}`` for ids of ``gt_field`` or its missing field, each
    an object with an issue (checked before anything is written)."""
    from bson import ObjectId

    check_detections_fields(dataset, (gt_field,))
    invalid = [lid for lid in label_ids if not ObjectId.is_valid(lid)]
    if invalid:
        raise ValueError(f"not label ids (24 hexadecimal digits): {invalid[:3]}")
    missing = missing_field(gt_field)
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
        raise ValueError(
            f"{len(unknown)} label ids are not objects of {gt_field!r} or "
            f"{missing!r}: {unknown[:3]}"
        )
    if without_issue:
        raise ValueError(
            f"label {without_issue[0]} has no issue: run find_label_issues first"
            + (f" ({len(without_issue)} such labels)" if len(without_issue) > 1 else "")
        )
    return found


def _by_id(detections) -> dict:
    return {d.id: i for i, d in enumerate(detections)}


# ------------------------------------------------------------------------ the review


@writes_dataset("review_label_issues", ("gt_field",))
def review_issues(samples, gt_field: str, label_ids: Sequence[str], status: str) -> dict:
    """Records ``status`` (``accepted``/``rejected``) for the issues of ``label_ids`` and
    applies or undoes their fixes in ``<gt_field>_fixed``; see :func:`accept_issues`."""
    dataset = dataset_of(samples)
    label_ids = list(dict.fromkeys(label_ids))
    if not label_ids:
        return {ACCEPTED: 0, REJECTED: 0, "changed": 0}
    located = _locate(dataset, gt_field, label_ids)
    fixed = _ensure_fixed(dataset, gt_field)
    log = read_review_log(dataset, gt_field)
    by_sample: dict[str, list[str]] = {}
    for lid, (sid, _) in located.items():
        by_sample.setdefault(sid, []).append(lid)
    changed = 0
    now = timestamp()
    for sample in dataset.select(list(by_sample)).iter_samples(autosave=True):
        wanted = {lid: located[lid][1] for lid in by_sample[sample.id]}
        changed += _review_sample(sample, gt_field, fixed, wanted, status, log["decisions"], now)
    write_review_log(dataset, gt_field, log)
    for name, kind in FIX_FIELDS.items():
        declare_attribute(dataset, f"{fixed}.detections.{name}", kind)
    counts = {ACCEPTED: 0, REJECTED: 0}
    for lid in label_ids:
        counts[log["decisions"][lid]["status"]] += 1
    return {**counts, "changed": changed}


def _review_sample(sample, gt_field, fixed, wanted: dict, status, decisions, now) -> int:
    """Reviews the issues of one sample, ``wanted``: ``{label id: field}``; records each
    decision in ``decisions`` and returns the number of changes made to ``fixed``."""
    import fiftyone as fo

    missing = missing_field(gt_field)
    originals = sample[gt_field].detections if sample[gt_field] else []
    if sample[fixed] is None:
        sample[fixed] = fo.Detections(detections=[_strip(d) for d in originals])
    fixed_dets = list(sample[fixed].detections)
    candidates = sample[missing].detections if sample.has_field(missing) and sample[missing] else []
    changed = 0
    for lid, field_name in wanted.items():
        objects = originals if field_name == gt_field else candidates
        source = objects[_by_id(objects)[lid]]
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
            "type": issue,
            "status": status,
            "time": now,
            "sample_id": sample.id,
            "field": field_name,
            "label": source["issue_label"],
            "source_field": source["issue_source_field"],
            "source_id": source["issue_source_id"],
        }
    sample[fixed] = fo.Detections(detections=fixed_dets)
    return changed


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
        "fix_type": issue,
        "fix_source_field": source["issue_source_field"],
        "fix_source_id": source["issue_source_id"],
        "fix_time": now,
    }
    if issue == MISSING:
        if position is not None:
            return fixed_dets
        import fiftyone as fo

        added = fo.Detection(
            label=source.label, bounding_box=list(source.bounding_box), **provenance
        )
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
    return view.values(f"{issue_field(gt_field, issue_type)}.id")
