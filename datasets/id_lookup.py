"""Rows of ids in a stored array of ids (``S24`` hex bytes), by binary search.

Runs keep their sample and label ids as arrays in table order. Mapping the ids a view shows
to those rows is one sort of the stored ids (once) and one binary search per id: no Python
dict of millions of strings.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IdLookup"]


class IdLookup:
    """The rows of ``stored`` (a 1-d array of ids), found by id."""

    def __init__(self, stored: np.ndarray):
        self._order = np.argsort(stored, kind="stable")
        self._sorted = stored[self._order]

    def positions(self, ids) -> np.ndarray:
        """Row of each of ``ids`` in ``stored``, -1 for the ones it does not hold."""
        wanted = np.array(list(ids), dtype=self._sorted.dtype)
        out = np.full(len(wanted), -1, dtype=np.int64)
        if len(wanted) and len(self._sorted):
            place = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
            found = self._sorted[place] == wanted
            out[found] = self._order[place[found]]
        return out
