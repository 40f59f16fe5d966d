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
    doc.fill_mask(doc.layers[0].id)  # past the crop box on this 3:2 photo
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
    doc.fill_mask(doc.layers[1].id)
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
