"""The Blender add-on: its source is ``amodal3d_blender/`` (Blender's Python only, no amodal3d imports);
:func:`build_addon` packs it into a zip that Blender installs as an extension (4.2+, blender_manifest.toml) or as a
legacy add-on (bl_info)."""

from __future__ import annotations

import zipfile
from pathlib import Path

SOURCE = Path(__file__).parent / "amodal3d_blender"
PACKAGE = SOURCE.name
FILES = ("__init__.py", "blender_manifest.toml")


def build_addon(out: Path) -> Path:
    """Write the installable zip (one top-level folder, as both of Blender's installers accept), atomically."""
    from amodal3d.core.io import replacing

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(SOURCE / name, f"{PACKAGE}/{name}")
    return out


def is_addon_zip(path: Path) -> bool:
    """True for a zip this module wrote (every entry under the add-on's folder)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return bool(names) and all(name.startswith(f"{PACKAGE}/") for name in names)
