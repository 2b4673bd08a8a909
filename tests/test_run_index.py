"""A run's by-image index, stored beside the run: image slices without the run's results.

The index path must give exactly what the match-table path gives, follow the run (re-run,
rename, delete), never use a stale index, and rebuild one for runs stored without it.
"""

from __future__ import annotations

import uuid

import fiftyone.core.odm as fodm
import numpy as np
import pytest
from fiftyone import ViewField as F

from detection_debugger.datasets import run_index, slices
from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
from detection_debugger.datasets.runs import evaluate_detections, load_run
from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

pytestmark = pytest.mark.fiftyone


@pytest.fixture()
def dataset(tmp_path):
    config = SyntheticConfig(num_images=30, num_classes=3, crowd_rate=0.05, seed=5)
    gt, results = make_coco(config)
    paths = write_files(tmp_path, gt, results, gt_format="coco")
    plan = plan_import(
        f"run-index-{uuid.uuid4().hex[:8]}",
        paths["images"],
        [
            LabelSource(paths["gt"], "coco", "ground_truth", predictions=False),
            LabelSource(paths["pred"], "tao", "predictions", predictions=True),
        ],
    )
    ds = apply_import(plan, progress=False)
    evaluate_detections(ds, "predictions", eval_key="run")
    ds.save_view("some images", ds.take(12, seed=1))
    yield ds
    if ds.name in __import__("fiftyone").list_datasets():
        ds.delete()


def _table_result(dataset, eval_key, name):
    """The slice through the match table (the path the index replaces)."""
    result, _ = slices.evaluate_view(load_run(dataset, eval_key), dataset.load_saved_view(name))
    return result


def _stored(dataset, eval_key) -> int:
    bucket = run_index._bucket()
    return len(list(bucket.find({"filename": run_index._name(dataset, eval_key)})))


def test_an_image_slice_from_the_stored_index_equals_the_table_and_loads_no_results(
    dataset, monkeypatch
):
    expected = _table_result(dataset, "run", "some images")
    run_index.clear_run_index_cache()
    assert _stored(dataset, "run") == 1

    def no_results(*args, **kwargs):
        raise AssertionError("an image slice must not load the run's results")

    monkeypatch.setattr(slices, "load_run", no_results)
    result = slices.evaluate_slice(dataset, "run", "some images")
    assert result.stats == expected.stats
    assert result.classes == expected.classes
    np.testing.assert_array_equal(result.confusion.matrix, expected.confusion.matrix)
    assert result.params["selection"] == "images" and result.params["outside_samples"] == 0
    assert result.params["num_images"] == 12


def test_an_object_slice_still_uses_the_table(dataset):
    dataset.save_view("cars", dataset.filter_labels("ground_truth", F("label") == "class_0"))
    result = slices.evaluate_slice(dataset, "run", "cars")
    assert result.params["selection"] == "objects"
    assert result.stats == _table_result(dataset, "run", "cars").stats


def test_a_rerun_replaces_the_index_and_a_stale_one_is_never_used(dataset):
    before = slices.evaluate_slice(dataset, "run", "some images")
    evaluate_detections(dataset, "predictions", eval_key="run", iou=0.8)
    assert _stored(dataset, "run") == 1
    run_index.clear_run_index_cache()
    after = slices.evaluate_slice(dataset, "run", "some images")
    assert after.params["iou"] == 0.8 and before.params["iou"] == 0.5
    assert after.classes == _table_result(dataset, "run", "some images").classes


def test_the_index_follows_rename_and_delete(dataset):
    expected = slices.evaluate_slice(dataset, "run", "some images")
    dataset.rename_evaluation("run", "renamed")
    assert _stored(dataset, "run") == 0 and _stored(dataset, "renamed") == 1
    run_index.clear_run_index_cache()
    assert run_index.load_run_index(dataset, "renamed") is not None
    assert slices.evaluate_slice(dataset, "renamed", "some images").stats == expected.stats
    dataset.delete_evaluation("renamed")
    assert _stored(dataset, "renamed") == 0
    with pytest.raises(ValueError, match="no evaluation"):
        slices.evaluate_slice(dataset, "renamed", "some images")


def test_a_run_stored_without_an_index_gets_one(dataset):
    expected = _table_result(dataset, "run", "some images")
    run_index.delete_run_index(dataset, "run")  # as a run of an earlier version
    assert run_index.load_run_index(dataset, "run") is None
    assert slices.evaluate_slice(dataset, "run", "some images").stats == expected.stats
    assert _stored(dataset, "run") == 1


def test_a_deleted_dataset_leaves_no_index_behind(dataset, tmp_path):
    name = run_index._name(dataset, "run")
    dataset.delete()
    other = apply_import(
        plan_import(
            f"run-index-other-{uuid.uuid4().hex[:8]}",
            str(tmp_path / "images"),
            [LabelSource(str(tmp_path / "gt.json"), "coco", "ground_truth", predictions=False)],
        ),
        progress=False,
    )
    try:
        evaluate_detections(other, "ground_truth", eval_key="self")
        assert not list(run_index._bucket().find({"filename": name}))
    finally:
        other.delete()


def test_an_index_stamped_for_another_run_is_not_used(dataset):
    """A file left by another run under the same key (its timestamp differs) is ignored,
    and replaced by one built from this run's results."""
    expected = _table_result(dataset, "run", "some images")
    files = fodm.get_db_conn()[f"{run_index.BUCKET}.files"]  # GridFS's file documents
    name = run_index._name(dataset, "run")
    files.update_many({"filename": name}, {"$set": {"metadata.run_timestamp": "1999-01-01"}})
    run_index.clear_run_index_cache()
    assert run_index.load_run_index(dataset, "run") is None
    assert slices.evaluate_slice(dataset, "run", "some images").stats == expected.stats
    stamps = [f.metadata["run_timestamp"] for f in run_index._bucket().find({"filename": name})]
    assert stamps == [str(dataset.get_evaluation_info("run").timestamp)]


def test_an_index_of_another_format_is_rebuilt(dataset):
    expected = _table_result(dataset, "run", "some images")
    files = fodm.get_db_conn()[f"{run_index.BUCKET}.files"]
    name = run_index._name(dataset, "run")
    files.update_many({"filename": name}, {"$set": {"metadata.format": run_index.FORMAT - 1}})
    run_index.clear_run_index_cache()
    assert run_index.load_run_index(dataset, "run") is None
    assert slices.evaluate_slice(dataset, "run", "some images").stats == expected.stats
    assert run_index.load_run_index(dataset, "run") is not None
