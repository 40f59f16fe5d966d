"""Cross-condition attention modulation (paper §4.2, eqs. 3–7) as a diffusers
attention processor, installed on the UNet's cross-attention layers only.

One `FocusControl` per engine tells every processor what this UNet call does (a RunMode):
STOCK (plain SDPA, exactly diffusers' AttnProcessor2_0), RECORD (also keep chunk 0's
queries and keys for grounding) or MODULATE (chunk 0's attention becomes eq. 3)."""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F

from .grounding import layer_shape
from .masks import resize, union


def modulated_attention(query, key, value, scale, alpha_xi, inside, outside, attention_mask=None):
    """Eq. 3 for chunk 0, with X = Q₀K₀ᵀ (eq. 4), Y = Q₁K₁ᵀ (eq. 5) and
    ΔX = α·ξ(t)·(rowmax(X) − X) (eq. 6); logits in fp32.

    query/key/value: (3, heads, n, d) from one UNet call; alpha_xi: (tokens,);
    inside = M and outside = 1 − M: (queries, tokens). Returns chunk 0's output."""
    x = torch.matmul(query[:1].float(), key[:1].float().transpose(-1, -2))
    y = torch.matmul(query[1:2].float(), key[1:2].float().transpose(-1, -2))
    delta = alpha_xi * (x.amax(dim=-1, keepdim=True) - x)
    logits = ((x + delta) * inside + y * outside) * scale
    if attention_mask is not None:
        logits = logits + attention_mask[:1]
    probabilities = logits.softmax(dim=-1)
    return torch.matmul(probabilities.to(value.dtype), value[:1])


class RunMode(Enum):
    """What the cross-attention processors do during one UNet call."""

    STOCK = "stock"
    RECORD = "record"
    MODULATE = "modulate"


class FocusControl:
    """What the cross-attention processors do during the current UNet call."""

    def __init__(self):
        self.mode = RunMode.STOCK
        self.recorded: list[tuple[torch.Tensor, torch.Tensor, float]] = []
        self.alpha_xi: torch.Tensor | None = None
        self._token_masks = None

    def start_run(self, masks, spans, strengths, tokens, latent_shape, outside_tokens, device):
        """Prepare the per-token masks and α for one run; masks are float32 tensors on device."""
        self._token_masks = TokenMasks(masks, spans, tokens, latent_shape, outside_tokens)
        alpha = torch.zeros(tokens, dtype=torch.float32)
        for span, strength in zip(spans, strengths):
            alpha[span.start : span.stop] = strength
        self._alpha = alpha.to(device)

    def set_step(self, mode: RunMode, xi: float = 0.0):
        self.mode = mode
        if mode is RunMode.MODULATE:
            self.alpha_xi = self._alpha * xi

    def end_run(self):
        self.mode, self.recorded, self.alpha_xi, self._token_masks = RunMode.STOCK, [], None, None

    def modulate(self, query, key, value, scale, attention_mask):
        inside, outside = self._token_masks.at(query.shape[-2])
        return modulated_attention(query, key, value, scale, self.alpha_xi, inside, outside, attention_mask)


class TokenMasks:
    """M for each layer size (queries × tokens): M_i on the tokens of T_i; on every other
    token M_union ("union"), 1 ("instruction") or 0 ("null"). Built once per size per run."""

    def __init__(self, masks, spans, tokens, latent_shape, outside_tokens):
        self.masks, self.spans, self.tokens = masks, spans, tokens
        self.latent_shape, self.outside_tokens = latent_shape, outside_tokens
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def at(self, queries: int):
        if queries not in self._cache:
            _, h, w = layer_shape(queries, self.latent_shape)
            if self.outside_tokens == "union":
                other = union(self.masks, (h, w)).reshape(-1)
            else:
                fill = 1.0 if self.outside_tokens == "instruction" else 0.0
                other = torch.full((h * w,), fill, dtype=torch.float32, device=self.masks[0].device)
            inside = other[:, None].repeat(1, self.tokens)
            for mask, span in zip(self.masks, self.spans):
                inside[:, span.start : span.stop] = resize(mask, (h, w)).reshape(-1, 1)
            self._cache[queries] = (inside, 1.0 - inside)
        return self._cache[queries]


# Copied from diffusers.models.attention_processor.AttnProcessor2_0 (diffusers 0.42.1), with FoI's
# hooks on chunk 0. tests/engine/test_invariants.py::test_focus_off_full_strength_equals_diffusers
# fails the day the two diverge (it compares this processor's run with diffusers' own, bit for bit).
class FocusCrossAttnProcessor:
    """diffusers' AttnProcessor2_0, step for step, with FoI's hooks on chunk 0."""

    def __init__(self, control: FocusControl):
        self.control = control

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)

        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        control = self.control
        if control.mode is RunMode.RECORD:
            control.recorded.append((query[:1], key[:1], attn.scale))
        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False
        )
        if control.mode is RunMode.MODULATE:
            chunk0 = control.modulate(query, key, value, attn.scale, attention_mask)
            hidden_states = torch.cat([chunk0, hidden_states[1:]])

        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(unet) -> FocusControl:
    """Put FoI's processor on every cross-attention layer; self-attention stays as it is."""
    control = FocusControl()
    processors = {}
    for name, processor in unet.attn_processors.items():
        module = unet.get_submodule(name.removesuffix(".processor"))
        processors[name] = FocusCrossAttnProcessor(control) if module.is_cross_attention else processor
    unet.set_attn_processor(processors)
    return control
