"""The engine's thread: one thread owns the engine; requests go in, signals come out.

`EngineWorker` lives in the thread and is the only code that touches the engine: any `Engine`
(foi_engine.protocol), the model loaded here (`FoiEngine`) or a `foi serve` server's
(`RemoteEngine`), opened by `open_engine` from the user's `ModelChoice`. `EngineClient` lives
in the UI thread and turns requests into awaitables (qasync futures), so the job runner reads
`result = await client.edit(...)` while the event loop keeps painting; progress carries the job
id the request was made for. The engine loads (or connects) lazily, on the first request that
needs it; a local model's tokenizer, which counts an instruction's tokens, as soon as the model
is chosen. A server counts them itself (`ServerTokenCounts`, in a thread of its own): reading a
tokenizer here would load torch, seconds this computer need not spend.

The engine's thread is a plain daemon thread (Qt queues its signals to the UI thread): quitting
waits for a local model's step under way, and on a server, whose every wait stops on cancel,
half a second at most; a thread still busy then never holds up the process's exit, and what
it says later goes unheard."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from foi_engine import Cancelled, FoiError, InstructionError, ModelError, threads
from foi_engine.catalog import is_server_url, model_settings
from foi_engine.errors import ServerGoneError, as_foi_error
from foi_engine.prompt import count_tokens
from foi_engine.protocol import EngineInfo

log = logging.getLogger(__name__)
# A live preview at most this often: decoding and painting it costs the UI a few ms.
PREVIEW_INTERVAL_S = 0.25
COUNT_AFTER_MS = 250  # a server counts an instruction list once typing pauses this long
COUNT_TIMEOUT_S = 5.0  # a counter that waits longer on a server stays empty
RECOUNT_AFTER_S = 10.0  # a list whose count failed is asked again after this long
QUIT_WAIT_S = 60.0  # quitting waits this long for a local model's step under way to end
QUIT_WAIT_SERVER_S = 0.5  # on a server: every wait there stops on cancel, a silent server's too


@dataclass(frozen=True)
class ModelChoice:
    """Where runs happen, as `open_engine` takes it: a model name or folder loaded here (on
    `device`, in `precision` "auto", "float32" or "float16"), or a `foi serve` server's URL
    (http:// or https://, with its `token`), whose model `server_model` runs there (None: the
    server's first)."""

    model: str
    device: str | None = None
    precision: str = "auto"
    threads: int = 0  # CPU threads; 0: automatic (foi_engine.threads)
    token: str | None = field(default=None, repr=False)  # the server's; never written to a log
    server_model: str | None = None  # a name from the server's list

    @property
    def remote(self) -> bool:
        return is_server_url(self.model)


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
    job_id: int = 0  # the job it runs for: its progress carries this id


def _open_engine(choice: ModelChoice, progress, cancel: threading.Event | None = None):
    from foi_engine.protocol import open_engine

    return open_engine(choice.model, device=choice.device, precision=choice.precision, progress=progress,
                       token=choice.token, model=choice.server_model, cancel=cancel)


def _load_tokenizer(model: str):
    from foi_engine.loading import load_tokenizer

    return load_tokenizer(model)


@dataclass(frozen=True)
class ServerAnswer:
    """What a server said it runs: its first model's EngineInfo, and the names of all it offers."""

    info: EngineInfo
    models: tuple[str, ...]


def check_server(url: str, token: str | None) -> ServerAnswer:
    """Connect to a `foi serve` server, ask what it runs, hang up: its answer, or the FoiError
    that says in one line why not (unreachable, token refused, another version). It waits on
    the network: call it off the UI thread."""
    from foi_engine.remote import RemoteEngine

    with RemoteEngine.connect(url, token=token) as engine:
        models = engine.server_info()["models"]
        remember_server(url, models)
        return ServerAnswer(engine.info(), tuple(model["name"] for model in models))


# What each server said its models ask for (their folders' foi_settings.json), by its address
# as chosen: {model name: settings}, its default first. Every connection tells it (Test
# connection, the token counter's, a run's), the latest answer replacing the one before.
_server_models: dict[str, dict[str, dict]] = {}


def remember_server(url: str, models: list[dict]) -> None:
    """Keep what a server's GET /v1/info said of its models (`RemoteEngine.server_info`)."""
    _server_models[url] = {model["name"]: dict(model["settings"]) for model in models}


def model_settings_for(choice: ModelChoice) -> dict:
    """The run settings the chosen model sets itself: a local model's foi_settings.json (a
    ModelError when it cannot be read), a server's model's as the server said (none until it
    has answered)."""
    if not choice.remote:
        return model_settings(choice.model)
    models = _server_models.get(choice.model, {})
    return dict(models.get(choice.server_model or next(iter(models), ""), {}))


_settled = False


def settle_libraries() -> None:
    """Keep the garbage collector off what loading left: torch, transformers and diffusers leave
    some 400 000 long-lived objects, and a full collection scanning them stalls the window for
    100–600 ms (mid-stroke, mid-τ drag). Freezing moves everything alive now out of its sight —
    once, after they are in: what is frozen is never collected, so a later freeze would keep
    the session's own garbage cycles for good (and on a server there is nothing to freeze)."""
    global _settled
    if not _settled and "torch" in sys.modules:
        gc.freeze()
        _settled = True


DEVICE_NAMES = {"cpu": "CPU", "mps": "Apple graphics"}  # others: "graphics card cuda:0"


def where_runs(choice: ModelChoice, info: EngineInfo | None, note: str | None = None) -> str:
    """The status bar's line: where runs happen and, once the engine has answered, on what
    (a server's note until then: "connecting…")."""
    if choice.remote:
        parts = urlsplit(choice.model)
        server = parts.netloc + parts.path.rstrip("/")
        if info is None:
            model = f" — {choice.server_model}" if choice.server_model else ""
            return f"Runs on server {server}{model} ({note or 'connects when first needed'})"
        return f"Runs on server {server} — {info.model_name}, {info.device}"
    if info is None:
        return "Runs on this computer"
    return f"Runs on this computer ({DEVICE_NAMES.get(info.device, f'graphics card {info.device}')})"


class EngineWorker(QObject):
    """Runs in the engine thread (it lives in the UI thread: its signals are queued there).
    Every signal carries the request id first (progress: the job id its request was made for)."""

    loading = Signal(int, int, int, str)  # id, done, total, text
    loaded = Signal(int, object)  # id, EngineInfo; None: the engine went away (a server stopped answering)
    tokenizer = Signal(int, object, object)  # id, ModelChoice, its tokenizer
    progress = Signal(int, int, int, object)  # job id, step, steps, preview (PIL image or None)
    located = Signal(int, object)  # id, LocateResult
    edited = Signal(int, object)  # id, EditResult
    failed = Signal(int, object)  # id, exception with a readable message
    cancelled = Signal(int)

    def __init__(self):
        super().__init__()
        self._engine = None  # an Engine, opened from the choice on first use
        self._choice: ModelChoice | None = None

    @Slot(object)
    def handle(self, request: _Request) -> None:
        try:
            if request.cancel.is_set():
                raise Cancelled("Cancelled before it started.")
            if request.kind is RequestKind.CONFIGURE:
                choice = request.args[0]
                if self._choice is None or dataclasses.replace(self._choice, threads=choice.threads) != choice:
                    self._engine = None  # another model, device, precision or server; threads change in place
                self._choice = choice
                threads.apply(choice.threads, leave_free=1)  # the UI thread keeps a core
                return
            if request.kind is RequestKind.TOKENIZER:
                choice, model = request.args
                self.tokenizer.emit(request.id, choice, _load_tokenizer(model))
                return
            was_loaded = self._engine is not None
            engine = self._ensure_engine(request)
            if request.kind is RequestKind.LOAD and was_loaded:
                self.loaded.emit(request.id, engine.info())
            elif request.kind is RequestKind.LOCATE:
                image, instructions, settings, seed = request.args
                cancel = {"cancel": request.cancel} if self._choice.remote else {}  # one pass here: no cancel
                self.located.emit(request.id, engine.locate(image, instructions, self._with_server_settings(settings),
                                                            seed, **cancel))
            elif request.kind is RequestKind.EDIT:
                image, instructions, settings, seed, masks = request.args
                settings = self._with_server_settings(settings)
                self.edited.emit(request.id, engine.edit(
                    image, instructions, settings, seed=seed, masks=masks,
                    on_step=self._step_reporter(request), cancel=request.cancel))
        except Cancelled:
            self.cancelled.emit(request.id)
        except BaseException as error:  # noqa: BLE001 - the thread must survive anything the model does
            if isinstance(error, ServerGoneError):
                # The server may come back (restarted): the next request connects afresh.
                self._engine = None
                self.loaded.emit(request.id, None)
            elif not isinstance(error, FoiError):
                log.error("The engine failed", exc_info=error)  # the message says the log has the details
            self.failed.emit(request.id, as_foi_error(error))

    def _ensure_engine(self, request: _Request):
        if self._engine is None:
            if self._choice is None:
                raise ModelError("No model is chosen: open Settings and choose one.")
            doing = "Connecting to" if self._choice.remote else "Loading"
            self.loading.emit(request.id, 0, 0, f"{doing} {self._choice.model}…")
            self._engine = _open_engine(
                self._choice, lambda done, total, text: self.loading.emit(request.id, int(done), int(total), str(text)),
                request.cancel)
            if self._choice.remote:
                remember_server(self._choice.model, self._engine.server_info()["models"])
            self.loaded.emit(request.id, self._engine.info())
        return self._engine

    def _with_server_settings(self, settings):
        """A server's model's own settings over a run's: the window applies them once it knows
        them (`model_settings_for`), but a first run may leave before it does."""
        if not self._choice.remote:
            return settings
        return dataclasses.replace(settings, **model_settings_for(self._choice))

    def _step_reporter(self, request: _Request):
        last_preview = [0.0]

        def on_step(step, steps, preview):
            now = time.monotonic()
            # step counts from 0: the last one always sends, so the final preview is shown.
            send = step + 1 == steps or now - last_preview[0] >= PREVIEW_INTERVAL_S
            if send:
                last_preview[0] = now
            self.progress.emit(request.job_id, int(step), int(steps), preview if send else None)

        return on_step


class ServerTokenCounts(QObject):
    """A server's token counts for the instruction counter. The window never waits on them:
    they are asked in a thread of their own, one question at a time, for the latest list once
    typing pauses, and each answer is kept. Until a list's answer comes, `count` gives the last
    one (a keystroke stale); a server that does not answer leaves the counter empty. The first
    answer also tells what the server's models ask for (`model_settings_for`)."""

    counted = Signal(object)  # the model's most tokens (None: not known yet): ask `count` again
    _replied = Signal(object, object)  # from the thread: the texts asked about, (count, most) or the error

    def __init__(self, choice: ModelChoice, parent: QObject | None = None):
        super().__init__(parent)
        self._choice = choice
        self._engine = None  # a RemoteEngine, made in the thread (it reads certificates)
        self._answers: dict[tuple[str, ...], int | InstructionError] = {}
        self._last: int | InstructionError | None = None
        self._max_tokens: int | None = None
        self._wanted: list | None = None  # the instructions to ask about next
        self._asking = self._closed = False
        self._lock = threading.Lock()  # between close and a thread's answer: none comes after close
        self._failed: tuple[tuple[str, ...] | None, float] = (None, 0.0)
        self._timer = QTimer(self, singleShot=True, interval=COUNT_AFTER_MS)
        self._timer.timeout.connect(self._ask)
        self._replied.connect(self._on_reply)
        self._ask(())  # connect now: the counter's limit is known before the first run

    def count(self, instructions) -> int | None:
        """The list's count, else the last one while the server is asked; raises the
        InstructionError a run would meet (the server's sentence)."""
        instructions = list(instructions)
        texts = tuple(instruction.text for instruction in instructions)
        answer = self._answers.get(texts)
        if answer is None:
            failed, when = self._failed
            if texts != failed or time.monotonic() - when > RECOUNT_AFTER_S:
                self._wanted = instructions
                self._timer.start()
            answer = self._last
        if isinstance(answer, InstructionError):
            raise answer
        return answer

    def close(self) -> None:
        """No more questions, and no waiting (quitting never waits on the network): a question
        under way is left to its thread, which drops the answer and hangs up."""
        self._timer.stop()
        with self._lock:
            self._closed = True
        if not self._asking:
            self._hang_up()
        self.deleteLater()

    def _ask(self, instructions=None) -> None:
        if instructions is None:
            instructions, self._wanted = self._wanted, None
        if self._closed or self._asking or instructions is None:
            return
        self._asking = True
        # A daemon: a server that never answers keeps it no longer than its timeout, and
        # holds no one up meanwhile, not even the interpreter's exit.
        threading.Thread(target=self._question, args=(list(instructions),), name="foi-token-count",
                         daemon=True).start()

    def _question(self, instructions: list) -> None:  # in its thread
        texts = tuple(instruction.text for instruction in instructions)
        try:
            if self._engine is None:
                from foi_engine.remote import RemoteEngine

                choice = self._choice
                self._engine = RemoteEngine(choice.model, token=choice.token, model=choice.server_model,
                                            connect_timeout=COUNT_TIMEOUT_S, read_timeout=COUNT_TIMEOUT_S)
            count = self._engine.count_tokens(instructions) if instructions else None
            reply = (count, self._engine.info().max_tokens, self._engine.server_info()["models"])
        except Exception as error:  # noqa: BLE001 - said in the UI thread: a counter never breaks typing
            reply = error
        with self._lock:
            if not self._closed:  # else this object may be gone: nothing of Qt is touched
                self._replied.emit(texts, reply)
                return
        self._hang_up()

    def _hang_up(self) -> None:
        if self._engine is not None:
            self._engine.close()

    @Slot(object, object)
    def _on_reply(self, texts: tuple[str, ...], reply) -> None:
        self._asking = False
        if self._closed:  # answered just before close
            self._hang_up()
            return
        if isinstance(reply, tuple):
            count, self._max_tokens, models = reply
            remember_server(self._choice.model, models)
        elif isinstance(reply, InstructionError):
            count = reply  # too long, too many: the counter says why, as a run would
        else:
            count, self._failed = None, (texts, time.monotonic())
            if not isinstance(reply, FoiError):
                log.warning("Counting tokens on the server failed", exc_info=reply)
        if texts:
            if count is not None:
                if len(self._answers) > 256:
                    self._answers.clear()
                self._answers[texts] = count
            self._last = count
        self.counted.emit(self._max_tokens)
        self._ask()  # typed on meanwhile


def _serve(worker: EngineWorker, requests: queue.SimpleQueue, stopping: threading.Event) -> None:
    """The engine thread: the requests in their order, until shutdown."""
    while not stopping.is_set():
        request = requests.get()
        if request is None or stopping.is_set():
            return
        worker.handle(request)


class EngineClient(QObject):
    """UI-thread side: start requests, await their outcome, cancel them."""

    loading = Signal(int, int, str)  # done, total, text
    loaded = Signal(object)  # EngineInfo; None: the engine went away, the next run connects again
    # The model's most tokens (None: not known): count_tokens counts from now on, or counts
    # anew (a server's count came). Locally once the model's tokenizer is read.
    counterReady = Signal(object)
    progress = Signal(int, int, int, object)  # job id, step, steps, preview or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[_Request, asyncio.Future]] = {}
        self.info: EngineInfo | None = None
        self.choice: ModelChoice | None = None
        self._tokenizer = None  # the chosen model's, read here: counting never waits for a run
        self._server_counts: ServerTokenCounts | None = None  # a server's counts instead
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._worker = EngineWorker()
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
        # A daemon, holding nothing of this object: a server that never answers may keep it
        # past quitting (its own timeouts end it), never the process.
        self._thread = threading.Thread(target=_serve, args=(self._worker, self._requests, self._stopping),
                                        name="FoI engine", daemon=True)
        self._thread.start()

    # -- requests ---------------------------------------------------------------
    def set_model(self, choice: ModelChoice) -> None:
        """Use this model (or server) from the next request on; nothing loads until one needs
        it but the token counter (counterReady says when: a local model's tokenizer is read, a
        model not on this computer has none yet; a server is asked in the background)."""
        if choice == self.choice:
            return  # keep the loaded engine
        self.choice, self.info, self._tokenizer = choice, None, None
        self._requests.put(_Request(0, RequestKind.CONFIGURE, (choice,)))
        if self._server_counts is not None:
            self._server_counts.close()
            self._server_counts = None
        if choice.remote:
            self._server_counts = ServerTokenCounts(choice, self)
            self._server_counts.counted.connect(self.counterReady)
        else:
            self._read_tokenizer(choice.model)

    def load(self) -> asyncio.Future:
        """Load the chosen model (or connect to the server) now; locate and edit would anyway."""
        return self._start(RequestKind.LOAD)

    def locate(self, image, instructions, settings, seed, job_id: int = 0,
               cancel: threading.Event | None = None) -> asyncio.Future:
        return self._start(RequestKind.LOCATE, image, tuple(instructions), settings, seed, job_id=job_id,
                           cancel=cancel)

    def edit(self, image, instructions, settings, seed, masks, job_id: int = 0,
             cancel: threading.Event | None = None) -> asyncio.Future:
        """cancel: the job's own event (it stops within a step once set); progress carries job_id."""
        return self._start(RequestKind.EDIT, image, tuple(instructions), settings, seed, masks, job_id=job_id,
                           cancel=cancel)

    def cancel(self) -> None:
        """Every running and queued request stops within one step."""
        for request, _future in self._pending.values():
            request.cancel.set()

    def count_tokens(self, instructions) -> int | None:
        """Tokens the instructions use, or None before the model's tokenizer is read (a server:
        before it answered). It never waits: the UI thread may use it while the worker runs."""
        if self._server_counts is not None:
            return self._server_counts.count(instructions)
        try:
            if self._tokenizer is not None:
                return count_tokens(self._tokenizer, list(instructions))
        except Exception:  # noqa: BLE001 - a counter must never break typing
            pass
        return None

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Cancel what runs and stop the engine's thread: True once it has ended. It waits up to
        timeout_s (None: QUIT_WAIT_S for a local model's step under way to end, QUIT_WAIT_SERVER_S
        on a server, where every wait stops on cancel); a thread still busy then is left to end
        on its own (a daemon: the process does not wait for it), its signals unheard."""
        self.cancel()
        if self._server_counts is not None:
            self._server_counts.close()
        self._stopping.set()
        self._requests.put(None)
        if timeout_s is None:
            timeout_s = QUIT_WAIT_SERVER_S if self.choice is not None and self.choice.remote else QUIT_WAIT_S
        self._thread.join(timeout_s)
        self._worker.blockSignals(True)  # whatever it says from now on, nobody is left to hear it
        return not self._thread.is_alive()

    # -- plumbing -----------------------------------------------------------------
    def _start(self, kind: RequestKind, *args, job_id: int = 0,
               cancel: threading.Event | None = None) -> asyncio.Future:
        future = asyncio.get_event_loop().create_future()
        request = _Request(next(self._ids), kind, args, cancel or threading.Event(), job_id)
        self._pending[request.id] = (request, future)
        self._requests.put(request)
        return future

    def _read_tokenizer(self, model: str) -> None:
        # No future: a tokenizer that cannot be read leaves the counter silent.
        self._requests.put(_Request(next(self._ids), RequestKind.TOKENIZER, (self.choice, model)))

    @Slot(int, int, int, str)
    def _on_loading(self, _request_id: int, done: int, total: int, text: str) -> None:
        self.loading.emit(done, total, text)

    @Slot(int, int, int, object)
    def _on_progress(self, job_id: int, step: int, steps: int, preview) -> None:
        self.progress.emit(job_id, step, steps, preview)

    @Slot(int)
    def _on_cancelled(self, request_id: int) -> None:
        self._reject(request_id, Cancelled("Cancelled."))

    @Slot(int, object)
    def _on_loaded(self, request_id: int, info: EngineInfo | None) -> None:
        self.info = info
        self.loaded.emit(info)
        if info is not None and self._tokenizer is None and not self.choice.remote:
            self._read_tokenizer(info.model_name)  # a model downloaded just now
        pending = self._pending.get(request_id)
        if info is not None and pending is not None and pending[0].kind is RequestKind.LOAD:
            self._resolve(request_id, info)

    @Slot(int, object, object)
    def _on_tokenizer(self, _request_id: int, choice: ModelChoice, tokenizer) -> None:
        if choice == self.choice:  # not one chosen before and replaced since
            self._tokenizer = tokenizer
            self.counterReady.emit(tokenizer.model_max_length)

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
