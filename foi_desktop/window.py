"""The main window: canvas in the centre, instructions at the side, results below, the
toolbar and status bar; it wires the document, the views and the engine worker.

Find regions and Edit are jobs (foi_desktop.jobs): each press queues one (Edit Variations one
per seed), the `JobRunner` runs them one at a time on the engine worker, here or on a server,
and the window only binds to the queue: the results strip shows the jobs waiting and running,
the status bar the running one's steps, the canvas its live preview; a done job's result lands
in the document. The window keeps painting and the user can keep painting masks meanwhile; a
project is read in a worker thread (`_read_project()`), so a large one does not freeze it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time

from PIL import Image
from PySide6.QtCore import QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar,
                               QProgressDialog, QSpinBox)

from foi_engine import EditSettings, FoiError
from foi_engine.catalog import SHAPES, TINY_RANDOM
from foi_engine.errors import report

from . import assets, toolbars
from .canvas import CanvasView, Tool
from .dialogs import (ExportDialog, FailureNotice, SettingsDialog, ask_model_missing, ask_recovery, ask_set_aside,
                      report_error)
from .document import Document, EventKind, RecoveryStore, follow, open_project, read_recovery, save_project
from .history_panel import HistoryPanel
from .imaging import qimage_to_pil
from .instructions import InstructionPanel
from .jobs import JobEvent, JobEventKind, JobKind, JobQueue, JobState
from .preferences import RUN_SETTINGS, Preferences, recovery_folder, save_preferences
from .results import ResultsStrip, method_of
from .runner import JobRunner, LocateRequest
from .worker import EngineClient, ModelChoice, model_settings_for, settle_libraries, where_runs

log = logging.getLogger("foi_desktop")

PHOTO_FILTER = "Photos (*.jpg *.jpeg *.heic *.heif *.png *.tif *.tiff *.webp *.bmp);;FoI projects (*.foi);;All files (*)"
PROJECT_SUFFIX = ".foi"
AUTOSAVE_MS = 120_000
BRUSH_STEP = 1.25  # [ and ] scale the brush by this much
# The selection tools: canvas tool, label, key (GIMP's and Krita's letters clash with B, E, F, R
# here, so Krita's J and Photoshop's L and W where free), what it does.
SELECTION_TOOLS = (
    (Tool.RECTANGLE, "Rectangle", "S", "Select a rectangle: drag across it"),
    (Tool.ELLIPSE, "Ellipse", "J", "Select an ellipse: drag across it"),
    (Tool.LASSO, "Lasso", "L", "Select freehand: draw round the area"),
    (Tool.POLYGON, "Polygon", "P", "Select a polygon: click each corner, double-click the last"),
    (Tool.WAND, "Magic Wand", "W", "Select the joined area of similar colour: click in it"),
)
SELECTION_MODES = "Replaces the mask; hold Shift to add to it, Alt to take away from it (as in Krita)"


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class MainWindow(QMainWindow):

    def __init__(self, preferences: Preferences, model_override: str | None = None,
                 device_override: str | None = None, client: EngineClient | None = None,
                 threads_override: int = 0):
        super().__init__()
        self.setWindowTitle("FoI Studio")
        self.setWindowIcon(QIcon(str(assets.resource("icons/foi-studio.svg"))))
        self.setAcceptDrops(True)
        self.preferences = preferences
        self.doc: Document | None = None
        self.task: asyncio.Task | None = None  # the last run started: it ends when its jobs have landed
        self._asking_model = False  # the "model not here" dialog is up: the run waits for the answer
        self.opening: str | None = None  # the name of the project being read, off the UI thread
        self._open_task: asyncio.Task | None = None
        self.shown_entry = None  # the result on the canvas
        self.pair = None  # (plain, FoI) results of the last Compare with Plain IP2P
        self.recovery = RecoveryStore(recovery_folder())
        self._autosave_due = False
        self._run_started = 0.0
        self._steps_started: tuple[float, int] | None = None  # (when, steps done) at the first step seen
        self._progress_job: int | None = None  # the job the status bar's progress is about
        self._preview = None  # its latest preview, on the canvas
        self._load_dialog: QProgressDialog | None = None
        self.failure_notice: FailureNotice | None = None

        self._owns_client = client is None  # a shared client (tests) outlives the window
        self.client = client or EngineClient(self)
        self.client.loading.connect(self._on_loading)
        self.client.loaded.connect(self._on_loaded)
        self.client.counterReady.connect(self._on_counter_ready)
        self._model_override, self._device_override = model_override, device_override
        self._threads_override = threads_override
        self.client.set_model(self._model_choice())
        self.jobs = JobQueue()
        self.jobs.events.progress.connect(lambda event: self._show_progress(event.job))
        self.jobs.events.state.connect(self._on_job_state)
        for kind in (JobEventKind.ADDED, JobEventKind.REMOVED):  # what Cancel can reach
            self.jobs.events[kind].connect(lambda _event: self._update_actions())
        self.runner = JobRunner(self.jobs, self.client, ask_model=self._replace_missing_model)

        self.canvas = CanvasView()
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.setCentralWidget(self.canvas)
        self.panel = InstructionPanel()
        self.panel.activeLayerChanged.connect(self._active_layer_changed)
        dock = QDockWidget("Instructions", self, objectName="instructionsDock")
        dock.setWidget(self.panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.results = ResultsStrip()
        self.results.set_jobs(self.jobs)
        self.results.selectionChanged.connect(self._show_entry)
        self.results.forgetJobRequested.connect(self.jobs.forget)
        self.results.acceptRequested.connect(lambda e: self.doc.accept_result(e))
        self.results.discardRequested.connect(lambda e: self.doc.discard_result(e))
        self.results.rerunRequested.connect(self.rerun_with_new_seed)
        self.results.copySettingsRequested.connect(self.copy_settings_from)
        self.results.starRequested.connect(lambda e: self.doc.set_starred(e, not e.starred))
        for request in (self.results.acceptRequested, self.results.discardRequested, self.results.rerunRequested,
                        self.results.copySettingsRequested, self.results.starRequested):
            request.connect(self._focus_canvas)  # after the action's own slot
        history = QDockWidget("Results", self, objectName="resultsDock")
        history.setWidget(self.results)
        history.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, history)
        self.history_panel = HistoryPanel()
        self.history_dock = QDockWidget("History", self, objectName="historyDock")
        self.history_dock.setWidget(self.history_panel)
        self.history_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        self.tabifyDockWidget(dock, self.history_dock)
        dock.raise_()  # the instructions are what a new user needs first
        self.resizeDocks([dock], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([history], [self.results.sizeHint().height()], Qt.Orientation.Vertical)

        self._build_actions()
        self._build_toolbar()
        self._build_menus()
        self._build_status_bar()
        if self.client.info is not None:
            self._on_loaded(self.client.info)
        self._autosave_timer = QTimer(self, interval=AUTOSAVE_MS, timeout=self.autosave)
        self._autosave_timer.start()
        self._update_actions()

    # ------------------------------------------------------------------------------------------
    # Construction

    def _action(self, text, slot=None, shortcut=None, tip=None, checkable=False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        if shortcut:
            action.setShortcuts([QKeySequence(s) for s in (shortcut if isinstance(shortcut, list) else [shortcut])])
        action.setToolTip(toolbars.tooltip(text, action.shortcuts(), tip))
        if tip:
            action.setStatusTip(tip)
        if slot:
            action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work whatever has focus
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.open_action = a("Open…", self.choose_and_open, QKeySequence.StandardKey.Open, "Open a photo or project")
        self.save_action = a("Save Project", self.save, QKeySequence.StandardKey.Save, "Save the project (.foi)")
        self.save_as_action = a("Save Project As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self.sample_action = a("Open Sample", self.open_sample,
                               tip="A sample with two example instructions (shapes for the shapes model)")
        self.paste_action = a("Paste Photo", self.paste_photo, QKeySequence.StandardKey.Paste,
                              "Open the photo on the clipboard")
        self.export_action = a("Export…", self.export, "Ctrl+E", "Write the result as a layered file")
        self.import_mask_action = a("Import Mask…", self.import_mask, tip="Replace the selected mask with a PNG")
        self.export_mask_action = a("Export Mask…", self.export_mask, tip="Save the selected mask as a PNG")
        self.quit_action = a("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = a("Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = a("Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.add_action = a("Add Instruction", lambda: self.panel.add_instruction(), "Ctrl+Shift+N")
        self.settings_action = a("Settings…", self.open_settings, "Ctrl+,", "Model, device and run settings")
        self.find_action = a("Find regions", self.start_find_regions, "Ctrl+R",
                             "Show where each instruction will act")
        self.edit_action = a("Edit", lambda: self.start_edit(), "Ctrl+Return", "Run the edit with these masks")
        self.variations_action = a("Edit Variations", self.start_variations, "Ctrl+Alt+Return",
                                   "Run the edit several times, each with another seed (how many: the × box)")
        self.compare_plain_action = a("Compare with Plain IP2P", self.start_compare_plain, "Ctrl+Shift+Return",
                                      "Run the edit with FoI and as plain InstructPix2Pix (same seed and "
                                      "settings), then show them side by side")
        self.cancel_action = a("Cancel", self.cancel, "Esc",
                               "Stop the job selected in the results strip, else the one running")
        self.cancel_all_action = a("Cancel All", self.cancel_all, "Shift+Esc", "Stop every job, running or queued")
        self.brush_action = a("Brush", lambda on: self.set_tool(Tool.BRUSH if on else None), "B",
                              "Paint the selected instruction's mask", checkable=True)
        self.eraser_action = a("Eraser", lambda on: self.set_tool(Tool.ERASER if on else None), "E",
                               "Erase from the selected mask", checkable=True)
        self.tool_actions = {Tool.BRUSH: self.brush_action, Tool.ERASER: self.eraser_action}
        for tool, text, key, tip in SELECTION_TOOLS:
            self.tool_actions[tool] = a(text, lambda on, tool=tool: self.set_tool(tool if on else None), key,
                                        f"{tip}. {SELECTION_MODES}", checkable=True)
        tools = QActionGroup(self)
        tools.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        for action in self.tool_actions.values():
            tools.addAction(action)
        self.swap_action = a("Swap Brush/Eraser", self.swap_tool, "X")
        self.smaller_action = a("Smaller Brush", lambda: self.size_box.setValue(self.size_box.value() / BRUSH_STEP), "[")
        self.larger_action = a("Larger Brush", lambda: self.size_box.setValue(self.size_box.value() * BRUSH_STEP), "]")
        self.invert_action = a("Invert", lambda: self._mask_op("invert_mask"), "I", "Invert the selected mask")
        self.clear_action = a("Clear", lambda: self._mask_op("clear_mask"), "Shift+Del", "Clear the selected mask")
        self.grow_action = a("Grow", lambda: self._mask_op("grow_mask", self._edge_px()), tip="Grow the mask")
        self.shrink_action = a("Shrink", lambda: self._mask_op("grow_mask", -self._edge_px()), tip="Shrink the mask")
        self.feather_action = a("Feather", lambda: self._mask_op("feather_mask", self._edge_px()),
                                tip="Soften the mask's edge")
        self.masks_action = a("Masks", self.canvas.set_masks_visible, "M", "Show the instruction masks",
                              checkable=True)
        self.masks_action.setChecked(True)
        self.solo_action = a("Show Only Active Mask", self.canvas.set_solo_mask, "Shift+M",
                             "Hide the other instructions' masks", checkable=True)
        self.outline_action = a("Mask Outlines", self.canvas.set_mask_outlines, "O",
                                "Draw each mask's edge instead of tinting all of it, to see the photo inside",
                                checkable=True)
        self.compare_action = a("Compare", self.canvas.set_compare, "C",
                                "Split view: original left, result right (drag to move)", checkable=True)
        self.original_action = a("Show Original", lambda on: self.canvas.set_show_original(on), "\\",
                                 "Hide the result to see the photo as it was", checkable=True)
        self.raw_action = a("Show Raw Model Output", lambda _on: self._show_entry(self.shown_entry), "R",
                            "Show what the model returned, before the masks blend it into the photo",
                            checkable=True)
        self.fit_action = a("Fit", self.canvas.fit, "F", "Fit the photo in the window")
        self.actual_action = a("100 %", self.canvas.actual_size, "1", "One photo pixel per screen pixel")
        self.zoom_in_action = a("Zoom In", lambda: self.canvas.zoom_by(1.25),
                                [QKeySequence.StandardKey.ZoomIn, "Ctrl+="])  # = is + without Shift
        self.zoom_out_action = a("Zoom Out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut)
        self.about_action = a("About FoI Studio", self.about)

    def _build_toolbar(self) -> None:
        self.variations_box = toolbars.option_box(QSpinBox, minimum=2, maximum=16, value=4, prefix="× ",
                                                  toolTip="How many variations Edit Variations makes")
        bar = toolbars.main_toolbar((
            (("open", self.open_action), ("save", self.save_action), ("export", self.export_action)),
            (("find-regions", self.find_action), ("edit", self.edit_action), ("variations", self.variations_action),
             self.variations_box, ("compare-plain", self.compare_plain_action), ("cancel", self.cancel_action)),
            tuple(self.tool_actions.items()),  # each tool's icon is named after it
            (("masks", self.masks_action), ("compare", self.compare_action), ("original", self.original_action)),
        ), labelled=(self.find_action, self.edit_action))
        bar.widgetForAction(self.edit_action).setObjectName("primary")
        options = toolbars.ToolOptionsBar([self.invert_action, self.clear_action, self.grow_action,
                                           self.shrink_action, self.feather_action], self.canvas.wand_tolerance)
        options.follow(self.tool_actions)
        options.brushChanged.connect(self.canvas.set_brush)
        options.toleranceChanged.connect(lambda value: setattr(self.canvas, "wand_tolerance", value))
        self.size_box, self.hardness_box = options.size_box, options.hardness_box
        self.tolerance_box, self.edge_box = options.tolerance_box, options.edge_box
        self.addToolBar(bar)
        self.addToolBarBreak()  # the options go under the tools, as in Krita and Photoshop
        self.addToolBar(options)
        for toolbar in (bar, options):
            toolbar.actionTriggered.connect(self._focus_canvas)
        self.canvas.set_brush(diameter=self.size_box.value(), hardness=self.hardness_box.value())

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.open_action)
        self.recent_menu = menu.addMenu("Open Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        menu.addAction(self.paste_action)
        menu.addAction(self.sample_action)
        menu.addSeparator()
        menu.addAction(self.save_action)
        menu.addAction(self.save_as_action)
        menu.addAction(self.export_action)
        menu.addSeparator()
        menu.addAction(self.import_mask_action)
        menu.addAction(self.export_mask_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        menu = self.menuBar().addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.add_action, None, self.find_action,
                       self.edit_action, self.variations_action, self.compare_plain_action, self.cancel_action,
                       self.cancel_all_action, None, self.settings_action):
            menu.addSeparator() if action is None else menu.addAction(action)
        menu = self.menuBar().addMenu("&Mask")
        for action in (self.brush_action, self.eraser_action, self.swap_action, self.smaller_action,
                       self.larger_action, None, *(self.tool_actions[tool] for tool, *_ in SELECTION_TOOLS),
                       None, self.invert_action, self.clear_action, self.grow_action,
                       self.shrink_action, self.feather_action, None, self.import_mask_action,
                       self.export_mask_action):
            menu.addSeparator() if action is None else menu.addAction(action)
        menu = self.menuBar().addMenu("&View")
        for action in (self.fit_action, self.actual_action, self.zoom_in_action, self.zoom_out_action, None,
                       self.masks_action, self.solo_action, self.outline_action, None, self.compare_action,
                       self.original_action, self.raw_action):
            menu.addSeparator() if action is None else menu.addAction(action)
        self.menuBar().addMenu("&Help").addAction(self.about_action)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel()
        self.random_label = QLabel("RANDOM WEIGHTS — results are noise", objectName="randomWeights")
        self.random_label.setToolTip("tiny-random is a test model with random weights: the whole flow works, "
                                     "but it cannot really edit. Choose a real model in Settings.")
        self.random_label.hide()
        self.where_label = QLabel(objectName="whereRuns")
        self.zoom_label = QLabel()
        self.size_label = QLabel()
        self.progress_bar = QProgressBar(maximumWidth=220, textVisible=False)
        self.progress_bar.hide()
        self.step_label = QLabel()
        self.eta_label = QLabel()
        # Permanent widgets: temporary messages (left) must not hide which model is in use.
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.random_label)
        bar.addPermanentWidget(self.where_label)
        bar.addPermanentWidget(self.step_label)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.eta_label)
        bar.addPermanentWidget(self.size_label)
        bar.addPermanentWidget(self.zoom_label)
        self._show_model_state()

    # ------------------------------------------------------------------------------------------
    # Document

    def set_document(self, doc: Document, fresh: bool = False) -> None:
        """Show doc (the old document's recovery copy is dropped: it was saved or declined).
        fresh: a new photo, which takes the user's run settings (a project keeps its own)."""
        if self.doc is not None:
            self.recovery.discard(self.doc)
        # The jobs were the old document's: their results would have nowhere to land.
        self.jobs.cancel_all()
        self.jobs.forget_finished()
        if doc is not None and fresh:
            self._apply_preferences_to(doc)
        follow(self, doc, self._doc_connections())
        self.shown_entry = None
        self.pair = None
        self.canvas.set_document(doc)
        self.panel.set_document(doc)
        self.results.set_document(doc)
        self.history_panel.set_document(doc)
        self.size_label.setText(f"{doc.size[0]} × {doc.size[1]} px" if doc is not None else "")
        self._active_layer_changed(self.panel.active_layer_id)
        self._autosave_due = False
        self._update_title()
        self._update_actions()

    def _apply_preferences_to(self, doc: Document) -> None:
        doc.settings = self._run_settings(doc.settings)
        if self.preferences.fixed_seed:
            doc.set_seed(self.preferences.seed, fixed=True)
        doc.modified = False

    def _run_settings(self, base: EditSettings, names=RUN_SETTINGS) -> EditSettings:
        """The user's run settings (those named) over base, then what the chosen model asks for
        (the shapes model works only at 64 px, reading regions from its finest layers; a
        server's model, once the server has said)."""
        try:
            settings = self.preferences.edit_settings(base, names)
        except FoiError as error:
            log.warning("Stored settings refused: %s", error)
            settings = base
        choice = self._model_choice()
        try:
            asked = model_settings_for(choice)
        except FoiError as error:
            log.warning("Settings of model %s refused: %s", choice.model, error)
            asked = {}
        # The grounding factor is the model's business, not a user setting: back to the
        # paper's default for a model that does not ask for another.
        return dataclasses.replace(settings, **{"grounding_factor": EditSettings().grounding_factor, **asked})

    def _doc_connections(self):
        """Any change is autosaved and may put a '*' in the title; the actions depend on the
        undo steps, the layers and the results."""
        return [*((kind, self._on_doc_changed) for kind in EventKind),
                *((kind, self._on_doc_actions) for kind in (EventKind.HISTORY, EventKind.LAYERS, EventKind.RESULTS))]

    def _on_doc_changed(self, _event) -> None:
        self._autosave_due = True
        self._update_title()

    def _on_doc_actions(self, _event) -> None:
        self._update_actions()

    def _update_title(self) -> None:
        if self.doc is None:
            self.setWindowTitle("FoI Studio")
            return
        name = os.path.basename(self.doc.project_path or self.doc.source_path or "") or "Untitled"
        self.setWindowTitle(f"{name}{' *' if self.doc.modified else ''} — FoI Studio")

    def _update_actions(self) -> None:
        has_doc = self.doc is not None
        has_layers = has_doc and bool(self.doc.layers)
        has_layer = has_doc and self.panel.active_layer_id is not None
        opening = self.opening is not None
        for action in (self.find_action, self.edit_action, self.variations_action, self.compare_plain_action):
            action.setEnabled(has_layers and not opening and not self._asking_model)  # more queue behind a run
        for action in (self.cancel_action, self.cancel_all_action):
            action.setEnabled(bool(self.jobs.active()) and not self._asking_model)
        for action in (self.open_action, self.recent_menu.menuAction(), self.paste_action, self.sample_action):
            action.setEnabled(not opening)  # one document at a time: the project being read comes next
        for action in (self.save_action, self.save_as_action):
            action.setEnabled(has_doc)
        self.export_action.setEnabled(has_doc and bool(self.doc.results))
        for action in (self.invert_action, self.clear_action, self.grow_action, self.shrink_action,
                       self.feather_action, self.import_mask_action, self.export_mask_action):
            action.setEnabled(has_layer)
        self.undo_action.setEnabled(has_doc and self.doc.can_undo)
        self.redo_action.setEnabled(has_doc and self.doc.can_redo)
        self.undo_action.setText(f"Undo {self.doc.undo_text}" if has_doc and self.doc.can_undo else "Undo")
        self.redo_action.setText(f"Redo {self.doc.redo_text}" if has_doc and self.doc.can_redo else "Redo")

    def _focus_canvas(self, *_args) -> None:
        """After a toolbar or results-strip action, keys go to the photo again."""
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    def _active_layer_changed(self, layer_id) -> None:
        self.canvas.active_layer_id = layer_id
        self._update_actions()

    # ------------------------------------------------------------------------------------------
    # Opening and saving

    def open_sample(self) -> None:
        """A sample with two example instructions, so a new user sees the idea: the bundled
        photo, or a generated scene of shapes when the shapes model is chosen."""
        if self._still_opening() or not self._may_discard():
            return
        if self._model_choice().model == SHAPES:
            from foi_engine.shapes.data import demo_scene

            pixels, instructions = demo_scene()
            doc = Document(Image.fromarray(pixels, "RGB"))
        else:
            doc = Document.open_photo(assets.resource(assets.SAMPLE_PHOTO))
            instructions = assets.SAMPLE_INSTRUCTIONS
        for text, keyword in instructions:
            doc.add_layer(text, keyword)
        doc.forget_history()
        doc.source_path = None  # a sample is "Untitled": Save asks where
        self.set_document(doc, fresh=True)
        self.panel.select(doc.layers[0].id)

    def open_path(self, path: str) -> bool | asyncio.Task | None:
        """Open a photo at once (True if it opened), or start opening a project: it is read in
        a worker thread, so a large one does not freeze the window; returns the task, whose
        result says whether it opened. None while another project is still opening."""
        if self._still_opening():
            return None
        if path.lower().endswith(PROJECT_SUFFIX):
            return self._start_opening(os.path.basename(path), self._open_project(path))
        if not self._may_discard():
            return False
        try:
            doc = Document.open_photo(path)
        except (FoiError, OSError) as error:
            report_error(self, error, "Cannot open this file")
            return False
        self._show_opened(doc, path, fresh=True)
        return True

    async def _open_project(self, path: str) -> bool:
        doc = await self._read_project(lambda: open_project(path), "Cannot open this file")
        if doc is None:
            return False
        self._show_opened(doc, path)
        return True

    def _show_opened(self, doc: Document, path: str, fresh: bool = False) -> None:
        self.set_document(doc, fresh=fresh)
        self.preferences.add_recent(path)
        self.preferences.open_folder = os.path.dirname(os.path.abspath(path))
        save_preferences(self.preferences)
        self.statusBar().showMessage(f"Opened {os.path.basename(path)}", 4000)

    def _still_opening(self) -> bool:
        """True (and the status bar says so) while a project is being read: it is about to
        become the document, so nothing else may replace the document meanwhile."""
        if self.opening is not None:
            self.statusBar().showMessage(f"Still opening {self.opening}…")
        return self.opening is not None

    def _start_opening(self, name: str, coroutine) -> asyncio.Task:
        self.opening = name
        self._open_task = asyncio.ensure_future(coroutine)
        self._update_actions()
        self.statusBar().showMessage(f"Opening {name}…")  # until it is open
        return self._open_task

    async def _read_project(self, read, title: str) -> Document | None:
        """The document read() makes (Qt-free code, run in a worker thread while the window
        stays responsive), once the user lets the open one go. None if it cannot be read (one
        message) or the user keeps their document: the window stays as it was."""
        failure = None
        try:
            doc = await asyncio.get_running_loop().run_in_executor(None, read)
        except Exception as error:  # noqa: BLE001 - a message (report_error logs what no check foresaw)
            failure = error
        finally:
            self.opening = None  # also when the window closed meanwhile: then nothing else is touched
        self.statusBar().clearMessage()
        self._update_actions()
        if failure is not None:
            report_error(self, failure, title)
            return None
        # Asked now, not before reading: the user may have gone on working meanwhile.
        return doc if self._may_discard() else None

    def choose_and_open(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Open a photo or project", self._open_folder(),
                                                    PHOTO_FILTER)
        if path:
            self.open_path(path)

    def _open_folder(self) -> str:
        """Where Open starts: the folder last opened from, else Pictures (if there is one)."""
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        for folder in (self.preferences.open_folder, pictures):
            if folder and os.path.isdir(folder):
                return folder
        return ""

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.preferences.recent:
            self.recent_menu.addAction(os.path.basename(path), lambda p=path: self.open_path(p)).setToolTip(path)
        if not self.preferences.recent:
            self.recent_menu.addAction("No recent files").setEnabled(False)
            return
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear", self._clear_recent)

    def _clear_recent(self) -> None:
        self.preferences.recent = []
        save_preferences(self.preferences)

    def paste_photo(self) -> None:
        """A photo on the clipboard (an image, or a copied file) becomes the document."""
        data = QGuiApplication.clipboard().mimeData()
        if data is not None and data.hasUrls():
            local = [url.toLocalFile() for url in data.urls() if url.isLocalFile()]
            if local:
                self.open_path(local[0])
                return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.statusBar().showMessage("The clipboard holds no picture.", 4000)
            return
        if self._still_opening() or not self._may_discard():
            return
        from foi_engine.photo import prepare_photo
        try:
            self.set_document(Document(prepare_photo(qimage_to_pil(image))), fresh=True)
        except FoiError as error:
            report_error(self, error, "Cannot use this picture")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_path(urls[0]))  # not inside the drop (dialogs may follow)

    def save(self) -> bool:
        if self.doc is None:
            return False
        if self.doc.project_path is None:
            return self.save_as()
        return self._save_to(self.doc.project_path)

    def save_as(self) -> bool:
        if self.doc is None:
            return False
        base = self.doc.project_path or self.doc.source_path or os.path.join(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation), "Untitled")
        suggestion = os.path.splitext(base)[0] + PROJECT_SUFFIX
        path, _filter = QFileDialog.getSaveFileName(self, "Save project", suggestion, "FoI projects (*.foi)")
        if not path:
            return False
        if not path.lower().endswith(PROJECT_SUFFIX):
            path += PROJECT_SUFFIX
        return self._save_to(path)

    def _save_to(self, path: str) -> bool:
        try:
            save_project(self.doc, path)
        except (FoiError, OSError) as error:
            report_error(self, error, "Could not save")
            return False
        self.recovery.discard(self.doc)
        self.preferences.add_recent(path)
        save_preferences(self.preferences)
        self._update_title()
        self.statusBar().showMessage(f"Saved {os.path.basename(path)}", 4000)
        return True

    def _may_discard(self) -> bool:
        """Ask before an unsaved document goes away. False = the user wants to keep it."""
        if self.doc is None or not self.doc.modified:
            return True
        answer = QMessageBox.question(
            self, "Save changes?", "This photo's instructions, masks or results are not saved. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def autosave(self) -> None:
        """Keep a recovery copy of unsaved work (offered back after a crash)."""
        if self.doc is None or not self._autosave_due or not self.doc.modified:
            return
        try:
            self.recovery.autosave(self.doc)
            self._autosave_due = False
        except (FoiError, OSError) as error:
            log.warning("Autosave failed: %s", error)

    def offer_recovery(self) -> asyncio.Task | None:
        """After a crash: offer the newest abandoned recovery copy back. Returns the task
        opening the one the user restores (its result says whether it opened), else None.
        Nothing unreadable is deleted: the user may move it aside."""
        if self._still_opening():
            return None
        for item in self.recovery.pending():
            try:
                if item.error:
                    if ask_set_aside(self, item):
                        self.recovery.set_aside(item)
                    continue
                answer = ask_recovery(self, item)
                if answer == "restore":
                    self.recovery.claim(item)  # before reading: no other editor offers it meanwhile
                    return self._start_opening(item.title, self._recover(item))
                if answer == "delete":
                    self.recovery.discard(item)
                else:
                    return None  # keep the rest for next time
            except (FoiError, OSError) as error:
                report_error(self, error, "Cannot recover")
        return None

    async def _recover(self, item) -> bool:
        """Read a claimed recovery copy (the store's locks stay on the UI thread) and show it."""
        doc = None
        try:
            doc = await self._read_project(lambda: read_recovery(item), "Cannot recover")
        finally:
            if doc is None:  # unreadable, the user kept their work, or the window closed
                self.recovery.unclaim(item)
        if doc is None:
            return False
        self.set_document(doc)
        return True

    # ------------------------------------------------------------------------------------------
    # Masks

    def set_tool(self, tool: Tool | str | None) -> None:
        tool = None if tool is None else Tool(tool)
        for name, action in self.tool_actions.items():
            action.setChecked(tool == name)
        self.canvas.set_tool(tool)
        if tool is not None:
            if self.compare_action.isChecked():
                self.compare_action.setChecked(False)
                self.canvas.set_compare(False)
            if not self.masks_action.isChecked():
                self.masks_action.setChecked(True)
                self.canvas.set_masks_visible(True)
            if self.panel.active_layer_id is None:
                self.statusBar().showMessage("Select an instruction to paint its mask.", 4000)

    def swap_tool(self) -> None:
        self.set_tool(Tool.ERASER if self.canvas.tool is Tool.BRUSH else Tool.BRUSH)

    def _edge_px(self) -> int:
        return self.edge_box.value()

    def _mask_op(self, name: str, *args) -> None:
        if self.doc is None or self.panel.active_layer_id is None:
            return
        getattr(self.doc, name)(self.panel.active_layer_id, *args)

    def import_mask(self) -> None:
        self._mask_file(QFileDialog.getOpenFileName, ("Import a mask", "", "Images (*.png *.jpg *.tif *.tiff *.webp)"),
                        "import_mask", "Cannot use this mask")

    def export_mask(self) -> None:
        self._mask_file(QFileDialog.getSaveFileName, ("Export the mask", "mask.png", "PNG (*.png)"),
                        "export_mask", "Could not save the mask")

    def _mask_file(self, ask, question: tuple[str, str, str], action: str, failure: str) -> None:
        """Ask for a file, then read the active instruction's mask from it or write it there."""
        if self.panel.active_layer_id is None:
            return
        path, _ = ask(self, *question)
        if path:
            try:
                getattr(self.doc, action)(self.panel.active_layer_id, path)
            except (FoiError, OSError) as error:
                report_error(self, error, failure)

    def undo(self) -> None:
        if self.doc is not None:
            self.doc.undo()

    def redo(self) -> None:
        if self.doc is not None:
            self.doc.redo()

    # ------------------------------------------------------------------------------------------
    # Engine runs: each is one job or more; the window queues them and binds to the queue

    def _model_choice(self) -> ModelChoice:
        """Where runs happen: the command line's model, else Settings ▸ Engine's choice (a
        server, or a model on this computer)."""
        prefs = self.preferences
        if self._model_override is None and prefs.engine == "server":
            return ModelChoice(prefs.server_url, token=prefs.server_token or None,
                               server_model=prefs.server_model or None)
        device = self._device_override or (None if prefs.device == "auto" else prefs.device)
        return ModelChoice(self._model_override or prefs.model, device, prefs.precision,
                           self._threads_override or prefs.threads)

    def start_find_regions(self) -> asyncio.Task | None:
        """Queue Find regions. The task gives the LocateResult once the masks are in, None if
        the job did not finish; None instead of a task when it cannot start (a message says why)."""
        request = self._request(LocateRequest.of)
        if request is None:
            return None
        job = self.jobs.enqueue(JobKind.LOCATE, request, "Find regions")
        return self._follow(self._regions_found(self.doc, self.runner.wait(job.id), request))

    def start_edit(self, seed: int | None = None) -> asyncio.Task | None:
        """Queue an Edit (with `seed`, else the document's); the task gives its result once landed."""
        request = self._request(lambda doc: doc.edit_request(seed))
        if request is None:
            return None
        return self._follow(self._edited(self.doc, self._enqueue_edit(request), request))

    def start_variations(self) -> asyncio.Task | None:
        """Queue one Edit per seed, as many as the × box says (the first seed: the one Edit
        would use); the task gives the results that landed, in that order."""
        request = self._request(lambda doc: doc.edit_request())
        if request is None:
            return None
        seeds = [request.seed]
        while len(seeds) < self.variations_box.value():
            seed = random.randrange(2**31)
            seeds += [seed] if seed not in seeds else []
        runs = [dataclasses.replace(request, seed=seed) for seed in seeds]
        return self._follow(self._variations_made(self.doc, [(self._enqueue_edit(run), run) for run in runs]))

    def start_compare_plain(self) -> asyncio.Task | None:
        """Queue the same request (instructions, masks, seed, settings) with FoI's focus and
        without it; once both have landed the split shows them: plain InstructPix2Pix left, FoI right."""
        request = self._request(lambda doc: doc.edit_request())
        if request is None:
            return None
        runs = [dataclasses.replace(request, settings=dataclasses.replace(request.settings, focus=focus))
                for focus in (True, False)]
        return self._follow(self._compared(self.doc, [(self._enqueue_edit(run), run) for run in runs]))

    def _request(self, make):
        """What a run needs, made from the document now (painting may go on while it waits and
        runs); None when it cannot be made (an empty instruction: a message says so) or while
        a project is being read (it is about to replace the document)."""
        if self.doc is None or self._still_opening():
            return None
        try:
            return make(self.doc)
        except FoiError as error:
            report_error(self, error)
            return None

    def _enqueue_edit(self, request) -> asyncio.Future:
        """Queue an Edit job: the future of the job as it ends (asked for now: a job cancelled
        while queued is gone before a task starts to wait)."""
        label = f"seed {request.seed}" if request.settings.focus else f"plain IP2P, seed {request.seed}"
        return self.runner.wait(self.jobs.enqueue(JobKind.EDIT, request, label).id)

    def _follow(self, coroutine) -> asyncio.Task:
        """The task that lands a run's results; a result that cannot land is said, not raised."""
        self.task = asyncio.ensure_future(self._said(coroutine))
        return self.task

    async def _said(self, coroutine):
        try:
            return await coroutine
        except FoiError as error:
            shown = report(error)
            self._notify(shown.title, shown.message)
            return None

    async def _regions_found(self, doc, ended: asyncio.Future, request: LocateRequest):
        job = await ended
        if job.state is not JobState.DONE or doc is not self.doc:
            return None
        doc.apply_grounding(job.result, request.layer_ids)
        self.masks_action.setChecked(True)
        self.canvas.set_masks_visible(True)
        self.statusBar().showMessage("Regions found: paint to correct them, then Edit.", 6000)
        return job.result

    async def _edited(self, doc, ended: asyncio.Future, request):
        """The job's result in the document, selected and shown, once it is done; None if the
        job ended otherwise or the document was replaced meanwhile."""
        job = await ended
        if job.state is not JobState.DONE or doc is not self.doc:
            return None
        entry = doc.add_result(job.result, request)
        self.results.select(entry)
        self._show_entry(entry)
        self.masks_action.setChecked(False)
        self.canvas.set_masks_visible(False)
        return entry

    async def _variations_made(self, doc, runs):
        landed = await asyncio.gather(*(self._edited(doc, ended, request) for ended, request in runs))
        entries = [entry for entry in landed if entry is not None]
        if entries:
            made = f"{len(entries)}" if len(entries) == len(runs) else f"{len(entries)} of {len(runs)}"
            self.statusBar().showMessage(f"{made} variations made: star the ones you like.", 8000)
        return entries

    async def _compared(self, doc, runs):
        foi_entry, plain_entry = await asyncio.gather(*(self._edited(doc, ended, request) for ended, request in runs))
        if foi_entry is None or plain_entry is None:
            return None
        self.pair = (plain_entry, foi_entry)
        self.results.select(foi_entry)
        self._show_entry(foi_entry)
        self.compare_action.setChecked(True)
        self.canvas.set_compare(True)
        self.statusBar().showMessage(f"Left: plain InstructPix2Pix, right: FoI (seed {foi_entry.seed}).", 8000)
        return self.pair

    def cancel(self) -> None:
        """Stop the job selected in the results strip (a queued one ends at once), else the one running."""
        selected = self.results.current_job_id()
        job = self.jobs.get(selected) if selected is not None else None
        if job is None or job.state.finished:
            active = self.jobs.active()
            job = self.jobs.running() or (active[0] if active else None)
        if job is not None:
            self._cancel([job])

    def cancel_all(self) -> None:
        self._cancel(self.jobs.active())

    def _cancel(self, jobs) -> None:
        for job in jobs:
            self.jobs.cancel(job.id)
            if job.state is JobState.RUNNING:
                self.step_label.setText("Cancelling…")  # the engine stops within a step

    def rerun_with_new_seed(self, entry) -> None:
        self.copy_settings_from(entry, keep_seed=False)
        self.start_edit(seed=random.randrange(2**31))

    def copy_settings_from(self, entry, keep_seed: bool = True) -> None:
        self.doc.settings = entry.settings
        if keep_seed:
            self.doc.set_seed(entry.seed, fixed=True)
        self.statusBar().showMessage(
            f"Using the settings of that result{f' and its seed {entry.seed}' if keep_seed else ''}.", 5000)

    async def _replace_missing_model(self, error) -> bool:
        """The job runner asks what to do without the model (Cancel is off meanwhile: the job
        waits for the answer). True when the user chose another one, which is now in use."""
        self._close_load_dialog()
        self._end_progress()
        self.panel.set_token_counter(None, None)
        self._show_model_state("not available")
        self._asking_model = True
        self._update_actions()
        try:
            replacement = await ask_model_missing(self, error)
        finally:
            self._asking_model = False
            self._update_actions()
        if not replacement:
            return False
        self._model_override = replacement
        self.client.set_model(self._model_choice())
        self._show_model_state()
        if self.doc is not None:
            self.doc.settings = self._run_settings(self.doc.settings)
        return True

    # -- the jobs, as the queue tells them ----------------------------------------------------
    def _on_job_state(self, event: JobEvent) -> None:
        job = event.job
        if job.state is JobState.RUNNING:
            self._begin_progress(job)
        elif job.state.finished:
            self._job_ended(job)
        self._update_actions()

    def _job_ended(self, job) -> None:
        if job.id == self._progress_job:
            self._progress_job = None
            self._close_load_dialog()  # a model that did not load, a server that did not answer
            self._end_progress()
            if job.state is not JobState.DONE and self._preview is not None:
                self._show_entry(self.shown_entry)  # off with its unfinished preview
            self._preview = None
        if job.state is JobState.FAILED:
            self._show_model_state()  # no longer "loading…" or "connecting…"
            doing = "Could not edit" if job.kind is JobKind.EDIT else "Could not find the regions"
            self._notify(doing, job.error)
            return  # its tile stays in the strip, with the reason, until the user discards it
        if job.state is JobState.CANCELLED:
            self._show_model_state()  # no longer "connecting…" to a server given up on
            self.statusBar().showMessage("Cancelled.", 4000)
        elif job.kind is JobKind.EDIT:
            seconds = time.monotonic() - self._run_started
            self.statusBar().showMessage(f"Edited in {_fmt_seconds(seconds)} ({job.label}).", 8000)
        self.jobs.forget(job.id)  # a result now lands in the document; a cancelled job is gone

    def _notify(self, title: str, message: str) -> None:
        """Say what went wrong without waiting for OK: the jobs queued behind it go on."""
        if self.failure_notice is None:
            self.failure_notice = FailureNotice(self)
        self.failure_notice.say(title, message)

    def _begin_progress(self, job) -> None:
        self._progress_job = job.id
        self._run_started = time.monotonic()
        self._steps_started = None
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self.step_label.setText("Finding regions…" if job.kind is JobKind.LOCATE else "Editing…")
        self.eta_label.setText("")

    def _end_progress(self) -> None:
        self.progress_bar.hide()
        self.step_label.setText("")
        self.eta_label.setText("")

    def _show_progress(self, job) -> None:
        now = time.monotonic()
        if self._steps_started is None:
            # Time left from the steps' own pace (the first step includes loading and setup).
            self._steps_started = (now, job.step)
        self.progress_bar.setRange(0, job.steps)
        self.progress_bar.setValue(job.step)
        self.progress_bar.show()
        self.step_label.setText(f"Step {job.step}/{job.steps}")
        start, first = self._steps_started
        if job.step > first:
            per_step = (now - start) / (job.step - first)
            self.eta_label.setText(f"{_fmt_seconds(per_step * (job.steps - job.step))} left")
        if job.preview is not None and job.preview is not self._preview and self.doc is not None:
            self._preview = job.preview
            self.canvas.show_result(job.preview, self.doc.frame(job.request.settings.resolution).box)

    def _on_loading(self, done: int, total: int, text: str) -> None:
        remote = self._model_choice().remote
        if self._load_dialog is None:
            self._load_dialog = QProgressDialog(self)
            self._load_dialog.setWindowTitle("Connecting to the server" if remote else "Loading the model")
            self._load_dialog.setCancelButton(None)
            self._load_dialog.setMinimumDuration(500)
            self._load_dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog = self._load_dialog
        dialog.setLabelText(text if remote else f"{text}\n(once per session; the window stays usable)")
        dialog.setRange(0, total if total > 0 else 0)
        if total > 0:
            dialog.setValue(min(done, total))
        self._show_model_state("connecting…" if remote else "loading…")

    def _close_load_dialog(self) -> None:
        if self._load_dialog is not None:
            self._load_dialog.close()
            self._load_dialog.deleteLater()
            self._load_dialog = None

    def _on_loaded(self, info) -> None:
        """info None: a server stopped answering (the next run connects again)."""
        self._close_load_dialog()
        self._show_model_state()
        if info is not None:
            self.panel.set_token_counter(self.client.count_tokens, info.max_tokens)
            self._take_model_settings()
            settle_libraries()

    def _on_counter_ready(self, max_tokens: int | None) -> None:
        """Before the model loads: its tokenizer is read, or a server has counted."""
        self.panel.set_token_counter(self.client.count_tokens, max_tokens)
        self._take_model_settings()
        settle_libraries()

    def _take_model_settings(self) -> None:
        """The document runs with a server's model's own settings as soon as the server has
        said them (a local model's are known from the start). They are the model's, not a
        change of the user's: a saved document stays saved."""
        if self.doc is None or not self._model_choice().remote:
            return
        settings = self._run_settings(self.doc.settings, names=())
        if settings != self.doc.settings:
            unsaved = self.doc.modified
            self.doc.settings = settings
            if not unsaved:
                self.doc.modified = False
                self._update_title()

    def _show_model_state(self, note: str | None = None) -> None:
        """The model, and where it runs; note: "loading…", "not available"… while it is so. A
        server's line names its model itself."""
        choice, info = self._model_choice(), self.client.info
        self.where_label.setText(where_runs(choice, info, note if choice.remote else None))
        self.model_label.setVisible(not choice.remote)
        if note is not None:
            self.model_label.setText(f"Model: {choice.model} ({note})")
        elif info is None:
            self.model_label.setText(f"Model: {choice.model} (loads when first needed)")
        else:
            self.model_label.setText(f"Model: {info.model_name}")
        self.random_label.setVisible(info.random_weights if info is not None else choice.model == TINY_RANDOM)

    # ------------------------------------------------------------------------------------------
    # Results and export

    def _show_entry(self, entry) -> None:
        """Show a result; with one of a FoI / plain pair, the split shows the other on its left."""
        self.shown_entry = entry
        if self.pair is not None and entry not in self.pair:
            self.pair = None  # another result: the split compares with the photo again
        self.canvas.show_result(*self._picture(entry))
        if self.pair is None:
            self.canvas.set_before(None)
        else:
            other = self.pair[0] if entry is self.pair[1] else self.pair[1]
            self.canvas.set_before(*self._picture(other), labels=(method_of(other), method_of(entry)))
        self._update_actions()

    def _picture(self, entry) -> tuple:
        """The result as exports write it (the document makes it once per result), or with
        Show Raw Model Output, the model's image over the part of the photo it saw."""
        if entry is None:
            return (None,)
        if self.raw_action.isChecked():
            return entry.image, entry.frame.box
        return (self.doc.result_image(entry),)

    def export(self) -> None:
        if self.doc is None or not self.doc.results:
            return
        entry = self.results.current() or self.doc.accepted_result or self.doc.results[-1]
        stem = os.path.splitext(os.path.basename(self.doc.project_path or self.doc.source_path or "edit"))[0]
        folder = os.path.dirname(self.doc.project_path or self.doc.source_path or "") or \
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        dialog = ExportDialog(f"{stem}-edited", folder, entry.frame.size, self.doc.size, self.doc.full_export_suffix,
                              self)
        if dialog.exec() != ExportDialog.DialogCode.Accepted or not dialog.path:
            return
        self.export_to(dialog.path, entry, dialog.kind)

    def export_to(self, path: str, entry=None, kind: str | None = None) -> list[str]:
        try:
            written = self.doc.export(path, entry, kind)
        except (FoiError, OSError) as error:
            report_error(self, error, "Could not export")
            return []
        self.statusBar().showMessage(f"Exported {', '.join(os.path.basename(p) for p in written)}", 6000)
        return written

    # ------------------------------------------------------------------------------------------
    # Settings, about, closing

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.preferences, self, current=self._settings_in_force())
        accepted = dialog.exec() == SettingsDialog.DialogCode.Accepted
        self._take_model_settings()  # Test connection may have heard them
        if not accepted:
            return
        changes = dialog.changes()
        if not changes:
            return  # OK on what is in force: same model, same settings, nothing reloads
        old_choice = self._model_choice()
        for name, value in changes.items():
            setattr(self.preferences, name, value)
        save_preferences(self.preferences)
        # A choice made here replaces the command line's.
        engine_changed = bool({"model", "engine", "server_url", "server_model"} & set(changes))
        if engine_changed:
            self._model_override = None
        if "device" in changes:
            self._device_override = None
        if "threads" in changes:
            self._threads_override = 0
        if self.doc is not None:
            # Another model brings all the user's run settings back, then its own.
            names = RUN_SETTINGS if engine_changed else [name for name in RUN_SETTINGS if name in changes]
            if names:
                self.doc.settings = self._run_settings(self.doc.settings, names)
            if "fixed_seed" in changes or "seed" in changes:
                self.doc.set_seed(self.preferences.seed if self.preferences.fixed_seed else self.doc.seed,
                                  fixed=self.preferences.fixed_seed)
        if self._model_choice() != old_choice:
            self.client.set_model(self._model_choice())
            self.panel.set_token_counter(None, None)
            self._show_model_state()

    def _settings_in_force(self) -> Preferences:
        """The preferences as a run would use them now: the command line's model (which runs it
        here), device and threads, the document's run settings (the model's own included) and seed."""
        prefs = self.preferences
        current = dataclasses.replace(prefs, model=self._model_override or prefs.model,
                                      engine="local" if self._model_override else prefs.engine,
                                      device=self._device_override or prefs.device,
                                      threads=self._threads_override or prefs.threads)
        current.take_settings(self.doc.settings if self.doc is not None else self._run_settings(EditSettings()))
        if self.doc is not None:
            current.fixed_seed = self.doc.fixed_seed
            if self.doc.fixed_seed:
                current.seed = self.doc.seed
        return current

    def about(self) -> None:
        from . import __version__

        QMessageBox.about(self, "About FoI Studio",
                          f"<b>FoI Studio {__version__}</b><p>Edits photos with plain-language instructions, each "
                          "applied only where it belongs (“Focus on Your Instruction”, CVPR 2024, on "
                          "InstructPix2Pix).</p>")

    def closeEvent(self, event) -> None:
        if not self._may_discard():
            event.ignore()
            return
        self.hide()  # the current step may take a moment to finish
        self.jobs.cancel_all()
        self.runner.close()  # whoever awaits a job's result is cancelled
        self.client.cancel()
        if self._open_task is not None:
            self._open_task.cancel()  # the project being read is dropped unseen
        if self._owns_client:
            self.client.shutdown()
        else:
            for signal, slot in ((self.client.loading, self._on_loading), (self.client.loaded, self._on_loaded),
                                 (self.client.counterReady, self._on_counter_ready)):
                signal.disconnect(slot)
        if self.doc is not None:
            self.recovery.discard(self.doc)
        self.recovery.close()
        event.accept()
