"""Selection tools (issue 13): rectangle, ellipse, lasso/polygon and magic wand write into a
layer's mask with replace / add / subtract, one undo item each, holding across τ moves."""

import numpy as np
import pytest
from document_helpers import fake_locate
from PIL import Image

from foi_desktop.document import Document, maskops, selection
from foi_desktop.document.maskops import TILE


def _full(region, size=(10, 8)):
    """A selection as a bool array of the whole (width, height)."""
    array = np.zeros(size[::-1], bool)
    if region.rect is not None:
        x0, y0, x1, y1 = region.rect
        array[y0:y1, x0:x1] = region.inside
    return array


def test_rectangle_takes_the_pixels_whose_centres_it_covers():
    expected = np.zeros((8, 10), bool)
    expected[2:5, 1:4] = True
    assert np.array_equal(_full(selection.rectangle((10, 8), (3.6, 1.7), (0.8, 4.5))), expected)
    clipped = selection.rectangle((10, 8), (-5, -5), (2, 1))
    assert clipped.rect == (0, 0, 2, 1)
    assert selection.rectangle((10, 8), (3, 3), (3.2, 3.3)).rect is None  # a click selects nothing


def test_ellipse_is_the_one_inscribed_in_the_dragged_box():
    # Centre (5, 4), radii 3 and 2: a corner pixel's centre (2.5, 2.5) lies outside, (3.5, 2.5) inside.
    expected = np.array([
        [0, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [0, 1, 1, 1, 1, 0],
    ], bool)
    region = selection.ellipse((10, 8), (2, 2), (8, 6))
    assert region.rect == (2, 2, 8, 6)
    assert np.array_equal(region.inside, expected)


def test_polygon_fills_a_triangle_and_leaves_a_self_crossing_bow_tie_even_odd():
    # Shifted a quarter pixel so no pixel centre lies on an edge.
    triangle = _full(selection.polygon((10, 8), [(0.25, 0), (8.25, 0), (0.25, 8)]))
    ys, xs = np.mgrid[0:8, 0:10] + 0.5
    assert np.array_equal(triangle, (xs > 0.25) & (xs + ys < 8.25))
    bow_tie = _full(selection.polygon((10, 8), [(0.25, 0), (8.25, 8), (8.25, 0), (0.25, 8)]))
    low, high = np.minimum(ys + 0.25, 8.25 - ys), np.maximum(ys + 0.25, 8.25 - ys)
    assert np.array_equal(bow_tie, ((xs > 0.25) & (xs < low)) | ((xs > high) & (xs < 8.25)))
    assert selection.polygon((10, 8), [(1, 1), (5, 5)]).rect is None


def _even_odd(points, size):
    """Pixel by pixel: a pixel is in when an odd number of the path's edges cross its row's
    centre line (half-open: an edge from y_a to y_b spans y when exactly one end lies at or
    above it) at or left of the pixel (a crossing belongs to the pixel its x rounds into)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    inside = np.zeros((height, width), bool)
    for (xa, ya), (xb, yb) in zip(points, np.roll(points, -1, axis=0)):
        spans = (ya <= ys) != (yb <= ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= spans & (np.floor(crossing + 0.5) <= xs - 0.5)
    return inside


def test_polygon_matches_an_even_odd_test_of_every_pixel():
    """Random paths, crossing themselves and leaving the photo, with corners on whole, half
    and quarter pixels (edges through pixel centres) and anywhere."""
    rng = np.random.default_rng(5)
    for grid in (1, 2, 4, 1000):
        for _ in range(25):
            size = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
            points = np.round(rng.uniform(-15, 75, (int(rng.integers(3, 30)), 2)) * grid) / grid
            assert np.array_equal(_full(selection.polygon(size, points), size), _even_odd(points, size)), (size, points)


def test_magic_wand_takes_the_joined_similar_colours_only():
    pixels = np.zeros((6, 9, 3), np.uint8)
    pixels[:, :] = (200, 100, 50)
    pixels[:, 4] = (0, 0, 0)  # a wall splits the left side from the right
    pixels[2, 1] = (225, 110, 60)  # within 32 of the click's colour on every channel
    pixels[3, 2] = (200, 140, 50)  # one channel 40 away: out
    region = selection.similar_colour(pixels, 0.5, 0.5, 32)
    expected = np.zeros((6, 9), bool)
    expected[:, :4] = True
    expected[3, 2] = False
    assert np.array_equal(_full(region, (9, 6)), expected)
    assert _full(selection.similar_colour(pixels, 0.5, 0.5, 40), (9, 6))[3, 2]
    assert selection.similar_colour(pixels, 20, 1, 32).rect is None  # off the photo


def _flood(same, row, col):
    """A plain 4-connected flood fill, for comparison."""
    seen = np.zeros_like(same)
    todo = [(row, col)]
    while todo:
        y, x = todo.pop()
        if 0 <= y < same.shape[0] and 0 <= x < same.shape[1] and same[y, x] and not seen[y, x]:
            seen[y, x] = True
            todo += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]
    return seen


def test_magic_wand_matches_a_flood_fill_on_noisy_blobs():
    rng = np.random.default_rng(3)
    blobs = np.repeat(np.repeat(rng.integers(0, 2, (14, 17)), 3, axis=0), 3, axis=1)[:40, :50]
    pixels = (blobs[:, :, None] * 200 + rng.integers(0, 20, (40, 50, 3))).astype(np.uint8)
    for x, y in ((10, 10), (0, 39), (49, 0), (25, 17)):
        region = _full(selection.similar_colour(pixels, x, y, 25), (50, 40))
        assert np.array_equal(region, _flood(blobs == blobs[y, x], y, x))


def test_magic_wand_searching_a_growing_window_finds_the_whole_region(monkeypatch):
    """The wand searches around the click first and widens while the region reaches the
    window's edge: with a tiny first window it must still find exactly what a flood fill of
    the whole photo finds, for regions of every size (one pixel to the whole photo)."""
    rng = np.random.default_rng(7)
    height, width = 60, 80
    y, x = np.mgrid[0:height, 0:width]
    smooth = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 7.0)
    pixels = np.clip(smooth[:, :, None] + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)
    monkeypatch.setattr(selection, "WAND_REACH", 2)
    sizes = set()
    for tolerance in (5, 30, 80, 255):
        for _ in range(12):
            col, row = int(rng.integers(0, width)), int(rng.integers(0, height))
            near = (np.abs(pixels.astype(int) - pixels[row, col].astype(int)) <= tolerance).all(axis=2)
            expected = _flood(near, row, col)
            region = selection.similar_colour(pixels, col + 0.5, row + 0.5, tolerance)
            assert np.array_equal(_full(region, (width, height)), expected), (tolerance, col, row)
            sizes.add(int(expected.sum()))
    assert min(sizes) < 10 and max(sizes) == width * height  # small regions and the whole photo
    # A corridor winding away from the click (the pixel marked in green), turned to leave it
    # in each direction: the first window holds only its start.
    corridor = np.zeros((30, 30, 3), np.uint8)
    corridor[15:28, 15] = corridor[27, 2:16] = corridor[2:28, 2] = 200
    corridor[15, 15, 1] = 201
    for turn in range(4):
        turned = np.ascontiguousarray(np.rot90(corridor, turn))
        row, col = np.argwhere(turned[:, :, 1] == 201)[0]
        region = _full(selection.similar_colour(turned, col, row, 10), (30, 30))
        assert np.array_equal(region, turned[:, :, 0] == 200), turn


@pytest.fixture
def small():
    document = Document(Image.new("RGB", (10, 8)))
    document.add_layer("brighten")
    document.history.clear()
    return document, document.layers[0]


def test_replace_add_and_subtract_are_one_undo_item_each(small):
    doc, layer = small
    events = []
    doc.events.connect(events.append)
    assert doc.select(layer.id, selection.rectangle(doc.size, (1, 1), (5, 5)), "add", "Rectangle") == (1, 1, 5, 5)
    assert [e.rect for e in events if e.kind == "mask"] == [(1, 1, 5, 5)]
    doc.select(layer.id, selection.rectangle(doc.size, (6, 1), (8, 3)), "add", "Rectangle")
    doc.select(layer.id, selection.rectangle(doc.size, (2, 2), (4, 4)), "subtract", "Ellipse")
    expected = np.zeros((8, 10), np.uint8)
    expected[1:5, 1:5] = 255
    expected[1:3, 6:8] = 255
    expected[2:4, 2:4] = 0
    assert np.array_equal(layer.mask, expected)
    assert doc.history.entries == ["Rectangle", "Rectangle", "Ellipse"]
    doc.select(layer.id, selection.rectangle(doc.size, (0, 6), (2, 8)), "replace", "Lasso")
    only = np.zeros((8, 10), np.uint8)
    only[6:8, 0:2] = 255
    assert np.array_equal(layer.mask, only)  # replace drops what was there
    doc.undo()
    assert np.array_equal(layer.mask, expected) and doc.redo_text == "Lasso"
    doc.undo()
    doc.undo()
    doc.undo()
    assert not layer.mask.any() and not doc.can_undo
    doc.go_to(4)
    assert np.array_equal(layer.mask, only)


def test_magic_wand_reads_the_photo_and_is_named_for_undo(small):
    doc, layer = small
    doc.photo.paste((255, 255, 255), (0, 0, 3, 8))
    doc.select_similar(layer.id, 1, 1, tolerance=10, mode="add")
    assert doc.undo_text == "Magic wand"
    assert layer.mask[:, :3].all() and not layer.mask[:, 3:].any()
    assert doc.select_similar(layer.id, 30, 1, mode="replace") is None  # off the photo: a stray click
    assert layer.mask[:, :3].all() and doc.history.entries == ["Magic wand"]


def test_a_selection_holds_on_both_sides_of_tau(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    tau_map = layer.mask.copy()
    doc.select(layer.id, selection.rectangle(doc.size, (250, 10), (290, 40)), "add", "Rectangle")
    doc.select(layer.id, selection.ellipse(doc.size, (40, 70), (120, 130)), "subtract", "Ellipse")
    cut = _full(selection.ellipse(doc.size, (40, 70), (120, 130)), doc.size)
    assert tau_map[cut].any()  # the ellipse took away part of the found region
    for tau in (0.2, 0.8, 0.05, 0.5):
        doc.set_threshold(layer.id, tau)
        assert (layer.mask[10:40, 250:290] == 255).all(), tau
        assert not layer.mask[cut].any(), tau
    doc.set_threshold(layer.id, 0.5)
    outside = ~cut
    outside[10:40, 250:290] = False
    assert np.array_equal(layer.mask[outside], tau_map[outside])  # elsewhere the map still rules


def test_views_are_told_where_the_mask_changed_not_the_flip_plane(doc):
    """Replace clears the flip plane wherever it is set (all around the found region) but the
    mask only where it was: the canvas redraws that part, after undo too."""
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    before = layer.mask.copy()
    events = []
    doc.events.connect(events.append)
    region = selection.rectangle(doc.size, (250, 150), (260, 160))
    assert doc.select(layer.id, region, "replace", "Rectangle") == (0, 0, 300, 200)  # both planes
    shown = maskops.union_rect(maskops.nonzero_rect(before), region.rect)
    assert shown != (0, 0, 300, 200)
    assert [e.rect for e in events if e.kind == "mask"] == [shown]
    changed = {(y // TILE, x // TILE) for y, x in zip(*np.nonzero(layer.mask != before))}
    events.clear()
    doc.undo()
    (undone,) = [e for e in events if e.kind == "mask"]
    assert {tile for rect in undone.rects for tile in maskops.tiles_in(rect)} == changed


def test_replace_overrides_the_map_whatever_tau_does(doc):
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    doc.select(layer.id, selection.polygon(doc.size, [(10, 10), (60, 10), (10, 60)]), "replace", "Lasso")
    chosen = layer.mask.copy()
    doc.set_threshold(layer.id, 0.1)
    assert np.array_equal(layer.mask, chosen)
    doc.undo()
    doc.undo()
    doc.set_threshold(layer.id, 0.1)  # without the lasso τ moves the mask again
    assert not np.array_equal(layer.mask, chosen)
