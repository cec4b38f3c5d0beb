import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh

import metrics
from amodal3d.core.cameras import (
    syncdreamer_input,
    syncdreamer_input_camera,
    syncdreamer_ring,
    zero123_camera,
)
from amodal3d.core.errors import UserError
from amodal3d.core.formats.reconstruction import (
    cameras_from_transforms,
    nerfstudio_transforms,
    sdfstudio_meta,
    write_reconstruction,
)
from amodal3d.core.io import write_png
from amodal3d.core.raycast import depth_map, silhouette
from recon.base import ReconInput, View, available_reconstructors, get_reconstructor
from recon.pipeline import make_inputs, reconstruct

RES = 128


@pytest.fixture(scope="module")
def sphere_views():
    """A radius-0.4 sphere seen by the 16 ring cameras: RGBA views with a colour gradient."""
    sphere = trimesh.creation.icosphere(4, radius=0.4)
    views = []
    for cam in syncdreamer_ring(0.0, RES):
        depth = depth_map(cam, sphere)
        rgba = np.zeros((RES, RES, 4), np.float32)
        rgba[..., 0] = np.linspace(0.2, 0.9, RES)[None]
        rgba[..., 1] = 0.3
        rgba[..., 3] = depth > 0
        views.append(View(rgba, cam))
    return sphere, views


def test_ring_cameras_reproject_the_mesh_into_each_view_mask(sphere_views):
    sphere, views = sphere_views
    for view in views:
        sil = silhouette(view.camera, sphere)
        assert (sil & view.mask).sum() / (sil | view.mask).sum() > 0.99


def test_syncdreamer_input_framing():
    rgba = np.zeros((300, 400, 4), np.float32)
    rgba[50:150, 100:300] = [0.2, 0.4, 0.6, 1.0]  # 200 x 100 object
    framed = syncdreamer_input(rgba)
    assert framed.shape == (256, 256, 4)
    rows, cols = np.nonzero(framed[..., 3] > 0.5)
    # SyncDreamer's own crop leaves out the box's last row and column (PIL's crop box): within a pixel of 200 x 100
    assert abs(cols.max() - cols.min() + 1 - 200) <= 1 and abs(rows.max() - rows.min() + 1 - 100) <= 1
    assert framed[0, 0, :3].min() == 1.0  # white background
    # the framing matches the camera: a unit-wide object at the origin spans ~ 280 / 1.5 = 187 px
    cam = syncdreamer_input_camera(0.0)
    uv, _ = cam.project(np.array([[0.0, -0.5, 0.0], [0.0, 0.5, 0.0]]))
    assert 180 < abs(uv[0, 0] - uv[1, 0]) < 195
    assert zero123_camera().K[0, 0] == pytest.approx(128 / np.tan(np.deg2rad(10)))


def test_transforms_json_round_trip(sphere_views):
    _, views = sphere_views
    cams = [v.camera for v in views]
    data = nerfstudio_transforms(cams, [f"views/{i:03d}.png" for i in range(16)], [f"m{i}.png" for i in range(16)])
    assert data["camera_model"] == "OPENCV" and data["fl_x"] == pytest.approx(140.0) and len(data["frames"]) == 16
    back = cameras_from_transforms(json.loads(json.dumps(data)))
    for a, b in zip(cams, back):
        np.testing.assert_allclose(a.c2w, b.c2w, atol=1e-12)
        np.testing.assert_allclose(a.K, b.K)
    # OpenGL axes: the camera looks down -Z, i.e. the third column points away from the object
    c2w_gl = np.asarray(data["frames"][0]["transform_matrix"])
    assert np.dot(c2w_gl[:3, 2], c2w_gl[:3, 3]) > 0
    meta = sdfstudio_meta(cams, ["a.png"] * 16, ["m.png"] * 16)
    assert meta["has_foreground_mask"] and np.asarray(meta["frames"][3]["intrinsics"]).shape == (4, 4)
    # OpenCV axes for SDFStudio (its parsers flip y and z): the third column points at the object
    c2w_cv = np.asarray(meta["frames"][0]["camtoworld"])
    assert np.dot(c2w_cv[:3, 2], -c2w_cv[:3, 3]) > 0


def test_inflate_makes_a_closed_textured_mesh_in_the_frame(sphere_views, tmp_path):
    sphere, views = sphere_views
    result = reconstruct(ReconInput(views[0], 30.0), "inflate", options={"resolution": 64})
    mesh = result.mesh
    assert mesh.is_watertight
    m = metrics.evaluate_mesh(mesh, _scene_for(sphere, views, tmp_path))
    assert m.volume_iou > 0.6 and m.chamfer < 0.05  # a disc inflates to (nearly) the sphere
    paths = write_reconstruction(result, tmp_path / "out")
    loaded = trimesh.load(paths / "mesh.glb", force="mesh")
    assert isinstance(loaded.visual, trimesh.visual.TextureVisuals) and loaded.visual.material.baseColorTexture
    assert trimesh.load(paths / "mesh.obj", force="mesh").visual.uv is not None
    assert len(trimesh.load(paths / "mesh.ply").vertices) > 100
    assert json.loads((paths / "recon.json").read_text())["watertight"] is True


def test_visual_hull_from_the_ring_beats_single_view(sphere_views, tmp_path):
    sphere, views = sphere_views
    scene = _scene_for(sphere, views, tmp_path)
    hull = reconstruct(ReconInput(views[0], 30.0, views), "visual_hull", options={"resolution": 64})
    single = reconstruct(ReconInput(views[0], 30.0), "inflate", options={"resolution": 64})
    mh, ms = metrics.evaluate_mesh(hull.mesh, scene), metrics.evaluate_mesh(single.mesh, scene)
    assert mh.volume_iou > 0.85 and mh.chamfer < ms.chamfer
    colours = hull.mesh.visual.vertex_colors
    assert np.abs(colours[:, 1].astype(int) - 76).max() <= 1  # green 0.3 everywhere in the views
    assert 51 <= colours[:, 0].min() and colours[:, 0].max() <= 230 and colours[:, 0].std() > 2  # the red gradient
    with pytest.raises(UserError, match="multi-view"):
        reconstruct(ReconInput(views[0], 30.0), "visual_hull")


def _scene_for(mesh, views, tmp_path):
    from tests.test_protocol import make_scene

    folder = tmp_path / "scene"
    if not folder.exists():
        make_scene(folder, mesh)
    return folder


def test_missing_backends_say_what_to_install(sphere_views, monkeypatch):
    _, views = sphere_views
    monkeypatch.delenv("AMODAL3D_SYNCDREAMER", raising=False)
    monkeypatch.delenv("AMODAL3D_THREESTUDIO", raising=False)
    for name, message in (("syncdreamer", "SyncDreamer is not available"), ("sds", "threestudio is not available")):
        with pytest.raises(UserError, match=message):
            get_reconstructor(name).reconstruct(ReconInput(views[0], 30.0))
    assert set(available_reconstructors()) >= {"inflate", "visual_hull", "syncdreamer", "sds"}
    with pytest.raises(UserError, match="known: .*inflate.*prior"):
        get_reconstructor("nerf-magic")


def test_make_inputs_without_scene_uses_syncdreamer_framing():
    rgba = np.zeros((90, 120, 4), np.float32)
    rgba[20:70, 30:100, 3] = 1.0
    inputs = make_inputs(rgba, elevation_deg=15.0)
    assert inputs.view.rgba.shape == (256, 256, 4) and inputs.elevation_deg == 15.0
    with pytest.raises(UserError, match="empty"):
        make_inputs(np.zeros((10, 10, 4), np.float32))


def test_cli_reconstruct_from_image_and_errors(tmp_path):
    rgba = np.zeros((96, 96, 4), np.float32)
    yy, xx = np.mgrid[0:96, 0:96]
    rgba[(xx - 48) ** 2 + (yy - 48) ** 2 < 30**2] = [0.9, 0.5, 0.1, 1.0]
    write_png(tmp_path / "whole.png", rgba)
    run = subprocess.run([sys.executable, "-m", "amodal3d", "reconstruct", "--image", str(tmp_path / "whole.png"),
                          "--out", str(tmp_path / "r")], capture_output=True, check=False, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "r" / "mesh.glb").is_file() and (tmp_path / "r" / "recon.json").is_file()
    run = subprocess.run([sys.executable, "-m", "amodal3d", "reconstruct", "--image", str(tmp_path / "whole.png"),
                          "--recon", "syncdreamer", "--out", str(tmp_path / "s")], capture_output=True, check=False,
                          text=True)
    assert run.returncode == 2 and "SyncDreamer" in run.stderr and not (tmp_path / "s").exists()


def test_neus_fit_lowers_its_loss_and_keeps_the_shape(sphere_views, tmp_path):
    from recon.neus import NeuSConfig, NeuSReconstructor

    sphere, views = sphere_views
    result = NeuSReconstructor(NeuSConfig(resolution=32, steps=40, rays=256, samples=32)).reconstruct(
        ReconInput(views[0], 30.0, views), seed=0)
    assert result.info["loss_last"] < result.info["loss_first"]
    m = metrics.evaluate_mesh(result.mesh, _scene_for(sphere, views, tmp_path))
    assert m.volume_iou > 0.8 and m.chamfer < 0.03
    assert result.mesh.is_watertight
