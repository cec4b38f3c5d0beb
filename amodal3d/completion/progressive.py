"""``progressive``: progressive occlusion-aware completion with mixed-context diffusion sampling (Xu, Zhang, Shi,
CVPR 2024) over a diffusers inpainting pipeline (SD 2 inpainting at 512 in the paper).

One iteration (facts in ../shared/reference/PROTOCOLS.md; every constant is an option):
1. occluders: the given occluder mask (``CanvasInput.occluder``) or, when none is given, an estimate (the visible
   mask's grown convex hull outside the visible mask), plus the canvas padding beyond the image border, dilated
   (5x5, 3 iterations): M_occ;
2. mixed context: the scene outside the visible object is swapped for a gray backdrop and inpainted inside M_occ up
   to step k of N (20 of 50); there the UNet's third decoder block's features are clustered (k-means) and the
   cluster that best overlaps the visible mask is the object; the object's noisy latent is composited onto the
   object-removed background (OpenCV inpainting of object and occluders) noised to step k, and the remaining N - k
   steps run with the original context;
3. the object is segmented from the result (GrabCut seeded by the visible mask, background outside M_occ);
4. when the object reaches the canvas edge (hidden by the image border), the canvas is padded and the iteration
   repeats, up to 5 times.
Counterfactual check (``check_completeness``): outpaint everything but the object and the image corners; if the
object's mask grows by more than 20%, the completion is judged incomplete (recorded in the sample's info).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.cluster.vq import kmeans2

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
from amodal3d.completion.inpaint import inpainting_area, segment_inpainted
from amodal3d.core.errors import UserError
from amodal3d.core.io import to_uint8

GRAY = 0.5


def occluder_region(inputs: CanvasInput, modal: np.ndarray, growth: float) -> np.ndarray:
    """M_occ: the occluders (given, else estimated) and the padding, dilated 5x5 x 3, never over the visible mask."""
    occluder = inputs.occluder if inputs.occluder is not None else inpainting_area(modal, growth, 0.0) > 0.5
    region = ndimage.binary_dilation(occluder | ~inputs.valid, structure=np.ones((5, 5), bool), iterations=3)
    return region & ~modal


def removal_background(image: np.ndarray, remove: np.ndarray) -> np.ndarray:
    """The scene with the object and its occluders removed (OpenCV Telea inpainting, as a light removal inpainter)."""
    import cv2

    pixels = to_uint8(image)
    radius = max(3, image.shape[0] // 64)
    return cv2.inpaint(pixels, remove.astype(np.uint8), radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0


def object_cluster(features: np.ndarray, modal: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """k-means over (C, h, w) decoder features; the cluster with the largest share of its pixels inside the visible
    mask (at the features' resolution), as a bool mask at the visible mask's resolution."""
    c, h, w = features.shape
    data = features.reshape(c, -1).T.astype(np.float64)
    data = (data - data.mean(0)) / (data.std(0) + 1e-6)
    _, labels = kmeans2(data, clusters, seed=seed, minit="++")
    labels = labels.reshape(h, w)
    small_modal = np.asarray(ndimage.zoom(modal.astype(np.float32), (h / modal.shape[0], w / modal.shape[1]),
                                          order=1)) > 0.5
    shares = [(small_modal[labels == k].mean() if (labels == k).any() else 0.0, k) for k in range(clusters)]
    best = max(shares)[1]
    return np.asarray(ndimage.zoom((labels == best).astype(np.float32), (modal.shape[0] / h, modal.shape[1] / w),
                                   order=0)) > 0.5


class MixedContext:
    """diffusers ``callback_on_step_end`` that, after step k, swaps the gray-backdrop context for the real one:
    object cluster from the decoder features, composite onto the noised removal background, real masked image."""

    def __init__(self, pipe, step: int, modal, region, background_latents, context_latents, clusters, seed,
                 generators):
        self.step, self.modal, self.region, self.clusters, self.seed = step, modal, region, clusters, seed
        self.background, self.context = NoisedToNextStep(background_latents, generators), context_latents
        self.features = None
        self.object_masks: list[np.ndarray] = []
        blocks = pipe.unet.up_blocks
        self.hook = blocks[min(2, len(blocks) - 1)].register_forward_hook(self._keep)

    def _keep(self, module, args, output):
        self.features = output[0] if isinstance(output, tuple) else output

    def __call__(self, pipe, step: int, timestep, kwargs: dict) -> dict:
        torch = require("torch")
        if step + 1 != self.step:
            return {}
        self.hook.remove()
        latents = kwargs["latents"]
        count = latents.shape[0]
        features = self.features[-count:].float().cpu().numpy()  # the conditional half under guidance
        masks = []
        for k in range(count):
            found = object_cluster(features[k], self.modal, self.clusters, self.seed + k) & (self.region | self.modal)
            masks.append(found | self.modal)
        self.object_masks = masks
        size = latents.shape[-2:]
        object_mask = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]
        object_mask = torch.nn.functional.interpolate(object_mask, size=size, mode="area")
        object_mask = object_mask.to(latents.device, latents.dtype)
        background = self.background(pipe, step, latents)
        out = {"latents": latents * object_mask + background * (1.0 - object_mask)}
        if "masked_image_latents" in kwargs:  # 9-channel inpainting UNets see the real context from here on
            masked = kwargs["masked_image_latents"]
            out["masked_image_latents"] = self.context.to(masked.dtype).expand_as(masked).clone()
        return out


@dataclass
class ProgressiveConfig(InpaintingModelConfig):
    """progressive: progressive mixed-context completion with any diffusers inpainting model (Xu, Zhang, Shi)."""

    composite_step: int = 20
    """The DDIM step at which the object is composited onto the mixed (gray + real) context."""
    clusters: int = 5
    """k-means clusters of the UNet decoder features that pick the object."""
    max_iterations: int = 5
    """Progressive completion rounds at most."""
    pad: float = 0.15
    """Image border treated as occluder, as a fraction of the canvas."""
    occluder_growth: float = 0.5
    """How far the occluder mask is grown."""
    check_completeness: bool = True
    """Counterfactual curation: outpaint and reject a completion whose mask grows by more than growth_threshold."""
    growth_threshold: float = 0.2


@register_completer("progressive")
class ProgressiveCompleter:
    """The Completer."""

    config_class = ProgressiveConfig

    def __init__(self, config: ProgressiveConfig | None = None):
        c = self.config = config or ProgressiveConfig()
        require_inpainting_weights(c.weights, "progressive")
        if not 0 < c.composite_step < c.steps:
            raise UserError(f"composite_step must lie in 1..{c.steps - 1}, got {c.composite_step}")
        self.weights, self.prompt, self.negative_prompt = c.weights, c.prompt, c.negative_prompt
        self.steps, self.guidance, self.composite_step = int(c.steps), float(c.guidance), int(c.composite_step)
        self.clusters, self.max_iterations, self.pad = int(c.clusters), int(c.max_iterations), float(c.pad)
        self.occluder_growth, self.check_completeness = float(c.occluder_growth), bool(c.check_completeness)
        self.growth_threshold, self.resolution = float(c.growth_threshold), int(c.resolution)
        self.device, self.dtype = c.device, c.dtype
        self._pipe = None

    def pipeline(self):
        if self._pipe is None:
            self._pipe = load_inpainting_pipeline(self.weights, self.device, self.dtype, "progressive",
                                                  self.config.attention_slicing)
        return self._pipe

    def mixed_context(self, image, modal, region, generators, seed):
        """One mixed-context sampling: K completed images (K, S, S, 3) and the step-k object masks."""
        pipe = self.pipeline()
        synthetic = np.where(modal[..., None], image, GRAY).astype(np.float32)
        background = removal_background(image, modal | region)
        context = np.where(modal[..., None], image, background) * (~region[..., None])
        callback = MixedContext(pipe, self.composite_step, modal, region, encode_latents(pipe, background),
                                encode_latents(pipe, context.astype(np.float32)), self.clusters, seed, generators)
        inputs = [name for name in ("latents", "masked_image_latents") if name in pipe._callback_tensor_inputs]
        images = run_inpainting(pipe, synthetic, region.astype(np.float32), self.prompt, self.negative_prompt,
                                self.steps, self.guidance, generators, callback=callback, tensor_inputs=inputs)
        return images, callback.object_masks

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        if not inputs.modal.any():
            raise UserError("the visible mask is empty")
        return [self._one(inputs, seed * 1000 + k) for k in range(samples)]

    def _one(self, inputs: CanvasInput, seed: int) -> WholeSample:
        image, modal, valid, occluder = inputs.image, inputs.modal, inputs.valid, inputs.occluder
        size, scale, rng = image.shape[0], 1.0, np.random.default_rng(seed)
        for iteration in range(1, self.max_iterations + 1):
            current = CanvasInput(image, modal, valid, occluder)
            region = occluder_region(current, modal, self.occluder_growth)
            images, _ = self.mixed_context(image, modal, region, [seeded_generator(seed + 7919 * iteration)], seed)
            completed = images[0]
            mask = segment_inpainted(completed, modal, (region | modal).astype(np.float32), rng)
            edge = np.zeros_like(mask)
            edge[[0, -1], :], edge[:, [0, -1]] = True, True
            if not (mask & edge).any() or iteration == self.max_iterations:
                break
            # hidden by the canvas edge: shrink the content into a padded canvas and go on from this result
            scale *= 1.0 - 2 * self.pad
            # the occluders are painted over by now: only the new padding hides the object
            image, modal, valid = (_pad(a, self.pad, fill) for a, fill in (
                (completed, 1.0), (mask, False), (np.ones_like(mask), False)))
            occluder = np.zeros_like(mask)
        info = {"iterations": iteration, "content_scale": scale}
        if self.check_completeness:
            info.update(self.counterfactual(completed, mask, seed))
        if scale != 1.0:  # back to the caller's canvas: the centre crop that holds the original content
            completed, mask = _unpad(completed, scale, size), _unpad(mask.astype(np.float32), scale, size) > 0.5
        rgb = np.where(mask[..., None], completed, 1.0).astype(np.float32)
        return WholeSample(rgb=rgb, alpha=mask.astype(np.float32), info=info)

    def counterfactual(self, image: np.ndarray, mask: np.ndarray, seed: int) -> dict:
        """Outpaint all but the object and the corners; growth of the object's mask > threshold = incomplete."""
        size = image.shape[0]
        corner = max(1, size // 8)
        keep = mask.copy()
        for rows in (slice(0, corner), slice(size - corner, size)):
            for cols in (slice(0, corner), slice(size - corner, size)):
                keep[rows, cols] = True
        outpainted = run_inpainting(self.pipeline(), image, (~keep).astype(np.float32), self.prompt,
                                    self.negative_prompt, self.steps, self.guidance, [seeded_generator(seed + 1)])[0]
        grown = segment_inpainted(outpainted, mask, np.ones(mask.shape, np.float32), np.random.default_rng(seed))
        growth = float(grown.sum() - mask.sum()) / max(int(mask.sum()), 1)
        return {"outpaint_growth": growth, "complete": growth <= self.growth_threshold}


def _pad(array: np.ndarray, pad: float, fill) -> np.ndarray:
    """``array`` shrunk by 1 - 2 * pad into the middle of a canvas of the same size filled with ``fill``."""
    import cv2

    size = array.shape[0]
    inner = max(1, int(round(size * (1 - 2 * pad))))
    start = (size - inner) // 2
    interpolation = cv2.INTER_AREA if array.dtype != bool else cv2.INTER_NEAREST
    small = cv2.resize(array.astype(np.float32), (inner, inner), interpolation=interpolation)
    out = np.full(array.shape, fill, np.float32)
    out[start:start + inner, start:start + inner] = small
    return out > 0.5 if array.dtype == bool else out


def _unpad(array: np.ndarray, scale: float, size: int) -> np.ndarray:
    """The centre crop of ``array`` that holds the original canvas' content, resized back to ``size``."""
    import cv2

    inner = max(1, int(round(size * scale)))
    start = (array.shape[0] - inner) // 2
    crop = array[start:start + inner, start:start + inner]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
