"""What kind of image some bytes are, from their first bytes (magic numbers), never from what
the client says: the API refuses (415) bytes that no decoder of the pipeline would read."""

from __future__ import annotations

# (prefix, offset, extension) of every format OpenCV or Pillow decodes for the pipeline
# (producer/files.py IMAGE_SUFFIXES).
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"GIF87a", 0, "gif"),
    (b"GIF89a", 0, "gif"),
    (b"BM", 0, "bmp"),
    (b"WEBP", 8, "webp"),  # after "RIFF" and a length
    (b"II*\x00", 0, "tif"),
    (b"MM\x00*", 0, "tif"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "jp2"),
    (b"\xff\x4f\xff\x51", 0, "jp2"),  # a bare JPEG 2000 codestream
    (b"ftypavif", 4, "avif"),
    (b"ftypavis", 4, "avif"),
    (b"\x76\x2f\x31\x01", 0, "exr"),
    (b"#?RADIANCE", 0, "hdr"),
    (b"#?RGBE", 0, "hdr"),
    (b"\x59\xa6\x6a\x95", 0, "ras"),
)
_PNM = {b"P1": "pbm", b"P2": "pgm", b"P3": "ppm", b"P4": "pbm", b"P5": "pgm", b"P6": "ppm"}


def image_extension(head: bytes) -> str | None:
    """The file extension of the image format `head` (the first bytes) starts with; None when
    it is not an image format the pipeline reads."""
    for magic, offset, extension in _MAGIC:
        if head[offset : offset + len(magic)] == magic and (extension != "webp" or head[:4] == b"RIFF"):
            return extension
    if head[:2] in _PNM and head[2:3] in (b" ", b"\t", b"\n", b"\r", b"#"):
        return _PNM[head[:2]]
    return None
