import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from foi_engine import EditSettings, Instruction, MaskError
from foi_engine.mask_values import as_levels, as_mask, levels_as_mask
from foi_engine.masks import resize, to_working_frame, union
from foi_engine.photo import WorkingFrame


def test_masks_of_any_type_become_float_in_unit_range():
    assert as_mask(np.array([[True, False]]), 0).dtype == np.float32
    np.testing.assert_array_equal(as_mask(np.array([[-2, 0], [3, 1]]), 0), [[0, 0], [1, 1]])
    with pytest.raises(MaskError, match="NaN"):
        as_mask(np.array([[np.nan]]), 0)
    with pytest.raises(MaskError, match="single-channel"):
        as_mask(np.zeros((4, 4, 3)), 0)


def test_a_mask_is_read_one_way_everywhere():
    """The engine reads every number as its value clipped (a uint8 mask of 0 and 1 works, as the
    design says); mask files and layers are uint8 levels; bool is 0 or 1; NaN is refused by
    every reader (engine, wire, exports, the editor's set_mask all call these)."""
    levels = np.array([[0, 1, 128, 255]], np.uint8)
    assert as_mask(levels).tolist() == [[0.0, 1.0, 1.0, 1.0]]
    np.testing.assert_array_equal(levels_as_mask(levels), levels.astype(np.float32) / np.float32(255))
    assert as_levels(levels).tolist() == levels.tolist()
    assert as_levels(np.array([[True, False]])).tolist() == [[255, 0]]
    values = np.array([[-1.0, 0.25, 0.5, 2.0, np.inf, -np.inf]])
    assert as_levels(values).tolist() == [[0, 64, 128, 255, 255, 0]]
    np.testing.assert_array_equal(as_levels(levels_as_mask(levels)), levels)  # levels survive the round trip
    with pytest.raises(MaskError, match="^Mask 2 has undefined"):
        as_mask(np.array([[0.5, np.nan]]), 1)
    with pytest.raises(MaskError, match="^The mask has undefined"):
        as_levels(np.array([[np.nan]], np.float32))
    with pytest.raises(MaskError, match="numbers"):
        as_mask(np.array([["a"]]))


def test_resize_down_is_area_average_and_up_is_nearest():
    mask = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    down = resize(mask, (2, 2))
    assert torch.equal(down, torch.tensor([[0.25, 0.0], [1.0, 0.25]]))
    up = resize(torch.tensor([[1.0, 0.0], [0.0, 0.5]]), (4, 4))
    assert torch.equal(up, torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]))
    mixed = resize(torch.ones(4, 2), (2, 4))  # larger in one dimension: nearest
    assert mixed.shape == (2, 4)


def test_union_resizes_each_mask_first():
    a = torch.zeros(2, 2)
    a[0, 0] = 1
    b = torch.zeros(4, 4)
    b[3, 3] = 1
    result = union([a, b], (4, 4))
    expected = torch.zeros(4, 4)
    expected[:2, :2] = 1
    expected[3, 3] = 1
    assert torch.equal(result, expected)
    assert torch.equal(union([a, b], (2, 2)), torch.tensor([[1.0, 0.0], [0.0, 0.25]]))


def test_photo_sized_mask_is_fitted_like_the_photo():
    frame = WorkingFrame.for_photo((300, 200), 128)  # cropped to the working aspect
    painted = np.zeros((200, 300), dtype=np.float32)
    painted[:, :150] = 1.0
    fitted = to_working_frame(painted, 0, frame)
    expected = ImageOps.fit(Image.fromarray(painted, "F"), frame.size, method=Image.Resampling.BOX)
    assert fitted.shape == (frame.size[1], frame.size[0])
    np.testing.assert_array_equal(fitted, np.clip(np.asarray(expected), 0, 1))


def test_other_sizes_need_the_working_aspect_within_a_pixel():
    frame = WorkingFrame.for_photo((640, 480), 512)  # 512×384
    assert to_working_frame(np.ones((12, 16)), 0, frame).shape == (12, 16)
    assert to_working_frame(np.ones((13, 16)), 0, frame).shape == (13, 16)  # one pixel off
    with pytest.raises(MaskError, match="does not match the photo's shape"):
        to_working_frame(np.ones((16, 16)), 0, frame)


def test_user_mask_changes_result_only_inside_it(tiny_engine, photo, capture_latents):
    """Far outside a painted mask, FoI stays closer to the preserve direction
    (s_T = 0: no edit at all) than plain IP2P does."""
    seen = capture_latents(tiny_engine)
    instructions = [Instruction("make the cat a tiger", "cat", strength=10.0)]
    painted = np.zeros((96, 128), dtype=np.float32)  # photo-sized: painted by a person
    painted[:, 96:] = 1.0  # right quarter of the photo
    settings = EditSettings(steps=10, resolution=128)
    tiny_engine.edit(photo, instructions, settings, seed=2, masks=[painted])
    tiny_engine.edit(photo, instructions, EditSettings(steps=10, resolution=128, focus=False), seed=2)
    tiny_engine.edit(photo, instructions, EditSettings(steps=10, resolution=128, focus=False, text_guidance=0.0), seed=2)
    focus, vanilla, preserve = seen
    far = (slice(None), slice(None), slice(None), slice(0, 8))  # latent columns far left of the mask
    focus_gap = (focus - preserve)[far].abs().mean().item()
    vanilla_gap = (vanilla - preserve)[far].abs().mean().item()
    assert focus_gap < 0.5 * vanilla_gap, (focus_gap, vanilla_gap)
    inside = (slice(None), slice(None), slice(None), slice(13, 16))
    assert (focus - preserve)[inside].abs().mean() > focus_gap  # the edit still happens inside


def test_mask_count_must_match(tiny_engine, photo):
    with pytest.raises(MaskError, match="one per instruction"):
        tiny_engine.edit(photo, [Instruction("make it winter")], EditSettings(steps=2, resolution=64),
                         masks=[np.ones((8, 8))] * 2)
