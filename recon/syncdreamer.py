"""``syncdreamer``: 16 consistent views by SyncDreamer (Liu et al. 2023), then a mesh from them, by SyncDreamer's own
code in SyncDreamer's own environment (its pins conflict with ours), as subprocesses with files in between.

Give it a checkout of liuyuan-pal/SyncDreamer (``--syncdreamer.code`` or ``AMODAL3D_SYNCDREAMER``) with its
``ckpt/ViT-L-14.pt``, the checkpoint (``--syncdreamer.checkpoint`` or ``AMODAL3D_SYNCDREAMER_CKPT``) and the
interpreter of its environment (``--syncdreamer.python`` or ``AMODAL3D_SYNCDREAMER_PYTHON``; made with its
requirements.txt). Then:

1. the whole-object view is written as an RGBA PNG and SyncDreamer's ``generate.py`` frames it itself
   (``--crop_size``), samples the 16 views at its elevation and writes them as one 4096x256 strip;
2. the mesh comes from SyncDreamer's NeuS (``train_renderer.py -i strip``; ``--syncdreamer.mesh renderer``, the
   default) or from one of our multi-view methods (``visual_hull``, ``neus``);
3. the views and the mesh are brought from SyncDreamer's frame (+Z up, the input at azimuth 0, unit box) into ours by
   the input camera's azimuth.

Both scripts run through ``recon/upstream/syncdreamer_driver.py`` in SyncDreamer's interpreter, which leaves them as
they are on a GPU; ``--syncdreamer.device cpu`` runs them on the CPU (see the driver for what that changes). A full
run needs a GPU (about 40 GB for SyncDreamer's default of 4 samples; we sample one).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.cameras import syncdreamer_ring
from amodal3d.core.checkpoints import load_checkpoint
from amodal3d.core.errors import UserError
from amodal3d.core.framing import object_on_white
from amodal3d.core.io import read_image, write_png
from recon.base import ReconInput, ReconResult, View, register_reconstructor
from recon.upstream_process import check_interpreter, interpreter, run_driver

VIEWS = 16


@dataclass
class SyncDreamerConfig:
    """syncdreamer: 16 views by SyncDreamer's own code in its own environment, then a mesh (its NeuS by default)."""

    code: str | None = None
    """A checkout of liuyuan-pal/SyncDreamer (default: $AMODAL3D_SYNCDREAMER)."""
    checkpoint: str | None = None
    """syncdreamer-pretrain.ckpt (default: $AMODAL3D_SYNCDREAMER_CKPT)."""
    python: str | None = None
    """The interpreter of SyncDreamer's environment (default: $AMODAL3D_SYNCDREAMER_PYTHON, else CODE/.venv)."""
    model_config: str = "configs/syncdreamer.yaml"
    """Its model config, relative to the checkout or absolute."""
    steps: int = 50
    """DDIM steps (SyncDreamer's sampler needs a divisor of 1000)."""
    cfg_scale: float = 2.0
    crop: int = 200
    """Longest side of the object on the 256 input canvas (SyncDreamer also uses 180 and 150)."""
    view_batch: int = 8
    """Views per UNet batch (generate.py's --batch_view_num); lower it on a small GPU."""
    device: Literal["cuda", "cpu"] = "cuda"
    """Where SyncDreamer runs (cpu: slow, for checks)."""
    mesh: str = "renderer"
    """How the mesh is made from the 16 views: renderer (SyncDreamer's NeuS, train_renderer.py), or visual_hull /
    neus (ours)."""
    renderer_steps: int = 2000
    """Training steps of SyncDreamer's NeuS (its default)."""
    renderer_rays: int = 3584
    """Rays per training step of SyncDreamer's NeuS (its default; a seventh as many again on the foreground)."""
    mesh_resolution: int = 512
    """Marching cubes grid of SyncDreamer's NeuS (its default)."""
    masks: Literal["ours", "carvekit"] = "ours"
    """Foreground masks for SyncDreamer's NeuS: ours (the white background reached from the border; offline) or
    carvekit's, as SyncDreamer does (downloads its model on first use)."""

    def low_memory(self):
        """The smallest view batch (one of the 16 views per UNet call; SyncDreamer's sample_num is already 1)."""
        import dataclasses

        return dataclasses.replace(self, view_batch=1)


def locate(config: SyncDreamerConfig) -> tuple[Path, str, Path, Path]:
    """(checkout, interpreter, checkpoint, model config), each checked: one clear line for what is missing."""
    code = Path(config.code or os.environ.get("AMODAL3D_SYNCDREAMER", "")).expanduser()
    if not str(config.code or os.environ.get("AMODAL3D_SYNCDREAMER", "")) or not (code / "generate.py").is_file():
        raise UserError("SyncDreamer is not available: give a checkout of liuyuan-pal/SyncDreamer with "
                        f"--syncdreamer.code or AMODAL3D_SYNCDREAMER (got '{config.code or ''}')")
    if not (code / "meta_info" / "camera-16.pkl").is_file():
        raise UserError(f"{code} is not a SyncDreamer checkout: meta_info/camera-16.pkl is missing")
    ckpt = Path(config.checkpoint or os.environ.get("AMODAL3D_SYNCDREAMER_CKPT", "")).expanduser()
    if not ckpt.is_file():
        raise UserError("SyncDreamer weights not found: give syncdreamer-pretrain.ckpt with --syncdreamer.checkpoint "
                        f"or AMODAL3D_SYNCDREAMER_CKPT (got '{config.checkpoint or ''}')")
    model_config = code / config.model_config
    if not model_config.is_file():
        raise UserError(f"SyncDreamer model config not found: {model_config}")
    clip = re.search(r"clip_image_encoder_path:\s*(\S+)", model_config.read_text())
    if clip and not (code / clip[1]).is_file():
        raise UserError(f"SyncDreamer's CLIP weights not found: {code / clip[1]} (put ViT-L-14.pt there, as "
                        "SyncDreamer's README says)")
    if 1000 % config.steps:
        raise UserError(f"--syncdreamer.steps must divide 1000 (SyncDreamer's DDIM schedule), got {config.steps}")
    load_checkpoint(ckpt)  # our safe loader first: a pickle that would run code is refused before SyncDreamer opens it
    python = interpreter(config.python, "AMODAL3D_SYNCDREAMER_PYTHON", code)
    check_interpreter(python, code, "torch, omegaconf, pytorch_lightning, skimage, mcubes, ldm.util", "SyncDreamer",
                      "--syncdreamer.python")
    return code, python, ckpt, model_config


def views_from_strip(strip: np.ndarray, input_azimuth_deg: float) -> list[View]:
    """SyncDreamer's 16 views side by side (H, 16 H, 3) -> RGBA views on our ring (view 0 at the input azimuth)."""
    size = strip.shape[0]
    if strip.shape[1] != VIEWS * size:
        raise RuntimeError(f"SyncDreamer wrote a {strip.shape[1]}x{size} image, expected {VIEWS} views side by side")
    ring = syncdreamer_ring(input_azimuth_deg, size)
    views = []
    for i, camera in enumerate(ring):
        rgb = strip[:, i * size:(i + 1) * size, :3]
        views.append(View(np.dstack([rgb, object_on_white(rgb).astype(np.float32)]).astype(np.float32), camera))
    return views


def to_our_frame(mesh, input_azimuth_deg: float):
    """SyncDreamer's frame (+Z up, input camera at azimuth 0) -> ours (the input camera at its azimuth)."""
    import trimesh

    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(input_azimuth_deg), [0, 0, 1]))
    return mesh


@register_reconstructor("syncdreamer")
class SyncDreamerReconstructor:
    config_class = SyncDreamerConfig

    def __init__(self, config: SyncDreamerConfig | None = None):
        self.config = config or SyncDreamerConfig()

    def generate_views(self, inputs: ReconInput, seed: int, work: Path, where=None) -> list[View]:
        """The 16 views on our ring, by SyncDreamer's generate.py; the strip stays in ``work``."""
        c = self.config
        code, python, ckpt, model_config = where or locate(c)
        write_png(work / "input.png", inputs.view.rgba)
        run_driver(python, code, "syncdreamer_driver.py", ["generate", "--device", c.device],
                   ["--cfg", str(model_config), "--ckpt", str(ckpt), "--input", str(work / "input.png"),
                    "--output", str(work / "views"), "--elevation", f"{inputs.elevation_deg:.4f}", "--sample_num", "1",
                    "--crop_size", str(c.crop), "--cfg_scale", str(c.cfg_scale), "--batch_view_num", str(c.view_batch),
                    "--seed", str(seed), "--sample_steps", str(c.steps)], "SyncDreamer's generate.py")
        return views_from_strip(read_image(work / "views" / "0.png"), inputs.view.camera.angles()[0])

    def renderer_mesh(self, views: list[View], work: Path, where) -> object:
        """SyncDreamer's NeuS (train_renderer.py) on the strip generate.py wrote; its mesh, in its frame."""
        import trimesh

        c = self.config
        code, python, _, _ = where
        neus = (code / "configs" / "neus.yaml").read_text()
        # its learning-rate schedule decays per 1000 steps (and divides by total // 1000): a shorter run keeps it
        neus = re.sub(r"total_steps: \d+", f"total_steps: {max(c.renderer_steps, 1000)}", neus)
        neus = re.sub(r"max_steps: \d+", f"max_steps: {c.renderer_steps}", neus)
        # no validation renders (a full image per check; we read only the mesh), one checkpoint at the end
        neus = re.sub(r"val_check_interval: \d+", f"val_check_interval: {c.renderer_steps + 1}", neus)
        neus = re.sub(r"save_interval: \d+", f"save_interval: {c.renderer_steps}", neus)
        neus = re.sub(r"train_batch_num: \d+", f"train_batch_num: {c.renderer_rays}", neus)
        neus = re.sub(r"train_batch_fg_num: \d+", f"train_batch_fg_num: {max(c.renderer_rays // 7, 1)}", neus)
        (work / "neus.yaml").write_text(neus)
        ours = ["renderer", "--device", c.device, "--mesh-resolution", str(c.mesh_resolution), "--no-video"]
        if c.masks == "ours":
            (work / "masks").mkdir()
            for i, view in enumerate(views):
                write_png(work / "masks" / f"{i:03d}.png", view.mask)
            ours += ["--masks", str(work / "masks")]
        run_driver(python, code, "syncdreamer_driver.py", ours, ["-i", str(work / "views" / "0.png"), "-n", "amodal3d", "-b",
                                                    str(work / "neus.yaml"), "-l", str(work / "renderer")],
                   "SyncDreamer's train_renderer.py")
        return trimesh.load(work / "renderer" / "amodal3d" / "mesh.ply", force="mesh", process=False)

    def reconstruct(self, inputs: ReconInput, seed: int = 6033) -> ReconResult:
        from recon.base import get_reconstructor

        start = time.perf_counter()
        where = locate(self.config)
        azimuth = inputs.view.camera.angles()[0]
        work = Path(tempfile.mkdtemp(prefix="amodal3d_syncdreamer_"))
        try:
            views = self.generate_views(inputs, seed, work, where)
            if self.config.mesh == "renderer":
                mesh = to_our_frame(self.renderer_mesh(views, work, where), azimuth)
            else:
                mesh = get_reconstructor(self.config.mesh).reconstruct(
                    ReconInput(inputs.view, inputs.elevation_deg, views), seed).mesh
        finally:
            shutil.rmtree(work, ignore_errors=True)
        c = self.config
        return ReconResult(mesh, views, {"method": "syncdreamer", "mesh": c.mesh, "steps": c.steps,
                                         "cfg_scale": c.cfg_scale, "renderer_steps": c.renderer_steps,
                                         "renderer_rays": c.renderer_rays,
                                         "seconds": time.perf_counter() - start})
