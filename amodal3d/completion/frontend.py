"""``complete``: prompt -> visible mask -> canvas -> K whole-object samples -> masks -> vote, back at input size."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from amodal3d.completion.base import CanvasInput, Completer, get_completer
from amodal3d.completion.config import DEFAULT_METHOD, CompletionConfig
from amodal3d.completion.occluder import estimate_occluder
from amodal3d.completion.vote import vote
from amodal3d.core.errors import UserError
from amodal3d.core.framing import Frame, mask_from_alpha, mask_from_white
from amodal3d.core.io import MIN_IMAGE_SIDE, composite_on_white
from amodal3d.core.prompts import Prompt
from amodal3d.segmenters import modal_mask


@dataclass
class CompletionResult:
    """Everything at input resolution. ``samples``: K RGBA (H, W, 4) float in [0, 1] (object on transparent);
    ``masks``: K bool (H, W); ``amodal_mask``: majority vote; ``amodal_prob``: vote fraction (H, W) float32."""

    samples: list[np.ndarray]
    masks: list[np.ndarray]
    amodal_mask: np.ndarray
    amodal_prob: np.ndarray
    modal_mask: np.ndarray
    method: str
    seed: int
    prompt: Prompt
    frame: Frame
    segmenter: str
    mask_source: str
    timings: dict = field(default_factory=dict)
    sample_info: list[dict] = field(default_factory=list)
    occluder: str = "none"  # where the occluder mask came from: "given", "estimated" or "none"
    occluder_mask: np.ndarray | None = None


def check_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) uint8 or float in [0, 1] -> (H, W, 3) float32 in [0, 1]; RGBA composited on white."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise UserError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise UserError(f"the image is too small ({image.shape[1]}x{image.shape[0]}; at least {MIN_IMAGE_SIDE} px a "
                        "side)")
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if image.shape[2] == 4:
        image = composite_on_white(image)
    return np.clip(image, 0.0, 1.0)


def upsampled_mask(frame: Frame, canvas_mask: np.ndarray) -> np.ndarray:
    """A canvas mask at input resolution. A canvas coarser than the input (a 64 px model on a 256 px object) is
    interpolated and cut at one half, so edges follow the shape instead of the canvas's pixel blocks."""
    if frame.scale >= 1.0:
        return frame.to_input(canvas_mask, fill=0, nearest=True)
    return frame.to_input(canvas_mask.astype(np.float32), fill=0.0) >= 0.5


def framing_context(completer: Completer, config: CompletionConfig, answers_clicks: bool) -> float:
    """The canvas margin: the backend's own ``estimated_context`` for a segmenter's answer to clicks (it may have
    missed a piece of the object, and the frame is drawn around what it found), else ``config.context`` (a given
    mask; a box, which bounds the visible part)."""
    own = getattr(completer, "estimated_context", None)
    return config.context if own is None or not answers_clicks else own


def complete(image: np.ndarray, prompt: Prompt, method: str | Completer = DEFAULT_METHOD,
             config: CompletionConfig | None = None, *, seed: int = 0, options: dict | None = None,
             occluder_mask: np.ndarray | Prompt | None = None, segmented_from: Prompt | None = None,
             **settings) -> CompletionResult:
    """Complete the partly hidden object the prompt points at.

    image : (H, W, 3) uint8 or float in [0, 1]. prompt : point(s), box or visible mask on it.
    method : a registered completer's name (default: ``amodalnet`` with torch, else ``classical``) or a Completer
        instance.
    config : the stage's :class:`CompletionConfig` (samples, context, mask source, segmenter, every backend's
        options); ``settings`` set its fields by keyword (``samples=6``, ``mask_source="white"``).
    seed : same seed, same samples. options : the backend's own options on top of the config's (``{"steps": 50}``).
    occluder_mask : (H, W) bool, the objects in front, or a :class:`Prompt` on them (segmented as the object is);
        without it the occluder is estimated unless ``config.estimate_occluder`` is off. Every sample's mask is
        confined to visible + occluder (the hidden part of an object lies under whatever hides it); backends that
        use it (progressive) see it.
    segmented_from : the prompt a segmenter turned into the prompt's mask (the bench segments a case once and
        completes it many times); the mask is framed as that segmenter's answer, not as a given mask.
    """
    config = _with_settings(config or CompletionConfig(), settings)
    if config.samples < 1:
        raise UserError(f"samples must be at least 1, got {config.samples}")
    timings = {}
    start = time.perf_counter()
    image = check_image(image)
    occluder_mask = occluder_of(image, occluder_mask, prompt, config)
    seg = modal_mask(image, prompt, config.segmenter, background=occluder_mask)
    if occluder_mask is not None:
        occluder, occluder_mask = "given", occluder_mask & ~seg.mask
    elif config.estimate_occluder:
        occluder, occluder_mask = "estimated", estimate_occluder(image, seg.mask)
    else:
        occluder = "none"
    timings["segment"] = time.perf_counter() - start

    if isinstance(method, str):
        completer = get_completer(method, config.backend(method, **(options or {})))
    else:
        completer, method = method, method.name
    samples, mask_source = config.samples, config.mask_source
    answered = segmented_from
    if answered is None and seg.method != "given":
        answered = prompt
    clicks = len(answered.object_points) if answered is not None and answered.box is None else 0  # clicks alone
    frame = Frame.around(seg.mask, completer.resolution, context=framing_context(completer, config, clicks > 0))
    h, w = seg.mask.shape
    canvas = CanvasInput(
        image=frame.to_canvas(image, fill=1.0),
        modal=frame.to_canvas(seg.mask, fill=0, nearest=True),
        valid=frame.to_canvas(np.ones((h, w), bool), fill=0, nearest=True),
        occluder=None if occluder_mask is None else frame.to_canvas(np.asarray(occluder_mask, bool), fill=0,
                                                                     nearest=True),
        occluder_estimated=occluder == "estimated",
        clicks=clicks,
    )
    start = time.perf_counter()
    wholes = completer.complete(canvas, samples=samples, seed=seed)
    timings["complete"] = time.perf_counter() - start
    if len(wholes) != samples:
        raise RuntimeError(f"completer '{method}' returned {len(wholes)} samples, {samples} asked")

    start = time.perf_counter()
    allowed = None if occluder_mask is None else np.asarray(occluder_mask, bool) | seg.mask
    out_samples, masks = [], []
    used = "white"
    for whole in wholes:
        if mask_source == "alpha" and whole.alpha is None:
            raise UserError(f"completer '{method}' gives no alpha: use mask_source 'white'")
        use_alpha = whole.alpha is not None and mask_source in ("auto", "alpha")
        used = "alpha" if use_alpha else "white"
        canvas_mask = mask_from_alpha(np.dstack([whole.rgb, whole.alpha])) if use_alpha else mask_from_white(whole.rgb)
        mask = upsampled_mask(frame, canvas_mask)
        if allowed is not None:
            mask &= allowed
        rgb = frame.to_input(whole.rgb.astype(np.float32), fill=1.0)
        alpha = frame.to_input(whole.alpha.astype(np.float32), fill=0.0) if use_alpha else mask.astype(np.float32)
        if allowed is not None:
            alpha = alpha * allowed
        out_samples.append(np.dstack([rgb, alpha]).astype(np.float32))
        masks.append(mask | seg.mask)  # the visible part is part of the whole by definition
    amodal, prob = vote(masks)
    timings["postprocess"] = time.perf_counter() - start
    return CompletionResult(out_samples, masks, amodal, prob, seg.mask, method, seed, prompt, frame, seg.method,
                            used, timings, [whole.info for whole in wholes], occluder, occluder_mask)


def occluder_of(image: np.ndarray, given, prompt: Prompt, config: CompletionConfig) -> np.ndarray | None:
    """The occluder's mask from a mask or a prompt on it (segmented with the object's points as negatives)."""
    if given is None:
        return None
    if isinstance(given, Prompt):
        if given.mask is None:
            on_object = prompt.object_points
            given = Prompt(points=[*given.points, *on_object],
                           labels=[*given.point_labels().tolist(), *[0] * len(on_object)], box=given.box)
        segmenter = config.segmenter
        if segmenter.method() == "clicknet":
            # clicknet learned objects, with weak negatives: from the demo's card click, with the cup's click as a
            # negative, it took half the photo (cup included); GrabCut took the card
            segmenter = dataclasses.replace(segmenter, segment_with="grabcut")
        try:
            given = modal_mask(image, given, segmenter).mask
        except UserError as error:
            raise UserError(f"occluder: {error}") from None
    if np.shape(given) != image.shape[:2]:
        raise UserError(f"the occluder mask is {np.shape(given)[::-1]}, the image {image.shape[1::-1]}")
    return np.asarray(given, bool)


def _with_settings(config: CompletionConfig, settings: dict) -> CompletionConfig:
    known = {f.name for f in dataclasses.fields(CompletionConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserError(f"complete() takes no setting {', '.join(unknown)} (settings: {', '.join(sorted(known))}; "
                        "a backend's own options go in options={...})")
    if settings.get("mask_source", config.mask_source) not in ("auto", "alpha", "white"):
        raise UserError(f"mask_source must be auto, alpha or white, got '{settings['mask_source']}'")
    return dataclasses.replace(config, **settings) if settings else config
