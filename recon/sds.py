"""``sds``: Zero-1-to-3 guided score distillation through threestudio (Apache-2.0), run as a subprocess.

threestudio is not on PyPI: clone it, install its requirements (CUDA, tiny-cuda-nn) and the Zero-1-to-3 checkpoint,
then set ``AMODAL3D_THREESTUDIO=/path/to/threestudio``. We write the input in threestudio's expected framing and
launch its ``zero123`` config with our image and elevation; the exported mesh comes back into the benchmark frame.
Defaults as threestudio's (elevation 5, distance 3.8, fovy 20, guidance 3.0, 600 steps).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amodal3d.core.cameras import Y_UP_TO_Z_UP, ZERO123_DISTANCE, syncdreamer_input
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from recon.base import ReconInput, ReconResult, register_reconstructor

DEFAULT_STEPS = 600


def locate(code: str | None) -> Path:
    root = Path(code or os.environ.get("AMODAL3D_THREESTUDIO", "")).expanduser()
    if not str(root) or str(root) == "." or not (root / "launch.py").is_file():
        raise UserError("threestudio is not available: set AMODAL3D_THREESTUDIO to a clone of it (with launch.py and "
                        "configs/zero123.yaml) with its CUDA requirements installed")
    return root


def launch_command(root: Path, image: Path, elevation_deg: float, out: Path, steps: int, seed: int) -> list[str]:
    """threestudio's command line for a Zero-1-to-3 SDS run with mesh export."""
    return [sys.executable, str(root / "launch.py"), "--config", str(root / "configs" / "zero123.yaml"), "--train",
            "--gpu", "0", f"data.image_path={image}", f"data.default_elevation_deg={elevation_deg}",
            f"data.default_camera_distance={ZERO123_DISTANCE}", f"trainer.max_steps={steps}", f"seed={seed}",
            f"exp_root_dir={out}", "system.exporter_type=mesh-exporter"]


@dataclass
class SDSConfig:
    """sds: Zero-1-to-3 score distillation through threestudio (needs its checkout and a GPU)."""

    code: str | None = None
    """A checkout of threestudio (default: $AMODAL3D_THREESTUDIO)."""
    steps: int = DEFAULT_STEPS
    """Training steps."""


@register_reconstructor("sds")
class SDSReconstructor:
    config_class = SDSConfig

    def __init__(self, config: SDSConfig | None = None):
        c = config or SDSConfig()
        self.code, self.steps = c.code, int(c.steps)

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        import trimesh

        root = locate(self.code)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="amodal3d_sds_") as tmp:
            tmp = Path(tmp)
            image = tmp / "input_rgba.png"
            write_png(image, syncdreamer_input(inputs.view.rgba))
            run = subprocess.run(launch_command(root, image, inputs.elevation_deg, tmp / "runs", self.steps, seed),
                                 cwd=root, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError("threestudio failed: " + (run.stderr.strip().splitlines() or ["(no output)"])[-1])
            exported = sorted((tmp / "runs").rglob("*-export/model.obj"))
            if not exported:
                raise RuntimeError("threestudio finished but exported no mesh (looked for *-export/model.obj)")
            mesh = trimesh.load(exported[-1], force="mesh")
        # threestudio's object sits in a radius-1 box, Y-up glTF-style exports; ours is Z-up in a unit box
        mesh.vertices = mesh.vertices @ Y_UP_TO_Z_UP.T
        mesh.apply_scale(1.0 / max(mesh.extents))
        mesh.apply_translation(-mesh.bounds.mean(axis=0))
        return ReconResult(mesh, info={"method": "sds", "steps": self.steps, "seconds": time.perf_counter() - start})
