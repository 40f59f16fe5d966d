"""How long File ▸ Quit takes, from the menu to the process's exit, in the real app (offscreen).

    python bench/bench_quit.py [--model tiny-random] [--repeat 3]

Three cases, each in a fresh `foi-desktop` process on the sample photo: "idle" (no model loaded
yet), "loaded" (the model loaded, nothing running) and "running" (an edit of many steps under
way: Quit cancels it). The child prints the monotonic clock (system-wide on Linux) as it
triggers Quit; the parent reads the clock when the process has exited. Target: under 1 s.
Prints a table and writes bench/results/quit.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("idle", "loaded", "running")
TARGET_S = 1.0


def child(case: str, model: str) -> None:
    """The app as `foi-desktop --model MODEL` starts it, quitting through File ▸ Quit once
    `case` holds."""
    sys.path.insert(0, str(ROOT))
    import asyncio

    from PySide6.QtCore import QTimer

    from foi_desktop import app

    def quit_when_ready(window) -> None:
        async def ready_then_quit():
            if case in ("loaded", "running"):
                await window.client.load()
            if case == "running":
                steps = []
                window.client.progress.connect(lambda _job, step, _steps, _preview: steps.append(step))
                window.doc.settings = window.doc.settings.__class__(steps=1000, resolution=128)
                window.start_edit()
                while len(steps) < 2:
                    await asyncio.sleep(0.01)
            window.doc.modified = False  # no "Save changes?" question: the quit itself is timed
            print(f"QUIT {time.monotonic():.6f}", flush=True)
            window.quit_action.trigger()

        asyncio.ensure_future(ready_then_quit())

    create = app.create_window

    def create_window(args):
        window = create(args)
        QTimer.singleShot(0, lambda: quit_when_ready(window))
        return window

    app.create_window = create_window
    sys.exit(app.main(["--model", model]))


def measure(case: str, model: str) -> float:
    """Seconds from Quit to the process's exit, in a fresh process with private settings."""
    with tempfile.TemporaryDirectory(prefix="foi-quit-") as home:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
        for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env[name] = os.path.join(home, name.lower())
        process = subprocess.Popen([sys.executable, __file__, "--child", case, "--model", model], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        quit_at = None
        for line in process.stdout:
            if line.startswith("QUIT "):
                quit_at = float(line.split()[1])
                break
        process.wait(timeout=300)
        exited = time.monotonic()
        if quit_at is None or process.returncode != 0:
            raise SystemExit(f"{case}: the app did not quit cleanly (exit {process.returncode}):\n"
                             f"{process.stderr.read()[-2000:]}")
        return exited - quit_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=CASES)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model)
        return
    results = {}
    for case in CASES:
        seconds = [measure(case, args.model) for _ in range(args.repeat)]
        results[case] = {"median_s": statistics.median(seconds), "max_s": max(seconds), "runs_s": seconds}
        print(f"{case:8s} median {results[case]['median_s']:.3f} s  max {results[case]['max_s']:.3f} s"
              f"  {'ok' if max(seconds) < TARGET_S else 'OVER'} (target < {TARGET_S:.0f} s)")
    out = ROOT / "bench" / "results" / "quit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "target_s": TARGET_S, "machine": platform.platform(),
                               "python": platform.python_version(), "cases": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
