"""The instruction list: one row per instruction layer, like a layers panel.

Each row edits its layer through the document (so every change is undoable and every
view hears of it) and refreshes itself from the document's events. The selected row is
the layer the brush paints on."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractButton, QCheckBox, QColorDialog, QComboBox, QDoubleSpinBox, QFrame,
                               QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea,
                               QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from foi_engine import EditSettings, Instruction, InstructionError
from foi_engine.settings import RANGES, check_request

from .document import EventKind, follow

WHOLE_IMAGE = "Whole image"
MAX_TEXT_LINES = 5  # the instruction field grows with its text up to this many lines, then scrolls


def swatch_icon(color: tuple[int, int, int], size: int = 18) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(*color))
    painter.setPen(QColor(255, 255, 255, 160))
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 4, 4)
    painter.end()
    return QIcon(pixmap)


class InstructionText(QPlainTextEdit):
    """An instruction's text, wrapped, as tall as its lines up to MAX_TEXT_LINES, then
    scrolling. Enter starts a new line (the model reads it as a space), Ctrl+Enter runs Edit
    (the window's shortcut), Tab moves on to the next control, as in a one-line field."""

    def __init__(self, placeholder: str):
        super().__init__(placeholderText=placeholder)
        self.setTabChangesFocus(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.textChanged.connect(self._fit_height)
        self._fit_height()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)  # wraps the text at the new width
        if event.size().width() != event.oldSize().width():
            self._fit_height()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_height()  # now with the style sheet's padding

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self._fit_height()

    def _fit_height(self) -> None:
        lines = min(max(self.document().lineCount(), 1), MAX_TEXT_LINES)
        chrome = self.height() - self.contentsRect().height()  # frame and padding
        # The document's margin above and below, and the pixel QPlainTextEdit keeps free
        # before it shows a scroll bar.
        text = lines * self.fontMetrics().lineSpacing() + 2 * self.document().documentMargin() + 1
        self.setFixedHeight(math.ceil(text) + chrome)


class InstructionRow(QFrame):
    """The controls of one layer. `selected` is emitted when the user works in it."""

    selected = Signal(str)

    def __init__(self, doc, layer, parent=None):
        super().__init__(parent)
        self.setObjectName("instructionRow")
        self.doc, self.layer_id = doc, layer.id
        self._showing = False  # refresh() is setting the widgets: their signals are not the user's
        self._swatch = None  # the colour the colour button shows
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

        self.color_button = QToolButton(toolTip="Overlay colour")
        self.color_button.clicked.connect(self._choose_color)
        self.visible_box = QCheckBox(toolTip="Show this instruction's mask")
        self.visible_box.toggled.connect(lambda on: self._edit(visible=on))
        self.text_edit = InstructionText("Describe one change, e.g. “make the sky stormy”")
        self.text_edit.textChanged.connect(lambda: self._edit(text=self.text_edit.toPlainText()))
        self.up_button = QToolButton(text="▲", toolTip="Move up", autoRaise=True)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button = QToolButton(text="▼", toolTip="Move down", autoRaise=True)
        self.down_button.clicked.connect(lambda: self._move(+1))
        self.remove_button = QToolButton(text="✕", toolTip="Remove this instruction", autoRaise=True)
        self.remove_button.clicked.connect(lambda: self.doc.remove_layer(self.layer_id))

        self.keyword_box = QComboBox(toolTip="The word whose region this instruction edits, or the whole image")
        self.keyword_box.activated.connect(self._keyword_chosen)
        self.strength_box = QDoubleSpinBox(decimals=2, minimum=RANGES["instruction_strength"][0],
                                           maximum=RANGES["instruction_strength"][1], singleStep=0.1,
                                           toolTip="Strength α: how strongly this instruction acts in its region")
        self.strength_box.valueChanged.connect(lambda v: self._edit(strength=v))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100,
                                        toolTip="Threshold τ: higher = a tighter region (updates the mask at once)")
        self.threshold_slider.sliderPressed.connect(lambda: self.doc.begin_group("Threshold"))
        self.threshold_slider.sliderReleased.connect(self.doc.end_group)
        self.threshold_slider.valueChanged.connect(self._threshold_moved)
        self.threshold_label = QLabel(minimumWidth=34)
        self.auto_button = QToolButton(text="Auto", checkable=True,
                                       toolTip="Let the engine pick τ from the seed (the paper's default)")
        self.auto_button.clicked.connect(self._auto_clicked)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, toolTip="Overlay opacity")
        self.opacity_slider.valueChanged.connect(lambda v: self._edit(opacity=v / 100))

        top = QHBoxLayout()
        top.setSpacing(4)
        for widget in (self.color_button, self.visible_box, self.text_edit, self.up_button, self.down_button,
                       self.remove_button):
            top.addWidget(widget, alignment=Qt.AlignmentFlag.AlignTop)  # beside the first line of a long text
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        grid.addWidget(QLabel("Region"), 0, 0)
        grid.addWidget(self.keyword_box, 0, 1, 1, 3)
        grid.addWidget(QLabel("α"), 0, 4)
        grid.addWidget(self.strength_box, 0, 5)
        grid.addWidget(QLabel("τ"), 1, 0)
        grid.addWidget(self.threshold_slider, 1, 1, 1, 2)
        grid.addWidget(self.threshold_label, 1, 3)
        grid.addWidget(self.auto_button, 1, 4, 1, 2)
        grid.addWidget(QLabel("Opacity"), 2, 0)
        grid.addWidget(self.opacity_slider, 2, 1, 1, 5)
        grid.setColumnStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(top)
        layout.addLayout(grid)
        for widget in (self, *self.findChildren(QWidget)):
            widget.installEventFilter(self)
        self.refresh()

    @property
    def layer(self):
        return self.doc.layer(self.layer_id)

    def refresh(self) -> None:
        """Show the layer as it is now. The widgets' own signals still fire (the text field
        fits its height to the new text); `_showing` keeps them from going back to the
        document as the user's edits: showing an auto τ on the slider would otherwise fix it,
        and showing an undone value would set it again as a new step (the redo lost)."""
        self._showing = True
        try:
            self._show(self.layer)
        finally:
            self._showing = False

    def _show(self, layer) -> None:
        # Only what changed: a widget set again repaints, and what lies under it, on every τ move.
        if self._swatch != layer.color:
            self._swatch = layer.color
            self.color_button.setIcon(swatch_icon(layer.color))
        self.visible_box.setChecked(layer.visible)
        if self.text_edit.toPlainText() != layer.text:
            self.text_edit.setPlainText(layer.text)
        words = layer.words()
        if words != [self.keyword_box.itemData(i) for i in range(1, self.keyword_box.count())] \
                or self.keyword_box.count() == 0:
            self.keyword_box.clear()
            self.keyword_box.addItem(WHOLE_IMAGE, None)
            for word in words:
                self.keyword_box.addItem(word, word)
        index = self.keyword_box.findData(layer.keyword) if layer.keyword else 0
        self.keyword_box.setCurrentIndex(max(0, index))
        if self.strength_box.value() != layer.strength:
            self.strength_box.setValue(layer.strength)
        tau = layer.effective_threshold
        self.threshold_slider.setEnabled(layer.keyword is not None)
        self.threshold_slider.setValue(int(round((tau if tau is not None else 0.55) * 100)))
        self.threshold_label.setText("—" if layer.keyword is None else ("auto" if tau is None else f"{tau:.2f}"))
        self.auto_button.setChecked(layer.threshold is None)
        self.auto_button.setEnabled(layer.keyword is not None)
        self.opacity_slider.setValue(int(round(layer.opacity * 100)))
        index = self.doc.index_of(self.layer_id)
        self.up_button.setEnabled(index > 0)
        self.down_button.setEnabled(index < len(self.doc.layers) - 1)

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", "true" if selected else "false")
        self.style().unpolish(self)
        self.style().polish(self)

    def eventFilter(self, watched, event) -> bool:
        """A click or the keyboard's focus in the row, its text, its τ slider, any field of
        it, selects its instruction. Its buttons (show, colour, move, remove) act on it as it
        is, without taking the selection from another."""
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.FocusIn) \
                and not isinstance(watched, QAbstractButton):
            self.selected.emit(self.layer_id)
        return False

    def _edit(self, **fields) -> None:
        if not self._showing:
            self.doc.update_layer(self.layer_id, **fields)

    def _keyword_chosen(self, index: int) -> None:
        self._edit(keyword=self.keyword_box.itemData(index))

    def _threshold_moved(self, value: int) -> None:
        if not self._showing:
            self.doc.set_threshold(self.layer_id, value / 100)

    def _auto_clicked(self, checked: bool) -> None:
        tau = None if checked else self.threshold_slider.value() / 100
        self.doc.set_threshold(self.layer_id, tau)

    def _move(self, offset: int) -> None:
        self.doc.move_layer(self.layer_id, self.doc.index_of(self.layer_id) + offset)

    def _choose_color(self) -> None:
        color = QColorDialog.getColor(QColor(*self.layer.color), self, "Overlay colour")
        if color.isValid():
            self.doc.update_layer(self.layer_id, color=(color.red(), color.green(), color.blue()))


class InstructionPanel(QWidget):
    """The list of rows, an Add button and the token counter."""

    activeLayerChanged = Signal(object)  # layer id or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.rows: dict[str, InstructionRow] = {}
        self.active_layer_id: str | None = None
        self._token_counter = None  # callable(instructions) -> int | None
        self._max_tokens: int | None = None
        self._counted = None

        self._rows_box = QVBoxLayout()
        self._rows_box.setSpacing(6)
        rows_widget = QWidget()
        outer = QVBoxLayout(rows_widget)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.addLayout(self._rows_box)
        outer.addStretch(1)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        scroll.setWidget(rows_widget)
        self.add_button = QPushButton("+ Add instruction")
        self.add_button.clicked.connect(self.add_instruction)
        self.tokens_label = QLabel(objectName="tokenCounter", wordWrap=True)  # a refusal's reason is a sentence
        self.tokens_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        footer = QHBoxLayout()
        footer.setContentsMargins(6, 0, 6, 6)
        footer.addWidget(self.add_button)
        footer.addWidget(self.tokens_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addLayout(footer)

    def set_document(self, doc) -> None:
        follow(self, doc, [(EventKind.LAYERS, self._on_layers), (EventKind.LAYER, self._on_layer)])
        for row in self.rows.values():
            row.deleteLater()
        self.rows.clear()
        self.active_layer_id = None
        if doc is not None:
            self._sync_rows()
        self.update_tokens()

    def set_token_counter(self, counter, max_tokens: int | None) -> None:
        """Count with counter(instructions) -> int | None from now on; counted anew even if it
        is the same counter (a server's answer came)."""
        self._token_counter, self._max_tokens, self._counted = counter, max_tokens, None
        self.update_tokens()

    def add_instruction(self) -> None:
        layer = self.doc.add_layer("")
        self.select(layer.id)
        self.rows[layer.id].text_edit.setFocus()

    def select(self, layer_id: str | None) -> None:
        if layer_id == self.active_layer_id:
            return
        self.active_layer_id = layer_id
        for row_id, row in self.rows.items():
            row.set_selected(row_id == layer_id)
        self.activeLayerChanged.emit(layer_id)

    def _on_layers(self, _event) -> None:
        self._sync_rows()

    def _on_layer(self, event) -> None:
        if event.layer_id in self.rows:
            self.rows[event.layer_id].refresh()
            self.update_tokens()

    def _sync_rows(self) -> None:
        ids = [layer.id for layer in self.doc.layers]
        for layer_id in list(self.rows):
            if layer_id not in ids:
                self.rows.pop(layer_id).deleteLater()
        for index, layer in enumerate(self.doc.layers):
            row = self.rows.get(layer.id)
            if row is None:
                row = self.rows[layer.id] = InstructionRow(self.doc, layer)
                row.selected.connect(self.select)
            self._rows_box.insertWidget(index, row)
            row.refresh()
        if self.active_layer_id not in self.rows:
            self.active_layer_id = None
            self.select(ids[0] if ids else None)
        self.update_tokens()

    def update_tokens(self) -> None:
        """"Tokens 23 / 77", red past the limit or with the reason a run would refuse an
        instruction; silent until the model's tokenizer is read."""
        label = self.tokens_label
        texts = [layer.text for layer in self.doc.layers if layer.text.strip()] if self.doc else []
        key = (tuple(texts), self._token_counter, self._max_tokens)
        if key == self._counted:
            return  # a τ drag must not re-tokenize on every move
        self._counted = key
        text, tip, over = self._token_count(texts)
        label.setText(text)
        label.setToolTip(tip)
        label.setProperty("over", "true" if over else "false")
        label.style().unpolish(label)
        label.style().polish(label)

    def _token_count(self, texts: list[str]) -> tuple[str, str, bool]:
        """The counter's text, its tooltip, and whether it is red."""
        try:
            count = None
            if self._token_counter and texts:
                # The run's own checks first (too many instructions), then the model's count.
                count = self._token_counter(check_request([Instruction(t) for t in texts], EditSettings(), 0))
        except InstructionError as error:  # too long, too many, a control character: a run would refuse it too
            return str(error), "", True
        if count is None or self._max_tokens is None:
            return "", ("The token count appears as soon as the model's files are on this computer, "
                        "or the server has answered."), False
        over = count > self._max_tokens
        return (f"Tokens {count} / {self._max_tokens}" + ("  — too long" if over else ""),
                "The model reads at most this many tokens of all instructions together; shorten them if the "
                "count is red.", over)
