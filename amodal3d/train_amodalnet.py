"""``amodal3d train-amodalnet``: train the ``amodalnet`` completer on photographs with object masks (pix2gestalt's
whole/part recipe on real photos: another photo's cut-out pasted over a whole object, so the whole mask is exact).

The photo set is a folder with ``images/NAME.jpg|png`` and ``masks/NAME.png``, e.g. the dev split written by
``benchmarks/photos/build_photo_bench.py --segmentation-set`` (held-out photos never enter). Each training view is
framed as the completion front end frames a visible mask (``amodal3d.core.framing.Frame``); some views crop the photo
so the border hides part of the object, some soften the pasted edge, some spoil the visible mask a little (a
segmenter's mask is never exact), and a third of them are told the occluder. Rendered scenes (``--scenes``) add
views of rendered objects behind rendered occluders. With ``--segmented-fraction`` a share of the views give the
network the bundled segmenter's mask from a user's prompt instead of the true visible mask, as the user's path does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amodal3d.completion.amodalnet import (
    SIZE,
    build_amodalnet,
    load_amodalnet,
    network_input,
)
from amodal3d.core.config import to_dict
from amodal3d.core.errors import UserError
from amodal3d.core.framing import Frame
from amodal3d.core.prompts import Prompt, box_around, interior_points
from amodal3d.core.unet import fit_unet, save_unet, start_training
from amodal3d.data.paste import paste_occluder
from amodal3d.segmenters.clicknet import load_clicknet, segment_with_clicknet
from amodal3d.train_segmenter import (
    dice_and_cross_entropy,
    drawn_scene,
    occluder_cut_out,
    read_photo_set,
    read_scene_set,
)

CONTEXT_RANGE = (0.8, 1.2)  # the margins the first weights were trained over


@dataclass
class AmodalNetTrainConfig:
    """Train amodalnet on photos with object masks (CPU: about 0.45 s per step of 16 on 2 cores)."""

    photos: Path
    """Folder with images/NAME.jpg|png and masks/NAME.png."""
    out: Path
    """Output folder (new or empty): model/amodalnet.safetensors and model/training.json."""
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-3
    """Peak of the one-cycle schedule."""
    variants: int = 12
    """Occluded views per photo."""
    unoccluded_fraction: float = 0.1
    """Share of views with nothing in front (the whole object is the visible one)."""
    synthetic_fraction: float = 0.15
    """Share of targets, and of occluders, that are drawn shapes instead of photos' objects."""
    scenes: Path | None = None
    """Rendered scenes (an `amodal3d render-scenes` output) whose objects are added to the photos' (sim and real
    mixed)."""
    scene_variants: int = 4
    """Framings per rendered scene."""
    chunked_fraction: float = 0.0
    """Share of views whose visible mask lost a chunk of the object or took in a chunk of what is around it, as a
    segmenter's mask from a click does (the whole stays the target)."""
    segmented_fraction: float = 0.0
    """Share of views whose visible mask is the bundled segmenter's (clicknet's) answer to a user's prompt on the
    pasted photo or render: one click, three clicks or the box around the visible part, as the photo benchmark
    prompts (the whole stays the target). About 0.2 s per view."""
    context: tuple[float, float] = CONTEXT_RANGE
    """Range each view's canvas margin is drawn from (units of the visible part's longest side): how much room around
    it the network learns to complete into. The front end frames a given mask or a box's with --context (1.0) and a
    segmenter's answer to clicks with --amodalnet.estimated-context (1.4)."""
    init: Path | None = None
    """Start from these amodalnet weights (e.g. the bundled ones, to train them further) instead of random ones."""
    seed: int = 0


def softened(pasted: np.ndarray, original: np.ndarray, occluder: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paste with its inner edge blended into what is behind (a photo's edges are never one pixel sharp)."""
    alpha = cv2.GaussianBlur(occluder.astype(np.float32), (0, 0), rng.uniform(0.6, 1.5)) * occluder
    return pasted * alpha[..., None] + original * (1 - alpha[..., None])


def spoiled(visible: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The visible mask as a segmenter might give it: grown or shrunk by a pixel or two."""
    kernel = np.ones((3, 3), np.uint8)
    steps = int(rng.integers(1, 3))
    changed = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(visible.astype(np.uint8), kernel, iterations=steps)
    return changed.astype(bool) if changed.any() else visible


def chunked(visible: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The visible mask with a disc on its outline (15-40% of the object's size across) cut out or added."""
    edge = visible & ~cv2.erode(visible.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rows, cols = np.nonzero(edge)
    if not len(rows):
        return visible
    at = int(rng.integers(len(rows)))
    radius = max(2, int(rng.uniform(0.15, 0.4) * np.sqrt(visible.sum())))
    disc = cv2.circle(np.zeros(visible.shape, np.uint8), (int(cols[at]), int(rows[at])), radius, 1, -1).astype(bool)
    changed = visible & ~disc if rng.random() < 0.5 else (visible | disc) & valid
    return changed if changed.sum() >= 20 else visible


def as_segmented(image: np.ndarray, visible: np.ndarray, rng: np.random.Generator, fraction: float, segmenter
                 ) -> np.ndarray:
    """``visible``, or (a ``fraction`` of the time) the segmenter's mask of it on ``image`` (H, W, 3) in 0-255 from
    one click, three clicks or the box around it (one of the three at random), unless it finds nothing. No random
    draw when ``fraction`` is 0, so earlier recipes make the same views."""
    if fraction <= 0 or rng.random() >= fraction:
        return visible
    kind = int(rng.integers(3))
    if kind == 2:
        prompt = Prompt(box=box_around(visible))
    else:
        points = [tuple(point) for point in interior_points(visible, 1 if kind == 0 else 3)]
        prompt = Prompt(points=points, labels=[1] * len(points))
    mask = segment_with_clicknet(np.asarray(image, np.float32) / 255, prompt, net=segmenter)
    return mask if mask.any() else visible


def training_view(image: np.ndarray, whole: np.ndarray, rng: np.random.Generator, photos, index: int,
                  config: AmodalNetTrainConfig, segmenter=None) -> dict | None:
    """One framed view of a photo's object with another photo's cut-out pasted over it (or nothing, now and then)."""
    visible, occluder = whole, np.zeros_like(whole)
    if rng.random() >= config.unoccluded_fraction:
        occ_rgb, occ_mask = occluder_cut_out(photos, index, int(whole.sum()), rng, config.synthetic_fraction,
                                             2 * config.synthetic_fraction)
        if not occ_mask.any() or max(occ_mask.shape) > 2 * max(whole.shape):
            return None
        case = paste_occluder(image.astype(np.float32), whole, occ_rgb, occ_mask, (0.05, 0.7), rng)
        if case is None:
            return None
        pasted = case.image
        if rng.random() < 0.5:
            pasted = softened(pasted, image.astype(np.float32), case.occluder_mask, rng)
        image, visible, occluder = pasted, case.visible_mask, case.occluder_mask
    visible = as_segmented(image, visible, rng, config.segmented_fraction, segmenter)
    return framed_view(image, visible, whole, occluder, rng, config.chunked_fraction, config.context)


def framed_view(image: np.ndarray, visible: np.ndarray, whole: np.ndarray, occluder: np.ndarray,
                rng: np.random.Generator, chunked_fraction: float = 0.0, context: tuple[float, float] = CONTEXT_RANGE
                ) -> dict | None:
    """The view the front end would give the network: ``image`` (S, S, 3) uint8 and the masks ``visible``,
    ``valid``, ``whole``, ``occluder`` (S, S) bool; a fifth of the time the photo's border cuts the object."""
    h, w = whole.shape
    valid = np.ones((h, w), bool)
    if rng.random() < 0.2:  # keep a window whose edge runs through the object
        rows, cols = np.nonzero(visible)
        cut = rng.integers(4)
        at_row = int(rng.uniform(rows.min(), rows.max()))
        at_col = int(rng.uniform(cols.min(), cols.max()))
        valid[:at_row] = cut != 0
        valid[at_row:] &= cut != 1
        valid[:, :at_col] &= cut != 2
        valid[:, at_col:] &= cut != 3
    visible = visible & valid
    if visible.sum() < 50:
        return None
    frame = Frame.around(visible, SIZE, context=rng.uniform(*context))
    canvas_valid = frame.to_canvas(valid, fill=0)
    canvas_image = np.where(canvas_valid[..., None], frame.to_canvas(np.asarray(image, np.float32), fill=255.0),
                            255.0)
    canvas_visible = frame.to_canvas(visible, fill=0)
    if canvas_visible.sum() < 20:
        return None
    if rng.random() < 0.25:
        canvas_visible = spoiled(canvas_visible, rng) & canvas_valid
    if rng.random() < chunked_fraction:
        canvas_visible = chunked(canvas_visible, canvas_valid, rng)
    return {"image": np.clip(canvas_image, 0, 255).astype(np.uint8), "visible": canvas_visible,
            "valid": canvas_valid, "whole": frame.to_canvas(whole, fill=0),
            "occluder": frame.to_canvas(occluder & valid, fill=0) & ~canvas_visible}


def scene_views(scenes, variants: int, rng: np.random.Generator, chunked_fraction: float = 0.0,
                segmented_fraction: float = 0.0, segmenter=None, context: tuple[float, float] = CONTEXT_RANGE
                ) -> list[dict]:
    """Views of rendered scenes (``read_scene_set``): the input with its visible (or, a ``segmented_fraction`` of
    the time, the ``segmenter``'s mask of it), whole and occluder masks, framed ``variants`` times each."""
    views = []
    for _, image, visible, whole, occluder in scenes:
        for _ in range(variants):
            given = as_segmented(image, visible, rng, segmented_fraction, segmenter)
            view = framed_view(image, given, whole, occluder, rng, chunked_fraction, context)
            if view is not None:
                views.append(view)
    return views


def training_views(photos, config: AmodalNetTrainConfig, rng: np.random.Generator, scenes=(), segmenter=None
                   ) -> dict:
    """Stacked views of the photos and the rendered ``scenes``: ``image`` (N, S, S, 3) uint8 and (N, S, S) bool
    ``visible``, ``valid``, ``whole``, ``occluder``; ``segmenter``: clicknet, for ``config.segmented_fraction``."""
    views = []
    for _ in range(config.variants):
        for index, (_, image, mask) in enumerate(photos):
            if rng.random() < config.synthetic_fraction:
                image, mask = drawn_scene(photos, rng)
            views.append(training_view(image, mask, rng, photos, index, config, segmenter))
    views += scene_views(scenes, config.scene_variants, rng, config.chunked_fraction, config.segmented_fraction,
                         segmenter, config.context)
    views = [view for view in views if view is not None]
    if not views:
        raise UserError("no training view could be made from these photos")
    return {key: np.stack([view[key] for view in views]) for key in views[0]}


def batch(views: dict, size: int, rng: np.random.Generator):
    """(inputs (B, 6, S, S), targets (B, 3, S, S): whole, occluder, valid) as float32 arrays; colour jitter, flips,
    and the occluder told a third of the time."""
    inputs, targets = [], []
    for i in rng.integers(len(views["image"]), size=size):
        rgb = views["image"][i].astype(np.float32) / 255
        rgb = np.clip(rgb * rng.uniform(0.75, 1.25, 3) + rng.uniform(-0.08, 0.08), 0, 1)
        visible, valid, whole, occluder = (views[key][i] for key in ("visible", "valid", "whole", "occluder"))
        rgb = np.where(valid[..., None], rgb, 1.0)
        told = occluder if rng.random() < 1 / 3 else None
        x = network_input(rgb, visible, valid, told)
        y = np.stack([whole, occluder, valid]).astype(np.float32)
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        inputs.append(x)
        targets.append(y)
    return np.ascontiguousarray(np.stack(inputs), np.float32), np.ascontiguousarray(np.stack(targets), np.float32)


def loss_of(logits, targets):
    """Whole object: cross-entropy + soft Dice over the canvas; occluder: cross-entropy over the photo's pixels."""
    import torch

    occluder, valid = targets[:, 1:2], targets[:, 2:3]
    occluder_loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1:2], occluder, reduction="none")
                     * valid).sum() / valid.sum().clamp(min=1)
    return dice_and_cross_entropy(logits[:, :1], targets[:, :1]) + 0.5 * occluder_loss


def train_amodalnet(config: AmodalNetTrainConfig, log=print) -> Path:
    """Train and write ``OUT/model/amodalnet.safetensors`` (float16) and ``training.json``; returns the weights."""
    low, high = config.context
    if not 0 <= low <= high:
        raise UserError(f"--context LO HI needs 0 <= LO <= HI, got {low} {high}")
    scenes = read_scene_set(config.scenes)
    initial = None if config.init is None else load_amodalnet(config.init)  # a wrong path fails before any writing
    segmenter = load_clicknet() if config.segmented_fraction > 0 else None  # loaded before the seeding, as initial
    out, rng, started = start_training(config, "train-amodalnet")
    views = training_views(read_photo_set(config.photos), config, rng, scenes, segmenter)
    log(f"{len(views['image'])} training views in {time.time() - started:.0f} s")
    net = (build_amodalnet() if initial is None else initial).train()
    losses = fit_unet(net, lambda: batch(views, config.batch_size, rng), loss_of, config.steps, config.learning_rate,
                      log, started)
    record = {"config": to_dict(config), "views": len(views["image"]), "seconds": round(time.time() - started, 1),
              "loss_last_100": round(float(np.mean(losses[-100:])), 4)}
    return save_unet(net, out, "train-amodalnet", "amodalnet", record)
