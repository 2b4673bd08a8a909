"""Benchmark: COCO bbox evaluation, whole processes: this engine vs pycocotools and faster-coco-eval.

    make bench            # or: .venv/bin/python bench/evaluation.py [--images N] [--repeats N]

Generates (once per size, cached in bench/out/) a synthetic COCO set: ``--images`` images
(5,000 by default: COCO-val scale, ~35k ground-truth objects, ~180k detections over 10
classes; the objects and detections grow with the images). Each tool runs as its own
process from the two JSON files to the 12 statistics, reading the files included:
``detection-debugger evaluate --gt --pred`` (which also writes the per-class metrics and the
4-way confusion matrix), and pycocotools' / faster-coco-eval's ``COCO(gt)``, ``loadRes(dets)``,
``evaluate``, ``accumulate``, ``summarize``. Prints each tool's median wall time, its ratio to
ours and its peak RSS (the process's maximum resident set, from ``wait4``), and checks that the
statistics agree; plus re-evaluation of a 10% image slice from the cached match table.
``--skip pycocotools`` leaves a tool out (at 100k images pycocotools takes many minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
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


def dataset_paths(num_images: int = CONFIG["num_images"]) -> tuple[Path, Path]:
    """Generates the benchmark set if missing; returns (gt.json, dets.json)."""
    from detection_debugger.demo.synthetic import SyntheticConfig, make_coco

    config = {**CONFIG, "num_images": num_images}
    tag = "-".join(f"{v}" for v in config.values())
    gt_path, dets_path = OUT / f"gt-{tag}.json", OUT / f"dets-{tag}.json"
    if not (gt_path.exists() and dets_path.exists()):
        OUT.mkdir(parents=True, exist_ok=True)
        print("generating the benchmark set ...", flush=True)
        gt, dets = make_coco(SyntheticConfig(**config))
        gt_path.write_text(json.dumps(gt))
        del gt
        dets_path.write_text(json.dumps(dets))
    return gt_path, dets_path


def run_pycocotools(gt_path: str, dets_path: str) -> list[float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(dets_path), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats]


def run_faster_coco_eval(gt_path: str, dets_path: str) -> list[float]:
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        evaluator = COCOeval_faster(
            coco_gt, coco_gt.loadRes(dets_path), "bbox", print_function=print
        )
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(s) for s in evaluator.stats[:12]]


PEERS = {"pycocotools": run_pycocotools, "faster-coco-eval": run_faster_coco_eval}
TOOLS = ("detection-debugger", "faster-coco-eval", "pycocotools")


def _command(tool: str, gt_path: Path, dets_path: Path, stats_path: Path) -> list[str]:
    if tool == "detection-debugger":
        cli = Path(sys.executable).with_name("detection-debugger")
        return [
            str(cli),
            "evaluate",
            "--gt",
            str(gt_path),
            "--pred",
            str(dets_path),
            "--output",
            str(stats_path),
        ]
    return [
        sys.executable,
        __file__,
        "--engine",
        tool,
        str(gt_path),
        str(dets_path),
        str(stats_path),
    ]


def run_process(command: list[str]) -> tuple[float, float]:
    """Runs one whole process; returns (wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{process.stderr.read().decode()}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def measure(tool: str, gt_path: Path, dets_path: Path, repeats: int) -> dict:
    """Times ``repeats`` whole processes of one tool; their statistics and peak RSS."""
    stats_path = OUT / f"stats-{tool}.json"
    times, peaks = [], []
    for _ in range(repeats):
        seconds, peak = run_process(_command(tool, gt_path, dets_path, stats_path))
        times.append(seconds)
        peaks.append(peak)
    stats = json.loads(stats_path.read_text())
    if tool == "detection-debugger":
        stats = [-1.0 if v is None else v for v in stats["stats"].values()]
    return {
        "tool": tool,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_mb": max(peaks),
        "stats": stats,
    }


def measure_slice(gt_path: Path, dets_path: Path, repeats: int) -> float:
    """Median seconds of re-evaluating a random 10% of the images from the match table."""
    from detection_debugger.evaluation import DetectionSet, MatchTable

    gt, dets = json.loads(gt_path.read_text()), json.loads(dets_path.read_text())
    table = MatchTable.build(DetectionSet.from_coco(gt, dets))
    del gt, dets
    mask = np.random.default_rng(0).random(table.data.num_images) < 0.10
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        table.evaluate(mask)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _counts(gt_path: Path, dets_path: Path) -> tuple[int, int, int]:
    from detection_debugger.formats.coco_columns import read_coco_result_columns

    gt = json.loads(gt_path.read_text())
    dets = read_coco_result_columns(dets_path)
    return len(gt["images"]), len(gt["annotations"]), len(dets["score"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=CONFIG["num_images"], help="(5000)")
    parser.add_argument("--repeats", type=int, default=3, help="processes per tool (3)")
    parser.add_argument("--slice-repeats", type=int, default=30, help="slice runs (30; 0: none)")
    parser.add_argument("--skip", action="append", default=[], choices=TOOLS[1:], help="a peer")
    parser.add_argument("--engine", nargs=4, help=argparse.SUPPRESS)  # peer process mode
    args = parser.parse_args()
    if args.engine:
        tool, gt_path, dets_path, stats_path = args.engine
        Path(stats_path).write_text(json.dumps(PEERS[tool](gt_path, dets_path)))
        return 0

    gt_path, dets_path = dataset_paths(args.images)
    num_images, num_gt, num_dets = _counts(gt_path, dets_path)
    figures = {}
    for tool in TOOLS:
        if tool in args.skip:
            continue
        print(f"running {tool} x{args.repeats} ...", flush=True)
        figures[tool] = measure(tool, gt_path, dets_path, args.repeats)
    slice_s = measure_slice(gt_path, dets_path, args.slice_repeats) if args.slice_repeats else None

    ours = figures["detection-debugger"]
    print(
        f"\n{num_images} images, {num_gt} ground-truth objects, {num_dets} detections; "
        f"whole processes (reading the JSON files included), median of {args.repeats}\n"
    )
    print(f"{'tool':<22}{'median':>10}{'x ours':>9}{'peak RSS':>11}{'x ours':>9}")
    for tool, f in figures.items():
        print(
            f"{tool:<22}{f['median_s']:>9.2f}s{f['median_s'] / ours['median_s']:>8.1f}x"
            f"{f['peak_rss_mb']:>9.0f}MB{f['peak_rss_mb'] / ours['peak_rss_mb']:>8.1f}x"
        )
    reference = figures.get("pycocotools", figures.get("faster-coco-eval"))
    if reference is not None:  # None: every peer skipped
        for tool, f in figures.items():
            diff = np.abs(np.array(f["stats"]) - np.array(reference["stats"])).max()
            print(f"max |stats - {reference['tool']}|: {tool} {diff:.1e}")
    if slice_s is not None:
        print(f"10% slice re-evaluation (in process, from the match table): {slice_s * 1e3:.1f} ms")
    summary = {"images": num_images, "gt": num_gt, "dets": num_dets, "tools": figures}
    summary["slice_s"] = slice_s
    (OUT / f"results-{num_images}.json").write_text(json.dumps(summary, indent=2))
    print(f"figures saved to {OUT / f'results-{num_images}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
