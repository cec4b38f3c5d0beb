"""Recognition of occluded objects (pix2gestalt Table 2): CLIP zero-shot classification of the completed object
against the same classification of the raw occluded crop.

The CLIP model comes from the user (``weights``: a folder or hub id of a transformers ``CLIPModel``, e.g. a local
copy of openai/clip-vit-large-patch14); nothing is downloaded here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal3d.completion.diffusion import load_component, pick_device, require
from amodal3d.core.errors import UserError
from amodal3d.core.io import as_rgb, to_uint8

TEMPLATE = "a photo of a {}."


def crop_to_mask(image: np.ndarray, mask: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """The square crop of ``image`` around ``mask``'s bounding box (grown by ``margin`` of its longest side),
    padded with white where it leaves the image."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise UserError("cannot crop to an empty mask")
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    half = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) * (1 + 2 * margin) / 2
    x0, y0, side = int(np.floor(cx - half)), int(np.floor(cy - half)), int(np.ceil(2 * half))
    out = np.ones((side, side, image.shape[2]), np.float32)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, image.shape[1]), min(y0 + side, image.shape[0])
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]


class ZeroShotCLIP:
    """CLIP zero-shot classifier over a fixed label set (prompts ``template.format(label)``)."""

    def __init__(self, weights: str, labels: list[str], template: str = TEMPLATE, device: str | None = None,
                 model=None, processor=None):
        if not labels:
            raise UserError("zero-shot classification needs at least one label")
        torch = require("torch")
        transformers = require("transformers")
        if model is None:
            if not weights:
                raise UserError("recognition needs a CLIP model: --clip DIR_OR_HUB_ID (e.g. a local copy of "
                                "openai/clip-vit-large-patch14)")
            model = load_component(transformers.CLIPModel.from_pretrained, weights, "the CLIP model")
            processor = load_component(transformers.CLIPProcessor.from_pretrained, weights, "the CLIP processor")
        self.device = pick_device(device)
        self.model, self.processor, self.labels = model.to(self.device).eval(), processor, list(labels)
        text = processor(text=[template.format(label) for label in self.labels], return_tensors="pt", padding=True,
                         truncation=True)
        with torch.no_grad():
            features = model.get_text_features(**{k: v.to(self.device) for k, v in text.items()})
            features = getattr(features, "pooler_output", features)
        self.text = features / features.norm(dim=-1, keepdim=True)

    def __call__(self, images: list[np.ndarray]) -> list[Prediction]:
        """Images (H, W, 3) float in [0, 1] -> the most likely label of each and the full distribution."""
        torch = require("torch")
        pixels = [to_uint8(img[..., :3]) for img in images]
        inputs = self.processor(images=pixels, return_tensors="pt")
        with torch.no_grad():
            features = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device))
            features = getattr(features, "pooler_output", features)
            features = features / features.norm(dim=-1, keepdim=True)
            logits = self.model.logit_scale.exp() * features @ self.text.T
            probs = logits.softmax(-1).float().cpu().numpy()
        return [Prediction(self.labels[int(p.argmax())], dict(zip(self.labels, p.tolist()))) for p in probs]


def recognition_accuracy(classifier, cases: list[dict]) -> dict:
    """Top-1 accuracy on raw occluded crops and on completed objects (pix2gestalt Table 2's two columns).

    Each case: ``image`` (H, W, 3), ``modal`` (H, W) bool, ``completed`` (H, W, 3|4) (the whole object on white or
    RGBA), ``amodal`` (H, W) bool, ``label``.
    """
    if not cases:
        raise UserError("no cases to classify")
    raw = classifier([crop_to_mask(c["image"], c["modal"]) for c in cases])
    whole = classifier([crop_to_mask(as_rgb(c["completed"]), c["amodal"]) for c in cases])
    return {"cases": len(cases),
            "raw_top1": float(np.mean([p.label == c["label"] for p, c in zip(raw, cases)])),
            "completed_top1": float(np.mean([p.label == c["label"] for p, c in zip(whole, cases)])),
            "raw": [p.label for p in raw], "completed": [p.label for p in whole]}


def scene_cases(folder, method: str = "classical", config=None, seed: int = 0) -> list[dict]:
    """Recognition cases from rendered scenes: the input and its visible mask, the first completion sample and the
    vote mask of ``method`` (with the stage ``config``, a CompletionConfig), and the target's category as the
    label."""
    from pathlib import Path

    from amodal3d.completion import complete
    from amodal3d.core.formats.scene import INPUT, MODAL_MASK, OCCLUDER_MASK, Scene
    from amodal3d.core.prompts import Prompt

    folder = Path(folder)
    paths = sorted(p for p in folder.glob("scene_*") if (p / "scene.json").is_file())
    if not paths:
        raise UserError(f"no rendered scenes (scene_*/scene.json) in {folder}")
    cases = []
    for path in paths:
        scene = Scene.open(path)
        image, modal = scene.image(INPUT), scene.mask(MODAL_MASK)
        done = complete(image, Prompt(mask=modal), method, config, seed=seed,
                        occluder_mask=scene.mask(OCCLUDER_MASK))
        cases.append({"scene": path.name, "image": image, "modal": modal, "completed": done.samples[0],
                      "amodal": done.amodal_mask, "label": scene.meta["target"]["category"]})
    return cases
