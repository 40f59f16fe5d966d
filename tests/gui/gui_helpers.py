"""Shared helpers for the editor's tests."""

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter

from foi_desktop.imaging import qimage_to_pil


def shown(canvas) -> np.ndarray:
    """What the canvas paints, one photo pixel per pixel (the scene drawn into an image)."""
    width, height = canvas.doc.size
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(0)
    painter = QPainter(image)
    canvas.scene().render(painter, QRectF(0, 0, width, height), QRectF(0, 0, width, height))
    painter.end()
    return np.asarray(qimage_to_pil(image))
