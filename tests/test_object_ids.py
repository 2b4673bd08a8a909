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


def test_ids_never_repeat_bson_ones_or_each_other():
    made = set(new_object_ids(2000)) | set(new_object_ids(2000))
    bson_ids = {ObjectId() for _ in range(2000)}
    assert len(made) == 4000 and not made & bson_ids


def test_a_counter_near_its_end_starts_a_new_batch(monkeypatch):
    """The 3-byte counter never wraps inside a batch: a new random prefix takes over."""
    draws = iter([b"\x01" * 5, b"\xff\xff\xfd", b"\x02" * 5, b"\x00\x00\x00"])
    monkeypatch.setattr(object_ids.os, "urandom", lambda n: next(draws))
    ids = new_object_ids(5)
    raw = [i.binary for i in ids]
    assert [r[4:9] for r in raw] == [b"\x01" * 5] * 3 + [b"\x02" * 5] * 2
    assert [int.from_bytes(r[9:], "big") for r in raw] == [0xFFFFFD, 0xFFFFFE, 0xFFFFFF, 0, 1]
    assert len(set(ids)) == 5
