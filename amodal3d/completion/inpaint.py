"""``inpaint``: tuning-free amodal segmentation (Lee, Benes, Yeh, arXiv 2503.18947) over any diffusers inpainting
pipeline: inpainting models tend to paint whole, unoccluded objects, so inpaint the object's neighbourhood from a
context-aware condition image, then segment the inpainted object.

The recipe (facts, several marked unverified, in ../shared/reference/PROTOCOLS.md; every constant is an option):
- condition image: the background replaced by colours drawn from the visible object's colour histogram and blurred;
  the object's own pixels partly noised, x = s * eps + (1 - s) * I;
- soft inpainting area: the convex hull of the visible mask, grown and feathered (it may extend past the hull);
- leakage conditioning after every denoising step: x_t <- s * (M * x~_t + (1 - M) * x_t) + (1 - s) * x_t with
  s = 0.3, x~_t the condition image's latent noised to step t, M the area;
- amodal mask: SAM prompted with 9 points sampled in the visible mask (``sam_checkpoint``), else GrabCut seeded with
  the visible mask as object and everything outside the area as background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from amodal3d.completion.base import CanvasInput, WholeSample, register_completer
from amodal3d.completion.diffusion import (
    InpaintingModelConfig,
    NoisedToNextStep,
    encode_latents,
    load_inpainting_pipeline,
    require,
    require_inpainting_weights,
    run_inpainting,
    seeded_generator,
)
from amodal3d.core.errors import UserError
from amodal3d.core.framing import parts_touching
from amodal3d.segmenters.grabcut import grabcut

BACKGROUNDS = ("object_colours", "image_colours", "gray")


def condition_image(image: np.ndarray, visible: np.ndarray, object_noise: float, blur: float,
                    rng: np.random.Generator, background: str = "object_colours") -> np.ndarray:
    """The context-aware condition image (S, S, 3) in [0, 1]."""
    if background not in BACKGROUNDS:
        raise UserError(f"unknown background '{background}'; known: {', '.join(BACKGROUNDS)}")
    size = image.shape[0]
    if background == "gray":
        fill = np.full_like(image, 0.5)
    else:
        palette = image[visible] if background == "object_colours" else image.reshape(-1, 3)
        fill = palette[rng.integers(0, len(palette), size=image.shape[:2])]
        fill = ndimage.gaussian_filter(fill, sigma=(blur * size, blur * size, 0))
    noised = object_noise * rng.standard_normal(image.shape) + (1.0 - object_noise) * (2.0 * image - 1.0)
    out = np.where(visible[..., None], (noised + 1.0) / 2.0, fill)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def inpainting_area(visible: np.ndarray, growth: float, softness: float) -> np.ndarray:
    """The soft inpainting area (S, S) in [0, 1]: the visible mask's convex hull grown by ``growth`` times the
    visible part's longest side, feathered over ``softness`` times that side."""
    import cv2

    ys, xs = np.nonzero(visible)
    hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
    area = np.zeros(visible.shape, np.uint8)
    cv2.fillConvexPoly(area, hull, 1)
    extent = max(np.ptp(xs), np.ptp(ys)) + 1
    grown = ndimage.distance_transform_edt(area == 0) <= growth * extent
    soft = ndimage.gaussian_filter(grown.astype(np.float32), sigma=max(softness * extent, 1e-3))
    return np.clip(np.maximum(soft, visible), 0.0, 1.0).astype(np.float32)


class LeakageConditioning:
    """diffusers ``callback_on_step_end``: pull the latents inside the area a fraction ``strength`` toward the
    condition image's latent noised to the next step."""

    def __init__(self, condition_latents, area, strength: float, generators):
        self.target = NoisedToNextStep(condition_latents, generators)
        self.area, self.strength = area, float(strength)

    def __call__(self, pipe, step: int, timestep, kwargs: dict) -> dict:
        latents = kwargs["latents"]
        target = self.target(pipe, step, latents)
        return {"latents": latents + self.strength * self.area * (target - latents)}


def segment_inpainted(image: np.ndarray, visible: np.ndarray, area: np.ndarray, rng: np.random.Generator,
                      sam=None, points: int = 9) -> np.ndarray:
    """The inpainted object's mask: SAM from points in the visible mask, else seeded GrabCut; always holding the
    visible mask and inside the area."""
    if sam is not None:
        from amodal3d.core.prompts import Prompt
        from amodal3d.segmenters.sam import segment_with_sam

        ys, xs = np.nonzero(visible)
        pick = rng.choice(len(xs), size=min(points, len(xs)), replace=False)
        mask, _ = segment_with_sam(image, Prompt(points=[(float(xs[i]), float(ys[i])) for i in pick]), sam=sam)
    else:
        import cv2

        seeds = np.where(area > 0.05, cv2.GC_PR_BGD, cv2.GC_BGD).astype(np.uint8)
        seeds[ndimage.binary_dilation(visible, iterations=2) & (area > 0.5)] = cv2.GC_PR_FGD
        seeds[visible] = cv2.GC_FGD
        mask = grabcut(image, seeds)
    return parts_touching(mask | visible, visible) & (area > 0.05) | visible


@dataclass
class InpaintConfig(InpaintingModelConfig):
    """inpaint: tuning-free amodal completion with any diffusers inpainting model (Lee, Benes, Yeh)."""

    leakage: float = 0.3
    """Leakage conditioning strength s: how far each step is pulled toward the noised condition image."""
    object_noise: float = 0.3
    """Noise mixed into the visible object's pixels of the condition image."""
    area_growth: float = 0.5
    """The soft inpainting area: the visible mask's convex hull grown by this fraction of its size..."""
    area_softness: float = 0.1
    """...and feathered over this fraction."""
    background: Literal["object_colours", "image_colours", "gray"] = "object_colours"
    """What replaces the background of the condition image."""
    background_blur: float = 0.02
    sam_checkpoint: str | None = None
    """SAM checkpoint to segment the inpainted object (default: seeded GrabCut); its own, not the front end's."""
    sam_model: Literal["vit_b", "vit_l", "vit_h"] = "vit_b"
    sam_points: int = 9
    """Points sampled in the visible mask as SAM's prompt."""


@register_completer("inpaint")
class TuningFreeInpaintCompleter:
    """The Completer."""

    config_class = InpaintConfig

    def __init__(self, config: InpaintConfig | None = None):
        c = self.config = config or InpaintConfig()
        if c.background not in BACKGROUNDS:
            raise UserError(f"unknown background '{c.background}'; known: {', '.join(BACKGROUNDS)}")
        self.weights, self.prompt, self.negative_prompt = c.weights, c.prompt, c.negative_prompt
        self.steps, self.guidance, self.leakage = int(c.steps), float(c.guidance), float(c.leakage)
        self.object_noise, self.area_growth = float(c.object_noise), float(c.area_growth)
        self.area_softness, self.background, self.background_blur = float(c.area_softness), c.background, float(
            c.background_blur)
        self.sam_checkpoint, self.sam_model, self.sam_points = c.sam_checkpoint, c.sam_model, int(c.sam_points)
        self.resolution, self.device, self.dtype = int(c.resolution), c.device, c.dtype
        self._pipe, self._sam = None, None
        require_inpainting_weights(c.weights, "inpaint")

    def pipeline(self):
        if self._pipe is None:
            self._pipe = load_inpainting_pipeline(self.weights, self.device, self.dtype, "inpaint",
                                                  self.config.attention_slicing)
        return self._pipe

    def sam(self):
        if self._sam is None and self.sam_checkpoint:
            from amodal3d.segmenters.sam import build_sam

            self._sam = build_sam(self.sam_model, self.sam_checkpoint)
        return self._sam

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        torch = require("torch")
        if not inputs.modal.any():
            raise UserError("the visible mask is empty")
        pipe = self.pipeline()
        rng = np.random.default_rng(seed)
        condition = condition_image(inputs.image, inputs.modal, self.object_noise, self.background_blur, rng,
                                    self.background)
        area = inpainting_area(inputs.modal, self.area_growth, self.area_softness)
        generators = [seeded_generator(seed * 1000 + k) for k in range(samples)]
        condition_latents = encode_latents(pipe, condition)
        latent_area = torch.nn.functional.interpolate(torch.from_numpy(area)[None, None],
                                                      size=condition_latents.shape[-2:], mode="area")
        leakage = LeakageConditioning(condition_latents, latent_area.to(pipe.device, condition_latents.dtype),
                                      self.leakage, generators)
        images = run_inpainting(pipe, condition, area, self.prompt, self.negative_prompt, self.steps, self.guidance,
                                generators, callback=leakage)
        wholes = []
        for image in images:
            mask = segment_inpainted(image, inputs.modal, area, rng, self.sam(), self.sam_points)
            rgb = np.where(mask[..., None], image, 1.0).astype(np.float32)
            wholes.append(WholeSample(rgb=rgb, alpha=mask.astype(np.float32)))
        return wholes
