"""Photos of every kind become the RGB working image; bad ones get a clear message."""

import numpy as np
import pytest
from PIL import Image

from foi_engine import EditSettings, Instruction, PhotoError, SettingsError
from foi_engine.photo import WorkingFrame, open_photo, prepare_photo, working_size


@pytest.mark.parametrize(
    "size, expected",
    [((512, 512), (512, 512)), ((640, 480), (512, 384)), ((480, 640), (384, 512)), ((333, 777), (256, 576)),
     ((4000, 3000), (512, 384)), ((1000, 64), (960, 64))],
)
def test_working_size_is_ip2p_rule(size, expected):
    assert working_size(*size, 512) == expected


def test_fit_box_matches_imageops_fit():
    from PIL import ImageOps

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (777, 333, 3), dtype=np.uint8))
    frame = WorkingFrame.for_photo(image.size, 512)
    fitted = ImageOps.fit(image, frame.size, method=Image.Resampling.LANCZOS)
    boxed = image.resize(frame.size, Image.Resampling.LANCZOS, box=frame.box)
    assert np.array_equal(np.asarray(fitted), np.asarray(boxed))


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (120, 80), "red")
    image.paste((0, 0, 255), (0, 0, 20, 80))  # blue stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    prepared = prepare_photo(open_photo(path))
    assert prepared.size == (80, 120)
    top = np.asarray(prepared)[2, 40]
    assert top[2] > 200 and top[0] < 80  # the stripe is now on top


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "I", "F", "RGBA", "LA", "1"])
def test_every_mode_becomes_rgb(mode):
    base = Image.fromarray(np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    else:
        image = base.convert(mode)
    prepared = prepare_photo(image)
    assert prepared.mode == "RGB" and prepared.size == (90, 70)
    if mode == "I;16":  # 16-bit values scaled, not clipped to white
        np.testing.assert_allclose(np.asarray(prepared)[..., 0], np.asarray(base.convert("L")), atol=1)


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    assert np.asarray(prepare_photo(image))[0, 0].tolist() == [255, 255, 255]


def test_small_photo_refused():
    with pytest.raises(PhotoError, match="at least 64"):
        prepare_photo(Image.new("RGB", (63, 200)))


def test_unreadable_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(PhotoError, match="not an image file"):
        open_photo(text)
    with pytest.raises(PhotoError, match="no such file"):
        open_photo(tmp_path / "missing.jpg")
    with pytest.raises(PhotoError, match="is a folder"):
        open_photo(tmp_path)
    truncated = tmp_path / "cut.png"
    Image.new("RGB", (200, 200), "red").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(PhotoError, match="damaged or incomplete"):
        open_photo(truncated)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(PhotoError, match="too large to open safely"):
        open_photo(path)


def test_photo_never_modified(tiny_engine, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(path)
    before = path.read_bytes()
    image = open_photo(path)
    copy = image.copy()
    tiny_engine.edit(image, [Instruction("make it winter")], EditSettings(steps=2, resolution=64))
    assert path.read_bytes() == before
    assert np.array_equal(np.asarray(image), np.asarray(copy))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"steps": 0}, "Steps must be a whole number from 1 to 1000"), ({"strength": 0.0}, "above 0 and at most 1"),
     ({"strength": 1.5}, "above 0 and at most 1"), ({"strength": float("nan")}, "finite"),
     ({"steps": 1, "strength": 0.5}, "no step would run"), ({"text_guidance": float("inf")}, "finite"),
     ({"grounding_factor": 3}, "power of two"), ({"disentangle_until": 2}, "between 0 and 1"),
     ({"outside_tokens": "all"}, "one of union"), ({"resolution": 32}, "from 64 to 2048"), ({"steps": 2.5}, "whole")],
)
def test_invalid_settings(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        EditSettings(**kwargs)


def test_invalid_instruction_values():
    from foi_engine import InstructionError

    with pytest.raises(InstructionError, match="Threshold"):
        Instruction("make it winter", "winter", threshold=1.5)
    with pytest.raises(InstructionError, match="finite"):
        Instruction("make it winter", strength=float("nan"))


def test_too_many_instructions(tiny_engine, photo):
    from foi_engine import InstructionError

    with pytest.raises(InstructionError, match="at most 6"):
        tiny_engine.locate(photo, [Instruction("make it winter")] * 7, EditSettings(steps=2, resolution=64))
