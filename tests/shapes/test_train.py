"""The training script: same seed, same model; an interrupted run resumes to the same weights."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from foi_engine import EditSettings, FoiEngine, threads
from foi_engine.shapes import train
from foi_engine.shapes.data import make_example
from foi_engine.shapes.evaluate import instructions_of

ARGS = ["--vae-steps", "2", "--code-steps", "2", "--decoder-steps", "0", "--vae-batch", "1", "--examples", "6", "--t2i-steps", "2",
        "--unet-steps", "2", "--keep-steps", "1", "--batch", "2", "--save-every", "1", "--check-every", "0", "--threads", "1",
        "--workers", "1"]


@pytest.fixture(autouse=True)
def policy_restored(monkeypatch):
    """train.main puts its thread count in force; other tests expect none."""
    monkeypatch.setattr(threads, "_in_force", None)
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def run(tmp_path, name):
    out = tmp_path / name / "model"
    train.main(ARGS + ["--work", str(tmp_path / name / "work"), "--out", str(out)])
    return load_file(out / "unet" / "diffusion_pytorch_model.safetensors")


def interrupted_at(step, call: int):
    """`step`, but the `call`-th call stops the run as Ctrl+C would."""
    calls = []

    def stepping(*args):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return step(*args)

    return stepping


def test_an_interrupted_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    straight = run(tmp_path, "straight")
    real_step = train.unet_step
    monkeypatch.setattr(train, "unet_step", interrupted_at(real_step, 2))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "resumed")
    later = []
    monkeypatch.setattr(train, "unet_step", lambda *args: later.append(1) or real_step(*args))
    resumed = run(tmp_path, "resumed")
    assert len(later) == 4  # the step the interruption lost, the two InstructPix2Pix steps and the keep step

    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert (tmp_path / "resumed" / "model" / "model_index.json").is_file()


def test_the_2x_vae_gives_32x32_latents_and_masks(tmp_path):
    """--latent-factor 2: twice the latent cells across a shape, and the engine grounds on them."""
    out = tmp_path / "model"
    train.main(ARGS + ["--latent-factor", "2", "--work", str(tmp_path / "work"), "--out", str(out)])
    engine = FoiEngine.from_pretrained(str(out), device="cpu")
    example = make_example(200, "heldout", instructions=1)
    found = engine.locate(Image.fromarray(example.source), instructions_of(example),
                          EditSettings(steps=2, resolution=64, grounding_factor=1), seed=0)
    assert found.masks[0].shape == (32, 32)
    assert np.isfinite(found.masks[0]).all()


def test_the_unet_reads_the_instruction_on_the_latent_grid_alone(tmp_path):
    """--cross-attention finest (the default): the engine's masks come from layers that must bind
    words themselves."""
    out = tmp_path / "model"
    train.main(ARGS + ["--work", str(tmp_path / "work"), "--out", str(out)])
    engine = FoiEngine.from_pretrained(str(out), device="cpu")
    unet = engine.pipe.unet
    crossing = [name for name, module in unet.named_modules() if getattr(module, "is_cross_attention", False)]
    assert crossing and all(name.startswith(("down_blocks.0.", "up_blocks.2.")) for name in crossing)
    example = make_example(201, "heldout", instructions=2)
    found = engine.locate(Image.fromarray(example.source), instructions_of(example),
                          EditSettings(steps=2, resolution=64, grounding_factor=4), seed=0)
    assert found.factor == 1 and found.masks[0].shape == (16, 16)  # the only grid there is


def test_a_work_folder_resumes_only_the_unet_it_built(tmp_path):
    work = ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "model")]
    train.main(ARGS + work)
    with pytest.raises(SystemExit, match="as it was built"):
        train.main(ARGS + ["--cross-attention", "every"] + work)


def test_the_default_unet_is_the_shipped_models_architecture():
    shipped = json.loads((train.DEFAULT_OUT / "unet" / "config.json").read_text())
    built = train.build_models(train.build_tokenizer(), 0, 4, train.CROSS_ATTENTION == "finest")[1].config
    for key in ("down_block_types", "up_block_types", "mid_block_type", "block_out_channels", "cross_attention_dim"):
        assert json.loads(json.dumps(built[key])) == shipped[key], key  # tuples as the config file's lists


def test_examples_rendered_in_processes_are_the_ones_rendered_in_one():
    one, several = list(train.rendered(10, 0, workers=1, chunk=4)), list(train.rendered(10, 0, workers=2, chunk=4))
    assert [len(chunk[0]) for chunk in several] == [4, 4, 2]
    for a, b in zip(one, several):
        assert all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))
        assert a[2:] == b[2:]


def test_the_edge_code_is_zero_on_flat_cells_and_signs_an_edge():
    flat = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(train.edge_code(flat, 4), torch.zeros(1, 2, 2))
    right_bright = torch.full((1, 3, 4, 4), -1.0)
    right_bright[..., 2:] = 1.0
    code = train.edge_code(right_bright, 4)
    assert code.item() > 0.1
    assert torch.allclose(train.edge_code(right_bright.flip(-1), 4), -code)


def test_the_code_stage_adds_the_edge_code_error_of_the_fourth_latent_channel():
    torch.manual_seed(0)
    vae = train.build_models(train.build_tokenizer(), 0, 4)[0]  # random weights: channel 3 varies
    examples = train.batch_examples(0, 2, train.CODE_OFFSET)
    pixels = train.to_pixels([e.source for e in examples] + [e.edited for e in examples])
    with torch.no_grad():
        plain, with_code = (train.vae_step(vae, examples, 1e-4, code_weight=w).item() for w in (0.0, 2.0))
        expected = torch.nn.functional.mse_loss(vae.encode(pixels).latent_dist.mode()[:, 3],
                                                train.edge_code(pixels, 4)).item()
    assert expected > 0
    assert with_code - plain == pytest.approx(2.0 * expected, rel=1e-4)


def test_in_the_keep_stage_some_dropped_instructions_ask_for_no_change():
    rows, scale = torch.arange(2000), 2.0
    data = {"source": torch.randn(2000, 4, 2, 2), "edited": torch.randn(2000, 4, 2, 2),
            "texts": [f"make the circle red {i}" for i in range(2000)]}
    for keep in (0.0, 0.5, 1.0):
        target, condition, texts = train.ip2p_batch(data, rows, scale, torch.Generator().manual_seed(0), keep)
        shown = condition.flatten(1).abs().sum(1) > 0
        dropped = torch.tensor([text == "" for text in texts]) & shown  # the instruction alone is dropped
        unchanged = (target == data["source"] * scale).flatten(1).all(1)
        assert torch.equal(condition[shown], data["source"][shown])
        assert [t for t in texts if t] == [data["texts"][i] for i, t in enumerate(texts) if t]
        assert torch.equal(target[~unchanged], data["edited"][~unchanged] * scale)
        assert not (unchanged & ~dropped).any()  # only a dropped instruction asks for no change
        assert unchanged.sum() == pytest.approx(keep * dropped.sum().item(), abs=0.25 * dropped.sum().item())
        assert dropped.float().mean() == pytest.approx(train.DROP_TEXT, abs=0.02)


def test_max_minutes_ends_training_early_and_still_exports(tmp_path):
    out = tmp_path / "model"
    args = ARGS + ["--unet-steps", "40", "--max-minutes", "1e-9", "--work", str(tmp_path / "work"), "--out", str(out)]
    train.main(args)
    state = torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=False)["state"]
    assert state["steps"]["t2i"] == 1 and state["steps"]["ip2p"] == 0
    assert "--max-minutes reached" in (tmp_path / "work" / "log.jsonl").read_text()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_the_kind_code_is_each_shapes_level_inside_it_and_zero_outside():
    example = next(e for e in map(make_example, range(200)) if len(e.shapes) >= 2)
    code = train.kind_code([example], 16)[0]
    covered = np.zeros((16, 16))
    for kind, mask in example.shapes.items():
        share = mask.reshape(16, 4, 16, 4).mean(axis=(1, 3))
        covered += share
        assert (share == 1).any()
        assert torch.allclose(code[torch.from_numpy(share == 1)], torch.tensor(train.KIND_LEVELS[kind]))
    assert (code[torch.from_numpy(covered == 0)] == 0).all()
    assert len(set(train.KIND_LEVELS.values())) == 4 and 0 not in train.KIND_LEVELS.values()


def test_the_pooling_vae_decodes_without_reading_the_fourth_channel():
    """What the kind stage relies on: the code it adds to channel 3 leaves the pictures alone."""
    torch.manual_seed(0)
    vae = train.build_models(train.build_tokenizer(), 0, 4)[0]
    train.start_as_pooling(vae)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    for step in range(3):
        loss = train.vae_step(vae, train.batch_examples(step, 2), 1e-4)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        latent = vae.encode(train.to_pixels([make_example(5).source])).latent_dist.mode()
        assert latent[:, 3].abs().max() == 0
        coded = latent.clone()
        coded[:, 3] = torch.linspace(-1.5, 1.5, 256).reshape(16, 16)
        assert torch.equal(vae.decode(latent).sample, vae.decode(coded).sample)


def test_the_kind_stage_trains_a_new_encoder_only(tmp_path):
    torch.manual_seed(0)
    vae = train.build_models(train.build_tokenizer(), 0, 4)[0]
    train.start_as_pooling(vae)
    decoder = {k: v.clone() for k, v in vae.decoder.state_dict().items()}
    old = {k: v.clone() for k, v in train.encoder_of(vae).state_dict().items()}
    teacher = train.restart_encoder(vae, seed=0)
    assert all(torch.equal(old[k], v) for k, v in teacher.state_dict().items())
    assert not torch.equal(old["encoder.conv_out.weight"], vae.encoder.conv_out.weight)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    for step in range(2):
        loss = train.kind_step(vae, teacher, train.batch_examples(step, 2, train.CODE_OFFSET), code_weight=1.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert all(p.grad is None for p in vae.decoder.parameters())
    assert vae.encoder.conv_out.weight.grad.abs().sum() > 0
    assert all(torch.equal(decoder[k], v) for k, v in vae.decoder.state_dict().items())
    assert all(torch.equal(old[k], v) for k, v in teacher.state_dict().items())
    with torch.no_grad():  # the log-variance stays as pooling set it: tiny
        posterior = vae.encode(train.to_pixels([make_example(7).source])).latent_dist
    assert torch.allclose(posterior.logvar, torch.tensor(-10.0))


def test_an_interrupted_kind_stage_resumes_to_the_same_encoder(tmp_path, monkeypatch):
    kind = ["--code", "kind", "--code-steps", "3"]

    def vae_of(name):
        train.main(ARGS + kind + ["--work", str(tmp_path / name / "work"), "--out", str(tmp_path / name / "model")])
        return load_file(tmp_path / name / "model" / "vae" / "diffusion_pytorch_model.safetensors")

    straight = vae_of("straight")
    real_step = train.kind_step
    monkeypatch.setattr(train, "kind_step", interrupted_at(real_step, 3))
    with pytest.raises(KeyboardInterrupt):
        vae_of("resumed")
    interrupted = torch.load(tmp_path / "resumed" / "work" / "checkpoint.pt", weights_only=False)
    assert interrupted["state"]["steps"]["code"] == 2 and "code_teacher" in interrupted
    monkeypatch.setattr(train, "kind_step", real_step)
    resumed = vae_of("resumed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    finished = [torch.load(tmp_path / name / "work" / "checkpoint.pt", weights_only=False)
                for name in ("straight", "resumed")]
    assert all(torch.equal(finished[0]["vae"][k], finished[1]["vae"][k]) for k in finished[0]["vae"])
    assert "code_teacher" not in finished[1]


def test_a_work_folder_refuses_to_change_the_encoder_under_its_unet(tmp_path):
    work = ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "model")]
    train.main(ARGS + ["--code-steps", "0"] + work)
    with pytest.raises(SystemExit, match="new --work folder"):
        train.main(ARGS + ["--code-steps", "2"] + work)


def test_a_code_stage_resumes_only_with_the_code_it_began(tmp_path, monkeypatch):
    work = ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "model")]
    monkeypatch.setattr(train, "kind_step", interrupted_at(train.kind_step, 2))
    with pytest.raises(KeyboardInterrupt):
        train.main(ARGS + ["--code-steps", "3", "--code", "kind"] + work)
    with pytest.raises(SystemExit, match="--code kind"):
        train.main(ARGS + ["--code-steps", "3", "--code", "edge"] + work)


def test_cached_latents_are_encoded_again_for_another_encoder(tmp_path):
    args = ARGS + ["--t2i-steps", "0", "--unet-steps", "0", "--out", str(tmp_path / "model")]
    train.main(args + ["--code-steps", "0", "--work", str(tmp_path / "pooled")])
    (tmp_path / "kind").mkdir()
    (tmp_path / "kind" / "latents.pt").write_bytes((tmp_path / "pooled" / "latents.pt").read_bytes())
    train.main(args + ["--code-steps", "2", "--work", str(tmp_path / "kind")])
    pooled, kind = (torch.load(tmp_path / name / "latents.pt", weights_only=False) for name in ("pooled", "kind"))
    assert pooled["encoder"] != kind["encoder"]
    assert pooled["source"][:, 3].abs().max() == 0 and kind["source"][:, 3].abs().max() > 0


def test_the_decoder_stage_retrains_the_decoder_and_leaves_the_encoder(tmp_path):
    def vae_of(name, *extra):
        out = tmp_path / name / "model"
        train.main(ARGS + ["--code", "kind", *extra, "--work", str(tmp_path / name / "work"), "--out", str(out)])
        return load_file(out / "vae" / "diffusion_pytorch_model.safetensors")

    kept, redone = vae_of("kept"), vae_of("redone", "--decoder-steps", "2")
    encoder = [k for k in kept if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in kept if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder and decoder and len(encoder) + len(decoder) == len(kept)
    assert all(torch.equal(kept[k], redone[k]) for k in encoder)
    assert not torch.equal(kept["decoder.conv_out.weight"], redone["decoder.conv_out.weight"])
    log = (tmp_path / "redone" / "work" / "log.jsonl").read_text()
    assert '"stage": "decoder", "step": 2' in log


def test_the_quick_check_measures_binding_with_one_instruction_and_with_several():
    tokenizer = train.build_tokenizer()
    torch.manual_seed(0)
    vae, unet, text_encoder, scheduler = train.build_models(tokenizer, 0, 4, True)
    found = train.quick_check(vae, unet, text_encoder, tokenizer, scheduler, edits=True, count=2)
    assert set(found) == {"iou", "own_shape", "multi_own_shape", "plain_lands_multi_shape", "plain_clean_multi_shape"}
    assert all(0.0 <= value <= 1.0 for value in found.values())
    assert "multi_own_shape" in train.quick_check(vae, unet, text_encoder, tokenizer, scheduler, edits=False, count=1)
