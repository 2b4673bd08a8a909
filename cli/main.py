"""The ``detection-debugger`` command line.

Exit codes: 0 success; 2 bad input or usage, one line on stderr
``detection-debugger: error: FILE[:LINE]: reason`` (or the plain reason when no file is
involved); 130 interrupted (Ctrl-C); 1 an unexpected failure (a bug), one line
``detection-debugger: internal error: TYPE: message`` -- with ``DETECTION_DEBUGGER_DEBUG=1``
the traceback is raised instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from detection_debugger.cli.common import UsageError
from detection_debugger.cli.demo import add_demo_command
from detection_debugger.cli.evaluate import add_evaluate_command
from detection_debugger.cli.import_export import add_export_command, add_import_command
from detection_debugger.cli.issues import add_issues_command
from detection_debugger.cli.plugin import add_plugin_command
from detection_debugger.cli.search import add_search_command
from detection_debugger.cli.slices import add_compare_command, add_slices_command
from detection_debugger.datasets.database import project_database
from detection_debugger.formats import FormatError

PROG = "detection-debugger"
DEBUG_ENV = "DETECTION_DEBUGGER_DEBUG"
_PACKAGE = "detection_debugger"


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each command group adds its own subcommands)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Find why an object detector fails, by looking at the data."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        add_evaluate_command,
        add_import_command,
        add_export_command,
        add_slices_command,
        add_compare_command,
        add_demo_command,
        add_issues_command,
        add_search_command,
        add_plugin_command,
    ):
        add_command(commands)
    return parser


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
