"""The CPU shape priors (recon.priors): each prior recovers the shape it assumes from one silhouette, the automatic
choice picks it, the unseen side is textured through the symmetry, and the mesh is decimated, unwrapped and baked."""

import json

import numpy as np
import pytest
import trimesh

import metrics
from amodal3d.core.cameras import orbit_camera
from amodal3d.core.formats.reconstruction import write_reconstruction
from amodal3d.core.raycast import depth_map
from recon.artist_mesh import artist_mesh, decimate
from recon.base import ReconInput, View
from recon.pipeline import make_inputs, reconstruct
from recon.symmetry import (
    fit_cuboid,
    mirror_group,
    reflection,
    revolution_occupancy,
    symmetric_colours,
)
from recon.volume import GRID_BOUND, grid_centres

RES = 192
FAST = {"resolution": 64, "faces": 3000, "texture_size": 256}


def view_of(mesh, elevation=20.0, azimuth=35.0, colour=None):
    """RGBA of ``mesh`` from a camera at ``elevation``/``azimuth`` (radius 2, 192 px); colour by x by default."""
    K = np.array([[300.0, 0, RES / 2], [0, 300.0, RES / 2], [0, 0, 1]])
    camera = orbit_camera(azimuth, elevation, 2.0, K, RES, RES)
    depth = depth_map(camera, mesh)
    rgba = np.zeros((RES, RES, 4), np.float32)
    points = camera.backproject(depth)
    rows, cols = np.nonzero(depth > 0)
    rgba[rows, cols, :3] = colour(points) if colour else np.clip(points + 0.5, 0, 1)
    rgba[..., 3] = depth > 0
    return View(rgba, camera)


def scores(mesh, truth, tmp_path, name):
    from tests.test_protocol import make_scene

    folder = tmp_path / name
    if not folder.exists():
        make_scene(folder, truth)
    return metrics.evaluate_mesh(mesh, folder)


@pytest.fixture(scope="module")
def shapes():
    vase = trimesh.creation.revolve(np.array([[0, -0.45], [0.25, -0.45], [0.32, -0.1], [0.18, 0.25], [0.22, 0.45],
                                              [0, 0.45]]), sections=64)
    box = trimesh.creation.box((0.8, 0.3, 0.5))
    box.apply_transform(trimesh.transformations.rotation_matrix(np.radians(20), (0, 0, 1)))
    lump = trimesh.util.concatenate([trimesh.creation.icosphere(3, radius=0.3).apply_translation((-0.2, 0, 0)),
                                     trimesh.creation.icosphere(3, radius=0.18).apply_translation((0.3, 0.1, 0.1))])
    return {"vase": vase, "box": box, "lump": lump}


@pytest.mark.parametrize("name, expected", [("vase", "revolution"), ("box", "extrusion"), ("lump", "inflate")])
def test_auto_picks_the_prior_the_silhouette_allows_and_it_beats_inflation(shapes, name, expected, tmp_path):
    truth = shapes[name]
    view = view_of(truth)
    result = reconstruct(ReconInput(view, 20.0), "prior", options=FAST)
    assert result.info["prior"] == expected
    assert set(result.info["fits"]) == {"revolution", "extrusion", "inflate"}
    if expected == "inflate":
        return
    chosen = scores(result.mesh, truth, tmp_path, name)
    pillow = scores(reconstruct(ReconInput(view, 20.0), "inflate", options={"resolution": 64}).mesh, truth,
                    tmp_path, name)
    assert chosen.volume_iou > 0.75 and chosen.chamfer < 0.03
    assert chosen.volume_iou > pillow.volume_iou + 0.1 and chosen.chamfer < pillow.chamfer


@pytest.mark.parametrize("elevation", [15.0, 45.0])
def test_a_cup_on_its_saucer_is_revolved_as_one_not_as_a_spinning_top(elevation):
    """Every disc the silhouette allows would stack cones above the rim and below the saucer (volume IoU 0.63 at 15
    degrees, 0.34 at 45); the least cover keeps the cup's two cylinders (0.84, 0.79)."""
    rim, saucer_top, bottom = 0.15, -0.25, -0.3
    cup = trimesh.creation.revolve(np.array([[0, bottom], [0.4, bottom], [0.4, saucer_top], [0.2, saucer_top],
                                             [0.2, rim], [0, rim]]), sections=96)
    view = view_of(cup, elevation=elevation)
    resolution = 128
    occupancy = revolution_occupancy(view.mask, view.camera, resolution).ravel()
    points = grid_centres(resolution, GRID_BOUND)
    radius, z = np.hypot(points[:, 0], points[:, 1]), points[:, 2]
    truth = ((z > bottom) & (z < saucer_top) & (radius < 0.4)) | ((z >= saucer_top) & (z < rim) & (radius < 0.2))
    assert (occupancy & truth).sum() / (occupancy | truth).sum() > 0.75
    voxel = 2 * GRID_BOUND / resolution
    assert rim - voxel < z[occupancy].max() < rim + voxel  # no cone on the rim
    assert z[occupancy].min() > bottom - 4 * voxel


def test_a_box_is_recovered_from_one_silhouette(shapes):
    view = view_of(shapes["box"])
    size, yaw, iou = fit_cuboid(view.mask, view.camera)
    # the box is 0.8 x 0.3 x 0.5 turned 20 degrees; a box's sides are only defined up to a quarter turn
    turn = np.degrees(yaw) % 90
    if abs(turn - 20) > 45:
        size = size[[1, 0, 2]]
        turn = (turn + 90) % 180 - 90
    np.testing.assert_allclose(size, (0.8, 0.3, 0.5), atol=0.03)
    assert abs(turn - 20) < 3 and iou > 0.97


def test_forced_priors_and_their_bench_names(shapes):
    view = view_of(shapes["vase"])
    for name in ("revolution", "extrusion", "mirror", "inflate"):
        info = reconstruct(ReconInput(view, 20.0), "prior", options={**FAST, "prior": name}).info
        assert info["prior"] == name and info["forced"] and list(info["fits"]) == [name]
    assert reconstruct(ReconInput(view, 20.0), "mirror", options={}).info["prior"] == "mirror"


def test_unseen_side_is_read_through_the_symmetry():
    camera = orbit_camera(0.0, 0.0, 2.0, np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]), 64, 64)
    image = np.zeros((64, 64, 3), np.float32)
    image[:, :20] = (1, 0, 0)
    image[:, 20:] = (0, 0, 1)
    front_left = np.array([[0.3, 0.0, 0.0]]) + [[0, 0.1, 0]]
    uv, _ = camera.project(front_left)
    left_colour = image[int(uv[0, 1]), int(uv[0, 0])]
    # a point on the far side (-X), facing away: mirrored in the plane x = 0 it faces the camera at the same place
    back = np.array([[-0.3, 0.1, 0.0]])
    normal = np.array([[-1.0, 0.0, 0.0]])
    mirrored = symmetric_colours(back, normal, image, camera, mirror_group(np.pi / 2))
    np.testing.assert_allclose(mirrored[0], left_colour)
    assert np.allclose(reflection(np.pi / 2)[:3, :3] @ back[0], [0.3, 0.1, 0.0])
    # revolved: a point a quarter turn round the axis takes the colour of the ring's point that faces the camera
    side = symmetric_colours(np.array([[0.0, 0.3, 0.0]]), np.array([[0.0, 1.0, 0.0]]), image, camera, None)
    front = image[32, 32]
    np.testing.assert_allclose(side[0], front)


def test_artist_mesh_decimates_unwraps_and_bakes(tmp_path):
    sphere = trimesh.creation.icosphere(5, radius=0.4)  # 20480 faces

    def colour_at(points, normals):
        return np.clip(points + 0.5, 0, 1)

    mesh = artist_mesh(sphere, colour_at, faces=4000, texture_size=256)
    assert 3600 <= len(mesh.faces) <= 4000
    uv = mesh.visual.uv
    assert uv.min() >= 0 and uv.max() <= 1 and mesh.visual.material.baseColorTexture.size == (256, 256)
    # the atlas holds the colour function: sampled at the vertices' UVs it gives their colours back
    texture = np.asarray(mesh.visual.material.baseColorTexture, np.float32) / 255
    texel = np.clip((np.stack([uv[:, 0], 1 - uv[:, 1]], 1) * 256).astype(int), 0, 255)
    sampled = texture[texel[:, 1], texel[:, 0]]
    assert np.median(np.abs(sampled - colour_at(mesh.vertices, None)).max(axis=1)) < 0.03
    assert len(decimate(sphere, 0).faces) == 20480
    result = reconstruct(ReconInput(view_of(sphere), 20.0), "prior", options=FAST)
    folder = write_reconstruction(result, tmp_path / "out")
    info = json.loads((folder / "recon.json").read_text())
    assert info["watertight"] and info["faces"] <= 3000 and info["texture_size"] == 256
    glb = trimesh.load(folder / "mesh.glb", force="mesh")
    assert glb.visual.material.baseColorTexture.size == (256, 256)
    assert (folder / "mesh.mtl").is_file() or list(folder.glob("*.mtl"))
    assert len(trimesh.load(folder / "mesh.ply").visual.vertex_colors) > 0


def test_a_photo_without_elevation_assumes_a_typical_one(shapes):
    view = view_of(shapes["vase"])
    rgba = view.rgba.copy()
    info = reconstruct(make_inputs(rgba), "prior", options=FAST).info
    assert info["elevation_assumed"] and info["elevation_deg"] == 15.0
    info = reconstruct(make_inputs(rgba, elevation_deg=20.0), "prior", options=FAST).info
    assert not info["elevation_assumed"] and info["elevation_deg"] == 20.0


def test_bad_mesh_options_are_one_line():
    from amodal3d.core.errors import UserError

    with pytest.raises(UserError, match="texture size"):
        reconstruct(ReconInput(view_of(trimesh.creation.icosphere(2, radius=0.3)), 20.0), "prior",
                    options={"texture_size": 0})


def test_forced_variants_take_the_prior_flags():
    from recon.config import ReconConfig

    config = ReconConfig()
    config.backends.prior.faces = 1234
    options = config.backend("revolution")
    assert options.faces == 1234 and options.prior == "auto"  # the variant's own choice still wins when it runs


def test_ground_placement_moves_the_files_not_the_scored_mesh(shapes, tmp_path):
    result = reconstruct(ReconInput(view_of(shapes["box"]), 20.0), "prior", options=FAST)
    before = result.mesh.bounds.copy()
    folder = write_reconstruction(result, tmp_path / "g", ground=True)
    placed = trimesh.load(folder / "mesh.ply")
    info = json.loads((folder / "recon.json").read_text())
    assert info["frame"] == "ground" and placed.bounds[0][2] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(placed.bounds[0] - info["translation_from_benchmark_frame"], before[0], atol=1e-6)
    np.testing.assert_allclose(result.mesh.bounds, before)  # the in-memory mesh (what run --scene scores) is untouched
    plain = json.loads((write_reconstruction(result, tmp_path / "f") / "recon.json").read_text())
    assert plain["frame"] == "benchmark" and plain["translation_from_benchmark_frame"] == [0.0, 0.0, 0.0]


def test_a_forced_prior_the_silhouette_does_not_allow_is_one_line():
    from amodal3d.core.errors import UserError

    camera = orbit_camera(0.0, 0.0, 2.0, np.array([[300.0, 0, 96], [0, 300.0, 96], [0, 0, 1]]), 192, 192)
    rgba = np.zeros((192, 192, 4), np.float32)
    rgba[40:150, 10:30, 3] = 1  # a thin bar far off the axis: no ring around the axis fits inside it
    with pytest.raises(UserError, match="revolution prior leaves nothing"):
        reconstruct(ReconInput(View(rgba, camera), 0.0), "prior", options={**FAST, "prior": "revolution"})
