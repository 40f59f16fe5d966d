"""FoI's cost next to stock InstructPix2Pix, measured side by side in one process.

    python bench/bench_engine.py [--size 256] [--steps 4] [--repeats 3] [--model sd15|tiny]

Prints a table and writes bench/results/engine-<device>.json. On CUDA it runs at 512 px
in fp16 unless told otherwise. Ratios are medians of interleaved runs."""

import argparse
import itertools
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from foi_engine import EditSettings, FoiEngine, Instruction  # noqa: E402
from foi_engine.attention import modulated_attention  # noqa: E402
from sd15 import sd15_ip2p_pipeline  # noqa: E402

from foi_engine.tiny import tiny_random_pipeline  # noqa: E402


def build_pipeline(model, device, dtype):
    if model == "tiny":
        return tiny_random_pipeline(0).to(device=device, dtype=dtype)
    return sd15_ip2p_pipeline(device, dtype)

INSTRUCTIONS = [Instruction("make the cat a tiger", "cat"), Instruction("turn the grass green", "grass")]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device, function):
    sync(device)
    start = time.perf_counter()
    function()
    sync(device)
    return time.perf_counter() - start


def photo(size):
    from skimage import data

    return Image.fromarray(data.chelsea()).resize((size, size), Image.Resampling.LANCZOS)


def bench_edit(engine, stock, image, args, device):
    steps = args.steps
    on = EditSettings(steps=steps, strength=1.0, resolution=args.size)
    off = EditSettings(steps=steps, strength=1.0, resolution=args.size, focus=False)
    text = " ".join(i.text.rstrip(".") + "." for i in INSTRUCTIONS).rstrip(".")

    seeds = itertools.count()  # a new seed every run: a repeated request would hit the first-step cache

    def run_stock():
        stock(text, image=image, num_inference_steps=steps, guidance_scale=7.5, image_guidance_scale=1.5,
              generator=torch.Generator("cpu").manual_seed(next(seeds)), output_type="pil")

    runs = {"stock": run_stock,
            "focus_on": lambda: engine.edit(image, INSTRUCTIONS, on, seed=next(seeds)),
            "focus_off": lambda: engine.edit(image, INSTRUCTIONS, off, seed=next(seeds))}
    for run in runs.values():  # warm-up
        run()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            times[name].append(timed(device, run))
    ratios_on = [a / b for a, b in zip(times["focus_on"], times["stock"])]
    ratios_off = [a / b for a, b in zip(times["focus_off"], times["stock"])]
    return {"seconds": {k: statistics.median(v) for k, v in times.items()},
            "focus_on_over_stock": statistics.median(ratios_on),
            "focus_off_over_stock": statistics.median(ratios_off)}


def bench_locate(engine, image, args, device):
    settings = EditSettings(steps=args.steps, strength=1.0, resolution=args.size)
    pipe = engine.pipe

    def one_stock_step():  # VAE encode + one UNet pass on three branches
        with torch.inference_mode():
            pixels = pipe.image_processor.preprocess(image).to(device=device, dtype=pipe.unet.dtype)
            latent = pipe.vae.encode(pixels).latent_dist.mode()
            embeds = torch.randn(3, 77, pipe.text_encoder.config.hidden_size, device=device, dtype=pipe.unet.dtype)
            model_input = torch.cat([torch.randn_like(latent).repeat(3, 1, 1, 1), latent.repeat(3, 1, 1, 1)], dim=1)
            pipe.unet(model_input, 999, encoder_hidden_states=embeds)

    grounding = engine.locate(image, INSTRUCTIONS, settings, seed=0)
    one_stock_step()
    locate_times, step_times, rethreshold_times = [], [], []
    for repeat in range(args.repeats):
        # A new seed each time: a repeated request would be answered from the engine's first-step cache.
        locate_times.append(timed(device, lambda: engine.locate(image, INSTRUCTIONS, settings, seed=repeat + 1)))
        step_times.append(timed(device, one_stock_step))
    for tau in np.linspace(0.3, 0.8, 50):
        start = time.perf_counter()
        grounding.rethreshold(0, float(tau))
        rethreshold_times.append(time.perf_counter() - start)
    return {"locate_seconds": statistics.median(locate_times), "stock_step_seconds": statistics.median(step_times),
            "locate_over_stock_step": statistics.median(a / b for a, b in zip(locate_times, step_times)),
            "rethreshold_ms": 1000 * statistics.median(rethreshold_times)}


def bench_scaling(device, dtype, repeats):
    """One factor-1 cross-attention layer of SD 1.5 (8 heads × 40, 77 tokens) at growing latents."""
    rows = []
    for side in (32, 64, 96):
        n = side * side
        q = torch.randn(3, 8, n, 40, device=device, dtype=dtype)
        k = torch.randn(3, 8, 77, 40, device=device, dtype=dtype)
        v = torch.randn(3, 8, 77, 40, device=device, dtype=dtype)
        mask = (torch.rand(n, 77, device=device) > 0.5).float()
        alpha = torch.rand(77, device=device) * 0.05
        modulate = lambda: modulated_attention(q, k, v, 40**-0.5, alpha, mask, 1 - mask)  # noqa: E731
        stock = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v)  # noqa: E731
        modulate(), stock()
        mod = statistics.median(timed(device, modulate) for _ in range(repeats * 3))
        base = statistics.median(timed(device, stock) for _ in range(repeats * 3))
        rows.append({"latent": f"{side}x{side}", "queries": n, "modulation_ms": mod * 1000, "sdpa_ms": base * 1000,
                     "modulation_us_per_query": mod * 1e6 / n})
    return rows


def memory_child(args):
    """Peak memory of one edit in a fresh process (RSS on CPU, allocator peak on CUDA)."""
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    engine = FoiEngine(build_pipeline(args.model, device, dtype))
    settings = EditSettings(steps=args.steps, strength=1.0, resolution=args.size, focus=args.memory_child == "on")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.edit(photo(args.size), INSTRUCTIONS, settings, seed=0)
    if device.type == "cuda":
        print(torch.cuda.max_memory_allocated())
    else:
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) * 1024 + baseline * 1024)


def bench_memory(args):
    peaks = {}
    for mode in ("off", "on"):
        command = [sys.executable, __file__, "--memory-child", mode, "--size", str(args.size),
                   "--steps", str(args.steps), "--device", args.device, "--model", args.model]
        peaks[mode] = int(subprocess.run(command, check=True, capture_output=True, text=True).stdout.split()[-1])
    return {"peak_bytes_focus_off": peaks["off"], "peak_bytes_focus_on": peaks["on"],
            "focus_on_over_off": peaks["on"] / peaks["off"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--size", type=int, default=512 if cuda else 256)
    parser.add_argument("--steps", type=int, default=20 if cuda else 4)
    parser.add_argument("--repeats", type=int, default=5 if cuda else 3)
    parser.add_argument("--model", choices=("sd15", "tiny"), default="sd15",
                        help="SD-1.5-sized random IP2P (default) or the tiny test model")
    parser.add_argument("--memory-child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    torch.set_grad_enabled(False)
    image = photo(args.size)
    stock = build_pipeline(args.model, device, dtype)
    engine = FoiEngine(build_pipeline(args.model, device, dtype))  # its own copy: stock keeps diffusers' processors

    report = {"model": args.model, "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu",
              "torch_threads": torch.get_num_threads(), "size": args.size, "steps": args.steps,
              "dtype": str(dtype), "repeats": args.repeats}
    report["edit"] = bench_edit(engine, stock, image, args, device)
    report["locate"] = bench_locate(engine, image, args, device)
    report["scaling"] = bench_scaling(device, dtype, args.repeats)
    report["memory"] = bench_memory(args)

    edit, locate, memory = report["edit"], report["locate"], report["memory"]
    print(f"FoI engine benchmark — {args.model} model, {report['device']}, {args.size} px, {args.steps} steps, {dtype}")
    print(f"  full edit      focus on / stock  {edit['focus_on_over_stock']:.3f}   (target ≤ 1.05)")
    print(f"                 focus off / stock {edit['focus_off_over_stock']:.3f}   (target ≤ 1.00)")
    print("                 seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in edit["seconds"].items()))
    print(f"  locate         / one stock step  {locate['locate_over_stock_step']:.3f}   (target ≤ 1.3)")
    print(f"  re-threshold   {locate['rethreshold_ms']:.3f} ms            (target ≤ 5 ms)")
    print(f"  peak memory    focus on / off    {memory['focus_on_over_off']:.3f}   (target ≤ 1.10)")
    for row in report["scaling"]:
        print(f"  modulation at {row['latent']:>5}: {row['modulation_ms']:.2f} ms "
              f"({row['modulation_us_per_query']:.3f} µs/query; SDPA {row['sdpa_ms']:.2f} ms)")
    out = Path(__file__).resolve().parent / "results" / f"engine-{args.model}-{device.type}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
