"""Synthetic shape-editing examples with exact edit masks.

A scene is 1–4 flat-coloured shapes of distinct kinds (so "the circle" names exactly one
thing) on a background (flat, gradient, smooth noise or stripes). An instruction
recolours one shape ("make the circle red") or the background ("make the background
green", a whole-image instruction); a multi-instruction example applies two or three of
them at once, written the way the engine joins them ("A. B"). Every example is a pure
function of (split, index): the training split and the held-out split draw from
different seed streams, so held-out scenes are never seen in training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
    "pink": (250, 130, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
BACKGROUNDS = ("flat", "gradient", "noise", "stripes")
# {0} is the target, {1} the colour. The text encoder is causal, so a word only carries
# what comes before it: in the last three templates the shape's own token also knows the
# colour, the order real captions ("a red circle") use.
TEMPLATES = ("make the {0} {1}", "turn the {0} {1}", "paint the {0} {1}", "change the {0} to {1}",
             "paint {1} on the {0}", "give {1} to the {0}", "{1} for the {0}")
SPLITS = {"train": 0, "heldout": 1}
MULTI_FRACTION = 0.4  # share of examples with two or three instructions
BACKGROUND_EDIT = 0.15  # chance that an edit targets the background


@dataclass(frozen=True)
class Edit:
    text: str
    target: str  # a shape name or "background"
    colour: str
    mask: np.ndarray  # bool (SIZE, SIZE): exactly the pixels this edit changes

    @property
    def keyword(self) -> str | None:
        """The engine's keyword: the shape's word; None (whole image) for the background."""
        return None if self.target == "background" else self.target


@dataclass(frozen=True)
class Example:
    source: np.ndarray  # uint8 (SIZE, SIZE, 3)
    edited: np.ndarray  # uint8 (SIZE, SIZE, 3): every edit applied
    edits: tuple[Edit, ...]
    shapes: dict  # shape name -> bool mask of its pixels in the source

    @property
    def text(self) -> str:
        """The composite instruction, as the engine builds it from the sub-instructions."""
        return ". ".join(edit.text for edit in self.edits)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return xs + 0.5, ys + 0.5  # pixel centres


def _inside_polygon(points: np.ndarray) -> np.ndarray:
    """Pixel centres inside a polygon (even–odd rule)."""
    xs, ys = _grid()
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    for (x0, y0), (x1, y1) in zip(points, np.roll(points, -1, axis=0)):
        crosses = (y0 > ys) != (y1 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xs < x_at)
    return inside


def shape_mask(kind: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Hard-edged (so masks are exact) pixel mask of a shape centred at (cx, cy)."""
    if kind == "circle":
        xs, ys = _grid()
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
    if kind == "square":
        corners, radii = 4, [radius] * 4
    elif kind == "triangle":
        corners, radii = 3, [radius * 1.15] * 3
    else:  # star: ten points alternating outer and inner radius
        corners, radii = 10, [radius * 1.2, radius * 0.5] * 5
    turns = angle + np.arange(corners) * 2 * np.pi / corners
    points = np.stack([cx + np.array(radii) * np.sin(turns), cy - np.array(radii) * np.cos(turns)], axis=1)
    return _inside_polygon(points)


def _background(rng: np.random.Generator, palette: list[str]) -> np.ndarray:
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    first, second = (np.array(COLOURS[c], dtype=np.float64) for c in rng.choice(palette, 2, replace=False))
    # Backgrounds are muted so shapes stand out: mixed halfway towards mid grey.
    first, second = 0.5 * first + 64, 0.5 * second + 64
    xs, ys = _grid()
    if kind == "flat":
        weight = np.zeros((SIZE, SIZE))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        along = (xs - SIZE / 2) * np.cos(angle) + (ys - SIZE / 2) * np.sin(angle)
        weight = (along - along.min()) / (along.max() - along.min())
    elif kind == "noise":
        coarse = rng.uniform(0, 1, (5, 5))
        cells = np.linspace(0, 4, SIZE)
        rows = np.array([np.interp(cells, np.arange(5), row) for row in coarse])
        weight = np.array([np.interp(cells, np.arange(5), col) for col in rows.T]).T
    else:  # stripes
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, 3 * np.pi / 4])
        period = rng.uniform(8, 16)
        along = xs * np.cos(angle) + ys * np.sin(angle)
        weight = ((along // (period / 2)) % 2).astype(np.float64)
    return first * (1 - weight[..., None]) + second * weight[..., None]


def _place(rng: np.random.Generator, kinds: list[str]) -> dict:
    """Non-overlapping shapes (a retry shrinks them); returns name -> mask."""
    masks: dict[str, np.ndarray] = {}
    taken = np.zeros((SIZE, SIZE), dtype=bool)
    for kind in kinds:
        for attempt in range(60):
            radius = rng.uniform(8, 14) * (0.75 if attempt > 30 else 1.0)
            cx, cy = rng.uniform(radius + 1, SIZE - radius - 1, 2)
            mask = shape_mask(kind, cx, cy, radius, rng.uniform(0, 2 * np.pi))
            grown = mask | np.roll(mask, 2, 0) | np.roll(mask, -2, 0) | np.roll(mask, 2, 1) | np.roll(mask, -2, 1)
            if not (grown & taken).any():
                masks[kind] = mask
                taken |= mask
                break
    return masks


def make_example(index: int, split: str = "train", instructions: int | None = None) -> Example:
    """The example `index` of a split; `instructions` forces 1, 2 or 3 edits."""
    rng = np.random.default_rng([SPLITS[split], index])
    names = list(COLOURS)
    count = int(rng.integers(1, 5))
    if instructions is not None:  # enough shapes for the edits asked (the background takes one)
        count = max(count, instructions - 1)
    kinds = [str(k) for k in rng.choice(SHAPES, count, replace=False)]
    background = _background(rng, names)
    shapes = _place(rng, kinds)
    shape_colours = {kind: names[int(rng.integers(len(names)))] for kind in shapes}
    image = background.copy()
    for kind, mask in shapes.items():
        image[mask] = COLOURS[shape_colours[kind]]
    source = np.clip(np.round(image), 0, 255).astype(np.uint8)

    if instructions is None:
        instructions = int(rng.choice([2, 3])) if rng.uniform() < MULTI_FRACTION else 1
    background_mask = ~np.any(list(shapes.values()), axis=0)
    targets = list(shapes)
    rng.shuffle(targets)
    if rng.uniform() < BACKGROUND_EDIT or len(targets) < instructions:
        targets.insert(int(rng.integers(0, min(len(targets), instructions - 1) + 1)), "background")
    targets = targets[:instructions]

    edited = image.copy()
    edits = []
    for target in targets:
        mask = background_mask if target == "background" else shapes[target]
        # A new background never matches a shape's colour, so every shape stays visible.
        taken = set(shape_colours.values()) if target == "background" else {shape_colours[target]}
        colour = str(rng.choice([c for c in names if c not in taken]))
        edited[mask] = COLOURS[colour]
        if target != "background":
            shape_colours[target] = colour
        text = TEMPLATES[rng.integers(len(TEMPLATES))].format(target, colour)
        edits.append(Edit(text, target, str(colour), mask))
    edited = np.clip(np.round(edited), 0, 255).astype(np.uint8)
    return Example(source, edited, tuple(edits), shapes)


def colour_name(pixel) -> str:
    """The palette colour nearest to an RGB value (shapes are painted in palette colours)."""
    distances = {name: np.linalg.norm(np.asarray(rgb, dtype=np.float64) - pixel) for name, rgb in COLOURS.items()}
    return min(distances, key=distances.get)


def caption(image: np.ndarray, shapes: dict, rng: np.random.Generator) -> str:
    """A text-to-image caption naming each shape with its colour, in random order:
    "a red circle and a blue star"."""
    kinds = list(shapes)
    rng.shuffle(kinds)
    return " and ".join(f"a {colour_name(image[shapes[kind]].mean(axis=0))} {kind}" for kind in kinds)


# Picked among held-out scenes 1–60 because FoI beats plain InstructPix2Pix on it, on most seeds (MODEL_CARD.md).
DEMO_SCENE = 25


def demo_scene(index: int = DEMO_SCENE) -> tuple[np.ndarray, list[tuple[str, str | None]]]:
    """A held-out scene and two of its instructions (text, keyword): the editor's sample
    photo when the shapes model is chosen."""
    example = make_example(index, "heldout", instructions=2)
    return example.source, [(edit.text, edit.keyword) for edit in example.edits]
