"""``detection-debugger plugin install``: put the installed package where FiftyOne finds plugins.

After ``pip install`` of this package, one command makes the FiftyOne App see the plugin: it
links (default) or copies the package folder (which holds ``fiftyone.yml``) into
``FIFTYONE_PLUGINS_DIR`` as ``detection-debugger``. Running it again is harmless.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

from detection_debugger.cli.common import UsageError

__all__ = ["add_plugin_command", "install_plugin", "package_folder"]

PLUGIN_NAME = "@datacentric/detection-debugger"
FOLDER_NAME = "detection-debugger"
MANIFEST = "fiftyone.yml"
_NOT_PLUGIN_CODE = {"tests", "bench", "scripts", "build"}  # in a checkout, beside the package


def add_plugin_command(subparsers) -> None:
    plugin = subparsers.add_parser(
        "plugin",
        help="install the FiftyOne plugin from this installed package",
        description=(
            "'install' links (or, with --copy, copies) the installed package, which is the "
            f"plugin {PLUGIN_NAME}, into FiftyOne's plugins directory as "
            f"'{FOLDER_NAME}', so the App finds its operators and panel. Idempotent."
        ),
    )
    plugin.add_argument("action", choices=("install",))
    plugin.add_argument(
        "--plugins-dir",
        metavar="DIR",
        help="default: fiftyone.config.plugins_dir ($FIFTYONE_PLUGINS_DIR)",
    )
    plugin.add_argument(
        "--copy", action="store_true", help="copy the package files instead of linking"
    )
    plugin.set_defaults(run=run_plugin)


def run_plugin(args) -> int:
    plugins_dir = args.plugins_dir or _default_plugins_dir()
    target, what = install_plugin(Path(plugins_dir), copy=args.copy)
    print(f"{PLUGIN_NAME}: {what} {target}")
    return 0


def _default_plugins_dir() -> str:
    if os.environ.get("FIFTYONE_PLUGINS_DIR"):
        return os.environ["FIFTYONE_PLUGINS_DIR"]
    import fiftyone as fo

    if not fo.config.plugins_dir:
        raise UsageError("no plugins directory: pass --plugins-dir or set FIFTYONE_PLUGINS_DIR")
    return fo.config.plugins_dir


def package_folder() -> Path:
    """The folder of the installed package ``detection_debugger`` (the plugin folder)."""
    import detection_debugger

    folder = Path(detection_debugger.__file__).resolve().parent
    if _manifest_name(folder) != PLUGIN_NAME:
        raise UsageError(f"{folder / MANIFEST}: missing from the installed package; reinstall it")
    return folder


def install_plugin(plugins_dir: Path, copy: bool = False) -> tuple[Path, str]:
    """Links (or copies) the package into ``plugins_dir``; returns the plugin folder there and
    what was done (``linked``, ``copied``, ``already linked``). A previous link or copy of this
    plugin is replaced; anything else in the way is an error."""
    source = package_folder()
    plugins_dir = plugins_dir.expanduser().absolute()
    if plugins_dir.exists() and not plugins_dir.is_dir():
        raise UsageError(f"{plugins_dir}: not a directory")
    target = plugins_dir / FOLDER_NAME
    _check_no_other_copy(plugins_dir, target)
    if target.is_symlink() and not copy and target.resolve() == source:
        return target, "already linked"
    if target.is_symlink() or (target.exists() and _manifest_name(target) == PLUGIN_NAME):
        _remove(target)
    elif target.exists() or target.is_symlink():
        raise UsageError(f"{target}: exists and is not this plugin; move it away first")
    plugins_dir.mkdir(parents=True, exist_ok=True)
    if copy:
        _copy_package(source, target)
        return target, "copied to"
    target.symlink_to(source, target_is_directory=True)
    return target, "linked"


def _check_no_other_copy(plugins_dir: Path, target: Path) -> None:
    """FiftyOne loads one folder per plugin name: another one (e.g. from ``fiftyone plugins
    download``) would shadow or be shadowed by ours."""
    if not plugins_dir.is_dir():
        return
    for root, dirs, files in os.walk(plugins_dir, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and Path(root, d) != target]
        if MANIFEST in files:
            dirs[:] = []
            if Path(root) != plugins_dir and _manifest_name(Path(root)) == PLUGIN_NAME:
                raise UsageError(
                    f"{root}: {PLUGIN_NAME} is already installed there (e.g. by 'fiftyone "
                    "plugins download'); delete it first ('fiftyone plugins delete "
                    f"{PLUGIN_NAME}')"
                )


def _manifest_name(folder: Path) -> str | None:
    try:
        return (yaml.safe_load((folder / MANIFEST).read_text()) or {}).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path)


def _copy_package(source: Path, target: Path) -> None:
    """The files a wheel installs: ``fiftyone.yml`` and the package's Python modules (a
    checkout's tests, benchmarks, scripts, virtual environment and data stay behind)."""
    target.mkdir()
    shutil.copy2(source / MANIFEST, target / MANIFEST)
    for path in sorted(source.glob("*.py")):
        shutil.copy2(path, target / path.name)
    for sub in sorted(source.iterdir()):
        if sub.is_dir() and (sub / "__init__.py").is_file() and sub.name not in _NOT_PLUGIN_CODE:
            for path in sorted(sub.rglob("*.py")):
                if "__pycache__" not in path.parts:
                    (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.relative_to(source))
