"""The canvas for a pen and for reading masks (issue 13): pen pressure sizes the brush, the brush
outline wears the selected instruction's colour, and View ▸ Show Only Active Mask and Mask
Outlines change what the canvas shows, never the document."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
from PySide6.QtWidgets import QApplication

from foi_desktop.imaging import qimage_to_pil
from gui_helpers import shown

LEFT, NO_BUTTON = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton


@pytest.fixture(scope="module")
def pen(qapp):
    return QPointingDevice("Test pen", 7, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                           QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)


def pen_stroke(canvas, pen, points, pressure):
    """Touch down, move through and lift a pen at photo-pixel points, at one pressure; whether
    the canvas took every event (an event it ignores becomes a mouse event in a real session)."""
    viewport = canvas.viewport()
    kinds = [QEvent.Type.TabletPress] + [QEvent.Type.TabletMove] * (len(points) - 2) + [QEvent.Type.TabletRelease]
    taken = []
    for kind, (x, y) in zip(kinds, points, strict=True):
        spot = QPointF(canvas.mapFromScene(QPointF(x, y)))
        button = NO_BUTTON if kind == QEvent.Type.TabletMove else LEFT
        buttons = NO_BUTTON if kind == QEvent.Type.TabletRelease else LEFT
        event = QTabletEvent(kind, pen, spot, QPointF(viewport.mapToGlobal(spot)), pressure, 0.0, 0.0, 0.0, 0.0,
                             0.0, Qt.KeyboardModifier.NoModifier, button, buttons)
        event.ignore()
        QApplication.sendEvent(viewport, event)
        taken.append(event.isAccepted())
    return all(taken)


def tinted(canvas, photo_only) -> np.ndarray:
    """Where the canvas differs from the photo alone: the pixels a mask colours."""
    return np.any(shown(canvas) != photo_only, axis=2)


def view_menu(window):
    return next(action.menu() for action in window.menuBar().actions() if action.text() == "&View")


def photo_alone(window) -> np.ndarray:
    window.masks_action.trigger()
    assert not window.canvas.masks_visible
    picture = shown(window.canvas)
    window.masks_action.trigger()
    return picture


@pytest.fixture
def two_instructions(window, photo_path):
    """The cat photo (451×300) with two instructions, each with a hard disc painted in its mask:
    the first at (120, 100), the second at (330, 200), both 60 px across."""
    assert window.open_path(photo_path)
    canvas = window.canvas
    canvas.set_brush(diameter=60, hardness=1.0)
    layers = [window.doc.add_layer("make it snowy"), window.doc.add_layer("make it golden")]
    for layer, centre in zip(layers, ((120.0, 100.0), (330.0, 200.0))):
        window.panel.select(layer.id)
        canvas.paint_stroke([centre])
    window.panel.select(layers[0].id)
    return window, layers


def test_pen_pressure_sizes_the_brush(window, qtbot, photo_path, pen):
    assert window.open_path(photo_path)
    qtbot.mouseClick(window.panel.add_button, LEFT)
    layer = window.doc.layers[0]
    window.brush_action.trigger()
    window.size_box.setValue(30)
    window.hardness_box.setValue(1.0)
    widths = {}
    for pressure in (0.25, 0.5, 1.0):
        assert pen_stroke(window.canvas, pen, [(100.0, 150.0), (200.0, 150.0), (300.0, 150.0)], pressure)
        assert window.doc.undo_text == "Brush stroke"  # one pen stroke, one undo step
        widths[pressure] = np.count_nonzero(layer.mask[:, 200] > 127)
        window.undo()
        assert not layer.mask.any()
    # The brush's diameter × the pressure: the full size at full pressure.
    assert abs(widths[1.0] - 30) <= 2 and abs(widths[0.5] - 15) <= 2 and abs(widths[0.25] - 7.5) <= 2
    # The lightest touch still paints: never below one pixel.
    assert pen_stroke(window.canvas, pen, [(100.0, 150.0), (110.0, 150.0), (120.0, 150.0)], 0.0)
    assert 0 < np.count_nonzero(layer.mask[:, 105]) <= 2
    # The Eraser takes the pen as it takes the mouse.
    window.eraser_action.trigger()
    assert pen_stroke(window.canvas, pen, [(90.0, 150.0), (130.0, 150.0), (130.0, 150.0)], 1.0)
    assert not layer.mask.any()


def test_the_pen_leaves_selection_tools_and_panning_to_the_mouse(window, qtbot, photo_path, pen):
    """Qt turns the pen events the canvas does not take into mouse events: the selection tools
    and Space-panning then work with a pen as they do with a mouse."""
    assert window.open_path(photo_path)
    qtbot.mouseClick(window.panel.add_button, LEFT)
    window.tool_actions["rectangle"].trigger()
    assert not pen_stroke(window.canvas, pen, [(100.0, 100.0), (200.0, 200.0)], 1.0)
    assert not window.doc.layers[0].mask.any()


def test_the_brush_outline_wears_the_selected_instructions_colour(two_instructions, qtbot):
    window, layers = two_instructions
    canvas = window.canvas
    window.brush_action.trigger()
    window.size_box.setValue(80)
    spot = canvas.mapFromScene(QPointF(330.0, 90.0))  # over the photo, away from both discs

    def outline_pixels(color) -> int:
        """Pixels of exactly this colour round the pointer, as the screen shows them."""
        r = int(80 * canvas.zoom) // 2 + 4
        grabbed = np.asarray(qimage_to_pil(canvas.viewport().grab().toImage()).convert("RGB"))
        box = grabbed[spot.y() - r: spot.y() + r, spot.x() - r: spot.x() + r]
        return int(np.all(box == color, axis=2).sum())

    qtbot.mouseMove(canvas.viewport(), pos=spot)
    for layer, other in (layers, layers[::-1]):
        window.panel.select(layer.id)
        qtbot.mouseMove(canvas.viewport(), pos=spot)
        assert outline_pixels(layer.color) > 80 * canvas.zoom  # most of the ring
        assert outline_pixels(other.color) == 0
    window.eraser_action.trigger()
    assert outline_pixels(layers[1].color) > 80 * canvas.zoom
    window.doc.update_layer(layers[1].id, color=(255, 200, 0))  # the user picks another colour
    assert outline_pixels((255, 200, 0)) > 80 * canvas.zoom


def test_show_only_active_mask_hides_the_other_instructions_tints(two_instructions):
    window, (first, second) = two_instructions
    saved = [layer.mask.copy() for layer in (first, second)]
    undo_text = window.doc.undo_text
    photo = photo_alone(window)
    both = tinted(window.canvas, photo)
    assert both[100, 120] and both[200, 330]
    assert window.solo_action.isCheckable() and window.solo_action in view_menu(window).actions()
    window.solo_action.trigger()
    only_first = tinted(window.canvas, photo)
    assert only_first[100, 120] and not only_first[200, 330]
    window.panel.select(second.id)  # the view follows the selected instruction
    only_second = tinted(window.canvas, photo)
    assert not only_second[100, 120] and only_second[200, 330]
    window.solo_action.trigger()
    assert np.array_equal(tinted(window.canvas, photo), both)
    # A way of looking: the masks, the undo history and what Export writes are as they were.
    assert all(np.array_equal(layer.mask, mask) for layer, mask in zip((first, second), saved))
    assert window.doc.undo_text == undo_text


def test_mask_outlines_colour_only_each_masks_edge(two_instructions):
    window, (first, second) = two_instructions
    photo = photo_alone(window)
    filled = tinted(window.canvas, photo)
    assert window.outline_action.isCheckable() and window.outline_action in view_menu(window).actions()
    window.outline_action.trigger()
    picture = shown(window.canvas)
    drawn = np.any(picture != photo, axis=2)
    for layer in (first, second):
        inside = layer.mask >= 128
        padded = np.pad(inside, 1)
        interior = inside.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                interior &= padded[1 + dy: 1 + dy + inside.shape[0], 1 + dx: 1 + dx + inside.shape[1]]
        edge = inside & ~interior
        assert edge.sum() > 100 and filled[interior].all()
        # The edge in the instruction's own colour; inside it, the photo as it is.
        assert np.all(picture[edge] == layer.color)
        assert not drawn[interior].any()
    assert not drawn[(first.mask < 128) & (second.mask < 128)].any()
    # With only the active mask shown, only its outline.
    window.solo_action.trigger()
    drawn = tinted(window.canvas, photo)
    assert drawn[first.mask >= 128].any() and not drawn[second.mask >= 128].any()
    window.solo_action.trigger()
    window.outline_action.trigger()
    assert np.array_equal(tinted(window.canvas, photo), filled)


def test_outlines_follow_a_stroke_as_it_is_painted(two_instructions, qtbot):
    window, (first, _second) = two_instructions
    photo = photo_alone(window)
    window.outline_action.trigger()
    window.canvas.paint_stroke([(60.0, 250.0), (200.0, 250.0)])  # into the first mask
    drawn = tinted(window.canvas, photo)
    assert drawn[215:226, 130].sum() == 1 and not drawn[250, 130]  # its edge, not its inside


def test_holding_space_pans_instead_of_painting(window, qtbot, photo_path):
    assert window.open_path(photo_path)
    qtbot.mouseClick(window.panel.add_button, LEFT)
    window.tool_actions["brush"].trigger()
    canvas, layer = window.canvas, window.doc.layers[0]
    viewport, spot = canvas.viewport(), canvas.mapFromScene(QPointF(100, 100))
    canvas.setFocus()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    assert viewport.cursor().shape() == Qt.CursorShape.OpenHandCursor
    qtbot.mousePress(viewport, LEFT, pos=spot)
    assert viewport.cursor().shape() == Qt.CursorShape.ClosedHandCursor  # a drag now moves the photo
    qtbot.mouseRelease(viewport, LEFT, pos=spot)
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert not layer.mask.any() and viewport.cursor().shape() != Qt.CursorShape.OpenHandCursor
    qtbot.mouseClick(viewport, LEFT, pos=spot)
    assert layer.mask[100, 100] > 0  # the brush again
