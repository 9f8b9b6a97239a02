"""Image decoding: every pixel format becomes BGR uint8, every bad input a named error."""

from __future__ import annotations

import io
import random
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from faces.models.decode import (
    DEFAULT_MAX_PIXELS,
    CorruptImage,
    DecodedImage,
    EmptyImage,
    ImageDecodeError,
    ImageTooLarge,
    NotAnImage,
    TruncatedImage,
    decode_image,
)
from tests.annotations import match_boxes
from tests.corpus import pil_encode, png_chunk


def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    """An RGB image whose three channels differ, so a channel swap cannot go unnoticed."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 255 // width, y * 255 // height, np.full_like(x, 200)]).astype(np.uint8)


def test_empty_bytes_are_an_empty_image():
    with pytest.raises(EmptyImage) as info:
        decode_image(b"")
    assert info.value.reason == "empty" and isinstance(info.value, ImageDecodeError)


def test_text_is_not_an_image():
    with pytest.raises(NotAnImage, match="not an image") as info:
        decode_image(b"hello, this is a text file and not a picture\n" * 10)
    assert info.value.reason == "not-an-image"


def test_a_jpeg_cut_in_its_pixel_data_is_truncated(dlib_faces_dir):
    data = (dlib_faces_dir / "2008_001009.jpg").read_bytes()
    with pytest.raises(TruncatedImage) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.reason == "truncated"
    # A cut inside the header is truncated too, not "not an image".
    with pytest.raises(TruncatedImage):
        decode_image(data[:40])


def test_a_png_with_damaged_pixel_data_is_corrupt():
    data = bytearray(pil_encode(Image.fromarray(_gradient()), "PNG"))
    start = data.index(b"IDAT") + 20
    data[start : start + 8] = b"\xff" * 8
    with pytest.raises(CorruptImage) as info:
        decode_image(bytes(data))
    assert info.value.reason == "corrupt"


def test_a_png_header_claiming_30000x30000_is_refused_before_inflation():
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    # The pixel data is garbage: inflating it would fail as corrupt or truncated, so an
    # ImageTooLarge proves the size was refused from the header alone.
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"not zlib data")
        + png_chunk(b"IEND", b"")
    )
    with pytest.raises(ImageTooLarge) as info:
        decode_image(data)
    assert (info.value.width, info.value.height) == (30000, 30000)
    assert str(info.value) == "image is 30000x30000 = 900.0 MP, over the 100 MP limit"
    assert info.value.reason == "too-large"


def test_the_pixel_limit_is_configurable():
    data = pil_encode(Image.fromarray(_gradient()), "PNG")
    assert decode_image(data, max_pixels=64 * 48).width == 64
    with pytest.raises(ImageTooLarge, match="64x48"):
        decode_image(data, max_pixels=64 * 48 - 1)
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_colour_order_is_bgr_like_opencv():
    rgb = _gradient()
    decoded = decode_image(pil_encode(Image.fromarray(rgb), "PNG"))
    assert isinstance(decoded, DecodedImage)
    assert (decoded.width, decoded.height) == (64, 48)
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(decoded.pixels, rgb[:, :, ::-1])
    png = np.frombuffer(pil_encode(Image.fromarray(rgb), "PNG"), np.uint8)
    np.testing.assert_array_equal(decoded.pixels, cv2.imdecode(png, cv2.IMREAD_COLOR))


def test_grayscale_becomes_three_equal_channels():
    gray = _gradient()[:, :, 0]
    pixels = decode_image(pil_encode(Image.fromarray(gray, "L"), "PNG")).pixels
    for channel in range(3):
        np.testing.assert_array_equal(pixels[:, :, channel], gray)


def test_rgba_keeps_the_colours_and_drops_alpha():
    rgba = np.dstack([_gradient(), np.full((48, 64), 90, np.uint8)])
    pixels = decode_image(pil_encode(Image.fromarray(rgba, "RGBA"), "PNG")).pixels
    np.testing.assert_array_equal(pixels, rgba[:, :, 2::-1])


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_pngs_are_scaled_to_8_bit(channels):
    wide = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    if channels == 3:
        wide = np.dstack([wide, 65535 - wide, wide // 3])
    ok, encoded = cv2.imencode(".png", wide)
    assert ok
    pixels = decode_image(encoded.tobytes()).pixels.astype(int)
    expected = np.rint(wide / 257.0).astype(int)
    if channels == 1:
        expected = np.dstack([expected] * 3)
    # Pillow keeps the high byte of 16-bit colour, hence one level of slack.
    assert np.abs(pixels - expected).max() <= 1
    assert pixels.max() > 200


def test_cmyk_jpeg_becomes_its_rgb_colours():
    rgb = _gradient()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    pixels = decode_image(pil_encode(cmyk, "JPEG", quality=95)).pixels
    assert np.abs(pixels.astype(int) - rgb[:, :, ::-1]).mean() < 4


def test_palette_images_give_their_palette_colours():
    rgb = _gradient()
    palette = Image.fromarray(rgb).quantize(colors=16)
    expected = np.asarray(palette.convert("RGB"))[:, :, ::-1]
    np.testing.assert_array_equal(decode_image(pil_encode(palette, "PNG")).pixels, expected)


def test_animated_gif_gives_its_first_frame():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (20, 10), colour) for colour in colours]
    data = pil_encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    pixels = decode_image(data).pixels
    assert pixels.shape == (10, 20, 3)
    assert tuple(pixels[5, 10]) == (0, 0, 255)  # red, in BGR order


def test_a_single_pixel_image_decodes():
    decoded = decode_image(pil_encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    assert decoded.pixels.shape == (1, 1, 3) and tuple(decoded.pixels[0, 0]) == (30, 20, 10)


# Stored pixels for each EXIF orientation, built from the upright image: what a camera
# writes when the photo must be turned (or flipped) this way to be seen upright.
_STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.transpose(np.rot90(a, 2), (1, 0, 2)),
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(_STORED))
def test_exif_orientation_is_applied(orientation):
    upright = _gradient(40, 70)
    stored = np.ascontiguousarray(_STORED[orientation](upright))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = pil_encode(Image.fromarray(stored), "PNG", exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (70, 40)
    np.testing.assert_array_equal(decoded.pixels, upright[:, :, ::-1])


def test_faces_in_a_rotated_camera_jpeg_are_found_upright(dlib_faces_dir, default_detector, annotated_images):
    image = next(i for i in annotated_images if i.path.name == "2008_001322.jpg")
    upright = np.asarray(Image.open(image.path).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))
    data = pil_encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (upright.shape[1], upright.shape[0])
    detections = default_detector.detect([decoded.pixels])[0]
    pairs = match_boxes([d.box for d in detections], [f.box for f in image.faces], 0.5)
    assert len(pairs) == len(image.faces)


# Pillow warns about the damaged metadata it skips; only exceptions matter here.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_random_and_damaged_bytes_only_ever_raise_decode_errors(dlib_faces_dir):
    rng = random.Random(1234)
    samples = [
        (dlib_faces_dir / "2008_001009.jpg").read_bytes(),
        pil_encode(Image.fromarray(_gradient()), "PNG"),
        pil_encode(Image.fromarray(_gradient()), "GIF"),
        pil_encode(Image.fromarray(_gradient()), "WEBP"),
        pil_encode(Image.fromarray(_gradient()), "TIFF"),
        pil_encode(Image.fromarray(_gradient()), "BMP"),
    ]
    inputs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(100)]
    for sample in samples:
        inputs += [sample[: rng.randrange(len(sample))] for _ in range(30)]
        for _ in range(30):
            damaged = bytearray(sample)
            for _ in range(rng.randrange(1, 10)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            inputs.append(bytes(damaged))
    outcomes = set()
    for data in inputs:
        try:
            decoded = decode_image(data)
        except ImageDecodeError as err:
            outcomes.add(err.reason)
            continue
        assert decoded.pixels.dtype == np.uint8 and decoded.pixels.ndim == 3
        outcomes.add("ok")
    assert {"ok", "not-an-image", "truncated", "corrupt"} <= outcomes
