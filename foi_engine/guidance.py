"""Classifier-free guidance of InstructPix2Pix (eq. 1) and FoI's mask-guided
disentangled form (eq. 9), in diffusers' order of operations."""

from __future__ import annotations

import torch


def guide(noise_pred: torch.Tensor, text_guidance: float, image_guidance: float, union_mask=None) -> torch.Tensor:
    """noise_pred = [ε(I,T), ε(I,∅T), ε(∅I,∅T)] along the batch. With `union_mask`
    (M_union at the latent's size) the edit direction is confined to it (eq. 9)."""
    text, image, uncond = noise_pred.chunk(3)
    edit = text_guidance * (text - image)
    if union_mask is not None:
        edit = edit * union_mask
    return uncond + edit + image_guidance * (image - uncond)
