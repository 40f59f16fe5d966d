"""Events: one emitter per kind of change, as napari's models have (`layer.events.data`).

A view connects to the kinds it needs (`doc.events.mask.connect(on_mask)`) instead of hearing
every change and filtering. Callbacks run synchronously, in the order connected, in the thread
that made the change (the GUI thread). `with doc.events.history.blocker():` silences a kind for
a while (the emitter's own listeners never hear what happened inside, so the code that blocks
says afterwards what changed, once)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import Enum, StrEnum

log = logging.getLogger(__name__)

Rect = tuple[int, int, int, int]  # (x0, y0, x1, y1) in photo pixels, x1/y1 exclusive
Callback = Callable[[object], None]


class EventKind(StrEnum):
    """What changed in a document; each kind is an emitter, `doc.events.<value>`."""

    LAYERS = "layers"  # layers added, removed or moved
    LAYER = "layer"  # one layer's fields (text, keyword, τ, colour, visibility…)
    MASK = "mask"  # one layer's mask pixels
    RESULTS = "results"  # a result added, accepted, starred or discarded
    HISTORY = "history"  # the undo steps (a step closed, undo, redo, history forgotten)
    SETTINGS = "settings"  # the run settings or the seed


@dataclass(frozen=True)
class Event:
    """layer_id: the layer concerned (LAYER, MASK).
    rect: for MASK, the bounding rectangle of the changed pixels (None = the whole mask);
    rects: the changed rectangles inside it (a dab's; runs of tiles for a τ move or an undo):
    repaint just these."""

    kind: EventKind
    layer_id: str | None = None
    rect: Rect | None = None
    rects: tuple[Rect, ...] = ()


class EventEmitter:
    """One kind of event and the callbacks connected to it.

    Exceptions: every callback runs even when one before it raises (one broken view must not
    leave the others showing a stale document); the first exception is raised again once all
    have run, the others are logged."""

    def __init__(self, kind: Enum, event_type: type = Event):
        self.kind = kind
        self._event_type = event_type
        self._callbacks: list[Callback] = []
        self._blocks = 0

    @property
    def callbacks(self) -> tuple[Callback, ...]:
        return tuple(self._callbacks)

    def connect(self, callback: Callback) -> Callback:
        """Connecting twice still calls it once. Returns the callback (usable as a decorator)."""
        if callback not in self._callbacks:  # bound methods compare equal: a view reconnects safely
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callback) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    @property
    def blocked(self) -> bool:
        return self._blocks > 0

    @contextmanager
    def blocker(self) -> Iterator[None]:
        """Inside the `with`, emit does nothing; blockers nest."""
        self._blocks += 1
        try:
            yield
        finally:
            self._blocks -= 1

    def emit(self, **fields) -> None:
        """Tell every callback: they get one event_type(kind, **fields)."""
        if self._blocks:
            return
        event = self._event_type(self.kind, **fields)
        errors = []
        for callback in list(self._callbacks):  # a callback may disconnect itself
            try:
                callback(event)
            except Exception as error:  # noqa: BLE001 - raised again below, after the others ran
                if errors:
                    log.error("%s callback %r failed too", self.kind, callback, exc_info=error)
                errors.append(error)
        if errors:
            raise errors[0]


class EmitterGroup:
    """One EventEmitter per member of `kinds` (an Enum), as the attribute named by its value:
    `events.mask`, `events[EventKind.MASK]` and `events["mask"]` are the same emitter."""

    def __init__(self, kinds: type[Enum], event_type: type = Event):
        self._kinds = kinds
        self._emitters = {kind: EventEmitter(kind, event_type) for kind in kinds}
        for kind, emitter in self._emitters.items():
            if hasattr(self, kind.value):  # a kind named "connect" would hide the method
                raise ValueError(f"An event kind cannot be named {kind.value!r}.")
            setattr(self, kind.value, emitter)

    def __getitem__(self, kind) -> EventEmitter:
        return self._emitters[self._kinds(kind)]

    def __iter__(self) -> Iterator[EventEmitter]:
        return iter(self._emitters.values())

    def connect(self, callback: Callback) -> Callback:
        """To every kind: for a listener that any change concerns (a log, a test)."""
        for emitter in self:
            emitter.connect(callback)
        return callback

    def disconnect(self, callback: Callback) -> None:
        for emitter in self:
            emitter.disconnect(callback)

    @contextmanager
    def blocker(self) -> Iterator[None]:
        """Every kind blocked inside the `with`."""
        with ExitStack() as stack:
            for emitter in self:
                stack.enter_context(emitter.blocker())
            yield


class DocumentEvents(EmitterGroup):
    """A document's `events`: layers, layer, mask, results, history, settings (EventKind)."""

    def __init__(self):
        super().__init__(EventKind, Event)


Connections = Iterable[tuple[EventKind, Callback]]


def follow(view, doc, connections: Connections) -> None:
    """Move a view's connections from the document it shows (`view.doc`) to `doc` (None: to
    nothing) and make `doc` the one it shows. connections: (kind, callback) pairs, the same ones
    each time (a view's bound methods), so those made to the old document are all undone."""
    connections = list(connections)
    if view.doc is not None:
        for kind, callback in connections:
            view.doc.events[kind].disconnect(callback)
    view.doc = doc
    if doc is not None:
        for kind, callback in connections:
            doc.events[kind].connect(callback)
