"""The tool bars, laid out as in Krita: the main bar (icons in groups: file, run, mask tools,
view), and under it the tool-options bar, which shows the settings of the active tool and,
on its right, the operations on the selected mask.

Icons are small monochrome SVGs (resources/icons/tools/, drawn in black on a 24-unit grid),
tinted here for the dark theme, so the colours stay in one place."""

from __future__ import annotations

import html
from functools import lru_cache

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QSizePolicy, QSpinBox, QToolBar, QWidget

from . import assets
from .canvas import BRUSHES, MAX_BRUSH, Tool

ICON_PX = 24  # the SVGs' grid: 2-unit strokes on whole units land on whole pixels
# The style sheet's text colours (resources/style.qss): normal and disabled.
ICON_TINTS = ((QIcon.Mode.Normal, "#e6e6e6"), (QIcon.Mode.Disabled, "#7a7d83"))
SELECTION_HINT = "Shift: add · Alt: subtract"  # Krita's keys, Photoshop's names for the modes
NO_TOOL_HINT = "Choose a mask tool to paint or select"


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """resources/icons/tools/<name>.svg, drawn at 1× and 2× (sharp on high-density screens)."""
    renderer = QSvgRenderer(str(assets.resource(f"icons/tools/{name}.svg")))
    if not renderer.isValid():
        raise FileNotFoundError(f"FoI Studio's icon {name!r} is missing: reinstall the application.")
    result = QIcon()
    for scale in (1, 2):
        for mode, colour in ICON_TINTS:
            result.addPixmap(_tinted(renderer, ICON_PX * scale, colour), mode)
    return result


def _tinted(renderer: QSvgRenderer, px: int, colour: str) -> QPixmap:
    image = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceIn)  # keep the shape, recolour it
    painter.fillRect(image.rect(), QColor(colour))
    painter.end()
    return QPixmap.fromImage(image)


def tooltip(text: str, shortcuts: list[QKeySequence], tip: str | None) -> str:
    """A button's tooltip: its name and keys first (the button may show only an icon), then
    what it does."""
    name = html.escape(text.rstrip("…"), quote=False)
    keys = html.escape(" or ".join(key.toString(QKeySequence.SequenceFormat.NativeText) for key in shortcuts),
                       quote=False)
    head = f"<b>{name}</b> ({keys})" if keys else f"<b>{name}</b>"
    return f"{head}<br>{html.escape(tip, quote=False)}" if tip else head


def option_box(box_type, **properties):
    """A number box on a tool bar. Only a click puts the cursor in it: focus leaving a
    disabled button never lands here, where 1 (100 %) would type a brush size."""
    box = box_type(**properties)
    box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    return box


def main_toolbar(groups, labelled=()) -> QToolBar:
    """The main bar: groups of (icon name, action) or widgets, a separator between groups.
    Buttons show their icon; those in labelled also their text (the steps of every edit)."""
    bar = QToolBar("Tools", objectName="tools", movable=False)
    bar.setIconSize(QSize(ICON_PX, ICON_PX))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    for number, group in enumerate(groups):
        if number:
            bar.addSeparator()
        for item in group:
            if isinstance(item, QWidget):
                bar.addWidget(item)
                continue
            name, action = item
            action.setIcon(icon(str(name)))  # a Tool or a plain name: one cache entry each icon
            bar.addAction(action)
            if action in labelled:
                bar.widgetForAction(action).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    return bar


class ToolOptionsBar(QToolBar):
    """The active tool's settings: brush and eraser: size and hardness; selection tools: how
    Shift and Alt change what they do; the Magic Wand: its tolerance too. On the right, the
    operations on the selected mask and how far they reach, whatever the tool."""

    brushChanged = Signal(float, float)  # diameter (photo pixels), hardness (0 soft … 1 hard)
    toleranceChanged = Signal(int)

    def __init__(self, mask_actions: list[QAction], tolerance: int, parent=None):
        super().__init__("Tool Options", parent, objectName="toolOptions", movable=False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._tool_actions: dict[str, QAction] = {}
        self.tool_label = QLabel(objectName="toolName")
        self.addWidget(self.tool_label)
        self.size_box = option_box(QSpinBox, minimum=1, maximum=MAX_BRUSH, value=40, suffix=" px",
                                   toolTip="Brush diameter, in photo pixels ([ and ])")
        self.hardness_box = option_box(QDoubleSpinBox, minimum=0.0, maximum=1.0, singleStep=0.1, value=0.8,
                                       toolTip="1 = hard edge, 0 = soft, feathered edge")
        self.tolerance_box = option_box(QSpinBox, minimum=0, maximum=255, value=tolerance,
                                        toolTip="How far a colour may be from the one clicked for the Magic Wand "
                                                "to take it: 0 = only that colour, 255 = every colour")
        self.hint_label = QLabel(objectName="hint")
        self._brush_items = self._labelled("Size", self.size_box) + self._labelled("Hardness", self.hardness_box)
        self._wand_items = self._labelled("Tolerance", self.tolerance_box)
        self._hint_item = self.addWidget(self.hint_label)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)  # keeps the mask operations in one place whatever the tool shows
        self.addSeparator()
        mask_label = QLabel("Mask")
        mask_label.setToolTip("What these do, they do to the selected instruction's mask")
        self.addWidget(mask_label)
        self.addActions(mask_actions)
        self.edge_box = option_box(QSpinBox, minimum=1, maximum=500, value=8, suffix=" px",
                                   toolTip="How far Grow, Shrink and Feather reach")
        self._labelled("by", self.edge_box)
        for box in (self.size_box, self.hardness_box):
            box.valueChanged.connect(lambda _value: self.brushChanged.emit(self.size_box.value(),
                                                                           self.hardness_box.value()))
        self.tolerance_box.valueChanged.connect(self.toleranceChanged)
        self.show_tool(None)

    def _labelled(self, text: str, box: QWidget) -> list[QAction]:
        label = QLabel(text, toolTip=box.toolTip())
        label.setBuddy(box)
        return [self.addWidget(label), self.addWidget(box)]

    def follow(self, tool_actions: dict[Tool, QAction]) -> None:
        """Show the options of whichever of these tools is checked, however it got checked."""
        self._tool_actions = tool_actions
        for action in tool_actions.values():
            action.toggled.connect(lambda _on: self.show_tool(self.active_tool()))

    def active_tool(self) -> Tool | None:
        return next((tool for tool, action in self._tool_actions.items() if action.isChecked()), None)

    def show_tool(self, tool: Tool | None) -> None:
        action = self._tool_actions.get(tool)
        self.tool_label.setText(action.text() if action is not None else "No tool")
        for item in self._brush_items:
            item.setVisible(tool in BRUSHES)
        for item in self._wand_items:
            item.setVisible(tool is Tool.WAND)
        self.hint_label.setText(NO_TOOL_HINT if tool is None else SELECTION_HINT)
        self._hint_item.setVisible(tool not in BRUSHES)
