"""Test session set-up: the project's own MongoDB for the FiftyOne tests.

Runs before any test module imports FiftyOne (which reads its configuration on import).
When ``FIFTYONE_DATABASE_URI`` is already set (``make test`` does not set it), that server
is used; otherwise a ``mongod`` is started in a temporary folder, only when a collected test
is marked ``fiftyone``, and stopped at the end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from detection_debugger.datasets.database import MongoServer, fiftyone_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
_server: MongoServer | None = None
_folder: tempfile.TemporaryDirectory | None = None


def pytest_configure(config):
    global _server, _folder
    _folder = tempfile.TemporaryDirectory(prefix="detection-debugger-tests-")
    # FiftyOne discovers plugins inside FIFTYONE_PLUGINS_DIR: link this checkout there,
    # as users install it (a folder holding the plugin folder).
    plugins = Path(_folder.name) / "plugins"
    plugins.mkdir()
    (plugins / "detection-debugger").symlink_to(REPO_ROOT, target_is_directory=True)
    os.environ["FIFTYONE_PLUGINS_DIR"] = str(plugins)
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        return
    # FiftyOne reads the URI when it is imported (at collection): the port is chosen now, the
    # server started only when a collected test needs it (the pure tier runs without one).
    _server = MongoServer(Path(_folder.name) / "mongo")
    os.environ.update(fiftyone_environment(_server.uri, "detection_debugger_tests"))


def pytest_collection_modifyitems(session, config, items):
    if _server is not None and any(item.get_closest_marker("fiftyone") for item in items):
        _server.start()


def pytest_unconfigure(config):
    if _server is not None:
        _server.stop()
    if _folder is not None:
        _folder.cleanup()
