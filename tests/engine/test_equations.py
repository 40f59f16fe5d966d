"""Each equation against an independent computation written here."""

import math

import numpy as np
import torch

from foi_engine.attention import FocusControl, RunMode, TokenMasks, modulated_attention
from foi_engine.grounding import choose_factor, grounding_maps, layer_shape, refine
from foi_engine.guidance import guide


def reference_refine(a, gamma):
    """Direct 3×3 convolution with the 2-D Attend-and-Excite kernel, then eq. 2."""
    sigma = 0.5
    grid = np.array([-1.0, 0.0, 1.0])
    kernel = np.exp(-((grid[:, None] / (2 * sigma)) ** 2)) * np.exp(-((grid[None, :] / (2 * sigma)) ** 2))
    kernel /= kernel.sum()
    padded = np.pad(a.astype(np.float64), 1, mode="reflect")
    h, w = a.shape
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = (padded[y : y + 3, x : x + 3] * kernel).sum()
    for _ in range(gamma):
        out = out**2
        out = (out - out.min()) / (out.max() - out.min())
    return out


def test_kernel_weights_are_attend_and_excite():
    from foi_engine.grounding import gaussian_weights

    np.testing.assert_allclose(gaussian_weights(), [0.2119, 0.5761, 0.2119], atol=1e-4)


def test_eq2_on_known_array():
    a = np.random.default_rng(0).random((6, 5))
    for gamma in (1, 3):
        result = refine(a, gamma)
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, reference_refine(a, gamma), rtol=0, atol=1e-6)
    flat = refine(np.full((4, 4), 0.3), 3)
    assert (flat == 0).all()


def test_eq2_small_hand_example():
    # A single bright pixel; reflect padding mirrors it onto the border, so an edge pixel
    # gets it twice. After one squaring: centre 1, corners 0, edges in between.
    a = np.zeros((3, 3))
    a[1, 1] = 1.0
    result = refine(a, 1)
    w0, w1 = np.exp(-1.0) / (1 + 2 * np.exp(-1.0)), 1 / (1 + 2 * np.exp(-1.0))
    centre, side, corner = (w1 * w1) ** 2, (2 * w0 * w1) ** 2, (2 * w0 * 2 * w0) ** 2
    assert result[1, 1] == 1.0 and result[0, 0] == 0.0
    np.testing.assert_allclose(result[0, 1], (side - corner) / (centre - corner), atol=1e-6)


def test_grounding_map_averages_heads_then_layers_and_sums_keyword_columns():
    generator = torch.Generator().manual_seed(0)
    latent = (8, 8)  # factor 4 → 2×2 = 4 queries; factor 2 → 16 queries
    recorded = [(torch.randn(1, 2, n, 4, generator=generator), torch.randn(1, 2, 5, 4, generator=generator), 0.5)
                for n in (4, 16, 4)]
    maps, factor, size = grounding_maps(recorded, latent, 4, [(1, 2), None], gamma=2)
    assert factor == 4 and size == (2, 2)
    chosen = [recorded[0], recorded[2]]
    per_layer = []
    for q, k, s in chosen:
        probs = torch.softmax((q.double() @ k.double().transpose(-1, -2)) * s, dim=-1)  # (1, heads, n, tokens)
        per_layer.append(probs[0].mean(dim=0))
    average = torch.stack(per_layer).mean(dim=0).numpy()
    expected = reference_refine(average[:, [1, 2]].sum(axis=1).reshape(2, 2), 2)
    np.testing.assert_allclose(maps[0], expected, atol=1e-5)
    assert (maps[1] == 1).all()


def test_layer_factor_from_query_count():
    assert layer_shape(16 * 16, (64, 64)) == (4, 16, 16)
    assert layer_shape(8 * 12, (64, 96)) == (8, 8, 12)
    assert layer_shape(3 * 2, (9, 5)) == (4, 3, 2)  # ceil at odd sizes


def test_factor_choice_nearest_on_log_scale_larger_on_tie():
    assert choose_factor({1, 2, 4, 8}, 4) == 4
    assert choose_factor({1, 2, 8}, 4) == 8
    assert choose_factor({1, 2}, 4) == 2
    assert choose_factor({1, 16}, 4) == 16  # log₂ distance 2 each: the larger


def test_eqs_3_to_7_one_layer_on_random_qkv():
    g = torch.Generator().manual_seed(1)
    heads, n, tokens, d = 3, 6, 5, 4
    q, k, v = (torch.randn(3, heads, m, d, generator=g) for m in (n, tokens, tokens))
    mask = (torch.rand(n, tokens, generator=g) > 0.5).float()
    alpha = torch.tensor([0.0, 2.0, 2.0, 5.0, 0.0])
    t, scale = 600.0, d**-0.5
    xi = 0.05 * (t / 1000) ** 4
    out = modulated_attention(q, k, v, scale, alpha * xi, mask, 1 - mask)
    # Independent: loop over heads and queries in float64.
    expected = torch.zeros(1, heads, n, d, dtype=torch.float64)
    for h in range(heads):
        for i in range(n):
            x = [float(q[0, h, i] @ k[0, h, j]) for j in range(tokens)]
            y = [float(q[1, h, i] @ k[1, h, j]) for j in range(tokens)]
            logits = []
            for j in range(tokens):
                delta = float(alpha[j]) * xi * (max(x) - x[j])
                m = float(mask[i, j])
                logits.append(((x[j] + delta) * m + y[j] * (1 - m)) * scale)
            weights = np.exp(np.array(logits) - max(logits))
            weights /= weights.sum()
            expected[0, h, i] = sum(weights[j] * v[0, h, j].double() for j in range(tokens))
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-5)


def test_outside_every_mask_attention_equals_image_only_branch():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(3, 2, 4, 8, generator=g), torch.randn(3, 2, 3, 8, generator=g)
    v = torch.eye(3).expand(3, 2, 3, 3)  # identity values: the output is the attention itself
    zeros = torch.zeros(4, 3)
    probs = modulated_attention(q, k, v, 0.3, torch.full((3,), 40.0), zeros, 1 - zeros)
    expected = torch.softmax(q[1:2] @ k[1:2].transpose(-1, -2) * 0.3, dim=-1)
    torch.testing.assert_close(probs, expected)


def test_token_masks_per_layer():
    m1 = torch.zeros(4, 4)
    m1[:2, :2] = 1
    m2 = torch.zeros(4, 4)
    m2[3, 3] = 1
    spans = [range(1, 3), range(3, 4)]
    union_masks = TokenMasks([m1, m2], spans, 6, (8, 8), "union")
    inside, outside = union_masks.at(16)  # factor 2 → 4×4
    assert torch.equal(inside[:, 1], m1.flatten()) and torch.equal(inside[:, 2], m1.flatten())
    assert torch.equal(inside[:, 3], m2.flatten())
    union = torch.maximum(m1, m2).flatten()
    for token in (0, 4, 5):
        assert torch.equal(inside[:, token], union)
    assert torch.equal(outside, 1 - inside)
    coarse, _ = union_masks.at(4)  # factor 4 → 2×2: area average
    assert torch.equal(coarse[:, 1], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert torch.equal(coarse[:, 3], torch.tensor([0.0, 0.0, 0.0, 0.25]))
    assert torch.equal(TokenMasks([m1, m2], spans, 6, (8, 8), "instruction").at(16)[0][:, 0], torch.ones(16))
    assert torch.equal(TokenMasks([m1, m2], spans, 6, (8, 8), "null").at(16)[0][:, 5], torch.zeros(16))


def test_alpha_only_on_sub_instruction_tokens():
    control = FocusControl()
    control.start_run([torch.ones(2, 2)] * 2, [range(1, 3), range(3, 5)], [2.0, 30.0], 8, (4, 4), "union", "cpu")
    control.set_step(RunMode.MODULATE, xi=0.5)
    assert control.alpha_xi.tolist() == [0.0, 1.0, 1.0, 15.0, 15.0, 0.0, 0.0, 0.0]


def test_eq9_and_eq1_on_known_noise():
    text, image, uncond = torch.tensor([3.0, 5.0]), torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.5])
    stacked = torch.stack([text, image, uncond])[:, None]
    plain = guide(stacked, 7.5, 1.5)
    assert torch.allclose(plain[0], uncond + 7.5 * (text - image) + 1.5 * (image - uncond))
    masked = guide(stacked, 7.5, 1.5, torch.tensor([1.0, 0.0]))
    assert torch.allclose(masked[0], torch.tensor([0.5 + 15 + 0.75, 0.5 + 0 + 2.25]))


def test_xi_schedule():
    # ξ(t) = 0.05·(t/T)⁴ with the scheduler's timestep value and T = 1000
    assert math.isclose(0.05 * (999 / 1000) ** 4, 0.0498, rel_tol=1e-3)
