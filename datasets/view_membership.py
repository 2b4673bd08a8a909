"""The sample ids of a view, cached while the samples it reads provably did not change.

Resolving which samples a slice holds (``fiftyone_private.sample_ids_of``) runs the view's
aggregation: ~110 ms for a ``select()`` of 10,000 ids at 100,000 samples (at 10,000 samples,
a ``select()`` of 1,000 ids: ~11 ms resolved, ~2 ms from the cache). :func:`view_sample_ids` answers a repeated call from a small in-process
cache (the :data:`CACHE_ENTRIES` most recent views), keyed on

- the dataset's database id,
- the view's stages as FiftyOne serializes them (whatever object built the view), and
- the *data version* of the dataset's samples, read from the database on every call (two
  small queries, ~1 ms): the samples collection's estimated document count (collection
  metadata) and the newest ``last_modified_at`` of its samples (one key of its index).

Why a hit equals what the aggregation would return now:

1. Only views whose membership is a function of the sample documents alone are cached: a
   dataset, or a view whose stages only choose, order or page samples (``match``,
   ``match_tags``, ``select``, ``exclude``, ``exists``, ``sort_by``, ``limit``, ``skip``,
   ``take``, ``shuffle``; the seeds of the last two are in the stages), of a dataset without
   frames or groups. Patches views, label filters, every other stage, and stages that use the
   server's randomness or clock (``$rand``, ``$$NOW``) are resolved uncached, every time.
2. Inserting a sample raises the count and deleting one lowers it. Every other write to a
   sample document sets its ``last_modified_at`` to the writer's clock: FiftyOne's own writes
   (``save``, ``set_values``, tags, adding, renaming, clearing or deleting fields) and this
   project's raw writers (:func:`~detection_debugger.datasets.object_writes.stamped`). So a
   write made after the version was read raises the newest ``last_modified_at``, provided the
   time it stamps is later than the newest one read.
3. That is what the freshness rule secures: nothing is cached while the newest
   ``last_modified_at`` is less than :data:`FRESH_S` old (or in the future). A write after the
   read then stamps a later time unless it fell in the same millisecond as the newest one (it
   cannot: that one is 2 s old), or its writer's clock is more than 2 s behind this one, or
   more than 2 s passed between its stamp and its write reaching the database.
4. The version is read before the ids: a write in between leaves ids newer than their key,
   which costs the next call a miss, never a stale answer.

What this assumes (and does not cover): writes to sample documents that leave
``last_modified_at`` alone (raw pymongo from outside FiftyOne and this project), clocks of
writers more than :data:`FRESH_S` apart, and one write stamped more than :data:`FRESH_S` before
it reaches the database (FiftyOne stamps a whole ``set_values`` with one time: a view resolved
while such a write of a very large collection is still under way, after its first batch, is
read stale until the next write; this project's writers take a new stamp per batch).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone

from detection_debugger.datasets.fiftyone_private import (
    dataset_id,
    dataset_of,
    is_patches_view,
    sample_ids_of,
    samples_collection,
    shows_every_label,
    stage_dicts,
)

__all__ = ["CACHE_ENTRIES", "FRESH_S", "clear_view_cache", "view_sample_ids"]

CACHE_ENTRIES = 8  # views whose ids are kept (the slices a user switches between)
FRESH_S = 2.0  # no caching while the newest sample write is younger than this (seconds)
_UNCACHEABLE_MEDIA = ("video", "group")  # frames and group slices live outside the samples
_NONDETERMINISTIC = ('"$rand"', '"$$NOW"', '"$$CLUSTER_TIME"', '"$sampleRate"')

_cache: OrderedDict[tuple, list[str]] = OrderedDict()
_lock = threading.Lock()


def view_sample_ids(view) -> list[str]:
    """The ids of the samples of ``view`` (a dataset or a view), in order: what
    :func:`~detection_debugger.datasets.fiftyone_private.sample_ids_of` returns, read from the
    cache when the view and its samples are unchanged since it was last resolved."""
    stages = _cache_stages(view)
    if stages is None:
        return sample_ids_of(view)
    dataset = dataset_of(view)
    count, newest = _data_version(dataset)
    if _is_fresh(newest):
        return sample_ids_of(view)
    key = (dataset_id(dataset), stages, count, newest)
    with _lock:
        ids = _cache.get(key)
        if ids is not None:
            _cache.move_to_end(key)
            return list(ids)
    ids = sample_ids_of(view)
    with _lock:
        _cache[key] = ids
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return list(ids)


def clear_view_cache() -> None:
    """Forgets every cached view."""
    with _lock:
        _cache.clear()


def _cache_stages(view) -> str | None:
    """The view's stages as one string (part of the cache key), or None when its membership
    may depend on more than its sample documents (it is then never cached)."""
    if is_patches_view(view) or not shows_every_label(view):
        return None
    if view.media_type in _UNCACHEABLE_MEDIA:
        return None
    # The C encoder: 1 ms for a select() of 10k ids (bson's json_util: 20 ms); values JSON
    # has no form for (ObjectIds, dates) are written with their type, so none collide.
    stages = json.dumps(stage_dicts(view), default=_typed_text)
    if any(word in stages for word in _NONDETERMINISTIC):
        return None
    return stages


def _typed_text(value) -> str:
    return f"{type(value).__name__}:{value}"


def _data_version(dataset) -> tuple[int, datetime | None]:
    """The samples' estimated count and newest ``last_modified_at`` (None when empty)."""
    collection = samples_collection(dataset)
    count = collection.estimated_document_count()
    newest = next(
        collection.find({}, {"_id": 0, "last_modified_at": 1})
        .sort("last_modified_at", -1)
        .limit(1),
        {},
    ).get("last_modified_at")
    if newest is not None and newest.tzinfo is not None:
        newest = newest.astimezone(timezone.utc).replace(tzinfo=None)
    return count, newest


def _is_fresh(newest: datetime | None) -> bool:
    """Whether the newest write is under :data:`FRESH_S` old, or stamped in the future."""
    if newest is None:
        return False
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now - newest < timedelta(seconds=FRESH_S)
