"""The training script: same seed, same model; an interrupted run resumes to the same weights."""

import pytest
import torch
from safetensors.torch import load_file

from foi_engine.shapes import train

ARGS = ["--vae-steps", "2", "--vae-batch", "1", "--examples", "6", "--t2i-steps", "2", "--unet-steps", "2",
        "--batch", "2", "--save-every", "1", "--check-every", "0"]


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
