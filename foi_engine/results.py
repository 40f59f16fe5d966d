"""What a run returns: `LocateResult` (where each instruction acts) and `EditResult` (the
edited picture and what made it). Plain data, no torch: the remote client (remote.py) builds
the same objects from a server's answer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .photo import WorkingFrame
from .settings import EditSettings, Instruction


@dataclass(frozen=True)
class LocateResult:
    """Where each instruction will act: its grounding map (eq. 2) and mask."""

    maps: list[np.ndarray]  # float32 (h_g, w_g) in [0, 1]
    masks: list[np.ndarray]  # bool (h_g, w_g)
    thresholds: list[float | None]  # τ_i; None for "whole image"
    factor: int  # the grounding factor actually used
    frame: WorkingFrame
    instructions: tuple[Instruction, ...]
    seed: int

    def rethreshold(self, index: int, threshold: float) -> np.ndarray:
        """The mask at another τ, from the cached map: no model call."""
        if self.thresholds[index] is None:
            return np.ones_like(self.masks[index])
        return self.maps[index] >= np.float32(threshold)


@dataclass(frozen=True)
class EditResult:
    image: "PIL.Image.Image"  # noqa: F821 - RGB at frame.size
    masks: list[np.ndarray] | None  # float32 masks the run used (None with focus off)
    grounding: LocateResult | None  # set when the masks were extracted in this run
    settings: EditSettings
    seed: int
    frame: WorkingFrame
    instructions: tuple[Instruction, ...]
    model_name: str
    random_weights: bool
