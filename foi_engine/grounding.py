"""Instruction-based mask extraction (paper §4.1, eq. 2).

The first step's cross-attention of the instruction branch is recorded; the layers at
the grounding factor are averaged; each keyword's columns become a map, which is
smoothed and sharpened γ times; a threshold τ turns it into a mask."""

from __future__ import annotations

import math

import numpy as np
import torch


def gaussian_weights(sigma: float = 0.5) -> np.ndarray:
    """Attend-and-Excite's 3-tap kernel: exp(-(x/(2σ))²), x ∈ {-1, 0, 1}, normalised."""
    x = np.array([-1.0, 0.0, 1.0])
    weights = np.exp(-((x / (2.0 * sigma)) ** 2))
    return weights / weights.sum()


def smooth(attention_map: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """3×3 Gaussian with reflect padding, in float64 (separable: the 2-D kernel is the
    outer product of the normalised 1-D one)."""
    weights = gaussian_weights(sigma)
    padded = np.pad(np.asarray(attention_map, dtype=np.float64), 1, mode="reflect")
    rows = weights[0] * padded[:-2, :] + weights[1] * padded[1:-1, :] + weights[2] * padded[2:, :]
    return weights[0] * rows[:, :-2] + weights[1] * rows[:, 1:-1] + weights[2] * rows[:, 2:]


def sharpen(attention_map: np.ndarray, gamma: int) -> np.ndarray:
    """Eq. 2: γ times square then min–max normalise to [0, 1] (a flat map becomes zeros)."""
    result = np.asarray(attention_map, dtype=np.float64)
    for _ in range(gamma):
        result = result**2
        low, high = result.min(), result.max()
        result = (result - low) / (high - low) if high > low else np.zeros_like(result)
    return result


def refine(attention_map: np.ndarray, gamma: int) -> np.ndarray:
    """Smoothing then eq. 2; returned as float32, the type thresholds compare against."""
    return sharpen(smooth(attention_map), gamma).astype(np.float32)


def layer_shape(queries: int, latent_shape: tuple[int, int]) -> tuple[int, int, int]:
    """(factor, h, w) of a layer with this many queries: the smallest power of two f with
    ceil(H/f)·ceil(W/f) queries."""
    height, width = latent_shape
    factor = 1
    while True:
        h, w = math.ceil(height / factor), math.ceil(width / factor)
        if h * w == queries:
            return factor, h, w
        if h * w < queries:
            raise ValueError(f"No downsampling factor gives {queries} queries for a {height}×{width} latent.")
        factor *= 2


def choose_factor(available: set[int], wanted: int) -> int:
    """The available factor nearest to the wanted one on a log₂ scale, the larger on a tie."""
    return min(available, key=lambda f: (abs(math.log2(f) - math.log2(wanted)), -f))


def attention_probabilities(query: torch.Tensor, key: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(QKᵀ·scale) in fp32, averaged over heads: (queries, tokens)."""
    logits = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
    return logits.softmax(dim=-1).mean(dim=(0, 1))


def grounding_maps(recorded, latent_shape, wanted_factor, keyword_tokens, gamma):
    """Maps A_i (float32, h_g × w_g) from the recorded (query, key, scale) of chunk 0.

    `recorded` lists one (query, key, scale) per cross-attention layer of the first pass.
    Returns (maps, factor, (h_g, w_g))."""
    shapes = [layer_shape(query.shape[-2], latent_shape) for query, _, _ in recorded]
    factor = choose_factor({f for f, _, _ in shapes}, wanted_factor)
    chosen = [entry for entry, shape in zip(recorded, shapes) if shape[0] == factor]
    _, h, w = next(shape for shape in shapes if shape[0] == factor)
    average = torch.stack([attention_probabilities(q, k, s) for q, k, s in chosen]).mean(dim=0)
    average = average.cpu().double().numpy()
    maps = []
    for tokens in keyword_tokens:
        if tokens is None:
            maps.append(np.ones((h, w), dtype=np.float32))
        else:
            column_sum = average[:, list(tokens)].sum(axis=1).reshape(h, w)
            maps.append(refine(column_sum, gamma))
    return maps, factor, (h, w)
