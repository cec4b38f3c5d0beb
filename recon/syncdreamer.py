"""``syncdreamer``: 16 ring views from SyncDreamer (Liu et al. 2023), then a multi-view fit (visual hull).

SyncDreamer is not on PyPI: clone its repository and download its checkpoint, then point us at them:
``AMODAL3D_SYNCDREAMER=/path/to/SyncDreamer`` (holding ``ldm/`` and ``configs/syncdreamer.yaml``) and
``AMODAL3D_SYNCDREAMER_CKPT=/path/to/syncdreamer-pretrain.ckpt`` (or the ``code``/``checkpoint`` options). It needs
a CUDA GPU with about 40 GB for its defaults (4 samples); one sample fits in less. Nothing is downloaded here.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import syncdreamer_input, syncdreamer_ring
from amodal3d.core.checkpoints import load_checkpoint, state_dict_of
from amodal3d.core.errors import UserError
from amodal3d.core.optional import require
from recon.base import ReconInput, ReconResult, View, register_reconstructor

DEFAULT_STEPS = 50
DEFAULT_CFG = 2.0
DEFAULT_SEED = 6033


def locate(code: str | None, checkpoint: str | None) -> tuple[Path, Path, Path]:
    code_dir = Path(code or os.environ.get("AMODAL3D_SYNCDREAMER", "")).expanduser()
    ckpt = Path(checkpoint or os.environ.get("AMODAL3D_SYNCDREAMER_CKPT", "")).expanduser()
    config = code_dir / "configs" / "syncdreamer.yaml"
    if not str(code_dir) or not (code_dir / "ldm").is_dir() or not config.is_file():
        raise UserError("SyncDreamer is not available: set AMODAL3D_SYNCDREAMER to a clone of its repository "
                        f"(with ldm/ and configs/syncdreamer.yaml); got '{code_dir if str(code_dir) != '.' else ''}'")
    if not ckpt.is_file():
        raise UserError("SyncDreamer weights not found: set AMODAL3D_SYNCDREAMER_CKPT to syncdreamer-pretrain.ckpt "
                        f"(got '{ckpt if str(ckpt) != '.' else ''}')")
    return code_dir, config, ckpt


@dataclass
class SyncDreamerConfig:
    """syncdreamer: 16 consistent views by SyncDreamer, then a mesh fitted to them (needs its code and weights)."""

    code: str | None = None
    """A checkout of SyncDreamer (default: $AMODAL3D_SYNCDREAMER)."""
    checkpoint: str | None = None
    """syncdreamer-pretrain.ckpt (default: $AMODAL3D_SYNCDREAMER_CKPT)."""
    steps: int = DEFAULT_STEPS
    """DDIM steps."""
    cfg_scale: float = DEFAULT_CFG
    crop: int = 200
    """Longest side of the object on the 256 input canvas (SyncDreamer also uses 180 and 150)."""
    device: str | None = None
    fit: str = "visual_hull"
    """The reconstruction method fitted to the 16 views."""


@register_reconstructor("syncdreamer")
class SyncDreamerReconstructor:
    config_class = SyncDreamerConfig

    def __init__(self, config: SyncDreamerConfig | None = None):
        c = config or SyncDreamerConfig()
        self.code, self.checkpoint = c.code, c.checkpoint
        self.steps, self.cfg_scale, self.crop = int(c.steps), float(c.cfg_scale), int(c.crop)
        self.device, self.fit = c.device, c.fit
        self._model = None

    def _load(self):
        if self._model is not None:
            return self._model
        code_dir, config, ckpt = locate(self.code, self.checkpoint)
        torch = require("torch", "syncdreamer")
        try:
            from omegaconf import OmegaConf
        except ImportError:
            raise UserError("SyncDreamer needs omegaconf and its own requirements: pip install -r "
                            f"{code_dir}/requirements.txt") from None
        sys.path.insert(0, str(code_dir))
        from ldm.util import instantiate_from_config  # SyncDreamer's own module

        model = instantiate_from_config(OmegaConf.load(config).model)
        model.load_state_dict(state_dict_of(load_checkpoint(ckpt)), strict=True)  # never unpickles code
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = model.to(device).eval()
        return self._model

    def generate_views(self, inputs: ReconInput, seed: int) -> list[View]:
        """The 16 views on the SyncDreamer ring (view 0 at the input's azimuth), as RGBA (alpha from the white background)."""
        import torch

        from amodal3d.core.framing import mask_from_white

        model = self._load()
        device = next(model.parameters()).device
        framed = syncdreamer_input(inputs.view.rgba, crop=self.crop)
        data = {"input_image": torch.from_numpy(framed[None, ..., :3] * 2.0 - 1.0).to(device),
                "input_elevation": torch.tensor([np.deg2rad(inputs.elevation_deg)], dtype=torch.float32).to(device)}
        torch.manual_seed(seed)
        with torch.no_grad():
            params = inspect.signature(model.sample).parameters
            if "sampler" in params:  # later SyncDreamer versions pass a DDIM sampler object
                from ldm.models.diffusion.sync_dreamer import SyncDDIMSampler

                images = model.sample(SyncDDIMSampler(model, self.steps), data, self.cfg_scale, 8)
            else:
                images = model.sample(data, self.cfg_scale, 8)
        images = ((images.clamp(-1, 1) + 1) / 2)[0].permute(0, 2, 3, 1).cpu().numpy()  # (16, H, W, 3)
        azimuth = inputs.view.camera.angles()[0]
        ring = syncdreamer_ring(azimuth, images.shape[1])
        return [View(np.dstack([img, mask_from_white(img).astype(np.float32)]), cam) for img, cam in zip(images, ring)]

    def reconstruct(self, inputs: ReconInput, seed: int = DEFAULT_SEED) -> ReconResult:
        from recon.base import get_reconstructor

        start = time.perf_counter()
        views = self.generate_views(inputs, seed)
        fitted = get_reconstructor(self.fit).reconstruct(ReconInput(inputs.view, inputs.elevation_deg, views), seed)
        return ReconResult(fitted.mesh, views, {"method": "syncdreamer", "fit": self.fit, "steps": self.steps,
                                                "cfg_scale": self.cfg_scale, "seconds": time.perf_counter() - start})
