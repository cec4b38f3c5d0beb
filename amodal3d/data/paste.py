"""pix2gestalt's whole-part recipe (paper section 3.1): paste another object's cut-out over a whole object."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class OccludedCase:
    image: np.ndarray  # (H, W, 3) float in [0, 1] with the occluder pasted
    whole_mask: np.ndarray  # the target's full mask (amodal ground truth)
    visible_mask: np.ndarray  # the target's visible part (modal)
    occluder_mask: np.ndarray  # where the pasted occluder is
    occlusion: float


def _placed(occ_rgb, occ_mask, shape, x, y):
    """The cut-out's top-left corner at (x, y) of an image of ``shape``; parts outside are dropped."""
    h, w = shape
    rgb, mask = np.zeros((h, w, 3), np.float32), np.zeros((h, w), bool)
    oh, ow = occ_mask.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + ow), min(h, y + oh)
    if x1 > x0 and y1 > y0:
        rgb[y0:y1, x0:x1] = occ_rgb[y0 - y : y1 - y, x0 - x : x1 - x]
        mask[y0:y1, x0:x1] = occ_mask[y0 - y : y1 - y, x0 - x : x1 - x]
    return rgb, mask


def cut_out(image: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The object's bounding-box crop (RGB, mask), resized by ``scale``."""
    rows, cols = np.nonzero(mask)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = (max(1, int(round((x1 - x0) * scale))), max(1, int(round((y1 - y0) * scale))))
    rgb = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask[y0:y1, x0:x1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return rgb, m


def paste_occluder(image: np.ndarray, whole: np.ndarray, occ_rgb: np.ndarray, occ_mask: np.ndarray,
                   occlusion: tuple[float, float], rng: np.random.Generator, tries: int = 25) -> OccludedCase | None:
    """Paste the cut-out so it hides a fraction of ``whole`` drawn from ``occlusion``: a random direction from the
    target's centre, the offset along it found by bisection. None if the range cannot be met."""
    h, w = whole.shape
    area = whole.sum()
    rows, cols = np.nonzero(whole)
    cy, cx = rows.mean(), cols.mean()
    oh, ow = occ_mask.shape
    wanted = rng.uniform(*occlusion)
    for _ in range(tries):
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])

        def place(t):
            x = int(round(cx + direction[0] * t - ow / 2))
            y = int(round(cy + direction[1] * t - oh / 2))
            return _placed(occ_rgb, occ_mask, (h, w), x, y)

        def ratio(t):
            return float((place(t)[1] & whole).sum() / area)

        lo, hi = 0.0, float(np.hypot(h, w))
        if ratio(lo) < wanted:
            continue
        for _ in range(18):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ratio(mid) > wanted else (lo, mid)
        rgb, mask = place(hi)
        r = float((mask & whole).sum() / area)
        if occlusion[0] <= r <= occlusion[1]:
            out = np.where(mask[..., None], rgb, image).astype(np.float32)
            return OccludedCase(out, whole.copy(), whole & ~mask, mask, r)
    return None
