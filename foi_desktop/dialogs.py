"""The app's dialogs: settings (where runs happen, the model, the run settings), export, "the
model is not here", and messages for the user."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QRadioButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from foi_engine import EditSettings, FoiError, threads
from foi_engine.catalog import (DEFAULT_MODEL, SETTINGS_FILE, SHAPES, TINY_RANDOM, check_folder, is_server_url,
                                model_settings)
from foi_engine.errors import report
from foi_engine.layered import KINDS
from foi_engine.remote import plain_http_warning
from foi_engine.settings import RANGES

from .preferences import Preferences
from .worker import ModelChoice, check_server, model_settings_for

log = logging.getLogger(__name__)

MODEL_CHOICES = (
    (DEFAULT_MODEL, "InstructPix2Pix (timbrooks/instruct-pix2pix, a few GB, downloaded once)"),
    (SHAPES, "shapes: small built-in model for 64 px scenes of coloured shapes (a demo, not for photos)"),
    (TINY_RANDOM, "tiny-random: random weights, for trying the app (output is noise)"),
)


def report_error(parent, error: BaseException, doing: str | None = None) -> None:
    """Show any error the one way (foi_engine.errors.report): a title — what was being done,
    or the error's own — and its one message for a photographer, never a traceback. What no
    check foresaw goes to the log with its traceback; the message says the log has it."""
    if not isinstance(error, FoiError):
        log.error("%s", doing or "Unexpected error", exc_info=error)
    shown = report(error, doing)
    QMessageBox.warning(parent, shown.title, shown.message)


class FailureNotice(QMessageBox):
    """What went wrong with a job, said without waiting for OK (report_error waits): the jobs
    queued behind it go on meanwhile. One box: a later failure replaces the text of one not
    yet read, so failures never pile up."""

    def __init__(self, parent=None):
        super().__init__(QMessageBox.Icon.Warning, "", "", QMessageBox.StandardButton.Ok, parent)
        self.setWindowModality(Qt.WindowModality.NonModal)

    def say(self, title: str, message: str) -> None:
        self.setWindowTitle(title)
        self.setText(message)
        self.show()
        self.raise_()


# What each run setting means, in plain words (the dialog's tooltips).
RUN_SETTING_HELP = {
    "steps": "How many small steps the picture is made in. More is finer and slower; 20–30 is often enough.",
    "strength": "How much of the photo is re-imagined: 1 starts from noise, lower keeps more of the photo. "
                "Steps × strength steps actually run.",
    "image_guidance": "s_I — how closely the result sticks to your photo. Higher keeps more of it; "
                      "lower lets the instruction change more.",
    "text_guidance": "s_T — how strongly the result follows the instruction's words. Higher follows them more "
                     "literally, sometimes at the cost of a natural look.",
    "gamma": "γ — how sharply a found region's edge is drawn: each step squares the attention map, "
             "so higher gives tighter, crisper regions.",
    "resolution": "The size, in pixels, of the longer side the model works at. Larger is finer and much slower.",
}


class SettingsDialog(QDialog):
    """Two pages: Engine (where runs happen: this computer, with its model, device, precision
    and threads, or a `foi serve` server, with its address, token and model) and Editing (the run
    settings, the seed). preferences: the user's own choices; current: what a run uses now,
    shown when given (the model of --model, the document's run settings with the model's own).
    `changes()` is what the user changed."""

    def __init__(self, preferences: Preferences, parent=None, current: Preferences | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._preferences = preferences
        shown = current or preferences
        self.local_button = QRadioButton("This computer", checked=shown.engine == "local")
        self.server_button = QRadioButton("A server (foi serve)", checked=shown.engine == "server")
        self.server_url = QLineEdit(shown.server_url, placeholderText="http://gpu-box:8765")
        self.server_token = QLineEdit(shown.server_token, echoMode=QLineEdit.EchoMode.Password,
                                      placeholderText="the token foi serve printed (none for this computer's own)")
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        self.test_label = QLabel(objectName="hint", wordWrap=True)
        self.http_warning = QLabel(objectName="hint", wordWrap=True)
        self.server_model_box = QComboBox()
        self.server_model_box.setToolTip("The model the server runs your edits with. Test connection lists the "
                                         "ones it offers.")
        self._list_server_models(shown.server_model)
        for edit in (self.server_url, self.server_token):
            edit.textChanged.connect(self._server_changed)
        self.model_box = QComboBox(editable=True)
        for model, label in MODEL_CHOICES:
            self.model_box.addItem(label, model)
        self._set_model_text(shown.model)
        browse = QPushButton("Folder…")
        browse.clicked.connect(self._choose_folder)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(browse)
        self.device_box = QComboBox()
        for value, label in (("auto", "Automatic (graphics card if there is one)"), ("cpu", "CPU"),
                             ("cuda", "NVIDIA graphics card (cuda)"), ("mps", "Apple graphics (mps)")):
            self.device_box.addItem(label, value)
        self.device_box.setCurrentIndex(max(0, self.device_box.findData(shown.device)))
        self.precision_box = QComboBox()
        for value, label in (("auto", "Automatic (half on a graphics card, full on CPU)"),
                             ("float32", "Full (float32)"), ("float16", "Half (float16, graphics cards only)")):
            self.precision_box.addItem(label, value)
        self.precision_box.setCurrentIndex(max(0, self.precision_box.findData(shown.precision)))
        self.threads = QSpinBox(minimum=0, maximum=max(threads.cores() * 2, shown.threads),
                                value=shown.threads)
        self.threads.setSpecialValueText(f"Automatic ({threads.choose(0, leave_free=1).threads})")
        self.threads.setToolTip("How many processor cores compute an edit when there is no graphics card. "
                                "Automatic leaves one core for this window so it stays responsive.")
        self.steps = QSpinBox(minimum=RANGES["steps"][0], maximum=RANGES["steps"][1], value=shown.steps)
        self.strength = QDoubleSpinBox(minimum=0.05, maximum=1.0, singleStep=0.05, value=shown.strength)
        self.image_guidance = QDoubleSpinBox(minimum=RANGES["image_guidance"][0], maximum=RANGES["image_guidance"][1],
                                             singleStep=0.1, value=shown.image_guidance)
        self.text_guidance = QDoubleSpinBox(minimum=RANGES["text_guidance"][0], maximum=RANGES["text_guidance"][1],
                                            singleStep=0.5, value=shown.text_guidance)
        self.gamma = QSpinBox(minimum=RANGES["gamma"][0], maximum=RANGES["gamma"][1], value=shown.gamma)
        self.resolution = QSpinBox(minimum=RANGES["resolution"][0], maximum=RANGES["resolution"][1], singleStep=64,
                                   value=shown.resolution)
        self.fixed_seed = QCheckBox("Fixed seed (same result every run)", checked=shown.fixed_seed)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=shown.seed)
        self.seed.setEnabled(shown.fixed_seed)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.fixed_seed)
        seed_row.addWidget(self.seed)

        # One label column for both ways, so their boxes line up.
        labels = ("Model", "Device", "Precision", "CPU threads", "Address", "Token")
        width = max(self.fontMetrics().horizontalAdvance(label) for label in labels)
        self.local_rows = self._form(("Model", model_row), ("Device", self.device_box),
                                     ("Precision", self.precision_box), ("CPU threads", self.threads),
                                     label_width=width)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        self.server_rows = self._form(("Address", self.server_url), ("Token", self.server_token),
                                      ("Model", self.server_model_box), ("", test_row), label_width=width)
        engine = QVBoxLayout()
        for button, rows in ((self.local_button, self.local_rows), (self.server_button, self.server_rows)):
            engine.addWidget(button)
            rows.layout().setContentsMargins(3 * self.fontMetrics().averageCharWidth(), 0, 0, 0)  # under its button
            engine.addWidget(rows)
            button.toggled.connect(self._engine_changed)
        engine.addStretch(1)
        editing = self._form(("Steps", self.steps), ("Strength", self.strength),
                             ("Image guidance s_I", self.image_guidance), ("Text guidance s_T", self.text_guidance),
                             ("Focus γ", self.gamma), ("Resolution (px)", self.resolution), ("Seed", seed_row))
        self.pages = QTabWidget()
        self.pages.addTab(self._page(engine), "Engine")
        self.pages.addTab(editing, "Editing")
        self.error_label = QLabel(objectName="hint", wordWrap=True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._defaults)
        # The server's answers go under the pages, not on one: a tab's page does not grow for
        # word-wrapped lines (Qt's stacked pages ignore height-for-width), the dialog does.
        self.engine_notes = QWidget()
        notes = QVBoxLayout(self.engine_notes)
        notes.setContentsMargins(0, 0, 0, 0)
        notes.addWidget(self.test_label)
        notes.addWidget(self.http_warning)
        self.pages.currentChanged.connect(lambda page: self.engine_notes.setVisible(page == 0))
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        layout.addWidget(self.engine_notes)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._shown_asked = self._asked()
        self._lock_model_settings(self._shown_asked)
        self.model_box.currentTextChanged.connect(self._model_changed)
        self.server_model_box.currentIndexChanged.connect(self._model_changed)
        self._engine_changed()
        self._server_changed()
        self._opened = self._values()

    def _form(self, *rows, label_width: int = 0) -> QWidget:
        form = QFormLayout()
        # Room between a label and its box: a last letter against the box's border reads as cut off.
        form.setHorizontalSpacing(2 * self.fontMetrics().averageCharWidth())
        for label, field in rows:
            form.addRow(QLabel(label, minimumWidth=label_width), field)
        return self._page(form)

    @staticmethod
    def _page(layout) -> QWidget:
        page = QWidget()
        page.setLayout(layout)
        return page

    def _engine_changed(self) -> None:
        self.local_rows.setEnabled(self.local_button.isChecked())
        self.server_rows.setEnabled(self.server_button.isChecked())
        self._show_asked(keep_users=True)

    def _server_changed(self) -> None:
        """Another address or token: an earlier test's answer no longer holds (the model
        chosen stays, alone in its list until the next test)."""
        warning = plain_http_warning(self.server_url.text(), self.server_token.text().strip() or None)
        self._say(self.http_warning, f"Note: {warning}" if warning else "")
        self._say(self.test_label, "")
        self._list_server_models(self.server_model())
        self._show_asked(keep_users=True)  # what this server said of its model, if it has

    def server_model(self) -> str:
        """The server's model chosen: a name from its list, "" for its default (its first)."""
        return self.server_model_box.currentData() or ""

    def _list_server_models(self, chosen: str, offered: tuple[str, ...] = ()) -> None:
        """The models a server offers, `chosen` selected ("": the server's default, its first);
        before a test, the choice alone. A choice the server does not offer stays, said so:
        only the user changes it."""
        box = self.server_model_box
        box.blockSignals(True)  # the same choice listed anew: no other model chosen
        box.clear()
        if not offered:
            box.addItem(chosen or "The server's default model", chosen)
        for number, name in enumerate(offered):
            default = number == 0 and chosen != name
            box.addItem(f"{name} (the server's default)" if default else name, "" if default else name)
        if offered and chosen and chosen not in offered:
            box.addItem(f"{chosen} (not offered by this server)", chosen)
        box.setCurrentIndex(box.findData(chosen))
        box.blockSignals(False)

    def _say(self, label: QLabel, text: str) -> None:
        """A note under the pages, or none (no blank line either); the dialog grows for its
        lines: a dialog on screen does not grow by itself (measured once Qt has laid them out)."""
        label.setText(text)
        label.setVisible(bool(text))

        def grow():
            needed = self.layout().totalHeightForWidth(self.width())
            if self.isVisible() and needed > self.height():
                self.resize(self.width(), needed)

        QTimer.singleShot(0, self, grow)

    def test_connection(self) -> asyncio.Future:
        """Ask the server who it is, in a worker thread (a slow network never freezes the
        window); the answer shows under the button. Returns the question's future."""
        url, token = self.server_url.text().strip(), self.server_token.text().strip() or None
        self.test_button.setEnabled(False)
        self._say(self.test_label, f"Asking {url}…")
        asked = asyncio.get_event_loop().run_in_executor(None, check_server, url, token)
        asked.add_done_callback(lambda answer: self._tested(answer, url, token))
        return asked

    def _tested(self, asked: asyncio.Future, url: str, token: str | None) -> None:
        self.test_button.setEnabled(True)
        if (url, token) != (self.server_url.text().strip(), self.server_token.text().strip() or None):
            return  # the user has typed another address or token since: this answer is not about it
        try:
            answer = asked.result()
        except Exception as error:  # noqa: BLE001 - every answer is a line for the user
            self._say(self.test_label, report(error).message)
            return
        chosen, offered, info = self.server_model(), answer.models, answer.info
        self._list_server_models(chosen, offered)
        self._show_asked(keep_users=True)  # the chosen model's own settings, now said
        if chosen and chosen not in offered:
            self._say(self.test_label, f"Connected, but the server does not offer the model {chosen!r}: it offers "
                                       f"{', '.join(offered)}. Choose one of those.")
        else:
            models = f"model {offered[0]}" if len(offered) == 1 else f"models {', '.join(offered)}"
            self._say(self.test_label, f"Connected: {models} on {info.device}, FoI Studio {info.version}.")

    def _set_model_text(self, model: str) -> None:
        index = self.model_box.findData(model)
        if index >= 0:
            self.model_box.setCurrentIndex(index)
        else:
            self.model_box.setEditText(model)

    def model(self) -> str:
        text = self.model_box.currentText().strip()
        index = self.model_box.findText(text)
        return self.model_box.itemData(index) if index >= 0 else text

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a downloaded InstructPix2Pix model folder")
        if folder:
            self.model_box.setEditText(folder)

    def _run_boxes(self) -> dict:
        return {"steps": self.steps, "strength": self.strength, "image_guidance": self.image_guidance,
                "text_guidance": self.text_guidance, "gamma": self.gamma, "resolution": self.resolution}

    def _asked(self) -> dict:
        """The run settings the chosen model sets itself (its foi_settings.json; a server's
        model's once the server has said), as the window runs them."""
        if self.server_button.isChecked():
            url = self.server_url.text().strip()
            choice = ModelChoice(url, server_model=self.server_model() or None) if is_server_url(url) else None
        else:
            choice = ModelChoice(self.model())
        try:
            return model_settings_for(choice) if choice is not None else {}
        except FoiError:
            return {}  # a broken file is reported when the model loads

    def _lock_model_settings(self, asked: dict) -> None:
        for name, box in self._run_boxes().items():
            box.setEnabled(name not in asked)
            told = f"\n\nSet by the chosen model (its {SETTINGS_FILE})." if name in asked else ""
            box.setToolTip(RUN_SETTING_HELP[name] + told)

    def _model_changed(self) -> None:
        self._show_asked()

    def _show_asked(self, keep_users: bool = False) -> None:
        """Show what a run will use: the model's own settings, else the user's. Another model
        brings all the user's back; another engine (keep_users) only the boxes whose model
        setting came or went, the others keep what they show."""
        asked = self._asked()
        for name, box in self._run_boxes().items():
            if not keep_users or asked.get(name) != self._shown_asked.get(name):
                box.setValue(asked.get(name, getattr(self._preferences, name)))
        self._shown_asked = asked
        self._lock_model_settings(asked)

    def _defaults(self) -> None:
        defaults = EditSettings()
        for name, box in self._run_boxes().items():
            if box.isEnabled():
                box.setValue(getattr(defaults, name))

    def apply_to(self, preferences: Preferences) -> None:
        preferences.engine = "server" if self.server_button.isChecked() else "local"
        preferences.server_url = self.server_url.text().strip()
        preferences.server_token = self.server_token.text().strip()
        preferences.server_model = self.server_model()
        preferences.model = self.model() or DEFAULT_MODEL
        preferences.device = self.device_box.currentData()
        preferences.precision = self.precision_box.currentData()
        preferences.threads = self.threads.value()
        preferences.steps = self.steps.value()
        preferences.strength = round(self.strength.value(), 2)
        preferences.image_guidance = round(self.image_guidance.value(), 2)
        preferences.text_guidance = round(self.text_guidance.value(), 2)
        preferences.gamma = self.gamma.value()
        preferences.resolution = self.resolution.value()
        preferences.fixed_seed = self.fixed_seed.isChecked()
        preferences.seed = self.seed.value()

    def _values(self) -> Preferences:
        values = dataclasses.replace(self._preferences)
        self.apply_to(values)
        return values

    def changes(self) -> dict:
        """What the user changed since the dialog opened, by Preferences field; not the values
        the chosen model sets itself (they are not the user's to keep)."""
        before, after, asked = self._opened, self._values(), self._asked()
        return {item.name: getattr(after, item.name) for item in dataclasses.fields(Preferences)
                if getattr(after, item.name) != getattr(before, item.name) and item.name not in asked}

    def accept(self) -> None:
        """Refuse settings the engine would refuse, with its own sentence."""
        trial = Preferences()
        self.apply_to(trial)
        if trial.engine == "server" and not is_server_url(trial.server_url):
            self.pages.setCurrentIndex(0)
            self.error_label.setText("Write the server's address as http://host:port or https://host:port.")
            return
        try:
            trial.edit_settings()
        except FoiError as error:
            self.pages.setCurrentIndex(1)
            self.error_label.setText(str(error))
            return
        super().accept()


FORMAT_NAMES = {".jpg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".webp": "WebP"}
FULL_FILTERS = {".jpg": "JPEG (*.jpg *.jpeg)", ".png": "PNG (*.png)", ".tif": "TIFF (*.tif *.tiff)",
                ".webp": "WebP (*.webp)"}


def _pixels(size: tuple[int, int]) -> str:
    return f"{size[0]} × {size[1]} px"


class ExportDialog(QDialog):
    """Choose the kind and the file; the document writes it. Each kind says the size it
    writes: the result's working size for the PNG, the photo's for the full-resolution photo,
    which takes the photo's own format (full_suffix: `Document.full_export_suffix`)."""

    def __init__(self, suggested_stem: str, folder: str, result_size: tuple[int, int], photo_size: tuple[int, int],
                 full_suffix: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._full_suffix = full_suffix
        labels = {
            "ora": "OpenRaster (.ora): layers for GIMP and Krita",
            "psd": "Photoshop (.psd): layers",
            "png": f"Result as PNG ({_pixels(result_size)}), plus one mask PNG per instruction",
            "full": f"Full-resolution photo ({_pixels(photo_size)}): the result as shown, "
                    f"as {FORMAT_NAMES[full_suffix]} like the original",
        }
        self._group = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Write the chosen result as:"))
        for number, kind in enumerate(KINDS):
            button = QRadioButton(labels[kind], checked=number == 0)
            self._group.addButton(button, number)
            layout.addWidget(button)
        self.path_edit = QLineEdit(os.path.join(folder, suggested_stem + ".ora"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        layout.addLayout(path_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._group.idToggled.connect(lambda _id, on: on and self._kind_changed())
        self._kind_changed()

    @property
    def kind(self) -> str:
        return KINDS[self._group.checkedId()]

    def label(self, kind: str) -> str:
        return self._group.button(KINDS.index(kind)).text()

    def set_kind(self, kind: str) -> None:
        self._group.button(KINDS.index(kind)).setChecked(True)

    @property
    def path(self) -> str:
        return self.path_edit.text().strip()

    def _suffix(self) -> str:
        return self._full_suffix if self.kind == "full" else f".{self.kind}"

    def _kind_changed(self) -> None:
        stem, old = os.path.splitext(self.path)
        if old.lower() in (".ora", ".psd", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp") or not old:
            self.path_edit.setText(stem + self._suffix())

    def _browse(self) -> None:
        # The photo's own format first, the others after it.
        full = [FULL_FILTERS[self._full_suffix]] + [f for s, f in FULL_FILTERS.items() if s != self._full_suffix]
        filters = {"ora": "OpenRaster (*.ora)", "psd": "Photoshop (*.psd)", "png": "PNG (*.png)",
                   "full": ";;".join(full)}[self.kind]
        path, _filter = QFileDialog.getSaveFileName(self, "Export", self.path, filters)
        if path:
            self.path_edit.setText(path)


MODEL_MISSING_TEXT = (
    "Finding regions and editing need an InstructPix2Pix model, and the one chosen is not on this computer. "
    "Connect to the internet once to download it (a few GB), or choose a folder that already holds it. "
    "Until then you can try the small built-in shapes model (made for simple scenes of coloured shapes, not "
    "photos) or random weights (every step works, but the result is noise). Opening photos, writing "
    "instructions, painting masks and saving projects need no model.")


class ModelMissingDialog(QDialog):
    """The chosen model cannot be loaded (offline, not downloaded, a bad folder): what to do, in
    one paragraph, the reason below it, and the ways on. `choice` is the model to use instead
    (a folder that passed the check, SHAPES or TINY_RANDOM), None for Not Now."""

    def __init__(self, error, parent=None):
        super().__init__(parent)
        self.setWindowTitle("The editing model is not on this computer")
        self.choice: str | None = None
        self._folder_dialog: QFileDialog | None = None
        self.reason = QLabel(f"Why: {error}", objectName="hint", wordWrap=True)
        self.folder_button = QPushButton("Choose Model Folder…")
        self.shapes_button = QPushButton("Use Shapes Model")
        self.shapes_button.setToolTip("The built-in shapes model: small and quick, made for scenes of coloured "
                                      "shapes, not for photos")
        self.random_button = QPushButton("Use Random Weights")
        self.random_button.setToolTip("tiny-random: the whole flow works, but the edits are meaningless noise")
        not_now = QPushButton("Not Now")
        self.folder_button.clicked.connect(self._choose_folder)
        self.shapes_button.clicked.connect(lambda: self._use(SHAPES))
        self.random_button.clicked.connect(lambda: self._use(TINY_RANDOM))
        not_now.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.folder_button, self.shapes_button, self.random_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(not_now)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(MODEL_MISSING_TEXT, wordWrap=True))
        layout.addWidget(self.reason)
        layout.addLayout(buttons)
        self.setMinimumWidth(640)

    def _use(self, model: str) -> None:
        self.choice = model
        self.accept()

    def _choose_folder(self) -> None:
        """A folder dialog opened, not exec()'d: no event loop inside the one awaiting this."""
        if self._folder_dialog is None:
            self._folder_dialog = QFileDialog(self, "Choose a downloaded InstructPix2Pix model folder")
            self._folder_dialog.setFileMode(QFileDialog.FileMode.Directory)
            self._folder_dialog.setOption(QFileDialog.Option.ShowDirsOnly)
            self._folder_dialog.fileSelected.connect(self.use_folder)
        self._folder_dialog.open()

    def use_folder(self, folder: str) -> None:
        """Checked now, not at the next run: a folder that holds no model is said so here,
        and the dialog stays for another choice."""
        try:
            check_folder(Path(folder), os.path.basename(os.path.normpath(folder)) or folder)
            model_settings(folder)
        except FoiError as error:
            self.reason.setText(f"That folder cannot be used: {error}")
            bold = self.reason.font()
            bold.setBold(True)  # the dialog stayed: say why where the eye goes
            self.reason.setFont(bold)
            return
        self._use(folder)


async def ask_model_missing(parent, error) -> str | None:
    """Show ModelMissingDialog and wait for the answer: the model to use instead, or None.
    The dialog is opened, not exec()'d: this runs in a qasync coroutine, and an event loop
    nested inside it would run other coroutines' steps inside this one."""
    dialog = ModelMissingDialog(error, parent)
    answered = asyncio.get_running_loop().create_future()
    dialog.finished.connect(lambda _result: answered.done() or answered.set_result(dialog.choice))
    dialog.open()
    try:
        return await answered
    finally:  # also when the run is cancelled (the window closes): no dialog outlives it
        dialog.close()
        dialog.deleteLater()


def ask_recovery(parent, item) -> str:
    """An autosave of work an earlier session did not save: "restore", "delete" or "later"."""
    when = time.strftime("%H:%M on %d %b", time.localtime(item.saved_at))
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Recover unsaved work?")
    box.setText(f"FoI Studio did not close properly. Restore “{item.title}” as it was at {when}?")
    if item.project_path:
        box.setInformativeText(f"It belonged to {item.project_path}. Restored work opens untitled: "
                               "choose where to save it.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton("Delete autosave", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton("Decide later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(restore)
    box.exec()
    return {restore: "restore", delete: "delete"}.get(box.clickedButton(), "later")


def ask_set_aside(parent, item) -> bool:
    """An autosave that cannot be read: it is kept; True moves it aside so it is not offered again."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("An autosave cannot be read")
    box.setText(f"An autosave from an earlier session cannot be opened: {item.error}")
    box.setInformativeText(f"It has not been deleted. It is at:\n{item.path}\n\nMove it aside (into the "
                           "“unreadable” folder beside it) so it is not offered again?")
    move = box.addButton("Move aside", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Decide later", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(move)
    box.exec()
    return box.clickedButton() is move
