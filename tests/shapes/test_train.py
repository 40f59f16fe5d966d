"""The training script: same seed, same model; an interrupted run resumes to the same weights."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from foi_engine import EditSettings, FoiEngine, threads
from foi_engine.shapes import train
from foi_engine.shapes.data import make_example
from foi_engine.shapes.evaluate import instructions_of

ARGS = ["--vae-steps", "2", "--vae-batch", "1", "--examples", "6", "--t2i-steps", "2", "--unet-steps", "2",
        "--batch", "2", "--save-every", "1", "--check-every", "0", "--threads", "1"]


@pytest.fixture(autouse=True)
def policy_restored(monkeypatch):
    """train.main puts its thread count in force; other tests expect none."""
    monkeypatch.setattr(threads, "_in_force", None)
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def run(tmp_path, name):
    out = tmp_path / name / "model"
    train.main(ARGS + ["--work", str(tmp_path / name / "work"), "--out", str(out)])
    return load_file(out / "unet" / "diffusion_pytorch_model.safetensors")


def test_an_interrupted_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    straight = run(tmp_path, "straight")

    real_step, calls = train.unet_step, []

    def stop_at_second(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train, "unet_step", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "resumed")
    later = []
    monkeypatch.setattr(train, "unet_step", lambda *args: later.append(1) or real_step(*args))
    resumed = run(tmp_path, "resumed")
    assert len(later) == 3  # the step the interruption lost and the two InstructPix2Pix steps

    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert (tmp_path / "resumed" / "model" / "model_index.json").is_file()


def test_the_2x_vae_gives_32x32_latents_and_masks(tmp_path):
    """--latent-factor 2: twice the latent cells across a shape, and the engine grounds on them."""
    out = tmp_path / "model"
    train.main(ARGS + ["--latent-factor", "2", "--work", str(tmp_path / "work"), "--out", str(out)])
    engine = FoiEngine.from_pretrained(str(out), device="cpu")
    example = make_example(200, "heldout", instructions=1)
    found = engine.locate(Image.fromarray(example.source), instructions_of(example),
                          EditSettings(steps=2, resolution=64, grounding_factor=1), seed=0)
    assert found.masks[0].shape == (32, 32)
    assert np.isfinite(found.masks[0]).all()
