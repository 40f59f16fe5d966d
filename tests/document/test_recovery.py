import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from foi_desktop.document import ProjectError, RecoveryStore, save_project


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
    assert [item.error is not None for item in store.pending()] == [True]  # its own live work is not offered
    store.close()  # as a crash would: the system drops the editor's locks
    items = store.pending()
    good = [item for item in items if item.error is None]
    bad = [item for item in items if item.error is not None]
    assert len(good) == 1 and len(bad) == 1
    assert good[0].title == "mine.foi" and good[0].project_path == str(tmp_path / "mine.foi")
    recovered = store.recover(good[0])
    # Untitled: a path read from an autosave never decides where Save writes.
    assert recovered.modified and recovered.project_path is None
    for old, new in zip(doc.layers, recovered.layers):
        assert np.array_equal(old.mask, new.mask)
    with pytest.raises(ProjectError, match="not deleted"):
        store.discard(bad[0])  # never delete what cannot be read
    moved = store.set_aside(bad[0])
    assert open(moved, "rb").read() == b"garbage"
    store.discard(recovered)
    assert store.pending() == []


def test_live_work_of_another_editor_is_never_offered(doc, tmp_path):
    """Two editors share the folder: the live one's autosave is not offered to the other
    until its process ends (here: killed, as a crash ends it)."""
    folder = tmp_path / "recovery"
    code = ("import sys, time\n"
            "from PIL import Image\n"
            "from foi_desktop.document import Document, RecoveryStore\n"
            "store = RecoveryStore(sys.argv[1])\n"
            "store.autosave(Document(Image.new('RGB', (64, 64))))\n"
            "print('saved', flush=True)\n"
            "time.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "saved"
        mine = RecoveryStore(folder)
        assert mine.pending() == []  # live elsewhere
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not mine.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(mine.pending()) == 1  # abandoned now: offered
        recovered = mine.recover(mine.pending()[0])
        assert RecoveryStore(folder).pending() == []  # recovered work is live here now
        mine.discard(recovered)
        assert os.listdir(folder) == []
    finally:
        other.kill()
        other.wait()
