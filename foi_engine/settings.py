"""The two request objects of the engine: one `Instruction` per sub-instruction and the
`EditSettings` of a run. Both are frozen and validate themselves at construction, so an
invalid value never reaches the sampler (DESIGN.md §3)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InstructionError, SettingsError

OUTSIDE_TOKENS = ("union", "instruction", "null")


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{name} must be a number, not {value!r}.")
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, not {value!r}.")
    return float(value)


def _whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be a whole number, not {value!r}.")
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}.")
    return value


def _fraction(name: str, value) -> float:
    value = _finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name} must lie between 0 and 1, not {value}.")
    return value


@dataclass(frozen=True)
class Instruction:
    """One sub-instruction T_i with its keyword e_i, its strength α_i and threshold τ_i.

    keyword=None means "whole image": its mask is all ones.
    threshold=None means "draw τ from [0.4, 0.7] with the run's seed" (paper §5.1)."""

    text: str
    keyword: str | None = None
    strength: float = 1.0
    threshold: float | None = None

    def __post_init__(self):
        if not isinstance(self.text, str):
            raise InstructionError(f"An instruction must be text, not {type(self.text).__name__}.")
        if not self.text.strip():
            raise InstructionError("An instruction is empty: write what should change, or remove it.")
        if self.keyword is not None:
            if not isinstance(self.keyword, str) or not self.keyword.strip():
                raise InstructionError(
                    f'The keyword of "{self.text.strip()}" is empty: pick a word of the instruction, '
                    "or use the whole image."
                )
        try:
            _finite("Strength", self.strength)
            if self.threshold is not None:
                _fraction("Threshold", self.threshold)
        except SettingsError as error:
            raise InstructionError(f'"{self.text.strip()}": {error}') from None


@dataclass(frozen=True)
class EditSettings:
    """Sampler settings; defaults are the paper's (§5.1)."""

    steps: int = 100
    strength: float = 0.8
    image_guidance: float = 1.5
    text_guidance: float = 7.5
    gamma: int = 3
    grounding_factor: int = 4
    disentangle_until: float = 0.75
    modulate_until: float = 1.0
    outside_tokens: str = "union"
    focus: bool = True
    resolution: int = 512

    def __post_init__(self):
        _whole("Steps", self.steps, 1)
        strength = _finite("Strength", self.strength)
        if not 0.0 < strength <= 1.0:
            raise SettingsError(f"Strength must be above 0 and at most 1, not {strength}.")
        if self.denoising_steps == 0:
            raise SettingsError(
                f"With {self.steps} steps at strength {strength} no step would run: "
                "raise the steps or the strength."
            )
        _finite("Image guidance", self.image_guidance)
        _finite("Text guidance", self.text_guidance)
        _whole("Gamma", self.gamma, 0)
        factor = _whole("Grounding factor", self.grounding_factor, 1)
        if factor & (factor - 1):
            raise SettingsError(f"Grounding factor must be a power of two (1, 2, 4, 8…), not {factor}.")
        _fraction("Disentangle until", self.disentangle_until)
        _fraction("Modulate until", self.modulate_until)
        if self.outside_tokens not in OUTSIDE_TOKENS:
            raise SettingsError(
                f"Outside tokens must be one of {', '.join(OUTSIDE_TOKENS)}, not {self.outside_tokens!r}."
            )
        if not isinstance(self.focus, bool):
            raise SettingsError(f"Focus must be True or False, not {self.focus!r}.")
        _whole("Resolution", self.resolution, 64)

    @property
    def denoising_steps(self) -> int:
        """K: the steps that run (diffusers' img2img rule)."""
        return min(int(self.steps * self.strength), self.steps)

    def steps_until(self, fraction: float) -> int:
        """n(f) = floor(f·K + 0.5): a fraction of K, rounded half up."""
        return math.floor(fraction * self.denoising_steps + 0.5)
