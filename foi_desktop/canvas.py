"""The canvas: the photo, one coloured overlay per instruction (tinted, or outlined; all, or
only the active one's), the result, zoom, pan, brush painting (a pen's pressure sizes the
brush), selection tools (rectangle, ellipse, lasso, polygon, magic wand) and a before/after
split.

Scene coordinates are photo pixels. The view observes the document's events and repaints
only what changed: a brush segment touches a few tiles of one overlay, a threshold move
the tiles its band crossed. Zoomed out, reduced copies are painted (the screen cannot
show more), zoomed in, full-resolution tiles built on demand."""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsLineItem, QGraphicsPathItem,
                               QGraphicsScene, QGraphicsView, QLabel, QStyleOptionGraphicsItem, QWidget)

from .document import EventKind, follow, maskops, selection
from .imaging import overlay_lut, pil_to_qimage, preview_factor, wrap_argb

TILE = 512  # full-resolution overlay tiles, built when zoomed in far enough to need them
MIN_ZOOM, MAX_ZOOM = 0.01, 32.0
MAX_BRUSH = 4000  # the largest brush diameter, photo pixels
BADGE_MARGIN = 8  # px from the view's corner to a Before / After / Original label
class Tool(StrEnum):
    """The mask tools (a str, so a tool's name reads the same in settings and tests)."""

    BRUSH = "brush"
    ERASER = "eraser"
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"
    LASSO = "lasso"
    POLYGON = "polygon"
    WAND = "wand"  # selects with a click


BRUSHES = (Tool.BRUSH, Tool.ERASER)
# Drawn selection tools and the undo item each makes.
SHAPES = {Tool.RECTANGLE: "Rectangle", Tool.ELLIPSE: "Ellipse", Tool.LASSO: "Lasso", Tool.POLYGON: "Polygon"}
CURSOR_WIDTH = 2  # screen px of the brush outline's coloured ring (a dark one around it)
PEN_EVENTS = (QEvent.Type.TabletPress, QEvent.Type.TabletMove, QEvent.Type.TabletRelease)
OUTLINE_LEVEL = 128  # a mask value from which a pixel is inside the outline (half strength or more)


def _badge(parent: QWidget, text: str) -> QLabel:
    """A small label in a corner of the view, saying what that side shows."""
    label = QLabel(text, parent, objectName="canvasBadge")
    label.setStyleSheet("background: rgba(0, 0, 0, 160); color: white; padding: 2px 6px; border-radius: 3px;")
    label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # the split drags through it
    label.adjustSize()
    label.hide()
    return label


def _scale(painter: QPainter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


def _cosmetic_pen(color: str | QColor, width: float) -> QPen:
    """A pen as wide on screen at any zoom."""
    pen = QPen(QColor(color), width)
    pen.setCosmetic(True)
    return pen


class PictureItem(QGraphicsItem):
    """An image stretched over a box (photo px), with a reduced copy for zoomed-out painting."""

    def __init__(self, image=None, box=None):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.set_image(image, box)

    def boundingRect(self) -> QRectF:
        return QRectF(self._box)

    def set_image(self, image, box=None) -> None:
        """image: PIL or None; box: (l, t, r, b) photo px, default the image's own size at 0, 0."""
        self.prepareGeometryChange()
        self._full = self._preview = None
        self._factor = 1
        if image is not None:
            self._factor = preview_factor(image.size)
            self._full = pil_to_qimage(image)
            self._preview = pil_to_qimage(image.reduce(self._factor)) if self._factor > 1 else self._full
        left, top, right, bottom = box or (0, 0, *(image.size if image is not None else (0, 0)))
        self._box = QRectF(left, top, right - left, bottom - top)
        self.update()

    @property
    def image(self) -> QImage | None:
        """The full-size image this item paints."""
        return self._full

    @property
    def box(self) -> QRectF:
        return QRectF(self._box)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self._full is None or self._box.isEmpty():
            return
        exposed = option.exposedRect & self._box
        # Image pixels per photo pixel, then per preview pixel when zoomed out far enough.
        sx, sy = self._full.width() / self._box.width(), self._full.height() / self._box.height()
        image = self._full
        if self._factor > 1 and _scale(painter) * self._factor / sx <= 1.0:
            image, sx, sy = self._preview, sx / self._factor, sy / self._factor
        source = QRectF((exposed.x() - self._box.x()) * sx, (exposed.y() - self._box.y()) * sy,
                        exposed.width() * sx, exposed.height() * sy)
        painter.drawImage(exposed, image, source)


class MaskOverlayItem(QGraphicsItem):
    """One instruction's mask in its colour: alpha = mask value, opacity = the layer's; or, as
    an outline, only the mask's edge in its colour, opaque."""

    def __init__(self, layer, outline: bool = False):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.layer = layer
        height, width = layer.mask.shape
        self._size = (width, height)
        self._factor = preview_factor((width, height))
        f = self._factor
        self._preview = np.zeros((-(-height // f), -(-width // f)), np.uint32)
        self._preview_image = wrap_argb(self._preview)
        self._tiles: dict[tuple[int, int], tuple[np.ndarray, QImage]] = {}
        self._outline = outline
        self._edge_widths: dict[int, int] = {}  # the outline's width in pixels of a grid (by its step)
        self._color = None
        self.sync_layer()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    def sync_layer(self) -> None:
        """Colour and opacity from the layer. Both live in the look-up table (Qt paints an
        opaque-item image faster than one with item opacity), so a change re-colours."""
        layer = self.layer
        look = (tuple(layer.color), round(float(layer.opacity), 3), self._outline)
        if look != self._color:
            self._color = look
            self._lut = overlay_lut(layer.color, 1.0 if self._outline else layer.opacity)
            self._tiles.clear()
            self.refresh(None)

    def set_outline(self, outline: bool) -> None:
        """Show only the mask's edge (True) or all of it, tinted (False)."""
        self._outline = bool(outline)
        self.sync_layer()

    def refresh(self, rect) -> None:
        """The mask changed under rect (x0, y0, x1, y1) photo px, or everywhere (None)."""
        width, height = self._size
        x0, y0, x1, y1 = rect if rect is not None else (0, 0, width, height)
        if self._outline:  # a changed pixel moves the edge up to an outline's width away
            reach = max((w * step for step, w in self._edge_widths.items()), default=1)
            x0, y0, x1, y1 = max(x0 - reach, 0), max(y0 - reach, 0), min(x1 + reach, width), min(y1 + reach, height)
        f = self._factor
        px0, py0, px1, py1 = x0 // f, y0 // f, -(-x1 // f), -(-y1 // f)
        self._fill_preview(px0, py0, px1, py1)
        if self._tiles:
            for ty in range(y0 // TILE, -(-y1 // TILE)):
                for tx in range(x0 // TILE, -(-x1 // TILE)):
                    self._tiles.pop((tx, ty), None)
        # Repaint what the preview pixels cover (a little wider than rect when reduced).
        self.update(QRectF(px0 * f, py0 * f, (px1 - px0) * f, (py1 - py0) * f))

    def _fill_preview(self, px0: int, py0: int, px1: int, py1: int) -> None:
        # mode="clip" (no uint8 index can leave the table) writes straight into the preview:
        # the default buffers the output first.
        np.take(self._lut, self._levels((px0, py0, px1, py1), self._factor), out=self._preview[py0:py1, px0:px1],
                mode="clip")

    def _levels(self, box, step: int) -> np.ndarray:
        """What the look-up table colours in box (x0, y0, x1, y1) of the grid that samples the
        mask every step px: the mask's values, or for an outline 255 on its edge, 0 elsewhere."""
        x0, y0, x1, y1 = box
        mask = self.layer.mask
        if not self._outline:
            return mask[y0 * step: y1 * step: step, x0 * step: x1 * step: step]
        # The box and a margin of the outline's width (beyond the photo: outside the mask).
        w = self._edge_widths.get(step, 1)
        rows, cols = -(-mask.shape[0] // step), -(-mask.shape[1] // step)
        ya, yb, xa, xb = max(y0 - w, 0), min(y1 + w, rows), max(x0 - w, 0), min(x1 + w, cols)
        inside = np.zeros((y1 - y0 + 2 * w, x1 - x0 + 2 * w), bool)
        inside[ya - y0 + w: yb - y0 + w, xa - x0 + w: xb - x0 + w] = \
            mask[ya * step: yb * step: step, xa * step: xb * step: step] >= OUTLINE_LEVEL
        edge = maskops.inner_edge(inside, w)[w:-w, w:-w]
        return np.where(edge, np.uint8(255), np.uint8(0))

    def _fit_outline(self, step: int, pixel_on_screen: float) -> None:
        """Keep the outline drawn on the grid of this step at least one screen pixel wide (one
        grid pixel zoomed in, more zoomed out: a thinner line would lose rows when scaled)."""
        if not self._outline:
            return
        width = max(1, math.ceil(1.0 / pixel_on_screen - 1e-6))
        if self._edge_widths.get(step) == width:
            return
        self._edge_widths[step] = width
        if step == 1:
            self._tiles.clear()
        if step == self._factor:
            self._fill_preview(0, 0, self._preview.shape[1], self._preview.shape[0])

    def preview_alpha(self) -> np.ndarray:
        """The overlay's alpha as painted zoomed out (uint8, the reduced size): what a test or
        benchmark can check without reading the screen."""
        return (self._preview >> 24).astype(np.uint8)

    def _tile(self, tx: int, ty: int) -> QImage:
        tile = self._tiles.get((tx, ty))
        if tile is None:
            width, height = self._size
            box = (tx * TILE, ty * TILE, min((tx + 1) * TILE, width), min((ty + 1) * TILE, height))
            pixels = self._lut[self._levels(box, 1)]
            tile = self._tiles[(tx, ty)] = (pixels, wrap_argb(pixels))
        return tile[1]

    def paint(self, painter: QPainter, option, widget=None) -> None:
        exposed = option.exposedRect & self.boundingRect()
        f = self._factor
        # Nearest-neighbour is enough for a translucent mask and several times cheaper than
        # smooth scaling (which the photo keeps).
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        try:
            self._paint_pixels(painter, exposed, f)
        finally:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)  # the view's hint

    def _paint_pixels(self, painter: QPainter, exposed: QRectF, f: int) -> None:
        scale = _scale(painter)
        if f == 1 or scale * f <= 1.0:
            self._fit_outline(f, scale * f)
            source = QRectF(exposed.x() / f, exposed.y() / f, exposed.width() / f, exposed.height() / f)
            painter.drawImage(exposed, self._preview_image, source)
            return
        self._fit_outline(1, scale)
        for ty in range(int(exposed.top()) // TILE, math.ceil(exposed.bottom() / TILE)):
            for tx in range(int(exposed.left()) // TILE, math.ceil(exposed.right() / TILE)):
                painter.drawImage(QPointF(tx * TILE, ty * TILE), self._tile(tx, ty))


class ResultItem(PictureItem):
    """The result over the photo (or the model's raw output, or a live preview, over the part
    of the photo the model saw); with a split, only right of it (left shows the original)."""

    def __init__(self):
        super().__init__()
        self.split_x: float | None = None

    @property
    def has_image(self) -> bool:
        return self._full is not None

    def paint(self, painter: QPainter, option, widget=None) -> None:
        if self.split_x is None:
            super().paint(painter, option, widget)
            return
        box = self._box
        painter.save()  # the view does not restore the clip (DontSavePainterState)
        painter.setClipRect(QRectF(self.split_x, box.top(), max(0.0, box.right() - self.split_x), box.height()),
                            Qt.ClipOperation.IntersectClip)
        super().paint(painter, option, widget)
        painter.restore()


class CanvasView(QGraphicsView):
    zoomChanged = Signal(float)  # the scale: 1.0 = 100 %

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setBackgroundBrush(QColor("#1b1c1f"))
        # The brush covers every pixel the view repaints, so Qt need not first paint the
        # window's background under it (a tenth of a τ move's time when it did).
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # drops go to the window, which opens them
        self.viewport().setAcceptDrops(False)
        self.doc = None
        self.tool: Tool | None = None  # None = no mask tool
        self.brush_diameter = 40.0  # photo pixels, as the Size box says
        self.brush_hardness = 0.8
        self.wand_tolerance = 32  # 0..255 per channel
        self._active_layer_id: str | None = None
        self._overlays: dict[str, MaskOverlayItem] = {}
        self._masks_visible = True
        self._solo_mask = False  # only the active instruction's mask shown
        self._mask_outlines = False  # each mask's edge instead of its tint
        self._photo_item: PictureItem | None = None
        self._result = ResultItem()
        self._result.setZValue(1)
        self._before = PictureItem()  # left of the split, over the photo: another result to compare with
        self._before.setZValue(0.5)
        self._before.hide()
        self._divider = QGraphicsLineItem()
        self._divider.setPen(_cosmetic_pen("#ffffff", 2))
        self._divider.setZValue(10)
        self._cursor_items = [QGraphicsEllipseItem(), QGraphicsEllipseItem()]
        self._band_items = [QGraphicsPathItem(), QGraphicsPathItem()]  # the shape being selected
        for item, color, width in zip(self._cursor_items + self._band_items, ("#000000", "#ffffff") * 2,
                                      (CURSOR_WIDTH + 2, CURSOR_WIDTH, 3, 1)):
            item.setPen(_cosmetic_pen(color, width))
            item.setZValue(20)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._mouse_scene_pos: QPointF | None = None
        self._fit_mode = True
        self._space = False
        self._panning: QPointF | None = None
        self._painting = False
        self._selecting: dict | None = None  # the tool, mode and photo points of a shape being drawn
        self._dragging_split = False
        self._compare = False
        self._show_original = False
        self._split_fraction = 0.5
        self.before_label = _badge(self.viewport(), "Before")
        self.after_label = _badge(self.viewport(), "After")
        self.original_label = _badge(self.viewport(), "Original")
        self._add_fixed_items()

    def _add_fixed_items(self) -> None:
        scene = self.scene()
        for item in (self._result, self._before, self._divider, *self._cursor_items, *self._band_items):
            scene.addItem(item)
        self._divider.hide()
        self._update_cursor(None)

    # -- document ----------------------------------------------------------------------
    def set_document(self, doc) -> None:
        follow(self, doc, self._connections())
        self._active_layer_id = None
        self._cancel_selection()
        for item in list(self._overlays.values()):
            self.scene().removeItem(item)
        self._overlays.clear()
        if self._photo_item is not None:
            self.scene().removeItem(self._photo_item)
            self._photo_item = None
        self.show_result(None)
        self.set_before(None)
        if doc is None:
            return
        self._photo_item = PictureItem(doc.photo)
        self._photo_item.setZValue(0)
        # The photo under the masks never changes: Qt keeps it as painted on screen and copies
        # it back when a mask repaints over it, instead of scaling it again (on a busy τ move,
        # a fifth of the repaint).
        self._photo_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.scene().addItem(self._photo_item)
        self.scene().setSceneRect(self._photo_item.boundingRect())
        self._sync_layers()
        self._set_compare_geometry()
        self.fit()

    def _connections(self):
        return [(EventKind.LAYERS, self._on_layers), (EventKind.LAYER, self._on_layer),
                (EventKind.MASK, self._on_mask)]

    def _on_layers(self, _event) -> None:
        self._sync_layers()

    def _on_layer(self, event) -> None:
        overlay = self._overlays.get(event.layer_id)
        if overlay is not None:
            overlay.sync_layer()
            self._show_overlays()
            self._color_cursor()

    def _on_mask(self, event) -> None:
        overlay = self._overlays.get(event.layer_id)
        if overlay is None:
            return
        # Each changed rectangle on its own (they come as runs of tiles, about a hundred for
        # a τ move on a busy map): their bounding rectangle can be the whole photo.
        for rect in event.rects or (event.rect,):
            overlay.refresh(rect)

    def _sync_layers(self) -> None:
        """One overlay per layer, stacked in list order (later instructions on top)."""
        layers = {layer.id: layer for layer in self.doc.layers}
        for layer_id in list(self._overlays):
            if layer_id not in layers or self._overlays[layer_id].layer is not layers[layer_id]:
                self.scene().removeItem(self._overlays.pop(layer_id))
        for index, layer in enumerate(self.doc.layers):
            overlay = self._overlays.get(layer.id)
            if overlay is None:
                overlay = self._overlays[layer.id] = MaskOverlayItem(layer, self._mask_outlines)
                self.scene().addItem(overlay)
            overlay.setZValue(2 + index * 0.01)
        self.active_layer_id = self._active_layer_id if self._active_layer_id in layers else None

    def overlay(self, layer_id: str) -> MaskOverlayItem:
        return self._overlays[layer_id]

    @property
    def active_layer_id(self) -> str | None:
        """The instruction the mask tools work on (the selected row)."""
        return self._active_layer_id

    @active_layer_id.setter
    def active_layer_id(self, layer_id: str | None) -> None:
        self._active_layer_id = layer_id
        self._show_overlays()  # Show Only Active Mask follows the selection
        self._color_cursor()
        self._update_cursor(None)

    @property
    def masks_visible(self) -> bool:
        return self._masks_visible

    def set_masks_visible(self, visible: bool) -> None:
        self._masks_visible = bool(visible)
        self._show_overlays()

    def set_solo_mask(self, solo: bool) -> None:
        """Show only the active instruction's mask (True) or every shown one (False)."""
        self._solo_mask = bool(solo)
        self._show_overlays()

    def set_mask_outlines(self, outlines: bool) -> None:
        """Draw each mask's edge in its colour (True) instead of tinting all of it (False)."""
        self._mask_outlines = bool(outlines)
        for overlay in self._overlays.values():
            overlay.set_outline(self._mask_outlines)

    def _show_overlays(self) -> None:
        """An overlay shows while masks are shown, its own is (its row's tick) and, for Show
        Only Active Mask, it is the active one."""
        for layer_id, overlay in self._overlays.items():
            overlay.setVisible(self._masks_visible and overlay.layer.visible
                               and (not self._solo_mask or layer_id == self._active_layer_id))

    # -- result and compare ----------------------------------------------------------------
    def show_result(self, image, box=None) -> None:
        """Show an edit or nothing (None): a PIL image stretched over box (l, t, r, b photo px;
        default the whole photo, for the result at the photo's size)."""
        self._result.set_image(image, box)
        self._set_compare_geometry()

    @property
    def result_visible(self) -> bool:
        return self._result.has_image and self._result.isVisible()

    @property
    def result_item(self) -> ResultItem:
        """What the canvas shows as the result: its `image` and `box` (tests read them)."""
        return self._result

    def set_show_original(self, original: bool) -> None:
        """Toggle compare: hide the result to see the photo as it was."""
        self._show_original = bool(original)
        self._result.setVisible(not original)
        self._set_compare_geometry()

    def set_compare(self, on: bool) -> None:
        """Split compare: original (or `set_before`'s image) left of the divider, the result right of it."""
        self._compare = bool(on)
        self._set_compare_geometry()

    def set_before(self, image, box=None, labels: tuple[str, str] = ("Before", "After")) -> None:
        """What the split shows left of the divider: another result (a PIL image over box, as
        `show_result` takes it) with the two sides' labels, or None for the original photo."""
        self._before.set_image(image, box)
        for badge, text in zip((self.before_label, self.after_label), labels if image is not None else
                               ("Before", "After")):
            badge.setText(text)
            badge.adjustSize()
        self._set_compare_geometry()

    @property
    def before_item(self) -> PictureItem:
        """What the split shows left of the divider when it is not the photo (tests read it)."""
        return self._before

    @property
    def compare(self) -> bool:
        return self._compare

    def set_split(self, fraction: float) -> None:
        self._split_fraction = float(np.clip(fraction, 0.0, 1.0))
        self._set_compare_geometry()

    def _set_compare_geometry(self) -> None:
        if not self._compare or self.doc is None:
            self._result.split_x = None
            self._divider.hide()
        else:
            width, height = self.doc.size
            x = self._split_fraction * width
            self._result.split_x = x
            self._divider.setLine(x, 0, x, height)
            self._divider.show()
        self._before.setVisible(self._compare and self._before.image is not None and not self._show_original)
        self._result.update()
        self._update_badges()

    def _update_badges(self) -> None:
        """Say what is on screen: Before / After either side of the split, or Original while the
        result is hidden (then both sides of a split show the photo)."""
        has_doc = self.doc is not None
        self.original_label.setVisible(has_doc and self._show_original)
        self.before_label.setVisible(has_doc and self._compare and not self._show_original)
        self.after_label.setVisible(has_doc and self._compare and not self._show_original)
        self.before_label.move(BADGE_MARGIN, BADGE_MARGIN)
        self.original_label.move(BADGE_MARGIN, BADGE_MARGIN)
        self.after_label.move(self.viewport().width() - self.after_label.width() - BADGE_MARGIN, BADGE_MARGIN)

    # -- zoom and pan ----------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        self._fit_mode = True
        if self._photo_item is not None:
            self.fitInView(self._photo_item.boundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._zoom_changed()

    def actual_size(self) -> None:
        """100 %: one photo pixel per screen pixel, centred where the view was."""
        self._fit_mode = False
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(centre)
        self._zoom_changed()

    def zoom_by(self, factor: float) -> None:
        self._fit_mode = False
        target = float(np.clip(self.zoom * factor, MIN_ZOOM, MAX_ZOOM))
        self.scale(target / self.zoom, target / self.zoom)
        self._zoom_changed()

    def _zoom_changed(self) -> None:
        self._update_cursor(None)
        self.zoomChanged.emit(self.zoom)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_badges()
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps)
        event.accept()

    # -- tools -------------------------------------------------------------------------
    def set_tool(self, tool: Tool | str | None) -> None:
        self.tool = None if tool is None else Tool(tool)
        self._cancel_selection()
        self._update_cursor(None)

    @property
    def brush_radius(self) -> float:
        """What the document's brush takes."""
        return self.brush_diameter / 2

    def set_brush(self, diameter: float | None = None, hardness: float | None = None) -> None:
        if diameter is not None:
            self.brush_diameter = float(np.clip(diameter, 1.0, MAX_BRUSH))
        if hardness is not None:
            self.brush_hardness = float(np.clip(hardness, 0.0, 1.0))
        self._update_cursor(None)

    def _can_paint(self) -> bool:
        """Whether the left button works on the active mask (any tool, brush to wand)."""
        return (self.doc is not None and self.tool is not None and self.active_layer_id is not None
                and not self._compare)

    def _update_cursor(self, scene_pos: QPointF | None) -> None:
        if scene_pos is not None:
            self._mouse_scene_pos = scene_pos
        scene_pos = self._mouse_scene_pos
        show = self._can_paint() and not self._space and scene_pos is not None and self.underMouse()
        r = self.brush_radius
        for item in self._cursor_items:
            if scene_pos is not None:
                item.setRect(QRectF(scene_pos.x() - r, scene_pos.y() - r, 2 * r, 2 * r))
            item.setVisible(show and self.tool in BRUSHES)
        if self._space or self._panning is not None:
            shape = Qt.CursorShape.ClosedHandCursor if self._panning is not None else Qt.CursorShape.OpenHandCursor
        elif self._compare:
            shape = Qt.CursorShape.SplitHCursor
        else:
            shape = Qt.CursorShape.CrossCursor if show else Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(shape)

    def _color_cursor(self) -> None:
        """The brush outline in the active instruction's colour: which mask it paints is plain."""
        overlay = self._overlays.get(self._active_layer_id)
        color = QColor(*overlay.layer.color) if overlay is not None else QColor("#ffffff")
        self._cursor_items[1].setPen(_cosmetic_pen(color, CURSOR_WIDTH))

    def _begin_stroke(self, erase: bool | None = None) -> None:
        """A document stroke on the active mask with the brush's size and hardness (erasing
        with the eraser, unless told)."""
        erase = self.tool is Tool.ERASER if erase is None else erase
        self.doc.begin_stroke(self.active_layer_id, erase=erase, radius=self.brush_radius,
                              hardness=self.brush_hardness)

    def paint_stroke(self, points, erase: bool | None = None) -> None:
        """Paint a stroke through photo-pixel points as one undo item (what a drag does)."""
        self._begin_stroke(erase)
        try:
            for x, y in points:
                self.doc.stroke_to(float(x), float(y))
        finally:
            self.doc.end_stroke()

    # -- selections ------------------------------------------------------------------------
    @staticmethod
    def selection_mode(modifiers) -> str:
        """As in Krita: Shift adds to the mask, Alt subtracts, no key replaces it."""
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return "add"
        if modifiers & Qt.KeyboardModifier.AltModifier:
            return "subtract"
        return "replace"

    def _start_selection(self, pos: QPointF, modifiers) -> None:
        point = (pos.x(), pos.y())
        if self.tool is Tool.WAND:
            self.doc.select_similar(self.active_layer_id, *point, self.wand_tolerance, self.selection_mode(modifiers))
        elif self._selecting is None:
            # Two points: the start and the one following the mouse.
            self._selecting = {"tool": self.tool, "mode": self.selection_mode(modifiers), "points": [point, point]}
        else:  # a polygon's next corner, where the point following the mouse was; a new one follows
            self._selecting["points"][-1:] = [point, point]
        self._show_band()

    def _drag_selection(self, pos: QPointF) -> None:
        points = self._selecting["points"]
        if self._selecting["tool"] is Tool.LASSO:
            points.append((pos.x(), pos.y()))
        else:
            points[-1] = (pos.x(), pos.y())
        self._show_band()

    def _finish_selection(self, drop_last: bool = False) -> None:
        """Apply the shape to the active mask. drop_last: the point following the mouse is no
        corner (a polygon closed by a double click)."""
        drawn, self._selecting = self._selecting, None
        self._show_band()
        if not self._can_paint():  # the instruction went away while drawing
            return
        tool, points = drawn["tool"], drawn["points"][:-1] if drop_last else drawn["points"]
        size = self.doc.size
        if tool in (Tool.RECTANGLE, Tool.ELLIPSE):
            draw = selection.rectangle if tool is Tool.RECTANGLE else selection.ellipse
            region = draw(size, points[0], points[-1])
        else:
            region = selection.polygon(size, points)
        self.doc.select(self.active_layer_id, region, drawn["mode"], SHAPES[tool])

    def _cancel_selection(self) -> None:
        self._selecting = None
        self._show_band()

    def _show_band(self) -> None:
        """Outline the shape being drawn (or hide the outline when there is none)."""
        path = QPainterPath()
        if self._selecting is not None:
            points = [QPointF(*point) for point in self._selecting["points"]]
            box = QRectF(points[0], points[-1]).normalized()
            if self._selecting["tool"] is Tool.RECTANGLE:
                path.addRect(box)
            elif self._selecting["tool"] is Tool.ELLIPSE:
                path.addEllipse(box)
            else:
                path.addPolygon(QPolygonF(points))
                path.closeSubpath()
        for item in self._band_items:
            item.setPath(path)
            item.setVisible(self._selecting is not None)

    @property
    def selecting(self) -> bool:
        """Whether a shape is being drawn (a polygon stays open until a double click)."""
        return self._selecting is not None

    # -- mouse and keys ----------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._panning = event.position()
            self._update_cursor(None)
        elif button == Qt.MouseButton.LeftButton and self._compare and self.doc is not None:
            self._dragging_split = True
            self._move_split(event.position())
        elif button == Qt.MouseButton.LeftButton and self._can_paint() and self.tool not in BRUSHES:
            self._start_selection(self.mapToScene(event.position().toPoint()), event.modifiers())
        elif button == Qt.MouseButton.LeftButton and self._can_paint():
            self._painting = True
            pos = self.mapToScene(event.position().toPoint())
            self._begin_stroke()
            self.doc.stroke_to(pos.x(), pos.y())
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        pos = self.mapToScene(event.position().toPoint())
        if self._panning is not None:
            delta = event.position() - self._panning
            self._panning = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
        elif self._dragging_split:
            self._move_split(event.position())
        elif self._painting:
            self.doc.stroke_to(pos.x(), pos.y())
        elif self._selecting is not None:
            self._drag_selection(pos)
        self._update_cursor(pos)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._panning is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._panning = None
        elif self._dragging_split:
            self._dragging_split = False
        elif self._painting and event.button() == Qt.MouseButton.LeftButton:
            self._painting = False
            self.doc.end_stroke()
        elif (self._selecting is not None and self._selecting["tool"] is not Tool.POLYGON
              and event.button() == Qt.MouseButton.LeftButton):
            self._finish_selection()
        elif self._selecting is None:
            super().mouseReleaseEvent(event)
        self._update_cursor(None)

    def mouseDoubleClickEvent(self, event) -> None:
        """A double click closes the polygon being drawn (its first click added the last corner)."""
        if self._selecting is not None and self._selecting["tool"] is Tool.POLYGON:
            self._finish_selection(drop_last=True)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def viewportEvent(self, event) -> bool:
        if event.type() in PEN_EVENTS and self._pen_paints(event):
            return True
        return super().viewportEvent(event)

    def _pen_paints(self, event) -> bool:
        """Brush and eraser with a pen, its pressure scaling the brush's diameter (never below
        a pixel). Whether the event was taken: what the canvas leaves (a hovering pen, the
        selection tools, panning, the split) Qt hands on as mouse events."""
        kind = event.type()
        if kind == QEvent.Type.TabletPress:
            if (event.button() != Qt.MouseButton.LeftButton or self._space or not self._can_paint()
                    or self.tool not in BRUSHES):
                return False
            self._painting = True
            self._begin_stroke()
        elif not self._painting:
            return False
        pos = self.mapToScene(event.position().toPoint())
        if kind == QEvent.Type.TabletRelease:
            self._painting = False
            self.doc.end_stroke()
        else:
            self.doc.stroke_to(pos.x(), pos.y(), max(self.brush_diameter * event.pressure(), 1.0) / 2)
        self._update_cursor(pos)
        event.accept()
        return True

    def _move_split(self, view_pos: QPointF) -> None:
        x = self.mapToScene(view_pos.toPoint()).x()
        self.set_split(x / max(1, self.doc.size[0]))

    def keyPressEvent(self, event) -> None:
        if not self._space_key(event, held=True):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if not self._space_key(event, held=False):
            super().keyReleaseEvent(event)

    def _space_key(self, event, held: bool) -> bool:
        """The space bar held pans (a drag moves the photo); True when the event was its own."""
        if event.key() != Qt.Key.Key_Space or event.isAutoRepeat():
            return False
        self._space = held
        if not held:
            self._panning = None
        self._update_cursor(None)
        event.accept()
        return True

    def enterEvent(self, event) -> None:
        super().enterEvent(event)
        self._update_cursor(None)

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        for item in self._cursor_items:
            item.hide()

    def focusOutEvent(self, event) -> None:
        self._space = False
        super().focusOutEvent(event)
