"""Compact storage of match-table arrays: exact round trips, every form, a real table."""

from __future__ import annotations

import numpy as np
import pytest

from detection_debugger.demo.synthetic import SyntheticConfig, make_coco
from detection_debugger.evaluation import DetectionSet, MatchTable
from detection_debugger.evaluation.table_storage import pack_arrays, unpack_arrays


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].shape == b[name].shape, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_every_form_round_trips_exactly():
    rng = np.random.default_rng(3)
    matched = np.full((10, 4, 500), -1, dtype=np.int32)
    matched[rng.random((10, 4, 500)) < 0.1] = 7
    ids = np.array([f"{i:024x}" for i in rng.integers(0, 2**60, 50)], dtype="S24")
    arrays = {
        "bits": rng.random((10, 4, 37)) < 0.3,  # not a multiple of 8
        "arange": np.arange(1000, dtype=np.int64),
        "narrow": rng.integers(-5, 300, 999).astype(np.int64),
        "wide": rng.integers(-(2**40), 2**40, 99),
        "repeat": np.repeat(rng.integers(0, 9, (10, 1, 64)), 4, axis=1).astype(np.int64),
        "sparse": matched,
        "floats": rng.random((40, 4)),
        "decimals": np.round(rng.random((40, 4)) * 640, 2),
        "decimals with nan": np.array([0.5, np.nan, 1.25]),
        "negative decimals": np.array([-0.125, 3.0, -7.5]),
        "huge": np.array([1e300, 2.5]),
        "hex": ids,
        "upper hex": np.array([b"ABCDEF0123456789ABCDEF01"] * 3, dtype="S24"),
        "not hex": np.array([b"x" * 24, b"short"], dtype="S24"),
        "names": np.array(["car", "crosswalks"]),
        "scalar int": np.array(5),
        "scalar float": np.array(0.5),
        "empty": np.zeros(0, dtype=np.int64),
        "empty bits": np.zeros((4, 0), dtype=bool),
        "uint": rng.integers(0, 200, 10).astype(np.uint16),
    }
    _assert_same(unpack_arrays(pack_arrays(arrays)), arrays)


def test_a_real_table_round_trips_and_shrinks():
    import io

    gt, results = make_coco(SyntheticConfig(num_images=300, num_classes=4, crowd_rate=0.05))
    table = MatchTable.build(DetectionSet.from_coco(gt, results))
    arrays = table.to_arrays()
    blob = pack_arrays(arrays)
    back = unpack_arrays(blob)
    _assert_same(back, arrays)
    assert MatchTable.from_arrays(back).evaluate().stats == table.evaluate().stats
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    assert len(blob) < len(buffer.getvalue())


def test_other_bytes_are_refused():
    with pytest.raises(ValueError, match="not a packed table"):
        unpack_arrays(b"PK\x03\x04 an npz")
