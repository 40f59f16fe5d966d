"""A result as the document shows and exports it: made once, the same pixels everywhere."""

import types

import numpy as np
from PIL import Image

from foi_desktop.document.model import RENDERED_RESULTS
from foi_engine import EditSettings


def _add_result(doc, color=(250, 120, 10)):
    frame = doc.frame(64)
    result = types.SimpleNamespace(
        image=Image.new("RGB", frame.size, color), instructions=tuple(doc.instructions()),
        settings=EditSettings(steps=4, resolution=64), seed=11, frame=frame, model_name="tiny-random",
        random_weights=True)
    return doc.add_result(result, doc.edit_request_snapshot())


def test_result_image_is_made_once_and_is_what_the_export_writes(doc, tmp_path):
    doc.invert_mask(doc.layers[0].id)  # past the crop box on this 3:2 photo
    entry = _add_result(doc)
    shown = doc.result_image(entry)
    assert shown.size == doc.size
    assert doc.result_image(entry) is shown, "showing a result again rendered it again"
    doc.export(tmp_path / "full.tif", entry)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "full.tif").convert("RGB")), np.asarray(shown))
    # The masks that made a result are its own: painting afterwards changes no result.
    doc.clear_mask(doc.layers[0].id)
    assert doc.result_image(entry) is shown


def test_only_the_last_results_stay_rendered(doc):
    doc.invert_mask(doc.layers[1].id)
    entries = [_add_result(doc, (n * 40, 0, 0)) for n in range(RENDERED_RESULTS + 1)]
    first = doc.result_image(entries[0])
    for entry in entries[1:]:
        doc.result_image(entry)
    again = doc.result_image(entries[0])
    assert again is not first and np.array_equal(np.asarray(again), np.asarray(first))
    doc.discard_result(entries[-1])
    assert entries[-1].id not in doc._rendered


def test_a_plain_instructpix2pix_result_covers_the_whole_photo(doc):
    """Focus off, every instruction acted on the whole image: the composite is the model's
    output everywhere, not only inside the masks."""
    frame = doc.frame(64)
    result = types.SimpleNamespace(
        image=Image.new("RGB", frame.size, (250, 120, 10)), instructions=tuple(doc.instructions()),
        settings=EditSettings(steps=4, resolution=64, focus=False), seed=11, frame=frame,
        model_name="tiny-random", random_weights=True)
    entry = doc.add_result(result, doc.edit_request_snapshot())
    assert all(mask.min() == 255 for mask in entry.masks)
    focused = _add_result(doc)
    assert any(mask.min() < 255 for mask in focused.masks)


def _camera_jpeg(path):
    """A JPEG as a camera writes it: EXIF (turned by its Orientation, an Artist, a date) and
    an sRGB colour profile."""
    from PIL import ExifTags, ImageCms

    from document_helpers import photo

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Artist] = "A. Photographer"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo().save(path, quality=90, exif=exif.tobytes(), icc_profile=icc)
    return icc


def _opened_with_result(path):
    from foi_desktop.document import Document

    doc = Document.open_photo(path)
    doc.add_layer("make the sky a sunset")
    doc.invert_mask(doc.layers[0].id)
    return doc, _add_result(doc)


def test_a_jpeg_exports_as_jpeg_at_quality_95_with_its_exif_and_colour_profile(tmp_path):
    from PIL import ExifTags

    icc = _camera_jpeg(tmp_path / "camera.jpg")
    original = (tmp_path / "camera.jpg").read_bytes()
    doc, entry = _opened_with_result(tmp_path / "camera.jpg")
    assert doc.full_export_suffix == ".jpg"
    out = tmp_path / f"edited{doc.full_export_suffix}"
    doc.export(out, entry, "full")
    shown = doc.result_image(entry)
    reference = tmp_path / "reference.jpg"
    shown.save(reference, quality=95, subsampling=0)
    with Image.open(out) as written, Image.open(reference) as at_95:
        assert written.format == "JPEG"
        assert written.quantization == at_95.quantization  # the tables quality 95 makes
        assert written.info["icc_profile"] == icc
        exif = written.getexif()
        assert exif[ExifTags.Base.Artist] == "A. Photographer"
        assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:06 07:08:09"
        # The pixels are written upright, so no viewer may turn them again.
        assert exif.get(ExifTags.Base.Orientation, 1) == 1 and written.size == shown.size == (200, 300)
        assert np.abs(np.asarray(written.convert("RGB"), int) - np.asarray(shown, int)).mean() < 3
    assert (tmp_path / "camera.jpg").read_bytes() == original


def test_a_png_exports_as_png_with_the_shown_pixels_exactly(tmp_path):
    from document_helpers import photo

    from foi_desktop.document import Document

    photo().save(tmp_path / "scan.png")
    doc, entry = _opened_with_result(tmp_path / "scan.png")
    assert doc.full_export_suffix == ".png"
    assert Document(photo()).full_export_suffix == ".png"  # a pasted picture: lossless too
    doc.export(tmp_path / f"edited{doc.full_export_suffix}", entry, "full")
    with Image.open(tmp_path / "edited.png") as written:
        assert written.format == "PNG" and written.size == (300, 200)
        assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(doc.result_image(entry)))


def test_a_project_keeps_what_the_export_carries_over(tmp_path):
    from foi_desktop.document import open_project, save_project

    _camera_jpeg(tmp_path / "camera.jpg")
    doc, _entry = _opened_with_result(tmp_path / "camera.jpg")
    save_project(doc, tmp_path / "p.foi")
    assert open_project(tmp_path / "p.foi").photo_metadata == doc.photo_metadata
