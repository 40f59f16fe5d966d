"""Layered exports (foi_engine.layered) from hand-made data: no model needed."""

import dataclasses
import io
import json
import math
import os
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from PIL import Image

from foi_engine.atomic import atomic_write, write_bytes_atomic
from foi_engine.layered import (
    ExportError,
    LayeredEdit,
    MaskLayer,
    composite_full_resolution,
    default_feather,
    kind_for_path,
    mask_file_names,
    mask_to_photo,
    write_layered,
)
from foi_engine.photo import WorkingFrame

TEXTS = ["make the sky a sunset", 'turn the "dog" into a <cat> & smile']


def _photo(width=300, height=200, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _edit(width=300, height=200, resolution=64, feather=None):
    photo = _photo(width, height)
    frame = WorkingFrame.for_photo(photo.size, resolution)
    result = Image.new("RGB", frame.size, (250, 120, 10))
    # One mask at photo resolution (a painted rectangle), one at the grounding size (blocky).
    painted = np.zeros((height, width), np.float32)
    painted[20:60, 100:180] = 1.0
    grounding = np.zeros((frame.size[1] // 8, frame.size[0] // 8), np.float32)
    grounding[-2:, :3] = 1.0
    layers = [MaskLayer(TEXTS[0], painted, (255, 0, 0)), MaskLayer(TEXTS[1], grounding, (0, 0, 255))]
    metadata = {"instructions": TEXTS, "seed": 7, "settings": {"steps": 4}, "model": "tiny", "random_weights": True}
    return LayeredEdit(photo, result, frame, layers, metadata, feather)


def test_kind_for_path():
    assert [kind_for_path(p) for p in ("a.ORA", "b.psd", "c.png", "d.jpg", "e.tiff")] == [
        "ora", "psd", "png", "full", "full"]
    with pytest.raises(ExportError, match="use .ora"):
        kind_for_path("x.gif")


def test_mask_to_photo_maps_working_masks_into_the_crop_box():
    frame = WorkingFrame.for_photo((300, 200), 64)  # 3:2 photo, square-ish working frame crops the sides
    left, top, right, bottom = frame.pixel_box
    assert left > 0
    ones = np.ones((frame.size[1] // 8, frame.size[0] // 8), np.float32)
    alpha = np.asarray(mask_to_photo(ones, frame))
    assert alpha.shape == (200, 300)
    assert (alpha[top:bottom, left:right] == 255).all()
    assert alpha[:, :left].max() == 0 and alpha[:, right:].max() == 0
    # Photo-sized uint8 masks pass through unchanged.
    painted = np.random.default_rng(1).integers(0, 256, (200, 300), dtype=np.uint8)
    assert np.array_equal(np.asarray(mask_to_photo(painted, frame)), painted)


def test_ora_structure(tmp_path):
    edit = _edit()
    path = tmp_path / "out.ora"
    assert write_layered(path, "ora", edit) == [str(path)]
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        # The spec wants the bytes at a fixed offset: no extra field before them.
        with open(path, "rb") as raw:
            assert raw.read(54)[30:54] == b"mimetypeimage/openraster"
        root = ET.fromstring(archive.read("stack.xml"))
        assert (root.get("w"), root.get("h")) == ("300", "200")
        layers = root.find("stack").findall("layer")
        names = [layer.get("name") for layer in layers]
        assert names == [f"{TEXTS[1]} — mask", f"{TEXTS[0]} — mask", TEXTS[1], TEXTS[0], "FoI result", "Original"]
        visible = [layer.get("visibility") for layer in layers]
        assert visible == ["hidden", "hidden", "visible", "visible", "hidden", "visible"]
        for layer in layers:
            image = Image.open(io.BytesIO(archive.read(layer.get("src"))))
            image.load()
            x, y = int(layer.get("x")), int(layer.get("y"))
            assert 0 <= x and x + image.width <= 300 and 0 <= y and y + image.height <= 200
        original = Image.open(io.BytesIO(archive.read(layers[-1].get("src"))))
        assert np.array_equal(np.asarray(original.convert("RGB")), np.asarray(edit.photo))
        result_layer = layers[-2]
        assert (int(result_layer.get("x")), int(result_layer.get("y"))) == edit.frame.pixel_box[:2]
        merged = Image.open(io.BytesIO(archive.read("mergedimage.png")))
        assert merged.size == (300, 200)
        thumbnail = Image.open(io.BytesIO(archive.read("Thumbnails/thumbnail.png")))
        assert max(thumbnail.size) <= 256
        assert json.loads(archive.read("foi/metadata.json"))["seed"] == 7


def test_ora_region_layer_is_the_result_with_the_mask_as_alpha(tmp_path):
    edit = _edit(feather=0)
    write_layered(tmp_path / "o.ora", "ora", edit)
    with zipfile.ZipFile(tmp_path / "o.ora") as archive:
        layer = [l for l in ET.fromstring(archive.read("stack.xml")).iter("layer") if l.get("name") == TEXTS[0]][0]
        region = np.asarray(Image.open(io.BytesIO(archive.read(layer.get("src")))))
    # The painted rectangle 100:180 × 20:60 lies inside the crop box: the layer is exactly it.
    assert (int(layer.get("x")), int(layer.get("y"))) == (100, 20)
    assert region.shape == (40, 80, 4)
    assert (region[..., 3] == 255).all()
    assert (region[..., :3] == (250, 120, 10)).all()


def test_merged_image_keeps_unmasked_pixels(tmp_path):
    edit = _edit()
    write_layered(tmp_path / "m.ora", "ora", edit)
    with zipfile.ZipFile(tmp_path / "m.ora") as archive:
        merged = np.asarray(Image.open(io.BytesIO(archive.read("mergedimage.png"))).convert("RGB"))
    union = np.asarray(edit._render.union_alpha)
    left, top, right, bottom = edit.frame.pixel_box
    outside = np.ones((200, 300), bool)
    outside[top:bottom, left:right] = union == 0
    assert outside.any() and not outside.all()
    assert np.array_equal(merged[outside], np.asarray(edit.photo)[outside])
    assert not np.array_equal(merged[~outside], np.asarray(edit.photo)[~outside])


def test_full_resolution_composite_is_bit_exact_outside_the_mask():
    edit = _edit(width=400, height=260, feather=3)
    composite = np.asarray(composite_full_resolution(edit))
    photo = np.asarray(edit.photo)
    assert composite.shape == photo.shape
    union = np.asarray(edit._render.union_alpha)
    left, top, right, bottom = edit.frame.pixel_box
    feathered = np.zeros(photo.shape[:2], np.uint8)
    feathered[top:bottom, left:right] = union
    zero = feathered == 0
    assert zero.sum() > 1000 and (~zero).sum() > 1000
    assert np.array_equal(composite[zero], photo[zero])
    # Where the mask is full the result shows.
    assert (composite[40, 140] == (250, 120, 10)).all()


def test_composite_paints_nothing_outside_the_crop_box_even_where_painted():
    edit = _edit()
    left, top, right, bottom = edit.frame.pixel_box
    everywhere = MaskLayer("all", np.ones((200, 300), np.uint8) * 255)
    edit = LayeredEdit(edit.photo, edit.result, edit.frame, [everywhere], {}, 0)
    composite = np.asarray(composite_full_resolution(edit))
    photo = np.asarray(edit.photo)
    assert np.array_equal(composite[:, :left], photo[:, :left])
    assert np.array_equal(composite[:, right:], photo[:, right:])
    assert (composite[top:bottom, left:right] == (250, 120, 10)).all()


def _wide_edit(masks, photo=None):
    """A 2.5:1 photo (grey unless given) worked on at 2:1, so the crop box ends 30 px inside
    either side; the result is flat orange, so any seam is a jump between neighbouring pixels."""
    photo = photo or Image.new("RGB", (300, 120), (40, 40, 40))
    frame = WorkingFrame.for_photo(photo.size, 128)
    assert frame.pixel_box == (30, 0, 270, 120)
    result = Image.new("RGB", frame.size, (250, 120, 10))
    return LayeredEdit(photo, result, frame, [MaskLayer(str(n), mask) for n, mask in enumerate(masks)])


def _crop_edge_fade(edit):
    """The fade the module promises across the width: 0 outside the box, linear to 1 over
    `default_feather` pixels (pixel centres) inside its left and right edges."""
    left, _, right, _ = edit.frame.pixel_box
    centres = np.arange(300) + 0.5
    fade = np.clip(np.minimum(centres - left, right - centres) / default_feather(edit.frame), 0, 1)
    fade[:left] = fade[right:] = 0
    return fade


def test_a_mask_painted_past_the_crop_edge_fades_out_instead_of_a_seam():
    edit = _wide_edit([np.full((120, 300), 255, np.uint8)])
    composite = np.asarray(composite_full_resolution(edit)).astype(int)
    photo, result = np.array([40, 40, 40]), np.array([250, 120, 10])
    # Outside the box the photo, inside it the result, in between one step per pixel at most
    # a fade's share of the contrast (an 8-bit level more for rounding): no jump anywhere.
    assert (composite[:, :30] == photo).all() and (composite[:, 270:] == photo).all()
    steps = np.abs(np.diff(composite, axis=1))
    assert (steps <= np.abs(result - photo) / default_feather(edit.frame) + 1).all()
    full = math.ceil(default_feather(edit.frame))
    assert (composite[:, 30 + full:270 - full] == result).all()
    # Top and bottom are the photo's own edges: the result reaches them unfaded.
    assert (composite[[0, -1], 150] == result).all()


def _soft_masks():
    """Two overlapping soft masks (floats in [0, 1]) for the wide photo."""
    ys, xs = np.mgrid[0:120, 0:300]
    ramp = np.clip((xs - 100) / 60, 0, 1)  # soft from x = 100, full from 160 on
    disc = np.clip((30 - np.hypot(xs - 262, ys - 60)) / 10, 0, 1)  # soft disc over the right crop edge
    return ramp, disc


def _soft_edit():
    return _wide_edit([(mask * 255).round().astype(np.uint8) for mask in _soft_masks()], photo=_photo(300, 120))


def test_the_composite_follows_the_masks_alpha():
    """Pixels outside every mask are the photo's exactly; elsewhere the result is blended in by
    w = 1 − Π(1 − aᵢ·fade), each mask's own alpha times the crop-edge fade (within rounding)."""
    ramp, disc = _soft_masks()
    edit = _soft_edit()
    composite = np.asarray(composite_full_resolution(edit)).astype(float)
    photo = np.asarray(edit.photo).astype(float)
    outside = (ramp == 0) & (disc == 0)
    assert outside.sum() > 10000
    assert np.array_equal(composite[outside], photo[outside])
    fade = _crop_edge_fade(edit)
    weight = 1 - (1 - ramp * fade) * (1 - disc * fade)
    expected = photo + weight[..., None] * (np.array([250, 120, 10]) - photo)
    assert np.abs(composite - expected).max() <= 2


def test_every_layered_and_full_export_writes_the_composite(tmp_path):
    edit = _soft_edit()
    composite = np.asarray(composite_full_resolution(edit))
    write_layered(tmp_path / "e.ora", "ora", edit)
    with zipfile.ZipFile(tmp_path / "e.ora") as archive:
        merged = Image.open(io.BytesIO(archive.read("mergedimage.png"))).convert("RGB")
    write_layered(tmp_path / "e.psd", "psd", edit)
    write_layered(tmp_path / "e.tif", "full", edit)
    for image in (merged, Image.open(tmp_path / "e.psd"), Image.open(tmp_path / "e.tif")):
        assert np.array_equal(np.asarray(image.convert("RGB")), composite)


@pytest.mark.parametrize("name", ["full.png", "full.jpg", "full.tif"])
def test_write_composite_formats(tmp_path, name):
    edit = _edit()
    write_layered(tmp_path / name, "full", edit)
    with Image.open(tmp_path / name) as image:
        assert image.size == (300, 200)
        if name.endswith(".png"):
            assert json.loads(image.text["foi:metadata"])["instructions"] == TEXTS


def test_psd_reopens_with_layer_names_and_metadata(tmp_path):
    from psd_tools import PSDImage
    from psd_tools.constants import Resource

    edit = _edit()
    write_layered(tmp_path / "out.psd", "psd", edit)
    psd = PSDImage.open(tmp_path / "out.psd")
    assert psd.size == (300, 200)
    names = [layer.name for layer in psd]
    assert names == ["Original", "FoI result", TEXTS[0], TEXTS[1], f"{TEXTS[0]} — mask", f"{TEXTS[1]} — mask"]
    assert [layer.visible for layer in psd] == [True, False, True, True, False, False]
    assert np.array_equal(np.asarray(psd[0].topil().convert("RGB")), np.asarray(edit.photo))
    xmp = psd.image_resources.get_data(Resource.XMP_METADATA).decode("utf-8")
    packet = ET.fromstring(xmp[xmp.index("<x:xmpmeta"):xmp.index("<?xpacket end")])
    payload = packet.find(".//{https://foi-studio.invalid/ns/1.0/}metadata").text
    assert json.loads(payload)["seed"] == 7
    assert TEXTS[0] in "".join(packet.find(".//{http://purl.org/dc/elements/1.1/}description").itertext())


def test_png_with_text_chunks_and_masks(tmp_path):
    edit = _edit()
    written = write_layered(tmp_path / "r.png", "png", edit)
    assert written == [str(tmp_path / "r.png")] + mask_file_names(tmp_path / "r.png", edit)
    assert os.path.basename(written[1]) == "r.mask-1-make-the-sky-a-sunset.png"
    with Image.open(written[0]) as image:
        assert image.size == edit.frame.size
        assert image.text["foi:seed"] == "7"
        assert json.loads(image.text["foi:instructions"]) == TEXTS
        assert json.loads(image.text["foi:settings"]) == {"steps": 4}
    for mask_path in written[1:]:
        with Image.open(mask_path) as mask:
            assert mask.mode == "L" and mask.size == edit.frame.size


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ExportError, match="Unknown export kind"):
        write_layered(tmp_path / "x.ora", "gif", _edit())


def test_unwritable_place_gives_a_message(tmp_path):
    with pytest.raises(ExportError, match="Could not write x.ora"):
        write_layered(tmp_path / "no-such-folder" / "x.ora", "ora", _edit())
    # A place no one may write to, root included: "inside" a file.
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"mine")
    with pytest.raises(ExportError, match="Could not write x.ora"):
        write_layered(blocker / "x.ora", "ora", _edit())
    assert blocker.read_bytes() == b"mine"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "keep.ora"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as stream:
            stream.write(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["keep.ora"]


def test_atomic_write_keeps_the_old_file_when_an_export_fails(tmp_path):
    path = tmp_path / "keep.ora"
    write_bytes_atomic(path, b"old contents")
    edit = _edit()
    broken = LayeredEdit(edit.photo, edit.result, edit.frame, [MaskLayer("bad", np.zeros((2, 2, 2)))], {})
    with pytest.raises(ExportError, match="2-D"):
        write_layered(path, "ora", broken)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["keep.ora"]


def test_layer_names_with_control_characters_still_make_valid_xml(tmp_path):
    import xml.etree.ElementTree as ET
    import zipfile

    edit = _edit()
    edit = dataclasses.replace(edit, layers=[dataclasses.replace(edit.layers[0], name="make\x01 the sky\x1b red"),
                                             edit.layers[1]])
    write_layered(tmp_path / "x.ora", "ora", edit)
    with zipfile.ZipFile(tmp_path / "x.ora") as archive:
        names = [layer.get("name") for layer in ET.fromstring(archive.read("stack.xml")).iter("layer")]
    assert "make  the sky  red" in names


def _source(exif_text="A. Photographer"):
    from PIL import ExifTags, ImageCms

    from foi_engine.photo import PhotoMetadata

    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = exif_text
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return PhotoMetadata("JPEG", exif.tobytes(), icc)


@pytest.mark.parametrize("name", ["full.png", "full.jpg", "full.tif", "full.webp"])
def test_the_full_export_carries_the_photos_exif_and_colour_profile(tmp_path, name):
    source = _source()
    write_layered(tmp_path / name, "full", dataclasses.replace(_edit(), source=source))
    with Image.open(tmp_path / name) as image:
        assert image.info["icc_profile"] == source.icc_profile
        assert image.getexif()[315] == "A. Photographer"  # Artist


def test_exif_too_long_for_a_jpeg_is_left_out_of_it_not_the_export(tmp_path):
    """A HEIC may carry more EXIF than one JPEG segment holds (64 KB)."""
    edit = dataclasses.replace(_edit(), source=_source("x" * 70_000))
    write_layered(tmp_path / "long.jpg", "full", edit)
    write_layered(tmp_path / "long.png", "full", edit)
    with Image.open(tmp_path / "long.jpg") as jpeg, Image.open(tmp_path / "long.png") as png:
        assert 315 not in jpeg.getexif() and jpeg.info["icc_profile"] == edit.source.icc_profile
        assert len(png.getexif()[315]) == 70_000


def test_mask_file_names_are_cut_between_words_never_inside_one(tmp_path):
    long = "Make the sky above the old harbour a glowing, café-orange sunset"
    edit = _edit()
    edit = dataclasses.replace(edit, layers=[dataclasses.replace(edit.layers[0], name=long),
                                             dataclasses.replace(edit.layers[1], name="x" * 50)])
    first, second = (os.path.basename(name) for name in mask_file_names(tmp_path / "r.png", edit))
    assert first == "r.mask-1-make-the-sky-above-the-old-harbour-a.png"
    slug = first[len("r.mask-1-"):-len(".png")]
    assert len(slug) <= 40 and set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert second == f"r.mask-2-{'x' * 40}.png"  # one word longer than the limit: the limit holds


@pytest.mark.parametrize("text, slug", [
    ("make the sky above the old harbour glow", "make-the-sky-above-the-old-harbour-glow"),  # 39: whole
    ("make the sky above the old harbour glows", "make-the-sky-above-the-old-harbour-glows"),  # 40: whole
    ("make the sky above the old harbour glowss", "make-the-sky-above-the-old-harbour"),  # 41: a word less
    ("turn the café into a bistro", "turn-the-cafe-into-a-bistro"),
    ("!!!", "mask"),
])
def test_file_slug(text, slug):
    from foi_engine.layered import file_slug

    assert file_slug(text, "mask") == slug
