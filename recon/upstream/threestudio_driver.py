"""Runs threestudio's own ``launch.py`` in threestudio's own environment (cwd: its checkout). Stand-alone: imports
nothing of amodal3d. ``recon.sds`` calls it as a subprocess.

    python threestudio_driver.py [--device cpu] -- <launch.py arguments>

On a GPU it runs launch.py as it is. ``--device cpu`` (for checks; only the export path runs on a CPU):
Lightning's ``accelerator="gpu"`` (launch.py), threestudio's ``get_device()`` and the image dataset's
``.to(rank)`` (CUDA) become the CPU, and the CUDA-only packages threestudio imports at module level (tinycudann,
nerfacc, nvdiffrast, envlight) are replaced by placeholders when they cannot be imported; the code that uses them (hash-grid encodings, the NeRF renderer's
estimators, texture baking) must then be configured away (e.g. ``system.exporter.fmt=obj``).
"""

from __future__ import annotations

import argparse
import runpy
import sys
import types


class Unbuilt(types.ModuleType):
    """A CUDA-only package that is not built here. Importing it works; its functions (lower-case names) raise when
    called; its classes can be constructed (threestudio's mesh exporter makes an nvdiffrast context it only uses for
    texture baking) but the objects raise as soon as they are used."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        what = f"{self.__name__}.{name} is CUDA-only and not built here"

        def missing(*args, **kwargs):
            raise RuntimeError(what)

        if not name[:1].isupper():
            return missing

        def refuse(instance, attribute):
            raise RuntimeError(what)

        return type(name, (), {"__init__": lambda instance, *a, **k: None, "__getattr__": refuse,
                               "__call__": missing})


def cpu_only() -> None:
    import torch

    for name in ("tinycudann", "nerfacc", "nvdiffrast", "nvdiffrast.torch", "envlight"):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a CUDA extension that is not built here
            sys.modules[name] = Unbuilt(name)
    sys.modules["nvdiffrast"].torch = sys.modules["nvdiffrast.torch"]
    import pytorch_lightning

    original = pytorch_lightning.Trainer.__init__

    def on_cpu(self, *args, **kwargs):
        kwargs.update(accelerator="cpu", devices=1)
        kwargs.pop("strategy", None)
        original(self, *args, **kwargs)

    pytorch_lightning.Trainer.__init__ = on_cpu
    sys.path.insert(0, ".")
    from threestudio.utils import misc

    misc.get_device = lambda: torch.device("cpu")
    for module in [m for name, m in sys.modules.items() if name.startswith("threestudio.")]:
        if getattr(module, "get_device", None) is not None:  # bound by `from ... import get_device` already
            module.get_device = misc.get_device
    import threestudio.data.image as image_data

    image_data.get_rank = lambda: "cpu"  # the dataset moves its tensors to the rank's device: a CUDA index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="gpu")
    at = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)  # ours before "--", the upstream's after
    args, theirs = parser.parse_args(sys.argv[1:at]), sys.argv[at + 1:]
    if args.device == "cpu":
        cpu_only()
    sys.argv = ["launch.py", *theirs]
    runpy.run_path("launch.py", run_name="__main__")


if __name__ == "__main__":
    main()
