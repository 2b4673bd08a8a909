"""Error analysis from a stored match table, on the 5k-image benchmark set (issue 16):
TIDE's decomposition (six oracles and two special fixes), operating points, re-scoring the
confusion matrix at a threshold and VOC AP, each timed; next to tidecv 1.0.1 on the same data.

    python bench/error_analysis.py [--images 5000] [--no-tidecv]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed  # noqa: E402

from detection_debugger.evaluation import (  # noqa: E402
    DetectionSet,
    MatchTable,
    operating_points,
    voc_ap,
)
from detection_debugger.evaluation.operating_points import rescore  # noqa: E402
from detection_debugger.evaluation.tide import TideTable  # noqa: E402
from evaluation import CONFIG, dataset_paths  # noqa: E402  (bench/evaluation.py)


def _tidecv(data: DetectionSet) -> tuple[float, dict]:
    """tidecv's whole run (data, evaluate, main and special errors) on ``data``."""
    from tidecv import TIDE, Data

    start = time.perf_counter()
    gt, preds = Data("gt", max_dets=100), Data("preds")
    for i, image_id in enumerate(data.image_ids):
        gt.add_image(int(image_id), f"image {i}")
    for k, class_id in enumerate(data.class_ids):
        gt.add_class(int(class_id), data.class_names[k])
    for j in range(len(data.gt_ids)):
        image, class_id = (
            int(data.image_ids[data.gt_image[j]]),
            int(data.class_ids[data.gt_class[j]]),
        )
        add = gt.add_ignore_region if data.gt_crowd[j] else gt.add_ground_truth
        add(image, class_id, data.gt_boxes[j].tolist())
    for j in range(len(data.pred_ids)):
        preds.add_detection(
            int(data.image_ids[data.pred_image[j]]),
            int(data.class_ids[data.pred_class[j]]),
            float(data.pred_scores[j]),
            data.pred_boxes[j].tolist(),
        )
    tide = TIDE()
    with contextlib.redirect_stdout(io.StringIO()):
        tide.evaluate(gt, preds, mode=TIDE.BOX)
        main, special = tide.get_main_errors(), tide.get_special_errors()
    return time.perf_counter() - start, {"main": main["preds"], "special": special["preds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=CONFIG["num_images"])
    parser.add_argument("--no-tidecv", action="store_true", help="skip the tidecv run")
    args = parser.parse_args()
    CONFIG["num_images"] = args.images
    gt_path, dets_path = dataset_paths()
    data = DetectionSet.from_coco(
        json.loads(gt_path.read_text()), json.loads(dets_path.read_text())
    )
    print(f"{data.num_images} images, {len(data.gt_ids)} GT, {len(data.pred_ids)} predictions")
    table = MatchTable.build(data)
    build, tide_table = timed(lambda: TideTable.build(data))
    rows = [
        ("TIDE matching (once per run, cached with it)", build),
        ("TIDE: base AP + 6 oracles + 2 special + per class", timed(tide_table.errors, 5)[0]),
        (
            "TIDE on a 10% image slice",
            timed(lambda: tide_table.errors((data.image_ids % 10) == 0), 5)[0],
        ),
        ("operating points, every class", timed(lambda: operating_points(table), 5)[0]),
        ("confusion matrix re-scored at 0.5", timed(lambda: rescore(table, 0.5), 5)[0]),
        ("VOC AP (all-point and 11-point)", timed(lambda: voc_ap(data), 5)[0]),
    ]
    for name, seconds in rows:
        print(f"  {name:55s} {seconds * 1000:8.1f} ms")
    if not args.no_tidecv:
        seconds, theirs = _tidecv(data)
        ours = tide_table.errors()
        ours_total = build + rows[1][1]
        print(
            f"  {'tidecv 1.0.1: the same decomposition':55s} {seconds * 1000:8.1f} ms"
            f"  ({seconds / ours_total:.0f}x ours incl. matching)"
        )
        worst = max(abs(ours.main[name] - value) for name, value in theirs["main"].items())
        print(f"  largest difference from tidecv's main errors: {worst:.2e} AP points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
