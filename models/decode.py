"""Image bytes -> BGR uint8 pixels, refusing oversized and broken input with named errors.

``decode_image`` is the only door through which untrusted bytes enter the pipeline, so it
promises one thing above all: whatever the bytes, it returns a ``DecodedImage`` or raises an
``ImageDecodeError`` subclass. The size limit is checked from the header, before any pixel
is inflated, so a small file claiming a huge canvas costs nothing.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from faces import settings as defaults
from faces.errors import FacesError

DEFAULT_MAX_PIXELS = defaults.MAX_PIXELS

# What Pillow's decoders raise for malformed input. Pillow's own Image.open swallows
# SyntaxError, IndexError, TypeError and struct.error while probing formats; the rest come
# from load() and the conversions. UnidentifiedImageError is an OSError.
_PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    struct.error,
    Image.DecompressionBombError,
)


class ImageDecodeError(FacesError):
    """The bytes could not be turned into an image.

    Cause: see the subclass. Remedy: see the subclass; the ``reason`` attribute is a short
    machine code (``empty``, ``not-an-image``, ``truncated``, ``corrupt``, ``unsupported``,
    ``too-large``) for counting failures without parsing messages.
    """

    internal = True  # becomes the image's error result, never a failure of a command

    reason = "undecodable"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class EmptyImage(ImageDecodeError):
    """Zero bytes were given.

    Cause: an empty upload or a file read before it was written. Remedy: resend the file.
    """

    reason = "empty"

    def __init__(self) -> None:
        super().__init__("image is empty (0 bytes)")


class NotAnImage(ImageDecodeError):
    """The bytes match no known image format.

    Cause: a text, PDF or video file, or bytes mangled in transit. Remedy: send a JPEG,
    PNG, GIF, WebP, TIFF or BMP file.
    """

    reason = "not-an-image"


class TruncatedImage(ImageDecodeError):
    """The header is readable but the pixel data ends early.

    Cause: an interrupted upload or copy. Remedy: send the complete file again.
    """

    reason = "truncated"


class CorruptImage(ImageDecodeError):
    """The file is complete but its pixel data cannot be decoded.

    Cause: damaged bytes inside the file. Remedy: re-export the image from its source.
    """

    reason = "corrupt"


class UnsupportedImage(ImageDecodeError):
    """The image decodes to a pixel mode that has no sensible colour conversion.

    Cause: e.g. a LAB or HSV TIFF. Remedy: export the image as 8-bit RGB.
    """

    reason = "unsupported"


class ImageTooLarge(ImageDecodeError):
    """The header claims more pixels than the configured limit.

    Cause: a very large photo, or a decompression bomb (a tiny file claiming a huge canvas).
    Remedy: downscale the image before submitting it, or raise ``max_pixels`` on purpose.
    """

    reason = "too-large"

    def __init__(self, width: int | None, height: int | None, max_pixels: int) -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        limit = f"the {max_pixels / 1e6:g} MP limit"
        if width is None or height is None:
            super().__init__(f"image header claims more pixels than the decoder allows, over {limit}")
        else:
            super().__init__(f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over {limit}")


@dataclass(frozen=True)
class DecodedImage:
    """Decoded pixels: BGR uint8, shape (height, width, 3), EXIF orientation applied."""

    pixels: np.ndarray
    width: int
    height: int


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode encoded image ``data`` into BGR uint8 pixels.

    In: the file's bytes and a pixel limit. Out: a ``DecodedImage`` whose pixels are
    (height, width, 3) uint8 BGR, EXIF orientation applied. Grayscale, alpha, 16-bit,
    CMYK and palette images are converted; animated images give their first frame; alpha is
    dropped, as OpenCV's ``imread`` does. Raises ``ImageTooLarge`` from the header, before
    inflating, and other ``ImageDecodeError`` subclasses for bad bytes; never anything else.
    """
    image = _open_header(data)
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(width, height, max_pixels)
    try:
        image.load()
    except _PILLOW_ERRORS as err:
        raise _classify_load_error(err) from err
    image = _apply_orientation(image)
    rgb = _to_rgb_array(image)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return DecodedImage(pixels=bgr, width=bgr.shape[1], height=bgr.shape[0])


def _open_header(data: bytes) -> Image.Image:
    """Identify the format and read the header lazily; map failures to named errors."""
    if not data:
        raise EmptyImage()
    try:
        # Pillow warns past its own global pixel limit; ours is per call and checked later.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        # Pillow refuses past twice its global limit before exposing the size; read the
        # header without that guard only to report the real dimensions.
        image = _open_without_bomb_check(data)
        if image is None:
            raise ImageTooLarge(None, None, DEFAULT_MAX_PIXELS) from None
        return image
    except Image.UnidentifiedImageError as err:
        if _known_signature(data):
            raise TruncatedImage(f"image header is incomplete ({len(data)} bytes)") from err
        raise NotAnImage(f"bytes are not an image of any known format ({len(data)} bytes)") from err
    except _PILLOW_ERRORS as err:
        raise TruncatedImage(f"image header cannot be read: {err}") from err


def _open_without_bomb_check(data: bytes) -> Image.Image | None:
    """Open with the plugin factories directly, skipping Pillow's global pixel guard."""
    for factory in _claiming_factories(data[:16]):
        try:
            return factory(io.BytesIO(data), "")
        except _PILLOW_ERRORS:
            continue
    return None


def _known_signature(data: bytes) -> bool:
    """True when some format claims the first bytes, so a failed open means a cut header."""
    return any(True for _ in _claiming_factories(data[:16]))


def _claiming_factories(prefix: bytes):
    """Pillow's format openers whose signature check accepts ``prefix``."""
    Image.init()
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        # Formats without a signature check (accept is None) prove nothing.
        if accept is None:
            continue
        try:
            claimed = accept(prefix) is True
        except _PILLOW_ERRORS:
            # Some checks unpack fixed-size fields and fail on a prefix shorter than that.
            claimed = False
        if claimed:
            yield factory


def _classify_load_error(err: Exception) -> ImageDecodeError:
    """Tell a cut-off file from one damaged inside, from the decoder's complaint."""
    text = str(err)
    if isinstance(err, EOFError) or "truncated" in text or "end of file" in text.lower():
        return TruncatedImage(f"image data ends early: {text}")
    if isinstance(err, Image.DecompressionBombError):
        return ImageTooLarge(None, None, DEFAULT_MAX_PIXELS)
    return CorruptImage(f"image data cannot be decoded: {text or type(err).__name__}")


def _orientation(image: Image.Image) -> int:
    """EXIF orientation tag (1..8), or 1 when absent or unreadable."""
    try:
        value = image.getexif().get(0x0112, 1)
    except _PILLOW_ERRORS:
        # A broken EXIF block must not cost the picture; it is shown as stored.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(image: Image.Image) -> Image.Image:
    if _orientation(image) == 1:
        return image
    try:
        return ImageOps.exif_transpose(image)
    except _PILLOW_ERRORS:
        return image


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (h, w, 3) uint8 RGB."""
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        gray = _to_uint8(np.asarray(image))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode != "RGB":
        try:
            image = image.convert("RGB")
        except _PILLOW_ERRORS as err:
            raise UnsupportedImage(f"pixel mode {mode} cannot be converted to RGB") from err
    return np.asarray(image, dtype=np.uint8)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Wide grayscale -> uint8: 16-bit ranges are scaled, 8-bit ranges kept as they are."""
    values = values.astype(np.float64)
    if values.size and values.max() > 255:
        # 65535 / 257 = 255: the exact 16-bit to 8-bit mapping.
        values = values / 257.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
