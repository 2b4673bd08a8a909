"""The engine's COCO metrics equal pycocotools' on the same inputs (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_same_as_pycocotools, random_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    STAT_NAMES,
    DetectionSet,
    MatchTable,
)


@pytest.mark.parametrize("seed", range(40))
def test_random_scenes_match_pycocotools(seed):
    gt, results = make_coco(random_config(seed))
    assert_same_as_pycocotools(gt, results)


@pytest.mark.parametrize("seed", range(8))
def test_image_subsets_match_pycocotools_on_the_subset(seed):
    gt, results = make_coco(random_config(100 + seed))
    rng = np.random.default_rng(seed)
    ids = [im["id"] for im in gt["images"]]
    subset = sorted(rng.choice(ids, size=max(1, len(ids) // 3), replace=False).tolist())
    assert_same_as_pycocotools(gt, results, subset)


def test_more_than_100_detections_per_image_and_class():
    config = SyntheticConfig(
        num_images=3,
        num_classes=1,
        gt_per_image=30,
        ghosts_per_image=150,
        duplicates_per_object=4,
        image_size=(120, 90),
        score_decimals=2,
        seed=7,
    )
    gt, results = make_coco(config)
    per_image = np.bincount([d["image_id"] for d in results])
    assert per_image.max() > 100
    assert_same_as_pycocotools(gt, results)


def _scene(anns, dets, images=(1,), categories=(1, 2)):
    gt = {
        "images": [{"id": i, "width": 100, "height": 100} for i in images],
        "categories": [{"id": c, "name": f"c{c}"} for c in categories],
        "annotations": [
            {"id": n + 1, "area": b[2] * b[3], "iscrowd": 0, **a, "bbox": b}
            for n, (a, b) in enumerate(anns)
        ],
    }
    results = [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in dets]
    return gt, results


@pytest.mark.parametrize(
    "anns, dets",
    [
        pytest.param([], [(1, 1, [0, 0, 10, 10], 0.9)], id="preds-only"),
        pytest.param([({"image_id": 1, "category_id": 1}, [0, 0, 10, 10])], [], id="gt-only"),
        pytest.param(
            [({"image_id": 1, "category_id": 1, "iscrowd": 1}, [0, 0, 50, 50])],
            [(1, 1, [0, 0, 10, 10], 0.9), (1, 1, [5, 5, 10, 10], 0.8)],
            id="crowd-only",
        ),
        pytest.param(
            [
                ({"image_id": 1, "category_id": 1}, [0, 0, 10, 10]),
                ({"image_id": 1, "category_id": 1}, [0, 0, 10, 10]),
            ],
            [(1, 1, [0, 0, 10, 10], 0.5), (1, 1, [0, 0, 10, 10], 0.5)],
            id="iou-and-score-ties",
        ),
        pytest.param(
            [
                ({"image_id": 1, "category_id": 1}, [0, 0, 20, 20]),
                ({"image_id": 1, "category_id": 1, "iscrowd": 1}, [0, 0, 20, 20]),
            ],
            [(1, 1, [0, 0, 20, 20], 0.9), (1, 1, [1, 1, 20, 20], 0.8)],
            id="crowd-after-regular",
        ),
        pytest.param(
            [({"image_id": 1, "category_id": 1, "area": 32.0**2}, [0, 0, 32, 32])],
            [(1, 1, [0, 0, 32, 32], 0.9)],
            id="area-on-range-boundary",
        ),
        pytest.param(
            [({"image_id": 1, "category_id": 2}, [0, 0, 10, 10])],
            [(1, 1, [0, 0, 10, 10], 0.9)],
            id="class-without-predictions",
        ),
    ],
)
def test_named_cases_match_pycocotools(anns, dets):
    gt, results = _scene(anns, dets)
    assert_same_as_pycocotools(gt, results)


def test_classes_without_ground_truth_are_null():
    gt, results = _scene(
        [({"image_id": 1, "category_id": 1}, [0, 0, 10, 10])], [(1, 2, [0, 0, 10, 10], 0.9)]
    )
    result = MatchTable.build(DetectionSet.from_coco(gt, results)).evaluate()
    assert result.classes["c2"].AP is None
    assert result.classes["c2"].AR100 is None
    assert result.classes["c1"].AP == 0.0
    assert list(result.stats) == list(STAT_NAMES)


def test_no_ground_truth_at_all_gives_null_stats():
    gt, results = _scene([], [(1, 1, [0, 0, 10, 10], 0.9)])
    result = MatchTable.build(DetectionSet.from_coco(gt, results)).evaluate()
    assert all(v is None for v in result.stats.values())


def test_parameters_are_pycocotools_own():
    from pycocotools.cocoeval import Params

    params = Params(iouType="bbox")
    assert np.array_equal(IOU_THRESHOLDS, params.iouThrs)
    assert np.array_equal(RECALL_THRESHOLDS, params.recThrs)


# Boxes on a coarse grid make equal IoUs and equal scores frequent: the tie-breaking rules
# (stable score order, later object on IoU ties, non-crowd first) are what is tested here.
box = st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 6), st.integers(1, 6)).map(
    lambda b: [b[0] * 4.0, b[1] * 4.0, b[2] * 4.0, b[3] * 4.0]
)


@st.composite
def tie_heavy_scene(draw):
    num_images = draw(st.integers(1, 3))
    anns = draw(
        st.lists(
            st.tuples(st.integers(1, num_images), st.integers(1, 2), box, st.booleans()),
            max_size=12,
        )
    )
    dets = draw(
        st.lists(
            st.tuples(
                st.integers(1, num_images), st.integers(1, 2), box, st.sampled_from([0.3, 0.6, 0.9])
            ),
            max_size=20,
        )
    )
    gt = {
        "images": [{"id": i} for i in range(1, num_images + 1)],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {
                "id": n + 1,
                "image_id": i,
                "category_id": c,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": int(crowd and n % 3 == 0),
            }
            for n, (i, c, b, crowd) in enumerate(anns)
        ],
    }
    results = [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in dets]
    return gt, results


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tie_heavy_scene())
def test_tie_heavy_scenes_match_pycocotools(scene):
    gt, results = scene
    assert_same_as_pycocotools(gt, results)
