import numpy as np
import pytest
from PIL import Image

from foi_engine import MaskError


def _stroke(doc, layer, points, erase=False, radius=10, hardness=1.0):
    doc.begin_stroke(layer.id, erase=erase, radius=radius, hardness=hardness)
    rects = [doc.stroke_to(x, y) for x, y in points]
    doc.end_stroke()
    return rects


def test_brush_changes_pixels_only_under_the_dab(doc):
    layer = doc.layers[0]
    rects = _stroke(doc, layer, [(100, 100)], radius=10)
    ys, xs = np.nonzero(layer.mask)
    assert ((xs + 0.5 - 100) ** 2 + (ys + 0.5 - 100) ** 2 <= 10.5**2).all()
    assert layer.mask[100, 100] == 255 and len(xs) > 250
    x0, y0, x1, y1 = rects[0]
    assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
    assert not doc.layers[1].mask.any()


def test_overlapping_dabs_do_not_darken(doc):
    first, second = doc.layers
    _stroke(doc, first, [(100, 100)], radius=20, hardness=0.0)
    _stroke(doc, second, [(100, 100)] * 5, radius=20, hardness=0.0)
    assert 0 < first.mask[100, 115] < 255  # a soft brush: build-up would show here
    assert np.array_equal(first.mask, second.mask)
    doc.clear_mask(first.id), doc.clear_mask(second.id)
    _stroke(doc, first, [(50, 100), (150, 100)], radius=20, hardness=0.3)
    _stroke(doc, second, [(50, 100), (150, 100), (50, 100), (150, 100)], radius=20, hardness=0.3)
    assert np.array_equal(first.mask, second.mask)


def test_stroke_is_one_undo_item_and_undo_redo_is_exact(doc):
    layer = doc.layers[0]
    _stroke(doc, layer, [(50, 50), (150, 60), (250, 150)], radius=15, hardness=0.5)
    after_first = layer.mask.copy()
    _stroke(doc, layer, [(60, 60), (200, 100)], erase=True, radius=8)
    after_second = layer.mask.copy()
    assert not np.array_equal(after_first, after_second)
    doc.undo()
    assert np.array_equal(layer.mask, after_first)
    doc.undo()
    assert not layer.mask.any()
    doc.redo()
    assert np.array_equal(layer.mask, after_first)
    doc.redo()
    assert np.array_equal(layer.mask, after_second)


def test_undo_stores_only_touched_tiles(doc):
    layer = doc.layers[0]
    _stroke(doc, layer, [(20, 20)], radius=5)
    step = doc.history.undo_steps[-1]
    assert list(step.tiles[layer]) == [(0, 0)]


def test_a_step_keeps_a_tile_of_one_value_as_that_value_and_any_other_as_pixels(doc):
    """Tiles are frozen a row of tiles at a time: each still on its own, the photo's ragged
    last row and column too (300 × 200 px: tiles of 128)."""
    layer = doc.layers[0]
    painted = np.zeros((200, 300), np.uint8)
    painted[130:140, 260:270] = 200  # the corner tile (partial both ways)
    painted[5, 5] = 1  # the first tile, one pixel off
    painted[:, 128:256] = 255  # the middle column of tiles: one value each
    doc.set_mask(layer.id, painted)  # into the flip plane too: τ will not move it
    doc.invert_mask(layer.id)
    step = doc.history.undo_steps[-1]
    kept = step.tiles[layer]
    assert sorted(kept) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    (before, _), (after, _) = kept[(1, 2)]  # (mask, flip plane) before and after
    assert np.array_equal(before, painted[128:, 256:]) and np.array_equal(after, 255 - painted[128:, 256:])
    assert kept[(0, 1)] == [(255, 255), (0, 0)]
    assert kept[(0, 2)] == [(0, 0), (255, 255)]
    assert kept[(0, 0)][0][0].shape == (128, 128) and kept[(0, 0)][1][1].shape == (128, 128)
    doc.undo()
    assert np.array_equal(layer.mask, painted) and np.array_equal(layer.flip, painted)
    doc.redo()
    assert np.array_equal(layer.mask, 255 - painted) and np.array_equal(layer.flip, 255 - painted)


def test_nonzero_rect_is_the_extent_of_the_set_pixels():
    from foi_desktop.document import maskops

    rng = np.random.default_rng(2)
    assert maskops.nonzero_rect(np.zeros((150, 170), np.uint8)) is None
    for _ in range(60):
        height, width = int(rng.integers(1, 200)), int(rng.integers(1, 200))
        mask = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            mask[rng.integers(0, height), rng.integers(0, width)] = rng.integers(1, 256)
        ys, xs = np.nonzero(mask)
        assert maskops.nonzero_rect(mask) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert maskops.nonzero_rect(np.full((150, 170), 255, np.uint8)) == (0, 0, 170, 150)
    edges = np.zeros((150, 170), bool)
    edges[100, 0] = edges[20, 60] = True  # one side edge only
    assert maskops.nonzero_rect(edges) == (0, 20, 61, 101)
    edges[140, 169] = True  # and the other
    assert maskops.nonzero_rect(edges) == (0, 20, 170, 141)


def test_invert_clear_grow_shrink_feather(doc):
    layer = doc.layers[0]
    _stroke(doc, layer, [(150, 100)], radius=30)
    painted = layer.mask.copy()
    area = (painted > 127).sum()
    doc.grow_mask(layer.id, 5)
    assert (layer.mask > 127).sum() > area
    doc.grow_mask(layer.id, -10)
    assert (layer.mask > 127).sum() < area
    doc.undo(), doc.undo()
    assert np.array_equal(layer.mask, painted)
    doc.feather_mask(layer.id, 4)
    assert 0 < layer.mask[100, 150 + 30] < 255
    doc.invert_mask(layer.id)
    assert layer.mask[0, 0] == 255 and layer.mask[100, 150] == 0
    doc.clear_mask(layer.id)
    assert not layer.mask.any()
    for _ in range(3):
        doc.undo()
    assert np.array_equal(layer.mask, painted)


def test_import_and_export_mask(doc, tmp_path):
    layer = doc.layers[0]
    small = np.zeros((20, 30), np.uint8)
    small[:, :15] = 255
    Image.fromarray(small, "L").save(tmp_path / "half.png")
    doc.import_mask(layer.id, tmp_path / "half.png")
    assert layer.mask.shape == (200, 300)
    assert (layer.mask[:, :140] == 255).all() and not layer.mask[:, 160:].any()
    doc.export_mask(layer.id, tmp_path / "out.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), layer.mask)
    doc.undo()
    assert not layer.mask.any()
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(MaskError, match="Cannot use this file as a mask"):
        doc.import_mask(layer.id, tmp_path / "bad.png")


def test_a_set_mask_reads_its_values_as_the_engine_and_the_exports_do(doc):
    from foi_engine.layered import mask_to_photo

    layer = doc.layers[0]
    rng = np.random.default_rng(1)
    values = rng.uniform(-0.5, 1.5, (200, 300))  # float64, some outside [0, 1]
    doc.set_mask(layer.id, values)
    assert np.array_equal(layer.mask, np.asarray(mask_to_photo(values, doc.frame(64))))
    np.testing.assert_array_equal(doc.engine_masks()[0], layer.mask / np.float32(255))
    values[3, 4] = np.nan
    with pytest.raises(MaskError, match="NaN"):  # refused, not painted as 0
        doc.set_mask(layer.id, values)
    with pytest.raises(MaskError, match="NaN"):
        mask_to_photo(values, doc.frame(64))


def test_transparent_png_imports_its_alpha(doc, tmp_path):
    rgba = np.zeros((200, 300, 4), np.uint8)
    rgba[50:60, 50:60, 3] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    doc.import_mask(doc.layers[0].id, tmp_path / "a.png")
    assert doc.layers[0].mask[55, 55] == 200 and doc.layers[0].mask.sum() == 200 * 100


def test_the_smallest_brush_paints_wherever_it_lands():
    from foi_desktop.document.maskops import brush_segment

    for point in ((10.0, 10.0), (10.5, 10.5), (10.0, 10.5), (10.25, 9.75)):  # corners, edges, anywhere
        mask = np.zeros((20, 20), np.uint8)
        brush_segment([mask], point, point, radius=0.5, hardness=1.0, erase=False)
        assert 1 <= np.count_nonzero(mask) <= 4, point
