"""The shapes data generator: seeded, split, and with exact edit masks."""

import numpy as np
import pytest

from foi_engine.shapes import train
from foi_engine.shapes.data import COLOURS, SHAPES, SIZE, TEMPLATES, make_example, shape_mask

INDICES = range(40)


def test_same_index_same_example():
    for i in (0, 7, 123456):
        a, b = make_example(i, "heldout"), make_example(i, "heldout")
        assert np.array_equal(a.source, b.source) and np.array_equal(a.edited, b.edited)
        assert a.text == b.text
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.edits, b.edits))


def test_splits_draw_different_scenes():
    same = sum(np.array_equal(make_example(i, "train").source, make_example(i, "heldout").source) for i in INDICES)
    assert same == 0


def test_training_reads_only_the_training_split():
    batch = train.batch_examples(step=2, batch=3, offset=1_000_000)
    for i, example in enumerate(batch):
        expected = make_example(1_000_000 + 2 * 3 + i, "train")
        assert np.array_equal(example.source, expected.source) and example.text == expected.text


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_pixels_change_exactly_inside_the_edit_masks(split):
    for i in INDICES:
        example = make_example(i, split)
        changed = (example.edited != example.source).any(axis=-1)
        union = np.any([edit.mask for edit in example.edits], axis=0)
        assert np.array_equal(changed, union), (i, example.text)


def test_each_edit_paints_its_whole_region_the_asked_colour():
    for i in INDICES:
        example = make_example(i, "heldout", instructions=3)
        for edit in example.edits:
            assert (example.edited[edit.mask] == COLOURS[edit.colour]).all(), (i, edit.text)
            expected = example.shapes.get(edit.target)
            if expected is None:  # the background: everything that is not a shape
                expected = ~np.any(list(example.shapes.values()), axis=0)
            assert np.array_equal(edit.mask, expected)


def test_shapes_are_distinct_kinds_disjoint_and_visible():
    for i in INDICES:
        example = make_example(i, "heldout")
        assert 1 <= len(example.shapes) <= 4 and set(example.shapes) <= set(SHAPES)
        masks = list(example.shapes.values())
        assert all(mask.sum() > 40 for mask in masks)
        assert np.sum(masks, axis=0).max() == 1


def test_instruction_text_and_keywords():
    for i in INDICES:
        count = 1 + i % 3
        example = make_example(i, "heldout", instructions=count)
        assert len(example.edits) == count
        assert example.text == ". ".join(edit.text for edit in example.edits)  # the engine's "A. B" join
        assert len({edit.target for edit in example.edits}) == count
        for edit in example.edits:
            assert any(t.format(edit.target, edit.colour) == edit.text for t in TEMPLATES)
            assert edit.keyword == (None if edit.target == "background" else edit.target)


def test_shape_masks_are_exact_geometry():
    square = shape_mask("square", 32.0, 32.0, 10.0 * np.sqrt(2), np.pi / 4)  # axis-aligned, side 20
    assert square.sum() == 20 * 20 and square[22:42, 22:42].all()
    circle = shape_mask("circle", 32.0, 32.0, 10.0, 0.0)
    assert abs(int(circle.sum()) - np.pi * 100) < 10
    assert circle.shape == (SIZE, SIZE)
