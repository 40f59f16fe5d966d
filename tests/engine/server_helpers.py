"""A real `foi serve` app on 127.0.0.1 in this process, and a fake engine whose runs wait at a
gate, for the server tests."""

from __future__ import annotations

import contextlib
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
    import uvicorn

    from foi_engine.scheduler import Device, Scheduler
    from foi_engine.server import ServerOptions, create_app

    scheduler_options = {k: options.pop(k) for k in ("keep_results", "keep_seconds", "max_queued_per_client",
                                                     "preview_interval") if k in options}
    scheduler = Scheduler([Device("cpu", engines)], **scheduler_options)
    scheduler.start()
    app = create_app(scheduler, ServerOptions(**options))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio",
                                           ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"{'https' if ssl_certfile else 'http'}://127.0.0.1:{port}", scheduler
    finally:
        server.should_exit = True
        scheduler.stop(5)
        thread.join(10)
        sock.close()


class GateEngine:
    """An Engine whose edits take `steps` steps, each waiting until `gate` is open (or the run is
    cancelled); it records each run's seed in the order runs start."""

    def __init__(self, steps: int = 3):
        self.steps = steps
        self.gate = threading.Event()
        self.started = threading.Event()  # set when a run starts
        self.order: list[int] = []

    def info(self):
        return EngineInfo("gate", "cpu", "0", 77, True)

    def count_tokens(self, instructions):
        return 2 + sum(len(i.text.split()) for i in instructions)

    def locate(self, image, instructions, settings=EditSettings(), seed=0):
        raise NotImplementedError

    def edit(self, image, instructions, settings=EditSettings(), seed=0, masks=None, on_step=None, cancel=None):
        from foi_engine.results import EditResult

        self.order.append(seed)
        self.started.set()
        for i in range(self.steps):
            while not self.gate.wait(0.01):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The edit was cancelled.")
            if on_step is not None:
                on_step(i, self.steps, Image.new("RGB", (8, 8), (i, 0, 0)))
        frame = WorkingFrame.for_photo(image.size, settings.resolution)
        return EditResult(Image.new("RGB", frame.size, (seed % 256, 0, 0)), None, None, settings, seed, frame,
                          tuple(instructions), "gate", True)


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
