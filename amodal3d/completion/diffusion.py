"""What the diffusion backends share: lazy imports with one clear error, device and dtype choice, swappable
schedulers, and loading weights from a folder or a hub id."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from amodal3d.core.checkpoints import verify_weights_folder
from amodal3d.core.errors import UserError
from amodal3d.core.io import to_uint8
from amodal3d.core.optional import require

# Faster samplers a user can pick instead of the paper's DDIM (diffusers class names).
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}


@dataclass
class InpaintingModelConfig:
    """What the inpainting-based backends (inpaint, progressive) share: the model and how it samples."""

    weights: str | None = None
    """An inpainting pipeline folder or hub id (required), e.g. a copy of stabilityai/stable-diffusion-2-inpainting."""
    prompt: str = ""
    """Text prompt (e.g. the object's category)."""
    negative_prompt: str = ""
    steps: int = 50
    """Sampler steps."""
    guidance: float = 7.5
    """Classifier-free guidance scale."""
    resolution: int = 512
    """Canvas size the object is framed on."""
    device: str | None = None
    """cuda, mps or cpu (default: the best present)."""
    dtype: Literal["float32", "float16", "bfloat16"] | None = None
    """Precision (default: float16 on a GPU, float32 on the CPU)."""
    attention_slicing: bool = False
    """Lower peak memory at some speed cost."""

    def low_memory(self):
        """These options in the device's smallest-memory mode (``--low-memory``)."""
        mode = low_memory_mode(self.device)
        return dataclasses.replace(self, dtype=mode["dtype"], attention_slicing=mode["attention_slicing"])


def low_memory_mode(device: str | None) -> dict:
    """The smallest-memory settings ``device`` (default: the best present) supports. On the CPU, bfloat16 alone:
    full-size pix2gestalt peaks at 3.68 GB against 6.65 GB in float32, while attention slices and one UNet call per
    sample changed nothing measurable at 256x256 (3.83 GB; benchmarks/bench_pix2gestalt_memory.py). On a GPU, float16,
    attention slices, one call per sample and guidance branch, and on CUDA the models moved onto it one at a time
    (diffusers' model CPU offload)."""
    kind = pick_device(device).type
    if kind == "cpu":
        return {"dtype": "bfloat16", "attention_slicing": False, "batch_samples": True}
    mode = {"dtype": "float16", "attention_slicing": True, "batch_samples": False}
    if kind == "cuda":
        mode["offload"] = "model"
    return mode


def require_diffusion(purpose: str) -> None:
    """torch, diffusers and transformers, or one line naming the extra that installs them."""
    for module in ("torch", "diffusers", "transformers"):
        require(module, purpose)


def pick_device(device: str | None):
    """``device`` as given, else CUDA when present, else Apple MPS, else CPU."""
    torch = require("torch")
    if device:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device '{device}' asked for, but no CUDA GPU is visible")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(dtype: str | None, device):
    """float16 on a GPU, float32 on the CPU unless asked otherwise; float16 on the CPU is refused (too slow and
    lacking kernels there: use bfloat16 or float32)."""
    torch = require("torch")
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in names:
        raise UserError(f"unknown dtype '{dtype}'; known: float32, float16, bfloat16")
    if names[dtype] is torch.float16 and device.type == "cpu":
        raise UserError("float16 needs a GPU; on the CPU use bfloat16 or float32")
    return names[dtype]


def make_scheduler(name: str, config):
    """A diffusers scheduler of kind ``name`` (see SCHEDULERS) built from another scheduler's config."""
    if name not in SCHEDULERS:
        raise UserError(f"unknown scheduler '{name}'; known: {', '.join(SCHEDULERS)}")
    diffusers = require("diffusers")
    return getattr(diffusers, SCHEDULERS[name]).from_config(config)


def load_component(loader: Callable, weights: str, what: str, **kwargs):
    """``loader(weights, **kwargs)`` (a ``from_pretrained``); any failure is one UserError saying what to give."""
    if looks_like_path(weights) and not Path(weights).expanduser().exists():
        raise UserError(f"could not load {what}: no such folder '{weights}'")
    verify_weights_folder(weights)  # a .bin in the folder is a pickle: opened by our safe loader first
    try:
        return loader(weights, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"could not load {what} from '{weights}' (a local folder or a hub id): {first}") from None


def looks_like_path(weights: str) -> bool:
    """A local path rather than a hub id ("owner/name")."""
    return weights.startswith(("/", ".", "~")) or weights.count("/") > 1 or "\\" in weights


def seeded_generator(seed: int):
    """A CPU generator: the same seed gives the same noise on every device."""
    torch = require("torch")
    return torch.Generator("cpu").manual_seed(int(seed))


def require_inpainting_weights(weights: str | None, method: str) -> None:
    if not weights:
        raise UserError(f"{method} needs an inpainting model: --{method}.weights DIR_OR_HUB_ID, e.g. a local copy of "
                        "stabilityai/stable-diffusion-2-inpainting or diffusers/stable-diffusion-xl-1.0-inpainting-0.1")


def load_inpainting_pipeline(weights: str | None, device: str | None, dtype: str | None, method: str,
                             attention_slicing: bool = False):
    """Any diffusers inpainting pipeline (SD 1.5/2 inpainting, SDXL inpainting, ...) from a folder or hub id, on the
    chosen device and precision, without a safety checker (the output is segmented, never shown as is)."""
    require_inpainting_weights(weights, method)
    diffusers = require("diffusers")
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(dtype, torch_device)
    pipe = load_component(diffusers.AutoPipelineForInpainting.from_pretrained, str(weights),
                          f"the {method} inpainting pipeline", dtype=torch_dtype, safety_checker=None,
                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if attention_slicing:
        pipe.enable_attention_slicing()
    return pipe.to(torch_device)


def encode_latents(pipe, image):
    """The scaled VAE latent (1, C, h, w) of an (S, S, 3) image in [0, 1] (posterior mode)."""
    torch = require("torch")
    with torch.no_grad():
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None].to(pipe.device, pipe.vae.dtype) * 2.0 - 1.0
        return pipe.vae.encode(pixels).latent_dist.mode() * pipe.vae.config.scaling_factor


def run_inpainting(pipe, image, mask, prompt: str, negative_prompt: str, steps: int, guidance: float, generators,
                   callback=None, tensor_inputs=("latents",)):
    """K = len(generators) inpaintings of ``image`` (S, S, 3) in [0, 1] where ``mask`` (S, S) in [0, 1] is 1, as
    (K, S, S, 3) float in [0, 1]; ``callback`` is diffusers' ``callback_on_step_end``."""
    from PIL import Image

    size = image.shape[0]
    count = len(generators)
    extra = {"callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": list(tensor_inputs)} if callback \
        else {}
    return pipe(prompt=[prompt] * count, negative_prompt=[negative_prompt] * count,
                image=Image.fromarray(to_uint8(image)),
                mask_image=Image.fromarray(to_uint8(mask)),
                height=size, width=size, strength=1.0, num_inference_steps=steps, guidance_scale=guidance,
                generator=list(generators), output_type="np", **extra).images


class NoisedToNextStep:
    """A clean latent (1, C, h, w) noised to the step that follows ``step``, with fixed per-sample noise drawn from
    ``generators``: what diffusers' step callbacks blend the running latents toward."""

    def __init__(self, clean, generators):
        torch = require("torch")
        self.clean = clean
        noise = torch.cat([torch.randn(clean.shape[1:], generator=g)[None] for g in generators])
        self.noise = noise.to(clean.device, clean.dtype)

    def __call__(self, pipe, step: int, latents):
        target = self.clean.expand_as(latents)
        timesteps = pipe.scheduler.timesteps
        if step + 1 < len(timesteps):
            target = pipe.scheduler.add_noise(target, self.noise[: len(latents)], timesteps[step + 1:step + 2])
        return target
