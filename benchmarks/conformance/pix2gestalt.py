"""Conformance of our pix2gestalt (converter + Pix2GestaltPipeline) with the original code, on the CPU.

    .venv/bin/python benchmarks/conformance/pix2gestalt.py --checkout SRC/pix2gestalt --python P2G_VENV/bin/python
        [--work DIR] [--golden tests/data/pix2gestalt_upstream]

``--checkout`` is a checkout of cvlab-columbia/pix2gestalt (``checkout.py`` makes one from a fetched mirror);
``--python`` the interpreter of its own environment (see README.md in this folder for the exact pins). The upstream
half (``pix2gestalt_upstream.py``) builds the original model from its own config, shrunk, with random weights, saves
its checkpoint and records what the original computes; this half converts that checkpoint with our converter, runs
our pipeline on the same inputs and initial noise (torch's global generator, as the original draws it) and prints a
pass/fail table with the largest differences. ``--golden`` copies the checkpoint and the records into the folder the
CI regression test reads.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOLERANCE = {"clip_embedding": 1e-5, "context": 1e-5, "concat": 1e-4, "eps_cond": 1e-4, "eps_uncond": 1e-4,
             "samples": 1e-4}


def run_upstream(checkout: Path, python: str, work: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([python, str(HERE / "pix2gestalt_upstream.py"), "--out", str(work)],
                          cwd=checkout / "pix2gestalt", capture_output=True, check=False, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the upstream run failed:\n{proc.stderr[-3000:]}")
    print(f"upstream: {time.perf_counter() - start:.1f} s ({python})")
    return dict(np.load(work / "upstream.npz"))


def ours(work: Path, upstream: dict) -> dict:
    """Our converter and pipeline on the upstream checkpoint and inputs."""
    import torch

    from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline
    from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt

    folder = work / "ours"
    if folder.exists():
        shutil.rmtree(folder)
    convert_pix2gestalt(work / "upstream.ckpt", folder, num_heads=8)
    pipe = Pix2GestaltPipeline.from_pretrained(str(folder), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    image = upstream["image"].astype(np.float32) / 255.0
    mask = upstream["mask"]
    out = {}
    with torch.no_grad():
        context, concat = pipe.encode_conditions(image, mask)
        pixels = torch.from_numpy(image).permute(2, 0, 1)[None] * 2.0 - 1.0
        out["clip_embedding"] = pipe.image_embedding(pixels).numpy()
        out["context"], out["concat"] = context.numpy(), concat.numpy()
        noisy = torch.from_numpy(upstream["noisy"])
        t = torch.tensor(500)
        model_in = torch.cat([noisy, concat.expand(2, -1, -1, -1)], 1)
        out["eps_cond"] = pipe.unet(model_in, t, encoder_hidden_states=context.expand(2, -1, -1)).sample.numpy()
        blank = torch.cat([noisy, torch.zeros_like(concat).expand(2, -1, -1, -1)], 1)
        out["eps_uncond"] = pipe.unet(blank, t, encoder_hidden_states=torch.zeros_like(context).expand(2, -1, -1)
                                      ).sample.numpy()
    for key in upstream:
        if key.startswith("samples_"):
            _, steps, eta = key.split("_")
            torch.manual_seed(7)  # the original draws x_T and the per-step noise from torch's global generator
            out[key] = pipe(image, mask, num_samples=2, num_inference_steps=int(steps), guidance_scale=2.0,
                            eta=float(eta), generator=None).images
    return out


def compare(upstream: dict, mine: dict) -> list[tuple[str, float, float, bool]]:
    rows = []
    for key, value in mine.items():
        tolerance = TOLERANCE["samples" if key.startswith("samples_") else key]
        diff = float(np.abs(value - upstream[key]).max())
        rows.append((key, diff, tolerance, diff <= tolerance))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="a checkout of cvlab-columbia/pix2gestalt")
    parser.add_argument("--python", required=True, help="the interpreter of pix2gestalt's own environment")
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance/work/pix2gestalt"))
    parser.add_argument("--golden", type=Path, default=None, help="also write the CI golden files here")
    args = parser.parse_args()
    upstream = run_upstream(args.checkout.resolve(), args.python, args.work.resolve())
    rows = compare(upstream, ours(args.work.resolve(), upstream))
    print("| check | max abs difference | tolerance | result |")
    print("|---|---|---|---|")
    for key, diff, tolerance, ok in rows:
        print(f"| {key} | {diff:.2e} | {tolerance:.0e} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{sum(r[3] for r in rows)}/{len(rows)} checks pass")
    if args.golden:
        args.golden.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.work / "upstream.ckpt", args.golden / "upstream.ckpt")
        keep = {k: v for k, v in upstream.items() if k in ("image", "mask", "noisy", "context", "concat", "eps_cond",
                                                           "eps_uncond", "samples_10_0", "samples_10_1")}
        np.savez_compressed(args.golden / "upstream.npz", **keep)
        print(f"golden files: {args.golden}")
    sys.exit(0 if all(r[3] for r in rows) else 1)


if __name__ == "__main__":
    main()
