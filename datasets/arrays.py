"""FiftyOne detections in bulk, as the engine's :class:`DetectionSet`.

Reads every box of a view in one aggregation whose documents are decoded raw (no FiftyOne
object or per-value conversion: millions of boxes in seconds) and converts
FiftyOne's relative ``[x, y, w, h]`` boxes to the pixels of the label files with each image's
metadata (:func:`~detection_debugger.formats.pixel_boxes`: exactly the values the files held,
so the numbers equal pycocotools' on the source files).
"""

from __future__ import annotations

import numpy as np

from detection_debugger.datasets.fiftyone_private import aggregate_after_view
from detection_debugger.evaluation import DetectionSet
from detection_debugger.formats.relative_boxes import pixel_boxes, recover_decimals

__all__ = ["READ_BATCH", "detection_set_from_view"]

READ_BATCH = 10_000  # samples per query when the reading reports its progress


def detection_set_from_view(
    view, gt_field: str, pred_field: str, classes: list[str] | None = None, on_batch=None
) -> tuple[DetectionSet, dict]:
    """The ground truth and predictions of ``view`` as a :class:`DetectionSet`.

    Image ids are the positions of the samples in ``view`` (0..N-1); object ids are their
    positions in the flattened fields. The returned ``ids`` map them back:
    ``{"samples": [sample id...], "gt": [label id...], "pred": [label id...]}``.
    Crowd regions are the objects with a truthy ``iscrowd`` attribute; ``area`` attributes
    (from COCO) drive the area ranges, else the box area.

    Args:
        view: a FiftyOne dataset or view with image metadata (computed when missing).
        gt_field, pred_field: ``Detections`` fields.
        classes: class names, in order (default: sorted labels of both fields).
        on_batch: called with the number of samples read, every :data:`READ_BATCH`
            samples (one query either way).
    """
    if view.exists("metadata", False).count():
        view.compute_metadata()
    gt, pred, (sample_ids, widths, heights) = _read_raw(view, (gt_field, pred_field), on_batch)
    if classes is None:
        classes = sorted(set(gt["label"]) | set(pred["label"]))
    sizes = np.array([widths, heights], dtype=np.float64).T  # (N, 2)
    gt_boxes = pixel_boxes(gt["bounding_box"], sizes[gt["image"]])
    area = np.array([np.nan if a is None else a for a in gt["area"]], dtype=np.float64)
    missing = np.isnan(area)
    # Without a COCO ``area``, the box area as a converter writes it (``1024``, not
    # ``1024.0000000000002``: the range limits are inclusive).
    area[missing] = recover_decimals(gt_boxes[missing, 2] * gt_boxes[missing, 3])
    data = DetectionSet.from_arrays(
        image_ids=np.arange(len(sample_ids)),
        class_names=classes,
        gt_image_ids=gt["image"],
        gt_labels=_label_index(gt["label"], classes, gt_field),
        gt_boxes=gt_boxes,
        gt_crowd=np.array([bool(c) for c in gt["iscrowd"]], dtype=bool),
        gt_areas=area,
        pred_image_ids=pred["image"],
        pred_labels=_label_index(pred["label"], classes, pred_field),
        pred_boxes=pixel_boxes(pred["bounding_box"], sizes[pred["image"]]),
        pred_scores=np.array(
            [1.0 if c is None else c for c in pred["confidence"]], dtype=np.float64
        ),
    )
    return data, {"samples": list(sample_ids), "gt": gt["id"], "pred": pred["id"]}


_ATTRIBUTES = ("id", "label", "bounding_box", "iscrowd", "area", "confidence")


def _object_columns(field: str) -> dict:
    """``$project`` expressions: each attribute of the field's objects as one array per
    sample, aligned (a missing attribute is null, ids are strings)."""
    objects = {"$ifNull": [f"${field}.detections", []]}
    columns = {}
    for name in _ATTRIBUTES:
        value = {"$toString": "$$d._id"} if name == "id" else {"$ifNull": [f"$$d.{name}", None]}
        columns[f"{field}.{name}"] = {"$map": {"input": objects, "as": "d", "in": value}}
    return columns


def _read_raw(view, fields: tuple[str, str], on_batch) -> tuple[dict, dict, tuple]:
    """Both fields' objects and the samples' ids and sizes in one query, raw (the values
    arrive as BSON decodes them), ``on_batch`` told every :data:`READ_BATCH` samples."""
    project = {
        "_id": 0,
        "id": {"$toString": "$_id"},
        "width": "$metadata.width",
        "height": "$metadata.height",
    }
    for field in fields:
        project.update(_object_columns(field))
    sides = [{name: [] for name in _ATTRIBUTES} | {"count": []} for _ in fields]
    sample_ids, widths, heights = [], [], []
    for doc in aggregate_after_view(view, [{"$project": project}]):
        sample_ids.append(doc["id"])
        widths.append(doc.get("width"))
        heights.append(doc.get("height"))
        for field, side in zip(fields, sides):
            columns = doc[field]
            side["count"].append(len(columns["id"]))
            for name in _ATTRIBUTES:
                side[name].extend(columns[name])
        if on_batch is not None and len(sample_ids) % READ_BATCH == 0:
            on_batch(READ_BATCH)
    if on_batch is not None and len(sample_ids) % READ_BATCH:
        on_batch(len(sample_ids) % READ_BATCH)
    for side in sides:
        side["image"] = np.repeat(np.arange(len(sample_ids)), side.pop("count"))
    return sides[0], sides[1], (sample_ids, widths, heights)


def _label_index(labels: list, classes: list[str], field: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({v for v in labels if v not in index})
    if unknown:
        raise ValueError(f"{field} labels not in the classes: {unknown}")
    return np.array([index[v] for v in labels], dtype=np.int64)
