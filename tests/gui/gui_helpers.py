"""Shared helpers for the editor's tests."""

import types

import numpy as np
from PIL import Image
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from foi_desktop.imaging import qimage_to_pil
from foi_engine import EditSettings


def shown(canvas) -> np.ndarray:
    """What the canvas paints, one photo pixel per pixel (the scene drawn into an image)."""
    width, height = canvas.doc.size
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(0)
    painter = QPainter(image)
    canvas.scene().render(painter, QRectF(0, 0, width, height), QRectF(0, 0, width, height))
    painter.end()
    return np.asarray(qimage_to_pil(image))


def add_made_up_result(doc):
    """A result in doc's strip as an Edit would leave it, with no model run: an orange picture."""
    frame = doc.frame(128)
    result = types.SimpleNamespace(
        image=Image.new("RGB", frame.size, (250, 120, 10)), instructions=tuple(doc.instructions()),
        settings=EditSettings(steps=4, resolution=128), seed=11, frame=frame, model_name="tiny-random",
        random_weights=True)
    return doc.add_result(result, doc.edit_request_snapshot())


def answer_settings(qtbot, window, answer):
    """Open Settings from the window; answer(dialog) runs on the shown dialog, which then gets OK."""

    def respond():
        dialog = QApplication.activeModalWidget()
        answer(dialog)
        qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, respond)
    window.open_settings()
