"""The window shows every error one way: foi_engine.errors' title and message, no traceback;
an error no check foresaw is logged with its traceback."""

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

from foi_desktop.dialogs import report_error
from foi_engine import PhotoError


def test_errors_are_shown_with_their_title_or_what_was_being_done(qtbot, monkeypatch, caplog):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: shown.append((title, text)))
    parent = QWidget()
    qtbot.addWidget(parent)
    report_error(parent, PhotoError("The photo is empty: choose another."))
    report_error(parent, PhotoError("The photo is empty: choose another."), "Cannot open this file")
    try:
        raise ValueError("a bug")
    except ValueError as error:
        with caplog.at_level(logging.ERROR):
            report_error(parent, error)
    assert shown[0] == ("Cannot use this photo", "The photo is empty: choose another.")
    assert shown[1][0] == "Cannot open this file"
    assert shown[2][0] == "Something went wrong" and "ValueError: a bug" in shown[2][1] and "log" in shown[2][1]
    assert "Traceback" not in shown[2][1]
    assert caplog.records and caplog.records[-1].exc_info is not None  # the log has the traceback
