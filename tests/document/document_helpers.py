"""Shared builders for the document tests."""

import types

import numpy as np
from PIL import Image

from foi_engine.photo import WorkingFrame


def photo(width=300, height=200, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def fake_locate(doc, thresholds=(0.5, None), resolution=64):
    """A LocateResult-shaped object: a smooth bump for the first layer, whole image for the second."""
    frame = WorkingFrame.for_photo(doc.size, resolution)
    h, w = frame.size[1] // 8, frame.size[0] // 8
    ys, xs = np.mgrid[0:h, 0:w]
    bump = np.exp(-(((xs - w * 0.3) / (w * 0.3)) ** 2 + ((ys - h * 0.5) / (h * 0.3)) ** 2)).astype(np.float32)
    bump = (bump - bump.min()) / (bump.max() - bump.min())
    maps = [bump, np.ones((h, w), np.float32)][: len(thresholds)]
    return types.SimpleNamespace(maps=maps, thresholds=list(thresholds), frame=frame,
                                 masks=[m >= (t or 0) for m, t in zip(maps, thresholds)])
