"""Photos of every kind become the RGB working image; bad ones get a clear message."""

import numpy as np
import pytest
from PIL import ExifTags, Image

from foi_engine import EditSettings, Instruction, PhotoError, SettingsError
from foi_engine.photo import PhotoMetadata, WorkingFrame, open_photo, prepare_photo, working_size


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


def _stripe_photo() -> Image.Image:
    """Red, with a blue stripe down the left side."""
    image = Image.new("RGB", (120, 80), "red")
    image.paste((0, 0, 255), (0, 0, 20, 80))
    return image


def _heic(path, image: Image.Image, **options):
    import pillow_heif  # noqa: F401 - the photo module registers its opener; this writes the test file

    image.save(path, "HEIF", quality=90, **options)
    return path


def test_heic_photos_open_upright_like_any_other(tmp_path):
    """An iPhone's HEIC, turned by its EXIF as the phone stores it, opens through the path
    both the editor (Document.open_photo) and `foi` (open_photo + prepare_photo) use."""
    from foi_desktop.document import Document

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # shown turned 90° clockwise
    exif[ExifTags.Base.Artist] = "A. Photographer"
    path = _heic(tmp_path / "IMG_0001.HEIC", _stripe_photo(), exif=exif.tobytes())
    prepared = prepare_photo(open_photo(path))
    assert prepared.mode == "RGB" and prepared.size == (80, 120)
    top = np.asarray(prepared)[2, 40].astype(int)
    assert top[2] > 200 and top[0] < 80  # the stripe is on top: turned once, not twice
    doc = Document.open_photo(path)
    assert np.array_equal(np.asarray(doc.photo), np.asarray(prepared))
    assert doc.photo_metadata.format == "HEIF" and doc.full_export_suffix == ".jpg"
    kept = Image.Exif()
    kept.load(doc.photo_metadata.exif)
    assert kept[ExifTags.Base.Artist] == "A. Photographer"


def test_heic_has_the_same_limits_as_every_photo(tmp_path, monkeypatch):
    noise = np.random.default_rng(3).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    path = _heic(tmp_path / "big.heic", Image.fromarray(noise))
    cut = tmp_path / "cut.heic"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(PhotoError, match="damaged or incomplete"):
        open_photo(cut)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(PhotoError, match="too large to open safely"):
        open_photo(path)
    monkeypatch.setattr("foi_engine.photo.MAX_PHOTO_FILE_BYTES", 1000)
    with pytest.raises(PhotoError, match="larger than"):
        open_photo(path)


def test_metadata_keeps_exif_without_orientation_and_only_an_rgb_profile(tmp_path):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Artist] = "A. Photographer"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    path = tmp_path / "in.jpg"
    _stripe_photo().save(path, exif=exif.tobytes(), icc_profile=srgb)
    metadata = PhotoMetadata.of(open_photo(path))
    assert metadata.format == "JPEG" and metadata.icc_profile == srgb
    kept = Image.Exif()
    kept.load(metadata.exif)
    assert ExifTags.Base.Orientation not in kept  # the photo opens upright: nothing may turn it again
    assert kept[ExifTags.Base.Artist] == "A. Photographer"
    assert kept.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
    # A grey or CMYK profile does not describe the RGB photo; damaged EXIF is left out, not fatal.
    grey = Image.new("L", (64, 64))
    grey.info.update(icc_profile=srgb[:16] + b"GRAY" + srgb[20:], exif=b"Exif\x00\x00MM\x00*garbage")
    assert PhotoMetadata.of(grey) == PhotoMetadata(None, None, None)
    assert PhotoMetadata.of(Image.new("RGB", (64, 64))) == PhotoMetadata()


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


def test_a_file_changed_after_its_check_is_refused_in_the_checks_words(tmp_path, monkeypatch):
    """Gone, or a folder now, between check_regular_file and the reading: one sentence either way."""
    from foi_engine import photo as photo_module
    from foi_engine.inputs import check_regular_file

    gone, folder = tmp_path / "gone.jpg", tmp_path / "folder.jpg"
    folder.mkdir()
    for path in (gone, folder):
        with pytest.raises(PhotoError) as checked:
            check_regular_file(path, "a photo", 1 << 30, PhotoError)
        monkeypatch.setattr(photo_module, "check_regular_file", lambda *args: 0)  # the check passed, then…
        with pytest.raises(PhotoError) as read:
            open_photo(path)
        monkeypatch.undo()
        assert str(read.value) == str(checked.value)
