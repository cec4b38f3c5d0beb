"""``pix2gestalt``: amodal completion by latent diffusion (Ozguroglu et al., CVPR 2024), the Completer over
:class:`~amodal3d.completion.pipeline_pix2gestalt.Pix2GestaltPipeline` (a diffusers DiffusionPipeline).

Weights: a diffusers-format folder (``unet/``, ``vae/``, ``image_encoder/``, ``cc_projection/``, ``scheduler/``) or
a hub id holding one; make it from the released Lightning checkpoint with ``amodal3d convert-pix2gestalt``, or name
the released checkpoint (``pix2gestalt``: downloaded by ``amodal3d weights download``, converted once, cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from amodal3d.completion.base import CanvasInput, WholeSample, register_completer
from amodal3d.completion.diffusion import (
    pick_device,
    pick_dtype,
    require_diffusion,
    seeded_generator,
)
from amodal3d.core.errors import UserError
from amodal3d.core.optional import require

DEFAULT_STEPS = 200  # the original sampler's: DDIM, 200 steps, eta 1.0, guidance 2.0
DEFAULT_GUIDANCE = 2.0
DEFAULT_ETA = 1.0


@dataclass
class Pix2GestaltConfig:
    """pix2gestalt: the paper's latent diffusion model (needs its weights: amodal3d convert-pix2gestalt)."""

    weights: str | None = None
    """A converted diffusers folder, a diffusers hub id, or a released checkpoint by name (pix2gestalt,
    pix2gestalt-epoch10, cvlab/pix2gestalt-weights: downloaded once by `amodal3d weights download`, converted and
    cached). Required."""
    steps: int = DEFAULT_STEPS
    """Sampler steps."""
    guidance: float = DEFAULT_GUIDANCE
    """Classifier-free guidance scale (1.0: the conditional branch alone)."""
    eta: float = DEFAULT_ETA
    """DDIM eta (1.0 as the original samples; 0.0 deterministic)."""
    scheduler: Literal["ddim", "dpm++", "euler_a", "unipc"] = "ddim"
    """Sampler (ddim is the paper's; the others reach similar samples in fewer steps)."""
    device: str | None = None
    """cuda, mps or cpu (default: the best present)."""
    dtype: Literal["float32", "float16", "bfloat16"] | None = None
    """Precision (default: float16 on a GPU, float32 on the CPU)."""
    attention_slicing: bool = False
    """Lower peak GPU memory at some speed cost."""
    offload: Literal["none", "model", "sequential"] = "none"
    """Keep the models in CPU memory and move each onto the GPU when it runs (model), or each layer (sequential:
    the least GPU memory, slow). Needs a CUDA GPU."""
    batch_samples: bool = True
    """All samples and both guidance branches in one UNet batch per step."""
    original_timesteps: bool = True
    """DDIM on the original sampler's timesteps (stride 1000 // steps, the noisiest dropped: 200 asked, 199 run)."""

    def low_memory(self):
        """These options in the device's smallest-memory mode (``--low-memory``; see ``low_memory_mode``)."""
        import dataclasses

        from amodal3d.completion.diffusion import low_memory_mode

        mode = low_memory_mode(self.device)
        return dataclasses.replace(self, dtype=mode["dtype"], attention_slicing=mode["attention_slicing"],
                                   batch_samples=mode["batch_samples"], offload=mode.get("offload", self.offload))


def resolve_weights(weights: str) -> str | Path:
    """A local folder or hub id as given; a released checkpoint's name -> its converted folder in our cache."""
    from amodal3d.core import weights as hub

    if Path(weights).expanduser().exists() or weights not in {n for e in hub.CATALOG if e.name.startswith(
            "pix2gestalt") for n in (e.name, *e.aliases)}:
        return weights
    return converted_weights(hub.find(weights).name)


def converted_weights(name: str, accept_licence: bool = False) -> Path:
    """The diffusers folder converted from released checkpoint ``name`` (amodal3d cache), converting it from the
    downloaded checkpoint on first use (the download needs the licence accepted once)."""
    from amodal3d.core import weights as hub

    folder = hub.amodal3d_cache() / "converted" / name
    if (folder / "model_index.json").is_file():
        return folder
    (checkpoint,) = hub.fetch(name, accept_licence=accept_licence)
    from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt

    folder.parent.mkdir(parents=True, exist_ok=True)
    convert_pix2gestalt(checkpoint, folder, ema=None, dtype="float32", overwrite=False)
    return folder


@register_completer("pix2gestalt")
class Pix2GestaltCompleter:
    """The Completer over Pix2GestaltPipeline."""

    config_class = Pix2GestaltConfig

    def __init__(self, config: Pix2GestaltConfig | None = None):
        self.config = config or self.config_class()
        if not self.config.weights:
            raise UserError("pix2gestalt needs weights: --pix2gestalt.weights pix2gestalt (after `amodal3d weights "
                            "download pix2gestalt --accept-licence`) or a folder made from the released checkpoint "
                            "by `amodal3d convert-pix2gestalt epoch=000010.ckpt DIR`")
        self._pipe = None

    def pipeline(self):
        if self._pipe is None:
            require_diffusion(self.name)
            from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline

            config = self.config
            device = pick_device(config.device)
            pipe = Pix2GestaltPipeline.from_pretrained(str(resolve_weights(config.weights)),
                                                       dtype=pick_dtype(config.dtype, device))
            if config.offload != "none":
                if device.type != "cuda":
                    raise UserError(f"--pix2gestalt.offload {config.offload} needs a CUDA GPU (device is {device})")
                require("accelerate", "model offload")
                getattr(pipe, f"enable_{config.offload}_cpu_offload")(device=device)
            else:
                pipe = pipe.to(device)
            pipe.set_progress_bar_config(disable=True)  # a stage of `complete`, which reports its own progress
            if config.scheduler != "ddim":
                pipe.use_scheduler(config.scheduler)
            if config.attention_slicing:
                pipe.enable_attention_slicing()
            self._pipe = pipe
        return self._pipe

    @property
    def resolution(self) -> int:
        """The canvas the model was trained at (256 for pix2gestalt; a small model's own size)."""
        return self.pipeline().canvas_size

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        if not inputs.modal.any():
            raise UserError("the visible mask is empty")
        config = self.config
        out = self.pipeline()(inputs.image, inputs.modal, num_samples=samples, num_inference_steps=config.steps,
                              guidance_scale=config.guidance, eta=config.eta, generator=seeded_generator(seed),
                              batch_samples=config.batch_samples, original_timesteps=config.original_timesteps)
        return [WholeSample(rgb=rgb) for rgb in out.images]
