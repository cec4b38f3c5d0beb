"""The upstream half of the pix2gestalt check. Runs in pix2gestalt's own environment, with its checkout
(``pix2gestalt/pix2gestalt``) as the working directory; never imported by amodal3d.

It builds the original ``LatentDiffusion`` from the original config (``configs/sd-finetune-pix2gestalt-c_concat-256.yaml``)
shrunk to CPU size, gives it random weights (EMA weights different from the raw ones, as after training), saves the
checkpoint the way the original saves it (a Lightning ``.ckpt`` with ``state_dict``), and records what the original
code computes on fixed inputs: the CLIP embedding after ``cc_projection``, the VAE concat, one UNet call with and
without conditions, and full DDIM sampling through the original ``inference.sample_model``.

Stubbed, and why:
- ``carvekit`` (``ldm/util.py`` imports its ``HiInterface`` at import time; only the demo app's background removal
  uses it, never inference);
- ``clip.load`` returns a small randomly initialised OpenAI CLIP (the real ViT-L/14 is a download; the architecture
  class is CLIP's own ``clip.model.CLIP``, with a 768-dim embedding as pix2gestalt's ``cc_projection`` requires);
- ``DDIMSampler.register_buffer`` keeps its buffers on the model's device (the original moves them to CUDA, which
  fails on a CPU-only torch);
- kornia 0.6.0 (the pinned version) builds a pretrained HardNet as a default argument when ``kornia`` is imported,
  which downloads its weights: a randomly initialised HardNet is put in a private torch hub cache instead (never used
  by pix2gestalt, which only calls ``kornia.geometry.resize`` and ``kornia.enhance.normalize``).

    python pix2gestalt_upstream.py --out WORK [--size 64]
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np
import torch

CONFIG = "configs/sd-finetune-pix2gestalt-c_concat-256.yaml"
SAMPLINGS = ((10, 0.0), (10, 1.0), (50, 0.0), (50, 1.0))
GUIDANCE = 2.0
SAMPLES = 2
TIMESTEP = 500


def serve_hardnet(cache: Path) -> None:
    import importlib.util
    import os

    os.environ["TORCH_HOME"] = str(cache)
    target = cache / "hub" / "checkpoints" / "checkpoint_liberty_with_aug.pth"
    if not target.is_file():
        spec = importlib.util.find_spec("kornia")
        path = Path(spec.submodule_search_locations[0]) / "feature" / "hardnet.py"
        module_spec = importlib.util.spec_from_file_location("_hardnet", path)
        hardnet = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(hardnet)  # imports only torch
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": hardnet.HardNet(False).state_dict()}, target)


def install_stubs() -> None:
    carvekit = types.ModuleType("carvekit")
    api, high = types.ModuleType("carvekit.api"), types.ModuleType("carvekit.api.high")
    high.HiInterface = object
    sys.modules.update({"carvekit": carvekit, "carvekit.api": api, "carvekit.api.high": high})

    import clip
    import clip.model

    def tiny_clip(name=None, device="cpu", jit=False, **kwargs):
        torch.manual_seed(1234)
        model = clip.model.CLIP(embed_dim=768, image_resolution=224, vision_layers=2, vision_width=64,
                                vision_patch_size=32, context_length=77, vocab_size=1000, transformer_width=64,
                                transformer_heads=1, transformer_layers=1)
        return model.float().eval(), None

    clip.load = tiny_clip

    from ldm.models.diffusion import ddim

    def register_buffer(self, name, attr):
        setattr(self, name, attr)

    ddim.DDIMSampler.register_buffer = register_buffer


def shrunk_config():
    from omegaconf import OmegaConf

    config = OmegaConf.load(CONFIG)
    unet = config.model.params.unet_config.params
    unet.model_channels = 32  # 32 channels on all four levels, 8 heads, every other setting as released
    unet.channel_mult = [1, 1, 1, 1]
    unet.use_checkpoint = False
    vae = config.model.params.first_stage_config.params.ddconfig
    vae.ch, vae.ch_mult = 32, [1, 1, 1, 1]
    return config


def random_weights(model, seed: int) -> None:
    """Random weights stored exactly in float16 (so a small golden checkpoint can hold them), EMA != raw."""
    generator = torch.Generator().manual_seed(seed)
    trained = ("model.", "first_stage_model.", "cond_stage_model.", "cc_projection.")
    state = model.state_dict()
    for name, tensor in state.items():
        if not tensor.is_floating_point() or not name.startswith(trained):
            continue
        noise = 0.02 * torch.randn(tensor.shape, generator=generator)
        state[name] = (tensor + noise).half().float()
    for name, tensor in state.items():  # the EMA copy differs from the raw weights, as after training
        if name.startswith("model_ema.") and tensor.is_floating_point() and tensor.dim() > 0:
            state[name] = (tensor + 0.02 * torch.randn(tensor.shape, generator=generator)).half().float()
    model.load_state_dict(state)


def inputs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed uint8 image (H, W, 3) and 0/255 visible mask (H, W), the forms the original inference takes."""
    yy, xx = np.mgrid[:size, :size] / size
    image = np.stack([xx, yy, 0.5 + 0.5 * np.sin(9 * xx * yy)], -1)
    mask = ((xx - 0.45) ** 2 + (yy - 0.5) ** 2 < 0.08).astype(np.uint8) * 255
    return (image * 255).astype(np.uint8), mask


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))
    serve_hardnet(args.out / "torch_home")
    install_stubs()
    from inference import process_input, sample_model
    from ldm.models.diffusion.ddim import DDIMSampler
    from ldm.util import instantiate_from_config

    torch.manual_seed(args.seed)
    model = instantiate_from_config(shrunk_config().model).eval()
    random_weights(model, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    half = {k: (v.half() if v.is_floating_point() and k.startswith(("model.", "model_ema.", "first_stage_model.",
                                                                    "cond_stage_model.", "cc_projection."))
                else v) for k, v in model.state_dict().items()}
    torch.save({"state_dict": half, "global_step": 0, "epoch": 0}, args.out / "upstream.ckpt")

    image, mask = inputs(args.size)
    rgb_mask = np.repeat(mask[..., None], 3, axis=2)  # as inference.run_inference draws it
    input_im, visible = process_input(image), process_input(rgb_mask)
    record = {"image": image, "mask": mask > 0}
    with torch.no_grad(), model.ema_scope():
        record["clip_embedding"] = model.get_learned_conditioning(input_im).numpy()
        context = model.cc_projection(model.get_learned_conditioning(input_im))
        concat = torch.cat([model.encode_first_stage(input_im).mode(), model.encode_first_stage(visible).mode()], 1)
        record["context"], record["concat"] = context.numpy(), concat.numpy()
        noisy = torch.randn((2, 4, args.size // 8, args.size // 8), generator=torch.Generator().manual_seed(3))
        t = torch.full((2,), TIMESTEP, dtype=torch.long)
        cond = {"c_concat": [concat.repeat(2, 1, 1, 1)], "c_crossattn": [context.repeat(2, 1, 1)]}
        uncond = {"c_concat": [torch.zeros_like(cond["c_concat"][0])], "c_crossattn": [torch.zeros_like(
            cond["c_crossattn"][0])]}
        record["noisy"] = noisy.numpy()
        record["eps_cond"] = model.apply_model(noisy, t, cond).numpy()
        record["eps_uncond"] = model.apply_model(noisy, t, uncond).numpy()
    for steps, eta in SAMPLINGS:
        torch.manual_seed(7)
        out = sample_model(input_im, visible, model, DDIMSampler(model), "fp32", args.size, args.size, steps, SAMPLES,
                           GUIDANCE, eta)
        record[f"samples_{steps}_{eta:g}"] = out.permute(0, 2, 3, 1).numpy()
    np.savez(args.out / "upstream.npz", **record)
    print(f"{args.out}: checkpoint and {len(record)} records")


if __name__ == "__main__":
    main()
