"""Benchmark: failure-slice discovery over 20 descriptors and their pairs on the 5k set.

    make bench            # or: .venv/bin/python bench/slice_discovery.py [--images N]

Imports the 5,000-image set of ``bench/import_speed.py`` (blank 640x480 images, ~35k ground
truth objects, ~184k predictions of 10 classes) into a fresh project ``mongod``, evaluates it
once, and computes the stored descriptors (timed: a one-off, each image read once). The
images are blank, so their pixel descriptors are constant and left out by the search; the
box descriptors (size, aspect, position, border, overlap, objects per image) are real, and
random sample fields (numbers and categories) bring the searched descriptors to 20.

Then times ``datasets.discovery.discover_run`` from the stored run (reading the run and the
descriptors from MongoDB included), cold (first call of the process: the run decoded, the
descriptors read from their cached document) and warm (median of 3), for the largest class
(``--class``) and for every class, and the search alone
(``evaluation.slice_discovery.discover`` on arrays already in memory).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed  # noqa: E402

EXTRA_NUMBERS = ("speed", "altitude", "exposure", "gain", "temperature", "humidity", "hour")
EXTRA_CATEGORIES = {
    "weather": ("sun", "rain", "fog", "snow"),
    "camera": ("front", "left", "right"),
    "road": ("urban", "highway", "rural"),
    "season": ("spring", "summer", "autumn", "winter"),
    "sensor": ("a", "b"),
    "site": ("north", "south", "east", "west", "centre"),
    "lens": ("wide", "narrow"),
}


def _add_sample_fields(dataset) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    n = len(dataset)
    for name in EXTRA_NUMBERS:
        dataset.set_values(name, rng.normal(size=n).tolist())
    for name, values in EXTRA_CATEGORIES.items():
        dataset.set_values(name, [str(v) for v in rng.choice(values, n)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()

    from import_speed import benchmark_dataset

    with benchmark_dataset(args.images, "bench-discovery") as dataset:
        import fiftyone as fo

        from detection_debugger.datasets.descriptors import compute_descriptors, run_descriptors
        from detection_debugger.datasets.discovery import discover_run
        from detection_debugger.datasets.runs import evaluate_detections, load_run
        from detection_debugger.evaluation.slice_discovery import DiscoveryConfig, discover

        print("evaluating it ...", flush=True)
        evaluate_detections(dataset, "predictions", "ground_truth", eval_key="dd")
        _add_sample_fields(dataset)
        print("computing the stored descriptors (one-off) ...", flush=True)
        start = time.perf_counter()
        compute_descriptors(dataset, ["predictions"], "ground_truth")
        descriptors_s = time.perf_counter() - start

        dataset = fo.load_dataset("bench-discovery")
        dataset.clear_cache()
        counts = dataset.count_values("ground_truth.detections.label")
        first = max(counts, key=counts.get)  # the largest class: the slowest one
        cold_s, found = timed(lambda: discover_run(dataset, "dd", first))
        warm_s, found = timed(lambda: discover_run(dataset, "dd", first), 3)
        every_s, every = timed(lambda: discover_run(dataset, "dd"))
        results = load_run(dataset, "dd")
        arrays = run_descriptors(dataset, results)
        table = results.table()
        config = DiscoveryConfig()
        search_s, _ = timed(lambda: discover(table, arrays, [first], config), 3)
        search_all_s, _ = timed(lambda: discover(table, arrays, None, config))
        data = table.data
        dataset.delete()

    used = len(found.descriptors)
    print(
        f"\n{args.images} images, {len(data.gt_ids)} ground truth, {len(data.pred_ids)} "
        f"predictions; {used} descriptors searched (+ their {used * (used - 1) // 2} pairs)\n"
    )
    rows = [
        ("stored descriptors, computed once (all images)", descriptors_s, None),
        (f"discover_run, one class ({first}), cold", cold_s, found),
        (f"discover_run, one class ({first}), warm", warm_s, found),
        ("discover_run, every class", every_s, every),
        ("search alone (arrays in memory), one class", search_s, None),
        ("search alone, every class", search_all_s, None),
    ]
    print(f"{'':<52}{'s':>8}{'slices tested':>15}")
    for label, seconds, result in rows:
        tested = f"{result.num_tested:>15}" if result is not None else f"{'':>15}"
        print(f"{label:<52}{seconds:>8.2f}{tested}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
