"""Benchmark: label-issue quality on the demo's planted errors, ours vs FiftyOne Brain.

    make bench            # or: .venv/bin/python bench/label_issues.py [--images N] [--seed S]

Builds the demo dataset (default 500 images, seed 0) on the project's own MongoDB and scores,
against the planted errors of its manifest, per issue type: precision and recall at the
finder's own thresholds (``flagged``) and at the top k (k = planted errors of the type):

- detection-debugger ``find_label_issues`` with both prediction sets (baseline + retrained),
  and with each set alone;
- FiftyOne Brain's ``compute_mistakenness`` on each prediction set: ``possible_missing``
  (unmatched predictions above its hard-coded 0.95 confidence, ranked by confidence),
  ``mistakenness`` (class, for wrong_class) and ``mistakenness_loc`` (for loose_box), both
  flagged at >= 0.5 as it sets no threshold itself, and ``possible_spurious`` (every
  undetected object; no ranking, so its top k is arbitrary).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

GT = "ground_truth"
MODELS = ("baseline", "retrained")


def mistakenness_candidates(dataset, model: str) -> dict:
    """FiftyOne Brain's findings for one prediction set as ranked candidates per type."""
    from detection_debugger.demo.label_quality import Candidate
    from detection_debugger.evaluation.label_issues import (
        ISSUE_TYPES,
        LOOSE_BOX,
        MISSING,
        SPURIOUS,
        WRONG_CLASS,
    )

    m, miss, spur = (
        f"mistakenness_{model}",
        f"possible_missing_{model}",
        f"possible_spurious_{model}",
    )
    out = {t: [] for t in ISSUE_TYPES}
    sids, widths, heights, boxes, confs, flags = dataset.values(
        [
            "id",
            "metadata.width",
            "metadata.height",
            f"{model}.detections.bounding_box",
            f"{model}.detections.confidence",
            f"{model}.detections.{miss}",
        ]
    )
    for sid, w, h, per_box, per_conf, per_flag in zip(sids, widths, heights, boxes, confs, flags):
        for (x, y, bw, bh), conf, flag in zip(per_box or [], per_conf or [], per_flag or []):
            if flag:
                out[MISSING].append(Candidate((sid, (x * w, y * h, bw * w, bh * h)), conf, True))
    ids, cls, loc, spurious = dataset.values(
        [f"{GT}.detections.{n}" for n in ("id", m, f"{m}_loc", spur)]
    )
    for per in zip(ids, cls, loc, spurious):
        for lid, c, lo, sp in zip(*(v or [] for v in per)):
            if c is not None:
                out[WRONG_CLASS].append(Candidate(lid, c, c >= 0.5))
            if lo is not None:
                out[LOOSE_BOX].append(Candidate(lid, lo, lo >= 0.5))
            if sp:
                out[SPURIOUS].append(Candidate(lid, 1.0, True))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    out_dir = Path(__file__).resolve().parent / "out"
    with tempfile.TemporaryDirectory(prefix="dd-bench-mongo-") as tmp, MongoServer(tmp) as server:
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        import fiftyone.brain as fob

        from detection_debugger.datasets.label_issues import find_label_issues
        from detection_debugger.demo import label_quality as lq
        from detection_debugger.demo.runner import build_demo_dataset
        from detection_debugger.demo.scenes import DemoConfig

        dataset, files = build_demo_dataset(
            DemoConfig(args.images, args.seed), out_dir, name="bench-label-issues"
        )
        manifest = json.loads(Path(files["manifest"]).read_text())
        truth = lq.manifest_truth(dataset, GT, manifest)
        rows, timings = {}, {}
        for name, preds in (("both", list(MODELS)), *((m, [m]) for m in MODELS)):
            start = time.perf_counter()
            find_label_issues(dataset, GT, preds)
            timings[f"detection-debugger ({name})"] = time.perf_counter() - start
            rows[f"detection-debugger ({name})"] = lq.measure_quality(
                lq.our_candidates(dataset, GT), truth
            )
        for model in MODELS:
            start = time.perf_counter()
            fob.compute_mistakenness(
                dataset,
                model,
                GT,
                mistakenness_field=f"mistakenness_{model}",
                missing_field=f"possible_missing_{model}",
                spurious_field=f"possible_spurious_{model}",
                progress=False,
            )
            timings[f"compute_mistakenness ({model})"] = time.perf_counter() - start
            rows[f"compute_mistakenness ({model})"] = lq.measure_quality(
                mistakenness_candidates(dataset, model), truth
            )
        dataset.delete()

    planted = {t: r["planted"] for t, r in next(iter(rows.values())).items()}
    print(f"\n{args.images} demo images (seed {args.seed}); planted errors: {planted}")
    print("P/R: at the finder's own thresholds; P@k/R@k: top k, k = planted errors\n")
    print("\n".join(lq.format_quality(rows)))
    print()
    for name, seconds in timings.items():
        print(f"{name:<40}{seconds:>7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
