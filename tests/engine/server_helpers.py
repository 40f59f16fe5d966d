"""A real `foi serve` app on 127.0.0.1 in this process, and a fake engine whose runs wait at a
gate, for the server tests."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import numpy as np
from PIL import Image

from foi_engine import Cancelled, EditSettings, Instruction
from foi_engine.photo import WorkingFrame
from foi_engine.protocol import EngineInfo


@contextlib.contextmanager
def running_server(engines: dict, ssl_certfile=None, ssl_keyfile=None, **options):
    """uvicorn on a free port of 127.0.0.1, in a thread: yields (url, scheduler)."""
    server = LoopbackServer(engines, ssl_certfile, ssl_keyfile, **options)
    server.start()
    try:
        yield server.url, server.scheduler
    finally:
        server.stop()


class LoopbackServer:
    """A `foi serve` app (its scheduler on `engines`) served by uvicorn on 127.0.0.1 in a
    thread. stop() ends it as a killed server ends for its clients: the port closes first,
    their sockets drop, and only then do its jobs stop; start() again is the server restarted
    on the same port, with nothing of its jobs remembered."""

    def __init__(self, engines: dict, ssl_certfile=None, ssl_keyfile=None, **options):
        self.engines, self.options = engines, options
        self.scheduler_options = {k: options.pop(k) for k in ("model_settings", "keep_results", "keep_seconds",
                                                               "max_queued_per_client", "preview_interval")
                                  if k in options}
        self.ssl = (ssl_certfile, ssl_keyfile)
        self.port = 0  # a free one, at the first start
        self.scheduler = None
        self._server = self._thread = self._sock = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl[0] else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        import uvicorn

        from foi_engine.scheduler import Device, Scheduler
        from foi_engine.server import ServerOptions, create_app, listen

        self.scheduler = Scheduler([Device("cpu", self.engines)], **self.scheduler_options)
        self.scheduler.start()
        app = create_app(self.scheduler, ServerOptions(**self.options))
        # foi serve's own socket (the same port again after a stop): a bare socket.socket() has
        # proto 0, on which asyncio leaves Nagle on, and every answer waited ~40 ms for an ACK
        self._sock = listen("127.0.0.1", self.port)
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio",
                                                     ssl_certfile=self.ssl[0], ssl_keyfile=self.ssl[1],
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 20, "the test server to start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
        self.scheduler.stop(5)


def server_info_answer(model: str = "gate") -> dict:
    """What `foi serve` answers to GET /v1/info, for one model."""
    from foi_engine import wire
    from foi_engine.version import version

    return {"api": wire.API_VERSION, "server": "FoI Studio", "version": version(),
            "models": [{"name": model, "max_tokens": 77, "random_weights": True, "settings": {}}],
            "devices": ["cpu"], "limits": {"max_request_bytes": 64 * 1024**2}}


class SilentServer:
    """127.0.0.1, a port that takes connections and never answers; with answers_info, it says
    what it runs (GET /v1/info, as `foi serve` would) and never answers anything else: the
    request is taken and left waiting, unread (reads_slowly: read slowly to its end).
    `asked`: the request lines heard, in order."""

    def __init__(self, answers_info: bool = False, reads_slowly: bool = False):
        self.answers_info, self.reads_slowly = answers_info, reads_slowly
        self.asked: list[str] = []
        self.received = 0  # with reads_slowly: the bytes of the unanswered request read so far
        self.hung_up = threading.Event()  # with reads_slowly: the client closed that connection
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._connections: list[socket.socket] = []
        if answers_info:
            threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._sock.close()
        for connection in self._connections:
            connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._sock.accept()
            except OSError:
                return  # closed
            self._connections.append(connection)
            threading.Thread(target=self._talk, args=(connection,), daemon=True).start()

    def _talk(self, connection: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                self.asked.append(line)
                if not line.startswith("GET /v1/info "):
                    if self.reads_slowly:  # a slow network: 16 KiB every 10 ms, never an answer
                        self.received = len(buffer)
                        while data := connection.recv(16384):
                            self.received += len(data)
                            time.sleep(0.01)
                        self.hung_up.set()
                    return  # left waiting
                body = json.dumps(server_info_answer()).encode()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return


class GateEngine:
    """An Engine whose edits take `steps` steps, each waiting until `gate` is open (or the run is
    cancelled); it records each run's seed in the order runs start."""

    def __init__(self, steps: int = 3, name: str = "gate"):
        self.steps, self.name = steps, name
        self.gate = threading.Event()
        self.started = threading.Event()  # set when a run starts
        self.order: list[int] = []
        self.settings: list[EditSettings] = []  # each edit's, in the same order

    def info(self):
        return EngineInfo(self.name, "cpu", "0", 77, True)

    def count_tokens(self, instructions):
        return 2 + sum(len(i.text.split()) for i in instructions)

    def locate(self, image, instructions, settings=EditSettings(), seed=0):
        raise NotImplementedError

    def edit(self, image, instructions, settings=EditSettings(), seed=0, masks=None, on_step=None, cancel=None):
        from foi_engine.results import EditResult

        self.order.append(seed)
        self.settings.append(settings)
        self.started.set()
        for i in range(self.steps):
            while not self.gate.wait(0.01):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The edit was cancelled.")
            if on_step is not None:
                on_step(i, self.steps, Image.new("RGB", (8, 8), (i, 0, 0)))
        frame = WorkingFrame.for_photo(image.size, settings.resolution)
        return EditResult(Image.new("RGB", frame.size, (seed % 256, 0, 0)), None, None, settings, seed, frame,
                          tuple(instructions), self.name, True)


def small_request(seed: int = 0, model: str | None = None):
    from foi_engine import wire

    photo = Image.fromarray(np.full((64, 64, 3), 120, dtype=np.uint8))
    return wire.JobRequest("edit", model, photo, (Instruction("make it red"),), EditSettings(steps=2, resolution=64),
                           seed)


def small_body(number: int = 0, **changes) -> dict:
    from foi_engine import wire

    request = small_request(number)
    body = wire.request_to_json("edit", request.photo, request.instructions, request.settings, number)
    body.update(changes)
    return body


def wait_until(condition, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
