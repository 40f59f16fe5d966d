import numpy as np
import pytest
from document_helpers import fake_locate
from PIL import Image

from foi_desktop.document import maskops
from foi_desktop.document.grounding import CELL, Grounding, level
from foi_desktop.document.maskops import TILE
from foi_engine.photo import WorkingFrame


def _full_threshold(layer, tau):
    """The mask a full re-threshold of the cached map would give."""
    grounding = layer.grounding
    expected = np.zeros_like(layer.mask)
    x0, y0, x1, y1 = grounding.box
    expected[y0:y1, x0:x1] = np.where(grounding.levels >= level(tau), 255, 0)
    return expected


def test_apply_grounding_maps_into_the_crop_box(doc):
    located = fake_locate(doc)
    assert doc.apply_grounding(located) == [l.id for l in doc.layers]
    bump, whole = doc.layers
    x0, y0, x1, y1 = located.frame.pixel_box
    assert x0 > 0  # 3:2 photo, the working frame crops the sides
    for layer in doc.layers:
        assert not layer.mask[:, :x0].any() and not layer.mask[:, x1:].any()
    assert (whole.mask[y0:y1, x0:x1] == 255).all()
    assert bump.auto_threshold == 0.5 and whole.auto_threshold is None
    assert np.array_equal(bump.mask, _full_threshold(bump, 0.5))
    assert 0 < bump.mask.mean() < 200
    doc.undo()
    assert not bump.mask.any() and bump.grounding is None


def test_threshold_moves_follow_the_map_and_undo_exactly(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    start = layer.mask.copy()
    events = []
    doc.events.connect(events.append)
    doc.begin_group("Threshold")
    for tau in (0.45, 0.35, 0.3, 0.62):
        doc.set_threshold(layer.id, tau)
        assert np.array_equal(layer.mask, _full_threshold(layer, tau))
    doc.end_group()
    mask_events = [e for e in events if e.kind == "mask"]
    assert mask_events and all(e.rect is not None for e in mask_events)
    assert doc.undo_text == "Threshold"
    doc.undo()  # the whole drag is one item
    assert np.array_equal(layer.mask, start) and layer.threshold is None
    doc.redo()
    assert np.array_equal(layer.mask, _full_threshold(layer, 0.62)) and layer.threshold == 0.62


def test_threshold_keeps_brush_work_outside_the_band(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    doc.begin_stroke(layer.id, erase=False, radius=6, hardness=1.0)
    doc.stroke_to(280, 20)  # far from the bump: map value ~0
    doc.end_stroke()
    assert layer.mask[20, 280] == 255 and not layer.pristine
    doc.set_threshold(layer.id, 0.7)
    assert layer.mask[20, 280] == 255


def _spot(layer, low, high):
    """A pixel (x, y) whose map value lies between low and high, far enough from the edges
    for a dab of radius 8."""
    grounding = layer.grounding
    x0, y0 = grounding.box[:2]
    ys, xs = np.nonzero((grounding.levels >= level(low)) & (grounding.levels < level(high)))
    inner = (xs > 10) & (xs < grounding.levels.shape[1] - 10) & (ys > 10) & (ys < grounding.levels.shape[0] - 10)
    return float(xs[inner][0] + x0) + 0.5, float(ys[inner][0] + y0) + 0.5


def _with_strokes(layer, tau, strokes):
    """The thresholded map at τ with these strokes (point, erase) applied over it."""
    expected = _full_threshold(layer, tau)
    for point, erase, hardness in strokes:
        maskops.brush_segment([expected], point, point, 8, hardness, erase)
    return expected


def test_threshold_moves_never_undo_brush_work(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    painted = _spot(layer, 0.55, 0.75)  # inside at τ 0.5, outside at 0.8
    erased = _spot(layer, 0.3, 0.45)  # outside at τ 0.5, inside at 0.2
    strokes = [(painted, False, 0.3), (erased, True, 1.0)]
    for point, erase, hardness in strokes:
        doc.begin_stroke(layer.id, erase=erase, radius=8, hardness=hardness)
        doc.stroke_to(*point)
        doc.end_stroke()
    for tau in (0.8, 0.2, 0.65, 0.5):
        doc.set_threshold(layer.id, tau)
        # The soft stroke is as soft over an empty map as over a full one; nothing is punched out.
        assert np.array_equal(layer.mask, _with_strokes(layer, tau, strokes)), tau
    doc.undo()  # the τ moves (one item)
    assert np.array_equal(layer.mask, _with_strokes(layer, 0.5, strokes))
    doc.undo()  # the eraser stroke: its pixels follow τ again
    doc.set_threshold(layer.id, 0.2)
    assert np.array_equal(layer.mask, _with_strokes(layer, 0.2, strokes[:1]))
    doc.undo()
    assert np.array_equal(layer.mask, _with_strokes(layer, 0.5, strokes[:1]))


def test_mask_operations_hold_across_threshold_moves(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    doc.invert_mask(layer.id)
    doc.set_threshold(layer.id, 0.3)
    assert np.array_equal(layer.mask, 255 - _full_threshold(layer, 0.3))
    doc.clear_mask(layer.id)
    doc.set_threshold(layer.id, 0.7)
    assert not layer.mask.any()
    doc.undo(), doc.undo()  # τ 0.7, Clear
    assert np.array_equal(layer.mask, 255 - _full_threshold(layer, 0.3))
    doc.undo(), doc.undo()  # τ 0.3, Invert
    assert np.array_equal(layer.mask, _full_threshold(layer, 0.5))
    grown = doc.grow_mask(layer.id, 6)  # the ring it adds stays when τ shrinks the region
    ring = (layer.mask == 255) & (_full_threshold(layer, 0.5) == 0)
    assert grown and ring.any()
    doc.set_threshold(layer.id, 0.8)
    assert (layer.mask[ring] == 255).all()


def test_engine_masks(doc):
    located = fake_locate(doc)
    doc.settings = type(doc.settings)(resolution=64)
    doc.apply_grounding(located)
    masks = doc.engine_masks()
    # Untouched masks go as the engine's own (single-pass identical), painted ones at photo size.
    assert masks[0].shape == located.maps[0].shape and masks[0].dtype == np.float32
    assert np.array_equal(masks[0], (located.maps[0] >= 0.5).astype(np.float32))
    doc.begin_stroke(doc.layers[0].id, radius=4)
    doc.stroke_to(10, 10)
    doc.end_stroke()
    masks = doc.engine_masks()
    assert masks[0].shape == (200, 300) and masks[0].max() == 1.0
    assert np.array_equal(masks[0], doc.layers[0].mask.astype(np.float32) / 255)
    doc.undo()
    assert doc.engine_masks()[0].shape == located.maps[0].shape


def test_a_threshold_move_visits_only_the_tiles_of_its_band(monkeypatch):
    """What makes τ moves fast on a big photo (bench/bench_ui.py times them): only tiles
    whose levels meet the band between the old and the new τ are touched."""
    from document_helpers import fake_locate as locate

    from foi_desktop.document import Document
    from foi_desktop.document import grounding as grounding_module

    big = Document(Image.new("RGB", (3000, 2000)))
    layer = big.add_layer("make the sky a sunset", keyword="sky")
    big.apply_grounding(locate(big, thresholds=(0.5,), resolution=512))
    visited = []
    cls = grounding_module.Grounding
    real = cls.apply_band

    def counting(self, mask, flip, rects, old, new):
        visited.append(len(rects))
        return real(self, mask, flip, rects, old, new)

    monkeypatch.setattr(cls, "apply_band", counting)
    before = layer.mask.copy()
    big.set_threshold(layer.id, 0.49)
    big.set_threshold(layer.id, 0.5)  # and back: the same pixels
    assert np.array_equal(layer.mask, before)
    tile = grounding_module.TILE
    total = -(-3000 // tile) * -(-2000 // tile)
    assert visited and max(visited) < total / 4, (visited, total)


def test_threshold_undo_and_redo_restore_masks_exactly_on_a_random_map(doc):
    """τ steps are undone by swapping their band back (no snapshots): every state, mask and
    flip plane, comes back exactly, brush work included, also when a mask operation joins a τ drag."""
    located = fake_locate(doc)
    rng = np.random.default_rng(7)
    located.maps[0] = rng.random(located.maps[0].shape, dtype=np.float32)  # contours everywhere
    doc.apply_grounding(located)
    layer = doc.layers[0]

    def state():
        return layer.mask.copy(), layer.flip.copy(), layer.threshold

    def stroke(erase):
        doc.begin_stroke(layer.id, erase=erase, radius=9, hardness=0.4)
        for _ in range(3):
            doc.stroke_to(*rng.uniform((0, 0), doc.size))
        doc.end_stroke()

    stroke(False), stroke(True)
    states = [state()]
    for tau in (0.8, 0.2, 0.65, 0.1):
        doc.begin_group("Threshold")
        doc.set_threshold(layer.id, tau)
        doc.set_threshold(layer.id, tau + 0.05)
        doc.end_group()
        states.append(state())
    doc.begin_group("Threshold")  # a mask operation joins the τ moves' step
    doc.set_threshold(layer.id, 0.4)
    doc.grow_mask(layer.id, 3)
    doc.set_threshold(layer.id, 0.55)
    doc.end_group()
    states.append(state())
    assert not np.array_equal(states[0][0], states[-1][0])
    mixed, pure = doc.history.undo_steps[-1], doc.history.undo_steps[-2]
    assert layer in pure.bands and layer not in pure.tiles  # nothing snapshotted
    assert layer in mixed.tiles and layer not in mixed.bands

    def same(a, b):
        return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]

    for expected in reversed(states[:-1]):
        doc.undo()
        assert same(state(), expected)
    for expected in states[1:]:
        doc.redo()
        assert same(state(), expected)


def _tile_band(grounding, low, high):
    """The pixels of the tiles whose levels meet the band [low, high), tile by tile: what the
    band's rectangles were before they were cut down to cells."""
    x0, y0, x1, y1 = grounding.box
    inside = np.zeros((y1, x1), bool)
    for ty in range(y0 // TILE, -(-y1 // TILE)):
        for tx in range(x0 // TILE, -(-x1 // TILE)):
            top, left = max(ty * TILE, y0), max(tx * TILE, x0)
            bottom, right = min((ty + 1) * TILE, y1), min((tx + 1) * TILE, x1)
            levels = grounding.levels[top - y0 : bottom - y0, left - x0 : right - x0]
            if levels.min() < high and levels.max() >= low:
                inside[top:bottom, left:right] = True
    return inside


@pytest.mark.parametrize("size, resolution", [((700, 1000), 64), ((1037, 651), 512)])
@pytest.mark.parametrize("smooth", [True, False])
def test_band_rects_hold_every_crossing_pixel_within_the_tiles_of_the_band(size, resolution, smooth):
    """The band's rectangles (cells grouped by rows of tiles) hold every pixel whose level lies
    between the two τ, each lies in one row of tiles inside the crop box, none overlap, and
    together they hold no pixel that the tiles meeting the band (counted here tile by tile)
    do not; moves that cross no level have none."""
    frame = WorkingFrame.for_photo(size, resolution)
    x0, y0, x1, y1 = frame.pixel_box
    assert x0 % CELL or y0 % CELL  # the box begins inside a cell
    h, w = frame.size[1] // 8, frame.size[0] // 8
    rng = np.random.default_rng(3)
    if smooth:
        ys, xs = np.mgrid[0:h, 0:w]
        grounding_map = (0.5 + 0.5 * np.sin(xs / 3.0) * np.cos(ys / 2.0)).astype(np.float32)
    else:
        grounding_map = rng.random((h, w), dtype=np.float32)
    grounding = Grounding(grounding_map, frame)
    for old, new in [(0.5, 0.56), (0.56, 0.5), (0.1, 0.9), (0.0, 1.0), (0.3, 0.31), (0.72, 0.7201)]:
        low, high = sorted((level(old), level(new)))
        rects = grounding.band_rects(old, new)
        covered = np.zeros((y1, x1), np.uint8)
        for left, top, right, bottom in rects:
            assert x0 <= left < right <= x1 and y0 <= top < bottom <= y1
            assert top // TILE == (bottom - 1) // TILE
            covered[top:bottom, left:right] += 1
        assert covered.max() <= 1
        crossing = np.zeros((y1, x1), bool)
        crossing[y0:y1, x0:x1] = (grounding.levels >= low) & (grounding.levels < high)
        assert not (crossing & (covered == 0)).any(), (old, new)
        assert not (covered.astype(bool) & ~_tile_band(grounding, low, high)).any(), (old, new)
    assert grounding.band_rects(0.4, 0.4) == []
    grounding_map[:] = 0.25  # no level between 0.5 and 0.6
    assert Grounding(grounding_map, frame).band_rects(0.5, 0.6) == []
