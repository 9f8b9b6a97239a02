"""The generated corpus (tests/corpus.py) is what it claims to be."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import msgpack
import numpy as np
import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

from tests import corpus


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Write the whole corpus once into a temporary folder."""
    return corpus.write_corpus(tmp_path_factory.mktemp("corpus"))


def _upright_rgb(path: Path) -> np.ndarray:
    """Decode with Pillow the way a viewer would: first frame, EXIF orientation applied, RGB."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def test_every_file_is_written_and_classified(files: dict[str, Path]) -> None:
    """All files exist and each is either GOOD or BAD, never both. BAD reasons are known."""
    assert set(files) == set(corpus.GENERATORS)
    assert set(corpus.GOOD) | set(corpus.BAD) == set(files)
    assert not set(corpus.GOOD) & set(corpus.BAD)
    assert set(corpus.BAD.values()) <= corpus.REASONS
    assert all(path.is_file() and path.name == name for name, path in files.items())
    assert corpus.expected("truncated.jpg") == ("error", "truncated")
    assert corpus.expected("face16.png") == ("ok", None)


def test_generation_is_deterministic() -> None:
    """Generating twice gives the same bytes, so failures can be reproduced."""
    for name, make in corpus.GENERATORS.items():
        assert make() == make(), name


def test_non_ascii_name_round_trips(files: dict[str, Path]) -> None:
    """The file name with a space, an accent and CJK characters is on disk unchanged."""
    path = files[corpus.NON_ASCII_NAME]
    assert " " in path.name and "é" in path.name and "写真" in path.name
    assert path.name in {p.name for p in path.parent.iterdir()}
    with Image.open(path) as image:
        assert image.format == "JPEG"


def test_empty_file_is_zero_bytes(files: dict[str, Path]) -> None:
    """empty.jpg has no content at all."""
    assert files["empty.jpg"].stat().st_size == 0


@pytest.mark.parametrize("name", ["random.jpg", "text.png"])
def test_not_an_image_is_unidentifiable(files: dict[str, Path], name: str) -> None:
    """Pillow cannot identify it and OpenCV cannot decode it."""
    with pytest.raises(UnidentifiedImageError):
        Image.open(files[name])
    assert cv2.imdecode(np.fromfile(files[name], np.uint8), cv2.IMREAD_COLOR) is None


def test_truncated_jpeg_has_a_header_but_no_end(files: dict[str, Path]) -> None:
    """It starts as a JPEG (SOI marker, readable size) but stops before the EOI marker."""
    data = files["truncated.jpg"].read_bytes()
    assert data.startswith(b"\xff\xd8") and not data.endswith(b"\xff\xd9")
    assert len(data) * 2 in {len(corpus.make_face_jpeg()), len(corpus.make_face_jpeg()) - 1}
    with Image.open(files["truncated.jpg"]) as image:
        assert image.size == (240, 320)
        with pytest.raises(OSError):
            image.load()


def test_huge_header_png_declares_30000_squared(files: dict[str, Path]) -> None:
    """The IHDR says 30000x30000 with a valid CRC, and the whole file is tiny."""
    data = files["huge_header.png"].read_bytes()
    assert data.startswith(corpus.PNG_SIGNATURE) and len(data) < 200
    length, kind = struct.unpack(">I4s", data[8:16])
    ihdr = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert kind == b"IHDR" and length == 13
    assert struct.unpack(">II", ihdr[:8]) == (corpus.HUGE_SIDE, corpus.HUGE_SIDE)
    assert crc == zlib.crc32(kind + ihdr) & 0xFFFFFFFF


def test_huge_header_png_size_is_known_without_loading(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow reads the claimed size from the header alone. By default it refuses it as a bomb."""
    with pytest.raises(Image.DecompressionBombError):
        Image.open(files["huge_header.png"])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with Image.open(files["huge_header.png"]) as image:
        assert image.size == (corpus.HUGE_SIDE, corpus.HUGE_SIDE)


def test_one_pixel_png(files: dict[str, Path]) -> None:
    """A valid 1x1 image."""
    with Image.open(files["one_pixel.png"]) as image:
        assert image.format == "PNG" and image.size == (1, 1)


def test_face16_png_reads_back_as_uint16(files: dict[str, Path]) -> None:
    """OpenCV with IMREAD_UNCHANGED gives 3-channel uint16 using the full 16-bit range."""
    array = cv2.imread(str(files["face16.png"]), cv2.IMREAD_UNCHANGED)
    assert array.dtype == np.uint16 and array.shape == (320, 240, 3)
    assert array.max() > 255


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("face_cmyk.jpg", "CMYK"),
        ("face_gray.jpg", "L"),
        ("face_rgba.png", "RGBA"),
        ("face_palette.png", "P"),
    ],
)
def test_colour_mode(files: dict[str, Path], name: str, mode: str) -> None:
    """Each variant is stored in the colour mode its name says."""
    with Image.open(files[name]) as image:
        assert image.mode == mode


def test_rgba_png_has_real_transparency(files: dict[str, Path]) -> None:
    """The alpha channel is used: transparent frame, opaque centre."""
    with Image.open(files["face_rgba.png"]) as image:
        alpha = np.asarray(image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[160, 120] == 255


def test_exif_photo_is_stored_rotated_with_orientation_6(files: dict[str, Path]) -> None:
    """Stored pixels are landscape (face on its side). EXIF 6 turns them back to the portrait face."""
    path = files["face_exif_rot90.jpg"]
    with Image.open(path) as image:
        assert image.getexif()[corpus.EXIF_ORIENTATION_TAG] == corpus.EXIF_ORIENTATION
        assert image.size == (320, 240)  # stored: landscape
    upright = _upright_rgb(path)
    assert upright.shape == (320, 240, 3)
    reference = np.asarray(corpus.face_pil(), dtype=np.int16)
    assert np.abs(upright.astype(np.int16) - reference).mean() < 4  # JPEG noise only


def test_exif_photo_without_orientation_is_not_upright(files: dict[str, Path]) -> None:
    """A decoder that ignores EXIF (cv2.IMREAD_IGNORE_ORIENTATION) gets the sideways pixels."""
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    assert cv2.imread(str(files["face_exif_rot90.jpg"]), flags).shape == (240, 320, 3)
    assert cv2.imread(str(files["face_exif_rot90.jpg"]), cv2.IMREAD_COLOR).shape == (320, 240, 3)


def test_animated_gif_has_two_frames(files: dict[str, Path]) -> None:
    """The GIF is animated with exactly two frames."""
    with Image.open(files["animated.gif"]) as image:
        assert image.is_animated and image.n_frames == 2


def test_good_images_show_the_claimed_number_of_faces(files: dict[str, Path]) -> None:
    """dlib's HOG detector (upsample 1) finds GOOD[name] faces once each is decoded upright."""
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    found = {name: len(detector(_upright_rgb(files[name]), 1)) for name in corpus.GOOD}
    assert found == corpus.GOOD


def test_corrupt_msgpack_fails_to_decode() -> None:
    """Both one-shot and streaming msgpack decoding raise on it."""
    with pytest.raises(ValueError):
        msgpack.unpackb(corpus.corrupt_msgpack())
    unpacker = msgpack.Unpacker()
    unpacker.feed(corpus.corrupt_msgpack())
    with pytest.raises(ValueError):
        list(unpacker)


def test_unknown_version_event_decodes_with_version_999() -> None:
    """A well-formed msgpack job event that names an unknown schema version."""
    event = msgpack.unpackb(corpus.unknown_version_event(), raw=False)
    assert event["schema"] == "faces.job" and event["version"] == 999
