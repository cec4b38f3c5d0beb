"""``clicknet``: a small interactive segmentation network trained on this project's CPU (``amodal3d
train-segmenter``) from real photographs with exact object masks, shipped in the package.

Input: the photo (for a box: the box grown by ``BOX_MARGIN``) resized to ``SIZE`` x ``SIZE`` and three prompt maps
at that size: discs at the object clicks; discs at the not-the-object clicks plus a given occluder's mask; the box
(1 inside). Output: the visible mask's logits, resized back to the photo; from three or more object clicks, the
network then looks again, closer, at the box of what it found. The mask is then fitted to the photo's edges by
GrabCut; nothing outside a box is taken (the box is around the visible part). A box alone has its own weights
(``BOX_WEIGHTS``) and no fit. The connected parts kept are chosen as GrabCut's are (those under the object clicks;
from a box alone, every sizeable part). Data, training command and held-out scores of the bundled weights:
``amodal3d/weights/clicknet/TRAINING.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from amodal3d.core.prompts import Prompt, box_around
from amodal3d.core.unet import build_unet, load_unet_weights, logits_of
from amodal3d.segmenters.grabcut import grabcut, keep_prompted_parts

SIZE = 160
CLICK_RADIUS = 4  # pixels at SIZE
BOX_MARGIN = 0.2
SURE = 0.02  # the network's probability below which (above 1 - SURE) a pixel is sure background (object)
REFINE_ITERATIONS = 3
# The logits averaged with the mirror image's (core.unet.logits_of): with the earlier 3000-step weights, dev photos'
# visible IoU 51.7 / 61.1 / 60.9 from 1 click / 3 clicks / a box against 50.6 / 60.9 / 60.9 (see TRAINING.md).
MIRRORED = True
# From three or more object clicks the network looks twice: at the whole photo, then at the box of what it found grown
# by this share of its size on each side, where the object fills its view as a box's does. Dev photos' visible IoU
# from 3 clicks 65.3 -> 70.9, 2 clicks 60.7 -> 64.9, 1 click 54.4 -> 57.7; but from 1 or 2 clicks the whole mask came
# out worse (dev photos, validation renders), so they get one look (see TRAINING.md).
ZOOM_MARGIN = 0.2
ZOOM_FROM_CLICKS = 3
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "clicknet" / "clicknet.safetensors"
# A box alone gets these weights (trained on with 1500 DUTS salient-object photos) and no GrabCut fit: on unseen photos
# (labelme pastes) its visible IoU is 48.5 against 41.9, on dev 67.3 against 66.7. From clicks those weights take in
# the most salient thing near the click (labelme 1 click 22.9 against 33.5), so clicks keep WEIGHTS (TRAINING.md).
BOX_WEIGHTS = WEIGHTS.with_name("clicknet-box.safetensors")


def prompt_maps(points, labels, box, scale_xy: tuple[float, float], size: int = SIZE) -> np.ndarray:
    """(3, size, size) float32: object clicks, not-the-object clicks, inside the box; ``scale_xy`` maps a photo's
    pixel coordinates to the network's."""
    sx, sy = scale_xy
    maps = np.zeros((3, size, size), np.float32)
    for (x, y), label in zip(points, labels):
        cv2.circle(maps[0 if label == 1 else 1], (int(x * sx), int(y * sy)), CLICK_RADIUS, 1.0, -1)
    if box is not None:
        x0, y0, x1, y1 = box
        maps[2, max(0, int(y0 * sy)):int(np.ceil(y1 * sy)), max(0, int(x0 * sx)):int(np.ceil(x1 * sx))] = 1.0
    return maps


def view_of(prompt: Prompt, height: int, width: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the photo the network looks at: the whole photo for clicks; around a box, the box grown
    by ``BOX_MARGIN`` of its size on each side (the object then fills the network's view)."""
    if prompt.box is None:
        return 0, 0, width, height
    return grown_box(prompt.clipped_box(width, height), BOX_MARGIN, height, width)


def grown_box(box, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) grown by ``margin`` of its size on each side, in whole pixels within the photo."""
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(width, int(np.ceil(x1 + mx))),
            min(height, int(np.ceil(y1 + my))))


def zoomed_view(found: np.ndarray, clicks=()) -> tuple[int, int, int, int]:
    """The view of the second look: the box around what the first look found and the object ``clicks`` (x, y),
    grown by ``ZOOM_MARGIN``."""
    x0, y0, x1, y1 = box_around(found)
    for x, y in clicks:
        x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + 1), max(y1, y + 1)
    return grown_box((x0, y0, x1, y1), ZOOM_MARGIN, *found.shape)


def normalised(rgb: np.ndarray) -> np.ndarray:
    """(3, S, S) network colour channels of an (S, S, 3) image in [0, 1]."""
    return (np.asarray(rgb, np.float32).transpose(2, 0, 1) - 0.45) / 0.25


def network_input(image: np.ndarray, prompt: Prompt, view: tuple[int, int, int, int], size: int = SIZE,
                  background: np.ndarray | None = None) -> np.ndarray:
    """(6, size, size) float32 of an (H, W, 3) image in [0, 1] and its prompt, seen through ``view``;
    ``background`` (H, W) bool (an occluder the user pointed at) joins the not-the-object map."""
    x0, y0, x1, y1 = view
    rgb = cv2.resize(np.asarray(image[y0:y1, x0:x1, :3], np.float32), (size, size), interpolation=cv2.INTER_AREA)
    scale = (size / (x1 - x0), size / (y1 - y0))
    points = [(x - x0, y - y0) for x, y in prompt.points]
    box = None
    if prompt.box is not None:
        bx0, by0, bx1, by1 = prompt.clipped_box(image.shape[1], image.shape[0])
        box = (bx0 - x0, by0 - y0, bx1 - x0, by1 - y0)
    maps = prompt_maps(points, prompt.point_labels() if prompt.points else [], box, scale, size)
    if background is not None:
        known = cv2.resize(np.asarray(background[y0:y1, x0:x1], np.float32), (size, size),
                           interpolation=cv2.INTER_AREA) >= 0.5
        maps[1][known] = 1.0
    return np.concatenate([normalised(rgb), maps])


def build_clicknet():
    """The network (randomly initialised): photo and three prompt maps in, the visible mask's logits out."""
    return build_unet(6, 1)


def is_box_alone(prompt: Prompt) -> bool:
    return prompt.box is not None and not prompt.points


def segment_with_clicknet(image: np.ndarray, prompt: Prompt, background: np.ndarray | None = None,
                          weights: str | Path | None = None, net=None, fit: bool = True) -> np.ndarray:
    """The object the prompt points at, (H, W) bool: the network's mask, its edges then fitted to the photo by
    GrabCut at full resolution (sure where the network is sure, probable elsewhere) unless ``fit`` is off;
    ``background``: pixels that are surely not it."""
    net = net if net is not None else cached_clicknet(str(weights or WEIGHTS))
    probability = clicknet_probability(image, prompt, net, background)
    seeds = np.where(probability >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[probability < SURE] = cv2.GC_BGD
    seeds[probability > 1 - SURE] = cv2.GC_FGD
    surely_not = None if background is None else np.asarray(background, bool)
    if surely_not is not None:
        seeds[surely_not] = cv2.GC_BGD
    if prompt.box is not None:  # the box is around the visible part: nothing outside it is
        # the mask is cut there, but the network's guess alone seeds GrabCut in the band it sees around the box: as
        # sure background that band also took the object's look-alike parts (the demo saucer's dark rim, like the
        # dark corner outside its box)
        outside = ~prompt.inside_box(image.shape[1], image.shape[0])
        surely_not = outside if surely_not is None else surely_not | outside
    for (x, y), label in zip(prompt.points, prompt.point_labels()):
        cv2.circle(seeds, (int(x), int(y)), 3, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
    if not fit:
        mask = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    elif not (seeds == cv2.GC_BGD).any() or not np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
        mask = probability >= 0.5  # GrabCut needs both sides
    else:
        mask = grabcut(image, seeds, REFINE_ITERATIONS)
    if surely_not is not None:
        mask &= ~surely_not
    return keep_prompted_parts(mask, prompt)


@lru_cache(maxsize=2)
def cached_clicknet(path: str):
    return load_clicknet(path)


def load_clicknet(path: str | Path = WEIGHTS):
    """The network with the weights at ``path`` (safetensors, read by our safe loader), in eval mode."""
    return load_unet_weights(path, 6, 1, "clicknet", "train-segmenter")


def clicknet_probability(image: np.ndarray, prompt: Prompt, net, background: np.ndarray | None = None
                         ) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the network's probability that each pixel is the visible object; from three or
    more object clicks, the second, closer look's inside the zoomed view."""
    h, w = image.shape[:2]
    probability = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = view = view_of(prompt, h, w)
    probability[y0:y1, x0:x1] = probability_in_view(image, prompt, net, view, background)
    clicks = prompt.object_points if prompt.box is None else []
    if len(clicks) < ZOOM_FROM_CLICKS:
        return probability
    found = keep_prompted_parts(probability >= 0.5, prompt)
    if any(found[int(y), int(x)] for x, y in clicks):  # else the first look found nothing where the user clicked
        x0, y0, x1, y1 = view = zoomed_view(found, clicks)
        probability[y0:y1, x0:x1] = probability_in_view(image, prompt, net, view, background)
    return probability


def probability_in_view(image: np.ndarray, prompt: Prompt, net, view: tuple[int, int, int, int],
                        background: np.ndarray | None = None) -> np.ndarray:
    """(y1 - y0, x1 - x0) float32: the network's probability of the object at each pixel of ``view`` of the photo."""
    import torch

    x0, y0, x1, y1 = view
    inputs = torch.from_numpy(network_input(image, prompt, view, background=background)[None])
    logits = logits_of(net, inputs, MIRRORED)[0, 0].numpy()
    return 1 / (1 + np.exp(-cv2.resize(logits, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)))
