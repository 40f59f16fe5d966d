"""What `foi serve` costs over running the engine here, side by side in one run.

    python bench/bench_server.py [--size 256] [--steps 10] [--repeats 5]

A real server (FastAPI + uvicorn, the scheduler, the WebSocket of progress) on 127.0.0.1
in this process, over one tiny-random engine; the same engine also runs locally. Measured:
- per-edit overhead: the same edit (photo, instructions) locally and through the server,
  alternated, each run with its own seed so the engine's first-step cache helps neither side;
  median seconds and their ratio (target: the server ≤ 3 % slower), split into the server's own
  cost per job (the remote edit's time less the engine's run there, median over jobs: nearly
  free of the run-to-run noise of a busy machine) and the engine's run in the server's device
  thread against here;
- preview latency: from the moment the engine hands a step's preview to the server until the
  client has it decoded (target ≤ 100 ms), median and worst;
- throughput with two clients: two threads, each its own connection, editing at once,
  against one client alone (the server runs one job at a time on its one device: the
  figure says that fair sharing costs nothing, not that it is faster).

Server and client share this process and its cores, so the overhead and latency here
include their contention for the interpreter: a separate server would do no worse.
Prints the figures and writes bench/results/server.json."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine"))  # running_server: the tests' in-process server
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class StepClock:
    """An Engine that delegates to `engine` and notes when each step's preview is handed on,
    and how long each edit took."""

    def __init__(self, engine):
        self.engine = engine
        self.handed: dict[int, float] = {}
        self.took: list[float] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def edit(self, *args, on_step=None, **kwargs):
        def noted(step, steps, preview):
            self.handed[step] = time.monotonic()
            if on_step is not None:
                on_step(step, steps, preview)

        start = time.perf_counter()
        try:
            return self.engine.edit(*args, on_step=noted, **kwargs)
        finally:
            self.took.append(time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from foi_engine import threads

    threads.apply()
    import numpy as np
    from PIL import Image

    from foi_engine import EditSettings, FoiEngine, Instruction
    from foi_engine.remote import RemoteEngine
    from server_helpers import running_server

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8))
    instructions = [Instruction("make the cat a tiger", "cat")]
    settings = EditSettings(steps=args.steps, resolution=args.size)
    engine = StepClock(FoiEngine.from_pretrained("tiny-random"))
    engine.edit(photo, instructions, settings, seed=0)  # warm-up: first-call allocations

    with running_server({"tiny-random": engine}) as (url, _scheduler):  # previews as foi serve sends them
        with RemoteEngine.connect(url) as client:
            client.edit(photo, instructions, settings, seed=0)  # warm-up: connection, first job
            local, remote, there, latencies = [], [], [], []
            for repeat in range(args.repeats):
                start = time.perf_counter()
                engine.engine.edit(photo, instructions, settings, seed=1000 + repeat)
                local.append(time.perf_counter() - start)

                arrived: dict[int, float] = {}
                engine.handed.clear()
                start = time.perf_counter()
                client.edit(photo, instructions, settings, seed=2000 + repeat,
                            on_step=lambda step, _n, preview: preview is not None
                            and arrived.setdefault(step, time.monotonic()))
                remote.append(time.perf_counter() - start)
                there.append(engine.took[-1])
                latencies += [arrived[s] - engine.handed[s] for s in arrived if s in engine.handed]

            one_client = timed_clients(url, photo, instructions, settings, clients=1, edits=4)
            two_clients = timed_clients(url, photo, instructions, settings, clients=2, edits=2)

    figures = {
        "size": args.size, "steps": args.steps, "repeats": args.repeats,
        "local_s": statistics.median(local), "server_s": statistics.median(remote),
        "server_over_local": statistics.median(remote) / statistics.median(local),
        "server_cost_ms": 1000 * statistics.median(r - t for r, t in zip(remote, there)),
        "engine_there_over_here": statistics.median(there) / statistics.median(local),
        "preview_latency_ms": {"median": 1000 * statistics.median(latencies), "max": 1000 * max(latencies),
                               "previews": len(latencies)},
        "edits_per_s": {"one_client": 4 / one_client, "two_clients": 4 / two_clients},
        "cpu_count": os.cpu_count(),
    }
    print(f"per edit ({args.size} px, {args.steps} steps, median of {args.repeats}): local "
          f"{figures['local_s']:.3f} s, through the server {figures['server_s']:.3f} s "
          f"→ ×{figures['server_over_local']:.3f} (target ≤ 1.03): the server's own cost "
          f"{figures['server_cost_ms']:.1f} ms a job, the engine's run there ×{figures['engine_there_over_here']:.3f} "
          "of here")
    print(f"preview latency: median {figures['preview_latency_ms']['median']:.1f} ms, worst "
          f"{figures['preview_latency_ms']['max']:.1f} ms over {len(latencies)} previews (target ≤ 100 ms)")
    print(f"throughput: one client {figures['edits_per_s']['one_client']:.2f} edits/s, two clients at once "
          f"{figures['edits_per_s']['two_clients']:.2f} edits/s")
    out = ROOT / "bench" / "results" / "server.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


def timed_clients(url, photo, instructions, settings, clients: int, edits: int) -> float:
    """Seconds for `clients` threads, each with its own connection, to finish `edits` edits each."""
    from foi_engine.remote import RemoteEngine

    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            with RemoteEngine.connect(url) as client:
                for edit in range(edits):
                    client.edit(photo, instructions, settings, seed=100 * number + edit)
        except BaseException as error:  # noqa: BLE001 - reported after the threads join
            errors.append(error)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
