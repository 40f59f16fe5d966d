"""The engine's thread: one QThread owns the model; requests go in, signals come out.

`EngineWorker` lives in the thread and is the only code that touches the engine.
`EngineClient` lives in the UI thread and turns requests into awaitables (qasync
futures), so window code reads `result = await client.edit(...)` while the event loop
keeps painting. The model loads lazily, on the first request that needs it; its tokenizer,
which counts an instruction's tokens, as soon as the model is chosen."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from PySide6.QtCore import QObject, QThread, Signal, Slot

from foi_engine import Cancelled, FoiError, ModelError, threads
from foi_engine.errors import as_foi_error
from foi_engine.prompt import count_tokens

log = logging.getLogger(__name__)
# A live preview at most this often: decoding and painting it costs the UI a few ms.
PREVIEW_INTERVAL_S = 0.25


@dataclass(frozen=True)
class ModelChoice:
    """Which model to load, where, and in what precision ("auto", "float32", "float16")."""

    model: str
    device: str | None = None
    precision: str = "auto"
    threads: int = 0  # CPU threads; 0: automatic (foi_engine.threads)


@dataclass(frozen=True)
class EngineInfo:
    model_name: str
    device: str
    random_weights: bool
    max_tokens: int
    engine: object = field(repr=False, compare=False)  # for count_tokens only (see EngineClient)


class RequestKind(Enum):
    """What the engine thread is asked to do."""

    CONFIGURE = "configure"  # no reply
    TOKENIZER = "tokenizer"
    LOAD = "load"
    LOCATE = "locate"
    EDIT = "edit"


@dataclass(frozen=True)
class _Request:
    id: int
    kind: RequestKind
    args: tuple = ()
    cancel: threading.Event = field(default_factory=threading.Event)


def _load_engine(choice: ModelChoice, progress):
    from foi_engine import FoiEngine

    return FoiEngine.from_pretrained(choice.model, device=choice.device, precision=choice.precision, progress=progress)


def _load_tokenizer(model: str):
    from foi_engine.loading import load_tokenizer

    return load_tokenizer(model)



class EngineWorker(QObject):
    """Runs in the engine thread. Every signal carries the request id first."""

    loading = Signal(int, int, int, str)  # id, done, total, text
    loaded = Signal(int, object)  # id, EngineInfo
    tokenizer = Signal(int, object, object)  # id, ModelChoice, its tokenizer
    progress = Signal(int, int, int, object)  # id, step, steps, preview (PIL image or None)
    located = Signal(int, object)  # id, LocateResult
    edited = Signal(int, object)  # id, EditResult
    failed = Signal(int, object)  # id, exception with a readable message
    cancelled = Signal(int)

    def __init__(self):
        super().__init__()
        self._engine = None
        self._choice: ModelChoice | None = None

    @Slot(object)
    def handle(self, request: _Request) -> None:
        try:
            if request.cancel.is_set():
                raise Cancelled("Cancelled before it started.")
            if request.kind is RequestKind.CONFIGURE:
                choice = request.args[0]
                if self._choice is None or dataclasses.replace(self._choice, threads=choice.threads) != choice:
                    self._engine = None  # another model, device or precision; threads change in place
                self._choice = choice
                threads.apply(choice.threads, leave_free=1)  # the UI thread keeps a core
                return
            if request.kind is RequestKind.TOKENIZER:
                choice = request.args[0]
                self.tokenizer.emit(request.id, choice, _load_tokenizer(choice.model))
                return
            was_loaded = self._engine is not None
            engine = self._ensure_engine(request)
            if request.kind is RequestKind.LOAD and was_loaded:
                self.loaded.emit(request.id, self._info())
            elif request.kind is RequestKind.LOCATE:
                self.located.emit(request.id, engine.locate(*request.args))
            elif request.kind is RequestKind.EDIT:
                image, instructions, settings, seed, masks = request.args
                self.edited.emit(request.id, engine.edit(
                    image, instructions, settings, seed=seed, masks=masks,
                    on_step=self._step_reporter(request), cancel=request.cancel))
        except Cancelled:
            self.cancelled.emit(request.id)
        except BaseException as error:  # noqa: BLE001 - the thread must survive anything the model does
            if not isinstance(error, FoiError):
                log.error("The engine failed", exc_info=error)  # the message says the log has the details
            self.failed.emit(request.id, as_foi_error(error))

    def _ensure_engine(self, request: _Request):
        if self._engine is None:
            if self._choice is None:
                raise ModelError("No model is chosen: open Settings and choose one.")
            self.loading.emit(request.id, 0, 0, f"Loading {self._choice.model}…")
            self._engine = _load_engine(
                self._choice, lambda done, total, text: self.loading.emit(request.id, int(done), int(total), str(text)))
            self.loaded.emit(request.id, self._info())
        return self._engine

    def _info(self) -> EngineInfo:
        engine = self._engine
        return EngineInfo(engine.model_name, engine.device, engine.random_weights, engine.max_tokens, engine)

    def _step_reporter(self, request: _Request):
        last_preview = [0.0]

        def on_step(step, steps, preview):
            now = time.monotonic()
            # step counts from 0: the last one always sends, so the final preview is shown.
            send = step + 1 == steps or now - last_preview[0] >= PREVIEW_INTERVAL_S
            if send:
                last_preview[0] = now
            self.progress.emit(request.id, int(step), int(steps), preview if send else None)

        return on_step


class EngineClient(QObject):
    """UI-thread side: start requests, await their outcome, cancel them."""

    submit = Signal(object)  # to the worker (queued across threads)
    loading = Signal(int, int, str)  # done, total, text
    loaded = Signal(object)  # EngineInfo
    tokenizerLoaded = Signal(int)  # the model's most tokens: count_tokens counts from now on
    progress = Signal(int, int, object)  # step, steps, preview or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[_Request, asyncio.Future]] = {}
        self.info: EngineInfo | None = None
        self.choice: ModelChoice | None = None
        self._tokenizer = None  # the chosen model's, for counting before the model loads
        self._thread = QThread()
        self._thread.setObjectName("FoI engine")
        self._worker = EngineWorker()
        self._worker.moveToThread(self._thread)
        self.submit.connect(self._worker.handle)
        # Bound slots of this UI-thread object, never lambdas: a lambda would run in the
        # worker's thread, and futures must be settled in the loop's own thread.
        self._worker.loading.connect(self._on_loading)
        self._worker.loaded.connect(self._on_loaded)
        self._worker.tokenizer.connect(self._on_tokenizer)
        self._worker.progress.connect(self._on_progress)
        self._worker.located.connect(self._resolve)
        self._worker.edited.connect(self._resolve)
        self._worker.failed.connect(self._reject)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()

    # -- requests ---------------------------------------------------------------
    def set_model(self, choice: ModelChoice) -> None:
        """Use this model from the next request on; nothing loads until one needs it but its
        tokenizer (tokenizerLoaded says when; a model not on this computer has none yet)."""
        if choice == self.choice:
            return  # keep the loaded engine
        self.choice, self.info, self._tokenizer = choice, None, None
        self.submit.emit(_Request(0, RequestKind.CONFIGURE, (choice,)))
        # No future: a tokenizer that cannot be read leaves the count to the loaded model.
        self.submit.emit(_Request(next(self._ids), RequestKind.TOKENIZER, (choice,)))

    def load(self) -> asyncio.Future:
        """Load the chosen model now (locate and edit would load it anyway)."""
        return self._start(RequestKind.LOAD)

    def locate(self, image, instructions, settings, seed) -> asyncio.Future:
        return self._start(RequestKind.LOCATE, image, tuple(instructions), settings, seed)

    def edit(self, image, instructions, settings, seed, masks) -> asyncio.Future:
        return self._start(RequestKind.EDIT, image, tuple(instructions), settings, seed, masks)

    def cancel(self) -> None:
        """Every running and queued request stops within one step."""
        for request, _future in self._pending.values():
            request.cancel.set()

    def count_tokens(self, instructions) -> int | None:
        """Tokens the instructions use, or None before the model or its tokenizer is loaded.
        The tokenizer only reads its vocabulary, so the UI thread may use it while the worker
        runs."""
        try:
            if self.info is not None:
                return self.info.engine.count_tokens(list(instructions))
            if self._tokenizer is not None:
                return count_tokens(self._tokenizer, list(instructions))
        except Exception:  # noqa: BLE001 - a counter must never break typing
            pass
        return None

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel what runs, stop the thread and wait for it (the current step finishes)."""
        self.cancel()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    # -- plumbing -----------------------------------------------------------------
    def _start(self, kind: RequestKind, *args) -> asyncio.Future:
        future = asyncio.get_event_loop().create_future()
        request = _Request(next(self._ids), kind, args)
        self._pending[request.id] = (request, future)
        self.submit.emit(request)
        return future

    @Slot(int, int, int, str)
    def _on_loading(self, _request_id: int, done: int, total: int, text: str) -> None:
        self.loading.emit(done, total, text)

    @Slot(int, int, int, object)
    def _on_progress(self, _request_id: int, step: int, steps: int, preview) -> None:
        self.progress.emit(step, steps, preview)

    @Slot(int)
    def _on_cancelled(self, request_id: int) -> None:
        self._reject(request_id, Cancelled("Cancelled."))

    @Slot(int, object)
    def _on_loaded(self, request_id: int, info: EngineInfo) -> None:
        self.info = info
        self.loaded.emit(info)
        pending = self._pending.get(request_id)
        if pending is not None and pending[0].kind is RequestKind.LOAD:
            self._resolve(request_id, info)

    @Slot(int, object, object)
    def _on_tokenizer(self, _request_id: int, choice: ModelChoice, tokenizer) -> None:
        if choice == self.choice:  # not one chosen before and replaced since
            self._tokenizer = tokenizer
            self.tokenizerLoaded.emit(tokenizer.model_max_length)

    @Slot(int, object)
    def _resolve(self, request_id: int, value) -> None:
        _request, future = self._pending.pop(request_id, (None, None))
        if future is not None and not future.done():
            future.set_result(value)

    @Slot(int, object)
    def _reject(self, request_id: int, error) -> None:
        _request, future = self._pending.pop(request_id, (None, None))
        if future is not None and not future.done():
            future.set_exception(error)
