"""The main job: the crosswalk case study, end to end, offline (``make demo``).

Generates the demo data if missing (``demo_data``), starts the project's own MongoDB, imports
the images, ground truth and both TAO prediction sets through the importers, saves the
"faded crosswalks" slice, evaluates both models with the engine (whole set and slice), prints
the story, and serves the FiftyOne App with the plugin until Ctrl-C. A second run reuses the
data and the dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from detection_debugger.datasets.database import DATA_DIR_ENV, project_data_dir, project_database
from detection_debugger.demo.scenes import CLASSES, FADED_AT, DemoConfig, ensure_demo_files

__all__ = ["DEMO_SLICE", "build_demo_dataset", "discovery_story", "evaluate_demo", "run_demo"]

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
DEMO_SLICE = "faded crosswalks"
MODELS = ("baseline", "retrained")
NETWORK_NOTE = (
    "predictions of two trained networks (demo/weights/): baseline on the training split's "
    "original labels, retrained on the labels corrected with the plugin plus faded crosswalks"
)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _network_predictions(files: dict) -> tuple[dict, str]:
    """Runs the shipped networks (``demo/weights/``) on the demo images once; returns the
    prediction folders ``{model: folder}`` and a key of the weights used."""
    import hashlib

    from detection_debugger.demo.training import WEIGHTS_DIR, predict_demo

    weights = {m: WEIGHTS_DIR / f"{m}.pt" for m in MODELS}
    key = hashlib.sha1(b"".join(w.read_bytes() for w in weights.values())).hexdigest()[:10]
    folders = {}
    for model in MODELS:
        folder = Path(files["folder"]) / "predictions" / f"network-{key}" / model
        folders[model] = str(folder)
        if not folder.is_dir():
            done = predict_demo(weights[model], files["images"], folder.with_suffix(".part"))
            folder.with_suffix(".part").rename(folder)  # complete or absent
            _say(f"  {model}: {done['objects']} objects in {done['seconds']} s (CPU)")
    return folders, key


SCENE_FIELDS = ("faded_crosswalks", "crosswalk_fade", "diagonal_crosswalks", "occluded_crosswalks")


def _hide_scene_fields(dataset) -> None:
    """The generator's scene attributes are the answer key: slice discovery must find the
    faded crosswalks from the pixels, so these fields are excluded from its search."""
    from detection_debugger.datasets.descriptors import exclude_from_discovery

    exclude_from_discovery(dataset, [f for f in SCENE_FIELDS if dataset.has_field(f)])


def build_demo_dataset(
    config: DemoConfig, data_dir: Path, name: str | None = None, simulated: bool = False
):
    """Creates the demo dataset from the demo files (reused when it is already complete):
    the networks' predictions, or the simulated ones when ``simulated``."""
    import fiftyone as fo
    from fiftyone import ViewField as F

    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

    files = ensure_demo_files(data_dir, config, progress=_say)
    if simulated:
        predictions, demo_key = {m: files[m] for m in MODELS}, f"{config.key}-simulated"
    else:
        _say("running the trained networks on the demo images ...")
        predictions, weights_key = _network_predictions(files)
        demo_key = f"{config.key}-network-{weights_key}"
    name = name or f"crosswalks-demo-{config.num_images}-{config.seed}"
    if fo.dataset_exists(name):
        dataset = fo.load_dataset(name)
        if dataset.info.get("demo_key") == demo_key and dataset.has_saved_view(DEMO_SLICE):
            _say(f"reusing dataset {name!r} ({len(dataset)} images)")
            _hide_scene_fields(dataset)
            return dataset, files
        dataset.delete()
    _say(f"importing into dataset {name!r} through the TAO/KITTI importers ...")
    sources = [
        LabelSource(files["labels"], "kitti", "ground_truth", predictions=False),
        *(LabelSource(predictions[m], "tao", m, predictions=True) for m in MODELS),
    ]
    plan = plan_import(name, files["images"], sources)
    dataset = apply_import(plan, progress=False)
    for line in plan.summary():
        _say("  " + line)

    # Scene attributes from the manifest, for slicing.
    manifest = json.loads(Path(files["manifest"]).read_text())
    stems = [Path(p).stem for p in dataset.values("filepath")]
    crosswalks = [[o for o in manifest["scenes"][s] if o["label"] == "crosswalks"] for s in stems]
    dataset.set_values(
        "faded_crosswalks", [sum(o["fade"] >= FADED_AT for o in c) for c in crosswalks]
    )
    dataset.set_values(
        "crosswalk_fade", [max((o["fade"] for o in c), default=None) for c in crosswalks]
    )
    dataset.set_values("diagonal_crosswalks", [sum(o["angle"] != 0 for o in c) for c in crosswalks])
    dataset.set_values(
        "occluded_crosswalks", [sum(o["occlusion"] > 0.1 for o in c) for c in crosswalks]
    )
    _hide_scene_fields(dataset)
    dataset.save_view(
        DEMO_SLICE,
        dataset.match(F("faded_crosswalks") > 0),
        description=f"Images with a crosswalk whose paint is worn (fade >= {FADED_AT})",
    )
    dataset.info["demo_key"] = demo_key
    dataset.info["demo_note"] = manifest["note"] if simulated else NETWORK_NOTE
    dataset.save()
    return dataset, files


def evaluate_demo(dataset) -> dict:
    """Evaluates both models as saved evaluation runs (``eval_baseline``, ``eval_retrained``),
    re-evaluates the faded-crosswalk slice from each run's stored matches and compares the
    two runs object by object."""
    from detection_debugger.datasets.comparison import compare_runs
    from detection_debugger.datasets.runs import evaluate_detections
    from detection_debugger.datasets.slices import evaluate_slice

    out = {}
    for model in MODELS:
        key = f"eval_{model}"
        if not dataset.has_evaluation(key):
            evaluate_detections(dataset, model, "ground_truth", eval_key=key, classes=list(CLASSES))
        out[model] = {
            "all": evaluate_slice(dataset, key),
            "slice": evaluate_slice(dataset, key, DEMO_SLICE),
        }
    out["changes"] = compare_runs(dataset, "eval_baseline", "eval_retrained").changes
    return out


def find_demo_issues(dataset, manifest_path) -> list[str]:
    """Runs the label-issue finder with both models (earlier review decisions are kept) and
    scores it against the planted errors of the manifest."""
    from detection_debugger.datasets.label_issues import find_label_issues
    from detection_debugger.demo.label_quality import (
        format_quality,
        manifest_truth,
        measure_quality,
        our_candidates,
    )

    report = find_label_issues(dataset, "ground_truth", list(MODELS))
    manifest = json.loads(Path(manifest_path).read_text())
    quality = measure_quality(
        our_candidates(dataset, "ground_truth"), manifest_truth(dataset, "ground_truth", manifest)
    )
    return [
        *report.summary(),
        "against the planted errors (precision / recall at the default thresholds, and at "
        "the top k = number planted):",
        *format_quality({"detection-debugger": quality}),
    ]


def _faded_in(view, scenes: dict) -> int:
    """Ground-truth crosswalks of ``view`` that are faded in the manifest (the manifest's
    crosswalk of their image that they overlap most, at IoU >= 0.1: a loose box still overlaps it) has fade >= FADED_AT)."""
    faded = 0
    columns = ["filepath", "metadata.width", "metadata.height", "ground_truth.detections"]
    for path, width, height, labels in zip(*view.values(columns)):
        truth = [o for o in scenes[Path(path).stem] if o["label"] == "crosswalks"]
        for label in labels or []:
            x, y, w, h = label.bounding_box
            box = (x * width, y * height, (x + w) * width, (y + h) * height)
            best = max(truth, key=lambda o: _iou(box, o["box"]), default=None)
            faded += best is not None and _iou(box, best["box"]) >= 0.1 and best["fade"] >= FADED_AT
    return faded


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def discovery_story(dataset, manifest_path, top: int = 3) -> list[str]:
    """Slice discovery on the baseline run, the generator's scene fields excluded: the top
    hypotheses for crosswalks, each with its share of faded crosswalks per the manifest."""
    from detection_debugger.datasets.discovery import discover_run, hypothesis_view
    from detection_debugger.evaluation.slice_discovery import DiscoveryConfig

    found = discover_run(dataset, "eval_baseline", "crosswalks", DiscoveryConfig(top=top))
    scenes = json.loads(Path(manifest_path).read_text())["scenes"]
    lines = [
        f"crosswalks on eval_baseline: {found.num_tested} slices of "
        f"{len(found.descriptors)} descriptors tested (scene fields excluded), "
        f"{found.num_significant} significant after Bonferroni correction"
    ]
    for h in found.hypotheses:
        faded = _faded_in(hypothesis_view(dataset, "eval_baseline", h.to_dict()), scenes)
        lines.append(
            f"{h.name}: {h.num_gt} crosswalks, normalized AP {h.AP:.3f} vs {h.baseline_AP:.3f} "
            f"(p = {h.p_value:.2g}); {faded} of them faded per the manifest "
            f"({faded / h.num_gt:.0%})"
        )
    return lines


def _story(results: dict) -> list[str]:
    base, new = results["baseline"], results["retrained"]
    cw_all, cw_slice = base["all"].classes["crosswalks"], base["slice"].classes["crosswalks"]
    cw_new = new["all"].classes["crosswalks"]
    worst = min(
        (n for n, m in base["all"].classes.items() if m.AP is not None),
        key=lambda n: base["all"].classes[n].AP,
    )
    lines = [
        f"lowest AP: {worst} ({base['all'].classes[worst].AP:.3f}); "
        f"most room to improve: {base['all'].most_room_to_improve()}",
        f"crosswalks confusion: {cw_all.tp} correct, {cw_all.fn} undetected, "
        f"{cw_all.fp} ghosts, {cw_all.mispredicted} mispredicted",
    ]
    if cw_slice.AP is not None and cw_all.AP:
        lines.append(
            f"slice {DEMO_SLICE!r} ({base['slice'].params['num_images']} images): crosswalks "
            f"AP {cw_slice.AP:.3f} vs {cw_all.AP:.3f} on all images "
            f"({cw_slice.AP / cw_all.AP:.0%} of it)"
        )
    lines.append(
        f"retrained model: crosswalks AP {cw_all.AP:.3f} -> {cw_new.AP:.3f}, "
        f"AR {cw_all.AR100:.3f} -> {cw_new.AR100:.3f}"
    )
    changes = results["changes"].counts["crosswalks"]
    lines.append(
        f"crosswalks object by object: {changes['fixed']} found now that the baseline missed, "
        f"{changes['regressed']} lost, {changes['still_missed']} still missed "
        "(panel: compare eval_baseline with eval_retrained)"
    )
    return lines


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the App server exited with code {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    raise RuntimeError(f"the App server did not open port {port} in {timeout:.0f} s")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C: clean shutdown


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _plugins_folder(data_dir: Path) -> Path:
    """``data_dir/plugins`` with this plugin linked in (FiftyOne's plugins folder)."""
    plugins = data_dir / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "detection-debugger"
    if not link.exists():
        link.symlink_to(PLUGIN_ROOT, target_is_directory=True)
    return plugins


def _tell_the_story(dataset, files: dict) -> None:
    """Evaluates both models and prints their tables, the story and the label quality."""
    _say("evaluating both prediction sets ...")
    results = evaluate_demo(dataset)
    for model in MODELS:
        _say(f"\n== {model} ==")
        _say(results[model]["all"].format_table())
    _say("\n" + results["baseline"]["all"].format_confusion())
    _say("\n== the story ==")
    for line in _story(results):
        _say("  " + line)
    _say("\n== failure slices found automatically (slices discover) ==")
    for line in discovery_story(dataset, files["manifest"]):
        _say("  " + line)
    _say("\n== label quality ==")
    for line in find_demo_issues(dataset, files["manifest"]):
        _say("  " + line)
    _say(f"\n(note: {dataset.info.get('demo_note')})")


def _say_where_the_app_is(dataset, data_dir: Path, port: int) -> None:
    _say(f"\nFiftyOne App with the plugin: http://127.0.0.1:{port}/datasets/{dataset.name}")
    _say("in another terminal, the command line works on the same database, e.g.")
    if data_dir != project_data_dir():
        _say(f"  export {DATA_DIR_ENV}={data_dir}")
    _say(f"  detection-debugger slices list --dataset {dataset.name} --eval-key eval_baseline")
    _say("press Ctrl-C to stop (the App and the database stop with it)")


# long: the main job in order, inside its signal handling and its clean-up
def run_demo(
    num_images: int = 500,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    app: bool = True,
    port: int = 5151,
    simulated: bool = False,
) -> int:
    """The whole pipeline; serves the App until Ctrl-C when ``app`` is True; ``simulated``
    imports the simulated prediction sets instead of the networks' (quick tests)."""
    data_dir = Path(data_dir).resolve() if data_dir else project_data_dir()
    config = DemoConfig(num_images=num_images, seed=seed)
    if app and not _port_free(port):
        _say(f"port {port} is in use: stop what runs there or pass --port")
        return 2
    plugins = _plugins_folder(data_dir)
    database = contextlib.ExitStack()
    app_process = None
    # Ctrl-C and SIGTERM both stop the demo cleanly (SIGINT is set explicitly because a
    # shell that starts us in the background leaves it ignored).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The project's database rule (dbserver.project_database): the CLI run in another
        # terminal reaches the same database and sees the demo dataset.
        database.enter_context(project_database(data_dir))
        env = {"FIFTYONE_PLUGINS_DIR": str(plugins)}
        os.environ.update(env)
        dataset, files = build_demo_dataset(config, data_dir, simulated=simulated)
        _tell_the_story(dataset, files)
        if not app:
            return 0
        app_process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fiftyone.server.main",
                "--address",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, **env},
            start_new_session=True,
        )
        _wait_for_port(port, app_process)
        _say_where_the_app_is(dataset, data_dir, port)
        app_process.wait()
        return app_process.returncode or 0
    except KeyboardInterrupt:
        _say("\nstopping ...")
        return 0
    finally:
        # The App first (it uses the database), then the database. Both steps are bounded
        # (SIGKILL after 15 s for the App, 20 s for mongod), so a second Ctrl-C is ignored
        # meanwhile instead of cutting the shutdown short and leaving them running.
        # MongoServer.stop also releases FiftyOne's client before stopping mongod: FiftyOne's
        # exit hook then needs no database and the process exits at once.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            _stop_app(app_process)
            database.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _stop_app(process: subprocess.Popen | None) -> None:
    """Stops the App server and what it started (its own process group)."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
