"""Reconstruction on rendered scenes, scored by SyncDreamer's mesh protocol (metrics.evaluate_mesh).

Single-view CPU default (inflate) from (a) the GT whole view (upper bound), (b) the modal-masked input (no
completion), (c) the classical completion; and the visual hull and the NeuS grid fit of the 16 GT ring views (multi-view). Mean Chamfer
distance and volumetric IoU per configuration, seconds per object per method.

    .venv/bin/python benchmarks/bench_recon.py --scenes DIR [--limit 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import metrics
from amodal3d.completion import complete
from amodal3d.core.cameras import SYNCDREAMER_ELEVATION_DEG
from amodal3d.core.formats import scene as fmt
from amodal3d.core.prompts import Prompt
from recon.base import ReconInput, View
from recon.pipeline import reconstruct


def single_view_inputs(scene: fmt.Scene, seed: int) -> dict[str, np.ndarray]:
    modal, amodal = scene.mask(fmt.MODAL_MASK), scene.mask(fmt.AMODAL_MASK)
    gt = scene.image(fmt.WHOLE).copy()
    gt[..., 3] = amodal
    modal_only = np.dstack([scene.image(fmt.INPUT), modal.astype(np.float32)])
    done = complete(scene.image(fmt.INPUT), Prompt(mask=modal), samples=4, seed=seed)
    completed = done.samples[0].copy()
    completed[..., 3] = done.amodal_mask
    return {"a_gt_whole": gt, "b_modal_input": modal_only, "c_classical_completion": completed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multiview", nargs="*", default=["visual_hull", "neus"])
    args = parser.parse_args()

    rows = []
    for folder in sorted(args.scenes.glob("scene_*"))[: args.limit]:
        scene = fmt.Scene.open(folder)
        elevation = scene.meta["input_camera"]["elevation_deg"]
        for config, rgba in single_view_inputs(scene, args.seed).items():
            start = time.perf_counter()
            result = reconstruct(ReconInput(View(rgba, scene.input_camera), elevation), "inflate")
            seconds = time.perf_counter() - start
            m = metrics.evaluate_mesh(result.mesh, folder)
            rows.append({"scene": folder.name, "config": f"inflate/{config}", "cd": m.chamfer, "viou": m.volume_iou,
                         "seconds": seconds})
        ring = [View(scene.ring_view(i), cam) for i, cam in enumerate(scene.ring_cameras)]
        for method in args.multiview:
            start = time.perf_counter()
            result = reconstruct(ReconInput(View(ring[0].rgba, ring[0].camera), SYNCDREAMER_ELEVATION_DEG, ring),
                                 method)
            seconds = time.perf_counter() - start
            m = metrics.evaluate_mesh(result.mesh, folder)
            rows.append({"scene": folder.name, "config": f"{method}/gt_ring", "cd": m.chamfer, "viou": m.volume_iou,
                         "seconds": seconds})
    print("| configuration | scenes | CD (lower better) | vIoU | seconds per object |")
    print("|---|---|---|---|---|")
    summary = {}
    for config in dict.fromkeys(r["config"] for r in rows):
        sel = [r for r in rows if r["config"] == config]
        summary[config] = {k: float(np.mean([r[k] for r in sel])) for k in ("cd", "viou", "seconds")}
        s = summary[config]
        print(f"| {config} | {len(sel)} | {s['cd']:.4f} | {s['viou']:.3f} | {s['seconds']:.2f} |")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
