"""Image headers read without PIL must equal what PIL reads (size and bands), or defer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from detection_debugger.formats.image_headers import header_size
from detection_debugger.formats.label_sources import read_image_info

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-data"


def _pil(path) -> tuple[int, int, int]:
    with Image.open(path) as image:
        return (*image.size, len(image.getbands()))


CASES = [
    ("jpeg", "RGB", {}),
    ("jpeg", "L", {}),
    ("jpeg", "CMYK", {}),
    ("jpeg", "RGB", {"progressive": True}),
    ("jpeg", "RGB", {"exif": b"Exif\x00\x00" + b"\x00" * 5000}),
    ("png", "RGB", {}),
    ("png", "RGBA", {}),
    ("png", "L", {}),
    ("png", "LA", {}),
    ("png", "P", {}),
    ("png", "1", {}),
    ("png", "I;16", {}),
]


@pytest.mark.parametrize(("fmt", "mode", "options"), CASES)
def test_headers_equal_pil_or_defer(tmp_path, fmt, mode, options):
    path = tmp_path / f"image.{fmt}"
    Image.new(mode, (123, 45)).save(path, format=fmt.upper(), **options)
    size = header_size(str(path))
    assert size is None or size == _pil(path)
    if mode in ("RGB", "L", "CMYK", "RGBA", "LA", "P", "1"):
        assert size == (123, 45, _pil(path)[2])  # the common cases are read here


def test_other_and_damaged_files_are_left_to_pil(tmp_path):
    bmp = tmp_path / "a.bmp"
    Image.new("RGB", (8, 8)).save(bmp)
    cut = tmp_path / "cut.jpg"
    Image.new("RGB", (64, 64)).save(cut)
    cut.write_bytes(cut.read_bytes()[:40])  # the frame header is gone
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    for path in (bmp, cut, empty, text, tmp_path / "missing.jpg"):
        assert header_size(str(path)) is None
    # ...and read_image_info still judges them through PIL, as before
    assert read_image_info({"a": str(bmp)})["a"]["width"] == 8


def test_real_photos_equal_pil():
    photos = sorted(REAL.rglob("*.jpg")) + sorted(REAL.rglob("*.png"))
    if not photos:
        pytest.skip("../shared/real-data is not here")
    for path in photos:
        assert header_size(str(path)) == _pil(path), path
