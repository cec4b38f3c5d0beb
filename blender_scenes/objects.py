"""Object assets: the bundled pack, any mesh file trimesh reads, Google Scanned Objects folders.

Every object is loaded into one canonical frame: +Z up, centred on its bounding box, largest bounding-box extent 1
(SyncDreamer's normalisation). Plain data comes out (:class:`LoadedObject`); nothing here touches Blender.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import Y_UP_TO_Z_UP
from amodal3d.core.errors import UserError

ASSET_ROOT = Path(__file__).parent / "assets"
MESH_SUFFIXES = (".obj", ".ply", ".off", ".glb", ".gltf", ".stl")


@dataclass(frozen=True)
class ObjectAsset:
    """Where an object comes from. ``up`` is the axis the file treats as up ("y" or "z")."""

    name: str
    category: str
    path: Path
    up: str = "z"
    texture: Path | None = None
    source: str = "file"  # "bundled" | "file" | "gso"


@dataclass
class Material:
    """Base colour (sRGB RGBA in [0, 1]) and optional texture (H, W, 4) uint8 sRGB, row 0 = top of the image.

    ``placeholder`` marks parts with no real appearance (no texture, plain grey): scenes give them a random material.
    """

    base_color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)
    texture: np.ndarray | None = None
    roughness: float = 0.5
    metallic: float = 0.0
    placeholder: bool = False


@dataclass
class MeshPart:
    """Triangles of one material. ``vertices`` (n, 3) float64, ``faces`` (m, 3) int64, ``uv`` (n, 2) or None."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    material: Material


@dataclass
class LoadedObject:
    asset: ObjectAsset
    parts: list[MeshPart]
    normalisation: dict = field(default_factory=dict)  # {"scale": s, "offset": (3,)}: canonical = s * up_rotated + offset

    @property
    def name(self) -> str:
        return self.asset.name

    @property
    def category(self) -> str:
        return self.asset.category

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """All parts as one (vertices (n, 3), faces (m, 3)) pair (computed once; treat as read-only)."""
        return self._merged

    @functools.cached_property
    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        verts, faces, base = [], [], 0
        for part in self.parts:
            verts.append(part.vertices)
            faces.append(part.faces + base)
            base += len(part.vertices)
        return np.concatenate(verts), np.concatenate(faces)

    def to_trimesh(self):
        import trimesh

        v, f = self.merged()
        return trimesh.Trimesh(v.copy(), f.copy(), process=False)  # trimesh may edit its arrays in place

    def with_random_materials(self, rng: np.random.Generator) -> LoadedObject:
        """A copy whose placeholder parts get a plausible random material (one per object)."""
        if not any(p.material.placeholder for p in self.parts):
            return self
        material = random_material(rng)
        parts = [replace(p, material=material) if p.material.placeholder else p for p in self.parts]
        return replace(self, parts=parts)


def random_material(rng: np.random.Generator) -> Material:
    """A plausible everyday-object material: a saturated or neutral colour, plastic-like or metallic."""
    hue, sat, val = rng.uniform(0, 1), rng.choice([rng.uniform(0.0, 0.15), rng.uniform(0.4, 0.9)]), rng.uniform(0.3, 0.95)
    rgb = _hsv_to_rgb(hue, sat, val)
    metallic = float(rng.uniform(0.6, 1.0)) if rng.uniform() < 0.15 else 0.0
    return Material(base_color=(*rgb, 1.0), roughness=float(rng.uniform(0.2, 0.8)), metallic=metallic)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


# ---------------------------------------------------------------------------------------------------- resolving specs


@functools.lru_cache(maxsize=1)
def bundled_catalog() -> dict[str, ObjectAsset]:
    data = json.loads((ASSET_ROOT / "catalog.json").read_text())
    return {
        name: ObjectAsset(
            name=name,
            category=entry["category"],
            path=ASSET_ROOT / entry["file"],
            up=entry.get("up", "z"),
            texture=ASSET_ROOT / entry["texture"] if "texture" in entry else None,
            source="bundled",
        )
        for name, entry in data["objects"].items()
    }


def bundled_names() -> list[str]:
    return sorted(bundled_catalog())


def resolve_objects(specs: list[str] | tuple[str, ...]) -> list[ObjectAsset]:
    """Turn user specs into assets. A spec is a bundled name, ``all`` (every bundled object), a mesh file, a Google
    Scanned Objects folder (``meshes/model.obj``) or a folder holding many of them."""
    assets: list[ObjectAsset] = []
    for spec in specs:
        assets.extend(_resolve_one(str(spec)))
    if not assets:
        raise UserError("no objects given: name bundled objects (" + ", ".join(bundled_names()) + ") or mesh paths")
    return assets


def _resolve_one(spec: str) -> list[ObjectAsset]:
    catalog = bundled_catalog()
    if spec == "all":
        return [catalog[n] for n in bundled_names()]
    if spec in catalog:
        return [catalog[spec]]
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".json":
        return pinned_objects(path)
    if path.is_file():
        if path.suffix.lower() not in MESH_SUFFIXES:
            raise UserError(f"{path}: not a mesh file (expected one of {', '.join(MESH_SUFFIXES)})")
        return [ObjectAsset(name=path.stem, category=_humanise(path.stem), path=path)]
    if path.is_dir():
        if (path / "meshes" / "model.obj").is_file():
            return [gso_asset(path)]
        found = sorted(p.parent.parent for p in path.glob("*/meshes/model.obj"))
        if found:
            return [gso_asset(p) for p in found]
        raise UserError(f"{path}: folder is neither a Google Scanned Objects object (meshes/model.obj) nor a root of them")
    raise UserError(f"unknown object '{spec}': not a bundled name ({', '.join(bundled_names())}), mesh file or folder")


PIN_VERSION = 1


def pin_objects(assets: list[ObjectAsset], root: Path | None = None, relative_to: Path | None = None) -> dict:
    """A pinned object list: each object's id (a bundled name or its path under ``root``) and the SHA-256 of its
    mesh file, so two machines render (and score) the same objects. ``relative_to``: the list's own folder, so the
    root is stored relative to it (the list then travels with the objects)."""
    import os

    from amodal3d.core.download import sha256_of

    entries = []
    root = None if root is None else Path(root).resolve()
    for asset in assets:
        if asset.source == "bundled":
            entries.append({"id": asset.name, "sha256": sha256_of(asset.path)})
            continue
        ident = (asset.path.parent.parent if asset.source == "gso" else asset.path).resolve()
        if root is not None and not ident.is_relative_to(root):
            raise UserError(f"{ident} is not under --root {root}")
        entries.append({"id": ident.name if root is None else str(ident.relative_to(root)),
                        "sha256": sha256_of(asset.path)})
    stored = None if root is None else (os.path.relpath(root, Path(relative_to).resolve()) if relative_to else str(root))
    return {"version": PIN_VERSION, "root": stored, "objects": entries}


def pinned_objects(path: Path) -> list[ObjectAsset]:
    """The assets of a pinned object list (see :func:`pin_objects`): bundled names, else paths under its "root"
    (relative roots are relative to the list's folder); a missing object or a different file is one line."""
    from amodal3d.core.download import sha256_of

    try:
        data = json.loads(Path(path).read_text())
        entries = data["objects"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a pinned object list ({exc})") from None
    root = Path(data.get("root") or ".")
    root = root if root.is_absolute() else Path(path).parent / root
    catalog, assets = bundled_catalog(), []
    for entry in entries:
        ident = str(entry["id"])
        if ident in catalog:
            asset = catalog[ident]
        else:
            found = _resolve_one(str(root / ident)) if (root / ident).exists() else []
            if len(found) != 1:
                raise UserError(f"{path}: object '{ident}' is not under {root} (set the list's \"root\")")
            (asset,) = found
        if entry.get("sha256") and sha256_of(asset.path) != entry["sha256"]:
            raise UserError(f"{path}: object '{ident}' differs from the pinned one ({asset.path}: another SHA-256)")
        assets.append(asset)
    return assets


def gso_asset(folder: Path) -> ObjectAsset:
    """A Google Scanned Objects folder: meshes/model.obj, materials/textures/texture.png, metadata.pbtxt (Z up)."""
    texture = folder / "materials" / "textures" / "texture.png"
    category = _humanise(folder.name)
    meta = folder / "metadata.pbtxt"
    if meta.is_file():
        match = re.search(r'categories\s*\{\s*first:\s*"([^"]+)"', meta.read_text(errors="replace"))
        if match:
            category = match.group(1).strip().lower()
    return ObjectAsset(
        name=folder.name,
        category=category,
        path=folder / "meshes" / "model.obj",
        up="z",
        texture=texture if texture.is_file() else None,
        source="gso",
    )


def _humanise(stem: str) -> str:
    return re.sub(r"[_\-]+", " ", stem).strip().lower() or "object"


# ---------------------------------------------------------------------------------------------------- loading


def load_object(asset: ObjectAsset | str) -> LoadedObject:
    """Load and normalise an object (cached per asset). Raises :class:`UserError` for unreadable or empty meshes."""
    if isinstance(asset, str):
        (asset,) = resolve_objects([asset])
    return _load_cached(asset)


@functools.lru_cache(maxsize=64)
def _load_cached(asset: ObjectAsset) -> LoadedObject:
    parts = _read_parts(asset)
    rotation = Y_UP_TO_Z_UP if asset.up == "y" else np.eye(3)
    for part in parts:
        part.vertices = part.vertices @ rotation.T
    allv = np.concatenate([p.vertices for p in parts])
    lo, hi = allv.min(0), allv.max(0)
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 0:
        raise UserError(f"{asset.path}: mesh is degenerate (zero or non-finite size)")
    scale = 1.0 / extent
    offset = -(lo + hi) / 2 * scale
    for part in parts:
        part.vertices = part.vertices * scale + offset
    return LoadedObject(asset, parts, {"scale": scale, "offset": offset.tolist(), "up": asset.up})


def _read_parts(asset: ObjectAsset) -> list[MeshPart]:
    import trimesh

    if not asset.path.is_file():
        raise UserError(f"{asset.path}: mesh file not found")
    try:
        scene = trimesh.load(str(asset.path), force="scene")
    except Exception as exc:  # trimesh raises many types for broken files
        raise UserError(f"{asset.path}: cannot read mesh ({type(exc).__name__}: {exc})") from None
    override = _read_texture(asset.texture) if asset.texture is not None else None
    parts = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        mesh = scene.geometry[geom_name]
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        vertices = trimesh.transform_points(np.asarray(mesh.vertices, float), transform)
        faces = np.asarray(mesh.faces, np.int64)
        uv = getattr(mesh.visual, "uv", None)
        uv = np.asarray(uv, float) if uv is not None and len(uv) == len(vertices) else None
        material = _material_of(mesh, override if uv is not None else None)
        if material.texture is None:
            uv = None
        parts.append(MeshPart(vertices, faces, uv, material))
    if not parts:
        raise UserError(f"{asset.path}: no triangles in mesh")
    return parts


def _material_of(mesh, override_texture: np.ndarray | None) -> Material:
    mat = getattr(mesh.visual, "material", None)
    if mat is None:
        return Material(placeholder=override_texture is None, texture=override_texture)
    pbr = mat.to_pbr() if hasattr(mat, "to_pbr") else mat
    factor = pbr.baseColorFactor
    color = (0.8, 0.8, 0.8, 1.0) if factor is None else tuple(float(c) / 255.0 for c in np.asarray(factor)[:4])
    texture = override_texture
    if texture is None and pbr.baseColorTexture is not None and min(pbr.baseColorTexture.size) > 2:
        texture = np.asarray(pbr.baseColorTexture.convert("RGBA"))  # trimesh uses a 2x2 image as a stand-in
    rgb = np.asarray(color[:3])
    plain_grey = texture is None and (rgb.max() - rgb.min()) <= 0.05 * max(rgb.max(), 1e-6)
    return Material(
        base_color=(1.0, 1.0, 1.0, 1.0) if texture is not None else color,
        texture=texture,
        roughness=float(pbr.roughnessFactor) if pbr.roughnessFactor is not None else 0.5,
        metallic=float(pbr.metallicFactor) if pbr.metallicFactor is not None else 0.0,
        placeholder=bool(plain_grey),
    )


def _read_texture(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGBA"))
    except Exception as exc:
        raise UserError(f"{path}: cannot read texture ({exc})") from None
