"""Pre/post-processing shared by every completion backend: a square frame around the object (aspect ratio kept,
padding outside the image), the backend's canvas resolution, and the exact way back to input coordinates.

Pixel centres sit at +0.5 in both spaces; the canvas maps to the input by ``x_in = x0 + x_canvas / scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WHITE_THRESHOLD = 250  # pix2gestalt's evaluation: a pixel is object when its grey value is below 250 (on 0..255)


@dataclass(frozen=True)
class Frame:
    """A square window of ``side`` input pixels with top-left corner (x0, y0), shown on a ``size`` x ``size`` canvas.
    The window may extend past the image; those parts are padded."""

    x0: float
    y0: float
    side: float
    size: int
    image_width: int
    image_height: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    @classmethod
    def around(cls, mask: np.ndarray, size: int, context: float = 1.0, min_side: float = 16.0) -> Frame:
        """The square around ``mask``'s bounding box, grown by ``context`` times its longest side (split evenly on
        both sides) so hidden parts have room to appear."""
        rows, cols = np.nonzero(mask)
        if len(rows) == 0:
            raise ValueError("cannot frame an empty mask")
        x_lo, x_hi, y_lo, y_hi = cols.min(), cols.max() + 1, rows.min(), rows.max() + 1
        side = max(float(max(x_hi - x_lo, y_hi - y_lo)) * (1.0 + context), min_side)
        cx, cy = (x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0
        h, w = mask.shape
        return cls(cx - side / 2.0, cy - side / 2.0, side, int(size), int(w), int(h))

    def _matrix(self, scale: float) -> np.ndarray:
        """Affine map from input pixels to a canvas of ``side * scale`` pixels (pixel centres at +0.5)."""
        offset = 0.5 * scale - 0.5
        return np.array([[scale, 0.0, -scale * self.x0 + offset], [0.0, scale, -scale * self.y0 + offset]])

    def to_canvas(self, image: np.ndarray, fill=1.0, nearest: bool = False) -> np.ndarray:
        """Input image (H, W[, C]) -> canvas (size, size[, C]); outside the image is ``fill`` (white by default).

        Bool masks map by nearest neighbour when the canvas is as fine as the input or finer (exactly invertible by
        :meth:`to_input`), and by area majority when it is coarser."""
        if image.dtype == bool and self.scale < 1:
            return _majority_keeping_parts(self.to_canvas(image.astype(np.float32), fill=float(fill)))
        src = image.astype(np.uint8) if image.dtype == bool else image
        channels = 1 if src.ndim == 2 else src.shape[2]
        border = tuple([fill] * channels) if np.isscalar(fill) else tuple(fill)
        if nearest or self.scale >= 1:
            interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
            out = cv2.warpAffine(src, self._matrix(self.scale), (self.size, self.size), flags=interp,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        else:  # shrinking: cut the window at full resolution, then average pixels (no aliasing)
            full = int(np.ceil(self.side))
            window = cv2.warpAffine(src, self._matrix(full / self.side), (full, full), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=border)
            out = cv2.resize(window, (self.size, self.size), interpolation=cv2.INTER_AREA)
        if out.ndim < src.ndim:
            out = out[..., None]
        return out.astype(bool) if image.dtype == bool else out

    def to_input(self, canvas: np.ndarray, fill=0.0, nearest: bool = False) -> np.ndarray:
        """Canvas (size, size[, C]) -> input resolution (H, W[, C]); input pixels outside the window get ``fill``."""
        interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        src = canvas.astype(np.uint8) if canvas.dtype == bool else canvas
        channels = 1 if src.ndim == 2 else src.shape[2]
        border = tuple([fill] * channels) if np.isscalar(fill) else tuple(fill)
        inverse = cv2.invertAffineTransform(self._matrix(self.scale))
        out = cv2.warpAffine(src, inverse, (self.image_width, self.image_height), flags=interp,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=border)
        if out.ndim < src.ndim:
            out = out[..., None]
        return out.astype(bool) if canvas.dtype == bool else out

    def to_dict(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "side": self.side, "size": self.size,
                "image_width": self.image_width, "image_height": self.image_height}


def _majority_keeping_parts(coverage: np.ndarray) -> np.ndarray:
    """Area-majority downsampled mask in which no separate part vanishes: a part too thin to win any pixel keeps its
    best-covered one."""
    from scipy import ndimage

    out = coverage >= 0.5
    labels, count = ndimage.label(coverage > 1e-3)
    if count:
        has_pixel = ndimage.maximum(out, labels, index=np.arange(1, count + 1)).astype(bool)
        lost = np.nonzero(~has_pixel)[0] + 1
        for r, c in ndimage.maximum_position(coverage, labels, index=lost):
            out[r, c] = True
    return out


def parts_touching(mask: np.ndarray, seed: np.ndarray, diagonal: bool = False) -> np.ndarray:
    """The connected parts of ``mask`` that overlap ``seed`` (both (H, W) bool); ``diagonal``: 8-connected."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)) if diagonal else None)
    keep = np.unique(labels[seed])
    return np.isin(labels, keep[keep > 0])


def mask_from_white(rgb: np.ndarray, threshold: int = WHITE_THRESHOLD) -> np.ndarray:
    """Object mask of an image of the whole object on white: grey (ITU-R 601 luma, 0..255) below ``threshold``."""
    rgb = np.asarray(rgb, np.float64)
    if rgb.max() <= 1.0:
        rgb = rgb * 255.0
    grey = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return grey < threshold


def object_on_white(rgb: np.ndarray, threshold: int = WHITE_THRESHOLD) -> np.ndarray:
    """Object mask of an image of one object on a white background: everything except the near-white region that
    reaches the image border, so white and near-white parts inside the object stay object."""
    from scipy import ndimage

    white = ~mask_from_white(rgb, threshold)
    labels, _ = ndimage.label(white)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return ~np.isin(labels, border[border > 0])


def mask_from_alpha(rgba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Object mask from the alpha channel of an RGBA image in [0, 1]."""
    return np.asarray(rgba)[..., 3] >= threshold

