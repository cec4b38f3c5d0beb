"""COCO segmentations -> masks: polygons, uncompressed RLE (``counts`` a list) and compressed RLE (``counts`` a
string, pycocotools' format), without pycocotools.

RLE runs go down the columns (column-major), starting with a run of zeros. Compressed counts are pycocotools'
``rleToString``: each count (from the fourth on, minus the count two before it) in 5-bit groups, low first, each
group + 48 as a character, bit 0x20 = more groups follow, bit 0x10 of the last group = negative.
Polygons are filled with OpenCV; pycocotools rasterises them with its own rule, so edges can differ by a pixel.
"""

from __future__ import annotations

import numpy as np

from amodal3d.core.errors import UserError


def decode_counts(text: str | bytes) -> list[int]:
    """pycocotools' compressed counts string -> run lengths."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    p = 0
    while p < len(data):
        value, shift, more = 0, 0, True
        while more:
            if p >= len(data):
                raise UserError("compressed RLE ends in the middle of a count")
            c = data[p] - 48
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            p += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def encode_counts(counts: list[int]) -> str:
    """Run lengths -> pycocotools' compressed counts string."""
    out = []
    for i, count in enumerate(counts):
        value = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = value & 0x1F
            value >>= 5
            more = value != -1 if c & 0x10 else value != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def rle_to_mask(counts, h: int, w: int) -> np.ndarray:
    """Runs (a list, or a compressed string) of an (h, w) mask -> (h, w) bool."""
    runs = decode_counts(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    if sum(runs) != h * w or min(runs, default=0) < 0:
        raise UserError(f"RLE counts cover {sum(runs)} pixels, the mask has {h}x{w} = {h * w}")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(w, h).T


def mask_to_rle(mask: np.ndarray, compressed: bool = True) -> dict:
    """(h, w) bool -> {"size": [h, w], "counts": ...} (compressed string or list)."""
    flat = np.asarray(mask, bool).T.ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    return {"size": list(mask.shape), "counts": encode_counts(runs) if compressed else runs}


def segmentation_to_mask(segmentation, h: int, w: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygons: a list of flat [x0, y0, x1, y1, ...] lists, or a flat list; RLE: a dict
    with counts and size) -> (h, w) bool."""
    import cv2

    if isinstance(segmentation, dict):
        size = segmentation.get("size", [h, w])
        if list(size) != [h, w]:
            raise UserError(f"RLE size {size} differs from the image's {[h, w]}")
        return rle_to_mask(segmentation["counts"], h, w)
    if not isinstance(segmentation, list):
        raise UserError(f"not a segmentation (polygons or RLE): {type(segmentation).__name__}")
    polygons = segmentation if segmentation and isinstance(segmentation[0], list) else [segmentation]
    mask = np.zeros((h, w), np.uint8)
    for polygon in polygons:
        if len(polygon) >= 6:
            points = np.round(np.asarray(polygon, np.float64).reshape(-1, 2)).astype(np.int32)
            cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)
