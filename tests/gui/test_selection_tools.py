"""Selection tools on the real canvas (issue 13): drag a rectangle, lasso or polygon, click the
magic wand, with Shift adding and Alt taking away; each is one undo item."""

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from foi_desktop.document import selection

SHIFT, ALT, PLAIN = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def flat_photo(tmp_path):
    """Three flat colours side by side, each a little noisy, and a dark stripe across."""
    rng = np.random.default_rng(0)
    pixels = np.zeros((200, 300, 3), np.uint8)
    pixels[:, :100] = (40, 90, 200)
    pixels[:, 100:200] = (230, 200, 60)
    pixels[:, 200:] = (40, 90, 200)
    pixels += rng.integers(0, 8, pixels.shape, dtype=np.uint8)
    pixels[95:105, 200:] = (10, 10, 10)
    path = tmp_path / "flat.png"
    Image.fromarray(pixels).save(path)
    return str(path)


def _ready(window, qtbot, path, tool):
    assert window.open_path(path)
    qtbot.mouseClick(window.panel.add_button, LEFT)
    window.panel.select(window.doc.layers[0].id)
    window.tool_actions[tool].trigger()
    assert window.canvas.tool == tool
    return window.canvas, window.doc.layers[0]


def _view(canvas, x, y):
    return canvas.mapFromScene(QPointF(x, y))


def _photo(canvas, point):
    """The photo point the canvas reads for a view point."""
    scene = canvas.mapToScene(point)
    return scene.x(), scene.y()


def _drag(qtbot, canvas, start, end, modifier=PLAIN, via=()):
    """Press at start, move through via to end, release: all photo pixels. Returns the photo
    points the canvas saw at start and end."""
    viewport = canvas.viewport()
    a, b = _view(canvas, *start), _view(canvas, *end)
    qtbot.mousePress(viewport, LEFT, modifier, a)
    for point in (*via, end):
        qtbot.mouseMove(viewport, _view(canvas, *point))
    assert canvas.selecting
    qtbot.mouseRelease(viewport, LEFT, modifier, b)
    assert not canvas.selecting
    return _photo(canvas, a), _photo(canvas, b)


def test_rectangle_drags_replace_add_and_subtract(make_window, qtbot, flat_photo):
    window = make_window()
    canvas, layer = _ready(window, qtbot, flat_photo, "rectangle")
    size = window.doc.size
    viewport = canvas.viewport()
    # The outline follows the drag.
    qtbot.mousePress(viewport, LEFT, PLAIN, _view(canvas, 20, 20))
    qtbot.mouseMove(viewport, _view(canvas, 120, 90))
    band = [item for item in canvas.items() if item.isVisible() and item.zValue() == 20]
    assert band and all(abs(item.boundingRect().width() - 100) < 6 for item in band)
    qtbot.mouseRelease(viewport, LEFT, PLAIN, _view(canvas, 120, 90))
    assert not any(item.isVisible() and item.zValue() == 20 for item in canvas.items())
    first = selection.rectangle(size, _photo(canvas, _view(canvas, 20, 20)), _photo(canvas, _view(canvas, 120, 90)))
    expected = np.zeros_like(layer.mask)
    x0, y0, x1, y1 = first.rect
    expected[y0:y1, x0:x1] = 255
    assert np.array_equal(layer.mask, expected) and window.doc.undo_text == "Rectangle"

    a, b = _drag(qtbot, canvas, (150, 100), (250, 180), SHIFT)
    x0, y0, x1, y1 = selection.rectangle(size, a, b).rect
    expected[y0:y1, x0:x1] = 255
    assert np.array_equal(layer.mask, expected)
    a, b = _drag(qtbot, canvas, (40, 40), (200, 120), ALT)
    x0, y0, x1, y1 = selection.rectangle(size, a, b).rect
    expected[y0:y1, x0:x1] = 0
    assert np.array_equal(layer.mask, expected)
    a, b = _drag(qtbot, canvas, (260, 10), (290, 30))  # no key: the mask is this rectangle alone
    assert layer.mask.sum() == 255 * np.prod(np.subtract(selection.rectangle(size, a, b).rect[2:],
                                                         selection.rectangle(size, a, b).rect[:2]))
    assert window.doc.history.entries[-4:] == ["Rectangle"] * 4
    for _ in range(4):
        window.undo_action.trigger()
    assert not layer.mask.any()


def test_magic_wand_clicks_take_similar_joined_colour(make_window, qtbot, flat_photo):
    window = make_window()
    canvas, layer = _ready(window, qtbot, flat_photo, "wand")
    viewport = canvas.viewport()
    qtbot.mouseClick(viewport, LEFT, PLAIN, _view(canvas, 50, 50))
    assert window.doc.undo_text == "Magic wand"
    assert layer.mask[:, :100].all() and not layer.mask[:, 100:].any()  # the right blue is not joined
    qtbot.mouseClick(viewport, LEFT, SHIFT, _view(canvas, 250, 50))
    assert layer.mask[:95, 200:].all() and not layer.mask[105:, 200:].any()  # the stripe stops it
    window.tolerance_box.setValue(255)  # every colour: the whole photo
    qtbot.mouseClick(viewport, LEFT, ALT, _view(canvas, 150, 150))
    assert not layer.mask.any()
    window.undo_action.trigger()
    assert layer.mask[:95, 200:].all() and layer.mask[:, :100].all()
    window.tolerance_box.setValue(0)  # the noise is wider than 0: a speck only
    qtbot.mouseClick(viewport, LEFT, PLAIN, _view(canvas, 150, 150))
    assert 0 < np.count_nonzero(layer.mask) < 100


def test_lasso_and_polygon_select_what_they_enclose(make_window, qtbot, flat_photo):
    window = make_window()
    canvas, layer = _ready(window, qtbot, flat_photo, "lasso")
    viewport = canvas.viewport()
    _drag(qtbot, canvas, (20, 20), (20, 180), via=[(120, 20), (120, 180)])
    assert window.doc.undo_text == "Lasso"
    assert layer.mask[60:140, 40:100].all() and not layer.mask[:, 140:].any()
    window.tool_actions["polygon"].trigger()
    corners = [(200, 20), (280, 20), (280, 180)]
    qtbot.mouseClick(viewport, LEFT, SHIFT, _view(canvas, *corners[0]))
    qtbot.mouseClick(viewport, LEFT, PLAIN, _view(canvas, *corners[1]))
    qtbot.mouseClick(viewport, LEFT, PLAIN, _view(canvas, *corners[2]))
    assert canvas.selecting  # open until a double click
    qtbot.mouseDClick(viewport, LEFT, PLAIN, _view(canvas, *corners[2]))
    assert not canvas.selecting and window.doc.undo_text == "Polygon"
    assert layer.mask[30:50, 265:275].all() and not layer.mask[150:170, 205:215].any()
    assert layer.mask[60:140, 40:100].all()  # Shift on the first corner: added


def test_selection_tools_have_their_own_keys_and_say_how_to_add(make_window):
    window = make_window()
    keys = [action.shortcut().toString() for action in window.findChildren(type(window.brush_action))
            if action.shortcut().toString()]
    assert len(keys) == len(set(keys))
    for tool in ("rectangle", "ellipse", "lasso", "polygon", "wand"):
        tip = window.tool_actions[tool].toolTip()
        assert "Shift" in tip and "Alt" in tip and "Krita" in tip
