"""Camera conventions, in one place.

World frame: right-handed, +Z up (Blender's). Extrinsics are stored as camera-to-world 4x4 matrices in **OpenCV axes**
(+X right, +Y down, camera looks along +Z); :func:`opencv_to_opengl` converts to the OpenGL/Blender/nerfstudio axes
(+X right, +Y up, camera looks along -Z). Depth maps are planar: the camera-space Z of the surface point.

SyncDreamer ring (its ``blender_script.py`` and paper): object normalised to a unit bounding box at the origin, 16
cameras at elevation 30 degrees, azimuths input + 0, 22.5, ..., 337.5 (counter-clockwise seen from +Z), radius 1.5,
lens 35 mm on a 32 mm sensor, i.e. fx = fy = 280 px at 256x256, principal point at the centre. A camera at azimuth a
and elevation e sits at ``radius * (cos e cos a, cos e sin a, sin e)`` and looks at the origin with +Z up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SYNCDREAMER_ELEVATION_DEG = 30.0
SYNCDREAMER_NUM_VIEWS = 16
SYNCDREAMER_RADIUS = 1.5
SYNCDREAMER_RESOLUTION = 256
SYNCDREAMER_FOCAL_PX = 280.0  # at SYNCDREAMER_RESOLUTION; lens 35 mm / sensor 32 mm * 256 px
SENSOR_WIDTH_MM = 32.0

_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. ``K`` (3, 3) in pixels, ``c2w`` (4, 4) camera-to-world in OpenCV axes."""

    K: np.ndarray
    c2w: np.ndarray
    width: int
    height: int

    @property
    def w2c(self) -> np.ndarray:
        return np.linalg.inv(self.c2w)

    @property
    def center(self) -> np.ndarray:
        return self.c2w[:3, 3].copy()

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) (x right, y down, pixel centres at +0.5) and depth (N,)."""
        cam = points @ self.w2c[:3, :3].T + self.w2c[:3, 3]
        z = cam[:, 2]
        uv = cam @ self.K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            return uv[:, :2] / uv[:, 2:3], z

    def backproject(self, depth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Planar depth (H, W) -> world points (N, 3) for pixels with depth > 0 (and ``mask`` if given)."""
        valid = np.isfinite(depth) & (depth > 0)
        if mask is not None:
            valid &= mask.astype(bool)
        v, u = np.nonzero(valid)
        z = depth[v, u].astype(np.float64)
        pix = np.stack([u + 0.5, v + 0.5, np.ones_like(z)], axis=1)
        cam = (pix @ np.linalg.inv(self.K).T) * z[:, None]
        return cam @ self.c2w[:3, :3].T + self.c2w[:3, 3]

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "c2w": self.c2w.tolist(), "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(np.asarray(d["K"], float), np.asarray(d["c2w"], float), int(d["width"]), int(d["height"]))


def intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    """Pinhole K with the principal point at the image centre."""
    return np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0], [0.0, 0.0, 1.0]])


def syncdreamer_intrinsics(resolution: int = SYNCDREAMER_RESOLUTION) -> np.ndarray:
    return intrinsics(SYNCDREAMER_FOCAL_PX * resolution / SYNCDREAMER_RESOLUTION, resolution, resolution)


def spherical_position(azimuth_deg: float, elevation_deg: float, radius: float) -> np.ndarray:
    a, e = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return radius * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def look_at(eye: np.ndarray, target: np.ndarray = np.zeros(3), up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """Camera-to-world (4, 4), OpenCV axes, camera at ``eye`` looking at ``target`` with ``up`` pointing up."""
    forward = np.asarray(target, float) - np.asarray(eye, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight up or down: any right vector will do
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return c2w


def orbit_camera(azimuth_deg: float, elevation_deg: float, radius: float, K: np.ndarray, width: int, height: int) -> Camera:
    return Camera(K, look_at(spherical_position(azimuth_deg, elevation_deg, radius)), width, height)


def syncdreamer_ring(input_azimuth_deg: float = 0.0, resolution: int = SYNCDREAMER_RESOLUTION) -> list[Camera]:
    """The 16 SyncDreamer cameras; view 0 is at the input view's azimuth."""
    K = syncdreamer_intrinsics(resolution)
    step = 360.0 / SYNCDREAMER_NUM_VIEWS
    return [
        orbit_camera(input_azimuth_deg + i * step, SYNCDREAMER_ELEVATION_DEG, SYNCDREAMER_RADIUS, K, resolution, resolution)
        for i in range(SYNCDREAMER_NUM_VIEWS)
    ]


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world in OpenCV axes -> OpenGL/Blender/nerfstudio axes (the conversion is its own inverse)."""
    return np.asarray(c2w, float) @ _CV_TO_GL


opengl_to_opencv = opencv_to_opengl


def focal_to_lens_mm(focal_px: float, width: int, sensor_width_mm: float = SENSOR_WIDTH_MM) -> float:
    """Blender lens (mm) for a focal length in pixels with a horizontal sensor fit."""
    return focal_px * sensor_width_mm / width
