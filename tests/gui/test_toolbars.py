"""The tool bars and the Settings dialog at a small screen (issue 13): every button on screen,
none behind an overflow arrow, icons with tooltips that name their keys, the options of the
active tool under the tools, no Settings label cut off."""

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QToolBar, QToolButton

from foi_desktop import assets

TOOLS = ("brush", "eraser", "rectangle", "ellipse", "lasso", "polygon", "wand")


def _bars(window):
    return window.findChild(QToolBar, "tools"), window.findChild(QToolBar, "toolOptions")


def _shown(bar):
    """The widgets of the bar's visible actions (separators included), in order."""
    return [bar.widgetForAction(action) for action in bar.actions() if action.isVisible()]


def _overflow_button(bar):
    return next(button for button in bar.findChildren(QToolButton) if button.objectName() == "qt_toolbar_ext_button")


@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000)])
def test_every_tool_bar_button_is_on_screen_for_every_tool(make_window, photo_path, size):
    window = make_window()
    assert window.open_path(photo_path)
    window.resize(*size)
    QApplication.processEvents()
    assert (window.width(), window.height()) == size
    for tool in (None, *TOOLS):
        window.set_tool(tool)
        QApplication.processEvents()
        for bar in _bars(window):
            assert bar.isVisible() and not _overflow_button(bar).isVisible(), f"{bar.windowTitle()} overflows"
            for widget in _shown(bar):
                where = QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())
                assert widget.isVisible() and window.rect().contains(where), \
                    f"{getattr(widget, 'text', widget.objectName)!r} is off screen with the {tool} tool"


def test_the_main_bar_holds_file_run_tools_and_view_as_icons_whose_tooltips_name_their_keys(make_window):
    window = make_window()
    main, _options = _bars(window)
    groups, group = [], []
    for action in main.actions():
        if action.isSeparator():
            groups, group = groups + [group], []
        elif not main.widgetForAction(action).inherits("QAbstractSpinBox"):
            group.append(action)
    groups.append(group)
    assert groups == [
        [window.open_action, window.save_action, window.export_action],
        [window.find_action, window.edit_action, window.variations_action, window.compare_plain_action,
         window.cancel_action],
        [window.tool_actions[tool] for tool in TOOLS],
        [window.masks_action, window.compare_action, window.original_action],
    ]
    labelled = {window.find_action, window.edit_action}
    for action in sum(groups, []):
        button = main.widgetForAction(action)
        assert not action.icon().isNull() and not button.icon().pixmap(24).isNull()
        shows_text = button.toolButtonStyle() != Qt.ToolButtonStyle.ToolButtonIconOnly
        assert shows_text == (action in labelled), action.text()
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert keys and keys in action.toolTip() and action.text().rstrip("…") in action.toolTip()
        assert action.statusTip() and action.statusTip() in action.toolTip()  # and what it does


def test_every_bundled_tool_icon_is_used_and_draws_something(make_window):
    from foi_desktop.toolbars import ICON_PX, icon

    window = make_window()
    main, _options = _bars(window)
    used = {action.icon().cacheKey() for action in main.actions() if not action.icon().isNull()}
    files = sorted(path.stem for path in assets.resource("icons/tools").glob("*.svg"))
    assert len(used) == len(files) == 18
    for name in files:
        assert icon(name).cacheKey() in used, f"{name}.svg is not on the tool bar"
        image = icon(name).pixmap(ICON_PX).toImage()
        assert any(image.pixelColor(x, y).alpha() > 200 for x in range(ICON_PX) for y in range(ICON_PX)), name
        dim = icon(name).pixmap(ICON_PX, QIcon.Mode.Disabled).toImage()
        assert dim != image, f"{name} looks the same disabled"


def _options_shown(window):
    QApplication.processEvents()  # the bar lays its widgets out (and shows them) on its next turn
    _main, options = _bars(window)
    return [widget for widget in _shown(options) if widget.isVisible()]


def test_the_options_bar_shows_the_active_tools_settings(make_window, qtbot, photo_path):
    window = make_window()
    assert window.open_path(photo_path)
    _main, options = _bars(window)
    brush_boxes = {window.size_box, window.hardness_box}
    for tool in (None, *TOOLS):
        window.set_tool(tool)
        shown = _options_shown(window)
        boxes = {widget for widget in shown if widget.inherits("QAbstractSpinBox")} - {window.edge_box}
        hint = options.hint_label if options.hint_label in shown else None
        assert options.tool_label.text() == (window.tool_actions[tool].text() if tool else "No tool")
        if tool in ("brush", "eraser"):
            assert boxes == brush_boxes and hint is None
        else:
            assert boxes == ({window.tolerance_box} if tool == "wand" else set())
            assert ("Shift" in hint.text() and "Alt" in hint.text()) if tool else "tool" in hint.text()
        labels = {widget.text() for widget in shown if isinstance(widget, QLabel)}
        assert {"Size", "Hardness"} <= labels if tool in ("brush", "eraser") else "Size" not in labels
        # The selected mask's operations stay, whatever the tool.
        for action in (window.invert_action, window.clear_action, window.grow_action, window.shrink_action,
                       window.feather_action):
            assert options.widgetForAction(action) in shown
        assert window.edge_box in shown

    # A key picks the tool, and the bar follows; what the boxes say is what the canvas uses.
    window.set_tool(None)
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window.canvas, "w")
    assert options.tool_label.text() == "Magic Wand" and window.tolerance_box in _options_shown(window)
    window.tolerance_box.setValue(90)
    assert window.canvas.wand_tolerance == 90
    qtbot.keyClick(window.canvas, "b")
    assert options.tool_label.text() == "Brush" and window.size_box in _options_shown(window)
    window.size_box.setValue(12)
    window.hardness_box.setValue(0.3)
    assert (window.canvas.brush_diameter, window.canvas.brush_hardness) == (12, pytest.approx(0.3))
    qtbot.keyClick(window.canvas, "b")  # off again
    assert options.tool_label.text() == "No tool" and window.size_box not in _options_shown(window)


def test_no_settings_label_is_cut_off_and_the_dialog_fits_a_small_screen(make_window):
    from PySide6.QtWidgets import QFormLayout

    from foi_desktop.dialogs import SettingsDialog

    window = make_window()
    dialog = SettingsDialog(window.preferences, window)
    dialog.show()
    QApplication.processEvents()
    assert dialog.width() <= 1024 and dialog.height() <= 700
    dialog.error_label.setText("Image guidance must be between 0 and 20; you gave 25, which is too much. " * 3)
    dialog._say(dialog.test_label, "The server at http://gpu-box.example.org:8765 runs FoI Studio 9.0, which speaks "
                                   "version 2 of the server protocol. Install the same version on both computers.")
    seen = 0
    for page in range(dialog.pages.count()):  # Engine, Editing
        dialog.pages.setCurrentIndex(page)
        for _ in range(3):  # the dialog grows for the answer's lines once they are laid out
            QApplication.processEvents()
        labels = [label for label in dialog.findChildren(QLabel) if label.isVisible() and label.text()]
        seen += len(labels)
        for label in labels:
            if label.wordWrap():
                assert label.heightForWidth(label.width()) <= label.height(), label.text()
            else:
                assert label.sizeHint().width() <= label.width(), label.text()
    assert seen >= 14
    # Room between each label and its box: a last letter at the box's border looks cut off.
    room = 1.5 * dialog.fontMetrics().averageCharWidth()
    for form in dialog.findChildren(QFormLayout):
        engine_page = dialog.pages.widget(0)
        dialog.pages.setCurrentIndex(0 if engine_page.isAncestorOf(form.parentWidget()) else 1)
        QApplication.processEvents()
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole).geometry()
            if label.text():
                assert field.left() - (label.x() + label.sizeHint().width()) >= room, label.text()
    dialog.close()
