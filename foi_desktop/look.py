"""The QApplication with FoI Studio's look, shared by the app and the self-check (which must
not import the main window)."""

from __future__ import annotations

import sys


def create_application(argv=None):
    """The QApplication with FoI Studio's look (Fusion, dark palette, style sheet)."""
    from PySide6.QtGui import QColor, QIcon, QPalette
    from PySide6.QtWidgets import QApplication

    from . import assets

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setApplicationName("FoI Studio")
    app.setOrganizationName("FoI Studio")
    app.setApplicationDisplayName("FoI Studio")
    app.setDesktopFileName("foi-studio")
    app.setWindowIcon(QIcon(str(assets.resource("icons/foi-studio.svg"))))
    app.setStyle("Fusion")
    palette = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#2b2d31"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
                        (QPalette.ColorRole.Base, "#1e1f22"), (QPalette.ColorRole.AlternateBase, "#313338"),
                        (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#3a3d42"),
                        (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#3d6fb6"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#1e1f22"),
                        (QPalette.ColorRole.ToolTipText, "#f0f0f0"), (QPalette.ColorRole.PlaceholderText, "#8a8d93")):
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#7a7d83"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#7a7d83"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#7a7d83"))
    app.setPalette(palette)
    app.setStyleSheet(assets.resource("style.qss").read_text(encoding="utf-8"))
    return app
