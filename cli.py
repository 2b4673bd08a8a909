"""The ``detection-debugger`` command line.

Exit codes: 0 success; 2 bad input or usage, one line on stderr
``detection-debugger: error: FILE[:LINE]: reason`` (or the plain reason when no file is
involved); 130 interrupted (Ctrl-C); 1 an unexpected failure (a bug), one line
``detection-debugger: internal error: TYPE: message`` -- with ``DETECTION_DEBUGGER_DEBUG=1``
the traceback is raised instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from .dataset_export import EXPORT_FORMATS, make_folder
from .dataset_import import GT_FORMATS, PRED_FORMATS
from .dbserver import DATA_DIR_ENV, project_database
from .evaluation import DetectionSet, InputError, MatchTable
from .evaluation.detections import GT, PRED
from .formats import (
    ClassMap,
    FormatError,
    check_coco_ground_truth,
    read_coco_ground_truth,
    read_coco_results,
    read_image_ids,
)
from .formats.image_ids import integer_id

PROG = "detection-debugger"
DEBUG_ENV = "DETECTION_DEBUGGER_DEBUG"
_PACKAGE = __name__.rpartition(".")[0] or "detection_debugger"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def _iou(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Find why an object detector fails, by looking at the data."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "evaluate",
        help="COCO metrics, per-class counts and the 4-way confusion matrix of COCO files",
        description=(
            "Evaluates COCO results against COCO ground truth: the 12 COCO statistics "
            "(identical to pycocotools), per-class AP/AP50/AP75/AR100 and TP/FN/"
            "mispredicted/FP counts, and the confusion matrix with a background row and "
            "column. Writes JSON."
        ),
    )
    evaluate.add_argument("--gt", required=True, metavar="GT.json", help="COCO ground truth")
    evaluate.add_argument(
        "--pred", required=True, metavar="DETS.json", help="COCO results (detections list)"
    )
    evaluate.add_argument(
        "--iou", type=_iou, default=0.5, help="IoU threshold of the confusion matrix (0.5)"
    )
    evaluate.add_argument(
        "--score-threshold",
        type=float,
        default=0.0,
        help="predictions below this score are left out of the confusion matrix (0)",
    )
    evaluate.add_argument(
        "--image-ids", metavar="FILE", help="evaluate only these COCO image ids (one a line)"
    )
    evaluate.add_argument("--output", metavar="OUT.json", help="write here instead of stdout")
    evaluate.set_defaults(run=run_evaluate)

    imp = commands.add_parser(
        "import",
        help="import images, ground truth and predictions into a FiftyOne dataset",
        description=(
            "Creates or extends a persistent FiftyOne dataset: images from --images, ground "
            "truth in 'ground_truth', each prediction set in its own field. Every file is "
            "read and validated before anything is written."
        ),
    )
    imp.add_argument("--dataset", required=True, help="dataset name (created if missing)")
    imp.add_argument("--images", required=True, metavar="DIR", help="folder of the images")
    imp.add_argument(
        "--gt", metavar="PATH", help="ground truth: COCO JSON, or KITTI/YOLO/txt/VOC folder"
    )
    imp.add_argument(
        "--gt-format", choices=GT_FORMATS, help="format of --gt (auto: from the files)"
    )
    imp.add_argument("--gt-field", default="ground_truth", help="field for --gt (ground_truth)")
    imp.add_argument(
        "--pred",
        metavar="PATH",
        help="predictions: TAO/KITTI, YOLO or txt folder, COCO results or Ultralytics JSON",
    )
    imp.add_argument(
        "--pred-format", choices=PRED_FORMATS, help="format of --pred (auto: from the files)"
    )
    imp.add_argument("--pred-field", default="predictions", help="field for --pred (predictions)")
    imp.add_argument("--class-map", metavar="FILE", help="YAML/JSON {name in files: class}")
    imp.add_argument(
        "--class-names",
        metavar="FILE",
        help="class names file (classes.txt, data.yaml): YOLO classes, and the category ids "
        "(class index + 1) of Ultralytics/COCO results without COCO ground truth",
    )
    imp.add_argument(
        "--images-json", metavar="FILE", help="COCO/Ultralytics results without COCO ground "
        "truth: a JSON with 'images' [{id, file_name}] and 'categories' [{id, name}]",
    )  # fmt: skip
    imp.add_argument(
        "--skip-invalid", action="store_true", help="skip malformed lines (each is reported)"
    )
    imp.add_argument("--replace", action="store_true", help="overwrite existing label fields")
    imp.set_defaults(run=run_import)

    exp = commands.add_parser(
        "export",
        help="export a label field (corrected labels when they exist) as KITTI, COCO or YOLO",
        description=(
            "Exports the images and one label field of a dataset (or a saved view). KITTI is "
            "TAO-ready: images/ + labels/. The corrected field <field>_fixed is used when "
            "it exists; the original is never modified."
        ),
    )
    exp.add_argument("--dataset", required=True)
    exp.add_argument("--view", metavar="SAVED_VIEW", help="export only this saved view")
    exp.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    exp.add_argument("--label-field", required=True, metavar="FIELD")
    exp.add_argument("--output", required=True, metavar="DIR")
    exp.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    exp.add_argument(
        "--original", action="store_true", help="export FIELD itself even if FIELD_fixed exists"
    )
    exp.set_defaults(run=run_export)

    slices = commands.add_parser(
        "slices",
        help="list the slices (saved views) of a dataset, or re-evaluate a run on one",
        description=(
            "Slices are saved views. 'list' shows them (with the run's AP on each when "
            "--eval-key is given); 'evaluate' re-evaluates an evaluation run on a slice "
            "exactly, from the run's stored matches, and writes the JSON of 'evaluate'; "
            "'save' saves the samples listed in --samples as the slice --slice."
        ),
    )
    slices.add_argument("action", choices=("list", "evaluate", "save"))
    slices.add_argument("--dataset", required=True)
    slices.add_argument("--eval-key", metavar="KEY", help="an evaluation run of this plugin")
    slices.add_argument("--slice", metavar="NAME", help="the slice (default: the whole run)")
    slices.add_argument("--output", metavar="OUT.json", help="write here instead of stdout")
    slices.add_argument(
        "--samples", metavar="FILE", help="save: sample ids or image paths, one a line"
    )
    slices.add_argument("--description", help="save: what the slice is (the hypothesis)")
    slices.add_argument("--overwrite", action="store_true", help="save: replace a slice")
    slices.set_defaults(run=run_slices)

    compare = commands.add_parser(
        "compare",
        help="two evaluation runs side by side per class (and per slice), with deltas",
        description=(
            "Compares two evaluation runs of this plugin on the same ground truth (e.g. "
            "baseline and retrained predictions): per-class metrics of both and b - a, and "
            "per ground-truth object what changed (fixed, regressed, still missed, kept). "
            "Writes JSON (or a table with --format table)."
        ),
    )
    compare.add_argument("--dataset", required=True)
    compare.add_argument("--eval-keys", nargs=2, required=True, metavar=("A", "B"))
    compare.add_argument(
        "--slice", action="append", metavar="NAME",
        help="compare on this slice too (repeatable; the whole run is always included)",
    )  # fmt: skip
    compare.add_argument("--format", choices=("json", "table"), default="json")
    compare.add_argument("--output", metavar="OUT", help="write here instead of stdout")
    compare.set_defaults(run=run_compare)

    demo = commands.add_parser(
        "demo",
        help="the crosswalk case study: generate, import, evaluate, open the App",
        description=(
            "Generates the demo traffic scenes (rendered images, labels with planted errors, "
            "two simulated TAO prediction sets) if missing, imports them into FiftyOne, "
            "evaluates both models and serves the App with the plugin until Ctrl-C."
        ),
    )
    demo.add_argument("--images", type=int, default=500, help="number of images (500)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    demo.add_argument(
        "--data-dir",
        help=f"where data and database live (${DATA_DIR_ENV}, else .data in the checkout)",
    )
    demo.add_argument("--port", type=int, default=5151, help="App port (5151)")
    demo.add_argument("--no-app", action="store_true", help="run headless, print the story")
    demo.set_defaults(run=run_demo)

    from .issues_cli import add_issues_command
    from .search_cli import add_search_command

    add_issues_command(commands)
    add_search_command(commands)
    return parser


def _evaluate_coco(gt: dict, results: list, image_ids, paths: dict, iou: float, score: float):
    try:
        data = DetectionSet.from_coco(gt, results, image_ids=image_ids)
        return MatchTable.build(data, iou, score).evaluate()
    except InputError as error:
        where = paths.get(error.source, "")
        raise UsageError(f"{where}: {error}" if where else str(error)) from None


def run_evaluate(args: argparse.Namespace) -> int:
    gt = read_coco_ground_truth(args.gt)
    check_coco_ground_truth(gt, args.gt)
    results = read_coco_results(args.pred)
    image_ids = None
    if args.image_ids:
        image_ids = read_image_ids(args.image_ids)
        known = {integer_id(image["id"]) for image in gt["images"]}  # checked above
        unknown = [i for i in image_ids if i not in known]
        if unknown:
            raise UsageError(f"{args.image_ids}: image id {unknown[0]} is not in {args.gt}")
    result = _evaluate_coco(
        gt, results, image_ids, {GT: args.gt, PRED: args.pred}, args.iou, args.score_threshold
    )
    _write(json.dumps(result.to_dict(), indent=2), args.output)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from .dataset_import import LabelSource, apply_import, existing_classes, plan_import

    if not args.gt and not args.pred:
        raise UsageError("nothing to import: give --gt and/or --pred")
    sources = []
    for path, fmt, field, predictions, flag in (
        (args.gt, args.gt_format, args.gt_field, False, "--gt-format"),
        (args.pred, args.pred_format, args.pred_field, True, "--pred-format"),
    ):
        if path is None:
            continue
        if fmt is None:
            raise UsageError(f"{flag} is required with {flag[:-7]} ({flag} auto recognises it)")
        sources.append(
            LabelSource(
                path=path, format=fmt, field=field, predictions=predictions,
                class_names=args.class_names, images_json=args.images_json,
            )
        )  # fmt: skip
    class_map = ClassMap.load(args.class_map) if args.class_map else None
    known = existing_classes(args.dataset, args.gt_field) if not args.gt else None
    plan = plan_import(args.dataset, args.images, sources, class_map, args.skip_invalid, known)
    try:
        apply_import(plan, replace=args.replace)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print("\n".join(plan.summary()))
    return 0


def run_export(args: argparse.Namespace) -> int:
    import fiftyone as fo

    from .dataset_export import export_labels

    if not fo.dataset_exists(args.dataset):
        raise UsageError(f"no dataset named {args.dataset!r}")
    dataset = fo.load_dataset(args.dataset)
    view = dataset
    if args.view:
        if not dataset.has_saved_view(args.view):
            raise UsageError(f"dataset {args.dataset!r} has no saved view {args.view!r}")
        view = dataset.load_saved_view(args.view)
    try:
        report = export_labels(
            view, args.label_field, args.format, args.output, args.overwrite, not args.original
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    print("\n".join(report.summary()))
    return 0


def _load_dataset(name: str):
    import fiftyone as fo

    if not fo.dataset_exists(name):
        raise UsageError(f"no dataset named {name!r}")
    return fo.load_dataset(name)


def _write(text: str, output: str | None) -> None:
    """``text`` to the file ``output`` (its missing parent folders created) or stdout."""
    if output:
        path = Path(output)
        if path.is_dir():
            raise UsageError(f"{output}: is a folder; --output takes a file name")
        make_folder(path.parent, output)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


def run_slices(args: argparse.Namespace) -> int:
    from . import slices

    dataset = _load_dataset(args.dataset)
    try:
        if args.action == "save":
            return _save_slice(dataset, args)
        if args.action == "evaluate":
            if not args.eval_key:
                raise UsageError("slices evaluate needs --eval-key")
            result = slices.evaluate_slice(dataset, args.eval_key, args.slice)
            _write(json.dumps(result.to_dict(), indent=2), args.output)
            return 0
        results = slices.load_run(dataset, args.eval_key) if args.eval_key else None
        rows = slices.list_slices(dataset, results)
        if args.slice:
            rows = [row for row in rows if row["name"] == args.slice]
            if not rows:
                slices.load_slice(dataset, args.slice)  # raises with the list of slices
        for row in rows:
            row["created_at"] = str(row["created_at"])
            if row.get("error"):
                raise ValueError(f"slice {row['name']!r}: {row['error']}")
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.output:
        _write(json.dumps(rows, indent=2), args.output)
    print(slices.format_slice_list(rows, args.eval_key))
    return 0


def _save_slice(dataset, args: argparse.Namespace) -> int:
    from . import slices
    from .formats.text_files import read_text_lines

    if not args.slice or not args.samples:
        raise UsageError("slices save needs --slice NAME and --samples FILE")
    lines = read_text_lines(args.samples)
    ids, paths = dataset.values("id"), dataset.values("filepath")
    by_key = {**dict(zip(ids, ids)), **{p: i for i, p in zip(ids, paths)}}
    by_key.update({str(Path(p).resolve()): i for i, p in zip(ids, paths)})
    chosen = []
    for number, line in enumerate(lines, 1):
        key = line.strip()
        if not key:
            continue
        found = by_key.get(key) or by_key.get(str(Path(key).resolve()))
        if found is None:
            raise UsageError(
                f"{args.samples}:{number}: {key!r} is not a sample of {dataset.name!r}"
            )
        chosen.append(found)
    view = dataset.select(chosen, ordered=False)
    slices.save_slice(dataset, args.slice, view, args.description, overwrite=args.overwrite)
    print(f"saved slice {args.slice!r}: {len(view)} samples")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from . import slices

    dataset = _load_dataset(args.dataset)
    key_a, key_b = args.eval_keys
    try:
        scopes = [slices.compare_runs(dataset, key_a, key_b)]
        for name in args.slice or []:
            view = slices.load_slice(dataset, name)
            scopes.append(slices.compare_runs(dataset, key_a, key_b, view, scope=name))
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.format == "table":
        text = "\n\n".join(scope.format_text() for scope in scopes)
    else:
        text = json.dumps({"dataset": args.dataset, "eval_keys": [key_a, key_b],
                           "scopes": [scope.to_dict() for scope in scopes]}, indent=2)  # fmt: skip
    _write(text, args.output)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    if args.images < 1:
        raise UsageError("--images must be at least 1")
    return demo(args.images, args.seed, args.data_dir, app=not args.no_app, port=args.port)


def _own_message(error: BaseException) -> bool:
    """Whether ``error`` is a deliberate message of this package about the user's input: an
    exception type of ours (``InputError``, ``DatasetBusyError``...) or a ``raise`` statement
    in our code. A ``ValueError`` from inside a library, or from an unguarded ``int()`` of
    ours, is a bug and reported as one."""
    if type(error).__module__.startswith(_PACKAGE + "."):
        return True
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    module = tb.tb_frame.f_globals.get("__name__", "")
    if module != _PACKAGE and not module.startswith(_PACKAGE + "."):
        return False
    import linecache

    line = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    return re.match(r"\s*raise\b", line) is not None


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _os_error(error: OSError) -> str:
    reason = error.strerror or str(error)
    if error.filename is not None:
        return f"{error.filename}: {reason}"
    return reason


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "dataset", None) is None:
            return args.run(args)
        with project_database():  # every command that names a dataset: one database rule
            return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (| head): not an error worth a message
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (FormatError, UsageError) as error:
        message = str(error)
    except OSError as error:
        if os.environ.get(DEBUG_ENV):
            raise
        message = _os_error(error)
    except ValueError as error:
        if not _own_message(error) or os.environ.get(DEBUG_ENV):
            return _internal_error(error)
        message = str(error)
    except Exception as error:
        return _internal_error(error)
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return 2


def _internal_error(error: BaseException) -> int:
    if os.environ.get(DEBUG_ENV):
        raise error
    print(
        f"{PROG}: internal error: {type(error).__name__}: {_one_line(error)} "
        f"(set {DEBUG_ENV}=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
