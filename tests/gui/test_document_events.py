"""Each view connects to the kinds of document change it needs (issue 16), hears them, and lets go
of a document when the window shows another."""

from foi_desktop.document import EventKind
from gui_helpers import add_made_up_result, shown


def _listeners(doc) -> dict:
    """Which objects each of the document's emitters calls."""
    return {kind: {callback.__self__ for callback in doc.events[kind].callbacks} for kind in EventKind}


def test_each_view_hears_the_kinds_it_needs_and_lets_go_of_the_old_document(window, photo_path):
    canvas, panel, results, history = window.canvas, window.panel, window.results, window.history_panel
    needs = {EventKind.LAYERS: {window, canvas, panel}, EventKind.LAYER: {window, canvas, panel},
             EventKind.MASK: {window, canvas}, EventKind.RESULTS: {window, results},
             EventKind.HISTORY: {window, history}, EventKind.SETTINGS: {window}}
    window.open_sample()
    old = window.doc
    assert _listeners(old) == needs
    assert window.open_path(photo_path)
    new = window.doc
    assert new is not old and _listeners(new) == needs
    assert not any(emitter.callbacks for emitter in old.events)

    # The old document changes unheard.
    seen = (window.windowTitle(), set(panel.rows), set(canvas._overlays), history.count(), results.list.count())
    old.add_layer("unheard")
    old.invert_mask(old.layers[0].id)
    old.set_seed(9)
    add_made_up_result(old)
    assert (window.windowTitle(), set(panel.rows), set(canvas._overlays), history.count(),
            results.list.count()) == seen

    # The new one is heard by each view.
    assert " *" not in window.windowTitle()
    new.set_seed(5)
    assert " *" in window.windowTitle()  # settings: the window's title
    layer = new.add_layer("make the cat a tiger", keyword="cat")
    assert layer.id in panel.rows and layer.id in canvas._overlays  # layers: rows and overlays
    assert history.count() == 2 and window.edit_action.isEnabled()  # history: the panel and the actions
    new.update_layer(layer.id, text="make the cat a lion")
    assert panel.rows[layer.id].text_edit.toPlainText() == "make the cat a lion"  # layer: its row
    before = shown(canvas)
    new.invert_mask(layer.id)
    assert (shown(canvas) != before).any()  # mask: the overlay repainted
    add_made_up_result(new)
    assert results.list.count() == 1 and window.export_action.isEnabled()  # results: the strip and Export


def test_showing_the_layer_sends_nothing_back_to_the_document(window):
    """A row that shows its layer (after an undo, say) does not send what it shows back as an
    edit: the auto τ stays auto and the undone step can still be redone."""
    window.open_sample()
    doc = window.doc
    layer = doc.add_layer("make the cat a tiger", keyword="cat")
    assert layer.threshold is None
    doc.update_layer(layer.id, strength=0.5)
    doc.undo()
    row = window.panel.rows[layer.id]
    assert row.strength_box.value() == layer.strength == 1.0 and row.auto_button.isChecked()
    assert layer.threshold is None and doc.can_redo and doc.redo_text == "Edit instruction"
