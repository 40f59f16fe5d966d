"""What you see is what you export: after an edit on a photo wider than the model's working
frame, the canvas shows the result exactly as the .ora, .psd and full-resolution exports write
it; Show Raw Model Output shows the model's own image; Compare's right side is the result."""

import io
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QRectF

from foi_desktop.imaging import pil_to_qimage
from foi_engine.layered import default_feather
from gui_helpers import shown
from test_flow import drag

WIDE = (300, 120)  # 2.5:1; at 128 px the working frame is 2:1, so the box ends 30 px inside either side


@pytest.fixture
def edited(window, qtbot, run, tmp_path):
    """Two instructions painted with a soft brush across the left and right crop edges, then Edit."""
    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[0:WIDE[1], 0:WIDE[0]]
    pixels = np.stack([xs * 0.8, ys * 2.0, 255 - xs * 0.6], axis=-1) + rng.integers(-20, 20, (*WIDE[::-1], 3))
    path = tmp_path / "wide.png"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(path)
    assert window.open_path(str(path)) and window.doc.size == WIDE
    window.brush_action.trigger()
    window.size_box.setValue(40)  # a diameter
    window.hardness_box.setValue(0.5)
    for text, stroke in (("make it snowy", [(2.0, 40.0), (150.0, 40.0)]),
                         ("make it golden", [(150.0, 85.0), (298.0, 85.0)])):
        layer = window.doc.add_layer(text)
        window.panel.select(layer.id)
        drag(qtbot, window.canvas, stroke)
        assert layer.mask.any()
    window.brush_action.trigger()  # brush off: no cursor ring on the canvas
    entry = run(window.start_edit())
    assert entry is not None and entry.frame.pixel_box == (30, 0, 270, 120)
    assert not window.canvas.masks_visible
    return window, entry


def read_ora(path):
    """The merged image, and the hidden "FoI result" layer (the upscaled result) with its x, y."""
    with zipfile.ZipFile(path) as archive:
        merged = Image.open(io.BytesIO(archive.read("mergedimage.png"))).convert("RGB")
        layer = next(layer for layer in ET.fromstring(archive.read("stack.xml")).iter("layer")
                     if layer.get("name") == "FoI result")
        result = Image.open(io.BytesIO(archive.read(layer.get("src")))).convert("RGB")
    return np.asarray(merged), np.asarray(result), (int(layer.get("x")), int(layer.get("y")))


def test_the_canvas_shows_what_the_exports_write(edited, tmp_path):
    window, entry = edited
    canvas = window.canvas
    composite = np.asarray(window.doc.result_image(entry))
    photo = np.asarray(window.doc.photo)
    assert not np.array_equal(composite, photo)
    assert np.array_equal(shown(canvas), composite)

    for name, kind in (("e.ora", "ora"), ("e.psd", "psd"), ("e.tif", "full"), ("e.jpg", "full")):
        assert window.export_to(str(tmp_path / name), entry, kind)
    merged, _result, _xy = read_ora(tmp_path / "e.ora")
    assert np.array_equal(merged, composite)
    for name in ("e.psd", "e.tif"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / name).convert("RGB")), composite), name
    jpeg = np.asarray(Image.open(tmp_path / "e.jpg").convert("RGB")).astype(int)
    assert np.abs(jpeg - composite).mean() < 3  # the same picture, through JPEG at quality 95

    # Show Raw Model Output: the model's own image over the part of the photo it saw.
    window.raw_action.trigger()
    item = canvas.result_item
    assert item.image == pil_to_qimage(entry.image) and item.box == QRectF(30, 0, 240, 120)
    raw_view = shown(canvas)
    assert np.array_equal(raw_view[:, :30], photo[:, :30]) and not np.array_equal(raw_view, composite)
    window.raw_action.trigger()
    assert np.array_equal(shown(canvas), composite)

    # Compare: the photo left of the divider, the same result right of it.
    window.compare_action.trigger()
    canvas.set_split(0.5)
    split = shown(canvas)
    assert np.array_equal(split[:, :147], photo[:, :147])
    assert np.array_equal(split[:, 153:], composite[:, 153:])
    assert window.doc.result_image(entry) is window.doc.result_image(entry), "the result was rendered again"


def test_no_seam_where_a_mask_meets_the_crop_edge(edited, tmp_path):
    """Outside the crop box the photo goes on untouched even where painted; inside, the edit
    fades in from the box's edge over `default_feather` pixels, so the first columns stay close
    to the photo; and wherever every mask is 0, the photo's pixels exactly."""
    window, entry = edited
    composite = shown(window.canvas).astype(int)
    photo = np.asarray(window.doc.photo).astype(int)
    masks = entry.masks
    painted_outside = (masks[0][:, :30] > 0).any() and (masks[1][:, 270:] > 0).any()
    assert painted_outside, "the strokes should reach past the crop box"
    assert np.array_equal(composite[:, :30], photo[:, :30]) and np.array_equal(composite[:, 270:], photo[:, 270:])
    untouched = (masks[0] == 0) & (masks[1] == 0)
    assert untouched.any() and np.array_equal(composite[untouched], photo[untouched])

    # At the box's left edge, where the first mask is full, the result's weight is at most the
    # fade's share: (column + ½) / feather of the way from the photo to the upscaled result.
    window.export_to(str(tmp_path / "r.ora"), entry, "ora")
    _merged, upscaled, (x, y) = read_ora(tmp_path / "r.ora")
    assert (x, y) == (30, 0)
    feather = default_feather(entry.frame)
    rows = np.flatnonzero((masks[0][:, 30:40] == 255).all(axis=1))
    assert rows.size
    for column in range(4):
        share = (column + 0.5) / feather
        reach = np.abs(upscaled[rows, column].astype(int) - photo[rows, 30 + column]) * share + 1
        assert (np.abs(composite[rows, 30 + column] - photo[rows, 30 + column]) <= reach).all(), column
