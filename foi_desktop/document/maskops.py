"""Pixel operations on masks: uint8 (H, W) arrays, 0 = outside, 255 = fully inside.

8-bit like the masks of GIMP, Krita and Photoshop: a quarter of float32's memory on a
24-megapixel photo, lossless in a PNG, and drawable by the canvas without conversion.
Every operation works on the smallest rectangle that can change and returns it, so the
undo history and the canvas only touch those pixels. numpy + PIL only (no scipy)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from .events import Rect

TILE = 128  # undo snapshots and threshold updates work in square tiles of this side
EDGE_BAND = 64  # rows read at a time looking in from an edge for a mask's extent


def clip_rect(rect: Rect, width: int, height: int) -> Rect | None:
    x0, y0, x1, y1 = rect
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def union_rect(a: Rect | None, b: Rect | None) -> Rect | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def nonzero_rect(mask: np.ndarray) -> Rect | None:
    """Bounding rectangle of the non-zero pixels, or None for an empty mask. The rows are
    looked for from the top and bottom edges a band at a time, and a mask set at both side
    edges spans the width: a mask set near its edges (a flip plane is 255 nearly everywhere)
    costs a few bands, not passes over the photo."""
    height, width = mask.shape
    top = _set_row(mask)
    if top is None:
        return None
    bottom = _set_row(mask, backwards=True) + 1
    rows = mask[top:bottom]
    if rows[:, 0].any() and rows[:, -1].any():
        return (0, top, width, bottom)
    cols = np.flatnonzero(rows.any(axis=0))
    return (int(cols[0]), top, int(cols[-1]) + 1, bottom)


def _set_row(mask: np.ndarray, backwards: bool = False) -> int | None:
    """The first row (the last, backwards) with a non-zero pixel, EDGE_BAND rows at a time."""
    starts = range(0, mask.shape[0], EDGE_BAND)
    for start in reversed(starts) if backwards else starts:
        found = np.flatnonzero(mask[start : start + EDGE_BAND].max(axis=1))
        if found.size:
            return start + int(found[-1] if backwards else found[0])
    return None


def runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True along each row of a 2-D bool array, in order: (rows, starts, ends),
    ends exclusive (one pass over the array)."""
    height, width = flags.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = flags
    # Along each row, changes alternate: a run's start, then its end.
    changes = np.flatnonzero(np.diff(padded, axis=1))
    rows, starts = np.divmod(changes[0::2], width + 1)
    return rows, starts, changes[1::2] - rows * (width + 1)


def tiles_in(rect: Rect):
    """The (row, column) of every tile that the rectangle touches."""
    x0, y0, x1, y1 = rect
    for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
        for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
            yield ty, tx


def tile_rect(ty: int, tx: int, width: int, height: int) -> Rect:
    return (tx * TILE, ty * TILE, min(width, (tx + 1) * TILE), min(height, (ty + 1) * TILE))


# ---------------------------------------------------------------------------------------------
# Brush


def brush_segment(masks, p0, p1, radius: float, hardness: float, erase: bool) -> Rect | None:
    """Paint (or erase) the capsule swept by a round brush from p0 to p1, in place, into each
    of masks (arrays of one shape: a layer's mask and its flip plane take the same dab).

    Brush values combine with the mask by maximum (erasing: minimum of the inverse), so dabs
    and segments that overlap within a stroke never build up: one pass = the brush's own value.
    hardness 1 gives a hard edge with one pixel of anti-aliasing; lower values widen a smooth
    fall-off inside the radius. Returns the rectangle that may have changed."""
    height, width = masks[0].shape
    (x0, y0), (x1, y1) = p0, p1
    # The smallest brush still reaches the nearest pixel centre wherever it is (√½ px away at
    # worst): at 0.5 a one-pixel dab on a pixel boundary painted nothing.
    radius = max(float(radius), 0.75)
    rect = clip_rect(
        (
            math.floor(min(x0, x1) - radius),
            math.floor(min(y0, y1) - radius),
            math.ceil(max(x0, x1) + radius) + 1,
            math.ceil(max(y0, y1) + radius) + 1,
        ),
        width,
        height,
    )
    if rect is None:
        return None
    rx0, ry0, rx1, ry1 = rect
    # Distance from each pixel centre to the segment, in float32 over the rectangle only.
    px = np.arange(rx0, rx1, dtype=np.float32)[None, :] + np.float32(0.5 - x0)
    py = np.arange(ry0, ry1, dtype=np.float32)[:, None] + np.float32(0.5 - y0)
    dx, dy = np.float32(x1 - x0), np.float32(y1 - y0)
    length2 = dx * dx + dy * dy
    if length2 > 0:
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        ex, ey = px - t * dx, py - t * dy
        distance = np.sqrt(ex * ex + ey * ey)
    else:
        distance = np.sqrt(px * px + py * py)
    soft = max(radius * (1.0 - float(np.clip(hardness, 0.0, 1.0))), 1.0)
    level = np.clip((np.float32(radius) - distance) * np.float32(1.0 / soft), 0.0, 1.0)
    level = level * level * (3.0 - 2.0 * level)  # smoothstep: no visible ring at the fall-off's edges
    dab = (level * 255.0 + 0.5).astype(np.uint8)
    if erase:
        np.subtract(255, dab, out=dab)
    for mask in masks:
        region = mask[ry0:ry1, rx0:rx1]
        (np.minimum if erase else np.maximum)(region, dab, out=region)
    return rect


# ---------------------------------------------------------------------------------------------
# Grow, shrink, feather


def _shifted_max(array: np.ndarray, length: int, dy: int, dx: int) -> np.ndarray:
    """max over array shifted by k·(dy, dx), k = 0..length-1 (zero fill), by doubling:
    log2(length) passes instead of length."""
    result = array.copy()
    span = 1
    while span < length:
        step = min(span, length - span)
        _max_with_shift(result, step * dy, step * dx)
        span += step
    return result


def _max_with_shift(array: np.ndarray, dy: int, dx: int) -> None:
    """array = max(array, array shifted by (dy, dx)), in place; pixels shifted in are 0."""
    height, width = array.shape
    if abs(dy) >= height or abs(dx) >= width:
        return
    target = array[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)]
    source = array[max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    np.maximum(target, source.copy(), out=target)


def _dilate_octagon(array: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation by an octagon of inradius `radius` (close to a disc): the Minkowski sum of
    a horizontal, a vertical and two diagonal segments. Beyond the array counts as 0."""
    diagonal = round(radius * (1.0 - 1.0 / math.sqrt(2.0)))
    straight = radius - 2 * diagonal  # so the horizontal reach is straight + 2·diagonal = radius
    work = np.pad(array, radius)
    height, width = work.shape
    for (dy, dx), half in (((0, 1), straight), ((1, 0), straight), ((1, 1), diagonal), ((1, -1), diagonal)):
        if half <= 0:
            continue
        swept = _shifted_max(work, 2 * half + 1, dy, dx)  # max over offsets 0..2·half
        oy, ox = half * dy, half * dx  # centre it: offsets −half..half
        work = np.zeros_like(swept)
        work[max(-oy, 0) : height + min(-oy, 0), max(-ox, 0) : width + min(-ox, 0)] = swept[
            max(oy, 0) : height + min(oy, 0), max(ox, 0) : width + min(ox, 0)
        ]
    return work[radius : height - radius, radius : width - radius]


def inner_edge(inside: np.ndarray, width: int) -> np.ndarray:
    """The pixels of a region (bool) that have a pixel outside it within `width` (3×3 for 1,
    rounder beyond): its edge, drawn inside it. Beyond the array counts as outside."""
    outside = np.pad(~inside, width, constant_values=True)
    return inside & _dilate_octagon(outside, width)[width:-width, width:-width]


def grow(mask: np.ndarray, pixels: int) -> Rect | None:
    """Grow (pixels > 0) or shrink (< 0) the mask by about that many pixels, in place, with a
    rounded (octagonal) edge. Shrinking does not eat in from the photo's border."""
    pixels = int(pixels)
    extent = nonzero_rect(mask)
    if pixels == 0 or extent is None:
        return None
    height, width = mask.shape
    reach = abs(pixels)
    # A margin of 2·reach around the mask holds every pixel that can change or matter.
    x0, y0, x1, y1 = clip_rect(
        (extent[0] - 2 * reach, extent[1] - 2 * reach, extent[2] + 2 * reach, extent[3] + 2 * reach), width, height
    )
    region = mask[y0:y1, x0:x1]
    if pixels > 0:
        np.copyto(region, _dilate_octagon(region, reach))
        return clip_rect((extent[0] - reach, extent[1] - reach, extent[2] + reach, extent[3] + reach), width, height)
    # Erosion is the inverse's dilation; beyond the photo counts as inside the mask.
    np.copyto(region, 255 - _dilate_octagon(255 - region, reach))
    return extent


def feather(mask: np.ndarray, pixels: float) -> Rect | None:
    """Soften the mask's edges with a Gaussian of that radius, in place."""
    if pixels <= 0:
        return None
    height, width = mask.shape
    extent = nonzero_rect(mask)
    if extent is None:
        return None
    margin = int(math.ceil(3 * pixels)) + 2
    rect = clip_rect(
        (extent[0] - margin, extent[1] - margin, extent[2] + margin, extent[3] + margin), width, height
    )
    x0, y0, x1, y1 = rect
    region = mask[y0:y1, x0:x1]
    blurred = Image.fromarray(region).filter(ImageFilter.GaussianBlur(float(pixels)))
    np.copyto(region, np.asarray(blurred))
    return rect
