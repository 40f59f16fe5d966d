"""FoiEngine: Focus on Your Instruction on an InstructPix2Pix pipeline.

One run reads top to bottom in `_run`: prepare the photo and the text, encode both,
start from the noised photo, then per step: one UNet call on the three branches
(recording the grounding attention on the first, modulating cross-attention on later
ones), guidance (eq. 9 early, eq. 1 late), an Euler-ancestral step."""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import attention, threads
from .attention import RunMode
from .errors import (BusyError, Cancelled, ModelError, NotInstructPix2PixError, as_foi_error,
                     is_out_of_memory)
from .grounding import grounding_maps
from .guidance import guide
from .catalog import DEFAULT_MODEL, TINY_RANDOM
from .loading import choose_device, choose_dtype, load_pipeline
from .masks import to_working_frame, union
from .photo import WorkingFrame, prepare_photo
from .preview import latent_preview
from .prompt import count_tokens, layout_prompt
from .protocol import EngineInfo
from .results import EditResult, LocateResult
from .settings import EditSettings, check_mask_count, check_request
from .version import version


@dataclass(frozen=True)
class _FirstStep:
    """What the first step of a grounded run computed, for the next run with the same
    photo, text, seed and schedule (typically Edit after Find regions): the photo's
    latent, the UNet's output (step 0 is never modulated, so it is the same in every
    run) and the grounding maps."""

    key: tuple
    photo_latent: torch.Tensor
    noise_pred: torch.Tensor
    maps: list[np.ndarray]
    factor: int


@dataclass(frozen=True)
class RunRequest:
    """One call of locate or edit, as the caller made it (checked in stage 1 of `_run`)."""

    image: object  # a PIL image or an array, as prepare_photo takes
    instructions: object  # an Instruction or a sequence of them
    settings: EditSettings
    seed: int
    masks: object = None  # one per instruction, or None to extract them in this run
    on_step: Callable | None = None  # on_step(i, K, preview)
    cancel: threading.Event | None = None
    locate_only: bool = False


class FoiEngine:
    def __init__(self, pipe, model_name: str | None = None, random_weights: bool | None = None):
        from diffusers import StableDiffusionInstructPix2PixPipeline

        if not isinstance(pipe, StableDiffusionInstructPix2PixPipeline):
            raise ModelError(f"FoI Studio runs InstructPix2Pix pipelines, not {type(pipe).__name__}.")
        if pipe.unet.config.in_channels != 8:
            raise NotInstructPix2PixError(
                f"This model's UNet takes {pipe.unet.config.in_channels} input channels, not 8: "
                "it is not an InstructPix2Pix model."
            )
        self.pipe = pipe
        self.model_name = model_name or pipe.config.get("_name_or_path") or "InstructPix2Pix"
        self.random_weights = getattr(pipe, "foi_random_weights", False) if random_weights is None else random_weights
        self._control = attention.install(pipe.unet)
        self._unet_weights = sum(p.numel() for p in pipe.unet.parameters())
        self._lock = threading.Lock()
        self._running_in: int | None = None  # the thread of the run in progress
        self._counting_tokenizer = copy.deepcopy(pipe.tokenizer)
        self._count_lock = threading.Lock()
        self._first_step: _FirstStep | None = None

    @classmethod
    def from_pretrained(cls, model: str = DEFAULT_MODEL, device: str | None = None, precision="auto", progress=None):
        """The one loader. `model`: a catalog name ("tiny-random" builds the random-weight
        test model; "shapes" is bundled), a hub id or a local folder. `precision`: "auto"
        (float16 on CUDA, float32 elsewhere), "float32", "float16" or a torch dtype.
        `progress(done, total, text)` hears about downloads."""
        chosen = choose_device(device)
        dtype = precision if isinstance(precision, torch.dtype) else choose_dtype(precision, chosen)
        if model == TINY_RANDOM:
            from .tiny import tiny_random_pipeline

            return cls(tiny_random_pipeline(0).to(chosen, dtype), model_name=TINY_RANDOM)
        return cls(load_pipeline(model, chosen, dtype, progress), model_name=model)

    @property
    def device(self) -> str:
        return str(self.pipe.device)

    @property
    def max_tokens(self) -> int:
        return self.pipe.tokenizer.model_max_length

    def info(self) -> EngineInfo:
        """What the `Engine` protocol reports: model, device, version, token limit."""
        return EngineInfo(self.model_name, self.device, version(), self.max_tokens, bool(self.random_weights))

    def count_tokens(self, instructions) -> int:
        """Safe from any thread while a run goes on: the fast tokenizer is not thread-safe,
        so counting uses its own copy, one call at a time."""
        with self._count_lock:
            return count_tokens(self._counting_tokenizer, list(instructions))

    def locate(self, image, instructions, settings: EditSettings = EditSettings(), seed: int = 0) -> LocateResult:
        """Grounding maps and masks from the first step alone (whatever settings.focus says)."""
        return self._guarded(RunRequest(image, instructions, settings, seed, locate_only=True))

    def edit(self, image, instructions, settings: EditSettings = EditSettings(), seed: int = 0,
             masks=None, on_step=None, cancel=None) -> EditResult:
        """Edit the photo; masks=None extracts them in this run (the paper's single pass)."""
        return self._guarded(RunRequest(image, instructions, settings, seed, masks, on_step, cancel))

    def _guarded(self, request: RunRequest):
        if self._running_in == threading.get_ident():
            raise BusyError("An edit cannot start from inside another run's progress callback: start it after "
                            "that run returns.")
        try:
            with self._lock, torch.inference_mode():
                self._running_in = threading.get_ident()
                try:
                    return self._run(request)
                finally:
                    self._running_in = None
        except (MemoryError, RuntimeError) as error:
            if is_out_of_memory(error):
                raise as_foi_error(error) from None
            raise
        finally:
            self._control.end_run()

    def _run(self, request: RunRequest):
        # 1. Check inputs
        instructions = check_request(request.instructions, request.settings, request.seed)
        settings, seed, locate_only = request.settings, request.seed, request.locate_only
        focus = settings.focus or locate_only
        pipe, control = self.pipe, self._control

        # 2. Prepare the photo at IP2P's working size, the text's token layout and the τ_i
        photo = prepare_photo(request.image)
        frame = WorkingFrame.for_photo(photo.size, settings.resolution)
        layout = layout_prompt(pipe.tokenizer, list(instructions))
        thresholds = _thresholds(instructions, seed)
        given = None
        if request.masks is not None and focus and not locate_only:
            given = _given_masks(request.masks, instructions, frame)

        # 3. Encode the text [T, ∅, ∅] and the photo [c, c, 0] of the three branches
        embeds = torch.cat([self._encode_text(layout.text), *[self._encode_text("")] * 2])
        working = frame.fit(photo)
        key = (hashlib.sha256(working.tobytes()).hexdigest(), working.size, layout.text, layout.keyword_tokens,
               settings.steps, settings.strength, settings.gamma, settings.grounding_factor, seed)
        cached = self._first_step if self._first_step and self._first_step.key == key else None
        photo_latent = cached.photo_latent if cached else self._encode_photo(working, embeds.dtype)
        conditions = torch.cat([photo_latent, photo_latent, torch.zeros_like(photo_latent)])
        latent_shape = tuple(photo_latent.shape[-2:])
        if pipe.device.type == "cpu":
            threads.fit_to_work(self._unet_weights * latent_shape[0] * latent_shape[1])

        # 4. Prepare the timesteps and the start: the photo's latent noised to the first of the K steps
        scheduler, timesteps = self._schedule(settings)
        generator = torch.Generator("cpu").manual_seed(seed)
        latents = self._start_latents(scheduler, timesteps, photo_latent, settings, generator, embeds.dtype)
        t_values = timesteps.tolist()
        steps_run = settings.denoising_steps
        modulate_until = settings.steps_until(settings.modulate_until)
        disentangle_until = settings.steps_until(settings.disentangle_until)
        train_steps = scheduler.config.num_train_timesteps
        record = focus and given is None
        grounding, used, union_latent = None, None, None
        if given is not None:
            used, union_latent = self._focus_on(given, layout, instructions, embeds, latent_shape, settings)

        # 5. Denoising loop
        for i, t in enumerate(timesteps):
            if request.cancel is not None and request.cancel.is_set():
                raise Cancelled("The edit was cancelled.")
            if i == 0 and record:
                control.set_step(RunMode.RECORD)
            elif focus and 1 <= i < modulate_until:
                control.set_step(RunMode.MODULATE, xi=0.05 * (t_values[i] / train_steps) ** 4)  # eq. 7
            else:
                control.set_step(RunMode.STOCK)

            if i == 0 and cached:
                noise_pred = cached.noise_pred
            else:
                model_input = scheduler.scale_model_input(torch.cat([latents] * 3), t)
                model_input = torch.cat([model_input, conditions], dim=1)
                noise_pred = pipe.unet(model_input, t, encoder_hidden_states=embeds, return_dict=False)[0]

            if i == 0 and record:  # eq. 2: the masks from the first step's cross-attention
                if cached:
                    maps, factor = cached.maps, cached.factor
                else:
                    maps, factor, _ = grounding_maps(control.recorded, latent_shape, settings.grounding_factor,
                                                     layout.keyword_tokens, settings.gamma)
                    control.recorded = []
                    self._first_step = _FirstStep(key, photo_latent, noise_pred, maps, factor)
                found = [m >= np.float32(tau) if tau is not None else np.ones(m.shape, dtype=bool)
                         for m, tau in zip(maps, thresholds)]
                grounding = LocateResult(maps, found, thresholds, factor, frame, instructions, seed)
                if locate_only:
                    return grounding
                used, union_latent = self._focus_on(found, layout, instructions, embeds, latent_shape, settings)

            confine = focus and i < disentangle_until
            noise_pred = guide(noise_pred, settings.text_guidance, settings.image_guidance,
                               union_latent if confine else None)
            step = scheduler.step(noise_pred, t, latents, generator=generator)
            latents = step.prev_sample
            if request.on_step is not None:
                request.on_step(i, steps_run, latent_preview(step.pred_original_sample))

        # 6. Decode
        if not torch.isfinite(latents).all():
            raise ModelError("The model produced invalid numbers (NaN or infinity), so there is no picture: its "
                             "weights may be damaged (download or copy it again), or try full precision (float32).")
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        result = pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True])[0]
        return EditResult(result, used if focus else None, grounding, settings, seed, frame,
                          instructions, self.model_name, self.random_weights)

    def _encode_text(self, text: str) -> torch.Tensor:
        """As diffusers' IP2P pipeline encodes a prompt (padded to the model's length)."""
        tokenizer, encoder = self.pipe.tokenizer, self.pipe.text_encoder
        tokens = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt")
        attention_mask = None
        if getattr(encoder.config, "use_attention_mask", False):
            attention_mask = tokens.attention_mask.to(self.pipe.device)
        embeds = encoder(tokens.input_ids.to(self.pipe.device), attention_mask=attention_mask)[0]
        return embeds.to(dtype=encoder.dtype, device=self.pipe.device)

    def _encode_photo(self, working, dtype) -> torch.Tensor:
        """c: the VAE's latent of the photo at the working size (the mode, as IP2P conditions)."""
        pixels = self.pipe.image_processor.preprocess(working).to(device=self.pipe.device, dtype=dtype)
        return self.pipe.vae.encode(pixels).latent_dist.mode()

    def _schedule(self, settings: EditSettings):
        """The paper's Euler-ancestral sampler, its `settings.steps` timesteps, and the K
        that run (diffusers' img2img rule: the last int(steps·strength))."""
        from diffusers import EulerAncestralDiscreteScheduler

        scheduler = EulerAncestralDiscreteScheduler.from_config(self.pipe.scheduler.config)
        scheduler.set_timesteps(settings.steps, device=self.pipe.device)
        t_start = settings.steps - settings.denoising_steps
        scheduler.set_begin_index(t_start)
        return scheduler, scheduler.timesteps[t_start:]

    def _start_latents(self, scheduler, timesteps, photo_latent, settings, generator, dtype) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        noise = randn_tensor(tuple(photo_latent.shape), generator=generator, device=self.pipe.device, dtype=dtype)
        if settings.strength == 1.0:  # pure noise, exactly as stock IP2P starts
            return noise * scheduler.init_noise_sigma
        scaled = self.pipe.vae.config.scaling_factor * photo_latent
        return scheduler.add_noise(scaled, noise, timesteps[:1])

    def _focus_on(self, masks, layout, instructions, embeds, latent_shape, settings):
        """Hand the masks to the attention processors (eqs. 3–6) and build the union mask
        of eq. 9; returns (the float32 masks used, the union at the latent's size)."""
        used = [np.asarray(mask, dtype=np.float32) for mask in masks]
        tensors = [torch.from_numpy(mask).to(self.pipe.device) for mask in used]
        union_latent = union(tensors, latent_shape).to(embeds.dtype)
        self._control.start_run(tensors, layout.spans, [ins.strength for ins in instructions],
                                embeds.shape[1], latent_shape, settings.outside_tokens, self.pipe.device)
        return used, union_latent


def _thresholds(instructions, seed) -> list[float | None]:
    """τ_i: the instruction's own, or drawn from U(0.4, 0.7) by the seed; None for the whole image."""
    drawn = np.random.default_rng(seed).uniform(0.4, 0.7, size=len(instructions))
    return [None if ins.keyword is None else (float(drawn[i]) if ins.threshold is None else ins.threshold)
            for i, ins in enumerate(instructions)]


def _given_masks(masks, instructions, frame) -> list[np.ndarray]:
    check_mask_count(len(masks), instructions)
    return [to_working_frame(mask, i, frame) for i, mask in enumerate(masks)]

