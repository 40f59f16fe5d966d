from foi_desktop.document import Document
from foi_engine import Instruction

from document_helpers import photo


def test_add_remove_move_and_undo(doc):
    events = []
    doc.events.connect(events.append)
    first, second = doc.layers
    third = doc.add_layer("warmer light")
    assert [l.text for l in doc.layers] == ["make the sky a sunset", "add snow", "warmer light"]
    assert len({l.color for l in doc.layers}) == 3
    doc.move_layer(third.id, 0)
    doc.remove_layer(first.id)
    assert [l.id for l in doc.layers] == [third.id, second.id]
    assert {"layers", "history"} <= {e.kind for e in events}
    assert doc.undo_text == "Remove instruction"
    doc.undo()
    doc.undo()
    doc.undo()
    assert [l.id for l in doc.layers] == [first.id, second.id]
    assert not doc.can_undo and doc.can_redo
    doc.redo(), doc.redo(), doc.redo()
    assert [l.id for l in doc.layers] == [third.id, second.id]


def test_instruction_edits_are_undoable_and_keyword_follows_text(doc):
    layer = doc.layers[0]
    doc.update_layer(layer.id, text="make the clouds pink", strength=2.0)
    assert layer.keyword is None  # "sky" is gone from the text
    assert doc.instructions()[0] == Instruction("make the clouds pink", None, 2.0, None)
    doc.update_layer(layer.id, visible=False, opacity=0.3, color=(1, 2, 3))
    doc.undo()
    assert (layer.text, layer.keyword, layer.strength) == ("make the sky a sunset", "sky", 1.0)
    assert layer.visible is False  # view state is not part of the history
    assert layer.words() == ["sky", "sunset"]  # the picker offers no "make", "the" or "a"


def test_typing_merges_into_one_undo_item(doc):
    layer = doc.layers[1]
    for text in ("add s", "add sn", "add sno"):
        doc.update_layer(layer.id, text=text)
    doc.undo()
    assert layer.text == "add snow"


def test_open_photo_never_writes(tmp_path):
    path = tmp_path / "p.jpg"
    photo().save(path, quality=90)
    before = path.read_bytes()
    document = Document.open_photo(path)
    assert document.size == (300, 200) and document.source_path == str(path)
    assert path.read_bytes() == before


def test_an_edit_request_takes_the_seed_it_is_given_without_fixing_it(doc):
    doc.set_seed(3, fixed=False)
    request = doc.edit_request(seed=41)
    assert request.seed == 41 and doc.seed == 41 and not doc.fixed_seed
    assert doc.edit_request_snapshot().seed == 41  # a snapshot never draws


def test_an_edit_request_unpacks_into_the_engines_edit_by_name(doc):
    import inspect

    from foi_engine.protocol import Engine

    request = doc.edit_request()
    arguments = request.engine_arguments()
    assert set(arguments) == {"image", "instructions", "settings", "seed", "masks"}
    assert set(arguments) <= set(inspect.signature(Engine.edit).parameters)
    assert arguments["image"] is doc.photo and arguments["seed"] == request.seed
    assert arguments["masks"] is request.masks and arguments["instructions"] == doc.instructions()


def test_forgetting_history_leaves_an_unmodified_document_with_nothing_to_undo(doc):
    doc.update_layer(doc.layers[0].id, text="make the clouds pink")
    assert doc.modified and doc.history.undo_steps
    doc.forget_history()
    assert not doc.modified and not doc.history.undo_steps
    assert doc.layers[0].text == "make the clouds pink"
