"""Random procedural objects for training data (domain randomisation): superellipsoids, bumpy blobs, convex prisms,
lathed profiles and small compounds of boxes, cylinders and spheres, most wearing a crop of a photo as texture.

The families are taken in turn. A textured object is written as ``NAME/NAME.obj`` with its material and texture
beside it, an untextured one as ``NAME.ply`` (scenes give it a random material), so
``amodal3d render-scenes --objects OUT/*/*.obj OUT/*.ply`` renders the set. The same seed and photos give the same
objects. None of the families is one of the primitives of ``benchmarks/bench_gestalt_tiny.py``'s held-out scenes
(torus, capsule, cone, box) taken as is, nor a bundled object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from amodal3d.core.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".png")
TEXTURE_SIZE = 256


def _signed_power(a: np.ndarray, p: float) -> np.ndarray:
    return np.sign(a) * np.abs(a) ** p


def superellipsoid(rng: np.random.Generator) -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(4)
    x, y, z = sphere.vertices.T
    side, height = rng.uniform(0.3, 1.8, 2)  # exponents: below 1 boxy, 1 round, above 1 pinched
    vertices = np.stack([_signed_power(x, height), _signed_power(y, height), _signed_power(z, side)], 1)
    return trimesh.Trimesh(vertices * rng.uniform(0.4, 1.0, 3), sphere.faces)


def blob(rng: np.random.Generator) -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(4)
    radius = np.ones(len(sphere.vertices))
    for _ in range(int(rng.integers(2, 6))):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        bump = rng.uniform(-0.35, 0.45)
        radius += bump * np.exp(-(1 - sphere.vertices @ direction) / rng.uniform(0.1, 0.6))
    return trimesh.Trimesh(sphere.vertices * radius[:, None] * rng.uniform(0.5, 1.0, 3), sphere.faces)


def prism(rng: np.random.Generator) -> trimesh.Trimesh:
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    outline = np.stack([np.cos(angles), np.sin(angles)], 1) * rng.uniform(0.4, 1.0, n)[:, None]
    height = rng.uniform(0.2, 1.5)
    return trimesh.convex.convex_hull(np.r_[np.c_[outline, np.zeros(n)], np.c_[outline, np.full(n, height)]])


def lathe(rng: np.random.Generator) -> trimesh.Trimesh:
    knots = int(rng.integers(3, 7))
    heights = np.sort(rng.uniform(0, 1, knots))
    heights[0], heights[-1] = 0.0, 1.0
    radii = rng.uniform(0.1, 0.6, knots)
    z = np.linspace(0, 1, 24)
    profile = np.stack([np.r_[0, np.interp(z, heights, radii), 0], np.r_[0, z, 1] * rng.uniform(0.8, 2.0)], 1)
    return trimesh.creation.revolve(profile, sections=48)


def compound(rng: np.random.Generator) -> trimesh.Trimesh:
    parts = []
    for _ in range(int(rng.integers(2, 4))):
        kind = int(rng.integers(3))
        if kind == 0:
            part = trimesh.creation.box(rng.uniform(0.2, 1.0, 3))
        elif kind == 1:
            part = trimesh.creation.cylinder(rng.uniform(0.1, 0.4), rng.uniform(0.3, 1.2), sections=32)
        else:
            part = trimesh.creation.icosphere(3, rng.uniform(0.2, 0.5))
        pose = trimesh.transformations.random_rotation_matrix(rng.uniform(size=3))
        pose[:3, 3] = rng.uniform(-0.35, 0.35, 3)
        part.apply_transform(pose)
        parts.append(part)
    return trimesh.util.concatenate(parts)


FAMILIES = (superellipsoid, blob, prism, lathe, compound)
TUMBLED = (blob, compound)  # no natural up: turned at random


def uv_projection(vertices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) texture coordinates: a spherical projection about the centre, or a planar one along random axes."""
    around_mean = vertices - vertices.mean(0)
    if rng.random() < 0.5:
        u = np.arctan2(around_mean[:, 1], around_mean[:, 0]) / (2 * np.pi) + 0.5
        cosine = around_mean[:, 2] / (np.linalg.norm(around_mean, axis=1) + 1e-9)
        return np.stack([u, np.arccos(np.clip(cosine, -1, 1)) / np.pi], 1)
    flat = around_mean @ np.linalg.qr(rng.normal(size=(3, 3)))[0][:, :2]
    return np.stack([(c - c.min()) / (np.ptp(c) + 1e-9) for c in flat.T], 1)


def texture_image(photos: list[Path], rng: np.random.Generator) -> np.ndarray:
    """(TEXTURE_SIZE, TEXTURE_SIZE, 3) uint8: a square crop of a random photo (85% of the time, when there are
    photos) or stripes / checks in two random colours."""
    from PIL import Image

    if rng.random() < 0.85 and photos:
        with Image.open(photos[int(rng.integers(len(photos)))]) as opened:
            photo = opened.convert("RGB")
        side = int(min(photo.size) * rng.uniform(0.3, 1.0))
        x0, y0 = rng.integers(0, photo.size[0] - side + 1), rng.integers(0, photo.size[1] - side + 1)
        crop = photo.crop((int(x0), int(y0), int(x0) + side, int(y0) + side))
        return np.asarray(crop.resize((TEXTURE_SIZE, TEXTURE_SIZE)))
    period = TEXTURE_SIZE // int(rng.integers(2, 10))
    first, second = rng.integers(0, 256, (2, 3))
    rows, cols = np.mgrid[:TEXTURE_SIZE, :TEXTURE_SIZE] // period
    pattern = cols % 2 if rng.random() < 0.5 else (rows + cols) % 2
    return np.where(pattern[..., None] == 1, first, second).astype(np.uint8)


def texture_photos(folder: Path | None) -> list[Path]:
    """The .jpg / .png photos in ``folder`` (or its ``images/``, as a photo set has them), sorted; [] for None."""
    if folder is None:
        return []
    folder = Path(folder).expanduser()
    for candidate in (folder, folder / "images"):
        photos = sorted(p for p in candidate.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) \
            if candidate.is_dir() else []
        if photos:
            return photos
    raise UserError(f"--textures {folder}: no .jpg or .png photo there (or in its images/)")


def random_shape(index: int, rng: np.random.Generator, photos: list[Path], textured_fraction: float
                 ) -> tuple[str, trimesh.Trimesh, bool]:
    """The ``index``-th object: its name, mesh (with a texture when textured) and whether it is textured."""
    family = FAMILIES[index % len(FAMILIES)]
    mesh = family(rng)
    if family in TUMBLED:
        mesh.apply_transform(trimesh.transformations.random_rotation_matrix(rng.uniform(size=3)))
    name = f"{family.__name__}_{index:03d}"
    if rng.random() >= textured_fraction:
        return name, mesh, False
    from PIL import Image

    mesh = mesh.copy()
    mesh.merge_vertices()
    uv = uv_projection(mesh.vertices, rng)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texture_image(photos, rng)))
    return name, mesh, True


def write_shapes(out: Path, num: int, seed: int = 0, textures: Path | None = None, textured_fraction: float = 0.8,
                 overwrite: bool = False) -> list[Path]:
    """Write ``num`` random objects into ``out`` (new, empty, or an earlier set with ``overwrite``) atomically;
    returns their mesh files. Without ``textures`` the textured ones get stripes or checks."""
    from amodal3d.core.outputs import atomic_dir, check_output

    if num < 1:
        raise UserError(f"--num {num}: give at least 1 object")
    if not 0 <= textured_fraction <= 1:
        raise UserError(f"--textured-fraction {textured_fraction}: give a share in [0, 1]")
    photos = texture_photos(textures)
    out = check_output(Path(out), "make-shapes", [textures], overwrite)
    rng = np.random.default_rng(seed)
    written = []
    with atomic_dir(out, kind="make-shapes", replace=overwrite) as tmp:
        for index in range(num):
            name, mesh, textured = random_shape(index, rng, photos, textured_fraction)
            if textured:
                (tmp / name).mkdir()
                mesh.export(tmp / name / f"{name}.obj")
                written.append(Path(name) / f"{name}.obj")
            else:
                mesh.export(tmp / f"{name}.ply")
                written.append(Path(f"{name}.ply"))
    return [out / path for path in written]
