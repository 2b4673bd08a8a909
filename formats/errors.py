"""The one error type of the format readers: it names the file (and line) that is wrong."""

from __future__ import annotations

__all__ = ["FormatError"]


class FormatError(ValueError):
    """A file that cannot be read as the expected format.

    ``str(error)`` is one line: ``PATH[:LINE]: what is wrong``.
    """

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")
