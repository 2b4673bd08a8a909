"""One test per use of FiftyOne's private API (``datasets/fiftyone_private.py``): a FiftyOne
upgrade that changes any of them fails here, by name."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import fiftyone as fo
import fiftyone.core.odm as foo
import pytest
from bson import ObjectId
from pymongo import UpdateOne

from detection_debugger.datasets import fiftyone_private as private

pytestmark = pytest.mark.fiftyone


@pytest.fixture
def dataset():
    ds = fo.Dataset(f"private-{uuid.uuid4().hex[:8]}")
    ds.add_samples(
        [
            fo.Sample(
                filepath=f"/tmp/{i}.jpg",
                gt=fo.Detections(detections=[fo.Detection(label="car", bounding_box=[0.1] * 4)]),
            )
            for i in range(3)
        ]
    )
    yield ds
    ds.delete()


def test_dataset_of_and_root_dataset_of(dataset):
    patches = dataset.to_patches("gt")
    assert private.dataset_of(dataset.limit(2)) is dataset
    assert private.dataset_of(patches).name != dataset.name  # the patches dataset
    assert private.root_dataset_of(patches) is dataset
    assert private.root_dataset_of(dataset.limit(1)) is dataset


def test_is_patches_view(dataset):
    assert private.is_patches_view(dataset.to_patches("gt"))
    assert not private.is_patches_view(dataset)
    assert not private.is_patches_view(dataset.limit(1))


def test_dataset_id_is_the_database_id(dataset):
    doc = foo.get_db_conn().datasets.find_one({"name": dataset.name}, {"_id": 1})
    assert private.dataset_id(dataset) == str(doc["_id"])


def test_bulk_write_updates_samples_and_fiftyone_sees_it(dataset):
    ids = dataset.values("id")
    ops = [UpdateOne({"_id": ObjectId(i)}, {"$set": {"gt.detections.0.score_x": 7}}) for i in ids]
    sample = dataset.first()
    private.bulk_write(dataset, ops, ids)
    assert dataset.values("gt.detections.score_x", unwind=True) == [7, 7, 7]
    assert sample.gt.detections[0]["score_x"] == 7  # live samples reloaded


def test_set_stored_values_takes_the_stored_form(dataset):
    path = dataset.first().filepath
    doc = {
        "_cls": "Detections",
        "detections": [
            {
                "_id": ObjectId(),
                "_cls": "Detection",
                "tags": [],
                "label": "bus",
                "bounding_box": [0.5, 0.5, 0.25, 0.25],
                "confidence": 0.5,
            },
        ],
    }
    private.set_stored_values(dataset, "pred", {path: doc}, "filepath")
    detection = dataset[path]["pred"].detections[0]
    assert isinstance(detection, fo.Detection) and detection.label == "bus"
    assert detection.bounding_box == [0.5, 0.5, 0.25, 0.25]


def test_disconnect_if_connected_to_closes_the_client():
    """In a subprocess (closing the client would end this session's connection): another
    server's port leaves it alone; the right port closes it."""
    code = (
        "import os, fiftyone as fo\n"
        "from fiftyone.core.odm import database\n"
        "from detection_debugger.datasets.fiftyone_private import disconnect_if_connected_to\n"
        "fo.list_datasets()\n"
        "port = int(os.environ['FIFTYONE_DATABASE_URI'].rsplit(':', 1)[1].strip('/'))\n"
        "disconnect_if_connected_to(port + 1, run_exit_cleanup=False)\n"
        "assert database._client is not None\n"
        "disconnect_if_connected_to(port, run_exit_cleanup=True)\n"
        "assert database._client is None\n"
        "print('ok')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_open_clip_model_class_maps_the_private_hooks():
    import fiftyone.utils.open_clip as fouoc

    for hook in ("_load_model", "_preprocess_img", "_embed_prompts"):
        assert callable(getattr(fouoc.TorchOpenClipModel, hook)), hook
    model_class = private.open_clip_model_class()
    assert issubclass(model_class, fouoc.TorchOpenClipModel)
    for name in ("attach", "network", "preprocess_image", "encode_prompts"):
        assert hasattr(model_class, name), name


def test_insert_image_samples_writes_what_add_samples_writes():
    """The inserted documents have exactly the keys and values (ids, times and ``_rand``
    aside) that ``add_samples`` stores for the same sample, and FiftyOne reads them back."""
    ds = fo.Dataset(f"private-{uuid.uuid4().hex[:8]}")
    try:
        meta = {"size_bytes": 10, "mime_type": "image/jpeg", "width": 64, "height": 48}
        detections = fo.Detections(detections=[fo.Detection(label="car", bounding_box=[0.1] * 4)])
        ds.add_samples(
            [fo.Sample(filepath="/tmp/a.jpg", metadata=fo.ImageMetadata(**meta), gt=detections)]
        )
        stored = detections.to_dict()
        for d in stored["detections"]:
            d["_id"] = (
                ObjectId(d.pop("_id")["$oid"]) if isinstance(d.get("_id"), dict) else d["_id"]
            )
        private.insert_image_samples(
            ds, [("/tmp/b.jpg", {**meta, "num_channels": None}, {"gt": stored})]
        )
        a, b = (
            ds._sample_collection.find_one({"filepath": p}) for p in ("/tmp/a.jpg", "/tmp/b.jpg")
        )
        assert sorted(a) == sorted(b)
        for key in ("_id", "filepath", "created_at", "last_modified_at", "_rand"):
            a.pop(key), b.pop(key)
        assert a == b
        sample = ds["/tmp/b.jpg"]
        assert sample.metadata.width == 64 and sample.gt.detections[0].label == "car"
        assert len(ds) == 2 and ds.count("gt.detections") == 2
    finally:
        ds.delete()


def test_shows_every_label_and_sample_ids_of(dataset):
    from fiftyone import ViewField as F

    assert private.shows_every_label(dataset) and private.shows_every_label(dataset.view())
    view = dataset.skip(1).sort_by("filepath").select(dataset.values("id")[:2]).limit(5)
    assert private.shows_every_label(view)
    assert not private.shows_every_label(view.filter_labels("gt", F("label") == "car"))
    assert not private.shows_every_label(dataset.to_patches("gt"))
    assert private.sample_ids_of(dataset) == dataset.values("id")
    assert private.sample_ids_of(view) == view.values("id")
    assert private.sample_ids_of(dataset.sort_by("filepath", reverse=True)) == list(
        reversed(dataset.sort_by("filepath").values("id"))
    )


def test_sample_ids_of_an_empty_view_and_past_the_document_limit(dataset, monkeypatch):
    from pymongo.errors import OperationFailure

    assert private.sample_ids_of(dataset.limit(0)) == []
    expected = dataset.sort_by("filepath", reverse=True).values("id")
    aggregate = private.aggregate_after_view

    def too_large(samples, stages):  # what MongoDB answers past 16 MB of joined ids
        if "$group" in stages[0]:
            raise OperationFailure("BSONObjectTooLarge", code=10334)
        return aggregate(samples, stages)

    monkeypatch.setattr(private, "aggregate_after_view", too_large)
    assert private.sample_ids_of(dataset.sort_by("filepath", reverse=True)) == expected


def test_aggregate_after_view_runs_after_the_views_own_stages(dataset):
    view = dataset.limit(2)
    docs = list(
        private.aggregate_after_view(view, [{"$project": {"n": {"$size": "$gt.detections"}}}])
    )
    assert [d["n"] for d in docs] == [1, 1] and len(docs) == 2


def test_stage_dicts_are_equal_for_views_with_the_same_stages(dataset):
    from fiftyone import ViewField as F

    ids = dataset.values("id")[:2]
    stages = private.stage_dicts(dataset.match(F("gt.detections").length() > 0).select(ids))
    assert stages == private.stage_dicts(dataset.match(F("gt.detections").length() > 0).select(ids))
    assert [s["_cls"].rsplit(".", 1)[1] for s in stages] == ["Match", "Select"]
    assert all("_uuid" not in s for s in stages)
    assert stages != private.stage_dicts(dataset.select(ids))
    assert private.stage_dicts(dataset) == []


def test_samples_collection_holds_the_datasets_samples(dataset):
    collection = private.samples_collection(dataset)
    assert collection.estimated_document_count() == len(dataset)
    assert {str(d["_id"]) for d in collection.find({}, {"_id": 1})} == set(dataset.values("id"))
    assert "last_modified_at_1" in collection.index_information()
