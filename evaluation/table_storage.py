"""Compact bytes for a match table's arrays: small to store, fast to decode.

A run's table holds, per prediction, ten IoU thresholds times four area ranges of match
flags and matched rows, plus ids, classes and boxes: 74 MB of plain arrays at 5,000 images,
1.5 GB at 100,000. Compressing that with zlib takes seconds and is undone on every load.
Here each array is stored in the smallest exact form its values allow, then the whole is
compressed once, at zlib's fastest level:

- booleans as bits (``np.packbits``);
- integers in the narrowest type that holds their range; ``0..n-1`` as its length alone;
- an array equal along an axis (the area ranges often match alike) as one slice of it;
- an integer array that is mostly one value (unmatched rows, ``-1``) as the positions and
  values of the others;
- floats written with few decimals (pixel boxes, confidences) as integers, exactly;
- 24-character hexadecimal ids as their 12 bytes;
- anything else as it is.

:func:`unpack_arrays` inverts :func:`pack_arrays` exactly (same values, dtypes and shapes).
"""

from __future__ import annotations

import json
import zlib

import numpy as np

__all__ = ["pack_arrays", "unpack_arrays"]

_MAGIC = b"DDTABLE1"
_SPARSE_SHARE = 0.75  # an integer array stored sparse when this share is one value
_INT_TYPES = (np.int8, np.int16, np.int32, np.int64)


def _encode(array: np.ndarray, buffers: list[bytes]) -> dict:  # long: one branch per form
    """The description of ``array`` (its buffers appended to ``buffers``)."""
    meta = {"dtype": array.dtype.str, "shape": list(array.shape)}

    def put(values: np.ndarray) -> int:
        buffers.append(np.ascontiguousarray(values).tobytes())
        return len(buffers) - 1

    if array.dtype == np.bool_:
        return {**meta, "kind": "bits", "buffer": put(np.packbits(array.ravel()))}
    if array.dtype.kind in "iu" and array.size:
        flat = array.ravel()
        if array.ndim == 1 and flat[0] == 0 and np.array_equal(flat, np.arange(len(flat))):
            return {**meta, "kind": "arange"}
        if array.ndim >= 2 and array.shape[1] > 1 and (array == array[:, :1]).all():
            return {**meta, "kind": "repeat_axis1", "slice": _encode(array[:, :1], buffers)}
        values, counts = np.unique(flat[: min(len(flat), 100_000)], return_counts=True)
        common = values[np.argmax(counts)]
        others = np.flatnonzero(flat != common)
        if len(others) <= (1 - _SPARSE_SHARE) * len(flat):
            return {
                **meta,
                "kind": "sparse",
                "fill": int(common),
                "positions": _encode(others.astype(np.int64), buffers),
                "values": _encode(flat[others], buffers),
            }
        low, high = int(flat.min()), int(flat.max())
        narrow = next(t for t in _INT_TYPES if np.iinfo(t).min <= low and high <= np.iinfo(t).max)
        if np.dtype(narrow).itemsize < array.dtype.itemsize:
            narrow_flat = flat.astype(narrow)
            return {
                **meta,
                "kind": "narrow",
                "as": narrow_flat.dtype.str,
                "buffer": put(narrow_flat),
            }
    if array.dtype == np.float64 and array.size:
        places = _decimal_places(array)
        if places is not None:
            scaled = np.round(array * 10.0**places).astype(np.int64)
            return {**meta, "kind": "decimal", "places": places, "ints": _encode(scaled, buffers)}
    if array.dtype.kind == "S" and array.dtype.itemsize == 24 and array.ndim == 1:
        try:
            joined = b"".join(array.tolist())
            raw = bytes.fromhex(joined.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raw = None
        if raw is not None and len(raw) == 12 * len(array) and raw.hex().encode() == joined:
            return {**meta, "kind": "hex", "buffer": put(np.frombuffer(raw, dtype=np.uint8))}
    if array.dtype.hasobject:
        raise TypeError("object arrays are not stored")
    return {**meta, "kind": "raw", "buffer": put(array)}


def _decimal_places(array: np.ndarray) -> int | None:
    """The fewest decimals (at most 6) that write every value of ``array`` exactly: pixel
    boxes and confidences come from text files. None when there are none (computed IoUs)."""
    finite = np.isfinite(array).all()
    if not finite or np.abs(array).max() >= 2**31 / 10**6:
        return None
    for places in range(7):
        scale = 10.0**places
        if np.array_equal(np.round(array * scale) / scale, array):
            return places
    return None


def _decode(meta: dict, buffers: list[memoryview]) -> np.ndarray:
    dtype, shape, kind = np.dtype(meta["dtype"]), tuple(meta["shape"]), meta["kind"]
    size = int(np.prod(shape)) if shape else 1
    if kind == "bits":
        bits = np.frombuffer(buffers[meta["buffer"]], dtype=np.uint8)
        return np.unpackbits(bits, count=size).astype(bool).reshape(shape)
    if kind == "arange":
        return np.arange(size, dtype=dtype).reshape(shape)
    if kind == "repeat_axis1":
        part = _decode(meta["slice"], buffers)
        return np.repeat(part, shape[1], axis=1).reshape(shape)
    if kind == "sparse":
        out = np.full(size, meta["fill"], dtype=dtype)
        out[_decode(meta["positions"], buffers)] = _decode(meta["values"], buffers)
        return out.reshape(shape)
    if kind == "decimal":
        return (_decode(meta["ints"], buffers) / 10.0 ** meta["places"]).reshape(shape)
    if kind == "narrow":
        values = np.frombuffer(buffers[meta["buffer"]], dtype=np.dtype(meta["as"]))
        return values.astype(dtype).reshape(shape)
    if kind == "hex":
        raw = np.frombuffer(buffers[meta["buffer"]], dtype=np.uint8).tobytes()
        return np.frombuffer(raw.hex().encode("ascii"), dtype=dtype).copy().reshape(shape)
    return np.frombuffer(buffers[meta["buffer"]], dtype=dtype).copy().reshape(shape)


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as compact bytes (see the module doc)."""
    buffers: list[bytes] = []
    index = {name: _encode(np.asarray(array), buffers) for name, array in arrays.items()}
    header = json.dumps({"arrays": index, "sizes": [len(b) for b in buffers]}).encode()
    body = b"".join([len(header).to_bytes(8, "little"), header, *buffers])
    return _MAGIC + zlib.compress(body, 1)


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays :func:`pack_arrays` stored, exactly.

    Raises:
        ValueError: ``blob`` was not made by :func:`pack_arrays`.
    """
    if not blob.startswith(_MAGIC):
        raise ValueError("not a packed table")
    body = memoryview(zlib.decompress(blob[len(_MAGIC) :]))
    length = int.from_bytes(body[:8], "little")
    header = json.loads(bytes(body[8 : 8 + length]))
    buffers, offset = [], 8 + length
    for size in header["sizes"]:
        buffers.append(body[offset : offset + size])
        offset += size
    return {name: _decode(meta, buffers) for name, meta in header["arrays"].items()}
