"""The small U-Net our CPU-trained mask networks share (``clicknet``, ``amodalnet``): its first layer halves the
resolution; dilated convolutions at the coarsest level let a pixel see the whole object."""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np

WIDTHS = (32, 48, 64, 96, 128)


def build_unet(in_channels: int, out_channels: int, widths: tuple[int, ...] = WIDTHS):
    """A randomly initialised network mapping (B, in_channels, S, S) to (B, out_channels, S, S) logits."""
    from amodal3d.core.optional import require

    torch = require("torch", "our mask networks")
    nn = torch.nn

    def block(cin, cout, dilation=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=dilation, dilation=dilation, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
            self.down = nn.ModuleList([block(widths[0], widths[0])] + [
                block(a, b) for a, b in pairwise(widths)])
            self.context = nn.Sequential(block(widths[-1], widths[-1], 2), block(widths[-1], widths[-1], 4))
            self.up = nn.ModuleList([block(b + a, a) for a, b in pairwise(widths)])
            self.head = nn.Conv2d(widths[0], out_channels, 1)

        def forward(self, x):
            size = x.shape[-2:]
            x = self.stem(x)
            skips = []
            for i, layer in enumerate(self.down):
                x = layer(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            x = self.context(x)
            for layer, skip in zip(reversed(self.up), reversed(skips[:-1])):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = layer(torch.cat([x, skip], 1))
            return nn.functional.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)

    return UNet()


def logits_of(net, x, mirrored: bool = False):
    """The network's logits for the batch ``x`` (no gradients); ``mirrored``: averaged with those of the mirror
    image (flipped left to right, the output flipped back). Every input channel is a map of the same view, so the
    flip is exact."""
    import torch

    with torch.no_grad():
        logits = net(x)
        if mirrored:
            logits = (logits + net(torch.flip(x, dims=[-1])).flip(dims=[-1])) / 2
    return logits


def load_unet_weights(path, in_channels: int, out_channels: int, name: str, trained_by: str):
    """The network with the safetensors weights at ``path`` (read by our safe loader) in eval mode; a missing file
    or another network's weights is one clear line naming ``trained_by`` (the command whose output it should be)."""
    from pathlib import Path

    from amodal3d.core.checkpoints import load_checkpoint, state_dict_of
    from amodal3d.core.errors import UserError

    path = Path(path).expanduser()
    if path.is_dir():  # the training output or its model/ folder
        path = next((p for p in (path / f"{name}.safetensors", path / "model" / f"{name}.safetensors")
                     if p.is_file()), path / f"{name}.safetensors")
    if not path.is_file():
        raise UserError(f"{name} weights {path} not found (an `amodal3d {trained_by}` output: "
                        f"OUT/model/{name}.safetensors)")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state_dict_of(load_checkpoint(path)).items()}
    net = build_unet(in_channels, out_channels)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:  # another network's weights
        article = "an" if name[0] in "aeiou" else "a"
        raise UserError(f"{path} is not {article} {name} checkpoint: {str(exc).splitlines()[0]}") from None
    return net.eval()


def start_training(config, command: str):
    """(output folder, numpy generator, start time) of a training command: --steps and --batch-size checked, the
    output folder checked (new, empty or an earlier output of ``command``), numpy and torch seeded."""
    import torch

    from amodal3d.core.errors import UserError
    from amodal3d.core.outputs import check_output

    if config.steps < 1 or config.batch_size < 1:
        raise UserError("--steps and --batch-size must be at least 1")
    out = check_output(config.out, command, [config.photos], overwrite=True)
    torch.manual_seed(config.seed)
    return out, np.random.default_rng(config.seed), time.time()


def fit_unet(net, next_batch, loss_of, steps: int, learning_rate: float, log, started: float) -> list[float]:
    """Train ``net`` for ``steps`` steps of ``next_batch()`` ((inputs, targets) float32 arrays) with AdamW and a
    one-cycle learning rate peaking at ``learning_rate``; ``loss_of(logits, targets)`` is the loss. Logs the mean of
    the last 100 losses every 100 steps; returns every step's loss."""
    import torch

    optimiser = torch.optim.AdamW(net.parameters(), learning_rate / 2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps, pct_start=0.1)
    losses = []
    for step in range(steps):
        inputs, targets = (torch.from_numpy(a) for a in next_batch())
        loss = loss_of(net(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss))
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step}: loss {np.mean(losses[-100:]):.4f} ({time.time() - started:.0f} s)")
    return losses


def save_unet(net, out, command: str, name: str, record: dict):
    """``OUT/model/<name>.safetensors`` (float16) and ``training.json``, written whole, in an output folder of
    ``command``; returns the weights' path."""
    from safetensors.torch import save_file

    from amodal3d.core.io import write_json
    from amodal3d.core.outputs import atomic_dir, write_marker

    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, command)
    with atomic_dir(out / "model", command, replace=True) as folder:
        save_file({k: (v.half() if v.dtype.is_floating_point else v).contiguous() for k, v in net.state_dict().items()
                   }, str(folder / f"{name}.safetensors"))
        write_json(folder / "training.json", record)
    return out / "model" / f"{name}.safetensors"
