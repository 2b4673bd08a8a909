"""The engine's input: ground truth and predictions of a set of images, as flat arrays.

One row per object. Row order is meaningful: pycocotools breaks ties (equal scores, equal
IoUs) by the order in which objects appear in the input, and so does this engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["DetectionSet", "InputError"]


class InputError(ValueError):
    """Invalid engine input; the message says which object and what is wrong."""


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

        images = _as_array(image_ids, np.int64)
        sorted_images = np.unique(images)
        if len(sorted_images) != len(images):
            raise InputError("image ids are not unique")

        def image_index(values: np.ndarray, what: str) -> np.ndarray:
            values = _as_array(values, np.int64)
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

        def class_index(labels: np.ndarray, what: str) -> np.ndarray:
            labels = _as_array(labels, np.int64)
            bad = (labels < 0) | (labels >= len(names))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise InputError(f"{what} {row}: label {int(labels[row])} is not a class index")
            return label_to_index[labels]

        def boxes(values: np.ndarray, what: str) -> np.ndarray:
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

        gt_b = boxes(gt_boxes, "ground truth")
        pred_b = boxes(pred_boxes, "prediction")
        scores = _as_array(pred_scores, np.float64)
        if not np.isfinite(scores).all():
            row = int(np.flatnonzero(~np.isfinite(scores))[0])
            raise InputError(f"prediction {row}: score {scores[row]} is not a finite number")
        num_gt, num_pred = len(gt_b), len(pred_b)
        crowd = np.zeros(num_gt, bool) if gt_crowd is None else _as_array(gt_crowd, bool)
        areas = gt_b[:, 2] * gt_b[:, 3] if gt_areas is None else _as_array(gt_areas, np.float64)
        g_ids = np.arange(num_gt) if gt_ids is None else _as_array(gt_ids, np.int64)
        p_ids = np.arange(num_pred) if pred_ids is None else _as_array(pred_ids, np.int64)
        for what, array, n in (
            ("gt_image_ids", gt_image_ids, num_gt),
            ("gt_labels", gt_labels, num_gt),
            ("gt_crowd", crowd, num_gt),
            ("gt_areas", areas, num_gt),
            ("gt_ids", g_ids, num_gt),
            ("pred_image_ids", pred_image_ids, num_pred),
            ("pred_labels", pred_labels, num_pred),
            ("pred_scores", scores, num_pred),
            ("pred_ids", p_ids, num_pred),
        ):
            if len(array) != n:
                raise InputError(f"{what} has {len(array)} rows, expected {n}")

        return cls(
            image_ids=sorted_images,
            class_ids=ids[class_order],
            class_names=tuple(names[i] for i in class_order),
            gt_image=image_index(gt_image_ids, "ground truth"),
            gt_class=class_index(gt_labels, "ground truth"),
            gt_boxes=gt_b,
            gt_areas=areas,
            gt_crowd=crowd,
            gt_ids=g_ids,
            pred_image=image_index(pred_image_ids, "prediction"),
            pred_class=class_index(pred_labels, "prediction"),
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
            results: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``.
            image_ids: evaluate only these images (default: every image of ``gt``).

        Raises:
            InputError: naming the annotation or detection (by position) that is invalid.
        """
        categories = gt.get("categories", [])
        category_ids = [int(c["id"]) for c in categories]
        names = [str(c.get("name", c["id"])) for c in categories]
        category_index = {cid: i for i, cid in enumerate(category_ids)}
        all_images = [int(im["id"]) for im in gt.get("images", [])]
        known_images = set(all_images)
        if image_ids is None:
            selected = np.unique(np.asarray(all_images, dtype=np.int64))
        else:
            selected = np.unique(np.asarray(list(image_ids), dtype=np.int64))
            unknown = sorted(set(selected.tolist()) - known_images)
            if unknown:
                raise InputError(f"image id {unknown[0]} is not in the ground truth")
        keep = set(selected.tolist())

        anns = gt.get("annotations", [])
        seen_ids: set[int] = set()
        g_img, g_lab, g_box, g_area, g_crowd, g_id = [], [], [], [], [], []
        for row, ann in enumerate(anns):
            try:
                image_id = int(ann["image_id"])
                category_id = int(ann["category_id"])
                bbox = [float(v) for v in ann["bbox"]]
                ann_id = int(ann["id"])
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"annotation {row}: missing or invalid field ({error})") from None
            if len(bbox) != 4:
                raise InputError(f"annotation {row} (id {ann_id}): bbox must have 4 numbers")
            if ann_id in seen_ids:
                raise InputError(f"annotation {row}: duplicate annotation id {ann_id}")
            seen_ids.add(ann_id)
            if image_id not in known_images:
                raise InputError(f"annotation {row} (id {ann_id}): unknown image id {image_id}")
            if category_id not in category_index:
                raise InputError(
                    f"annotation {row} (id {ann_id}): unknown category id {category_id}"
                )
            if image_id not in keep:
                continue
            g_img.append(image_id)
            g_lab.append(category_index[category_id])
            g_box.append(bbox)
            g_area.append(float(ann["area"]) if "area" in ann else bbox[2] * bbox[3])
            g_crowd.append(bool(ann.get("iscrowd", 0)))
            g_id.append(ann_id)

        p_img, p_lab, p_box, p_score = [], [], [], []
        for row, det in enumerate(results):
            try:
                image_id = int(det["image_id"])
                category_id = int(det["category_id"])
                bbox = [float(v) for v in det["bbox"]]
                score = float(det["score"])
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"detection {row}: missing or invalid field ({error})") from None
            if len(bbox) != 4:
                raise InputError(f"detection {row}: bbox must have 4 numbers")
            if image_id not in known_images:
                raise InputError(f"detection {row}: unknown image id {image_id}")
            if category_id not in category_index:
                raise InputError(f"detection {row}: unknown category id {category_id}")
            if bbox[2] < 0 or bbox[3] < 0:
                raise InputError(f"detection {row}: bbox {bbox} has a negative width or height")
            if image_id not in keep:
                continue
            p_img.append(image_id)
            p_lab.append(category_index[category_id])
            p_box.append(bbox)
            p_score.append(score)

        # pycocotools numbers detections 1.. in file order; ours are the same.
        return cls.from_arrays(
            image_ids=selected,
            class_names=names,
            class_ids=category_ids,
            gt_image_ids=np.asarray(g_img, np.int64),
            gt_labels=np.asarray(g_lab, np.int64),
            gt_boxes=_as_array(g_box, np.float64, (4,)),
            gt_areas=np.asarray(g_area, np.float64),
            gt_crowd=np.asarray(g_crowd, bool),
            gt_ids=np.asarray(g_id, np.int64),
            pred_image_ids=np.asarray(p_img, np.int64),
            pred_labels=np.asarray(p_lab, np.int64),
            pred_boxes=_as_array(p_box, np.float64, (4,)),
            pred_scores=np.asarray(p_score, np.float64),
            pred_ids=np.arange(1, len(p_img) + 1, dtype=np.int64),
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
