"""The two request objects of the engine: one `Instruction` per sub-instruction and the
`EditSettings` of a run. Both are frozen and validate themselves at construction, so an
invalid value never reaches the sampler (docs/ALGORITHM.md §11 "Requests, switches and
ranges")."""

from __future__ import annotations

import math
import numbers
import unicodedata
from dataclasses import dataclass

from .errors import InstructionError, MaskError, SettingsError

OUTSIDE_TOKENS = ("union", "instruction", "null")
# Every number a user can set, with the range the CLI and the editor both accept. Wider
# values are refused before any model loads: they only cost time or memory, or turn the
# result into noise (guidance ±1e30 paints black).
RANGES = {
    "steps": (1, 1000),
    "strength": (0.0, 1.0),  # above 0
    "image_guidance": (0.0, 20.0),
    "text_guidance": (0.0, 50.0),
    "gamma": (0, 20),
    "grounding_factor": (1, 64),  # a power of two
    "resolution": (64, 2048),
    "instruction_strength": (0.0, 10.0),  # α
    "threshold": (0.0, 1.0),  # τ
}
MAX_INSTRUCTION_CHARACTERS = 1000
MAX_INSTRUCTIONS = 6  # in one edit
MAX_SEED = 2**63 - 1


def _finite(name: str, value, key: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{name} must be a number, not {value!r}.")
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, not {value!r}.")
    if key is not None:
        low, high = RANGES[key]
        if not low <= value <= high:
            raise SettingsError(f"{name} must lie between {low:g} and {high:g}, not {value:g}.")
    return float(value)


def _whole(name: str, value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{name} must be a whole number, not {value!r}.")
    low, high = RANGES[key]
    if not low <= value <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {value}.")
    return value


def _clean_text(text: str) -> str:
    """Line breaks and tabs become spaces; other control characters and bytes that were not
    valid UTF-8 (which Python keeps as lone surrogates) are refused: they cannot be shown,
    tokenized or written into a layer name."""
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    for character in text:
        if 0xD800 <= ord(character) <= 0xDFFF:
            raise InstructionError("An instruction holds bytes that are not valid text (UTF-8): retype it.")
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise InstructionError(f"An instruction holds the control character U+{ord(character):04X}: remove it.")
    if len(text) > MAX_INSTRUCTION_CHARACTERS:
        raise InstructionError(f"An instruction is {len(text)} characters long; write at most "
                               f"{MAX_INSTRUCTION_CHARACTERS} (the model reads only the first few dozen words).")
    return text


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
        object.__setattr__(self, "text", _clean_text(self.text))
        if not self.text.strip():
            raise InstructionError("An instruction is empty: write what should change, or remove it.")
        if self.keyword is not None:
            if not isinstance(self.keyword, str) or not self.keyword.strip():
                raise InstructionError(
                    f'The keyword of "{self.text.strip()}" is empty: pick a word of the instruction, '
                    "or use the whole image."
                )
            object.__setattr__(self, "keyword", _clean_text(self.keyword))
        try:
            _finite("Strength", self.strength, "instruction_strength")
            if self.threshold is not None:
                _finite("Threshold", self.threshold, "threshold")
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
        _whole("Steps", self.steps, "steps")
        strength = _finite("Strength", self.strength)
        if not 0.0 < strength <= 1.0:
            raise SettingsError(f"Strength must be above 0 and at most 1, not {strength}.")
        if self.denoising_steps == 0:
            raise SettingsError(
                f"With {self.steps} steps at strength {strength} no step would run: "
                "raise the steps or the strength."
            )
        _finite("Image guidance", self.image_guidance, "image_guidance")
        _finite("Text guidance", self.text_guidance, "text_guidance")
        _whole("Gamma", self.gamma, "gamma")
        factor = _whole("Grounding factor", self.grounding_factor, "grounding_factor")
        if factor & (factor - 1):
            raise SettingsError(f"Grounding factor must be a power of two (1, 2, 4, 8…), not {factor}.")
        _finite("Disentangle until", self.disentangle_until, "threshold")
        _finite("Modulate until", self.modulate_until, "threshold")
        if self.outside_tokens not in OUTSIDE_TOKENS:
            raise SettingsError(
                f"Outside tokens must be one of {', '.join(OUTSIDE_TOKENS)}, not {self.outside_tokens!r}."
            )
        if not isinstance(self.focus, bool):
            raise SettingsError(f"Focus must be True or False, not {self.focus!r}.")
        _whole("Resolution", self.resolution, "resolution")

    @property
    def denoising_steps(self) -> int:
        """K: the steps that run (diffusers' img2img rule)."""
        return min(int(self.steps * self.strength), self.steps)

    def steps_until(self, fraction: float) -> int:
        """n(f) = floor(f·K + 0.5): a fraction of K, rounded half up."""
        return math.floor(fraction * self.denoising_steps + 0.5)


def check_mask_count(count: int, instructions) -> None:
    """One mask per instruction, or none at all."""
    if count != len(instructions):
        raise MaskError(f"Got {count} masks for {len(instructions)} instructions: give one per instruction.")


def check_request(instructions, settings, seed) -> tuple[Instruction, ...]:
    """A run's instructions (one, or up to MAX_INSTRUCTIONS), settings and seed, checked the
    same way wherever the run will happen: in this process or on a server."""
    if isinstance(instructions, Instruction):
        instructions = [instructions]
    instructions = tuple(instructions)
    if not instructions:
        raise InstructionError("Write at least one instruction.")
    if len(instructions) > MAX_INSTRUCTIONS:
        raise InstructionError(
            f"{len(instructions)} instructions is too many for one edit: use at most {MAX_INSTRUCTIONS}."
        )
    for instruction in instructions:
        if not isinstance(instruction, Instruction):
            raise InstructionError(f"Expected an Instruction, got {type(instruction).__name__}.")
    if not isinstance(settings, EditSettings):
        raise SettingsError(f"Expected EditSettings, got {type(settings).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise SettingsError(f"The seed must be a whole number from 0 to 2⁶³−1, not {seed!r}.")
    return instructions
