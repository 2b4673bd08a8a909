"""Width, height and channels of JPEG and PNG files from their first bytes.

An import reads every image's header (100k at a time). PIL's ``Image.open`` costs about
80 µs an image (plugin lookup, a file object, the whole header parsed into ``info``); the
size and the bands need only the JPEG frame header or the PNG ``IHDR`` chunk: about 10 µs.
:func:`header_size` reads those, giving exactly what ``Image.open(path).size`` and
``len(image.getbands())`` give, and None for anything it does not recognise with
certainty (other formats, unusual or damaged headers): the caller then asks PIL, which also
names what is wrong with a damaged file.
"""

from __future__ import annotations

__all__ = ["header_size"]

_HEAD = 64 * 1024  # JPEG frame headers follow EXIF and ICC segments: usually in the first KB
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> PIL's bands (1: grey and palette "P", 2: grey + alpha, 3: RGB, 4: RGBA)
_PNG_BANDS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# JPEG start-of-frame markers (baseline, progressive, lossless; Huffman and arithmetic)
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD))
_JPEG_BANDS = {1: 1, 3: 3, 4: 4}  # L, RGB (or YCbCr), CMYK
_PIXEL_LIMIT = 89_478_485  # PIL's MAX_IMAGE_PIXELS: above it PIL warns or refuses; ask it


def header_size(path: str) -> tuple[int, int, int] | None:
    """``(width, height, channels)`` of a JPEG or PNG file, None when unsure."""
    try:
        with open(path, "rb") as file:
            head = file.read(_HEAD)
    except OSError:
        return None
    if head.startswith(_PNG_SIGNATURE):
        size = _png(head)
    elif head.startswith(b"\xff\xd8\xff"):
        size = _jpeg(head)
    else:
        return None
    if size is None or size[0] * size[1] > _PIXEL_LIMIT:
        return None
    return size


def _png(head: bytes) -> tuple[int, int, int] | None:
    if len(head) < 33 or head[12:16] != b"IHDR" or int.from_bytes(head[8:12], "big") != 13:
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, colour, interlace = head[24], head[25], head[28]
    if colour not in _PNG_BANDS or depth not in _PNG_DEPTHS[colour] or interlace > 1:
        return None
    if colour == 0 and depth == 16 or colour == 2 and depth == 16:
        return None  # PIL's modes for 16-bit grey/RGB vary by version: ask it
    if not width or not height:
        return None
    return width, height, _PNG_BANDS[colour]


def _jpeg(head: bytes) -> tuple[int, int, int] | None:
    """The first frame header's size and components, walking the segments after SOI."""
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            at += 2  # markers without a length
            continue
        length = int.from_bytes(head[at + 2 : at + 4], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if at + 10 > len(head) or length < 8:
                return None
            height = int.from_bytes(head[at + 5 : at + 7], "big")
            width = int.from_bytes(head[at + 7 : at + 9], "big")
            components = head[at + 9]
            if not width or not height or components not in _JPEG_BANDS:
                return None
            return width, height, _JPEG_BANDS[components]
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        at += 2 + length
    return None
