"""What the canvas shows after τ moves on a busy map (bench/bench_ui.py's worst case): each
overlay's reduced copy, refreshed rectangle by rectangle, is what refreshing it all gives."""

import numpy as np
import pytest
from PIL import Image

from foi_desktop.imaging import overlay_lut, preview_factor
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
