import gc
import io
import json
import types
import zipfile

import numpy as np
import pytest
from document_helpers import fake_locate
from PIL import Image

from foi_desktop.document import ProjectError, open_project, save_project
from foi_engine import EditSettings, Instruction


def _result(doc):
    frame = doc.frame(64)
    return types.SimpleNamespace(
        image=Image.new("RGB", frame.size, (1, 2, 3)), instructions=tuple(doc.instructions()),
        settings=EditSettings(steps=4, resolution=64), seed=11, frame=frame, model_name="tiny-random",
        random_weights=True, masks=None,
    )


def _rich(doc):
    doc.apply_grounding(fake_locate(doc))
    doc.set_threshold(doc.layers[0].id, 0.4)
    doc.begin_stroke(doc.layers[1].id, erase=True, radius=12, hardness=0.3)
    doc.stroke_to(150, 100)
    doc.stroke_to(200, 120)
    doc.end_stroke()
    doc.accept_result(doc.add_result(_result(doc)))
    return doc


def test_save_and_open_are_bit_exact(doc, tmp_path):
    _rich(doc)
    path = tmp_path / "p.foi"
    save_project(doc, path)
    assert doc.project_path == str(path) and not doc.modified
    again = open_project(path)
    assert np.array_equal(np.asarray(again.photo), np.asarray(doc.photo))
    for old, new in zip(doc.layers, again.layers):
        assert np.array_equal(old.mask, new.mask)
        assert (old.id, old.text, old.keyword, old.threshold, old.auto_threshold, old.color, old.pristine) == (
            new.id, new.text, new.keyword, new.threshold, new.auto_threshold, new.color, new.pristine)
        assert np.array_equal(old.grounding.map, new.grounding.map)
    assert again.settings == doc.settings and again.seed == doc.seed
    entry = again.results[0]
    assert entry.accepted and entry.seed == 11 and entry.instructions[0] == Instruction("make the sky a sunset", "sky", 1.0, 0.4)
    for old, new in zip(doc.results[0].masks, entry.masks):
        assert np.array_equal(old, new)
    # The τ slider still works on the reopened project.
    again.set_threshold(again.layers[0].id, 0.6)
    assert again.layers[0].mask.sum() < doc.layers[0].mask.sum()


def _paint_in_the_band(doc):
    """τ 0.5 on the bump, a stroke over its edge and one beside it; returns the layer."""
    doc.apply_grounding(fake_locate(doc))
    layer = doc.layers[0]
    for x, y in ((90, 100), (150, 50)):  # (90, 100): inside the region at τ 0.5; (150, 50): outside it
        doc.begin_stroke(layer.id, radius=10, hardness=1.0)
        doc.stroke_to(x, y)
        doc.end_stroke()
    return layer


def test_brush_work_survives_threshold_moves_after_reopening(doc, tmp_path):
    layer = _paint_in_the_band(doc)
    save_project(doc, tmp_path / "p.foi")
    again = open_project(tmp_path / "p.foi")
    for tau in (0.1, 0.6, 0.9):
        doc.set_threshold(layer.id, tau)
        again.set_threshold(layer.id, tau)
        assert np.array_equal(again.layers[0].mask, doc.layers[0].mask), tau
    assert again.layers[0].mask[100, 90] == again.layers[0].mask[50, 150] == 255  # both strokes kept


def test_older_projects_keep_the_brush_work_the_map_cannot_explain(doc, tmp_path):
    layer = _paint_in_the_band(doc)
    save_project(doc, tmp_path / "p.foi")
    older = tmp_path / "older.foi"  # as saved before flip planes
    _rewrite(tmp_path / "p.foi", older, change=lambda d: [entry.pop("flip") for entry in d["layers"]],
             drop=["masks/0-flip.png", "masks/1-flip.png"])
    again = open_project(older)
    assert np.array_equal(again.layers[0].mask, layer.mask)
    again.set_threshold(layer.id, 0.1)  # the stroke beside the region was the user's: it stays
    assert (again.layers[0].mask[45:56, 145:156] == 255).all()


def test_open_keeps_the_original_photo_file(tmp_path):
    from foi_desktop.document import Document
    from document_helpers import photo

    photo().save(tmp_path / "in.jpg", quality=90)
    doc = Document.open_photo(tmp_path / "in.jpg")
    save_project(doc, tmp_path / "p.foi")
    with zipfile.ZipFile(tmp_path / "p.foi") as archive:
        assert archive.read("photo/original.jpg") == (tmp_path / "in.jpg").read_bytes()
    assert np.array_equal(np.asarray(open_project(tmp_path / "p.foi").photo), np.asarray(doc.photo))


def test_a_heic_photo_is_kept_as_it_was_and_opens_again(tmp_path):
    from foi_desktop.document import Document
    from document_helpers import photo

    photo().save(tmp_path / "IMG_0001.HEIC", "HEIF", quality=90)
    doc = Document.open_photo(tmp_path / "IMG_0001.HEIC")
    save_project(doc, tmp_path / "p.foi")
    with zipfile.ZipFile(tmp_path / "p.foi") as archive:
        assert archive.read("photo/original.heic") == (tmp_path / "IMG_0001.HEIC").read_bytes()
    again = open_project(tmp_path / "p.foi")
    assert np.array_equal(np.asarray(again.photo), np.asarray(doc.photo))
    assert again.photo_metadata.format == "HEIF"


def _rewrite(source, target, change=None, extra=(), drop=()):
    with zipfile.ZipFile(source) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    if change:
        description = json.loads(members["project.json"])
        change(description)
        members["project.json"] = json.dumps(description).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            if name not in drop:
                archive.writestr(name, data)
        for name, data in extra:
            archive.writestr(name, data)


@pytest.fixture
def saved(doc, tmp_path):
    save_project(_rich(doc), tmp_path / "good.foi")
    return tmp_path / "good.foi"


def _bomb_member():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junk", b"\0" * (64 * 1024 * 1024))
    return buffer


@pytest.mark.parametrize(
    "how, message",
    [
        (lambda s, t: t.write_bytes(b"PK\x03\x04 nonsense"), "not a FoI Studio project, or it is damaged"),
        (lambda s, t: _rewrite(s, t, extra=[("../evil.txt", b"x")]), "points outside the project"),
        (lambda s, t: _rewrite(s, t, extra=[("/etc/passwd", b"x")]), "points outside the project"),
        (lambda s, t: _rewrite(s, t, drop=["masks/0.png"]), "part 'masks/0.png' is missing"),
        (lambda s, t: _rewrite(s, t, change=lambda d: d["layers"][0].update(mask="../../x.png")),
         "part '../../x.png' is missing"),
        (lambda s, t: _rewrite(s, t, change=lambda d: d.update(version=99)), "newer FoI Studio"),
        (lambda s, t: _rewrite(s, t, change=lambda d: d["layers"][0].update(threshold=7)), "outside 0..1"),
        (lambda s, t: _rewrite(s, t, change=lambda d: d["settings"].update(steps=-3)), "Steps must be a whole number from 1 to 1000"),
        (lambda s, t: _rewrite(s, t, change=lambda d: d.pop("layers")), "lacks 'layers'"),
    ],
)
def test_hostile_and_damaged_projects_are_refused(saved, tmp_path, how, message):
    target = tmp_path / "bad.foi"
    how(saved, target)
    with pytest.raises(ProjectError, match=message):
        open_project(target)


def test_bad_json_is_refused(saved, tmp_path):
    target = tmp_path / "bad.foi"
    with zipfile.ZipFile(saved) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members["project.json"] = b"{not json"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ProjectError, match="not valid JSON"):
        open_project(target)


def test_zip_bomb_refused_before_reading(tmp_path):
    target = tmp_path / "bomb.foi"
    target.write_bytes(_bomb_member().getvalue())
    with pytest.raises(ProjectError, match="zip bomb"):
        open_project(target)


def test_huge_declared_image_refused(saved, tmp_path):
    # A tiny PNG that claims 100000×100000 pixels in its header.
    import struct
    import zlib as z

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", z.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", z.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    target = tmp_path / "huge.foi"
    with zipfile.ZipFile(saved) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    members["masks/0.png"] = png
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ProjectError, match="masks/0.png is too large to open safely"):
        open_project(target)
    small = io.BytesIO()
    Image.new("L", (40, 30)).save(small, "PNG")
    members["masks/0.png"] = small.getvalue()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ProjectError, match="masks/0.png is 40×30, not 300×200"):
        open_project(target)


def test_failed_save_keeps_the_old_project(doc, tmp_path, monkeypatch):
    path = tmp_path / "p.foi"
    save_project(doc, path)
    before = path.read_bytes()
    doc.add_layer("one more")
    import foi_desktop.document.project as project

    real = zipfile.ZipFile.writestr

    def fail_on_masks(self, name, data, *args, **kwargs):
        if str(getattr(name, "filename", name)).startswith("masks/"):
            raise OSError(28, "No space left on device")
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(project.zipfile.ZipFile, "writestr", fail_on_masks)
    with pytest.raises(ProjectError, match="No space left on device"):
        save_project(doc, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.foi"]


def test_a_member_larger_than_its_image_can_be_is_refused_before_reading(doc, tmp_path):
    """A mask part that declares more bytes than any PNG of the photo's size needs is
    refused from the zip's directory, before it is read into memory."""
    import zipfile

    from foi_desktop.document import ProjectError, open_project, save_project

    path = tmp_path / "p.foi"
    save_project(doc, path)
    bloated = tmp_path / "bloated.foi"
    width, height = doc.size
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bloated, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "masks/0.png":
                data += b"\0" * (2 * width * height + 100_000)  # still a valid PNG followed by junk
            target.writestr(info.filename, data)
    with pytest.raises(ProjectError, match="more than the"):
        open_project(bloated)


def test_undo_back_to_the_saved_state_is_not_a_change(doc, tmp_path):
    doc.invert_mask(doc.layers[0].id)
    save_project(doc, tmp_path / "p.foi")
    doc.clear_mask(doc.layers[0].id)
    assert doc.modified
    doc.undo()
    assert not doc.modified
    doc.undo()
    assert doc.modified  # before the save
    doc.redo()
    assert not doc.modified
    doc.redo()
    assert doc.modified
    doc.undo()
    doc.set_seed(5)  # not undoable: unsaved whatever undo does
    doc.redo()
    doc.undo()
    assert doc.modified


def test_a_change_after_saving_does_not_merge_into_the_saved_step(doc, tmp_path):
    layer_id = doc.layers[0].id
    doc.update_layer(layer_id, strength=0.5)
    save_project(doc, tmp_path / "p.foi")
    doc.update_layer(layer_id, strength=0.6)  # within a second: would merge
    assert doc.modified
    doc.undo()
    assert not doc.modified and doc.layers[0].strength == 0.5


def test_stars_are_kept_and_older_projects_open_without_them(doc, saved, tmp_path):
    reopened = open_project(saved)
    assert reopened.results[0].starred is False
    reopened.set_starred(reopened.results[0], True)
    save_project(reopened, tmp_path / "starred.foi")
    assert open_project(tmp_path / "starred.foi").results[0].starred is True
    _rewrite(tmp_path / "starred.foi", tmp_path / "old.foi",
             change=lambda d: [result.pop("starred") for result in d["results"]])
    assert open_project(tmp_path / "old.foi").results[0].starred is False
    _rewrite(tmp_path / "starred.foi", tmp_path / "bad.foi",
             change=lambda d: d["results"][0].update(starred="yes"))
    with pytest.raises(ProjectError, match="invalid 'starred'"):
        open_project(tmp_path / "bad.foi")


def test_saving_again_encodes_only_what_changed_and_forgets_what_is_gone(doc, tmp_path, monkeypatch):
    from foi_desktop.document import project

    encoded = []
    real_png = project._png
    monkeypatch.setattr(project, "_png", lambda image: encoded.append(image.size) or real_png(image))
    save_project(doc, tmp_path / "a.foi")
    first = len(encoded)
    save_project(doc, tmp_path / "b.foi")
    assert len(encoded) == first, "an unchanged document was encoded again"
    doc.invert_mask(doc.layers[0].id)
    save_project(doc, tmp_path / "c.foi")
    assert len(encoded) == first + 1  # the one mask that changed
    before = len(doc.png_cache)
    removed = doc.layers[-1]
    parts = 2 if removed.grounding is not None else 1  # its mask, and its flip plane when it has a map
    doc.remove_layer(removed.id)
    doc.history.clear()  # the undo history no longer holds the removed layer
    del removed
    gc.collect()
    save_project(doc, tmp_path / "d.foi")
    assert len(doc.png_cache) == before - parts


def test_a_project_changed_after_its_check_is_refused_in_the_checks_words(tmp_path, monkeypatch):
    from foi_desktop.document import project
    from foi_engine.inputs import check_regular_file

    folder = tmp_path / "folder.foi"
    folder.mkdir()
    with pytest.raises(ProjectError) as checked:
        check_regular_file(folder, "a FoI Studio project", 1 << 30, ProjectError)
    monkeypatch.setattr(project, "check_regular_file", lambda *args: 0)  # a file when checked, a folder now
    with pytest.raises(ProjectError) as read:
        open_project(folder)
    assert str(read.value) == str(checked.value)
