"""Benchmark: re-evaluating a 10% slice, ours (stored matches) vs FiftyOne's evaluate_detections.

    make bench            # or: .venv/bin/python bench/slices.py [--images N] [--slice 0.1]

Imports the 5,000-image set of ``bench/import_speed.py`` into a dataset on the project's own
MongoDB, evaluates it once with ``detection_debugger.datasets.runs.evaluate_detections`` and
saves a random 10% of the images as a slice. Then times, in the same run, through the public
API: ``slices.evaluate_slice(dataset, key, name)`` (loading the saved view and reading its
sample ids from MongoDB included), cold (first call: loading and decoding the run's stored
matches) and warm (median of 20), an object-level slice (one class's ground truth), and
FiftyOne's ``evaluate_detections(compute_mAP=True)`` on the same slice view (once).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--slice", type=float, default=0.1, help="fraction of images (0.1)")
    args = parser.parse_args()

    from import_speed import benchmark_dataset

    with benchmark_dataset(args.images, "bench-slices") as dataset:
        import fiftyone as fo
        from fiftyone import ViewField as F

        from detection_debugger.datasets import slices
        from detection_debugger.datasets.runs import evaluate_detections

        print("evaluating it ...", flush=True)
        evaluate_detections(dataset, "predictions", "ground_truth", eval_key="dd")
        size = max(1, int(len(dataset) * args.slice))
        chosen = dataset.take(size, seed=0).values("id")
        slice_view = dataset.select(chosen, ordered=False)
        slices.save_slice(dataset, "bench slice", slice_view)
        first_class = dataset.distinct("ground_truth.detections.label")[0]
        slices.save_slice(
            dataset,
            "bench objects",
            slice_view.filter_labels("ground_truth", F("label") == first_class),
        )

        # Cold: a fresh process-level state, as a new App session or CLI call would have.
        dataset = fo.load_dataset("bench-slices")
        dataset.clear_cache()
        cold_s, cold = timed(lambda: slices.evaluate_slice(dataset, "dd", "bench slice"))
        warm_s, _ = timed(lambda: slices.evaluate_slice(dataset, "dd", "bench slice"), 20)
        objects_s, _ = timed(lambda: slices.evaluate_slice(dataset, "dd", "bench objects"), 20)
        print(
            f"detection-debugger slice: cold {cold_s * 1000:.1f} ms, warm {warm_s * 1000:.1f} "
            f"ms, object slice {objects_s * 1000:.1f} ms",
            flush=True,
        )

        print("running FiftyOne evaluate_detections(compute_mAP=True) on the slice ...", flush=True)
        view = dataset.load_saved_view("bench slice")
        theirs_s, theirs = timed(
            lambda: view.evaluate_detections(
                "predictions",
                gt_field="ground_truth",
                eval_key="fo",
                compute_mAP=True,
                progress=False,
            )
        )
        boxes = view.count("predictions.detections"), view.count("ground_truth.detections")
        dataset.delete()

    print(
        f"\nslice: {size} of {args.images} images, {boxes[0]} predictions, {boxes[1]} "
        "ground-truth objects\n"
    )
    print(f"{'re-evaluating the slice':<46}{'ms':>10}{'x ours (warm)':>15}{'AP':>8}")
    rows = [
        ("detection-debugger, warm (median of 20)", warm_s, cold.stats["AP"]),
        ("detection-debugger, cold (decode stored run)", cold_s, cold.stats["AP"]),
        ("detection-debugger, object slice (warm)", objects_s, None),
        ("FiftyOne evaluate_detections(mAP) on slice", theirs_s, theirs.mAP()),
    ]
    for label, seconds, ap in rows:
        ap_text = f"{ap:8.4f}" if ap is not None else f"{'':>8}"
        print(f"{label:<46}{seconds * 1000:>10.1f}{seconds / warm_s:>14.1f}x{ap_text}")
    print("\n(ours is pycocotools' AP on the slice; FiftyOne's own COCO mAP differs slightly)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
