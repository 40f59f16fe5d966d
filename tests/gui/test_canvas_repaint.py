"""What the canvas shows after τ moves on a busy map (bench/bench_ui.py's worst case) is what
painting it all afresh shows: each overlay's reduced copy is refreshed rectangle by rectangle,
only those rectangles are repainted, and the photo under them comes from Qt's cache of it."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication, QGraphicsItem

from foi_desktop.imaging import overlay_lut, preview_factor, qimage_to_pil
from foi_engine import Instruction, LocateResult

TAUS = (0.55, 0.31, 0.62, 0.6, 0.2)


@pytest.fixture
def busy(window, tmp_path):
    """A 2400×1600 photo (zoomed out, reduced copies are painted) with one instruction whose
    map has contours all over the photo."""
    y, x = np.mgrid[0:1600, 0:2400]
    pixels = np.stack([x % 256, y % 256, (x + y) // 4 % 256], axis=-1).astype(np.uint8)
    path = tmp_path / "busy.jpg"
    Image.fromarray(pixels, "RGB").save(path, quality=90)
    assert window.open_path(str(path))
    doc = window.doc
    layer = doc.add_layer("make the sky stormy", "sky")
    frame = doc.frame(512)
    ys, xs = np.mgrid[0 : frame.size[1] // 8, 0 : frame.size[0] // 8]
    busy_map = (0.5 + 0.5 * np.sin(xs / 3.0) * np.cos(ys / 2.0)).astype(np.float32)
    doc.apply_grounding(LocateResult(maps=[busy_map], masks=[busy_map >= 0.5], thresholds=[0.5], factor=1,
                                     frame=frame, instructions=(Instruction(layer.text, layer.keyword),), seed=0),
                        [layer.id])
    return window, layer


def on_screen(window) -> np.ndarray:
    """The canvas as last painted, repaint by repaint (the offscreen screen keeps it)."""
    QApplication.processEvents()
    viewport = window.canvas.viewport()
    corner = viewport.mapTo(window, QPoint(0, 0))
    grabbed = QApplication.primaryScreen().grabWindow(window.winId(), corner.x(), corner.y(),
                                                      viewport.width(), viewport.height())
    return np.asarray(qimage_to_pil(grabbed.toImage()))


def afresh(window) -> np.ndarray:
    """The canvas painted all at once, the photo scaled again (no cache)."""
    photo = window.canvas._photo_item
    photo.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        return np.asarray(qimage_to_pil(window.canvas.viewport().grab().toImage()))
    finally:
        photo.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def test_the_overlay_follows_tau_moves_and_their_undo(busy):
    window, layer = busy
    doc, overlay = window.doc, window.canvas.overlay(layer.id)
    step = preview_factor(doc.size)
    assert step > 1

    def expected():
        return (overlay_lut(layer.color, layer.opacity)[layer.mask[::step, ::step]] >> 24).astype(np.uint8)

    start = overlay.preview_alpha()
    for tau in TAUS:
        doc.set_threshold(layer.id, tau)
        assert np.array_equal(overlay.preview_alpha(), expected()), tau
    doc.undo()
    assert np.array_equal(overlay.preview_alpha(), start)


@pytest.mark.parametrize("view", ["fit", "half", "100 %", "panned"])
def test_tau_moves_repaint_what_painting_afresh_shows(busy, view):
    window, layer = busy
    canvas = window.canvas
    assert canvas._photo_item.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
    if view == "half":
        canvas.zoom_by(0.5)
    elif view != "fit":
        canvas.actual_size()  # the photo is larger than the view: Qt caches the part shown
    if view == "panned":
        canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 137)
    before = on_screen(window)
    assert np.array_equal(before, afresh(window))
    for tau in TAUS:
        window.doc.set_threshold(layer.id, tau)
        QApplication.processEvents()
    after = on_screen(window)
    assert not np.array_equal(after, before)
    assert np.array_equal(after, afresh(window))
