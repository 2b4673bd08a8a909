"""Benchmark: importing a TAO prediction folder into FiftyOne, ours vs FiftyOne's KITTI importer.

    make bench            # or: .venv/bin/python bench/import_speed.py [--images N]

Writes (once, cached in bench/out/) 5,000 blank 640x480 images and a TAO inference folder
(KITTI lines + confidence, ~180k boxes), starts the project's own MongoDB, and times in the
same run: ``detection-debugger``'s validated import (image metadata read from the files
included) and ``fo.Dataset.from_dir(dataset_type=fo.types.KITTIDetectionDataset)`` on the
same folders (which reads no image metadata). Each into a fresh dataset, deleted after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def make_files(num_images: int) -> dict:
    from detection_debugger.demo.synthetic import SyntheticConfig, make_coco, write_files

    folder = OUT / f"tao-{num_images}"
    marker = folder / ".complete"
    config = SyntheticConfig(
        num_images=num_images,
        num_classes=10,
        gt_per_image=7.0,
        ghosts_per_image=24.0,
        duplicates_per_object=1.3,
        seed=2026,
    )
    gt, results = make_coco(config)
    if not marker.exists():
        print(f"writing {num_images} images and their TAO label files ...", flush=True)
        write_files(folder, gt, results, gt_format="kitti")
        marker.write_text("ok")
    return {
        "images": str(folder / "images"),
        "pred": str(folder / "tao" / "labels"),
        "boxes": len(results),
    }


@contextlib.contextmanager
def benchmark_dataset(num_images: int, name: str):
    """The benchmark set (ground truth + TAO predictions) imported into the dataset ``name`` on
    a fresh project ``mongod``, which is stopped, with its data, on exit."""
    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    files = make_files(num_images)
    with tempfile.TemporaryDirectory(prefix="dd-bench-mongo-") as tmp, MongoServer(tmp) as server:
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        print(f"importing the benchmark set ({num_images} images) ...", flush=True)
        yield import_set(files, name)


def import_set(files: dict, name: str):
    """The set of :func:`make_files` (KITTI ground truth, TAO predictions) imported into the
    dataset ``name`` as ``detection-debugger import`` does it."""
    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

    labels = str(Path(files["images"]).parent / "labels")
    plan = plan_import(
        name,
        files["images"],
        [
            LabelSource(labels, "kitti", "ground_truth", predictions=False),
            LabelSource(files["pred"], "tao", "predictions", predictions=True),
        ],
    )
    return apply_import(plan, progress=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per importer (1: from_dir takes ~5 min)"
    )
    args = parser.parse_args()

    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    files = make_files(args.images)
    with tempfile.TemporaryDirectory(prefix="dd-bench-mongo-") as tmp, MongoServer(tmp) as server:
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        import fiftyone as fo

        from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

        def ours(name):
            source = LabelSource(files["pred"], "tao", "predictions", predictions=True)
            apply_import(plan_import(name, files["images"], [source]), progress=False)

        def fiftyone_kitti(name):
            fo.Dataset.from_dir(
                dataset_type=fo.types.KITTIDetectionDataset,
                data_path=files["images"],
                labels_path=files["pred"],
                label_field="predictions",
                name=name,
                progress=False,
            )

        times: dict[str, list[float]] = {"detection-debugger": [], "FiftyOne KITTI from_dir": []}
        counts = {}
        for run in range(args.repeats):
            for label, function in (
                ("detection-debugger", ours),
                ("FiftyOne KITTI from_dir", fiftyone_kitti),
            ):
                name = f"bench-import-{run}-{len(times[label])}-{label[:4]}"
                print(f"running {label} (run {run + 1}/{args.repeats}) ...", flush=True)
                start = time.perf_counter()
                function(name)
                times[label].append(time.perf_counter() - start)
                dataset = fo.load_dataset(name)
                counts[label] = (len(dataset), dataset.count("predictions.detections"))
                dataset.delete()

    ours_median = statistics.median(times["detection-debugger"])
    print(f"\n{args.images} images, {files['boxes']} TAO boxes; median of {args.repeats} runs\n")
    print(f"{'importer':<26}{'median':>10}{'x ours':>9}{'samples':>9}{'boxes':>9}")
    for label, values in times.items():
        median = statistics.median(values)
        samples, boxes = counts[label]
        print(f"{label:<26}{median:>9.2f}s{median / ours_median:>8.2f}x{samples:>9}{boxes:>9}")
    print("(ours validates every line and reads every image's metadata; from_dir reads none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
