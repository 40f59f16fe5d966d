"""Manifests from the public benchmarks a user downloads.

- PIE-Bench (PnPInversion's `data/`: mapping_file.json + annotation_images/), with its masks.
- MagicBrush: the Hugging Face parquet files (train/dev; images embedded, extracted here) and
  the test zip's folder layout (edit_sessions.json, images/<id>/<id>-input.png, …,
  global_descriptions.json for captions).
- EMU-Edit test (Hugging Face parquet: image, instruction, input/output captions; no targets).
- shapes: the built-in shapes model's held-out scenes, generated (no download), with their
  exact regions and true edits.

Each importer returns Items whose paths are relative to the folder the manifest will be
written to. MagicBrush sessions can become one item per turn (single-instruction) or one item
per session with every turn's instruction (multi-instruction, region = union of the turns)."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from PIL import Image

from . import files
from .manifest import Item, ManifestError, guess_keyword, keyword_from
from ..settings import Instruction

PIE_TYPES = {
    "0": "random", "1": "change object", "2": "add object", "3": "delete object",
    "4": "change content", "5": "change pose", "6": "change colour", "7": "change material",
    "8": "change background", "9": "change style",
}
SESSIONS = ("turns", "combined", "both")


def _safe_name(value, what: str) -> str:
    """A benchmark's id as one file-name part: it never names a folder or a path, so
    extracted images land inside --images-dir whatever the data says ("../../x", "/etc/y")."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("._")
    if not name:
        raise ManifestError(f"A {what} of {value!r} cannot name a file.")
    return name


def _relative(path: Path, manifest_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(manifest_dir).resolve())).as_posix()


def _instruction(text: str, candidates=()) -> tuple[Instruction, bool]:
    """The instruction with a keyword: a named candidate if one is a word of the text,
    else a guess. Returns (instruction, guessed)."""
    text = text.strip()
    keyword = keyword_from(candidates, text)
    if keyword is not None:
        return Instruction(text, keyword), False
    return Instruction(text, guess_keyword(text)), True


def _read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path} is missing: is this the {what} folder?") from None
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path} cannot be read ({error}).") from None


def pie_bench(root: Path, manifest_dir: Path) -> list[Item]:
    """PIE-Bench: every entry of mapping_file.json; the keyword is the first of blended_word's
    words, then of the original prompt's [bracketed] words, found in the instruction."""
    root = Path(root)
    mapping = _read_json(root / "mapping_file.json", "PIE-Bench data")
    items = []
    for key, entry in mapping.items():
        candidates = entry.get("blended_word", "").split()
        candidates += re.findall(r"\[([^\]]+)\]", entry.get("original_prompt", ""))
        instruction, guessed = _instruction(entry["editing_instruction"], candidates)
        type_id = str(entry.get("editing_type_id", ""))
        items.append(Item(
            id=f"pie-{key}",
            image=_relative(root / "annotation_images" / entry["image_path"], manifest_dir),
            instructions=(instruction,),
            input_caption=entry.get("original_prompt", "").replace("[", "").replace("]", ""),
            output_caption=entry.get("editing_prompt", "").replace("[", "").replace("]", ""),
            mask={"rle": entry["mask"], "size": [512, 512]} if entry.get("mask") else None,
            source="pie-bench",
            category=f"{type_id}_{PIE_TYPES.get(type_id, 'other').replace(' ', '_')}",
            extra={"keyword_guessed": True} if guessed else {},
        ))
    return items


def _sessions_to_items(sessions, mode: str, source: str) -> list[Item]:
    """sessions: {img_id: [turn dicts with image, mask, target, instruction, captions]}."""
    if mode not in SESSIONS:
        raise ManifestError(f"Sessions must be one of {', '.join(SESSIONS)}, not {mode!r}.")
    items = []
    for img_id, turns in sessions.items():
        if mode in ("turns", "both"):
            for turn in turns:
                instruction, guessed = _instruction(turn["instruction"])
                items.append(Item(
                    id=f"{source}-{img_id}-{turn['index']}", image=turn["image"], instructions=(instruction,),
                    input_caption=turn.get("input_caption", ""), output_caption=turn.get("output_caption", ""),
                    mask=turn.get("mask"), target=turn.get("target"), source=source, category="single-turn",
                    extra={"keyword_guessed": True} if guessed else {},
                ))
        if mode in ("combined", "both") and len(turns) > 1:
            pairs = [_instruction(turn["instruction"]) for turn in turns]
            items.append(Item(
                id=f"{source}-{img_id}", image=turns[0]["image"], instructions=tuple(p[0] for p in pairs),
                input_caption=turns[0].get("input_caption", ""), output_caption=turns[-1].get("output_caption", ""),
                mask=[turn["mask"] for turn in turns if turn.get("mask")] or None, target=turns[-1].get("target"),
                source=source, category=f"{len(turns)}-turn session",
                extra={"keyword_guessed": True} if any(p[1] for p in pairs) else {},
            ))
    return items


def magicbrush_test(root: Path, manifest_dir: Path, sessions: str = "turns") -> list[Item]:
    """The MagicBrush test zip: edit_sessions.json, images/<id>/…, global_descriptions.json.
    A turn's input is the ground-truth output of the turn before, as MagicBrush evaluates."""
    root = Path(root)
    data = _read_json(root / "edit_sessions.json", "MagicBrush test")
    captions_path = root / "global_descriptions.json"
    captions = _read_json(captions_path, "MagicBrush test") if captions_path.exists() else {}
    by_session = {}
    for img_id, turns in data.items():
        folder = root / "images" / str(img_id)
        said = captions.get(str(img_id), {})
        by_session[img_id] = [{
            "index": number,
            "image": _relative(folder / turn["input"], manifest_dir),
            "mask": _relative(folder / turn["mask"], manifest_dir) if turn.get("mask") else None,
            "target": _relative(folder / turn["output"], manifest_dir) if turn.get("output") else None,
            "instruction": turn["instruction"],
            "input_caption": said.get(turn["input"], ""),
            "output_caption": said.get(turn.get("output", ""), ""),
        } for number, turn in enumerate(turns, 1)]
    return _sessions_to_items(by_session, sessions, "magicbrush")


def _parquet_rows(paths, columns):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ManifestError(
            "Reading the Hugging Face parquet files needs pyarrow: pip install 'foi-studio[eval]'."
        ) from None
    for path in paths:
        try:
            table = pq.ParquetFile(path)
        except (OSError, ValueError) as error:
            raise ManifestError(f"{path} is not a readable parquet file ({error}).") from None
        missing = [c for c in columns if c not in table.schema_arrow.names]
        if missing:
            raise ManifestError(f"{Path(path).name} has no column {', '.join(missing)}: is it the right dataset?")
        for batch in table.iter_batches(batch_size=16, columns=columns):
            yield from batch.to_pylist()


def _parquet_files(source: Path) -> list[Path]:
    source = Path(source)
    found = sorted(source.rglob("*.parquet")) if source.is_dir() else [source]
    if not found or not found[0].exists():
        raise ManifestError(f"No parquet files at {source}.")
    return found


def _extract(cell, path: Path) -> Path:
    """A datasets Image cell ({"bytes", "path"}) written out as PNG (once)."""
    if not path.exists():
        with Image.open(io.BytesIO(cell["bytes"])) as image:
            files.save_image(path, image)
    return path


def magicbrush_parquet(source: Path, manifest_dir: Path, images_dir: Path, sessions: str = "turns") -> list[Item]:
    """osunlp/MagicBrush (train or dev parquet files). The parquet has no captions, so CLIP-D
    is left empty for these items. The images are written to images_dir."""
    images_dir = Path(images_dir)
    by_session: dict[str, list] = {}
    for row in _parquet_rows(_parquet_files(source), ["img_id", "turn_index", "source_img", "mask_img",
                                                      "instruction", "target_img"]):
        img_id, number = _safe_name(row["img_id"], "MagicBrush img_id"), int(row["turn_index"])
        folder = images_dir / img_id
        paths = {name: _extract(row[column], folder / f"{img_id}-{name}{number}.png")
                 for name, column in (("input", "source_img"), ("mask", "mask_img"), ("output", "target_img"))}
        by_session.setdefault(img_id, []).append({
            "index": number, "instruction": row["instruction"],
            **{key: _relative(paths[name], manifest_dir) for key, name in
               (("image", "input"), ("mask", "mask"), ("target", "output"))},
        })
    for turns in by_session.values():
        turns.sort(key=lambda turn: turn["index"])
    return _sessions_to_items(by_session, sessions, "magicbrush")


def emu_edit(source: Path, manifest_dir: Path, images_dir: Path) -> list[Item]:
    """facebook/emu_edit_test_set (parquet): one single-instruction item per row, with both
    captions and the task type as category; no ground-truth edit."""
    images_dir = Path(images_dir)
    items = []
    for number, row in enumerate(_parquet_rows(_parquet_files(source), ["instruction", "image", "input_caption",
                                                                         "output_caption", "task", "idx"])):
        if not (row["instruction"] or "").strip():
            continue  # a few rows carry no instruction: nothing to evaluate
        name = _safe_name(row["idx"] if row["idx"] is not None else number, "EMU-Edit idx")
        path = _extract(row["image"], images_dir / f"{name}.png")
        instruction, guessed = _instruction(row["instruction"] or "")
        items.append(Item(
            id=f"emu-{name}", image=_relative(path, manifest_dir), instructions=(instruction,),
            input_caption=row["input_caption"] or "", output_caption=row["output_caption"] or "",
            source="emu-edit", category=row["task"] or "",
            extra={"keyword_guessed": True} if guessed else {},
        ))
    return items


def shapes(manifest_dir: Path, images_dir: Path, single: int = 40, multi: int = 30) -> list[Item]:
    """The shapes model's held-out scenes (foi_engine.shapes.evaluate.heldout_scenes: the
    model card's 40 single- and 30 multi-instruction scenes, with their seeds): the scene,
    its exact edit region (the union of its instructions' regions) and the true edit."""
    import numpy as np

    from ..shapes.evaluate import heldout_scenes

    images_dir = Path(images_dir)
    items = []
    for group, example, seed in heldout_scenes(single, multi):
        name = f"{group}-{seed:03d}"
        region = np.any([edit.mask for edit in example.edits], axis=0)
        paths = {}
        for part, pixels in (("input", example.source), ("mask", region.astype(np.uint8) * 255),
                             ("target", example.edited)):
            paths[part] = images_dir / f"{name}-{part}.png"
            files.save_image(paths[part], Image.fromarray(pixels))
        items.append(Item(
            id=f"shapes-{name}", image=_relative(paths["input"], manifest_dir),
            instructions=tuple(Instruction(edit.text, edit.keyword) for edit in example.edits),
            mask=_relative(paths["mask"], manifest_dir), target=_relative(paths["target"], manifest_dir),
            seed=seed, source="shapes", category=group,
        ))
    return items
