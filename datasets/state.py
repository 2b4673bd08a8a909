"""What this plugin records in a dataset about its own writes, updated atomically.

``dataset.info["detection_debugger"]`` holds, per label field, the record of the import that
wrote it (``imports[field]``, with ``status`` ``writing`` until every value is written, then
``complete``) and, while a command writes to the dataset, its ``lock``. Both are updated with
single-document MongoDB operations on the dataset's document (``$set`` of one key path, a
conditional update for the lock), never by reading ``dataset.info``, changing it and saving it
back: two imports at once cannot lose each other's record, and a second writer is refused
while the first holds the lock. A lock left by a process that died on this machine (killed,
Ctrl-C mid-write) is taken over by the next command, which then completes the interrupted work.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import os
import socket

from detection_debugger.datasets.fiftyone_private import root_dataset_of

__all__ = [
    "COMPLETE",
    "INFO_KEY",
    "WRITING",
    "DatasetBusyError",
    "PartialFieldError",
    "dataset_lock",
    "import_records",
    "require_complete",
    "set_import_record",
    "writes_dataset",
]

INFO_KEY = "detection_debugger"
WRITING, COMPLETE = "writing", "complete"


class DatasetBusyError(ValueError):
    """Another command is writing to the dataset."""


class PartialFieldError(ValueError):
    """A label field whose import did not finish."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _datasets():
    import fiftyone.core.odm as foo

    return foo.get_db_conn().datasets


def _info(dataset) -> dict:
    """The plugin's part of the dataset's info, as stored now (not as cached in memory)."""
    doc = _datasets().find_one({"name": dataset.name}, {f"info.{INFO_KEY}": 1}) or {}
    return (doc.get("info") or {}).get(INFO_KEY) or {}


def import_records(dataset) -> dict:
    """``{field: import record}`` as stored now."""
    return dict(_info(dataset).get("imports") or {})


def set_import_record(dataset, field: str, record: dict) -> None:
    """Stores the import record of ``field`` (one atomic ``$set``)."""
    _datasets().update_one(
        {"name": dataset.name}, {"$set": {f"info.{INFO_KEY}.imports.{field}": record}}
    )
    dataset.reload()


def require_complete(dataset, fields) -> None:
    """Raises :class:`PartialFieldError` when one of ``fields`` was left half-written by an
    interrupted import (it must not be evaluated: its AP would be wrong without a word)."""
    records = import_records(dataset)
    for field in fields:
        record = records.get(field) or {}
        if record.get("status") == WRITING:
            raise PartialFieldError(
                f"field {field!r} of dataset {dataset.name!r} is only partly imported (an "
                f"import started {record.get('started_at', '?')} did not finish): run the "
                f"same import command again to complete it"
            )


def _alive(lock: dict) -> bool:
    if lock.get("host") != socket.gethostname():
        return True  # cannot tell: assume it is running
    try:
        os.kill(int(lock.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def dataset_lock(dataset, operation: str):
    """Holds the dataset's write lock for ``operation`` (``import``, ``evaluate``...).

    Raises:
        DatasetBusyError: another live process holds it.
    """
    path = f"info.{INFO_KEY}.lock"
    mine = {
        "operation": operation,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": _now(),
    }
    collection = _datasets()
    for _ in range(2):
        taken = collection.update_one(
            {"name": dataset.name, path: {"$exists": False}}, {"$set": {path: mine}}
        )
        if taken.modified_count:
            break
        held = _info(dataset).get("lock")
        if held and held.get("pid") == os.getpid() and held.get("host") == mine["host"]:
            yield  # this process holds it already (an import that evaluates, say)
            return
        if held and _alive(held):
            raise DatasetBusyError(
                f"dataset {dataset.name!r} is busy: {held.get('operation')} by process "
                f"{held.get('pid')} on {held.get('host')} since {held.get('since')}; "
                "run this again when it has finished"
            )
        if held:  # left by a process that died: take it over
            collection.update_one({"name": dataset.name, path: held}, {"$unset": {path: ""}})
    else:
        raise DatasetBusyError(f"dataset {dataset.name!r} is busy: could not take its lock")
    dataset.reload()  # the cached info now shows the lock: a save inside keeps it
    try:
        yield
    finally:
        collection.update_one({"name": dataset.name, path: mine}, {"$unset": {path: ""}})
        dataset.reload()


def writes_dataset(operation: str, fields: tuple[str, ...], unless_none: str | None = None):
    """Decorates a function ``f(samples, ...)`` that writes to the samples' dataset: each call
    first refuses half-imported label fields (:func:`require_complete`; ``fields`` names the
    parameters holding field names, a name or a list of names) and holds the dataset's lock
    for ``operation`` while it runs, unless the parameter ``unless_none`` is None (a call
    that writes nothing)."""

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def guarded(samples, *args, **kwargs):
            bound = signature.bind(samples, *args, **kwargs)
            bound.apply_defaults()
            names = []
            for parameter in fields:
                value = bound.arguments[parameter]
                names.extend([value] if isinstance(value, str) else list(value or []))
            dataset = root_dataset_of(samples)  # a patches view writes to its dataset
            require_complete(dataset, names)
            if unless_none is not None and bound.arguments[unless_none] is None:
                return function(samples, *args, **kwargs)
            with dataset_lock(dataset, operation):
                return function(samples, *args, **kwargs)

        return guarded

    return decorate
