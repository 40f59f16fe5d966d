"""Train the shapes model: `python -m foi_engine.shapes.train`.

Two phases, both reproducible from --seed (example i of step s is data index
s·batch + i; the step's dropout and noise come from a generator seeded with (seed, s)):
1. the VAE, started as 4×4 colour pooling (model.start_as_pooling), on reconstructions
   of source and edited scenes; then the latent scale is measured so scaled latents
   have unit variance;
2. the UNet and the text encoder with InstructPix2Pix's objective: predict the noise
   added to the edited scene's scaled latent, given the source's unscaled latent
   (concatenated, as the engine conditions) and the instruction; conditioning dropout
   5 % text, 5 % image, 5 % both, so classifier-free guidance works.
A checkpoint is written every --save-every steps to --work (resumed automatically);
the finished model is saved in diffusers format (safetensors) to --out."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_write
from ..catalog import SETTINGS_FILE
from .data import make_example
from .model import build_models, build_tokenizer, start_as_pooling

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK = ROOT / ".shapes-train"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "models" / "shapes"
DROP_TEXT, DROP_IMAGE, DROP_BOTH = 0.05, 0.05, 0.05


def to_pixels(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images → (N, 3, H, W) in [-1, 1], as the pipeline preprocesses."""
    stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return stacked / 127.5 - 1.0


def batch_examples(step: int, batch: int, offset: int = 0):
    return [make_example(offset + step * batch + i) for i in range(batch)]


def encode_text(tokenizer, text_encoder, texts: list[str]) -> torch.Tensor:
    ids = tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids)[0]


def save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        torch.save(state, handle)


def vae_step(vae, examples, kl_weight: float) -> torch.Tensor:
    pixels = to_pixels([e.source for e in examples] + [e.edited for e in examples])
    # Decoded from the mode, as the engine encodes: sampling would only slow this short
    # training down; the KL term still keeps the latents small and centred.
    posterior = vae.encode(pixels).latent_dist
    reconstruction = vae.decode(posterior.mode()).sample
    return F.mse_loss(reconstruction, pixels) + kl_weight * posterior.kl().mean() / posterior.mean[0].numel()


@torch.no_grad()
def measure_scale(vae, count: int = 256) -> float:
    """1 / std of the VAE's latents (latent_dist.mode()) over training scenes."""
    examples = [make_example(10_000_000 + i) for i in range(count)]
    latents = vae.encode(to_pixels([e.edited for e in examples])).latent_dist.mode()
    return float(1.0 / latents.std())


def unet_step(parts, examples, generator) -> torch.Tensor:
    vae, unet, text_encoder, tokenizer, alphas = parts
    with torch.no_grad():
        latents = vae.encode(to_pixels([e.source for e in examples] + [e.edited for e in examples])).latent_dist.mode()
    n = len(examples)
    source, target = latents[:n], latents[n:] * vae.config.scaling_factor
    draw = torch.rand(n, generator=generator)
    texts = ["" if (d < DROP_TEXT or d >= DROP_TEXT + DROP_IMAGE) and d < DROP_TEXT + DROP_IMAGE + DROP_BOTH
             else e.text for d, e in zip(draw.tolist(), examples)]
    drop_image = (draw >= DROP_TEXT) & (draw < DROP_TEXT + DROP_IMAGE + DROP_BOTH)
    source = source * (~drop_image).float()[:, None, None, None]
    noise = torch.randn(target.shape, generator=generator)
    t = torch.randint(0, len(alphas), (n,), generator=generator)
    a = alphas[t][:, None, None, None]
    noisy = a.sqrt() * target + (1 - a).sqrt() * noise
    embeds = encode_text(tokenizer, text_encoder, texts)
    prediction = unet(torch.cat([noisy, source], dim=1), t, encoder_hidden_states=embeds).sample
    return F.mse_loss(prediction, noise)


def export(vae, unet, text_encoder, tokenizer, scheduler, out: Path) -> None:
    """Save the pipeline (safetensors, weights in float16 to halve the repository's
    share: the engine loads them as float32 on CPU) beside `out`, then swap it into place."""
    import copy

    from diffusers import StableDiffusionInstructPix2PixPipeline

    vae, unet, text_encoder = (copy.deepcopy(m).eval().half() for m in (vae, unet, text_encoder))
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-steps", type=int, default=200)
    parser.add_argument("--vae-batch", type=int, default=8, help="examples per VAE step (two images each)")
    parser.add_argument("--unet-steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--vae-lr", type=float, default=1e-4)
    parser.add_argument("--kl-weight", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--export-only", action="store_true", help="save the latest checkpoint as the model")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from tqdm.auto import tqdm

    tokenizer = build_tokenizer()
    torch.manual_seed(args.seed)
    vae, unet, text_encoder, scheduler = build_models(tokenizer)
    start_as_pooling(vae)
    alphas = torch.cumprod(1.0 - scheduler.betas, dim=0)
    vae_opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    unet_opt = torch.optim.AdamW(list(unet.parameters()) + list(text_encoder.parameters()), lr=args.lr,
                                 weight_decay=0.01)
    checkpoint = args.work / "checkpoint.pt"
    state = {"vae_step": 0, "unet_step": 0, "seconds": 0.0}
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        vae.load_state_dict(saved["vae"])
        unet.load_state_dict(saved["unet"])
        text_encoder.load_state_dict(saved["text_encoder"])
        vae_opt.load_state_dict(saved["vae_opt"])
        unet_opt.load_state_dict(saved["unet_opt"])
        vae.register_to_config(scaling_factor=saved["scaling_factor"])
        state = saved["state"]
        print(f"Resumed from {checkpoint}: {state}")

    def save():
        save_atomic({"vae": vae.state_dict(), "unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(),
                     "vae_opt": vae_opt.state_dict(), "unet_opt": unet_opt.state_dict(),
                     "scaling_factor": vae.config.scaling_factor, "state": state, "args": vars(args)}, checkpoint)

    if not args.export_only:
        started = time.time() - state["seconds"]
        vae.train()
        bar = tqdm(range(state["vae_step"], args.vae_steps), initial=state["vae_step"], total=args.vae_steps,
                   desc="VAE", mininterval=10)
        for step in bar:
            loss = vae_step(vae, batch_examples(step, args.vae_batch), args.kl_weight)
            vae_opt.zero_grad()
            loss.backward()
            vae_opt.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            state["vae_step"], state["seconds"] = step + 1, time.time() - started
            if (step + 1) % args.save_every == 0 or step + 1 == args.vae_steps:
                if step + 1 == args.vae_steps:
                    vae.register_to_config(scaling_factor=measure_scale(vae.eval()))
                save()
        vae.eval().requires_grad_(False)
        unet.train()
        text_encoder.train()
        parts = (vae, unet, text_encoder, tokenizer, alphas)
        warmup = 100
        bar = tqdm(range(state["unet_step"], args.unet_steps), initial=state["unet_step"], total=args.unet_steps,
                   desc="UNet", mininterval=10)
        for step in bar:
            # Linear warm-up, then cosine decay to 10 %.
            progress = max(0.0, (step - warmup) / max(1, args.unet_steps - warmup))
            lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))
            for group in unet_opt.param_groups:
                group["lr"] = lr
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + 500_000 + step)
            loss = unet_step(parts, batch_examples(step, args.batch, offset=1_000_000), generator)
            unet_opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(unet.parameters()) + list(text_encoder.parameters()), 1.0)
            unet_opt.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}", refresh=False)
            state["unet_step"], state["seconds"] = step + 1, time.time() - started
            if (step + 1) % args.save_every == 0 or step + 1 == args.unet_steps:
                save()
        print(f"Trained in {state['seconds'] / 60:.1f} min "
              f"({state['vae_step']} VAE steps, {state['unet_step']} UNet steps, batch {args.batch}).")
    export(vae, unet, text_encoder, tokenizer, scheduler, args.out)
    print(f"Saved the model to {args.out}")


if __name__ == "__main__":
    main()
