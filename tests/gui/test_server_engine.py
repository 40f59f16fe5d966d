"""The editor running on a `foi serve` server: Settings ▸ Engine's choice and its Test
connection, the status bar, and a server that stops mid-job. Loopback only: the server runs in
this process (tests/engine/server_helpers.py), its engine a gate the test opens."""

import contextlib
import dataclasses
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from foi_desktop.jobs import JobState
from foi_desktop.preferences import Preferences, load_preferences, save_preferences
from foi_engine import EditSettings, Instruction
from foi_engine.catalog import SHAPES, model_settings
from foi_engine.version import version
from gui_helpers import answer_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # the server tests' helpers
from server_helpers import GateEngine, LoopbackServer, SilentServer, running_server  # noqa: E402

TOKEN = "a-token-of-twenty-four-c"


@contextlib.contextmanager
def _window_on_a_silent_server(make_window, photo_path):
    """A window with one instruction, set to a server that takes the connection and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        window = make_window(engine="server", server_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        yield window


def test_the_engine_choice_persists_between_runs(qapp):
    prefs = Preferences(model="tiny-random", engine="server", server_url="https://gpu-box.example.org:8765",
                        server_token=TOKEN)
    save_preferences(prefs)
    assert load_preferences() == prefs
    save_preferences(Preferences(engine="local"))
    assert load_preferences().engine == "local"


def test_settings_engine_page_choice_round_trips_and_the_status_bar_says_where_runs_happen(make_window, qtbot):
    window = make_window()
    assert window.where_label.text() == "Runs on this computer" and window.model_label.isVisibleTo(window)

    def choose_server(dialog):
        assert dialog.local_button.isChecked() and not dialog.server_rows.isEnabled()
        dialog.server_button.setChecked(True)
        dialog.server_url.setText("http://127.0.0.1:8765")
        dialog.server_token.setText(TOKEN)

    answer_settings(qtbot, window, choose_server)
    prefs = window.preferences
    assert (prefs.engine, prefs.server_url, prefs.server_token) == ("server", "http://127.0.0.1:8765", TOKEN)
    assert load_preferences().server_token == TOKEN  # saved as the other preferences are
    choice = window.client.choice
    assert choice.remote and choice.model == "http://127.0.0.1:8765" and choice.token == TOKEN
    assert TOKEN not in repr(choice)
    assert window.where_label.text() == "Runs on server 127.0.0.1:8765 (connects when first needed)"
    assert not window.model_label.isVisibleTo(window)  # the server's line names its model

    shown = {}

    def look_then_go_local(dialog):
        shown.update(server=dialog.server_button.isChecked(), url=dialog.server_url.text(),
                     token=dialog.server_token.text(), local_rows=dialog.local_rows.isEnabled())
        dialog.local_button.setChecked(True)

    answer_settings(qtbot, window, look_then_go_local)
    assert shown == {"server": True, "url": "http://127.0.0.1:8765", "token": TOKEN, "local_rows": False}
    assert window.preferences.engine == "local" and not window.client.choice.remote
    assert window.where_label.text() == "Runs on this computer"


def test_a_server_address_that_is_not_one_is_refused_on_the_engine_page(qtbot):
    from foi_desktop.dialogs import SettingsDialog

    dialog = SettingsDialog(Preferences())
    qtbot.addWidget(dialog)
    dialog.server_button.setChecked(True)
    dialog.server_url.setText("gpu-box:8765")
    dialog.pages.setCurrentIndex(1)
    dialog.accept()
    assert dialog.result() == 0 and dialog.pages.currentIndex() == 0
    assert dialog.error_label.text() == "Write the server's address as http://host:port or https://host:port."


def test_test_connection_reports_the_servers_model_device_and_version_or_why_not(qtbot, loop):
    from foi_desktop.dialogs import SettingsDialog

    def test(dialog):
        dialog.test_button.click()
        qtbot.waitUntil(dialog.test_button.isEnabled, timeout=30000)
        return dialog.test_label.text()

    with running_server({"gate": GateEngine()}, tokens=(TOKEN,), local_only=False) as (url, _scheduler):
        dialog = SettingsDialog(Preferences(engine="server", server_url=url, server_token=TOKEN))
        qtbot.addWidget(dialog)
        assert test(dialog) == f"Connected: model gate on cpu, FoI Studio {version()}."
        dialog.server_token.setText("a-wrong-token-of-24-char")
        assert dialog.test_label.text() == ""  # another token: the last answer no longer holds
        assert test(dialog).startswith(f"The server at {url} refused the token: check it")
    assert test(dialog).startswith(f"Cannot reach the server at {url} (")
    assert "Traceback" not in dialog.test_label.text()


def test_test_connection_never_waits_on_the_network_in_the_window(qtbot, loop):
    """A server that takes the connection and never answers: the dialog stays live."""
    from foi_desktop.dialogs import SettingsDialog

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        dialog = SettingsDialog(Preferences(engine="server", server_url=url))
        qtbot.addWidget(dialog)
        started = time.monotonic()
        dialog.test_button.click()
        assert time.monotonic() - started < 1.0
        assert dialog.test_label.text() == f"Asking {url}…" and not dialog.test_button.isEnabled()
        qtbot.wait(300)  # the window goes on handling events meanwhile
        assert not dialog.test_button.isEnabled()
    # Closed with the question pending: that is an answer too.
    qtbot.waitUntil(dialog.test_button.isEnabled, timeout=30000)
    assert dialog.test_label.text().startswith(f"Cannot reach the server at {url}") or \
        dialog.test_label.text().startswith(f"The server at {url}")


def test_a_server_stopping_mid_job_fails_the_job_leaves_the_document_and_the_next_run_connects(
        make_window, qtbot, run, photo_path):
    engine = GateEngine(steps=3)
    server = LoopbackServer({"gate": engine})
    server.start()
    try:
        window = make_window(engine="server", server_url=server.url)
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        window.doc.settings = EditSettings(steps=3, resolution=64)
        doc, masks, undo = window.doc, [layer.mask.copy() for layer in window.doc.layers], window.doc.undo_text
        task = window.start_edit()
        qtbot.waitUntil(engine.started.is_set, timeout=60000)  # the edit runs on the server
        qtbot.waitUntil(lambda: "— gate, cpu" in window.where_label.text(), timeout=10000)
        assert window.where_label.text() == f"Runs on server 127.0.0.1:{server.port} — gate, cpu"
        server.stop()  # as if killed: the port closes under the running job
        assert run(task, timeout=120) is None
        job, = window.jobs.jobs()
        assert job.state is JobState.FAILED
        assert job.error.startswith(f"The server at {server.url} stopped answering during the edit")
        assert "\n" not in job.error and "Traceback" not in job.error
        notice = window.failure_notice
        assert notice.isVisible() and (notice.windowTitle(), notice.text()) == ("Could not edit", job.error)
        strip = window.results.list
        assert [strip.item(row).text() for row in range(strip.count())] == ["Failed\nseed 0"]
        assert window.doc is doc and doc.results == [] and doc.undo_text == undo
        assert all(np.array_equal(layer.mask, mask) for layer, mask in zip(doc.layers, masks))
        assert window.where_label.text() == f"Runs on server 127.0.0.1:{server.port} (connects when first needed)"

        server.start()  # restarted, on the same port
        engine.gate.set()
        entry = run(window.start_edit(), timeout=120)
        assert entry is not None and doc.results == [entry] and entry.model_name == "gate"
        # The failed job's tile stays until the user discards it.
        assert strip.item(0).text().startswith("#1 FoI") and strip.item(1).text() == "Failed\nseed 0"
        strip.setCurrentRow(1)
        qtbot.mouseClick(window.results.discard_button, Qt.MouseButton.LeftButton)
        assert window.jobs.jobs() == [] and strip.count() == 1 and doc.results == [entry]
    finally:
        server.stop()


def test_a_server_not_there_fails_the_job_in_a_line_and_the_window_carries_on(make_window, run, photo_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nobody listens there
    window = make_window(engine="server", server_url=url)
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    assert run(window.start_find_regions(), timeout=120) is None
    job, = window.jobs.jobs()
    assert job.state is JobState.FAILED and job.error.startswith(f"Cannot reach the server at {url} (")
    assert window.failure_notice.windowTitle() == "Could not find the regions"
    assert window._load_dialog is None and not window.progress_bar.isVisible()
    assert window.where_label.text() == f"Runs on server 127.0.0.1:{url.rsplit(':', 1)[1]} (connects when first needed)"
    assert window.find_action.isEnabled() and not window.cancel_action.isEnabled()


# -- the server's models ----------------------------------------------------------------------
def _items(box) -> list[str]:
    return [box.itemText(index) for index in range(box.count())]


def _type_on(qtbot, window, text: str) -> None:
    """Type at the end of the (only) instruction, as a person would."""
    row, = window.panel.rows.values()
    row.text_edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(row.text_edit, text)


def _test_connection(dialog, qtbot) -> str:
    dialog.test_button.click()
    qtbot.waitUntil(dialog.test_button.isEnabled, timeout=30000)
    return dialog.test_label.text()


def test_test_connection_lists_the_servers_models_and_the_one_chosen_runs_the_edits(make_window, qtbot, run,
                                                                                    photo_path):
    first, second = GateEngine(), GateEngine(name="second")
    first.gate.set()
    second.gate.set()
    with running_server({"gate": first, "second": second}) as (url, _scheduler):
        window = make_window(engine="server", server_url=url)
        where = f"Runs on server 127.0.0.1:{url.rsplit(':', 1)[1]}"
        seen = {}

        def choose_the_second(dialog):
            box = dialog.server_model_box
            seen["before"] = _items(box)
            seen["said"] = _test_connection(dialog, qtbot)
            seen["after"] = (_items(box), box.currentIndex())
            box.setCurrentIndex(1)

        answer_settings(qtbot, window, choose_the_second)
        assert seen == {"before": ["The server's default model"],
                        "said": f"Connected: models gate, second on cpu, FoI Studio {version()}.",
                        "after": (["gate (the server's default)", "second"], 0)}
        assert window.preferences.server_model == "second" and load_preferences().server_model == "second"
        assert window.client.choice.server_model == "second"
        assert window.where_label.text() == f"{where} — second (connects when first needed)"

        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        window.doc.settings = EditSettings(steps=3, resolution=64)
        entry = run(window.start_edit(), timeout=120)
        assert entry is not None and entry.model_name == "second"
        assert second.order == [entry.seed] and first.order == []  # what the server ran
        assert window.where_label.text() == f"{where} — second, cpu"

        # Settings again, OK untouched: the choice shown is the one in force, and nothing changes.
        choice = window.client.choice
        answer_settings(qtbot, window, lambda dialog: seen.update(shown=dialog.server_model_box.currentText()))
        assert seen["shown"] == "second" and window.client.choice is choice
        assert window.where_label.text() == f"{where} — second, cpu"


def test_a_model_the_server_does_not_offer_fails_the_job_in_a_line_and_stays_chosen_until_changed(
        make_window, qtbot, run, photo_path):
    with running_server({"gate": GateEngine(), "second": GateEngine(name="second")}) as (url, _scheduler):
        window = make_window(engine="server", server_url=url, server_model="shapes")
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        doc, masks, undo = window.doc, [layer.mask.copy() for layer in window.doc.layers], window.doc.undo_text
        assert run(window.start_edit(), timeout=120) is None
        job, = window.jobs.jobs()
        refusal = f"The server at {url} does not offer the model 'shapes': it offers gate, second. Choose one of those."
        assert job.state is JobState.FAILED and job.error == refusal
        assert (window.failure_notice.windowTitle(), window.failure_notice.text()) == ("Could not edit", refusal)
        assert doc.results == [] and doc.undo_text == undo
        assert all(np.array_equal(layer.mask, mask) for layer, mask in zip(doc.layers, masks))

        seen = {}

        def look(dialog):
            seen["said"] = _test_connection(dialog, qtbot)
            seen["listed"] = _items(dialog.server_model_box)
            seen["shown"] = dialog.server_model_box.currentText()

        answer_settings(qtbot, window, look)
        assert seen == {"said": "Connected, but the server does not offer the model 'shapes': it offers gate, "
                                "second. Choose one of those.",
                        "listed": ["gate (the server's default)", "second", "shapes (not offered by this server)"],
                        "shown": "shapes (not offered by this server)"}
        assert window.preferences.server_model == "shapes"  # OK on it switched nothing



def _run_settings_shown(dialog) -> tuple:
    """The Editing page's steps and resolution, and whether the user may change them."""
    return dialog.steps.value(), dialog.resolution.value(), dialog.resolution.isEnabled()


def test_the_servers_model_brings_its_own_run_settings_as_a_model_here_does(make_window, qtbot, run, photo_path):
    """The shapes model sets its steps, resolution and grounding factor (its foi_settings.json,
    read by the server): once Test connection has heard them, the Editing page shows them and
    the runs carry them; the user's own settings stay theirs."""
    asked = model_settings(SHAPES)
    assert {"steps", "resolution", "grounding_factor"} <= set(asked)
    gate, shapes = GateEngine(), GateEngine(name=SHAPES)
    gate.gate.set()
    shapes.gate.set()
    with running_server({"gate": gate, SHAPES: shapes}, model_settings={SHAPES: asked}) as (url, _scheduler):
        window = make_window(engine="server", server_url=url, steps=20, resolution=256)
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        seen = {}

        def choose_shapes(dialog):
            _test_connection(dialog, qtbot)
            seen["gate"] = _run_settings_shown(dialog)  # the server's default asks for nothing: the user's
            dialog.server_model_box.setCurrentIndex(1)
            seen[SHAPES] = _run_settings_shown(dialog)

        answer_settings(qtbot, window, choose_shapes)
        assert seen == {"gate": (20, 256, True), SHAPES: (asked["steps"], asked["resolution"], False)}
        prefs = dataclasses.replace(window.preferences)
        assert (prefs.server_model, prefs.steps, prefs.resolution) == (SHAPES, 20, 256)  # still the user's own
        settings = window.doc.settings
        assert {name: getattr(settings, name) for name in asked} == asked

        assert run(window.start_edit(), timeout=120) is not None
        ran, = shapes.settings  # what the server received
        assert {name: getattr(ran, name) for name in asked} == asked and gate.settings == []

        # Settings again, OK untouched: shown as in force, and nothing changes.
        answer_settings(qtbot, window, lambda dialog: seen.update(again=_run_settings_shown(dialog),
                                                                  changes=dialog.changes()))
        assert seen["again"] == (asked["steps"], asked["resolution"], False) and seen["changes"] == {}
        assert window.preferences == prefs and window.doc.settings == settings


def test_a_first_run_on_the_servers_model_carries_its_settings_and_the_document_takes_them(make_window, run,
                                                                                          photo_path):
    """No Test connection, the run itself connects: it leaves with the model's settings all the same."""
    asked = model_settings(SHAPES)
    shapes = GateEngine(name=SHAPES)
    shapes.gate.set()
    with running_server({SHAPES: shapes}, model_settings={SHAPES: asked}) as (url, _scheduler):
        window = make_window(engine="server", server_url=url, steps=20, resolution=256)
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        assert run(window.start_edit(), timeout=120) is not None
        ran, = shapes.settings
        assert {name: getattr(ran, name) for name in asked} == asked
        assert {name: getattr(window.doc.settings, name) for name in asked} == asked
        assert (window.preferences.steps, window.preferences.resolution) == (20, 256)


def test_on_a_server_the_editing_page_shows_the_users_settings_not_the_local_models(qtbot):
    """The local model (shapes, which sets its own steps and resolution) does not run there."""
    from foi_desktop.dialogs import SettingsDialog

    dialog = SettingsDialog(Preferences(engine="server", server_url="http://127.0.0.1:8765", model="shapes",
                                        steps=20, resolution=256, strength=0.9))
    qtbot.addWidget(dialog)

    def shown():
        return dialog.steps.value(), dialog.resolution.value(), dialog.resolution.isEnabled()

    assert shown() == (20, 256, True)
    dialog.strength.setValue(0.5)  # the user's own change stays through what follows
    dialog.local_button.setChecked(True)
    assert shown() == (50, 64, False) and dialog.strength.value() == 0.5
    dialog.server_button.setChecked(True)
    assert shown() == (20, 256, True) and dialog.strength.value() == 0.5
    assert dialog.changes() == {"strength": 0.5}

# -- the token counter on a server ------------------------------------------------------------
def test_the_token_counter_counts_the_same_on_a_server_as_here_without_a_run(window, make_window, shared_client,
                                                                             tiny_engine, qtbot, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make the cat a tiger")
    qtbot.waitUntil(lambda: window.panel.tokens_label.text().startswith("Tokens "), timeout=60000)
    with running_server({"tiny-random": tiny_engine}) as (url, _scheduler):
        remote = make_window(engine="server", server_url=url)
        remote.open_path(photo_path)
        remote.doc.add_layer("make the cat a tiger")
        label = remote.panel.tokens_label
        qtbot.waitUntil(lambda: label.text() == window.panel.tokens_label.text(), timeout=30000)
        _type_on(qtbot, remote, " and the grass green")
        assert remote.doc.layers[0].text == "make the cat a tiger and the grass green"
        expected = shared_client.count_tokens([Instruction(remote.doc.layers[0].text)])
        qtbot.waitUntil(lambda: label.text() == f"Tokens {expected} / {tiny_engine.info().max_tokens}",
                        timeout=30000)
        assert remote.client.info is None  # counted by the server, with no run and no model here
        for editor in (window, remote):  # one instruction too many: the run's own sentence, here and there
            for number in range(6):
                editor.doc.add_layer(f"make part {number} blue")
        assert window.panel.tokens_label.text() == remote.panel.tokens_label.text() == \
            "7 instructions is too many for one edit: use at most 6."


def test_a_server_that_is_gone_or_silent_leaves_the_counter_empty_and_the_window_responsive(make_window, qtbot,
                                                                                          photo_path):
    server = LoopbackServer({"gate": GateEngine()})
    server.start()
    try:
        window = make_window(engine="server", server_url=server.url)
        window.open_path(photo_path)
        window.doc.add_layer("make it snowy")
        label = window.panel.tokens_label
        qtbot.waitUntil(lambda: label.text() == "Tokens 5 / 77", timeout=30000)  # the gate counts words
    finally:
        server.stop()
    _type_on(qtbot, window, " tonight")
    qtbot.waitUntil(lambda: label.text() == "", timeout=30000)  # gone: no count rather than a wrong one

    with _window_on_a_silent_server(make_window, photo_path) as window:
        started = time.monotonic()
        _type_on(qtbot, window, " tonight")
        qtbot.wait(1000)  # past the pause after which the server is asked
        assert time.monotonic() - started < 3  # the window went on meanwhile
        assert window.doc.layers[0].text == "make it snowy tonight" and window.panel.tokens_label.text() == ""


def test_quitting_never_waits_on_a_server_that_does_not_answer(make_window, qtbot, photo_path, monkeypatch):
    monkeypatch.setattr("foi_desktop.worker.COUNT_TIMEOUT_S", 3.0)  # the count gives up soon after the window
    earlier = set(threading.enumerate())

    def counting() -> list[threading.Thread]:
        """This window's counting threads."""
        return [thread for thread in set(threading.enumerate()) - earlier if thread.name == "foi-token-count"]

    with _window_on_a_silent_server(make_window, photo_path) as window:
        window.doc.modified = False  # no "Save changes?": the closing itself is timed
        qtbot.waitUntil(lambda: bool(counting()), timeout=10000)  # a count waits on the server
        waiting = counting()
        started = time.monotonic()
        window.close()
        assert time.monotonic() - started < 1 and not window.isVisible()
        assert all(thread.daemon for thread in waiting)  # the interpreter's exit does not wait for them either
        # Their answers come late, after the window's objects have gone: dropped, nothing breaks.
        qtbot.waitUntil(lambda: not any(thread.is_alive() for thread in waiting), timeout=10000)
        qtbot.wait(200)


# -- a server that never answers mid-run: quitting and Cancel do not wait for it -----------------
# Where the run waits: connecting (the port takes the connection, never answers), or sending
# the photo (the server says what it runs, then takes the job and never answers).
STAGES = {"connecting": False, "sending the photo": True}


def _run_waiting_on(silent: SilentServer, make_window, qtbot, photo_path):
    """A window on the silent server, its edit under way and waiting on the server."""
    window = make_window(engine="server", server_url=silent.url)
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=3, resolution=64)
    task = window.start_edit()
    if silent.answers_info:
        qtbot.waitUntil(lambda: "POST /v1/jobs HTTP/1.1" in silent.asked, timeout=30000)
    else:
        qtbot.waitUntil(lambda: "connecting…" in window.where_label.text(), timeout=10000)
    qtbot.wait(300)  # well inside the wait
    assert window.jobs.running() is not None
    return window, task


@pytest.mark.parametrize("stage", STAGES)
def test_quitting_mid_run_never_waits_on_a_server_that_does_not_answer(make_window, qtbot, photo_path, stage):
    with SilentServer(answers_info=STAGES[stage]) as silent:
        window, _task = _run_waiting_on(silent, make_window, qtbot, photo_path)
        window.doc.modified = False  # no "Save changes?": the closing itself is timed
        engine_thread = window.client._thread
        started = time.monotonic()
        window.close()
        assert time.monotonic() - started < 1 and not window.isVisible()
        # A daemon, whatever holds it: never the process's exit; here it heard the cancel and ended.
        assert engine_thread.daemon
        qtbot.waitUntil(lambda: not engine_thread.is_alive(), timeout=2000)


QUIT_SCRIPT = """
import asyncio, sys, time
sys.path.insert(0, sys.argv[2])
import qasync
from server_helpers import SilentServer
from foi_desktop.app import create_application
from foi_desktop.preferences import Preferences
from foi_desktop.window import MainWindow
from foi_engine.process import end_process

app = create_application()
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
silent = SilentServer()
window = MainWindow(Preferences(model="tiny-random", engine="server", server_url=silent.url, steps=3, resolution=64))
window.show()
window.open_path(sys.argv[1])
window.doc.add_layer("make it snowy")

async def quit_mid_run():
    window.start_edit()
    while "connecting" not in window.where_label.text():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    window.doc.modified = False
    print("closing", time.time(), flush=True)
    window.close()

closed = asyncio.Event()
app.aboutToQuit.connect(closed.set)
with loop:
    loop.create_task(quit_mid_run())
    loop.run_until_complete(closed.wait())
if sys.argv[3] == "end_process":
    end_process(0)  # as foi_desktop.app.main ends
"""


@pytest.mark.parametrize("ending", ["end_process", "teardown"])
def test_the_editor_quits_at_once_and_cleanly_mid_run_on_a_server_that_does_not_answer(photo_path, ending):
    """The whole program, in a process of its own: closed while connecting to a silent server,
    it ends in well under a second with status 0 (as the app ends it, or through the
    interpreter's own teardown), no Qt thread left to abort it."""
    engine_helpers = str(Path(__file__).resolve().parents[1] / "engine")
    done = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, photo_path, engine_helpers, ending],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    ended = time.time()
    assert done.returncode == 0, done.stderr
    closing = float(done.stdout.split("closing ", 1)[1].split()[0])
    assert ended - closing < 1.5, f"{ended - closing:.2f} s from closing to the end of the process"
    assert "QThread" not in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_cancel_ends_a_run_on_a_server_that_does_not_answer_at_once(make_window, qtbot, run, photo_path, stage):
    with SilentServer(answers_info=STAGES[stage]) as silent:
        window, task = _run_waiting_on(silent, make_window, qtbot, photo_path)
        doc, masks, undo = window.doc, [layer.mask.copy() for layer in window.doc.layers], window.doc.undo_text
        ended = []
        window.jobs.events.state.connect(lambda event: ended.append(event.job.state) if event.job.state.finished
                                         else None)
        started = time.monotonic()
        window.cancel_action.trigger()
        assert run(task, timeout=10) is None
        assert time.monotonic() - started < 1.5
        assert ended == [JobState.CANCELLED] and window.jobs.jobs() == []
        assert window.statusBar().currentMessage() == "Cancelled." and window.failure_notice is None
        assert window.doc is doc and doc.results == [] and doc.undo_text == undo
        assert all(np.array_equal(layer.mask, mask) for layer, mask in zip(doc.layers, masks))
        assert window._load_dialog is None and not window.progress_bar.isVisible()
        if stage == "connecting":  # no longer "connecting…"
            assert window.where_label.text() == f"Runs on server 127.0.0.1:{silent.port} (connects when first needed)"
        else:
            assert window.where_label.text() == f"Runs on server 127.0.0.1:{silent.port} — gate, cpu"
        assert window.edit_action.isEnabled() and not window.cancel_action.isEnabled()
