"""The document's events (issue 16): one emitter per kind, a blocker, and views that move their
connections from one document to the next."""

import logging
import types
from enum import StrEnum

import pytest

from foi_desktop.document import Event, EventKind, follow
from foi_desktop.document.events import EmitterGroup, EventEmitter


def test_each_kind_is_its_own_emitter(doc):
    layer = doc.layers[0]
    masks, layers = [], []
    doc.events.mask.connect(masks.append)
    doc.events[EventKind.LAYER].connect(layers.append)
    doc.update_layer(layer.id, strength=0.5)
    assert masks == [] and layers == [Event(EventKind.LAYER, layer.id)]
    doc.invert_mask(layer.id)
    whole = (0, 0, *doc.size)
    assert masks == [Event(EventKind.MASK, layer.id, whole, (whole,))] and len(layers) == 1
    assert doc.events["mask"] is doc.events.mask is doc.events[EventKind.MASK]
    assert [emitter.kind for emitter in doc.events] == list(EventKind)


def test_connect_once_and_disconnect(doc):
    heard = []
    doc.events.settings.connect(heard.append)
    doc.events.settings.connect(heard.append)  # twice: still called once
    doc.set_seed(3)
    doc.events.settings.disconnect(heard.append)
    doc.events.settings.disconnect(heard.append)  # not connected any more: nothing to do
    doc.set_seed(4)
    assert [event.kind for event in heard] == [EventKind.SETTINGS]


def test_a_blocker_silences_its_kind_only_while_it_lasts(doc):
    heard = []
    doc.events.connect(heard.append)
    layer = doc.layers[0]
    with doc.events.mask.blocker():
        with doc.events.mask.blocker():  # blockers nest
            doc.clear_mask(layer.id)
            doc.invert_mask(layer.id)
        doc.invert_mask(layer.id)
        assert doc.events.mask.blocked
    assert not doc.events.mask.blocked
    assert [event.kind for event in heard] == [EventKind.HISTORY] * 3  # the other kinds are heard
    doc.invert_mask(layer.id)
    assert heard[-1].kind is EventKind.MASK
    with doc.events.blocker():  # every kind
        doc.add_layer("more")
        doc.set_seed(1)
    assert len(heard) == 5


def test_every_callback_runs_and_the_first_failure_is_raised(caplog):
    emitter = EventEmitter(EventKind.RESULTS)
    heard = []

    def broken(event):
        raise ValueError("a view's bug")

    def broken_too(event):
        raise KeyError("another")

    for callback in (broken, heard.append, broken_too):
        emitter.connect(callback)
    with caplog.at_level(logging.ERROR), pytest.raises(ValueError, match="a view's bug"):
        emitter.emit()
    assert heard == [Event(EventKind.RESULTS)]  # the view after the broken one still heard it
    assert "failed too" in caplog.text  # the second failure is not lost


def test_a_callback_may_disconnect_itself_while_it_is_called(doc):
    heard = []

    def once(event):
        heard.append(event)
        doc.events.history.disconnect(once)

    doc.events.history.connect(once)
    doc.events.history.connect(heard.append)
    doc.add_layer("one")
    doc.add_layer("two")
    assert len(heard) == 3  # once, then heard.append twice


def test_a_jump_through_the_history_is_announced_once(doc):
    layer = doc.layers[0]
    for _ in range(3):
        doc.invert_mask(layer.id)
    history, masks = [], []
    doc.events.history.connect(history.append)
    doc.events.mask.connect(masks.append)
    doc.go_to(0)
    assert len(history) == 1 and len(masks) == 3  # each step's pixels, one history refresh
    doc.go_to(0)
    assert len(history) == 1  # nowhere to go: nothing changed
    doc.go_to(3)
    assert len(history) == 2 and doc.history.position == 3


def test_an_emitter_group_builds_its_events_with_their_kind():
    class Kind(StrEnum):
        DONE = "done"

    made = []
    group = EmitterGroup(Kind, lambda kind, **fields: (kind, fields))
    group.done.connect(made.append)
    group.done.emit(job_id=7)
    assert made == [(Kind.DONE, {"job_id": 7})]

    class Clashing(StrEnum):
        CONNECT = "connect"

    with pytest.raises(ValueError, match="connect"):
        EmitterGroup(Clashing)


def test_follow_moves_a_views_connections_to_the_new_document(doc):
    from document_helpers import photo

    from foi_desktop.document import Document

    heard = []
    view = types.SimpleNamespace(doc=None)
    connections = [(EventKind.LAYERS, heard.append), (EventKind.MASK, heard.append)]
    old, new = doc, Document(photo())
    follow(view, old, connections)
    follow(view, new, connections)
    assert view.doc is new
    assert not any(emitter.callbacks for emitter in old.events)  # nothing of the view is left behind
    old.add_layer("unheard")
    assert heard == []
    new.add_layer("heard")
    assert [event.kind for event in heard] == [EventKind.LAYERS]
    follow(view, None, connections)
    new.add_layer("unheard")
    assert view.doc is None and len(heard) == 1
