"""``detection-debugger slices`` and ``compare``: saved views re-evaluated, runs side by side."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from detection_debugger.cli.common import UsageError, load_dataset, write_output
from detection_debugger.evaluation import CHANGES

__all__ = ["add_compare_command", "add_slices_command"]


def add_slices_command(subparsers) -> None:
    slices = subparsers.add_parser(
        "slices",
        help="list the slices (saved views) of a dataset, or re-evaluate a run on one",
        description=(
            "Slices are saved views. 'list' shows them (with the run's AP on each when "
            "--eval-key is given); 'evaluate' re-evaluates an evaluation run on a slice "
            "exactly, from the run's stored matches, and writes the JSON of 'evaluate'; "
            "'save' saves the samples listed in --samples as the slice --slice; 'discover' "
            "searches the run's failure slices (descriptor ranges and pairs where a class "
            "loses AP, chance-corrected), prints them, writes their JSON with --output and "
            "saves them as slices with --save."
        ),
    )
    slices.add_argument("action", choices=("list", "evaluate", "save", "discover"))
    slices.add_argument("--dataset", required=True)
    slices.add_argument("--eval-key", metavar="KEY", help="an evaluation run of this plugin")
    slices.add_argument("--slice", metavar="NAME", help="the slice (default: the whole run)")
    slices.add_argument("--output", metavar="OUT.json", help="write here instead of stdout")
    slices.add_argument(
        "--samples", metavar="FILE", help="save: sample ids or image paths, one a line"
    )
    slices.add_argument("--description", help="save: what the slice is (the hypothesis)")
    slices.add_argument("--overwrite", action="store_true", help="save: replace a slice")
    slices.add_argument(
        "--class", dest="cls", metavar="C", help="discover: one class (default: every class)"
    )
    slices.add_argument("--top", type=int, default=10, help="discover: hypotheses shown (10)")
    slices.add_argument(
        "--save", action="store_true", help="discover: save each hypothesis as a slice"
    )
    slices.set_defaults(run=run_slices)


def add_compare_command(subparsers) -> None:
    compare = subparsers.add_parser(
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
        "--slice",
        action="append",
        metavar="NAME",
        help="compare on this slice too (repeatable; the whole run is always included)",
    )
    compare.add_argument("--format", choices=("json", "table"), default="json")
    compare.add_argument("--output", metavar="OUT", help="write here instead of stdout")
    compare.set_defaults(run=run_compare)


def run_slices(args: argparse.Namespace) -> int:
    from detection_debugger.datasets import slices

    dataset = load_dataset(args.dataset)
    try:
        if args.action == "save":
            return _save_slice(dataset, args)
        if args.action == "discover":
            return _discover(dataset, args)
        if args.action == "evaluate":
            if not args.eval_key:
                raise UsageError("slices evaluate needs --eval-key")
            result = slices.evaluate_slice(dataset, args.eval_key, args.slice)
            write_output(json.dumps(result.to_dict(), indent=2), args.output)
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
        write_output(json.dumps(rows, indent=2), args.output)
    print(format_slice_list(rows, args.eval_key))
    return 0


def format_slice_list(rows: list[dict], eval_key: str | None = None) -> str:
    """The rows of ``list_slices`` as a text table (with AP columns when evaluated)."""
    if not rows:
        return "no slices (save a view as a slice with the save_slice operator)"
    head = f"{'slice':<28}{'samples':>8}"
    if eval_key:
        head += f"{'level':>9}{'AP':>8}{'AP (all)':>10}"
    lines = [head + "  description", "-" * (len(head) + 13)]

    def fmt(value):
        return f"{'n/a':>8}" if value is None else f"{value:8.3f}"

    for row in rows:
        line = f"{row['name'][:27]:<28}{row['num_samples']:>8}"
        if eval_key:
            line += f"{row['selection']:>9}{fmt(row['AP'])}{fmt(row['AP_whole_run']):>10}"
        lines.append(line + "  " + row["description"])
    return "\n".join(lines)


def _discover(dataset, args: argparse.Namespace) -> int:
    from detection_debugger.datasets.discovery import discover_run, save_hypothesis
    from detection_debugger.evaluation.slice_discovery import DiscoveryConfig

    if not args.eval_key:
        raise UsageError("slices discover needs --eval-key")
    if args.top < 1:
        raise UsageError("--top must be at least 1")

    def progress(done: int, total: int) -> None:
        if done == 1 or done == total or done % max(1, total // 10) == 0:
            print(f"computing descriptors: {done}/{total} images", file=sys.stderr, flush=True)

    start = time.perf_counter()
    found = discover_run(
        dataset, args.eval_key, args.cls, DiscoveryConfig(top=args.top), progress=progress
    )
    rows = found.to_dicts()
    if args.save:
        for row in rows:
            save_hypothesis(dataset, args.eval_key, row, overwrite=True)
    if args.output:
        write_output(json.dumps(rows, indent=2), args.output)
    print(format_hypotheses(rows))
    print(
        f"{found.num_tested} slices of {len(found.descriptors)} descriptors tested, "
        f"{found.num_significant} significant after Bonferroni correction "
        f"({time.perf_counter() - start:.1f} s)" + (", saved as slices" if args.save else "")
    )
    return 0


def format_hypotheses(rows: list[dict]) -> str:
    """The rows of ``discover_slices`` as a text table."""
    if not rows:
        return "no slice loses significantly more AP than chance would"
    head = f"{'#':>3} {'class':<14}{'level':>8}{'GT':>6}{'AP':>7}{'base':>7}{'dAP':>8}{'score':>7}"
    lines = [head + "  slice", "-" * (len(head) + 40)]
    for rank, row in enumerate(rows, 1):
        lines.append(
            f"{rank:>3} {row['class'][:13]:<14}{row['level']:>8}{row['num_gt']:>6}"
            f"{row['AP']:7.3f}{row['baseline_AP']:7.3f}{row['delta_AP']:+8.3f}"
            f"{row['score']:7.3f}  {row['name']}"
        )
    if any(row["level"] == "objects" for row in rows):
        lines.append(
            "(objects: AP of the slice's objects against every false positive of the class, "
            "normalized to the class's objects; the saved slice evaluates to slice_AP)"
        )
    return "\n".join(lines)


def _save_slice(dataset, args: argparse.Namespace) -> int:
    from detection_debugger.datasets import slices
    from detection_debugger.formats.text_files import read_text_lines

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
    from detection_debugger.datasets.comparison import compare_runs
    from detection_debugger.datasets.slices import load_slice

    dataset = load_dataset(args.dataset)
    key_a, key_b = args.eval_keys
    try:
        scopes = [compare_runs(dataset, key_a, key_b)]
        for name in args.slice or []:
            view = load_slice(dataset, name)
            scopes.append(compare_runs(dataset, key_a, key_b, view, scope=name))
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.format == "table":
        text = "\n\n".join(format_comparison(scope) for scope in scopes)
    else:
        text = json.dumps(
            {
                "dataset": args.dataset,
                "eval_keys": [key_a, key_b],
                "scopes": [scope.to_dict() for scope in scopes],
            },
            indent=2,
        )
    write_output(text, args.output)
    return 0


def format_comparison(run) -> str:
    """A :class:`~detection_debugger.datasets.comparison.RunComparison` as text: a per-class
    table and the per-object changes."""
    a, b = run.eval_keys
    lines = [f"{a} vs {b} on {run.scope} (Δ = {b} - {a})", run.comparison.format_table()]
    lines.append(f"\nground-truth objects from {a} to {b}:")
    lines.append(f"{'class':<20}" + "".join(f"{c:>14}" for c in CHANGES))
    for name, counts in run.changes.counts.items():
        lines.append(f"{name[:19]:<20}" + "".join(f"{counts[c]:>14}" for c in CHANGES))
    return "\n".join(lines)
