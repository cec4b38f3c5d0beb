import numpy as np
import pytest

from amodal3d.core import cameras as C


def test_syncdreamer_ring_matches_protocol():
    ring = C.syncdreamer_ring(input_azimuth_deg=10.0)
    assert len(ring) == 16
    for i, cam in enumerate(ring):
        assert np.linalg.norm(cam.center) == pytest.approx(1.5)
        elevation = np.degrees(np.arcsin(cam.center[2] / 1.5))
        azimuth = np.degrees(np.arctan2(cam.center[1], cam.center[0])) % 360
        assert elevation == pytest.approx(30.0)
        assert azimuth == pytest.approx((10.0 + 22.5 * i) % 360)
        np.testing.assert_allclose(cam.K, [[280, 0, 128], [0, 280, 128], [0, 0, 1]])
        # the optical axis passes through the origin
        uv, z = cam.project(np.zeros((1, 3)))
        np.testing.assert_allclose(uv[0], [128, 128], atol=1e-9)
        assert z[0] == pytest.approx(1.5)
    assert C.focal_to_lens_mm(280.0, 256) == pytest.approx(35.0)


def test_look_at_is_a_rotation_with_up_pointing_up():
    c2w = C.look_at(np.array([2.0, -1.0, 1.0]))
    R = c2w[:3, :3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert R[2, 1] < 0  # image "down" (+y) points towards world -Z


def test_project_backproject_round_trip(rng):
    cam = C.orbit_camera(40.0, 20.0, 2.0, C.intrinsics(300.0, 200, 160), 200, 160)
    depth = np.full((160, 200), 0.0, np.float32)
    depth[40:120, 50:150] = rng.uniform(1.5, 2.5, (80, 100))
    pts = cam.backproject(depth)
    assert len(pts) == 80 * 100
    uv, z = cam.project(pts)
    v, u = np.nonzero(depth > 0)
    np.testing.assert_allclose(uv, np.stack([u + 0.5, v + 0.5], 1), atol=1e-6)
    np.testing.assert_allclose(z, depth[v, u], rtol=1e-6)


def test_opencv_opengl_conversion_flips_y_and_z_and_is_an_involution():
    c2w = C.look_at(np.array([1.0, 2.0, 3.0]))
    gl = C.opencv_to_opengl(c2w)
    np.testing.assert_allclose(gl[:3, 2], -c2w[:3, 2])  # OpenGL cameras look down -Z
    np.testing.assert_allclose(gl[:3, 1], -c2w[:3, 1])
    np.testing.assert_allclose(C.opengl_to_opencv(gl), c2w)


def test_camera_dict_round_trip():
    cam = C.syncdreamer_ring()[3]
    back = C.Camera.from_dict(cam.to_dict())
    np.testing.assert_allclose(back.K, cam.K)
    np.testing.assert_allclose(back.c2w, cam.c2w)


STRAY_CONVENTIONS = {
    r"22\.5|360(\.0)?\s*/\s*16": "the ring's azimuth step",
    r"elev\w*\W{1,6}30(\.0)?\b|\b30(\.0)?,\s*ring": "the ring's elevation",
    r"arctan2\([^)]*cent": "a camera's azimuth from its centre",
    r"\b280(\.0)?\b": "SyncDreamer's focal length",
    r"rotation_matrix\([^)]*(1\.57|pi\s*/\s*2)|\[\[1(\.0)?, 0(\.0)?, 0(\.0)?\], \[0(\.0)?, 0(\.0)?, -1": "the up-axis turn",
}


def test_camera_conventions_are_written_in_one_place():
    """Ring literals, azimuth from a camera centre, the focal length and the Y-up turn live in core/cameras.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    home = root / "amodal3d" / "core" / "cameras.py"
    found = []
    for folder in ("amodal3d", "recon", "metrics", "blender_scenes", "benchmarks"):
        for path in (root / folder).rglob("*.py"):
            if path == home:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                for pattern, what in STRAY_CONVENTIONS.items():
                    if re.search(pattern, code):
                        found.append(f"{path.relative_to(root)}:{number}: {what}: {line.strip()}")
    assert found == []


def test_camera_angles_and_ring_metadata_agree_with_the_cameras():
    ring = C.syncdreamer_ring(40.0)
    for camera, angles in zip(ring, C.ring_angles(40.0)):
        azimuth, elevation, radius = camera.angles()
        assert np.isclose((azimuth - angles["azimuth_deg"] + 180) % 360 - 180, 0, atol=1e-9)
        assert np.isclose(elevation, angles["elevation_deg"]) and np.isclose(radius, C.SYNCDREAMER_RADIUS)
