"""Majority vote over sample masks: the one place the amodal mask and its vote fraction are computed."""

from __future__ import annotations

import numpy as np


def vote(masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """K masks (H, W) -> (majority mask: more than half of the samples agree, bool (H, W); vote fraction float32)."""
    if not masks:
        raise ValueError("vote needs at least one mask")
    stack = np.stack([np.asarray(m, bool) for m in masks])
    fraction = stack.mean(axis=0).astype(np.float32)
    return fraction > 0.5, fraction
