"""``sds``: Zero-1-to-3 score distillation by threestudio's own code (Apache-2.0) in threestudio's own environment
(its pins conflict with ours: diffusers<0.20, transformers 4.28, lightning 2.0), as subprocesses.

Give it a checkout of threestudio-project/threestudio (``--sds.code`` or ``AMODAL3D_THREESTUDIO``), the interpreter
of its environment (``--sds.python`` or ``AMODAL3D_THREESTUDIO_PYTHON``) and the Zero-1-to-3 weights its config names
(``load/zero123/zero123-xl.ckpt``, or ``--sds.zero123``). Then:

1. the whole-object view is written as an RGBA PNG in SyncDreamer's framing (the object centred, 200 of 256 px);
2. ``launch.py --config configs/zero123.yaml --train`` with our image and elevation (trial folder named, not
   time-stamped, so we know where it is);
3. ``launch.py --config <trial>/configs/parsed.yaml --export resume=<trial>/ckpts/last.ckpt
   system.exporter_type=mesh-exporter``: training alone exports no mesh;
4. the mesh (``<trial>/save/it<steps>-export/model.obj``) comes from threestudio's frame (+Z up, the input camera at
   azimuth 0, on +X) into ours: turned about +Z by the input camera's azimuth, scaled into the unit box.

Both calls run through ``recon/upstream/threestudio_driver.py``, which leaves them as they are on a GPU. Defaults as
threestudio's (elevation 5 unless the input knows its own, distance 3.8, fovy 20, guidance 3.0, 600 steps; about 35
minutes per 2000 steps on an A100).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.cameras import ZERO123_DISTANCE, syncdreamer_input
from amodal3d.core.checkpoints import load_checkpoint
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from recon.base import ReconInput, ReconResult, register_reconstructor
from recon.upstream_process import check_interpreter, interpreter, run_driver

DEFAULT_STEPS = 600
TRIAL = ("amodal3d", "run")  # name and tag: the trial folder is <root>/amodal3d/run


@dataclass
class SDSConfig:
    """sds: Zero-1-to-3 score distillation by threestudio's own code in its own environment (needs a GPU)."""

    code: str | None = None
    """A checkout of threestudio (default: $AMODAL3D_THREESTUDIO)."""
    python: str | None = None
    """The interpreter of threestudio's environment (default: $AMODAL3D_THREESTUDIO_PYTHON, else CODE/.venv)."""
    config: str = "configs/zero123.yaml"
    """threestudio's config, relative to the checkout or absolute."""
    zero123: str | None = None
    """The Zero-1-to-3 checkpoint (default: the one the config names)."""
    steps: int = DEFAULT_STEPS
    """Training steps (trainer.max_steps)."""
    device: Literal["gpu", "cpu"] = "gpu"
    """Where threestudio runs (cpu: only its export runs there; training needs its CUDA extensions)."""
    overrides: list[str] = field(default_factory=list)
    """More threestudio config overrides (KEY=VALUE), e.g. system.geometry.isosurface_method=mc-cpu."""


def locate(config: SDSConfig) -> tuple[Path, str]:
    """(checkout, interpreter), checked: one clear line for what is missing."""
    given = config.code or os.environ.get("AMODAL3D_THREESTUDIO", "")
    code = Path(given).expanduser()
    if not given or not (code / "launch.py").is_file() or not (code / "threestudio").is_dir():
        raise UserError("threestudio is not available: give a checkout of threestudio-project/threestudio with "
                        f"--sds.code or AMODAL3D_THREESTUDIO (got '{config.code or ''}')")
    if not (code / config.config).is_file():
        raise UserError(f"threestudio config not found: {code / config.config}")
    named = re.search(r"pretrained_model_name_or_path:\s*\"?([^\s\"]+\.ckpt)", (code / config.config).read_text())
    weights = Path(config.zero123).expanduser() if config.zero123 else code / named[1] if named else None
    if weights is not None:
        if not weights.is_file():
            raise UserError(f"Zero-1-to-3 weights not found: {weights} (give them with --sds.zero123)")
        load_checkpoint(weights)  # our safe loader first: a pickle that would run code is refused before threestudio
    python = interpreter(config.python, "AMODAL3D_THREESTUDIO_PYTHON", code)
    check_interpreter(python, code, "torch, omegaconf, pytorch_lightning, trimesh", "threestudio", "--sds.python")
    return code, python


def train_command(config: SDSConfig, image: Path, elevation_deg: float, root: Path, seed: int) -> list[str]:
    """threestudio's training call for our image, with the trial folder at root/amodal3d/run."""
    command = ["--config", config.config, "--train", "--gpu", "0", f"data.image_path={image}",
               f"data.default_elevation_deg={elevation_deg:.4f}", f"data.default_camera_distance={ZERO123_DISTANCE}",
               f"trainer.max_steps={config.steps}", f"seed={seed}", f"exp_root_dir={root}", f"name={TRIAL[0]}",
               f"tag={TRIAL[1]}", "use_timestamp=False"]
    if config.zero123:
        command.append(f"system.guidance.pretrained_model_name_or_path={config.zero123}")
    return command + list(config.overrides)


def export_command(config: SDSConfig, root: Path) -> list[str]:
    """threestudio's export call: the trial's parsed config, resumed from its last checkpoint."""
    trial = root.joinpath(*TRIAL)
    return ["--config", str(trial / "configs" / "parsed.yaml"), "--export", "--gpu", "0",
            f"resume={trial / 'ckpts' / 'last.ckpt'}", "system.exporter_type=mesh-exporter", *config.overrides]


def exported_mesh(root: Path) -> Path:
    found = sorted(root.joinpath(*TRIAL, "save").glob("it*-export/model.obj"),
                   key=lambda p: int(p.parent.name[2:].split("-")[0]))
    if not found:
        raise RuntimeError(f"threestudio's export wrote no mesh (looked for {root.joinpath(*TRIAL)}/save/"
                           "it*-export/model.obj)")
    return found[-1]


def to_our_frame(mesh, input_azimuth_deg: float):
    """threestudio's frame (+Z up, input camera at azimuth 0 on +X, world units) -> ours: turned about +Z by the input
    camera's azimuth, centred and scaled so its largest extent is 1 (the unit box)."""
    import trimesh

    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1.0 / max(float(mesh.extents.max()), 1e-9))
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(input_azimuth_deg), [0, 0, 1]))
    return mesh


def run_launch(python: str, code: Path, device: str, arguments: list[str], what: str) -> None:
    """threestudio's launch.py with ``arguments``, through our driver (which changes nothing on a GPU)."""
    run_driver(python, code, "threestudio_driver.py", ["--device", device], arguments, f"threestudio's {what}")


@register_reconstructor("sds")
class SDSReconstructor:
    config_class = SDSConfig

    def __init__(self, config: SDSConfig | None = None):
        self.config = config or SDSConfig()

    def reconstruct(self, inputs: ReconInput, seed: int = 0) -> ReconResult:
        import trimesh

        start = time.perf_counter()
        code, python = locate(self.config)
        work = Path(tempfile.mkdtemp(prefix="amodal3d_sds_"))
        try:
            image = work / "input_rgba.png"
            write_png(image, syncdreamer_input(inputs.view.rgba))
            run_launch(python, code, self.config.device, train_command(self.config, image, inputs.elevation_deg, work,
                                                                       seed), "training")
            run_launch(python, code, self.config.device, export_command(self.config, work), "export")
            mesh = trimesh.load(exported_mesh(work), force="mesh")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        mesh = to_our_frame(mesh, inputs.view.camera.angles()[0])
        return ReconResult(mesh, info={"method": "sds", "steps": self.config.steps,
                                       "seconds": time.perf_counter() - start})
