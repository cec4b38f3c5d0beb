"""Seconds per full scene (input + whole + masks + 16 ring views) at the default settings. Target: <= 30 s on 2 cores.

    .venv/bin/python benchmarks/bench_scenes.py [--num 5] [--resolution 256] [--samples 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from amodal3d.core.formats import scene as fmt
from blender_scenes.generate import RenderConfig, render_scenes
from blender_scenes.sampler import SceneConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=5)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--samples", type=int, default=RenderConfig.spp)
    parser.add_argument("--objects", nargs="+", default=["all"])
    parser.add_argument("--out", type=Path, default=None, help="keep the scenes here (default: a temporary folder)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_scenes_"))
    start = time.perf_counter()
    reports = render_scenes(args.objects, args.num, 0, out, SceneConfig(resolution=args.resolution),
                            RenderConfig(spp=args.samples), progress=False)
    wall = time.perf_counter() - start
    done = [r for r in reports if r.ok]
    seconds = [r.seconds for r in done]
    ratios = [r.occlusion for r in done]
    errors = [abs(fmt.Scene.open(out / r.name).meta["occlusion_estimated"] - r.occlusion) for r in done]
    result = {
        "scenes": len(done),
        "failed": len(reports) - len(done),
        "resolution": args.resolution,
        "samples": args.samples,
        "median_seconds_per_scene": statistics.median(seconds) if seconds else None,
        "min_seconds": min(seconds, default=None),
        "max_seconds": max(seconds, default=None),
        "wall_seconds": wall,
        "attempts": [r.attempts for r in done],
        "occlusion_ratios": [round(x, 3) for x in ratios],
        "max_estimate_error": float(np.max(errors)) if errors else None,
        "target_seconds": 30.0,
        "out": str(out),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
