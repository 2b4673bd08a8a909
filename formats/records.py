"""Format-neutral records: what every reader returns and every writer takes.

Boxes are absolute pixel corners ``(x1, y1, x2, y2)`` in the original image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImageObjects", "ObjectRecord", "ReadReport", "SkippedLine", "note_scores_above_one"]


@dataclass(frozen=True)
class ObjectRecord:
    """One labelled or predicted object.

    Attributes:
        label: class name as written in the file (class maps are applied later).
        box: ``(x1, y1, x2, y2)`` absolute pixels.
        score: confidence (predictions), None for ground truth.
        crowd: an ignore region (KITTI ``DontCare``, COCO ``iscrowd``), not an object.
        attributes: format-specific extras kept for round trips (KITTI truncation,
            occlusion, alpha, 3D dimensions/location/rotation; COCO area and id).
        source: ``(path, line)`` the object was read from, for messages.
    """

    label: str
    box: tuple[float, float, float, float]
    score: float | None = None
    crowd: bool = False
    attributes: dict = field(default_factory=dict)
    source: tuple[str, int] | None = None


@dataclass
class ImageObjects:
    """The objects of one image, keyed by the image's file stem (``000123`` for ``000123.jpg``)."""

    stem: str
    objects: list[ObjectRecord] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedLine:
    """An input line that was not imported (only with ``skip_invalid``)."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ReadReport:
    """What a reader saw besides the objects: skipped lines and notes for the run info."""

    skipped: list[SkippedLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0


def note_scores_above_one(images: list[ImageObjects], report: ReadReport) -> None:
    """Adds a note to ``report`` when confidences exceed 1 (they are kept as written)."""
    max_score = max((o.score or 0.0 for im in images for o in im.objects), default=0.0)
    if max_score > 1:
        report.notes.append(f"confidences up to {max_score:g} exceed 1; kept as written")
