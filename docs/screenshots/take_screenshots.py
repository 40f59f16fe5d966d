"""Screenshots of the flow, taken from the real window on an X display (not offscreen):

    xvfb-run -s "-screen 0 1600x1000x24" python3 docs/screenshots/take_screenshots.py [tiny] [shapes]

"tiny" (01–09 at 1600 × 1000, then a few again at 1024 × 700, named *-1024.png) uses the tiny
random-weight model, so the "results" are noise by design; the UI around them is what these
pictures show. "shapes" (10) runs the bundled shapes model on its generated sample scene. Both
by default."""

import asyncio
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
os.environ["HF_HUB_OFFLINE"] = "1"
_private = tempfile.mkdtemp(prefix="foi-shots-")
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
    os.environ[_name] = os.path.join(_private, _name.lower())


def main(parts) -> None:
    import qasync

    from foi_desktop.app import create_application

    app = create_application()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    def settle(seconds=0.4):
        loop.run_until_complete(asyncio.sleep(seconds))

    def shot(name, width=-1, height=-1):
        """The screen, or its top-left width × height (where a smaller window sits)."""
        settle()
        app.primaryScreen().grabWindow(0, 0, 0, width, height).save(os.path.join(HERE, name))
        print("wrote", name)

    if "tiny" in parts:
        tiny_flow(app, loop, settle, shot)
        small_screen_flow(settle, shot)
    if "shapes" in parts:
        shapes_flow(loop, shot)


# The sample's two edited shapes sit left of the middle: a split through them shows each with
# plain InstructPix2Pix's colour on its left and FoI's on its right.
SHAPES_SPLIT = 0.25


def shapes_flow(loop, shot) -> None:
    from PySide6.QtWidgets import QApplication

    from foi_desktop.preferences import Preferences
    from foi_desktop.window import MainWindow

    window = MainWindow(Preferences(model="shapes", fixed_seed=True, seed=0))
    window.setGeometry(0, 0, 1600, 1000)
    window.show()
    window.open_sample()
    loop.run_until_complete(window.start_find_regions())
    loop.run_until_complete(window.start_compare_plain())
    window.canvas.set_split(SHAPES_SPLIT)
    shot("10-shapes-model.png")
    window.doc.modified = False
    window.close()
    QApplication.processEvents()


def tiny_flow(app, loop, settle, shot) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QCursor
    from PySide6.QtWidgets import QApplication

    from foi_desktop.dialogs import ExportDialog, SettingsDialog
    from foi_desktop.preferences import Preferences
    from foi_desktop.window import MainWindow
    from foi_engine import EditSettings

    window = MainWindow(Preferences(model="tiny-random", steps=8, resolution=256, fixed_seed=True, seed=3))
    window.setGeometry(0, 0, 1600, 1000)
    window.show()
    window.open_sample()
    shot("01-start-sample.png")

    loop.run_until_complete(window.start_find_regions())
    shot("02-find-regions.png")

    canvas = window.canvas
    layer = window.doc.layers[1]
    window.panel.select(layer.id)
    window.set_tool("brush")
    window.size_box.setValue(56)  # a diameter
    canvas.paint_stroke([(40, 330), (120, 360), (220, 380), (320, 385)])
    window.set_tool("eraser")
    canvas.paint_stroke([(420, 40), (520, 90)])
    window.set_tool("brush")
    QCursor.setPos(canvas.mapToGlobal(canvas.mapFromScene(QPointF(470, 300))))
    canvas.setFocus()
    settle()
    canvas._update_cursor(QPointF(470, 300))
    shot("03-brush-and-eraser.png")

    window.set_tool(None)
    window.doc.settings = EditSettings(steps=60, resolution=256)
    task = window.start_edit()
    seen = []
    window.client.progress.connect(lambda _job, step, steps, preview: seen.append(step))
    while len(seen) < 6 and not task.done():
        settle(0.1)
    window.variations_box.setValue(2)
    window.variations_action.trigger()  # two more edits queue behind the running one
    while len(seen) < 12 and not task.done():
        settle(0.1)
    shot("04-editing-progress.png")
    for job in window.jobs.active()[1:]:
        window.jobs.cancel(job.id)  # the pictures after this one show the first result alone
    loop.run_until_complete(task)
    shot("05-result-history.png")

    window.compare_action.trigger()
    canvas.set_split(0.45)
    shot("06-compare-split.png")
    window.compare_action.trigger()

    entry = window.shown_entry
    export = ExportDialog("coffee-edited", os.path.expanduser("~/Pictures"), entry.frame.size, window.doc.size,
                          window.doc.full_export_suffix, window)
    export.show()
    export.move(window.geometry().center() - export.rect().center())
    shot("07-export-dialog.png")
    export.close()

    settings = SettingsDialog(window.preferences, window)
    settings.show()
    settings.move(window.geometry().center() - settings.rect().center())
    shot("08-settings.png")
    settings.close()

    # Offline with no model: the dialog that says what to do (grabbed while it is open).
    from PySide6.QtCore import QTimer

    def grab_and_close():
        app.primaryScreen().grabWindow(0).save(os.path.join(HERE, "09-model-missing.png"))
        print("wrote 09-model-missing.png")
        QApplication.activeModalWidget().reject()

    window._model_override = os.path.join(_private, "no-model-downloaded")
    window.client.set_model(window._model_choice())
    window._show_model_state()
    QTimer.singleShot(2500, grab_and_close)
    loop.run_until_complete(window.start_find_regions())

    window.doc.modified = False
    window.close()
    QApplication.processEvents()


def small_screen_flow(settle, shot) -> None:
    """The same window at 1024 × 700, a small laptop's screen: every tool on the bars, the
    tool options, and Settings, with nothing cut off or behind an overflow arrow."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QCursor
    from PySide6.QtWidgets import QApplication, QToolBar, QToolTip

    from foi_desktop.dialogs import SettingsDialog
    from foi_desktop.preferences import Preferences
    from foi_desktop.window import MainWindow

    small = (1024, 700)
    window = MainWindow(Preferences(model="tiny-random", fixed_seed=True, seed=3))
    window.setGeometry(0, 0, *small)
    window.show()
    window.open_sample()
    shot("01-start-sample-1024.png", *small)

    canvas = window.canvas
    window.panel.select(window.doc.layers[1].id)
    window.set_tool("brush")
    window.size_box.setValue(56)
    canvas.paint_stroke([(40, 330), (120, 360), (220, 380), (320, 385)])
    button = window.findChild(QToolBar, "tools").widgetForAction(window.brush_action)
    QCursor.setPos(button.mapToGlobal(button.rect().center()))
    settle()
    QToolTip.showText(button.mapToGlobal(QPoint(0, button.height() + 4)), window.brush_action.toolTip(), button)
    shot("03-brush-options-1024.png", *small)
    QToolTip.hideText()

    window.set_tool("wand")
    QCursor.setPos(canvas.mapToGlobal(canvas.mapFromScene(QPointF(300, 250))))
    shot("03-magic-wand-options-1024.png", *small)

    settings = SettingsDialog(window.preferences, window)
    settings.show()
    settings.move(window.geometry().center() - settings.rect().center())
    shot("08-settings-1024.png", *small)
    settings.close()

    window.doc.modified = False
    window.close()
    QApplication.processEvents()


if __name__ == "__main__":
    main(sys.argv[1:] or ["tiny", "shapes"])
