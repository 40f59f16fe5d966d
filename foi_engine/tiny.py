"""A tiny InstructPix2Pix with random weights, built in-process with no download.

It has IP2P's architecture in miniature (8-channel UNet with cross-attention at three
resolutions, a small CLIP text encoder, a 4-channel VAE with 8× downsampling) and
IP2P's scheduler. Its output is noise: it exists for tests and for trying the app."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

# Words that get their own token, so everyday instructions stay short in tokens.
WORDS = """
a an the it its his her him he she they them their this that these those of in on at to from with
into onto over under behind above below near next by for and or but as like so very more less
make turn change add put give replace remove let set paint colour color convert transform swap
is are be was were have has had wear wearing hold holding
red orange yellow green blue purple pink brown black white grey gray gold silver golden dark light
bright night day sunset sunrise winter summer autumn spring snow snowy rain rainy fog foggy storm
sky cloud clouds sun moon star stars sea ocean water lake river beach sand desert grass tree trees
forest flower flowers field mountain mountains hill road street city building house tower bridge
wall floor window door car boat bike train plane
man woman person boy girl child people face hair eye eyes beard mustache smile hat cap helmet
glasses sunglasses tie shirt jacket coat dress scarf crown mask necklace earrings
dog cat bird horse cow fish lion tiger bear rabbit mouse
cup mug coffee tea plate table chair bed book phone clock lamp
fire smoke ice wood stone metal glass gold gun sword
background foreground picture photo image painting style cartoon sketch oil van gogh
old young big small bigger smaller large tiny tall short
circle square triangle star shape
""".split()


def _byte_symbols() -> list[str]:
    """CLIP's byte-to-unicode table: 256 printable symbols standing for the bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = [], 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _learn_word(word: str, merges: dict, vocab: dict) -> None:
    """Run BPE on the word with the merges so far; wherever it gets stuck, add a merge of
    the leftmost pair (ranked last, so no earlier word's tokens change) until the word
    is one token."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(merges.get(pair, len(merges)), i) for i, pair in enumerate(zip(parts, parts[1:]))]
        rank, i = min(pairs)
        if rank == len(merges):
            merges[(parts[i], parts[i + 1])] = rank
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
        vocab.setdefault(parts[i], len(vocab))


def tokenizer_files(folder: Path) -> None:
    """Write a CLIP BPE vocabulary: every byte, every byte at a word's end, and whole
    tokens for WORDS."""
    vocab: dict[str, int] = {}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
    for symbol in _byte_symbols():
        vocab.setdefault(symbol + "</w>", len(vocab))
    merges: dict[tuple[str, str], int] = {}
    for word in dict.fromkeys(WORDS):
        _learn_word(word, merges, vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as folder:
        tokenizer_files(Path(folder))
        return CLIPTokenizer.from_pretrained(folder)


def tiny_random_pipeline(seed: int = 0):
    """A StableDiffusionInstructPix2PixPipeline of a few MB with random weights."""
    from diffusers import AutoencoderKL, StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=8,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 32, 64, 64),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=16,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(16, 16, 32, 32),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=16,
            sample_size=64,
        )
        text_encoder = small_text_encoder(tokenizer, width=32, layers=2, positions=77)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=vae.eval(),  # as from_pretrained leaves it: in training mode its edits came out a level apart
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=ip2p_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.foi_random_weights = True  # FoiEngine labels everything this model makes
    return pipe


def ip2p_scheduler():
    """Euler ancestral on InstructPix2Pix's (Stable Diffusion's) training schedule."""
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        prediction_type="epsilon",
    )


def small_text_encoder(tokenizer, width: int, layers: int, positions: int):
    """A fresh CLIP text encoder of this width and depth over the tokenizer's vocabulary."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=layers,
            num_attention_heads=4,
            max_position_embeddings=positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
