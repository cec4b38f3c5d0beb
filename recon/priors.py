"""``prior``: the CPU default. One whole-object view, a shape prior chosen per object, a mesh an artist can use.

Candidates, each a volume whose silhouette matches the input's:

- ``revolution``: a surface of revolution about the vertical axis, the least cover of discs (cans, bottles, cups,
  vases; a round body seen from above loses its hidden underside);
- ``extrusion``: an upright box fitted to the silhouette, sides and turn (boxes, cartons, boards, books);
- ``mirror``: the inflated silhouette intersected with its own mirror image in a vertical plane (the plane that
  explains the silhouette with the least volume), so the depth seen from the side follows the width seen in front;
- ``inflate``: the silhouette inflated about the plane facing the camera (``recon.inflate``), the fallback.

``auto`` takes the strongest prior the silhouette allows (``choose``); each candidate's fit (silhouette IoU) goes to
recon.json and ``--prior.prior`` forces one. The unseen side's texture is read through the same symmetry (revolved,
mirrored), baked into an xatlas atlas of ``--prior.texture-size`` on a mesh decimated to ``--prior.faces``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from amodal3d.core.cameras import orbit_camera
from amodal3d.core.errors import UserError
from recon.artist_mesh import artist_mesh
from recon.base import ReconInput, ReconResult, register_reconstructor
from recon.inflate import extend_colours, inflated_occupancy
from recon.symmetry import (
    box_group,
    cuboid_mesh,
    fit_cuboid,
    mirror_group,
    moved,
    revolution_occupancy,
    silhouette_iou,
    symmetric_colours,
)
from recon.volume import GRID_BOUND, surface_from_occupancy

PRIORS = ("revolution", "extrusion", "mirror", "inflate")
AUTO_CANDIDATES = ("revolution", "extrusion", "inflate")
SEARCH_RESOLUTION = 64
PLANE_ANGLES = np.radians(np.arange(0.0, 180.0, 7.5))
TYPICAL_ELEVATION = 15.0


@dataclass
class PriorConfig:
    """prior: a shape prior per object (revolution, extrusion, mirror, inflate; chosen automatically), the unseen
    side textured through the symmetry, decimated and UV-unwrapped with a baked atlas (CPU, single view)."""

    prior: Literal["auto", "revolution", "extrusion", "mirror", "inflate"] = "auto"
    """Force one prior instead of the automatic choice."""
    resolution: int = 128
    """Voxel grid resolution over the object's box."""
    faces: int = 10000
    """Face budget of the mesh (quadric decimation); 0 keeps every face."""
    texture_size: int = 1024
    """Side of the baked texture atlas in texels."""
    revolution_fit: float = 0.975
    """Automatic choice: take the surface of revolution when its silhouette IoU is at least this fraction of the
    inflated volume's (which reproduces the silhouette by construction: the ratio cancels the voxels' blur)."""
    box_fit: float = 0.93
    """Automatic choice: take the fitted box when its silhouette IoU with the mask reaches this."""


@dataclass
class Candidate:
    name: str
    occupancy: np.ndarray | None  # a voxel volume, or None when ``mesh`` is exact
    group: list | None  # the symmetry the texture is read through; None: rotations about the vertical axis
    fit: float
    plane_deg: float | None = None
    size: list[float] | None = None
    mesh: object = None

    def surface(self):
        return self.mesh.copy() if self.mesh is not None else surface_from_occupancy(self.occupancy, GRID_BOUND)


def plane_search(mask, camera, make_occupancy) -> tuple[float, np.ndarray, float]:
    """(angle, occupancy, fit) of the mirror plane that explains the silhouette with the least volume, among the
    angles whose fit is within 0.02 of the best (coarse grid)."""
    tried = []
    for phi in PLANE_ANGLES:
        occupancy = make_occupancy(phi, SEARCH_RESOLUTION)
        tried.append((float(phi), occupancy, silhouette_iou(occupancy, mask, camera)))
    best = max(fit for _, _, fit in tried)
    return min((t for t in tried if t[2] >= best - 0.02), key=lambda t: t[1].sum())


def candidates(mask: np.ndarray, camera, resolution: int, which: tuple[str, ...] = PRIORS) -> dict[str, Candidate]:
    out = {}
    if "revolution" in which:
        occupancy = revolution_occupancy(mask, camera, resolution)
        out["revolution"] = Candidate("revolution", occupancy, None, silhouette_iou(occupancy, mask, camera))
    if "extrusion" in which:
        size, yaw, fit = fit_cuboid(mask, camera)
        out["extrusion"] = Candidate("extrusion", None, box_group(yaw), fit, float(np.degrees(yaw)),
                                     [round(float(v), 4) for v in size], cuboid_mesh(size, yaw))
    inflated = {}  # the input view's inflation per resolution, shared by the mirror search and the fallback

    def inflation(res):
        if res not in inflated:
            inflated[res] = inflated_occupancy(mask, camera, res)
        return inflated[res]

    if "mirror" in which:
        def mirrored(phi, res):
            return inflation(res) & inflated_occupancy(mask, moved(camera, mirror_group(phi)[1]), res)
        phi, _, _ = plane_search(mask, camera, mirrored)
        occupancy = mirrored(phi, resolution)
        out["mirror"] = Candidate("mirror", occupancy, mirror_group(phi), silhouette_iou(occupancy, mask, camera),
                                  float(np.degrees(phi)))
    if "inflate" in which:
        occupancy = inflation(resolution)
        out["inflate"] = Candidate("inflate", occupancy, [np.eye(4)], silhouette_iou(occupancy, mask, camera))
    return out


def typical_camera(camera):
    """The input camera raised to a typical photo's elevation, for a view whose elevation nobody gave. Estimating
    it from the silhouette (the elevation whose surface of revolution fits best) was no better on rendered scenes:
    mean error 13.9 degrees against 13.6 for this constant and 19.1 for 0 over 32 scenes."""
    azimuth, _, radius = camera.angles()
    return orbit_camera(azimuth, TYPICAL_ELEVATION, radius, camera.K, camera.width, camera.height)


def choose(found: dict[str, Candidate], config: PriorConfig) -> str:
    """The strongest prior the silhouette allows: revolution, then a box, else inflation (the mirror prior was no
    better than inflation on the objects left after these two: see benchmarks/bench_priors.py)."""
    if found["revolution"].fit >= config.revolution_fit * found["inflate"].fit:
        return "revolution"
    if found["extrusion"].fit >= config.box_fit:
        return "extrusion"
    return "inflate"


@register_reconstructor("prior")
class PriorReconstructor:
    """Shape priors chosen per object (see the module docstring)."""

    config_class = PriorConfig
    forced: str | None = None

    def __init__(self, config: PriorConfig | None = None):
        self.config = config or PriorConfig()
        if self.config.faces < 0 or self.config.texture_size < 16 or self.config.resolution < 16:
            raise UserError(f"prior: faces must be >= 0 (0 keeps all), texture size and resolution >= 16; got "
                            f"{self.config.faces}, {self.config.texture_size}, {self.config.resolution}")

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        start = time.perf_counter()
        config = self.config
        view = inputs.view
        mask, camera = view.mask, view.camera
        elevation = inputs.elevation_deg
        if not inputs.elevation_known:
            camera, elevation = typical_camera(camera), TYPICAL_ELEVATION
        wanted = self.forced or config.prior
        found = candidates(mask, camera, config.resolution, AUTO_CANDIDATES if wanted == "auto" else (wanted,))
        chosen = choose(found, config) if wanted == "auto" else wanted
        candidate = found[chosen]
        try:
            mesh = candidate.surface()
        except ValueError:  # a forced prior this silhouette does not allow at all (e.g. revolution of an L)
            raise UserError(f"the {chosen} prior leaves nothing of this silhouette (fit {candidate.fit:.2f}); use "
                            "--prior.prior auto") from None
        image = extend_colours(view.rgba[..., :3], mask)

        def colour_at(points, normals):
            return symmetric_colours(points, normals, image, camera, candidate.group)

        mesh = artist_mesh(mesh, colour_at, config.faces, config.texture_size)
        info = {"method": "prior", "prior": chosen, "forced": wanted != "auto",
                "fits": {name: round(c.fit, 4) for name, c in found.items()},
                "plane_deg": candidate.plane_deg, "box_size": candidate.size, "elevation_deg": elevation,
                "elevation_assumed": not inputs.elevation_known,
                "resolution": config.resolution, "faces": len(mesh.faces), "texture_size": config.texture_size,
                "seconds": time.perf_counter() - start}
        return ReconResult(mesh, info=info)


def _forced(name: str):
    @register_reconstructor(name)
    class Forced(PriorReconstructor):
        forced = name
        options_of = "prior"  # the --prior.* flags (its choice of prior aside) apply

    Forced.__name__ = Forced.__qualname__ = f"{name.capitalize()}PriorReconstructor"
    Forced.__doc__ = (f"The {name} prior alone (``prior`` with ``--prior.prior {name}``; the other --prior.* options "
                      "apply): a bench row per prior.")
    return Forced


RevolutionPriorReconstructor = _forced("revolution")
ExtrusionPriorReconstructor = _forced("extrusion")
MirrorPriorReconstructor = _forced("mirror")
