"""The invariants of docs/ALGORITHM.md §15 on the tiny random model."""

import numpy as np
import pytest
import torch

from foi_engine import EditSettings, FoiEngine, Instruction
from foi_engine.tiny import tiny_random_pipeline

TWO = [Instruction("make the cat a tiger", "cat"), Instruction("turn the grass green", "grass")]
SMALL = EditSettings(steps=8, resolution=128)


def _predicting(pipe, prediction_type: str):
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, prediction_type=prediction_type)
    return pipe


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_focus_off_full_strength_equals_diffusers(photo, capture_latents, prediction_type):
    """Also for a v-predicting UNet (the shapes model): the engine samples what it predicts
    exactly as diffusers does."""
    stock = _predicting(tiny_random_pipeline(0), prediction_type)  # untouched attention processors
    engine = FoiEngine(_predicting(tiny_random_pipeline(0), prediction_type))
    settings = EditSettings(steps=6, strength=1.0, resolution=128, focus=False)
    seen = capture_latents(engine)
    result = engine.edit(photo, [Instruction("make the cat a tiger")], settings, seed=3)
    working = result.frame.fit(photo.convert("RGB"))

    def run_stock(output_type):
        return stock("make the cat a tiger", image=working, num_inference_steps=6, guidance_scale=7.5,
                     image_guidance_scale=1.5, generator=torch.Generator("cpu").manual_seed(3),
                     output_type=output_type).images

    stock_latents = run_stock("latent")
    assert torch.equal(seen[0], stock_latents / stock.vae.config.scaling_factor)
    stock_image = run_stock("pil")[0]
    ours = np.asarray(result.image)
    assert ours.std() > 1  # not a flat image, or equality would prove nothing
    assert np.array_equal(ours, np.asarray(stock_image))
    if prediction_type != "epsilon":  # the prediction type matters, or this would prove nothing
        epsilon = FoiEngine(tiny_random_pipeline(0)).edit(photo, [Instruction("make the cat a tiger")], settings, seed=3)
        assert not np.array_equal(ours, np.asarray(epsilon.image))


def test_all_ones_masks_with_zero_strength_equal_focus_off(tiny_engine, photo, capture_latents):
    seen = capture_latents(tiny_engine)
    zero = [Instruction(i.text, i.keyword, strength=0.0) for i in TWO]
    ones = [np.ones((32, 32), dtype=np.float32)] * 2
    tiny_engine.edit(photo, zero, SMALL, seed=5, masks=ones)
    off = EditSettings(steps=8, resolution=128, focus=False)
    tiny_engine.edit(photo, zero, off, seed=5)
    # Float tolerance only: α = 1 already moves these latents by 5e-3, M = 0 by 1.5.
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=5e-4)


def test_locate_then_edit_equals_single_pass(tiny_engine, photo, capture_latents):
    seen = capture_latents(tiny_engine)
    grounding = tiny_engine.locate(photo, TWO, SMALL, seed=11)
    two_phase = tiny_engine.edit(photo, TWO, SMALL, seed=11, masks=grounding.masks)
    single = tiny_engine.edit(photo, TWO, SMALL, seed=11)
    assert torch.equal(seen[0], seen[1])
    assert np.array_equal(np.asarray(two_phase.image), np.asarray(single.image))
    for located, extracted in zip(grounding.masks, single.grounding.masks):
        assert np.array_equal(located, extracted)
    assert any(0 < m.mean() < 1 for m in grounding.masks)  # real regions, not trivial masks


def test_same_seed_same_image_other_seed_other_image(tiny_engine, photo):
    first = np.asarray(tiny_engine.edit(photo, TWO, SMALL, seed=7).image)
    again = np.asarray(tiny_engine.edit(photo, TWO, SMALL, seed=7).image)
    other = np.asarray(tiny_engine.edit(photo, TWO, SMALL, seed=8).image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_thresholds_drawn_per_instruction_from_seed(tiny_engine, photo):
    mixed = [TWO[0], Instruction("turn the grass green", "grass", threshold=0.9), Instruction("make it winter")]
    grounding = tiny_engine.locate(photo, mixed, SMALL, seed=4)
    drawn = np.random.default_rng(4).uniform(0.4, 0.7, size=3)
    assert grounding.thresholds == [drawn[0], 0.9, None]
    assert grounding.masks[2].all() and (grounding.maps[2] == 1).all()
    assert np.array_equal(grounding.masks[0], grounding.maps[0] >= np.float32(drawn[0]))
    assert np.array_equal(grounding.rethreshold(0, 0.2), grounding.maps[0] >= np.float32(0.2))


def test_grounding_uses_factor_four_layers(tiny_engine, photo):
    grounding = tiny_engine.locate(photo, TWO, SMALL, seed=0)
    assert grounding.factor == 4
    assert grounding.maps[0].shape == (4, 4)  # 128 px → 16×16 latent → 4×4 at factor 4
    assert grounding.maps[0].dtype == np.float32
    assert grounding.maps[0].min() == 0.0 and grounding.maps[0].max() == 1.0
    coarse = tiny_engine.locate(photo, TWO, EditSettings(steps=8, resolution=128, grounding_factor=32), seed=0)
    assert coarse.factor == 8  # no layer at 32: the nearest available (the mid block at 8)


def test_on_step_reports_every_step_with_preview(tiny_engine, photo):
    calls = []
    tiny_engine.edit(photo, TWO[:1], EditSettings(steps=10, strength=0.5, resolution=128), seed=0,
                     on_step=lambda i, k, preview: calls.append((i, k, preview.size)))
    assert [c[0] for c in calls] == list(range(5))
    assert all(c[1] == 5 and c[2] == (16, 16) for c in calls)


def test_cancel_stops_within_a_step(tiny_engine, photo):
    import threading

    import pytest

    from foi_engine import Cancelled

    cancel = threading.Event()
    steps = []

    def on_step(i, k, preview):
        steps.append(i)
        if i == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        tiny_engine.edit(photo, TWO, SMALL, seed=0, on_step=on_step, cancel=cancel)
    assert steps == [0, 1, 2]
    # Still usable afterwards, and nothing of the cancelled run leaks into the next one.
    after = tiny_engine.edit(photo, TWO, EditSettings(steps=2, resolution=64), seed=0)
    fresh = FoiEngine(tiny_random_pipeline(0)).edit(photo, TWO, EditSettings(steps=2, resolution=64), seed=0)
    assert np.array_equal(np.asarray(after.image), np.asarray(fresh.image))


def test_edit_after_locate_reuses_the_first_step_with_identical_output(photo):
    """Find regions then Edit skips the VAE encode and the first UNet pass, and the
    result equals a cold run on another engine with the same weights."""
    warm, cold = FoiEngine(tiny_random_pipeline(0)), FoiEngine(tiny_random_pipeline(0))
    calls = {"warm": 0}
    unet_forward = warm.pipe.unet.forward

    def counting(*args, **kwargs):
        calls["warm"] += 1
        return unet_forward(*args, **kwargs)

    warm.pipe.unet.forward = counting
    grounding = warm.locate(photo, TWO, SMALL, seed=9)
    calls["warm"] = 0
    reused = warm.edit(photo, TWO, SMALL, seed=9, masks=grounding.masks)
    assert calls["warm"] == SMALL.denoising_steps - 1
    fresh = cold.edit(photo, TWO, SMALL, seed=9, masks=grounding.masks)
    assert np.array_equal(np.asarray(reused.image), np.asarray(fresh.image))
    single = warm.edit(photo, TWO, SMALL, seed=9)  # single pass after locate: maps reused too
    assert np.array_equal(np.asarray(single.image), np.asarray(fresh.image))
    calls["warm"] = 0
    warm.edit(photo, TWO, SMALL, seed=10, masks=grounding.masks)  # another seed: no reuse
    assert calls["warm"] == SMALL.denoising_steps
