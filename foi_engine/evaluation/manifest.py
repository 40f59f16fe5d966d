"""The evaluation manifest: JSON Lines, one edit per line.

    {"id": "pie-000000000000",                      unique, any text
     "image": "annotation_images/0_random_140/000000000000.jpg",   relative to the manifest
     "instructions": [{"text": "Make the frame of the bike rusty", "keyword": "bike"}],
     "input_caption": "a slanted mountain bicycle on the road",
     "output_caption": "a slanted rusty mountain bicycle on the road",
     "mask": {"rle": [...], "size": [512, 512]} | "masks/x.png" | [..] | null,   ground-truth region
     "target": "path of a ground-truth edited image" | null,
     "seed": 0 | absent (the run's --seed),
     "source": "pie-bench", "category": "0_random"}      free-form labels

Several instructions make a multi-instruction item (the paper's Table 1, lower half).
A keyword of null means "whole image". Importers guess keywords where a benchmark has none
and mark them "keyword_guessed": true, so they can be reviewed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FoiError
from ..inputs import check_regular_file
from ..prompt import NOT_KEYWORDS, keyword_pattern
from ..settings import Instruction
from . import files


MAX_MANIFEST_BYTES = 256 * 1024**2  # PIE-Bench's 700 edits take under 1 MB


class ManifestError(FoiError):
    """The manifest cannot be read or an entry is malformed."""

    title = "Cannot use this list of photos"


@dataclass(frozen=True)
class Item:
    id: str
    image: str
    instructions: tuple[Instruction, ...]
    input_caption: str = ""
    output_caption: str = ""
    mask: object = None
    target: str | None = None
    seed: int | None = None
    source: str = ""
    category: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def multi(self) -> bool:
        return len(self.instructions) > 1

    @property
    def folder_name(self) -> str:
        """The item's id as a safe file name."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.id).strip("._") or "item"

    def to_json(self) -> dict:
        entry = {"id": self.id, "image": self.image,
                 "instructions": [{"text": i.text, "keyword": i.keyword} for i in self.instructions],
                 "input_caption": self.input_caption, "output_caption": self.output_caption}
        for key in ("mask", "target", "seed"):
            if getattr(self, key) is not None:
                entry[key] = getattr(self, key)
        for key in ("source", "category"):
            if getattr(self, key):
                entry[key] = getattr(self, key)
        entry.update(self.extra)
        return entry


KNOWN = {"id", "image", "instructions", "input_caption", "output_caption", "mask", "target", "seed",
         "source", "category"}


def parse_item(entry: dict, where: str = "") -> Item:
    def bad(message):
        return ManifestError(f"{where}{message}")

    if not isinstance(entry, dict):
        raise bad("each line must be a JSON object.")
    for key in ("id", "image", "instructions"):
        if key not in entry:
            raise bad(f'the entry has no "{key}".')
    raw = entry["instructions"]
    if isinstance(raw, (str, dict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise bad('"instructions" must be a non-empty list.')
    instructions = []
    for part in raw:
        if not isinstance(part, (str, dict)):
            raise bad("each instruction must be text or {\"text\": …, \"keyword\": …}.")
        text, keyword = (part, None) if isinstance(part, str) else (part.get("text"), part.get("keyword"))
        if not isinstance(text, str) or not text.strip():
            raise bad("an instruction has no text.")
        if keyword is not None and not keyword_pattern(keyword).search(text):
            raise bad(f'the keyword "{keyword}" is not a word of "{text}".')
        instructions.append(Instruction(text, keyword))
    seed = entry.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise bad(f"the seed must be a whole number ≥ 0, not {seed!r}.")
    return Item(
        id=str(entry["id"]), image=str(entry["image"]), instructions=tuple(instructions),
        input_caption=str(entry.get("input_caption") or ""), output_caption=str(entry.get("output_caption") or ""),
        mask=entry.get("mask"), target=entry.get("target"), seed=seed,
        source=str(entry.get("source") or ""), category=str(entry.get("category") or ""),
        extra={k: v for k, v in entry.items() if k not in KNOWN},
    )


def read_manifest(path: Path, skipped: list[str] | None = None) -> list[Item]:
    """The manifest's items. With `skipped` (a list), a malformed entry is described there
    (file and line) and left out instead of stopping the whole read."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"There is no manifest {path}: write one, or import a benchmark with `foi eval-import`.")
    check_regular_file(path, "a manifest", MAX_MANIFEST_BYTES, ManifestError)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ManifestError(f"There is no manifest {path}: write one, or import a benchmark with `foi eval-import`.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"The manifest {path} cannot be read ({error}).") from None
    items, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}: "
        try:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ManifestError(f"{where}not valid JSON ({error.msg}).") from None
            item = parse_item(entry, where)
            if item.id in seen:
                raise ManifestError(f'{where}the id "{item.id}" is used twice.')
        except FoiError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
            continue
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ManifestError(f"The manifest {path} lists no edits.")
    return items


def write_manifest(path: Path, items: list[Item]) -> None:
    files.write_text(path, "".join(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items))


def guess_keyword(text: str) -> str | None:
    """The first word of the instruction that is not an editing verb, article, preposition,
    pronoun or common adjective: in "put a hat on the dog" → "hat"; "make the sky red" → "sky".
    A heuristic, for benchmarks that do not name what each instruction acts on."""
    for word in re.findall(r"\w+", text):
        if word.lower() not in NOT_KEYWORDS and not word.isdigit():
            return word
    return None


def keyword_from(candidates, text: str) -> str | None:
    """The first candidate that is a whole word of the text (as the engine matches keywords)."""
    for candidate in candidates:
        if candidate and keyword_pattern(candidate).search(text):
            return candidate
    return None
