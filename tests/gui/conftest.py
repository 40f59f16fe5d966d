"""GUI tests: offscreen Qt, no network, the tiny random model, private config folders.

One engine worker (with the tiny model loaded once) is shared by the tests that need it;
each test gets a fresh main window on qasync's loop and drives it as a person would."""

import os
import tempfile

_private = tempfile.mkdtemp(prefix="foi-gui-tests-")
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["HF_HUB_OFFLINE"] = "1"
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
    os.environ[_name] = os.path.join(_private, _name.lower())

import asyncio  # noqa: E402

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from foi_desktop import assets  # noqa: E402

TINY_PREFS = dict(model="tiny-random", steps=6, resolution=128, fixed_seed=True, seed=0)


@pytest.fixture(scope="session")
def loop(qapp):
    import qasync

    from foi_desktop.app import create_application

    create_application()  # style, palette, names (QSettings and QStandardPaths use them)
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    event_loop.close()  # stops the threads of its executor (projects are read there) before Qt goes


@pytest.fixture(scope="session")
def shared_client(loop):
    from foi_desktop.worker import EngineClient, ModelChoice

    client = EngineClient()
    client.set_model(ModelChoice("tiny-random"))
    loop.run_until_complete(asyncio.wait_for(client.load(), 300))
    yield client
    client.shutdown()


@pytest.fixture(autouse=True)
def no_blocking_dialogs(monkeypatch):
    """A modal question would hang an offscreen test: answer "discard" and record it."""
    from PySide6.QtWidgets import QMessageBox

    asked = []

    def question(parent, title, text, *args, **kwargs):
        asked.append((title, text))
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


@pytest.fixture
def errors(monkeypatch):
    """Messages the window would show the user, instead of a modal box."""
    from foi_engine.errors import report

    shown = []

    def report_error(parent, error, doing=None):
        message = report(error, doing)
        shown.append((message.title, message.message))

    monkeypatch.setattr("foi_desktop.window.report_error", report_error)
    return shown


@pytest.fixture
def make_window(qtbot, loop):
    """make_window(client=None, model_override=None, **preferences): a shown main window (client
    None = its own worker; model_override as --model gives it)."""
    from foi_desktop.preferences import Preferences
    from foi_desktop.window import MainWindow

    made = []

    def make(client=None, model_override=None, **prefs):
        window = MainWindow(Preferences(**{**TINY_PREFS, **prefs}), model_override=model_override, client=client)
        window.resize(1400, 900)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        made.append(window)
        return window

    yield make
    for window in made:
        if window.isVisible():
            window.close()


@pytest.fixture
def window(make_window, shared_client):
    return make_window(shared_client)


@pytest.fixture(scope="session")
def photo_path(tmp_path_factory):
    """A JPEG of the bundled cat (451×300), as a user's photo would be."""
    path = tmp_path_factory.mktemp("photos") / "chelsea.jpg"
    Image.open(assets.resource("samples/chelsea.png")).convert("RGB").save(path, quality=92)
    return str(path)


@pytest.fixture
def run(loop):
    """run(task): wait on the qasync loop (Qt keeps processing events) for a window's run."""

    def wait(task, timeout=240):
        assert task is not None, "the action did not start a run"
        return loop.run_until_complete(asyncio.wait_for(asyncio.shield(task), timeout))

    return wait
