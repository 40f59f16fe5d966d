"""The arithmetic of the metrics, on arrays: no models here.

Embedding similarities follow InstructPix2Pix's metrics/clip_similarity.py; the mask and
background measures compare at the working frame (the size the model edited at)."""

from __future__ import annotations

import math

import numpy as np

PSNR_CAP = 100.0  # dB, for an unchanged background (the true value is infinite)
SSIM_RADIUS = 5  # 11-tap Gaussian window, σ = 1.5 (Wang et al. 2004; scikit-image's gaussian_weights)
SSIM_SIGMA = 1.5


def _normalise(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / max(np.linalg.norm(vector), 1e-12)


def cosine(a, b) -> float:
    """Cosine similarity of two embeddings."""
    return float(np.dot(_normalise(a), _normalise(b)))


def directional(image_before, image_after, text_before, text_after) -> float:
    """CLIP-D: cosine of (image change, caption change), each embedding first L2-normalised.
    A zero change scores 0, as torch's cosine_similarity with its eps does in IP2P's code."""
    image_change = _normalise(image_after) - _normalise(image_before)
    text_change = _normalise(text_after) - _normalise(text_before)
    scale = np.linalg.norm(image_change) * np.linalg.norm(text_change)
    return float(np.dot(image_change, text_change) / max(scale, 1e-8))


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU, precision and recall of a predicted region against the true one (same shape).
    A ratio with nothing to divide by is NaN (left out of averages)."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {predicted.shape} vs {truth.shape}")
    both = np.count_nonzero(predicted & truth)
    either = np.count_nonzero(predicted | truth)
    said, true = np.count_nonzero(predicted), np.count_nonzero(truth)
    return {
        "iou": both / either if either else math.nan,
        "precision": both / said if said else math.nan,
        "recall": both / true if true else math.nan,
    }


def psnr_outside(before: np.ndarray, after: np.ndarray, background: np.ndarray) -> float:
    """PSNR (8-bit, dB) over the background pixels, all channels; capped at PSNR_CAP."""
    keep = np.asarray(background, dtype=bool)
    if not keep.any():
        return math.nan
    difference = np.asarray(before, dtype=np.float64)[keep] - np.asarray(after, dtype=np.float64)[keep]
    mse = float(np.mean(difference**2))
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _gaussian_blur(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian, mirrored at the edges (scipy's "reflect", as scikit-image uses)."""
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    kernel /= kernel.sum()
    padded = np.pad(image, [(SSIM_RADIUS, SSIM_RADIUS), (SSIM_RADIUS, SSIM_RADIUS)] + [(0, 0)] * (image.ndim - 2),
                    mode="symmetric")
    rows = sum(w * padded[i : i + image.shape[0]] for i, w in enumerate(kernel))
    return sum(w * rows[:, i : i + image.shape[1]] for i, w in enumerate(kernel))


def ssim_map(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two 8-bit images (mean over channels), Gaussian window,
    population covariances, K1 = 0.01, K2 = 0.03."""
    a, b = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _gaussian_blur(a), _gaussian_blur(b)
    var_a = _gaussian_blur(a * a) - mu_a**2
    var_b = _gaussian_blur(b * b) - mu_b**2
    covariance = _gaussian_blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * covariance + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.mean(axis=-1) if value.ndim == 3 else value


def ssim_outside(before: np.ndarray, after: np.ndarray, background: np.ndarray) -> float:
    """Mean SSIM over the background pixels that are at least the window's radius from the
    image's edge (scikit-image leaves that border out of its mean too)."""
    keep = np.asarray(background, dtype=bool).copy()
    r = SSIM_RADIUS
    keep[:r], keep[-r:], keep[:, :r], keep[:, -r:] = False, False, False, False
    if not keep.any():
        return math.nan
    return float(ssim_map(before, after)[keep].mean())


def preference(scores: list[float]) -> list[float]:
    """PickScore's preference probabilities: softmax of the methods' scores for one item."""
    values = np.asarray(scores, dtype=np.float64)
    exps = np.exp(values - values.max())
    return list(exps / exps.sum())
