"""Project files (.foi): a zip of project.json, the photo, one PNG per mask and the results.

Layout (schema version 1):
  project.json            format, version, photo, layers, settings, seed, results (see _describe)
  photo/original.<ext>    the photo file exactly as opened (or photo/photo.png when pasted)
  masks/<n>.png           layer n's mask, 8-bit grey at the photo's size
  masks/<n>-flip.png      its flip plane (what τ turns each pixel into), when it has a grounding map
  results/<n>/image.png   result n at its working size; results/<n>/mask-<k>.png its masks
The undo history is not saved. Opening trusts nothing: the zip's names, declared sizes and
compression ratios are checked before anything is read, every image's size before it is
decoded, and every JSON value's type and range; each refusal is a ProjectError with one line
saying what is wrong."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import time
import warnings
import weakref
import zipfile
import zlib

import numpy as np
from PIL import Image

from foi_engine import EditSettings, FoiError, Instruction
from foi_engine.atomic import atomic_write
from foi_engine.inputs import check_regular_file, unreachable
from foi_engine.photo import PhotoMetadata, WorkingFrame, prepare_photo

from .errors import ProjectError
from .grounding import Grounding
from .model import Document, InstructionLayer, PackedMask, ResultEntry

FORMAT = "foi-studio-project"
VERSION = 1
MAX_MEMBERS = 4096
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_PROJECT_FILE_BYTES = 8 * 1024**3
MAX_RATIO = 1000  # deflate can reach ~1000:1 on uniform data; more is a zip bomb
MAX_RESULT_SIDE = 8192
MAX_LAYERS = 256  # with MAX_RESULTS and the bound on each image, what a project can decode is bounded
MAX_RESULTS = 1024
MAX_MAP_SIDE = 1024
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")
PNG_LEVEL = 1  # masks are mostly flat: level 1 is several times faster and barely larger


# ----------------------------------------------------------------------------------------------
# Saving


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def _cached_png(cache: dict, owner, key, make, part: str = "") -> bytes:
    """The PNG of `owner` (a layer, a result, the photo) or of one part of it (a layer's flip
    plane), re-encoded only when `key` changes, so an autosave costs only what changed since
    the last one. `cache` is the document's `png_cache`; each entry holds its owner weakly, so
    a new object that happens to reuse a dead one's id never gets the dead one's picture."""
    slot = (id(owner), part)
    cached = cache.get(slot)
    if cached is None or cached[0]() is not owner or cached[1] != key:
        cached = cache[slot] = (weakref.ref(owner), key, make())
    return cached[2]


def _drop_dead(cache: dict) -> None:
    """Forget the encodings of what is gone (removed layers, discarded results)."""
    for slot in [slot for slot, (owner, _key, _png) in cache.items() if owner() is None]:
        del cache[slot]


def _frame_json(frame: WorkingFrame) -> dict:
    return {"photo_size": list(frame.photo_size), "size": list(frame.size)}


def _instruction_json(instruction: Instruction) -> dict:
    return dataclasses.asdict(instruction)


def _photo_member(doc: Document) -> tuple[str, bytes]:
    if doc.photo_file is not None:
        name, data = doc.photo_file
        extension = os.path.splitext(name)[1].lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,5}", extension):
            extension = ".img"
        return f"photo/original{extension}", data
    return "photo/photo.png", _cached_png(doc.png_cache, doc, "photo", lambda: _png(doc.photo))


def save_project(doc: Document, path: str | os.PathLike, recovery: dict | None = None) -> None:
    """Write the project atomically. A normal save makes `path` the document's project and
    clears `modified`; a recovery save (recovery = extra info) changes nothing on the document.
    What could not be opened again is not written."""
    if len(doc.layers) > MAX_LAYERS or len(doc.results) > MAX_RESULTS:
        raise ProjectError(f"A project keeps at most {MAX_LAYERS} instructions and {MAX_RESULTS} results: "
                           "remove some, then save again.")
    _drop_dead(doc.png_cache)
    photo_name, photo_bytes = _photo_member(doc)
    members: list[tuple[str, bytes]] = [(photo_name, photo_bytes)]
    layers = []
    for n, layer in enumerate(doc.layers):
        member = f"masks/{n}.png"
        members.append((member, _cached_png(doc.png_cache, layer, layer.revision,
                                            lambda: _png(Image.fromarray(layer.mask, "L")))))
        grounding = layer.grounding
        flip_member = None
        if grounding is not None:  # without a map τ moves nothing: the flip plane is not needed
            flip_member = f"masks/{n}-flip.png"
            members.append((flip_member, _cached_png(doc.png_cache, layer, layer.revision,
                                                     lambda: _png(Image.fromarray(layer.flip, "L")), "flip")))
        layers.append({
            "id": layer.id, "text": layer.text, "keyword": layer.keyword, "strength": layer.strength,
            "threshold": layer.threshold, "auto_threshold": layer.auto_threshold, "color": list(layer.color),
            "visible": layer.visible, "opacity": layer.opacity, "pristine": layer.pristine, "mask": member,
            "flip": flip_member,
            "grounding": None if grounding is None else {
                "map": grounding.map.tolist(), "frame": _frame_json(grounding.frame),
                "whole_image": grounding.whole_image,
            },
        })
    results = []
    for n, entry in enumerate(doc.results):
        image_member = f"results/{n}/image.png"
        members.append((image_member, _cached_png(doc.png_cache, entry, "image",
                                                  lambda: _png(entry.image.convert("RGB")))))
        mask_members = []
        for k, packed in enumerate(entry.packed_masks):
            member = f"results/{n}/mask-{k}.png"
            members.append((member, _cached_png(doc.png_cache, packed, "png",
                                                lambda: _png(Image.fromarray(packed.unpack(), "L")))))
            mask_members.append(member)
        results.append({
            "id": entry.id, "image": image_member, "masks": mask_members,
            "instructions": [_instruction_json(i) for i in entry.instructions], "names": entry.names,
            "colors": [list(c) for c in entry.colors], "settings": dataclasses.asdict(entry.settings),
            "seed": entry.seed, "frame": _frame_json(entry.frame), "model_name": entry.model_name,
            "random_weights": entry.random_weights, "created": entry.created, "accepted": entry.accepted,
            "starred": entry.starred,
        })
    description = {
        "format": FORMAT, "version": VERSION, "saved": time.time(),
        "photo": {"member": photo_name, "size": list(doc.size), "source_path": doc.source_path,
                  "name": doc.photo_file[0] if doc.photo_file else None},
        "layers": layers, "settings": dataclasses.asdict(doc.settings), "seed": doc.seed,
        "fixed_seed": doc.fixed_seed, "results": results,
    }
    if recovery is not None:
        description["recovery"] = recovery
    try:
        with atomic_write(path) as stream, zipfile.ZipFile(stream, "w") as archive:
            archive.writestr("project.json", json.dumps(description), compress_type=zipfile.ZIP_DEFLATED)
            for member, data in members:  # PNG and JPEG are compressed already
                archive.writestr(member, data, compress_type=zipfile.ZIP_STORED)
    except OSError as error:
        raise ProjectError(
            f"Could not save {os.path.basename(os.fspath(path))}: {error.strerror or error}."
        ) from error
    if recovery is None:
        doc.project_path = os.fspath(path)
        doc.modified = False


# ----------------------------------------------------------------------------------------------
# Opening


class _Reader:
    """Safe access to a project zip; every problem becomes a ProjectError naming the file."""

    def __init__(self, path):
        self.name = os.path.basename(os.fspath(path))
        check_regular_file(path, "a FoI Studio project", MAX_PROJECT_FILE_BYTES, ProjectError)
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            reason = unreachable(error, self.name, "a FoI Studio project") if isinstance(error, OSError) else None
            raise ProjectError(reason or f"{self.name} is not a FoI Studio project, or it is damaged.") from None
        self._check_members()

    def fail(self, what: str):
        raise ProjectError(f"{self.name} cannot be opened: {what}.")

    def _check_members(self):
        infos = self.archive.infolist()
        if len(infos) > MAX_MEMBERS:
            self.fail(f"it holds {len(infos)} files, more than a project ever does")
        seen, total = set(), 0
        for info in infos:
            name = info.filename
            if name.endswith("/") and info.file_size == 0:
                continue  # a folder entry
            if not SAFE_NAME.fullmatch(name) or ".." in name.split("/"):
                self.fail(f"it contains a file named {name[:80]!r} that points outside the project")
            if name in seen:
                self.fail(f"it contains {name!r} twice")
            seen.add(name)
            if info.file_size > MAX_MEMBER_BYTES:
                self.fail(f"{name} claims {info.file_size:,} bytes, far more than a project part can be")
            if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                self.fail(f"{name} would expand {info.file_size // max(info.compress_size, 1):,} times (a zip bomb)")
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            self.fail(f"its parts add up to {total:,} bytes, more than a project can be")
        self.members = seen

    def read(self, member, limit: int = MAX_MEMBER_BYTES) -> bytes:
        if not isinstance(member, str) or member not in self.members:
            self.fail(f"its part {str(member)[:80]!r} is missing")
        info = self.archive.getinfo(member)
        if info.file_size > limit:
            self.fail(f"{member} is {info.file_size:,} bytes, more than the {limit:,} allowed")
        try:
            return self.archive.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError):
            self.fail(f"{member} is damaged")

    def image(self, member, expected_size=None, max_side=None, channels: int = 3) -> Image.Image:
        # An image of a known size cannot honestly take more bytes than its pixels stored
        # uncompressed: a larger member is refused before it is read into memory.
        limit = MAX_MEMBER_BYTES if expected_size is None else _png_bound(expected_size, channels)
        data = self.read(member, limit)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
                if expected_size is not None and image.size != tuple(expected_size):
                    self.fail(f"{member} is {image.width}×{image.height}, "
                              f"not {expected_size[0]}×{expected_size[1]} as it should be")
                if max_side is not None and max(image.size) > max_side:
                    self.fail(f"{member} is {image.width}×{image.height}, larger than a result can be")
                image.load()
        except ProjectError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            self.fail(f"{member} is too large to open safely")
        except Exception:  # PIL raises many kinds on damaged data
            self.fail(f"{member} is not a readable image")
        return image


def _get(reader: _Reader, mapping, key, kind, where: str, optional=False):
    """mapping[key] checked to be of `kind` (a type or tuple); None allowed when optional."""
    if not isinstance(mapping, dict) or key not in mapping:
        reader.fail(f"{where} lacks '{key}'")
    value = mapping[key]
    if value is None and optional:
        return None
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        reader.fail(f"{where} has an invalid '{key}'")
    return value


def _unit(reader, mapping, key, where, optional=False):
    value = _get(reader, mapping, key, float, where, optional)
    if value is not None and not 0.0 <= value <= 1.0:
        reader.fail(f"{where} has '{key}' outside 0..1")
    return value


def _color(reader, value, where):
    if not (isinstance(value, list) and len(value) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)):
        reader.fail(f"{where} has an invalid colour")
    return tuple(value)


def _size_pair(reader, value, where, limit):
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limit for v in value)):
        reader.fail(f"{where} has an invalid size")
    return tuple(value)


def _frame(reader, value, photo_size, where) -> WorkingFrame:
    photo = _size_pair(reader, _get(reader, value, "photo_size", list, where), where, 10**6)
    if photo != tuple(photo_size):
        reader.fail(f"{where} belongs to a photo of another size")
    size = _size_pair(reader, _get(reader, value, "size", list, where), where, MAX_RESULT_SIDE)
    return WorkingFrame(photo, size)


def _settings(reader, value, where) -> EditSettings:
    if not isinstance(value, dict):
        reader.fail(f"{where} has invalid settings")
    try:
        return EditSettings(**value)
    except TypeError:
        reader.fail(f"{where} has settings this version does not know")
    except FoiError as error:
        reader.fail(f"{where}: {str(error).rstrip('.')}")


def _png_bound(size, channels: int) -> int:
    """The most bytes a PNG of this size can need: every row stored, 1 % of deflate's
    worst case, room for chunks and metadata."""
    width, height = size
    return int(height * (width * channels + 1) * 1.01) + 65536


def _mask(reader, member, size) -> np.ndarray:
    image = reader.image(member, expected_size=size, channels=1)
    if image.mode != "L":
        reader.fail(f"{member} is not a grey mask")
    return np.array(image, dtype=np.uint8)


def _flip(reader, value, layer: InstructionLayer, photo_size, where) -> np.ndarray:
    """The layer's flip plane as saved. A project saved before flip planes existed gets one
    from its map: the pixels unlike the thresholded map are brush work, which τ leaves."""
    if value.get("flip") is not None:
        return _mask(reader, _get(reader, value, "flip", str, where), photo_size)
    flip = 255 - layer.mask
    if layer.grounding is not None:
        thresholded = np.empty_like(layer.mask)
        layer.grounding.fill(thresholded, layer.effective_threshold)
        np.copyto(flip, layer.mask, where=layer.mask != thresholded)
    return flip


def _grounding(reader, value, photo_size, where) -> Grounding | None:
    if value is None:
        return None
    frame = _frame(reader, _get(reader, value, "frame", dict, where), photo_size, where)
    rows = _get(reader, value, "map", list, where)
    try:
        grid = np.array(rows, dtype=np.float32)
    except (ValueError, TypeError):
        reader.fail(f"{where} has an invalid grounding map")
    if grid.ndim != 2 or not (1 <= grid.shape[0] <= MAX_MAP_SIDE and 1 <= grid.shape[1] <= MAX_MAP_SIDE):
        reader.fail(f"{where} has a grounding map of an invalid shape")
    if not (np.isfinite(grid).all() and grid.min() >= 0 and grid.max() <= 1):
        reader.fail(f"{where} has grounding values outside 0..1")
    return Grounding(grid, frame, bool(_get(reader, value, "whole_image", bool, where)))


def _instruction(reader, value, where) -> Instruction:
    try:
        return Instruction(
            _get(reader, value, "text", str, where), _get(reader, value, "keyword", str, where, True),
            _get(reader, value, "strength", float, where), _unit(reader, value, "threshold", where, True),
        )
    except FoiError as error:
        reader.fail(f"{where}: {str(error).rstrip('.')}")


def read_description(reader: _Reader) -> dict:
    data = reader.read("project.json", MAX_JSON_BYTES)
    try:
        description = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        reader.fail("its project.json is not valid JSON")
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        reader.fail("it is not a FoI Studio project")
    version = description.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        reader.fail("its version is missing or invalid")
    if version > VERSION:
        reader.fail(f"it was saved by a newer FoI Studio (project version {version}); update FoI Studio to open it")
    return description


def _photo(reader, description) -> tuple[Image.Image, tuple[str, bytes] | None, str | None, PhotoMetadata]:
    photo_info = _get(reader, description, "photo", dict, "the project")
    member = _get(reader, photo_info, "member", str, "the photo entry")
    size = _size_pair(reader, _get(reader, photo_info, "size", list, "the photo entry"), "the photo entry", 10**6)
    source_path = _get(reader, photo_info, "source_path", str, "the photo entry", optional=True)
    original = reader.image(member, expected_size=None)
    try:
        photo = prepare_photo(original)
    except FoiError as error:
        reader.fail(f"its photo cannot be used ({str(error).rstrip('.')})")
    if photo.size != size:
        reader.fail(f"its photo is {photo.width}×{photo.height}, not {size[0]}×{size[1]} as recorded")
    name = _get(reader, photo_info, "name", str, "the photo entry", optional=True)
    photo_file = (name or os.path.basename(member), reader.read(member)) if member.startswith("photo/original") else None
    return photo, photo_file, source_path, PhotoMetadata.of(original)


def open_project(path: str | os.PathLike) -> Document:
    """Read a .foi project; refusals are ProjectError with a one-line message."""
    reader = _Reader(path)
    with reader.archive:
        description = read_description(reader)
        photo, photo_file, source_path, metadata = _photo(reader, description)
        doc = Document(photo, source_path=source_path, photo_file=photo_file, photo_metadata=metadata)
        layers = _get(reader, description, "layers", list, "the project")
        results = _get(reader, description, "results", list, "the project")
        if len(layers) > MAX_LAYERS or len(results) > MAX_RESULTS:
            reader.fail(f"it lists {len(layers)} instructions and {len(results)} results, more than FoI Studio "
                        f"keeps ({MAX_LAYERS} and {MAX_RESULTS})")
        for n, value in enumerate(layers):
            where = f"instruction {n + 1}"
            layer_id = _get(reader, value, "id", str, where)
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", layer_id) or any(l.id == layer_id for l in doc.layers):
                reader.fail(f"{where} has an invalid id")
            layer = InstructionLayer(
                id=layer_id,
                mask=_mask(reader, _get(reader, value, "mask", str, where), photo.size),
                text=_get(reader, value, "text", str, where),
                keyword=_get(reader, value, "keyword", str, where, optional=True),
                strength=_get(reader, value, "strength", float, where),
                threshold=_unit(reader, value, "threshold", where, optional=True),
                auto_threshold=_unit(reader, value, "auto_threshold", where, optional=True),
                color=_color(reader, _get(reader, value, "color", list, where), where),
                visible=_get(reader, value, "visible", bool, where),
                opacity=_unit(reader, value, "opacity", where),
                grounding=_grounding(reader, _get(reader, value, "grounding", dict, where, True), photo.size, where),
                pristine=_get(reader, value, "pristine", bool, where),
            )
            layer.flip = _flip(reader, value, layer, photo.size, where)
            doc.layers.append(layer)
        doc.settings = _settings(reader, _get(reader, description, "settings", dict, "the project"), "the project")
        doc.seed = _get(reader, description, "seed", int, "the project")
        doc.fixed_seed = _get(reader, description, "fixed_seed", bool, "the project")
        for n, value in enumerate(results):
            doc.results.append(_result(reader, value, photo.size, f"result {n + 1}"))
    doc.project_path = os.fspath(path)
    doc.modified = False
    return doc


def _result(reader, value, photo_size, where) -> ResultEntry:
    frame = _frame(reader, _get(reader, value, "frame", dict, where), photo_size, where)
    image = reader.image(_get(reader, value, "image", str, where), expected_size=frame.size)
    instructions = tuple(_instruction(reader, i, where) for i in _get(reader, value, "instructions", list, where))
    masks = [_mask(reader, m, photo_size) for m in _get(reader, value, "masks", list, where)]
    names = _get(reader, value, "names", list, where)
    colors = [_color(reader, c, where) for c in _get(reader, value, "colors", list, where)]
    if not (len(masks) == len(names) == len(colors)) or not all(isinstance(n, str) for n in names):
        reader.fail(f"{where} has mismatched masks and names")
    return ResultEntry(
        id=_get(reader, value, "id", str, where)[:64],
        image=image.convert("RGB"),
        instructions=instructions,
        names=names,
        colors=colors,
        packed_masks=[PackedMask(mask) for mask in masks],
        settings=_settings(reader, _get(reader, value, "settings", dict, where), where),
        seed=_get(reader, value, "seed", int, where),
        frame=frame,
        model_name=_get(reader, value, "model_name", str, where),
        random_weights=_get(reader, value, "random_weights", bool, where),
        created=_get(reader, value, "created", float, where),
        accepted=_get(reader, value, "accepted", bool, where),
        # Projects saved before stars had none.
        starred=_get(reader, value, "starred", bool, where) if "starred" in value else False,
    )
