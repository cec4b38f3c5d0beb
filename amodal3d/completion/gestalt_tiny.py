"""``gestalt-tiny``: a small pixel-space pix2gestalt-style model trained on this project's CPU (``amodal3d train``,
issue 9) and shipped in the package, so a learned completer runs with no downloaded weights.

It is :class:`Pix2GestaltPipeline` with a 64x64 pixel-space UNet predicting the clean whole object; its weights, the
exact training command and seed, and its measured scores are in ``amodal3d/weights/gestalt-tiny/``. Sampling
defaults suit an x0-predicting model: deterministic DDIM (eta 0), 10 steps, guidance 2 (on validation renders
20 steps gained 0.005 IoU for twice the time; guidance 1.0 / 1.5 / 2.0 / 3.0 gave 0.669 / 0.679 / 0.684 / 0.690).
A small model's white is not quite white, so each sample's mask is taken here (its alpha): the pixels darker than
``white_threshold`` that connect to the visible part, plus the visible part itself (the whole object contains what
is seen of it), holes filled. A small model also copies the occluder into its completions (a box in front drawn as
part of the object); pixels where a sample reproduces the input outside the visible part are that copy and are
dropped unless the object encloses them (validation IoU 0.685 -> 0.700 at Lab tolerance 12; 8: 0.698, 20: 0.662).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from amodal3d.completion.base import CanvasInput, WholeSample, register_completer
from amodal3d.completion.classical import to_lab
from amodal3d.completion.pix2gestalt import Pix2GestaltCompleter, Pix2GestaltConfig
from amodal3d.core.errors import UserError
from amodal3d.core.framing import mask_from_white, parts_touching

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "gestalt-tiny"
# The paper's gray < 250 keeps the tiny model's off-white haze: mean IoU on validation renders of training objects
# (10 DDIM steps, guidance 2) was 0.502 at 250, 0.679 at 245, 0.684 at 240, 0.669 at 230.
TINY_WHITE_THRESHOLD = 240.0


def whole_mask(rgb: np.ndarray, visible: np.ndarray, threshold: float, excluded: np.ndarray | None = None
               ) -> np.ndarray:
    """The object of a whole-on-white sample that includes the visible part (see the module docstring); ``excluded``
    pixels are not object unless enclosed by it."""
    dark = mask_from_white(rgb, threshold) | visible
    if excluded is not None:
        dark &= ~excluded | visible
    return ndimage.binary_fill_holes(parts_touching(dark, visible, diagonal=True))


def copied_occluder(rgb: np.ndarray, inputs: CanvasInput, tolerance: float, image_lab: np.ndarray | None = None
                    ) -> np.ndarray:
    """Pixels outside the visible part where a sample shows what the input shows there: the thing in front, copied
    into the completion instead of completed behind (Lab distance below ``tolerance``). ``image_lab``: the input in
    Lab, when the caller has it for several samples."""
    image_lab = to_lab(inputs.image) if image_lab is None else image_lab
    same = np.linalg.norm(to_lab(rgb) - image_lab, axis=-1) < tolerance
    return same & inputs.valid & ~inputs.modal


@dataclass
class GestaltTinyConfig(Pix2GestaltConfig):
    """gestalt-tiny: the small learned model trained here on a CPU, bundled (about 4 s for 4 samples on 2 cores)."""

    weights: str | None = None
    """Another `amodal3d train` output (OUT/model) instead of the bundled model."""
    steps: int = 10
    eta: float = 0.0
    original_timesteps: bool = False
    """diffusers' DDIM spacing, which this model's sampler settings were tuned with."""
    white_threshold: float = TINY_WHITE_THRESHOLD
    """A sample's pixels darker than this (0..255 grey) that connect to the visible part are the object."""
    copy_tolerance: float = 12.0
    """Lab distance under which a sample pixel outside the visible part copies the occluder (0: keep them)."""


@register_completer("gestalt-tiny")
class GestaltTinyCompleter(Pix2GestaltCompleter):
    """The bundled small model; ``weights`` may point at another ``amodal3d train`` output (OUT/model)."""

    config_class = GestaltTinyConfig

    def __init__(self, config: GestaltTinyConfig | None = None):
        config = config or GestaltTinyConfig()
        weights = config.weights or str(WEIGHTS)
        if not (Path(weights).expanduser() / "unet").is_dir():
            raise UserError(f"gestalt-tiny weights missing: {weights} has no unet/ (train a model with "
                            "`amodal3d train` and pass --gestalt-tiny.weights OUT/model)")
        super().__init__(replace(config, weights=weights))
        self.white_threshold = float(config.white_threshold)
        self.copy_tolerance = float(config.copy_tolerance)

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        out = []
        image_lab = to_lab(inputs.image)
        for sample in super().complete(inputs, samples, seed):
            copied = (copied_occluder(sample.rgb, inputs, self.copy_tolerance, image_lab) if self.copy_tolerance > 0
                      else None)
            alpha = whole_mask(sample.rgb, inputs.modal, self.white_threshold, copied)
            out.append(WholeSample(rgb=np.where(alpha[..., None], sample.rgb, 1.0).astype(np.float32),
                                   alpha=alpha.astype(np.float32)))
        return out
