"""Instances from labelme JSON annotations (Debian's labelme-examples ships VOC photos annotated this way)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LABELME_EXAMPLES = Path("/usr/share/doc/labelme-examples/examples/instance_segmentation/data_annotated")


@dataclass
class Instance:
    image_path: Path
    label: str
    mask: np.ndarray  # (H, W) bool


def read_labelme(json_path: Path) -> tuple[np.ndarray, list[Instance]]:
    """(RGB image float (H, W, 3) in [0, 1], polygon instances). Shapes labelled ``__ignore__`` are skipped; shapes
    with the same group id are merged into one instance."""
    from PIL import Image

    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    image_path = json_path.with_name(data["imagePath"]).resolve()
    with Image.open(image_path) as img:
        image = np.asarray(img.convert("RGB"), np.float32) / 255.0
    h, w = image.shape[:2]
    groups: dict = {}
    for k, shape in enumerate(data["shapes"]):
        if shape["label"].startswith("__") or shape.get("shape_type", "polygon") != "polygon":
            continue
        key = (shape["label"], shape.get("group_id") if shape.get("group_id") is not None else f"#{k}")
        mask = groups.setdefault(key, np.zeros((h, w), np.uint8))
        cv2.fillPoly(mask, [np.round(np.asarray(shape["points"])).astype(np.int32)], 1)
    return image, [Instance(image_path, label, m.astype(bool)) for (label, _), m in groups.items()]
