"""Class-name mapping: case-insensitive, with an optional explicit map file.

A map file is YAML or JSON: ``{source name: target name}``, e.g. ``Crosswalk: crosswalks``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from detection_debugger.formats.errors import FormatError
from detection_debugger.formats.text_files import check_name, load_json, load_yaml

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
        """Reads a YAML or JSON map ``{name in files: class}``.

        Raises:
            FormatError: the file is missing or unreadable, invalid YAML/JSON (with the line),
                not a mapping of names, a name with control characters, or two keys that
                differ only in case (``Car`` and ``car``: which one applies is ambiguous).
        """
        path = str(path)
        data = load_json(path) if path.lower().endswith(".json") else load_yaml(path)
        if not isinstance(data, dict):
            raise FormatError(path, "expected a mapping of class names: {source: target}")
        folded: dict[str, str] = {}
        for key, value in data.items():
            for item in (key, value):
                if isinstance(item, bool) or not isinstance(item, (str, int)):
                    raise FormatError(
                        path,
                        f"expected a mapping of class names: {{source: target}}, got "
                        f"{key!r}: {value!r}",
                    )
                check_name(str(item), path)
            fold = str(key).casefold()
            if fold in folded:
                raise FormatError(
                    path,
                    f"{folded[fold]!r} and {key!r} are the same name (names match "
                    "case-insensitively): keep one",
                )
            folded[fold] = key
        return cls(data)

    def resolve(self, name: str, known: Iterable[str] = ()) -> str:
        mapped = self.explicit.get(name.casefold(), name)
        by_folded = {k.casefold(): k for k in known}
        return by_folded.get(mapped.casefold(), mapped)
