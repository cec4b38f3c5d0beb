"""The original pix2gestalt at full size, as released (fp32, the config's EMA copy of the UNet), timed and measured on
the CPU: peak resident memory after building the model and after sampling, seconds per DDIM step. Runs in
pix2gestalt's own environment with its checkout (``pix2gestalt/pix2gestalt``) as the working directory; prints one
JSON line. Weights are the model's own random initialisation (no download); the stubs are those of
``pix2gestalt_upstream.py`` (carvekit, the CUDA-only DDIM buffer move, kornia's HardNet download) except that
``clip.load`` builds a full-size OpenAI CLIP ViT-L/14 (random weights) instead of a small one.

    python pix2gestalt_memory_upstream.py --out WORK [--samples 4] [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pix2gestalt_upstream as upstream


def peak_gb() -> float:
    """This process's resident high-water mark (VmHWM; ru_maxrss would carry a parent's over exec)."""
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20


def full_size_clip(name=None, device="cpu", jit=False, **kwargs):
    import clip.model

    model = clip.model.CLIP(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024,
                            vision_patch_size=14, context_length=77, vocab_size=49408, transformer_width=768,
                            transformer_heads=12, transformer_layers=12)
    return model.float().eval(), None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="asked of the original's DDIM (it runs one fewer)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path.cwd()))
    upstream.serve_hardnet(args.out / "torch_home")
    upstream.install_stubs()
    import clip

    clip.load = full_size_clip
    from inference import process_input, sample_model
    from ldm.models.diffusion.ddim import DDIMSampler
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    model = instantiate_from_config(OmegaConf.load(upstream.CONFIG).model).eval()
    load_gb = peak_gb()
    image, mask = upstream.inputs(256)
    input_im = process_input(image)
    visible = process_input(upstream.np.repeat(mask[..., None], 3, axis=2))
    sampler = DDIMSampler(model)
    ends = []
    step = sampler.p_sample_ddim

    def timed_step(*a, **k):
        out = step(*a, **k)
        ends.append(time.perf_counter())
        return out

    sampler.p_sample_ddim = timed_step
    sample_model(input_im, visible, model, sampler, "fp32", 256, 256, args.steps, args.samples, 2.0, 0.0)
    # steps timed between the ends of consecutive UNet steps (the encoders and the decoder excluded)
    print(json.dumps({"load_gb": load_gb, "peak_gb": peak_gb(), "steps_run": len(ends),
                      "s_per_step": (ends[-1] - ends[0]) / max(len(ends) - 1, 1),
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
