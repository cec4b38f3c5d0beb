"""SyncDreamer's evaluation protocol against a rendered scene folder (``amodal3d.core.formats.scene``).

Mesh: points back-projected from the 16 ring depth maps (GT: rendered depth; prediction: ray-cast depth of the
predicted mesh in the same cameras), each set voxel-downsampled at 0.01, Chamfer distance (mean of both mean NN L2
distances); volumetric IoU of the predicted mesh and gt_mesh.ply on a 64^3 grid over [-1, 1]^3 (the cube of
SyncDreamer's mesh2sdf grid). The predicted mesh is taken as-is in the scene frame (target in a unit box at the origin).

Views: the 16 ring views composited on white, in [0, 1]: PSNR, SSIM and (when weights are found) LPIPS-VGG, averaged.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError
from amodal3d.core.formats.scene import Scene, view_name
from amodal3d.core.raycast import depth_map
from metrics.geometry import chamfer_distance, volume_iou, voxel_downsample
from metrics.image import as_rgb_on_white, psnr, ssim

VOXEL_SIZE = 0.01
IOU_RESOLUTION = 64
IOU_BOUNDS = (-1.0, 1.0)


@dataclass
class MeshMetrics:
    chamfer: float
    volume_iou: float
    pred_points: int
    gt_points: int
    seconds: float


@dataclass
class ViewMetrics:
    psnr: float
    ssim: float
    lpips: float | None
    lpips_unavailable: str | None
    per_view: list[dict] = field(default_factory=list)


def ring_points(cameras, depths) -> np.ndarray:
    """Back-project planar depth maps (0 = background) of the given cameras into one world point cloud (N, 3)."""
    pts = [cam.backproject(d) for cam, d in zip(cameras, depths)]
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def load_mesh(mesh):
    """A trimesh.Trimesh, or a path to any mesh trimesh reads (scenes are merged into one mesh)."""
    import trimesh

    from amodal3d.core.io import check_mesh
    from amodal3d.core.io import load_mesh as read_mesh

    if isinstance(mesh, trimesh.Trimesh):
        return check_mesh(mesh, "the predicted mesh")
    return read_mesh(mesh)


def gt_points(scene: Scene, voxel: float = VOXEL_SIZE) -> np.ndarray:
    """The scene's ground-truth points (16 ring depths back-projected, voxel-downsampled), read once per scene
    folder and version of its scene.json: a benchmark scores many meshes against one scene."""
    stamp = (scene.folder / "scene.json").stat().st_mtime_ns
    return _gt_points(str(scene.folder.resolve()), stamp, voxel)


@functools.lru_cache(maxsize=32)
def _gt_points(folder: str, stamp: int, voxel: float) -> np.ndarray:
    scene = Scene.open(folder)
    cameras = scene.ring_cameras
    return voxel_downsample(ring_points(cameras, [scene.ring_depth(i) for i in range(len(cameras))]), voxel)


def ring_views_on_white(scene: Scene) -> list[np.ndarray]:
    """The scene's 16 ring views composited on white (float64), read once per scene folder and scene.json version."""
    stamp = (scene.folder / "scene.json").stat().st_mtime_ns
    return _ring_views(str(scene.folder.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _ring_views(folder: str, stamp: int) -> list[np.ndarray]:
    scene = Scene.open(folder)
    return [as_rgb_on_white(scene.ring_view(i)) for i in range(len(scene.meta["ring_cameras"]))]


def evaluate_mesh(mesh, scene_dir, voxel: float = VOXEL_SIZE, resolution: int = IOU_RESOLUTION,
                  depths: list[np.ndarray] | None = None) -> MeshMetrics:
    """Chamfer distance and volumetric IoU of ``mesh`` (Trimesh or path) against the scene's target. ``depths``:
    the mesh's planar depth maps in the ring cameras when the caller already cast them (``amodal3d.core.render``)."""
    start = time.perf_counter()
    scene = Scene.open(scene_dir)
    mesh = load_mesh(mesh)
    cameras = scene.ring_cameras
    gt = gt_points(scene, voxel)
    if depths is None:
        depths = [depth_map(cam, mesh) for cam in cameras]
    pred = voxel_downsample(ring_points(cameras, depths), voxel)
    if len(pred) == 0:
        raise UserError("the predicted mesh is not visible from any ring camera: is it in the scene frame "
                        "(unit box at the origin)?")
    cd = chamfer_distance(pred, gt)
    iou = volume_iou(mesh, scene.gt_mesh(), resolution=resolution, bounds=IOU_BOUNDS)
    return MeshMetrics(cd, iou, len(pred), len(gt), time.perf_counter() - start)


def _read_views(views, count: int) -> list[np.ndarray]:
    if isinstance(views, (str, Path)):
        from PIL import Image

        folder = Path(views)
        images = []
        for i in range(count):
            path = folder / Path(view_name(i)).name
            if not path.is_file():
                raise UserError(f"{path}: missing view (expected {count} views 000.png..{count - 1:03d}.png)")
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGBA") if img.mode in ("RGBA", "LA", "P") else img.convert("RGB"),
                                         np.float32) / 255.0)
        return images
    images = [np.asarray(v) for v in views]
    if len(images) != count:
        raise UserError(f"expected {count} views, got {len(images)}")
    return [v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v for v in images]


def evaluate_views(views, scene_dir, lpips_weights: str | Path | None = None, lpips_net: str = "vgg") -> ViewMetrics:
    """PSNR / SSIM / LPIPS of 16 predicted ring views (a folder of 000.png.. or a list of arrays) against the
    scene's."""
    from metrics.lpips import LPIPSUnavailable, cached_lpips, lpips_batch

    scene = Scene.open(scene_dir)
    count = len(scene.meta["ring_cameras"])
    refs = ring_views_on_white(scene)
    preds = _read_views(views, count)
    for i, (p, r) in enumerate(zip(preds, refs)):
        if p.shape[:2] != r.shape[:2]:
            raise UserError(f"view {i:03d} is {p.shape[1]}x{p.shape[0]}, the scene's is {r.shape[1]}x{r.shape[0]}")
    preds = [as_rgb_on_white(p) for p in preds]  # once here, not in every metric
    per_view = [{"psnr": psnr(p, r), "ssim": ssim(p, r)} for p, r in zip(preds, refs)]
    lpips_values, reason = None, None
    try:
        model = cached_lpips(lpips_net, lpips_weights)
        lpips_values = lpips_batch(preds, refs, model)
        for row, value in zip(per_view, lpips_values):
            row["lpips"] = value
    except LPIPSUnavailable as exc:
        reason = str(exc)
    return ViewMetrics(
        psnr=float(np.mean([v["psnr"] for v in per_view])),
        ssim=float(np.mean([v["ssim"] for v in per_view])),
        lpips=None if lpips_values is None else float(np.mean(lpips_values)),
        lpips_unavailable=reason,
        per_view=per_view,
    )


def evaluate_reconstruction(mesh, scene_dir, views: list[np.ndarray] | None = None,
                            lpips_weights: str | Path | None = None, lpips_net: str = "vgg"):
    """Both halves of the protocol for one reconstruction: CD / vIoU of ``mesh`` and PSNR / SSIM / LPIPS of its 16
    ring views (``views`` when the method generated them, else the mesh's ray-cast renders; one cast per camera
    gives those colours and the depths the Chamfer distance uses). Returns (metrics dict, the views scored)."""
    from amodal3d.core.render import render_mesh

    scene = Scene.open(scene_dir)
    mesh = load_mesh(mesh)
    cameras = scene.ring_cameras
    renders = [render_mesh(mesh, cam) for cam in cameras]
    if views is None or len(views) != len(cameras):
        views = [r.rgba for r in renders]
    geometry = evaluate_mesh(mesh, scene_dir, depths=[r.depth for r in renders])
    images = evaluate_views(views, scene_dir, lpips_weights, lpips_net)
    return {"chamfer": geometry.chamfer, "volume_iou": geometry.volume_iou, "psnr": images.psnr, "ssim": images.ssim,
            "lpips": images.lpips, "lpips_unavailable": images.lpips_unavailable}, views
