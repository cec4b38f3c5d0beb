import numpy as np
import pytest

from amodal3d.core.cameras import orbit_camera, syncdreamer_intrinsics
from amodal3d.core.raycast import depth_map, silhouette
from blender_scenes.objects import load_object
from blender_scenes.sampler import SceneConfig, sample_scene, transformed_vertices


@pytest.fixture(scope="module")
def pool():
    return [load_object(n) for n in ("duck", "mug", "can", "teapot")]


def _first_sample(target, pool, config, seed):
    for attempt in range(20):
        sample = sample_scene(target, pool, config, seed + 1000 * attempt)
        if sample is not None:
            return sample
    raise AssertionError("no scene sampled in 20 attempts")


def test_silhouette_of_a_square_facing_the_camera():
    cam = orbit_camera(0.0, 0.0, 2.0, syncdreamer_intrinsics(256), 256, 256)
    # a 1x1 square in the plane x = 0 facing the camera at +x
    v = np.array([[0, -0.5, -0.5], [0, 0.5, -0.5], [0, 0.5, 0.5], [0, -0.5, 0.5]], float)
    import trimesh

    square = trimesh.Trimesh(v, np.array([[0, 1, 2], [0, 2, 3]]), process=False)
    sil = silhouette(cam, square)
    # focal * size / distance = 280 * 1 / 2 = 140 px, centred: rows/cols 58..197
    assert sil.sum() == 140 * 140
    assert sil[58:198, 58:198].all()
    depth = depth_map(cam, square)
    np.testing.assert_allclose(depth[sil], 2.0, rtol=1e-5)  # planar depth, not ray length
    assert (depth[~sil] == 0).all()


@pytest.mark.parametrize("occlusion", [(0.2, 0.8), (0.5, 0.7)])
def test_estimated_occlusion_in_range_and_occluders_in_front(pool, occlusion):
    config = SceneConfig(resolution=128, occlusion=occlusion)
    for seed in range(4):
        s = _first_sample(pool[seed % len(pool)], pool, config, seed)
        assert occlusion[0] <= s.estimated_occlusion <= occlusion[1]
        target_near = s.input_camera.project(transformed_vertices(s.target))[1].min()
        for occ in s.occluders:
            depths = s.input_camera.project(transformed_vertices(occ))[1]
            assert depths.max() < target_near  # every occluder pixel hides the target
            assert depths.min() > 0
            assert occ.obj.name != s.target.obj.name
        assert -10 <= s.elevation_deg <= 40
        assert len(s.ring) == 16


def test_same_seed_same_scene(pool):
    config = SceneConfig(resolution=128)
    a = _first_sample(pool[0], pool, config, 7)
    b = _first_sample(pool[0], pool, config, 7)
    np.testing.assert_array_equal(a.input_camera.c2w, b.input_camera.c2w)
    for pa, pb in zip(a.occluders, b.occluders):
        np.testing.assert_array_equal(pa.matrix, pb.matrix)
    assert a.lighting == b.lighting


def test_bad_config_is_a_user_error():
    from amodal3d.core.errors import UserError

    for bad in (SceneConfig(occlusion=(0.8, 0.2)), SceneConfig(ground=True), SceneConfig(background="pink"),
                SceneConfig(hdris=("moon",)), SceneConfig(occluders=(0, 1))):
        with pytest.raises(UserError):
            bad.check()
