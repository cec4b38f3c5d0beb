"""The photo-case folder format, version 1: one real photograph in which a real cut-out pasted over an object hides
part of it, so the object's whole (amodal) mask is known exactly. ``benchmarks/photos/build_photo_bench.py`` writes
them; ``amodal3d bench --photos`` reads them.

CASE/
  case.json          # provenance, licence, split, occlusion fraction, the prompts derived from the visible mask
  input.png          # the occluded photo (RGB)
  modal_mask.png     # visible part of the object
  amodal_mask.png    # the whole object, as annotated in the source photo
  occluder_mask.png  # the pasted cut-out (the pixels in front of the object)

File names are the scene format's (``amodal3d.core.formats.scene``), so a case reads like a scene without 3D truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.formats.scene import AMODAL_MASK, INPUT, MODAL_MASK, OCCLUDER_MASK
from amodal3d.core.io import read_image, read_mask, write_json, write_png

FORMAT_VERSION = 1
CASE_JSON = "case.json"
SPLITS = ("dev", "heldout")


def is_case(folder: Path) -> bool:
    """A case counts as written only when its case.json (written last, atomically) is there."""
    return (Path(folder) / CASE_JSON).is_file()


def write_case(folder: Path, image: np.ndarray, modal: np.ndarray, amodal: np.ndarray, occluder: np.ndarray,
               meta: dict) -> None:
    """Write one case; ``meta`` must name its ``split`` (one of SPLITS) and ``source``."""
    if meta.get("split") not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {meta.get('split')!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_png(folder / INPUT, image)
    for name, mask in ((MODAL_MASK, modal), (AMODAL_MASK, amodal), (OCCLUDER_MASK, occluder)):
        write_png(folder / name, np.asarray(mask, bool).astype(np.uint8) * 255)
    write_json(folder / CASE_JSON, {"format_version": FORMAT_VERSION, **meta})


@dataclass
class PhotoCase:
    folder: Path

    @classmethod
    def open(cls, folder: Path | str) -> PhotoCase:
        folder = Path(folder)
        if not is_case(folder):
            raise UserError(f"{folder}: not a photo case (no {CASE_JSON})")
        return cls(folder)

    @property
    def name(self) -> str:
        """``split/folder``: unique in a benchmark (result rows are keyed by it)."""
        return f"{self.split}/{self.folder.name}"

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.folder / CASE_JSON).read_text())

    @property
    def split(self) -> str:
        return self.meta["split"]

    @cached_property
    def image(self) -> np.ndarray:
        return read_image(self.folder / INPUT)

    @cached_property
    def modal(self) -> np.ndarray:
        return read_mask(self.folder / MODAL_MASK)

    @cached_property
    def amodal(self) -> np.ndarray:
        return read_mask(self.folder / AMODAL_MASK)

    @cached_property
    def occluder(self) -> np.ndarray:
        return read_mask(self.folder / OCCLUDER_MASK)


def find_cases(folder: Path, split: str | None = None) -> list[PhotoCase]:
    """Every case under ``folder`` (one level of split folders allowed), optionally of one split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such photo-benchmark folder")
    found = [p for p in sorted(folder.glob("*")) if is_case(p)] + [p for p in sorted(folder.glob("*/*")) if is_case(p)]
    cases = [PhotoCase(p) for p in found]
    if split is not None:
        cases = [c for c in cases if c.split == split]
    if not cases:
        raise UserError(f"{folder}: no photo cases{f' of split {split}' if split else ''} (build them with "
                        "benchmarks/photos/build_photo_bench.py)")
    return cases
