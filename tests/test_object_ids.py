"""Bulk ObjectIds for documents written in stored form (imports)."""

from __future__ import annotations

import time

from bson import ObjectId

from detection_debugger.datasets import object_ids
from detection_debugger.datasets.object_ids import new_object_ids


def test_ids_are_distinct_increasing_and_stamped_now():
    before = int(time.time())
    ids = new_object_ids(5000)
    assert len(ids) == 5000 and len(set(ids)) == 5000
    assert all(isinstance(i, ObjectId) for i in ids)
    assert ids == sorted(ids)
    stamp = int(ids[0].generation_time.timestamp())
    assert before <= stamp <= int(time.time())
    assert new_object_ids(0) == []


def test_ids_sort_after_earlier_ids_and_before_later_calls():
    """Insertion order is id order: after bson's earlier ids, across calls too."""
    earlier = ObjectId()
    first, second = new_object_ids(300), new_object_ids(300)
    made = first + second
    assert made == sorted(made) and len(set(made)) == 600
    assert earlier < made[0]
    assert not set(made) & {ObjectId() for _ in range(2000)}


def test_the_counter_carries_into_the_upper_bytes(monkeypatch):
    """Past a counter of 2**32 - 1 in the low bytes, the upper bytes count on."""
    start = (int.from_bytes(ObjectId().binary, "big") >> 32 << 32) + 2**32 - 2
    monkeypatch.setattr(object_ids, "_next", start + (1 << 60))
    ids = new_object_ids(4)
    values = [int.from_bytes(i.binary, "big") for i in ids]
    assert values == [start + (1 << 60) + n for n in range(4)]
    assert values[2] >> 32 == (values[0] >> 32) + 1
