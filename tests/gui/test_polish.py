"""Editor polish (issue 13): the unsaved mark follows undo, shortcuts, the photo's size,
the History panel, Before/After labels, the Open folder, the brush size as a diameter."""

import os

from PySide6.QtCore import Qt


def _ctrl(*more):
    modifiers = Qt.KeyboardModifier.ControlModifier
    for modifier in more:
        modifiers |= modifier
    return modifiers


def _one_instruction(window, qtbot, photo_path):
    assert window.open_path(photo_path)
    qtbot.mouseClick(window.panel.add_button, Qt.MouseButton.LeftButton)
    window.panel.select(window.doc.layers[0].id)
    return window.doc.layers[0]


def test_the_unsaved_mark_clears_when_undo_returns_to_the_saved_state(make_window, qtbot, photo_path, tmp_path):
    window = make_window()
    _one_instruction(window, qtbot, photo_path)
    window.invert_action.trigger()
    assert window._save_to(str(tmp_path / "cat.foi"))
    assert window.windowTitle() == "cat.foi — FoI Studio"
    window.clear_action.trigger()
    assert window.windowTitle() == "cat.foi * — FoI Studio"
    window.undo_action.trigger()
    assert window.windowTitle() == "cat.foi — FoI Studio" and not window.doc.modified
    window.undo_action.trigger()  # before the save: changed again
    assert window.windowTitle() == "cat.foi * — FoI Studio"
    window.redo_action.trigger()
    assert window.windowTitle() == "cat.foi — FoI Studio"
    window.redo_action.trigger()
    assert window.windowTitle() == "cat.foi * — FoI Studio"


def test_ctrl_equals_zooms_in_and_both_redo_keys_redo(make_window, qtbot, photo_path):
    window = make_window()
    layer = _one_instruction(window, qtbot, photo_path)
    with qtbot.waitActive(window):  # shortcuts go to the active window
        window.activateWindow()
    canvas = window.canvas
    zoom = canvas.zoom
    qtbot.keyClick(canvas, Qt.Key.Key_Equal, _ctrl())
    assert canvas.zoom > zoom
    window.invert_action.trigger()
    for key, modifiers in ((Qt.Key.Key_Z, _ctrl(Qt.KeyboardModifier.ShiftModifier)), (Qt.Key.Key_Y, _ctrl())):
        qtbot.keyClick(canvas, Qt.Key.Key_Z, _ctrl())
        assert not layer.mask.any()
        qtbot.keyClick(canvas, key, modifiers)
        assert layer.mask.all(), f"{key} did not redo"


def test_the_status_bar_shows_the_photos_size(make_window, photo_path):
    window = make_window()
    assert window.open_path(photo_path)
    assert window.size_label.text() == "451 × 300 px" and window.size_label.isVisible()


def test_the_history_panel_lists_the_steps_and_goes_back_to_one(make_window, qtbot, photo_path):
    window = make_window()
    layer = _one_instruction(window, qtbot, photo_path)
    window.history_dock.raise_()
    panel = window.history_panel
    window.invert_action.trigger()
    window.clear_action.trigger()
    texts = [panel.item(row).text() for row in range(panel.count())]
    assert texts == ["Opened", "Add instruction", "Invert mask", "Clear mask"]
    assert panel.currentRow() == 3
    # Back to just after Invert: Clear is undone, still listed, greyed.
    qtbot.mouseClick(panel.viewport(), Qt.MouseButton.LeftButton, pos=panel.visualItemRect(panel.item(2)).center())
    assert layer.mask.all() and panel.currentRow() == 2 and panel.count() == 4
    assert panel.item(3).foreground().color() != panel.item(2).foreground().color()
    assert window.redo_action.text() == "Redo Clear mask"
    # To the start, then forward again; the undo keys move the highlight.
    panel.setCurrentRow(0)
    assert window.doc.layers == []
    panel.setCurrentRow(3)
    assert len(window.doc.layers) == 1 and not layer.mask.any()
    window.undo_action.trigger()
    assert panel.currentRow() == 2
    # A new step drops the undone ones, as the undo history does.
    window.undo_action.trigger()
    window.invert_action.trigger()
    assert [panel.item(row).text() for row in range(panel.count())] == ["Opened", "Add instruction", "Invert mask"]
    window.set_document(None)
    assert panel.count() == 0


def test_compare_says_before_and_after_and_show_original_says_original(make_window, photo_path):
    window = make_window()
    assert window.open_path(photo_path)
    canvas = window.canvas
    badges = (canvas.before_label, canvas.after_label, canvas.original_label)
    assert not any(badge.isVisible() for badge in badges)
    window.compare_action.trigger()
    assert canvas.before_label.isVisible() and canvas.after_label.isVisible()
    assert canvas.before_label.text() == "Before" and canvas.after_label.text() == "After"
    # Before on the left of the split, After on the right.
    assert canvas.before_label.geometry().right() < canvas.viewport().width() / 2 < canvas.after_label.x()
    window.original_action.trigger()
    assert canvas.original_label.isVisible() and canvas.original_label.text() == "Original"
    assert not canvas.before_label.isVisible() and not canvas.after_label.isVisible()
    window.original_action.trigger()
    window.compare_action.trigger()
    assert not any(badge.isVisible() for badge in badges)
    window.original_action.trigger()
    assert canvas.original_label.isVisible()


def test_open_starts_in_the_last_folder_else_pictures_and_recent_can_be_cleared(make_window, monkeypatch, tmp_path,
                                                                                photo_path):
    from PySide6.QtCore import QStandardPaths
    from PySide6.QtWidgets import QFileDialog

    from foi_desktop.preferences import load_preferences

    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    monkeypatch.setattr(QStandardPaths, "writableLocation", lambda location: str(pictures))
    asked = []

    def choose(parent, caption, folder, filters):
        asked.append(folder)
        return photo_path, ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", choose)
    window = make_window(open_folder="", recent=[])
    window.open_action.trigger()
    window.open_action.trigger()
    assert asked == [str(pictures), os.path.dirname(photo_path)]
    assert load_preferences().open_folder == os.path.dirname(photo_path)  # remembered between runs

    window.recent_menu.aboutToShow.emit()
    entries = [action.text() for action in window.recent_menu.actions() if not action.isSeparator()]
    assert entries == ["chelsea.jpg", "Clear"]
    window.recent_menu.actions()[-1].trigger()
    assert window.preferences.recent == [] and load_preferences().recent == []
    window.recent_menu.aboutToShow.emit()
    assert [action.text() for action in window.recent_menu.actions()] == ["No recent files"]


def test_brush_size_is_the_diameter_of_the_dab_and_of_its_outline(make_window, qtbot, photo_path):
    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QGraphicsEllipseItem

    window = make_window()
    layer = _one_instruction(window, qtbot, photo_path)
    canvas = window.canvas
    window.brush_action.trigger()
    window.size_box.setValue(30)
    window.hardness_box.setValue(1.0)
    spot = canvas.mapFromScene(QPointF(200.0, 150.0))
    qtbot.mouseMove(canvas.viewport(), pos=spot)
    outlines = [item for item in canvas.items() if isinstance(item, QGraphicsEllipseItem) and item.isVisible()]
    assert outlines and all(item.rect().width() == 30 for item in outlines)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=spot)
    centre = canvas.mapToScene(spot)
    rows, cols = layer.mask.nonzero()
    assert 28 <= cols.max() - cols.min() + 1 <= 32 and 28 <= rows.max() - rows.min() + 1 <= 32
    assert abs((cols.min() + cols.max() + 1) / 2 - centre.x()) <= 1.5
