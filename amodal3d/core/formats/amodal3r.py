"""Amodal3R's three-level input mask (its README: background white 255, visible object grey 188, occluded area
black 0; its pipeline reads a pixel below 127 as occluded and above 230 as background, everything between as
visible). We write the occluded area as what hides the object (the occluder mask, given or estimated) where we know
it, else as the hidden part our completion found (amodal minus visible)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError

AMODAL3R_MASK = "amodal3r_mask.png"
BACKGROUND, VISIBLE, OCCLUDED = 255, 188, 0


def amodal3r_mask(visible: np.ndarray, occluded: np.ndarray) -> np.ndarray:
    """(H, W) uint8 in Amodal3R's levels; the visible object wins where the two overlap."""
    out = np.full(np.shape(visible), BACKGROUND, np.uint8)
    out[np.asarray(occluded, bool)] = OCCLUDED
    out[np.asarray(visible, bool)] = VISIBLE
    return out


def read_amodal3r_mask(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(visible, occluded) (H, W) bool from an Amodal3R mask, with Amodal3R's own thresholds (grey, any depth)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), np.uint8)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the Amodal3R mask {path}: {exc}") from None
    occluded, background = grey < 127, grey > 230
    visible = ~occluded & ~background
    if not visible.any():
        raise UserError(f"{path}: no visible object (no grey pixels between 127 and 230) in the Amodal3R mask")
    return visible, occluded
