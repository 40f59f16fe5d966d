"""Running the methods over a manifest: resumable, shardable, one record file per edit.

Layout of the output folder:
    run.json                          the settings and methods (a rerun must match them)
    records/<item>/<method>.json      one finished edit with its metrics (written atomically)
    images/<item>/input.png           the photo at the working frame
    images/<item>/truth.png           the ground-truth region there (when the item has one)
    images/<item>/<method>.png        the method's edit; <method>-mask<k>.png FoI's masks
A rerun skips every (item, method) whose record exists, so an interrupted run resumes and
several shards (processes, GPUs, machines sharing a folder) fill one folder together."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import Cancelled, FoiError, OutOfMemoryError
from ..mask_values import as_levels
from ..photo import open_photo, prepare_photo
from ..settings import EditSettings
from . import files, quality
from .groundtruth import load_mask
from .manifest import Item, ManifestError

BUILT_IN = {"foi": True, "ip2p": False}  # method name → focus


@dataclass(frozen=True)
class Method:
    label: str
    model: str
    focus: bool

    def to_json(self) -> dict:
        return {"model": self.model, "focus": self.focus}


def parse_method(spec: str, default_model: str) -> Method:
    """"foi", "ip2p", or "LABEL=foi:MODEL" / "LABEL=ip2p:MODEL" for another checkpoint
    (e.g. "magicbrush=ip2p:vinesmsuic/magicbrush-jul7")."""
    label, _, rest = spec.partition("=")
    kind, _, model = (rest or label).partition(":")
    label, kind = label.strip(), kind.strip().lower()
    if kind not in BUILT_IN or not label or not label.replace("-", "").replace("_", "").isalnum():
        raise ManifestError(
            f'"{spec}" is not a method: use foi, ip2p, or NAME=foi:MODEL / NAME=ip2p:MODEL '
            "(NAME of letters, digits, - and _)."
        )
    return Method(label, model.strip() or default_model, BUILT_IN[kind])


def parse_shard(text: str) -> tuple[int, int]:
    """"i/n": this process takes items i, i+n, i+2n, … (0 ≤ i < n)."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ManifestError(f'A shard is written i/n, such as 0/4, not "{text}".') from None
    if not 0 <= index < count:
        raise ManifestError(f"Shard {text}: the index must be at least 0 and below {count}.")
    return index, count


def launched_processes() -> tuple[int, int, str | None]:
    """(process index, process count, device) when started by `accelerate launch` or torchrun,
    read from the variables every launcher sets (RANK, WORLD_SIZE, LOCAL_RANK); (0, 1, None)
    otherwise. Accelerate itself is not needed: its own view of the processes disagrees with
    the launcher's on CPU-only machines."""
    count = int(os.environ.get("WORLD_SIZE", "1"))
    if count <= 1:
        return 0, 1, None
    import torch

    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else None
    return int(os.environ.get("RANK", "0")), count, device


def wait_for_other_processes() -> None:
    """Under a launcher, wait until every process has finished its share (a gloo barrier,
    which works with and without GPUs), so the first one writes the merged report."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "MASTER_ADDR" not in os.environ:
        return
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        # Shards finish hours apart on real benchmarks: never time the wait out.
        dist.init_process_group("gloo", timeout=timedelta(days=30))
    dist.barrier()
    dist.destroy_process_group()


def settings_json(settings: EditSettings) -> dict:
    return {k: v for k, v in dataclasses.asdict(settings).items() if k != "focus"}


def check_run_file(out: Path, settings: EditSettings, seed: int, methods: list[Method]) -> list[Method]:
    """Record this run's settings and methods; refuse to mix results made differently.
    Returns every method the folder holds (earlier runs' ones first)."""
    path = out / "run.json"
    wanted = {"settings": settings_json(settings), "seed": seed,
              "methods": {m.label: m.to_json() for m in methods}}
    if path.exists():
        held = _read_run_file(path)
        if held["settings"] != wanted["settings"] or held["seed"] != seed:
            raise ManifestError(
                f"{out} holds results made with other settings or seed: choose another --out folder, "
                "or rerun with the same options."
            )
        for label, definition in wanted["methods"].items():
            if label in held["methods"] and held["methods"][label] != definition:
                raise ManifestError(
                    f'{out} already has a method "{label}" run differently ({held["methods"][label]}): '
                    "give this one another name."
                )
        wanted["methods"] = {**held["methods"], **wanted["methods"]}
    files.write_text(path, json.dumps(wanted, indent=2) + "\n")
    return [Method(label, d["model"], d["focus"]) for label, d in wanted["methods"].items()]


def _read_run_file(path: Path) -> dict:
    """An earlier run's run.json, checked: a damaged one is reported, never overwritten."""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
        methods = held["methods"]
        if not (isinstance(held["settings"], dict) and isinstance(methods, dict) and all(
                isinstance(m, dict) and {"model", "focus"} <= set(m) for m in methods.values())):
            raise TypeError("unexpected contents")
        return held
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"{path} is damaged ({type(error).__name__}: {error}): move it away to start this "
                            "results folder afresh, or choose another --out folder.") from None


def record_path(out: Path, item: Item, method: Method) -> Path:
    return out / "records" / item.folder_name / f"{method.label}.json"


def read_record(out: Path, item: Item, method: Method) -> dict | None:
    """The item's saved measurements, or None (none yet, or damaged: the item runs again)."""
    try:
        record = json.loads(record_path(out, item, method).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _truth_at_frame(item: Item, base: Path, photo: Image.Image, frame) -> np.ndarray | None:
    """The ground-truth region brought to the working frame like the photo (its own size
    first stretched to the photo's, as benchmark masks are drawn on the photo)."""
    truth = load_mask(item.mask, base)
    if truth is None:
        return None
    image = Image.fromarray(truth.astype(np.float32), "F")
    if image.size != photo.size:
        image = image.resize(photo.size, Image.Resampling.NEAREST)
    fitted = ImageOps.fit(image, frame.size, method=Image.Resampling.BOX)
    return np.asarray(fitted) >= 0.5


def _mask_image(mask: np.ndarray, size) -> Image.Image:
    return Image.fromarray(as_levels(mask), "L").resize(size, Image.Resampling.NEAREST)


def _finite(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def measure(models, item: Item, base: Path, source: Image.Image, edited: Image.Image,
            predicted: np.ndarray | None, truth: np.ndarray | None) -> dict:
    """Every metric for one edit. `source` and `edited` are both at the working frame;
    `predicted` is FoI's union mask there (None for methods without masks)."""
    values = {}
    if models is not None and models.clip is not None:
        images = models.clip_images([source, edited])
        values["clip_i"] = quality.cosine(images[0], images[1])
        if item.input_caption and item.output_caption:
            texts = models.clip_texts([item.input_caption, item.output_caption])
            values["clip_d"] = quality.directional(images[0], images[1], texts[0], texts[1])
            values["clip_t"] = quality.cosine(images[1], texts[1])
    if models is not None and models.dino is not None:
        features = models.dino_images([source, edited])
        values["dino_i"] = quality.cosine(features[0], features[1])
    if models is not None and models.pickscore is not None:
        prompt = item.output_caption or " ".join(i.text for i in item.instructions)
        values["pickscore"] = models.pickscores([edited], prompt)[0]
    if item.target is not None and models is not None:
        target = ImageOps.fit(prepare_photo(open_photo(base / item.target)), edited.size,
                              method=Image.Resampling.LANCZOS)
        if models.clip is not None:
            values["clip_i_target"] = quality.cosine(*models.clip_images([target, edited]))
        if models.dino is not None:
            values["dino_i_target"] = quality.cosine(*models.dino_images([target, edited]))
    if truth is not None:
        before, after = np.asarray(source), np.asarray(edited)
        values["psnr_outside"] = quality.psnr_outside(before, after, ~truth)
        values["ssim_outside"] = quality.ssim_outside(before, after, ~truth)
        if predicted is not None:
            values.update({f"mask_{k}": v for k, v in quality.mask_scores(predicted, truth).items()})
    return {k: _finite(v) for k, v in values.items()}


def run_one(engine, models, item: Item, method: Method, base: Path, out: Path,
            settings: EditSettings, seed: int) -> dict:
    """Edit one item with one method, save its images, and return its record."""
    item_seed = item.seed if item.seed is not None else seed
    started = time.perf_counter()
    photo = prepare_photo(open_photo(base / item.image))
    result = engine.edit(photo, item.instructions, dataclasses.replace(settings, focus=method.focus), seed=item_seed)
    seconds = time.perf_counter() - started
    frame = result.frame
    source = frame.fit(photo)
    truth = _truth_at_frame(item, base, photo, frame)
    folder = out / "images" / item.folder_name
    if not (folder / "input.png").exists():
        files.save_image(folder / "input.png", source)
    if truth is not None and not (folder / "truth.png").exists():
        files.save_image(folder / "truth.png", _mask_image(truth, frame.size))
    files.save_image(folder / f"{method.label}.png", result.image)
    predicted = None
    if result.masks is not None:
        masks = [_mask_image(mask, frame.size) for mask in result.masks]
        for k, mask in enumerate(masks):
            files.save_image(folder / f"{method.label}-mask{k}.png", mask)
        predicted = np.logical_or.reduce([np.asarray(mask) >= 128 for mask in masks])
    record = {"item": item.id, "method": method.label, "model": engine.model_name, "focus": method.focus,
              "seed": item_seed, "seconds": round(seconds, 3), "random_weights": bool(engine.random_weights),
              "keywords": [i.keyword for i in item.instructions]}
    record.update(measure(models, item, base, source, result.image, predicted, truth))
    return record


def _progress(total: int, description: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="edit", file=sys.stderr, disable=not enabled or total == 0,
                dynamic_ncols=True, smoothing=0.1)


def evaluate(items: list[Item], methods: list[Method], base: Path, out: Path, settings: EditSettings,
             seed: int = 0, load_models=None, load_engine=None, shard=(0, 1), device=None,
             progress: bool = True, log=print) -> dict:
    """Run this process's share of the (item, method) pairs not yet done.

    load_models() → MetricModels (called once, only if there is work); load_engine(model,
    device) → FoiEngine. Returns counts: done, skipped, failed."""
    index, count = shard
    mine = items[index::count]
    pending = [(item, method) for method in methods for item in mine if read_record(out, item, method) is None]
    summary = {"done": 0, "skipped": len(mine) * len(methods) - len(pending), "failed": 0}
    if not pending:
        return summary
    models = load_models() if load_models else None
    bar = _progress(len(pending), f"shard {index}/{count}" if count > 1 else "eval", progress)
    try:
        for model in dict.fromkeys(method.model for _, method in pending):
            engine = load_engine(model, device)
            for item, method in [(i, m) for i, m in pending if m.model == model]:
                bar.set_postfix_str(f"{method.label} {item.id}"[:40])
                try:
                    record = run_one(engine, models, item, method, base, out, settings, seed)
                except (Cancelled, OutOfMemoryError):
                    raise
                except FoiError as error:  # this item's data is unusable: say so once, keep going
                    record = {"item": item.id, "method": method.label, "error": str(error)}
                    log(f"{item.id} ({method.label}): {error}")
                    summary["failed"] += 1
                else:
                    summary["done"] += 1
                files.write_text(record_path(out, item, method), json.dumps(record) + "\n")
                bar.update(1)
            del engine
    finally:
        bar.close()
    return summary
