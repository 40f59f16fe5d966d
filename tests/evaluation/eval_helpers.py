"""Helpers shared by the evaluation tests."""

import numpy as np
from PIL import Image


def noisy(image, amount, seed=0):
    rng = np.random.default_rng(seed)
    values = np.asarray(image, dtype=np.int16) + rng.integers(-amount, amount + 1, size=(image.height, image.width, 3))
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
