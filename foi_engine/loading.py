"""Finding, downloading and loading an InstructPix2Pix model, safely.

Safetensors only (no pickled weights, which can run code), never remote code; fp16 on
CUDA, fp32 elsewhere; device cuda → mps → cpu unless one is given."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from .catalog import BUNDLED_MODELS, TINY_RANDOM, check_folder
from .errors import ModelError, SettingsError

# What a download skips: pickled weights, half-precision duplicates, the safety checker.
IGNORED_FILES = ["*.bin", "*.ckpt", "*.pt", "*.pth", "*.msgpack", "*.h5", "*.onnx", "*.fp16.*", "safety_checker/*"]


def choose_device(device: str | None = None) -> torch.device:
    if device:
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise ModelError(f'"{device}" is not a device: use cpu, cuda, cuda:1 or mps.') from None
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("No CUDA graphics card is available here: choose cpu.")
        if chosen.type == "mps" and not torch.backends.mps.is_available():
            raise ModelError("Apple's Metal (mps) is not available here: choose cpu.")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


PRECISIONS = {"float32": torch.float32, "float16": torch.float16}


def choose_dtype(precision: str, device: torch.device) -> torch.dtype:
    """"auto" (fp16 on CUDA, fp32 elsewhere), "float32" or "float16"."""
    if precision == "auto":
        return default_dtype(device)
    if precision not in PRECISIONS:
        raise SettingsError(f'Precision "{precision}" is not one of auto, float32, float16.')
    return PRECISIONS[precision]


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _progress_bar_class(progress):
    """A tqdm class that reports the download's bytes to `progress(done, total, text)`."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            if self.unit == "B":
                progress(self.n, self.total or 0, "Downloading the model")

    return Reporting


def model_folder(model: str, progress=None, download: bool = True) -> Path:
    """A local folder holding the model: the one given, or the hub's cached download
    (fetched first unless offline or download is False)."""
    if model in BUNDLED_MODELS:
        if not BUNDLED_MODELS[model].is_dir():
            raise ModelError(f'The bundled "{model}" model is missing from this installation: reinstall FoI Studio.')
        return BUNDLED_MODELS[model]
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{model} is not a folder: choose the folder that holds the model.")
        return path
    if model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1:
        raise ModelError(f"There is no folder {model}: check the path.")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        folder = snapshot_download(
            model,
            ignore_patterns=IGNORED_FILES,
            local_files_only=offline() or not download,
            tqdm_class=_progress_bar_class(progress) if progress else None,
        )
    except HFValidationError:
        raise ModelError(f'"{model}" is neither a folder nor a model name like "timbrooks/instruct-pix2pix".') from None
    except RepositoryNotFoundError:
        raise ModelError(f'There is no model "{model}" on the Hugging Face hub: check the name.') from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f'The model "{model}" is not downloaded yet and FoI Studio is offline: connect to the '
            "internet once, or choose a folder that holds the model."
        ) from None
    except (HfHubHTTPError, OSError) as error:
        raise ModelError(f'The model "{model}" could not be downloaded ({error}): check the connection.') from None
    return Path(folder)


def load_tokenizer(model: str):
    """The model's tokenizer alone, from files already on this computer (never a download):
    enough to count an instruction's tokens long before the model itself is needed."""
    if model == TINY_RANDOM:
        from .tiny import tiny_tokenizer

        return tiny_tokenizer()
    from transformers import CLIPTokenizer  # what an InstructPix2Pix pipeline loads

    folder = model_folder(model, download=False) / "tokenizer"
    try:
        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # transformers raises many types for missing or damaged files
        raise ModelError(f"{model} has no readable tokenizer ({error}).") from None


def load_pipeline(model: str, device: torch.device, dtype: torch.dtype, progress=None):
    from diffusers import StableDiffusionInstructPix2PixPipeline
    from diffusers.utils.logging import disable_progress_bar
    from transformers.utils.logging import disable_progress_bar as disable_transformers_bar

    folder = model_folder(model, progress)
    check_folder(folder, model)
    if progress:
        progress(0, 0, "Loading the model")
    disable_progress_bar()  # the app and the CLI show their own progress
    disable_transformers_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch_dtype: the name every diffusers < 1 knows
            pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
                folder,
                torch_dtype=dtype,
                use_safetensors=True,
                local_files_only=True,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
    except Exception as error:  # diffusers raises many types for damaged files
        if "remote_code" in str(error) or "custom code" in str(error).lower():
            raise ModelError(f"{model} needs program code of its own to load, which FoI Studio never runs: "
                             "choose a standard InstructPix2Pix model.") from None
        raise ModelError(f"{model} could not be read: a file is damaged or incomplete ({error}).") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
