"""Reading the text of label, class-name, id and JSON/YAML files: one place, one set of rules.

Every reader of a text format goes through :func:`read_text` (or :func:`read_text_lines`), so
every format accepts and refuses the same things:

- accepted: UTF-8 with or without a byte-order mark (the BOM never becomes part of the first
  class name), LF, CRLF or CR line ends, blank lines, tabs and trailing spaces (the readers
  split columns on any whitespace);
- refused with :class:`~.errors.FormatError` naming the file (and the line where there is
  one): a missing file, a directory, a FIFO, socket or device in place of a file (reading a
  FIFO would block forever), a symbolic-link loop, unreadable files, UTF-16 text, NUL bytes
  and bytes that are not UTF-8.

:func:`check_name` refuses class names with control characters (a NUL, an escape, a tab
inside a name...), which MongoDB keys, FiftyOne and the label files written later break on.
:func:`load_yaml` parses YAML and names the line of a syntax error.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from operator import attrgetter
from typing import Any

from detection_debugger.formats.errors import FormatError

__all__ = [
    "check_name",
    "files_in_order",
    "load_json",
    "load_yaml",
    "read_bytes",
    "read_text",
    "read_text_lines",
    "unreadable_reason",
]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def files_in_order(folder, pattern: str) -> list:
    """The paths of ``folder`` matching ``pattern`` (``Path.glob``), in path order.

    Sorted on their parts, the order ``sorted`` gives ``Path`` objects on POSIX, ~10x faster
    than comparing the objects (1.7M comparisons for 100k label files).
    """
    return sorted(folder.glob(pattern), key=attrgetter("parts"))


def unreadable_reason(error: OSError) -> str:
    """A short reason for an ``OSError`` raised while opening or reading a file."""
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    if error.errno == errno.ENOENT:
        return "file not found"
    if error.errno == errno.EISDIR:
        return "is a directory, expected a file"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot read the file ({error.strerror or type(error).__name__})"


def _check_regular_file(path: str) -> None:
    try:
        mode = os.stat(path).st_mode  # follows links: a dangling link or a loop raises here
    except OSError as error:
        if error.errno == errno.ENOENT and os.path.islink(path):
            raise FormatError(path, "broken symbolic link (its target does not exist)") from None
        raise FormatError(path, unreadable_reason(error)) from None
    if stat.S_ISDIR(mode):
        raise FormatError(path, "is a directory, expected a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket or device"
        raise FormatError(path, f"is {kind}, not a regular file")


def _line_of(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and (byte) column of a byte offset; LF, CRLF and CR end lines."""
    prefix = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return prefix.count(b"\n") + 1, len(prefix) - prefix.rfind(b"\n")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file (XML is decoded by its parser).

    Raises:
        FormatError: the path is missing, a directory, a FIFO/socket/device, a link loop or
            unreadable.
    """
    path = os.fspath(path)
    _check_regular_file(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise FormatError(path, unreadable_reason(error)) from None


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (a leading BOM removed).

    Raises:
        FormatError: the path is missing, not a regular file, unreadable, UTF-16, or holds a
            NUL byte or bytes that are not UTF-8 (with the line).
    """
    path = os.fspath(path)
    data = read_bytes(path)
    if data.startswith(_UTF16_BOMS):
        raise FormatError(path, "UTF-16 text: save the file as UTF-8")
    if b"\0" in data:
        line, column = _line_of(data, data.index(b"\0"))
        raise FormatError(path, f"binary data: a NUL byte at column {column}", line=line)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _line_of(data, error.start)
        byte = data[error.start]
        raise FormatError(
            path, f"not UTF-8 text: byte 0x{byte:02x} at column {column}", line=line
        ) from None


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (see :func:`read_text`), without their line ends.

    Lines end at LF, CRLF or CR only (not at the other characters ``str.splitlines`` breaks
    on), so line numbers are the ones an editor shows.
    """
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def check_name(name: str, path: str, line: int | None = None, what: str = "class name") -> str:
    """``name`` unchanged, or a :class:`FormatError` when it is empty or holds a control
    character (NUL, tab, escape...: MongoDB, FiftyOne and label files break on them)."""
    if not name:
        raise FormatError(path, f"{what} is empty", line=line)
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029":
            raise FormatError(
                path, f"{what} {name!r} contains the control character {ch!r}", line=line
            )
    return name


class _DuplicateKeyError(ValueError):
    pass


def _pairs(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _DuplicateKeyError(duplicate)
    return obj


def load_json(path: str | os.PathLike) -> Any:
    """Parses a JSON file read with :func:`read_text`.

    Raises:
        FormatError: ``PATH:LINE: invalid JSON: ... (column C)`` for a syntax error, or an
            object with a key written twice (``{"annotations": [...], "annotations": [...]}``
            would silently keep only the second).
    """
    import json

    path = os.fspath(path)
    text = read_text(path)
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as error:
        raise FormatError(
            path, f"invalid JSON: {error.msg} (column {error.colno})", line=error.lineno
        ) from None
    except _DuplicateKeyError as error:
        raise FormatError(
            path, f"invalid JSON: an object has the key {error.args[0]!r} twice"
        ) from None
    except RecursionError:
        raise FormatError(path, "invalid JSON: nested too deeply") from None


def load_yaml(path: str | os.PathLike) -> Any:
    """Parses a YAML file read with :func:`read_text`.

    Raises:
        FormatError: ``PATH:LINE: invalid YAML: ...`` for a syntax error.
    """
    import yaml

    path = os.fspath(path)
    # Trailing white space is cut from every line: PyYAML refuses a tab there ("found
    # character '\t' that cannot start any token") although YAML allows it.
    text = "\n".join(line.rstrip() for line in read_text_lines(path))
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise FormatError(path, f"invalid YAML: {problem}{column}", line=line) from None
