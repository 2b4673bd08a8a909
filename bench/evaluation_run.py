"""Benchmark: a whole evaluation run in FiftyOne, ours vs FiftyOne's evaluate_detections.

    make bench            # or: .venv/bin/python bench/evaluation_run.py [--images N]

Imports the 5,000-image set of ``bench/import_speed.py`` (ground truth + TAO predictions)
into a dataset on the project's own MongoDB, then times in the same run, on the same
dataset: ``detection_debugger.datasets.runs.evaluate_detections`` (reading boxes from
MongoDB, evaluating, writing every per-object and per-sample field, saving the run) and
FiftyOne's ``dataset.evaluate_detections(..., compute_mAP=True)`` (the same work with its
COCO backend). FiftyOne's takes minutes: it runs once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()

    from import_speed import benchmark_dataset

    with benchmark_dataset(args.images, "bench-eval") as dataset:
        from detection_debugger.datasets.runs import evaluate_detections

        boxes = dataset.count("predictions.detections"), dataset.count("ground_truth.detections")

        print("running detection-debugger evaluate_detections ...", flush=True)
        start = time.perf_counter()
        ours = evaluate_detections(dataset, "predictions", "ground_truth", eval_key="dd")
        ours_s = time.perf_counter() - start
        print(f"detection-debugger: {ours_s:.2f} s (mAP {ours.mAP():.4f})", flush=True)

        print("running FiftyOne evaluate_detections(compute_mAP=True) (minutes) ...", flush=True)
        start = time.perf_counter()
        theirs = dataset.evaluate_detections(
            "predictions",
            gt_field="ground_truth",
            eval_key="fo",
            compute_mAP=True,
            progress=False,
        )
        theirs_s = time.perf_counter() - start
        print(f"FiftyOne: {theirs_s:.2f} s", flush=True)
        same = dataset.values("predictions.detections.dd") == dataset.values(
            "predictions.detections.fo"
        )
        dataset.delete()

    print(f"\n{args.images} images, {boxes[0]} predictions, {boxes[1]} ground-truth objects\n")
    print(f"{'evaluation run':<40}{'seconds':>9}{'x ours':>9}{'mAP':>8}")
    print(
        f"{'detection-debugger (bulk, all fields)':<40}{ours_s:>9.2f}{1:>8.1f}x{ours.mAP():>8.4f}"
    )
    print(
        f"{'FiftyOne evaluate_detections(mAP)':<40}{theirs_s:>9.2f}{theirs_s / ours_s:>8.1f}x"
        f"{theirs.mAP():>8.4f}"
    )
    print(f"\nper-object tp/fp of the predictions identical: {same}")
    print("(ours' mAP is pycocotools'; FiftyOne's own COCO mAP differs slightly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
