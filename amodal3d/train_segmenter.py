"""``amodal3d train-segmenter``: train the ``clicknet`` interactive segmenter on photographs with object masks.

The photo set is a folder with ``images/NAME.jpg|png`` and ``masks/NAME.png`` (non-zero = the object), e.g. the dev
split written by ``benchmarks/photos/build_photo_bench.py --segmentation-set``. Each photo's object is hidden
(15-60%) by another photo's cut-out in most views, since the segmenter must find the *visible* part of an object
something stands in front of. Two kinds of training views: a random crop of the photo with one to four clicks
(the first often the visible part's most interior point, as users and the benchmark click), and the view around a
jittered box of the visible part with that box. Rendered scenes (``--scenes``) add their objects' visible masks
behind their rendered occluders (sim and real mixed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from amodal3d.core.config import to_dict
from amodal3d.core.errors import UserError
from amodal3d.core.io import read_image, read_mask
from amodal3d.core.prompts import Prompt, box_around
from amodal3d.core.unet import fit_unet, save_unet, start_training
from amodal3d.data.paste import cut_out, paste_occluder
from amodal3d.segmenters.clicknet import (
    SIZE,
    build_clicknet,
    load_clicknet,
    normalised,
    prompt_maps,
    view_of,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class SegmenterTrainConfig:
    """Train clicknet on photos with object masks (CPU: about 0.3 s per step of 16 on 2 cores)."""

    photos: Path
    """Folder with images/NAME.jpg|png and masks/NAME.png."""
    out: Path
    """Output folder (new or empty): model/clicknet.safetensors and model/training.json."""
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-3
    """Peak of the one-cycle schedule."""
    variants: int = 8
    """Occluded variants per photo (each gives a crop view and a box view)."""
    occluded_fraction: float = 0.7
    """Share of variants with a pasted occluder."""
    synthetic_fraction: float = 0.25
    """Share of targets, and of occluders, that are drawn shapes (flat, striped or checked) instead of photos' objects:
    without them a flat box in front of a plain object on white is taken for part of it."""
    occluder_targets: float = 0.0
    """Share of pasted occluders that are also a target of their own (a crop view and a box view of the occluder, whole
    and in front of the object it hides), against a pasted occluder taken into the object from one click. Off by
    default: from the bundled weights at 0.5 the visible mask improved but the whole mask did not (TRAINING.md)."""
    scenes: Path | None = None
    """Rendered scenes (an `amodal3d render-scenes` output) whose objects are added to the photos'."""
    scene_variants: int = 2
    """Crop and box views per rendered scene."""
    init: Path | None = None
    """Start from these clicknet weights (e.g. the bundled ones, to train them further) instead of random ones."""
    seed: int = 0


def read_photo_set(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, (H, W, 3) uint8 image, (H, W) bool mask) of every photo with a non-empty mask."""
    images = {p.stem: p for p in sorted((Path(folder) / "images").glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}
    photos = []
    for name, path in images.items():
        mask_path = Path(folder) / "masks" / f"{name}.png"
        if not mask_path.is_file():
            continue
        image, mask = read_image(path), read_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise UserError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image "
                            f"{image.shape[1]}x{image.shape[0]}")
        if mask.any():
            photos.append((name, np.round(image[..., :3] * 255).astype(np.uint8), mask))
    if len(photos) < 2:
        raise UserError(f"{folder}: fewer than two photos with masks (images/NAME.jpg + masks/NAME.png)")
    return photos


def read_scene_set(folder: Path | None) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, (H, W, 3) uint8 input, visible, whole and occluder (H, W) bool masks) of every rendered scene in
    ``folder`` (an ``amodal3d render-scenes`` output); none for no folder."""
    from amodal3d.core.formats.scene import (
        AMODAL_MASK,
        INPUT,
        MODAL_MASK,
        OCCLUDER_MASK,
        Scene,
    )
    from amodal3d.core.io import as_rgb, to_uint8

    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--scenes {folder} is not a folder")
    found = []
    for path in sorted(p for p in folder.iterdir() if (p / "scene.json").is_file()):
        scene = Scene.open(path)
        image = to_uint8(as_rgb(scene.image(INPUT)))
        found.append((path.name, image, *(scene.mask(name) for name in (MODAL_MASK, AMODAL_MASK, OCCLUDER_MASK))))
    if not found:
        raise UserError(f"--scenes {folder}: no rendered scene (a folder with scene.json) in it")
    return found


def _resized(array: np.ndarray, view: tuple[int, int, int, int]) -> np.ndarray:
    """The view of an image (uint8) or a mask (bool) at SIZE x SIZE."""
    x0, y0, x1, y1 = view
    if array.dtype == bool:
        return cv2.resize(array[y0:y1, x0:x1].astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA) >= 0.5
    return cv2.resize(array[y0:y1, x0:x1], (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def crop_view(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random crop (55-100% of each side) keeping at least 60% of the object."""
    h, w = mask.shape
    total = mask.sum()
    for _ in range(10):
        ch, cw = int(h * rng.uniform(0.55, 1)), int(w * rng.uniform(0.55, 1))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        if mask[y0:y0 + ch, x0:x0 + cw].sum() >= 0.6 * total:
            return x0, y0, x0 + cw, y0 + ch
    return 0, 0, w, h


def box_view(mask: np.ndarray, rng: np.random.Generator):
    """(view, box in view pixels at SIZE) around the object's box jittered by 4% of its longer side, or None."""
    h, w = mask.shape
    box = np.array(box_around(mask))
    box += rng.normal(0, 0.04 * max(box[2] - box[0], box[3] - box[1]), 4)
    prompt = Prompt(box=tuple(box))
    x0, y0, x1, y1 = prompt.clipped_box(w, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    view = view_of(prompt, h, w)
    sx, sy = SIZE / (view[2] - view[0]), SIZE / (view[3] - view[1])
    return view, ((x0 - view[0]) * sx, (y0 - view[1]) * sy, (x1 - view[0]) * sx, (y1 - view[1]) * sy)


def drawn_shape(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image (h, w, 3) uint8, mask): an ellipse, a rectangle or a random convex polygon filling a good part of the
    frame, in a flat colour, stripes or checks."""
    mask = np.zeros((h, w), np.uint8)
    centre = (int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.35, 0.65)))
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(w * rng.uniform(0.15, 0.4)), int(h * rng.uniform(0.15, 0.4)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == 1:
        half = np.array([w * rng.uniform(0.12, 0.35), h * rng.uniform(0.12, 0.35)])
        cv2.rectangle(mask, tuple((centre - half).astype(int)), tuple((centre + half).astype(int)), 1, -1)
    else:
        points = rng.uniform([0.15 * w, 0.15 * h], [0.85 * w, 0.85 * h], size=(7, 2)).astype(np.int32)
        cv2.fillConvexPoly(mask, cv2.convexHull(points), 1)
    colours = rng.integers(0, 256, size=(2, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    period = int(rng.integers(4, 24))
    pattern = [np.zeros((h, w), bool), (xx // period) % 2 == 0, (xx // period + yy // period) % 2 == 0][rng.integers(3)]
    image = np.where(pattern[..., None], colours[0], colours[1]).astype(np.float32)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask.astype(bool)


def drawn_scene(photos, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A drawn shape on white, on a flat colour or on another photo."""
    _, photo, _ = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    choice = rng.random()
    background = photo if choice < 0.4 else np.full((h, w, 3), 255 if choice < 0.7 else rng.integers(0, 256, 3),
                                                    np.uint8)
    shape, mask = drawn_shape(h, w, rng)
    return np.where(mask[..., None], shape, background), mask


def occluder_cut_out(photos, index: int, target_area: int, rng: np.random.Generator, synthetic_below: float,
                     rectangle_below: float) -> tuple[np.ndarray, np.ndarray]:
    """Another photo's object scaled to 25-90% of the target's area, (rgb, mask); a drawn shape instead when a
    uniform draw falls below ``synthetic_below``, a rectangle of the photo (a print or a card) when it falls below
    ``rectangle_below``."""
    other = int(rng.integers(len(photos) - 1))
    _, image, mask = photos[other + (other >= index)]
    kind = rng.random()
    if kind < synthetic_below:
        image, mask = drawn_shape(*mask.shape, rng)
    elif kind < rectangle_below:
        mask = np.ones_like(mask)
    scale = np.sqrt(rng.uniform(0.25, 0.9) * target_area / mask.sum())
    return cut_out(image, mask, scale)


def training_views(photos, variants: int, occluded_fraction: float, rng: np.random.Generator,
                   synthetic_fraction: float = 0.25, scenes=(), scene_variants: int = 0,
                   occluder_targets: float = 0.0) -> dict:
    """Stacked views at SIZE: ``images`` (N, S, S, 3) uint8, ``masks`` (N, S, S) bool (the visible part),
    ``occluders`` (N, S, S) bool (the pasted occluder), ``boxes`` (N, 4) float (NaN for crop views, which get
    clicks). ``scenes`` (``read_scene_set``) add ``scene_variants`` crop and box views each; ``occluder_targets``: the
    share of pasted occluders that are targets too (no random draw at 0, so earlier recipes make the same views)."""
    views = {"images": [], "masks": [], "occluders": [], "boxes": []}

    def add(image, visible, occluder, view, box=None, flip=False):
        rgb, small, hiding = _resized(image, view), _resized(visible, view), _resized(occluder, view)
        if small.sum() >= 30:
            views["images"].append(rgb[:, ::-1] if flip else rgb)
            views["masks"].append(small[:, ::-1] if flip else small)
            views["occluders"].append(hiding[:, ::-1] if flip else hiding)
            views["boxes"].append([np.nan] * 4 if box is None else list(box))

    def add_crop_and_box(image, visible, occluder):
        add(image, visible, occluder, crop_view(visible, rng), flip=rng.random() < 0.5)
        framed = box_view(visible, rng)
        if framed is not None:
            add(image, visible, occluder, framed[0], framed[1])

    for _ in range(variants):
        for index, (_, image, mask) in enumerate(photos):
            if rng.random() < synthetic_fraction:
                image, mask = drawn_scene(photos, rng)
            visible, occluder = mask, np.zeros_like(mask)
            if rng.random() < occluded_fraction:
                occ_rgb, occ_small = occluder_cut_out(photos, index, int(mask.sum()), rng, synthetic_fraction,
                                                      1.5 * synthetic_fraction)
                if occ_small.any() and max(occ_small.shape) <= 2 * max(mask.shape):
                    case = paste_occluder(image, mask, occ_rgb, occ_small, (0.15, 0.6), rng)
                    if case is not None:
                        image, visible, occluder = case.image.astype(np.uint8), case.visible_mask, case.occluder_mask
                        if occluder_targets and rng.random() < occluder_targets:
                            add_crop_and_box(image, occluder, np.zeros_like(occluder))
            add_crop_and_box(image, visible, occluder)
    for _ in range(scene_variants):
        for _, image, visible, _, occluder in scenes:
            if visible.any():
                add_crop_and_box(image, visible, occluder)
    return {"images": np.stack(views["images"]), "masks": np.stack(views["masks"]),
            "occluders": np.stack(views["occluders"]), "boxes": np.asarray(views["boxes"], np.float32)}


def sample_clicks(mask: np.ndarray, rng: np.random.Generator) -> tuple[list, list]:
    """One to four object clicks, each the most interior point away from the earlier ones (half the time) or a
    point drawn with weight distance^2; and a not-the-object click near the object one time in five."""
    count = 1 if rng.random() < 0.5 else int(rng.integers(2, 5))
    left = mask.astype(np.uint8)
    points, labels = [], []
    for _ in range(count):
        distance = cv2.distanceTransform(np.pad(left, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        if distance.max() <= 0:
            break
        if rng.random() < 0.5:
            y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        else:
            weight = (distance ** 2).ravel()
            y, x = np.unravel_index(int(rng.choice(weight.size, p=weight / weight.sum())), distance.shape)
        points.append((int(x), int(y)))
        labels.append(1)
        cv2.circle(left, (int(x), int(y)), max(3, int(distance.max() * 1.5)), 0, -1)
    if rng.random() < 0.2:
        ring = np.argwhere(cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask)
        if len(ring):
            y, x = ring[rng.integers(len(ring))]
            points.append((int(x), int(y)))
            labels.append(0)
    return points, labels


def batch(views: dict, size: int, rng: np.random.Generator):
    """(inputs (B, 6, S, S), targets (B, 1, S, S)) as float32 arrays, with colour jitter."""
    inputs, targets = [], []
    for i in rng.integers(len(views["images"]), size=size):
        rgb = views["images"][i].astype(np.float32) / 255
        rgb = np.clip(rgb * rng.uniform(0.75, 1.25, 3) + rng.uniform(-0.08, 0.08), 0, 1)
        mask, box = views["masks"][i], views["boxes"][i]
        if np.isnan(box).any():
            points, labels = sample_clicks(mask, rng)
            maps = prompt_maps(points, labels, None, (1.0, 1.0))
        else:
            maps = prompt_maps([], [], tuple(box), (1.0, 1.0))
        occluder = views["occluders"][i] & ~mask
        if occluder.any():  # what the user says is in front: its mask (a third of the time) or a click on it
            chance = rng.random()
            if chance < 1 / 3:
                maps[1][occluder] = 1.0
            elif chance < 1 / 2:
                y, x = np.argwhere(occluder)[rng.integers(occluder.sum())]
                maps[1] = np.maximum(maps[1], prompt_maps([(x, y)], [0], None, (1.0, 1.0))[1])
        inputs.append(np.concatenate([normalised(rgb), maps]))
        targets.append(mask[None].astype(np.float32))
    return np.stack(inputs).astype(np.float32), np.stack(targets)


def dice_and_cross_entropy(logits, targets):
    """Binary cross-entropy + soft Dice of the visible mask."""
    import torch

    probability = torch.sigmoid(logits)
    overlap = 2 * (probability * targets).sum((1, 2, 3)) + 1
    dice = 1 - overlap / (probability.sum((1, 2, 3)) + targets.sum((1, 2, 3)) + 1)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) + dice.mean()


def train_segmenter(config: SegmenterTrainConfig, log=print) -> Path:
    """Train and write ``OUT/model/clicknet.safetensors`` (float16) and ``training.json``; returns the weights."""
    scenes = read_scene_set(config.scenes)
    initial = None if config.init is None else load_clicknet(config.init)  # a wrong path fails before any writing
    out, rng, started = start_training(config, "train-segmenter")
    views = training_views(read_photo_set(config.photos), config.variants, config.occluded_fraction, rng,
                           config.synthetic_fraction, scenes, config.scene_variants, config.occluder_targets)
    log(f"{len(views['images'])} training views in {time.time() - started:.0f} s")
    net = (build_clicknet() if initial is None else initial).train()
    losses = fit_unet(net, lambda: batch(views, config.batch_size, rng), dice_and_cross_entropy, config.steps,
                      config.learning_rate, log, started)
    record = {"config": to_dict(config), "views": len(views["images"]), "seconds": round(time.time() - started, 1),
              "loss_last_100": round(float(np.mean(losses[-100:])), 4)}
    return save_unet(net, out, "train-segmenter", "clicknet", record)
