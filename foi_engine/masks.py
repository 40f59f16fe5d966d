"""Masks between resolutions (docs/ALGORITHM.md §7 "Masks at other resolutions").

The engine's mask is a float32 array in [0, 1]. Masks painted at the photo's size are
brought to the working frame like the photo; any other mask must already have the
working frame's aspect. Resizing down averages (area), resizing up repeats (nearest).

torch loads only in the functions that need it: a server's client checks its masks with
`as_mask` (wire.py) and never needs the model's library."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from .errors import MaskError
from .mask_values import as_mask
from .photo import WorkingFrame

if TYPE_CHECKING:
    import torch


def to_working_frame(mask, index: int, frame: WorkingFrame) -> np.ndarray:
    """A photo-sized mask is fitted like the photo; others are checked for the frame's aspect."""
    array = as_mask(mask, index)
    height, width = array.shape
    if (width, height) == frame.photo_size:
        fitted = ImageOps.fit(Image.fromarray(array, "F"), frame.size, method=Image.Resampling.BOX)
        return np.clip(np.asarray(fitted, dtype=np.float32), 0.0, 1.0)
    frame_w, frame_h = frame.size
    if (height - 1) * frame_w <= (width + 1) * frame_h and (width - 1) * frame_h <= (height + 1) * frame_w:
        return array
    raise MaskError(
        f"Mask {index + 1} is {width}×{height} pixels, which does not match the photo's shape "
        f"({frame.photo_size[0]}×{frame.photo_size[1]}): use a mask of the photo's size."
    )


def resize(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(h, w) → size=(h', w'): area when shrinking in both dimensions, nearest otherwise."""
    import torch.nn.functional as F

    if tuple(mask.shape) == tuple(size):
        return mask
    mode = "area" if size[0] <= mask.shape[0] and size[1] <= mask.shape[1] else "nearest"
    return F.interpolate(mask[None, None], size=size, mode=mode)[0, 0]


def union(masks: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """M_union at a size: element-wise max of the masks, each first resized to that size."""
    import torch

    result = resize(masks[0], size)
    for mask in masks[1:]:
        result = torch.maximum(result, resize(mask, size))
    return result
