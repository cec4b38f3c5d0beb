"""The completion folder (DESIGN.md): completion.json, sample_000.png.., amodal_mask.png, amodal_prob.png,
modal_mask.png, occluder_mask.png (given or estimated; the amodal mask stays within visible + it),
amodal3r_mask.png (Amodal3R's three-level input mask, ``amodal3d.core.formats.amodal3r``). Written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amodal3d.core.config import CONFIG_JSON
from amodal3d.core.formats.amodal3r import AMODAL3R_MASK, amodal3r_mask
from amodal3d.core.io import read_mask, resize_mask, write_json, write_png
from amodal3d.core.outputs import atomic_dir

COMPLETION_JSON = "completion.json"
FULLRES_AMODAL, FULLRES_MODAL = "amodal_mask_fullres.png", "modal_mask_fullres.png"  # at the original size


def sample_name(i: int) -> str:
    return f"sample_{i:03d}.png"


def write_completion(result, out: Path, extra: dict | None = None, overwrite: bool = False,
                     original_size: tuple[int, int] | None = None, config: dict | None = None) -> Path:
    """Write a :class:`CompletionResult` to ``out`` (whole or not at all; an earlier completion folder is replaced
    only with ``overwrite``). ``original_size`` (W, H): the user's image before it was downscaled to the working
    resolution; the masks are also written at that size (``*_fullres.png``). ``config``: the command's config
    record, saved as config.json."""
    h, w = result.modal_mask.shape
    meta = {
        "version": 1,
        "method": result.method,
        "seed": result.seed,
        "samples": len(result.samples),
        "prompt": result.prompt.to_dict(),
        "segmenter": result.segmenter,
        "mask_source": result.mask_source,
        "occluder": result.occluder,
        "input_size": [w, h],
        "crop_box": result.frame.to_dict(),
        "timings": result.timings,
        "amodal_pixels": int(result.amodal_mask.sum()),
        "modal_pixels": int(result.modal_mask.sum()),
        **({"sample_info": result.sample_info} if any(result.sample_info) else {}),
        **(extra or {}),
    }
    fullres = original_size is not None and tuple(original_size) != (w, h)
    if fullres:
        meta["original_size"] = list(original_size)
    with atomic_dir(Path(out), "complete", replace=overwrite) as tmp:
        for i, sample in enumerate(result.samples):
            write_png(tmp / sample_name(i), sample)
        write_png(tmp / "amodal_mask.png", result.amodal_mask)
        write_png(tmp / "amodal_prob.png", result.amodal_prob)
        write_png(tmp / "modal_mask.png", result.modal_mask)
        if result.occluder_mask is not None:
            write_png(tmp / "occluder_mask.png", result.occluder_mask)
        occluded = (result.occluder_mask if result.occluder_mask is not None
                    else result.amodal_mask & ~result.modal_mask)
        write_png(tmp / AMODAL3R_MASK, amodal3r_mask(result.modal_mask, occluded))
        if fullres:
            write_png(tmp / FULLRES_AMODAL, resize_mask(result.amodal_mask, original_size))
            write_png(tmp / FULLRES_MODAL, resize_mask(result.modal_mask, original_size))
            write_png(tmp / AMODAL3R_MASK.replace(".png", "_fullres.png"),
                      amodal3r_mask(resize_mask(result.modal_mask, original_size),
                                    resize_mask(occluded, original_size)))
        write_json(tmp / COMPLETION_JSON, meta)
        if config is not None:
            write_json(tmp / CONFIG_JSON, config)
    return Path(out)


def read_completion(folder: Path) -> dict:
    """The folder's metadata plus its amodal and modal masks (bool) and samples (float RGBA)."""
    import json

    from PIL import Image

    folder = Path(folder)
    meta = json.loads((folder / COMPLETION_JSON).read_text())
    samples = []
    for i in range(meta["samples"]):
        with Image.open(folder / sample_name(i)) as img:
            samples.append(np.asarray(img.convert("RGBA"), np.float32) / 255.0)
    return {**meta, "amodal_mask": read_mask(folder / "amodal_mask.png"),
            "modal_mask": read_mask(folder / "modal_mask.png"), "sample_images": samples}
