"""Class-name mapping: case-insensitive, with an optional explicit map file.

A map file is YAML or JSON: ``{source name: target name}``, e.g. ``Crosswalk: crosswalks``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import FormatError

__all__ = ["ClassMap"]


class ClassMap:
    """Resolves names as written in files to the dataset's class names.

    Resolution: the explicit map (keys compared case-insensitively), then a case-insensitive
    match against the known classes (``Car`` -> ``car``); other names are returned unchanged
    and can be reported as unknown by the caller.
    """

    def __init__(self, explicit: Mapping[str, str] | None = None):
        self.explicit = {str(k).casefold(): str(v) for k, v in (explicit or {}).items()}

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClassMap:
        path = Path(path)
        if not path.is_file():
            raise FormatError(str(path), "class map file not found")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except json.JSONDecodeError as error:
            raise FormatError(str(path), f"invalid JSON: {error.msg}", line=error.lineno) from None
        except Exception as error:  # yaml.YAMLError and its subclasses
            mark = getattr(error, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise FormatError(str(path), f"invalid YAML: {error}".splitlines()[0], line) from None
        if not isinstance(data, dict) or not all(
            isinstance(v, (str, int, float)) for v in data.values()
        ):
            raise FormatError(str(path), "expected a mapping of class names: {source: target}")
        return cls(data)

    def resolve(self, name: str, known: Iterable[str] = ()) -> str:
        mapped = self.explicit.get(name.casefold(), name)
        by_folded = {k.casefold(): k for k in known}
        return by_folded.get(mapped.casefold(), mapped)
