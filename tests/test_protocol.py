"""SyncDreamer's evaluation protocol on synthetic scenes of analytic shapes (known answers), then the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import trimesh

import metrics
from amodal3d.core.cameras import syncdreamer_ring
from amodal3d.core.errors import UserError
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import write_json, write_png
from amodal3d.core.raycast import depth_map

RES = 128


def make_scene(folder, mesh):
    """A minimal scene folder: ring cameras, ring depth by ray casting, flat-shaded views, gt_mesh.ply."""
    (folder / fmt.VIEWS).mkdir(parents=True)
    ring = syncdreamer_ring(0.0, RES)
    for i, cam in enumerate(ring):
        depth = depth_map(cam, mesh)
        np.save(folder / fmt.view_depth_name(i), depth)
        rgba = np.zeros((RES, RES, 4))
        rgba[..., :3] = np.clip(1.8 - depth, 0, 1)[..., None]
        rgba[..., 3] = depth > 0
        write_png(folder / fmt.view_name(i), rgba)
    mesh.export(folder / fmt.GT_MESH)
    write_json(folder / fmt.SCENE_JSON, {"version": fmt.FORMAT_VERSION, "input_camera": ring[0].to_dict(),
                                         "ring_cameras": [c.to_dict() for c in ring]})
    return folder


@pytest.fixture(scope="module")
def sphere_scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("sphere") / "scene", trimesh.creation.icosphere(5, radius=0.5))


def test_mesh_against_itself(sphere_scene):
    m = metrics.evaluate_mesh(trimesh.creation.icosphere(5, radius=0.5), sphere_scene)
    assert m.chamfer < 1e-4 and m.volume_iou == 1.0
    assert m.pred_points == pytest.approx(m.gt_points, rel=0.01) and m.gt_points > 1000


def test_larger_sphere_gives_the_radius_gap_and_volume_ratio(sphere_scene):
    m = metrics.evaluate_mesh(trimesh.creation.icosphere(5, radius=0.55), sphere_scene)
    assert m.chamfer == pytest.approx(0.05, abs=0.006)
    assert m.volume_iou == pytest.approx((0.5 / 0.55) ** 3, abs=0.05)


def test_shifted_box_is_worse_than_a_close_sphere(sphere_scene):
    close = metrics.evaluate_mesh(trimesh.creation.icosphere(4, radius=0.52), sphere_scene)
    box = trimesh.creation.box(extents=(0.6, 0.6, 0.6))
    box.apply_translation((0.3, 0.0, 0.0))
    far = metrics.evaluate_mesh(box, sphere_scene)
    assert far.chamfer > 3 * close.chamfer and far.volume_iou < close.volume_iou


def test_mesh_path_and_errors(sphere_scene, tmp_path):
    path = tmp_path / "pred.obj"
    trimesh.creation.icosphere(4, radius=0.5).export(path)
    assert metrics.evaluate_mesh(path, sphere_scene).volume_iou > 0.95
    with pytest.raises(UserError, match="not found"):
        metrics.evaluate_mesh(tmp_path / "missing.ply", sphere_scene)
    far = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    far.apply_translation((0, 0, 50))
    with pytest.raises(UserError, match="not visible"):
        metrics.evaluate_mesh(far, sphere_scene)
    with pytest.raises(UserError, match="not a scene folder"):
        metrics.evaluate_mesh(path, tmp_path)


def test_views_against_themselves_and_a_known_offset(sphere_scene, tmp_path):
    same = metrics.evaluate_views(sphere_scene / fmt.VIEWS, sphere_scene, lpips_weights=tmp_path / "none.pth")
    assert same.psnr == float("inf") and same.ssim == pytest.approx(1.0)
    assert same.lpips is None and same.lpips_unavailable.startswith("LPIPS unavailable")
    scene = fmt.Scene.open(sphere_scene)
    shifted = []  # every pixel moved by exactly 0.1 (up where dark, down where bright): PSNR = 20 dB
    for i in range(16):
        rgb = metrics.image.as_rgb_on_white(scene.ring_view(i))
        shifted.append(np.where(rgb <= 0.9, rgb + 0.1, rgb - 0.1))
    assert metrics.evaluate_views(shifted, sphere_scene).psnr == pytest.approx(20.0, abs=1e-4)
    with pytest.raises(UserError, match="expected 16 views"):
        metrics.evaluate_views(shifted[:3], sphere_scene)


def test_views_with_random_backbone_lpips(sphere_scene, tmp_path):
    import torch
    import torchvision

    weights = tmp_path / "alex.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)
    scene = fmt.Scene.open(sphere_scene)
    views = [np.roll(scene.ring_view(i), 3, axis=1) for i in range(16)]
    result = metrics.evaluate_views(views, sphere_scene, lpips_weights=weights, lpips_net="alex")
    assert result.lpips is not None and result.lpips > 0 and result.lpips_unavailable is None
    assert len(result.per_view) == 16 and all("lpips" in v for v in result.per_view)


def test_cli_prints_one_json_object(sphere_scene, tmp_path):
    mesh = tmp_path / "pred.ply"
    trimesh.creation.icosphere(4, radius=0.5).export(mesh)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}  # a cache with no weights in it
    run = subprocess.run([sys.executable, "-m", "amodal3d", "eval", "--mesh", str(mesh), "--views",
                          str(sphere_scene / fmt.VIEWS), "--scene", str(sphere_scene)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["volume_iou"] > 0.95 and result["chamfer"] < 0.01
    assert result["psnr"] == "inf" and result["lpips"] is None and "LPIPS unavailable" in result["lpips_unavailable"]
    bad = subprocess.run([sys.executable, "-m", "amodal3d", "eval", "--mesh", str(tmp_path / "x.ply"), "--scene",
                          str(sphere_scene)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "x.ply" in bad.stderr
