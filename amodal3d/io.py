"""Small I/O helpers shared by every stage: atomic folders and files, PNG and JSON writing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from amodal3d.errors import UserError


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a temporary sibling folder; on success it is renamed to ``final`` (replacing nothing), else removed.

    An interrupted run leaves at most a ``.tmp-*`` folder, never a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, data) -> None:
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (rounded); uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    """(H, W), (H, W, 3) or (H, W, 4) image, float in [0, 1] or uint8; bool masks become 0/255."""
    from PIL import Image

    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    Image.fromarray(to_uint8(image)).save(path)


def write_png_atomic(path: Path, image: np.ndarray) -> None:
    """:func:`write_png` to a temporary sibling, then rename: readers never see a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    write_png(tmp, image)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary sibling, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(..., 4) RGBA in [0, 1] -> (..., 3) RGB over white (straight alpha): rgb * a + 1 - a."""
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3): a grey image repeated, RGBA composited on white, RGB as is."""
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return composite_on_white(image) if image.shape[2] == 4 else image


def _load_user_image(path: Path, what: str, convert):
    """Open a user-supplied image file and apply ``convert`` to the PIL image; UserError when missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        with Image.open(path) as img:
            return convert(img)
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path}: cannot read {what} ({exc})") from None


def read_image(path: Path) -> np.ndarray:
    """An RGB(A) image file -> (H, W, 3) float32 in [0, 1] (alpha composited on white). UserError if unreadable."""
    return composite_on_white(read_image_rgba(path))


def read_image_rgba(path: Path) -> np.ndarray:
    """An image file -> (H, W, 4) float32 in [0, 1]; images without alpha are opaque. UserError if unreadable."""
    return _load_user_image(path, "image", lambda img: np.asarray(img.convert("RGBA"), np.float32) / 255.0)


def read_mask(path: Path) -> np.ndarray:
    """A mask image (0/255 or any grey > 127 = inside; the alpha channel when it has one) -> bool (H, W).
    UserError if missing or unreadable."""

    def convert(img):
        channel = img.getchannel("A") if img.mode in ("RGBA", "LA") else img.convert("L")
        return np.asarray(channel) > 127

    return _load_user_image(path, "mask", convert)
