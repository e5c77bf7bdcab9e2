"""A tiny PNG reader (zlib and the five row filters) for checking screenshots.

Only what Chromium writes: 8-bit RGB or RGBA, not interlaced."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type -> bytes per pixel


@dataclass
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered, ``width * channels`` bytes each

    def colours(self, step: int = 1) -> Counter[tuple[int, int, int]]:
        """How many pixels of each RGB colour (every ``step``-th pixel of every
        ``step``-th row, to keep big screenshots quick)."""
        counted: Counter[tuple[int, int, int]] = Counter()
        stride = self.channels * step
        for row in self.rows[::step]:
            counted.update(zip(row[0::stride], row[1::stride], row[2::stride], strict=False))
        return counted


def read_png(data: bytes) -> Image:
    assert data.startswith(SIGNATURE), "not a PNG"
    offset, idat, header = len(SIGNATURE), bytearray(), None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunk = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    assert header is not None, "no IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in _CHANNELS and not interlace, header
    channels = _CHANNELS[colour_type]
    return Image(width, height, channels, _unfilter(zlib.decompress(idat), width, height, channels))


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytes]:
    stride = width * bpp
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _FILTERS[kind](line, previous, bpp)
        previous = bytes(line)
        rows.append(previous)
    return rows


def _none(line: bytearray, prev: bytes, bpp: int) -> None:
    pass


def _sub(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(bpp, len(line)):
        line[i] = (line[i] + line[i - bpp]) & 255


def _up(line: bytearray, prev: bytes, bpp: int) -> None:
    line[:] = bytes((a + b) & 255 for a, b in zip(line, prev, strict=True))


def _average(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255


def _paeth(line: bytearray, prev: bytes, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
        line[i] = (line[i] + predictor) & 255


_FILTERS = (_none, _sub, _up, _average, _paeth)
