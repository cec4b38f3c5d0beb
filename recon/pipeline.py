"""Reconstruction front end: gather inputs (a completion folder, an RGBA image, a rendered scene), run a backend,
write the reconstruction folder (mesh.glb, mesh.obj, mesh.ply, recon.json, views/ + transforms.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amodal3d.core.cameras import syncdreamer_input, syncdreamer_input_camera
from amodal3d.core.errors import UserError
from amodal3d.core.io import MIN_IMAGE_SIDE
from recon.base import ReconInput, ReconResult, View, get_reconstructor
from recon.config import DEFAULT_METHOD, ReconConfig


def view_from_completion(folder: Path) -> np.ndarray:
    """RGBA (H, W, 4): the first sample's colours with the majority-vote amodal mask as alpha."""
    from amodal3d.core.formats.completion import read_completion

    folder = Path(folder)
    if not (folder / "completion.json").is_file():
        raise UserError(f"{folder}: not a completion folder (no completion.json)")
    done = read_completion(folder)
    return whole_view(done["sample_images"][0], done["amodal_mask"])


def whole_view(sample: np.ndarray, amodal_mask: np.ndarray) -> np.ndarray:
    """RGBA of a completion to reconstruct from: a sample's colours, the majority-vote amodal mask as alpha."""
    rgba = np.array(sample, np.float32, copy=True)
    rgba[..., 3] = amodal_mask.astype(np.float32)
    return rgba


def make_inputs(rgba: np.ndarray, scene: Path | None = None, elevation_deg: float | None = None,
                with_ring: bool = False) -> ReconInput:
    """Place the view: with a rendered scene, its input camera (the benchmark frame); otherwise SyncDreamer's
    framing (object cropped to 200 px on 256, camera at radius 1.5, the given elevation, default 0 and marked
    unknown)."""
    if min(rgba.shape[:2]) < MIN_IMAGE_SIDE:
        raise UserError(f"the image is too small ({rgba.shape[1]}x{rgba.shape[0]}; at least {MIN_IMAGE_SIDE} px a side)")
    if not (rgba[..., 3] >= 0.5).any():
        raise UserError("the object's mask is empty: nothing to reconstruct")
    ring: list[View] = []
    if scene is not None:
        from amodal3d.core.formats import scene as fmt

        s = fmt.Scene.open(scene)
        camera = s.input_camera
        if rgba.shape[:2] != (camera.height, camera.width):
            raise UserError(f"image is {rgba.shape[1]}x{rgba.shape[0]}, scene camera is {camera.width}x{camera.height}")
        elevation = s.meta["input_camera"]["elevation_deg"] if elevation_deg is None else elevation_deg
        if with_ring:
            ring = [View(s.ring_view(i), cam) for i, cam in enumerate(s.ring_cameras)]
        return ReconInput(View(rgba.astype(np.float32), camera), float(elevation), ring)
    elevation = 0.0 if elevation_deg is None else float(elevation_deg)
    framed = syncdreamer_input(rgba)
    return ReconInput(View(framed, syncdreamer_input_camera(elevation, framed.shape[0])), elevation,
                      elevation_known=elevation_deg is not None)


def reconstruct(inputs: ReconInput, method: str = DEFAULT_METHOD, config: ReconConfig | None = None, *,
                seed: int = 0, options: dict | None = None) -> ReconResult:
    """Run backend ``method`` on ``inputs`` with the stage ``config``'s options for it (``options`` on top)."""
    config = config or ReconConfig()
    return get_reconstructor(method, config.backend(method, **(options or {}))).reconstruct(inputs, seed=seed)
