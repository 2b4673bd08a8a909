"""Building the engine's input, and the errors bad input gets."""

from __future__ import annotations

import numpy as np
import pytest

from detection_debugger.evaluation import DetectionSet, InputError


def _gt(annotations, images=(1, 2), categories=((1, "a"), (2, "b"))):
    return {
        "images": [{"id": i} for i in images],
        "categories": [{"id": c, "name": n} for c, n in categories],
        "annotations": annotations,
    }


ANN = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}
DET = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}


def test_from_coco_keeps_file_order_and_sorts_images_and_classes():
    gt = _gt(
        [
            {**ANN, "id": 7, "image_id": 2, "category_id": 2},
            {**ANN, "id": 3, "iscrowd": 1},
        ],
        images=(2, 1),
        categories=((2, "b"), (1, "a")),
    )
    data = DetectionSet.from_coco(gt, [DET, {**DET, "image_id": 2, "score": 0.9}])
    assert data.image_ids.tolist() == [1, 2]
    assert data.class_names == ("a", "b")
    assert data.gt_ids.tolist() == [7, 3]
    assert data.gt_image.tolist() == [1, 0]
    assert data.gt_class.tolist() == [1, 0]
    assert data.gt_crowd.tolist() == [False, True]
    assert data.pred_ids.tolist() == [1, 2]  # pycocotools numbers detections 1.. in order
    assert data.pred_scores.tolist() == [0.5, 0.9]


def test_area_defaults_to_box_area():
    ann = {k: v for k, v in ANN.items() if k != "area"}
    data = DetectionSet.from_coco(_gt([{**ann, "bbox": [0, 0, 4, 5]}]), [])
    assert data.gt_areas.tolist() == [20.0]


def test_image_subset_restricts_objects():
    gt = _gt([ANN, {**ANN, "id": 2, "image_id": 2}])
    data = DetectionSet.from_coco(gt, [DET, {**DET, "image_id": 2}], image_ids=[2])
    assert data.image_ids.tolist() == [2]
    assert data.gt_ids.tolist() == [2]
    assert data.pred_ids.tolist() == [2]


@pytest.mark.parametrize(
    "gt, results, message, source",
    [
        pytest.param(
            _gt([ANN]),
            [{**DET, "image_id": 9}],
            "detection 0: unknown image id 9",
            "predictions",
            id="unknown-image",
        ),
        pytest.param(
            _gt([ANN]),
            [DET, {**DET, "category_id": 5}],
            "detection 1: unknown category id 5",
            "predictions",
            id="unknown-category",
        ),
        pytest.param(
            _gt([ANN]),
            [{**DET, "bbox": [0, 0, -1, 3]}],
            "negative width or height",
            "predictions",
            id="negative-size",
        ),
        pytest.param(
            _gt([ANN]),
            [{**DET, "bbox": [0, 0, 3]}],
            "detection 0: 'bbox' must be",
            "predictions",
            id="short-bbox",
        ),
        pytest.param(
            _gt([ANN]),
            [{**DET, "score": "high"}],
            "detection 0: 'score' must be",
            "predictions",
            id="text-score",
        ),
        pytest.param(
            _gt([ANN]),
            [{k: v for k, v in DET.items() if k != "score"}],
            "detection 0: missing 'score'",
            "predictions",
            id="missing-score",
        ),
        pytest.param(
            _gt([ANN]),
            [{**DET, "score": float("nan")}],
            "score nan is not finite",
            "predictions",
            id="nan-score",
        ),
        pytest.param(
            _gt([ANN, ANN]),
            [],
            "annotation 1: duplicate annotation id 1",
            "ground_truth",
            id="duplicate-annotation-id",
        ),
        pytest.param(
            _gt([{**ANN, "image_id": 5}]),
            [],
            "annotation 0: unknown image id 5",
            "ground_truth",
            id="annotation-unknown-image",
        ),
        pytest.param(
            _gt([{**ANN, "image_id": 1.5}]),
            [],
            "annotation 0: 'image_id' must be an integer",
            "ground_truth",
            id="fractional-id",
        ),
    ],
)
def test_bad_coco_input_is_named(gt, results, message, source):
    with pytest.raises(InputError) as info:
        DetectionSet.from_coco(gt, results)
    assert message in str(info.value)
    assert info.value.source == source


def test_from_arrays_validates_shapes_and_labels():
    kwargs = dict(
        image_ids=[1],
        class_names=["a"],
        gt_image_ids=[1],
        gt_labels=[0],
        gt_boxes=[[0, 0, 1, 1]],
        pred_image_ids=[1],
        pred_labels=[0],
        pred_boxes=[[0, 0, 1, 1]],
        pred_scores=[0.5],
    )
    DetectionSet.from_arrays(**kwargs)
    with pytest.raises(InputError, match="label 3 is not a class index"):
        DetectionSet.from_arrays(**{**kwargs, "pred_labels": [3]})
    with pytest.raises(InputError, match="unknown image id 4"):
        DetectionSet.from_arrays(**{**kwargs, "gt_image_ids": [4]})
    with pytest.raises(InputError, match="pred_scores has 2 rows, expected 1"):
        DetectionSet.from_arrays(**{**kwargs, "pred_scores": [0.5, 0.4]})
    with pytest.raises(InputError, match="class names are not unique"):
        DetectionSet.from_arrays(**{**kwargs, "class_names": ["a", "a"]})
    with pytest.raises(InputError, match="shape"):
        DetectionSet.from_arrays(**{**kwargs, "gt_boxes": [[0, 0, 1]]})


def test_subset_keeps_rows_of_selected_images():
    data = DetectionSet.from_arrays(
        image_ids=[10, 20, 30],
        class_names=["a"],
        gt_image_ids=[10, 30, 20],
        gt_labels=[0, 0, 0],
        gt_boxes=np.ones((3, 4)),
        pred_image_ids=[30],
        pred_labels=[0],
        pred_boxes=np.ones((1, 4)),
        pred_scores=[0.1],
    )
    sub = data.subset(np.array([False, True, True]))
    assert sub.image_ids.tolist() == [20, 30]
    assert sub.gt_ids.tolist() == [1, 2]
    assert sub.gt_image.tolist() == [1, 0]
    assert sub.pred_image.tolist() == [1]
