"""Memory and speed of full-size pix2gestalt (random weights, the released checkpoint's every tensor name and shape)
on this machine, per mode of our pipeline, with the outputs compared between modes: the memory guide.

Each mode runs in its own process (peak resident memory, the kernel's VmHWM, is per process): load the converted folder in the mode's
precision (a bf16 copy of the folder for the bf16 modes, as ``convert-pix2gestalt --dtype bfloat16`` writes it),
sample K=4 whole objects for 3 DDIM steps at 256x256 with the same noise, record the peak resident memory (weights
are memory-mapped, so the peak is reached while sampling), seconds per step, and the samples. Modes that need a CUDA
GPU (model and sequential CPU offload) are reported as such; on a GPU the same weights and activations need about
the same memory, less the CPU process's own (~0.5 GB): an estimate, not a measurement.

    .venv/bin/python benchmarks/bench_pix2gestalt_memory.py [--work DIR] [--samples 4] [--steps 3]
        [--checkout SRC/pix2gestalt --python P2G_VENV/bin/python]   # and the original code, from its own checkout
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "fp32, batched (default on CPU)": {"dtype": "float32", "attention_slicing": False, "batch_samples": True},
    "fp32, attention slicing, one call per sample": {"dtype": "float32", "attention_slicing": True,
                                                     "batch_samples": False},
    "bf16, batched": {"dtype": "bfloat16", "attention_slicing": False, "batch_samples": True},
    "bf16, slicing, one call per sample (--low-memory on CPU)": {"dtype": "bfloat16", "attention_slicing": True,
                                                                 "batch_samples": False},
}


def build_full_size(folder: Path) -> float:
    """A full-size pix2gestalt folder from random tensors in the released key layout (raw UNet, no EMA copy)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from amodal3d.completion.pix2gestalt_convert import convert_state_dict
    from tests.tiny_diffusion import ldm_betas, reference_layout

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    state = {key: 0.02 * torch.randn(shape, generator=generator) for key, shape in reference_layout()
             if not key.startswith("model_ema.")}
    state["betas"] = ldm_betas()
    pipe, _ = convert_state_dict(state, ema=False)
    del state
    pipe.save_pretrained(str(folder))
    return time.perf_counter() - start


def run_mode(folder: Path, mode: dict, samples: int, steps: int, out: Path) -> dict:
    """One mode in a child process: {'load_gb', 'peak_gb', 's_per_step'}; the samples go to ``out``."""
    code = f"""
import json, time, numpy as np, torch
from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline
mode = json.loads({json.dumps(json.dumps(mode))})
dtype = {{"float32": torch.float32, "bfloat16": torch.bfloat16}}[mode["dtype"]]
pipe = Pix2GestaltPipeline.from_pretrained({str(folder)!r}, dtype=dtype)
pipe.set_progress_bar_config(disable=True)
if mode["attention_slicing"]:
    pipe.enable_attention_slicing()
def peak_gb():  # this process's own high-water mark (ru_maxrss would carry the parent's over exec)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**20
load_gb = peak_gb()
yy, xx = np.mgrid[:256, :256] / 256
image = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], -1).astype(np.float32)
mask = (xx - 0.45) ** 2 + (yy - 0.5) ** 2 < 0.08
ends = []
def tick(pipe, step, t, tensors):
    ends.append(time.perf_counter())
    return tensors
result = pipe(image, mask, num_samples={samples}, num_inference_steps={steps}, eta=0.0,
              generator=torch.Generator().manual_seed(0), batch_samples=mode["batch_samples"], original_timesteps=False,
              callback_on_step_end=tick)
np.save({str(out)!r}, np.asarray(result.images, np.float32))
print(json.dumps({{"load_gb": load_gb, "peak_gb": peak_gb(),
                  "s_per_step": (ends[-1] - ends[0]) / (len(ends) - 1)}}))  # UNet steps only: encoders excluded
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None, help="keep the full-size folder here (about 5 GB)")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="DDIM steps (s / step is timed between steps)")
    parser.add_argument("--checkout", type=Path, default=None,
                        help="a pix2gestalt checkout (conformance/checkout.py): also run the original code")
    parser.add_argument("--python", default=None, help="the interpreter of the original's own environment")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="p2g_memory_"))
    folder = work / "pix2gestalt-random"
    if not (folder / "model_index.json").is_file():
        print(f"built the full-size random model in {build_full_size(folder):.0f} s: {folder}", flush=True)
    half = work / "pix2gestalt-random-bf16"  # stored as a user would for bf16 (convert-pix2gestalt --dtype)
    if not (half / "model_index.json").is_file():
        import torch

        from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline

        Pix2GestaltPipeline.from_pretrained(str(folder), dtype=torch.bfloat16).save_pretrained(str(half))
    weights_gb = sum(f.stat().st_size for f in folder.rglob("*.safetensors")) / 2**30
    rows, reference = [], None
    for name, mode in MODES.items():
        out = work / f"samples_{len(rows)}.npy"
        source = folder if mode["dtype"] == "float32" else half
        result = run_mode(source, mode, args.samples, args.steps, out)
        if "error" not in result:
            samples = np.load(out)
            reference = samples if reference is None else reference
            result["max_diff"] = float(np.abs(samples - reference).max())
            result["mean_diff"] = float(np.abs(samples - reference).mean())
        rows.append((name, result))
        print(name, json.dumps(result), flush=True)
    if args.checkout is not None:
        proc = subprocess.run([args.python, str(ROOT / "benchmarks" / "conformance" / "pix2gestalt_memory_upstream.py"),
                               "--out", str(work / "upstream"), "--samples", str(args.samples), "--steps",
                               str(args.steps + 1)], cwd=args.checkout / "pix2gestalt", capture_output=True, text=True,
                              check=False)
        result = (json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else
                  {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]})
        print("original", json.dumps(result), flush=True)
        rows.insert(0, ("original LatentDiffusion, fp32 as released (with its EMA copy)", result))
    print(f"\nfull-size pix2gestalt, random weights (fp32 folder {weights_gb:.2f} GB), K={args.samples} samples, "
          f"256x256, DDIM, {args.steps} steps, 2 CPU cores\n")
    print("| mode | peak resident memory (GB) | s / step | max / mean abs diff to fp32 batched (0..1 images) |")
    print("|---|---|---|---|")
    for name, result in rows:
        if "error" in result:
            print(f"| {name} | failed: {result['error']} | | |")
            continue
        same = ("equal to ours within 1.3e-6 on the shrunk model (conformance)" if name not in MODES else
                f"{result['max_diff']:.4f} / {result['mean_diff']:.5f}")
        print(f"| {name} | {result['peak_gb']:.2f} | {result['s_per_step']:.1f} | {same} |")
    print("| fp16 + model CPU offload / sequential offload | needs a CUDA GPU (not on this machine) | | |")


if __name__ == "__main__":
    main()
