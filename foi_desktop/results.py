"""The results history strip: a thumbnail per finished edit, newest last, with the actions
a photographer expects on a version (accept, star, discard, compare, re-run, copy settings);
each says how it was made (FoI or plain InstructPix2Pix) and its seed. After the results come
the jobs still to land (foi_desktop.jobs): queued, running with its progress and latest
preview, or failed with the reason."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QListView, QListWidget, QListWidgetItem, QPushButton, QWidget

from foi_engine.protocol import JobState

from .document import EventKind, follow
from .imaging import pil_to_qimage
from .jobs import JobEventKind

THUMB = 96
JOB_ROLE = Qt.ItemDataRole.UserRole + 1  # a job tile's job id (its UserRole, the entry, is None)
BAR_PX = 6  # a running job's progress bar, along the tile's foot


def method_of(entry) -> str:
    """Which way the result was made: with FoI's focus, or plain InstructPix2Pix."""
    return "FoI" if entry.settings.focus else "Plain IP2P"


def caption(number: int, entry) -> str:
    """The strip's text under a thumbnail: number, method, star, accepted; then the seed."""
    marks = (" ★" if entry.starred else "") + (" ✓" if entry.accepted else "")
    return f"#{number} {method_of(entry)}{marks}\nseed {entry.seed}"


def describe(entry) -> str:
    """A one-line tooltip of what made this result."""
    settings = entry.settings
    lines = [f"{method_of(entry)} · seed {entry.seed} · {settings.steps} steps · strength {settings.strength:g} · "
             f"s_I {settings.image_guidance:g} · s_T {settings.text_guidance:g} · {settings.resolution} px",
             f"Model {entry.model_name}" + (" (random weights: meaningless output)" if entry.random_weights else ""),
             time.strftime("Made %H:%M:%S", time.localtime(entry.created))]
    lines += [f"• {instruction.text}" for instruction in entry.instructions]
    return "\n".join(lines)


def job_caption(job) -> str:
    """A job tile's text (a job still to land, or failed): where it stands, then what it is
    ("seed 123", "Find regions")."""
    if job.state is JobState.RUNNING:
        state = f"Step {job.step}/{job.steps}" if job.steps else "Starting…"
    else:
        state = "Queued" if job.state is JobState.QUEUED else "Failed"
    return f"{state}\n{job.label}"


def job_tooltip(job) -> str:
    if job.state is JobState.FAILED:
        return f"{job.label} did not finish: {job.error}\nDiscard takes it off the strip."
    if job.state is JobState.QUEUED:
        return f"{job.label}: waits for the runs before it. Cancel (Esc) takes it off the queue."
    return f"{job.label}: running. Cancel (Esc) stops it."


def thumb_size(photo_size: tuple[int, int]) -> QSize:
    """A thumbnail's size: the photo's shape, its longer side THUMB."""
    width, height = photo_size
    scale = THUMB / max(width, height)
    return QSize(max(1, round(width * scale)), max(1, round(height * scale)))


def job_icon(job, size: QSize) -> QIcon:
    """A tile the shape of the results' thumbnails: the latest preview (if any), a running
    job's progress along its foot, and a mark for one waiting (…) or failed (!)."""
    pixmap = QPixmap(size)
    pixmap.fill(QColor("#2b2d31"))
    painter = QPainter(pixmap)
    if job.preview is not None:
        painter.drawImage(pixmap.rect(), pil_to_qimage(job.preview))
    if job.state is JobState.RUNNING:
        foot = size.height() - BAR_PX
        painter.fillRect(0, foot, size.width(), BAR_PX, QColor("#1e1f22"))
        painter.fillRect(0, foot, round(size.width() * job.progress), BAR_PX, QColor("#3d6fb6"))
    mark = {JobState.QUEUED: ("…", "#8a8d93"), JobState.FAILED: ("!", "#e06c60")}.get(job.state)
    if mark is not None:
        font = painter.font()
        font.setPixelSize(THUMB // 3)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(mark[1]))
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, mark[0])
    painter.end()
    return QIcon(pixmap)


def shown_in_strip(job) -> bool:
    """Jobs still to land, and failed ones until the user has read them; a done job's result
    is a result tile, a cancelled job is gone."""
    return job.state in (JobState.QUEUED, JobState.RUNNING, JobState.FAILED)


class ResultsStrip(QWidget):
    selectionChanged = Signal(object)  # ResultEntry or None
    acceptRequested = Signal(object)
    discardRequested = Signal(object)
    rerunRequested = Signal(object)
    copySettingsRequested = Signal(object)
    starRequested = Signal(object)
    forgetJobRequested = Signal(int)  # a failed job's id: Discard on its tile

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.jobs = None  # the JobQueue whose jobs follow the results
        self.list = QListWidget(objectName="history")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 24, THUMB + 40))  # evenly spaced, whatever the captions' widths
        self.list.setFixedHeight(THUMB + 56)  # two lines of caption
        self.list.currentRowChanged.connect(lambda _row: self._selection_moved())
        self._shown = None  # the entry selectionChanged last announced
        self.accept_button = QPushButton("Accept", toolTip="Keep this version: Export writes it")
        self.discard_button = QPushButton("Discard", toolTip="Remove this version from the history")
        self.rerun_button = QPushButton("New seed", toolTip="Run the same edit again with another seed")
        self.copy_button = QPushButton("Use its settings", toolTip="Copy this version's settings and seed")
        self.star_button = QPushButton("Star", toolTip="Mark this version as one of your picks (★); "
                                                       "star as many as you like")
        buttons = QGridLayout()
        for n, (button, signal) in enumerate(((self.accept_button, self.acceptRequested),
                                              (self.star_button, self.starRequested),
                                              (self.discard_button, self.discardRequested),
                                              (self.rerun_button, self.rerunRequested),
                                              (self.copy_button, self.copySettingsRequested))):
            if button is self.discard_button:
                button.clicked.connect(self._discard)  # a result, or a failed job's tile
            else:
                button.clicked.connect(lambda _checked=False, s=signal: self.current() and s.emit(self.current()))
            # A click must not leave the focus on a button the action may disable (Qt would pass
            # it on to the next box, where number keys type); Tab still reaches it.
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            buttons.addWidget(button, n // 2, n % 2)
        buttons.setRowStretch(3, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setMaximumHeight(THUMB + 76)  # a strip: the canvas keeps the height
        self._enable()

    def set_document(self, doc) -> None:
        follow(self, doc, [(EventKind.RESULTS, self._on_results)])
        self._rebuild()

    def set_jobs(self, jobs) -> None:
        """Show the queue's jobs after the results, as they change."""
        self.jobs = jobs
        jobs.events.progress.connect(self._on_job_progress)
        for kind in (JobEventKind.ADDED, JobEventKind.STATE, JobEventKind.REMOVED):
            jobs.events[kind].connect(self._on_jobs_changed)
        self._rebuild()

    def current(self):
        """The selected result, None when nothing or a job is selected."""
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def current_job_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else item.data(JOB_ROLE)

    def select(self, entry) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) is entry:
                self.list.setCurrentRow(row)
                return

    def _on_results(self, _event) -> None:
        self._rebuild()

    def _on_job_progress(self, event) -> None:
        item = self._job_item(event.job_id)
        if item is not None:  # a step: this tile alone
            self._show_job(item, event.job)

    def _on_jobs_changed(self, _event) -> None:
        self._rebuild()

    def _job_item(self, job_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            if self.list.item(row).data(JOB_ROLE) == job_id:
                return self.list.item(row)
        return None

    def _show_job(self, item: QListWidgetItem, job) -> None:
        item.setIcon(job_icon(job, thumb_size(self.doc.size if self.doc else (THUMB, THUMB))))
        item.setText(job_caption(job))
        item.setToolTip(job_tooltip(job))

    def _rebuild(self) -> None:
        """The results, then the jobs; thumbnails are made once per entry and kept on the item."""
        current, current_job = self.current(), self.current_job_id()
        known = {}
        for row in range(self.list.count()):
            item = self.list.item(row)
            known[id(item.data(Qt.ItemDataRole.UserRole))] = item.icon()
        self.list.blockSignals(True)
        self.list.clear()
        for number, entry in enumerate(self.doc.results if self.doc else [], start=1):
            icon = known.get(id(entry)) or self._thumbnail(entry)
            item = QListWidgetItem(icon, caption(number, entry))
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(describe(entry))
            self.list.addItem(item)
        for job in self.jobs.jobs() if self.jobs is not None else []:
            if shown_in_strip(job):
                item = QListWidgetItem()
                item.setData(JOB_ROLE, job.id)
                self._show_job(item, job)
                self.list.addItem(item)
        if current is not None and self.doc and current in self.doc.results:
            self.select(current)
        elif current_job is not None and self._job_item(current_job) is not None:
            self.list.setCurrentItem(self._job_item(current_job))
        self.list.blockSignals(False)
        self._selection_moved()

    def _selection_moved(self) -> None:
        """Tell the window only when another result (or none) is selected: a job coming or
        going around it must not repaint the canvas under a live preview."""
        self._enable()
        if self.current() is not self._shown:
            self._shown = self.current()
            self.selectionChanged.emit(self._shown)

    def _discard(self) -> None:
        job_id = self.current_job_id()
        if self.current() is not None:
            self.discardRequested.emit(self.current())
        elif job_id is not None and self.jobs.get(job_id).state is JobState.FAILED:
            self.forgetJobRequested.emit(job_id)

    @staticmethod
    def _thumbnail(entry) -> QIcon:
        image = entry.image.copy()
        image.thumbnail((THUMB, THUMB))
        return QIcon(QPixmap.fromImage(pil_to_qimage(image)))

    def _enable(self) -> None:
        current, job_id = self.current(), self.current_job_id()
        for button in (self.accept_button, self.star_button, self.rerun_button, self.copy_button):
            button.setEnabled(current is not None)
        failed = job_id is not None and self.jobs.get(job_id).state is JobState.FAILED
        self.discard_button.setEnabled(current is not None or failed)
        self.star_button.setText("Unstar" if current is not None and current.starred else "Star")
