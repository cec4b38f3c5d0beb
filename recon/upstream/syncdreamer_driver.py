"""Runs SyncDreamer's own scripts in SyncDreamer's own environment (cwd: its checkout). Stand-alone: imports nothing
of amodal3d. ``recon.syncdreamer`` calls it as a subprocess.

    python syncdreamer_driver.py generate [--device cpu] -- <generate.py arguments>
    python syncdreamer_driver.py renderer [--device cpu] [--masks DIR] [--mesh-resolution N] [--no-video]
        -- <train_renderer.py arguments>

What it changes, and only when asked:
- ``--device cpu``: SyncDreamer hard-codes ``.cuda()`` (generate.py, renderer.py, train_renderer.py) and Lightning's
  ``accelerator="cuda"``; they become no-ops / the CPU. ``tinycudann`` and ``raymarching`` (CUDA extensions imported
  at module level by the NGP renderer; the NeuS renderer used here never calls them) are replaced by empty modules.
- ``--masks DIR``: the renderer's foreground masks come from ``DIR/000.png..015.png`` instead of carvekit (which
  downloads its segmentation model on first use).
- ``--mesh-resolution N``: marching cubes at N^3 instead of 512^3. ``--no-video``: no 180-view turntable video.
"""

from __future__ import annotations

import argparse
import runpy
import sys
import types


def cpu_only() -> None:
    import torch

    def stay(self, *args, **kwargs):
        return self

    torch.nn.Module.cuda = torch.Tensor.cuda = stay
    for module, name in (("lightning_fabric.utilities.device_dtype_mixin", "_DeviceDtypeModuleMixin"),
                         ("pytorch_lightning.core.mixins.device_dtype_mixin", "DeviceDtypeModuleMixin")):
        try:  # Lightning modules have a .cuda() of their own
            getattr(__import__(module, fromlist=[name]), name).cuda = stay
        except (ImportError, AttributeError):
            pass
    for name in ("tinycudann", "raymarching"):  # CUDA extensions (raymarching JIT-compiles with nvcc on import)
        sys.modules[name] = types.ModuleType(name)
    import pytorch_lightning

    original = pytorch_lightning.Trainer.from_argparse_args.__func__

    def on_cpu(cls, args, **kwargs):
        kwargs.update(accelerator="cpu", devices=1, gpus=None, benchmark=False)
        return original(cls, args, **kwargs)

    pytorch_lightning.Trainer.from_argparse_args = classmethod(on_cpu)


def masks_from(folder: str) -> None:
    """The renderer asks its BackgroundRemoval for each view in order 0..15; answer with the given masks."""
    from pathlib import Path

    import numpy as np
    import renderer.renderer as module
    from PIL import Image

    class GivenMasks:
        def __init__(self, *args, **kwargs):
            self.index = 0

        def __call__(self, image):
            mask = np.asarray(Image.open(Path(folder) / f"{self.index:03d}.png").convert("L"))
            self.index += 1
            return np.dstack([image, mask])

    module.BackgroundRemoval = GivenMasks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("script", choices=("generate", "renderer"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--masks", default=None)
    parser.add_argument("--mesh-resolution", type=int, default=None)
    parser.add_argument("--no-video", action="store_true")
    at = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)  # ours before "--", the upstream's after
    args, theirs = parser.parse_args(sys.argv[1:at]), sys.argv[at + 1:]
    sys.path.insert(0, ".")
    if args.device == "cpu":
        cpu_only()
    if args.script == "generate":
        sys.argv = ["generate.py", *theirs]
        runpy.run_path("generate.py", run_name="__main__")
        return
    if args.masks:
        masks_from(args.masks)
    module = runpy.run_path("train_renderer.py", run_name="train_renderer")
    main_function = module["main"]
    if args.mesh_resolution or args.no_video:
        globals_ = main_function.__globals__
        if args.mesh_resolution:
            extract = globals_["extract_mesh"]
            globals_["extract_mesh"] = lambda model, output, resolution=512: extract(model, output,
                                                                                     args.mesh_resolution)
        if args.no_video:
            globals_["render_images"] = lambda model, output: None
    sys.argv = ["train_renderer.py", *theirs]
    main_function()


if __name__ == "__main__":
    main()
