"""Start-up of `foi edit --model shapes` on a 64×64 scene, and where the time goes.

    python bench/bench_startup.py [--repeats 5]

Every row is a fresh process, the rows interleaved, `--repeats` times; the table gives
medians and [min–max] of
- the wall clock from launch to the end of the first denoising step (the progress bar's
  first output on stderr) and to the exit;
- the process's CPU time (user + system), which a busy machine inflates far less than the
  wall clock: on a shared machine it is the better guide to the time on an idle one.
The import rows are a ladder: each imports what the row above did and one library more,
in the order a run needs them (the last row imports what `FoiEngine.from_pretrained` does),
so each library's share is the difference from the row above. The "scipy hidden" row is
the same 40-step edit with scipy made unimportable, as on a computer where only FoI Studio's
own dependencies are installed (scipy comes with the test extras' scikit-image; the bundle
leaves it out). The "--server" rows are the same edits sent to a `foi serve --model shapes`
already running on this computer (started once before the rows, stopped after): the engine
stays resident, so a launch pays only the client's imports. Writes bench/results/startup.json."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
IMPORTS = [  # (row, what it adds): the import ladder
    ("python", "pass"),
    ("+ numpy, PIL", "import numpy, PIL.Image"),
    ("+ torch", "import torch"),
    ("+ torch._dynamo", "import torch._dynamo"),
    ("+ transformers' CLIP", "from transformers.models.clip import modeling_clip, tokenization_clip"),
    ("+ diffusers' IP2P pipeline", "from diffusers import StableDiffusionInstructPix2PixPipeline"),
]
CONSOLE = "from foi_engine.cli import console\nconsole()"  # what the installed `foi` script runs
HIDE_SCIPY = "import sys\nsys.modules['scipy'] = None  # import scipy fails; find_spec says it is absent\n"
FIRST_STEP_MARK = b"Editing"  # the CLI's progress bar, shown once the first step is done


def edit_args(scene: Path, out: Path, steps: int, strength: float) -> list[str]:
    return ["edit", str(scene), "-i", "make the circle red", "-k", "circle", "-o", str(out), "--model", "shapes",
            "--steps", str(steps), "--strength", str(strength)]


def rows(scene: Path, out: Path, server: str) -> dict[str, list[str]]:
    """Each row's command line."""
    python = [sys.executable, "-c"]
    ladder = {}
    for n, (name, _) in enumerate(IMPORTS):
        code = "\n".join(line for _, line in IMPORTS[: n + 1])
        ladder[name] = python + [code + "\nimport os\nos._exit(0)"]  # no teardown, as foi ends
    return {
        **ladder,
        "foi edit, 1 step": python + [CONSOLE] + edit_args(scene, out, 2, 0.5),
        "foi edit, 40 steps": python + [CONSOLE] + edit_args(scene, out, 50, 0.8),
        "foi edit, 40 steps, scipy hidden": python + [HIDE_SCIPY + CONSOLE] + edit_args(scene, out, 50, 0.8),
        "foi edit --server, 1 step": python + [CONSOLE] + edit_args(scene, out, 2, 0.5) + ["--server", server],
        "foi edit --server, 40 steps": python + [CONSOLE] + edit_args(scene, out, 50, 0.8) + ["--server", server],
    }


def start_server(timeout_s: float = 180.0) -> tuple[subprocess.Popen, str]:
    """`foi serve --model shapes` on a free loopback port, once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", CONSOLE, "serve", "--model", "shapes", "--port", str(port)],
                              env=clean_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url + "/v1/info", timeout=5):
                return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("foi serve did not answer")


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_"))}
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_once(command: list[str]) -> dict:
    """Launch → first step (None when the command runs no step) and → exit, and the CPU time."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=clean_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_step, err = None, b""
    while chunk := os.read(process.stderr.fileno(), 65536):
        err += chunk
        if first_step is None and FIRST_STEP_MARK in err:
            first_step = time.perf_counter() - start
    _, status, usage = os.wait4(process.pid, 0)
    exit_s = time.perf_counter() - start
    process.stderr.close()
    if status != 0:
        raise RuntimeError(f"{command[2][:60]!r} failed:\n{err.decode(errors='replace')[-2000:]}")
    return {"first_step_s": first_step, "exit_s": exit_s, "cpu_s": usage.ru_utime + usage.ru_stime}


def summary(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{statistics.median(values):5.2f} [{min(values):.2f}–{max(values):.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from foi_engine.shapes.data import demo_scene

    RESULTS.mkdir(parents=True, exist_ok=True)
    scene, out = RESULTS / "scene.png", RESULTS / "scene-edited.png"
    Image.fromarray(demo_scene()[0]).save(scene)
    server, url = start_server()
    try:
        commands = rows(scene, out, url)
        runs = {name: [] for name in commands}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for name, command in commands.items():  # interleaved: a busy spell falls on every row alike
                runs[name].append(run_once(command))
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"{os.cpu_count()} cores; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
          f"medians [min–max] of {args.repeats} runs, seconds")
    print(f"{'':34} {'launch → first step':>22} {'launch → exit':>22} {'CPU time':>22}")
    for name, samples in runs.items():
        print(f"{name:34} {summary([s['first_step_s'] for s in samples]):>22} "
              f"{summary([s['exit_s'] for s in samples]):>22} {summary([s['cpu_s'] for s in samples]):>22}")
    path = RESULTS / "startup.json"
    path.write_text(json.dumps({"cores": os.cpu_count(), "load_average": [load_before, load_after],
                                "repeats": args.repeats, "runs": runs}, indent=1), encoding="utf-8")
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
