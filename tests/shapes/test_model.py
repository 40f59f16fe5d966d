"""The shipped shapes model (v22), through the public engine API, on held-out scenes that the
evaluation never reads (indices chosen before running), at the model's own settings (γ 1,
grounding factor 1, s_I 2.0, s_T 5.0; fewer steps).

Thresholds are half what `python -m foi_engine.shapes.evaluate` measured on its 40 single and 30
multi-instruction held-out scenes (MODEL_CARD.md), as the issue asks (the VAE's: the aim itself);
a model that does not ground (v2: IoU 0.005, mask on its shape 12 %) fails them."""

import numpy as np
import pytest
from PIL import Image

from foi_engine import EditSettings, FoiEngine, Instruction
from foi_engine.catalog import model_settings
from foi_engine.shapes.data import DEMO_SCENE, SIZE, make_example
from foi_engine.shapes.evaluate import (CLEAN_PSNR_DB, iou, lands, own_shape, psnr, settings, upsample,
                                        vae_round_trip_psnr)

SINGLE = [make_example(i, "heldout", instructions=1) for i in range(200, 212)]
# Multi-instruction scenes that leave some pixels untouched (the outside PSNR needs them).
MULTI = [e for e in (make_example(100_200 + i, "heldout", instructions=2 + i % 2) for i in range(8))
         if not np.any([edit.mask for edit in e.edits], axis=0).all()][:4]
SETTINGS = {**model_settings("shapes"), "steps": 25}  # its own 64 px, factor 1, γ 1 and guidance
# Measured on the evaluation's scenes (v22; v20 and v5 before it):
MIN_MEAN_IOU = 0.29  # single-edit keyword mask IoU 0.58 (v20 0.52, v5 0.37; the aim 0.5)
MIN_OWN_SHAPE = 0.47  # the mask lies on the named shape in 94 % (v20 91 %, v5 67 %; chance ≈ 36 %)
MIN_FOI_LANDS = 0.45  # FoI lands the asked colour in 90 % of single edits (v20 92.5 %, v5 60 %)
MIN_PLAIN_LANDS = 0.47  # plain InstructPix2Pix 95 % (v20 92.5 %, v5 62 %)
MIN_PLAIN_CLEAN = 0.42  # plain edits that land and keep the outside ≥ 20 dB: 85 % (v20 80 %, v5 45 %)
MIN_MULTI_OWN_SHAPE = 0.49  # with 2–3 instructions each mask lies on its shape in 98 % (v20 59 %)
MIN_MULTI_IOU = 0.31  # … with IoU 0.62 (v20 0.25)
MIN_MULTI_FOI_LANDS = 0.43  # FoI lands 87 % of the sub-edits (v20 51 %)
MIN_MULTI_LANDS_GAIN = 0.18  # … and plain 51 %: FoI 36 points ahead (v20 0)
MIN_MULTI_PSNR_GAIN_DB = 0.1  # multi-instruction PSNR outside, FoI minus plain: +0.2 dB (v20 +2.2, v5 +0.6)
MIN_VAE_PSNR_DB = 28.0  # the aim; VAE round trip 29.7 dB on the 40 single scenes, 28.0 on the 30 multi (v5 24.3)


def instructions(example):
    return [Instruction(e.text, keyword=e.keyword) for e in example.edits]


@pytest.fixture(scope="module")
def engine():
    return FoiEngine.from_pretrained("shapes", device="cpu")


@pytest.fixture(scope="module")
def keyword_masks(engine):
    """(example, its keyword's mask at the photo's size) for the single edits that name a shape."""
    found = []
    for seed, example in enumerate(SINGLE):
        if example.edits[0].keyword is not None:
            located = engine.locate(Image.fromarray(example.source), instructions(example), EditSettings(**SETTINGS),
                                    seed=seed)
            found.append((example, upsample(located.masks[0])))
    assert len(found) >= 4
    return found


def run_both(engine, example, seed):
    source = Image.fromarray(example.source)
    return [engine.edit(source, instructions(example), EditSettings(**SETTINGS, focus=focus), seed=seed)
            for focus in (False, True)]


def outside_gain(example, vanilla, foi):
    """PSNR outside every true edit region: FoI minus vanilla, in dB."""
    outside = ~np.any([e.mask for e in example.edits], axis=0)
    return psnr(np.asarray(foi.image), example.source, outside) - psnr(np.asarray(vanilla.image), example.source, outside)


def test_loads_as_a_trained_instructpix2pix(engine):
    assert not engine.random_weights
    assert engine.pipe.unet.config.in_channels == 8
    assert engine.pipe.scheduler.config.prediction_type == "v_prediction"  # sampled as diffusers does (test_invariants)
    assert engine.max_tokens == 32
    # every task word is a single token, so a keyword is exactly one column of attention
    for word in ("circle", "square", "triangle", "star", "background", "red", "purple", "paint"):
        assert len(engine.pipe.tokenizer(word, add_special_tokens=False).input_ids) == 1
    # a 64×64 scene is worked on as is; factor 1 reads the 16×16 cross-attention layers
    result = engine.locate(Image.fromarray(SINGLE[0].source), instructions(SINGLE[0]), EditSettings(**SETTINGS))
    assert result.frame.size == (SIZE, SIZE) and result.factor == 1 and result.masks[0].shape == (16, 16)


def test_grounding_masks_overlap_the_true_regions(keyword_masks):
    ious = [iou(mask, example.edits[0].mask) for example, mask in keyword_masks]
    assert np.mean(ious) >= MIN_MEAN_IOU, ious


def test_the_keyword_mask_lies_on_the_named_shape(keyword_masks):
    owns = [own_shape(mask, example, example.edits[0].target) for example, mask in keyword_masks]
    assert np.mean(owns) >= MIN_OWN_SHAPE, owns


@pytest.fixture(scope="module")
def multi_runs(engine):
    """(example, plain result, FoI result) for the multi-instruction scenes."""
    assert len(MULTI) == 4
    return [(example, *run_both(engine, example, seed)) for seed, example in enumerate(MULTI)]


def test_foi_keeps_the_outside_closer_than_vanilla_on_multi_instruction_edits(multi_runs):
    gains = [outside_gain(example, vanilla, foi) for example, vanilla, foi in multi_runs]
    assert np.mean(gains) >= MIN_MULTI_PSNR_GAIN_DB, gains


def test_with_several_instructions_each_mask_lies_on_its_own_shape(multi_runs):
    named = [(upsample(mask), example, edit) for example, _, foi in multi_runs
             for mask, edit in zip(foi.grounding.masks, example.edits) if edit.keyword is not None]
    assert len(named) >= 4
    assert np.mean([own_shape(mask, example, edit.target) for mask, example, edit in named]) >= MIN_MULTI_OWN_SHAPE
    assert np.mean([iou(mask, edit.mask) for mask, _, edit in named]) >= MIN_MULTI_IOU


def test_foi_lands_several_instructions_where_plain_instructpix2pix_mixes_them_up(multi_runs):
    landed = {"plain": [], "foi": []}
    for example, vanilla, foi in multi_runs:
        for name, result in (("plain", vanilla), ("foi", foi)):
            landed[name] += [lands(np.asarray(result.image), edit.mask, edit.colour) for edit in example.edits]
    assert np.mean(landed["foi"]) >= MIN_MULTI_FOI_LANDS, landed
    assert np.mean(landed["foi"]) - np.mean(landed["plain"]) >= MIN_MULTI_LANDS_GAIN, landed


def test_plain_instructpix2pix_and_foi_land_the_asked_colour(engine):
    landed, clean = {False: [], True: []}, []
    for seed, example in enumerate(SINGLE):
        edit = example.edits[0]
        for focus, result in zip((False, True), run_both(engine, example, seed)):
            pixels = np.asarray(result.image)
            landed[focus].append(lands(pixels, edit.mask, edit.colour))
            if not focus:
                kept = psnr(pixels, example.source, ~edit.mask)
                clean.append(landed[focus][-1] and not kept < CLEAN_PSNR_DB)
    assert np.mean(landed[False]) >= MIN_PLAIN_LANDS, landed
    assert np.mean(landed[True]) >= MIN_FOI_LANDS, landed
    assert np.mean(clean) >= MIN_PLAIN_CLEAN, clean


def test_the_vae_round_trip(engine):
    examples = SINGLE + MULTI
    assert vae_round_trip_psnr(engine, examples) >= MIN_VAE_PSNR_DB


def test_the_editor_sample_shows_foi_keeping_two_instructions_apart(engine):
    """The sample was picked for this (MODEL_CARD.md, *The editor's sample*): at the model's own
    settings on seed 0, as the editor runs it for screenshot 10, plain InstructPix2Pix mixes the
    two instructions up and FoI lands both."""
    example = make_example(DEMO_SCENE, "heldout", instructions=2)
    source, own = Image.fromarray(example.source), model_settings("shapes")
    landed = {}
    for focus in (False, True):
        result = engine.edit(source, instructions(example), settings(focus, **own), seed=0)
        landed[focus] = [lands(np.asarray(result.image), e.mask, e.colour) for e in example.edits]
    assert not all(landed[False]) and all(landed[True]), landed
