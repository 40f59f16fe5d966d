"""A mask's values, read one way by every part that takes a mask: the engine, the wire, the
exports and the editor's document (no torch here: the editor imports it).

A mask is a 2-D array. Given to the engine, any number is the value itself, clipped to [0, 1],
and bool is 0 or 1 (docs/ALGORITHM.md: a uint8 mask of 0 and 1 works). Mask files and the
editor's layers keep levels 0..255 (255: act fully) in uint8: `levels_as_mask` reads those.
NaN means nothing as a mask value: it is refused, not read as 0, so a broken mask is noticed
where it was made."""

from __future__ import annotations

import numpy as np

from .errors import MaskError


def as_mask(mask, index: int | None = None) -> np.ndarray:
    """The engine's reading: float32 in [0, 1]. index: which of a request's masks, for the message."""
    array = _checked(mask, index).astype(np.float32)
    if np.isnan(array).any():
        raise MaskError(f"{_name(index)} has undefined (NaN) values: repaint or clear it.")
    return np.clip(array, 0.0, 1.0)


def levels_as_mask(mask, index: int | None = None) -> np.ndarray:
    """A mask whose uint8 values are levels 0..255 (a mask file, a layer) as float32 in [0, 1]."""
    array = _checked(mask, index)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255)
    return as_mask(array, index)


def as_levels(mask, index: int | None = None) -> np.ndarray:
    """The mask as uint8 levels 0..255 (the nearest level), as mask files and the editor keep it;
    uint8 is taken to be levels already."""
    array = _checked(mask, index)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    return np.round(as_mask(array, index) * 255).astype(np.uint8)


def _checked(mask, index: int | None) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise MaskError(f"{_name(index)} must be a single-channel image, not an array of shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise MaskError(f"{_name(index)} must hold numbers, not {array.dtype}.")
    return array


def _name(index: int | None) -> str:
    return "The mask" if index is None else f"Mask {index + 1}"
