"""``detection-debugger evaluate``: COCO files in, metrics JSON out."""

from __future__ import annotations

import argparse
import json

from detection_debugger.cli.common import UsageError, iou_argument, write_output
from detection_debugger.evaluation import DetectionSet, InputError, MatchTable
from detection_debugger.evaluation.detections import GT, PRED
from detection_debugger.formats import (
    check_coco_ground_truth,
    read_coco_ground_truth,
    read_coco_results,
    read_image_ids,
)
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
    evaluate.add_argument("--gt", required=True, metavar="GT.json", help="COCO ground truth")
    evaluate.add_argument(
        "--pred", required=True, metavar="DETS.json", help="COCO results (detections list)"
    )
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
    evaluate.set_defaults(run=run_evaluate)


def _evaluate_coco(gt: dict, results: list, image_ids, paths: dict, iou: float, score: float):
    try:
        data = DetectionSet.from_coco(gt, results, image_ids=image_ids)
        return MatchTable.build(data, iou, score).evaluate()
    except InputError as error:
        where = paths.get(error.source, "")
        raise UsageError(f"{where}: {error}" if where else str(error)) from None


def run_evaluate(args: argparse.Namespace) -> int:
    gt = read_coco_ground_truth(args.gt)
    check_coco_ground_truth(gt, args.gt)
    results = read_coco_results(args.pred)
    image_ids = None
    if args.image_ids:
        image_ids = read_image_ids(args.image_ids)
        known = {integer_id(image["id"]) for image in gt["images"]}  # checked above
        unknown = [i for i in image_ids if i not in known]
        if unknown:
            raise UsageError(f"{args.image_ids}: image id {unknown[0]} is not in {args.gt}")
    result = _evaluate_coco(
        gt, results, image_ids, {GT: args.gt, PRED: args.pred}, args.iou, args.score_threshold
    )
    write_output(json.dumps(result.to_dict(), indent=2), args.output)
    return 0
