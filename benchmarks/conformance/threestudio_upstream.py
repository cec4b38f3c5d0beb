"""The upstream half of the threestudio check: runs in threestudio's own environment with its checkout as the working
directory (through ``recon/upstream/threestudio_driver.py``'s CPU patches); never imported by amodal3d.

threestudio's training cannot run on a CPU (its NeRF renderer needs nerfacc's CUDA kernels, its hash grid
tiny-cuda-nn). What the export step reads is a trial folder: ``configs/parsed.yaml`` and ``ckpts/last.ckpt``. This
script writes one with threestudio's own classes, as training would leave it: the config parsed by threestudio's
``load_config`` from its own ``configs/zero123.yaml`` (with CPU-runnable settings: a frequency encoding instead of the
hash grid, marching cubes on the CPU, an OBJ without baked texture), threestudio's own ``zero123-system`` whose
implicit-volume geometry is fitted (Adam, a few hundred steps) to a known asymmetric shape, saved as a Lightning
checkpoint. It also records threestudio's own reference camera (``data/image.py``'s ``SingleImageDataBase``).

    python threestudio_upstream.py --config configs/zero123.yaml KEY=VALUE ... [--fit-steps 1500]

The KEY=VALUE overrides are the ones our ``recon.sds.train_command`` passes to ``launch.py --train`` (image, elevation,
camera distance, trial folder), so the trial folder is the one our training call would leave.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

CPU_SETTINGS = [
    "system.geometry.pos_encoding_config.otype=ProgressiveBandFrequency",
    "system.geometry.pos_encoding_config.n_frequencies=6",
    "system.geometry.isosurface_method=mc-cpu",
    "system.geometry.isosurface_resolution=64",
    "system.exporter.fmt=obj",
    "system.exporter.save_uv=false",
    "system.exporter.save_texture=false",
]


def shape_density(points):
    """The known shape, in threestudio's world (+Z up, the input camera on +X): a bar along +X (towards the camera)
    with a block on its +Y side and top. Density 50 inside (threestudio's isosurface threshold is 25), 0 outside."""
    import torch

    bar = (points[:, 0].abs() < 0.6) & (points[:, 1].abs() < 0.15) & (points[:, 2].abs() < 0.2)
    block = ((points[:, 0] - 0.3).abs() < 0.15) & (points[:, 1] > 0.0) & (points[:, 1] < 0.45) & \
        (points[:, 2].abs() < 0.35)
    return (bar | block).float()[:, None] * 50.0 + torch.zeros_like(points[:, :1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="configs/zero123.yaml")
    parser.add_argument("--fit-steps", type=int, default=1500)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE, as launch.py takes them")
    args = parser.parse_args()
    driver = Path(__file__).resolve().parents[2] / "recon" / "upstream" / "threestudio_driver.py"
    runpy.run_path(str(driver), run_name="threestudio_driver")["cpu_only"]()
    import pytorch_lightning
    import threestudio
    import torch
    from threestudio.utils.config import dump_config, load_config

    cfg = load_config(args.config, cli_args=args.overrides, n_gpus=1)
    trial = Path(cfg.trial_dir)
    (trial / "configs").mkdir(parents=True, exist_ok=True)
    (trial / "ckpts").mkdir(parents=True, exist_ok=True)
    dump_config(str(trial / "configs" / "parsed.yaml"), cfg)

    torch.manual_seed(0)
    system = threestudio.find(cfg.system_type)(cfg.system)
    geometry = system.geometry
    optimiser = torch.optim.Adam(geometry.parameters(), lr=1e-2)
    for _ in range(args.fit_steps):
        radius = cfg.system.geometry.radius  # the whole volume the isosurface is taken in, densest near the shape
        points = torch.cat([(torch.rand(2048, 3) * 2 - 1) * radius, (torch.rand(4096, 3) * 2 - 1) * 0.8])
        loss = torch.nn.functional.mse_loss(geometry.forward_density(points), shape_density(points))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    trainer = pytorch_lightning.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False)
    trainer.strategy.connect(system)  # Lightning writes the checkpoint, loop states and all, as after training
    trainer.save_checkpoint(trial / "ckpts" / "last.ckpt")

    import threestudio.data.image as image_data
    from threestudio.utils.config import parse_structured

    data = image_data.SingleImageDataBase()
    data.setup(parse_structured(image_data.SingleImageDataModuleConfig, cfg.data), "test")
    record = {"fit_loss": float(loss), "camera_position": data.camera_position[0].tolist(),
              "c2w": data.c2w[0].tolist(), "trial": str(trial)}
    print(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main())
