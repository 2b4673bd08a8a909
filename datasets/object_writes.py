"""Per-object attributes written in bulk: one database update per sample, not per object.

Used by the evaluation runs (outcome fields) and the label-issue finder (scores, evidence).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from detection_debugger.datasets.fiftyone_private import bulk_write, dataset_of

__all__ = ["WRITE_BATCH", "split_per_sample", "write_object_attributes"]

WRITE_BATCH = 1000  # samples per bulk write (and per progress report)


def split_per_sample(values: np.ndarray, image: np.ndarray, num_images: int) -> list[list]:
    """Splits a flat per-object array into per-sample lists (objects are in sample order)."""
    counts = np.bincount(image, minlength=num_images)
    return [chunk.tolist() for chunk in np.split(values, np.cumsum(counts)[:-1])]


def write_object_attributes(
    samples,
    field: str,
    sample_ids: list,
    per_sample: dict,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Writes attributes of every object of ``field``: ``{name: [[value per object]...]}``.

    FiftyOne's ``set_values`` on ``field.detections.name`` issues one database update per
    object and attribute (1.8M updates for 184k boxes and 10 attributes, minutes). When the
    collection shows every object of the field in stored order (no label filter), this
    writes one update per sample instead, addressing objects by their array position, through
    the dataset's own bulk writer (which also refreshes loaded samples). Otherwise it falls
    back to ``set_values``. ``on_batch(samples)`` is called after each bulk write of
    :data:`WRITE_BATCH` samples (once at the end on the fallback).
    """
    from datetime import datetime, timezone

    from bson import ObjectId
    from pymongo import UpdateOne

    dataset = dataset_of(samples)
    shown = samples.values(f"{field}.detections.id")
    stored = dataset.select(sample_ids, ordered=True).values(f"{field}.detections.id")
    if shown != stored:
        for name, values in per_sample.items():
            samples.set_values(f"{field}.detections.{name}", values)
        if on_batch is not None:
            on_batch(len(sample_ids))
        return
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for start in range(0, len(sample_ids), WRITE_BATCH):
        batch = sample_ids[start : start + WRITE_BATCH]
        ops = []
        for i, sample_id in enumerate(batch, start=start):
            update = {
                f"{field}.detections.{j}.{name}": value
                for name, values in per_sample.items()
                for j, value in enumerate(values[i])
            }
            if update:
                update["last_modified_at"] = now
                ops.append(UpdateOne({"_id": ObjectId(sample_id)}, {"$set": update}))
        if ops:
            bulk_write(dataset, ops, batch)
        if on_batch is not None:
            on_batch(len(batch))
