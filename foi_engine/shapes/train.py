"""Train the shapes model: `python -m foi_engine.shapes.train --threads 2` (the shipped recipe: MODEL_CARD.md).

Five stages, each reproducible from --seed and resumed from the checkpoint in --work:
1. vae — the VAE, started as colour pooling (model.start_as_pooling), learns to
   reconstruct source and edited scenes. Its fourth latent channel stays constant: pooling
   fills three. With --code-steps a code stage follows and puts something there:
   - --code kind: a new encoder learns the old one's colours and, in channel 3, the kind of
     shape each cell lies in (kind_code, from the generator's shapes). The decoder is kept;
     it never read channel 3. Without this, the keyword's mask hardly tells its shape from
     the others: the latent shows colours, not kinds (MODEL_CARD.md).
   - --code edge: the whole VAE goes on with one more loss term, channel 3 towards where
     edges cross each cell (edge_code). Tried; it did not help.
   Then the latent scale is measured so scaled latents have unit variance. With
   --decoder-steps a re-initialised decoder learns to reconstruct from the finished encoder's
   latents: started as pooling, it computed with the three colour channels only.
2. latents — the VAE encodes --examples training examples (source and edited) once;
   the later stages read these instead of running the VAE every step.
3. t2i — the UNet and text encoder learn text-to-image on captions that name each shape
   with its colour ("a red circle and a blue star"), the image condition empty. To draw
   the right shape in the right colour, each place in the picture must look up its own
   shape's word, so shape words should find their shapes in cross-attention: the stage real
   InstructPix2Pix inherits from Stable Diffusion and a from-scratch model lacks. Measured
   here, a short one helps the binding a little and a long one hurts it (MODEL_CARD.md).
4. ip2p — InstructPix2Pix's objective: the edited scene's latent, noised, given the
   source's unscaled latent (concatenated, as the engine conditions) and the
   instruction; conditioning dropout 5 % text, 5 % image, 5 % both, so classifier-free
   guidance works. A share of text-to-image examples stays in every batch.
5. keep — InstructPix2Pix continued, where half (--keep-share) of the dropped instructions ask
   for no change: their target is the source. FoI keeps each mask's outside with the
   image-only branch; trained as in stage 4 alone, that branch predicts the average of every
   edit the scene might have had, and recolours shapes no instruction named. When this stage
   runs, its checks choose the export.

The text encoder has no transformer layers by default (token and position embeddings only):
a causal encoder let later words summarise the shape's, and the edit bound to the colour word,
never to the keyword whose attention FoI reads. The UNet reads the instruction only on the
latent's 16×16 grid (--cross-attention finest): with cross-attention at every level an 8×8 layer
bound words to shapes, and the 16×16 layers FoI's masks come from did not, so with several
instructions each keyword's mask fell on any named shape.

The UNet predicts v (velocity), not the noise: sampling starts near t = 800, where an
ε-prediction loss weights errors in the predicted picture by an SNR of 0.04, so the edit
decision got almost no training signal. The loss is plain MSE on latents: attention is
never supervised, so the grounding tests measure what the model learnt by itself. An
exponential moving average of the UNet and text encoder is what is exported.

Every --check-every steps a quick held-out slice (scenes the evaluation never reads)
measures binding: the keyword's mask IoU and whether it lies on the named shape; in the
ip2p stage also whether plain InstructPix2Pix lands the asked colour. Lines go to
--work/log.jsonl; the averaged weights of the ip2p check that scores best (IoU + clean edits) are the
ones exported. The finished model is saved in diffusers format (safetensors) to --out.

On a GPU: --device cuda (--max-minutes bounds a run whose machine is lent for minutes)."""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .. import threads

# Before torch loads OpenMP: passive waiting. Two spinning threads took 16 s a step instead of
# 1.3 while one more process ran; on a machine left alone they are faster (0.55 s a step against
# 0.81 on two cores): there, OMP_WAIT_POLICY=ACTIVE.
threads.apply(threads.cores())

import numpy as np
import torch
import torch.nn.functional as F

from PIL import Image

from ..atomic import atomic_write
from ..catalog import SETTINGS_FILE
from ..engine import FoiEngine
from .data import TEMPLATES, caption, make_example
from .evaluate import CLEAN_PSNR_DB, instructions_of, iou, lands, own_shape, psnr, settings, upsample
from .model import build_models, build_tokenizer, start_as_pooling

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK = ROOT / ".shapes-train"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "models" / "shapes"
DROP_TEXT, DROP_IMAGE, DROP_BOTH = 0.05, 0.05, 0.05
DROP_CAPTION = 0.1  # text-to-image examples with no caption: the unconditional branch
TRAIN_OFFSET = 1_000_000  # training examples are train-split indices from here on
CHECK_OFFSET = 300_000  # held-out indices of the quick checks (the evaluation reads below 200 000)
MULTI_CHECKS = 500  # … from CHECK_OFFSET + this on, the scenes with several instructions
CODE_OFFSET = 2_000_000  # training examples of the code stage
DECODER_OFFSET = 3_000_000  # … and of the decoder stage
# Cross-attention only on the latent's grid: there the masks' layers must bind each word to its
# shape themselves. With every level, an 8×8 layer bound them and the 16×16 ones, FoI's, only
# looked from wherever an edit was under way to every shape word (MODEL_CARD.md, *Why*).
CROSS_ATTENTION = "finest"
STAGES = ("vae", "t2i", "ip2p", "code", "decoder", "keep")  # the order seeds each stage's draws (new ones last)


def to_pixels(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images → (N, 3, H, W) in [-1, 1], as the pipeline preprocesses."""
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return stacked / 127.5 - 1.0


def batch_examples(step: int, batch: int, offset: int = 0):
    return [make_example(offset + step * batch + i) for i in range(batch)]


def edge_code(pixels: torch.Tensor, factor: int) -> torch.Tensor:
    """Per latent cell of `factor`² pixels: mean brightness weighted by a diagonal ramp
    (x + y, centred, over 2·factor), so a flat cell codes 0 and an edge's side and slant
    show as the sign and size of the code. (N, 3, H, W) → (N, H/factor, W/factor)."""
    ramp = torch.arange(float(factor), device=pixels.device) - (factor - 1) / 2
    pattern = (ramp[None, :] + ramp[:, None]).reshape(1, 1, factor, factor) / (2 * factor)
    return F.conv2d(pixels.mean(1, keepdim=True), pattern, stride=factor)[:, 0]


KIND_LEVELS = {"circle": 1.5, "square": 0.5, "triangle": -0.5, "star": -1.5}  # 0: background


def kind_code(examples, grid: int) -> torch.Tensor:
    """Per latent cell: each kind's share of the cell times its level in KIND_LEVELS, so the
    inside of a shape codes its kind at the colours' size and the background 0. The labels
    come from the generator: this teaches the VAE to see kinds, never where attention goes.
    (N examples) → (N, grid, grid); source and edited share their shapes."""
    factor = examples[0].source.shape[0] // grid
    codes = np.zeros((len(examples), grid, grid), dtype=np.float32)
    for row, example in enumerate(examples):
        for kind, mask in example.shapes.items():
            codes[row] += KIND_LEVELS[kind] * mask.reshape(grid, factor, grid, factor).mean(axis=(1, 3))
    return torch.from_numpy(codes)


def encoder_of(vae) -> torch.nn.ModuleDict:
    """The modules that turn pixels into the latent distribution's moments."""
    return torch.nn.ModuleDict({"encoder": vae.encoder, "quant_conv": vae.quant_conv})


def restart_encoder(vae, seed: int) -> torch.nn.ModuleDict:
    """Re-initialise the VAE's encoder (diffusers' defaults) and return a frozen copy of the old
    one to learn the colours from. Started as pooling, the old one cannot learn kinds: its one-group
    norm before conv_out zeroes every channel but the three colours, and the conv_out weights
    from those channels are zero too, a saddle no gradient leaves."""
    teacher = copy.deepcopy(encoder_of(vae)).requires_grad_(False)
    torch.manual_seed(seed)
    for module in encoder_of(vae).modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    with torch.no_grad():  # kind_step trains the mean only: keep the log-variance tiny, as pooling set it
        channels = vae.config.latent_channels
        vae.quant_conv.weight[channels:] = 0.0
        vae.quant_conv.bias[channels:] = -10.0
    return teacher


def kind_step(vae, teacher, examples, code_weight: float) -> torch.Tensor:
    """The encoder keeps the teacher's colours (latent channels 0–2 of the mode, which the engine
    encodes to) and learns the kind code in channel 3. The decoder is not trained: it never read
    channel 3 (constant 0 while it learnt, so its weights from it stayed 0), so it decodes as before."""
    pixels = to_pixels([e.source for e in examples] + [e.edited for e in examples]).to(vae.device)
    mean = encoder_of(vae)["quant_conv"](vae.encoder(pixels))[:, :4]
    with torch.no_grad():
        colours = teacher["quant_conv"](teacher["encoder"](pixels))[:, :3]
    kinds = kind_code(examples, mean.shape[-1]).to(pixels.device)
    return F.mse_loss(mean[:, :3], colours) + code_weight * F.mse_loss(mean[:, 3], torch.cat([kinds, kinds]))


def restart_decoder(vae, seed: int) -> None:
    """Re-initialise the decoder (diffusers' defaults): started as pooling, it has the encoder's
    saddle (restart_encoder) and only ever computed with the three colour channels."""
    torch.manual_seed(seed)
    for module in (*vae.decoder.modules(), *vae.post_quant_conv.modules()):
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def decoder_step(vae, examples) -> torch.Tensor:
    """Reconstruction MSE of the decoder alone, from the encoder's latents (kept as they are:
    the UNet is trained on them)."""
    pixels = to_pixels([e.source for e in examples] + [e.edited for e in examples]).to(vae.device)
    with torch.no_grad():
        latent = vae.encode(pixels).latent_dist.mode()
    return F.mse_loss(vae.decode(latent).sample, pixels)


def encode_text(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


def save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        torch.save(state, handle)


def vae_step(vae, examples, kl_weight: float, code_weight: float = 0.0) -> torch.Tensor:
    pixels = to_pixels([e.source for e in examples] + [e.edited for e in examples]).to(vae.device)
    # Decoded from the mode, as the engine encodes; the KL term keeps the latents small and centred.
    posterior = vae.encode(pixels).latent_dist
    latent = posterior.mode()
    reconstruction = vae.decode(latent).sample
    loss = F.mse_loss(reconstruction, pixels) + kl_weight * posterior.kl().mean() / posterior.mean[0].numel()
    if code_weight:
        factor = pixels.shape[-1] // latent.shape[-1]
        loss = loss + code_weight * F.mse_loss(latent[:, 3], edge_code(pixels, factor))
    return loss


@torch.no_grad()
def vae_psnr(vae, count: int = 64) -> float:
    """Round-trip PSNR (dB, 0–255 pixels) on held-out scenes of the quick-check slice."""
    examples = [make_example(CHECK_OFFSET + i, "heldout") for i in range(count)]
    pixels = to_pixels([e.source for e in examples]).to(vae.device)
    decoded = vae.decode(vae.encode(pixels).latent_dist.mode()).sample.clamp(-1, 1)
    mse = F.mse_loss(decoded, pixels).item() * 127.5**2
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


@torch.no_grad()
def kinds_seen(vae, count: int = 64, inside: float = 0.6) -> float:
    """Share of latent cells at least `inside` within a shape whose fourth channel is nearest
    to that shape's level in KIND_LEVELS (of the levels and 0), on held-out quick-check scenes."""
    examples = [make_example(CHECK_OFFSET + i, "heldout") for i in range(count)]
    code = vae.encode(to_pixels([e.source for e in examples]).to(vae.device)).latent_dist.mode()[:, 3].cpu()
    levels = torch.tensor([0.0, *KIND_LEVELS.values()])
    seen = (code[..., None] - levels).abs().argmin(-1)
    grid, hits, cells = code.shape[-1], 0, 0
    for row, example in enumerate(examples):
        factor = example.source.shape[0] // grid
        for kind, mask in example.shapes.items():
            within = torch.from_numpy(mask.reshape(grid, factor, grid, factor).mean(axis=(1, 3)) >= inside)
            hits += int((seen[row][within] == 1 + list(KIND_LEVELS).index(kind)).sum())
            cells += int(within.sum())
    return hits / max(cells, 1)


@torch.no_grad()
def measure_scale(vae, count: int = 256) -> float:
    """1 / std of the VAE's latents (latent_dist.mode()) over training scenes."""
    examples = [make_example(10_000_000 + i) for i in range(count)]
    latents = vae.encode(to_pixels([e.edited for e in examples]).to(vae.device)).latent_dist.mode()
    return float(1.0 / latents.std())


def render(start: int, stop: int, seed: int) -> tuple:
    """Training examples start..stop: source and edited pixels, instructions and captions."""
    sources, edited, texts, captions = [], [], [], []
    for i in range(start, stop):
        example = make_example(TRAIN_OFFSET + i)
        rng = np.random.default_rng([seed, i])
        sources.append(example.source)
        edited.append(example.edited)
        texts.append(example.text)
        captions.append((caption(example.source, example.shapes, rng), caption(example.edited, example.shapes, rng)))
    return sources, edited, texts, captions


def rendered(count: int, seed: int, workers: int, chunk: int = 256):
    """render's chunks of the first `count` examples, in order, drawn by `workers` processes
    (rendering, not the VAE, is what encoding the dataset waits for)."""
    spans = [(start, min(count, start + chunk), seed) for start in range(0, count, chunk)]
    if workers <= 1:
        yield from (render(*span) for span in spans)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(render, *zip(*spans))


def describe(count: int, seed: int, workers: int = 1) -> dict:
    """The instructions and captions of the first `count` training examples; kept beside
    the latents with the templates they came from, so new templates redo only the words."""
    texts, captions = [], []
    for _, _, chunk_texts, chunk_captions in rendered(count, seed, workers):
        texts += chunk_texts
        captions += chunk_captions
    return {"texts": texts, "captions": captions, "templates": TEMPLATES}


def fingerprint(vae) -> str:
    """Of the encoder's weights: cached latents are reused only with the encoder that made them."""
    digest = hashlib.sha1()
    for name, tensor in sorted(encoder_of(vae).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def encode_dataset(vae, count: int, seed: int, workers: int = 1) -> dict:
    """Unscaled latents (on the CPU) of `count` training examples, their instructions and captions."""
    from tqdm.auto import tqdm

    sources, edited, texts, captions = [], [], [], []
    for chunk in tqdm(rendered(count, seed, workers), total=-(-count // 256), desc="Latents", mininterval=10):
        latents = vae.encode(to_pixels(chunk[0] + chunk[1]).to(vae.device)).latent_dist.mode().cpu()
        sources.append(latents[: len(chunk[0])])
        edited.append(latents[len(chunk[0]):])
        texts += chunk[2]
        captions += chunk[3]
    return {"count": count, "source": torch.cat(sources), "edited": torch.cat(edited), "texts": texts,
            "captions": captions, "templates": TEMPLATES}


def velocity(target: torch.Tensor, noise: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """v = √ᾱ·ε − √(1−ᾱ)·x₀, what a v-prediction UNet is trained to output."""
    return a.sqrt() * noise - (1 - a).sqrt() * target


def diffusion_loss(parts, target, condition, texts, generator) -> torch.Tensor:
    """v-prediction MSE for `target` latents (scaled) given image `condition` and texts."""
    unet, text_encoder, tokenizer, alphas = parts
    noise = torch.randn(target.shape, generator=generator).to(target.device)
    t = torch.randint(0, len(alphas), (len(target),), generator=generator).to(target.device)
    a = alphas[t][:, None, None, None]
    noisy = a.sqrt() * target + (1 - a).sqrt() * noise
    embeds = encode_text(tokenizer, text_encoder, texts)
    prediction = unet(torch.cat([noisy, condition], dim=1), t, encoder_hidden_states=embeds).sample
    return F.mse_loss(prediction, velocity(target, noise, a))


def t2i_batch(data, rows, scale, generator):
    """Captioned pictures (source or edited at random), image condition empty."""
    draw = torch.rand(len(rows), 2, generator=generator)
    pick = draw[:, 0] < 0.5
    index = torch.tensor(rows, dtype=torch.long)
    edited = pick.to(data["edited"].device)[:, None, None, None]
    target = torch.where(edited, data["edited"][index], data["source"][index]) * scale
    texts = ["" if d[1] < DROP_CAPTION else data["captions"][r][int(p)]
             for r, p, d in zip(rows, pick.tolist(), draw.tolist())]
    return target, torch.zeros_like(target), texts


def ip2p_batch(data, rows, scale, generator, keep: float = 0.0):
    """Source → edited with the instruction; conditioning dropout for guidance. A `keep` share
    of the examples whose instruction is dropped (the keep stage) ask for no change: their
    target is the source."""
    draw = torch.rand(len(rows), generator=generator)
    target = data["edited"][rows] * scale
    source = data["source"][rows]
    drop_text = (draw < DROP_TEXT) | (draw >= DROP_TEXT + DROP_IMAGE) & (draw < DROP_TEXT + DROP_IMAGE + DROP_BOTH)
    drop_image = (draw >= DROP_TEXT) & (draw < DROP_TEXT + DROP_IMAGE + DROP_BOTH)
    if keep:
        unchanged = (draw < DROP_TEXT) & (torch.rand(len(rows), generator=generator) < keep)
        target = torch.where(unchanged.to(target.device)[:, None, None, None], source * scale, target)
    texts = ["" if dropped else data["texts"][r] for r, dropped in zip(rows.tolist(), drop_text.tolist())]
    return target, source * (~drop_image).float().to(source.device)[:, None, None, None], texts


def unet_step(parts, data, stage: str, step: int, batch: int, t2i_share: float, scale: float, generator,
              keep: float = 0.0):
    """One stage step's loss; the batch's rows and draws come from `generator` alone."""
    rows = torch.randint(0, data["count"], (batch,), generator=generator)
    if stage == "t2i":
        return diffusion_loss(parts, *t2i_batch(data, rows.tolist(), scale, generator), generator)
    pictures = round(batch * t2i_share)
    batches = [t2i_batch(data, rows[:pictures].tolist(), scale, generator)] if pictures else []
    batches.append(ip2p_batch(data, rows[pictures:], scale, generator, keep if stage == "keep" else 0.0))
    target, condition = (torch.cat([b[i] for b in batches]) for i in (0, 1))
    return diffusion_loss(parts, target, condition, [text for b in batches for text in b[2]], generator)


def pipeline(vae, unet, text_encoder, tokenizer, scheduler):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    return StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


@torch.no_grad()
def quick_check(vae, unet, text_encoder, tokenizer, scheduler, edits: bool, count: int = 24) -> dict:
    """Binding on held-out one-instruction scenes of 2–4 shapes whose edit names a shape, and
    on scenes with 2–3 instructions (the keyword masks only)."""
    engine = FoiEngine(pipeline(*(copy.deepcopy(m).eval() for m in (vae, unet, text_encoder)), tokenizer,
                                scheduler), model_name="shapes-training")
    scenes, index = [], CHECK_OFFSET
    while len(scenes) < count:
        example = make_example(index, "heldout", instructions=1)
        index += 1
        if len(example.shapes) >= 2 and example.edits[0].keyword is not None:
            scenes.append(example)
    ious, owns, landed, clean = [], [], [], []
    for seed, example in enumerate(scenes):
        source, edit = Image.fromarray(example.source), example.edits[0]
        found = engine.locate(source, instructions_of(example), settings(True), seed=seed)
        mask = upsample(found.masks[0])
        ious.append(iou(mask, edit.mask))
        owns.append(own_shape(mask, example, edit.target))
        if edits:
            result = engine.edit(source, instructions_of(example), settings(False, steps=20), seed=seed)
            pixels = np.asarray(result.image)
            landed.append(lands(pixels, edit.mask, edit.colour))
            clean.append(landed[-1] and not psnr(pixels, example.source, ~edit.mask) < CLEAN_PSNR_DB)
    report = {"iou": float(np.mean(ious)), "own_shape": float(np.mean(owns))}
    # Several instructions in one prompt: does each keyword's mask still lie on its own shape?
    joined = []
    for seed in range(count):
        example = make_example(CHECK_OFFSET + MULTI_CHECKS + seed, "heldout", instructions=2 + seed % 2)
        found = engine.locate(Image.fromarray(example.source), instructions_of(example), settings(True), seed=seed)
        joined += [own_shape(upsample(mask), example, edit.target)
                   for mask, edit in zip(found.masks, example.edits) if edit.keyword is not None]
    report["multi_own_shape"] = float(np.mean(joined))
    if landed:
        report["plain_lands_multi_shape"] = float(np.mean(landed))
        report["plain_clean_multi_shape"] = float(np.mean(clean))
    return report


def score(check: dict) -> float:
    """What the best snapshot is chosen by: the keyword mask's IoU plus plain
    InstructPix2Pix's clean rate (lands, outside kept) on the quick-check slice (never the
    evaluation's scenes). Lands alone rewards a model that recolours every shape."""
    return check["iou"] + check.get("plain_clean_multi_shape", 0.0)


def export(vae, unet, text_encoder, tokenizer, scheduler, out: Path) -> None:
    """Save the pipeline (safetensors, weights in float16 to halve the repository's
    share: the engine loads them as float32 on CPU) beside `out`, then swap it into place."""
    vae, unet, text_encoder = (copy.deepcopy(m).eval().half() for m in (vae, unet, text_encoder))
    pipe = pipeline(vae, unet, text_encoder, tokenizer, scheduler)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=".shapes-export-"))
    pipe.save_pretrained(staging, safe_serialization=True)
    for path in [staging, *staging.rglob("*")]:  # mkdtemp and safetensors make them private
        path.chmod(0o755 if path.is_dir() else 0o644)
    for kept in ("MODEL_CARD.md", SETTINGS_FILE):  # written by hand, not by training
        if (out / kept).exists():
            shutil.copy2(out / kept, staging / kept)
    old = out.parent / (out.name + ".old")
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def learning_rate(peak: float, step: int, steps: int, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    warmup = min(warmup, max(1, steps // 4))
    progress = max(0.0, (step - warmup) / max(1, steps - warmup))
    return peak * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-steps", type=int, default=800)
    parser.add_argument("--vae-batch", type=int, default=16, help="examples per VAE step (two images each)")
    parser.add_argument("--vae-lr", type=float, default=4e-4)
    parser.add_argument("--kl-weight", type=float, default=1e-4)
    parser.add_argument("--code-steps", type=int, default=2000, help="steps of the code stage (0: none)")
    parser.add_argument("--code-lr", type=float, default=1e-3, help="peak learning rate of the code stage "
                        "(the edge code was taught at 2e-4)")
    parser.add_argument("--code-weight", type=float, default=1.0, help="weight of the code's MSE")
    parser.add_argument("--code", choices=("edge", "kind"), default="kind",
                        help="what the code stage puts in the fourth latent channel: where edges cross each "
                             "cell (edge_code), or the kind of shape it lies in (kind_code)")
    parser.add_argument("--decoder-steps", type=int, default=6000,
                        help="steps of a re-initialised decoder on the finished encoder's latents (0: none)")
    parser.add_argument("--decoder-lr", type=float, default=1e-3)
    parser.add_argument("--examples", type=int, default=24_000, help="training examples encoded once")
    parser.add_argument("--t2i-steps", type=int, default=500)
    parser.add_argument("--unet-steps", type=int, default=5000, help="InstructPix2Pix steps")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the text-to-image stage")
    parser.add_argument("--ip2p-lr", type=float, default=5e-4, help="peak learning rate of the InstructPix2Pix stage")
    parser.add_argument("--keep-steps", type=int, default=2000,
                        help="InstructPix2Pix steps continued where some empty instructions ask for no change")
    parser.add_argument("--keep-lr", type=float, default=3e-4, help="peak learning rate of the keep stage")
    parser.add_argument("--keep-share", type=float, default=0.5,
                        help="share of the keep stage's dropped instructions whose target is the source")
    parser.add_argument("--t2i-share", type=float, default=0.25, help="text-to-image share of InstructPix2Pix batches")
    parser.add_argument("--text-layers", type=int, default=0,
                        help="transformer layers of the text encoder (0: no token mixing, so only a shape's "
                             "own word can tell it apart)")
    parser.add_argument("--latent-factor", type=int, choices=(2, 4), default=4,
                        help="the VAE's downsampling: 4 gives 16×16 latents, 2 gives 32×32 (slower, finer masks)")
    parser.add_argument("--cross-attention", choices=("finest", "every"), default=CROSS_ATTENTION,
                        help="where the UNet reads the instruction: only at the latent's own grid, the layers "
                             "FoI's masks come from (v21 on), or at every level (v20 and before)")
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=threads.cores(), help="CPU threads (default: one per core)")
    parser.add_argument("--device", default="cpu", help="where to train: cpu, cuda, cuda:1 …")
    parser.add_argument("--workers", type=int, default=threads.cores(),
                        help="processes that render the training examples to encode")
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="end the UNet stages after this run's first so many minutes, save, and export "
                             "what they learnt (0: no limit)")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--check-every", type=int, default=250, help="quick held-out binding check (0: never)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--export-only", action="store_true", help="save the latest checkpoint as the model")
    parser.add_argument("--reset-best", action="store_true",
                        help="forget the best check so far: the export is chosen among this run's checks")
    args = parser.parse_args(argv)
    threads.apply(args.threads)  # a count given, not automatic: the quick checks' engine keeps it
    from diffusers import EulerAncestralDiscreteScheduler
    from tqdm.auto import tqdm

    tokenizer = build_tokenizer()
    torch.manual_seed(args.seed)
    vae, unet, text_encoder, scheduler = build_models(tokenizer, args.text_layers, args.latent_factor,
                                                         args.cross_attention == "finest")
    scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler.config, prediction_type="v_prediction")
    start_as_pooling(vae)
    device = torch.device(args.device)
    vae, unet, text_encoder = (module.to(device) for module in (vae, unet, text_encoder))
    ema_unet, ema_text = copy.deepcopy(unet).requires_grad_(False), copy.deepcopy(text_encoder).requires_grad_(False)
    alphas = torch.cumprod(1.0 - scheduler.betas, dim=0).to(device)
    trained = list(unet.parameters()) + list(text_encoder.parameters())
    vae_opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    unet_opt = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    args.work.mkdir(parents=True, exist_ok=True)
    checkpoint, cache, log = args.work / "checkpoint.pt", args.work / "latents.pt", args.work / "log.jsonl"
    best = args.work / "best.pt"
    state = {"steps": dict.fromkeys(STAGES, 0), "seconds": 0.0, "ema_updates": 0}
    teacher, saved_teacher = None, None  # the kind stage's frozen old encoder
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False, map_location=device)
        built = saved["args"].get("cross_attention", "every")  # work folders from before the option: every level
        if built != args.cross_attention:
            raise SystemExit(f"This work folder's UNet was built with --cross-attention {built}; resume it as it was "
                             "built, or use a new --work folder.")
        for module, key in ((vae, "vae"), (unet, "unet"), (text_encoder, "text_encoder"), (ema_unet, "ema_unet"),
                            (ema_text, "ema_text"), (vae_opt, "vae_opt"), (unet_opt, "unet_opt")):
            module.load_state_dict(saved[key])
        vae.register_to_config(scaling_factor=saved["scaling_factor"])
        saved_teacher = saved.get("code_teacher")
        state = saved["state"]
        for stage in STAGES:  # checkpoints from before the code and decoder stages
            state["steps"].setdefault(stage, 0)
        print(f"Resumed from {checkpoint}: {state}")
    if args.reset_best:
        state.pop("best", None)
        best.unlink(missing_ok=True)

    def save():
        save_atomic({"vae": vae.state_dict(), "unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
                     "ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict(),
                     "vae_opt": vae_opt.state_dict(), "unet_opt": unet_opt.state_dict(),
                     "scaling_factor": vae.config.scaling_factor, "state": state, "args": vars(args),
                     **({"code_teacher": teacher.state_dict()} if teacher is not None else {})}, checkpoint)

    def note(**fields):
        line = json.dumps({"seconds": round(time.time() - started), **fields})
        print(line, flush=True)
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    started = time.time() - state["seconds"]
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes > 0 else float("inf")
    out_of_time = False
    if not args.export_only:
        vae.train()
        vae_stages = (("vae", args.vae_steps, args.vae_lr, 0, 0.0, 200),
                      ("code", args.code_steps, args.code_lr, CODE_OFFSET, args.code_weight, 50),
                      ("decoder", args.decoder_steps, args.decoder_lr, DECODER_OFFSET, 0.0, 100))
        for stage, steps, peak, offset, code_weight, warmup in vae_stages:
            if stage != "decoder" and state["steps"][stage] < steps and (state["steps"]["t2i"] or state["steps"]["ip2p"]):
                raise SystemExit(f"This work folder's UNet was trained on the encoder's latents: a {stage} stage would "
                                 f"change the encoder under it. Use a new --work folder.")
            if stage == "code" and 0 < state["steps"]["code"] < steps and state.get("code") != args.code:
                raise SystemExit(f"This work folder's code stage was started with --code {state.get('code', 'edge')}; "
                                 f"resume it with the same --code.")
            if stage in ("code", "decoder") and state["steps"][stage] == 0 < steps:  # a new objective: fresh moments
                vae_opt = torch.optim.AdamW(vae.parameters(), lr=peak, weight_decay=0.0)
                if stage == "decoder":
                    restart_decoder(vae, args.seed)
            if stage == "code" and state["steps"]["code"] < steps:
                state["code"] = args.code
            if stage == "code" and args.code == "kind" and state["steps"]["code"] < steps:
                if state["steps"]["code"] == 0:
                    teacher = restart_encoder(vae, args.seed)
                elif saved_teacher is None:
                    raise SystemExit("This work folder's checkpoint lacks the kind stage's old encoder; "
                                     "start the run again in a new --work folder.")
                else:
                    teacher = copy.deepcopy(encoder_of(vae)).requires_grad_(False)
                    teacher.load_state_dict(saved_teacher)
            bar = tqdm(range(state["steps"][stage], steps), initial=state["steps"][stage], total=steps,
                       desc=stage, mininterval=10)
            for step in bar:
                for group in vae_opt.param_groups:
                    group["lr"] = learning_rate(peak, step, steps, warmup)
                examples = batch_examples(step, args.vae_batch, offset)
                if stage == "decoder":
                    loss = decoder_step(vae, examples)
                elif stage == "code" and args.code == "kind":
                    loss = kind_step(vae, teacher, examples, code_weight)
                else:
                    loss = vae_step(vae, examples, args.kl_weight, code_weight)
                vae_opt.zero_grad()
                loss.backward()
                vae_opt.step()
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                state["steps"][stage], state["seconds"] = step + 1, time.time() - started
                if (step + 1) % args.save_every == 0 or step + 1 == steps:
                    if step + 1 == steps and stage == "code":
                        teacher = None  # learnt from; later stages resume without it
                    if step + 1 == steps and (stage == "code" or not args.code_steps):
                        vae.register_to_config(scaling_factor=measure_scale(vae.eval()))
                    seen = {"kinds": round(kinds_seen(vae), 3)} if stage == "code" and args.code == "kind" else {}
                    note(stage=stage, step=step + 1, psnr=round(vae_psnr(vae.eval()), 2), **seen)
                    vae.train()
                    save()
        vae.eval().requires_grad_(False)

        data = torch.load(cache, weights_only=False) if cache.exists() else None
        if data is None or data["count"] != args.examples or data.get("encoder") != fingerprint(vae):
            data = {**encode_dataset(vae, args.examples, args.seed, args.workers), "encoder": fingerprint(vae)}
            save_atomic(data, cache)
        elif data.get("templates") != TEMPLATES:
            data.update(describe(args.examples, args.seed, args.workers))
            save_atomic(data, cache)
        data["source"], data["edited"] = data["source"].to(device), data["edited"].to(device)
        parts = (unet, text_encoder, tokenizer, alphas)
        scale = vae.config.scaling_factor
        unet.train()
        text_encoder.train()
        unet_stages = (("t2i", args.t2i_steps, args.lr, 200), ("ip2p", args.unet_steps, args.ip2p_lr, 200),
                       ("keep", args.keep_steps, args.keep_lr, 100))
        for stage, steps, peak, warmup in unet_stages:
            if stage == "keep" and state["steps"]["keep"] == 0 < steps:  # its checks choose the export
                state.pop("best", None)
            bar = tqdm(range(state["steps"][stage], steps), initial=state["steps"][stage], total=steps,
                       desc=stage, mininterval=10)
            for step in bar:
                lr = learning_rate(peak, step, steps, warmup)
                for group in unet_opt.param_groups:
                    group["lr"] = lr
                generator = torch.Generator().manual_seed(args.seed * 1_000_003 + STAGES.index(stage) * 100_000 + step)
                loss = unet_step(parts, data, stage, step, args.batch, args.t2i_share, scale, generator,
                                 args.keep_share)
                unet_opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, 1.0)
                unet_opt.step()
                state["ema_updates"] += 1
                decay = min(args.ema, (1 + state["ema_updates"]) / (10 + state["ema_updates"]))
                with torch.no_grad():
                    for ema, model in ((ema_unet, unet), (ema_text, text_encoder)):
                        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}", refresh=False)
                state["steps"][stage], state["seconds"] = step + 1, time.time() - started
                out_of_time = time.monotonic() > deadline
                if (step + 1) % args.save_every == 0 or step + 1 == steps or out_of_time:
                    save()
                if args.check_every and ((step + 1) % args.check_every == 0 or step + 1 == steps or out_of_time):
                    found = quick_check(vae, ema_unet, ema_text, tokenizer, scheduler, edits=stage != "t2i")
                    note(stage=stage, step=step + 1, loss=round(loss.item(), 4), **found)
                    if stage != "t2i" and score(found) > state.get("best", {}).get("score", -1.0):
                        # Binding and editing can peak before the end: keep the best averaged weights.
                        save_atomic({"ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict()}, best)
                        state["best"] = {"stage": stage, "step": step + 1, "score": score(found)}
                        save()
                if out_of_time:
                    break
            if out_of_time:
                note(stage=stage, step=state["steps"][stage], stopped="--max-minutes reached")
                break
        print(f"Trained in {state['seconds'] / 60:.1f} min ({state['steps']}, batch {args.batch}).")
    if best.exists() and "best" in state:
        chosen = torch.load(best, weights_only=True, map_location=device)
        ema_unet.load_state_dict(chosen["ema_unet"])
        ema_text.load_state_dict(chosen["ema_text"])
        chosen_at = f"{state['best'].get('stage', 'ip2p')} step {state['best']['step']}"
        print(f"Exporting the weights of the {chosen_at} check (quick check {state['best']['score']:.2f})")
    export(vae, ema_unet, ema_text, tokenizer, scheduler, args.out)
    print(f"Saved the model to {args.out}")


if __name__ == "__main__":
    main()
