"""A FiftyOne label field out to files that TAO (KITTI), COCO or YOLO tools train on.

When the label-quality review produced a corrected field (``<label_field>_fixed``), that is
what gets exported; the original field is only read, never changed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from detection_debugger.datasets.fiftyone_private import dataset_of
from detection_debugger.formats import (
    ImageObjects,
    ObjectRecord,
    write_class_names,
    write_coco,
    write_kitti_folder,
    write_yolo_folder,
)
from detection_debugger.formats.progress import ProgressCounter, counted
from detection_debugger.formats.relative_boxes import pixel_boxes

__all__ = [
    "EXPORT_FORMATS",
    "FIXED_SUFFIX",
    "ExportReport",
    "export_labels",
    "make_folder",
    "view_objects",
]

EXPORT_FORMATS = ("kitti", "coco", "yolo")
FIXED_SUFFIX = "_fixed"  # the corrected copy of a ground-truth field (label-quality review)
_KEPT_ATTRIBUTES = (
    "truncated",
    "occluded",
    "alpha",
    "dimensions",
    "location",
    "rotation_y",
    "area",
    "coco_id",
)


@dataclass
class ExportReport:
    output_dir: str
    format: str
    label_field: str
    images: int
    objects: int
    used_corrected_field: bool
    files: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        source = self.label_field + (" (corrected labels)" if self.used_corrected_field else "")
        return [
            f"exported {self.images} images and {self.objects} objects of {source} "
            f"as {self.format} to {self.output_dir}",
            *(f"  {f}" for f in self.files),
        ]


def view_objects(view, label_field: str) -> tuple[list[ImageObjects], dict, dict]:
    """Reads a detections field in bulk into per-image records (absolute pixel boxes).

    Returns ``(images, sizes, paths)``: records per image (stem-keyed, view order),
    ``{stem: (width, height)}`` and ``{stem: filepath}``.
    """
    view.compute_metadata()
    paths, widths, heights, detections = view.values(
        ["filepath", "metadata.width", "metadata.height", f"{label_field}.detections"]
    )
    images, sizes, by_stem = [], {}, {}
    for path, width, height, dets in zip(paths, widths, heights, detections):
        stem = Path(path).stem
        if stem in by_stem:
            raise ValueError(
                f"two samples share the file stem {stem!r} ({by_stem[stem]} and {path}); "
                "label files are named by stem, so export them separately"
            )
        by_stem[stem] = path
        sizes[stem] = (width, height)
        records = []
        dets = dets or []
        boxes = pixel_boxes([d.bounding_box for d in dets], [(width, height)] * len(dets))
        for d, (x, y, w, h) in zip(dets, boxes.tolist()):
            attributes = {k: d[k] for k in _KEPT_ATTRIBUTES if d.has_field(k) and d[k] is not None}
            records.append(
                ObjectRecord(
                    label=d.label,
                    box=(x, y, x + w, y + h),
                    score=d.confidence,
                    crowd=bool(d.has_field("iscrowd") and d["iscrowd"]),
                    attributes=attributes,
                )
            )
        images.append(ImageObjects(stem=stem, objects=records))
    return images, sizes, by_stem


# Everything an export writes: with ``overwrite`` these are removed first, so no file of an
# earlier export (a results.json, a classes.txt, the label file of an image no longer
# exported) is left beside the new one. Other files in the folder are left alone.
_EXPORT_OUTPUTS = ("images", "labels", "annotations.json", "results.json", "classes.txt")


def make_folder(folder: str | os.PathLike, for_path: str | os.PathLike | None = None) -> None:
    """Creates ``folder`` and its missing parents.

    Raises:
        FileExistsError: ``FOR_PATH: PARENT is a file, not a folder`` when the folder or one
            of its parents is a file (``for_path``: what the message names, default ``folder``).
    """
    folder = Path(folder)
    for existing in (folder, *folder.parents):
        if os.path.lexists(existing):
            if not existing.is_dir():
                raise FileExistsError(f"{for_path or folder}: {existing} is a file, not a folder")
            break
    folder.mkdir(parents=True, exist_ok=True)


def _prepare_output(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir}: exists and is not a folder: choose a folder")
    if output_dir.exists() and any(output_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{output_dir}: not empty: choose an empty folder or pass --overwrite"
            )
        for name in _EXPORT_OUTPUTS:
            path = output_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    make_folder(output_dir)


def _detections_fields(view) -> list[str]:
    import fiftyone as fo

    schema = view.get_field_schema(embedded_doc_type=fo.Detections)
    return sorted(schema)


def _check_source(view, source_field: str, paths: list[str]) -> None:
    """The field is a ``Detections`` field and every image file is there, checked before
    anything is written."""
    fields = _detections_fields(view)
    if source_field not in fields:
        what = "no label field" if not view.has_field(source_field) else "not a Detections field"
        known = ", ".join(fields) if fields else "none"
        raise ValueError(
            f"{what} {source_field!r} in {dataset_of(view).name!r} (its Detections fields: {known})"
        )
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "image of the dataset not found", path)


def _copy_images(paths: dict[str, str], image_dir: Path, counter=None) -> dict[str, str]:
    """Copies each image into ``image_dir`` (batches of 100 told to ``counter``); returns
    ``{stem: file name}``."""
    image_dir.mkdir(exist_ok=True)
    file_names = {}
    for stem, path in counted(paths.items(), counter, "copying images"):
        target = image_dir / Path(path).name
        shutil.copy2(path, target)
        file_names[stem] = target.name
    return file_names


def _class_names(images, crowd_last: bool = False) -> list[str]:
    names = sorted({o.label for im in images for o in im.objects if not o.crowd})
    if crowd_last:  # ignore regions of classes without objects still need a category
        names += sorted({o.label for im in images for o in im.objects if o.crowd} - set(names))
    return names


def _write_kitti(output: Path, images, sizes, file_names, with_score) -> list[str]:
    write_kitti_folder(output / "labels", images, with_score)
    return ["labels/"]


def _write_coco(output: Path, images, sizes, file_names, with_score) -> list[str]:
    names = _class_names(images, crowd_last=True)
    document = write_coco(images, sizes, names, file_names, with_score=False)
    (output / "annotations.json").write_text(json.dumps(document))
    if not with_score:
        return ["annotations.json"]
    scored = write_coco(images, sizes, names, file_names, with_score=True)
    (output / "results.json").write_text(json.dumps(scored["annotations"]))
    return ["annotations.json", "results.json"]


def _write_yolo(output: Path, images, sizes, file_names, with_score) -> list[str]:
    names = _class_names(images)
    write_yolo_folder(output / "labels", images, names, sizes, with_score)
    write_class_names(output / "classes.txt", names)
    return ["labels/", "classes.txt"]


_WRITERS = {"kitti": _write_kitti, "coco": _write_coco, "yolo": _write_yolo}


def export_labels(
    view,
    label_field: str,
    format: str,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    use_corrected: bool = True,
    progress=None,
) -> ExportReport:
    """Exports ``label_field`` of the samples of ``view`` with their images.

    Layouts: ``kitti``: ``images/`` + ``labels/<stem>.txt`` (15 columns; 16 with the
    confidence for predictions), TAO-ready. ``coco``: ``images/`` + ``annotations.json``
    (and ``results.json`` for predictions). ``yolo``: ``images/`` + ``labels/`` +
    ``classes.txt``.

    Args:
        view: a FiftyOne dataset or view.
        label_field: a ``Detections`` field.
        format: one of :data:`EXPORT_FORMATS`.
        output_dir: an empty (or missing) folder.
        overwrite: write into a non-empty folder (its ``images/`` and ``labels/`` are replaced).
        use_corrected: export ``<label_field>_fixed`` when the dataset has it.
        progress: a :data:`~detection_debugger.formats.progress.Progress` callback, told
            after reading the labels, each batch of 100 images copied and the label files
            written (one unit per image and step).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose from {EXPORT_FORMATS}")
    corrected = label_field + FIXED_SUFFIX
    used_corrected = bool(use_corrected and view.has_field(corrected))
    source_field = corrected if used_corrected else label_field
    filepaths = view.values("filepath")
    counter = ProgressCounter(progress, 3 * len(filepaths))
    _check_source(view, source_field, filepaths)
    counter.start("reading labels")
    images, sizes, paths = view_objects(view, source_field)
    counter.add(len(filepaths), "copying images")
    output = Path(output_dir)
    _prepare_output(output, overwrite)
    file_names = _copy_images(paths, output / "images", counter)
    counter.start(f"writing {format} labels")
    with_score = any(o.score is not None for im in images for o in im.objects)
    files = ["images/", *_WRITERS[format](output, images, sizes, file_names, with_score)]
    counter.finish("done")
    return ExportReport(
        output_dir=str(output),
        format=format,
        label_field=source_field,
        images=len(images),
        objects=sum(len(im.objects) for im in images),
        used_corrected_field=used_corrected,
        files=files,
    )
