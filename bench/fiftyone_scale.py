"""Benchmark: every FiftyOne-side step of the pipeline at scale (issue 17: 100k images).

    make bench                                   # 5,000 images (quick)
    make bench IMAGES=100000                     # or: .venv/bin/python bench/fiftyone_scale.py --images 100000

On the synthetic COCO-like set of ``bench/import_speed.py`` (10 classes, ~7 ground-truth
objects and ~36 TAO predictions per image: 3.6M predictions at 100k images), on a fresh
project ``mongod``, times each step a user takes, in one process, in order:

- **import**: ground truth (KITTI) and predictions (TAO) through ``plan_import`` /
  ``apply_import`` (what ``detection-debugger import`` runs: every line validated, every
  image's header read);
- **evaluate operator**: the App's ``evaluate_detections`` operator through FiftyOne's
  operator executor (reading 4M boxes from MongoDB, the engine, every per-object field
  written, the run saved), twice (IoU 0.5 and 0.75, for ``compare``);
- **slice, cold / warm**: a saved 10% image slice re-evaluated from the stored run (cold: a
  freshly loaded dataset, our caches emptied: the run's by-image index read from MongoDB;
  warm: median of 10 of the same slice; "another slice": median of 5 other 10% slices, each
  resolved by MongoDB for the first time); and an **object slice** (``filter_labels``, 10%
  of the images: the whole match table is decoded, cold then warm);
- **panel first render** and **confusion-cell click**: the panel's ``on_load`` and
  ``on_cell_click`` through the executor, as the App calls them;
- **label finder** (``find_label_issues``, one prediction set) and **compare**
  (``compare_runs``).

Peers in the same run (``--peers on``, the default): FiftyOne's own
``evaluate_detections(compute_mAP=True)`` on 100 images of the same slice and FiftyOne's KITTI
importer on 1,000 images' predictions (``--peer-images``; on the whole 100k set they would
take hours), compared per image with ours. Figures go to
``bench/out/fiftyone-scale-<N>.json``; the targets of issue 17 are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
REPO = Path(__file__).resolve().parent.parent
PLUGIN = "@datacentric/detection-debugger"
TARGETS = {  # seconds (issue 17, item 2)
    "import": 300.0,
    "evaluate operator": 300.0,
    "slice warm": 0.1,
    "slice cold": 2.0,
    "panel first render": 3.0,
}


def _plugins_dir(tmp: str) -> None:
    """FiftyOne finds this checkout as an installed plugin (as ``detection-debugger plugin
    install`` links it)."""
    plugins = Path(tmp) / "plugins"
    plugins.mkdir()
    (plugins / "detection-debugger").symlink_to(REPO, target_is_directory=True)
    os.environ["FIFTYONE_PLUGINS_DIR"] = str(plugins)


def _step(figures: dict, name: str, fn, repeat: int = 1):
    print(f"{name} ...", flush=True)
    seconds, out = timed(fn, repeat)
    figures[name] = seconds
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  {name}: {seconds:.3f} s (process peak RSS so far {rss:.2f} GiB)", flush=True)
    return out


def _operator(dataset, name: str, **params):
    from fiftyone.operators import execute_operator

    out = execute_operator(f"{PLUGIN}/{name}", ctx={"dataset": dataset, "params": params})
    if out.error:
        raise RuntimeError(out.error)
    return out


def _panel(dataset, method: str, state: dict, **params):
    from fiftyone.operators import execute_operator

    params = {"panel_id": "bench", "__method__": method, "panel_state": state, **params}
    out = execute_operator(
        f"{PLUGIN}/detection_debugger", ctx={"dataset": dataset, "params": params}
    )
    if out.error:
        raise RuntimeError(out.error)
    state = dict(state)
    for request in out.executor._requests:
        if request.operator_uri == "patch_panel_state":
            state.update(request.params["state"])
    return state


def _fresh(name: str):
    """The dataset as a new process sees it: loaded again, every cache of ours emptied."""
    import fiftyone as fo

    from detection_debugger.datasets.run_index import clear_run_index_cache
    from detection_debugger.datasets.view_membership import clear_view_cache

    clear_run_index_cache()
    clear_view_cache()
    dataset = fo.load_dataset(name)
    dataset.clear_cache()
    return dataset


def _first_class(dataset) -> str:
    return dataset.distinct("ground_truth.detections.label")[0]


def _pipeline(dataset, figures: dict) -> dict:  # long: one timed step per line, in order
    from fiftyone import ViewField as F

    from detection_debugger.datasets import slices
    from detection_debugger.datasets.comparison import compare_runs
    from detection_debugger.datasets.label_issues import find_label_issues

    counts = {
        "images": len(dataset),
        "ground_truth": dataset.count("ground_truth.detections"),
        "predictions": dataset.count("predictions.detections"),
    }
    print(f"  {counts}", flush=True)
    _step(
        figures,
        "evaluate operator",
        lambda: _operator(dataset, "evaluate_detections", eval_key="dd", iou=0.5),
    )
    _step(
        figures,
        "evaluate operator (IoU 0.75)",
        lambda: _operator(dataset, "evaluate_detections", eval_key="dd75", iou=0.75),
    )
    tenth = max(1, len(dataset) // 10)
    for seed in range(6):  # the bench slice, and five others for "another slice"
        chosen = dataset.take(tenth, seed=seed).values("id")
        name = "bench slice" if seed == 0 else f"bench slice {seed}"
        slices.save_slice(dataset, name, dataset.select(chosen, ordered=False))
    cars = dataset.filter_labels("ground_truth", F("label") == _first_class(dataset))
    slices.save_slice(dataset, "bench object slice", cars.take(tenth, seed=0))
    name = dataset.name
    fresh = _fresh(name)
    _step(figures, "slice cold", lambda: slices.evaluate_slice(fresh, "dd", "bench slice"))
    _step(figures, "slice warm", lambda: slices.evaluate_slice(fresh, "dd", "bench slice"), 10)
    others = iter(f"bench slice {seed}" for seed in range(1, 6))
    _step(
        figures,
        "slice warm, another slice",
        lambda: slices.evaluate_slice(fresh, "dd", next(others)),
        5,
    )
    fresh = _fresh(name)
    _step(
        figures,
        "object slice cold",
        lambda: slices.evaluate_slice(fresh, "dd", "bench object slice"),
    )
    _step(
        figures,
        "object slice warm",
        lambda: slices.evaluate_slice(fresh, "dd", "bench object slice"),
        3,
    )
    fresh = _fresh(name)
    state = _step(figures, "panel first render", lambda: _panel(fresh, "on_load", {}))
    _step(figures, "panel refresh (warm)", lambda: _panel(fresh, "on_load", {}))
    matrix_class = state["classes"][0]["class"].lstrip("★ ")
    _step(
        figures,
        "confusion-cell click",
        lambda: _panel(fresh, "on_cell_click", state, x="background", y=matrix_class),
    )
    _step(figures, "compare", lambda: compare_runs(fresh, "dd", "dd75"))
    _step(
        figures,
        "label finder",
        lambda: find_label_issues(fresh, "ground_truth", ["predictions"]),
    )
    return counts


def _peers(files: dict, dataset, subset: int) -> dict:
    """FiftyOne's own evaluation of the saved slice and its KITTI import of the predictions,
    on ``subset`` images (a tenth of them for the slice) when set, else on all."""
    import fiftyone as fo

    peers = {}
    view = dataset.load_saved_view("bench slice")
    if subset:
        view = view.limit(subset // 10)
    seconds, _ = timed(
        lambda: view.evaluate_detections(
            "predictions", gt_field="ground_truth", eval_key="fo", compute_mAP=True, progress=False
        )
    )
    peers["FiftyOne evaluate_detections(mAP), slice"] = {"seconds": seconds, "images": len(view)}
    dataset.delete_evaluation("fo")
    with tempfile.TemporaryDirectory(prefix="dd-bench-kitti-") as tmp:
        images, labels = Path(tmp) / "images", Path(tmp) / "labels"
        images.mkdir()
        labels.mkdir()
        for path in sorted(Path(files["images"]).iterdir())[: subset or None]:
            (images / path.name).symlink_to(path)
            label = Path(files["pred"]) / f"{path.stem}.txt"
            if label.exists():
                (labels / label.name).symlink_to(label)
        seconds, imported = timed(
            lambda: fo.Dataset.from_dir(
                dataset_type=fo.types.KITTIDetectionDataset,
                data_path=str(images),
                labels_path=str(labels),
                label_field="predictions",
                progress=False,
            )
        )
        peers["FiftyOne KITTI from_dir, predictions"] = {
            "seconds": seconds,
            "images": len(imported),
        }
        imported.delete()
    return peers


def _report(figures: dict, peers: dict, counts: dict, images: int) -> None:
    print(
        f"\n{images} images, {counts['ground_truth']} ground-truth objects, "
        f"{counts['predictions']} predictions (one process, this machine)\n"
    )
    print(f"{'step':<34}{'seconds':>10}{'target':>10}{'':>6}")
    for step, seconds in figures.items():
        if not isinstance(seconds, float):
            continue
        target = TARGETS.get(step)
        verdict = "" if target is None else ("ok" if seconds < target else "OVER")
        target_text = f"{target:>10.1f}" if target is not None else f"{'':>10}"
        print(f"{step:<34}{seconds:>10.3f}{target_text}{verdict:>6}")
    if peers:
        print(f"\n{'peer (same run)':<44}{'images':>8}{'seconds':>10}{'per image x ours':>18}")
        ours = {
            "FiftyOne evaluate_detections(mAP), slice": figures["evaluate operator"] / images,
            "FiftyOne KITTI from_dir, predictions": figures["import"] / images,
        }
        for name, peer in peers.items():
            ratio = peer["seconds"] / peer["images"] / ours[name]
            print(f"{name:<44}{peer['images']:>8}{peer['seconds']:>10.2f}{ratio:>17.1f}x")
        print(
            "(per image: FiftyOne's evaluation, fields written, vs our evaluate operator; its "
            "KITTI import of the predictions alone vs our import of both fields with metadata)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument(
        "--peers",
        choices=("on", "off"),
        default="on",
        help="FiftyOne's own evaluation and import in the same run, on --peer-images images",
    )
    parser.add_argument(
        "--peer-images",
        type=int,
        default=1000,
        help="images the peers run on (a tenth of them for the slice), compared per image",
    )
    args = parser.parse_args()

    from import_speed import import_set, make_files

    from detection_debugger.datasets.database import MongoServer, fiftyone_environment

    files = make_files(args.images)
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="dd-bench-scale-") as tmp, MongoServer(tmp) as server:
        _plugins_dir(tmp)
        os.environ.update(fiftyone_environment(server.uri, "detection_debugger_bench"))
        os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
        dataset = _step(figures, "import", lambda: import_set(files, "bench-scale"))
        counts = _pipeline(dataset, figures)
        figures["slice images"] = len(dataset.load_saved_view("bench slice"))
        subset = min(args.images, args.peer_images)
        peers = _peers(files, dataset, subset) if args.peers == "on" else {}
        dataset.delete()
    figures["peak RSS GiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    OUT.mkdir(exist_ok=True)
    out = OUT / f"fiftyone-scale-{args.images}.json"
    out.write_text(json.dumps({"figures": figures, "peers": peers, "counts": counts}, indent=1))
    _report(figures, peers, counts, args.images)
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
