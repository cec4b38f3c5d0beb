"""LPIPS (Zhang et al. 2018) with the standard VGG16 / AlexNet backbones, without any download.

Two weight files are needed:
- the ImageNet backbone, in torchvision's format (``vgg16-397923af.pth``, ``alexnet-owt-7be5be79.pth``): an explicit
  path, or torch hub's cache (``$TORCH_HOME/hub/checkpoints/``, usually ``~/.cache/torch/hub/checkpoints/``);
- the LPIPS linear heads (v0.1): shipped inside the ``lpips`` PyPI package, or an explicit path.
When either is missing, :class:`LPIPSUnavailable` says which and where it looked. Nothing is ever faked.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from amodal3d.core.optional import available, missing_message
from metrics.image import as_rgb_on_white

BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
# features[i:j] slices ending at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (VGG16) / relu1..relu5 (AlexNet)
SLICES = {"vgg": (0, 4, 9, 16, 23, 30), "alex": (0, 2, 5, 8, 10, 12)}
CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPSUnavailable(RuntimeError):
    """LPIPS weights are not on this machine."""


def _given_file(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise LPIPSUnavailable(f"LPIPS unavailable: {what} file {path} does not exist")
    return path


def backbone_path(net: str, weights: str | Path | None = None) -> Path:
    if weights is not None:
        return _given_file(weights, "backbone weights")
    if not available("torch"):
        raise LPIPSUnavailable(f"LPIPS unavailable: {missing_message('torch', 'LPIPS')}")
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]
    if not path.is_file():
        raise LPIPSUnavailable(
            f"LPIPS unavailable: ImageNet {net} weights not found at {path} "
            f"(put torchvision's {BACKBONE_FILES[net]} there or pass weights=PATH)"
        )
    return path


def linear_heads_path(net: str, lin_weights: str | Path | None = None) -> Path:
    if lin_weights is not None:
        return _given_file(lin_weights, "linear-head weights")
    import importlib.util

    spec = importlib.util.find_spec("lpips")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise LPIPSUnavailable("LPIPS unavailable: the lpips package (linear heads) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"
    if not path.is_file():
        raise LPIPSUnavailable(f"LPIPS unavailable: linear heads not found at {path}")
    return path


def build_lpips(net: str = "vgg"):
    """The LPIPS network with uninitialised weights (torch module); load with :func:`load_lpips`."""
    import torch
    import torchvision

    if net not in SLICES:
        raise ValueError(f"unknown LPIPS backbone '{net}'; known: {', '.join(SLICES)}")

    class LPIPS(torch.nn.Module):
        def __init__(self):
            super().__init__()
            backbone = torchvision.models.vgg16(weights=None) if net == "vgg" else torchvision.models.alexnet(weights=None)
            self.features = backbone.features
            cut = SLICES[net]
            self.stages = [(cut[i], cut[i + 1]) for i in range(5)]
            self.lins = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS[net])
            self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

        def _taps(self, x):
            x = (x - self.shift) / self.scale
            taps = []
            for start, stop in self.stages:
                for layer in self.features[start:stop]:
                    x = layer(x)
                taps.append(x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) + 1e-10))
            return taps

        def forward(self, a, b):
            """a, b: (B, 3, H, W) in [-1, 1] -> (B,) distances."""
            total = 0.0
            for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b)):
                total = total + lin((fa - fb) ** 2).mean(dim=(2, 3))
            return total.view(-1)

    return LPIPS()


def load_lpips(net: str = "vgg", weights: str | Path | None = None, lin_weights: str | Path | None = None):
    """An eval-mode LPIPS network with real weights, or :class:`LPIPSUnavailable`."""
    for module in ("torch", "torchvision"):
        if not available(module):
            raise LPIPSUnavailable(f"LPIPS unavailable: {missing_message(module, 'LPIPS')}")
    from amodal3d.core.checkpoints import load_checkpoint

    backbone, heads = backbone_path(net, weights), linear_heads_path(net, lin_weights)
    model = build_lpips(net)
    state = load_checkpoint(backbone)
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise LPIPSUnavailable(f"LPIPS unavailable: {backbone} holds no torchvision '{net}' features.* tensors")
    model.features.load_state_dict(features)
    lin_state = load_checkpoint(heads)
    model.lins.load_state_dict({f"{k[3]}.weight": v for k, v in lin_state.items() if k.startswith("lin")})
    return model.eval()


def cached_lpips(net: str = "vgg", weights: str | Path | None = None, lin_weights: str | Path | None = None):
    """:func:`load_lpips`, loaded once per (net, weights) in a process."""
    return _cached(net, None if weights is None else str(weights), None if lin_weights is None else str(lin_weights))


@functools.lru_cache(maxsize=4)
def _cached(net: str, weights: str | None, lin_weights: str | None):
    return load_lpips(net, weights, lin_weights)


def lpips_batch(images: list[np.ndarray], refs: list[np.ndarray], model) -> list[float]:
    """LPIPS of each (image, ref) pair with a loaded model; images as for :func:`lpips`."""
    import torch

    def to_tensor(imgs):
        arr = np.stack([as_rgb_on_white(i) for i in imgs]).astype(np.float32)
        return torch.from_numpy(arr).permute(0, 3, 1, 2) * 2.0 - 1.0

    with torch.no_grad():
        return model(to_tensor(images), to_tensor(refs)).tolist()


def lpips(img: np.ndarray, ref: np.ndarray, weights: str | Path | None = None, net: str = "vgg",
          lin_weights: str | Path | None = None) -> float:
    """LPIPS distance of two (H, W, 3|4) images in [0, 1] (RGBA composited on white). VGG by default, as SyncDreamer's
    evaluation. Raises :class:`LPIPSUnavailable` ("LPIPS unavailable: ...") when weights are not found."""
    return lpips_batch([img], [ref], cached_lpips(net, weights, lin_weights))[0]
