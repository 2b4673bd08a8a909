"""The by-image index of a run: image slices at their own cost, equal to the match table.

:class:`ImageSliceIndex.evaluate` must give exactly what :meth:`MatchTable.evaluate` gives
for the same image mask (which equals pycocotools on those images: test_slices_core.py):
every statistic, every per-class number and the confusion matrix, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import random_config, run_pycocotools, stats_array

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, MatchTable
from detection_debugger.evaluation.image_slices import ImageSliceIndex
from detection_debugger.evaluation.table_storage import pack_arrays, unpack_arrays


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_identical(result, expected) -> None:
    assert result.stats.keys() == expected.stats.keys()
    for name, value in expected.stats.items():
        assert _same(result.stats[name], value), (name, result.stats[name], value)
    assert result.classes.keys() == expected.classes.keys()
    for name, metrics in expected.classes.items():
        got = result.classes[name]
        for field in metrics.__dataclass_fields__:
            assert _same(getattr(got, field), getattr(metrics, field)), (name, field)
    assert result.confusion.labels == expected.confusion.labels
    np.testing.assert_array_equal(result.confusion.matrix, expected.confusion.matrix)
    assert result.params == expected.params


def _masks(num_images: int, rng) -> list[np.ndarray]:
    masks = [np.ones(num_images, bool), np.zeros(num_images, bool)]
    for share in (0.02, 0.1, 0.5, 0.9):
        masks.append(rng.random(num_images) < share)
    one = np.zeros(num_images, bool)
    one[rng.integers(num_images)] = True
    masks.append(one)
    return masks


@pytest.mark.parametrize("seed", range(16))
def test_image_slices_equal_the_match_table(seed):
    config = random_config(700 + seed)
    gt, results = make_coco(config)
    data = DetectionSet.from_coco(gt, results)
    rng = np.random.default_rng(seed)
    iou, score = (0.5, 0.0) if seed % 2 else (0.7, 0.3)
    table = MatchTable.build(data, iou, score)
    index = ImageSliceIndex.build(table)
    for mask in _masks(data.num_images, rng):
        assert_identical(index.evaluate(mask), table.evaluate(mask))


def test_crowds_and_area_ranges_ignore_predictions_at_some_thresholds():
    """Crowd regions and objects outside an area range make predictions neither true nor
    false positives at some thresholds only: the index must skip them there alone."""
    config = SyntheticConfig(
        num_images=120, num_classes=4, gt_per_image=6.0, crowd_rate=0.15, seed=11
    )
    gt, results = make_coco(config)
    assert any(a.get("iscrowd") for a in gt["annotations"])
    data = DetectionSet.from_coco(gt, results)
    table = MatchTable.build(data)
    index = ImageSliceIndex.build(table)
    codes = index.codes[1:]  # small/medium/large: some columns counted at some thresholds
    counted = (codes | codes >> 10) & 0x3FF
    assert ((counted != 0) & (counted != 0x3FF)).any()
    rng = np.random.default_rng(0)
    for mask in _masks(data.num_images, rng):
        assert_identical(index.evaluate(mask), table.evaluate(mask))


def test_an_image_slice_equals_pycocotools_on_its_images():
    gt, results = make_coco(random_config(901))
    data = DetectionSet.from_coco(gt, results)
    index = ImageSliceIndex.build(MatchTable.build(data))
    ids = sorted(im["id"] for im in gt["images"])[::3]
    mask = np.isin(data.image_ids, ids)
    reference = run_pycocotools(gt, results, ids).stats
    ours = stats_array(index.evaluate(mask).stats)
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_the_index_survives_storage_exactly():
    gt, results = make_coco(random_config(902))
    table = MatchTable.build(DetectionSet.from_coco(gt, results), 0.6, 0.2)
    index = ImageSliceIndex.build(table)
    again = ImageSliceIndex.from_arrays(unpack_arrays(pack_arrays(index.to_arrays())))
    mask = np.random.default_rng(3).random(table.data.num_images) < 0.4
    assert_identical(again.evaluate(mask), table.evaluate(mask))
    assert again.class_names == index.class_names


def test_counting_and_sorting_the_count_keys_agree():
    from detection_debugger.evaluation import image_slices

    keys = np.random.default_rng(4).integers(0, 5000, 20000)
    counted = image_slices._count_keys(keys, 5000)
    sorted_ = np.unique(keys, return_counts=True)
    for got, expected in zip(counted, sorted_):
        np.testing.assert_array_equal(got, expected)
    assert image_slices._count_keys(keys, 10**9)[0].tolist() == sorted_[0].tolist()


def test_a_forked_child_evaluates_slices_too():
    """The slice threads do not survive a fork: the child must make its own, not wait on
    the parent's forever."""
    import multiprocessing

    gt, results = make_coco(random_config(903))
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    index = ImageSliceIndex.build(table)
    mask = np.ones(table.data.num_images, bool)
    expected = index.evaluate(mask).stats["AP"]  # the parent's pool now exists
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(_ap_of, (index, mask)).get(timeout=60)
    assert got == expected


def _ap_of(index, mask):
    return index.evaluate(mask).stats["AP"]
