"""Shared test set-up: never touch the network, never open a window."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="session")
def tiny_engine():
    from foi_engine import FoiEngine

    return FoiEngine.from_pretrained("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def photo():
    """A real photo (public domain, shipped with scikit-image), 128×96 to keep runs short."""
    from skimage import data

    return Image.fromarray(data.chelsea()).resize((128, 96), Image.Resampling.LANCZOS)


@pytest.fixture
def capture_latents(monkeypatch):
    """Records the final latents each edit decodes, to compare runs in float."""

    def install(engine):
        seen = []
        vae = engine.pipe.vae
        original = vae.decode

        def decode(latents, *args, **kwargs):
            seen.append(latents.clone())
            return original(latents, *args, **kwargs)

        monkeypatch.setattr(vae, "decode", decode)
        return seen

    return install


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)
