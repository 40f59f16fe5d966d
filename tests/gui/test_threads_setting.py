"""The editor's CPU threads setting: applied in the engine's thread, without reloading the model."""

import torch

from foi_desktop.worker import EngineWorker, ModelChoice, RequestKind, _Request


def configure(worker, choice):
    worker.handle(_Request(0, RequestKind.CONFIGURE, (choice,)))


def test_a_thread_change_keeps_the_model_and_takes_effect():
    before = torch.get_num_threads()
    worker, loaded = EngineWorker(), object()
    try:
        configure(worker, ModelChoice("tiny-random", "cpu"))
        worker._engine = loaded  # stands for a model loaded by a first run
        configure(worker, ModelChoice("tiny-random", "cpu", threads=1))
        assert worker._engine is loaded and torch.get_num_threads() == 1
        configure(worker, ModelChoice("shapes", "cpu", threads=1))  # another model: loaded afresh
        assert worker._engine is None
    finally:
        torch.set_num_threads(before)


def test_the_settings_dialog_offers_automatic_threads(qtbot):
    from foi_desktop.dialogs import SettingsDialog
    from foi_desktop.preferences import Preferences

    prefs = Preferences(threads=0)
    dialog = SettingsDialog(prefs)
    qtbot.addWidget(dialog)
    assert dialog.threads.value() == 0 and dialog.threads.text().startswith("Automatic (")
    dialog.threads.setValue(2)
    dialog.apply_to(prefs)
    assert prefs.threads == 2


def test_every_run_setting_explains_itself(qtbot):
    from foi_desktop.dialogs import RUN_SETTING_HELP, SettingsDialog
    from foi_desktop.preferences import Preferences

    dialog = SettingsDialog(Preferences(model="tiny-random"))
    qtbot.addWidget(dialog)
    for name, box in dialog._run_boxes().items():
        assert box.toolTip().startswith(RUN_SETTING_HELP[name]) and len(RUN_SETTING_HELP[name]) > 40
