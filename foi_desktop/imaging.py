"""PIL / numpy ↔ QImage, and the colour look-up that turns a mask into an overlay.

Masks are uint8 (0..255) at the photo's resolution; an overlay pixel is the layer's
colour with the mask value as alpha, premultiplied, so `lut[mask]` is the whole
conversion (one numpy gather, no float maths) and overlapping brush dabs, which the
document max-combines, can never darken."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

# Zoomed out, a reduced copy is painted instead of the full photo: a 24-megapixel photo
# scaled on every repaint would cost far more than the screen can show.
PREVIEW_LONG_SIDE = 1600


def preview_factor(size: tuple[int, int]) -> int:
    """The integer reduction that brings the long side to at most PREVIEW_LONG_SIDE."""
    return max(1, math.ceil(max(size) / PREVIEW_LONG_SIDE))


def pil_to_qimage(image: Image.Image) -> QImage:
    """An independent RGB32 QImage (the fastest format for Qt to paint)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    data = np.asarray(rgb)
    if not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)
    height, width = data.shape[:2]
    wrapped = QImage(data.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return wrapped.convertToFormat(QImage.Format.Format_RGB32)  # copies, so data may go


def qimage_to_pil(image: QImage) -> Image.Image:
    """What the clipboard or a drop hands over, as an RGB(A) PIL image."""
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888)
    width, height = converted.width(), converted.height()
    buffer = np.frombuffer(converted.constBits(), np.uint8, count=converted.sizeInBytes())
    rows = buffer.reshape(height, converted.bytesPerLine())[:, : width * 4]
    pil = Image.fromarray(rows.reshape(height, width, 4).copy(), "RGBA")
    return pil if image.hasAlphaChannel() else pil.convert("RGB")


def overlay_lut(color: tuple[int, int, int], opacity: float = 1.0) -> np.ndarray:
    """uint32 premultiplied ARGB for every mask value 0..255, at the layer's opacity."""
    alpha = np.round(np.arange(256) * float(np.clip(opacity, 0.0, 1.0))).astype(np.uint32)
    r, g, b = (np.uint32(c) * alpha // 255 for c in color)
    return (alpha << 24) | (r << 16) | (g << 8) | b


def wrap_argb(pixels: np.ndarray) -> QImage:
    """A QImage that paints straight from a (h, w) uint32 premultiplied array (shared, not copied)."""
    height, width = pixels.shape
    return QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_ARGB32_Premultiplied)
