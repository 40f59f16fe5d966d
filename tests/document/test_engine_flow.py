"""The document with the real engine (tiny random model, offline, seconds)."""

import os
import zipfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from document_helpers import photo

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from foi_desktop.document import Document  # noqa: E402
from foi_engine import EditSettings, FoiEngine  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    return FoiEngine.from_pretrained("tiny-random")


def test_find_regions_paint_edit_export(engine, tmp_path):
    doc = Document(photo(160, 120))
    doc.settings = EditSettings(steps=4, resolution=64)
    doc.set_seed(3, fixed=True)
    doc.add_layer("make the sky a sunset", keyword="sky")
    doc.add_layer("add snow")
    located = engine.locate(doc.photo, doc.instructions(), doc.settings, seed=doc.seed)
    doc.apply_grounding(located)
    assert all(layer.mask.any() for layer in doc.layers)

    # Untouched masks: Find regions → Edit is the paper's single pass.
    request = doc.edit_request()
    refined = engine.edit(**request.engine_arguments())
    single = engine.edit(doc.photo, doc.instructions(), doc.settings, doc.seed)
    assert np.array_equal(np.asarray(refined.image), np.asarray(single.image))

    # Painted masks go at photo resolution and the engine takes them.
    doc.begin_stroke(doc.layers[1].id, erase=True, radius=30)
    doc.stroke_to(40, 60)
    doc.end_stroke()
    request = doc.edit_request()
    assert request.masks[1].shape == (120, 160)
    result = engine.edit(**request.engine_arguments())
    entry = doc.add_result(result, request)
    doc.accept_result(entry)
    written = doc.export(tmp_path / "out.ora")
    with zipfile.ZipFile(written[0]) as archive:
        names = [layer.get("name") for layer in ET.fromstring(archive.read("stack.xml")).iter("layer")]
    assert "make the sky a sunset" in names and "add snow" in names
