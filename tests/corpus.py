"""Bad and awkward image inputs, generated at test time (no binary test files are committed).

Every `make_*` function returns the bytes of one file. `write_corpus(folder)` writes all of
them under their file names. `GOOD` and `BAD` say what the pipeline should make of each one:

* `GOOD[name]`: the result should be "ok". The value is how many faces the picture shows.
* `BAD[name]`: the result should be "error". The value is the expected reason code, one of
  `REASONS`.

The face pictures are crops of `data/astronaut.jpg` (public domain, see data/README.md).
Each crop holds exactly one face, about 91 px wide, and leaves out the mission patch
that dlib's HOG detector takes for a second face in the full photo.

Raw-stream payloads that are not images come from `corrupt_msgpack()` and
`unknown_version_event()`.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import msgpack
import numpy as np
from PIL import Image

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
FACE_SOURCE = DATA_DIR / "astronaut.jpg"

# Head-and-shoulders crop of the 512x512 astronaut photo: 320 tall x 240 wide, one face.
_FACE_ROWS = slice(0, 320)
_FACE_COLS = slice(96, 336)

HUGE_SIDE = 30000
EXIF_ORIENTATION_TAG = 0x0112
EXIF_ORIENTATION = 6  # "rotate 90 degrees clockwise to display"
NON_ASCII_NAME = "my photo é 写真.jpg"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

REASONS = frozenset({"empty", "not-an-image", "truncated", "too-large"})


# --- helpers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _face_bgr_cached() -> np.ndarray:
    """Load the one-face crop of data/astronaut.jpg once (BGR, uint8, 320x240)."""
    image = cv2.imread(str(FACE_SOURCE), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"corpus needs the sample photo {FACE_SOURCE}")
    crop = image[_FACE_ROWS, _FACE_COLS].copy()
    crop.setflags(write=False)
    return crop


def face_bgr() -> np.ndarray:
    """Return a writable copy of the upright one-face picture, as OpenCV BGR uint8."""
    return _face_bgr_cached().copy()


def face_pil() -> Image.Image:
    """Return the upright one-face picture as a Pillow RGB image."""
    return Image.fromarray(cv2.cvtColor(face_bgr(), cv2.COLOR_BGR2RGB))


def _cv2_encode(ext: str, array: np.ndarray, params: list[int] | None = None) -> bytes:
    """Encode an array with OpenCV (ext like ".png") and return the file bytes."""
    ok, buf = cv2.imencode(ext, array, params or [])
    if not ok:
        raise RuntimeError(f"cv2.imencode({ext!r}) failed")
    return buf.tobytes()


def pil_encode(image: Image.Image, fmt: str, **options) -> bytes:
    """Save a Pillow image in memory in the given format and return the bytes."""
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """Build one PNG chunk: length, type, data, and CRC-32 over type + data."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


# --- bad inputs ----------------------------------------------------------------------------


def make_empty() -> bytes:
    """A zero-byte file."""
    return b""


def make_truncated_jpeg() -> bytes:
    """A real JPEG of the face cut in half: valid header, data stops mid-scan, no EOI marker."""
    full = make_face_jpeg()
    return full[: len(full) // 2]


def make_random_bytes() -> bytes:
    """4 KiB of seeded random bytes. The seed is fixed, so the file is always the same."""
    data = np.random.default_rng(20240601).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert not data.startswith((b"\xff\xd8", PNG_SIGNATURE[:4], b"GIF8"))
    return data


def make_text() -> bytes:
    """Plain UTF-8 text, to be saved under a .png name."""
    return b"This is a text file, not a PNG image.\nIt only has a .png name.\n"


def make_huge_header_png() -> bytes:
    """A PNG whose IHDR claims 30000x30000 RGB but whose IDAT is tiny.

    The IHDR CRC is correct, so a parser accepts the header. The IDAT is one
    zlib-compressed filter byte, far too little for even one row. A reader that checks the
    declared size first refuses it without inflating anything.
    """
    ihdr = struct.pack(">IIBBBBB", HUGE_SIDE, HUGE_SIDE, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00")) + png_chunk(b"IEND", b"")
    )


# --- valid but awkward inputs --------------------------------------------------------------


def make_one_pixel_png() -> bytes:
    """A 1x1 RGB PNG (mid grey): a valid image with no face in it."""
    return _cv2_encode(".png", np.full((1, 1, 3), 128, np.uint8))


def make_face_jpeg() -> bytes:
    """A plain 8-bit colour JPEG of the face (quality 92)."""
    return _cv2_encode(".jpg", face_bgr(), [cv2.IMWRITE_JPEG_QUALITY, 92])


def make_face16_png() -> bytes:
    """A 16-bit-per-channel colour PNG of the face (uint16 values = 8-bit values * 257)."""
    return _cv2_encode(".png", face_bgr().astype(np.uint16) * 257)


def make_face_cmyk_jpeg() -> bytes:
    """A CMYK JPEG of the face, written by Pillow."""
    return pil_encode(face_pil().convert("CMYK"), "JPEG", quality=92)


def make_face_gray_jpeg() -> bytes:
    """A single-channel (grayscale) JPEG of the face."""
    gray = cv2.cvtColor(face_bgr(), cv2.COLOR_BGR2GRAY)
    return _cv2_encode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 92])


def make_face_rgba_png() -> bytes:
    """An RGBA PNG of the face: opaque, except a fully transparent 12 px frame round the edge."""
    rgba = face_pil().convert("RGBA")
    alpha = np.zeros((rgba.height, rgba.width), np.uint8)
    alpha[12:-12, 12:-12] = 255
    rgba.putalpha(Image.fromarray(alpha))
    return pil_encode(rgba, "PNG")


def make_face_palette_png() -> bytes:
    """A palette (mode "P", 256-colour adaptive) PNG of the face."""
    palette = face_pil().convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    return pil_encode(palette, "PNG")


def make_face_exif_rot90_jpeg() -> bytes:
    """A JPEG whose pixels are stored turned 90 degrees, with EXIF Orientation 6.

    The stored pixels are the upright face turned 90 degrees counter-clockwise. That makes
    them landscape (240 tall x 320 wide), with the face lying on its side. Orientation 6
    tells a viewer to turn them 90 degrees clockwise, which shows the face upright
    (320 tall x 240 wide). `PIL.ImageOps.exif_transpose` does exactly this.
    """
    stored = face_pil().transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = EXIF_ORIENTATION
    return pil_encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def make_animated_gif() -> bytes:
    """A looping 2-frame GIF: the face, then the face mirrored."""
    first = face_pil()
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pil_encode(first, "GIF", save_all=True, append_images=[second], duration=500, loop=0)


# --- raw stream payloads (not files) -------------------------------------------------------


def corrupt_msgpack() -> bytes:
    """Bytes msgpack cannot decode: a 1-entry map whose value is the reserved byte 0xC1.

    Both `msgpack.unpackb` and a streaming `msgpack.Unpacker` raise on it.
    """
    return b"\x81\xa6schema\xc1"


def unknown_version_event() -> bytes:
    """A well-formed msgpack job event with a schema version no consumer knows (999)."""
    event = {
        "schema": "faces.job",
        "version": 999,
        "job_id": "corpus-unknown-version",
        "image_name": "astronaut.jpg",
        "payload": b"\x00\x01",
    }
    return msgpack.packb(event, use_bin_type=True)


# --- the corpus ----------------------------------------------------------------------------

GENERATORS: dict[str, Callable[[], bytes]] = {
    "empty.jpg": make_empty,
    "truncated.jpg": make_truncated_jpeg,
    "random.jpg": make_random_bytes,
    "text.png": make_text,
    "huge_header.png": make_huge_header_png,
    "one_pixel.png": make_one_pixel_png,
    "face16.png": make_face16_png,
    "face_cmyk.jpg": make_face_cmyk_jpeg,
    "face_gray.jpg": make_face_gray_jpeg,
    "face_rgba.png": make_face_rgba_png,
    "face_palette.png": make_face_palette_png,
    "face_exif_rot90.jpg": make_face_exif_rot90_jpeg,
    "animated.gif": make_animated_gif,
    NON_ASCII_NAME: make_face_jpeg,
}

BAD: dict[str, str] = {
    "empty.jpg": "empty",
    "truncated.jpg": "truncated",
    "random.jpg": "not-an-image",
    "text.png": "not-an-image",
    "huge_header.png": "too-large",
}

GOOD: dict[str, int] = {
    "one_pixel.png": 0,
    "face16.png": 1,
    "face_cmyk.jpg": 1,
    "face_gray.jpg": 1,
    "face_rgba.png": 1,
    "face_palette.png": 1,
    "face_exif_rot90.jpg": 1,  # once EXIF orientation is applied
    "animated.gif": 1,  # first frame
    NON_ASCII_NAME: 1,
}


def expected(name: str) -> tuple[str, str | None]:
    """What a file should become: ("ok", None) or ("error", reason code)."""
    if name in BAD:
        return "error", BAD[name]
    if name in GOOD:
        return "ok", None
    raise KeyError(f"{name!r} is not in the corpus")


def write_corpus(folder: Path) -> dict[str, Path]:
    """Write every corpus file into `folder` (created if needed). Return name -> path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, make in GENERATORS.items():
        path = folder / name
        path.write_bytes(make())
        written[name] = path
    return written
