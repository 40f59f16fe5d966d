"""The models FoI Studio knows by name, the run settings a model folder asks for, and the check
that a folder holds a model at all.

No torch here: the editor and the CLI read these before (or without) loading a model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .errors import ModelError, NotInstructPix2PixError
from .settings import EditSettings

DEFAULT_MODEL = "timbrooks/instruct-pix2pix"
TINY_RANDOM = "tiny-random"
SHAPES = "shapes"
# Models shipped inside the package, by the short name the CLI and the editor accept.
BUNDLED_MODELS = {SHAPES: Path(__file__).resolve().parent / "models" / SHAPES}
# The metric models of `foi eval` (foi_engine.evaluation.models loads them).
CLIP_MODEL = "openai/clip-vit-large-patch14"
DINO_MODEL = "facebook/dinov2-base"
PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
METRIC_NAMES = ("clip", "dino", "pickscore")
# A model folder may carry this file: the EditSettings fields it was trained for
# (the shapes model works at 64 px and reads regions from its finest layers).
SETTINGS_FILE = "foi_settings.json"
COMPONENTS = ("unet", "vae", "text_encoder")


def model_settings(model: str) -> dict:
    """The settings a bundled or local model folder asks for ({} when it asks for none).
    Hub models are not looked up: this must not touch the network."""
    folder = BUNDLED_MODELS.get(model) or Path(model).expanduser()
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"The model's {SETTINGS_FILE} cannot be read ({error}): fix or delete it.") from None
    try:
        return checked_settings(values)
    except UnknownSettings as error:
        raise ModelError(f"The model's {SETTINGS_FILE} names settings FoI Studio does not have: {error}.") from None


class UnknownSettings(ValueError):
    """A model asks for run settings FoI Studio does not have."""


def checked_settings(values) -> dict:
    """Run settings a model asks for (its folder's file, or a server's word for it), checked
    before any run: only EditSettings' names (else UnknownSettings), valid values (else the
    SettingsError that says which)."""
    known = {field.name for field in dataclasses.fields(EditSettings)}
    if not isinstance(values, dict) or not set(values) <= known:
        raise UnknownSettings(f"use only {', '.join(sorted(known))}")
    EditSettings(**values)
    return dict(values)


def check_folder(folder: Path, name: str) -> None:
    """Refuse, before reading any weights, what cannot be an IP2P model in safetensors."""
    if not (folder / "model_index.json").is_file():
        raise ModelError(f"{name} is not a diffusers model folder (it has no model_index.json).")
    missing = [part for part in (*COMPONENTS, "tokenizer", "scheduler") if not (folder / part).is_dir()]
    if missing:
        raise ModelError(f"{name} lacks its {', '.join(missing)} folder{'s' if len(missing) > 1 else ''}: "
                         "the download or copy is incomplete.")
    for component in COMPONENTS:
        files = list((folder / component).glob("*")) if (folder / component).is_dir() else []
        if not any(f.suffix == ".safetensors" for f in files):
            if any(f.suffix in (".bin", ".ckpt", ".pt") for f in files):
                raise ModelError(
                    f"{name} has its {component} only as pickled .bin weights, which can run code when "
                    "loaded; FoI Studio loads only .safetensors: convert the model or choose another."
                )
            raise ModelError(f"{name} has no {component} weights (.safetensors): the download is incomplete.")
    try:
        in_channels = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))["in_channels"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{name} has no readable unet/config.json ({error}).") from None
    if isinstance(in_channels, bool) or not isinstance(in_channels, int):
        raise ModelError(f"{name} has a damaged unet/config.json (in_channels is {in_channels!r}, not a number).")
    if in_channels != 8:
        raise NotInstructPix2PixError(
            f"{name} is not an InstructPix2Pix model (its UNet takes {in_channels} input channels, not 8): "
            "choose an instruction-editing model such as timbrooks/instruct-pix2pix."
        )


def is_server_url(choice: str) -> bool:
    """Whether a model choice names a FoI Studio server (`foi serve`) rather than a model:
    an http:// or https:// address with a host."""
    from urllib.parse import urlsplit

    if not isinstance(choice, str):
        return False
    try:
        parts = urlsplit(choice.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_loopback(host: str) -> bool:
    """Whether a host name or address is this computer only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve to anything
