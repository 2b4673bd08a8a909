"""``detection-debugger evaluate``: COCO files in, metrics JSON out."""

from __future__ import annotations

import argparse
import gc
import json

from detection_debugger.cli.common import (
    UsageError,
    add_progress_argument,
    iou_argument,
    load_dataset,
    progress_bar,
    write_output,
)
from detection_debugger.evaluation import DetectionSet, InputError, MatchTable
from detection_debugger.evaluation.detections import GT, PRED
from detection_debugger.formats import (
    FormatError,
    check_coco_ground_truth,
    read_coco_ground_truth,
    read_coco_results,
    read_image_ids,
)
from detection_debugger.formats.coco_columns import read_coco_result_columns
from detection_debugger.formats.image_ids import integer_id

__all__ = ["add_evaluate_command"]


def add_evaluate_command(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="COCO metrics, per-class counts and the 4-way confusion matrix of COCO files",
        description=(
            "Evaluates COCO results against COCO ground truth: the 12 COCO statistics "
            "(identical to pycocotools), per-class AP/AP50/AP75/AR100 and TP/FN/"
            "mispredicted/FP counts, and the confusion matrix with a background row and "
            "column. Writes JSON."
        ),
    )
    evaluate.add_argument("--gt", metavar="GT.json", help="COCO ground truth (file mode)")
    evaluate.add_argument("--pred", metavar="DETS.json", help="COCO results (file mode)")
    evaluate.add_argument(
        "--dataset", help="dataset mode: evaluate a FiftyOne dataset and store the run"
    )
    evaluate.add_argument("--pred-field", help="dataset mode: the predictions field")
    evaluate.add_argument(
        "--gt-field", default="ground_truth", help="dataset mode: ground truth (ground_truth)"
    )
    evaluate.add_argument("--eval-key", help="dataset mode: the run's key (eval_<pred-field>)")
    evaluate.add_argument(
        "--iou", type=iou_argument, default=0.5, help="IoU threshold of the confusion matrix (0.5)"
    )
    evaluate.add_argument(
        "--score-threshold",
        type=float,
        default=0.0,
        help="predictions below this score are left out of the confusion matrix (0)",
    )
    evaluate.add_argument(
        "--image-ids", metavar="FILE", help="evaluate only these COCO image ids (one a line)"
    )
    evaluate.add_argument("--output", metavar="OUT.json", help="write here instead of stdout")
    _add_analysis_arguments(evaluate)
    add_progress_argument(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def _add_analysis_arguments(evaluate) -> None:
    evaluate.add_argument(
        "--tide",
        action="store_true",
        help="add TIDE's error decomposition (dAP points of Cls, Loc, Both, Dupe, Bkg, Miss; "
        "FalsePos, FalseNeg), overall and per class",
    )
    evaluate.add_argument(
        "--pr",
        action="store_true",
        help="add per-class precision/recall curves over the score and the best-F1 threshold",
    )
    evaluate.add_argument(
        "--voc",
        action="store_true",
        help="add PASCAL VOC AP (all-point and 11-point) at --iou or per-class --class-iou",
    )
    evaluate.add_argument(
        "--class-iou",
        action="append",
        type=_class_iou,
        metavar="CLASS=IOU",
        default=[],
        help="VOC/TAO minimum overlap of one class (repeatable), e.g. car=0.7",
    )
    evaluate.add_argument(
        "--voc-pixel-offset",
        action="store_true",
        help="VOC devkit's +1 pixel box convention (default: continuous boxes, like COCO)",
    )


def _class_iou(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected CLASS=IOU, got {text!r}")
    return name, iou_argument(value)


def _analyses(args, data, table) -> dict:
    """The optional sections of the JSON: ``tide``, ``pr``, ``voc``."""
    from detection_debugger.evaluation import operating_points, tide_errors, voc_ap

    out = {}
    if args.tide:
        out["tide"] = tide_errors(data).to_dict()
    if args.pr:
        out["pr"] = {name: points.to_dict() for name, points in operating_points(table).items()}
    if args.voc or args.class_iou:
        per_class = dict(args.class_iou)
        unknown = sorted(set(per_class) - set(data.class_names))
        if unknown:
            raise UsageError(f"--class-iou: no class {unknown[0]!r} among the evaluated classes")
        iou = per_class or args.iou
        out["voc"] = voc_ap(
            data, iou, pixel_offset=args.voc_pixel_offset, default_iou=args.iou
        ).to_dict()
    return out


def _evaluate_dataset(args: argparse.Namespace) -> int:
    """Dataset mode: the same run as the App's evaluate_detections operator, stored with the
    dataset; prints the JSON of the file mode."""
    from detection_debugger.datasets.runs import evaluate_detections

    if args.gt or args.pred:
        raise UsageError("--dataset evaluates a dataset: leave out --gt and --pred")
    if not args.pred_field:
        raise UsageError("evaluate --dataset needs --pred-field")
    dataset = load_dataset(args.dataset)
    for field in (args.gt_field, args.pred_field):
        if not dataset.has_field(field):
            raise UsageError(f"dataset {args.dataset!r} has no field {field!r}")
    key = args.eval_key or f"eval_{args.pred_field}"
    results = evaluate_detections(
        dataset,
        args.pred_field,
        args.gt_field,
        eval_key=key,
        iou=args.iou,
        score_threshold=args.score_threshold,
        progress=progress_bar(args),
    )
    table = results.table()
    document = {**results.result.to_dict(), **_analyses(args, table.data, table)}
    document["params"] = {**document.get("params", {}), "dataset": dataset.name, "eval_key": key}
    write_output(json.dumps(document, indent=2), args.output)
    return 0


def _detection_set(gt: dict, results, image_ids, paths: dict) -> DetectionSet:
    """The engine's input of the files (input errors name the file)."""
    try:
        return DetectionSet.from_coco(gt, results, image_ids=image_ids)
    except InputError as error:
        where = paths.get(error.source, "")
        raise UsageError(f"{where}: {error}" if where else str(error)) from None


def _read_files(args: argparse.Namespace) -> DetectionSet:
    """The engine's input of ``--gt``/``--pred``/``--image-ids``, every check made.

    The parsed ground truth and the results are freed on return; only the arrays stay.
    """
    # Plain results files go straight to numpy columns; anything else (and every error)
    # through the strict reader, after the ground truth's errors as always. Read first, so
    # their decoded records are freed before the ground truth's objects exist.
    try:
        results = read_coco_result_columns(args.pred)
    except FormatError:  # missing or unreadable: said again below, in order
        results = None
    gt = read_coco_ground_truth(args.gt)
    check_coco_ground_truth(gt, args.gt)
    if results is None:
        results = read_coco_results(args.pred)
    image_ids = None
    if args.image_ids:
        image_ids = read_image_ids(args.image_ids)
        known = {integer_id(image["id"]) for image in gt["images"]}  # checked above
        unknown = [i for i in image_ids if i not in known]
        if unknown:
            raise UsageError(f"{args.image_ids}: image id {unknown[0]} is not in {args.gt}")
    return _detection_set(gt, results, image_ids, {GT: args.gt, PRED: args.pred})


def run_evaluate(args: argparse.Namespace) -> int:
    if args.dataset is not None:
        return _evaluate_dataset(args)
    if not (args.gt and args.pred):
        raise UsageError("evaluate needs --gt and --pred (files) or --dataset and --pred-field")
    # Parsing builds millions of containers and no reference cycles: the cyclic collector
    # would only rescan them again and again (a third of the reading time).
    gc.disable()
    try:
        data = _read_files(args)
    finally:
        gc.enable()
    try:
        table = MatchTable.build(data, args.iou, args.score_threshold)
    except InputError as error:
        raise UsageError(str(error)) from None
    document = {**table.evaluate().to_dict(), **_analyses(args, data, table)}
    write_output(json.dumps(document, indent=2), args.output)
    return 0
