"""Runs the editor's jobs (foi_desktop.jobs) on the engine client, one at a time, oldest first.

The window enqueues jobs and binds its views to the `JobQueue`; the `JobRunner` is the one
place that takes a job, hands it to the `EngineClient` with the job's id and cancel event, and
reports back to the queue what the engine said: progress (by job id, so a report that arrives
late, for a job already ended, changes nothing), the result, the error, or that it stopped. The
split follows Krita AI Diffusion's: a client speaking for the engine (here or on a server), a
jobs model the UI observes, and nothing in the window that runs anything itself.

Plain Python and asyncio (the qasync loop): no Qt here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PIL import Image

from foi_engine import Cancelled, EditSettings, Instruction, ModelError

from .jobs import Job, JobError, JobEvent, JobKind, JobQueue


@dataclass(frozen=True)
class LocateRequest:
    """What Find regions needs, frozen when the user asks: the layers may change meanwhile,
    and the found maps go to the layers that asked (`Document.apply_grounding`)."""

    photo: Image.Image
    instructions: list[Instruction]
    settings: EditSettings
    seed: int
    layer_ids: list[str]

    @classmethod
    def of(cls, doc) -> "LocateRequest":
        """Raises InstructionError for an empty instruction, as `Document.edit_request` does."""
        return cls(doc.photo, doc.instructions(), doc.settings, doc.seed, [layer.id for layer in doc.layers])

    def engine_arguments(self) -> dict:
        """What `Engine.locate` and `EngineClient.locate` take from the request, by name."""
        return {"image": self.photo, "instructions": self.instructions, "settings": self.settings, "seed": self.seed}


class JobRunner:
    """Takes the queue's jobs as they come and runs them on `client`. A job's request is a
    `LocateRequest` (Find regions) or a `Document.EditRequest` (Edit).

    ask_model(error) is awaited when the model chosen here cannot be loaded: True when the user
    chose another one (the job then runs again on it), False for "not now" (the job and those
    waiting behind it, which need a model too, are cancelled)."""

    def __init__(self, queue: JobQueue, client, ask_model: Callable[[ModelError], Awaitable[bool]] | None = None):
        self.queue, self.client = queue, client
        self._ask_model = ask_model
        self._running: asyncio.Task | None = None
        self._waiters: dict[int, list[asyncio.Future]] = {}
        self._closed = False
        queue.events.added.connect(self._on_added)
        queue.events.state.connect(self._on_state)
        client.progress.connect(self._on_progress)

    def wait(self, job_id: int) -> asyncio.Future:
        """A future of the job as it finished (done, failed or cancelled)."""
        future = asyncio.get_event_loop().create_future()
        job = self.queue.get(job_id)
        if job.state.finished:
            future.set_result(job)
        else:
            self._waiters.setdefault(job_id, []).append(future)
        return future

    def close(self) -> None:
        """Stop taking jobs and let go of the client (it may outlive the window); whoever awaits
        a job is cancelled. The queue's jobs should be cancelled first."""
        if self._closed:
            return  # a window may be closed twice
        self._closed = True
        self.client.progress.disconnect(self._on_progress)
        self.queue.events.added.disconnect(self._on_added)
        self.queue.events.state.disconnect(self._on_state)
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self._waiters.clear()

    # -- plumbing ------------------------------------------------------------------------------
    def _on_added(self, _event: JobEvent) -> None:
        # Not inside the queue's announcement of the new job: its other observers hear
        # "added" before "running".
        asyncio.get_event_loop().call_soon(self._next)

    def _on_state(self, event: JobEvent) -> None:
        if event.job.state.finished:
            for future in self._waiters.pop(event.job_id, []):
                if not future.done():
                    future.set_result(event.job)

    def _on_progress(self, job_id: int, step: int, steps: int, preview) -> None:
        try:
            self.queue.progress(job_id, step, steps, preview)
        except JobError:
            pass  # a job already forgotten, or a request made outside the queue

    def _next(self) -> None:
        if self._closed or (self._running is not None and not self._running.done()):
            return
        job = self.queue.take()
        if job is not None:
            self._running = asyncio.ensure_future(self._run(job))

    async def _run(self, job: Job) -> None:
        try:
            result = await self._outcome(job)
        except Cancelled:
            self.queue.cancelled(job.id)
        except asyncio.CancelledError:
            self.queue.cancelled(job.id)
            raise
        except Exception as error:  # noqa: BLE001 - the worker made it a FoiError with a message for a person
            self.queue.fail(job.id, error)
        else:
            self.queue.finish(job.id, result)
        finally:
            self._running = None
        self._next()

    async def _outcome(self, job: Job):
        """The job's result; when the model chosen here is missing, the user may choose another
        and the job runs again on it."""
        while True:
            try:
                return await self._call(job)
            except ModelError as error:
                if self._ask_model is None or self.client.choice is None or self.client.choice.remote:
                    raise  # a server's models are the server's: nothing to choose here
                if not await self._ask_model(error):
                    self.queue.cancel_all()
                    raise Cancelled("Not run: no model.") from None

    def _call(self, job: Job) -> asyncio.Future:
        request, cancel = job.request, self.queue.cancel_event(job.id)
        run = self.client.locate if job.kind is JobKind.LOCATE else self.client.edit
        return run(**request.engine_arguments(), job_id=job.id, cancel=cancel)
