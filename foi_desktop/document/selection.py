"""Selection tools' pixel logic: rectangle, ellipse, polygon (lasso) and colour similarity
(magic wand), and how a selection combines with a mask plane.

A selection is hard-edged, as GIMP's and Krita's are with anti-aliasing off: a pixel is in
when its centre is (Feather softens the edge afterwards). Each one keeps only its bounding
rectangle, so applying it touches those pixels alone. numpy only (no scipy)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .events import Rect
from .maskops import clip_rect, nonzero_rect, runs, union_rect

MODES = ("replace", "add", "subtract")
WAND_REACH = 128  # px around the click that the magic wand searches first


@dataclass(frozen=True)
class Selection:
    """inside: bool (y1 - y0, x1 - x0), the selected pixels of rect; rect None = nothing selected."""

    rect: Rect | None
    inside: np.ndarray | None = None


EMPTY = Selection(None)


def _edge(value: float) -> int:
    """The first pixel whose centre lies at or beyond a coordinate."""
    return math.floor(value + 0.5)


def _box(size: tuple[int, int], p0, p1) -> Rect | None:
    """The pixels whose centres lie between two dragged corners, clipped to the photo."""
    (xa, ya), (xb, yb) = p0, p1
    rect = (_edge(min(xa, xb)), _edge(min(ya, yb)), _edge(max(xa, xb)), _edge(max(ya, yb)))
    return clip_rect(rect, *size)


def rectangle(size: tuple[int, int], p0, p1) -> Selection:
    """size: the photo's (width, height); p0, p1: opposite corners, photo pixels."""
    rect = _box(size, p0, p1)
    if rect is None:
        return EMPTY
    x0, y0, x1, y1 = rect
    return Selection(rect, np.ones((y1 - y0, x1 - x0), bool))


def ellipse(size: tuple[int, int], p0, p1) -> Selection:
    """The ellipse inscribed in the box dragged from p0 to p1."""
    rect = _box(size, p0, p1)
    if rect is None:
        return EMPTY
    (xa, ya), (xb, yb) = p0, p1
    cx, cy = (xa + xb) / 2, (ya + yb) / 2
    rx, ry = max(abs(xb - xa) / 2, 1e-6), max(abs(yb - ya) / 2, 1e-6)
    x0, y0, x1, y1 = rect
    dx = ((np.arange(x0, x1) + 0.5 - cx) / rx) ** 2
    dy = ((np.arange(y0, y1) + 0.5 - cy) / ry) ** 2
    return _trimmed(rect, dy[:, None] + dx[None, :] <= 1.0)


def polygon(size: tuple[int, int], points) -> Selection:
    """The inside of the closed polygon through points (a lasso's path), even-odd rule.

    Scanline fill: every edge's crossing with each pixel row's centre line toggles the pixels
    from there to the right. Cost grows with the crossings plus the box's pixels, so a long
    lasso over a large area stays fast."""
    vertices = np.asarray(points, np.float64).reshape(-1, 2)
    if len(vertices) < 3:
        return EMPTY
    rect = clip_rect((_edge(vertices[:, 0].min()), _edge(vertices[:, 1].min()),
                      _edge(vertices[:, 0].max()), _edge(vertices[:, 1].max())), *size)
    if rect is None:
        return EMPTY
    x0, y0, x1, y1 = rect
    start, end = vertices, np.roll(vertices, -1, axis=0)
    # An edge crosses the centre lines r + 0.5 in [its lower y, its upper y) (half-open: a
    # vertex on a line counts once), the rows from ceil(low - 0.5) up to ceil(high - 0.5).
    low, high = np.minimum(start[:, 1], end[:, 1]), np.maximum(start[:, 1], end[:, 1])
    first = np.clip(np.ceil(low - 0.5), y0, y1).astype(np.int64)
    counts = np.clip(np.ceil(high - 0.5), y0, y1).astype(np.int64) - first
    edges, rows = _ranges(first, counts)
    (xa, ya), (xb, yb) = start[edges].T, end[edges].T
    crossing = xa + (rows + 0.5 - ya) * (xb - xa) / (yb - ya)
    columns = np.clip(np.floor(crossing + 0.5).astype(np.int64), x0, x1)
    # A pixel is inside when an odd number of toggles lie at or left of it: two at one place
    # cancel, and the others, in order along each row, pair up into runs [start, end).
    stride = x1 + 1
    toggles, counts = np.unique(rows * stride + columns, return_counts=True)
    bounds = toggles[counts % 2 == 1]
    if bounds.size == 0:
        return EMPTY
    run_rows, starts = np.divmod(bounds[0::2], stride)
    return _from_runs(run_rows, starts, bounds[1::2] - run_rows * stride)


def similar_colour(pixels: np.ndarray, x: float, y: float, tolerance: int) -> Selection:
    """The magic wand: the region of pixels joined to (x, y) whose every channel lies within
    tolerance of the colour there (GIMP's rule), 4-connected. pixels: uint8 (H, W, 3).

    Most regions a wand picks are far smaller than the photo, so the search starts in a
    window around the click and widens only while the region found reaches an edge of the
    window inside the photo (beyond which it may go on): a region that reaches none is whole."""
    height, width = pixels.shape[:2]
    col, row = int(math.floor(x)), int(math.floor(y))
    if not (0 <= col < width and 0 <= row < height):
        return EMPTY
    colour = pixels[row, col]
    found, reach = (col, row, col + 1, row + 1), WAND_REACH
    while True:
        window = clip_rect((found[0] - reach, found[1] - reach, found[2] + reach, found[3] + reach), width, height)
        x0, y0, x1, y1 = window
        if (x1 - x0) * (y1 - y0) > width * height // 2:  # costs nearly what the whole photo does
            window = x0, y0, x1, y1 = 0, 0, width, height
        region = _component(_near_colour(pixels[y0:y1, x0:x1], colour, int(tolerance)), row - y0, col - x0)
        rx0, ry0, rx1, ry1 = region.rect
        found = (x0 + rx0, y0 + ry0, x0 + rx1, y0 + ry1)
        if not _reaches_open_edge(found, window, width, height):
            return Selection(found, region.inside)
        reach *= 4


def _reaches_open_edge(rect: Rect, window: Rect, width: int, height: int) -> bool:
    """Whether rect touches a side of window that is not the photo's own edge."""
    x0, y0, x1, y1 = rect
    wx0, wy0, wx1, wy1 = window
    return (x0 == wx0 > 0) or (y0 == wy0 > 0) or (x1 == wx1 < width) or (y1 == wy1 < height)


def _near_colour(pixels: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels whose channels are all within tolerance of colour: unsigned compares per
    channel (uint8 arithmetic, no wider copy of a 24-megapixel photo)."""
    near = None
    for channel, value in enumerate(colour):
        low = max(0, int(value) - tolerance)
        span = np.uint8(min(255, int(value) + tolerance) - low)
        ok = (pixels[:, :, channel] - np.uint8(low)) <= span  # below low wraps around to large
        near = ok if near is None else np.logical_and(near, ok, out=near)
    return near


def _component(near: np.ndarray, row: int, col: int) -> Selection:
    """The 4-connected part of `near` that holds (row, col).

    Works on horizontal runs rather than pixels: runs in neighbouring rows that overlap are
    joined, then union-find with pointer jumping labels them all in a few vectorised rounds
    (a pixel-by-pixel flood fill in Python would take minutes on a 24-megapixel photo)."""
    width = near.shape[1]
    run_rows, starts, ends = runs(near)
    seed = np.searchsorted(run_rows * width + starts, row * width + col, side="right") - 1
    label = _union(len(starts), *_touching_runs(run_rows, starts, ends, width))
    chosen = label == label[seed]
    return _from_runs(run_rows[chosen], starts[chosen], ends[chosen])


def _from_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Selection:
    """The selection made of runs of pixels, row rows[i] from starts[i] to ends[i]
    (exclusive); the runs in order along the rows, none empty, none overlapping."""
    x0, y0, x1, y1 = int(starts.min()), int(rows.min()), int(ends.max()), int(rows.max()) + 1
    width = x1 - x0
    # The box read row by row is a sequence of stretches, outside and inside by turns:
    # np.repeat writes it in one pass (a cumulative sum along the rows took 100 times as long).
    bounds = np.empty(2 * len(rows), np.int64)
    bounds[0::2] = (rows - y0) * width + starts - x0
    bounds[1::2] = (rows - y0) * width + ends - x0
    lengths = np.diff(bounds, prepend=0, append=(y1 - y0) * width)
    inside = np.repeat(np.arange(len(lengths)) % 2 == 1, lengths)
    return Selection((x0, y0, x1, y1), inside.reshape(y1 - y0, width))


def _touching_runs(run_rows, starts, ends, width):
    """Pairs of runs (indices) in adjacent rows that share a column."""
    start_keys = run_rows * width + starts
    end_keys = run_rows * width + ends
    below = (run_rows + 1) * width
    # Runs of the next row that overlap [start, end): their end is past start, their start before end.
    low = np.searchsorted(end_keys, below + starts, side="right")
    high = np.searchsorted(start_keys, below + ends, side="left")
    return _ranges(low, high - low)


def _ranges(first: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, counts[i] consecutive values from first[i] (none when counts[i] ≤ 0), all
    in one array, and beside each the i it came from."""
    counts = np.maximum(counts, 0)
    owners = np.repeat(np.arange(len(counts)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return owners, np.repeat(first, counts) + offsets


def _union(count: int, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each node's smallest connected node (its label), by hooking roots and pointer jumping."""
    parent = np.arange(count)
    while True:
        a, b = parent[first], parent[second]
        differ = a != b
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(a, b)[differ], np.minimum(a, b)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _trimmed(rect: Rect, inside: np.ndarray) -> Selection:
    """The selection cut to the bounding box of its pixels (EMPTY when none)."""
    extent = nonzero_rect(inside)
    if extent is None:
        return EMPTY
    ex0, ey0, ex1, ey1 = extent
    x0, y0 = rect[:2]
    return Selection((x0 + ex0, y0 + ey0, x0 + ex1, y0 + ey1), inside[ey0:ey1, ex0:ex1])


def reach(plane: np.ndarray, selection: Selection, mode: str) -> Rect | None:
    """The rectangle that combining a selection with a mask plane may change: the
    selection's, and for replace also every pixel the plane has set."""
    if mode not in MODES:
        raise ValueError(f"Unknown selection mode {mode!r}")
    cleared = nonzero_rect(plane) if mode == "replace" else None
    return union_rect(cleared, selection.rect)


def apply(plane: np.ndarray, selection: Selection, mode: str, rect: Rect) -> None:
    """Combine a selection with a mask plane, in place: replace (the selection alone), add or
    subtract. rect: what reach gives for the plane, which replace clears first."""
    if mode == "replace":
        x0, y0, x1, y1 = rect
        plane[y0:y1, x0:x1] = 0
    if selection.rect is not None:
        x0, y0, x1, y1 = selection.rect
        plane[y0:y1, x0:x1][selection.inside] = 0 if mode == "subtract" else 255
