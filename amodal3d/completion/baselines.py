"""Amodal-mask baselines that every completion method is measured against (pix2gestalt Table 1's lower rows):
the visible mask itself, and its convex hull."""

from __future__ import annotations

import cv2
import numpy as np


def convex_hull_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the convex hull of ``mask``'s pixels (the mask itself included)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return mask.copy()
    out = np.zeros(mask.shape, np.uint8)
    points = np.argwhere(mask)[:, ::-1].astype(np.int32)
    cv2.fillPoly(out, [cv2.convexHull(points)], 1)
    return out.astype(bool) | mask


BASELINES = {"modal": lambda modal: np.asarray(modal, bool).copy(), "hull": convex_hull_mask}
