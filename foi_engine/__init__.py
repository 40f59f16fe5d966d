"""FoI Studio's engine: Focus on Your Instruction on diffusers' InstructPix2Pix.

Only torch, diffusers and transformers below this package; never Qt."""

import os

# The libraries' notices (optional backends, dtype hints) mean nothing to a photographer;
# set these variables yourself to see them.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from .errors import (
    BusyError,
    Cancelled,
    FoiError,
    InstructionError,
    MaskError,
    ModelError,
    NotInstructPix2PixError,
    OutOfMemoryError,
    PhotoError,
    SettingsError,
)
from .settings import EditSettings, Instruction

__all__ = [
    "BusyError",
    "Cancelled",
    "EditResult",
    "EditSettings",
    "FoiEngine",
    "FoiError",
    "Instruction",
    "InstructionError",
    "LocateResult",
    "MaskError",
    "ModelError",
    "NotInstructPix2PixError",
    "OutOfMemoryError",
    "PhotoError",
    "SettingsError",
    "tiny_random_pipeline",
]


def __getattr__(name):
    # torch and diffusers load only when the engine is used, so the app and the CLI
    # start fast and `foi --help` answers at once.
    if name == "FoiEngine":
        from .engine import FoiEngine

        return FoiEngine
    if name in ("LocateResult", "EditResult"):
        from . import results

        return getattr(results, name)
    if name == "tiny_random_pipeline":
        from .tiny import tiny_random_pipeline

        return tiny_random_pipeline
    raise AttributeError(f"module 'foi_engine' has no attribute {name!r}")
