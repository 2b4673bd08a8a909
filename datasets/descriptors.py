"""Descriptors of every object and image, computed once and stored as FiftyOne fields.

:func:`compute_descriptors` reads each image once and writes, on every object of the given
``Detections`` fields, the box and pixel descriptors of
:mod:`detection_debugger.evaluation.descriptors` as attributes ``dd_<name>`` (``dd_size``,
``dd_contrast``...), and on every sample ``dd_image_brightness``, ``dd_image_contrast``,
``dd_image_sharpness`` and ``dd_num_objects``; users can filter and sort on them in the App.
:func:`ensure_descriptors` computes them only where they are missing (a cache).

:func:`run_descriptors` gathers, for an evaluation run, every descriptor of its objects in
the run's row order: the stored ones, KITTI's ``truncated``/``occluded`` attributes, the
user's sample fields (numbers, strings, booleans), tags and image size, and, when a CLIP
index of the ground truth exists (``clip_<gt_field>``), clusters of the object patches
(k-means). Evaluation fields, label-issue tags and fields marked with
:func:`exclude_from_discovery` (the demo's scene attributes) are left out.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import fiftyone as fo
import numpy as np

from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.datasets.issue_fields import ISSUE_TAG_PREFIX, declare_attribute
from detection_debugger.datasets.object_writes import split_per_sample, write_object_attributes
from detection_debugger.datasets.runs import DebuggerResults
from detection_debugger.evaluation.descriptors import (
    BOX_DESCRIPTORS,
    PIXEL_DESCRIPTORS,
    ImageTables,
    assign_clusters,
    box_descriptors,
    image_statistics,
    kmeans,
    patch_statistics,
)
from detection_debugger.evaluation.slice_discovery import OBJECTS, Descriptor

__all__ = [
    "PREFIX",
    "compute_descriptors",
    "ensure_descriptors",
    "compute_clip_clusters",
    "exclude_from_discovery",
    "run_descriptors",
    "stored_descriptors_cover",
    "cached_arrays",
]

PREFIX = "dd_"  # stored descriptors: dd_<name>
OBJECT_NAMES = BOX_DESCRIPTORS + PIXEL_DESCRIPTORS
IMAGE_NAMES = ("image_brightness", "image_contrast", "image_sharpness", "num_objects")
EXCLUDE_MARK = "exclude_from_discovery"  # in a field's info
KITTI_ATTRIBUTES = ("truncated", "occluded")
CLIP_CLUSTERS = 8
TEXTS = {
    "size": "box size (sqrt of image share)",
    "aspect": "aspect log2(w/h)",
    "center_x": "horizontal position",
    "center_y": "vertical position",
    "at_border": "touches the image border",
    "overlap": "share covered by another object",
    "brightness": "patch brightness - image brightness",
    "contrast": "patch contrast / image contrast",
    "sharpness": "patch sharpness / image sharpness",
    "image_brightness": "image brightness",
    "image_contrast": "image contrast",
    "image_sharpness": "image sharpness",
    "num_objects": "objects in the image",
}


def exclude_from_discovery(dataset, fields) -> None:
    """Marks sample fields never to slice by (e.g. generated scene attributes)."""
    for name in fields:
        field = dataset.get_field(name)
        field.info = {**(field.info or {}), EXCLUDE_MARK: True}
        field.save()


def _gray(filepath: str) -> np.ndarray:
    from PIL import Image

    with Image.open(filepath) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def _objects(dataset, field: str) -> tuple[list, list]:
    ids, boxes = dataset.values([f"{field}.detections.id", f"{field}.detections.bounding_box"])
    return [list(v or []) for v in ids], [list(v or []) for v in boxes]


def _pixels(boxes: list, width: float, height: float) -> np.ndarray:
    return (np.asarray(boxes, np.float64).reshape(-1, 4) * [width, height, width, height]).reshape(
        -1, 4
    )


# long: one pass over the images (pixels), then the geometry and the bulk writes
def compute_descriptors(
    dataset, fields: list[str], gt_field: str, progress: Callable | None = None
) -> None:
    """Computes and stores the descriptors of every object of ``fields`` (``gt_field``'s
    objects are the occluders of the overlap descriptor) and of every image.

    Args:
        progress: called as ``progress(done, total)`` while images are read.
    """
    dataset = dataset_of(dataset)
    if dataset.exists("metadata", False).count():
        dataset.compute_metadata()
    sample_ids, paths, widths, heights = dataset.values(
        ["id", "filepath", "metadata.width", "metadata.height"]
    )
    objects = {f: _objects(dataset, f) for f in dict.fromkeys([gt_field, *fields])}
    sizes = np.array([widths, heights], dtype=np.float64).T
    per_object = {f: {n: [] for n in PIXEL_DESCRIPTORS} for f in objects}
    per_image = {n: [] for n in IMAGE_NAMES}
    for i, path in enumerate(paths):
        tables = ImageTables.of(_gray(path))
        for name, value in image_statistics(tables).items():
            per_image[name].append(value)
        per_image["num_objects"].append(len(objects[gt_field][1][i]))
        for f, (_, boxes) in objects.items():
            stats = patch_statistics(tables, _pixels(boxes[i], *sizes[i]))
            for name, values in stats.items():
                per_object[f][name].append(values.tolist())
        if progress is not None:
            progress(i + 1, len(paths))
    gt_boxes, gt_image = _flat_pixels(objects[gt_field][1], sizes)
    for f, (_ids, boxes) in objects.items():
        flat, image = _flat_pixels(boxes, sizes)
        exclude = (
            np.arange(len(flat)) if f == gt_field else _best_gt(flat, image, gt_boxes, gt_image)
        )
        geometry = box_descriptors(flat, image, sizes, gt_boxes, gt_image, exclude)
        for name, values in geometry.items():
            per_object[f][name] = split_per_sample(values, image, len(paths))
        for name in per_object[f]:
            declare_attribute(dataset, f"{f}.detections.{PREFIX}{name}", "float")
        write_object_attributes(
            dataset, f, sample_ids, {PREFIX + n: v for n, v in per_object[f].items()}
        )
    for name, values in per_image.items():
        dataset.set_values(PREFIX + name, values)
    _drop_cache(dataset)


def _flat_pixels(boxes: list, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = [len(b) for b in boxes]
    image = np.repeat(np.arange(len(boxes)), counts)
    flat = np.array([b for per in boxes for b in per], dtype=np.float64).reshape(-1, 4)
    return flat * np.concatenate([sizes[image], sizes[image]], axis=1), image


def _best_gt(boxes, image, gt_boxes, gt_image) -> np.ndarray:
    """For each box the ground-truth row it overlaps most in its image (-1: none): a
    prediction's own object is not an occluder."""
    out = np.full(len(boxes), -1)
    by_image: dict[int, list[int]] = {}
    for row, i in enumerate(gt_image.tolist()):
        by_image.setdefault(i, []).append(row)
    for i, rows in by_image.items():
        mine = np.flatnonzero(image == i)
        if not len(mine):
            continue
        a, b = boxes[mine][:, None, :], gt_boxes[rows][None, :, :]
        iw = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(
            a[..., 0], b[..., 0]
        )
        ih = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(
            a[..., 1], b[..., 1]
        )
        inter = np.maximum(iw, 0) * np.maximum(ih, 0)
        iou = inter / np.maximum(a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter, 1e-9)
        pick = np.argmax(iou, axis=1)
        has = iou[np.arange(len(mine)), pick] > 0
        out[mine[has]] = np.asarray(rows)[pick[has]]
    return out


def _missing(dataset, field: str) -> bool:
    """Whether some object of ``field`` (or some sample) lacks the stored descriptors."""
    if not dataset.has_field(PREFIX + IMAGE_NAMES[0]):
        return True
    if dataset.count(PREFIX + IMAGE_NAMES[0]) < len(dataset):
        return True
    return dataset.count(f"{field}.detections.{PREFIX}contrast") < dataset.count(
        f"{field}.detections"
    )


def ensure_descriptors(dataset, fields: list[str], gt_field: str, progress=None) -> bool:
    """Computes the descriptors unless every object of ``fields`` has them already.
    Returns True when it computed them."""
    dataset = dataset_of(dataset)
    if not descriptors_missing(dataset, fields, gt_field):
        return False
    compute_descriptors(dataset, fields, gt_field, progress)
    return True


def descriptors_missing(dataset, fields: list[str], gt_field: str) -> bool:
    """Whether some sample or some object of ``gt_field`` and ``fields`` lacks the stored
    descriptors (:func:`ensure_descriptors` would compute them)."""
    dataset = dataset_of(dataset)
    return any(_missing(dataset, f) for f in dict.fromkeys([gt_field, *fields]))


# ---------------------------------------------------------------- a run's descriptors


CACHE_RUN = "dd_descriptors"  # a run keeping the stored object descriptors as arrays
CLUSTER = PREFIX + "clip_cluster"


def _object_names() -> list[str]:
    return [PREFIX + n for n in OBJECT_NAMES] + list(KITTI_ATTRIBUTES) + [CLUSTER]


def _read_columns(dataset, field: str) -> dict[str, np.ndarray]:
    """Every object's stored descriptors of ``field``, read from the samples: ``id``
    (``S24``), numbers as float64 (NaN: none), the CLIP cluster as text ("": none)."""
    present = [n for n in _object_names() if dataset.has_field(f"{field}.detections.{n}")]
    columns = dataset.values(
        [f"{field}.detections.id"] + [f"{field}.detections.{n}" for n in present]
    )
    out = {"id": np.array([i for per in columns[0] for i in (per or [])], dtype="S24")}
    for name, per_sample in zip(present, columns[1:]):
        flat = [v for per in per_sample for v in (per or [])]
        if name == CLUSTER:
            out[name] = np.array(["" if v is None else str(v) for v in flat], dtype=str)
        else:
            out[name] = np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
    return out


def _encode(arrays: dict) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return base64.b64encode(buffer.getvalue()).decode()


def _decode(text: str) -> dict:
    with np.load(io.BytesIO(base64.b64decode(text))) as arrays:
        return dict(arrays)


def cached_arrays(dataset) -> dict[str, dict[str, np.ndarray]]:
    """The run :data:`CACHE_RUN`'s stored object descriptors, decoded: ``{field: {name:
    array}}`` (empty without the run). One read of the document, for :func:`run_descriptors`
    and :func:`stored_descriptors_cover` to share."""
    if not dataset.has_run(CACHE_RUN):
        return {}
    stored = getattr(dataset.load_run_results(CACHE_RUN, cache=False), "fields", {}) or {}
    return {field: _decode(text) for field, text in stored.items()}


def _columns(dataset, field: str, wanted_ids: np.ndarray, cached: dict) -> dict[str, np.ndarray]:
    """:func:`_read_columns`, kept in the run :data:`CACHE_RUN` (one document instead of
    one read of every object's attributes; ``cached``: :func:`cached_arrays`); read again
    when an object of ``wanted_ids`` is not in it. Computing descriptors drops the cache."""
    arrays = cached.get(field)
    if arrays is not None and np.isin(wanted_ids, arrays["id"]).all():
        return arrays
    if not dataset.has_run(CACHE_RUN):
        dataset.register_run(CACHE_RUN, dataset.init_run(version=1))
    arrays = _read_columns(dataset, field)
    cached[field] = arrays
    stored = {name: _encode(columns) for name, columns in cached.items()}
    dataset.save_run_results(CACHE_RUN, dataset.init_run_results(CACHE_RUN, fields=stored))
    return arrays


def stored_descriptors_cover(dataset, results: DebuggerResults, cached=None) -> bool:
    """Whether the cached document holds every object of the run (both fields): the
    descriptors were computed for them, nothing needs counting. ``cached``:
    :func:`cached_arrays` when the caller has read them."""
    cached = cached_arrays(dataset) if cached is None else cached
    config = results.config
    for side, field in (("gt", config.gt_field), ("pred", config.pred_field)):
        arrays = cached.get(field, {})
        if PREFIX + "contrast" not in arrays:  # cached before the descriptors existed
            return False
        if not np.isin(results.label_ids(side), arrays["id"]).all():
            return False
    return True


def _drop_cache(dataset) -> None:
    if dataset.has_run(CACHE_RUN):
        dataset.delete_run(CACHE_RUN)


def _object_values(results: DebuggerResults, side: str, columns: dict) -> dict:
    """The cached columns in the run's ``side`` row order (NaN / "" where unknown)."""
    data = results.table().data
    size = len(data.gt_ids if side == "gt" else data.pred_ids)
    rows = results.label_positions(side, columns["id"])
    known = rows >= 0
    out = {}
    for name, column in columns.items():
        if name == "id":
            continue
        values = np.full(size, "" if column.dtype.kind == "U" else np.nan, dtype=column.dtype)
        values[rows[known]] = column[known]
        out[name] = values
    return out


def _stored_object_descriptors(dataset, results, cached: dict) -> list[Descriptor]:
    config = results.config
    sides = {}
    for side, field in (("gt", config.gt_field), ("pred", config.pred_field)):
        columns = _columns(dataset, field, results.label_ids(side), cached)
        sides[side] = _object_values(results, side, columns)
    gt, pred = sides["gt"], sides["pred"]
    size = len(results.table().data.pred_ids)
    out = []
    for name in _object_names():
        if name not in gt:
            continue
        short = name.removeprefix(PREFIX)
        categories = None
        if name == CLUSTER:
            pred_values = pred.get(name, np.full(size, "", dtype=str))
            categories = tuple(sorted(set(gt[name].tolist()) - {""}))
            gt_v, pred_v = _codes(gt[name], categories), _codes(pred_values, categories)
        else:
            gt_v, pred_v = gt[name], pred.get(name, np.full(size, np.nan))
        text = TEXTS.get(short, f"KITTI {short}" if name in KITTI_ATTRIBUTES else short)
        out.append(Descriptor(short, OBJECTS, gt_v, pred_v, categories, name, text))
    return out


def _numeric(values: np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _categorical(values, categories: tuple[str, ...]) -> np.ndarray:
    index = {c: i for i, c in enumerate(categories)}
    return np.array([index.get(None if v is None else str(v), -1) for v in values], np.int64)


def _codes(values: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``categories``, -1 for the others."""
    order = np.array(categories, dtype=str)
    if not len(order):
        return np.full(len(values), -1, np.int64)
    pos = np.minimum(np.searchsorted(order, values), len(order) - 1)
    return np.where(order[pos] == values, pos, -1).astype(np.int64)


def _excluded(dataset, name: str, field) -> bool:
    if name.startswith("_") or name in ("id", "filepath", "tags", "metadata"):
        return True
    if (getattr(field, "info", None) or {}).get(EXCLUDE_MARK):
        return True
    keys = list(dataset.list_evaluations()) + list(dataset.list_runs())
    return any(name == k or name.startswith(k + "_") for k in keys)


def _image_columns(dataset, exclude) -> dict[str, tuple[str, object]]:
    """The sample fields to slice by: ``{path: (kind, field)}``, kind numeric/bool/string."""
    kinds = {fo.IntField: "numeric", fo.FloatField: "numeric", fo.BooleanField: "bool"}
    kinds[fo.StringField] = "string"
    out = {}
    for name, field in dataset.get_field_schema().items():
        kind = kinds.get(type(field))
        if kind and name not in exclude and not _excluded(dataset, name, field):
            out[name] = (kind, field)
    for name in ("metadata.width", "metadata.height"):
        out[name] = ("numeric", None)
    return out


# long: one read of the sample fields, then one descriptor per usable column (kind by kind)
def _image_descriptors(dataset, results, exclude=()) -> list[Descriptor]:
    table = results.table()
    columns = _image_columns(dataset, exclude)
    paths = list(columns)
    values = dataset.values(["id", "tags", *paths])
    position = {sid: i for i, sid in enumerate(results.sample_ids)}
    rows = np.array([position.get(sid, -1) for sid in values[0]])

    def per_image(column) -> np.ndarray:
        out = np.full(table.data.num_images, None, dtype=object)
        for row, value in zip(rows.tolist(), column):
            if row >= 0:
                out[row] = value
        return out

    out = []
    for path, column in zip(paths, values[2:]):
        kind, _ = columns[path]
        image = per_image(column)
        name = path.removeprefix(PREFIX)
        text = TEXTS.get(name, path)
        if kind == "numeric":
            numbers = _numeric(image)
            if len(np.unique(numbers[np.isfinite(numbers)])) > 1:
                out.append(Descriptor.of_images(name, numbers, table, field=path, text=text))
            continue
        categories = tuple(sorted({str(v) for v in image if v is not None}))
        if 2 <= len(categories) <= 20:
            codes = _categorical(image, categories)
            out.append(
                Descriptor.of_images(
                    name, codes, table, categories=categories, field=path, text=text
                )
            )
    tags = per_image(values[1])
    counts: dict[str, int] = {}
    for per in tags:
        for tag in set(per or ()):
            counts[tag] = counts.get(tag, 0) + 1
    for tag, count in sorted(counts.items()):
        if tag.startswith(ISSUE_TAG_PREFIX) or not 0.02 <= count / len(tags) <= 0.98:
            continue
        codes = np.array([int(tag in (per or ())) for per in tags], np.int64)
        out.append(
            Descriptor.of_images(
                f"tag:{tag}",
                codes,
                table,
                categories=("without", "with"),
                field="tags",
                text=f"tag {tag}",
            )
        )
    return out


def run_descriptors(
    dataset, results: DebuggerResults, exclude=(), cached: dict | None = None
) -> list[Descriptor]:
    """Every descriptor of the run's objects, in the run's row order (see the module);
    ``cached``: :func:`cached_arrays` when the caller has read them."""
    dataset = dataset_of(dataset)
    cached = cached_arrays(dataset) if cached is None else cached
    return _stored_object_descriptors(dataset, results, cached) + _image_descriptors(
        dataset, results, exclude
    )


def compute_clip_clusters(dataset, gt_field: str, pred_field: str, k: int = CLIP_CLUSTERS) -> bool:
    """Clusters the CLIP embeddings of ``gt_field``'s objects (the index ``clip_<gt_field>``)
    into ``k`` groups and stores each object's as ``dd_clip_cluster``; predictions get the
    nearest cluster when ``clip_<pred_field>`` exists. False when there is no index."""
    dataset = dataset_of(dataset)
    key = f"clip_{gt_field}"
    if not dataset.has_brain_run(key):
        return False
    index = dataset.load_brain_results(key)
    labels, centroids = kmeans(np.asarray(index.embeddings), k)
    by_field = {gt_field: dict(zip(index.label_ids, labels.tolist()))}
    if dataset.has_brain_run(f"clip_{pred_field}"):
        pred_index = dataset.load_brain_results(f"clip_{pred_field}")
        assigned = assign_clusters(np.asarray(pred_index.embeddings), centroids)
        by_field[pred_field] = dict(zip(pred_index.label_ids, assigned.tolist()))
    for field, clusters in by_field.items():
        declare_attribute(dataset, f"{field}.detections.{PREFIX}clip_cluster", "str")
        ids = dataset.values(f"{field}.detections.id")
        values = [
            [None if i not in clusters else f"cluster {clusters[i]}" for i in per or []]
            for per in ids
        ]
        write_object_attributes(
            dataset, field, dataset.values("id"), {PREFIX + "clip_cluster": values}
        )
    _drop_cache(dataset)
    return True
