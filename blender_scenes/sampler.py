"""Sampling occluded scenes: viewpoint, occluder placement, lighting. Pure numpy; nothing here touches Blender.

The target sits at the origin in its canonical frame (unit bounding box, +Z up), so the SyncDreamer ring and the GT
mesh share one frame. Occluders are placed in the input camera's frame entirely nearer than the target's nearest
point, so every pixel an occluder covers hides the target; their lateral offset is searched (bisection on a shared
scale) until ray-cast silhouettes (the same pixel-centre rays Blender traces) give an occlusion ratio
1 - |modal| / |amodal| near a ratio drawn from the range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from amodal3d.core.cameras import Camera, orbit_camera, syncdreamer_intrinsics, syncdreamer_ring
from amodal3d.core.raycast import silhouette
from blender_scenes.objects import LoadedObject

HDRI_NAMES = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")


@dataclass
class SceneConfig:
    """How scenes are sampled. Defaults follow pix2gestalt's benchmark (occlusion 0.2-0.8) and SyncDreamer."""

    resolution: int = 256
    """Image width and height in pixels."""
    occlusion: tuple[float, float] = (0.2, 0.8)
    """Accepted range of the target's occlusion ratio 1 - |modal| / |amodal|."""
    elevation: tuple[float, float] = (-10.0, 40.0)
    """Input-view elevation range in degrees (SyncDreamer's input range)."""
    radius: tuple[float, float] = (1.9, 2.4)
    """Input camera distance from the target centre, in target sizes."""
    occluders: tuple[int, int] = (1, 2)
    """Number of occluders per scene (inclusive range)."""
    occluder_scale: tuple[float, float] = (0.5, 0.9)
    """Occluder size relative to the target (both normalised to a unit bounding box first)."""
    gap: float = 0.05
    """Minimum depth gap between an occluder's farthest point and the target's nearest point."""
    ground: bool = False
    """Add a ground plane under the lowest object (objects keep their sampled placement)."""
    background: str = "white"
    """Input image background: 'white' (as the paper's benchmark renders) or 'hdri' (the environment)."""
    hdris: tuple[str, ...] = HDRI_NAMES
    """Blender's bundled world HDRIs to light with."""
    max_attempts: int = 6
    """Re-samplings per scene before the scene is reported as failed."""
    ring_views: bool = True
    """Render the 16 ground-truth ring views (the benchmark needs them; training pairs need only the input view)."""

    def check(self) -> None:
        from amodal3d.core.errors import UserError

        lo, hi = self.occlusion
        if not 0.0 <= lo < hi <= 1.0:
            raise UserError(f"--occlusion must satisfy 0 <= MIN < MAX <= 1, got {lo} {hi}")
        if not 16 <= self.resolution <= 4096:
            raise UserError(f"--resolution must be in 16..4096, got {self.resolution}")
        if not -89 <= self.elevation[0] <= self.elevation[1] <= 89:
            raise UserError(f"--elevation must be within -89..89 and MIN <= MAX, got {self.elevation}")
        if self.ground and self.elevation[0] <= 0:
            raise UserError(f"--ground needs a camera above the ground: elevation MIN > 0, got {self.elevation[0]}")
        if self.background not in ("white", "hdri"):
            raise UserError(f"--background must be 'white' or 'hdri', got '{self.background}'")
        if not 1 <= self.occluders[0] <= self.occluders[1]:
            raise UserError(f"--occluders must satisfy 1 <= MIN <= MAX, got {self.occluders}")
        unknown = set(self.hdris) - set(HDRI_NAMES)
        if unknown:
            raise UserError(f"unknown HDRI {sorted(unknown)}; bundled: {', '.join(HDRI_NAMES)}")


@dataclass
class Placement:
    """One object in the scene: world transform (4, 4) applied to its canonical (normalised) vertices."""

    obj: LoadedObject
    matrix: np.ndarray
    pass_index: int


@dataclass
class Lighting:
    hdri: str
    strength: float
    rotation_deg: float


@dataclass
class SceneSample:
    """Everything needed to render one scene."""

    seed: int
    target: Placement
    occluders: list[Placement]
    input_camera: Camera
    azimuth_deg: float
    elevation_deg: float
    radius: float
    ring: list[Camera]
    lighting: Lighting
    ground_z: float | None
    estimated_occlusion: float
    requested_occlusion: float

    @property
    def placements(self) -> list[Placement]:
        return [self.target, *self.occluders]


def transformed_vertices(placement: Placement) -> np.ndarray:
    v, _ = placement.obj.merged()
    return v @ placement.matrix[:3, :3].T + placement.matrix[:3, 3]


def sample_scene(
    target: LoadedObject, pool: list[LoadedObject], config: SceneConfig, seed: int
) -> SceneSample | None:
    """One scene attempt with occluders from ``pool``; None if the occlusion range cannot be hit with this draw."""
    rng = np.random.default_rng(seed)
    target = target.with_random_materials(rng)
    azimuth = float(rng.uniform(0.0, 360.0))
    elevation = float(rng.uniform(*config.elevation))
    radius = float(rng.uniform(*config.radius))
    K = syncdreamer_intrinsics(config.resolution)
    camera = orbit_camera(azimuth, elevation, radius, K, config.resolution, config.resolution)

    tv, _ = target.merged()
    target_sil = silhouette(camera, target.to_trimesh())
    amodal_area = target_sil.sum()
    if amodal_area == 0:
        return None
    target_near = float(camera.project(tv)[1].min())

    candidates = [o for o in pool if o.name != target.name] or pool
    count = int(rng.integers(config.occluders[0], config.occluders[1] + 1))
    occluders = []
    w2c_rot = camera.w2c[:3, :3]
    for k in range(count):
        obj = candidates[int(rng.integers(len(candidates)))].with_random_materials(rng)
        scale = float(rng.uniform(*config.occluder_scale))
        rot = _rot_z(rng.uniform(0, 2 * np.pi)) @ _small_tilt(rng)
        local = obj.merged()[0] @ (scale * rot).T
        cam_local = local @ w2c_rot.T  # occluder points in camera axes, relative to its origin
        depth = target_near - config.gap - cam_local[:, 2].max() - float(rng.uniform(0, 0.3))
        min_depth = 0.05 - cam_local[:, 2].min()
        depth = max(depth, min_depth)
        if depth + cam_local[:, 2].max() >= target_near - config.gap * 0.5:
            return None  # no room between camera and target for this occluder
        angle = rng.uniform(0, 2 * np.pi) if k == 0 else occluders[0]["angle"] + rng.uniform(np.pi / 3, 5 * np.pi / 3)
        occluders.append(
            {"obj": obj, "linear": scale * rot, "depth": depth, "angle": angle, "spread": rng.uniform(1.0, 1.5),
             "local": local, "mesh": trimesh.Trimesh(local, obj.merged()[1].copy(), process=False)}
        )

    # Lateral reach that surely clears the target: target radius at the occluder's depth plus the occluder's size.
    def placement_matrices(s: float) -> list[np.ndarray]:
        mats = []
        for occ in occluders:
            reach = occ["spread"] * s * (1.0 + np.abs(occ["local"]).max() * 2)
            cam_pos = np.array([np.cos(occ["angle"]) * reach, np.sin(occ["angle"]) * reach, occ["depth"]])
            cam_pos[:2] *= occ["depth"] / radius  # keep the lateral scale comparable to the target's image size
            m = np.eye(4)
            m[:3, :3] = occ["linear"]
            m[:3, 3] = camera.c2w[:3, :3] @ cam_pos + camera.c2w[:3, 3]
            mats.append(m)
        return mats

    def occlusion(s: float) -> float:
        covered = np.zeros_like(target_sil)
        for occ, m in zip(occluders, placement_matrices(s)):
            covered |= silhouette(camera, occ["mesh"], pixels=target_sil & ~covered, offset=m[:3, 3])
        return float((target_sil & covered).sum() / amodal_area)

    lo, hi = config.occlusion
    wanted = float(rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo)))
    s_lo, s_hi = 0.0, 1.0
    if occlusion(s_lo) < lo:
        return None  # occluders too small to reach the range even when centred
    while occlusion(s_hi) > wanted and s_hi < 64:
        s_hi *= 2
    for _ in range(20):  # bisection: occlusion falls as the occluders move out
        mid = (s_lo + s_hi) / 2
        if occlusion(mid) > wanted:
            s_lo = mid
        else:
            s_hi = mid
    s = (s_lo + s_hi) / 2
    estimated = occlusion(s)
    if not lo <= estimated <= hi:
        return None

    placements = [
        Placement(occ["obj"], m, pass_index=i + 2) for i, (occ, m) in enumerate(zip(occluders, placement_matrices(s)))
    ]
    target_placement = Placement(target, np.eye(4), pass_index=1)
    ground_z = None
    if config.ground:
        ground_z = min(float(transformed_vertices(p)[:, 2].min()) for p in [target_placement, *placements])
    lighting = Lighting(
        hdri=str(rng.choice(list(config.hdris))),
        strength=float(rng.uniform(0.7, 1.3)),
        rotation_deg=float(rng.uniform(0, 360)),
    )
    return SceneSample(
        seed=seed,
        target=target_placement,
        occluders=placements,
        input_camera=camera,
        azimuth_deg=azimuth,
        elevation_deg=elevation,
        radius=radius,
        ring=syncdreamer_ring(azimuth, config.resolution),
        lighting=lighting,
        ground_z=ground_z,
        estimated_occlusion=estimated,
        requested_occlusion=wanted,
    )


def _rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _small_tilt(rng: np.random.Generator, max_deg: float = 15.0) -> np.ndarray:
    a = np.deg2rad(rng.uniform(-max_deg, max_deg))
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
