"""End to end on this machine: render N scenes, run `amodal3d bench` over them with the embedded defaults
(classical completion, inflate reconstruction), open the HTML report in headless Chromium and check the screenshot.
Prints the tables and the wall time of each stage (target: 60 scenes <= 15 min on 2 cores).

    .venv/bin/python benchmarks/bench_end_to_end.py --num 60 --out /tmp/e2e [--render-samples 4] [--configs ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def check_screenshot(png: Path) -> dict:
    """The report must show: a large page, not blank, with dark text and coloured plot/scene pixels."""
    from PIL import Image

    with Image.open(png) as img:
        rgb = np.asarray(img.convert("RGB"), np.float32) / 255.0
    dark = float((rgb.max(axis=2) < 0.3).mean())
    colourful = float((rgb.max(axis=2) - rgb.min(axis=2) > 0.25).mean())
    ok = rgb.shape[0] >= 1000 and rgb.std() > 0.05 and dark > 0.002 and colourful > 0.0005
    return {"size": list(rgb.shape[:2]), "std": float(rgb.std()), "dark_fraction": dark,
            "colour_fraction": colourful, "ok": bool(ok)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/amodal3d_e2e"))
    parser.add_argument("--render-samples", type=int, default=16, help="Cycles samples per pixel (default 16)")
    parser.add_argument("--workers", type=int, default=0, help="bench worker processes (0 = one per core)")
    parser.add_argument("--render-workers", type=int, default=2)
    parser.add_argument("--denoise-quality", default="HIGH", choices=["HIGH", "BALANCED", "FAST"])
    parser.add_argument("--configs", nargs="*", default=None)
    parser.add_argument("--ray", default=None)
    args = parser.parse_args()

    from amodal3d.bench import BenchConfig, run_bench
    from amodal3d.bench.screenshot import find_browser, screenshot
    from blender_scenes.generate import RenderConfig, render_scenes

    start = time.perf_counter()
    reports = render_scenes(["all"], args.num, args.seed, args.out / "scenes",
                            render=RenderConfig(spp=args.render_samples, denoise_quality=args.denoise_quality),
                            workers=args.render_workers)
    render_seconds = time.perf_counter() - start
    rendered = sum(r.ok for r in reports)
    start = time.perf_counter()
    run = run_bench(BenchConfig(scenes=args.out / "scenes", out=args.out / "bench", configs=args.configs,
                                workers=args.workers, ray=args.ray))
    bench_seconds = time.perf_counter() - start
    print((args.out / "bench" / "summary.md").read_text())
    shot = None
    if find_browser():
        start = time.perf_counter()
        png = screenshot(args.out / "bench" / "report.html", args.out / "bench" / "report.png")
        shot = {**check_screenshot(png), "path": str(png), "seconds": time.perf_counter() - start}
    timing = {"scenes": rendered, "render_samples": args.render_samples, "denoise_quality": args.denoise_quality,
              "render_seconds": render_seconds,
              "bench_seconds": bench_seconds, "bench_rows": len(run.rows), "new_rows": run.new_rows,
              "failed_rows": len(run.failures), "total_seconds": render_seconds + bench_seconds,
              "total_minutes": (render_seconds + bench_seconds) / 60, "screenshot": shot}
    print(json.dumps(timing, indent=1))


if __name__ == "__main__":
    main()
