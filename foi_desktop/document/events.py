"""A tiny observer hub: views subscribe to the document and are told what changed.

Callbacks run synchronously in the thread that changed the document (the GUI thread)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Rect = tuple[int, int, int, int]  # (x0, y0, x1, y1) in photo pixels, x1/y1 exclusive

KINDS = ("layers", "layer", "mask", "results", "history", "photo", "settings")


@dataclass(frozen=True)
class Event:
    """kind: one of KINDS. layer_id: the layer concerned ("layer", "mask").
    rect: for "mask", the bounding rectangle of the changed pixels (None = the whole mask);
    rects: the changed rectangles inside it (a dab's; runs of tiles for a τ move or an undo):
    repaint just these."""

    kind: str
    layer_id: str | None = None
    rect: Rect | None = None
    rects: tuple[Rect, ...] = ()


class EventHub:
    def __init__(self):
        self._callbacks: list[Callable[[Event], None]] = []

    def connect(self, callback: Callable[[Event], None]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[Event], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, event: Event) -> None:
        for callback in list(self._callbacks):
            callback(event)


def follow(view, doc) -> None:
    """Move a view's subscription (its `_on_event`) from the document it shows to `doc`
    (None: to nothing) and make `doc` the one it shows."""
    if view.doc is not None:
        view.doc.events.disconnect(view._on_event)
    view.doc = doc
    if doc is not None:
        doc.events.connect(view._on_event)
