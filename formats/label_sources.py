"""One label set (a :class:`LabelSource`) read into
per-image records: the reader of each format, ``auto`` format recognition, and the joins a
results file needs (COCO ids and categories, or file stems and class names).

Pure file reading (images are opened only for their sizes): nothing here imports FiftyOne.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from detection_debugger.formats import (
    FormatError,
    ImageObjects,
    ReadReport,
    coco_category_names,
    coco_image_stems,
    detect_format,
    read_class_names,
    read_coco_objects,
    read_coco_result_objects,
    read_corner_txt_folder,
    read_json,
    read_kitti_folder,
    read_ultralytics_predictions,
    read_voc_folder,
    read_yolo_folder,
)
from detection_debugger.formats.image_headers import header_size

GT_FORMATS = ("coco", "kitti", "yolo", "voc", "txt", "auto")
PRED_FORMATS = ("tao", "coco", "yolo", "ultralytics", "txt", "auto")


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


def read_image_info(images: dict[str, str]) -> dict[str, dict]:
    """``{stem: ImageMetadata fields}`` from each image's header; an image that cannot be
    read (zero bytes, corrupt, not an image) raises :class:`FormatError` naming it, before
    anything is written."""
    import mimetypes

    from PIL import Image

    info = {}
    mime_types: dict[str, str] = {}  # by extension: guess_type costs more than the header
    for stem, path in images.items():
        try:
            size = header_size(path)  # JPEG and PNG; None: PIL reads (and judges) it
            if size is None:
                with Image.open(path) as image:
                    size = (*image.size, len(image.getbands()))
            width, height, channels = size
        except Image.UnidentifiedImageError:
            empty = os.path.getsize(path) == 0
            reason = "an empty file" if empty else "not an image format PIL reads, or corrupt"
            raise FormatError(path, f"cannot read the image ({reason})") from None
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise FormatError(path, f"cannot read the image ({reason})") from None
        extension = os.path.splitext(path)[1].lower()
        if extension not in mime_types:
            mime_types[extension] = mimetypes.guess_type(path)[0] or "image"
        info[stem] = {
            "size_bytes": os.path.getsize(path),
            "mime_type": mime_types[extension],
            "width": width,
            "height": height,
            "num_channels": channels,
        }
    return info


__all__ = [
    "GT_FORMATS",
    "PRED_FORMATS",
    "LabelSource",
    "read_image_info",
    "read_label_source",
    "resolve_auto_format",
]

Read = tuple[list[ImageObjects], ReadReport]


def resolve_auto_format(source: LabelSource) -> tuple[LabelSource, str | None]:
    """``source`` with ``format="auto"`` replaced by the recognised format, and a note
    saying which format was chosen and why (None when the format was given)."""
    if source.format != "auto":
        return source, None
    chosen, why = detect_format(source.path, source.predictions)
    return dataclasses.replace(source, format=chosen), f"format auto: {chosen} ({why})"


def _image_sizes(images: dict[str, str], stems) -> dict[str, tuple[int, int]]:
    """``{stem: (width, height)}`` read from the image headers; an unreadable image raises
    :class:`FormatError` naming it (the same check as every import's, see
    :func:`read_image_info`)."""

    info = read_image_info({stem: images[stem] for stem in stems})
    return {stem: (i["width"], i["height"]) for stem, i in info.items()}


def _ground_truth_only(source: LabelSource, what: str) -> None:
    if source.predictions:
        raise FormatError(source.path, f"{what} is a ground-truth format, not predictions")


def _predictions_only(source: LabelSource, what: str) -> None:
    if not source.predictions:
        raise FormatError(source.path, f"{what} is a predictions format, not ground truth")


def _read_kitti(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    return read_kitti_folder(source.path, source.predictions, skip_invalid, progress)


def _read_yolo(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    if not source.class_names:
        raise FormatError(source.path, "YOLO labels need a class names file (--class-names)")
    names = read_class_names(source.class_names)
    folder = Path(source.path)
    stems = [p.stem for p in folder.glob("*.txt") if p.stem in images] if folder.is_dir() else []
    return read_yolo_folder(
        folder, names, _image_sizes(images, stems), source.predictions, skip_invalid, progress
    )


def _read_corner_txt(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    return read_corner_txt_folder(source.path, source.predictions, skip_invalid, progress)


def _read_voc(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    _ground_truth_only(source, "Pascal VOC")
    return read_voc_folder(source.path, skip_invalid, progress)


def _read_coco(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    if source.predictions:
        return _read_coco_results(source, images, skip_invalid, coco_join)
    objects, report, stems, names = read_coco_objects(source.path, skip_invalid)
    coco_join.update(stems=stems, names=names)
    return objects, report


def _coco_tables(source: LabelSource, coco_join: dict):
    """``({image id: stem}, {category id: name})`` from ``--images-json`` or the COCO ground
    truth of the same import; None without either."""
    if source.images_json:
        data = read_json(source.images_json)
        if not isinstance(data, dict):
            raise FormatError(source.images_json, "expected an object with 'images'")
        return (
            coco_image_stems(data, source.images_json),
            coco_category_names(data, source.images_json),
        )
    if coco_join:
        return coco_join["stems"], coco_join["names"]
    return None


def _read_coco_results(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    tables = _coco_tables(source, coco_join)
    if tables is not None:
        return read_coco_result_objects(source.path, *tables, skip_invalid)
    if not source.class_names:
        raise FormatError(
            source.path,
            "COCO results need COCO ground truth in the same import or --images-json "
            "(a JSON with 'images' [{id, file_name}] and 'categories' [{id, name}]); "
            "when the image ids are file stems or names, --class-names is enough "
            "(category id = class index + 1)",
        )
    objects, report = read_ultralytics_predictions(
        source.path, images, read_class_names(source.class_names), None, skip_invalid
    )
    report.notes.insert(0, "no COCO ground truth: image ids joined to the image file stems")
    return objects, report


def _read_ultralytics(
    source: LabelSource, images, skip_invalid: bool, coco_join: dict, progress=None
) -> Read:
    _predictions_only(source, "Ultralytics predictions.json")
    tables = _coco_tables(source, coco_join)
    categories = tables[1] if tables is not None else None
    names = None
    if categories is None and source.class_names:
        names = read_class_names(source.class_names)
    return read_ultralytics_predictions(source.path, images, names, categories, skip_invalid)


_READERS = {
    "kitti": _read_kitti,
    "tao": _read_kitti,
    "yolo": _read_yolo,
    "txt": _read_corner_txt,
    "voc": _read_voc,
    "coco": _read_coco,
    "ultralytics": _read_ultralytics,
}


def read_label_source(
    source: LabelSource,
    images: dict[str, str],
    skip_invalid: bool,
    coco_join: dict,
    progress=None,
) -> Read:
    """Reads one label set (its format already resolved, see :func:`resolve_auto_format`).

    Args:
        source: the label set.
        images: ``{stem: image path}`` of the import (YOLO box scaling, stem joins).
        skip_invalid: report malformed lines/records and go on.
        coco_join: filled with the ``stems``/``names`` tables of COCO ground truth, read by
            COCO and Ultralytics results later in the same import.
        progress: a :data:`~detection_debugger.formats.progress.Progress` callback, told per
            batch of files of the folder formats (a JSON file is read in one go).
    """
    reader = _READERS.get(source.format)
    if reader is None:
        raise FormatError(source.path, f"unknown format {source.format!r}")
    return reader(source, images, skip_invalid, coco_join, progress)
