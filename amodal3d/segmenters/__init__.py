"""Prompt -> modal (visible) mask: ``sam`` when SAM weights are given, else the bundled ``clicknet`` (needs torch),
else ``grabcut`` (the core install)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.optional import networks_available
from amodal3d.core.prompts import Prompt


@dataclass
class SegmenterConfig:
    """How a point or box prompt becomes the visible mask."""

    sam_checkpoint: Path | None = None
    """segment-anything checkpoint (default: none, clicknet or GrabCut segments); read by the safe loader."""
    sam_model: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    """SAM model type of the checkpoint."""
    segment_with: Literal["auto", "sam", "clicknet", "grabcut"] = "auto"
    """auto: SAM when --sam-checkpoint is given, else the bundled clicknet when torch is installed (the `diffusion`
    extra), else GrabCut."""
    clicknet_weights: Path | None = None
    """Another `amodal3d train-segmenter` output (OUT/model/clicknet.safetensors) instead of the bundled one."""
    clicknet_box_weights: Path | None = None
    """Weights for a box alone (no clicks), segmented without the GrabCut fit (default: the bundled box weights,
    or --clicknet-weights when only that is given)."""

    def method(self) -> str:
        """The segmenter ``auto`` stands for here."""
        if self.segment_with != "auto":
            return self.segment_with
        if self.sam_checkpoint is not None:
            return "sam"
        return "clicknet" if networks_available() else "grabcut"


@dataclass
class Segmentation:
    mask: np.ndarray
    method: str  # "given" | "grabcut" | "clicknet" | "sam"
    score: float | None = None


def modal_mask(image: np.ndarray, prompt: Prompt, config: SegmenterConfig | None = None, sam=None,
               background: np.ndarray | None = None) -> Segmentation:
    """The visible mask the prompt points at. ``image`` (H, W, 3) float in [0, 1].

    A mask prompt is used as given. Otherwise SAM's ``SamPredictor`` runs when the config names a checkpoint (or a
    built ``sam`` model is given); else the config's segmenter (``auto``: clicknet with torch, else GrabCut).
    ``background``: (H, W) bool pixels known not to be the object (an occluder the user pointed at).
    """
    config = config or SegmenterConfig()
    h, w = image.shape[:2]
    prompt.validate(h, w)
    if prompt.mask is not None:
        return Segmentation(prompt.mask.astype(bool), "given")
    method = "sam" if sam is not None else config.method()
    if method == "sam":
        from amodal3d.segmenters.sam import segment_with_sam

        if sam is None and config.sam_checkpoint is None:
            raise UserError("--segment-with sam needs SAM's weights: --sam-checkpoint PATH")
        mask, score = segment_with_sam(image, prompt, checkpoint=config.sam_checkpoint, model_type=config.sam_model,
                                       sam=sam)
        if background is not None:
            mask = mask & ~background
    elif method == "clicknet":
        from amodal3d.core.optional import require
        from amodal3d.segmenters.clicknet import BOX_WEIGHTS, is_box_alone, segment_with_clicknet

        for module in ("torch", "safetensors"):
            require(module, "the clicknet segmenter (or pass --segment-with grabcut)")
        if is_box_alone(prompt):
            weights = config.clicknet_box_weights or config.clicknet_weights or BOX_WEIGHTS
            mask = segment_with_clicknet(image, prompt, background, weights, fit=False)
        else:
            mask = segment_with_clicknet(image, prompt, background, config.clicknet_weights)
        score = None
    else:
        from amodal3d.segmenters.grabcut import segment_with_grabcut

        mask, score = segment_with_grabcut(image, prompt, background=background), None
    if not mask.any():
        raise UserError(f"{method} found no object at the prompt; try another point, a box or a mask")
    return Segmentation(mask, method, score)
