"""A layer's grounding map brought to the photo, so τ can move instantly at full resolution.

The engine's map (h_g × w_g, float32 in [0, 1]) covers the working frame, i.e. the photo's
centre crop box. It is resized bilinearly into that box once (smooth contours, not 30-pixel
blocks) and kept as 16-bit levels, 0 outside the box, with the min and max of each cell (an
eighth of a tile's side). Moving τ from a to b can only change pixels whose level lies between
a and b, so only the cells whose range meets that band are visited, as a few rectangles per row
of tiles: a few milliseconds on a 24-megapixel photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from foi_engine.photo import WorkingFrame

from .events import Rect
from .maskops import TILE, runs

LEVELS = 65534  # map value v → level round(v·LEVELS) + 1; level 0 = outside the crop box
# A row of tiles is 8 rows of cells: one byte each (hit or not) in a 64-bit word per cell
# column. On a smooth map a cell's range is far narrower than a tile's, so the band's
# rectangles hold a fifth to a half fewer pixels (numpy passes over them and the canvas's
# repaint of them are most of a τ move's cost).
CELL_ROWS = 8
CELL = TILE // CELL_ROWS


def level(tau: float) -> int:
    return int(round(float(tau) * LEVELS)) + 1


class Grounding:
    """Immutable once built (the undo history shares it between steps)."""

    def __init__(self, grounding_map: np.ndarray, frame: WorkingFrame, whole_image: bool = False):
        self.map = np.ascontiguousarray(grounding_map, dtype=np.float32)
        self.frame = frame
        self.whole_image = whole_image
        self.box = frame.pixel_box
        x0, y0, x1, y1 = self.box
        upsampled = Image.fromarray(self.map, "F").resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
        levels = np.asarray(upsampled, dtype=np.float32) * np.float32(LEVELS)
        self.levels = (np.clip(levels, 0, LEVELS) + 1.5).astype(np.uint16)  # round, then +1
        self._cell_ranges()

    def _cell_ranges(self):
        """Min and max level of every cell (photo cell grid) that meets the box, as (row of
        tiles, cell column, cell row in the row of tiles); the cells that pad the rows of
        tiles beyond the box have a range no band meets."""
        x0, y0, x1, y1 = self.box
        rows = np.r_[0, np.arange((y0 // CELL + 1) * CELL, y1, CELL) - y0]
        cols = np.r_[0, np.arange((x0 // CELL + 1) * CELL, x1, CELL) - x0]
        above = (y0 // CELL) % CELL_ROWS
        height = -(-(above + len(rows)) // CELL_ROWS) * CELL_ROWS
        for name, ufunc, never in (("cell_min", np.minimum, np.iinfo(np.uint16).max), ("cell_max", np.maximum, 0)):
            ranges = np.full((height, len(cols)), never, np.uint16)
            ranges[above : above + len(rows)] = ufunc.reduceat(ufunc.reduceat(self.levels, rows, axis=0), cols, axis=1)
            setattr(self, name, np.ascontiguousarray(ranges.reshape(-1, CELL_ROWS, len(cols)).transpose(0, 2, 1)))

    def small_mask(self, tau: float | None) -> np.ndarray:
        """The engine's own mask at τ (h_g × w_g bool), as `LocateResult.rethreshold` makes it."""
        if self.whole_image or tau is None:
            return np.ones(self.map.shape, bool)
        return self.map >= np.float32(tau)

    def fill(self, mask: np.ndarray, tau: float | None) -> None:
        """Write the thresholded map over the whole mask: 255 where level ≥ τ, 0 elsewhere."""
        mask[:] = 0
        x0, y0, x1, y1 = self.box
        if self.whole_image or tau is None:
            mask[y0:y1, x0:x1] = 255
        else:
            np.multiply(self.levels >= level(tau), 255, out=mask[y0:y1, x0:x1], casting="unsafe")

    def band_rects(self, old: float, new: float) -> list[Rect]:
        """Where moving τ from old to new can change pixels: in each row of tiles, the runs of
        neighbouring cell columns with a cell whose range meets the band, each cut down to the
        rows of cells that do (photo rectangles, clipped to the box). A rectangle is one numpy
        pass in apply_band: a busy map's band makes about a hundred."""
        if self.whole_image:
            return []
        low, high = sorted((level(old), level(new)))
        if low == high:
            return []
        hit = (self.cell_min < high) & (self.cell_max >= low)
        words = hit.view(np.uint64)[..., 0]  # a row of tiles' cell column: 0 = no cell hit
        rows, starts, ends = runs(words != 0)
        # Each run's words OR-ed together say which of its cell rows are hit. reduceat reduces
        # from each index to the next, so the ends are indices too, all but the last: the last
        # run's reduction goes on to the end, where no cell is hit.
        bounds = (rows * words.shape[1])[:, None] + np.column_stack((starts, ends))
        either = np.bitwise_or.reduceat(words.ravel(), bounds.ravel()[:-1])[::2].copy()
        inside = either.view(np.uint8).reshape(-1, CELL_ROWS) != 0
        first, last = inside.argmax(axis=1), CELL_ROWS - inside[:, ::-1].argmax(axis=1)
        x0, y0, x1, y1 = self.box
        top = (y0 // TILE + rows) * TILE
        lefts, rights = (x0 // CELL + starts) * CELL, (x0 // CELL + ends) * CELL
        return [(max(left, x0), max(upper, y0), min(right, x1), min(lower, y1)) for left, upper, right, lower
                in zip(lefts.tolist(), (top + first * CELL).tolist(), rights.tolist(), (top + last * CELL).tolist())]

    def apply_band(self, mask: np.ndarray, flip: np.ndarray, rects: list[Rect], old: float, new: float) -> list[Rect]:
        """Move τ from old to new in those rectangles: every pixel whose level lies between the two
        crosses τ, so it takes its flip value and keeps the one it showed as its new flip (see
        InstructionLayer.flip: brush work holds on both sides of τ). Returns the rectangles
        whose pixels changed."""
        low, high = sorted((level(old), level(new)))
        width = np.uint16(high - low)
        x0, y0 = self.box[:2]
        changed = []
        for rect in rects:
            rx0, ry0, rx1, ry1 = rect
            levels = self.levels[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0]
            shown, other = mask[ry0:ry1, rx0:rx1], flip[ry0:ry1, rx0:rx1]
            # level − low wraps around below low, so one unsigned compare tests low ≤ level < high;
            # XOR with the two values' difference swaps them where they cross (fewer passes than
            # np.where: this loop is the τ slider's cost).
            crossing = ((levels - np.uint16(low)) < width).view(np.uint8)
            swap = np.bitwise_xor(shown, other)
            swap *= crossing
            if swap.max():  # not any(): on uint8 it casts to bool through a buffer
                shown ^= swap
                other ^= swap
                changed.append(rect)
        return changed
