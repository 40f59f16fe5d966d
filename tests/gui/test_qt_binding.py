"""The Qt binding itself holds up for a long session: a regression guard for PySide6 6.12.0,
which drops a reference to None on every call of a Qt method that returns nothing — on
Python 3.11, where None is not immortal, the interpreter aborts after a few thousand of them
(a busy τ move repaints a hundred rectangles)."""

import os
import subprocess
import sys

LONG_SESSION = """
import sys
from PySide6.QtWidgets import QApplication, QGraphicsRectItem, QGraphicsScene
app = QApplication(sys.argv)
scene = QGraphicsScene()
item = QGraphicsRectItem(0, 0, 10, 10)
scene.addItem(item)
for _ in range(50_000):
    item.update()
print("done")
"""


def test_fifty_thousand_void_qt_calls_do_not_abort():
    run = subprocess.run([sys.executable, "-c", LONG_SESSION], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0 and "done" in run.stdout, (
        f"the Qt binding aborted (exit {run.returncode}): {run.stderr[-500:]}")
