"""The card's flow, driven as a person would: open a photo, write two instructions, Find
regions, paint and erase, undo/redo, move τ, Edit (the window stays live), cancel, export
.ora, save and reopen the project."""

import threading
import time
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt, QTimer


def write_instruction(qtbot, window, text, keyword):
    """Click "+ Add instruction", type the text, pick the keyword from the row's list."""
    qtbot.mouseClick(window.panel.add_button, Qt.MouseButton.LeftButton)
    layer = window.doc.layers[-1]
    row = window.panel.rows[layer.id]
    qtbot.keyClicks(row.text_edit, text)
    index = row.keyword_box.findText(keyword)
    assert index > 0, f"{keyword!r} is not offered for {text!r}"
    row.keyword_box.setCurrentIndex(index)
    row.keyword_box.activated.emit(index)
    return layer


def drag(qtbot, canvas, points):
    """Press, move through, release at photo-pixel points on the canvas."""
    viewport = canvas.viewport()
    spots = [canvas.mapFromScene(QPointF(x, y)) for x, y in points]
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=spots[0])
    for spot in spots[1:]:
        qtbot.mouseMove(viewport, pos=spot)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=spots[-1])


def near_segment(shape, p0, p1, reach):
    """Pixels whose centre lies within reach of the segment p0–p1."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    px, py = xs + 0.5, ys + 0.5
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((px - x0) * dx + (py - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)) <= reach


@pytest.fixture
def opened(window, qtbot, photo_path):
    assert window.open_path(photo_path)
    assert window.doc.size == (451, 300)
    assert window.doc.layers == []
    first = write_instruction(qtbot, window, "make the cat a tiger", "cat")
    second = write_instruction(qtbot, window, "make the background green", "background")
    assert [layer.text for layer in window.doc.layers] == ["make the cat a tiger", "make the background green"]
    assert (first.keyword, second.keyword) == ("cat", "background")
    return window


def test_find_regions_paint_erase_undo_threshold(opened, qtbot, run):
    window = opened
    canvas = window.canvas
    window.find_action.trigger()
    assert window.find_action.isEnabled() and window.cancel_action.isEnabled()  # more may queue behind it
    run(window.task)
    first, second = window.doc.layers
    for layer in (first, second):
        assert layer.mask.any(), "Find regions left a mask empty"
        assert canvas.overlay(layer.id).preview_alpha().any(), "an overlay shows nothing"
        assert layer.grounding is not None

    # Paint on the second layer: pixels change under the brush only.
    window.panel.select(second.id)
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert canvas.tool == "brush" and canvas.active_layer_id == second.id
    window.size_box.setValue(30)  # a diameter
    before_paint, other_before = second.mask.copy(), first.mask.copy()
    stroke = [(60.0, 60.0), (120.0, 90.0), (180.0, 120.0)]
    drag(qtbot, canvas, stroke)
    after_paint = second.mask.copy()
    changed = after_paint != before_paint
    assert changed.any()
    allowed = near_segment(second.mask.shape, stroke[0], stroke[1], 17) | near_segment(
        second.mask.shape, stroke[1], stroke[2], 17)
    assert not (changed & ~allowed).any(), "the brush changed pixels away from the stroke"
    assert after_paint[90, 120] == 255 and after_paint[60, 60] == 255
    assert np.array_equal(first.mask, other_before), "painting one layer changed another"

    # Erase across the painted stroke.
    qtbot.keyClick(canvas, Qt.Key.Key_X)  # swap to the eraser
    assert canvas.tool == "eraser"
    erase = [(120.0, 40.0), (120.0, 140.0)]
    drag(qtbot, canvas, erase)
    after_erase = second.mask.copy()
    erased = after_erase != after_paint
    assert erased.any() and after_erase[90, 120] == 0
    assert not (erased & ~near_segment(second.mask.shape, erase[0], erase[1], 17)).any()

    # Undo, undo, redo: each stroke is one step.
    window.undo_action.trigger()
    assert np.array_equal(second.mask, after_paint)
    window.undo_action.trigger()
    assert np.array_equal(second.mask, before_paint)
    window.redo_action.trigger()
    assert np.array_equal(second.mask, after_paint)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(second.mask, before_paint)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(second.mask, after_paint)

    # τ: the first mask follows the slider at once, and so does its overlay.
    row = window.panel.rows[first.id]
    slider = row.threshold_slider
    before_mask, before_alpha = first.mask.copy(), canvas.overlay(first.id).preview_alpha()
    target = 10 if slider.value() > 50 else 90
    slider.setValue(target)
    assert first.threshold == pytest.approx(target / 100)
    assert not np.array_equal(first.mask, before_mask)
    assert not np.array_equal(canvas.overlay(first.id).preview_alpha(), before_alpha)
    assert row.threshold_label.text() == f"{target / 100:.2f}"
    window.undo_action.trigger()
    assert np.array_equal(first.mask, before_mask)


def test_edit_keeps_the_window_live_then_export_and_reopen(opened, qtbot, run, tmp_path):
    window = opened
    run(window.start_find_regions())
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    steps = []
    window.client.progress.connect(lambda _job, step, total, preview: steps.append((step, total, preview is not None)))
    # Where the model runs: every UNet call must be off the UI thread.
    unet = window.client._worker._engine.pipe.unet
    unet_threads = []
    hook = unet.register_forward_pre_hook(lambda *args: unet_threads.append(threading.get_ident()))
    timer.start()
    started = time.monotonic()
    window.edit_action.trigger()
    assert window.cancel_action.isEnabled() and window.edit_action.isEnabled()
    try:
        entry = run(window.task)
    finally:
        hook.remove()
    elapsed = time.monotonic() - started
    timer.stop()
    assert entry is not None and window.doc.results == [entry]
    assert entry.image.size == entry.frame.size
    # The model ran in the engine's thread while the UI thread went on handling events (how
    # long the UI may stall is a bench/bench_ui.py target, not a timed test).
    assert unet_threads and threading.main_thread().ident not in unet_threads
    assert len(ticks) >= 0.25 * elapsed / 0.010, f"only {len(ticks)} timer ticks in {elapsed:.1f} s"
    assert steps and steps[-1][0] + 1 == steps[-1][1] and any(p for *_x, p in steps)
    assert window.canvas.result_visible
    assert window.results.list.count() == 1
    assert not window.progress_bar.isVisible()

    # Export .ora and read it back as GIMP or Krita would.
    path = tmp_path / "edit.ora"
    written = window.export_to(str(path), kind="ora")
    assert str(path) in written
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        stack = ET.fromstring(archive.read("stack.xml"))
        names = [layer.get("name") for layer in stack.iter("layer")]
        for instruction in ("make the cat a tiger", "make the background green"):
            assert any(instruction in name for name in names), names
        for name in archive.namelist():
            if name.endswith(".png"):
                with archive.open(name) as stream:
                    Image.open(stream).load()

    # Save the project and open it again: the same masks, bit for bit.
    masks = [layer.mask.copy() for layer in window.doc.layers]
    texts = [layer.text for layer in window.doc.layers]
    project = tmp_path / "cat.foi"
    assert window._save_to(str(project))
    assert not window.doc.modified and window.windowTitle().startswith("cat.foi")
    assert run(window.open_path(str(project)))
    reopened = window.doc
    assert [layer.text for layer in reopened.layers] == texts
    for layer, mask in zip(reopened.layers, masks):
        assert layer.mask.dtype == mask.dtype and np.array_equal(layer.mask, mask)
    assert len(reopened.results) == 1 and window.results.list.count() == 1


def test_cancel_stops_a_run_and_the_app_carries_on(window, qtbot, run, photo_path):
    from foi_engine import EditSettings

    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=400, strength=1.0, resolution=128)
    steps = []
    window.client.progress.connect(lambda _job, step, total, preview: steps.append(step))
    task = window.start_edit()
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=60000)
    window.cancel_action.trigger()
    started = time.monotonic()
    assert run(task, timeout=60) is None
    assert time.monotonic() - started < 30
    assert steps[-1] < 399, "the run went on to the end"
    assert window.doc.results == []
    assert window.edit_action.isEnabled() or qtbot.waitUntil(window.edit_action.isEnabled, timeout=2000) is None
    assert not window.cancel_action.isEnabled()
    # The same worker edits again afterwards.
    window.doc.settings = EditSettings(steps=4, resolution=64)
    assert run(window.start_edit()) is not None


def test_cancel_puts_back_the_view_the_run_started_from(window, qtbot, run, photo_path):
    from foi_desktop.imaging import pil_to_qimage
    from foi_engine import EditSettings

    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=4, resolution=64)
    entry = run(window.start_edit())
    canvas = window.canvas
    before = pil_to_qimage(window.doc.result_image(entry))
    assert canvas.result_item.image == before
    window.doc.settings = EditSettings(steps=400, strength=1.0, resolution=128)
    previews = []
    window.client.progress.connect(lambda _job, step, total, preview: preview is not None and previews.append(step))
    task = window.start_edit()
    qtbot.waitUntil(lambda: bool(previews) and canvas.result_item.image != before, timeout=60000)
    window.cancel_action.trigger()
    assert run(task, timeout=60) is None
    assert canvas.result_item.image == before, "the cancelled run's preview stayed on the canvas"
    # Masks, Show Original and Compare show that result too, not the preview.
    for action in (window.masks_action, window.masks_action, window.original_action, window.original_action,
                   window.compare_action):
        action.trigger()
    assert canvas.result_visible and canvas.compare and canvas.result_item.image == before


def test_keys_go_back_to_the_canvas_after_strip_and_toolbar_clicks(window, qtbot, run):
    from PySide6.QtWidgets import QApplication, QToolBar

    from foi_engine import EditSettings

    window.open_sample()
    window.doc.settings = EditSettings(steps=2, resolution=64)
    run(window.start_edit())
    window.canvas.setFocus()
    qtbot.mouseClick(window.results.discard_button, Qt.MouseButton.LeftButton)
    assert window.doc.results == [] and QApplication.focusWidget() is window.canvas
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_1)
    assert window.canvas.zoom == 1.0 and window.size_box.value() == 40, "1 typed into the brush size"
    # A box the user clicked gives the keys back once a button of either tool bar is used.
    window.set_tool("eraser")  # its options show the brush size
    QApplication.processEvents()
    for bar, action in (("tools", window.brush_action), ("toolOptions", window.invert_action)):
        qtbot.mouseClick(window.size_box, Qt.MouseButton.LeftButton)
        assert QApplication.focusWidget() is window.size_box
        toolbar = window.findChild(QToolBar, bar)
        qtbot.mouseClick(toolbar.widgetForAction(action), Qt.MouseButton.LeftButton)
        assert QApplication.focusWidget() is window.canvas, action.text()
    assert window.canvas.tool == "brush" and window.doc.undo_text == "Invert mask"


def test_mask_export_and_import_through_the_file_dialogs(opened, monkeypatch, tmp_path, errors):
    """Mask ▸ Export writes the active instruction's mask where the dialog says; Import reads
    it back; a file that is no picture is reported in a line, the mask untouched."""
    from PySide6.QtWidgets import QFileDialog

    window = opened
    layer_id = window.panel.active_layer_id
    window.doc.set_mask(layer_id, np.pad(np.ones((100, 200), np.float32), ((50, 150), (100, 151))))
    painted = window.doc.layer(layer_id).mask.copy()
    saved = tmp_path / "cat mask.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args: (str(saved), "PNG (*.png)"))
    window.export_mask()
    assert saved.is_file()
    window.doc.clear_mask(layer_id)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(saved), ""))
    window.import_mask()
    np.testing.assert_array_equal(window.doc.layer(layer_id).mask, painted)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(broken), ""))
    window.import_mask()
    assert errors and errors[-1][0] and "mask" in (errors[-1][0] + errors[-1][1]).lower()
    np.testing.assert_array_equal(window.doc.layer(layer_id).mask, painted)
