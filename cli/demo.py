"""``detection-debugger demo``: the crosswalk case study, the main job; ``demo train`` and
``demo weights`` make its two networks."""

from __future__ import annotations

import argparse

from detection_debugger.cli.common import UsageError
from detection_debugger.datasets.database import DATA_DIR_ENV

__all__ = ["add_demo_command"]


def _data_dir_argument(parser) -> None:
    parser.add_argument(
        "--data-dir",
        help=f"where data and database live (${DATA_DIR_ENV}, else .data in the checkout)",
    )


def _training_arguments(parser) -> None:
    _data_dir_argument(parser)
    parser.add_argument("--iterations", type=int, default=600, help="optimiser steps (600)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (0)")


def add_demo_command(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="the crosswalk case study: generate, import, evaluate, open the App",
        description=(
            "Generates the demo traffic scenes (rendered images, labels with planted errors) "
            "if missing, runs the two shipped networks (baseline, retrained) on them, imports "
            "everything into FiftyOne, evaluates both models and serves the App with the "
            "plugin until Ctrl-C."
        ),
    )
    demo.add_argument("--images", type=int, default=500, help="number of images (500)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (0)")
    _data_dir_argument(demo)
    demo.add_argument("--port", type=int, default=5151, help="App port (5151)")
    demo.add_argument("--no-app", action="store_true", help="run headless, print the story")
    demo.add_argument(
        "--simulated",
        action="store_true",
        help="use prediction sets drawn from the scenes instead of the networks (quick tests)",
    )
    demo.set_defaults(run=run_demo)
    steps = demo.add_subparsers(dest="demo_step", metavar="{train,weights}")
    train = steps.add_parser(
        "train",
        help="train the demo network on a label field of the training split",
        description=(
            "Trains the demo's detector (CPU) on the label field FIELD of the training split "
            "(dataset crosswalks-train-1500-1, exported with export --format kitti), saves "
            "OUT/weights.pt and writes TAO-style predictions for the evaluation images "
            "(OUT/predictions) and the training split (OUT/train-predictions)."
        ),
    )
    train.add_argument("--labels", required=True, metavar="FIELD", help="e.g. ground_truth")
    train.add_argument("--out", required=True, metavar="DIR", help="output folder")
    train.add_argument(
        "--extra-faded", type=int, default=0, help="add N scenes of faded crosswalks (0)"
    )
    _training_arguments(train)
    train.set_defaults(run=run_train)
    weights = steps.add_parser(
        "weights",
        help="the whole loop: baseline, label fixes, retrained; refresh demo/weights/",
    )
    weights.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _training_arguments(weights)
    weights.set_defaults(run=run_weights)


def run_demo(args: argparse.Namespace) -> int:
    from detection_debugger.demo.runner import run_demo as demo

    if args.images < 1:
        raise UsageError("--images must be at least 1")
    return demo(
        args.images,
        args.seed,
        args.data_dir,
        app=not args.no_app,
        port=args.port,
        simulated=args.simulated,
    )


def _train_config(args: argparse.Namespace):
    from detection_debugger.detector.training import TrainConfig

    if args.iterations < 1:
        raise UsageError("--iterations must be at least 1")
    return TrainConfig(iterations=args.iterations, seed=args.seed)


def run_train(args: argparse.Namespace) -> int:
    from detection_debugger.datasets.database import project_database
    from detection_debugger.demo.training import train_model

    config = _train_config(args)
    with project_database(args.data_dir):
        train_model(
            _data_dir(args), args.labels, args.out, extra_faded=args.extra_faded, config=config
        )
    return 0


def run_weights(args: argparse.Namespace) -> int:
    from detection_debugger.datasets.database import project_database
    from detection_debugger.demo.training import make_weights

    config = _train_config(args)
    with project_database(args.data_dir):
        make_weights(_data_dir(args), args.out, config=config)
    return 0


def _data_dir(args: argparse.Namespace):
    from detection_debugger.datasets.database import project_data_dir

    return args.data_dir or project_data_dir()
