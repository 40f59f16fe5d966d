"""The results history strip: a thumbnail per finished edit, newest last, with the actions
a photographer expects on a version (accept, star, discard, compare, re-run, copy settings);
each says how it was made (FoI or plain InstructPix2Pix) and its seed."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QListView, QListWidget, QListWidgetItem, QPushButton, QWidget

from .document import EventKind, follow
from .imaging import pil_to_qimage

THUMB = 96


def method_of(entry) -> str:
    """Which way the result was made: with FoI's focus, or plain InstructPix2Pix."""
    return "FoI" if entry.settings.focus else "Plain IP2P"


def caption(number: int, entry) -> str:
    """The strip's text under a thumbnail: number, method, star, accepted; then the seed."""
    marks = (" ★" if entry.starred else "") + (" ✓" if entry.accepted else "")
    return f"#{number} {method_of(entry)}{marks}\nseed {entry.seed}"


def describe(entry) -> str:
    """A one-line tooltip of what made this result."""
    settings = entry.settings
    lines = [f"{method_of(entry)} · seed {entry.seed} · {settings.steps} steps · strength {settings.strength:g} · "
             f"s_I {settings.image_guidance:g} · s_T {settings.text_guidance:g} · {settings.resolution} px",
             f"Model {entry.model_name}" + (" (random weights: meaningless output)" if entry.random_weights else ""),
             time.strftime("Made %H:%M:%S", time.localtime(entry.created))]
    lines += [f"• {instruction.text}" for instruction in entry.instructions]
    return "\n".join(lines)


class ResultsStrip(QWidget):
    selectionChanged = Signal(object)  # ResultEntry or None
    acceptRequested = Signal(object)
    discardRequested = Signal(object)
    rerunRequested = Signal(object)
    copySettingsRequested = Signal(object)
    starRequested = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.list = QListWidget(objectName="history")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setFixedHeight(THUMB + 56)  # two lines of caption
        self.list.currentRowChanged.connect(lambda _row: self.selectionChanged.emit(self.current()))
        self.list.currentRowChanged.connect(lambda _row: self._enable())
        self.accept_button = QPushButton("Accept", toolTip="Keep this version: Export writes it")
        self.discard_button = QPushButton("Discard", toolTip="Remove this version from the history")
        self.rerun_button = QPushButton("New seed", toolTip="Run the same edit again with another seed")
        self.copy_button = QPushButton("Use its settings", toolTip="Copy this version's settings and seed")
        self.star_button = QPushButton("Star", toolTip="Mark this version as one of your picks (★); "
                                                       "star as many as you like")
        buttons = QGridLayout()
        for n, (button, signal) in enumerate(((self.accept_button, self.acceptRequested),
                                              (self.star_button, self.starRequested),
                                              (self.discard_button, self.discardRequested),
                                              (self.rerun_button, self.rerunRequested),
                                              (self.copy_button, self.copySettingsRequested))):
            button.clicked.connect(lambda _checked=False, s=signal: self.current() and s.emit(self.current()))
            # A click must not leave the focus on a button the action may disable (Qt would pass
            # it on to the next box, where number keys type); Tab still reaches it.
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            buttons.addWidget(button, n // 2, n % 2)
        buttons.setRowStretch(3, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setMaximumHeight(THUMB + 76)  # a strip: the canvas keeps the height
        self._enable()

    def set_document(self, doc) -> None:
        follow(self, doc, [(EventKind.RESULTS, self._on_results)])
        self._rebuild()

    def current(self):
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def select(self, entry) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) is entry:
                self.list.setCurrentRow(row)
                return

    def _on_results(self, _event) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        """Thumbnails are made once per entry and kept on the item."""
        current = self.current()
        known = {}
        for row in range(self.list.count()):
            item = self.list.item(row)
            known[id(item.data(Qt.ItemDataRole.UserRole))] = item.icon()
        self.list.blockSignals(True)
        self.list.clear()
        for number, entry in enumerate(self.doc.results if self.doc else [], start=1):
            icon = known.get(id(entry)) or self._thumbnail(entry)
            item = QListWidgetItem(icon, caption(number, entry))
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(describe(entry))
            self.list.addItem(item)
        self.list.blockSignals(False)
        if current is not None and self.doc and current in self.doc.results:
            self.select(current)
        self._enable()
        self.selectionChanged.emit(self.current())

    @staticmethod
    def _thumbnail(entry) -> QIcon:
        image = entry.image.copy()
        image.thumbnail((THUMB, THUMB))
        return QIcon(QPixmap.fromImage(pil_to_qimage(image)))

    def _enable(self) -> None:
        current = self.current()
        for button in (self.accept_button, self.star_button, self.discard_button, self.rerun_button,
                       self.copy_button):
            button.setEnabled(current is not None)
        self.star_button.setText("Unstar" if current is not None and current.starred else "Star")
