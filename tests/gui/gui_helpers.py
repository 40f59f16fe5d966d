"""Shared helpers for the editor's tests."""

import numpy as np
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QDialogButtonBox

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


def answer_settings(qtbot, window, answer):
    """Open Settings from the window; answer(dialog) runs on the shown dialog, which then gets OK."""

    def respond():
        dialog = QApplication.activeModalWidget()
        answer(dialog)
        qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, respond)
    window.open_settings()
