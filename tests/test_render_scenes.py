"""Real Cycles renders (small and few samples, so the suite stays fast) checked against geometry."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

from amodal3d.core.formats import scene as fmt
from amodal3d.core.raycast import depth_map, silhouette
from blender_scenes.generate import RenderConfig, render_scenes
from blender_scenes.sampler import SceneConfig

pytestmark = pytest.mark.slow

RES = 128
CONFIG = dict(resolution=RES, occlusion=(0.2, 0.8))
RENDER = RenderConfig(spp=4, denoise=False)
OBJECTS = ["duck", "can", "teapot", "rubber_duck"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    reports = render_scenes(OBJECTS, 3, 11, out, SceneConfig(**CONFIG), RENDER, progress=False)
    assert all(r.ok for r in reports), reports
    return out, reports


def test_folder_has_every_file_of_the_format(scenes):
    out, _ = scenes
    folder = out / "scene_0000"
    for name in (fmt.INPUT, fmt.MODAL_MASK, fmt.AMODAL_MASK, fmt.OCCLUDER_MASK, fmt.DEPTH, fmt.WHOLE, fmt.GT_MESH,
                 fmt.SCENE_JSON):
        assert (folder / name).is_file(), name
    for i in range(16):
        assert (folder / fmt.view_name(i)).is_file() and (folder / fmt.view_depth_name(i)).is_file()
    scene = fmt.Scene.open(folder)
    assert scene.image(fmt.INPUT).shape == (RES, RES, 3)
    assert scene.image(fmt.WHOLE).shape == (RES, RES, 4)
    assert scene.ring_view(5).shape == (RES, RES, 4)
    assert scene.depth().dtype == np.float32 and scene.depth().shape == (RES, RES)
    meta = scene.meta
    assert meta["version"] == fmt.FORMAT_VERSION and len(meta["ring_cameras"]) == 16
    assert meta["target"]["category"] and meta["occluders"]
    assert not list(out.glob(".tmp-*"))  # nothing half-written left behind


def test_modal_is_inside_amodal_and_occlusion_in_range(scenes):
    out, reports = scenes
    for r in reports:
        scene = fmt.Scene.open(out / r.name)
        modal, amodal = scene.mask(fmt.MODAL_MASK), scene.mask(fmt.AMODAL_MASK)
        assert modal.any() and not (modal & ~amodal).any()
        ratio = 1 - modal.sum() / amodal.sum()
        assert ratio == pytest.approx(scene.meta["occlusion_ratio"], abs=1e-9)
        assert 0.2 <= ratio <= 0.8
        occluder = scene.mask(fmt.OCCLUDER_MASK)
        assert (amodal & occluder).sum() == pytest.approx(amodal.sum() - modal.sum(), abs=0)
        # the visible part of the target is exactly where the RGBA "whole" is opaque and nothing covers it
        whole_alpha = scene.image(fmt.WHOLE)[..., 3]
        assert whole_alpha[amodal].mean() > 0.9 and whole_alpha[~amodal].mean() < 0.05


def test_ring_depth_reprojects_onto_gt_mesh(scenes):
    out, reports = scenes
    for r in reports:
        scene = fmt.Scene.open(out / r.name)
        mesh = scene.gt_mesh()
        surface = cKDTree(mesh.sample(50000, seed=0))
        np.testing.assert_allclose(np.ptp(mesh.vertices, axis=0).max(), 1.0, atol=1e-6)
        for i, cam in enumerate(scene.ring_cameras):
            pts = cam.backproject(scene.ring_depth(i))
            dist, _ = surface.query(pts)
            assert len(pts) > 200
            assert np.median(dist) < 0.01 and dist.mean() < 0.02, (r.name, i, dist.mean())


def test_input_depth_of_visible_target_lies_on_gt_mesh(scenes):
    out, _ = scenes
    scene = fmt.Scene.open(out / "scene_0001")
    pts = scene.input_camera.backproject(scene.depth(), scene.mask(fmt.MODAL_MASK))
    dist, _ = cKDTree(scene.gt_mesh().sample(50000, seed=0)).query(pts)
    assert np.median(dist) < 0.01


def test_ring_depth_equals_ray_cast_depth_of_gt_mesh(scenes):
    out, _ = scenes
    scene = fmt.Scene.open(out / "scene_0002")
    for i in (0, 7):
        rendered, cast = scene.ring_depth(i), depth_map(scene.ring_cameras[i], scene.gt_mesh())
        both = (rendered > 0) & (cast > 0)
        assert both.sum() >= 0.99 * max((rendered > 0).sum(), (cast > 0).sum())
        np.testing.assert_allclose(rendered[both], cast[both], atol=2e-3)


def test_amodal_mask_matches_the_gt_mesh_silhouette(scenes):
    """Blender's camera and ours agree: casting scene.json's camera rays at gt_mesh.ply gives the rendered mask."""
    out, reports = scenes
    for r in reports:
        scene = fmt.Scene.open(out / r.name)
        mesh = scene.gt_mesh()
        for cam, mask in [(scene.input_camera, scene.mask(fmt.AMODAL_MASK)),
                          (scene.ring_cameras[3], scene.ring_view(3)[..., 3] > 0.5)]:
            hit = silhouette(cam, mesh)
            assert (hit ^ mask).sum() <= 0.005 * mask.sum(), (r.name, (hit ^ mask).sum(), mask.sum())
        # the sampler ray-casts the same pixel centres, so its estimate is the rendered ratio
        assert scene.meta["occlusion_estimated"] == pytest.approx(scene.meta["occlusion_ratio"], abs=0.01)


def test_same_seed_gives_identical_masks_and_rerun_resumes(scenes, tmp_path):
    out, _ = scenes
    reports = render_scenes(OBJECTS, 1, 11, tmp_path, SceneConfig(**CONFIG), RENDER, progress=False)
    assert reports[0].ok
    a, b = fmt.Scene.open(out / "scene_0000"), fmt.Scene.open(tmp_path / "scene_0000")
    for name in (fmt.MODAL_MASK, fmt.AMODAL_MASK, fmt.OCCLUDER_MASK):
        np.testing.assert_array_equal(a.mask(name), b.mask(name))
    np.testing.assert_array_equal(a.depth(), b.depth())
    again = render_scenes(OBJECTS, 2, 11, tmp_path, SceneConfig(**CONFIG), RENDER, progress=False)
    assert again[0].reason == "exists" and again[1].ok and again[1].reason == ""


def test_two_worker_processes_render_the_same_scenes(scenes, tmp_path):
    out, _ = scenes
    reports = render_scenes(OBJECTS, 3, 11, tmp_path, SceneConfig(**CONFIG), RENDER, progress=False, workers=2)
    assert [r.name for r in reports] == ["scene_0000", "scene_0001", "scene_0002"] and all(r.ok for r in reports)
    for name in ("scene_0000", "scene_0002"):
        a, b = fmt.Scene.open(out / name), fmt.Scene.open(tmp_path / name)
        assert a.meta["target"]["name"] == b.meta["target"]["name"]
        for mask in (fmt.MODAL_MASK, fmt.AMODAL_MASK):
            np.testing.assert_array_equal(a.mask(mask), b.mask(mask))


def test_unreachable_occlusion_is_reported_not_written(tmp_path):
    config = SceneConfig(resolution=64, occlusion=(0.999, 1.0), occluder_scale=(0.05, 0.06), max_attempts=2)
    reports = render_scenes(["duck", "can"], 1, 0, tmp_path, config, RENDER, progress=False)
    assert not reports[0].ok and "attempts" in reports[0].reason
    assert not (tmp_path / "scene_0000").exists()
    assert json.loads((tmp_path / "failed_scenes.json").read_text())[0]["name"] == "scene_0000"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "amodal3d", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_bad_mesh_path_and_unreadable_mesh_give_one_line(tmp_path):
    result = _cli("render-scenes", "--objects", str(tmp_path / "missing.obj"), "--num", "1", "--out",
                  str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.obj" in result.stderr
    assert "Traceback" not in result.stderr
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"garbage" * 20)
    result = _cli("render-scenes", "--objects", str(broken), "--num", "1", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "cannot read mesh" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out" / "scene_0000").exists()


@pytest.mark.parametrize("ring", ["--ring-views", "--no-ring-views"])
def test_cli_renders_and_writes_contact_sheet(tmp_path, ring):
    result = _cli("render-scenes", "--objects", "lemon", "bread", "--num", "1", "--out", str(tmp_path),
                  "--resolution", "64", "--spp", "2", "--no-denoise", ring)
    assert result.returncode == 0, result.stderr
    assert fmt.is_complete(tmp_path / "scene_0000")
    assert (tmp_path / "scene_0000" / fmt.view_name(0)).is_file() == (ring == "--ring-views")
    from PIL import Image

    with Image.open(tmp_path / "contact_sheet.png") as sheet:
        assert sheet.size[0] == 8 * 128


def test_protocol_on_a_rendered_scene(scenes):
    import metrics

    out, _ = scenes
    folder = out / "scene_0000"
    scene = fmt.Scene.open(folder)
    own = metrics.evaluate_mesh(scene.gt_mesh(), folder)
    assert own.chamfer < 2e-3 and own.volume_iou > 0.99
    blob = scene.gt_mesh().convex_hull
    hull = metrics.evaluate_mesh(blob, folder)
    assert hull.chamfer > own.chamfer and hull.volume_iou < 1.0
    views = metrics.evaluate_views(folder / fmt.VIEWS, folder)
    assert views.psnr == float("inf") and views.ssim == pytest.approx(1.0)


def test_classical_completion_beats_amodal_equals_modal_on_rendered_scenes(scenes):
    from amodal3d.completion import complete
    from amodal3d.core.prompts import Prompt
    from metrics import mask_iou

    out, reports = scenes
    ours, modal_only = [], []
    for r in reports:
        scene = fmt.Scene.open(out / r.name)
        modal, amodal = scene.mask(fmt.MODAL_MASK), scene.mask(fmt.AMODAL_MASK)
        result = complete(scene.image(fmt.INPUT), Prompt(mask=modal), samples=4, seed=0)
        ours.append(mask_iou(result.amodal_mask, amodal))
        modal_only.append(mask_iou(modal, amodal))
    assert np.mean(ours) > np.mean(modal_only) + 0.05, (ours, modal_only)


def test_reconstruction_on_rendered_scenes_orders_inputs_as_expected(scenes):
    """Single-view inflation from the GT whole view beats inflation from the modal-only input; the visual hull of
    the GT ring beats both."""
    import metrics
    from recon.base import ReconInput, View
    from recon.pipeline import reconstruct

    out, reports = scenes
    cd = {"whole": [], "modal": [], "hull": []}
    for r in reports:
        folder = out / r.name
        scene = fmt.Scene.open(folder)
        whole = scene.image(fmt.WHOLE).copy()
        whole[..., 3] = scene.mask(fmt.AMODAL_MASK)
        modal = np.dstack([scene.image(fmt.INPUT), scene.mask(fmt.MODAL_MASK).astype(np.float32)])
        for key, rgba in (("whole", whole), ("modal", modal)):
            mesh = reconstruct(ReconInput(View(rgba, scene.input_camera), 0.0), "inflate", options={"resolution": 64}).mesh
            cd[key].append(metrics.evaluate_mesh(mesh, folder).chamfer)
        ring = [View(scene.ring_view(i), cam) for i, cam in enumerate(scene.ring_cameras)]
        mesh = reconstruct(ReconInput(ring[0], 30.0, ring), "visual_hull", options={"resolution": 64}).mesh
        cd["hull"].append(metrics.evaluate_mesh(mesh, folder).chamfer)
    assert np.mean(cd["hull"]) < np.mean(cd["whole"]) < np.mean(cd["modal"]), cd
