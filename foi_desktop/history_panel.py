"""The History panel: every undoable step of the document, oldest first, the current one
highlighted and the undone ones greyed; choosing a step undoes or redoes to just after it."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from .document import EventKind, follow

START = "Opened"  # the row before any step: the photo or project as it was opened


class HistoryPanel(QListWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("history")
        self.doc = None
        self.currentRowChanged.connect(self._go_to)

    def set_document(self, doc) -> None:
        follow(self, doc, [(EventKind.HISTORY, self._on_history)])
        self.refresh()

    def _on_history(self, _event) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Rows are updated in place (not rebuilt): a click's own undo refreshes the list."""
        history = self.doc.history if self.doc is not None else None
        texts = [START, *history.entries] if history is not None else []
        current = history.position if history is not None else -1
        with QSignalBlocker(self):
            while self.count() > len(texts):
                self.takeItem(self.count() - 1)
            while self.count() < len(texts):
                self.addItem(QListWidgetItem())
            undone = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            done = self.palette().color(QPalette.ColorRole.Text)
            for row, text in enumerate(texts):
                item = self.item(row)
                item.setText(text)
                item.setForeground(undone if row > current else done)
            self.setCurrentRow(current)
        if current >= 0:
            self.scrollToItem(self.item(current))

    def _go_to(self, row: int) -> None:
        if self.doc is not None and row >= 0:
            self.doc.go_to(row)
