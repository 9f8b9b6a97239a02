"""Face chips made the same way at any photo size: anti-aliased, aligned, with cheap variants.

An age network sees a small chip (64x64 for the bundled one). Cut straight from the photo with
bilinear sampling, or with dlib's pyramid of halvings then bilinear, a chip is sharp and aliased
or soft depending on how many source pixels fall on one chip pixel, and the networks read that
as age: the same face got ages 8-16 years apart at 60-270 px wide (docs/models.md, "Ages that
hold still"). Here the part of the photo under the chip is first shrunk with area averaging
(cv2.INTER_AREA) to the chip's own scale, and only then warped (rotation, sub-pixel shift) onto
the chip grid, so every chip carries the same detail whatever the photo's size.

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

# Extra source pixels around the chip's footprint, in chip pixels: room for the bilinear
# taps and the variants' shifts, so no chip pixel reads the crop's cut edge.
_MARGIN_CHIP_PIXELS = 3


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


def cut_chips(pixels: np.ndarray, specs: Sequence[ChipSpec]) -> list[np.ndarray]:
    """For each spec, (len(variants), size, size, channels) uint8 chips of ``pixels``. The photo
    under the chips is area-shrunk once, to the scale of the first spec's chip (the largest);
    a smaller chip is cut at that scale and area-halved (or more) to its size. Source pixels
    beyond the photo are black, as in dlib's chips."""
    first = specs[0].size
    plans = []
    for spec in specs:
        factor = max(1, round(first / spec.size))  # cut at the first chip's scale, then reduce
        axis = (spec.size - 1) / 2 if spec.axis is None else spec.axis
        upscale = np.array([[factor, 0.0, (factor - 1) / 2], [0.0, factor, (factor - 1) / 2]])
        mappings = [compose(upscale, _variant_mapping(spec.mapping, spec.size, v, axis)) for v in spec.variants]
        plans.append((spec.size, spec.size * factor, mappings))
    region, to_region = _shrunk_region(pixels, plans[0][2], first, [m for _, _, ms in plans for m in ms])
    from_region = cv2.invertAffineTransform(to_region)
    out = []
    for size, cut_size, mappings in plans:
        chips = [_warp(region, compose(m, from_region), cut_size) for m in mappings]
        if cut_size != size:
            chips = [cv2.resize(chip, (size, size), interpolation=cv2.INTER_AREA) for chip in chips]
        out.append(np.ascontiguousarray(np.stack(chips)))
    return out


def _warp(region: np.ndarray, mapping: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(
        region, mapping, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def shrink_area(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` scaled by ``factor`` (< 1) with area averaging: no aliasing, whatever the factor."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


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


def _shrunk_region(
    pixels: np.ndarray, scaled_by: Sequence[np.ndarray], size: int, mappings: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The part of the photo under every chip of ``mappings`` (each ``size`` pixels), area-shrunk
    to the scale of the chips of ``scaled_by``, and the map from photo coordinates into it. A
    photo already at or below that scale is not touched (enlarging is bilinear in the warp
    itself, as in dlib's chips)."""
    # Source pixels per chip pixel: the first variant's mapping's scale (rotation aside).
    scale = 1.0 / np.sqrt(abs(np.linalg.det(scaled_by[0][:, :2])))
    corners = np.array([(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)], np.float64)
    footprint = np.concatenate([_inverse_points(m, corners) for m in mappings])
    margin = _MARGIN_CHIP_PIXELS * max(scale, 1.0)
    height, width = pixels.shape[:2]
    left, top = (max(0, int(np.floor(v - margin))) for v in footprint.min(axis=0))
    right = min(width, int(np.ceil(footprint[:, 0].max() + margin)) + 1)
    bottom = min(height, int(np.ceil(footprint[:, 1].max() + margin)) + 1)
    if right <= left or bottom <= top:  # the chip lies wholly off the photo: all black
        return np.zeros((1, 1, pixels.shape[2]), pixels.dtype), np.array([[1.0, 0, -1e6], [0, 1.0, -1e6]])
    crop = pixels[top:bottom, left:right]
    if scale <= 1.0:
        return crop, np.array([[1.0, 0, -left], [0, 1.0, -top]])
    shrunk = shrink_area(crop, 1.0 / scale)
    fx, fy = shrunk.shape[1] / crop.shape[1], shrunk.shape[0] / crop.shape[0]
    return shrunk, _resize_mapping(fx, fy, left, top)


def _resize_mapping(fx: float, fy: float, left: int, top: int) -> np.ndarray:
    """Photo -> resized crop coordinates, for a crop at (left, top) resized by (fx, fy).

    cv2.resize puts a pixel centre i of the result at (i + 0.5) / f - 0.5 of its source."""
    return np.array([[fx, 0, fx * (0.5 - left) - 0.5], [0, fy, fy * (0.5 - top) - 0.5]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine map ``outer`` after ``inner``."""
    return outer[:, :2] @ inner + np.hstack([np.zeros((2, 2)), outer[:, 2:]])


def _inverse_points(mapping: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (cv2.invertAffineTransform(mapping) @ np.hstack([points, np.ones((len(points), 1))]).T).T
