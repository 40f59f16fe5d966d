"""The jobs of `foi serve`: one queue, one worker thread per device, fair between clients.

A job waits in its client's line; the lines take turns (round-robin), so a client that sends
twenty jobs cannot hold back one that sends one, and each client's own jobs run in the order
sent (FIFO). Each device (one engine per model on it) has a thread that takes the next job
whenever it is free, so the first free device runs it. The web server (server.py) only calls
`submit`, `get`, `cancel` and `subscribe`: nothing here blocks its event loop, and nothing
here knows of HTTP.

Finished jobs keep their result for a while, bounded in count and age, and are then dropped."""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import wire
from .errors import Cancelled, FoiError, ModelError, as_foi_error
from .protocol import JobState

log = logging.getLogger("foi.serve")

PREVIEW_INTERVAL_S = 0.25  # a progress preview at most this often (and always on the last step)


class QueueFullError(FoiError):
    """Too many jobs wait already (for this client, or in all)."""

    title = "The server is busy"


@dataclass
class Device:
    """One device and the engines on it, by model name (every listed model, loaded at start)."""

    name: str
    engines: dict  # model name → Engine


@dataclass(eq=False)
class Job:
    id: str
    client: str
    request: wire.JobRequest | None  # dropped when the job finishes (the photo is large)
    kind: str
    model: str
    number: int  # the order jobs arrived in, for logs
    state: JobState = JobState.QUEUED
    step: int = 0  # steps done
    steps: int = 0
    device: str | None = None
    error: str | None = None
    error_kind: str | None = None
    result: bytes | None = None  # the finished result, as the JSON the result route sends
    created: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    listeners: list = field(default_factory=list)

    def status(self) -> dict:
        """What GET /v1/jobs/{id} answers."""
        return {"id": self.id, "kind": self.kind, "model": self.model, "state": self.state.value,
                "step": self.step, "steps": self.steps,
                "progress": round(self.step / self.steps, 4) if self.steps else (1.0 if self.state is JobState.DONE else 0.0),
                "device": self.device, "error": self.error, "error_kind": self.error_kind}


class Scheduler:
    def __init__(self, devices: list[Device], model_settings: dict | None = None, keep_results: int = 32, keep_seconds: float = 1800.0,
                 max_queued_per_client: int = 8, max_queued: int = 64, preview_interval: float = PREVIEW_INTERVAL_S):
        if not devices:
            raise ValueError("A scheduler needs at least one device.")
        self.devices = devices
        self.models = list(devices[0].engines)
        if any(list(device.engines) != self.models for device in devices):
            raise ValueError("Every device needs the same models.")
        # What GET /v1/info says of each model: its token limit and the settings its folder asks for.
        self.model_info = []
        for name in self.models:
            info = devices[0].engines[name].info()
            self.model_info.append({"name": name, "max_tokens": info.max_tokens, "random_weights": info.random_weights,
                                    "settings": dict((model_settings or {}).get(name, {}))})
        self.keep_results = keep_results
        self.keep_seconds = keep_seconds
        self.max_queued_per_client = max_queued_per_client
        self.max_queued = max_queued
        self.preview_interval = preview_interval
        self._jobs: dict[str, Job] = {}
        self._waiting: OrderedDict[str, deque[Job]] = OrderedDict()  # client → its queued jobs, in turn order
        self._lock = threading.Condition()
        self._numbers = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._stopping = False

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        for device in self.devices:
            thread = threading.Thread(target=self._work, args=(device,), name=f"foi-serve {device.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel every job and let the device threads end (each finishes its current step)."""
        with self._lock:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel.set()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- what the routes call --------------------------------------------------------------
    def model_name(self, model: str | None) -> str:
        """A client's choice of model: a name from this server's list (None: the first)."""
        if model is None:
            return self.models[0]
        if model not in self.models:
            raise ModelError(f"This server has no model {model!r}: it offers {', '.join(self.models)}. "
                             "Choose one of those.")
        return model

    def engine_for(self, model: str | None):
        """An engine of that model, for counting tokens (safe while it runs a job)."""
        return self.devices[0].engines[self.model_name(model)]

    def submit(self, client: str, request: wire.JobRequest) -> Job:
        model = self.model_name(request.model)
        with self._lock:
            self._prune()
            queued = sum(len(line) for line in self._waiting.values())
            mine = len(self._waiting.get(client, ()))
            if mine >= self.max_queued_per_client:
                raise QueueFullError(f"You already have {mine} jobs waiting on this server, its limit: "
                                     "wait for one to finish, then send the next.")
            if queued >= self.max_queued:
                raise QueueFullError(f"The server's queue is full ({queued} jobs wait): try again in a few minutes.")
            job = Job(secrets.token_urlsafe(16), client, request, request.kind, model, next(self._numbers))
            self._jobs[job.id] = job
            self._waiting.setdefault(client, deque()).append(job)
            self._lock.notify()
        log.info("job %d (%s, %s) queued for %s", job.number, job.kind, job.model, client)
        return job

    def get(self, job_id: str, client: str) -> Job | None:
        """The job, if it exists and is this client's (another client's job is not found)."""
        with self._lock:
            self._prune()
            job = self._jobs.get(job_id)
            return job if job is not None and job.client == client else None

    def cancel(self, job_id: str, client: str) -> Job | None:
        """A queued job is cancelled at once; a running one stops within a step."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.client != client:
                return None
            job.cancel.set()
            if job.state is JobState.QUEUED:
                line = self._waiting.get(job.client)
                if line is not None and job in line:
                    line.remove(job)
                    if not line:
                        del self._waiting[job.client]
                self._finish(job, JobState.CANCELLED, "The job was cancelled before it started.", "Cancelled")
            return job

    def subscribe(self, job_id: str, client: str, listener: Callable[[dict], None]):
        """Events of a job from now on, in the thread that makes them: (its status now, an
        unsubscribe function), or None when there is no such job. A finished job gets none."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.client != client:
                return None
            if not job.state.finished:
                job.listeners.append(listener)

            def unsubscribe():
                with self._lock:
                    if listener in job.listeners:
                        job.listeners.remove(listener)

            return {"type": "state", **job.status()}, unsubscribe

    # -- the device threads ----------------------------------------------------------------
    def _take(self) -> Job | None:
        """The next job: the first client in turn gives its oldest; that client goes last."""
        with self._lock:
            while not self._stopping:
                if self._waiting:
                    client, line = next(iter(self._waiting.items()))
                    job = line.popleft()
                    if line:
                        self._waiting.move_to_end(client)
                    else:
                        del self._waiting[client]
                    return job
                self._lock.wait()
            return None

    def _work(self, device: Device) -> None:
        while (job := self._take()) is not None:
            self._run(device, job)

    def _run(self, device: Device, job: Job) -> None:
        with self._lock:
            if job.state is not JobState.QUEUED:
                return
            job.state, job.device = JobState.RUNNING, device.name
            self._emit(job, {"type": "state", **job.status()})
        log.info("job %d runs on %s", job.number, device.name)
        request, engine = job.request, device.engines[job.model]
        try:
            if job.kind == "locate":
                job.steps = 1
                result = engine.locate(request.photo, request.instructions, request.settings, request.seed)
                if job.cancel.is_set():
                    raise Cancelled("The job was cancelled.")
                self._progress(job, 0, 1, None, [0.0])
            else:
                last = [0.0]
                result = engine.edit(request.photo, request.instructions, request.settings, seed=request.seed,
                                     masks=request.masks, cancel=job.cancel,
                                     on_step=lambda i, n, preview: self._progress(job, i, n, preview, last))
            encoded = _json_bytes(wire.result_to_json(result, request.raw_result))
        except Cancelled:
            self._finish(job, JobState.CANCELLED, "The job was cancelled.", "Cancelled")
        except Exception as error:  # noqa: BLE001 - one job's failure must not end the device's thread
            if not isinstance(error, FoiError):
                log.error("job %d failed:\n%s", job.number, traceback.format_exc())
            error = as_foi_error(error)
            self._finish(job, JobState.FAILED, str(error), type(error).__name__)
        else:
            job.result = encoded
            self._finish(job, JobState.DONE, None, None)

    def _progress(self, job: Job, step: int, steps: int, preview, last: list[float]) -> None:
        now = time.monotonic()
        send = preview is not None and (step + 1 == steps or now - last[0] >= self.preview_interval)
        if send:
            last[0] = now
        event = {"type": "progress", "id": job.id, "step": step + 1, "steps": steps,
                 "preview": wire.png(preview) if send else None}
        with self._lock:
            job.step, job.steps = step + 1, steps
            self._emit(job, event)

    def _finish(self, job: Job, state: JobState, error: str | None, error_kind: str | None) -> None:
        with self._lock:
            if job.state.finished:
                return
            job.state, job.error, job.error_kind = state, error, error_kind
            job.finished_at = time.monotonic()
            job.request = None
            self._emit(job, {"type": "state", **job.status()})
            job.listeners.clear()
            self._prune()
        log.info("job %d %s%s", job.number, state.value, f": {error}" if error and state is JobState.FAILED else "")

    def _emit(self, job: Job, event: dict) -> None:
        for listener in list(job.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a gone listener must not stop the job
                log.debug("a listener of job %d failed", job.number, exc_info=True)

    def _prune(self) -> None:
        """Finished jobs older than keep_seconds go, then the oldest beyond keep_results."""
        now = time.monotonic()
        finished = sorted((j for j in self._jobs.values() if j.state.finished), key=lambda j: j.finished_at)
        for n, job in enumerate(finished):
            if now - job.finished_at > self.keep_seconds or len(finished) - n > self.keep_results:
                del self._jobs[job.id]


def _json_bytes(value) -> bytes:
    import json

    return json.dumps(value, separators=(",", ":")).encode("utf-8")
