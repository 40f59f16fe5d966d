"""The real loading path, on a tiny model saved to disk."""

import json

import numpy as np
import pytest

from foi_engine import EditSettings, FoiEngine, Instruction, ModelError, NotInstructPix2PixError, SettingsError
from foi_engine.tiny import tiny_random_pipeline


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "tiny-ip2p"
    tiny_random_pipeline(0).save_pretrained(folder, safe_serialization=True)
    return folder


def test_saved_model_loads_and_edits_like_the_original(saved, photo):
    engine = FoiEngine.from_pretrained(str(saved), device="cpu")
    assert engine.device == "cpu" and engine.model_name == str(saved)
    assert not engine.random_weights  # a folder is a model like any other
    settings = EditSettings(steps=4, resolution=64)
    loaded = engine.edit(photo, [Instruction("make the cat a tiger", "cat")], settings, seed=1).image
    original = FoiEngine(tiny_random_pipeline(0)).edit(photo, [Instruction("make the cat a tiger", "cat")],
                                                       settings, seed=1).image
    assert np.array_equal(np.asarray(loaded), np.asarray(original))


def test_bin_only_model_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    tiny_random_pipeline(0).save_pretrained(folder, safe_serialization=False)
    with pytest.raises(ModelError, match="only as pickled .bin weights"):
        FoiEngine.from_pretrained(str(folder), device="cpu")


def test_model_that_is_not_instruct_pix2pix_is_refused(saved, tmp_path):
    import shutil

    folder = tmp_path / "four-channels"
    shutil.copytree(saved, folder)
    config_path = folder / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["in_channels"] = 4
    config_path.write_text(json.dumps(config))
    with pytest.raises(NotInstructPix2PixError, match="not an InstructPix2Pix model"):
        FoiEngine.from_pretrained(str(folder), device="cpu")


def test_damaged_weights_are_reported(saved, tmp_path):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(saved, folder)
    weights = next((folder / "unet").glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="damaged or incomplete"):
        FoiEngine.from_pretrained(str(folder), device="cpu")


def test_missing_folder_and_non_model_folder(tmp_path):
    with pytest.raises(ModelError, match="There is no folder"):
        FoiEngine.from_pretrained(str(tmp_path / "nowhere" / "model"), device="cpu")
    with pytest.raises(ModelError, match="no model_index.json"):
        FoiEngine.from_pretrained(str(tmp_path), device="cpu")


def test_hub_model_offline_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ModelError, match="not downloaded yet and FoI Studio is offline"):
        FoiEngine.from_pretrained("timbrooks/instruct-pix2pix", device="cpu")


def test_unknown_device_is_refused():
    with pytest.raises(ModelError, match="not a device"):
        FoiEngine.from_pretrained("tiny-random", device="toaster")
    with pytest.raises(ModelError, match="No CUDA"):
        FoiEngine.from_pretrained("tiny-random", device="cuda")


def test_precision_is_chosen_by_name():
    import torch

    assert FoiEngine.from_pretrained("tiny-random", device="cpu").pipe.unet.dtype == torch.float32  # auto on a CPU
    assert FoiEngine.from_pretrained("tiny-random", device="cpu", precision="float16").pipe.unet.dtype == torch.float16
    with pytest.raises(SettingsError, match="not one of auto, float32, float16"):
        FoiEngine.from_pretrained("tiny-random", device="cpu", precision="half")


def test_the_tokenizer_alone_counts_as_the_loaded_model_does(saved, monkeypatch):
    """The editor counts tokens with the tokenizer alone until the model is needed."""
    import huggingface_hub

    from foi_engine.loading import load_tokenizer
    from foi_engine.prompt import count_tokens

    instructions = [Instruction("make the cat a tiger", "cat"), Instruction("turn the sky into a stormy night")]
    for model in ("tiny-random", str(saved), "shapes"):
        expected = FoiEngine.from_pretrained(model, device="cpu").count_tokens(instructions)
        assert count_tokens(load_tokenizer(model), instructions) == expected
    # A hub model is read only from the cache: counting never starts a download.
    asked = []

    def not_downloaded(*args, **kwargs):
        asked.append(kwargs["local_files_only"])
        raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_downloaded)
    with pytest.raises(ModelError):
        load_tokenizer("timbrooks/instruct-pix2pix")
    assert asked == [True]
