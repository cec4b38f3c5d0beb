"""``pix2gestalt``: amodal completion by latent diffusion (Ozguroglu et al., CVPR 2024), re-implemented on diffusers.

The model (facts in ../shared/reference/PROTOCOLS.md): a Stable Diffusion UNet with 12 input channels (noisy latent,
VAE latent of the occluded image, VAE latent of the visible mask drawn as a 3-channel image; both condition latents
are the posterior mode, unscaled), cross-attending to the CLIP ViT-L/14 image embedding of the occluded image passed
through a 768x768 projection. Unconditional = zeros for both conditions; guidance 2.0, DDIM 200 steps, eta 1.0.
The output is the whole object on white.

Weights: a diffusers-format folder (``unet/``, ``vae/``, ``image_encoder/``, ``cc_projection/``, ``scheduler/``) or
a hub id holding one; make it from the released Lightning checkpoint with ``amodal3d convert-pix2gestalt``. A folder
without ``vae/`` is a pixel-space model (small models trained by ``amodal3d train``): the "latents" are the pixels in
[-1, 1] and the condition is the image and the mask themselves (UNet in_channels 9).
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal3d.completion.base import CanvasInput, WholeSample, register_completer
from amodal3d.completion.diffusion import (
    load_component,
    make_scheduler,
    pick_device,
    pick_dtype,
    require,
    seeded_generator,
)
from amodal3d.core.errors import UserError

RESOLUTION = 256
LATENT_SCALE = 0.18215
CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# The training schedule: 1000 steps, LDM's "linear" betas (linear in sqrt), DDIM as the original sampler runs it.
SCHEDULER_CONFIG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading",
                        prediction_type="epsilon")
DEFAULT_STEPS = 200
DEFAULT_GUIDANCE = 2.0
DEFAULT_ETA = 1.0
COMPONENTS = ("unet", "vae", "image_encoder", "cc_projection", "scheduler")


@dataclass
class Pix2GestaltOutput:
    """``images``: (K, H, W, 3) float32 in [0, 1], the whole object on white; ``seconds``: encode / denoise /
    decode wall time."""

    images: np.ndarray
    seconds: dict


class Pix2GestaltPipeline:
    """Image + visible mask -> K whole-object images. Components as in diffusers; ``from_pretrained`` and
    ``save_pretrained`` use one subfolder per component."""

    def __init__(self, unet, vae, image_encoder, cc_projection, scheduler):
        """``vae=None``: a pixel-space model."""
        self.unet, self.vae, self.image_encoder = unet, vae, image_encoder
        self.cc_projection, self.scheduler = cc_projection, scheduler

    @classmethod
    def from_pretrained(cls, weights: str, dtype=None, device=None, **kwargs) -> Pix2GestaltPipeline:
        """Load from a diffusers-format folder or hub id (kwargs go to every component's ``from_pretrained``)."""
        diffusers = require("diffusers")
        transformers = require("transformers")
        from amodal3d.completion.cc_projection import CCProjection

        folder = Path(weights).expanduser()
        if folder.exists() and not (folder / "unet").is_dir():
            raise UserError(f"{folder} is not a pix2gestalt diffusers folder (no unet/); convert the original "
                            "checkpoint with: amodal3d convert-pix2gestalt CKPT OUT")
        source = str(folder) if folder.exists() else weights
        loaders = {"unet": diffusers.UNet2DConditionModel, "vae": diffusers.AutoencoderKL,
                   "image_encoder": transformers.CLIPVisionModelWithProjection,
                   "cc_projection": CCProjection, "scheduler": diffusers.DDIMScheduler}
        if folder.exists() and not (folder / "vae").is_dir():
            del loaders["vae"]
        parts = {"vae": None}
        for name, loader in loaders.items():
            extra = {} if name == "scheduler" else dict(kwargs, dtype=dtype) if dtype else kwargs
            parts[name] = load_component(loader.from_pretrained, source, f"pix2gestalt {name}", subfolder=name,
                                         **extra)
        pipe = cls(**parts)
        return pipe.to(device) if device is not None else pipe

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        present = [name for name in COMPONENTS if getattr(self, name) is not None]
        for name in present:
            getattr(self, name).save_pretrained(folder / name)
        index = {"_class_name": "Pix2GestaltPipeline", "_module": __name__,
                 **{name: type(getattr(self, name)).__name__ for name in present}}
        (folder / "model_index.json").write_text(json.dumps(index, indent=1) + "\n")

    def to(self, device=None, dtype=None) -> Pix2GestaltPipeline:
        moves = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        for name in COMPONENTS[:4]:
            if getattr(self, name) is not None:
                getattr(self, name).to(**moves)
        return self

    @property
    def device(self):
        return self.unet.device

    @property
    def dtype(self):
        return self.unet.dtype

    def enable_attention_slicing(self, slice_size="auto") -> None:
        """Lower peak GPU memory at some speed cost (diffusers' attention slicing)."""
        self.unet.set_attention_slice(slice_size)

    def use_scheduler(self, name: str) -> None:
        """Swap the sampler: ddim (the paper's), dpm++, euler_a, unipc; same noise schedule."""
        self.scheduler = make_scheduler(name, self.scheduler.config)

    def __call__(self, image, visible_mask, num_samples: int = 6, num_inference_steps: int = DEFAULT_STEPS,
                 guidance_scale: float = DEFAULT_GUIDANCE, eta: float = DEFAULT_ETA, generator=None,
                 batch_samples: bool = True) -> Pix2GestaltOutput:
        """Complete the object that ``visible_mask`` marks in ``image``.

        image : (H, W, 3) float in [0, 1] (H, W multiples of 8; the model was trained at 256x256).
        visible_mask : (H, W) bool, the visible part of the object.
        num_samples : K whole-object samples. num_inference_steps, eta : the sampler's (DDIM: eta 1.0 as trained).
        guidance_scale : classifier-free guidance; 1.0 runs the conditional branch only.
        generator : a torch.Generator for the initial and per-step noise (same generator state, same samples).
        batch_samples : all K samples and both guidance branches in one UNet batch per step (False: one UNet call
            per sample, for comparison and for small GPUs).
        """
        torch = require("torch")
        image, visible_mask = np.asarray(image, np.float32), np.asarray(visible_mask, bool)
        if image.ndim != 3 or image.shape[2] != 3 or visible_mask.shape != image.shape[:2]:
            raise UserError(f"expected an (H, W, 3) image and an (H, W) mask, got {image.shape} and "
                            f"{visible_mask.shape}")
        if image.shape[0] % 8 or image.shape[1] % 8:
            raise UserError(f"image size must be a multiple of 8, got {image.shape[1]}x{image.shape[0]}")
        if num_samples < 1:
            raise UserError(f"num_samples must be at least 1, got {num_samples}")
        clock = [time.perf_counter()]
        with torch.no_grad():
            context, concat = self.encode_conditions(image, visible_mask)
            clock.append(time.perf_counter())
            latents = torch.randn((num_samples, self.unet.config.out_channels, *concat.shape[2:]),
                                  generator=generator, dtype=torch.float32).to(self.device, self.dtype)
            self.scheduler.set_timesteps(num_inference_steps, device=self.device)
            latents = latents * self.scheduler.init_noise_sigma
            accepted = inspect.signature(self.scheduler.step).parameters
            step_options = {k: v for k, v in (("generator", generator), ("eta", eta)) if k in accepted}
            for t in self.scheduler.timesteps:
                noise = self.predict_noise(latents, t, context, concat, guidance_scale, batch_samples)
                latents = self.scheduler.step(noise, t, latents, **step_options).prev_sample
            clock.append(time.perf_counter())
            decoded = latents if self.vae is None else self.vae.decode(latents / self.vae.config.scaling_factor).sample
        images = ((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
        clock.append(time.perf_counter())
        return Pix2GestaltOutput(images, dict(zip(("encode", "denoise", "decode"), np.diff(clock).tolist())))

    def encode_conditions(self, image: np.ndarray, visible_mask: np.ndarray):
        """(CLIP context (1, 1, D) after the projection, concat latents (1, 8, h, w)) of one image and mask."""
        torch = require("torch")
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].to(self.device, self.dtype) * 2.0 - 1.0
        mask = torch.from_numpy(np.repeat(visible_mask[None, None].astype(np.float32), 3, axis=1))
        return self.conditions(pixels, mask.to(self.device, self.dtype) * 2.0 - 1.0)

    def conditions(self, pixels, mask):
        """Batched: ``pixels`` and ``mask`` (B, 3, H, W) in [-1, 1] -> (context (B, 1, D), concat (B, C, h, w))."""
        torch = require("torch")
        size = self.image_encoder.config.image_size
        # the original resizes with kornia (bicubic, align_corners=True, Gaussian antialias); torch's antialias
        # filter differs slightly, the sampling grid is the same
        clip_in = torch.nn.functional.interpolate(pixels.float(), size=(size, size), mode="bicubic",
                                                  align_corners=True, antialias=True)
        mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
        clip_in = ((clip_in + 1.0) / 2.0 - mean) / std
        context = self.cc_projection(self.image_encoder(clip_in.to(self.dtype)).image_embeds[:, None])
        if self.vae is None:
            return context, torch.cat([pixels, mask], 1)
        latents = [self.vae.encode(x).latent_dist.mode() for x in (pixels, mask)]
        return context, torch.cat(latents, 1)

    def target_latents(self, pixels):
        """What the UNet denoises, for training: the scaled VAE latent of (B, 3, H, W) pixels in [-1, 1], or the
        pixels themselves in pixel space."""
        if self.vae is None:
            return pixels
        return self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor

    def predict_noise(self, latents, t, context, concat, guidance_scale: float, batch_samples: bool = True):
        """Guided noise prediction for the K latents at step t; guidance 1.0 is the conditional branch alone."""
        torch = require("torch")
        if not batch_samples:
            return torch.cat([self.predict_noise(x[None], t, context, concat, guidance_scale) for x in latents])
        k = latents.shape[0]
        model_in = torch.cat([self.scheduler.scale_model_input(latents, t), concat.expand(k, -1, -1, -1)], 1)
        context = context.expand(k, -1, -1)
        if guidance_scale == 1.0:
            return self.unet(model_in, t, encoder_hidden_states=context).sample
        unconditional = torch.cat([model_in[:, :latents.shape[1]], torch.zeros_like(model_in[:, latents.shape[1]:])], 1)
        both = self.unet(torch.cat([model_in, unconditional]), t,
                         encoder_hidden_states=torch.cat([context, torch.zeros_like(context)])).sample
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)


@register_completer("pix2gestalt")
class Pix2GestaltCompleter:
    """The Completer over Pix2GestaltPipeline. ``weights``: a converted folder or hub id (required)."""

    def __init__(self, weights: str | None = None, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                 eta: float = DEFAULT_ETA, scheduler: str = "ddim", device: str | None = None,
                 dtype: str | None = None, attention_slicing: bool = False, batch_samples: bool = True):
        if not weights:
            raise UserError("pix2gestalt needs weights: --weights DIR_OR_HUB_ID, a diffusers folder made from the "
                            "released checkpoint by `amodal3d convert-pix2gestalt epoch=000010.ckpt DIR`")
        self.weights, self.steps, self.guidance, self.eta = str(weights), int(steps), float(guidance), float(eta)
        self.scheduler, self.device_name, self.dtype_name = scheduler, device, dtype
        self.attention_slicing, self.batch_samples = bool(attention_slicing), bool(batch_samples)
        self._pipe = None

    def pipeline(self) -> Pix2GestaltPipeline:
        if self._pipe is None:
            device = pick_device(self.device_name)
            dtype = pick_dtype(self.dtype_name, device)
            pipe = Pix2GestaltPipeline.from_pretrained(self.weights, dtype=dtype).to(device)
            if self.scheduler != "ddim":
                pipe.use_scheduler(self.scheduler)
            if self.attention_slicing:
                pipe.enable_attention_slicing()
            self._pipe = pipe
        return self._pipe

    @property
    def resolution(self) -> int:
        """The canvas the model was trained at (256 for pix2gestalt; a small model's own size)."""
        pipe = self.pipeline()
        size = int(pipe.unet.config.sample_size)
        return size if pipe.vae is None else size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        if not inputs.modal.any():
            raise UserError("the visible mask is empty")
        out = self.pipeline()(inputs.image, inputs.modal, num_samples=samples, num_inference_steps=self.steps,
                              guidance_scale=self.guidance, eta=self.eta, generator=seeded_generator(seed),
                              batch_samples=self.batch_samples)
        return [WholeSample(rgb=rgb) for rgb in out.images]
