"""Tiny random CLIP, DINOv2 and PickScore-shaped models, built in-process and saved as
safetensors folders, so the metric code runs its real loading path with no download."""

import pytest
from PIL import Image

from foi_engine.tiny import tiny_tokenizer

TOWER = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)


def save_tiny_clip(folder, seed, image_size=32, with_processor=False):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = tiny_tokenizer()
    config = CLIPConfig(
        text_config=dict(TOWER, vocab_size=len(tokenizer), max_position_embeddings=77,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(TOWER, image_size=image_size, patch_size=8),
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if with_processor:
        images = CLIPImageProcessor(size={"shortest_edge": image_size},
                                    crop_size={"height": image_size, "width": image_size})
        CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_dino(folder, seed):
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(**TOWER, image_size=32, patch_size=8))
    model.save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}, do_center_crop=True,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def metric_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("metric-models")
    return {
        "clip_model": str(save_tiny_clip(root / "clip", seed=1)),
        "dino_model": str(save_tiny_dino(root / "dino", seed=2)),
        "pickscore_model": str(save_tiny_clip(root / "pickscore", seed=3, with_processor=True)),
        "pickscore_processor": str(root / "pickscore"),
    }


@pytest.fixture(scope="session")
def metric_models(metric_folders):
    from foi_engine.evaluation.models import MetricModels

    return MetricModels.load(device="cpu", **metric_folders)


@pytest.fixture(scope="session")
def photos():
    """Three public-domain photos shipped with scikit-image, small."""
    from skimage import data

    return {name: Image.fromarray(getattr(data, name)()).convert("RGB").resize((128, 96), Image.Resampling.LANCZOS)
            for name in ("chelsea", "coffee", "astronaut")}
