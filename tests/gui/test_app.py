"""Starting, the model's state, messages instead of tracebacks, settings, recovery,
clipboard, closing mid-run."""

import asyncio
import gc
import os
import time

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage

from foi_desktop import assets
from gui_helpers import answer_settings


def test_starts_without_a_photo_on_the_sample_with_two_instructions(qtbot, loop):
    from foi_desktop.app import create_window, parse_args

    window = create_window(parse_args(["--model", "tiny-random"]))
    qtbot.addWidget(window)
    try:
        assert window.doc is not None and window.doc.size == (600, 400)
        assert [(layer.text, layer.keyword) for layer in window.doc.layers] == list(assets.SAMPLE_INSTRUCTIONS)
        assert len(window.panel.rows) == 2 and window.panel.active_layer_id == window.doc.layers[0].id
        assert not window.doc.modified and not window.doc.can_undo
        # Nothing is loaded until a run needs it; the random model is labelled as such.
        assert window.client.info is None
        assert "loads when first needed" in window.model_label.text()
        assert not window.random_label.isHidden()
        assert window.panel.tokens_label.text() == ""  # its tokenizer is still being read
    finally:
        window.close()
    assert not window.client._thread.is_alive()


def test_the_first_window_fits_a_small_screen(qtbot, loop):
    from PySide6.QtCore import QSize

    from foi_desktop.app import FIRST_SIZE, create_window, first_size, parse_args

    assert first_size(QSize(2560, 1400)) == QSize(*FIRST_SIZE)
    laptop = first_size(QSize(1366, 738))  # 1366 × 768 less a 30 px panel
    assert laptop.width() <= 1366 - 16 and laptop.height() <= 738 - 64
    window = create_window(parse_args(["--model", "tiny-random"]))
    qtbot.addWidget(window)
    try:
        available = window.screen().availableGeometry().size()
        assert window.width() <= max(available.width(), window.minimumSizeHint().width())
        assert window.height() <= max(available.height(), window.minimumSizeHint().height())
    finally:
        window.close()


def test_help_runs_without_a_display():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "foi_desktop.app", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0 and "tiny-random" in out.stdout and "PHOTO" in out.stdout.upper()


def test_model_not_available_says_what_to_do_and_the_app_carries_on(make_window, run, monkeypatch, tmp_path):
    offered = []

    async def not_now(parent, error):
        offered.append(str(error))

    monkeypatch.setattr("foi_desktop.window.ask_model_missing", not_now)
    window = make_window(model=str(tmp_path / "no-model-here"))
    window.open_sample()
    assert run(window.start_find_regions()) is None
    assert len(offered) == 1 and "no-model-here" in offered[0]
    assert "Traceback" not in offered[0]
    # The rest of the app still works: painting, undo.
    layer = window.doc.layers[0]
    window.canvas.active_layer_id = layer.id
    window.canvas.paint_stroke([(100, 100), (140, 120)])
    assert layer.mask.any()
    window.undo()
    assert not layer.mask.any()
    assert window.find_action.isEnabled() or window.task.done()


def _wait_for(loop, condition, timeout=60):
    """Let the loop run (the window's coroutines with it) until condition() holds."""
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)

    loop.run_until_complete(asyncio.wait_for(poll(), timeout))


def _model_dialog(window):
    from foi_desktop.dialogs import ModelMissingDialog

    shown = [d for d in window.findChildren(ModelMissingDialog) if d.isVisible()]
    return shown[0] if shown else None


def test_random_weights_after_a_missing_model_carries_on_with_find_regions(make_window, run, loop, tmp_path):
    window = make_window(model=str(tmp_path / "missing"))
    window.open_sample()
    task = window.start_find_regions()
    _wait_for(loop, lambda: _model_dialog(window) is not None)
    dialog = _model_dialog(window)
    assert window.find_action.isEnabled() is False and not window.cancel_action.isEnabled()
    dialog.random_button.click()
    located = run(task)  # the same Find regions, now on tiny-random: no second click
    assert located is not None and window.doc.layers[0].mask.any()
    assert window.client.choice.model == "tiny-random"
    assert window.client.info.random_weights and not window.random_label.isHidden()
    assert "tiny-random" in window.model_label.text()
    assert _model_dialog(window) is None


def test_the_shapes_model_after_a_missing_model_carries_on_with_the_edit(make_window, run, loop, tmp_path):
    from foi_engine.catalog import SHAPES

    window = make_window(model=str(tmp_path / "missing"), steps=2)
    window.open_sample()
    task = window.start_edit()
    _wait_for(loop, lambda: _model_dialog(window) is not None)
    _model_dialog(window).shapes_button.click()
    entry = run(task)
    assert entry is not None and entry.model_name == SHAPES and window.doc.results == [entry]
    assert window.doc.settings.resolution == 64  # the shapes model's own size


def test_a_chosen_model_folder_is_checked_at_once(qtbot, loop, tmp_path):
    from foi_desktop.dialogs import ModelMissingDialog
    from foi_engine import ModelError
    from foi_engine.catalog import BUNDLED_MODELS

    dialog = ModelMissingDialog(ModelError('The model "timbrooks/instruct-pix2pix" is not downloaded yet.'))
    qtbot.addWidget(dialog)
    dialog.open()
    assert "Why: The model" in dialog.reason.text()
    (tmp_path / "Holiday photos").mkdir()
    dialog.use_folder(str(tmp_path / "Holiday photos"))
    assert dialog.isVisible() and dialog.choice is None  # still there, for another choice
    assert dialog.reason.text() == ("That folder cannot be used: Holiday photos is not a diffusers model folder "
                                    "(it has no model_index.json).")
    dialog.use_folder(str(BUNDLED_MODELS["shapes"]))
    assert not dialog.isVisible() and dialog.result() == dialog.DialogCode.Accepted
    assert dialog.choice == str(BUNDLED_MODELS["shapes"])


def test_the_model_dialog_is_one_paragraph_that_offers_shapes_and_random_weights(qtbot):
    from PySide6.QtWidgets import QLabel, QPushButton

    from foi_desktop.dialogs import MODEL_MISSING_TEXT, ModelMissingDialog
    from foi_engine import ModelError

    dialog = ModelMissingDialog(ModelError("There is no folder /models/ip2p: check the path."))
    qtbot.addWidget(dialog)
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert texts == [MODEL_MISSING_TEXT, "Why: There is no folder /models/ip2p: check the path."]
    assert "\n" not in MODEL_MISSING_TEXT and "shapes model" in MODEL_MISSING_TEXT
    assert [button.text() for button in dialog.findChildren(QPushButton)] == [
        "Choose Model Folder…", "Use Shapes Model", "Use Random Weights", "Not Now"]


def test_mistakes_become_messages_not_tracebacks(window, run, errors, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("")  # an empty instruction
    assert window.start_edit() is None and window.jobs.jobs() == []  # said at once, nothing queued
    assert len(errors) == 1 and "empty" in errors[0][1] and "Traceback" not in errors[0][1]
    assert window.doc.results == []
    assert not window.open_path(os.path.join(os.path.dirname(photo_path), "missing.jpg"))
    assert len(errors) == 2 and "no such file" in errors[1][1]


def test_token_counter_turns_red_past_the_limit(window, shared_client, qtbot):
    window.open_sample()
    window.panel.set_token_counter(shared_client.count_tokens, shared_client.info.max_tokens)
    label = window.panel.tokens_label
    assert label.text().startswith("Tokens ") and label.property("over") == "false"
    row = window.panel.rows[window.doc.layers[0].id]
    qtbot.keyClicks(row.text_edit, " and" + " also a very long description" * 12)
    assert label.property("over") == "true" and "too long" in label.text()


def test_settings_persist_between_runs(qapp):
    from foi_desktop.preferences import Preferences, load_preferences, save_preferences

    prefs = Preferences(model="tiny-random", steps=12, strength=0.6, image_guidance=1.2, text_guidance=6.0,
                        gamma=2, resolution=256, fixed_seed=True, seed=77, device="cpu", precision="float32")
    prefs.add_recent("/photos/a.jpg")
    save_preferences(prefs)
    loaded = load_preferences()
    assert loaded == prefs
    assert loaded.edit_settings().resolution == 256


def test_settings_dialog_refuses_what_the_engine_refuses(qtbot, loop):
    from foi_desktop.dialogs import SettingsDialog
    from foi_desktop.preferences import Preferences

    dialog = SettingsDialog(Preferences())
    qtbot.addWidget(dialog)
    dialog.steps.setValue(1)
    dialog.strength.setValue(0.5)  # 1 step × 0.5 = no step would run
    dialog.accept()
    assert dialog.result() == 0 and "no step would run" in dialog.error_label.text()
    dialog.steps.setValue(20)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted


def test_settings_show_the_model_in_force_and_ok_changes_nothing(make_window, qtbot):
    import dataclasses

    from foi_engine.catalog import DEFAULT_MODEL, SHAPES

    # As `--model shapes` starts it, over stored preferences of InstructPix2Pix at 512 px.
    window = make_window(model_override=SHAPES, model=DEFAULT_MODEL, steps=100, resolution=512)
    window.open_sample()
    stored, settings, choice = dataclasses.asdict(window.preferences), window.doc.settings, window.client.choice
    shown = {}

    def look(dialog):
        shown.update(model=dialog.model(), steps=dialog.steps.value(), resolution=dialog.resolution.value(),
                     gamma=dialog.gamma.value(), locked=not dialog.resolution.isEnabled())

    answer_settings(qtbot, window, look)
    assert shown == {"model": SHAPES, "steps": 50, "resolution": 64, "gamma": 1, "locked": True}
    assert window.client.choice is choice and window.doc.settings == settings and not window.doc.modified
    assert dataclasses.asdict(window.preferences) == stored
    # A change made there changes that alone: the model and its own settings stay.
    answer_settings(qtbot, window, lambda dialog: dialog.strength.setValue(0.8))
    assert window.doc.settings == dataclasses.replace(settings, strength=0.8)
    assert window.client.choice is choice and window.preferences.resolution == 512


def test_autosave_is_offered_back_after_a_crash(make_window, shared_client, monkeypatch, run):
    crashed = make_window(shared_client)
    crashed.open_sample()
    layer = crashed.doc.layers[1]
    crashed.canvas.active_layer_id = layer.id
    crashed.canvas.paint_stroke([(300, 200), (350, 220)])
    mask = layer.mask.copy()
    crashed.autosave()
    assert os.path.isfile(crashed.recovery.path_for(crashed.doc)), "no recovery copy written"
    # While the first editor runs, a second one does not offer its live work.
    monkeypatch.setattr("foi_desktop.window.ask_recovery", lambda *a: "restore")
    second = make_window(shared_client)
    assert not second.offer_recovery() and second.recovery.pending() == []
    # A crash: the window never closes cleanly, and the system drops its locks. The next
    # start offers the work back.
    crashed.recovery.close()
    restarted = make_window(shared_client)
    assert run(restarted.offer_recovery())
    assert restarted.doc.project_path is None  # restored work is untitled until the user saves it
    assert np.array_equal(restarted.doc.layers[1].mask, mask)
    assert restarted.doc.modified
    crashed.doc.modified = False  # the crashed one "never existed"
    restarted.doc.modified = False
    restarted.close()
    assert not restarted.recovery.pending() or all(i.path != restarted.recovery.path_for(restarted.doc)
                                                  for i in restarted.recovery.pending())


def test_paste_and_drop_open_photos(window, photo_path, qtbot):
    image = QImage(320, 200, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.darkCyan)
    QGuiApplication.clipboard().setImage(image)
    window.paste_photo()
    assert window.doc.size == (320, 200)
    assert window.doc.photo.getpixel((10, 10)) == (0, 128, 128)

    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(photo_path)])
    window.doc.modified = False
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QDropEvent

    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.doc.size == (451, 300), timeout=5000)


def test_closing_mid_run_cancels_and_exits_cleanly(make_window, qtbot, loop):
    from foi_engine import EditSettings

    window = make_window()  # its own worker thread
    window.open_sample()
    window.doc.settings = EditSettings(steps=400, strength=1.0, resolution=128)
    steps = []
    window.client.progress.connect(lambda _job, step, total, preview: steps.append(step))
    finished = []  # counted in the engine's thread, as each step ends
    window.client._worker.progress.connect(lambda _id, step, _total, _preview: finished.append(step),
                                           Qt.ConnectionType.DirectConnection)
    task = window.start_edit()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=120000)
    window.doc.modified = False
    before = len(finished)
    started = time.monotonic()
    window.close()
    assert not window.client._thread.is_alive()
    # Quitting waits for the step under way to stop (and one that ended meanwhile), no more.
    assert len(finished) <= before + 2
    assert time.monotonic() - started < 30
    loop.run_until_complete(_settle(task))
    assert task.done()
    assert steps[-1] < 399


def test_the_app_ends_its_process_without_the_interpreters_teardown(tmp_path):
    """After the window has closed, `end_process` runs the exit handlers (PySide's ends Qt,
    logging's flushes the log) and exits at once, skipping seconds of freeing torch's objects
    (bench/bench_quit.py measures it)."""
    import subprocess
    import sys

    script = f"""
import atexit
from PySide6.QtWidgets import QApplication
from foi_engine.process import end_process
app = QApplication([])
app.destroyed.connect(lambda: print("qt ended", flush=True))
atexit.register(lambda: open({str(tmp_path / "handler-ran")!r}, "w").close())
end_process(0)
print("not reached")
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["qt", "ended"] and (tmp_path / "handler-ran").exists()


async def _settle(task):
    """Wait for a run the window cancelled: cancelled is its one acceptable end (any other
    error fails the test)."""
    import asyncio

    try:
        await asyncio.wait_for(task, 10)
    except asyncio.CancelledError:
        pass


def test_other_export_kinds(window, run, tmp_path):
    from PIL import Image

    from foi_engine import EditSettings

    window.open_sample()
    window.doc.settings = EditSettings(steps=4, resolution=64)
    entry = run(window.start_edit())
    for kind, suffix in (("psd", ".psd"), ("png", ".png"), ("full", ".jpg")):
        written = window.export_to(str(tmp_path / f"out{suffix}"), entry, kind)
        assert written and all(os.path.getsize(p) > 0 for p in written), kind
        if kind == "full":
            assert Image.open(written[0]).size == window.doc.size
        if kind == "png":
            assert len(written) == 1 + len(window.doc.layers)


def test_shapes_model_opens_a_generated_scene_and_runs_at_its_size(make_window, run):
    from foi_engine.shapes.data import demo_scene

    window = make_window(model="shapes")
    window.open_sample()
    pixels, instructions = demo_scene()
    assert window.doc.size == (64, 64) and np.array_equal(np.asarray(window.doc.photo), pixels)
    assert [(layer.text, layer.keyword) for layer in window.doc.layers] == instructions
    # The model's own settings (foi_settings.json) over the user's 512 px.
    assert (window.doc.settings.resolution, window.doc.settings.grounding_factor) == (64, 1)
    assert run(window.start_find_regions()) is not None
    assert all(layer.mask.shape == (64, 64) and layer.mask.any() for layer in window.doc.layers)
    entry = run(window.start_edit())
    assert entry is not None and entry.image.size == (64, 64)
    assert not window.client.info.random_weights and "shapes" in window.model_label.text()


def test_missing_qt_system_libraries_are_named_with_the_command_that_installs_them(monkeypatch, capsys):
    import ctypes.util

    from foi_desktop import app

    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else f"lib{name}.so")
    assert app.main([]) == 1
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-cursor0" in err and "Traceback" not in err


def test_the_collector_is_kept_off_the_loaded_libraries_once(window, monkeypatch):
    """Once the model's libraries are in, a full garbage collection would scan their ~400 000
    objects and stall the window: they are frozen out of its sight, once (a server's counts
    come again and again; what is frozen is never collected)."""
    monkeypatch.setattr("foi_desktop.worker._settled", False)
    gc.unfreeze()
    try:
        window.client.counterReady.emit(77)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        gc.collect()
        assert gc.get_freeze_count() > frozen / 2  # a collection does not bring them back (refcounts free a few)
        garbage = [[] for _ in range(1000)]
        window.client.counterReady.emit(77)
        assert gc.get_freeze_count() < frozen + len(garbage)  # the session's own objects stay collectable
    finally:
        gc.unfreeze()
