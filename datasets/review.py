"""Review of label issues: the queue, and accept or reject into ``<gt_field>_fixed``, in bulk.

:func:`review_queue` lists the issues of a collection by descending score with the evidence a
reviewer needs (the annotated box and class, the prediction's box and class, the scores of
every type). :func:`accept_issues` applies issues to ``<gt_field>_fixed`` (created as a copy of
the ground truth on first use): missing objects are added from the prediction, wrong classes
changed, spurious objects removed, loose boxes replaced by the prediction's box; one object may
have several issues accepted (a wrong class *and* a loose box). Every changed object records
:data:`FIX_FIELDS` (``fix_type``, ``fix_source_field``, ``fix_source_id``, ``fix_time`` and
``fix_previous_label`` / ``fix_previous_box``). :func:`reject_issues` undoes an accepted change
and records the rejection. Neither touches the original field. The exporters export
``<gt_field>_fixed`` when it exists (``exporting.FIXED_SUFFIX``).

An item to review is a label id (every flagged issue of that object, or its top issue when
none is flagged) or a ``(label id, issue type)`` pair. Decisions live on the objects
(``issue_<type>_review`` on ground-truth objects, ``issue_review`` on missing candidates and
on the top issue), so that tens of thousands of them fit and a re-run of the finder keeps
them; the corrected field is rebuilt for the touched samples only and written in one bulk
update: tens of thousands of objects take seconds.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timezone

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
    issue_field,
    missing_field,
)
from detection_debugger.datasets.object_writes import modified_now, stamped
from detection_debugger.datasets.state import INFO_KEY, writes_dataset
from detection_debugger.datasets.views import issues_view
from detection_debugger.evaluation.label_issues import (
    ACCEPTED,
    ISSUE_TYPES,
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
    "flagged_issues",
    "flagged_label_ids",
    "issues_of",
    "read_review_log",
    "reject_issues",
    "review_decisions",
    "review_issues",
    "review_queue",
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
_REVIEW = {t: TYPE_FIELDS[t]["review"][0] for t in GT_TYPES}  # issue_<type>_review


# -------------------------------------------------------------------------- the log


def timestamp() -> str:
    """Now, UTC, to the second (the time of a decision or of a finder run)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_review_log(dataset, gt_field: str) -> dict:
    """A copy of the review log of ``gt_field``: the finder's last ``run``, and ``reviews``
    (one entry per review call: time, status and counts)."""
    info = dataset.info.get(INFO_KEY, {})
    log = copy.deepcopy(dict(info.get(REVIEW_LOG_KEY, {}).get(gt_field, {})))
    log.pop("decisions", None)  # kept on the objects since they are reviewed in bulk
    log.setdefault("reviews", [])
    return log


def write_review_log(dataset, gt_field: str, log: dict) -> None:
    """Writes the log back (whole ``info`` replaced: nested edits are not tracked)."""
    info = copy.deepcopy(dict(dataset.info))
    info.setdefault(INFO_KEY, {}).setdefault(REVIEW_LOG_KEY, {})[gt_field] = log
    dataset.info = info
    dataset.save()


def review_decisions(samples, gt_field: str = "ground_truth") -> dict:
    """``{label id: {"field", "type", "status", "issues": {type: status}}}`` of every reviewed
    object (``type``/``status``: its top issue's decision when that one is decided)."""
    out = {}
    names = ["id", "issue_type", *(_REVIEW[t] for t in GT_TYPES)]
    if samples.has_field(f"{gt_field}.detections.{_REVIEW[WRONG_CLASS]}"):
        values = samples.values([f"{gt_field}.detections.{n}" for n in names])
        flat = [[v for per in column for v in (per or [])] for column in values]
        for lid, top, *statuses in zip(*flat):
            issues = {t: s for t, s in zip(GT_TYPES, statuses) if s}
            if issues:
                kind = top if top in issues else next(iter(issues))
                out[lid] = {"field": gt_field, "type": kind, "status": issues[kind]}
                out[lid]["issues"] = issues
    missing = missing_field(gt_field)
    if samples.has_field(f"{missing}.detections.issue_review"):
        paths = [f"{missing}.detections.{n}" for n in ("id", "issue_review")]
        ids, statuses = (
            [v for per in column for v in (per or [])] for column in samples.values(paths)
        )
        for lid, status in zip(ids, statuses):
            if status:
                entry = {"field": missing, "type": MISSING, "status": status}
                out[lid] = {**entry, "issues": {MISSING: status}}
    return out


# ------------------------------------------------------------------------ the queue


def review_queue(  # long: one pass per field, each item built from the values read in bulk
    samples,
    gt_field: str = "ground_truth",
    issue_types: Iterable[str] | None = None,
    flagged_only: bool = True,
) -> list[dict]:
    """The issues of ``samples`` by descending score, each with its evidence.

    Args:
        samples: a dataset or view (its visible objects).
        gt_field: the ground-truth field the finder ran on.
        issue_types: the types to list (default all).
        flagged_only: only flagged issues and reviewed ones (a rejected issue loses its flag
            but stays in the queue with its decision); False lists every candidate.

    Returns:
        One dict per issue: ``sample_id``, ``label_id``, ``field`` (where the object is),
        ``type``, ``score``, ``flagged``, ``review`` (``accepted``/``rejected``/None),
        ``label`` (annotated class; missing: the predicted one), ``proposed_label``,
        ``gt_box`` (relative ``[x, y, w, h]``; None for missing), ``prediction_box`` (the
        prediction behind the issue, None when no prediction is near: spurious),
        ``source_field``/``source_id`` (that prediction), ``scores`` (``{type: score}`` of
        the object) and ``confidence``/``iou`` (of the top issue and of missing candidates,
        else None).
    """
    types = [t for t in (issue_types or ISSUE_TYPES) if t in ISSUE_TYPES]
    items = []
    gt_types = [t for t in types if t in GT_TYPES]
    if gt_types and samples.has_field(f"{gt_field}.detections.{_REVIEW[WRONG_CLASS]}"):
        items += _gt_queue(samples, gt_field, gt_types, flagged_only)
    missing = missing_field(gt_field)
    if MISSING in types and samples.has_field(missing):
        names = ("id", "label", "bounding_box", "issue_score", "tags", "issue_review")
        names += ("issue_source_field", "issue_source_id", "issue_confidence", "issue_iou")
        paths = ["id", *(f"{missing}.detections.{n}" for n in names)]
        for sid, *per in zip(*samples.values(paths)):
            for lid, label, box, score, tags, status, sf, si, conf, iou in zip(
                *(v or [] for v in per)
            ):
                flagged = ISSUE_TAGS[MISSING] in (tags or [])
                if flagged_only and not (flagged or status):
                    continue
                items.append(
                    {
                        "sample_id": sid,
                        "label_id": lid,
                        "field": missing,
                        "type": MISSING,
                        "score": score,
                        "flagged": flagged,
                        "review": status,
                        "label": label,
                        "proposed_label": label,
                        "gt_box": None,
                        "prediction_box": box,
                        "source_field": sf,
                        "source_id": si,
                        "scores": {MISSING: score},
                        "confidence": conf,
                        "iou": iou,
                    }
                )
    items.sort(key=lambda item: -(item["score"] or 0.0))
    return items


def _gt_queue(samples, gt_field: str, types: list[str], flagged_only: bool) -> list[dict]:
    """The queue items of the ground-truth objects (see :func:`review_queue`)."""
    base = ("id", "label", "bounding_box", "tags", "issue_type", "issue_confidence", "issue_iou")
    per_type = [
        (SCORE_FIELDS[t], *(TYPE_FIELDS[t][k][0] for k in TYPE_FIELDS[t])) for t in GT_TYPES
    ]
    names = [*base, *(n for group in per_type for n in group)]
    values = samples.values(["id", *(f"{gt_field}.detections.{n}" for n in names)])
    items = []
    for sid, *per in zip(*values):
        for obj in zip(*(v or [] for v in per)):
            lid, label, box, tags, top, conf, iou = obj[: len(base)]
            groups = [obj[len(base) + 6 * i : len(base) + 6 * (i + 1)] for i in range(3)]
            scores = {t: g[0] or 0.0 for t, g in zip(GT_TYPES, groups)}
            for t, (score, proposed, sf, si, pbox, status) in zip(GT_TYPES, groups):
                flagged = ISSUE_TAGS[t] in (tags or [])
                if t not in types or not score or (flagged_only and not (flagged or status)):
                    continue
                items.append(
                    {
                        "sample_id": sid,
                        "label_id": lid,
                        "field": gt_field,
                        "type": t,
                        "score": score,
                        "flagged": flagged,
                        "review": status,
                        "label": label,
                        "proposed_label": proposed,
                        "gt_box": box,
                        "prediction_box": pbox,
                        "source_field": sf,
                        "source_id": si,
                        "scores": scores,
                        "confidence": conf if t == top else None,
                        "iou": iou if t == top else None,
                    }
                )
    return items


def flagged_issues(samples, gt_field: str, issue_types: Iterable[str] | None = None) -> list:
    """``[(label id, issue type)]`` of the flagged issues of ``samples`` (not rejected), by
    descending score: what "accept every flagged issue" accepts."""
    check_detections_fields(samples, (gt_field,))
    if not samples.has_field(missing_field(gt_field)):
        raise ValueError(f"no label issues of {gt_field!r} yet: run find_label_issues first")
    queue = review_queue(samples, gt_field, issue_types, flagged_only=True)
    return [(item["label_id"], item["type"]) for item in queue if item["flagged"]]


def flagged_label_ids(samples, gt_field: str, issue_type: str) -> list[str]:
    """Ids of the objects tagged ``issue:<issue_type>`` in ``samples``."""
    view = issues_view(samples, gt_field, issue_type)
    return view.values(f"{issue_field(gt_field, issue_type)}.id")


def issues_of(samples, gt_field: str, label_ids, issue_types: Iterable[str]) -> list:
    """``[(label id, issue type)]``: the issues of the objects ``label_ids`` (ground-truth
    objects or missing candidates) among ``issue_types``: of each object, those flagged or
    already decided (accepted or rejected), else its top issue when of those types. What
    "accept the selected objects' issues of these types" decides."""
    types = set(issue_types)
    unknown = types - set(ISSUE_TYPES)
    if unknown:
        raise ValueError(f"unknown issue types {sorted(unknown)}; choose from {ISSUE_TYPES}")
    dataset = dataset_of(samples)
    check_detections_fields(dataset, (gt_field,))
    missing = missing_field(gt_field)
    fields_ = [gt_field] + ([missing] if dataset.has_field(missing) else [])
    view = dataset.select_labels(ids=list(label_ids), fields=fields_)
    out = []
    for record in _records(view, gt_field, _GT_NAMES):
        tags = record["tags"] or []
        chosen = [
            t
            for t in GT_TYPES
            if t in types
            and record[SCORE_FIELDS[t]]
            and (ISSUE_TAGS[t] in tags or record[_REVIEW[t]])
        ]
        top = record["issue_type"]
        if not chosen and top in types and top in SCORE_FIELDS and record[SCORE_FIELDS[top]]:
            chosen = [top]
        out += [(record["id"], t) for t in chosen]
    if MISSING in types and missing in fields_:
        out += [(r["id"], MISSING) for r in _records(view, missing, ("id",))]
    return out


# ------------------------------------------------------------------- the fixed field

_GT_NAMES = (
    "id",
    "label",
    "bounding_box",
    "tags",
    "issue_type",
    *(n for t in GT_TYPES for n in (SCORE_FIELDS[t], *(v[0] for v in TYPE_FIELDS[t].values()))),
)
_MISSING_NAMES = (
    "id",
    "label",
    "bounding_box",
    "tags",
    "issue_review",
    "issue_source_field",
    "issue_source_id",
)
_FIX_NAMES = tuple(FIX_FIELDS)


def _finder_attributes() -> list[str]:
    per_type = [name for fields_ in TYPE_FIELDS.values() for name, _ in fields_.values()]
    return [*SCORE_FIELDS.values(), *EVIDENCE_FIELDS, *per_type]


def _ensure_fixed(dataset, gt_field: str) -> str:
    """Creates ``<gt_field>_fixed`` as a clean copy of the ground truth when missing: copied
    by the database, the finder's attributes and ``issue:`` tags removed there."""
    fixed = gt_field + FIXED_SUFFIX
    if dataset.has_field(fixed):
        return fixed
    dataset.clone_sample_field(gt_field, fixed)
    paths = [f"{fixed}.detections.{name}" for name in _finder_attributes()]
    dataset.delete_sample_fields([p for p in paths if dataset.has_field(p)])
    tags = [
        t for t in dataset.distinct(f"{fixed}.detections.tags") if t.startswith(ISSUE_TAG_PREFIX)
    ]
    if tags:
        dataset.untag_labels(tags, label_fields=[fixed])
    return fixed


def _records(view, field: str, names: tuple) -> list[dict]:
    """The objects of ``field`` in ``view`` as dicts of ``names`` (plus ``sample_id``), read
    as plain values (no label objects are built)."""
    present = [n for n in names if n == "id" or view.has_field(f"{field}.detections.{n}")]
    values = view.values(["id", *(f"{field}.detections.{n}" for n in present)])
    out = []
    for sid, *per in zip(*values):
        for obj in zip(*(v or [] for v in per)):
            record = dict.fromkeys(names)
            record.update(zip(present, obj))
            record["sample_id"] = sid
            out.append(record)
    return out


def _fix_values(record: dict, statuses: dict, now: str) -> dict | None:
    """``{attribute: value}`` of the corrected ground-truth object (None: removed), given
    the decisions on its issues: accepted wrong class and loose box applied, provenance."""
    if statuses.get(SPURIOUS) == ACCEPTED:
        return None
    out = {"label": record["label"], "bounding_box": record["bounding_box"]}
    out.update(dict.fromkeys(_FIX_NAMES))
    applied = [t for t in (WRONG_CLASS, LOOSE_BOX) if statuses.get(t) == ACCEPTED]
    if WRONG_CLASS in applied:
        out["fix_previous_label"] = record["label"]
        out["label"] = record[TYPE_FIELDS[WRONG_CLASS]["label"][0]]
    if LOOSE_BOX in applied:
        box = record[TYPE_FIELDS[LOOSE_BOX]["box"][0]]
        if box is None:
            raise ValueError(f"the loose box issue of {record['id']} has no prediction box")
        out["fix_previous_box"] = list(record["bounding_box"])
        out["bounding_box"] = list(box)
    if applied:
        first = TYPE_FIELDS[applied[0]]
        out["fix_type"] = "+".join(applied)
        out["fix_source_field"] = record[first["source_field"][0]]
        out["fix_source_id"] = record[first["source_id"][0]]
        out["fix_time"] = now
    return out


def _added_document(record: dict, now: str) -> dict:
    """The stored form of the object a missing candidate adds to the corrected field."""
    from bson import ObjectId

    return {
        "_id": ObjectId(record["id"]),
        "_cls": "Detection",
        "attributes": {},
        "tags": [],
        "label": record["label"],
        "bounding_box": list(record["bounding_box"]),
        "fix_type": MISSING,
        "fix_source_field": record["issue_source_field"],
        "fix_source_id": record["issue_source_id"],
        "fix_time": now,
    }


# ------------------------------------------------------------------------ the review


def _items(items) -> dict[str, set]:
    """``{label id: {types}}``; an empty set means "its flagged issues"."""
    wanted: dict[str, set] = {}
    for item in items:
        if isinstance(item, str):
            wanted.setdefault(item, set())
        else:
            label_id, issue_type = item
            if issue_type not in ISSUE_TYPES:
                raise ValueError(f"unknown issue type {issue_type!r}; choose from {ISSUE_TYPES}")
            wanted.setdefault(label_id, set()).add(issue_type)
    return wanted


@writes_dataset("review_label_issues", ("gt_field",))
def review_issues(samples, gt_field: str, items, status: str) -> dict:
    """Records ``status`` (``accepted``/``rejected``) for ``items`` (label ids or ``(label
    id, type)`` pairs, see the module doc) and applies or undoes their fixes in
    ``<gt_field>_fixed``. Every item is checked before anything is written.

    Returns:
        ``{"accepted": n, "rejected": n, "changed": n}``: the issues now accepted and
        rejected among those reviewed, and how many of them changed the corrected field.
    """
    from bson import ObjectId

    if status not in (ACCEPTED, REJECTED):
        raise ValueError(f"status must be {ACCEPTED!r} or {REJECTED!r}, got {status!r}")
    dataset = dataset_of(samples)
    check_detections_fields(dataset, (gt_field,))
    wanted = _items(items)
    if not wanted:
        return {ACCEPTED: 0, REJECTED: 0, "changed": 0}
    invalid = [lid for lid in wanted if not ObjectId.is_valid(lid)]
    if invalid:
        raise ValueError(f"not label ids (24 hexadecimal digits): {invalid[:3]}")
    decided = _decide(dataset, gt_field, wanted, status)
    fixed = _ensure_fixed(dataset, gt_field)
    now = timestamp()
    changed = _apply(dataset, gt_field, fixed, decided, status, now)
    for name, kind in FIX_FIELDS.items():
        declare_attribute(dataset, f"{fixed}.detections.{name}", kind)
    _write_decisions(dataset, gt_field, decided)
    log = read_review_log(dataset, gt_field)
    log["reviews"].append({"time": now, "status": status, "issues": len(decided.pairs)})
    write_review_log(dataset, gt_field, log)
    return {
        ACCEPTED: len(decided.pairs) if status == ACCEPTED else 0,
        REJECTED: len(decided.pairs) if status == REJECTED else 0,
        "changed": changed,
    }


class _Decided:
    """The issues decided by one review call.

    Attributes:
        pairs: ``[(label id, type)]``.
        before: ``{(label id, type): status before the call}``.
        statuses: ``{label id: {type: status after the call}}`` of every touched object.
        records: ``{label id: (record, is_missing)}`` (see :func:`_records`).
    """

    def __init__(self):
        self.pairs: list[tuple[str, str]] = []
        self.before: dict = {}
        self.statuses: dict[str, dict] = {}
        self.records: dict = {}


def _statuses_of(record: dict, is_missing: bool) -> dict:
    if is_missing:
        return {MISSING: record["issue_review"]} if record["issue_review"] else {}
    return {t: record[_REVIEW[t]] for t in GT_TYPES if record[_REVIEW[t]]}


def _types_of(record: dict, is_missing: bool, asked: set) -> list[str]:
    """The issues of an object to decide: ``asked``, else its flagged ones, else its top
    one; each checked to be an issue of the object."""
    label_id = record["id"]
    if is_missing:
        if asked - {MISSING}:
            raise ValueError(f"label {label_id} is a missing candidate, not {sorted(asked)}")
        return [MISSING]
    tags = record["tags"] or []
    types = sorted(asked) or [t for t in GT_TYPES if ISSUE_TAGS[t] in tags]
    types = types or ([record["issue_type"]] if record["issue_type"] else [])
    if not types:
        raise ValueError(f"label {label_id} has no issue: run find_label_issues first")
    for t in types:
        if t not in SCORE_FIELDS or not record[SCORE_FIELDS[t]]:
            raise ValueError(f"label {label_id} has no {t} issue")
    return types


def _decide(dataset, gt_field: str, wanted: dict, status: str) -> _Decided:
    """Reads the objects of ``wanted`` and resolves and checks every item."""
    missing = missing_field(gt_field)
    fields_ = [gt_field] + ([missing] if dataset.has_field(missing) else [])
    view = dataset.select_labels(ids=list(wanted), fields=fields_)
    decided = _Decided()
    for record in _records(view, gt_field, _GT_NAMES):
        decided.records[record["id"]] = (record, False)
    if missing in fields_:
        for record in _records(view, missing, _MISSING_NAMES):
            decided.records[record["id"]] = (record, True)
    unknown = sorted(set(wanted) - set(decided.records))
    if unknown:
        raise ValueError(
            f"{len(unknown)} label ids are not objects of {gt_field!r} or {missing!r}: "
            f"{unknown[:3]}"
        )
    for label_id, asked in wanted.items():
        record, is_missing = decided.records[label_id]
        statuses = _statuses_of(record, is_missing)
        for t in _types_of(record, is_missing, asked):
            decided.pairs.append((label_id, t))
            decided.before[(label_id, t)] = statuses.get(t)
            statuses[t] = status
        decided.statuses[label_id] = statuses
    return decided


def _apply(
    dataset, gt_field: str, fixed: str, decided: _Decided, status: str, now: str
) -> int:  # long: sorts each decision into one of four kinds of bulk edit
    """Applies the decisions to the corrected field in bulk, with raw updates in order:
    objects removed, originals put back (a removal undone), candidates added, attributes set.
    Returns the number of decisions that changed it."""
    from bson import ObjectId
    from pymongo import UpdateOne

    changes = [p for p in decided.pairs if (decided.before[p] == ACCEPTED) != (status == ACCEPTED)]
    touched = sorted({label_id for label_id, _ in changes})
    if not touched:
        return 0
    sample_ids = sorted({decided.records[i][0]["sample_id"] for i in touched})
    stamp = modified_now()
    present = {}
    for sid, ids in zip(*dataset.select(sample_ids).values(["id", f"{fixed}.detections.id"])):
        present[sid] = None if ids is None else list(ids)
    pulls, restores, pushes, sets = {}, {}, {}, []
    for label_id in touched:
        record, is_missing = decided.records[label_id]
        sid = record["sample_id"]
        here = label_id in (present[sid] or ())
        if is_missing:
            keep = decided.statuses[label_id].get(MISSING) == ACCEPTED
            target = _added_document(record, now) if keep else None
        else:
            target = _fix_values(record, decided.statuses[label_id], now)
        if target is None:
            if here:
                pulls.setdefault(sid, []).append(label_id)
            continue
        if is_missing:
            if not here:
                pushes.setdefault(sid, []).append(target)
            continue
        if not here:
            restores.setdefault(sid, []).append(label_id)
        path = f"{fixed}.detections.$[l]"
        update = {"$set": {f"{path}.{k}": v for k, v in target.items() if v is not None}}
        unset = {f"{path}.{k}": "" for k, v in target.items() if v is None}
        if unset:
            update["$unset"] = unset
        oid = ObjectId(label_id)
        update = stamped(update, stamp)
        sets.append(UpdateOne({"_id": ObjectId(sid)}, update, array_filters=[{"l._id": oid}]))
    pull_ops = [_pull_op(fixed, sid, ids, stamp) for sid, ids in pulls.items()]
    for sid, ids in pulls.items():
        present[sid] = [i for i in present[sid] if i not in ids]
    push_ops = [
        _push_op(fixed, sid, docs, present[sid] is None, stamp) for sid, docs in pushes.items()
    ]
    restore_ops = _restore_ops(dataset, gt_field, fixed, restores, present, stamp)
    for batch in (pull_ops, restore_ops, push_ops, sets):
        if batch:
            bulk_write(dataset, batch, sample_ids)
    return len(changes)


def _pull_op(fixed: str, sample_id: str, label_ids: list, stamp: datetime):
    """Removes the objects ``label_ids`` from a sample's corrected objects, the sample's
    ``last_modified_at`` set to ``stamp``."""
    from bson import ObjectId
    from pymongo import UpdateOne

    ids = [ObjectId(i) for i in label_ids]
    update = {"$pull": {f"{fixed}.detections": {"_id": {"$in": ids}}}}
    return UpdateOne({"_id": ObjectId(sample_id)}, stamped(update, stamp))


def _push_op(fixed: str, sample_id: str, docs: list, empty: bool, stamp: datetime):
    """Adds ``docs`` (stored form) at the end of a sample's corrected objects, the sample's
    ``last_modified_at`` set to ``stamp``."""
    from bson import ObjectId
    from pymongo import UpdateOne

    if empty:
        update = {"$set": {fixed: {"_cls": "Detections", "detections": docs}}}
    else:
        update = {"$push": {f"{fixed}.detections": {"$each": docs}}}
    return UpdateOne({"_id": ObjectId(sample_id)}, stamped(update, stamp))


def _restore_ops(
    dataset, gt_field: str, fixed: str, restores: dict, present: dict, stamp: datetime
) -> list:
    """Updates that copy originals back into the corrected field (a spurious removal
    undone) at their original place, by the database (the stored documents stay exactly
    as the first copy made them): one pipeline per sample, one stage per object, and one
    setting ``last_modified_at`` to ``stamp``."""
    from bson import ObjectId
    from pymongo import UpdateOne

    if not restores:
        return []
    sids = sorted(restores)
    order = dict(zip(*dataset.select(sids).values(["id", f"{gt_field}.detections.id"])))
    drop = _finder_attributes()
    ops = []
    for sid in sids:
        position = {lid: k for k, lid in enumerate(order[sid] or [])}
        current = [i for i in present[sid] or [] if i in position]
        stages = []
        for lid in sorted(restores[sid], key=position.get):
            at = sum(position[i] < position[lid] for i in current)
            current.insert(at, lid)
            stages.append(
                {"$set": {f"{fixed}.detections": _insert_stage(gt_field, fixed, lid, at, drop)}}
            )
        ops.append(UpdateOne({"_id": ObjectId(sid)}, stamped(stages, stamp)))
    return ops


def _insert_stage(gt_field: str, fixed: str, label_id: str, at: int, drop: list) -> dict:
    """An aggregation expression: the corrected objects with the original ``label_id`` of
    ``gt_field`` inserted at ``at``, without the finder's attributes and ``issue:`` tags."""
    from bson import ObjectId

    original = {
        "$first": {
            "$filter": {
                "input": f"${gt_field}.detections",
                "cond": {"$eq": ["$$this._id", ObjectId(label_id)]},
            }
        }
    }
    kept = {
        "$filter": {
            "input": {"$objectToArray": "$$o"},
            "cond": {"$not": {"$in": ["$$this.k", drop]}},
        }
    }
    tags = {
        "$filter": {
            "input": {"$ifNull": ["$$o.tags", []]},
            "cond": {
                "$ne": [{"$substrCP": ["$$this", 0, len(ISSUE_TAG_PREFIX)]}, ISSUE_TAG_PREFIX]
            },
        }
    }
    stripped = {"$mergeObjects": [{"$arrayToObject": kept}, {"tags": tags}]}
    current = f"${fixed}.detections"
    return {
        "$let": {
            "vars": {"o": original},
            "in": {
                "$concatArrays": [
                    {"$slice": [current, at]} if at else [],
                    [stripped],
                    {"$slice": [current, at, 2**31 - 1]},
                ]
            },
        }
    }


def _write_decisions(dataset, gt_field: str, decided: _Decided) -> None:
    """Stores the decisions on the objects in one bulk write: ``issue_<type>_review`` and the
    top issue's ``issue_review`` on ground-truth objects, ``issue_review`` on missing
    candidates, and the tags (a rejected issue loses its flag, an accepted one keeps it)."""
    from bson import ObjectId
    from pymongo import UpdateOne

    missing = missing_field(gt_field)
    declared = set()
    ops, sample_ids = [], set()
    stamp = modified_now()
    for label_id, statuses in decided.statuses.items():
        record, is_missing = decided.records[label_id]
        tags = list(record["tags"] or [])
        for t, s in statuses.items():
            if (label_id, t) in decided.before:
                tags = [x for x in tags if x != ISSUE_TAGS[t]]
                tags += [ISSUE_TAGS[t]] if s == ACCEPTED else []
        field = missing if is_missing else gt_field
        values = {"tags": tags}
        if is_missing:
            values["issue_review"] = statuses.get(MISSING)
        else:
            values.update({_REVIEW[t]: s for t, s in statuses.items()})
            values["issue_review"] = statuses.get(record["issue_type"])
        declared.update(f"{field}.detections.{n}" for n in values if n != "tags")
        path = f"{field}.detections.$[l]"
        update = stamped({"$set": {f"{path}.{k}": v for k, v in values.items()}}, stamp)
        sid = record["sample_id"]
        filters = [{"l._id": ObjectId(label_id)}]
        ops.append(UpdateOne({"_id": ObjectId(sid)}, update, array_filters=filters))
        sample_ids.add(sid)
    for path in sorted(declared):
        declare_attribute(dataset, path, "str")
    if ops:
        bulk_write(dataset, ops, sorted(sample_ids))


def accept_issues(samples, gt_field: str, items) -> dict:
    """Applies the issues of ``items`` (label ids of ground-truth objects or missing
    candidates, or ``(label id, type)`` pairs) to ``<gt_field>_fixed``; returns
    ``{"accepted", "rejected", "changed"}`` counts."""
    return review_issues(samples, gt_field, items, ACCEPTED)


def reject_issues(samples, gt_field: str, items) -> dict:
    """Rejects the issues of ``items``, undoing any accepted change in ``_fixed``."""
    return review_issues(samples, gt_field, items, REJECTED)
