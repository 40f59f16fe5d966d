"""Opening a project off the UI thread: it arrives as it was saved, the window stays live while
it is read, nothing else replaces the document meanwhile, and one that cannot be read (or a
window closed meanwhile) leaves everything as it was."""

import asyncio
import threading
import time
import zipfile

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from foi_desktop.document import open_project


@pytest.fixture
def garden(window, tmp_path):
    """The sample with a stroke painted in each instruction's mask, saved as garden.foi:
    (its path, the masks as saved)."""
    window.open_sample()
    for layer, points in zip(window.doc.layers, ([(120, 90), (260, 140)], [(400, 300), (560, 220)])):
        window.canvas.active_layer_id = layer.id
        window.canvas.paint_stroke(points)
    path = str(tmp_path / "garden.foi")
    assert window._save_to(path)
    return path, [layer.mask.copy() for layer in window.doc.layers]


@pytest.fixture
def slow_reads(monkeypatch):
    """Each project read takes 0.5 s longer; records (thread, started, ended) of every read."""
    reads = []

    def slow_open_project(path):
        started = time.monotonic()
        time.sleep(0.5)
        try:
            return open_project(path)
        finally:
            reads.append((threading.get_ident(), started, time.monotonic()))

    monkeypatch.setattr("foi_desktop.window.open_project", slow_open_project)
    return reads


async def _until(condition):
    while not condition():
        await asyncio.sleep(0.01)


def test_a_project_opens_as_it_was_saved(window, run, garden):
    path, masks = garden
    saved = window.doc
    assert run(window.open_path(path)) is True
    doc = window.doc
    assert doc is not saved and doc.project_path == path and not doc.modified and not doc.can_undo
    assert [(layer.id, layer.text, layer.keyword) for layer in doc.layers] == \
        [(layer.id, layer.text, layer.keyword) for layer in saved.layers]
    for layer, mask in zip(doc.layers, masks, strict=True):
        assert layer.mask.dtype == mask.dtype and np.array_equal(layer.mask, mask)
    assert (doc.settings, doc.seed) == (saved.settings, saved.seed)
    assert window.windowTitle() == "garden.foi — FoI Studio"
    assert window.statusBar().currentMessage() == "Opened garden.foi"
    assert window.preferences.recent[0] == path


def test_the_window_stays_live_while_a_project_is_read(window, run, garden, slow_reads):
    path, _masks = garden
    before = window.doc
    ticks, shown = [], []
    timer = QTimer(interval=10, timeout=lambda: ticks.append(time.monotonic()))
    shown_as = window.set_document
    window.set_document = lambda doc, fresh=False: (shown.append(doc), shown_as(doc, fresh))
    timer.start()
    try:
        task = window.open_path(path)
        assert window.statusBar().currentMessage() == "Opening garden.foi…"
        # Meanwhile the same file again, another open and an edit are refused: one document comes.
        assert window.open_path(path) is None and window.statusBar().currentMessage() == "Still opening garden.foi…"
        window.open_sample()
        assert window.start_edit() is None
        assert not window.edit_action.isEnabled() and not window.open_action.isEnabled()
        assert window.doc is before
        assert run(task) is True
    finally:
        timer.stop()
    [(thread, started, ended)] = slow_reads
    assert thread != threading.get_ident(), "the project was read on the UI thread"
    assert sum(started <= tick <= ended for tick in ticks) >= 10, "the UI thread stalled while the project was read"
    assert shown == [window.doc] and window.doc.project_path == path
    assert window.open_action.isEnabled() and window.edit_action.isEnabled()


def test_a_damaged_project_leaves_the_window_as_it_was(window, run, errors, garden, tmp_path, no_blocking_dialogs):
    path, _masks = garden
    damaged = tmp_path / "damaged.foi"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for info in source.infolist():
            target.writestr(info, b"not a picture" if info.filename == "masks/1.png" else source.read(info))
    doc = window.doc
    window.canvas.paint_stroke([(300, 200), (320, 260)])  # unsaved work, with its undo step
    title, entries, position = window.windowTitle(), doc.history.entries, doc.history.position
    assert run(window.open_path(str(damaged))) is False
    assert window.doc is doc and window.windowTitle() == title and doc.modified
    assert (doc.history.entries, doc.history.position) == (entries, position)
    assert len(errors) == 1 and errors[0][0] == "Cannot open this file"
    assert "damaged.foi" in errors[0][1] and "masks/1.png" in errors[0][1]
    assert no_blocking_dialogs == []  # nothing replaced the unsaved work: nothing to ask about it
    assert window.statusBar().currentMessage() == "" and window.open_action.isEnabled()


def test_closing_the_window_while_a_project_is_read(window, loop, garden, slow_reads):
    path, _masks = garden
    before = window.doc
    task = window.open_path(path)
    loop.run_until_complete(asyncio.sleep(0.1))  # the read is under way (it takes 0.5 s)
    window.close()
    loop.run_until_complete(asyncio.wait_for(_until(lambda: task.done() and slow_reads), 10))
    loop.run_until_complete(asyncio.sleep(0.05))  # the read's late result arrives: it is dropped
    assert task.cancelled() and window.doc is before and window.opening is None
