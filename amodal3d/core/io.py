"""Small I/O helpers shared by every stage: reading user images, masks and meshes safely; atomic PNG, JSON and text
writing (output folders are :mod:`amodal3d.core.outputs`)."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError


def _temporary(path: Path) -> Path:
    """A sibling name no other process or run uses (``.tmp-<name>-<pid>-<hex><suffix>``)."""
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def replacing(path: Path):
    """Yield a temporary sibling of ``path``; on success it is renamed onto ``path`` (readers never see half a
    file), else removed."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary sibling, then rename)."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (rounded, in the image's own float precision); uint8 passes through."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    return np.clip(np.rint(image * image.dtype.type(255)), 0, 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    """(H, W), (H, W, 3) or (H, W, 4) image, float in [0, 1] or uint8; bool masks become 0/255."""
    from PIL import Image

    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype.kind == "f":
        image = image.astype(np.float64)  # files round in double precision, whatever the array's
    Image.fromarray(to_uint8(image)).save(path)


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """:func:`write_png` to a temporary sibling, then rename: readers never see a half-written file."""
    with replacing(path) as tmp:
        write_png(tmp, image)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary sibling, then rename)."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv(path: Path, rows: list[list]) -> None:
    """Rows (the header first) as a CSV file, written atomically; None is an empty cell, quoting as needed."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["" if v is None else v for v in row] for row in rows])
    write_text(path, buffer.getvalue())


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(..., 4) RGBA in [0, 1] -> (..., 3) RGB over white (straight alpha): rgb * a + 1 - a."""
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3): a grey image repeated, RGBA composited on white, RGB as is."""
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return composite_on_white(image) if image.shape[2] == 4 else image


MAX_PIXELS = 250_000_000
"""Largest image we decode (250 MP: a 200 MP phone photo fits); bigger files are refused as decompression bombs."""
MAX_SIDE = 1024
"""Default working resolution: photos whose longer side is larger are downscaled while they are decoded."""
MIN_IMAGE_SIDE = 8
"""Smallest image side any stage accepts."""

_PIL_LIMIT = threading.Lock()
_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees


@dataclass
class LoadedImage:
    """A user's image at working resolution. ``pixels`` (H, W, 3) float32 in [0, 1] (alpha composited on white),
    ``alpha`` (H, W) float32 or None, ``original_size`` (W, H) of the file as displayed (EXIF orientation applied),
    ``scale`` working / original (1.0 when not downscaled)."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    original_size: tuple[int, int]
    scale: float

    @property
    def rgba(self) -> np.ndarray:
        alpha = np.ones(self.pixels.shape[:2], np.float32) if self.alpha is None else self.alpha
        return np.dstack([self.pixels, alpha])


def working_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(W, H) scaled so the longer side is at most ``max_side`` (unchanged when it already is, or max_side None)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


@contextlib.contextmanager
def _opened(path: Path, what: str, max_pixels: int = MAX_PIXELS):
    """A PIL image opened lazily (nothing decoded yet); UserError when missing, unreadable or too large."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    with _PIL_LIMIT:  # our own limit replaces Pillow's warning / error while the header is read
        before, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read {what} ({_first(exc)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = before
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise UserError(f"{path}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the {max_pixels / 1e6:.0f} "
                            "allowed (a decompression bomb, or downscale it first)")
        if w < 1 or h < 1:
            raise UserError(f"{path}: the {what} is empty ({w}x{h})")
        try:
            yield img
        except (OSError, ValueError, SyntaxError) as exc:  # a truncated or corrupt file fails while decoding
            raise UserError(f"{path}: cannot read {what} ({_first(exc)})") from None


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _decoded(img, max_side: int | None):
    """The image decoded at (about) working resolution, EXIF orientation applied: JPEGs decode at a reduced DCT
    scale, everything else is reduced right after decoding. Returns (PIL image, displayed (W, H))."""
    from PIL import Image, ImageOps

    orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    w, h = img.size
    shown = (h, w) if orientation in _SWAPS_SIDES else (w, h)
    target = working_size(w, h, max_side)
    if target != (w, h) and img.format == "JPEG":
        img.draft(img.mode, target)  # decode at 1/2, 1/4 or 1/8 scale: a 48 MP JPEG never exists in full
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about unusual PNG / TIFF metadata; the pixels are fine
        img.load()
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode not in ("I", "F", "L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA")  # palette, 1-bit, CMYK, ...: resample colours, not indices
    if target != img.size:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    return img, shown


def _to_rgba(img) -> np.ndarray:
    """Any Pillow mode -> (H, W, 4) float32 in [0, 1]; 16-bit and 32-bit integer images keep their range."""
    if img.mode in ("I", "F"):
        grey = np.asarray(img, np.float32)
        brightest = grey.max(initial=0)
        top = 1.0 if img.mode == "F" and brightest <= 1.0 else 255.0 if brightest <= 255 else 65535.0
        grey = np.clip(grey / top, 0.0, 1.0)
        return np.dstack([grey, grey, grey, np.ones_like(grey)])
    return np.asarray(img.convert("RGBA"), np.float32) / 255.0


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of a photo as shown (EXIF orientation applied), read from its header only."""
    with _opened(Path(path), "image") as img:
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def load_image(path: Path, max_side: int | None = None, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read a user's photo: EXIF orientation applied, 16-bit / palette / grey / CMYK converted, downscaled while
    decoding so its longer side is at most ``max_side`` (None keeps it). UserError (one line) for a missing,
    unreadable, oversized or fully transparent image."""
    path = Path(path)
    with _opened(path, "image", max_pixels) as img:
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        decoded, shown = _decoded(img, max_side)
        rgba = _to_rgba(decoded)
    alpha = rgba[..., 3] if has_alpha else None
    if alpha is not None and not (alpha > 0).any():
        raise UserError(f"{path}: the image is fully transparent (alpha 0 everywhere): nothing to see")
    pixels = composite_on_white(rgba) if alpha is not None else rgba[..., :3]
    scale = decoded.size[0] / shown[0]
    return LoadedImage(np.ascontiguousarray(pixels, np.float32), alpha, shown, scale)


def read_image(path: Path, max_side: int | None = None) -> np.ndarray:
    """An image file -> (H, W, 3) float32 in [0, 1] (alpha composited on white). See :func:`load_image`."""
    return load_image(path, max_side).pixels


def read_image_rgba(path: Path, max_side: int | None = None) -> np.ndarray:
    """An image file -> (H, W, 4) float32 in [0, 1]; images without alpha are opaque. See :func:`load_image`."""
    return load_image(path, max_side).rgba


def read_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask image -> bool (H, W): inside is brighter than half the mask's own maximum, so 0/1, 0/255, grey
    anti-aliased and 16-bit masks all work (the alpha channel when it has one; EXIF orientation applied).
    ``size`` (W, H): the image it belongs to, at its original resolution; the mask must match it.
    UserError if missing, unreadable, of another size or empty."""
    path = Path(path)
    with _opened(path, "mask") as img:
        if "A" in img.getbands():
            img = img.getchannel("A")
        elif img.mode not in ("I", "F", "L") and not img.mode.startswith("I;16"):
            img = img.convert("L")
        decoded, shown = _decoded(img, None)
        values = np.asarray(decoded, np.float32)
    if size is not None and tuple(shown) != tuple(size):
        raise UserError(f"{path}: the mask is {shown[0]}x{shown[1]} but the image is {size[0]}x{size[1]}")
    top = values.max(initial=0.0)
    if top <= 0:
        raise UserError(f"{path}: the mask is empty (all zero): it must mark the object")
    return values > top / 2.0


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask at another resolution ``size`` (W, H): area coverage >= 1/2 when shrinking (a part too thin to
    win a pixel keeps its best one), bilinear cut at 1/2 when enlarging."""
    import cv2

    mask = np.asarray(mask, bool)
    if mask.shape[::-1] == tuple(size):
        return mask.copy()
    shrinking = size[0] < mask.shape[1]
    coverage = cv2.resize(mask.astype(np.uint8) * 255, tuple(size),
                          interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    out = coverage >= 128
    if mask.any() and not out.any():
        out.flat[int(np.argmax(coverage))] = True
    return out


def load_mesh(path: Path):
    """A mesh file (any format trimesh reads; scenes merged) -> trimesh.Trimesh, checked: triangles present, face
    indices in range, coordinates finite. UserError (one line) otherwise; trimesh's warnings are silenced."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: mesh file not found")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
        except Exception as exc:  # noqa: BLE001 - every loader failure is an unreadable file to the user
            raise UserError(f"{path}: cannot read mesh ({type(exc).__name__}: {_first(exc)})") from None
    return check_mesh(mesh, str(path))


def check_mesh(mesh, name: str = "mesh"):
    """UserError unless ``mesh`` is a trimesh.Trimesh with triangles, valid face indices and finite vertices."""
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UserError(f"{name}: no triangles in the mesh")
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise UserError(f"{name}: a face refers to vertex {int(faces.max())}, but the mesh has {len(vertices)} "
                        "vertices")
    bad = int((~np.isfinite(vertices).all(axis=1)).sum())
    if bad:
        raise UserError(f"{name}: {bad} of {len(vertices)} vertices have non-finite (NaN or infinite) coordinates")
    return mesh
