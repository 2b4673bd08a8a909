"""Every use of FiftyOne's private API in this project, and nowhere else.

FiftyOne 1.22 has no public equivalent for these. Each is a one-line wrapper with a test in
``tests/test_fiftyone_private.py`` that fails loudly if a FiftyOne upgrade changes it, so an
upgrade breaks here, in one place, and not somewhere in the App. ``tests/test_architecture.py``
checks that no other module reaches into a private FiftyOne attribute.
"""

from __future__ import annotations

import sys

__all__ = [
    "aggregate_after_view",
    "bulk_write",
    "dataset_id",
    "dataset_of",
    "disconnect_if_connected_to",
    "insert_image_samples",
    "is_patches_view",
    "open_clip_model_class",
    "root_dataset_of",
    "sample_ids_of",
    "samples_collection",
    "set_stored_values",
    "shows_every_label",
    "stage_dicts",
]


def dataset_of(samples):
    """The dataset a view (or dataset) reads from: for a patches view, its patches dataset.
    (``SampleCollection._dataset``.)"""
    return samples._dataset


def root_dataset_of(samples):
    """The user's dataset behind any view, patches views included
    (``SampleCollection._root_dataset``)."""
    return samples._root_dataset


def is_patches_view(view) -> bool:
    """Whether ``view`` is a patches view (one sample per object)
    (``SampleCollection._is_patches``)."""
    return bool(getattr(view, "_is_patches", False))


def aggregate_after_view(samples, stages: list[dict]):
    """A cursor over the raw documents (pymongo's, no FiftyOne conversion) of ``stages``
    run after the view's own pipeline (``SampleCollection._aggregate(post_pipeline=...)``):
    millions of values read at the speed of BSON decoding instead of FiftyOne's per-value
    ``to_python``."""
    return samples._aggregate(post_pipeline=stages)


def shows_every_label(samples) -> bool:
    """Whether ``samples`` shows every label of its samples: a dataset, or a view whose
    stages only choose, order or page samples (``DatasetView._stages``; a patches view is
    made of labels, not samples: False)."""
    import fiftyone.core.stages as fos

    kinds = (
        fos.Exclude,
        fos.ExcludeBy,
        fos.Exists,
        fos.Limit,
        fos.Match,
        fos.MatchTags,
        fos.Select,
        fos.SelectBy,
        fos.Shuffle,
        fos.Skip,
        fos.SortBy,
        fos.Take,
    )
    if is_patches_view(samples):
        return False
    return all(isinstance(stage, kinds) for stage in getattr(samples, "_stages", None) or [])


def sample_ids_of(samples) -> list[str]:
    """The ids of the samples of ``samples``, in order, read raw (``values("id")`` converts
    each through FiftyOne: half a second at 100,000 samples).

    The server joins them into one document of strings (``$group``/``$push``, as FiftyOne's
    own ``values()``): 0.3 s at 100k samples against 0.8-1.2 s for a cursor over 100k
    documents. Past MongoDB's 16 MB document limit (about 500k samples) the cursor reads
    them."""
    from pymongo.errors import OperationFailure

    joined = [{"$group": {"_id": None, "ids": {"$push": {"$toString": "$_id"}}}}]
    try:
        docs = list(aggregate_after_view(samples, joined))
    except OperationFailure:  # the joined document would be too large
        cursor = aggregate_after_view(samples, [{"$project": {"_id": 1}}])
        return [str(doc["_id"]) for doc in cursor]
    return docs[0]["ids"] if docs else []


def stage_dicts(samples) -> list[dict]:
    """The stages of a view as FiftyOne stores a saved view's, without the stages' random
    uuids (``DatasetView._serialize(include_uuids=False)``): equal for views that apply the
    same stages, however built; ``[]`` for a dataset."""
    import fiftyone.core.view as fov

    if not isinstance(samples, fov.DatasetView):
        return []
    return samples._serialize(include_uuids=False)


def samples_collection(dataset):
    """The pymongo collection holding the dataset's samples (``Dataset._sample_collection``)."""
    return dataset._sample_collection


def dataset_id(dataset) -> str:
    """The dataset's database id, stable across renames (``Dataset._doc.id``)."""
    return str(dataset._doc.id)


def bulk_write(dataset, ops: list, sample_ids: list) -> None:
    """Raw pymongo ``UpdateOne`` operations on the dataset's samples, then FiftyOne's cache of
    those samples reloaded (``Dataset._bulk_write``): one round trip for any number of
    per-object attribute writes."""
    dataset._bulk_write(ops, ids=sample_ids)


def set_stored_values(dataset, field: str, values: dict, key_field: str) -> None:
    """Writes ``values`` (``{key: document}``) already in FiftyOne's stored form (what
    ``Detections.to_mongo()`` gives) without building label objects: ``set_values`` with
    ``validate=False`` takes the stored form, which is FiftyOne's internal layout."""
    dataset.set_values(field, values, key_field=key_field, validate=False)


def insert_image_samples(dataset, rows: list[tuple[str, dict, dict]]) -> None:
    """Adds image samples in one ``insert_many``, as the documents ``add_samples`` would
    write for ``fo.Sample(filepath=path, metadata=fo.ImageMetadata(**metadata), **fields)``
    (``Dataset._sample_collection``, ``_doc.id`` and the ``_rand`` of
    ``fiftyone.core.odm.sample``), without building a ``Sample`` per image (the bulk of
    ``add_samples``' time).

    Args:
        dataset: an image dataset (its media type and ``ImageMetadata`` schema declared,
            e.g. by a first ``add_samples``) whose schema declares every field of ``fields``.
        rows: ``(filepath, metadata, fields)`` per sample: the ``ImageMetadata`` values and
            the label fields in FiftyOne's stored form.
    """
    from datetime import datetime, timezone

    from fiftyone.core.odm.sample import _generate_rand

    from detection_debugger.datasets.object_ids import new_object_ids

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold ms
    docs = [
        {
            "_id": sample_id,
            "filepath": filepath,
            "tags": [],
            "metadata": {
                "_cls": "ImageMetadata",
                **{k: v for k, v in metadata.items() if v is not None},
            },
            "_media_type": "image",
            "_rand": _generate_rand(),
            "_dataset_id": dataset._doc.id,
            "created_at": now,
            "last_modified_at": now,
            **fields,
        }
        for sample_id, (filepath, metadata, fields) in zip(new_object_ids(len(rows)), rows)
    ]
    if docs:
        dataset._sample_collection.insert_many(docs, ordered=False)


def disconnect_if_connected_to(port: int, run_exit_cleanup: bool) -> None:
    """Runs FiftyOne's exit-time clean-up now and closes its client, when this process's
    FiftyOne is connected to the server on ``port`` (``fiftyone.core.odm.database._client``,
    ``_delete_non_persistent_datasets_if_allowed``, ``_disconnect``).

    FiftyOne's ``atexit`` hook queries the database; run after the server stopped, it waits for
    pymongo's 30 s server selection timeout. Closing the client the way FiftyOne itself does
    before forking makes the hook return at once. Only for a process about to stop using
    FiftyOne: its open documents cannot reach the database afterwards.
    """
    database = sys.modules.get("fiftyone.core.odm.database")
    client = getattr(database, "_client", None)
    if client is None:
        return
    try:
        hosts = client.topology_description.server_descriptions()
    except Exception:
        return
    if not any(host_port == port for _, host_port in hosts):
        return  # FiftyOne uses another server
    if run_exit_cleanup:
        database._delete_non_persistent_datasets_if_allowed()
    database._disconnect()


def open_clip_model_class():
    """FiftyOne's open_clip zoo model (``TorchOpenClipModel``) with its private hooks given
    public names, for a subclass that loads weights its own way:

    - the subclass implements ``load_network(config)`` (FiftyOne calls it as ``_load_model``)
      and calls ``attach(network, preprocess, tokenizer)``;
    - ``network`` is the loaded ``open_clip`` model, ``preprocess_image(img)`` FiftyOne's
      image preprocessing (``_preprocess_img``), ``encode_prompts(prompts)`` its prompt
      embedding (``_embed_prompts``).
    """
    import fiftyone.utils.open_clip as fouoc

    class OpenClipModel(fouoc.TorchOpenClipModel):
        def _load_model(self, config):
            return self.load_network(config)

        def attach(self, network, preprocess, tokenizer):
            self._model, self._clip_preprocess, self._tokenizer = network, preprocess, tokenizer
            return network

        @property
        def network(self):
            return self._model

        def preprocess_image(self, img):
            return self._preprocess_img(img)

        def encode_prompts(self, prompts):
            return self._embed_prompts(prompts)

    return OpenClipModel
