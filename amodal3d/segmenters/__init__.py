"""Prompt -> modal (visible) mask. ``sam`` when SAM weights are given, else the CPU ``grabcut`` fallback."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.prompts import Prompt


@dataclass
class Segmentation:
    mask: np.ndarray
    method: str  # "given" | "grabcut" | "sam"
    score: float | None = None


def modal_mask(image: np.ndarray, prompt: Prompt, sam_checkpoint: str | None = None,
               sam_model: str = "vit_b", sam=None) -> Segmentation:
    """The visible mask the prompt points at. ``image`` (H, W, 3) float in [0, 1].

    A mask prompt is used as given. Otherwise SAM's ``SamPredictor`` runs when ``sam_checkpoint`` (or a built ``sam``
    model) is given; without weights a GrabCut segmentation seeded by the points/box runs on the CPU.
    """
    h, w = image.shape[:2]
    prompt.validate(h, w)
    if prompt.mask is not None:
        return Segmentation(prompt.mask.astype(bool), "given")
    if sam is not None or sam_checkpoint is not None:
        from amodal3d.segmenters.sam import segment_with_sam

        mask, score = segment_with_sam(image, prompt, checkpoint=sam_checkpoint, model_type=sam_model, sam=sam)
        method = "sam"
    else:
        from amodal3d.segmenters.grabcut import segment_with_grabcut

        mask, score = segment_with_grabcut(image, prompt), None
        method = "grabcut"
    if not mask.any():
        raise UserError(f"{method} found no object at the prompt; try another point, a box or a mask")
    return Segmentation(mask, method, score)
