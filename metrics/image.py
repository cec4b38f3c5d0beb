"""PSNR, SSIM and mask IoU on numpy images, as SyncDreamer's and pix2gestalt's evaluations define them."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from amodal3d.core.io import composite_on_white

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # 11x11 Gaussian window, as Wang et al., torchmetrics and skimage(gaussian_weights=True)
SSIM_K1, SSIM_K2 = 0.01, 0.03


def as_rgb_on_white(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) or (H, W, 4) float in [0, 1] -> (H, W, 3) float64; RGBA is composited on white (rgb * a + 1 - a)."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    img = img.astype(np.float64, copy=False)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) or (H, W, 4) image, got shape {img.shape}")
    if img.min() < -1e-6 or img.max() > 1 + 1e-6:
        raise ValueError(f"float images must be in [0, 1], got range [{img.min():.3g}, {img.max():.3g}]")
    if img.shape[2] == 4:
        return composite_on_white(img)
    return img


def _pair(img: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_rgb_on_white(img), as_rgb_on_white(ref)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    return a, b


def psnr(img: np.ndarray, ref: np.ndarray) -> float:
    """10 log10(1 / MSE) over all pixels and channels, data range 1. Identical images give inf."""
    a, b = _pair(img, ref)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def ssim(img: np.ndarray, ref: np.ndarray) -> float:
    """Mean structural similarity (Gaussian window sigma 1.5, 11x11; K1 0.01, K2 0.03; data range 1), per channel
    then averaged; a 5-pixel border is excluded from the mean (scikit-image's convention)."""
    a, b = _pair(img, ref)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    filt = _gaussian_window
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return float((num / den)[pad:-pad, pad:-pad].mean())


def _gaussian_window(x: np.ndarray) -> np.ndarray:
    """The SSIM window over rows and columns of (H, W, C) float64: OpenCV's separable filter (several times faster
    than scipy's) with the same normalised taps and the same mirror border ("reflect": d c b a | a b c d)."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    return cv2.sepFilter2D(x, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT).reshape(x.shape)


def _mask(m: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(m)
    if m.ndim == 3 and m.shape[2] in (1, 3, 4):
        m = m[..., 0] if m.shape[2] != 4 else m[..., 3]
    if m.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) mask, got shape {m.shape}")
    if m.dtype == bool:
        return m
    return m > (127 if m.dtype == np.uint8 else 0.5)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|pred & gt| / |pred | gt| for (H, W) masks (bool, 0/255 uint8 or float in [0, 1]). Both empty -> 1.0."""
    p, g = _mask(pred, "pred"), _mask(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: pred {p.shape} vs gt {g.shape}")
    union = np.logical_or(p, g).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, g).sum() / union)


def mean_iou(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """mIoU as in pix2gestalt's Table 1: the mean over instances of each (pred, gt) pair's IoU."""
    ious = [mask_iou(p, g) for p, g in pairs]
    if not ious:
        raise ValueError("mean_iou needs at least one (pred, gt) pair")
    return float(np.mean(ious))
