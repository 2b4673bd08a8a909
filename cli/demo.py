"""``detection-debugger demo``: the crosswalk case study, the main job."""

from __future__ import annotations

import argparse

from detection_debugger.cli.common import UsageError
from detection_debugger.datasets.database import DATA_DIR_ENV

__all__ = ["add_demo_command"]


def add_demo_command(subparsers) -> None:
    demo = subparsers.add_parser(
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


def run_demo(args: argparse.Namespace) -> int:
    from detection_debugger.demo.runner import run_demo as demo

    if args.images < 1:
        raise UsageError("--images must be at least 1")
    return demo(args.images, args.seed, args.data_dir, app=not args.no_app, port=args.port)
