"""Document-model timings on a 6000×4000 (24-megapixel) photo, no Qt:
  brush segment paint (the paint part; the canvas adds its repaint), target ≤ 8 ms;
  mask update when τ moves (re-threshold from the cached map), target ≤ 16 ms;
  opening a 24-megapixel JPEG (Document.open_photo), target ≤ 1.5 s.
Prints a table and writes JSON to bench/results/.  Run: python3 bench/bench_document.py"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from foi_desktop.document import Document  # noqa: E402
from foi_engine.photo import WorkingFrame  # noqa: E402

WIDTH, HEIGHT = 6000, 4000


def _photo() -> Image.Image:
    # Smooth gradients plus noise: JPEG-compresses like a real photo, not like flat colour.
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([xs / WIDTH * 200, ys / HEIGHT * 200, (xs + ys) / (WIDTH + HEIGHT) * 255], axis=-1)
    noisy = base + rng.normal(0, 12, base.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def _locate(doc: Document):
    frame = WorkingFrame.for_photo(doc.size, 512)
    h, w = frame.size[1] // 32, frame.size[0] // 32  # grounding factor 4 at the latent's /8
    ys, xs = np.mgrid[0:h, 0:w]
    bump = np.exp(-(((xs - w * 0.4) / (w * 0.3)) ** 2 + ((ys - h * 0.5) / (h * 0.35)) ** 2)).astype(np.float32)
    bump = (bump - bump.min()) / (bump.max() - bump.min())
    return types.SimpleNamespace(maps=[bump], thresholds=[0.5], frame=frame)


def _stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"median_ms": statistics.median(samples) * 1e3, "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1e3,
            "max_ms": ordered[-1] * 1e3, "n": len(samples)}


def main() -> None:
    results = {}
    photo = _photo()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "24mp.jpg")
        photo.save(path, quality=92)
        opens = []
        for _ in range(3):
            start = time.perf_counter()
            doc = Document.open_photo(path)
            opens.append(time.perf_counter() - start)
    results["open_24mp_jpeg"] = _stats(opens) | {"target_ms": 1500}

    layer = doc.add_layer("make the sky a sunset", keyword="sky")
    start = time.perf_counter()
    doc.apply_grounding(_locate(doc))
    results["find_regions_apply"] = _stats([time.perf_counter() - start])

    for radius in (50, 150):
        samples = []
        doc.begin_stroke(layer.id, erase=False, radius=radius, hardness=0.7)
        x, y = 500.0, 500.0
        doc.stroke_to(x, y)
        rng = np.random.default_rng(1)
        for _ in range(300):
            # Segments as a mouse delivers them: a few to tens of pixels apart.
            x = float(np.clip(x + rng.normal(8, 10), 0, WIDTH))
            y = float(np.clip(y + rng.normal(4, 10), 0, HEIGHT))
            start = time.perf_counter()
            doc.stroke_to(x, y)
            samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        doc.end_stroke()
        results[f"brush_segment_r{radius}"] = _stats(samples) | {"target_ms": 8}
        results[f"end_stroke_r{radius}"] = _stats([time.perf_counter() - start])

    samples = []
    for tau in list(np.linspace(0.5, 0.3, 40)) + list(np.linspace(0.3, 0.7, 80)):
        start = time.perf_counter()
        doc.set_threshold(layer.id, float(tau))
        samples.append(time.perf_counter() - start)
    results["threshold_move"] = _stats(samples) | {"target_ms": 16}

    start = time.perf_counter()
    doc.undo()
    results["undo_threshold_drag"] = _stats([time.perf_counter() - start])
    start = time.perf_counter()
    doc.engine_masks()
    results["engine_masks"] = _stats([time.perf_counter() - start])

    print(f"FoI Studio document bench, {WIDTH}×{HEIGHT} photo, {platform.processor() or platform.machine()}")
    print(f"{'operation':<24}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}{'target':>9}")
    for name, row in results.items():
        target = f"{row['target_ms']:g}" if "target_ms" in row else ""
        print(f"{name:<24}{row['median_ms']:>11.2f}{row['p95_ms']:>9.2f}{row['max_ms']:>9.2f}{target:>9}")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, f"document-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(out, "w") as stream:
        json.dump({"photo": [WIDTH, HEIGHT], "machine": platform.platform(), "cpus": os.cpu_count(),
                   "results": results}, stream, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
