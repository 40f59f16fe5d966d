import numpy as np

from foi_desktop.document import RecoveryStore, save_project


def test_autosave_pending_recover_discard(doc, tmp_path):
    store = RecoveryStore(tmp_path / "recovery")
    assert store.pending() == []
    doc.begin_stroke(doc.layers[0].id, radius=9)
    doc.stroke_to(40, 40)
    doc.end_stroke()
    save_project(doc, tmp_path / "mine.foi")
    doc.invert_mask(doc.layers[1].id)
    store.autosave(doc)
    assert doc.modified  # an autosave is not a save
    (tmp_path / "recovery" / "junk.foi").write_bytes(b"garbage")
    items = store.pending()
    good = [item for item in items if item.error is None]
    bad = [item for item in items if item.error is not None]
    assert len(good) == 1 and len(bad) == 1
    assert good[0].title == "mine.foi" and good[0].project_path == str(tmp_path / "mine.foi")
    recovered = store.recover(good[0])
    assert recovered.modified and recovered.project_path == str(tmp_path / "mine.foi")
    for old, new in zip(doc.layers, recovered.layers):
        assert np.array_equal(old.mask, new.mask)
    store.discard(bad[0])
    store.discard(recovered)
    assert store.pending() == []
