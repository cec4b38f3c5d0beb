"""pix2gestalt's sampler: seconds per denoising step (the VAE encode/decode around the loop excluded) with all K
samples and both guidance branches in one UNet batch, against one UNet call per sample, and the peak memory of each;
on a randomly initialised model of the paper's architecture at small channel counts (no weights can be downloaded
here). Target: batched >= 1.5x faster.

    .venv/bin/python benchmarks/bench_pix2gestalt_sampler.py [--samples 6] [--steps 10] [--device cpu]

Two tiny models: the tests' (32 channels in 8 heads of width 4) and one with a head as wide as its 32 channels (the
real model's heads are 40 wide). On a CPU the UNet is compute-bound, so batching gains only what per-call overhead
and larger matrix products give; the narrow-head model spends most of its time in 32x32 self-attention softmax.

Each mode runs in its own process so that its peak memory (CPU: maximum resident set growth during sampling; CUDA:
torch.cuda.max_memory_allocated) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(weights: str, batched: bool, samples: int, steps: int, device: str, repeats: int) -> dict:
    import numpy as np
    import torch

    from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    pipe = Pix2GestaltPipeline.from_pretrained(weights).to(device)
    rng = np.random.default_rng(0)
    image = rng.random((256, 256, 3)).astype(np.float32)
    mask = np.zeros((256, 256), bool)
    mask[64:192, 80:176] = True
    run = dict(num_samples=samples, num_inference_steps=steps, guidance_scale=2.0, batch_samples=batched)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    pipe(image, mask, **{**run, "num_inference_steps": 1})  # warm-up
    times = []
    for r in range(repeats):
        out = pipe(image, mask, generator=torch.Generator().manual_seed(r), **run)
        times.append(out.seconds["denoise"] / steps)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)
    return {"batched": batched, "seconds_per_step": min(times), "peak_mb": peak,
            "unet_params_m": sum(p.numel() for p in pipe.unet.parameters()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=6, help="K (the paper's demo default is 6)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", help="a pix2gestalt folder (default: random tiny models)")
    parser.add_argument("--heads", type=int, nargs="+", default=[8, 1], help="attention heads of the tiny models")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        result = measure(args._child[0], args._child[1] == "batched", args.samples, args.steps, args.device,
                         args.repeats)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.weights:
            models = {"given weights": args.weights}
        else:
            sys.path.insert(0, str(ROOT))
            from tests.tiny_diffusion import tiny_pix2gestalt

            models = {f"tiny, {h} head(s) of width {32 // h}": str(tiny_pix2gestalt(Path(tmp) / f"h{h}", heads=h))
                      for h in args.heads}
        for label, weights in models.items():
            report(label, {mode: child(weights, mode, args) for mode in ("batched", "loop")}, args)


def child(weights: str, mode: str, args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--_child", weights, mode, "--samples", str(args.samples),
                          "--steps", str(args.steps), "--repeats", str(args.repeats), "--device", args.device],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(label: str, results: dict, args) -> None:
    b, lp = results["batched"], results["loop"]
    print(f"pix2gestalt sampler ({label}; UNet {b['unet_params_m']:.2f} M parameters), K={args.samples}, "
          f"guidance 2.0 (2K UNet rows per step), {args.steps} steps, {args.device}, 256x256 (32x32 latents)")
    print(f"  batched (one UNet call per step):     {b['seconds_per_step'] * 1000:8.1f} ms/step   "
          f"peak +{b['peak_mb']:.0f} MB")
    print(f"  per-sample loop (K UNet calls/step):  {lp['seconds_per_step'] * 1000:8.1f} ms/step   "
          f"peak +{lp['peak_mb']:.0f} MB")
    speedup = lp["seconds_per_step"] / b["seconds_per_step"]
    print(f"  speed-up {speedup:.2f}x (target >= 1.5x): {'met' if speedup >= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
