"""The document: one photo, its instruction layers with masks at the photo's resolution, the
undo history, the results, and the run settings. Plain Python + numpy + PIL; views observe it
through `doc.events` (see events.py) and change it only through its methods."""

from __future__ import annotations

import os
import random
import time
import uuid
import zlib
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from foi_engine import EditSettings, Instruction, MaskError, PhotoError
from foi_engine.atomic import atomic_write
from foi_engine.layered import (PALETTE, LayeredEdit, MaskLayer, composite_full_resolution, full_suffix,
                                kind_for_path, metadata_for, write_layered)
from foi_engine.mask_values import as_levels, levels_as_mask
from foi_engine.photo import PhotoMetadata, WorkingFrame, mask_levels, open_photo, prepare_photo
from foi_engine.prompt import keyword_choices, keyword_pattern

from . import maskops, selection
from .events import DocumentEvents, EventEmitter, Rect
from .grounding import Grounding
from .history import History, LayerAdded, LayerMoved, LayerRemoved, Step

UNDOABLE_FIELDS = ("text", "keyword", "strength", "threshold")  # colour, visibility, opacity are view state
VIEW_FIELDS = ("color", "visible", "opacity")
# Results whose rendering stays in memory (about 250 MB each for a 24-megapixel photo): the one
# shown and the one before it, so flipping between two and exporting either renders nothing again.
RENDERED_RESULTS = 2


@dataclass(eq=False)
class InstructionLayer:
    """One instruction and its mask. Change it through the Document, never directly.

    mask: uint8 (H, W) at the photo's resolution, 0..255 (255 = act here fully).
    threshold: τ chosen by the user (None = auto, drawn by the engine from the seed);
    auto_threshold: τ the engine drew at the last Find regions; `effective_threshold` is
    the one the mask shows. grounding: the cached map (None before Find regions or after the
    text or keyword changed). pristine: the mask is exactly the thresholded grounding map.

    flip: uint8 like mask, the value each pixel takes when τ crosses its map level. Find
    regions makes it the thresholded map's other side; strokes and mask operations change it
    as they change the mask, so what a person painted or erased holds on both sides of τ
    (a pixel's two values are its brush work applied over 0 and over 255)."""

    id: str
    mask: np.ndarray
    text: str = ""
    keyword: str | None = None
    strength: float = 1.0
    threshold: float | None = None
    auto_threshold: float | None = None
    color: tuple[int, int, int] = PALETTE[0]
    visible: bool = True
    opacity: float = 0.5
    grounding: Grounding | None = None
    pristine: bool = False
    revision: int = 0  # bumped on every mask change (project saving caches by it)
    flip: np.ndarray | None = None  # None: made from the mask (nothing painted yet)

    def __post_init__(self):
        if self.flip is None:
            self.flip = 255 - self.mask

    @property
    def planes(self) -> tuple[np.ndarray, np.ndarray]:
        """The arrays the undo history snapshots."""
        return self.mask, self.flip

    @property
    def grounding_map(self) -> np.ndarray | None:
        return None if self.grounding is None else self.grounding.map

    @property
    def effective_threshold(self) -> float | None:
        return self.threshold if self.threshold is not None else self.auto_threshold

    def words(self) -> list[str]:
        """The keyword picker's choices: the words that may name a place, and the chosen
        keyword even if it is not one (a project from before the list was kept short)."""
        words = keyword_choices(self.text)
        if self.keyword and self.keyword.lower() not in words:
            words.append(self.keyword.lower())
        return words

    def instruction(self) -> Instruction:
        return Instruction(self.text, self.keyword, self.strength, self.threshold)


class PackedMask:
    """A mask kept compressed in memory (results keep one per instruction)."""

    def __init__(self, mask: np.ndarray):
        self.shape = mask.shape
        self._data = zlib.compress(np.ascontiguousarray(mask, dtype=np.uint8).tobytes(), 1)

    def unpack(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self._data), np.uint8).reshape(self.shape).copy()


@dataclass(frozen=True)
class EditRequest:
    """Everything one Edit run needs, frozen when the user presses Edit (painting may go on
    while the engine runs): `engine.edit(**request.engine_arguments())`, then give the request
    back to `Document.add_result`."""

    photo: Image.Image
    instructions: list[Instruction]
    masks: list[np.ndarray]
    settings: EditSettings
    seed: int
    layer_ids: list[str]
    names: list[str]
    colors: list[tuple[int, int, int]]
    snapshot: list[PackedMask]

    def engine_arguments(self) -> dict:
        """What `Engine.edit` and `EngineClient.edit` take from the request, by name."""
        return {"image": self.photo, "instructions": self.instructions, "settings": self.settings,
                "seed": self.seed, "masks": self.masks}


@dataclass(eq=False)
class ResultEntry:
    """One finished edit. image: RGB at frame.size; masks: the photo-resolution masks it used."""

    id: str
    image: Image.Image
    instructions: tuple[Instruction, ...]
    names: list[str]
    colors: list[tuple[int, int, int]]
    packed_masks: list[PackedMask]
    settings: EditSettings
    seed: int
    frame: WorkingFrame
    model_name: str
    random_weights: bool
    created: float = field(default_factory=time.time)
    accepted: bool = False
    starred: bool = False  # one of the user's picks (any number may be)

    @property
    def masks(self) -> list[np.ndarray]:
        return [packed.unpack() for packed in self.packed_masks]

    def metadata(self) -> dict:
        return metadata_for(self.instructions, self.settings, self.seed, self.model_name, self.random_weights)


class Document:
    def __init__(self, photo: Image.Image, source_path: str | None = None, photo_file: tuple[str, bytes] | None = None,
                 photo_metadata: PhotoMetadata = PhotoMetadata()):
        """photo: an oriented 8-bit RGB photo (`prepare_photo` output).
        photo_file: (name, bytes) of the file it came from, kept so a project stores the
        original file rather than re-encoding it.
        photo_metadata: that file's format, EXIF and colour profile, which the full-resolution
        export keeps (a project reads them again from the file it stores)."""
        if photo.mode != "RGB":
            raise ValueError("Document needs the prepared RGB photo (foi_engine.photo.prepare_photo).")
        self.photo = photo
        self.source_path = source_path
        self.photo_file = photo_file
        self.photo_metadata = photo_metadata
        self.uid = uuid.uuid4().hex  # names this document's recovery file
        self.events = DocumentEvents()
        self.layers: list[InstructionLayer] = []
        self.results: list[ResultEntry] = []
        self.history = History()
        self._settings = EditSettings()
        self.seed = random.randrange(2**31)
        self.fixed_seed = False
        self.project_path: str | None = None
        self.png_cache: dict = {}  # saving's PNG encodings of the photo, masks and results (project.py)
        self._unsaved = False  # a change the undo history does not hold (settings, results, colours)
        self._open: Step | None = None
        self._depth = 0
        self._stroke: dict | None = None
        self._rendered: OrderedDict[str, LayeredEdit] = OrderedDict()  # by result id, oldest first
        self._pixels: np.ndarray | None = None  # the photo as an array, made at the first wand click

    @classmethod
    def open_photo(cls, path: str | os.PathLike) -> "Document":
        """Read a photo (never writes to it); refusals are PhotoError with a one-line message."""
        path = os.fspath(path)
        original = open_photo(path)
        photo = prepare_photo(original)
        with open(path, "rb") as stream:
            data = stream.read()
        return cls(photo, source_path=path, photo_file=(os.path.basename(path), data),
                   photo_metadata=PhotoMetadata.of(original))

    # ------------------------------------------------------------------------------------------
    # Basics

    @property
    def size(self) -> tuple[int, int]:
        return self.photo.size

    def frame(self, resolution: int | None = None) -> WorkingFrame:
        return WorkingFrame.for_photo(self.size, resolution or self._settings.resolution)

    @property
    def settings(self) -> EditSettings:
        return self._settings

    @settings.setter
    def settings(self, settings: EditSettings) -> None:
        self._settings = settings
        self._changed(self.events.settings)

    def set_seed(self, seed: int, fixed: bool | None = None) -> None:
        self.seed = int(seed)
        if fixed is not None:
            self.fixed_seed = bool(fixed)
        self._changed(self.events.settings)

    def layer(self, layer_id: str) -> InstructionLayer:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(f"No layer {layer_id!r}")

    def index_of(self, layer_id: str) -> int:
        return self.layers.index(self.layer(layer_id))

    def instructions(self) -> list[Instruction]:
        """One engine Instruction per layer (raises InstructionError for an empty text)."""
        return [layer.instruction() for layer in self.layers]

    @property
    def modified(self) -> bool:
        """Whether there is unsaved work: undo back to the saved state and there is none."""
        return self._unsaved or self._open is not None or not self.history.at_saved

    @modified.setter
    def modified(self, value: bool) -> None:
        """False: the document as it is now is saved. True: it counts as unsaved whatever
        undo does (a recovered copy)."""
        self._unsaved = bool(value)
        if not value:
            self.history.mark_saved()

    def forget_history(self) -> None:
        """No undo steps and nothing unsaved: the document as if just opened (the sample photo
        with its instructions already written)."""
        self.history.clear()
        self.modified = False
        self.events.history.emit()

    def _changed(self, emitter: EventEmitter) -> None:
        """A change outside the undo history."""
        self._unsaved = True
        emitter.emit()

    # ------------------------------------------------------------------------------------------
    # Undo steps

    @contextmanager
    def _step(self, text: str, merge_key=None):
        """Changes inside one `with` are one undo item (or join the open group/stroke)."""
        if self._open is None:
            self._open = self.history.mergeable(merge_key) or Step(text, merge_key)
            self._open.when = time.monotonic()
        self._depth += 1
        try:
            yield self._open
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._commit()

    def _commit(self) -> None:
        step, self._open = self._open, None
        if step.close():
            self.history.push(step)
        self.events.history.emit()

    def begin_group(self, text: str) -> None:
        """Everything until end_group is one undo item (e.g. one drag of a slider)."""
        if self._open is None:
            self._open = Step(text)
        self._depth += 1

    def end_group(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self._commit()

    @property
    def can_undo(self) -> bool:
        return bool(self.history.undo_steps)

    @property
    def can_redo(self) -> bool:
        return bool(self.history.redo_steps)

    @property
    def undo_text(self) -> str:
        return self.history.undo_steps[-1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self.history.redo_steps[-1].text if self.can_redo else ""

    def undo(self) -> bool:
        return self._undo_or_redo(backwards=True)

    def redo(self) -> bool:
        return self._undo_or_redo(backwards=False)

    def _undo_or_redo(self, backwards: bool) -> bool:
        """Replay the newest step of one stack and move it onto the other."""
        self._finish_open()
        history = self.history
        source, target = ((history.undo_steps, history.redo_steps) if backwards
                          else (history.redo_steps, history.undo_steps))
        if not source:
            return False
        step = source.pop()
        self._replay(step, backwards)
        target.append(step)
        self.events.history.emit()
        return True

    def go_to(self, position: int) -> None:
        """Undo or redo until the first `position` of history.entries are applied. The views
        hear of the history once, at the end, not once per step (a jump of fifty steps in the
        History panel would otherwise rebuild its list fifty times)."""
        self._finish_open()
        start = self.history.position
        with self.events.history.blocker():
            for _ in range(start - position):
                self.undo()
            for _ in range(position - start):
                self.redo()
        if self.history.position != start:
            self.events.history.emit()

    def _finish_open(self) -> None:
        """Undo during a stroke or drag ends it first."""
        if self._open is not None:
            self._stroke = None
            self._depth = 0
            self._commit()

    def _replay(self, step: Step, backwards: bool) -> None:
        step.replay(self.layers, backwards)
        if step.structure:
            self.events.layers.emit()
        for layer in {layer for layer, _ in step.fields}:
            self.events.layer.emit(layer_id=layer.id)
        for layer in {**step.tiles, **step.bands}:
            layer.revision += 1
            self._emit_mask(layer, step.mask_rects(layer))

    def _emit_mask(self, layer: InstructionLayer, rects: list[Rect] | None) -> None:
        """rects None = the whole mask."""
        if rects is not None and not rects:
            return
        bounds = None
        for rect in rects or ():
            bounds = maskops.union_rect(bounds, rect)
        self.events.mask.emit(layer_id=layer.id, rect=bounds, rects=tuple(rects or ()))

    def _set(self, step: Step, layer: InstructionLayer, name: str, value) -> None:
        step.set_field(layer, name, getattr(layer, name), value)
        setattr(layer, name, value)

    def _mask_edit(self, step: Step, layer: InstructionLayer, rect: Rect | None) -> None:
        """Before changing pixels under rect (None = all): remember them; the mask is the user's now."""
        height, width = layer.mask.shape
        step.touch(layer, rect or (0, 0, width, height))
        layer.revision += 1
        if layer.pristine:
            self._set(step, layer, "pristine", False)

    # ------------------------------------------------------------------------------------------
    # Layers

    def add_layer(self, text: str = "", keyword: str | None = None, index: int | None = None) -> InstructionLayer:
        used = {layer.color for layer in self.layers}
        color = next((c for c in PALETTE if c not in used), PALETTE[len(self.layers) % len(PALETTE)])
        width, height = self.size
        layer = InstructionLayer(uuid.uuid4().hex[:12], np.zeros((height, width), np.uint8), text, keyword, color=color)
        index = len(self.layers) if index is None else max(0, min(index, len(self.layers)))
        with self._step("Add instruction") as step:
            self.layers.insert(index, layer)
            step.structure.append(LayerAdded(layer, index))
        self.events.layers.emit()
        return layer

    def remove_layer(self, layer_id: str) -> None:
        layer = self.layer(layer_id)
        index = self.layers.index(layer)
        with self._step("Remove instruction") as step:
            self.layers.remove(layer)
            step.structure.append(LayerRemoved(layer, index))
        self.events.layers.emit()

    def move_layer(self, layer_id: str, index: int) -> None:
        source = self.index_of(layer_id)
        target = max(0, min(index, len(self.layers) - 1))
        if source == target:
            return
        with self._step("Move instruction") as step:
            self.layers.insert(target, self.layers.pop(source))
            step.structure.append(LayerMoved(self.layers[target], source, target))
        self.events.layers.emit()

    def update_layer(self, layer_id: str, **fields) -> None:
        """text, keyword, strength, threshold are undoable (consecutive edits of one field of
        one layer within a second merge into one item); color, visible, opacity are not."""
        layer = self.layer(layer_id)
        unknown = set(fields) - set(UNDOABLE_FIELDS) - set(VIEW_FIELDS)
        if unknown:
            raise TypeError(f"update_layer got unknown fields {sorted(unknown)}")
        if "threshold" in fields:
            self.set_threshold(layer_id, fields.pop("threshold"))
        for name in VIEW_FIELDS:
            if name in fields:
                value = fields.pop(name)
                value = tuple(int(c) for c in value) if name == "color" else value
                if getattr(layer, name) != value:
                    setattr(layer, name, value)
                    self._unsaved = True  # saved in the project, but not undoable
        changes = {name: value for name, value in fields.items() if getattr(layer, name) != value}
        if changes:
            key = ("fields", layer.id, tuple(sorted(changes)))
            with self._step("Edit instruction", merge_key=key) as step:
                for name, value in changes.items():
                    self._set(step, layer, name, value)
                if "text" in changes or "keyword" in changes:
                    if layer.keyword is not None and not keyword_pattern(layer.keyword).search(layer.text):
                        self._set(step, layer, "keyword", None)
                    # The cached map belongs to the old words: τ no longer moves this mask.
                    self._set(step, layer, "grounding", None)
                    self._set(step, layer, "pristine", False)
        self.events.layer.emit(layer_id=layer.id)

    # ------------------------------------------------------------------------------------------
    # Grounding and threshold

    def apply_grounding(self, located, layer_ids: list[str] | None = None) -> list[str]:
        """Fill the masks from a LocateResult: map i → layer_ids[i] (default: the layers in
        order, which must then be as many as the maps). Layers removed since are skipped.
        One undo item. Returns the ids of the layers filled."""
        frame = located.frame
        if tuple(frame.photo_size) != tuple(self.size):
            raise MaskError("These regions were found on another photo: run Find regions again.")
        if layer_ids is None:
            if len(located.maps) != len(self.layers):
                raise MaskError("The instructions changed while finding regions: run Find regions again.")
            layer_ids = [layer.id for layer in self.layers]
        filled = []
        with self._step("Find regions") as step:
            for index, layer_id in enumerate(layer_ids):
                try:
                    layer = self.layer(layer_id)
                except KeyError:
                    continue
                tau = located.thresholds[index]
                grounding = Grounding(located.maps[index], frame, whole_image=tau is None)
                self._mask_edit(step, layer, None)
                grounding.fill(layer.mask, tau if layer.threshold is None else layer.threshold)
                np.subtract(255, layer.mask, out=layer.flip)
                self._set(step, layer, "grounding", grounding)
                self._set(step, layer, "auto_threshold", tau)
                self._set(step, layer, "pristine", True)
                filled.append(layer.id)
        for layer_id in filled:
            self.events.layer.emit(layer_id=layer_id)
            self._emit_mask(self.layer(layer_id), None)
        return filled

    def set_threshold(self, layer_id: str, tau: float | None) -> Rect | None:
        """Set τ (None = auto). With a cached map the mask follows at once: only pixels whose
        map value lies between the old and new τ change, to their flip value, so brush work
        stays wherever it is.
        Consecutive moves within a second are one undo item (or use begin_group/end_group
        around a drag). Returns the changed rectangle (None if no pixel changed)."""
        layer = self.layer(layer_id)
        if tau is not None:
            tau = min(max(float(tau), 0.0), 1.0)
        old = layer.effective_threshold
        changed: list[Rect] = []
        with self._step("Threshold", merge_key=("threshold", layer.id)) as step:
            self._set(step, layer, "threshold", tau)
            new = layer.effective_threshold
            grounding = layer.grounding
            if grounding is not None and old is not None and new is not None and old != new:
                changed = step.move_band(layer, grounding, old, new)
                if changed:
                    layer.revision += 1
        self.events.layer.emit(layer_id=layer.id)
        self._emit_mask(layer, changed)
        bounds = None
        for rect in changed:
            bounds = maskops.union_rect(bounds, rect)
        return bounds

    # ------------------------------------------------------------------------------------------
    # Brush

    def begin_stroke(self, layer_id: str, erase: bool = False, radius: float = 20.0, hardness: float = 0.8) -> None:
        """Start a brush (or eraser) stroke: all its segments are one undo item."""
        self._finish_open()
        layer = self.layer(layer_id)
        self.begin_group("Erase" if erase else "Brush stroke")
        self._stroke = {"layer": layer, "erase": bool(erase), "radius": float(radius),
                        "hardness": float(hardness), "last": None}

    def stroke_to(self, x: float, y: float, radius: float | None = None) -> Rect | None:
        """Paint from the last point (or a dab at the first) to (x, y), photo pixels, with the
        stroke's radius or, for this segment, another (a pen's pressure changes it as it goes).
        Returns the rectangle that may have changed (None when off the photo)."""
        stroke = self._stroke
        if stroke is None:
            raise RuntimeError("stroke_to needs begin_stroke first")
        layer = stroke["layer"]
        start = stroke["last"] or (x, y)
        stroke["last"] = (x, y)
        radius = stroke["radius"] if radius is None else float(radius)
        height, width = layer.mask.shape
        reach = maskops.clip_rect(
            (int(min(start[0], x) - radius) - 1, int(min(start[1], y) - radius) - 1,
             int(max(start[0], x) + radius) + 2, int(max(start[1], y) + radius) + 2), width, height)
        if reach is None:
            return None
        self._mask_edit(self._open, layer, reach)
        rect = maskops.brush_segment(layer.planes, start, (x, y), radius, stroke["hardness"], stroke["erase"])
        self._emit_mask(layer, [rect] if rect else [])
        return rect

    def end_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke = None
            self.end_group()

    # ------------------------------------------------------------------------------------------
    # Whole-mask operations

    def _pointwise_operation(self, layer_id: str, text: str, reach, change) -> Rect | None:
        """A pointwise operation (invert, clear, fill, replace, selections) as one undo item: it
        runs on the flip plane too, so it holds on both sides of τ like a stroke. reach(plane)
        is the rectangle it may change in a plane (None: nothing); change(plane, rect) changes
        the plane in place under that rectangle. Only those pixels are stored or written: no
        copy of a whole 24-megapixel mask. Returns the rectangle both planes' changes span."""
        layer = self.layer(layer_id)
        with self._step(text) as step:
            mask_rect, flip_rect = reach(layer.mask), reach(layer.flip)
            rect = maskops.union_rect(mask_rect, flip_rect)
            if rect is not None:
                self._mask_edit(step, layer, rect)
                for plane, plane_rect in ((layer.mask, mask_rect), (layer.flip, flip_rect)):
                    if plane_rect is not None:
                        change(plane, plane_rect)
        if mask_rect is not None:  # the flip plane shows nowhere: views redraw the mask's part only
            self._emit_mask(layer, [mask_rect])
        return rect

    def _spatial_operation(self, layer_id: str, text: str, operation) -> Rect | None:
        """Run operation(mask) -> changed rect (grow, feather: a pixel's new value depends on
        its neighbours'), as one undo item that stores only that rect. The pixels it changes
        keep their new value whatever τ does."""
        layer = self.layer(layer_id)
        with self._step(text) as step:
            mask = layer.mask.copy()
            rect = operation(mask)
            if rect is not None:
                self._mask_edit(step, layer, rect)
                x0, y0, x1, y1 = rect
                area = np.s_[y0:y1, x0:x1]
                np.copyto(layer.flip[area], mask[area], where=mask[area] != layer.mask[area])
                layer.mask[area] = mask[area]
        if rect is not None:
            self._emit_mask(layer, [rect])
        return rect

    def invert_mask(self, layer_id: str) -> Rect | None:
        def invert(plane, rect):
            area = _area(plane, rect)
            np.subtract(255, area, out=area)

        return self._pointwise_operation(layer_id, "Invert mask", _whole, invert)

    def clear_mask(self, layer_id: str) -> Rect | None:
        def clear(plane, rect):
            _area(plane, rect)[:] = 0

        return self._pointwise_operation(layer_id, "Clear mask", maskops.nonzero_rect, clear)

    def grow_mask(self, layer_id: str, pixels: int) -> Rect | None:
        """Grow by pixels (negative = shrink)."""
        text = "Grow mask" if pixels >= 0 else "Shrink mask"
        return self._spatial_operation(layer_id, text, lambda mask: maskops.grow(mask, pixels))

    def feather_mask(self, layer_id: str, pixels: float) -> Rect | None:
        return self._spatial_operation(layer_id, "Feather mask", lambda mask: maskops.feather(mask, pixels))

    def set_mask(self, layer_id: str, mask: np.ndarray, text: str = "Set mask") -> None:
        """Replace a mask of the photo's size: uint8 0..255, or bool or numbers in [0, 1]
        (foi_engine.mask_values reads it, as the engine and the exports do)."""
        array = as_levels(mask)
        if array.shape != self.layer(layer_id).mask.shape:
            raise MaskError(f"The mask is {array.shape[1]}×{array.shape[0]}, the photo {self.size[0]}×{self.size[1]}.")

        def replace(plane, rect):
            np.copyto(_area(plane, rect), _area(array, rect))

        self._pointwise_operation(layer_id, text, _whole, replace)

    def import_mask(self, layer_id: str, path: str | os.PathLike) -> None:
        """Read a mask image of any size: its alpha if it has transparency, else its grey
        levels; resized to the photo. One undo item."""
        image = _read_mask_image(path)
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.BILINEAR)
        self.set_mask(layer_id, np.asarray(image), "Import mask")

    def export_mask(self, layer_id: str, path: str | os.PathLike) -> None:
        """Write the mask as an 8-bit grey PNG at the photo's size (atomically)."""
        with atomic_write(path) as stream:
            Image.fromarray(self.layer(layer_id).mask, "L").save(stream, "PNG", compress_level=3)

    # ------------------------------------------------------------------------------------------
    # Selections

    def select(self, layer_id: str, region: selection.Selection, mode: str = "replace",
               text: str = "Selection") -> Rect | None:
        """Combine a selection (selection.rectangle, ellipse, polygon) with the mask: replace,
        add or subtract, as one undo item named text. Like a stroke it changes the flip plane
        too, so the selection holds whichever way τ moves. Returns the changed rectangle.
        An empty selection changes nothing: a stray click must not wipe a mask (Clear does)."""
        if region.rect is None:
            return None
        return self._pointwise_operation(layer_id, text, lambda plane: selection.reach(plane, region, mode),
                                         lambda plane, rect: selection.apply(plane, region, mode, rect))

    def select_similar(self, layer_id: str, x: float, y: float, tolerance: int = 32,
                       mode: str = "replace") -> Rect | None:
        """The magic wand at (x, y), photo pixels: the region joined to that pixel whose colour
        lies within tolerance (0..255 per channel) of it."""
        if self._pixels is None:
            self._pixels = np.asarray(self.photo)  # a tenth of a second on 24 megapixels: once
        region = selection.similar_colour(self._pixels, x, y, tolerance)
        return self.select(layer_id, region, mode, "Magic wand")

    # ------------------------------------------------------------------------------------------
    # Edits and results

    def engine_masks(self, settings: EditSettings | None = None) -> list[np.ndarray]:
        """One float32 mask in [0, 1] per layer for engine.edit(masks=...). A mask still exactly
        as Find regions made it is passed as the engine's own h_g × w_g mask when the working
        frame is the same, so Find regions → Edit gives the single-pass result; any other
        mask goes at the photo's resolution."""
        frame = self.frame((settings or self._settings).resolution)
        masks = []
        for layer in self.layers:
            grounding = layer.grounding
            if layer.pristine and grounding is not None and grounding.frame == frame:
                masks.append(grounding.small_mask(layer.effective_threshold).astype(np.float32))
            else:
                masks.append(levels_as_mask(layer.mask))
        return masks

    def edit_request(self, seed: int | None = None) -> EditRequest:
        """Freeze what Edit needs, with `seed` when given; otherwise the fixed seed, or a new
        one drawn. The seed used is kept in doc.seed."""
        if seed is not None:
            self.set_seed(seed)
        elif not self.fixed_seed:
            self.set_seed(random.randrange(2**31))
        return EditRequest(
            photo=self.photo,
            instructions=self.instructions(),
            masks=self.engine_masks(),
            settings=self._settings,
            seed=self.seed,
            layer_ids=[layer.id for layer in self.layers],
            names=[layer.text for layer in self.layers],
            colors=[layer.color for layer in self.layers],
            snapshot=[PackedMask(layer.mask) for layer in self.layers],
        )

    def add_result(self, result, request: EditRequest | None = None) -> ResultEntry:
        """Keep an EditResult in the history, with the photo-resolution masks of its request
        (or the current masks when no request is given)."""
        request = request or self.edit_request_snapshot()
        snapshot = list(request.snapshot)
        if not result.settings.focus:
            # Plain InstructPix2Pix acts on the whole image: its composite is the model's output
            # everywhere, as the command line writes it.
            whole = PackedMask(np.full(self.photo.size[::-1], 255, np.uint8))
            snapshot = [whole] * len(snapshot)
        entry = ResultEntry(
            id=uuid.uuid4().hex[:12],
            image=result.image,
            instructions=tuple(result.instructions),
            names=list(request.names),
            colors=list(request.colors),
            packed_masks=snapshot,
            settings=result.settings,
            seed=int(result.seed),
            frame=result.frame,
            model_name=result.model_name,
            random_weights=bool(result.random_weights),
        )
        self.results.append(entry)
        self._changed(self.events.results)
        return entry

    def edit_request_snapshot(self) -> EditRequest:
        """Like edit_request but never draws a new seed."""
        return self.edit_request(seed=self.seed)

    def accept_result(self, entry: ResultEntry) -> None:
        """Mark this result as the chosen one (the others stay in the history)."""
        for other in self.results:
            other.accepted = other is entry
        self._changed(self.events.results)

    def set_starred(self, entry: ResultEntry, starred: bool) -> None:
        """Star a result as one of the picks (among variations, say); several may be."""
        entry.starred = bool(starred)
        self._changed(self.events.results)

    def discard_result(self, entry: ResultEntry) -> None:
        self.results.remove(entry)
        self._rendered.pop(entry.id, None)
        self._changed(self.events.results)

    @property
    def accepted_result(self) -> ResultEntry | None:
        return next((entry for entry in self.results if entry.accepted), None)

    def layered_edit(self, entry: ResultEntry) -> LayeredEdit:
        """The result as every export writes it. A result never changes, so its rendering is
        kept (for the last RENDERED_RESULTS used) and made once however often it is shown."""
        edit = self._rendered.pop(entry.id, None)
        if edit is None:
            layers = [MaskLayer(name or f"Instruction {n + 1}", mask, color)
                      for n, (name, mask, color) in enumerate(zip(entry.names, entry.masks, entry.colors))]
            edit = LayeredEdit(self.photo, entry.image, entry.frame, layers, entry.metadata(),
                               source=self.photo_metadata)
        self._rendered[entry.id] = edit
        while len(self._rendered) > RENDERED_RESULTS:
            self._rendered.popitem(last=False)
        return edit

    def result_image(self, entry: ResultEntry) -> Image.Image:
        """What the result looks like, at the photo's size: the photo with the edit blended in
        through its masks, exactly as the .ora, .psd and full-resolution exports write it.
        Shared with the exports: do not draw on it."""
        return composite_full_resolution(self.layered_edit(entry))

    @property
    def full_export_suffix(self) -> str:
        """The file ending of the full-resolution export: the photo's own format (.jpg, .png…)."""
        return full_suffix(self.photo_metadata)

    def export(self, path: str | os.PathLike, entry: ResultEntry | None = None, kind: str | None = None) -> list[str]:
        """Write a result (default: the accepted one, else the latest) as kind (default: from
        the file name: .ora, .psd, .png, .jpg/.tif/.webp = full-resolution composite).
        Returns every file written; refusals are ExportError."""
        entry = entry or self.accepted_result or (self.results[-1] if self.results else None)
        if entry is None:
            raise MaskError("There is no result to export yet: run Edit first.")
        return write_layered(path, kind or kind_for_path(path), self.layered_edit(entry))


def _whole(plane: np.ndarray) -> Rect:
    return (0, 0, plane.shape[1], plane.shape[0])


def _area(plane: np.ndarray, rect: Rect) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return plane[y0:y1, x0:x1]


def _read_mask_image(path) -> Image.Image:
    """A mask file as an 'L' image: alpha if it is transparent somewhere, else grey levels."""
    try:
        image = open_photo(path)
    except PhotoError as error:
        raise MaskError(f"Cannot use this file as a mask: {error}") from None
    return mask_levels(image)
