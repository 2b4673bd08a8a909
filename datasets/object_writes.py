"""Per-object attributes written in bulk: one database update per sample, not per object.

Used by the evaluation runs (outcome fields) and the label-issue finder (scores, evidence).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np

from detection_debugger.datasets.fiftyone_private import (
    aggregate_after_view,
    bulk_write,
    dataset_of,
    shows_every_label,
)

__all__ = [
    "WRITE_BATCH",
    "modified_now",
    "split_per_sample",
    "stamped",
    "write_object_attributes",
]

WRITE_BATCH = 1000  # samples per bulk write (and per progress report)


def modified_now() -> datetime:
    """Now as a sample's ``last_modified_at``: naive UTC, to the millisecond (what BSON
    stores; FiftyOne's writes use ``datetime.utcnow()``)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def stamped(update: dict | list, now: datetime) -> dict | list:
    """``update`` (an update document or an update pipeline) also setting the sample's
    ``last_modified_at`` to ``now``, as every FiftyOne write to a sample does: users sort and
    filter by it, and :mod:`~detection_debugger.datasets.view_membership` trusts it. Take
    ``now`` right before the write is sent (once per bulk write), not once per long job."""
    if isinstance(update, list):
        return [*update, {"$set": {"last_modified_at": now}}]
    return {**update, "$set": {**update.get("$set", {}), "last_modified_at": now}}


def split_per_sample(values: np.ndarray, image: np.ndarray, num_images: int) -> list[list]:
    """Splits a flat per-object array into per-sample lists (objects are in sample order)."""
    counts = np.bincount(image, minlength=num_images)
    return [chunk.tolist() for chunk in np.split(values, np.cumsum(counts)[:-1])]


def _stored_ids(samples, field: str) -> list:
    """The object ids of ``field`` per sample of ``samples``, raw, in view order."""
    stage = {"$project": {"_id": 0, "ids": {"$ifNull": [f"${field}.detections._id", []]}}}
    return [doc["ids"] for doc in aggregate_after_view(samples, [stage])]


def _shows_every_object(samples, field: str, sample_ids: list) -> bool:
    """Whether ``samples`` shows every object of ``field`` of its samples, in stored order
    (a dataset, or a view that only chooses samples, does; one that filters labels, not)."""
    dataset = dataset_of(samples)
    if samples is dataset or shows_every_label(samples):
        return True
    stored = _stored_ids(dataset.select(sample_ids, ordered=True), field)
    return _stored_ids(samples, field) == stored


def _merged_objects(field: str, per_sample: dict, i: int) -> dict:
    """An update-pipeline expression: the field's objects of sample ``i`` with each
    attribute of ``per_sample`` set, object ``j`` taking ``per_sample[name][i][j]``."""
    objects = f"${field}.detections"
    values = {
        name: {"$arrayElemAt": [{"$literal": columns[i]}, "$$j"]}
        for name, columns in per_sample.items()
    }
    return {
        "$map": {
            "input": {"$range": [0, {"$size": {"$ifNull": [objects, []]}}]},
            "as": "j",
            "in": {"$mergeObjects": [{"$arrayElemAt": [objects, "$$j"]}, values]},
        }
    }


def write_object_attributes(
    samples,
    field: str,
    sample_ids: list,
    per_sample: dict,
    on_batch: Callable[[int], None] | None = None,
    sample_values: dict | None = None,
) -> None:
    """Writes attributes of every object of ``field``: ``{name: [[value per object]...]}``,
    and, with ``sample_values`` (``{name: [value per sample]}``), sample fields.

    FiftyOne's ``set_values`` on ``field.detections.name`` issues one database update per
    object and attribute (1.8M updates for 184k boxes and 10 attributes, minutes). When the
    collection shows every object of the field in stored order (no label filter), this
    writes one update per sample instead: an update pipeline that merges each object with
    its values (the values travel as one array per attribute, not one path per object and
    attribute), through the dataset's own bulk writer (which also refreshes loaded samples).
    Otherwise it falls back to ``set_values``. ``on_batch(samples)`` is called after each
    bulk write of :data:`WRITE_BATCH` samples (once at the end on the fallback).
    """
    from bson import ObjectId
    from pymongo import UpdateOne

    sample_values = sample_values or {}
    if not _shows_every_object(samples, field, sample_ids):
        for name, values in per_sample.items():
            samples.set_values(f"{field}.detections.{name}", values)
        for name, values in sample_values.items():
            samples.set_values(name, values)
        if on_batch is not None:
            on_batch(len(sample_ids))
        return
    for start in range(0, len(sample_ids), WRITE_BATCH):
        batch = sample_ids[start : start + WRITE_BATCH]
        now = modified_now()
        ops = []
        for i, sample_id in enumerate(batch, start=start):
            update = {name: values[i] for name, values in sample_values.items()}
            if per_sample and any(len(values[i]) for values in per_sample.values()):
                update[f"{field}.detections"] = _merged_objects(field, per_sample, i)
            if update:
                update["last_modified_at"] = now
                ops.append(UpdateOne({"_id": ObjectId(sample_id)}, [{"$set": update}]))
        if ops:
            bulk_write(dataset_of(samples), ops, batch)
        if on_batch is not None:
            on_batch(len(batch))
