"""Benchmark: COCO bbox evaluation, this engine vs pycocotools and faster-coco-eval.

    make bench            # or: .venv/bin/python bench/evaluation.py [--repeats N]

Generates (once, cached in bench/out/) a COCO-val-scale synthetic set: 5,000 images, ~35k
ground-truth objects, ~180k detections over 10 classes. Each engine runs in its own
subprocess on the same in-memory inputs (JSON parsing is not timed): pycocotools and
faster-coco-eval from the GT dict and results list to the 12 summary statistics; this engine
from the same dict and list to the statistics, the per-class metrics and the 4-way confusion
matrix; plus re-evaluation of a 10% image slice from the cached match table. Prints medians,
ratios against this engine and peak memory, and checks that the statistics agree.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
CONFIG = dict(
    num_images=5000,
    num_classes=10,
    gt_per_image=7.0,
    ghosts_per_image=24.0,
    duplicates_per_object=1.3,
    seed=2026,
)


def dataset_paths() -> tuple[Path, Path]:
    """Generates the benchmark set if missing; returns (gt.json, dets.json)."""
    from detection_debugger.demo.synthetic import SyntheticConfig, make_coco

    tag = "-".join(f"{v}" for v in CONFIG.values())
    gt_path, dets_path = OUT / f"gt-{tag}.json", OUT / f"dets-{tag}.json"
    if not (gt_path.exists() and dets_path.exists()):
        OUT.mkdir(parents=True, exist_ok=True)
        print("generating the benchmark set ...", flush=True)
        gt, dets = make_coco(SyntheticConfig(**CONFIG))
        gt_path.write_text(json.dumps(gt))
        dets_path.write_text(json.dumps(dets))
    return gt_path, dets_path


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pycocotools(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats]


def run_faster_coco_eval(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt)
        evaluator = COCOeval_faster(coco_gt, coco_gt.loadRes(dets), "bbox", print_function=print)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats[:12]]


def run_engine(gt, dets):
    from detection_debugger.evaluation import DetectionSet, MatchTable

    result = MatchTable.build(DetectionSet.from_coco(gt, dets)).evaluate()
    return [-1.0 if v is None else v for v in result.stats.values()]


ENGINES = {
    "pycocotools": (run_pycocotools, True),  # (function, mutates its inputs)
    "faster-coco-eval": (run_faster_coco_eval, True),
    "detection-debugger": (run_engine, False),
}


def measure(engine: str, repeats: int) -> dict:
    """Runs in the subprocess: times one engine, returns its figures."""
    gt_path, dets_path = dataset_paths()
    gt, dets = json.loads(gt_path.read_text()), json.loads(dets_path.read_text())
    function, mutates = ENGINES.get(engine, (None, False))
    baseline = _rss_mb()
    times, stats = [], None
    if engine == "slice":
        from detection_debugger.evaluation import DetectionSet, MatchTable

        table = MatchTable.build(DetectionSet.from_coco(gt, dets))
        mask = np.random.default_rng(0).random(table.data.num_images) < 0.10
        for _ in range(repeats):
            start = time.perf_counter()
            table.evaluate(mask)
            times.append(time.perf_counter() - start)
    else:
        for _ in range(repeats):
            args = (copy.deepcopy(gt), copy.deepcopy(dets)) if mutates else (gt, dets)
            start = time.perf_counter()
            stats = function(*args)
            times.append(time.perf_counter() - start)
            del args
    return {
        "engine": engine,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_mb": _peak_mb(),
        "rss_before_mb": baseline,
        "stats": stats,
        "num_gt": len(gt["annotations"]),
        "num_dets": len(dets),
        "num_images": len(gt["images"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine (3)")
    parser.add_argument("--slice-repeats", type=int, default=30, help="slice runs (30)")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(measure(args.engine, args.repeats)))
        return 0

    dataset_paths()
    figures = {}
    for engine in ("detection-debugger", "slice", "faster-coco-eval", "pycocotools"):
        repeats = args.slice_repeats if engine == "slice" else args.repeats
        print(f"running {engine} x{repeats} ...", flush=True)
        run = subprocess.run(
            [sys.executable, __file__, "--engine", engine, "--repeats", str(repeats)],
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        figures[engine] = json.loads(run.stdout.strip().splitlines()[-1])

    ours = figures["detection-debugger"]
    print(
        f"\n{ours['num_images']} images, {ours['num_gt']} ground-truth objects, "
        f"{ours['num_dets']} detections; median of {args.repeats} runs each "
        f"(slice: {args.slice_repeats})\n"
    )
    print(f"{'engine':<22}{'median':>10}{'x ours':>9}{'peak RSS':>11}{'eval RSS':>11}")
    for engine, f in figures.items():
        ratio = f["median_s"] / ours["median_s"]
        print(
            f"{engine:<22}{f['median_s']:>9.3f}s{ratio:>8.1f}x{f['peak_rss_mb']:>9.0f}MB"
            f"{f['peak_rss_mb'] - f['rss_before_mb']:>9.0f}MB"
        )
    reference = np.array(figures["pycocotools"]["stats"])
    diff = np.abs(np.array(ours["stats"]) - reference).max()
    fast_diff = np.abs(np.array(figures["faster-coco-eval"]["stats"]) - reference).max()
    print(
        f"\nspeed-up vs pycocotools: {figures['pycocotools']['median_s'] / ours['median_s']:.1f}x, "
        f"vs faster-coco-eval: {figures['faster-coco-eval']['median_s'] / ours['median_s']:.1f}x; "
        f"10% slice re-evaluation: {figures['slice']['median_s'] * 1e3:.1f} ms"
    )
    print(
        f"max |stats - pycocotools|: detection-debugger {diff:.1e}, "
        f"faster-coco-eval {fast_diff:.1e}"
    )
    print("(peak RSS: whole process incl. the parsed inputs; eval RSS: growth during evaluation)")
    (OUT / "results.json").write_text(json.dumps(figures, indent=2))
    print(f"figures saved to {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
