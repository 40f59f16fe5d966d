"""A cheap RGB preview of the predicted clean image, straight from the latent
(no VAE decode): Stable Diffusion 1.x latents map to RGB almost linearly."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# Least-squares latent→RGB factors for SD 1.x latents (as used by ComfyUI's previews).
SD1_LATENT_RGB = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)


def latent_preview(latent: torch.Tensor) -> Image.Image:
    """latent: (1, C, h, w) scaled latent → small RGB image (h × w)."""
    latent = latent[0].float()
    if latent.shape[0] == SD1_LATENT_RGB.shape[0]:
        rgb = torch.einsum("chw,cr->hwr", latent, SD1_LATENT_RGB.to(latent.device))
    else:  # an unusual VAE: show its first channels
        rgb = latent[:3].permute(1, 2, 0)
        rgb = rgb.repeat(1, 1, 3)[..., :3] if rgb.shape[-1] < 3 else rgb
    pixels = ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB")
