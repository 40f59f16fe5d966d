"""The editor's jobs: each Find regions or Edit the user starts, queued, running or finished.

Plain Python, no Qt (like foi_desktop.document): the window and the results strip observe a
`JobQueue` through its `events`, one emitter per JobEventKind (`queue.events.progress.connect(…)`),
and the job runner (foi_desktop.runner) reports to it what the engine (local or a server's)
says, by job id. Every event carries its job's id and the job as it is after the change, so a
late progress report can never be shown against another job.

Jobs run one at a time and in the order enqueued (`take` gives the runner the oldest queued
job); cancelling a queued job ends it at once, cancelling a running one sets its `cancel`
event (the engine stops within a step) and the runner then reports `cancelled`. Reports about
a job that has already finished are ignored: a cancelled job stays cancelled even if its last
step arrives after the cancel.

Call every method from one thread (the GUI thread; the worker's signals arrive there)."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from foi_engine.protocol import JobKind, JobState

from .document.events import EmitterGroup


@dataclass(frozen=True)
class Job:
    """One job as it is now; every change makes a new Job (so a view may keep one safely)."""

    id: int
    kind: JobKind
    state: JobState = JobState.QUEUED
    progress: float = 0.0  # 0–1
    step: int = 0  # steps done
    steps: int = 0
    preview: Any = None  # the latest preview picture (PIL image), None before the first
    result: Any = None  # the LocateResult or EditResult when done
    error: str | None = None  # what went wrong, for a person, when failed
    request: Any = field(default=None, repr=False, compare=False)  # what the runner needs (an EditRequest…)
    label: str = ""  # a line for a job list ("Edit: make it winter")


class JobEventKind(StrEnum):
    ADDED = "added"
    STATE = "state"  # queued → running → done/failed/cancelled
    PROGRESS = "progress"  # a step done, perhaps with a new preview
    REMOVED = "removed"  # forgotten: a view drops its tile


@dataclass(frozen=True)
class JobEvent:
    kind: JobEventKind
    job_id: int
    job: Job


class JobError(Exception):
    """A report that names no job of this queue (a programming error, not a user's)."""


class JobQueue:
    def __init__(self):
        self.events = EmitterGroup(JobEventKind, JobEvent)
        self._jobs: dict[int, Job] = {}
        self._cancels: dict[int, threading.Event] = {}
        self._ids = itertools.count(1)

    # -- what the window does ---------------------------------------------------------------
    def enqueue(self, kind: JobKind, request: Any = None, label: str = "") -> Job:
        if not isinstance(kind, JobKind):
            raise TypeError(f"kind must be a JobKind, not {kind!r}")
        job = Job(next(self._ids), kind, request=request, label=label)
        self._jobs[job.id] = job
        self._cancels[job.id] = threading.Event()
        self._emit(JobEventKind.ADDED, job)
        return job

    def cancel(self, job_id: int) -> Job:
        """A queued job ends now; a running one is asked to stop (the runner reports back)."""
        job = self.get(job_id)
        if job.state.finished:
            return job
        self._cancels[job_id].set()
        if job.state is JobState.QUEUED:
            return self._change(job, JobEventKind.STATE, state=JobState.CANCELLED, request=None)
        return job

    def cancel_all(self) -> None:
        for job in self.active():
            self.cancel(job.id)

    def forget(self, job_id: int) -> None:
        """Drop a finished job: a failed one the user has read, one whose result the document keeps."""
        job = self.get(job_id)
        if not job.state.finished:
            raise JobError(f"Job {job_id} has not finished: cancel it first.")
        del self._jobs[job_id]
        del self._cancels[job_id]
        self._emit(JobEventKind.REMOVED, job)

    def forget_finished(self) -> None:
        """Drop finished jobs (their results stay wherever the document keeps them)."""
        for job_id in [j.id for j in self._jobs.values() if j.state.finished]:
            self.forget(job_id)

    # -- what views read ---------------------------------------------------------------------
    def get(self, job_id: int) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobError(f"No job {job_id} in this queue.") from None

    def jobs(self) -> list[Job]:
        """Every job still held, oldest first."""
        return list(self._jobs.values())

    def active(self) -> list[Job]:
        return [job for job in self._jobs.values() if not job.state.finished]

    def running(self) -> Job | None:
        return next((job for job in self._jobs.values() if job.state is JobState.RUNNING), None)

    def cancel_event(self, job_id: int) -> threading.Event:
        """The event to hand the engine as `cancel` for this job."""
        self.get(job_id)
        return self._cancels[job_id]

    # -- what the runner reports -------------------------------------------------------------
    def take(self) -> Job | None:
        """The oldest queued job, now running; None when a job runs already or none waits."""
        if self.running() is not None:
            return None
        job = next((job for job in self._jobs.values() if job.state is JobState.QUEUED), None)
        if job is None:
            return None
        return self._change(job, JobEventKind.STATE, state=JobState.RUNNING)

    def progress(self, job_id: int, step: int, steps: int, preview: Any = None) -> Job:
        """step counts from 0, as the engine's on_step says it; a preview of None keeps the last."""
        job = self.get(job_id)
        if job.state is not JobState.RUNNING:
            return job
        changes = {"step": step + 1, "steps": steps, "progress": min(1.0, (step + 1) / steps) if steps else 0.0}
        if preview is not None:
            changes["preview"] = preview
        return self._change(job, JobEventKind.PROGRESS, **changes)

    def finish(self, job_id: int, result: Any) -> Job:
        job = self.get(job_id)
        if job.state.finished:
            return job
        return self._change(job, JobEventKind.STATE, state=JobState.DONE, result=result, progress=1.0, request=None)

    def fail(self, job_id: int, error: BaseException | str) -> Job:
        job = self.get(job_id)
        if job.state.finished:
            return job
        return self._change(job, JobEventKind.STATE, state=JobState.FAILED, error=str(error), request=None)

    def cancelled(self, job_id: int) -> Job:
        job = self.get(job_id)
        if job.state.finished:
            return job
        return self._change(job, JobEventKind.STATE, state=JobState.CANCELLED, request=None)

    # -- plumbing ------------------------------------------------------------------------------
    def _change(self, job: Job, kind: JobEventKind, **changes) -> Job:
        job = dataclasses.replace(job, **changes)
        self._jobs[job.id] = job
        self._emit(kind, job)
        return job

    def _emit(self, kind: JobEventKind, job: Job) -> None:
        self.events[kind].emit(job_id=job.id, job=job)
