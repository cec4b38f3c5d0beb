"""``Pix2GestaltPipeline``: pix2gestalt (Ozguroglu et al., CVPR 2024) as a diffusers ``DiffusionPipeline``.

The model (facts in ../shared/reference/PROTOCOLS.md): a Stable Diffusion UNet with 12 input channels (noisy latent,
VAE latent of the occluded image, VAE latent of the visible mask drawn as a 3-channel image; both condition latents
are the posterior mode, unscaled), cross-attending to the CLIP ViT-L/14 image embedding of the occluded image passed
through a 768x768 projection. Unconditional = zeros for both conditions; guidance 2.0, DDIM 200 steps (199 run, as the original), eta 1.0.
The output is the whole object on white.

Components: ``unet``, ``vae`` (None for a pixel-space model, as ``amodal3d train`` makes: the "latents" are the
pixels in [-1, 1] and the condition is the image and the mask themselves, UNet in_channels 9), ``image_encoder``
(transformers' ``CLIPVisionModelWithProjection``), ``cc_projection`` and ``scheduler``. Load a folder (made from
the released checkpoint by ``amodal3d convert-pix2gestalt``, or by ``amodal3d train``) or hub id with
``Pix2GestaltPipeline.from_pretrained(path, dtype=...)``; everything else a diffusers pipeline has
(``save_pretrained``, ``to``, ``enable_model_cpu_offload``, ``enable_sequential_cpu_offload``, attention slicing,
the progress bar) comes from ``DiffusionPipeline``.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

import amodal3d.completion.cc_projection  # noqa: F401 - diffusers loads components only from imported modules
from amodal3d.completion.diffusion import load_component, make_scheduler
from amodal3d.core.errors import UserError

RESOLUTION = 256
LATENT_SCALE = 0.18215
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
class Pix2GestaltPipelineOutput(BaseOutput):
    """``images``: (K, H, W, 3) float32 in [0, 1], the whole object on white; ``seconds``: encode / denoise /
    decode wall time."""

    images: np.ndarray
    seconds: dict


class Pix2GestaltPipeline(DiffusionPipeline):
    """Image + visible mask -> K whole-object images."""

    model_cpu_offload_seq = "image_encoder->cc_projection->vae->unet"
    _optional_components = ["vae"]
    _callback_tensor_inputs = ["latents"]

    def __init__(self, unet, vae, image_encoder, cc_projection, scheduler):
        super().__init__()
        self.register_modules(unet=unet, vae=vae, image_encoder=image_encoder, cc_projection=cc_projection,
                              scheduler=scheduler)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> Pix2GestaltPipeline:
        """diffusers' loader, with one clear line for a folder that is not a pix2gestalt model (and support for
        folders written by amodal3d before it was a DiffusionPipeline)."""
        folder = Path(str(pretrained_model_name_or_path)).expanduser()
        if folder.exists() and not (folder / "unet").is_dir():
            raise UserError(f"{folder} is not a pix2gestalt diffusers folder (no unet/); convert the original "
                            "checkpoint with: amodal3d convert-pix2gestalt CKPT OUT")
        if folder.exists() and _legacy_index(folder):
            return cls._from_legacy_folder(folder, kwargs.get("dtype"))
        parent = super(Pix2GestaltPipeline, cls).from_pretrained
        return load_component(parent, str(pretrained_model_name_or_path), "the pix2gestalt pipeline", **kwargs)

    @classmethod
    def _from_legacy_folder(cls, folder: Path, dtype=None) -> Pix2GestaltPipeline:
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPVisionModelWithProjection

        from amodal3d.completion.cc_projection import CCProjection

        loaders = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "image_encoder": CLIPVisionModelWithProjection,
                   "cc_projection": CCProjection, "scheduler": DDIMScheduler}
        parts = {}
        for name, loader in loaders.items():
            if not (folder / name).is_dir():
                parts[name] = None
                continue
            extra = {} if name == "scheduler" or dtype is None else {"dtype": dtype}
            parts[name] = load_component(loader.from_pretrained, str(folder), f"pix2gestalt {name}", subfolder=name,
                                         **extra)
        return cls(**parts)

    def use_scheduler(self, name: str) -> None:
        """Swap the sampler: ddim (the paper's), dpm++, euler_a, unipc; same noise schedule."""
        self.scheduler = make_scheduler(name, self.scheduler.config)

    @property
    def canvas_size(self) -> int:
        """The image size the model was trained at (256 for pix2gestalt; a small model's own)."""
        size = int(self.unet.config.sample_size)
        return size if self.vae is None else size * 2 ** (len(self.vae.config.block_out_channels) - 1)

    def check_inputs(self, image: np.ndarray, visible_mask: np.ndarray, num_samples: int) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or visible_mask.shape != image.shape[:2]:
            raise UserError(f"expected an (H, W, 3) image and an (H, W) mask, got {image.shape} and "
                            f"{visible_mask.shape}")
        if image.shape[0] % 8 or image.shape[1] % 8:
            raise UserError(f"image size must be a multiple of 8, got {image.shape[1]}x{image.shape[0]}")
        if num_samples < 1:
            raise UserError(f"num_samples must be at least 1, got {num_samples}")

    @torch.no_grad()
    def __call__(self, image, visible_mask, num_samples: int = 6, num_inference_steps: int = DEFAULT_STEPS,
                 guidance_scale: float = DEFAULT_GUIDANCE, eta: float = DEFAULT_ETA, generator=None,
                 batch_samples: bool = True, original_timesteps: bool = True, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs: tuple[str, ...] = ("latents",),
                 return_dict: bool = True) -> Pix2GestaltPipelineOutput | tuple:
        """Complete the object that ``visible_mask`` marks in ``image``.

        image : (H, W, 3) float in [0, 1] (H, W multiples of 8; the model was trained at 256x256).
        visible_mask : (H, W) bool, the visible part of the object.
        num_samples : K whole-object samples. num_inference_steps, eta : the sampler's (DDIM: eta 1.0 as trained).
        guidance_scale : classifier-free guidance; 1.0 runs the conditional branch only.
        generator : a torch.Generator for the initial and per-step noise (same generator state, same samples).
        batch_samples : all K samples and both guidance branches in one UNet batch per step (False: one UNet call
            per sample, for comparison and for small GPUs).
        original_timesteps : DDIM on the original sampler's timesteps (see :meth:`set_timesteps`); False: diffusers'
            own spacing (what models trained here were tuned with).
        callback_on_step_end : diffusers' ``callback(pipe, step, timestep, tensors) -> dict`` after each step; the
            tensors it returns (``latents``) replace the pipeline's.
        Returns :class:`Pix2GestaltPipelineOutput` (or ``(images,)`` with ``return_dict=False``).
        """
        image, visible_mask = np.asarray(image, np.float32), np.asarray(visible_mask, bool)
        self.check_inputs(image, visible_mask, num_samples)
        device = self._execution_device
        clock = [time.perf_counter()]
        context, concat = self.encode_conditions(image, visible_mask, device)
        clock.append(time.perf_counter())
        latents = self.prepare_latents(num_samples, concat, generator, device)
        timesteps = self.set_timesteps(num_inference_steps, device, original_timesteps)
        latents = latents * self.scheduler.init_noise_sigma
        accepted = inspect.signature(self.scheduler.step).parameters
        step_options = {k: v for k, v in (("generator", generator), ("eta", eta)) if k in accepted}
        with self.progress_bar(total=len(timesteps)) as progress:
            for i, t in enumerate(timesteps):
                noise = self.predict_noise(latents, t, context, concat, guidance_scale, batch_samples)
                latents = self.scheduler.step(noise, t, latents, **step_options).prev_sample
                if callback_on_step_end is not None:
                    available = {"latents": latents}
                    tensors = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                    latents = callback_on_step_end(self, i, t, tensors).get("latents", latents)
                progress.update()
        clock.append(time.perf_counter())
        images = self.decode(latents)
        clock.append(time.perf_counter())
        self.maybe_free_model_hooks()
        seconds = dict(zip(("encode", "denoise", "decode"), np.diff(clock).tolist()))
        return Pix2GestaltPipelineOutput(images, seconds) if return_dict else (images,)

    def set_timesteps(self, num_inference_steps: int, device=None, original: bool = True):
        """The sampler's timesteps. DDIM runs as the original's sampler does (LDM's ``DDIMSampler``): a stride of
        ``1000 // steps``, timesteps ``range(0, 1000, stride) + 1`` without the noisiest one, so 200 steps asked run
        199 from t=991 and 400 asked run 499 from t=997 (a stride of 2). Other schedulers run diffusers' own."""
        from diffusers import DDIMScheduler

        if not original or not isinstance(self.scheduler, DDIMScheduler):
            self.scheduler.set_timesteps(num_inference_steps, device=device)
            return self.scheduler.timesteps
        train_steps = self.scheduler.config.num_train_timesteps
        stride = max(train_steps // max(num_inference_steps, 1), 1)
        self.scheduler.set_timesteps(train_steps // stride, device=device)  # its step() then steps back by stride
        timesteps = self.scheduler.timesteps[1:]
        self.scheduler.timesteps = timesteps
        return timesteps

    def prepare_latents(self, num_samples: int, concat, generator, device):
        """Initial noise (K, C, h, w), drawn on the CPU in float32 so a seed gives the same noise everywhere."""
        shape = (num_samples, self.unet.config.out_channels, *concat.shape[2:])
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device, self.unet.dtype)

    def decode(self, latents) -> np.ndarray:
        decoded = latents if self.vae is None else self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return ((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()

    def encode_conditions(self, image: np.ndarray, visible_mask: np.ndarray, device=None):
        """(CLIP context (1, 1, D) after the projection, concat latents (1, 8, h, w)) of one image and mask."""
        device = device or self._execution_device
        dtype = self.unet.dtype
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].to(device, dtype) * 2.0 - 1.0
        mask = torch.from_numpy(np.repeat(visible_mask[None, None].astype(np.float32), 3, axis=1))
        return self.conditions(pixels, mask.to(device, dtype) * 2.0 - 1.0)

    def image_embedding(self, pixels):
        """The CLIP image embedding (B, 1, D) of (B, 3, H, W) pixels in [-1, 1], before ``cc_projection``."""
        size = self.image_encoder.config.image_size
        # as the original's FrozenCLIPImageEmbedder: kornia 0.6 resize, bicubic, align_corners=True, antialias=False
        # (its default), which is exactly torch's interpolate without antialiasing
        clip_in = torch.nn.functional.interpolate(pixels.float(), size=(size, size), mode="bicubic",
                                                  align_corners=True)
        mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
        clip_in = ((clip_in + 1.0) / 2.0 - mean) / std
        return self.image_encoder(clip_in.to(self.image_encoder.dtype)).image_embeds[:, None]

    def conditions(self, pixels, mask):
        """Batched: ``pixels`` and ``mask`` (B, 3, H, W) in [-1, 1] -> (context (B, 1, D), concat (B, C, h, w))."""
        embeds = self.image_embedding(pixels)
        context = self.cc_projection(embeds.to(self.cc_projection.dtype)).to(self.unet.dtype)
        if self.vae is None:
            return context, torch.cat([pixels, mask], 1)
        latents = [self.vae.encode(x.to(self.vae.dtype)).latent_dist.mode() for x in (pixels, mask)]
        return context, torch.cat(latents, 1).to(self.unet.dtype)

    def target_latents(self, pixels):
        """What the UNet denoises, for training: the scaled VAE latent of (B, 3, H, W) pixels in [-1, 1], or the
        pixels themselves in pixel space."""
        if self.vae is None:
            return pixels
        return self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor

    def predict_noise(self, latents, t, context, concat, guidance_scale: float, batch_samples: bool = True):
        """Guided noise prediction for the K latents at step t; guidance 1.0 is the conditional branch alone."""
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


def _legacy_index(folder: Path) -> bool:
    """A model_index.json in the layout amodal3d wrote before the pipeline was a DiffusionPipeline."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(index.get("unet"), str)
