"""Whole-part training pairs (pix2gestalt section 3.1), in its folder layout:

    OUT/occlusion/000000.png            the occluded input (RGB)
    OUT/whole/000000.png                the whole object on white (RGB): the training target
    OUT/whole_mask/000000.png           its full mask (0/255)
    OUT/visible_object_mask/000000.png  its visible part (0/255)
    OUT/pairs.jsonl                     one line per pair: where it came from, occlusion ratio

Two sources: rendered scene folders (exact pairs: the scene's input, ``whole.png``, amodal and modal masks), and any
image set with instance masks (COCO-style json) and a depth map per image: an instance is "whole" when it is nearer
than everything around it along its boundary and off the image border (the paper's heuristic with MiDaS depth);
another instance's cut-out is pasted over it to hide a fraction drawn from ``occlusion``. Deterministic by seed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from amodal3d.core.config import CONFIG_JSON
from amodal3d.core.errors import UserError
from amodal3d.core.formats.rle import segmentation_to_mask
from amodal3d.core.io import read_image, read_mask, write_json, write_png
from amodal3d.core.outputs import atomic_dir
from amodal3d.data.paste import cut_out, paste_occluder

LAYOUT = ("occlusion", "whole", "whole_mask", "visible_object_mask")


@dataclass
class Pair:
    occlusion: np.ndarray  # (H, W, 3) float in [0, 1]
    whole: np.ndarray  # (H, W, 3) float in [0, 1], the whole object on white
    whole_mask: np.ndarray  # (H, W) bool
    visible_mask: np.ndarray  # (H, W) bool
    source: dict = field(default_factory=dict)


def pair_from_scene(folder: Path, background: np.ndarray | None = None) -> Pair:
    """The exact pair of a rendered scene folder; with ``background`` (an RGB photo of any size), the input's
    background (what is neither the target nor an occluder) is replaced by the photo, resized to cover it."""
    from amodal3d.core.formats.scene import (
        AMODAL_MASK,
        INPUT,
        MODAL_MASK,
        OCCLUDER_MASK,
        WHOLE,
        Scene,
    )
    from amodal3d.core.io import composite_on_white

    scene = Scene.open(folder)
    whole = composite_on_white(scene.image(WHOLE))
    image, visible = scene.image(INPUT), scene.mask(MODAL_MASK)
    source = {"scene": Path(folder).name, "occlusion_ratio": float(scene.meta["occlusion_ratio"])}
    if background is not None:
        foreground = visible | scene.mask(OCCLUDER_MASK)
        image = np.where(foreground[..., None], image, covering(background, image.shape[:2]))
        source["background"] = True
    return Pair(image, whole, scene.mask(AMODAL_MASK), visible, source)


def covering(photo: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``photo`` scaled to cover ``shape`` (H, W) and centre-cropped to it."""
    import cv2

    h, w = shape
    scale = max(h / photo.shape[0], w / photo.shape[1])
    size = (max(w, round(photo.shape[1] * scale)), max(h, round(photo.shape[0] * scale)))
    big = cv2.resize(photo.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0:y0 + h, x0:x0 + w]


def read_backgrounds(folder: Path, rng: np.random.Generator, crop: float = 0.5) -> Iterator[np.ndarray]:
    """Endless random crops (at least ``crop`` of each side) of the photos (JPEG/PNG) in ``folder``."""
    if not Path(folder).is_dir():
        raise UserError(f"--backgrounds {folder} is not a folder")
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise UserError(f"no background photos (.jpg/.png) in {folder}")
    while True:
        photo = read_image(files[rng.integers(len(files))])
        h, w = photo.shape[:2]
        ch, cw = round(h * rng.uniform(crop, 1)), round(w * rng.uniform(crop, 1))
        y0, x0 = rng.integers(h - ch + 1), rng.integers(w - cw + 1)
        window = photo[y0:y0 + ch, x0:x0 + cw, :3]
        yield window[:, ::-1] if rng.random() < 0.5 else window


def is_whole(mask: np.ndarray, depth: np.ndarray, ring: int = 3, nearer: float = 0.9, margin: float = 0.0) -> bool:
    """The paper's heuristic: the object is nearer than its surroundings along at least ``nearer`` of its outer
    boundary ring (``depth``: larger = farther), and it does not touch the image border."""
    if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
        return False
    outer = ndimage.binary_dilation(mask, iterations=ring) & ~mask
    inner = mask & ~ndimage.binary_erosion(mask, iterations=ring)
    valid = np.isfinite(depth)
    if not (outer & valid).any() or not (inner & valid).any():
        return False
    own = float(np.median(depth[inner & valid]))
    return float(np.mean(depth[outer & valid] > own + margin)) >= nearer


def pairs_from_instances(image: np.ndarray, masks: list[np.ndarray], depth: np.ndarray, occluders: list[tuple],
                         rng: np.random.Generator, occlusion=(0.2, 0.8), min_area: int = 400,
                         source: dict | None = None, tries: int = 5) -> Iterator[Pair]:
    """Pairs from one annotated image: every whole instance, hidden by a cut-out drawn from ``occluders``
    ((image, mask) of other instances), scaled to the target's size; up to ``tries`` occluders per instance."""
    for index, mask in enumerate(masks):
        if mask.sum() < min_area or not is_whole(mask, depth):
            continue
        case = hide_behind_cut_out(image, mask, [o for o in occluders if o[1] is not mask], rng, occlusion, tries)
        if case is None:
            continue
        whole = np.where(mask[..., None], image, 1.0).astype(np.float32)
        yield Pair(case.image, whole, mask.copy(), case.visible_mask,
                   {**(source or {}), "instance": index, "occlusion_ratio": case.occlusion})


def read_coco(annotations: Path, images: Path, depth: Path, depth_kind: str = "depth") -> Iterator[tuple]:
    """(name, image, instance masks, depth with larger = farther) per image of a COCO-style json with polygon or
    RLE segmentations; depth maps are ``DEPTH/<image stem>.npy`` (or 16-bit PNG); ``depth_kind``
    "disparity" for inverse depth (MiDaS)."""
    import cv2

    if depth_kind not in ("depth", "disparity"):
        raise UserError(f"depth_kind must be depth or disparity, got '{depth_kind}'")
    try:
        data = json.loads(Path(annotations).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read annotations {annotations}: {exc}") from None
    by_image: dict[int, list] = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    for info in data.get("images", []):
        image = read_image(Path(images) / info["file_name"])
        h, w = image.shape[:2]
        stem = Path(info["file_name"]).stem
        depth_file = next((Path(depth) / f"{stem}{ext}" for ext in (".npy", ".png")
                           if (Path(depth) / f"{stem}{ext}").is_file()), None)
        if depth_file is None:
            raise UserError(f"no depth map {stem}.npy or {stem}.png in {depth}")
        depth_map = (np.load(depth_file) if depth_file.suffix == ".npy" else
                     cv2.imread(str(depth_file), cv2.IMREAD_UNCHANGED)).astype(np.float32)
        if depth_map.shape != (h, w):
            raise UserError(f"{depth_file} is {depth_map.shape[::-1]}, its image {(w, h)}")
        if depth_kind == "disparity":
            depth_map = 1.0 / np.maximum(depth_map, 1e-6)
        masks = [segmentation_to_mask(ann["segmentation"], h, w) for ann in by_image.get(info["id"], [])
                 if not ann.get("iscrowd", 0)]
        yield info["file_name"], image, [m for m in masks if m.any()], depth_map


def hide_behind_cut_out(image: np.ndarray, mask: np.ndarray, occluders: list[tuple], rng: np.random.Generator,
                       occlusion: tuple[float, float], tries: int = 5):
    """Paste one of ``occluders`` ((image, mask) cut-outs, scaled to the target's size) to hide a fraction of
    ``mask`` drawn from ``occlusion``; up to ``tries`` occluders (one with a hole may not cover enough). The
    :class:`OccludedCase`, or None."""
    rows, cols = np.nonzero(mask)
    target_size = max(np.ptp(rows), np.ptp(cols)) + 1
    for pick in rng.permutation(len(occluders))[:tries]:
        occ_image, occ_mask = occluders[pick]
        occ_rows, occ_cols = np.nonzero(occ_mask)
        scale = rng.uniform(0.7, 1.3) * target_size / (max(np.ptp(occ_rows), np.ptp(occ_cols)) + 1)
        rgb, cut = cut_out(occ_image, occ_mask, scale)
        case = paste_occluder(image, mask, rgb, cut, occlusion, rng)
        if case is not None:
            return case
    return None


def with_pasted_occluder(pair: Pair, cut_outs: list[tuple], rng: np.random.Generator,
                         occlusion: tuple[float, float] = (0.2, 0.8)) -> Pair | None:
    """The pair hidden further by another object's whole cut-out ((image, mask) of ``cut_outs``, not its own) pasted
    over its occluded input (the recipe of section 3.1 on top of a rendered occlusion), the total hidden share of the
    whole object drawn from ``occlusion``; None when the pair is already hidden too much."""
    area = pair.whole_mask.sum()
    visible_share = pair.visible_mask.sum() / max(area, 1)
    # hiding a share r of the visible part leaves 1 - visible_share * (1 - r) of the whole hidden
    low = max(0.1, 1 - (1 - occlusion[0]) / max(visible_share, 1e-9))
    high = 1 - (1 - occlusion[1]) / max(visible_share, 1e-9)
    donors = [c for c in cut_outs if c[1] is not pair.whole_mask]
    if high <= low or not donors:
        return None
    case = hide_behind_cut_out(pair.occlusion, pair.visible_mask, donors, rng, (low, high))
    if case is None:
        return None
    return Pair(case.image, pair.whole, pair.whole_mask, case.visible_mask,
                {**pair.source, "pasted": True, "occlusion_ratio": float(1 - case.visible_mask.sum() / area)})


def write_pairs(pairs: Iterable[Pair], out: Path, overwrite: bool = False, config: dict | None = None) -> int:
    """Write pairs in pix2gestalt's layout (written whole, atomically; an earlier pairs folder is replaced only with
    ``overwrite``); the number written."""
    count = 0
    with atomic_dir(Path(out), "make-pairs", replace=overwrite) as tmp:
        for name in LAYOUT:
            (tmp / name).mkdir()
        with open(tmp / "pairs.jsonl", "w") as manifest:
            for pair in pairs:
                stem = f"{count:06d}.png"
                write_png(tmp / "occlusion" / stem, pair.occlusion)
                write_png(tmp / "whole" / stem, pair.whole)
                write_png(tmp / "whole_mask" / stem, pair.whole_mask)
                write_png(tmp / "visible_object_mask" / stem, pair.visible_mask)
                manifest.write(json.dumps({"file": stem, **pair.source}) + "\n")
                count += 1
        if count == 0:
            raise UserError("no pair could be made (no whole objects found, or no occluder fitted)")
        if config is not None:
            write_json(tmp / CONFIG_JSON, config)
    return count


def make_pairs(out: Path, scenes: Path | None = None, coco: Path | None = None, images: Path | None = None,
               depth: Path | None = None, depth_kind: str = "depth", seed: int = 0, occlusion=(0.2, 0.8),
               pasted: int = 0, overwrite: bool = False, config: dict | None = None,
               backgrounds: Path | None = None) -> int:
    """Pairs from rendered scenes and/or an annotated image set, written to ``out``; the number of pairs.
    ``pasted``: also this many variants of each scene pair, another scene's whole object pasted over it.
    ``backgrounds``: a folder of photos; each scene's background is replaced by a random crop of one."""
    if scenes is None and coco is None:
        raise UserError("give rendered scenes and/or --coco JSON with --images DIR and --depth DIR")
    if coco is not None and (images is None or depth is None):
        raise UserError("--coco needs --images DIR and --depth DIR")
    if backgrounds is not None and scenes is None:
        raise UserError("--backgrounds replaces rendered scenes' backgrounds: give --scenes DIR too")
    rng = np.random.default_rng(seed)

    def generate() -> Iterator[Pair]:
        if scenes is not None:
            folders = sorted(p for p in Path(scenes).glob("scene_*") if (p / "scene.json").is_file())
            if not folders:
                raise UserError(f"no rendered scenes in {scenes}")
            photos = read_backgrounds(backgrounds, rng) if backgrounds is not None else None
            pairs = (pair_from_scene(p, next(photos) if photos else None) for p in folders)
            pairs = [p for p in pairs if p.visible_mask.sum() < p.whole_mask.sum()]  # nothing hidden: no pair
            yield from pairs
            cut_outs = [(p.whole, p.whole_mask) for p in pairs]  # each hides something, so none is empty
            for _ in range(pasted):
                for pair in pairs:
                    variant = with_pasted_occluder(pair, cut_outs, rng, occlusion)
                    if variant is not None:
                        yield variant
        if coco is not None:
            annotated = list(read_coco(coco, images, depth, depth_kind))
            pool = [(img, m) for _, img, masks, _ in annotated for m in masks]
            for name, image, masks, depth_map in annotated:
                yield from pairs_from_instances(image, masks, depth_map, pool, rng, occlusion,
                                                source={"image": name})

    return write_pairs(generate(), out, overwrite, config)


def read_pairs(folder: Path) -> list[dict]:
    """The manifest rows of a pairs folder, each with the paths of its four images."""
    folder = Path(folder)
    if not (folder / "pairs.jsonl").is_file():
        raise UserError(f"{folder} is not a pairs folder (no pairs.jsonl; make one with amodal3d make-pairs)")
    rows = [json.loads(line) for line in (folder / "pairs.jsonl").read_text().splitlines() if line.strip()]
    return [{**row, **{name: folder / name / row["file"] for name in LAYOUT}} for row in rows]


def load_pair(row: dict) -> Pair:
    return Pair(read_image(row["occlusion"]), read_image(row["whole"]), read_mask(row["whole_mask"]),
                read_mask(row["visible_object_mask"]), {k: v for k, v in row.items() if k not in LAYOUT})
