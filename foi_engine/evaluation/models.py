"""The metric models: CLIP (CLIP-I, CLIP-D, CLIP-T), DINOv2 (Dino-I) and PickScore.

They load like the engine's model: safetensors only, never remote code, from a local folder
or the hub (offline-safe: HF_HUB_OFFLINE=1 uses the cache and says so when a model is missing).
Preprocessing, per metric (docs/EVALUATION.md explains the choices):
- CLIP: InstructPix2Pix's metrics/clip_similarity.py: the RGB image in [0,1] resized (squashed,
  no crop) to the vision tower's size with bicubic interpolation, then OpenAI's mean/std;
  captions tokenized with truncation to 77 tokens; projected embeddings, L2-normalised.
- DINOv2: the model's own image processor (resize shorter side 256, centre crop 224, ImageNet
  mean/std); the pooled CLS embedding (after the final layer norm).
- PickScore: its CLIP-H processor (resize shorter side 224, centre crop); score =
  logit_scale.exp() · cos(text, image), the number the PickScore authors' example computes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import CLIP_MODEL, DINO_MODEL, METRIC_NAMES, PICKSCORE_MODEL, PICKSCORE_PROCESSOR  # noqa: F401
from ..errors import ModelError

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _features(output) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _folder(model_id: str, what: str):
    from ..loading import model_folder

    try:
        folder = model_folder(model_id)
    except ModelError as error:
        raise ModelError(f"{what}: {error}") from None
    if not any(folder.glob("*.safetensors")):
        raise ModelError(
            f"{what}: {model_id} has no .safetensors weights; FoI Studio loads only safetensors "
            "(pickled .bin files can run code): convert it, or choose another copy."
        )
    return folder


def _load(loader, source, model_id: str, what: str, **kwargs):
    try:
        return loader.from_pretrained(source, **kwargs)
    except Exception as error:  # transformers raises many types for damaged, missing or foreign files
        from ..loading import offline

        if offline() and isinstance(error, OSError):
            raise ModelError(f"{what}: {model_id} is not downloaded yet and FoI Studio is offline: connect once, "
                             "or give a folder that holds it.") from None
        raise ModelError(f"{what}: {model_id} could not be read ({error}).") from None


@dataclass
class MetricModels:
    """Loaded metric models; any of them may be None (that metric is then left empty)."""

    clip: object = None
    clip_tokenizer: object = None
    dino: object = None
    dino_processor: object = None
    pickscore: object = None
    pickscore_processor: object = None
    device: str = "cpu"

    @classmethod
    def load(cls, which=METRIC_NAMES, device: str = "cpu", clip_model: str = CLIP_MODEL,
             dino_model: str = DINO_MODEL, pickscore_model: str = PICKSCORE_MODEL,
             pickscore_processor: str = PICKSCORE_PROCESSOR) -> "MetricModels":
        from transformers import AutoImageProcessor, AutoModel, AutoProcessor, AutoTokenizer, CLIPModel

        models = cls(device=device)
        if "clip" in which:
            what = "CLIP (CLIP-I, CLIP-D)"
            folder = _folder(clip_model, what)
            models.clip = _load(CLIPModel, folder, clip_model, what, use_safetensors=True)
            models.clip_tokenizer = _load(AutoTokenizer, folder, clip_model, what)
        if "dino" in which:
            what = "DINOv2 (Dino-I)"
            folder = _folder(dino_model, what)
            models.dino = _load(AutoModel, folder, dino_model, what, use_safetensors=True)
            models.dino_processor = _load(AutoImageProcessor, folder, dino_model, what)
        if "pickscore" in which:
            what = "PickScore"
            models.pickscore = _load(CLIPModel, _folder(pickscore_model, what), pickscore_model, what,
                                     use_safetensors=True)
            # The processor is configuration only (tokenizer, image sizes): no weights to fetch.
            models.pickscore_processor = _load(AutoProcessor, pickscore_processor, pickscore_processor, what)
        return models.to(device)

    def to(self, device: str) -> "MetricModels":
        self.device = str(device)
        for name in ("clip", "dino", "pickscore"):
            model = getattr(self, name)
            if model is not None:
                setattr(self, name, model.to(device=device, dtype=torch.float32).eval())
        return self

    # Embeddings: float64 numpy rows, L2-normalised.
    @torch.inference_mode()
    def clip_images(self, images) -> np.ndarray:
        size = self.clip.config.vision_config.image_size
        batch = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)
                             for im in images]) if len({im.size for im in images}) == 1 else None
        if batch is None:  # different sizes: resize one by one, as IP2P does per image
            return np.concatenate([self.clip_images([im]) for im in images])
        batch = F.interpolate(batch.to(self.device), size=size, mode="bicubic", align_corners=False)
        mean = torch.tensor(OPENAI_MEAN, device=self.device)[:, None, None]
        std = torch.tensor(OPENAI_STD, device=self.device)[:, None, None]
        features = _features(self.clip.get_image_features(pixel_values=(batch - mean) / std))
        return F.normalize(features.double(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def clip_texts(self, texts) -> np.ndarray:
        tokens = self.clip_tokenizer(list(texts), padding=True, truncation=True,
                                     max_length=self.clip_tokenizer.model_max_length, return_tensors="pt")
        features = _features(self.clip.get_text_features(input_ids=tokens.input_ids.to(self.device),
                                                         attention_mask=tokens.attention_mask.to(self.device)))
        return F.normalize(features.double(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def dino_images(self, images) -> np.ndarray:
        pixels = self.dino_processor(images=[im.convert("RGB") for im in images], return_tensors="pt").pixel_values
        features = self.dino(pixel_values=pixels.to(self.device)).pooler_output
        return F.normalize(features.double(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def pickscores(self, images, prompt: str) -> list[float]:
        processor = self.pickscore_processor
        pixels = processor(images=[im.convert("RGB") for im in images], return_tensors="pt").pixel_values
        tokens = processor(text=[prompt], padding=True, truncation=True, max_length=77, return_tensors="pt")
        image = F.normalize(_features(self.pickscore.get_image_features(pixel_values=pixels.to(self.device))), dim=-1)
        text = F.normalize(_features(self.pickscore.get_text_features(
            input_ids=tokens.input_ids.to(self.device), attention_mask=tokens.attention_mask.to(self.device))), dim=-1)
        return (self.pickscore.logit_scale.exp() * (image @ text.T)[:, 0]).double().cpu().tolist()
