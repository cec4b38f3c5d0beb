"""Readers of the real amodal segmentation datasets, as released, into one plain form (:class:`AmodalInstance`).

Formats (``kind``; ``auto`` tells them apart by their keys):

- ``cocoa``: COCOA as released with Semantic Amodal Segmentation (Zhu et al. 2017; COCO-A and BSDS-A files such
  as ``COCO_amodal_val2014.json``, ``BSDS_amodal_test.json``): ``images`` and ``annotations``, one annotation per
  image holding ``regions``; a region has ``segmentation`` (its amodal polygon, a flat list), ``name``, ``order``
  (depth order, 1 = front), ``area``, ``isStuff``, ``occlude_rate``, and, when it is occluded, ``visible_mask`` and
  ``invisible_mask`` (RLE). A region without ``visible_mask`` is unoccluded (visible = amodal).
- ``coco``: the COCO-style variants (COCOA-cls, D2S amodal): one annotation per instance with ``segmentation``
  (amodal), ``visible_mask`` (and ``invisible_mask``), polygons or RLE, ``category_id`` into ``categories``.
- ``kins``: KINS, in its first release (``instances_train.json``: ``segmentation`` amodal polygons +
  ``inmodal_seg`` RLE) or its 2020 update (``update_train_2020.json``: ``a_segm`` amodal + ``i_segm`` inmodal,
  polygons; ``ico_id`` its occlusion order), ``category_id`` into ``categories``.

Facts not confirmed against a released file (none could be downloaded here; the readers follow the code that reads
them: deocclusion, amodalAPI, C2F-Seg, AISFormer, aistron): whether COCOA's and KINS's RLE counts are compressed
strings or lists (both are read), and D2S amodal's exact key set beyond ``segmentation`` / ``visible_mask``.

Masks are decoded when asked (:meth:`AmodalInstance.masks`), so a 40k-instance file is read in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.formats.rle import segmentation_to_mask

Kind = Literal["auto", "cocoa", "coco", "kins"]
KINDS = ("cocoa", "coco", "kins")


@dataclass
class AmodalInstance:
    """One annotated object: where its image is, its masks as annotated (decoded by :meth:`masks`)."""

    key: str  # unique in the file: "<image id>:<index>"
    image_file: str  # relative to the images folder
    height: int
    width: int
    category: str
    amodal: object  # a COCO segmentation (polygons or RLE)
    visible: object | None  # None: unoccluded, visible = amodal
    invisible: object | None = None
    order: int | None = None
    extra: dict = field(default_factory=dict)

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(amodal, visible), (H, W) bool; the visible part is kept inside the amodal mask."""
        amodal = segmentation_to_mask(self.amodal, self.height, self.width)
        if self.visible is None:
            return amodal, amodal.copy()
        visible = segmentation_to_mask(self.visible, self.height, self.width)
        return amodal | visible, visible  # polygons and RLE may differ by a pixel along the edge


def detect_kind(data: dict) -> str:
    annotations = data.get("annotations") or []
    if not annotations:
        raise UserError("the annotation file has no annotations")
    first = annotations[0]
    if "regions" in first:
        return "cocoa"
    if "inmodal_seg" in first or "i_segm" in first:
        return "kins"
    if "visible_mask" in first:
        return "coco"
    raise UserError(f"unknown amodal annotation format (first annotation's keys: {', '.join(sorted(first))}); "
                    "expected COCOA 'regions', COCO-style 'visible_mask' or KINS 'inmodal_seg' / 'i_segm'")


def read_amodal_dataset(annotations: Path, kind: Kind = "auto") -> tuple[str, list[AmodalInstance]]:
    """(the format read, every instance) of an amodal annotation file."""
    try:
        data = json.loads(Path(annotations).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read annotations {annotations}: {exc}") from None
    if not isinstance(data, dict) or "images" not in data:
        raise UserError(f"{annotations}: not a COCO-style annotation file (no 'images')")
    kind = detect_kind(data) if kind == "auto" else kind
    if kind not in KINDS:
        raise UserError(f"unknown format '{kind}' (formats: auto, {', '.join(KINDS)})")
    images = {img["id"]: img for img in data["images"]}
    names = {c["id"]: str(c.get("name", c["id"])) for c in data.get("categories", [])}
    reader = {"cocoa": _cocoa, "coco": _coco_style, "kins": _kins}[kind]
    instances = []
    for index, ann in enumerate(data["annotations"]):
        image = images.get(ann.get("image_id"))
        if image is None:
            raise UserError(f"{annotations}: annotation {index} names image {ann.get('image_id')}, not in 'images'")
        instances += reader(ann, image, index, names)
    return kind, instances


def _size(image: dict, ann: dict) -> tuple[int, int]:
    h, w = image.get("height"), image.get("width")
    if h is None or w is None:  # COCOA annotations carry the size themselves
        h, w = ann.get("size", [None, None])[:2] if isinstance(ann.get("size"), list) else (ann.get("height"),
                                                                                            ann.get("width"))
    if h is None or w is None:
        raise UserError(f"no image size for {image.get('file_name')}")
    return int(h), int(w)


def _cocoa(ann: dict, image: dict, index: int, names: dict) -> list[AmodalInstance]:
    h, w = _size(image, ann)
    out = []
    for r, region in enumerate(ann.get("regions", [])):
        out.append(AmodalInstance(
            f"{image['id']}:{r}", image["file_name"], h, w, str(region.get("name", "")),
            _required(region, index, "segmentation"),
            region.get("visible_mask"), region.get("invisible_mask"), region.get("order"),
            {"is_stuff": bool(region.get("isStuff", 0)), "occlude_rate": region.get("occlude_rate")}))
    return out


def _required(ann: dict, index: int, *keys: str):
    for key in keys:
        if key in ann:
            return ann[key]
    raise UserError(f"annotation {index} has no {' or '.join(keys)} (keys: {', '.join(sorted(ann))})")


def _coco_style(ann: dict, image: dict, index: int, names: dict) -> list[AmodalInstance]:
    h, w = _size(image, ann)
    return [AmodalInstance(f"{image['id']}:{ann.get('id', index)}", image["file_name"], h, w,
                           names.get(ann.get("category_id"), str(ann.get("category_id", ""))),
                           _required(ann, index, "segmentation"), ann.get("visible_mask"),  # none: unoccluded
                           ann.get("invisible_mask"), None,
                           {"occlude_rate": ann.get("occlude_rate"), "iscrowd": ann.get("iscrowd", 0)})]


def _kins(ann: dict, image: dict, index: int, names: dict) -> list[AmodalInstance]:
    h, w = _size(image, ann)
    amodal = _required(ann, index, "segmentation", "a_segm")
    visible = _required(ann, index, "inmodal_seg", "i_segm")
    return [AmodalInstance(f"{image['id']}:{ann.get('id', index)}", image["file_name"], h, w,
                           names.get(ann.get("category_id"), str(ann.get("category_id", ""))), amodal, visible,
                           None, ann.get("ico_id"), {"iscrowd": ann.get("iscrowd", 0), "release": "2020" if
                                                     "a_segm" in ann else "original"})]
