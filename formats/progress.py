"""Progress of long work, reported per batch: ``progress(done, total, label)``.

The long steps (reading label files, writing samples, evaluating a dataset, exporting) take
an optional :data:`Progress` callback and call it after each batch with the work done so far
out of the whole operation's total (one count for all of its steps, so ``done`` only grows
and the last call has ``done == total``) and the name of the current step. Front ends turn
it into what they show: the CLI a progress bar on stderr, the operators
``ctx.set_progress``; both through :class:`Throttled`, so a fast loop costs a clock read.
Plain Python (no FiftyOne), so the file readers can report too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = [
    "Progress",
    "ProgressCounter",
    "Throttled",
    "as_progress",
    "batches",
    "counted",
    "files_read",
    "part",
]

Progress = Callable[[int, int, str], None]  # progress(done, total, label)
T = TypeVar("T")


def _silent(done: int, total: int, label: str) -> None:
    pass


def as_progress(progress) -> Progress:
    """``progress`` itself when it is a callback; a callback doing nothing for None or a
    bool (callers that passed ``progress=False`` for FiftyOne's own bars)."""
    return progress if callable(progress) else _silent


def part(progress, index: int, parts: int) -> Progress:
    """``progress`` seen as part ``index`` of ``parts`` equal parts of a longer job (e.g.
    reading then writing an import): counts are scaled so that one bar or fraction runs
    from 0 to 1 over all the parts."""
    progress = as_progress(progress)

    def report(done: int, total: int, label: str) -> None:
        progress(index * total + done, parts * total, label)

    return report


class ProgressCounter:
    """The running count of one operation of ``total`` units, told to ``progress``.

    Each step calls :meth:`add` after a batch; :meth:`start` announces a step before its
    first batch ends. The count never passes ``total``; :meth:`finish` reports the total.
    """

    def __init__(self, progress, total: int):
        self.progress = as_progress(progress)
        self.total = max(int(total), 0)
        self.done = 0

    def start(self, label: str) -> None:
        self.progress(self.done, self.total, label)

    def add(self, units: int, label: str) -> None:
        self.done = min(self.done + int(units), self.total)
        self.progress(self.done, self.total, label)

    def share(self, units: int, label: str) -> Progress:
        """A callback for a sub-task worth ``units`` of this count: its ``(done, total)``
        moves this count in proportion, reported under ``label``."""
        base = self.done

        def report(done: int, total: int, _label: str) -> None:
            share = units * done // total if total else units
            self.done = min(base + share, self.total)
            self.progress(self.done, self.total, label)

        return report

    def finish(self, label: str) -> None:
        self.done = self.total
        self.progress(self.done, self.total, label)


class Throttled:
    """A :data:`Progress` that passes calls on to ``report`` at most every ``interval``
    seconds, except the first, the last (``done == total``) and the first of a new label,
    which always pass."""

    def __init__(self, report: Progress, interval: float = 0.5, clock=time.monotonic):
        self.report = report
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._label: str | None = None

    def __call__(self, done: int, total: int, label: str) -> None:
        now = self.clock()
        due = self._last is None or now - self._last >= self.interval
        if due or done >= total or label != self._label:
            self._last, self._label = now, label
            self.report(done, total, label)


def batches(count: int, size: int) -> Iterator[range]:
    """``range`` objects covering ``0..count`` in batches of ``size`` (the last shorter)."""
    for start in range(0, count, max(size, 1)):
        yield range(start, min(start + size, count))


def counted(
    items: Iterable[T], counter: ProgressCounter | None, label: str, every: int = 100
) -> Iterator[T]:
    """Yields ``items``, adding them to ``counter`` in batches of ``every`` (and the rest
    at the end)."""
    pending = 0
    for item in items:
        yield item
        pending += 1
        if counter is not None and pending == every:
            counter.add(pending, label)
            pending = 0
    if counter is not None and pending:
        counter.add(pending, label)


def files_read(paths: list[T], progress, label: str = "reading label files") -> Iterator[T]:
    """Yields ``paths`` (a folder's label files), telling ``progress`` after each batch of
    100 read, out of ``len(paths)``."""
    if progress is None:
        return iter(paths)
    counter = ProgressCounter(progress, len(paths))
    counter.start(label)
    return counted(paths, counter, label)
