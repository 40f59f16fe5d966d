"""From the records of a run to what a reader looks at: a CSV per item, the Markdown table in
the paper's layout, a CLIP-I vs CLIP-D plot and a contact sheet (PNG, drawn with PIL)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from . import files, quality
from .manifest import Item
from .runner import Method, read_record

NAMES = {"foi": "FoI", "ip2p": "IP2P"}
PAPER = [("CLIP-I", "clip_i"), ("Dino-I", "dino_i"), ("CLIP-D", "clip_d"), ("PickScore", "pick_preference")]
BEYOND = [("CLIP-T", "clip_t"), ("Mask IoU", "mask_iou"), ("Mask precision", "mask_precision"),
          ("Mask recall", "mask_recall"), ("PSNR outside", "psnr_outside"), ("SSIM outside", "ssim_outside"),
          ("CLIP-I to target", "clip_i_target"), ("Dino-I to target", "dino_i_target")]
COLUMNS = ["item", "method", "multi", "instructions", "keywords", "source", "category", "model", "focus", "seed",
           "seconds", "clip_i", "dino_i", "clip_d", "clip_t", "pickscore", "pick_preference", "mask_iou",
           "mask_precision", "mask_recall", "psnr_outside", "ssim_outside", "clip_i_target", "dino_i_target",
           "random_weights", "error"]
COLOURS = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (23, 190, 207)]


def name(method: Method) -> str:
    return NAMES.get(method.label, method.label)


def collect(out: Path, items: list[Item], methods: list[Method]) -> list[dict]:
    """One row per finished (item, method), in manifest then method order. PickScore's
    preference is the softmax of the methods' scores on the same item (the paper's Table 1
    column: its six rows sum to 1), among the items every method finished."""
    rows = []
    for item in items:
        found = [(m, read_record(out, item, m)) for m in methods]
        found = [(m, r) for m, r in found if r is not None]
        scores = [r.get("pickscore") for _, r in found]
        complete = len(found) == len(methods) and all(s is not None for s in scores)
        preferences = quality.preference(scores) if complete else [None] * len(found)
        for (method, record), preference in zip(found, preferences):
            row = {"item": item.id, "method": method.label, "multi": item.multi,
                   "instructions": " | ".join(i.text for i in item.instructions),
                   "source": item.source, "category": item.category, **record}
            row["keywords"] = " | ".join(k or "(whole image)" for k in record.get("keywords", []))
            row["pick_preference"] = preference
            rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    files.write_text(path, buffer.getvalue())


def mean(rows: list[dict], key: str) -> tuple[float, int]:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
              and math.isfinite(r[key])]
    return (float(np.mean(values)) if values else math.nan), len(values)


def _cell(value: float, digits: int = 4) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def table(rows: list[dict], methods: list[Method], total_items: int) -> str:
    """The paper's Table 1 (single- vs multi-instruction rows), then the measures beyond it."""
    random = any(r.get("random_weights") for r in rows)
    lines = ["# Table 1, reproduced", ""]
    if random:
        lines += ["**Random-weight model: these numbers are meaningless (a test run).**", ""]
    done = len({r["item"] for r in rows})
    lines += [f"{done} of {total_items} items have results. Means over the items each metric applies to; "
              "n = items in the row. PickScore = preference probability among the methods in this table.", ""]
    groups = [("Single-Instruction", False), ("Multi-Instruction", True)]
    for title, headers in (("", PAPER), ("## Beyond the paper", BEYOND)):
        if title:
            lines += ["", title, ""]
        lines.append("| | Method | " + " | ".join(h for h, _ in headers) + " | n | failed |")
        lines.append("|---|---|" + "---:|" * (len(headers) + 2))
        for group, multi in groups:
            first = True
            for method in methods:
                chosen = [r for r in rows if r["method"] == method.label and r["multi"] == multi]
                if not chosen:
                    continue
                ok = [r for r in chosen if not r.get("error")]
                digits = {"psnr_outside": 2}
                cells = [_cell(mean(ok, key)[0], digits.get(key, 4)) for _, key in headers]
                lines.append(f"| {group if first else ''} | {name(method)} | " + " | ".join(cells)
                             + f" | {len(ok)} | {len(chosen) - len(ok)} |")
                first = False
    return "\n".join(lines) + "\n"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def plot(rows: list[dict], methods: list[Method], size=(900, 640)) -> Image.Image:
    """CLIP-I (y) against CLIP-D (x), as InstructPix2Pix plots its trade-off: each item a small
    dot, each method's mean a large marker (circle: single-instruction, square: multi)."""
    width, height = size
    left, right, top, bottom = 90, 200, 50, 70
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    small, big = _font(14), _font(18)
    points = [(r["clip_d"], r["clip_i"]) for r in rows if r.get("clip_d") is not None and r.get("clip_i") is not None]
    xs = [p[0] for p in points] or [0.0, 0.3]
    ys = [p[1] for p in points] or [0.7, 1.0]
    x0, x1 = min(xs + [0.0]), max(xs + [0.05])
    y0, y1 = min(ys), max(ys + [min(ys) + 0.05])
    pad_x, pad_y = (x1 - x0) * 0.08 or 0.01, (y1 - y0) * 0.08 or 0.01
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y

    def at(x, y):
        return (left + (x - x0) / (x1 - x0) * (width - left - right),
                top + (y1 - y) / (y1 - y0) * (height - top - bottom))

    draw.rectangle([left, top, width - right, height - bottom], outline=(60, 60, 60))
    for k in range(6):
        fx, fy = x0 + (x1 - x0) * k / 5, y0 + (y1 - y0) * k / 5
        px, _ = at(fx, y0)
        _, py = at(x0, fy)
        draw.line([px, top, px, height - bottom], fill=(225, 225, 225))
        draw.line([left, py, width - right, py], fill=(225, 225, 225))
        draw.text((px, height - bottom + 6), f"{fx:.2f}", fill="black", font=small, anchor="mt")
        draw.text((left - 6, py), f"{fy:.3f}", fill="black", font=small, anchor="rm")
    draw.text(((left + width - right) / 2, height - 22), "CLIP-D: edit direction agrees with the captions (higher = more edit)", fill="black",
              font=big, anchor="mm")
    draw.text((left, 18), "CLIP-I: similarity to the input (higher = more faithful)", fill="black", font=big, anchor="lm")
    legend_y = top
    for number, method in enumerate(methods):
        colour = COLOURS[number % len(COLOURS)]
        mine = [r for r in rows if r["method"] == method.label]
        for r in mine:
            if r.get("clip_d") is not None and r.get("clip_i") is not None:
                x, y = at(r["clip_d"], r["clip_i"])
                draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=tuple(c // 2 + 127 for c in colour))
        for multi in (False, True):
            group = [r for r in mine if r["multi"] == multi]
            (mx, nx), (my, ny) = mean(group, "clip_d"), mean(group, "clip_i")
            if nx and ny:
                x, y = at(mx, my)
                shape = draw.rectangle if multi else draw.ellipse
                shape([x - 8, y - 8, x + 8, y + 8], fill=colour, outline="black", width=2)
        draw.rectangle([width - right + 20, legend_y + 4, width - right + 34, legend_y + 18], fill=colour)
        draw.text((width - right + 42, legend_y + 11), name(method), fill="black", font=big, anchor="lm")
        legend_y += 28
    draw.ellipse([width - right + 20, legend_y + 14, width - right + 34, legend_y + 28], outline="black", width=2)
    draw.text((width - right + 42, legend_y + 21), "single", fill="black", font=small, anchor="lm")
    draw.rectangle([width - right + 20, legend_y + 40, width - right + 34, legend_y + 54], outline="black", width=2)
    draw.text((width - right + 42, legend_y + 47), "multi", fill="black", font=small, anchor="lm")
    if any(r.get("random_weights") for r in rows):
        draw.text((width - 10, 18), "random-weight model: a test run", fill=(180, 0, 0), font=small, anchor="rm")
    if not points:
        draw.text(((left + width - right) / 2, height / 2), "no CLIP-D values (captions missing?)",
                  fill=(150, 0, 0), font=big, anchor="mm")
    return canvas


def _tile(path: Path, cell: int, mode: str = "RGB", background=(235, 235, 235)) -> Image.Image:
    """The image scaled (up or down) to fit a cell, centred; masks scale with nearest."""
    tile = Image.new(mode, (cell, cell), background)
    if path.exists():
        with Image.open(path) as image:
            method = Image.Resampling.NEAREST if mode == "L" else Image.Resampling.LANCZOS
            image = ImageOps.contain(image.convert(mode), (cell, cell), method=method)
            tile.paste(image, ((cell - image.width) // 2, (cell - image.height) // 2))
    return tile


def _masks_tile(folder: Path, method: Method, base: Image.Image, cell: int) -> Image.Image:
    """The method's masks as coloured overlays on the input, one colour per instruction."""
    tile = base.copy()
    for k, path in enumerate(sorted(folder.glob(f"{method.label}-mask*.png"))):
        region = _tile(path, cell, "L", 0).point(lambda v: 255 if v >= 128 else 0)
        colour = Image.new("RGB", tile.size, COLOURS[k % len(COLOURS)])
        tile = Image.composite(Image.blend(tile, colour, 0.55), tile, region)
    return tile


def contact_sheet(out: Path, items: list[Item], methods: list[Method], rows: list[dict],
                  cell: int = 160, limit: int = 12) -> Image.Image:
    """Per item a row: input, ground-truth region, FoI's masks, then each method's output."""
    shown = [item for item in items if any(r["item"] == item.id for r in rows)][:limit]
    masked = [m for m in methods if any((out / "images" / i.folder_name / f"{m.label}-mask0.png").exists()
                                        for i in shown)]
    headers = ["input", "ground truth"] + [f"{name(m)} masks" for m in masked] + [name(m) for m in methods]
    label_h, title_h, gap = 34, 30, 6
    header_h = 2 * title_h
    width = gap + len(headers) * (cell + gap)
    height = header_h + max(1, len(shown)) * (label_h + cell + gap)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font, bold = _font(13), _font(15)
    for c, header in enumerate(headers):
        draw.text((gap + c * (cell + gap) + cell / 2, title_h * 1.5), header, fill="black", font=bold, anchor="mm")
    title = f"{len(shown)} of {len(items)} items"
    if any(r.get("random_weights") for r in rows):
        title += " · random-weight model: the outputs are noise (a test run)"
    draw.text((gap, title_h / 2), title, fill=(180, 0, 0) if "random" in title else "black", font=bold, anchor="lm")
    for r, item in enumerate(shown):
        y = header_h + r * (label_h + cell + gap)
        folder = out / "images" / item.folder_name
        text = f"{item.id}: " + " | ".join(f"{i.text} [{i.keyword or 'whole image'}]" for i in item.instructions)
        while font.getlength(text) > width - 2 * gap and len(text) > 4:
            text = text[:-4] + "…"
        draw.text((gap, y + label_h / 2), text, fill="black", font=font, anchor="lm")
        base = _tile(folder / "input.png", cell)
        truth = _tile(folder / "truth.png", cell)
        if not (folder / "truth.png").exists():
            ImageDraw.Draw(truth).text((cell / 2, cell / 2), "none", fill=(120, 120, 120), font=font, anchor="mm")
        tiles = [base, truth] + [_masks_tile(folder, m, base, cell) for m in masked]
        tiles += [_tile(folder / f"{m.label}.png", cell) for m in methods]
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (gap + c * (cell + gap), y + label_h))
    return sheet


def write_reports(out: Path, items: list[Item], methods: list[Method]) -> dict[str, Path]:
    rows = collect(out, items, methods)
    paths = {"csv": out / "results.csv", "table": out / "table.md", "plot": out / "clip_plot.png",
             "sheet": out / "contact_sheet.png"}
    write_csv(paths["csv"], rows)
    files.write_text(paths["table"], table(rows, methods, len(items)))
    files.save_image(paths["plot"], plot(rows, methods))
    files.save_image(paths["sheet"], contact_sheet(out, items, methods, rows))
    return paths
