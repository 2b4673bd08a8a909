"""The engine's input: ground truth and predictions of a set of images, as flat arrays.

One row per object. Row order is meaningful: pycocotools breaks ties (equal scores, equal
IoUs) by the order in which objects appear in the input, and so does this engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DetectionSet", "InputError"]

GT, PRED = "ground_truth", "predictions"  # InputError sources


class InputError(ValueError):
    """Invalid engine input; the message says which object and what is wrong.

    Attributes:
        source: ``"ground_truth"`` or ``"predictions"`` when the bad object belongs to one of
            them (callers use it to name the file), else None.
    """

    def __init__(self, message: str, source: str | None = None):
        super().__init__(message)
        self.source = source


def _as_array(values, dtype, shape_tail=()) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.size == 0:
        array = array.reshape((0, *shape_tail))
    return array


@dataclass(frozen=True)
class DetectionSet:
    """Ground truth and predictions of ``I`` images over ``K`` classes.

    Images and classes are sorted by id (the order pycocotools evaluates them in).

    Attributes:
        image_ids: ``(I,)`` int64 image ids, sorted ascending, unique.
        class_ids: ``(K,)`` int64 class (category) ids, sorted ascending, unique.
        class_names: ``K`` class names, in ``class_ids`` order, unique.
        gt_image: ``(G,)`` int64 index into ``image_ids`` of each ground-truth object.
        gt_class: ``(G,)`` int64 index into ``class_ids``.
        gt_boxes: ``(G, 4)`` float64 ``[x, y, width, height]`` in absolute pixels.
        gt_areas: ``(G,)`` float64 area used for the small/medium/large ranges (COCO's
            ``area`` field: the segmentation area when there is one, else the box area).
        gt_crowd: ``(G,)`` bool crowd / ignore regions: never counted as objects to find;
            a prediction inside one is neither a true nor a false positive.
        gt_ids: ``(G,)`` int64 caller's id of each ground-truth object.
        pred_image: ``(P,)`` int64 index into ``image_ids``.
        pred_class: ``(P,)`` int64 index into ``class_ids``.
        pred_boxes: ``(P, 4)`` float64 ``[x, y, width, height]``.
        pred_scores: ``(P,)`` float64 confidences.
        pred_ids: ``(P,)`` int64 caller's id of each prediction.
    """

    image_ids: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]
    gt_image: np.ndarray
    gt_class: np.ndarray
    gt_boxes: np.ndarray
    gt_areas: np.ndarray
    gt_crowd: np.ndarray
    gt_ids: np.ndarray
    pred_image: np.ndarray
    pred_class: np.ndarray
    pred_boxes: np.ndarray
    pred_scores: np.ndarray
    pred_ids: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_ids)

    @property
    def pred_areas(self) -> np.ndarray:
        """``(P,)`` box areas of the predictions (what pycocotools uses for their area range)."""
        return self.pred_boxes[:, 2] * self.pred_boxes[:, 3]

    # ------------------------------------------------------------------ builders

    # long: eleven keyword arguments, one a line; the body is a few checks in a row
    @classmethod
    def from_arrays(
        cls,
        *,
        image_ids: Sequence[int] | np.ndarray,
        class_names: Sequence[str],
        gt_image_ids: np.ndarray,
        gt_labels: np.ndarray,
        gt_boxes: np.ndarray,
        pred_image_ids: np.ndarray,
        pred_labels: np.ndarray,
        pred_boxes: np.ndarray,
        pred_scores: np.ndarray,
        gt_crowd: np.ndarray | None = None,
        gt_areas: np.ndarray | None = None,
        gt_ids: np.ndarray | None = None,
        pred_ids: np.ndarray | None = None,
        class_ids: Sequence[int] | None = None,
    ) -> DetectionSet:
        """Builds a set from flat arrays.

        Args:
            image_ids: ``(I,)`` ids of every image in the set (images without objects too).
            class_names: ``K`` class names; labels index into this list.
            gt_image_ids: ``(G,)`` image id of each ground-truth object.
            gt_labels: ``(G,)`` int index into ``class_names``.
            gt_boxes: ``(G, 4)`` ``[x, y, width, height]`` absolute pixels.
            pred_image_ids, pred_labels, pred_boxes: the same for the ``P`` predictions.
            pred_scores: ``(P,)`` confidences.
            gt_crowd: ``(G,)`` bool crowd/ignore flags (default all False).
            gt_areas: ``(G,)`` areas for the area ranges (default: box areas).
            gt_ids, pred_ids: caller's ids (default: row numbers).
            class_ids: ``K`` ids of the classes (default ``0..K-1``); classes are sorted by id.
        """
        sorted_ids, names, label_to_index = _sorted_classes(class_names, class_ids)
        images = _unique_image_ids(image_ids)
        gt_b = _checked_boxes(gt_boxes, "ground truth")
        pred_b, scores = _checked_boxes(pred_boxes, "prediction"), _checked_scores(pred_scores)
        crowd, areas, g_ids, p_ids = _default_columns(
            gt_b, len(pred_b), gt_crowd, gt_areas, gt_ids, pred_ids
        )
        _check_lengths(
            len(gt_b),
            gt_image_ids=gt_image_ids,
            gt_labels=gt_labels,
            gt_crowd=crowd,
            gt_areas=areas,
            gt_ids=g_ids,
        )
        _check_lengths(
            len(pred_b),
            pred_image_ids=pred_image_ids,
            pred_labels=pred_labels,
            pred_scores=scores,
            pred_ids=p_ids,
        )
        return cls(
            image_ids=images,
            class_ids=sorted_ids,
            class_names=names,
            gt_image=_image_index(images, gt_image_ids, "ground truth"),
            gt_class=_class_index(label_to_index, gt_labels, "ground truth"),
            gt_boxes=gt_b,
            gt_areas=areas,
            gt_crowd=crowd,
            gt_ids=g_ids,
            pred_image=_image_index(images, pred_image_ids, "prediction"),
            pred_class=_class_index(label_to_index, pred_labels, "prediction"),
            pred_boxes=pred_b,
            pred_scores=scores,
            pred_ids=p_ids,
        )

    @classmethod
    def from_coco(
        cls,
        gt: Mapping,
        results: Sequence[Mapping],
        image_ids: Sequence[int] | None = None,
    ) -> DetectionSet:
        """Builds a set from a COCO ground-truth dict and a COCO results list.

        Follows pycocotools' ``COCO``/``loadRes``/``COCOeval`` conventions: ``iscrowd`` marks
        ignore regions (pycocotools overwrites an ``ignore`` key with ``iscrowd``), the
        annotation's ``area`` drives the area ranges, a detection's area is its box area.

        Args:
            gt: ``{"images": [...], "annotations": [...], "categories": [...]}``.
            results: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``,
                or the same as columns (``{"image_id": (N,), "category_id": (N,), "bbox":
                (N, 4), "score": (N,)}`` arrays, e.g. from
                :func:`detection_debugger.formats.coco_columns.read_coco_result_columns`),
                checked the same way.
            image_ids: evaluate only these images (default: every image of ``gt``).

        Raises:
            InputError: naming the annotation or detection (by position) that is invalid.
        """
        category_ids, names = _coco_categories(gt)
        all_images, selected = _coco_image_ids(gt, image_ids)
        anns, areas, crowd = _coco_annotations(gt, all_images, category_ids)
        if isinstance(results, Mapping):  # columns (formats.coco_columns): no copy
            missing = [k for k in ("image_id", "category_id", "bbox", "score") if k not in results]
            if missing:
                raise InputError(f"detection columns: missing '{missing[0]}'", PRED)
            dets = _checked_columns(
                dict(results), ("image_id", "category_id"), "detection", PRED, score=True
            )
        else:
            dets = _records(results, ("image_id", "category_id"), "detection", PRED, score=True)
        del results
        _check_known(dets, all_images, category_ids, "detection", PRED)

        g_keep = _kept(anns["image_id"], selected, image_ids is None)
        p_keep = _kept(dets["image_id"], selected, image_ids is None)
        num_dets = len(dets["score"])
        # pycocotools numbers detections 1.. in file order; ours are the same.
        return cls.from_arrays(
            image_ids=selected,
            class_names=names,
            class_ids=category_ids,
            gt_image_ids=anns["image_id"][g_keep],
            gt_labels=_category_labels(category_ids, anns["category_id"][g_keep]),
            gt_boxes=anns["bbox"][g_keep],
            gt_areas=areas[g_keep],
            gt_crowd=crowd[g_keep],
            gt_ids=anns["id"][g_keep],
            pred_image_ids=dets.pop("image_id")[p_keep],
            pred_labels=_category_labels(category_ids, dets.pop("category_id")[p_keep]),
            pred_boxes=dets.pop("bbox")[p_keep],
            pred_scores=dets.pop("score")[p_keep],
            pred_ids=np.arange(1, num_dets + 1)[p_keep],
        )

    def subset(self, image_mask: np.ndarray) -> DetectionSet:
        """The set restricted to the images where ``image_mask`` (``(I,)`` bool) is True."""
        image_mask = np.asarray(image_mask, bool)
        new_index = np.cumsum(image_mask) - 1
        gt_keep = image_mask[self.gt_image]
        pred_keep = image_mask[self.pred_image]
        return DetectionSet(
            image_ids=self.image_ids[image_mask],
            class_ids=self.class_ids,
            class_names=self.class_names,
            gt_image=new_index[self.gt_image[gt_keep]],
            gt_class=self.gt_class[gt_keep],
            gt_boxes=self.gt_boxes[gt_keep],
            gt_areas=self.gt_areas[gt_keep],
            gt_crowd=self.gt_crowd[gt_keep],
            gt_ids=self.gt_ids[gt_keep],
            pred_image=new_index[self.pred_image[pred_keep]],
            pred_class=self.pred_class[pred_keep],
            pred_boxes=self.pred_boxes[pred_keep],
            pred_scores=self.pred_scores[pred_keep],
            pred_ids=self.pred_ids[pred_keep],
        )


def _has_int(record, key: str) -> bool:
    try:
        int(record[key])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _valid_record(record, int_keys: tuple[str, ...], score: bool) -> str | None:
    """What is wrong with one COCO record, or None."""
    if not isinstance(record, Mapping):
        return f"expected an object, got {type(record).__name__}"
    for key in int_keys:
        if key not in record:
            return f"missing '{key}'"
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            return f"'{key}' must be an integer, got {value!r}"
    for key in ("bbox", "score") if score else ("bbox",):
        if key not in record:
            return f"missing '{key}'"
    bbox = record["bbox"]
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return f"'bbox' must be a list of 4 numbers, got {bbox!r}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
        return f"'bbox' must be a list of 4 numbers, got {bbox!r}"
    if score:
        value = record.get("score")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"'score' must be a number, got {value!r}"
    return None


def _records(
    records: Sequence[Mapping],
    int_keys: tuple[str, ...],
    what: str,
    source: str,
    score: bool = False,
) -> dict[str, np.ndarray]:
    """Columns of COCO annotation/detection records, validated; errors name the record."""
    records = list(records)
    try:
        columns = {key: np.array([r[key] for r in records]) for key in int_keys}
        columns["bbox"] = np.array([r["bbox"] for r in records], dtype=np.float64)
        if score:
            columns["score"] = np.array([r["score"] for r in records], dtype=np.float64)
        shapes_ok = columns["bbox"].shape == (len(records), 4) or not records
        types_ok = (
            all(
                columns[k].dtype.kind in "iu" or (columns[k].dtype.kind == "f" and records)
                for k in int_keys
            )
            or not records
        )
        if not (shapes_ok and types_ok):
            raise ValueError
    except (KeyError, TypeError, ValueError, IndexError):
        for row, record in enumerate(records):
            problem = _valid_record(record, int_keys, score)
            if problem:
                raise InputError(f"{what} {row}: {problem}", source) from None
        raise InputError(f"{what}s: malformed records", source) from None
    return _checked_columns(columns, int_keys, what, source, score)


def _checked_columns(
    columns: dict[str, np.ndarray],
    int_keys: tuple[str, ...],
    what: str,
    source: str,
    score: bool = False,
) -> dict[str, np.ndarray]:
    """The checks of :func:`_records` on columns (integer ids, finite boxes of non-negative
    size, finite scores); int64 columns and ``(N, 4)`` boxes pass through without a copy."""
    for key in int_keys:
        values = columns[key]
        if values.dtype.kind == "f":
            bad = ~np.isfinite(values) | (values != np.round(values))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{what} {row}: '{key}' must be an integer, got {values[row]}", source
                )
        columns[key] = values.astype(np.int64, copy=False).reshape(-1)
    boxes = columns["bbox"].reshape(-1, 4)
    columns["bbox"] = boxes
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what} {row}: bbox {boxes[row].tolist()} is not finite", source)
    bad = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{what} {row}: bbox {boxes[row].tolist()} has a negative width or height", source
        )
    if score:
        columns["score"] = columns["score"].reshape(-1)
        bad = ~np.isfinite(columns["score"])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what} {row}: score {columns['score'][row]} is not finite", source)
    return columns


def _check_known(
    columns: dict[str, np.ndarray],
    image_ids: np.ndarray,
    category_ids: list[int],
    what: str,
    source: str,
) -> None:
    for key, known, name in (
        ("image_id", image_ids, "image id"),
        ("category_id", np.asarray(category_ids, dtype=np.int64), "category id"),
    ):
        bad = ~np.isin(columns[key], known)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{what} {row}: unknown {name} {int(columns[key][row])}", source)


# ---------------------------------------------------------------- checks of from_arrays


def _sorted_classes(
    class_names: Sequence[str], class_ids: Sequence[int] | None
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Class ids and names sorted by id (both checked unique), and the sorted position of
    each label (an index into ``class_names``)."""
    names = tuple(str(n) for n in class_names)
    if len(set(names)) != len(names):
        raise InputError(f"class names are not unique: {list(names)}")
    ids = np.arange(len(names)) if class_ids is None else _as_array(class_ids, np.int64)
    if len(ids) != len(names):
        raise InputError("class_ids and class_names differ in length")
    if len(np.unique(ids)) != len(ids):
        raise InputError("class ids are not unique")
    class_order = np.argsort(ids, kind="stable")
    label_to_index = np.empty(len(ids), dtype=np.int64)
    label_to_index[class_order] = np.arange(len(ids))
    return ids[class_order], tuple(names[i] for i in class_order), label_to_index


def _unique_image_ids(image_ids) -> np.ndarray:
    """The image ids, sorted; they must be unique."""
    images = _as_array(image_ids, np.int64)
    sorted_images = np.unique(images)
    if len(sorted_images) != len(images):
        raise InputError("image ids are not unique")
    return sorted_images


def _image_index(sorted_images: np.ndarray, values, what: str) -> np.ndarray:
    """Index into ``sorted_images`` of each image id; unknown ids raise :class:`InputError`."""
    values = _as_array(values, np.int64)
    dense = _dense_index(sorted_images, values)
    if dense is not None:
        index, bad = dense
    else:
        index = np.searchsorted(sorted_images, values)
        bad = (index >= len(sorted_images)) | (
            sorted_images[np.minimum(index, len(sorted_images) - 1)] != values
            if len(sorted_images)
            else np.ones(len(values), bool)
        )
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what} {row}: unknown image id {int(values[row])}")
    return index


def _dense_index(
    sorted_ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(index, unknown)`` of ``values`` in ``sorted_ids`` through a lookup table, when the
    ids span a range at most a few times their number (the usual 0..N or 1..N); else None
    (a binary search is then used)."""
    if not len(sorted_ids) or not len(values):
        return None
    low, high = int(sorted_ids[0]), int(sorted_ids[-1])
    if high - low > 4 * len(sorted_ids) + 1024:
        return None
    table = np.full(high - low + 1, -1, dtype=np.int64)
    table[sorted_ids - low] = np.arange(len(sorted_ids))
    inside = (values >= low) & (values <= high)
    index = np.full(len(values), len(sorted_ids), dtype=np.int64)
    index[inside] = table[values[inside] - low]
    unknown = ~inside
    unknown[inside] = index[inside] < 0
    return index, unknown


def _class_index(label_to_index: np.ndarray, labels, what: str) -> np.ndarray:
    """Sorted class index of each label (an index into the caller's class names)."""
    labels = _as_array(labels, np.int64)
    bad = (labels < 0) | (labels >= len(label_to_index))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what} {row}: label {int(labels[row])} is not a class index")
    return label_to_index[labels]


def _checked_boxes(values, what: str) -> np.ndarray:
    """``(N, 4)`` float64 boxes with finite, non-negative sizes."""
    array = _as_array(values, np.float64, (4,))
    if array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"{what} boxes must have shape (N, 4), got {array.shape}")
    bad = ~np.isfinite(array).all(axis=1) | (array[:, 2] < 0) | (array[:, 3] < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{what} {row}: box {array[row].tolist()} has a negative or non-finite size"
        )
    return array


def _checked_scores(pred_scores) -> np.ndarray:
    """``(P,)`` float64 scores, all finite."""
    scores = _as_array(pred_scores, np.float64)
    if not np.isfinite(scores).all():
        row = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise InputError(f"prediction {row}: score {scores[row]} is not a finite number")
    return scores


def _default_columns(gt_boxes: np.ndarray, num_pred: int, gt_crowd, gt_areas, gt_ids, pred_ids):
    """Crowd flags, areas and ids of the objects, or their defaults: no crowd, box areas,
    row numbers."""
    num_gt = len(gt_boxes)
    crowd = np.zeros(num_gt, bool) if gt_crowd is None else _as_array(gt_crowd, bool)
    areas = gt_boxes[:, 2] * gt_boxes[:, 3] if gt_areas is None else _as_array(gt_areas, np.float64)
    g_ids = np.arange(num_gt) if gt_ids is None else _as_array(gt_ids, np.int64)
    p_ids = np.arange(num_pred) if pred_ids is None else _as_array(pred_ids, np.int64)
    return crowd, areas, g_ids, p_ids


def _check_lengths(expected: int, **columns) -> None:
    """Every column has ``expected`` rows; the error names the first that does not."""
    for what, array in columns.items():
        if len(array) != expected:
            raise InputError(f"{what} has {len(array)} rows, expected {expected}")


# ---------------------------------------------------------------- parts of from_coco


def _coco_categories(gt: Mapping) -> tuple[list[int], list[str]]:
    """Ids and names of the categories of a COCO ground-truth dict (a name defaults to the id)."""
    categories = list(gt.get("categories", []))
    try:
        category_ids = [int(c["id"]) for c in categories]
    except (KeyError, TypeError, ValueError):
        row = next(i for i, c in enumerate(categories) if not _has_int(c, "id"))
        raise InputError(f"category {row}: missing or invalid id", GT) from None
    return category_ids, [str(c.get("name", c["id"])) for c in categories]


def _coco_image_ids(gt: Mapping, image_ids: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Ids of every image of ``gt``, and of the images to evaluate (sorted, unique: all of
    them, or ``image_ids``, which must be images of ``gt``)."""
    images = list(gt.get("images", []))
    try:
        all_images = np.array([int(im["id"]) for im in images], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        row = next(i for i, im in enumerate(images) if not _has_int(im, "id"))
        raise InputError(f"image {row}: missing or invalid id", GT) from None
    if image_ids is None:
        return all_images, np.unique(all_images)
    selected = np.unique(np.asarray(list(image_ids), dtype=np.int64))
    unknown = selected[~np.isin(selected, all_images)]
    if len(unknown):
        raise InputError(f"image id {int(unknown[0])} is not in the ground truth")
    return all_images, selected


def _coco_annotations(
    gt: Mapping, all_images: np.ndarray, category_ids: list[int]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The annotations' columns (ids unique, images and categories known), their areas
    (COCO's ``area``, else the box area) and crowd flags."""
    anns = _records(gt.get("annotations", []), ("id", "image_id", "category_id"), "annotation", GT)
    ann_ids = anns["id"]
    unique_ids, first_seen = np.unique(ann_ids, return_index=True)
    if len(unique_ids) != len(ann_ids):
        dup = np.setdiff1d(np.arange(len(ann_ids)), first_seen)[0]
        raise InputError(f"annotation {dup}: duplicate annotation id {int(ann_ids[dup])}", GT)
    _check_known(anns, all_images, category_ids, "annotation", GT)
    raw = gt.get("annotations", [])
    areas = np.array([a["area"] if "area" in a else np.nan for a in raw], dtype=np.float64).reshape(
        -1
    )
    missing_area = np.isnan(areas)
    areas[missing_area] = anns["bbox"][missing_area, 2] * anns["bbox"][missing_area, 3]
    crowd = np.array([bool(a.get("iscrowd", 0)) for a in raw], dtype=bool).reshape(-1)
    return anns, areas, crowd


def _kept(image_of: np.ndarray, selected: np.ndarray, everything: bool):
    """Rows of the selected images: a slice of all rows (no copy when indexing) when every
    image is evaluated, else a mask."""
    if everything:  # every image id is known (checked), so every row is kept
        return slice(None)
    return np.isin(image_of, selected)


def _category_labels(category_ids: list[int], category: np.ndarray) -> np.ndarray:
    """Position in ``category_ids`` of each category id (all known)."""
    category_index = np.argsort(category_ids, kind="stable")
    sorted_category_ids = np.asarray(category_ids, dtype=np.int64)[category_index]
    return category_index[np.searchsorted(sorted_category_ids, category)]
