"""Prompt -> modal (visible) mask. ``sam`` when SAM weights are given, else the CPU ``grabcut`` fallback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.prompts import Prompt


@dataclass
class SegmenterConfig:
    """How a point or box prompt becomes the visible mask."""

    sam_checkpoint: Path | None = None
    """segment-anything checkpoint (default: the GrabCut CPU fallback); read by the safe loader."""
    sam_model: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    """SAM model type of the checkpoint."""


@dataclass
class Segmentation:
    mask: np.ndarray
    method: str  # "given" | "grabcut" | "sam"
    score: float | None = None


def modal_mask(image: np.ndarray, prompt: Prompt, config: SegmenterConfig | None = None, sam=None,
               background: np.ndarray | None = None) -> Segmentation:
    """The visible mask the prompt points at. ``image`` (H, W, 3) float in [0, 1].

    A mask prompt is used as given. Otherwise SAM's ``SamPredictor`` runs when the config names a checkpoint (or a
    built ``sam`` model is given); without weights a GrabCut segmentation seeded by the points/box runs on the CPU.
    ``background``: (H, W) bool pixels known not to be the object (an occluder the user pointed at).
    """
    config = config or SegmenterConfig()
    h, w = image.shape[:2]
    prompt.validate(h, w)
    if prompt.mask is not None:
        return Segmentation(prompt.mask.astype(bool), "given")
    if sam is not None or config.sam_checkpoint is not None:
        from amodal3d.segmenters.sam import segment_with_sam

        mask, score = segment_with_sam(image, prompt, checkpoint=config.sam_checkpoint, model_type=config.sam_model,
                                       sam=sam)
        if background is not None:
            mask = mask & ~background
        method = "sam"
    else:
        from amodal3d.segmenters.grabcut import segment_with_grabcut

        mask, score = segment_with_grabcut(image, prompt, background=background), None
        method = "grabcut"
    if not mask.any():
        raise UserError(f"{method} found no object at the prompt; try another point, a box or a mask")
    return Segmentation(mask, method, score)
