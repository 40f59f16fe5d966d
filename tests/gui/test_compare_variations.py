"""FoI against plain InstructPix2Pix side by side, variations with stars, and the keyword list,
driven through the real window with the tiny model."""

import dataclasses

from PySide6.QtCore import Qt

from foi_desktop.imaging import pil_to_qimage
from foi_desktop.instructions import WHOLE_IMAGE
from foi_engine import EditSettings


def _click(qtbot, button):
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _captions(window):
    return [window.results.list.item(row).text() for row in range(window.results.list.count())]


def test_compare_with_plain_shows_both_results_side_by_side(window, qtbot, run, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make the cat a tiger", "cat")
    window.doc.settings = EditSettings(steps=4, resolution=64)
    window.compare_plain_action.trigger()
    pair = run(window.task)
    plain, foi = pair
    assert window.doc.results == [foi, plain]
    assert (foi.settings.focus, plain.settings.focus) == (True, False)
    assert foi.seed == plain.seed and dataclasses.replace(plain.settings, focus=True) == foi.settings
    assert [caption.split("\n")[0] for caption in _captions(window)] == ["#1 FoI", "#2 Plain IP2P"]
    # The split: the plain result left, FoI right, each as exports write it, labelled.
    canvas = window.canvas
    assert window.compare_action.isChecked() and canvas.compare and window.results.current() is foi
    assert canvas.result_item.image == pil_to_qimage(window.doc.result_image(foi))
    assert canvas.before_item.image == pil_to_qimage(window.doc.result_image(plain))
    assert canvas.before_item.isVisible()
    assert (canvas.before_label.text(), canvas.after_label.text()) == ("Plain IP2P", "FoI")
    assert canvas.before_label.isVisible() and canvas.after_label.isVisible()
    # Picking the plain one in the strip puts it on the right.
    window.results.select(plain)
    assert canvas.result_item.image == pil_to_qimage(window.doc.result_image(plain))
    assert (canvas.before_label.text(), canvas.after_label.text()) == ("FoI", "Plain IP2P")
    # Any other result compares with the photo again.
    third = run(window.start_edit())
    assert window.results.current() is third and window.pair is None
    assert (canvas.before_label.text(), canvas.after_label.text()) == ("Before", "After")
    assert not canvas.before_item.isVisible()


def test_variations_each_have_their_own_seed_and_can_be_starred(window, qtbot, run, photo_path, tmp_path):
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=4, resolution=64)
    window.variations_box.setValue(3)
    window.variations_action.trigger()
    entries = run(window.task)
    assert window.doc.results == entries and len({entry.seed for entry in entries}) == 3
    assert entries[0].seed == 0  # the fixed seed first, as Edit would use it
    for caption, entry in zip(_captions(window), entries):
        assert caption.endswith(f"seed {entry.seed}")
    strip = window.results
    for entry in (entries[0], entries[2]):
        strip.select(entry)
        _click(qtbot, strip.star_button)
    assert [entry.starred for entry in entries] == [True, False, True]
    assert "★" in _captions(window)[0] and "★" not in _captions(window)[1]
    assert strip.star_button.text() == "Unstar"
    _click(qtbot, strip.star_button)
    assert not entries[2].starred and strip.star_button.text() == "Star"
    window._save_to(str(tmp_path / "stars.foi"))
    assert run(window.open_path(str(tmp_path / "stars.foi")))
    assert [entry.starred for entry in window.doc.results] == [True, False, False]


def test_cancel_all_stops_the_remaining_variations(window, qtbot, run, photo_path):
    window.open_path(photo_path)
    window.doc.add_layer("make it snowy")
    window.doc.settings = EditSettings(steps=4, resolution=64)
    # Cancel All as the first variation lands: the second is running, the last two wait.
    window.doc.events.results.connect(lambda _event: window.cancel_all_action.trigger())
    window.variations_box.setValue(4)
    window.variations_action.trigger()
    assert len(window.jobs.active()) == 4  # Edit ×4 is four jobs
    entries = run(window.task)
    assert len(entries) == 1 and window.doc.results == entries
    assert window.jobs.jobs() == [] and window.results.list.count() == 1
    assert window.statusBar().currentMessage() == "1 of 4 variations made: star the ones you like."


def test_the_keyword_list_offers_what_the_instruction_names(window, qtbot, photo_path):
    window.open_path(photo_path)
    _click(qtbot, window.panel.add_button)
    row = window.panel.rows[window.doc.layers[-1].id]
    qtbot.keyClicks(row.text_edit, "make the cat's hat look like a red crown")
    offered = [row.keyword_box.itemText(i) for i in range(row.keyword_box.count())]
    assert offered == [WHOLE_IMAGE, "cat", "hat", "crown"]
