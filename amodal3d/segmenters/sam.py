"""segment-anything's SamPredictor behind our prompt. Weights: an explicit checkpoint path (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.io import to_uint8
from amodal3d.core.optional import require
from amodal3d.core.prompts import Prompt

SAM_MODELS = ("vit_b", "vit_l", "vit_h")


def build_sam(model_type: str = "vit_b", checkpoint: str | Path | None = None):
    """A SAM model. ``checkpoint=None`` builds randomly initialised weights (tests); a path loads the real ones."""
    sam_model_registry = require("segment_anything", "the SAM segmenter").sam_model_registry
    require("torch", "the SAM segmenter")
    if model_type not in SAM_MODELS:
        raise UserError(f"unknown SAM model '{model_type}'; known: {', '.join(SAM_MODELS)}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise UserError(f"SAM checkpoint {checkpoint} not found (download sam_{model_type}_*.pth from the "
                        "segment-anything release page and pass its path)")
    model = sam_model_registry[model_type](checkpoint=None)
    if checkpoint is not None:
        from amodal3d.core.checkpoints import load_checkpoint, state_dict_of

        try:  # our loader, never segment-anything's own torch.load: a checkpoint is untrusted input
            model.load_state_dict(state_dict_of(load_checkpoint(checkpoint)), strict=True)
        except RuntimeError as exc:  # a checkpoint of another model type
            raise UserError(f"cannot load SAM {model_type} from {checkpoint}: {str(exc).splitlines()[0]}") from None
    return model.eval()


def segment_with_sam(image: np.ndarray, prompt: Prompt, checkpoint=None, model_type: str = "vit_b",
                     sam=None) -> tuple[np.ndarray, float]:
    """(mask (H, W) bool, predicted IoU score) of the best of SAM's three proposals for the prompt."""
    model = sam if sam is not None else build_sam(model_type, checkpoint)
    torch = require("torch", "the SAM segmenter")
    predictor = require("segment_anything", "the SAM segmenter").SamPredictor(model)
    predictor.set_image(to_uint8(image[..., :3]))
    coords = np.asarray(prompt.points, np.float32) if prompt.points else None
    labels = prompt.point_labels() if prompt.points else None
    box = np.asarray(prompt.box, np.float32) if prompt.box is not None else None
    with torch.no_grad():
        masks, scores, _ = predictor.predict(point_coords=coords, point_labels=labels, box=box, multimask_output=True)
    best = int(np.argmax(scores))
    return masks[best].astype(bool), float(scores[best])
