"""Modulation effects on a tiny model whose cross-attention is sharpened (Q, K ×8)
so that attention is far from uniform, as docs/ALGORITHM.md §16 explains."""

import numpy as np
import pytest
import torch

from foi_engine import EditSettings, FoiEngine, Instruction
from foi_engine.tiny import tiny_random_pipeline


@pytest.fixture(scope="module")
def sharp_engine():
    pipe = tiny_random_pipeline(1)
    with torch.no_grad():
        for name, module in pipe.unet.named_modules():
            if getattr(module, "is_cross_attention", False):
                module.to_q.weight.mul_(8)
                module.to_k.weight.mul_(8)
    return FoiEngine(pipe)


RIGHT_HALF = np.zeros((16, 16), dtype=np.float32)
RIGHT_HALF[:, 8:] = 1.0
ONLY_MODULATION = EditSettings(steps=10, resolution=128, disentangle_until=0.0)


def final_latents(engine, photo, capture, runs):
    seen = capture(engine)
    for instructions, settings, masks in runs:
        engine.edit(photo, instructions, settings, seed=3, masks=masks)
    return seen


def test_strength_acts_inside_the_mask(sharp_engine, photo, capture_latents):
    weak, strong = (Instruction("make the cat a tiger", "cat", strength=a) for a in (0.0, 10.0))
    base, boosted = final_latents(sharp_engine, photo, capture_latents,
                                  [([weak], ONLY_MODULATION, [RIGHT_HALF]), ([strong], ONLY_MODULATION, [RIGHT_HALF])])
    change = (boosted - base).abs().mean(dim=(0, 1))
    inside, outside = change[:, 10:].mean().item(), change[:, :6].mean().item()
    assert inside > 1e-3  # α of 10 (the most the editor and CLI allow) visibly moves the float result
    assert inside > 2 * outside, (inside, outside)


def test_modulation_switch_changes_float_result(sharp_engine, photo, capture_latents):
    on = ONLY_MODULATION
    off = EditSettings(steps=10, resolution=128, disentangle_until=0.0, modulate_until=0.0)
    instruction = [Instruction("make the cat a tiger", "cat", strength=10.0)]
    with_mod, without = final_latents(sharp_engine, photo, capture_latents,
                                      [(instruction, on, [RIGHT_HALF]), (instruction, off, [RIGHT_HALF])])
    assert (with_mod - without).abs().max() > 1e-2


def test_both_switches_off_is_vanilla_bit_for_bit(sharp_engine, photo, capture_latents):
    ablated = EditSettings(steps=8, resolution=128, disentangle_until=0.0, modulate_until=0.0)
    vanilla = EditSettings(steps=8, resolution=128, focus=False)
    instruction = [Instruction("make the cat a tiger", "cat")]
    a, b = final_latents(sharp_engine, photo, capture_latents, [(instruction, ablated, None), (instruction, vanilla, None)])
    assert torch.equal(a, b)


def test_outside_tokens_choice_matters(sharp_engine, photo, capture_latents):
    instruction = [Instruction("make the cat a tiger", "cat", strength=10.0)]
    runs = [(instruction, EditSettings(steps=8, resolution=128, disentangle_until=0.0, outside_tokens=o), [RIGHT_HALF])
            for o in ("union", "null", "instruction")]
    union, null, everywhere = final_latents(sharp_engine, photo, capture_latents, runs)
    assert (union - null).abs().max() > 1e-3
    assert (union - everywhere).abs().max() > 1e-3


def test_first_step_is_never_modulated(sharp_engine, photo):
    modes = []
    control = sharp_engine._control
    original = control.set_step

    def spy(mode, xi=0.0):
        modes.append(mode.value)
        original(mode, xi)

    control.set_step = spy
    try:
        sharp_engine.edit(photo, [Instruction("make the cat a tiger", "cat")], EditSettings(steps=10, resolution=64),
                          masks=[np.ones((8, 8))])
        sharp_engine.edit(photo, [Instruction("make the cat a tiger", "cat")],
                          EditSettings(steps=10, resolution=64, modulate_until=0.5))
    finally:
        del control.set_step
    assert modes[:8] == ["stock"] + ["modulate"] * 7
    assert modes[8:] == ["record", "modulate", "modulate", "modulate", "stock", "stock", "stock", "stock"]
