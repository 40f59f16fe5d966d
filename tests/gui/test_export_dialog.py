"""The Export dialog says the size each kind writes, and the full-resolution photo takes the
photo's own format; the Open dialog offers HEIC."""

from PIL import Image

from gui_helpers import add_made_up_result


def _with_result(window, path):
    """The photo at path open, with one (made-up) result: no model run needed."""
    assert window.open_path(str(path))
    window.doc.add_layer("make the sky a sunset")
    return add_made_up_result(window.doc)


def _export_dialog(window, monkeypatch):
    """The dialog Export opens, left open for the test to read (closed by the test)."""
    from foi_desktop.dialogs import ExportDialog

    opened = []
    monkeypatch.setattr(ExportDialog, "exec", lambda dialog: opened.append(dialog) or 0)
    window.export_action.trigger()
    assert len(opened) == 1
    return opened[0]


def test_each_kind_says_the_size_it_writes_and_a_jpeg_stays_a_jpeg(window, monkeypatch, photo_path, qtbot):
    entry = _with_result(window, photo_path)  # a 451×300 JPEG
    dialog = _export_dialog(window, monkeypatch)
    try:
        assert entry.frame.size == (192, 128)  # the model's working size at 128 px
        assert dialog.label("png") == "Result as PNG (192 × 128 px), plus one mask PNG per instruction"
        assert dialog.label("full") == "Full-resolution photo (451 × 300 px): the result as shown, as JPEG like the original"
        dialog.set_kind("full")
        assert dialog.path.endswith("chelsea-edited.jpg")
        dialog.set_kind("png")
        assert dialog.path.endswith("chelsea-edited.png")
    finally:
        dialog.close()
        dialog.deleteLater()


def test_a_png_photo_exports_as_png(window, monkeypatch, tmp_path):
    Image.new("RGB", (200, 100), "teal").save(tmp_path / "scan.png")
    _with_result(window, tmp_path / "scan.png")
    dialog = _export_dialog(window, monkeypatch)
    try:
        assert dialog.label("full").startswith("Full-resolution photo (200 × 100 px)")
        assert dialog.label("full").endswith("as PNG like the original")
        dialog.set_kind("full")
        assert dialog.path.endswith("scan-edited.png") and dialog.kind == "full"
    finally:
        dialog.close()
        dialog.deleteLater()


def test_the_open_dialog_offers_heic():
    from foi_desktop.window import PHOTO_FILTER

    photos = PHOTO_FILTER.split(";;")[0]
    assert "*.heic" in photos and "*.heif" in photos
