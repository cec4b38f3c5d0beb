"""The upstream half of the SyncDreamer check: runs in SyncDreamer's own environment with its checkout as the
working directory; never imported by amodal3d.

Builds SyncDreamer's own ``SyncMultiviewDiffusion`` from its own ``configs/syncdreamer.yaml`` with the UNet shrunk
(``model_channels`` 32; the VAE and the 3D volume networks are hard-coded in SyncDreamer and stay full size), gives
it random weights, and saves what generate.py loads: the checkpoint (``{"state_dict": ...}``), the shrunk yaml, and a
small OpenAI CLIP (``clip.model.CLIP``, random) as the ``clip_image_encoder_path`` file (the real ``ViT-L-14.pt`` is
a download). Also records, for the CI regression, upstream ``prepare_inputs`` on a fixed RGBA image and the cameras
of ``meta_info/camera-16.pkl``.

    python syncdreamer_upstream.py --out WORK
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch


def tiny_clip(path: Path) -> None:
    """A random OpenAI CLIP saved as a TorchScript archive, the form ``clip.load`` opens first (its state-dict
    fallback reads from the end of the already-consumed file on current torch)."""
    import clip.model

    torch.manual_seed(1234)
    model = clip.model.CLIP(embed_dim=768, image_resolution=224, vision_layers=2, vision_width=64,
                            vision_patch_size=32, context_length=77, vocab_size=1000, transformer_width=64,
                            transformer_heads=1, transformer_layers=1).eval()
    image, text = torch.zeros(1, 3, 224, 224), torch.zeros(1, 77, dtype=torch.long)
    torch.jit.save(torch.jit.trace(model, (image, text), check_trace=False), str(path))


def fixed_rgba(size: int = 192) -> np.ndarray:
    """An off-centre RGBA object (uint8) that prepare_inputs must crop, scale and centre."""
    yy, xx = np.mgrid[:size, :size]
    rgba = np.zeros((size, size, 4), np.uint8)
    inside = ((xx - 120) / 40.0) ** 2 + ((yy - 70) / 28.0) ** 2 < 1
    rgba[inside] = (200, 60, 40, 255)
    rgba[..., :3][inside & (xx > 120)] = (40, 90, 200)
    return rgba


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))
    from ldm.base_utils import read_pickle
    from ldm.util import instantiate_from_config, prepare_inputs
    from omegaconf import OmegaConf
    from PIL import Image

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    tiny_clip(out / "tiny_clip.pt")
    config = OmegaConf.load("configs/syncdreamer.yaml")
    unet = config.model.params.unet_config.params
    unet.model_channels, unet.use_checkpoint = 32, False
    config.model.params.clip_image_encoder_path = str(out / "tiny_clip.pt")
    OmegaConf.save(config, out / "syncdreamer_tiny.yaml")

    torch.manual_seed(args.seed)
    model = instantiate_from_config(config.model).eval()
    generator = torch.Generator().manual_seed(args.seed)
    state = model.state_dict()
    for name, tensor in state.items():  # zero-initialised layers would make the UNet output nothing
        if tensor.is_floating_point() and not name.startswith(("betas", "alphas", "sqrt_", "posterior", "poses",
                                                                "Ks", "azimuth")):
            state[name] = tensor + 0.02 * torch.randn(tensor.shape, generator=generator)
    torch.save({"state_dict": state}, out / "syncdreamer_tiny.ckpt")

    rgba = fixed_rgba()
    Image.fromarray(rgba).save(out / "input_rgba.png")
    prepared = prepare_inputs(str(out / "input_rgba.png"), 20.0, 200)
    K, azs, els, dists, poses = read_pickle("meta_info/camera-16.pkl")
    np.savez_compressed(out / "upstream_framing.npz", rgba=rgba, input_image=prepared["input_image"].numpy(),
                        input_elevation=prepared["input_elevation"].numpy(), K=K, azimuths=azs, elevations=els,
                        distances=dists, poses=poses)
    print(f"{out}: tiny SyncDreamer checkpoint, its yaml and CLIP, prepare_inputs and camera-16 records")


if __name__ == "__main__":
    main()
