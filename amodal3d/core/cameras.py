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
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation turning a Y-up file (glTF, most OBJ exporters) into our +Z-up world: (x, y, z) -> (x, -z, y)."""


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

    def project(self, points: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) (x right, y down, pixel centres at +0.5) and depth (N,).
        ``dtype`` float32 is about twice as fast on millions of points (a grid of voxel centres)."""
        w2c, K = self.w2c.astype(dtype), self.K.astype(dtype)
        cam = np.asarray(points, dtype) @ w2c[:3, :3].T + w2c[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):  # K is upper triangular with K[2] = (0, 0, 1)
            u = (K[0, 0] * cam[:, 0] + K[0, 1] * cam[:, 1]) / z + K[0, 2]
            v = K[1, 1] * cam[:, 1] / z + K[1, 2]
        return np.stack([u, v], axis=1), z

    def angles(self) -> tuple[float, float, float]:
        """(azimuth deg, elevation deg, radius) of the camera's position around the origin (see the module doc)."""
        x, y, z = self.center
        radius = float(np.linalg.norm(self.center))
        return float(np.degrees(np.arctan2(y, x))), float(np.degrees(np.arcsin(z / radius))), radius

    def backproject(self, depth: np.ndarray, mask: np.ndarray | None = None, offset: float = 0.5) -> np.ndarray:
        """Planar depth (H, W) -> world points (N, 3) for pixels with depth > 0 (and ``mask`` if given). Pixel
        (u, v) sits at (u + offset, v + offset): its centre; SyncDreamer's evaluation script uses 0, its corner."""
        valid = np.isfinite(depth) & (depth > 0)
        if mask is not None:
            valid &= mask.astype(bool)
        v, u = np.nonzero(valid)
        z = depth[v, u].astype(np.float64)
        pix = np.stack([u + offset, v + offset, np.ones_like(z)], axis=1)
        cam = (pix @ np.linalg.inv(self.K).T) * z[:, None]
        return cam @ self.c2w[:3, :3].T + self.c2w[:3, 3]

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "c2w": self.c2w.tolist(), "width": self.width, "height": self.height}

    @classmethod
    def from_w2c(cls, K, w2c, width: int, height: int) -> Camera:
        """From a world-to-camera pose, (3, 4) or (4, 4), OpenCV axes (BOP's and SyncDreamer's files)."""
        pose = np.eye(4)
        pose[:3] = np.asarray(w2c, np.float64)[:3]
        return cls(np.asarray(K, np.float64), np.linalg.inv(pose), int(width), int(height))

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
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


def ring_angles(input_azimuth_deg: float = 0.0) -> list[dict]:
    """Azimuth (in [0, 360)) and elevation of the 16 SyncDreamer views; view 0 at the input's azimuth."""
    step = 360.0 / SYNCDREAMER_NUM_VIEWS
    return [{"elevation_deg": SYNCDREAMER_ELEVATION_DEG, "azimuth_deg": (input_azimuth_deg + i * step) % 360.0}
            for i in range(SYNCDREAMER_NUM_VIEWS)]


def syncdreamer_ring(input_azimuth_deg: float = 0.0, resolution: int = SYNCDREAMER_RESOLUTION) -> list[Camera]:
    """The 16 SyncDreamer cameras; view 0 is at the input view's azimuth."""
    K = syncdreamer_intrinsics(resolution)
    step = 360.0 / SYNCDREAMER_NUM_VIEWS
    return [orbit_camera(input_azimuth_deg + i * step, SYNCDREAMER_ELEVATION_DEG, SYNCDREAMER_RADIUS, K, resolution,
                         resolution) for i in range(SYNCDREAMER_NUM_VIEWS)]


def opencv_to_opengl(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world in OpenCV axes -> OpenGL/Blender/nerfstudio axes (the conversion is its own inverse)."""
    return np.asarray(c2w, float) @ _CV_TO_GL


opengl_to_opencv = opencv_to_opengl


def focal_to_lens_mm(focal_px: float, width: int, sensor_width_mm: float = SENSOR_WIDTH_MM) -> float:
    """Blender lens (mm) for a focal length in pixels with a horizontal sensor fit."""
    return focal_px * sensor_width_mm / width


# ---------------------------------------------------------------------------------------------------- input framing

SYNCDREAMER_CROP = 200  # longest side of the object on the 256 canvas (SyncDreamer also uses 180 and 150)
ZERO123_DISTANCE = 3.8  # threestudio's Zero-1-to-3 defaults: camera distance, vertical FOV, input elevation
ZERO123_FOVY_DEG = 20.0
ZERO123_ELEVATION_DEG = 5.0


def syncdreamer_input(rgba: np.ndarray, crop: int = SYNCDREAMER_CROP, size: int = SYNCDREAMER_RESOLUTION) -> np.ndarray:
    """SyncDreamer's input framing, as its ``ldm.util.prepare_inputs`` does it (tested against it): the box of the
    non-zero alpha (its right and bottom edge excluded, as PIL's crop there), the longest side scaled to ``crop``
    (sizes truncated, PIL bicubic), pasted centred on a ``size`` canvas, composited on white.
    ``rgba`` (H, W, 4) float in [0, 1] or uint8 -> (size, size, 4) float32 (alpha kept)."""
    from PIL import Image

    from amodal3d.core.io import composite_on_white, to_uint8

    image = Image.fromarray(to_uint8(np.asarray(rgba)), "RGBA")
    rows, cols = np.nonzero(np.asarray(image)[..., 3])
    if len(rows) == 0:
        raise ValueError("the image's alpha is empty: nothing to reconstruct")
    patch = image.crop((cols.min(), rows.min(), cols.max(), rows.max()))
    scale = crop / max(patch.height, patch.width)
    patch = patch.resize((int(scale * patch.width), int(scale * patch.height)), resample=Image.BICUBIC)
    canvas = Image.new("RGBA", (size, size), 0)
    canvas.paste(patch, ((size - patch.width) // 2, (size - patch.height) // 2))
    out = np.asarray(canvas).astype(np.float32) / 255.0
    out[..., :3] = composite_on_white(out)
    return out


def syncdreamer_input_camera(elevation_deg: float, resolution: int = SYNCDREAMER_RESOLUTION) -> Camera:
    """The camera under which a SyncDreamer-framed input shows a unit-box object at the origin (azimuth 0)."""
    return orbit_camera(0.0, elevation_deg, SYNCDREAMER_RADIUS, syncdreamer_intrinsics(resolution), resolution,
                        resolution)


def zero123_camera(elevation_deg: float = ZERO123_ELEVATION_DEG, azimuth_deg: float = 0.0,
                   resolution: int = 256) -> Camera:
    """threestudio's Zero-1-to-3 input camera: distance 3.8, vertical FOV 20 degrees."""
    focal = resolution / 2.0 / np.tan(np.deg2rad(ZERO123_FOVY_DEG) / 2.0)
    return orbit_camera(azimuth_deg, elevation_deg, ZERO123_DISTANCE, intrinsics(focal, resolution, resolution),
                        resolution, resolution)
