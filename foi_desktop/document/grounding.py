"""A layer's grounding map brought to the photo, so τ can move instantly at full resolution.

The engine's map (h_g × w_g, float32 in [0, 1]) covers the working frame, i.e. the photo's
centre crop box. It is resized bilinearly into that box once (smooth contours, not 30-pixel
blocks) and kept as 16-bit levels, 0 outside the box, with each tile's min and max. Moving τ
from a to b can only change pixels whose level lies between a and b, so only the tiles whose
range meets that band are visited: a few milliseconds on a 24-megapixel photo."""

from __future__ import annotations

import numpy as np
from PIL import Image

from foi_engine.photo import WorkingFrame

from .events import Rect
from .maskops import TILE, runs

LEVELS = 65534  # map value v → level round(v·LEVELS) + 1; level 0 = outside the crop box


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
        self._tile_ranges()

    def _tile_ranges(self):
        """Min and max level of every tile (photo tile grid) that meets the box."""
        x0, y0, x1, y1 = self.box
        self.tile_origin = (y0 // TILE, x0 // TILE)
        rows = np.r_[0, np.arange((y0 // TILE + 1) * TILE, y1, TILE) - y0]
        cols = np.r_[0, np.arange((x0 // TILE + 1) * TILE, x1, TILE) - x0]
        self.tile_min = np.minimum.reduceat(np.minimum.reduceat(self.levels, rows, axis=0), cols, axis=1)
        self.tile_max = np.maximum.reduceat(np.maximum.reduceat(self.levels, rows, axis=0), cols, axis=1)

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
        """Where moving τ from old to new can change pixels: runs of neighbouring tiles in
        each row of tiles whose range meets the band (photo rectangles, clipped to the box).
        A run is one numpy pass in apply_band: a busy map's band meets hundreds of tiles."""
        if self.whole_image:
            return []
        low, high = sorted((level(old), level(new)))
        if low == high:
            return []
        hit = (self.tile_min < high) & (self.tile_max >= low)
        x0, y0, x1, y1 = self.box
        ty0, tx0 = self.tile_origin
        return [(max((tx0 + start) * TILE, x0), max((ty0 + row) * TILE, y0),
                 min((tx0 + end) * TILE, x1), min((ty0 + row + 1) * TILE, y1))
                for row, start, end in zip(*(part.tolist() for part in runs(hit)))]

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
