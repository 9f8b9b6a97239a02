"""Issue 30 item 2: damaged image headers, in every format Pillow can write and read back, end as
a named decode error, never as another exception; in particular the bare ValueError Pillow
raises for a PPM header with a bad number and for a PNG whose IHDR chunk is cut short (without
it in the decoder-error list, such a photo is retried and dead-lettered instead of getting its
error result at once)."""

from __future__ import annotations

import io
import random
import struct

import numpy as np
import pytest
from PIL import Image

from faces.models.decode import ImageDecodeError, decode_image
from tests.corpus import pil_encode, png_chunk

SEED = 30_2
HEADER_BYTES = 48  # corrupted bytes fall in the first HEADER_BYTES of each file
CORRUPTED_PER_FORMAT = 60
TRUNCATED_PER_FORMAT = 15
CLEAN_REASONS = {"corrupt", "truncated"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _small_rgb() -> Image.Image:
    y, x = np.mgrid[0:12, 0:16]
    return Image.fromarray(np.dstack([x * 16, y * 20, np.full_like(x, 90)]).astype(np.uint8))


def _samples() -> dict[str, bytes]:
    """One small image in every format this Pillow writes and reads back; PPM also as PGM and
    PBM (its grey and bilevel forms), and palette GIF."""
    Image.init()
    image = _small_rgb()
    modes = {"PPM-gray": ("PPM", "L"), "PPM-bilevel": ("PPM", "1"), "GIF": ("GIF", "P")}
    samples = {}
    for name in sorted(set(Image.SAVE) - {"PDF", "EPS", "PALM", "MPO", "H5"} | set(modes)):
        fmt, mode = modes.get(name, (name, "RGB"))
        try:
            data = pil_encode(image.convert(mode), fmt)
            Image.open(io.BytesIO(data)).load()
        except (OSError, ValueError, KeyError):
            continue  # not writable here in this mode, or not readable back
        samples[name] = data
    return samples


SAMPLES = _samples()


def _corrupted(rng: random.Random, data: bytes) -> bytes:
    damaged = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        damaged[rng.randrange(min(HEADER_BYTES, len(damaged)))] = rng.randrange(256)
    return bytes(damaged)


def _cases() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    cases = []
    for name, data in SAMPLES.items():
        cases += [(name, _corrupted(rng, data)) for _ in range(CORRUPTED_PER_FORMAT)]
        cases += [(name, data[: rng.randrange(1, len(data))]) for _ in range(TRUNCATED_PER_FORMAT)]
    return cases


def _pillow_raises_bare_value_error(data: bytes) -> bool:
    """Whether Pillow alone, opening and loading `data`, raises exactly ValueError."""
    try:
        Image.open(io.BytesIO(data)).load()
    except ValueError as err:
        return type(err) is ValueError
    except Exception:  # noqa: BLE001 - any other failure is not the case being counted
        return False
    return False


def test_the_fuzz_covers_the_formats_pillow_reads():
    """The samples include every format a photo commonly comes in (else the fuzz proves less)."""
    assert {"JPEG", "PNG", "GIF", "BMP", "PPM", "PPM-gray", "TIFF", "WEBP"} <= set(SAMPLES)


# Pillow warns about damaged metadata it skips; only exceptions matter here.
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
def test_damaged_headers_in_every_format_only_ever_raise_decode_errors():
    """A seeded fuzz (bytes of the header changed, files cut short) over every sample format:
    each case decodes or raises an ImageDecodeError; those where Pillow itself raises a bare
    ValueError (dozens of PPM headers) end as corrupt or truncated (or too-large, refused from
    the header first), and there are some."""
    unexpected, value_errors = [], []
    for name, data in _cases():
        try:
            decode_image(data)
        except ImageDecodeError as err:
            if _pillow_raises_bare_value_error(data):
                value_errors.append((name, err.reason))
        except Exception as err:  # noqa: BLE001 - what the test exists to catch
            unexpected.append(f"{name}: {type(err).__name__}: {err}")
    assert unexpected == []
    assert sum(1 for name, _ in value_errors if name.startswith("PPM")) >= 20
    # too-large: a header claiming a huge canvas is refused before Pillow reads the pixels.
    assert {reason for _, reason in value_errors} <= CLEAN_REASONS | {"too-large"}


@pytest.mark.parametrize(
    "header",
    [
        b"P6\n16 12\n0\n",  # maxval 0
        b"P6\n16 12\n65536\n",  # maxval past 16 bits
        b"P6\n16 1x\n255\n",  # a letter in the height
        b"P5\n16 12\n2a5\n",  # grey, a letter in maxval
    ],
)
def test_a_ppm_header_pillow_refuses_with_a_bare_value_error_is_a_clean_decode_error(header):
    """A PPM header with a bad number: Pillow raises a bare ValueError; decoding gives a named
    error (corrupt or truncated) at once."""
    data = header + bytes(16 * 12 * 3)
    assert _pillow_raises_bare_value_error(data)
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data)
    assert info.value.reason in CLEAN_REASONS


@pytest.mark.parametrize("kept", [0, 8, 12])
def test_a_png_with_a_truncated_ihdr_chunk_is_a_clean_decode_error(kept):
    """A PNG whose IHDR chunk holds fewer than its 13 bytes: Pillow raises a bare ValueError
    ("Truncated IHDR chunk"); decoding gives a named error (corrupt or truncated) at once."""
    ihdr = struct.pack(">IIBBBBB", 16, 12, 8, 2, 0, 0, 0)[:kept]
    data = PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    assert _pillow_raises_bare_value_error(data)
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data)
    assert info.value.reason in CLEAN_REASONS
