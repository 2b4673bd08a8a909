"""Ground truth and predictions from files into a persistent FiftyOne dataset.

Two phases, so that bad input never leaves a half-written dataset: :func:`plan_import` reads
and validates every file (raising :class:`~detection_debugger.formats.FormatError` naming the
file and line, unless ``skip_invalid``), then :func:`apply_import` writes the samples and the
new label fields in bulk. Each label set goes to its own field; an existing field is never
overwritten unless asked (``replace=True``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .formats import ClassMap, FormatError, ObjectRecord, ReadReport
from .label_reading import read_label_source, resolve_auto_format

__all__ = [
    "GT_FORMATS",
    "IMAGE_EXTENSIONS",
    "PRED_FORMATS",
    "ImportPlan",
    "LabelSource",
    "apply_import",
    "existing_classes",
    "list_images",
    "plan_import",
]

GT_FORMATS = ("coco", "kitti", "yolo", "voc", "txt", "auto")
PRED_FORMATS = ("tao", "coco", "yolo", "ultralytics", "txt", "auto")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
INFO_KEY = "detection_debugger"


@dataclass(frozen=True)
class LabelSource:
    """One label set to import.

    Attributes:
        path: file (COCO, Ultralytics JSON) or folder (KITTI/TAO/YOLO/txt/VOC) of labels.
        format: one of :data:`GT_FORMATS` or :data:`PRED_FORMATS` (``auto``: recognised
            from the files, the choice noted in the report).
        field: the dataset field to write (``ground_truth``, ``predictions``...).
        predictions: whether these are predictions (confidences) or ground truth.
        class_names: YOLO class names file (line ``i`` names class ``i``); for Ultralytics
            and COCO results without COCO ground truth, it names the category ids
            (class index + 1).
        images_json: COCO/Ultralytics results only: a COCO-style JSON with ``images``
            (id, file_name) and ``categories`` joining detections to images, when there is
            no COCO ground truth in the same import.
    """

    path: str
    format: str
    field: str
    predictions: bool
    class_names: str | None = None
    images_json: str | None = None


@dataclass
class LabelPlan:
    """A validated label set, ready to write."""

    source: LabelSource
    objects: dict[str, list[ObjectRecord]]  # by image stem; only stems with an image
    report: ReadReport
    files_without_image: list[str] = field(default_factory=list)
    images_without_labels: int = 0
    unknown_classes: Counter = field(default_factory=Counter)
    classes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        objects = sum(len(v) for v in self.objects.values())
        crowd = sum(o.crowd for v in self.objects.values() for o in v)
        kind = "predictions" if self.source.predictions else "ground truth"
        lines = [
            f"{self.source.field}: {objects} objects ({kind}, {self.source.format}) "
            f"on {len(self.objects)} images" + (f", {crowd} ignore regions" if crowd else "")
        ]
        if self.files_without_image:
            shown = ", ".join(self.files_without_image[:5])
            more = "..." if len(self.files_without_image) > 5 else ""
            lines.append(
                f"  {len(self.files_without_image)} label files have no image "
                f"(not imported): {shown}{more}"
            )
        if self.images_without_labels:
            what = "detections" if self.source.predictions else "objects"
            lines.append(f"  {self.images_without_labels} images have no label file (= no {what})")
        if self.unknown_classes:
            names = ", ".join(f"{k} ({v})" for k, v in sorted(self.unknown_classes.items()))
            lines.append(f"  classes not in the ground truth (kept, reported): {names}")
        for skipped in self.report.skipped:
            lines.append(f"  skipped {skipped}")
        for note in self.report.notes:
            lines.append(f"  note: {note}")
        return lines


@dataclass
class ImportPlan:
    """Everything an import will write, validated."""

    dataset_name: str
    images: dict[str, str]  # stem -> absolute path
    labels: list[LabelPlan]

    def summary(self) -> list[str]:
        lines = [f"dataset {self.dataset_name!r}: {len(self.images)} images"]
        for plan in self.labels:
            lines.extend(plan.summary())
        return lines


def existing_classes(dataset_name: str, gt_field: str = "ground_truth") -> list[str] | None:
    """Class names already in a dataset's ground truth (None when there is none yet)."""
    import fiftyone as fo

    if not fo.dataset_exists(dataset_name):
        return None
    dataset = fo.load_dataset(dataset_name)
    if not dataset.has_field(gt_field):
        return None
    return dataset.distinct(f"{gt_field}.detections.label")


def list_images(folder: str | os.PathLike) -> dict[str, str]:
    """``{stem: absolute path}`` of the images in a folder (recursively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(str(folder), "images folder not found")
    images: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in images:
            raise FormatError(
                str(path), f"two images share the stem {path.stem!r} (also {images[path.stem]})"
            )
        images[path.stem] = str(path.resolve())
    if not images:
        raise FormatError(str(folder), f"no images ({', '.join(IMAGE_EXTENSIONS)}) found")
    return images


def plan_import(
    dataset_name: str,
    images_dir: str | os.PathLike,
    sources: list[LabelSource],
    class_map: ClassMap | None = None,
    skip_invalid: bool = False,
    known_classes: list[str] | None = None,
) -> ImportPlan:
    """Reads and validates everything an import needs; writes nothing.

    Args:
        dataset_name: the dataset to create or extend.
        images_dir: folder of the images; label files are joined to them by file stem.
        sources: label sets, ground truth first (its classes are the reference names).
        class_map: name mapping (default: case-insensitive matching only).
        skip_invalid: skip malformed lines (each is reported) instead of failing.
        known_classes: class names already in the dataset's ground truth.
    """
    class_map = class_map or ClassMap()
    images = list_images(images_dir)
    fields = [s.field for s in sources]
    if len(set(fields)) != len(fields):
        raise FormatError(str(images_dir), f"two label sets target the same field: {fields}")
    coco_join: dict = {}
    known = list(known_classes or [])
    plans = []
    for source in sorted(sources, key=lambda s: s.predictions):
        source, chosen = resolve_auto_format(source)
        read, report = read_label_source(source, images, skip_invalid, coco_join)
        if chosen:
            report.notes.insert(0, chosen)
        plan = LabelPlan(source=source, objects={}, report=report)
        for image in read:
            if image.stem not in images:
                plan.files_without_image.append(image.stem)
                continue
            mapped = []
            for record in image.objects:
                label = class_map.resolve(record.label, known)
                if label != record.label:
                    record = ObjectRecord(
                        label, record.box, record.score, record.crowd, record.attributes,
                        record.source,
                    )  # fmt: skip
                mapped.append(record)
            plan.objects[image.stem] = mapped
        plan.images_without_labels = len(set(images) - set(plan.objects))
        labels = Counter(o.label for v in plan.objects.values() for o in v if not o.crowd)
        if source.predictions:
            if known:
                plan.unknown_classes = Counter(
                    {k: v for k, v in labels.items() if k not in set(known)}
                )
        else:
            known = sorted(set(known) | set(labels))
        plan.classes = sorted(labels)
        plans.append(plan)
    return ImportPlan(dataset_name=dataset_name, images=images, labels=plans)


def _detection_doc(record: ObjectRecord, width: int, height: int) -> dict:
    """A ``fo.Detection`` in FiftyOne's stored form (what ``Detection.to_mongo()`` gives):
    building documents directly is ~50x faster than constructing label objects."""
    from bson import ObjectId

    x1, y1, x2, y2 = record.box
    doc = {
        "_id": ObjectId(),
        "_cls": "Detection",
        "tags": [],
        "label": record.label,
        "bounding_box": [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height],
        "confidence": record.score,
        **record.attributes,
    }
    if record.crowd:
        doc["iscrowd"] = True
    return doc


def _declare_field(dataset, field: str, plan: LabelPlan) -> None:
    """Declares the ``Detections`` field and the attributes its objects carry."""
    import fiftyone as fo

    if not dataset.has_field(field):
        dataset.add_sample_field(field, fo.EmbeddedDocumentField, embedded_doc_type=fo.Detections)
    kinds: dict[str, type] = {}
    for records in plan.objects.values():
        for record in records:
            for key, value in record.attributes.items():
                kinds.setdefault(key, type(value))
            if record.crowd:
                kinds.setdefault("iscrowd", bool)
    field_types = {
        bool: fo.BooleanField,
        int: fo.IntField,
        float: fo.FloatField,
        str: fo.StringField,
    }
    for key, kind in kinds.items():
        path = f"{field}.detections.{key}"
        if dataset.has_field(path):
            continue
        if kind is list:
            dataset.add_sample_field(path, fo.ListField, subfield=fo.FloatField)
        else:
            dataset.add_sample_field(path, field_types.get(kind, fo.StringField))


def apply_import(plan: ImportPlan, replace: bool = False, progress: bool = True):
    """Writes a validated plan: creates/extends the dataset, adds the label fields.

    Raises:
        ValueError: a target field exists and ``replace`` is False (nothing is written).

    Returns:
        The dataset.
    """
    import fiftyone as fo
    import fiftyone.core.utils as fou

    exists = fo.dataset_exists(plan.dataset_name)
    dataset = fo.load_dataset(plan.dataset_name) if exists else None
    if dataset is not None and not replace:
        taken = [p.source.field for p in plan.labels if dataset.has_field(p.source.field)]
        if taken:
            raise ValueError(
                f"dataset {plan.dataset_name!r} already has field(s) {', '.join(taken)}: "
                "choose another field name (--pred-field) or pass --replace"
            )
    if dataset is None:
        dataset = fo.Dataset(plan.dataset_name, persistent=True)

    # Samples for images not in the dataset yet, with their metadata (sizes from the files).
    existing = set(dataset.values("filepath")) if len(dataset) else set()
    new = [path for path in plan.images.values() if path not in existing]
    if new:
        samples = []
        with fou.ProgressBar(total=len(new), progress=progress) as bar:
            for path in bar(new):
                samples.append(fo.Sample(filepath=path, metadata=fo.ImageMetadata.build_for(path)))
        dataset.add_samples(samples, progress=progress)
        # Live Sample objects are reloaded by every later bulk write: let them go.
        del samples
    dataset.compute_metadata(progress=progress)  # samples added by others may lack it
    paths = list(plan.images.values())
    view = dataset.select_by("filepath", paths)
    filepaths, widths, heights = view.values(["filepath", "metadata.width", "metadata.height"])
    size_of = dict(zip(filepaths, zip(widths, heights)))

    info = dict(dataset.info.get(INFO_KEY, {}))
    imports = dict(info.get("imports", {}))
    for label_plan in plan.labels:
        _declare_field(dataset, label_plan.source.field, label_plan)
        values = {}
        with fou.ProgressBar(total=len(plan.images), progress=progress) as bar:
            for stem in bar(plan.images):
                path = plan.images[stem]
                width, height = size_of[path]
                records = label_plan.objects.get(stem, [])
                values[path] = {
                    "_cls": "Detections",
                    "detections": [_detection_doc(r, width, height) for r in records],
                }
        # Documents are built above in FiftyOne's stored form, so validation is not needed.
        dataset.set_values(label_plan.source.field, values, key_field="filepath", validate=False)
        source = label_plan.source
        imports[source.field] = {
            "path": os.path.abspath(source.path),
            "format": source.format,
            "predictions": source.predictions,
            "imported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "objects": sum(len(v) for v in label_plan.objects.values()),
            "classes": label_plan.classes,
            "skipped_lines": [str(s) for s in label_plan.report.skipped],
            "files_without_image": label_plan.files_without_image,
            "images_without_labels": label_plan.images_without_labels,
            "unknown_classes": dict(label_plan.unknown_classes),
            "notes": list(label_plan.report.notes),
        }
    info["imports"] = imports
    dataset.info[INFO_KEY] = info
    dataset.save()
    return dataset
