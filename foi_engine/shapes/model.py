"""The shapes model's architecture: InstructPix2Pix in miniature for 64×64 scenes.

VAE: 4 latent channels, 4× downsampling (64×64 → 16×16, the shipped model), so a shape of
16–28 px covers 4–7 latent cells; or 2× (→ 32×32), twice the cells across each shape.
UNet: 8 input channels, cross-attention at every level: 16×16, 8×8 and 4×4 (grounding
factors 1, 2 and 4), or 32×32 down to 4×4 for the 2× VAE; or only at the finest level
(`finest_attention_only`), so the layers FoI reads its masks from must bind words themselves.
Text: a small CLIP encoder over foi_engine.tiny's vocabulary, where every task word is
one token, read up to MAX_TOKENS tokens."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

MAX_TOKENS = 32  # SOT + three sub-instructions of ≤ 6 tokens + EOT fit with room to spare


def build_tokenizer():
    from transformers import CLIPTokenizer

    from ..tiny import tokenizer_files

    with tempfile.TemporaryDirectory() as folder:
        tokenizer_files(Path(folder))
        config = {"model_max_length": MAX_TOKENS, "tokenizer_class": "CLIPTokenizer"}
        (Path(folder) / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder)


# Per VAE downsampling factor: the block widths of the VAE (n blocks downsample n − 1 times)
# and the UNet's; each UNet level has cross-attention, so the finest grounding grid is the latent.
WIDTHS = {4: ((16, 32, 64), (48, 96, 128)), 2: ((16, 32), (32, 64, 96, 128))}


def build_models(tokenizer, text_layers: int = 3, latent_factor: int = 4, finest_attention_only: bool = False):
    """Fresh (vae, unet, text_encoder, scheduler); call under a seeded RNG."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from ..tiny import ip2p_scheduler, small_text_encoder

    vae_widths, unet_widths = WIDTHS[latent_factor]
    coarse = "" if finest_attention_only else "CrossAttn"  # the levels below the latent's own grid
    down_blocks = ("CrossAttnDownBlock2D", *[f"{coarse}DownBlock2D"] * (len(unet_widths) - 1))
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths),
        block_out_channels=vae_widths,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=1,  # per-channel (instance-like) groups erase flat colours; one group keeps them
        sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=64 // latent_factor,
        in_channels=8,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=unet_widths,
        down_block_types=down_blocks,
        up_block_types=tuple(block.replace("Down", "Up") for block in reversed(down_blocks)),
        mid_block_type="UNetMidBlock2D" if finest_attention_only else "UNetMidBlock2DCrossAttn",
        cross_attention_dim=64,
        attention_head_dim=4,
        norm_num_groups=16,
    )
    text_encoder = small_text_encoder(tokenizer, width=64, layers=text_layers, positions=MAX_TOKENS)
    scheduler = ip2p_scheduler()
    return vae, unet, text_encoder, scheduler


@torch.no_grad()
def start_as_pooling(vae, carrier: float = 10.0, lift: float = 8.0) -> None:
    """Set the fresh VAE's weights so it starts as average pooling of the colours over its
    downsampling factor (latent channels 0–2) and nearest upsampling back, which a few hundred steps of
    training then sharpen: trained from random weights, this VAE needs far more steps
    than our CPU budget to reproduce flat colours at all.

    Every residual branch is zeroed (resnet conv2, attention output), so blocks pass
    their input through; down/upsampling convs average or copy. The one-group norms
    before each conv_out would rescale the colour by the image's statistics, so twelve
    channels carry the constants ±`carrier`, which fix those statistics, and the colour
    enters SiLU shifted by `lift`, where SiLU is nearly the identity."""
    for name, module in vae.named_modules():
        if name.endswith("conv2") or name.endswith("to_out.0"):
            module.weight.zero_()
            module.bias.zero_()
        elif name.endswith("conv_shortcut") or name.endswith("quant_conv"):
            module.weight.zero_()
            module.bias.zero_()
            for c in range(min(module.weight.shape[:2])):
                module.weight[c, c, 0, 0] = 1.0
        elif name.endswith("downsamplers.0.conv"):  # 3×3 stride 2, padded right/bottom: average the top-left 2×2
            module.weight.zero_()
            module.bias.zero_()
            for c in range(module.weight.shape[0]):
                module.weight[c, c, :2, :2] = 0.25
        elif name.endswith("upsamplers.0.conv"):  # after nearest ×2: copy
            module.weight.zero_()
            module.bias.zero_()
            for c in range(module.weight.shape[0]):
                module.weight[c, c, 1, 1] = 1.0
    for coder, inputs in ((vae.encoder, 3), (vae.decoder, 3)):
        conv_in = coder.conv_in
        conv_in.weight.zero_()
        conv_in.bias.zero_()
        for c in range(inputs):
            conv_in.weight[c, c, 1, 1] = 1.0
        conv_in.bias[3:15] = carrier * torch.tensor([1.0, -1.0] * 6)
        norm, conv_out = coder.conv_norm_out, coder.conv_out
        channels = norm.weight.shape[0]
        spread = carrier * (12 / channels) ** 0.5  # the norm's std, set by the carriers
        norm.weight.zero_()
        norm.bias.zero_()
        norm.weight[:3] = spread
        norm.bias[:3] = lift
        conv_out.weight.zero_()
        conv_out.bias.zero_()
        for c in range(3):
            conv_out.weight[c, c, 1, 1] = 1.0
            conv_out.bias[c] = -lift
    vae.encoder.conv_out.bias[vae.config.latent_channels :] = -10.0  # log-variance: tiny noise
