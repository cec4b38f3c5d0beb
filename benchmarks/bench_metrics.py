"""Speed of the metrics: Chamfer on 2 x 100k points (vs a plain single-threaded scipy cKDTree and Open3D when
installed), evaluate_mesh on one scene (target <= 2 s), volume_iou at 64^3 and 128^3.

    .venv/bin/python benchmarks/bench_metrics.py [--scene DIR]   # renders one scene when none is given
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

import metrics
from amodal3d.core.formats.scene import Scene


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def plain_cKDTree_chamfer(a, b):
    return (cKDTree(b).query(a, workers=1)[0].mean() + cKDTree(a).query(b, workers=1)[0].mean()) / 2


def open3d_chamfer(a, b):
    import open3d as o3d

    pa, pb = o3d.geometry.PointCloud(), o3d.geometry.PointCloud()
    pa.points, pb.points = o3d.utility.Vector3dVector(a), o3d.utility.Vector3dVector(b)
    return (np.mean(pa.compute_point_cloud_distance(pb)) + np.mean(pb.compute_point_cloud_distance(pa))) / 2


def a_scene() -> Path:
    from blender_scenes.generate import render_scenes

    out = Path(tempfile.mkdtemp(prefix="bench_metrics_"))
    render_scenes(["dragon", "mug"], 1, 0, out, progress=False)
    return out / "scene_0000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=Path, default=None)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(100_000, 3)), rng.uniform(size=(100_000, 3))
    result: dict = {}
    result["chamfer_100k_seconds"], ours = timed(lambda: metrics.chamfer_distance(a, b))
    result["chamfer_100k_plain_ckdtree_seconds"], plain = timed(lambda: plain_cKDTree_chamfer(a, b))
    assert abs(ours - plain) < 1e-12
    try:
        result["chamfer_100k_open3d_seconds"], o3d_value = timed(lambda: open3d_chamfer(a, b))
        result["open3d_agrees"] = bool(abs(o3d_value - ours) < 1e-9)
    except ImportError:
        result["chamfer_100k_open3d_seconds"] = None
        result["open3d"] = "not installed (pip install open3d; needs apt libusb-1.0-0)"

    folder = args.scene or a_scene()
    scene = Scene.open(folder)
    gt = scene.gt_mesh()
    pred = gt.convex_hull
    result["scene"] = str(folder)
    result["gt_mesh_faces"] = int(len(gt.faces))
    result["evaluate_mesh_seconds"], m = timed(lambda: metrics.evaluate_mesh(pred, folder))
    result["evaluate_mesh_convex_hull"] = {"chamfer": m.chamfer, "volume_iou": m.volume_iou}
    result["evaluate_mesh_target_seconds"] = 2.0
    for res in (64, 128):
        result[f"volume_iou_{res}_seconds"], iou = timed(lambda: metrics.volume_iou(pred, gt, resolution=res))
        result[f"volume_iou_{res}_convex_hull_vs_gt"] = iou
    result["evaluate_views_seconds"], v = timed(lambda: metrics.evaluate_views(folder / "views", folder), repeat=1)
    result["lpips"] = v.lpips if v.lpips is not None else v.lpips_unavailable
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
