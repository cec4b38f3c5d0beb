"""Reconstruction front end: gather inputs (a completion folder, an RGBA image, a rendered scene), run a backend,
write the reconstruction folder (mesh.glb, mesh.obj, mesh.ply, recon.json, views/ + transforms.json)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from amodal3d.errors import UserError
from amodal3d.io import MIN_IMAGE_SIDE, write_json, write_png
from amodal3d.outputs import atomic_dir
from recon.base import ReconInput, ReconResult, View, get_reconstructor
from recon.cameras import syncdreamer_input, syncdreamer_input_camera
from recon.export import nerfstudio_transforms, sdfstudio_meta, write_meshes

DEFAULT_METHOD = "inflate"


def view_from_completion(folder: Path) -> np.ndarray:
    """RGBA (H, W, 4): the first sample's colours with the majority-vote amodal mask as alpha."""
    from amodal3d.completion import read_completion

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
    framing (object cropped to 200 px on 256, camera at radius 1.5, the given elevation, default 0)."""
    if min(rgba.shape[:2]) < MIN_IMAGE_SIDE:
        raise UserError(f"the image is too small ({rgba.shape[1]}x{rgba.shape[0]}; at least {MIN_IMAGE_SIDE} px a side)")
    if not (rgba[..., 3] >= 0.5).any():
        raise UserError("the object's mask is empty: nothing to reconstruct")
    ring: list[View] = []
    if scene is not None:
        from blender_scenes import scene_format as fmt

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
    return ReconInput(View(framed, syncdreamer_input_camera(elevation, framed.shape[0])), elevation)


def reconstruct(inputs: ReconInput, method: str | None = None, seed: int = 0, **options) -> ReconResult:
    return get_reconstructor(method or DEFAULT_METHOD, **options).reconstruct(inputs, seed=seed)


def write_reconstruction(result: ReconResult, out: Path, meta: dict | None = None, overwrite: bool = False) -> Path:
    """mesh.glb / mesh.obj / mesh.ply, recon.json, and views/ with transforms.json and meta_data.json if any
    (written whole, atomically; an earlier reconstruction folder is replaced only with ``overwrite``)."""
    start = time.perf_counter()
    with atomic_dir(Path(out), "reconstruct", replace=overwrite) as tmp:
        write_meshes(result.mesh, tmp)
        info = {"version": 1, **result.info, **(meta or {}), "vertices": int(len(result.mesh.vertices)),
                "faces": int(len(result.mesh.faces)), "watertight": bool(result.mesh.is_watertight)}
        if result.views:
            (tmp / "views").mkdir()
            images, masks = [], []
            for i, view in enumerate(result.views):
                write_png(tmp / "views" / f"{i:03d}.png", view.rgba)
                write_png(tmp / "views" / f"{i:03d}_mask.png", view.mask)
                images.append(f"views/{i:03d}.png")
                masks.append(f"views/{i:03d}_mask.png")
            cams = [v.camera for v in result.views]
            write_json(tmp / "transforms.json", nerfstudio_transforms(cams, images, masks))
            write_json(tmp / "meta_data.json", sdfstudio_meta(cams, images, masks))
            info["views"] = len(result.views)
        info["write_seconds"] = time.perf_counter() - start
        write_json(tmp / "recon.json", info)
    return Path(out)
