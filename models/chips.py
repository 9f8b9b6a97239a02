"""Face chips made the same way at any photo size: one canonical resolution, aligned, with variants.

An age network sees a small chip (64x64 for the bundled one). Cut straight from the photo with
bilinear sampling, or with dlib's pyramid of halvings then bilinear, a chip is sharp and aliased
or soft depending on how many source pixels fall on one chip pixel, and the networks read that
as age: the same face got ages 8-16 years apart at 60-270 px wide (docs/models.md, "Ages that
hold still"). Here every chip is rendered as if the face had been photographed at one source
pixel per chip pixel (a face about 55 px wide):

1. the part of the photo under the chips is area-shrunk (cv2.INTER_AREA) to REGION_DETAIL
   pixels per chip pixel, when it has more;
2. it is low-passed with a Gaussian to CHIP_BLUR chip pixels, the blur a photo pixel carries
   (sharp faces from large photos read older the more pixels they have: this takes that detail
   away; a face at or below one source pixel per chip pixel is not blurred);
3. each chip is warped (rotation, sub-pixel shift) onto a grid SUPERSAMPLE times finer than the
   chip and area-averaged down to it, so a chip pixel is the mean over its square, not one
   bilinear tap whose sharpness depends on where it falls between photo pixels.

``cut_chips`` takes pixels and an affine mapping from the photo to the chip (the alignment:
``dlib_mapping`` reproduces dlib's ``extract_image_chip`` geometry exactly) and returns one chip
per ``ChipVariant``: the chip itself, mirrored, or a little zoomed or shifted; a model averages
what its network says over them (one batched call), which evens out what one crop's noise does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Extra source pixels around the chips' footprint, in chip pixels: room for the bilinear taps
# and the low-pass (3 sigma: 1.2 chip pixels), so no chip pixel reads the crop's cut edge.
_MARGIN_CHIP_PIXELS = 3
# Photo pixels per chip pixel (each side) kept before the low-pass: more is shrunk away. And
# the warp's grid cells per chip pixel. Measured with bench/ages.py (docs/models.md, "Ages that
# hold still"): 3 and 2 kept all 10 faces under a 3-year spread (largest 2.4; 3 and 3: 2.3,
# for about 0.6 ms more CPU per face); 2 and 2 left one at 3.3.
REGION_DETAIL = 3
SUPERSAMPLE = 2
# Gaussian sigma, in chip pixels, of the canonical chip: that of a photo sampled at one pixel
# per chip pixel. Measured on bench/ages.py's faces: 0.3 left a face at a 5.9-year spread, 0.5
# widened the spread of faces the bench does not tune on; 0.4 is the middle.
CHIP_BLUR = 0.4


@dataclass(frozen=True)
class ChipVariant:
    """One way of cutting the chip: ``zoom`` > 1 shows less around the face, ``shift`` moves the
    face by that many chip pixels (x, y), ``mirror`` flips the chip left to right."""

    mirror: bool = False
    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)


PLAIN = (ChipVariant(),)


def dlib_mapping(details) -> np.ndarray:
    """The 2x3 affine map from photo to chip of a ``dlib.chip_details``: dlib's
    get_mapping_to_chip, which takes the rectangle, rotated by the angle about its centre, onto
    the chip's corners 0 and size - 1."""
    rect = details.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    # Undo the rotation, then scale the corners' distance (dlib's width() counts one more) onto
    # size - 1 chip pixels.
    sides = (rect.right() - rect.left(), rect.bottom() - rect.top())
    linear = np.diag([(details.cols - 1) / sides[0], (details.rows - 1) / sides[1]]) @ np.array(
        [[cos, sin], [-sin, cos]]
    )
    offset = np.array([(details.cols - 1) / 2, (details.rows - 1) / 2]) - linear @ centre
    return np.hstack([linear, offset[:, None]])


@dataclass(frozen=True)
class ChipSpec:
    """Chips of one network: the photo -> chip map (the alignment), the chip's side, the variants,
    and the x of the face's symmetry axis on the chip (the mirror's axis)."""

    mapping: np.ndarray
    size: int
    variants: Sequence[ChipVariant] = PLAIN
    axis: float | None = None


def cut_chips(pixels: np.ndarray, spec: ChipSpec) -> np.ndarray:
    """(len(variants), size, size, channels) uint8 chips of ``pixels`` at the canonical
    resolution (see the module docstring); the region under them is prepared once. Source pixels
    beyond the photo are black, as in dlib's chips."""
    axis = (spec.size - 1) / 2 if spec.axis is None else spec.axis
    variants = [_variant_mapping(spec.mapping, spec.size, v, axis) for v in spec.variants]
    region, to_region = _canonical_region(pixels, spec.mapping, spec.size, variants)
    from_region = cv2.invertAffineTransform(to_region)
    grid, count = spec.size * SUPERSAMPLE, len(variants)
    # The variants' fine grids one under the other, area-averaged to chips in one call.
    fine = np.empty((count * grid, grid, pixels.shape[2]), pixels.dtype)
    for i, mapping in enumerate(variants):
        _warp(region, compose(compose(_upscale(SUPERSAMPLE), mapping), from_region), fine[i * grid : (i + 1) * grid])
    chips = cv2.resize(fine, (spec.size, count * spec.size), interpolation=cv2.INTER_AREA)
    return chips.reshape(count, spec.size, spec.size, pixels.shape[2])


def _warp(region: np.ndarray, mapping: np.ndarray, out: np.ndarray) -> None:
    """``region`` warped by ``mapping`` into ``out`` (bilinear; black beyond the region)."""
    cv2.warpAffine(
        region,
        mapping,
        (out.shape[1], out.shape[0]),
        dst=out,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def _upscale(factor: int) -> np.ndarray:
    """Chip -> a grid ``factor`` times finer whose cells' centres average to the chip pixels'."""
    return np.array([[factor, 0.0, (factor - 1) / 2], [0.0, factor, (factor - 1) / 2]])


def shrink_area(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor`` (< 1) with area averaging: no aliasing, whatever the factor."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def source_pixels_per_chip_pixel(mapping: np.ndarray) -> float:
    """How many photo pixels one chip pixel spans (side), from the photo -> chip map."""
    return float(1.0 / np.sqrt(abs(np.linalg.det(mapping[:, :2]))))


def _variant_mapping(mapping: np.ndarray, size: int, variant: ChipVariant, axis: float) -> np.ndarray:
    """``mapping`` followed by the variant's mirror about ``axis``, its zoom about the chip's
    centre and its shift."""
    if variant.mirror:
        mapping = compose(np.array([[-1.0, 0.0, 2 * axis], [0.0, 1.0, 0.0]]), mapping)
    centre = (size - 1) / 2
    zoom = variant.zoom
    after = np.array(
        [
            [zoom, 0.0, (1 - zoom) * centre + variant.shift[0]],
            [0.0, zoom, (1 - zoom) * centre + variant.shift[1]],
        ]
    )
    return compose(after, mapping)


def _canonical_region(
    pixels: np.ndarray, mapping: np.ndarray, size: int, mappings: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The part of the photo under every chip of ``mappings`` (each ``size`` pixels) at the
    canonical resolution of the chip ``mapping`` maps onto, and the map from photo coordinates
    into it: area-shrunk to at most REGION_DETAIL pixels per chip pixel, then low-passed to
    CHIP_BLUR chip pixels. A face at or below one photo pixel per chip pixel is not touched
    (enlarging is bilinear in the warp itself, as in dlib's chips)."""
    scale = source_pixels_per_chip_pixel(mapping)
    corners = np.array([(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)], np.float64)
    footprint = np.concatenate([_inverse_points(m, corners) for m in mappings])
    margin = _MARGIN_CHIP_PIXELS * max(scale, 1.0)
    height, width = pixels.shape[:2]
    left, top = (max(0, int(np.floor(v - margin))) for v in footprint.min(axis=0))
    right = min(width, int(np.ceil(footprint[:, 0].max() + margin)) + 1)
    bottom = min(height, int(np.ceil(footprint[:, 1].max() + margin)) + 1)
    if right <= left or bottom <= top:  # the chip lies wholly off the photo: all black
        return np.zeros((1, 1, pixels.shape[2]), pixels.dtype), np.array([[1.0, 0, -1e6], [0, 1.0, -1e6]])
    region = pixels[top:bottom, left:right]
    to_region = np.array([[1.0, 0, -left], [0, 1.0, -top]])
    if scale > REGION_DETAIL:
        shrunk = shrink_area(region, REGION_DETAIL / scale)
        fx, fy = shrunk.shape[1] / region.shape[1], shrunk.shape[0] / region.shape[0]
        region, to_region = shrunk, _resize_mapping(fx, fy, left, top)
    per_chip_pixel = min(scale, REGION_DETAIL)  # region pixels per chip pixel
    if per_chip_pixel > 1.0:
        # A region pixel carries CHIP_BLUR of its own width; add the rest up to CHIP_BLUR chip
        # pixels (Gaussian blurs add in squares): CHIP_BLUR * sqrt(q^2 - 1) region pixels.
        sigma = CHIP_BLUR * np.sqrt(per_chip_pixel**2 - 1.0)
        region = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    return region, to_region


def _resize_mapping(fx: float, fy: float, left: int, top: int) -> np.ndarray:
    """Photo -> resized crop coordinates, for a crop at (left, top) resized by (fx, fy).

    cv2.resize puts a pixel centre i of the result at (i + 0.5) / f - 0.5 of its source."""
    return np.array([[fx, 0, fx * (0.5 - left) - 0.5], [0, fy, fy * (0.5 - top) - 0.5]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine map ``outer`` after ``inner``."""
    return outer[:, :2] @ inner + np.hstack([np.zeros((2, 2)), outer[:, 2:]])


def _inverse_points(mapping: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (cv2.invertAffineTransform(mapping) @ np.hstack([points, np.ones((len(points), 1))]).T).T
