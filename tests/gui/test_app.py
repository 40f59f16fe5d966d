"""Starting, the model's state, messages instead of tracebacks, settings, recovery,
clipboard, closing mid-run."""

import os
import time

import numpy as np
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QGuiApplication, QImage

from foi_desktop import assets


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
    assert window.client._thread.isFinished()


def test_help_runs_without_a_display():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "foi_desktop.app", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0 and "tiny-random" in out.stdout and "PHOTO" in out.stdout.upper()


def test_model_not_available_says_what_to_do_and_the_app_carries_on(make_window, run, monkeypatch, tmp_path):
    offered = []
    monkeypatch.setattr("foi_desktop.window.ask_model_missing", lambda parent, error: offered.append(str(error)))
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


def test_choosing_tiny_random_after_a_missing_model_runs(make_window, run, monkeypatch, tmp_path):
    monkeypatch.setattr("foi_desktop.window.ask_model_missing", lambda parent, error: "tiny-random")
    window = make_window(model=str(tmp_path / "missing"))
    window.open_sample()
    run(window.start_find_regions())
    assert window.client.choice.model == "tiny-random"
    assert run(window.start_find_regions()) is not None
    assert window.client.info.random_weights and not window.random_label.isHidden()
    assert "tiny-random" in window.model_label.text()
    assert window.doc.layers[0].mask.any()


def test_mistakes_become_messages_not_tracebacks(window, run, errors, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("")  # an empty instruction
    assert run(window.start_edit()) is None
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


def _answer_settings(qtbot, window, answer):
    """Open Settings from the window; answer(dialog) runs on the shown dialog, which then gets OK."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    def respond():
        dialog = QApplication.activeModalWidget()
        answer(dialog)
        qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, respond)
    window.open_settings()


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
                     locked=not dialog.resolution.isEnabled())

    _answer_settings(qtbot, window, look)
    assert shown == {"model": SHAPES, "steps": 50, "resolution": 64, "locked": True}
    assert window.client.choice is choice and window.doc.settings == settings and not window.doc.modified
    assert dataclasses.asdict(window.preferences) == stored
    # A change made there changes that alone: the model and its own settings stay.
    _answer_settings(qtbot, window, lambda dialog: dialog.strength.setValue(0.8))
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
    window.client.progress.connect(lambda step, total, preview: steps.append(step))
    task = window.start_edit()
    qtbot.waitUntil(lambda: len(steps) >= 1, timeout=120000)
    window.doc.modified = False
    started = time.monotonic()
    window.close()
    assert window.client._thread.isFinished()
    assert time.monotonic() - started < 30
    loop.run_until_complete(_settle(task))
    assert task.done()
    assert steps[-1] < 399


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
