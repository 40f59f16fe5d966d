"""Ground-truth regions: PIE-Bench's run-length code and mask images."""

import json

import numpy as np
import pytest
from PIL import Image

from foi_engine.errors import MaskError
from foi_engine.evaluation.groundtruth import decode_pie_rle, encode_pie_rle, load_mask, mask_from_image


def test_pie_rle_decodes_start_length_pairs_over_the_row_major_512_image():
    # (start, length) pairs: 3 pixels at the top-left; row 10 columns 5–8; a run from the last
    # pixel of row 0 wrapping onto the first of row 1.
    mask = decode_pie_rle([0, 3, 10 * 512 + 5, 4, 511, 2])
    assert mask.shape == (512, 512) and mask.dtype == bool
    expected = np.zeros((512, 512), dtype=bool)
    expected[0, 0:3] = True
    expected[10, 5:9] = True
    expected[0, 511] = expected[1, 0] = True
    assert np.array_equal(mask, expected)
    assert mask.sum() == 3 + 4 + 2


def test_pie_rle_border_is_not_forced_on_and_runs_stop_at_the_image_end():
    mask = decode_pie_rle([512 * 512 - 2, 10])  # PnPInversion clips a run at the end too
    assert mask.sum() == 2 and mask[-1, -2:].all()
    assert not decode_pie_rle([100, 1])[0, 0]  # unlike mask_decode, the border stays as annotated


def test_pie_rle_round_trip_and_errors():
    rng = np.random.default_rng(0)
    mask = rng.random((48, 40)) > 0.7
    assert np.array_equal(decode_pie_rle(encode_pie_rle(mask), (48, 40)), mask)
    with pytest.raises(MaskError, match="pairs"):
        decode_pie_rle([1, 2, 3])
    with pytest.raises(MaskError, match="outside"):
        decode_pie_rle([512 * 512, 1])


def test_mask_images_binary_transparent_and_painted_photo(tmp_path, photos):
    binary = np.zeros((20, 30), dtype=np.uint8)
    binary[5:10, 3:8] = 255
    assert np.array_equal(mask_from_image(Image.fromarray(binary)), binary > 0)

    rgba = np.full((20, 30, 4), 200, dtype=np.uint8)
    rgba[2:4, 2:6, 3] = 0  # DALL-E 2 style: transparent = edit here
    assert np.array_equal(mask_from_image(Image.fromarray(rgba, "RGBA")), rgba[..., 3] == 0)

    painted = np.asarray(photos["coffee"]).copy()  # a photo with the region painted pure white
    painted[10:30, 40:70] = 255
    region = mask_from_image(Image.fromarray(painted))
    assert region[10:30, 40:70].all()
    assert region.sum() < 20 * 30 * 1.1  # the light parts of the photo are not the region


def test_load_mask_forms(tmp_path):
    a = np.zeros((16, 16), dtype=np.uint8)
    a[:4] = 255
    b = np.zeros((16, 16), dtype=np.uint8)
    b[:, :2] = 255
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    assert load_mask(None, tmp_path) is None
    assert load_mask("a.png", tmp_path).sum() == 64
    union = load_mask(["a.png", "b.png"], tmp_path)
    assert union.sum() == 64 + 2 * 12
    coded = json.loads(json.dumps({"rle": encode_pie_rle(a > 0), "size": [16, 16]}))
    assert np.array_equal(load_mask(coded, tmp_path), a > 0)
    with pytest.raises(MaskError, match="no such file"):
        load_mask("missing.png", tmp_path)
