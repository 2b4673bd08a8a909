"""Benchmark: label-issue finding on planted errors, ours vs FiftyOne Brain and cleanlab ObjectLab.

    make bench     # or: .venv/bin/python bench/label_issues.py [--seeds 3] [--demo-images 500]
                   #     [--review-objects 20000] [--markdown]

1. Real data, one prediction set: ``../shared/real-data/dashcam`` (251 photos, YOLO ground
   truth, one YOLOv5 model's predictions). Per seed, errors are planted into the ground truth
   (:func:`detection_debugger.demo.planted_errors.plant_label_errors`: 5% of the boxes removed,
   3% relabelled, 3% shifted and enlarged, 3% added on background) and every finder is scored
   against them. The set's own omissions that a person confirmed
   (``bench/dashcam_natural_omissions.json``) count as right when flagged and are left out of
   the rankings.
2. The demo (its planted errors, two prediction sets): ours with both sets and with each, the
   peers with each.

Per type: precision and recall at each finder's own flags, recall at k (k = planted errors of
the type), average precision of its ranking, and reach (recall of every candidate it ranks).
The finders, with the same matching rule (a missing candidate must overlap a planted box at
IoU 0.3; the other types name the planted object):

- detection-debugger: :func:`detection_debugger.evaluation.label_issues.find_label_issues` at
  its defaults;
- FiftyOne Brain ``compute_mistakenness``: ``possible_missing`` (unmatched predictions above its
  fixed 0.95 confidence, ranked by confidence), ``mistakenness`` (wrong_class) and
  ``mistakenness_loc`` (loose_box) flagged at 0.5 (it sets no threshold itself), and
  ``possible_spurious`` (every unmatched object; no ranking);
- cleanlab ObjectLab (``cleanlab.object_detection``, a dev dependency): its per-box scores
  (overlooked, swap, bad location; one minus the score ranks) flagged with its own rule (per-
  class AP times 0.8); it has no spurious type, so its lower of swap and bad location stands in.

3. Review at scale: ``--review-objects`` objects written in one dataset, every flagged issue
   accepted, then rejected, timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DASHCAM = ROOT.parent / "shared" / "real-data" / "dashcam"
NATURAL = Path(__file__).resolve().parent / "dashcam_natural_omissions.json"
GT, PRED = "ground_truth", "predictions"
OURS, BRAIN, OBJECTLAB = "detection-debugger", "compute_mistakenness", "ObjectLab"
MEASURES = ("precision", "recall", "top_k_recall", "ap", "reach")


def load_dashcam():
    """``(data, stems, natural)``: the dashcam set, its image stems and the confirmed natural
    omissions keyed like planted truth."""
    from detection_debugger.demo.planted_errors import load_dashcam_set

    return load_dashcam_set(DASHCAM, NATURAL)


# ------------------------------------------------------------------------ the peers


def objectlab_candidates(data) -> dict:  # long: ObjectLab's inputs, scores and flag rule
    """cleanlab ObjectLab's per-box scores on one set as ranked candidates per type (the
    flag rule of ``cleanlab.object_detection.filter.find_label_issues``, per box)."""
    from cleanlab.internal.constants import (
        ALPHA,
        BADLOC_THRESHOLD_FACTOR,
        HIGH_PROBABILITY_THRESHOLD,
        LOW_PROBABILITY_THRESHOLD,
        OVERLOOKED_THRESHOLD_FACTOR,
        SWAP_THRESHOLD_FACTOR,
    )
    from cleanlab.object_detection import filter as olf
    from cleanlab.object_detection import rank

    from detection_debugger.demo.label_quality import Candidate

    def corners(b):
        return np.c_[b[:, :2], b[:, :2] + b[:, 2:]].reshape(-1, 4)

    labels, predictions, gt_rows, pred_rows = [], [], [], []
    for i in range(data.num_images):
        g = np.flatnonzero((data.gt_image == i) & ~data.gt_crowd)
        labels.append({"bboxes": corners(data.gt_boxes[g]), "labels": data.gt_class[g]})
        gt_rows.append(g)
        per, rows = [], []
        for k in range(data.num_classes):
            p = np.flatnonzero((data.pred_image == i) & (data.pred_class == k))
            per.append(np.c_[corners(data.pred_boxes[p]), data.pred_scores[p]].reshape(-1, 5))
            rows.append(p)
        predictions.append(per)
        pred_rows.append(np.concatenate(rows))
    aux = rank._get_valid_inputs_for_compute_scores(ALPHA, labels, predictions)
    ap = olf._get_per_class_ap(labels, predictions)
    pred_thr = olf._process_class_list([rank._separate_prediction(p)[1] for p in predictions], ap)
    lab_thr = olf._process_class_list([rank._separate_label(lab)[1] for lab in labels], ap)
    high, low = HIGH_PROBABILITY_THRESHOLD, LOW_PROBABILITY_THRESHOLD
    over = rank.compute_overlooked_box_scores(
        alpha=ALPHA, high_probability_threshold=high, auxiliary_inputs=aux
    )
    bad = rank.compute_badloc_box_scores(
        alpha=ALPHA, low_probability_threshold=low, auxiliary_inputs=aux
    )
    swap = rank.compute_swap_box_scores(
        alpha=ALPHA, high_probability_threshold=high, auxiliary_inputs=aux
    )
    out = {"missing": [], "wrong_class": [], "spurious": [], "loose_box": []}
    for i in range(data.num_images):
        for s, thr, p in zip(over[i], pred_thr[i], pred_rows[i]):
            if np.isfinite(s):
                key = (i, tuple(data.pred_boxes[p].tolist()))
                out["missing"].append(Candidate(key, 1 - s, s <= thr * OVERLOOKED_THRESHOLD_FACTOR))
        for sw, bl, thr, g in zip(swap[i], bad[i], lab_thr[i], gt_rows[i]):
            g, low_of = int(g), min(sw, bl)
            out["wrong_class"].append(Candidate(g, 1 - sw, sw <= thr * SWAP_THRESHOLD_FACTOR))
            out["loose_box"].append(Candidate(g, 1 - bl, bl <= thr * BADLOC_THRESHOLD_FACTOR))
            factor = min(SWAP_THRESHOLD_FACTOR, BADLOC_THRESHOLD_FACTOR)
            out["spurious"].append(Candidate(g, 1 - low_of, low_of <= thr * factor))
    return out


def dataset_from_set(name: str, data, image_paths: list[str], sizes: list[tuple[int, int]]):
    """A FiftyOne dataset of ``data``: ``ground_truth`` (each object's row in ``row``) and
    ``predictions`` (``row`` too), relative boxes, image metadata."""
    import fiftyone as fo

    def detections(rows, image_of, boxes, classes, scores, size):
        w, h = size
        return fo.Detections(
            detections=[
                fo.Detection(
                    label=data.class_names[classes[r]],
                    bounding_box=[
                        boxes[r][0] / w,
                        boxes[r][1] / h,
                        boxes[r][2] / w,
                        boxes[r][3] / h,
                    ],
                    confidence=None if scores is None else float(scores[r]),
                    row=int(r),
                )
                for r in rows
            ]
        )

    gt_of = np.split(
        np.argsort(data.gt_image, kind="stable"),
        np.cumsum(np.bincount(data.gt_image, minlength=data.num_images))[:-1],
    )
    pred_of = np.split(
        np.argsort(data.pred_image, kind="stable"),
        np.cumsum(np.bincount(data.pred_image, minlength=data.num_images))[:-1],
    )
    dataset = fo.Dataset(name)
    samples = []
    for i, (path, size) in enumerate(zip(image_paths, sizes)):
        samples.append(
            fo.Sample(
                filepath=path,
                metadata=fo.ImageMetadata(width=size[0], height=size[1]),
                ground_truth=detections(
                    gt_of[i], data.gt_image, data.gt_boxes, data.gt_class, None, size
                ),
                predictions=detections(
                    pred_of[i],
                    data.pred_image,
                    data.pred_boxes,
                    data.pred_class,
                    data.pred_scores,
                    size,
                ),
            )
        )
    dataset.add_samples(samples, progress=False)
    del samples  # samples held in memory are reloaded after every write
    return dataset


def mistakenness_candidates(dataset, pred_field: str = PRED) -> dict:
    """FiftyOne Brain's ``compute_mistakenness`` on ``dataset`` as ranked candidates per type,
    keyed by the ``row`` attributes written by :func:`dataset_from_set`."""
    import fiftyone.brain as fob

    from detection_debugger.demo.label_quality import Candidate

    m = f"mistakenness_{pred_field}"
    fob.compute_mistakenness(
        dataset,
        pred_field,
        GT,
        mistakenness_field=m,
        missing_field=f"possible_missing_{pred_field}",
        spurious_field=f"possible_spurious_{pred_field}",
        progress=False,
    )
    out = {"missing": [], "wrong_class": [], "spurious": [], "loose_box": []}
    widths, heights, boxes, confs, flags = dataset.values(
        [
            "metadata.width",
            "metadata.height",
            f"{pred_field}.detections.bounding_box",
            f"{pred_field}.detections.confidence",
            f"{pred_field}.detections.possible_missing_{pred_field}",
        ]
    )
    for i, (w, h, per_box, per_conf, per_flag) in enumerate(
        zip(widths, heights, boxes, confs, flags)
    ):
        for (x, y, bw, bh), conf, flag in zip(per_box or [], per_conf or [], per_flag or []):
            if flag:
                key = (i, (x * w, y * h, bw * w, bh * h))
                out["missing"].append(Candidate(key, conf, True))
    rows, cls, loc, spurious = dataset.values(
        [f"{GT}.detections.{n}" for n in ("row", m, f"{m}_loc", f"possible_spurious_{pred_field}")]
    )
    for per in zip(rows, cls, loc, spurious):
        for row, c, lo, sp in zip(*(v or [] for v in per)):
            if c is not None:
                out["wrong_class"].append(Candidate(row, c, c >= 0.5))
            if lo is not None:
                out["loose_box"].append(Candidate(row, lo, lo >= 0.5))
            if sp:
                out["spurious"].append(Candidate(row, 1.0, True))
    return out


# ------------------------------------------------------------------------ the runs


def _mean(results: list[dict]) -> dict:
    """The mean of several :func:`measure_quality` results (planted errors summed)."""
    out = {}
    for t in results[0]:
        row = {"planted": sum(r[t]["planted"] for r in results)}
        for name in (*MEASURES, "flagged", "natural"):
            values = [r[t][name] for r in results if r[t].get(name) is not None]
            row[name] = float(np.mean(values)) if values else None
        out[t] = row
    return out


def dashcam_rows(seeds: int, timings: dict) -> dict:
    """``{finder: mean quality over the seeds}`` on the dashcam set with planted errors."""
    from detection_debugger.demo import label_quality as lq
    from detection_debugger.demo.planted_errors import plant_label_errors
    from detection_debugger.evaluation.label_issues import find_label_issues

    data, stems, natural = load_dashcam()
    paths = [str(DASHCAM / "data" / "valid" / "images" / f"{s}.jpg") for s in stems]
    results: dict = {OURS: [], BRAIN: [], OBJECTLAB: []}
    for seed in range(seeds):
        planted = plant_label_errors(data, seed, image_size=(320, 320))
        start = time.perf_counter()
        issues = find_label_issues([planted.data])
        timings.setdefault(f"{OURS} (dashcam, engine)", []).append(time.perf_counter() - start)
        results[OURS].append(
            lq.measure_quality(lq.engine_candidates(issues), planted.truth, natural=natural)
        )
        start = time.perf_counter()
        found = objectlab_candidates(planted.data)
        timings.setdefault(f"{OBJECTLAB} (dashcam)", []).append(time.perf_counter() - start)
        results[OBJECTLAB].append(lq.measure_quality(found, planted.truth, natural=natural))
        dataset = dataset_from_set(
            f"bench-dashcam-{seed}", planted.data, paths, [(320, 320)] * len(stems)
        )
        start = time.perf_counter()
        found = mistakenness_candidates(dataset)
        timings.setdefault(f"{BRAIN} (dashcam)", []).append(time.perf_counter() - start)
        results[BRAIN].append(lq.measure_quality(found, planted.truth, natural=natural))
        dataset.delete()
    return {name: _mean(r) for name, r in results.items()}


def demo_rows(images: int, seed: int, out_dir: Path, timings: dict) -> dict:
    """``{finder: quality}`` on the demo's planted errors (its two prediction sets)."""
    from PIL import Image

    from detection_debugger.demo import label_quality as lq
    from detection_debugger.demo.planted_errors import load_demo_sets
    from detection_debugger.demo.runner import MODELS
    from detection_debugger.demo.scenes import DemoConfig, ensure_demo_files
    from detection_debugger.evaluation.label_issues import find_label_issues

    files = ensure_demo_files(out_dir, DemoConfig(images, seed), progress=lambda *a: None)
    sets, truth = load_demo_sets(files, MODELS)
    rows = {}
    for name, chosen in ((" + ".join(MODELS), sets), *((m, [s]) for m, s in zip(MODELS, sets))):
        start = time.perf_counter()
        issues = find_label_issues(chosen)
        timings.setdefault(f"{OURS} (demo, {name})", []).append(time.perf_counter() - start)
        rows[f"{OURS} ({name})"] = lq.measure_quality(lq.engine_candidates(issues), truth)
    stems = sorted(p.stem for p in Path(files["images"]).glob("*.jpg"))
    paths = [str(Path(files["images"]) / f"{s}.jpg") for s in stems]
    with Image.open(paths[0]) as first:
        size = first.size
    for model, data in zip(MODELS, sets):
        rows[f"{OBJECTLAB} ({model})"] = lq.measure_quality(objectlab_candidates(data), truth)
        dataset = dataset_from_set(f"bench-demo-{model}", data, paths, [size] * len(stems))
        rows[f"{BRAIN} ({model})"] = lq.measure_quality(mistakenness_candidates(dataset), truth)
        dataset.delete()
    return rows


def review_timing(num_objects: int) -> dict:
    """Seconds to find the issues of ``num_objects`` annotated objects (one prediction set)
    and to accept, then reject, every flagged one in bulk."""
    import fiftyone as fo

    from detection_debugger.datasets import review
    from detection_debugger.datasets.label_issues import find_label_issues
    from detection_debugger.evaluation.label_issues import ISSUE_TYPES

    rng = np.random.default_rng(0)
    per_image = 10
    samples = []
    for i in range(num_objects // per_image):
        boxes = rng.uniform(0.0, 0.8, (per_image, 2))
        gt, preds = [], []
        for j, (x, y) in enumerate(boxes):
            box = [float(x), float(y), 0.1, 0.1]
            gt.append(fo.Detection(label="car" if j % 3 else "person", bounding_box=box))
            if rng.random() < 0.9:  # some found, some relabelled, some missed
                label = "person" if rng.random() < 0.05 else gt[-1].label
                jitter = list(np.add(box, rng.normal(0, 0.01, 4)).clip(0, 1))
                preds.append(
                    fo.Detection(
                        label=label, bounding_box=jitter, confidence=float(rng.uniform(0.3, 1))
                    )
                )
        preds.append(fo.Detection(label="car", bounding_box=[0.9, 0.9, 0.08, 0.08], confidence=0.9))
        samples.append(
            fo.Sample(
                filepath=f"/tmp/review-{i}.jpg",
                metadata=fo.ImageMetadata(width=640, height=480),
                ground_truth=fo.Detections(detections=gt),
                predictions=fo.Detections(detections=preds),
            )
        )
    dataset = fo.Dataset("bench-review")
    dataset.add_samples(samples, progress=False)
    del samples  # samples held in memory are reloaded after every write
    out = {}
    start = time.perf_counter()
    find_label_issues(dataset, GT, [PRED])
    out["find + write"] = time.perf_counter() - start
    ids = [lid for t in ISSUE_TYPES for lid in review.flagged_label_ids(dataset, GT, t)]
    out["issues"] = len(ids)
    start = time.perf_counter()
    review.accept_issues(dataset, GT, ids)
    out["accept all"] = time.perf_counter() - start
    start = time.perf_counter()
    review.reject_issues(dataset, GT, ids)
    out["reject all"] = time.perf_counter() - start
    start = time.perf_counter()
    queue = review.review_queue(dataset, GT)
    out["review queue"] = time.perf_counter() - start
    out["queue items"] = len(queue)
    dataset.delete()
    return out


# ------------------------------------------------------------------------ the table


def side_by_side(rows: dict[str, dict], markdown: bool = False) -> list[str]:
    """One line per type and finder: P and R at the defaults, R@k, AP, reach."""

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    head = ["type", "finder", "planted", "flagged", "P", "R", "R@k", "AP", "reach"]
    lines = []
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    else:
        lines.append(f"{head[0]:<13}{head[1]:<44}" + "".join(f"{h:>8}" for h in head[2:]))
    for t in ("missing", "wrong_class", "spurious", "loose_box"):
        for name, result in rows.items():
            r = result[t]
            cells = [
                t,
                name,
                str(r["planted"]),
                f"{r['flagged']:.0f}" if r["flagged"] is not None else "-",
            ]
            cells += [f(r.get(m)) for m in ("precision", "recall", "top_k_recall", "ap", "reach")]
            if markdown:
                lines.append("| " + " | ".join(cells) + " |")
            else:
                lines.append(
                    f"{cells[0]:<13}{cells[1]:<44}" + "".join(f"{c:>8}" for c in cells[2:])
                )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="planted-error seeds on dashcam")
    parser.add_argument("--demo-images", type=int, default=500)
    parser.add_argument("--demo-seed", type=int, default=0)
    parser.add_argument("--review-objects", type=int, default=20_000)
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    args = parser.parse_args()

    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    out_dir = Path(__file__).resolve().parent / "out"
    timings: dict = {}
    with tempfile.TemporaryDirectory(prefix="dd-bench-mongo-") as tmp, MongoServer(tmp) as server:
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        real = dashcam_rows(args.seeds, timings) if DASHCAM.is_dir() else None
        demo = demo_rows(args.demo_images, args.demo_seed, out_dir, timings)
        review = review_timing(args.review_objects) if args.review_objects else None

    if real is None:
        print(f"\n{DASHCAM} is not here: the real-data part is skipped")
    else:
        print(
            f"\nReal data: dashcam, one prediction set, errors planted with seeds 0..{args.seeds - 1}"
        )
        print("(means over the seeds; confirmed natural omissions count as right when flagged)\n")
        print("\n".join(side_by_side(real, args.markdown)))
    print(f"\nDemo: {args.demo_images} images (seed {args.demo_seed}), its planted errors\n")
    print("\n".join(side_by_side(demo, args.markdown)))
    print()
    for name, seconds in timings.items():
        print(f"{name:<48}{np.mean(seconds):>8.2f} s")
    if review:
        print(f"\nReview at scale ({args.review_objects} annotated objects):")
        for name, value in review.items():
            print(
                f"  {name:<20}{value:>10.2f}"
                if isinstance(value, float)
                else f"  {name:<20}{value:>10}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
