"""``neus``: multi-view surface fitting in pure torch: a NeuS-style volumetric SDF on a dense voxel grid.

The signed distance and colour live on grids (trilinear lookups with ``grid_sample``), initialised from the visual
hull's signed distance so a CPU run starts close. Rays from the views are rendered with NeuS's unbiased weights
(alpha from the logistic CDF of the SDF, sharpness s learned) and fitted to the views' colours (on white) and
masks; an eikonal term keeps the grid a distance field and a Laplacian term keeps it smooth. The surface is the
zero level set (marching cubes), coloured from the colour grid. CPU default: 64^3 grid, 200 steps of 1024 rays of
64 samples. A bigger fit on a GPU: ``--neus.resolution 256 --neus.steps 2000 --neus.rays 3584 --neus.device cuda``
(SyncDreamer's own NeuS, ``train_renderer.py``, uses 2000 steps of 3584 rays and a hash-grid network, not this
dense grid).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from amodal3d.core.errors import UserError
from amodal3d.core.io import composite_on_white
from amodal3d.core.raycast import pixel_rays
from recon.base import ReconInput, ReconResult, View, register_reconstructor
from recon.visual_hull import carve, colour_vertices
from recon.volume import GRID_BOUND, surface_from_sdf


def signed_distance(occupancy: np.ndarray, voxel: float) -> np.ndarray:
    """Signed distance (negative inside) of a boolean voxel grid, in scene units."""
    outside = ndimage.distance_transform_edt(~occupancy)
    inside = ndimage.distance_transform_edt(occupancy)
    return ((outside - inside) * voxel).astype(np.float32)


def view_rays(views: list[View]):
    """All pixels of all views: origins (N, 3), unit directions (N, 3), colours on white (N, 3), masks (N,)."""
    origins, dirs, colours, masks = [], [], [], []
    for view in views:
        o, d, _ = pixel_rays(view.camera)  # row-major over all pixels, like the reshaped image below
        dirs.append(d / np.linalg.norm(d, axis=1, keepdims=True))
        origins.append(o)
        rgba = view.rgba.reshape(-1, 4)
        colours.append(composite_on_white(rgba))
        masks.append((rgba[:, 3] >= 0.5).astype(np.float32))
    return (np.concatenate(origins), np.concatenate(dirs), np.concatenate(colours), np.concatenate(masks))


class GridSDF:
    """SDF and colour grids over [-bound, bound]^3 (torch tensors, trained)."""

    def __init__(self, sdf: np.ndarray, bound: float, device: str, sharpness: float):
        import torch

        self.bound = bound
        self.sdf = torch.tensor(sdf[None, None], device=device, requires_grad=True)
        self.rgb = torch.zeros((1, 3) + sdf.shape, device=device, requires_grad=True)
        self.log_s = torch.tensor(float(np.log(sharpness)), device=device, requires_grad=True)

    def parameters(self):
        return [self.sdf, self.rgb, self.log_s]

    def lookup(self, grid, points):
        import torch.nn.functional as F

        # grid_sample wants (x, y, z) -> (W, H, D) order; our arrays are indexed [x, y, z]
        coords = (points / self.bound).flip(-1).view(1, -1, 1, 1, 3)
        return F.grid_sample(grid, coords, align_corners=False, padding_mode="border").view(grid.shape[1], -1).T


def render(model: GridSDF, origins, dirs, samples: int, near: float, far: float):
    """NeuS rendering of rays: colour on white (N, 3) and opacity (N,)."""
    import torch

    t = torch.linspace(near, far, samples + 1, device=origins.device)
    t = t[None].expand(len(origins), -1)
    t = t + (torch.rand_like(t) - 0.5) * (far - near) / samples * 0.5  # jitter: no banding on a coarse grid
    points = origins[:, None] + dirs[:, None] * t[..., None]
    sdf = model.lookup(model.sdf, points.reshape(-1, 3)).view(len(origins), samples + 1)
    s = model.log_s.exp()
    cdf = torch.sigmoid(sdf * s)
    alpha = ((cdf[:, :-1] - cdf[:, 1:]) / (cdf[:, :-1] + 1e-5)).clamp(0.0, 1.0)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-7], dim=1), dim=1)[:, :-1]
    weights = alpha * trans
    mid = (points[:, :-1] + points[:, 1:]) / 2
    colour = torch.sigmoid(model.lookup(model.rgb, mid.reshape(-1, 3))).view(len(origins), samples, 3)
    opacity = weights.sum(dim=1)
    rgb = (weights[..., None] * colour).sum(dim=1) + (1.0 - opacity[:, None])  # white background
    return rgb, opacity


def regularisers(model: GridSDF):
    """Eikonal (|grad sdf| = 1) and smoothness (Laplacian) losses on the grid by finite differences."""
    sdf = model.sdf[0, 0]
    h = 2 * model.bound / sdf.shape[0]
    gx = (sdf[2:, 1:-1, 1:-1] - sdf[:-2, 1:-1, 1:-1]) / (2 * h)
    gy = (sdf[1:-1, 2:, 1:-1] - sdf[1:-1, :-2, 1:-1]) / (2 * h)
    gz = (sdf[1:-1, 1:-1, 2:] - sdf[1:-1, 1:-1, :-2]) / (2 * h)
    near_surface = sdf[1:-1, 1:-1, 1:-1].abs() < 4 * h
    norm = (gx**2 + gy**2 + gz**2 + 1e-9).sqrt()
    eikonal = ((norm - 1.0) ** 2)[near_surface].mean() if near_surface.any() else norm.sum() * 0
    lap = (sdf[2:, 1:-1, 1:-1] + sdf[:-2, 1:-1, 1:-1] + sdf[1:-1, 2:, 1:-1] + sdf[1:-1, :-2, 1:-1]
           + sdf[1:-1, 1:-1, 2:] + sdf[1:-1, 1:-1, :-2] - 6 * sdf[1:-1, 1:-1, 1:-1])
    return eikonal, (lap**2).mean()


@dataclass
class NeuSConfig:
    """neus: a NeuS-style SDF fitted to several views by volume rendering (torch; CPU or GPU)."""

    resolution: int = 64
    """SDF grid resolution."""
    steps: int = 200
    """Optimisation steps."""
    rays: int = 1024
    """Rays per step."""
    samples: int = 64
    """Samples per ray."""
    lr: float = 0.05
    device: str | None = None
    """cuda or cpu (default: the best present)."""


@register_reconstructor("neus")
class NeuSReconstructor:
    config_class = NeuSConfig

    def __init__(self, config: NeuSConfig | None = None):
        c = config or NeuSConfig()
        self.resolution, self.steps, self.rays, self.samples = int(c.resolution), int(c.steps), int(c.rays), int(
            c.samples)
        self.lr, self.device = float(c.lr), c.device

    def fit(self, views: list[View], seed: int = 0):
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(seed)
        voxel = 2 * GRID_BOUND / self.resolution
        occupancy = carve(views, self.resolution, tolerance=1)
        radius = float(np.linalg.norm(views[0].camera.center))
        near, far = max(radius - np.sqrt(3) * GRID_BOUND, 0.05), radius + np.sqrt(3) * GRID_BOUND
        # start with a transition about one ray-sample wide, so every ray sees the surface; s sharpens as it learns
        model = GridSDF(signed_distance(occupancy, voxel), GRID_BOUND, device, sharpness=self.samples / (far - near))
        o, d, c, m = (torch.tensor(x, dtype=torch.float32, device=device) for x in view_rays(views))
        optimiser = torch.optim.Adam([{"params": [model.sdf], "lr": self.lr * voxel},  # a fraction of a voxel a step
                                      {"params": [model.rgb, model.log_s], "lr": self.lr}])
        generator = torch.Generator(device="cpu").manual_seed(seed)
        history = []
        for step in range(self.steps):
            pick = torch.randint(0, len(o), (self.rays,), generator=generator).to(device)
            rgb, opacity = render(model, o[pick], d[pick], self.samples, near, far)
            colour_loss = (rgb - c[pick]).abs().mean()
            mask_loss = torch.nn.functional.binary_cross_entropy(opacity.clamp(1e-4, 1 - 1e-4), m[pick])
            eikonal, smooth = regularisers(model)
            loss = colour_loss + 0.5 * mask_loss + 0.1 * eikonal + 10.0 * smooth
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            history.append(float(loss.detach()))
        mesh = surface_from_sdf(model.sdf.detach()[0, 0].cpu().numpy(), GRID_BOUND)
        return mesh, model, history

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        if len(inputs.ring) < 2:
            raise UserError("neus needs multi-view inputs (e.g. --ring with a scene's 16 views, or generated views)")
        start = time.perf_counter()
        mesh, _, history = self.fit(inputs.ring, seed)
        colour_vertices(mesh, inputs.ring)
        return ReconResult(mesh, info={"method": "neus", "resolution": self.resolution, "steps": self.steps,
                                       "loss_first": history[0], "loss_last": history[-1],
                                       "seconds": time.perf_counter() - start})
