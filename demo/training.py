"""The demo's two real networks: trained on a training split, corrected with the plugin.

- The **training split** (:data:`TRAIN_SPLIT`) comes from the same scene generator as the
  evaluation split, with another seed and, as in the case study, few worn crosswalks (10%
  instead of 45%). Its labels carry the same kinds of planted errors. It is imported into the
  dataset ``crosswalks-train-1500-1`` (field ``ground_truth``).
- :func:`train_model` (``detection-debugger demo train --labels FIELD --out DIR``) exports the
  label field with ``export --format kitti``, trains the network on those files (plus
  ``extra_faded`` scenes of :data:`EXTRA_FADED`), saves ``weights.pt`` and writes TAO-style
  predictions (KITTI + confidence) for the evaluation images and the training split.
- :func:`make_weights` (``detection-debugger demo weights``) is the loop of the case study:
  train ``baseline`` on ``ground_truth``; import its predictions on the training split; find
  the label issues; review them (the manifest plays the reviewer: a flagged issue is accepted
  when it is a planted error, rejected otherwise); train ``retrained`` on
  ``ground_truth_fixed`` plus 300 scenes of faded crosswalks; copy both weights to
  ``demo/weights/``.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from detection_debugger.demo.scenes import CLASSES, DemoConfig, ensure_demo_files
from detection_debugger.detector.inference import write_predictions
from detection_debugger.detector.training import (
    TrainConfig,
    load_detector,
    save_detector,
    train_detector,
)
from detection_debugger.formats import read_kitti_folder

__all__ = [
    "EXTRA_FADED",
    "TRAIN_SPLIT",
    "WEIGHTS_DIR",
    "make_weights",
    "predict_demo",
    "train_model",
    "train_split_dataset",
]

TRAIN_SPLIT = DemoConfig(num_images=1500, seed=1, faded_share=0.1)
# What a user adds after finding the slice: scenes with worn crosswalks, labelled with care.
EXTRA_FADED = DemoConfig(
    num_images=300, seed=2, faded_share=1.0, crosswalks_per_image=1.2, clean_labels=True
)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TRAIN_DATASET = f"crosswalks-train-{TRAIN_SPLIT.num_images}-{TRAIN_SPLIT.seed}"
SIZE = (640, 384)  # every demo image


def _say(text: str = "") -> None:
    print(text, flush=True)


def _image_paths(folder, stems) -> list[str]:
    return [str(Path(folder) / f"{stem}.jpg") for stem in stems]


def train_split_dataset(data_dir, config: DemoConfig = TRAIN_SPLIT, name: str | None = None):
    """The training split as a FiftyOne dataset (imported once); returns ``(dataset, files)``."""
    import fiftyone as fo

    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import

    files = ensure_demo_files(data_dir, config, progress=_say)
    name = name or f"crosswalks-train-{config.num_images}-{config.seed}"
    if fo.dataset_exists(name):
        dataset = fo.load_dataset(name)
        if dataset.info.get("demo_key") == config.key:
            return dataset, files
        dataset.delete()
    _say(f"importing the training split into dataset {name!r} ...")
    source = LabelSource(files["labels"], "kitti", "ground_truth", predictions=False)
    dataset = apply_import(plan_import(name, files["images"], [source]), progress=False)
    dataset.info["demo_key"] = config.key
    dataset.save()
    return dataset, files


def _exported_labels(dataset, labels: str, out: Path):
    """Exports ``labels`` with the KITTI exporter; returns ``(image paths, records)``."""
    from detection_debugger.datasets.exporting import export_labels

    report = export_labels(
        dataset, labels, "kitti", out / "train-labels", overwrite=True, use_corrected=False
    )
    _say("  " + report.summary()[0])
    images, _ = read_kitti_folder(out / "train-labels" / "labels", False)
    return _image_paths(out / "train-labels" / "images", [im.stem for im in images]), images


def _extra_scenes(data_dir, count: int):
    files = ensure_demo_files(data_dir, EXTRA_FADED, progress=_say)
    images, _ = read_kitti_folder(files["labels"], False)
    images = images[:count]
    return _image_paths(files["images"], [im.stem for im in images]), images


def train_model(
    data_dir,
    labels: str,
    out,
    extra_faded: int = 0,
    config: TrainConfig | None = None,
    eval_config: DemoConfig | None = None,
    train_split: DemoConfig = TRAIN_SPLIT,
) -> dict:
    """Trains the network on the training split's field ``labels`` (plus ``extra_faded``
    scenes), saves ``out/weights.pt`` and writes predictions for the evaluation images
    (``out/predictions``) and the training split (``out/train-predictions``)."""
    out, config, eval_config = Path(out), config or TrainConfig(), eval_config or DemoConfig()
    dataset, train_files = train_split_dataset(data_dir, train_split)
    paths, records = _exported_labels(dataset, labels, out)
    if extra_faded:
        extra_paths, extra_records = _extra_scenes(data_dir, extra_faded)
        paths, records = paths + extra_paths, records + extra_records
    _say(f"training on {len(paths)} images ({config.iterations} steps, CPU) ...")
    model, summary = train_detector(paths, records, [SIZE] * len(paths), CLASSES, config, _say)
    meta = {
        "command": " ".join(["detection-debugger", *sys.argv[1:]]),
        "labels": labels,
        "train_split": asdict(train_split),
        "extra_faded": {"count": extra_faded, "scenes": asdict(EXTRA_FADED)},
        **summary,
    }
    save_detector(out / "weights.pt", model, CLASSES, config.input_size, meta)
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    _say(f"trained in {summary['seconds']:.0f} s; weights in {out / 'weights.pt'}")
    eval_files = ensure_demo_files(data_dir, eval_config, progress=_say)
    for folder, target in ((eval_files, "predictions"), (train_files, "train-predictions")):
        stems = sorted(p.stem for p in Path(folder["images"]).glob("*.jpg"))
        done = write_predictions(
            load_detector(out / "weights.pt"),
            _image_paths(folder["images"], stems),
            [SIZE] * len(stems),
            out / target,
        )
        _say(
            f"  {target}: {done['objects']} objects on {done['images']} images in {done['seconds']} s"
        )
    return meta


def predict_demo(weights, images_dir, folder) -> dict:
    """TAO-style predictions of a weights file for every ``.jpg`` of ``images_dir``."""
    stems = sorted(p.stem for p in Path(images_dir).glob("*.jpg"))
    return write_predictions(
        load_detector(weights), _image_paths(images_dir, stems), [SIZE] * len(stems), folder
    )


def _reviewed_ids(dataset, manifest: dict) -> tuple[list[str], list[str], dict]:
    """The reviewer: ``(accepted, rejected, per type)`` ids of the flagged issues, accepted
    when the manifest lists the planted error they point to; per type: ``{type: {"planted",
    "flagged", "accepted"}}`` (accepted / flagged is the finder's precision here)."""
    from detection_debugger.datasets.review import flagged_label_ids
    from detection_debugger.demo.label_quality import manifest_truth
    from detection_debugger.evaluation.label_issues import ISSUE_TYPES, MISSING

    truth = manifest_truth(dataset, "ground_truth", manifest)
    accepted, rejected, per_type = [], [], {}
    for issue in ISSUE_TYPES:
        ids = flagged_label_ids(dataset, "ground_truth", issue)
        good = _true_missing(dataset, truth[MISSING]) if issue == MISSING else truth[issue]
        accepted += [i for i in ids if i in good]
        rejected += [i for i in ids if i not in good]
        planted = truth[issue]
        per_type[issue] = {
            "planted": sum(map(len, planted.values())) if issue == MISSING else len(planted),
            "flagged": len(ids),
            "accepted": sum(i in good for i in ids),
        }
    return accepted, rejected, per_type


def _true_missing(dataset, planted: dict, min_iou: float = 0.3) -> set[str]:
    """Ids of missing candidates that overlap a planted missing object of their image."""
    import numpy as np

    from detection_debugger.datasets.issue_fields import missing_field
    from detection_debugger.evaluation.matching import pair_iou

    field = missing_field("ground_truth")
    out = set()
    for sid, ids, boxes in zip(
        *dataset.values(["id", f"{field}.detections.id", f"{field}.detections.bounding_box"])
    ):
        truth = np.array(planted.get(sid, []), float).reshape(-1, 4)
        for lid, (x, y, w, h) in zip(ids or [], boxes or []):
            box = np.array([[x * SIZE[0], y * SIZE[1], w * SIZE[0], h * SIZE[1]]])
            ious = pair_iou(np.repeat(box, len(truth), 0), truth, np.zeros(len(truth), bool))
            if len(truth) and ious.max() >= min_iou:
                out.add(lid)
    return out


def fix_training_labels(data_dir, baseline_dir, train_split: DemoConfig = TRAIN_SPLIT) -> dict:
    """Imports the baseline's predictions on the training split, finds the label issues
    and reviews them; returns the review counts (``ground_truth_fixed`` is written)."""
    from detection_debugger.datasets.importing import LabelSource, apply_import, plan_import
    from detection_debugger.datasets.label_issues import find_label_issues
    from detection_debugger.datasets.review import accept_issues, reject_issues

    dataset, files = train_split_dataset(data_dir, train_split)
    source = LabelSource(str(Path(baseline_dir) / "train-predictions"), "tao", "baseline", True)
    dataset = apply_import(
        plan_import(dataset.name, files["images"], [source]), replace=True, progress=False
    )
    report = find_label_issues(dataset, "ground_truth", ["baseline"])
    for line in report.summary():
        _say("  " + line)
    manifest = json.loads(Path(files["manifest"]).read_text())
    accepted, rejected, per_type = _reviewed_ids(dataset, manifest)
    counts = {"accepted": len(accepted), "rejected": len(rejected), "per_type": per_type}
    accept_issues(dataset, "ground_truth", accepted)
    reject_issues(dataset, "ground_truth", rejected)
    _say(f"  review: {counts['accepted']} issues accepted, {counts['rejected']} rejected")
    for issue, c in per_type.items():
        _say(
            f"    {issue}: {c['accepted']} of {c['flagged']} flagged are planted errors "
            f"(of {c['planted']} planted)"
        )
    # nothing accepted: no corrected field, the labels stay as they are
    counts["field"] = (
        "ground_truth_fixed" if dataset.has_field("ground_truth_fixed") else "ground_truth"
    )
    return counts


def make_weights(
    data_dir,
    out,
    config: TrainConfig | None = None,
    extra_faded: int = 300,
    splits: tuple[DemoConfig, DemoConfig] = (TRAIN_SPLIT, DemoConfig()),
    weights_dir: Path = WEIGHTS_DIR,
) -> dict:
    """The whole loop (module doc); the weights end up in ``out/{baseline,retrained}`` and
    are copied to ``weights_dir``. ``splits``: the training and evaluation sets."""
    out, (train_split, eval_config) = Path(out), splits
    common = {"config": config, "eval_config": eval_config, "train_split": train_split}
    _say("== baseline: the original labels ==")
    train_model(data_dir, "ground_truth", out / "baseline", **common)
    _say("== the label finder on the training split, with the baseline ==")
    review = fix_training_labels(data_dir, out / "baseline", train_split)
    _say("== retrained: corrected labels + scenes of faded crosswalks ==")
    meta = train_model(
        data_dir, review["field"], out / "retrained", extra_faded=extra_faded, **common
    )
    meta["review"] = review
    (out / "retrained" / "training.json").write_text(json.dumps(meta, indent=1))
    Path(weights_dir).mkdir(parents=True, exist_ok=True)
    for model in ("baseline", "retrained"):
        shutil.copyfile(out / model / "weights.pt", Path(weights_dir) / f"{model}.pt")
        shutil.copyfile(out / model / "training.json", Path(weights_dir) / f"{model}.json")
    return meta
