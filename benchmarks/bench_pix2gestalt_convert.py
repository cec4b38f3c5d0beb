"""The converter at full size: a checkpoint with every tensor name and shape of the released pix2gestalt file
(1,938 tensors, 2.15 B random fp32 values, ~8.6 GB; the released file also carries optimizer state), converted by
`amodal3d convert-pix2gestalt` in a fresh process; prints the seconds, the peak memory and the output size, then the
CPU seconds of one guided denoising step of the converted full-size model (K samples, both guidance branches).

    .venv/bin/python benchmarks/bench_pix2gestalt_convert.py --work /tmp/p2g-full [--samples 1] [--keep]

Needs about 13 GB of free disk under --work and 12 GB of memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_checkpoint(path: Path) -> float:
    import torch

    sys.path.insert(0, str(ROOT))
    from tests.tiny_diffusion import ldm_betas, reference_layout

    generator = torch.Generator().manual_seed(0)
    state = {key: torch.empty(shape).normal_(0.0, 0.02, generator=generator) for key, shape in reference_layout()}
    state["betas"] = ldm_betas()
    torch.save({"state_dict": state, "epoch": 10, "global_step": 0}, path)
    return sum(t.numel() for t in state.values()) / 1e9


def denoise_step_seconds(folder: Path, samples: int) -> tuple[float, float]:
    import numpy as np
    import torch

    from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline

    pipe = Pix2GestaltPipeline.from_pretrained(str(folder))
    image = np.full((256, 256, 3), 0.5, np.float32)
    mask = np.zeros((256, 256), bool)
    mask[64:192, 64:192] = True
    out = pipe(image, mask, num_samples=samples, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    return out.seconds["denoise"] / 2, out.seconds["encode"] + out.seconds["decode"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint and the converted folder")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    ckpt, out = args.work / "epoch=000010.ckpt", args.work / "pix2gestalt-diffusers"
    try:
        start = time.perf_counter()
        billions = make_checkpoint(ckpt)
        print(f"synthetic checkpoint: {billions:.2f} B values, {ckpt.stat().st_size / 1e9:.2f} GB, "
              f"{time.perf_counter() - start:.0f} s to write")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "amodal3d", "convert-pix2gestalt", str(ckpt), str(out)], check=True,
                       cwd=ROOT)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e9
        print(f"convert-pix2gestalt: {seconds:.0f} s, peak memory {peak:.1f} GB, output {size:.2f} GB (safetensors)")
        step, vae = denoise_step_seconds(out, args.samples)
        print(f"full-size model on this CPU: {step:.2f} s per guided denoising step (K={args.samples}, batch "
              f"{2 * args.samples}), {vae:.2f} s VAE encode + decode; the paper's 200 DDIM steps would take "
              f"{200 * step / 60:.0f} min")
    finally:
        if not args.keep:
            ckpt.unlink(missing_ok=True)
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
