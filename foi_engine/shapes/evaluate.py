"""Evaluate FoI against vanilla InstructPix2Pix on held-out shape scenes:
`python -m foi_engine.shapes.evaluate`.

For every held-out example both runs use the same model, seed and settings except
`focus`. Measured (pixel values 0–255, the VAE round trip of the source included):
- mask IoU: FoI's extracted mask (grounding grid, upsampled nearest to 64×64) against
  the exact edit mask, for instructions naming a shape (whole-image ones have no mask);
- PSNR outside: result vs source on the pixels no instruction should touch;
- change inside: mean RGB distance result–source on each instruction's true region;
- lands: the region's mean colour in the result is, of all palette colours, nearest to
  the asked colour; for FoI's masks, "own shape": the mask overlaps the named shape more
  than any other shape.
Prints a table, writes JSON and a PNG sheet of examples (source, true mask, FoI masks,
vanilla, FoI, target)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..atomic import atomic_write
from .data import COLOURS, SIZE, Example, make_example

PALETTE = np.array(list(COLOURS.values()), dtype=np.float64)
NAMES = list(COLOURS)
# What the shapes model is evaluated with: 64 px, masks from the 16×16 layers (the
# engine's default factor 4 would give a 4×4 grid at this size), 50 denoising steps; `main`
# lays the model's own foi_settings.json over these, as the editor and `foi` do.
SETTINGS = dict(steps=50, resolution=SIZE, grounding_factor=1)
FACTORS = (1, 2, 4)  # 16×16, 8×8 and 4×4 grounding grids


def settings(focus: bool, **overrides):
    from foi_engine import EditSettings

    return EditSettings(**{**SETTINGS, **overrides, "focus": focus})


def instructions_of(example: Example):
    from foi_engine import Instruction

    return [Instruction(edit.text, keyword=edit.keyword) for edit in example.edits]


def upsample(mask: np.ndarray) -> np.ndarray:
    """A grounding-grid mask to the 64×64 pixels it covers (nearest)."""
    factor = SIZE // mask.shape[0]
    return np.kron(mask.astype(np.uint8), np.ones((factor, factor), dtype=np.uint8)).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    if not where.any():
        return float("nan")
    mse = np.mean((a[where].astype(np.float64) - b[where].astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def change(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.linalg.norm(a[where].astype(np.float64) - b[where].astype(np.float64), axis=-1).mean())


def lands(result: np.ndarray, where: np.ndarray, colour: str) -> bool:
    mean = result[where].astype(np.float64).mean(axis=0)
    return bool(NAMES[int(np.argmin(np.linalg.norm(PALETTE - mean, axis=1)))] == colour)


def own_shape(mask: np.ndarray, example: Example, target: str) -> bool:
    overlaps = {name: (mask & shape).sum() for name, shape in example.shapes.items()}
    return bool(max(overlaps, key=overlaps.get) == target and overlaps[target] > 0)


FRESH_FIRST = 500_000  # a slice no tuning, test or quick check has read (MODEL_CARD.md, "fresh scenes")


def heldout_scenes(single: int, multi: int, first: int = 0):
    """The evaluation's held-out scenes, as (group, example, seed): singles from index
    `first`, multis (2–3 instructions) from 100 000 + `first`, so the two sets never share a
    scene. The seed is the scene's place in its group, whatever `first` is."""
    for i in range(single):
        yield "single", make_example(first + i, "heldout", instructions=1), i
    for i in range(multi):
        yield "multi", make_example(100_000 + first + i, "heldout", instructions=2 + i % 2), i


def measure(engine, example: Example, seed: int, overrides: dict | None = None) -> dict:
    """Both runs on one example, and the numbers of each."""
    source = Image.fromarray(example.source)
    outside = ~np.any([edit.mask for edit in example.edits], axis=0)
    record = {"text": example.text, "targets": [e.target for e in example.edits], "seed": seed,
              "shape_count": len(example.shapes)}
    images = {}
    for name, focus in (("vanilla", False), ("foi", True)):
        result = engine.edit(source, instructions_of(example), settings(focus, **(overrides or {})), seed=seed)
        pixels = np.asarray(result.image)
        images[name] = pixels
        record[name] = {
            "psnr_outside": psnr(pixels, example.source, outside),
            "change_inside": [change(pixels, example.source, e.mask) for e in example.edits],
            "lands": [lands(pixels, e.mask, e.colour) for e in example.edits],
        }
        if focus:
            masks = [upsample(m) for m in result.grounding.masks]
            images["masks"] = masks
            shaped = [(m, e) for m, e in zip(masks, example.edits) if e.keyword is not None]
            record["mask_iou"] = [iou(m, e.mask) for m, e in shaped]
            record["own_shape"] = [own_shape(m, example, e.target) for m, e in shaped]
    # The grounding masks at every factor the UNet offers (one UNet step each).
    for factor in FACTORS:
        located = engine.locate(source, instructions_of(example),
                                settings(True, **{**(overrides or {}), "grounding_factor": factor}), seed=seed)
        record[f"mask_iou_factor_{factor}"] = [iou(upsample(m), e.mask) for m, e in zip(located.masks, example.edits)
                                               if e.keyword is not None]
    return record, images


CLEAN_PSNR_DB = 20.0  # "clean": the edit lands and the outside keeps at least this PSNR


def _mean(values) -> float:
    values = [v for v in values if v == v]  # drop NaN (no outside pixels)
    return float(np.mean(values)) if values else float("nan")


def summarise(records: list[dict]) -> dict:
    """Means over a group. "lands" counts sub-edits; "lands (2–4 shapes)" only scenes where
    the named shape must be told apart from others (a background edit or a lone shape
    needs no binding); "clean" counts scenes where every sub-edit lands and the outside
    keeps ≥ CLEAN_PSNR_DB."""
    summary = {"examples": len(records)}
    ious = [x for r in records for x in r["mask_iou"]]
    summary["mask_iou"] = _mean(ious)
    summary["mask_iou_at_least_0.5"] = _mean([x >= 0.5 for x in ious])
    summary["own_shape"] = _mean([x for r in records for x in r["own_shape"]])
    for factor in FACTORS:
        summary[f"mask_iou_factor_{factor}"] = _mean([x for r in records for x in r[f"mask_iou_factor_{factor}"]])
    binding = [r for r in records if r["shape_count"] >= 2]
    for name in ("vanilla", "foi"):
        summary[name] = {
            "psnr_outside": _mean([r[name]["psnr_outside"] for r in records]),
            "change_inside": _mean([x for r in records for x in r[name]["change_inside"]]),
            "lands": _mean([x for r in records for x in r[name]["lands"]]),
            "lands_2_to_4_shapes": _mean([x for r in binding for x, t in zip(r[name]["lands"], r["targets"])
                                          if t != "background"]),
            "clean": _mean([all(r[name]["lands"]) and not r[name]["psnr_outside"] < CLEAN_PSNR_DB for r in records]),
        }
    summary["inside_ratio_foi_vs_vanilla"] = summary["foi"]["change_inside"] / summary["vanilla"]["change_inside"]
    summary["foi_psnr_gain_db"] = summary["foi"]["psnr_outside"] - summary["vanilla"]["psnr_outside"]
    return summary


def mask_picture(masks: list[np.ndarray]) -> np.ndarray:
    tints = np.array([(255, 80, 80), (80, 220, 80), (90, 120, 255)], dtype=np.float64)
    picture = np.zeros((SIZE, SIZE, 3))
    for i, mask in enumerate(masks):
        picture[mask] = np.maximum(picture[mask], tints[i % 3])
    return picture.astype(np.uint8)


def sheet(rows: list[tuple[Example, dict]], path: Path, scale: int = 3) -> None:
    columns = ("source", "true mask", "FoI masks", "plain IP2P", "FoI", "target")
    cell, label = SIZE * scale, 14
    image = Image.new("RGB", (cell * len(columns), label + len(rows) * (cell + label)), "white")
    draw = ImageDraw.Draw(image)
    for c, name in enumerate(columns):
        draw.text((c * cell + 4, 1), name, fill="black")
    for r, (example, images) in enumerate(rows):
        top = label + r * (cell + label)
        draw.text((4, top + 1), example.text[:110], fill="black")
        tiles = (example.source, mask_picture([e.mask for e in example.edits]), mask_picture(images["masks"]),
                 images["vanilla"], images["foi"], example.edited)
        for c, tile in enumerate(tiles):
            big = Image.fromarray(tile).resize((cell, cell), Image.Resampling.NEAREST)
            image.paste(big, (c * cell, top + label))
    write_atomic(path, lambda handle: image.save(handle, format="PNG"))


def write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        write(handle)


def table(groups: dict) -> str:
    lines = [f"{'':10} {'n':>3} {'IoU':>5} {'≥.5':>5} {'own':>5} │ {'PSNR out (dB)':>13} │ {'lands':>11} │ "
             f"{'lands 2–4':>11} │ {'clean':>11} │ {'in ratio':>8}",
             f"{'':10} {'':>3} {'FoI':>5} {'':>5} {'':>5} │ {'plain':>6} {'FoI':>6} │ {'plain':>5} {'FoI':>5} │ "
             f"{'plain':>5} {'FoI':>5} │ {'plain':>5} {'FoI':>5} │ {'FoI/plain':>8}"]
    for name, s in groups.items():
        v, f = s["vanilla"], s["foi"]
        lines.append(
            f"{name:10} {s['examples']:>3} {s['mask_iou']:>5.2f} {s['mask_iou_at_least_0.5']:>5.2f} "
            f"{s['own_shape']:>5.2f} │ {v['psnr_outside']:>6.2f} {f['psnr_outside']:>6.2f} │ "
            f"{v['lands']:>5.2f} {f['lands']:>5.2f} │ {v['lands_2_to_4_shapes']:>5.2f} {f['lands_2_to_4_shapes']:>5.2f} │ "
            f"{v['clean']:>5.2f} {f['clean']:>5.2f} │ {s['inside_ratio_foi_vs_vanilla']:>8.2f}")
    return "\n".join(lines)


def vae_round_trip_psnr(engine, examples: list[Example]) -> float:
    """PSNR (dB) of source scenes encoded and decoded by the model's VAE, as the engine does."""
    import torch

    vae, processor = engine.pipe.vae, engine.pipe.image_processor
    with torch.no_grad():
        pixels = torch.cat([processor.preprocess(Image.fromarray(e.source)) for e in examples]).to(vae.dtype)
        decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
    images = processor.postprocess(decoded, output_type="np") * 255
    sources = np.stack([e.source for e in examples]).astype(np.float64)
    mse = np.mean((np.round(images) - sources) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def main(argv=None) -> None:
    from .. import threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--single", type=int, default=40, help="held-out single-instruction examples")
    parser.add_argument("--multi", type=int, default=30, help="held-out examples with 2–3 instructions")
    parser.add_argument("--first", type=int, default=0,
                        help=f"index of the first scene (0: the card's scenes; {FRESH_FIRST}: a slice nothing "
                             "was tuned on)")
    parser.add_argument("--steps-sweep", default="10,20", help="also measure at these step counts (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/shapes"))
    parser.add_argument("--sheet", type=Path, help="also write a FoI-vs-plain sheet of 8 multi-instruction scenes here")
    threads.add_option(parser)
    args = parser.parse_args(argv)
    if not (0 <= args.single <= 10_000 and 0 <= args.multi <= 10_000 and 0 <= args.first <= 10**9):
        parser.error("--single and --multi count scenes (0 to 10 000); --first is a scene index (0 to 10⁹)")
    threads.apply(args.threads)
    from foi_engine import FoiEngine
    from foi_engine.catalog import model_settings

    engine = FoiEngine.from_pretrained(args.model, device="cpu")
    own = model_settings(args.model)  # what a user of this model gets: its foi_settings.json (γ, …)
    started = time.time()
    scenes = list(heldout_scenes(args.single, args.multi, args.first))
    records, shown, multi_shown = {"single": [], "multi": []}, [], []
    for group, example, seed in scenes:
        record, images = measure(engine, example, seed=seed, overrides=own)
        records[group].append(record)
        if seed < 4:
            shown.append((example, images))
        if group == "multi" and len(multi_shown) < 8:
            multi_shown.append((example, images))
    groups = {name: {**summarise(found), "records": found} for name, found in records.items() if found}
    sweep = {}
    for steps in [int(k) for k in args.steps_sweep.split(",") if k.strip()]:
        found = {"single": [], "multi": []}
        for group, example, seed in scenes:
            found[group].append(measure(engine, example, seed=seed, overrides={**own, "steps": steps})[0])
        sweep[steps] = {name: summarise(rs) for name, rs in found.items() if rs}
    report = {"model": args.model, "first_scene": args.first, "settings": {**SETTINGS, **own}, "seconds": time.time() - started,
              "vae_round_trip_psnr": vae_round_trip_psnr(engine, [example for _, example, _ in scenes]),
              "groups": groups, "steps_sweep": sweep}
    print(table(groups))
    print(f"VAE round trip on these scenes: {report['vae_round_trip_psnr']:.2f} dB")
    for steps, found in sweep.items():
        print(f"\n{steps} steps:\n{table(found)}")
    write_atomic(args.out / "shapes_eval.json",
                 lambda handle: handle.write(json.dumps(report, indent=1).encode("utf-8")))
    sheet(shown, args.out / "shapes_examples.png")
    if args.sheet:
        sheet(multi_shown, args.sheet)
    print(f"Wrote {args.out / 'shapes_eval.json'} and {args.out / 'shapes_examples.png'} "
          f"in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
