"""CPU throughput under the thread policy, idle and beside one busy process, side by side.

    python bench/bench_threads.py [--models shapes,sd15] [--budget 40]

For each model (the shipped shapes model at 64 px; the SD-1.5-architecture model with
random weights at 256 px) and each way of running torch — "torch default" (no OpenMP
variables: one spinning thread per core) and "policy" (foi_engine.threads.apply, what
every entry point does; plus "policy, editor" which leaves the window a core) — a fresh
process loads the model and times denoising steps, once with the machine idle and once
while a busy loop this script starts (and stops) holds one core. A run stops after
--budget seconds of stepping, so a collapsed configuration cannot stall the bench.
Prints ratios and writes bench/results/threads.json. (The start-up of `foi edit` is
bench_startup.py's.)"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {  # name -> (apply the policy?, leave_free)
    "torch default": (False, 0),
    "policy": (True, 0),
    "policy, editor": (True, 1),
}
MODELS = {"shapes": (64, 24), "sd15": (256, 3)}  # size, steps asked (the budget may stop sooner)


def child(model: str, config: str, budget: float) -> None:
    """In a fresh process: apply the config, load the model, time the steps of one edit."""
    apply, leave_free = CONFIGS[config]
    if apply:
        sys.path.insert(0, str(ROOT))
        from foi_engine import threads

        threads.apply(0, leave_free=leave_free)
    import threading

    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from foi_engine import EditSettings, FoiEngine, Instruction

    size, steps = MODELS[model]
    if model == "shapes":
        engine = FoiEngine.from_pretrained("shapes", device="cpu")
    else:
        from sd15 import sd15_ip2p_pipeline

        engine = FoiEngine(sd15_ip2p_pipeline(torch.device("cpu"), torch.float32), model_name="sd15")
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    settings = EditSettings(steps=steps, strength=1.0, resolution=size, grounding_factor=1 if model == "shapes" else 4)
    instruction = Instruction("make the circle red", "circle")
    stamps, cancel = [], threading.Event()

    def on_step(i, total, preview):
        stamps.append(time.perf_counter())
        if stamps[-1] - stamps[0] > budget:
            cancel.set()

    start = time.perf_counter()
    try:
        engine.edit(photo, [instruction], settings, seed=0, on_step=on_step, cancel=cancel)
    except Exception as error:  # noqa: BLE001 - the cancel that ends a budgeted run
        if type(error).__name__ != "Cancelled":
            raise
    # The first step records attention and warms caches: timed from its end.
    timed = stamps[1:] if len(stamps) > 1 else stamps
    seconds = (timed[-1] - (stamps[0] if len(stamps) > 1 else start))
    print(json.dumps({"steps": len(timed), "seconds": seconds, "steps_per_s": len(timed) / seconds,
                      "threads": torch.get_num_threads(), "wait": os.environ.get("OMP_WAIT_POLICY", "(unset)")}))


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "GOMP_"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def busy_loop(seconds: float) -> subprocess.Popen:
    """One core held busy (pure Python arithmetic), ending by itself after `seconds`."""
    code = f"import time\nend = time.time() + {seconds}\nx = 0\nwhile time.time() < end:\n    x += 1\n"
    return subprocess.Popen([sys.executable, "-c", code])


def measure(model: str, config: str, busy: bool, budget: float) -> dict:
    command = [sys.executable, __file__, "--child", model, config, "--budget", str(budget)]
    load = busy_loop(budget * 6 + 120) if busy else None
    try:
        out = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=budget * 6 + 120)
    finally:
        if load is not None:
            load.kill()
            load.wait()
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "CONFIG"))
    parser.add_argument("--models", default="shapes,sd15")
    parser.add_argument("--budget", type=float, default=40.0, help="seconds of stepping per run at most")
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.budget)
        return 0
    results = {"cores": os.cpu_count(), "budget_s": args.budget, "runs": {}}
    for model in args.models.split(","):
        for config in CONFIGS:
            for busy in (False, True):
                name = f"{model} | {config} | {'busy' if busy else 'idle'}"
                results["runs"][name] = run = measure(model, config, busy, args.budget)
                print(f"{name:38} {run['steps_per_s']:7.2f} steps/s  ({run['steps']} steps, {run['threads']} threads, "
                      f"wait {run['wait']})", flush=True)
        for config in CONFIGS:
            idle = results["runs"][f"{model} | {config} | idle"]["steps_per_s"]
            busy = results["runs"][f"{model} | {config} | busy"]["steps_per_s"]
            results["runs"][f"{model} | {config} | busy"]["busy_over_idle"] = busy / idle
            print(f"{model} {config}: busy ÷ idle = {busy / idle:.2f}")
    out = ROOT / "bench" / "results" / "threads.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
