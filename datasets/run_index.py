"""A run's by-image index, stored beside the run and read without its results.

FiftyOne keeps a run's results as one JSON file in GridFS, which ``load_evaluation_results``
reads and parses whole: at 100k images that is the 250 MB match table (every box, id and
threshold flag), ~9 s before any slice can be evaluated. Image slices need much less:
the :class:`~detection_debugger.evaluation.image_slices.ImageSliceIndex` (24 MB packed at
100k images) and the run's sample ids. Both are written here, in a GridFS bucket of their
own (:data:`BUCKET`), when the run is evaluated, as one file named
``<dataset id>/<eval key>`` and stamped with the run's timestamp, so a stale file (the key
re-run, renamed back, a run from before this index existed) is never used: it is rebuilt
from the results instead and stored again.

Loaded indexes are kept in memory (the last :data:`CACHE_SIZE`): a warm slice touches the
database only to resolve the view.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import fiftyone.core.odm as fodm
import gridfs
import numpy as np

from detection_debugger.datasets.fiftyone_private import dataset_id
from detection_debugger.datasets.id_lookup import IdLookup
from detection_debugger.evaluation.image_slices import ImageSliceIndex
from detection_debugger.evaluation.table_storage import pack_arrays, unpack_arrays

__all__ = [
    "BUCKET",
    "RunIndex",
    "delete_run_index",
    "clear_run_index_cache",
    "load_run_index",
    "rename_run_index",
    "save_run_index",
]

BUCKET = "detection_debugger_run_indexes"
FORMAT = 1  # raised when ImageSliceIndex's fields change: older files are then rebuilt
CACHE_SIZE = 2
_SAMPLE_IDS = "run.sample_ids"
_cache: OrderedDict = OrderedDict()


@dataclass(frozen=True)
class RunIndex:
    """A run's :class:`ImageSliceIndex` and its samples (``sample_ids``: ``S24`` hex ids in
    the index's image order)."""

    index: ImageSliceIndex
    sample_ids: np.ndarray

    @cached_property
    def _lookup(self) -> IdLookup:
        return IdLookup(self.sample_ids)

    def image_mask(self, sample_ids) -> tuple[np.ndarray, int]:
        """``(I,)`` bool mask of the given samples, and how many are not in the run."""
        positions = self._lookup.positions(sample_ids)
        mask = np.zeros(len(self.sample_ids), bool)
        mask[positions[positions >= 0]] = True
        return mask, int((positions < 0).sum())


def _bucket() -> gridfs.GridFSBucket:
    return gridfs.GridFSBucket(fodm.get_db_conn(), bucket_name=BUCKET)


def _name(dataset, eval_key: str) -> str:
    return f"{dataset_id(dataset)}/{eval_key}"


def _stamp(dataset, eval_key: str) -> str | None:
    """The run's timestamp (set when it is registered; kept by a rename), as text."""
    if not dataset.has_evaluation(eval_key):
        return None
    return str(dataset.get_evaluation_info(eval_key).timestamp)


def _files(dataset, eval_key: str) -> list:
    return list(_bucket().find({"filename": _name(dataset, eval_key)}))


def save_run_index(dataset, eval_key: str, index: ImageSliceIndex, sample_ids) -> RunIndex:
    """Stores the index of the run ``eval_key`` (replacing any earlier one) and caches it."""
    run_index = RunIndex(index, np.asarray(list(sample_ids), dtype="S24"))
    arrays = {**index.to_arrays(), _SAMPLE_IDS: run_index.sample_ids}
    delete_run_index(dataset, eval_key)
    _bucket().upload_from_stream(
        _name(dataset, eval_key),
        pack_arrays(arrays),
        metadata={"run_timestamp": _stamp(dataset, eval_key), "format": FORMAT},
    )
    _remember((_name(dataset, eval_key), _stamp(dataset, eval_key)), run_index)
    _delete_orphans()
    return run_index


def _delete_orphans() -> None:
    """Removes the indexes of deleted datasets (deleting a dataset runs no run clean-up)."""
    existing = {str(doc["_id"]) for doc in fodm.get_db_conn().datasets.find({}, {"_id": 1})}
    bucket = _bucket()
    for stored in bucket.find({}):
        if stored.filename.split("/", 1)[0] not in existing:
            bucket.delete(stored._id)


def load_run_index(dataset, eval_key: str) -> RunIndex | None:
    """The stored index of the run ``eval_key`` (from memory when loaded before), None when
    there is none for this run (stored before the index existed, or stale)."""
    stamp = _stamp(dataset, eval_key)
    if stamp is None:
        return None
    key = (_name(dataset, eval_key), stamp)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    wanted = {"run_timestamp": stamp, "format": FORMAT}
    current = [f for f in _files(dataset, eval_key) if _matches(f.metadata or {}, wanted)]
    if not current:
        return None
    arrays = unpack_arrays(_bucket().open_download_stream(current[-1]._id).read())
    sample_ids = arrays.pop(_SAMPLE_IDS)
    return _remember(key, RunIndex(ImageSliceIndex.from_arrays(arrays), sample_ids))


def clear_run_index_cache() -> None:
    """Empties the in-memory cache (the next load reads the database)."""
    _cache.clear()


def _matches(metadata: dict, wanted: dict) -> bool:
    return all(metadata.get(name) == value for name, value in wanted.items())


def _remember(key, run_index: RunIndex) -> RunIndex:
    _cache[key] = run_index
    _cache.move_to_end(key)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return run_index


def delete_run_index(dataset, eval_key: str) -> None:
    """Removes the stored index of ``eval_key`` (when the run is deleted or replaced)."""
    bucket = _bucket()
    for stored in _files(dataset, eval_key):
        bucket.delete(stored._id)
    name = _name(dataset, eval_key)
    for key in [k for k in _cache if k[0] == name]:
        del _cache[key]


def rename_run_index(dataset, eval_key: str, new_eval_key: str) -> None:
    """Follows a run's rename (its timestamp is kept, so the index stays valid)."""
    delete_run_index(dataset, new_eval_key)
    bucket = _bucket()
    for stored in _files(dataset, eval_key):
        bucket.rename(stored._id, _name(dataset, new_eval_key))
    name = _name(dataset, eval_key)
    for key in [k for k in _cache if k[0] == name]:
        del _cache[key]
