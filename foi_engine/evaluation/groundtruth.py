"""Ground-truth edit regions, from the forms the public benchmarks ship them in.

A manifest's `mask` is one of
- {"rle": [start, length, start, length, ...], "size": [h, w]}: PIE-Bench's run-length code over
  the row-major flattened image (a flat list of pairs; 1 = the region to edit);
- a path to an image (see `mask_from_image` for which pixels mark the region);
- a list of such paths or codes, whose union is the region (a multi-turn edit).
Everything comes back as a bool array at the mask's own resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import MaskError
from ..inputs import check_regular_file
from ..photo import MAX_PHOTO_FILE_BYTES

PIE_BENCH_SIZE = (512, 512)


def decode_pie_rle(runs, size=PIE_BENCH_SIZE) -> np.ndarray:
    """PIE-Bench's code: pairs (start, length) over the flattened (h, w) image, row-major.

    Unlike PnPInversion's `mask_decode` we do not also set the one-pixel image border to 1
    (their guard against annotation errors at the edge), so the region is exactly what was
    annotated."""
    height, width = (int(v) for v in size)
    runs = np.asarray(runs, dtype=np.int64).ravel()
    if runs.size % 2:
        raise MaskError(f"A run-length mask needs (start, length) pairs, but has {runs.size} numbers.")
    flat = np.zeros(height * width, dtype=bool)
    for start, length in runs.reshape(-1, 2):
        if start < 0 or length < 0 or start >= flat.size:
            raise MaskError(f"A run-length mask has a run ({start}, {length}) outside the {width}×{height} image.")
        flat[start : start + length] = True  # PnPInversion clips a run at the image's end too
    return flat.reshape(height, width)


def encode_pie_rle(mask: np.ndarray) -> list[int]:
    """The inverse of `decode_pie_rle` (for writing test data and converted masks)."""
    flat = np.concatenate([[False], np.asarray(mask, dtype=bool).ravel(), [False]])
    edges = np.flatnonzero(flat[1:] != flat[:-1])
    starts, ends = edges[::2], edges[1::2]
    return [int(v) for pair in zip(starts, ends - starts) for v in pair]


def mask_from_image(image: Image.Image) -> np.ndarray:
    """The region an annotation image marks.

    - Transparent pixels, when the image has any transparency (DALL-E 2's convention).
    - Otherwise white: in a black-and-white mask (at least 99 % of pixels near black or white)
      every pixel ≥ 128 grey; in a photo with the region painted over it (MagicBrush's
      "free-form mask image (white region)"), the pure-white pixels (≥ 250 in every channel)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if (alpha < 255).any():
            return alpha < 128
    rgb = np.asarray(image.convert("RGB"))
    grey = np.asarray(image.convert("L"))
    if np.mean((grey < 8) | (grey > 247)) >= 0.99:
        return grey >= 128
    return (rgb >= 250).all(axis=-1)


def load_mask(spec, base: Path) -> np.ndarray | None:
    """A manifest's `mask` field → bool array (None when the item has no mask)."""
    if spec is None:
        return None
    if isinstance(spec, list):
        parts = [load_mask(part, base) for part in spec]
        if not parts:
            return None
        shapes = {part.shape for part in parts}
        if len(shapes) > 1:
            raise MaskError(f"The masks to combine have different sizes: {sorted(shapes)}.")
        return np.logical_or.reduce(parts)
    if isinstance(spec, dict) and "rle" in spec:
        return decode_pie_rle(spec["rle"], spec.get("size", PIE_BENCH_SIZE))
    if isinstance(spec, str):
        path = base / spec
        check_regular_file(path, "a mask", MAX_PHOTO_FILE_BYTES, MaskError)
        try:
            with Image.open(path) as image:
                image.load()
                return mask_from_image(image)
        except (OSError, SyntaxError, ValueError) as error:
            raise MaskError(f"The mask {path} cannot be read ({error}).") from None
    raise MaskError(f"A mask must be a file name, a run-length code or a list of them, not {spec!r}.")
