"""The metrics' arithmetic against hand-made values and scikit-image."""

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from foi_engine.evaluation import quality

from eval_helpers import noisy


def test_cosine_and_direction_on_known_vectors():
    assert quality.cosine([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    # image moves from e1 to e2; the captions move the same way, the opposite way, or at right angles
    e1, e2, e3 = np.eye(3)
    assert quality.directional(e1, e2, e1, e2) == pytest.approx(1.0)
    assert quality.directional(e1, e2, e2, e1) == pytest.approx(-1.0)
    assert quality.directional(e1, e2, e3, e3 + e1 * 0) == 0.0  # no caption change scores 0, as in IP2P
    # (e2−e1)·(e3−e1) / (√2·√2) = 1/2, and scaling the embeddings changes nothing (they are normalised)
    assert quality.directional(3 * e1, e2, e1, 5 * e3) == pytest.approx(0.5)


def test_mask_scores_on_hand_made_masks():
    predicted = np.zeros((4, 4), dtype=bool)
    truth = np.zeros((4, 4), dtype=bool)
    predicted[0, :] = True  # 4 pixels
    truth[0, :2] = truth[1, :2] = True  # 4 pixels, 2 shared
    scores = quality.mask_scores(predicted, truth)
    assert scores == {"iou": pytest.approx(2 / 6), "precision": pytest.approx(0.5), "recall": pytest.approx(0.5)}
    assert quality.mask_scores(truth, truth)["iou"] == 1.0
    empty = quality.mask_scores(np.zeros_like(truth), truth)
    assert empty["iou"] == 0.0 and math.isnan(empty["precision"]) and empty["recall"] == 0.0


def test_background_psnr_and_ssim_match_scikit_image_and_ignore_the_region(photos):
    a = np.asarray(photos["astronaut"])
    b = np.asarray(noisy(photos["astronaut"], 25))
    everywhere = np.ones(a.shape[:2], dtype=bool)
    assert quality.psnr_outside(a, b, everywhere) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    reference = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=255)
    assert quality.ssim_outside(a, b, everywhere) == pytest.approx(reference, abs=1e-12)
    # Changes confined to the region leave the background scores perfect.
    changed = a.copy()
    changed[30:60, 40:90] = 0
    background = everywhere.copy()
    background[20:70, 30:100] = False  # region plus a margin wider than the SSIM window
    assert quality.psnr_outside(a, changed, background) == quality.PSNR_CAP
    assert quality.ssim_outside(a, changed, background) == pytest.approx(1.0)
    assert quality.psnr_outside(a, changed, everywhere) < 30


def test_pickscore_preference_is_a_softmax_over_methods():
    probabilities = quality.preference([20.0, 21.0, 19.0])
    assert sum(probabilities) == pytest.approx(1.0)
    assert probabilities[1] == pytest.approx(math.e / (1 + math.e + math.exp(-1)))
