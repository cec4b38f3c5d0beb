"""Contact sheet PNGs: scenes (input, modal, amodal, whole, four ring views) and completions against ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import as_rgb, write_png_atomic

COLUMNS = ("input", "modal", "amodal", "whole", "view 0", "view 4", "view 8", "view 12")


def scene_row(folder: Path, tile: int) -> np.ndarray:
    scene = fmt.Scene.open(folder)
    images = [
        scene.image(fmt.INPUT),
        scene.mask(fmt.MODAL_MASK).astype(np.float32),
        scene.mask(fmt.AMODAL_MASK).astype(np.float32),
        scene.image(fmt.WHOLE),
        *(scene.ring_view(i) if (folder / fmt.view_name(i)).is_file() else np.ones((tile, tile, 3), np.float32)
          for i in (0, 4, 8, 12)),  # scenes rendered with --no-ring-views: blank tiles
    ]
    tiles = [cv2.resize(as_rgb(im), (tile, tile), interpolation=cv2.INTER_AREA) for im in images]
    row = np.concatenate(tiles, axis=1)
    caption = f"{folder.name}: {scene.meta['target']['category']}  occlusion {scene.meta['occlusion_ratio']:.2f}"
    cv2.putText(row, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0.8, 0.1, 0.1), 1, cv2.LINE_AA)
    return row


def contact_sheet(folders: list[Path], out: Path, tile: int = 128) -> Path:
    """Write a sheet with one row per scene (and a header row naming the columns) to ``out``."""
    return _write_sheet([scene_row(Path(f), tile) for f in folders], COLUMNS, tile, out)


COMPLETION_COLUMNS = ("input", "modal", "sample 0", "vote", "GT amodal", "GT whole")


def completion_row(scene_folder: Path, completion_folder: Path, tile: int) -> np.ndarray:
    """input | visible mask | first sample | majority-vote amodal mask | GT amodal mask | GT whole, with IoUs."""
    from amodal3d.core.formats.completion import read_completion
    from metrics import mask_iou

    scene = fmt.Scene.open(scene_folder)
    done = read_completion(completion_folder)
    gt = scene.mask(fmt.AMODAL_MASK)
    images = [scene.image(fmt.INPUT), done["modal_mask"].astype(np.float32), done["sample_images"][0],
              done["amodal_mask"].astype(np.float32), gt.astype(np.float32), scene.image(fmt.WHOLE)]
    row = np.concatenate([cv2.resize(as_rgb(im), (tile, tile), interpolation=cv2.INTER_AREA) for im in images], 1)
    caption = (f"{scene_folder.name} {done['method']}: IoU {mask_iou(done['amodal_mask'], gt):.2f} "
               f"(modal {mask_iou(done['modal_mask'], gt):.2f})")
    cv2.putText(row, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0.8, 0.1, 0.1), 1, cv2.LINE_AA)
    return row


def completion_sheet(pairs: list[tuple[Path, Path]], out: Path, tile: int = 128) -> Path:
    """One row per (scene folder, completion folder)."""
    rows = [completion_row(Path(s), Path(c), tile) for s, c in pairs]
    return _write_sheet(rows, COMPLETION_COLUMNS, tile, out)


def _write_sheet(rows: list[np.ndarray], columns: tuple[str, ...], tile: int, out: Path) -> Path:
    header = np.ones((20, tile * len(columns), 3), np.float32)
    for i, name in enumerate(columns):
        cv2.putText(header, name, (i * tile + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, *rows], axis=0)
    write_png_atomic(out, sheet)
    return Path(out)
