"""One undo history for everything undoable: brush strokes, mask operations, Find regions,
threshold moves and instruction edits.

A step keeps, per layer, only the tiles it touched, of its mask and of its flip plane (before
and after; a tile of one value is kept as that value), the fields it changed (first old value,
last new value) and the layers it added, removed or moved. Steps can stay open across calls
(a stroke, a slider drag) and a later change can merge into the last step when it carries the
same merge key soon after."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .events import Rect
from .maskops import TILE, tile_rect, tiles_in

MERGE_SECONDS = 1.0  # changes with one merge key closer than this are one undo item
MAX_BYTES = 512 * 1024 * 1024  # the oldest steps are forgotten beyond this


def _freeze_run(block: np.ndarray) -> list:
    """Each tile of a row of tiles (block: TILE-wide tiles side by side) as the history keeps
    it: a tile of one value as that value (most tiles of a mask are all 0 or all 255), any
    other as a copy. The row's extremes take a numpy pass or two: per tile, four numpy calls
    each cost far more than the pixels on a whole 24-megapixel mask."""
    starts = np.arange(0, block.shape[1], TILE)
    low, high = _extremes(block, starts)
    return [int(lo) if lo == hi else block[:, x : x + TILE].copy() for x, lo, hi in zip(starts.tolist(), low, high)]


def _extremes(block: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest value of each tile (its columns begin at starts). Most tiles
    are all 0 or all 255 and one extreme says so (largest 0: all 0; smallest 255: all 255), so
    the other is read only when a tile of the row needs it: one pass over the pixels, not two."""
    def extreme(ufunc):
        return ufunc.reduceat(ufunc.reduce(block, axis=0), starts)

    if block[0, 0] == 255:
        low = extreme(np.minimum)
        return (low, low) if (low == 255).all() else (low, extreme(np.maximum))
    high = extreme(np.maximum)
    return (high, high) if not high.any() else (extreme(np.minimum), high)


def _runs(keys):
    """Tiles (ty, tx) as runs (ty, tx0, tx1) of neighbours in a row of tiles."""
    run = None
    for ty, tx in sorted(keys):
        if run is not None and run[0] == ty and run[2] == tx:
            run[2] += 1
            continue
        if run is not None:
            yield tuple(run)
        run = [ty, tx, tx + 1]
    if run is not None:
        yield tuple(run)


def _run_rect(run, width: int, height: int) -> Rect:
    """The photo rectangle of a run of tiles (ty, tx0, tx1)."""
    ty, tx0, tx1 = run
    return tile_rect(ty, tx0, width, height)[:2] + tile_rect(ty, tx1 - 1, width, height)[2:]


def _freeze(layer, keys) -> dict:
    """{tile: the tile of each of the layer's planes (its mask and its flip plane)}."""
    height, width = layer.mask.shape
    frozen = {}
    for ty, tx0, tx1 in _runs(keys):
        x0, y0, x1, y1 = _run_rect((ty, tx0, tx1), width, height)
        planes = [_freeze_run(plane[y0:y1, x0:x1]) for plane in layer.planes]
        for tx, tile in zip(range(tx0, tx1), zip(*planes)):
            frozen[(ty, tx)] = tile
    return frozen


def _thaw(frozen: tuple, layer, rect: Rect) -> None:
    x0, y0, x1, y1 = rect
    for value, plane in zip(frozen, layer.planes):
        target = plane[y0:y1, x0:x1]
        if isinstance(value, int):
            target[:] = value
        else:
            np.copyto(target, value)


def _same_plane(a, b) -> bool:
    if isinstance(a, int) or isinstance(b, int):
        return isinstance(a, int) and isinstance(b, int) and a == b
    return np.array_equal(a, b)


def _same(a: tuple, b: tuple) -> bool:
    return all(_same_plane(x, y) for x, y in zip(a, b))


def _size(frozen: tuple) -> int:
    return sum(8 if isinstance(value, int) else value.nbytes for value in frozen)


@dataclass(frozen=True)
class LayerAdded:
    layer: object
    index: int

    def apply(self, layers: list, backwards: bool) -> None:
        if backwards:
            layers.remove(self.layer)
        else:
            layers.insert(self.index, self.layer)


class LayerRemoved(LayerAdded):
    """An addition played the other way."""

    def apply(self, layers: list, backwards: bool) -> None:
        super().apply(layers, not backwards)


@dataclass(frozen=True)
class LayerMoved:
    layer: object
    source: int
    target: int

    def apply(self, layers: list, backwards: bool) -> None:
        source, target = (self.target, self.source) if backwards else (self.source, self.target)
        layers.insert(target, layers.pop(source))


@dataclass(eq=False)
class Step:
    text: str
    merge_key: object = None
    when: float = field(default_factory=time.monotonic)
    # layer → {(ty, tx): [before, after]}, each a tuple: the tile of every plane of the layer
    tiles: dict = field(default_factory=dict)
    # (layer, name) → [old, new]
    fields: dict = field(default_factory=dict)
    # LayerAdded, LayerRemoved, LayerMoved, in the order they happened
    structure: list = field(default_factory=list)
    bytes: int = 0
    recent: set = field(default_factory=set)  # (layer, tile) touched since the last close
    # layer → [grounding, first old τ, last new τ]: the step's τ moves on a layer it keeps no
    # tiles of (a layer has one or the other, never both)
    bands: dict = field(default_factory=dict)

    def touch(self, layer, rect: Rect) -> None:
        """Remember the pixels under rect as they are now, for the tiles not yet remembered."""
        if layer in self.bands:
            self._bands_to_tiles(layer)
        saved = self.tiles.setdefault(layer, {})
        keys = list(tiles_in(rect))
        for key, tile in _freeze(layer, [key for key in keys if key not in saved]).items():
            saved[key] = [tile, None]
        self.recent.update((layer, key) for key in keys)

    def move_band(self, layer, grounding, old: float, new: float) -> list[Rect]:
        """Move τ from old to new over the grounding's band (Grounding.apply_band); returns the
        rectangles whose pixels changed. A τ move swaps mask and flip where the level lies
        between the two, and swaps commute and undo themselves, so a step of τ moves alone is
        undone by one swap from its last τ back to its first: nothing is copied during a drag
        (the snapshots were most of a big move's cost)."""
        band = self.bands.get(layer)
        if layer in self.tiles or (band is not None and band[0] is not grounding):
            rects = grounding.band_rects(old, new)
            for rect in rects:
                self.touch(layer, rect)
            return grounding.apply_band(layer.mask, layer.flip, rects, old, new)
        if band is None:
            band = self.bands[layer] = [grounding, old, new]
        band[2] = new
        return grounding.apply_band(layer.mask, layer.flip, grounding.band_rects(old, new), old, new)

    def _swap_band(self, layer, backwards: bool) -> list[Rect]:
        grounding, old, new = self.bands[layer]
        if backwards:
            old, new = new, old
        return grounding.apply_band(layer.mask, layer.flip, grounding.band_rects(old, new), old, new)

    def _bands_to_tiles(self, layer) -> None:
        """Another edit joins the layer's τ moves: keep its band's tiles as they were before
        the moves (swap back, remember, swap again) so that the tiles alone undo the step."""
        self._swap_band(layer, backwards=True)
        grounding, old, new = self.bands.pop(layer)
        for rect in grounding.band_rects(old, new):
            self.touch(layer, rect)
        grounding.apply_band(layer.mask, layer.flip, grounding.band_rects(old, new), old, new)

    def set_field(self, layer, name: str, old, new) -> None:
        entry = self.fields.setdefault((layer, name), [old, new])
        entry[1] = new

    def close(self) -> bool:
        """Take the 'after' of every tile touched since the last close (a merged step is
        closed again after each change, so this must not revisit the whole step) and drop
        tiles that did not change. Returns whether the step changed anything."""
        recent: dict = {}
        for layer, key in self.recent:
            if key in self.tiles.get(layer, ()):
                recent.setdefault(layer, []).append(key)
        for layer, keys in recent.items():
            saved = self.tiles[layer]
            for key, after in _freeze(layer, keys).items():
                entry = saved[key]
                if entry[1] is not None:
                    self.bytes -= _size(entry[0]) + _size(entry[1])
                entry[1] = after
                if _same(entry[0], entry[1]):
                    del saved[key]
                else:
                    self.bytes += _size(entry[0]) + _size(entry[1])
        self.recent.clear()
        for layer in [layer for layer, saved in self.tiles.items() if not saved]:
            del self.tiles[layer]
        for layer in [layer for layer, (grounding, old, new) in self.bands.items() if not grounding.band_rects(old, new)]:
            del self.bands[layer]
        for key, (old, new) in list(self.fields.items()):
            if old is new or (type(old) is type(new) and not isinstance(old, np.ndarray) and old == new):
                del self.fields[key]
        return bool(self.tiles or self.fields or self.structure or self.bands)

    def mask_rects(self, layer) -> list[Rect]:
        """Where the step changed the mask, as runs of tiles along rows of tiles (a change to
        the flip plane alone shows nowhere: no view needs to redraw it)."""
        if layer in self.bands:
            grounding, old, new = self.bands[layer]
            return grounding.band_rects(old, new)
        height, width = layer.mask.shape
        changed = [key for key, (before, after) in self.tiles.get(layer, {}).items()
                   if not _same_plane(before[0], after[0])]
        return [_run_rect(run, width, height) for run in _runs(changed)]

    def replay(self, layers: list, backwards: bool) -> None:
        """Undo (backwards) or redo this step on the document's layer list, fields and pixels."""
        for change in reversed(self.structure) if backwards else self.structure:
            change.apply(layers, backwards)
        for (layer, name), (old, new) in self.fields.items():
            setattr(layer, name, old if backwards else new)
        self.restore_tiles(0 if backwards else 1)
        for layer in self.bands:
            self._swap_band(layer, backwards)

    def restore_tiles(self, which: int) -> None:
        """Write back every tile's before (which=0) or after (which=1)."""
        for layer, saved in self.tiles.items():
            height, width = layer.mask.shape
            for key, entry in saved.items():
                _thaw(entry[which], layer, tile_rect(*key, width, height))


class History:
    """Undo and redo stacks. A state is named by the last step applied to reach it (`base`
    when none is: the state the history starts from), so the document can tell when undo or
    redo brings it back to the state last saved."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.undo_steps: list[Step] = []
        self.redo_steps: list[Step] = []
        self.max_bytes = max_bytes
        self.base: object = object()
        self.saved: object = self.base

    @property
    def state(self) -> object:
        return self.undo_steps[-1] if self.undo_steps else self.base

    def mark_saved(self) -> None:
        self.saved = self.state

    @property
    def at_saved(self) -> bool:
        return self.state is self.saved

    @property
    def entries(self) -> list[str]:
        """Every step's text, oldest first: the undone ones (redo_steps) come after `position`."""
        return [step.text for step in self.undo_steps] + [step.text for step in reversed(self.redo_steps)]

    @property
    def position(self) -> int:
        """How many of `entries` are applied."""
        return len(self.undo_steps)

    def push(self, step: Step) -> None:
        self.undo_steps.append(step)
        self.redo_steps.clear()
        total = sum(s.bytes for s in self.undo_steps)
        while total > self.max_bytes and len(self.undo_steps) > 1:
            # With nothing left to undo, the state is the one after the forgotten step.
            self.base = self.undo_steps.pop(0)
            total -= self.base.bytes

    def mergeable(self, merge_key) -> Step | None:
        """The last step, if a change with this key may join it (never the saved one: it
        must keep naming the saved state)."""
        if merge_key is None or not self.undo_steps or self.redo_steps:
            return None
        last = self.undo_steps[-1]
        if last is not self.saved and last.merge_key == merge_key and time.monotonic() - last.when < MERGE_SECONDS:
            return self.undo_steps.pop()
        return None

    def clear(self) -> None:
        """Forget every step; the state stays (saved or not)."""
        was_saved = self.at_saved
        self.undo_steps.clear()
        self.redo_steps.clear()
        self.base = object()
        self.saved = self.base if was_saved else None
