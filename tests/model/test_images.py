"""Images a request sends: their size is checked from the header, before any pixel is decoded."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from modelport.errors import InvalidInput
from modelport.model.images import MAX_PIXELS, decode_image
from modelport.model.imagespec import ImageSpec


def _png_header(width: int, height: int) -> str:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds none (base64)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (5000, 5000, f"image: 5000x5000 is more than {MAX_PIXELS} pixels"),
        # past Pillow's own bound it refuses the file as it opens: the same answer, in our words
        (20000, 20000, f"image: more than {MAX_PIXELS} pixels"),
    ],
)
def test_an_image_too_large_is_refused_from_its_header(
    width: int, height: int, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_image(_png_header(width, height), ImageSpec(shape=(1, 8, 8)))
    assert str(refused.value.message) == message
