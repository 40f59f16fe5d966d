"""Metric models (tiny random CLIP / DINOv2 / PickScore built in-process): the numbers
follow from the embeddings as documented, and loading fails with one clear line."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from foi_engine.errors import ModelError
from foi_engine.evaluation import quality
from foi_engine.evaluation.models import OPENAI_MEAN, OPENAI_STD, MetricModels
from foi_engine.evaluation.runner import measure
from foi_engine.evaluation.manifest import parse_item

from eval_helpers import noisy


def test_identical_images_give_clip_i_and_dino_i_of_one(metric_models, photos):
    item = parse_item({"id": "x", "image": "x.png", "instructions": ["make the cat a dog"]})
    values = measure(metric_models, item, None, photos["chelsea"], photos["chelsea"].copy(), None, None)
    assert values["clip_i"] == pytest.approx(1.0, abs=1e-9)
    assert values["dino_i"] == pytest.approx(1.0, abs=1e-9)
    other = measure(metric_models, item, None, photos["chelsea"], photos["coffee"], None, None)
    assert other["clip_i"] < 0.9999 and other["dino_i"] < 0.9999


def _clip_by_hand(models, image):
    """IP2P's recipe written out: [0,1] tensor, bicubic resize to the tower's size, OpenAI norm."""
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=models.clip.config.vision_config.image_size, mode="bicubic", align_corners=False)
    x = (x - torch.tensor(OPENAI_MEAN)[:, None, None]) / torch.tensor(OPENAI_STD)[:, None, None]
    with torch.no_grad():
        return models.clip.get_image_features(pixel_values=x).pooler_output[0].double().numpy()


def test_clip_direction_is_the_cosine_of_the_image_and_caption_changes(metric_models, photos):
    before, after = photos["chelsea"], noisy(photos["chelsea"], 60)
    item = parse_item({"id": "x", "image": "x.png", "instructions": ["make the cat a dog"],
                       "input_caption": "a cat on a bed", "output_caption": "a dog on a bed"})
    values = measure(metric_models, item, None, before, after, None, None)
    texts = metric_models.clip_texts([item.input_caption, item.output_caption])
    by_hand = [_clip_by_hand(metric_models, im) for im in (before, after)]
    by_hand = [v / np.linalg.norm(v) for v in by_hand]
    image_change, text_change = by_hand[1] - by_hand[0], texts[1] - texts[0]
    expected = image_change @ text_change / np.linalg.norm(image_change) / np.linalg.norm(text_change)
    assert values["clip_d"] == pytest.approx(expected, abs=1e-6)
    assert values["clip_i"] == pytest.approx(by_hand[0] @ by_hand[1], abs=1e-6)
    # Reversing the captions reverses the direction; reversing both edits keeps it.
    swapped = parse_item({**item.to_json(), "input_caption": item.output_caption,
                          "output_caption": item.input_caption})
    assert measure(metric_models, swapped, None, before, after, None, None)["clip_d"] == pytest.approx(-expected, abs=1e-6)
    assert measure(metric_models, swapped, None, after, before, None, None)["clip_d"] == pytest.approx(expected, abs=1e-6)


def test_clip_direction_of_a_known_direction_in_embedding_space(metric_models, photos):
    """Captions whose embedding change is, by construction, the image change give CLIP-D = 1."""
    before, after = photos["chelsea"], photos["coffee"]
    images = metric_models.clip_images([before, after])
    assert quality.directional(images[0], images[1], images[0], images[1]) == pytest.approx(1.0)
    assert quality.directional(images[0], images[1], images[1], images[0]) == pytest.approx(-1.0)


def test_pickscore_is_logit_scale_times_cosine(metric_models, photos):
    image = photos["coffee"]
    processor, model = metric_models.pickscore_processor, metric_models.pickscore
    with torch.no_grad():
        pixels = processor(images=[image], return_tensors="pt").pixel_values
        tokens = processor(text=["a cup of coffee"], padding=True, return_tensors="pt")
        i = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        t = F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
        expected = float(model.logit_scale.exp() * (i @ t.T))
    assert metric_models.pickscores([image], "a cup of coffee")[0] == pytest.approx(expected, rel=1e-5)


def test_missing_or_pickled_metric_model_is_one_clear_line(tmp_path, metric_folders):
    with pytest.raises(ModelError) as missing:
        MetricModels.load(["clip"], clip_model="nobody/no-such-clip-model")
    message = str(missing.value)
    assert "CLIP" in message and "offline" in message and "\n" not in message
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelError, match="only safetensors"):
        MetricModels.load(["dino"], dino_model=str(pickled))
    only_dino = MetricModels.load(["dino"], dino_model=metric_folders["dino_model"])
    assert only_dino.clip is None and only_dino.dino is not None
