"""``detection-debugger import`` and ``export``: label files into and out of FiftyOne."""

from __future__ import annotations

import argparse

from detection_debugger.cli.common import UsageError, add_progress_argument, progress_bar
from detection_debugger.datasets.exporting import EXPORT_FORMATS
from detection_debugger.datasets.importing import GT_FORMATS, PRED_FORMATS
from detection_debugger.formats import ClassMap
from detection_debugger.formats.progress import part

__all__ = ["add_export_command", "add_import_command"]


def add_import_command(subparsers) -> None:
    imp = subparsers.add_parser(
        "import",
        help="import images, ground truth and predictions into a FiftyOne dataset",
        description=(
            "Creates or extends a persistent FiftyOne dataset: images from --images, ground "
            "truth in 'ground_truth', each prediction set in its own field. Every file is "
            "read and validated before anything is written."
        ),
    )
    imp.add_argument("--dataset", required=True, help="dataset name (created if missing)")
    imp.add_argument("--images", required=True, metavar="DIR", help="folder of the images")
    imp.add_argument(
        "--gt", metavar="PATH", help="ground truth: COCO JSON, or KITTI/YOLO/txt/VOC folder"
    )
    imp.add_argument(
        "--gt-format", choices=GT_FORMATS, help="format of --gt (auto: from the files)"
    )
    imp.add_argument("--gt-field", default="ground_truth", help="field for --gt (ground_truth)")
    imp.add_argument(
        "--pred",
        metavar="PATH",
        help="predictions: TAO/KITTI, YOLO or txt folder, COCO results or Ultralytics JSON",
    )
    imp.add_argument(
        "--pred-format", choices=PRED_FORMATS, help="format of --pred (auto: from the files)"
    )
    imp.add_argument("--pred-field", default="predictions", help="field for --pred (predictions)")
    imp.add_argument("--class-map", metavar="FILE", help="YAML/JSON {name in files: class}")
    imp.add_argument(
        "--class-names",
        metavar="FILE",
        help="class names file (classes.txt, data.yaml): YOLO classes, and the category ids "
        "(class index + 1) of Ultralytics/COCO results without COCO ground truth",
    )
    imp.add_argument(
        "--images-json",
        metavar="FILE",
        help="COCO/Ultralytics results without COCO ground "
        "truth: a JSON with 'images' [{id, file_name}] and 'categories' [{id, name}]",
    )
    imp.add_argument(
        "--skip-invalid", action="store_true", help="skip malformed lines (each is reported)"
    )
    imp.add_argument("--replace", action="store_true", help="overwrite existing label fields")
    add_progress_argument(imp)
    imp.set_defaults(run=run_import)


def add_export_command(subparsers) -> None:
    exp = subparsers.add_parser(
        "export",
        help="export a label field (corrected labels when they exist) as KITTI, COCO or YOLO",
        description=(
            "Exports the images and one label field of a dataset (or a saved view). KITTI is "
            "TAO-ready: images/ + labels/. The corrected field <field>_fixed is used when "
            "it exists; the original is never modified."
        ),
    )
    exp.add_argument("--dataset", required=True)
    exp.add_argument("--view", metavar="SAVED_VIEW", help="export only this saved view")
    exp.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    exp.add_argument("--label-field", required=True, metavar="FIELD")
    exp.add_argument("--output", required=True, metavar="DIR")
    exp.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    exp.add_argument(
        "--original", action="store_true", help="export FIELD itself even if FIELD_fixed exists"
    )
    add_progress_argument(exp)
    exp.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    from detection_debugger.datasets.importing import (
        LabelSource,
        apply_import,
        existing_classes,
        plan_import,
    )

    if not args.gt and not args.pred:
        raise UsageError("nothing to import: give --gt and/or --pred")
    sources = []
    for path, fmt, field, predictions, flag in (
        (args.gt, args.gt_format, args.gt_field, False, "--gt-format"),
        (args.pred, args.pred_format, args.pred_field, True, "--pred-format"),
    ):
        if path is None:
            continue
        if fmt is None:
            raise UsageError(f"{flag} is required with {flag[:-7]} ({flag} auto recognises it)")
        sources.append(
            LabelSource(
                path=path,
                format=fmt,
                field=field,
                predictions=predictions,
                class_names=args.class_names,
                images_json=args.images_json,
            )
        )
    class_map = ClassMap.load(args.class_map) if args.class_map else None
    known = existing_classes(args.dataset, args.gt_field) if not args.gt else None
    progress = progress_bar(args)  # reading, then writing: one bar
    plan = plan_import(
        args.dataset,
        args.images,
        sources,
        class_map,
        args.skip_invalid,
        known,
        part(progress, 0, 2),
    )
    try:
        apply_import(plan, replace=args.replace, progress=part(progress, 1, 2))
    except ValueError as error:
        raise UsageError(str(error)) from None
    print("\n".join(plan.summary()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    import fiftyone as fo

    from detection_debugger.datasets.exporting import export_labels

    if not fo.dataset_exists(args.dataset):
        raise UsageError(f"no dataset named {args.dataset!r}")
    dataset = fo.load_dataset(args.dataset)
    view = dataset
    if args.view:
        if not dataset.has_saved_view(args.view):
            raise UsageError(f"dataset {args.dataset!r} has no saved view {args.view!r}")
        view = dataset.load_saved_view(args.view)
    try:
        report = export_labels(
            view,
            args.label_field,
            args.format,
            args.output,
            args.overwrite,
            not args.original,
            progress=progress_bar(args),
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    print("\n".join(report.summary()))
    return 0
