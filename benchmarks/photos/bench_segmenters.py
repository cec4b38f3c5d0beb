"""Visible-mask IoU of our segmenters from the real-photo benchmark's prompts (1 click, 3 clicks, a box), per
dataset, with seconds per prompt: what the user's prompt turns into before any completion.

    .venv/bin/python benchmarks/photos/bench_segmenters.py --photos data/photo_bench --split heldout \\
        [--segmenters clicknet grabcut] [--clicknet-weights OUT/model/clicknet.safetensors]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from amodal3d.bench.photos import prompt_of, segmented_or_empty
from amodal3d.core.formats.photo_case import find_cases
from amodal3d.segmenters import SegmenterConfig
from metrics.image import mask_iou

PROMPTS = ("click1", "click3", "box")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--segmenters", nargs="+", default=["clicknet", "grabcut"])
    parser.add_argument("--clicknet-weights", type=Path, default=None)
    args = parser.parse_args()
    cases = find_cases(args.photos, args.split)
    for method in args.segmenters:
        config = SegmenterConfig(segment_with=method, clicknet_weights=args.clicknet_weights)
        scores: dict[tuple[str, str], list[float]] = {}
        seconds = []
        for case in cases:
            for source in PROMPTS:
                start = time.perf_counter()
                mask = segmented_or_empty(case.image, prompt_of(case, source), config)  # nothing found scores 0
                seconds.append(time.perf_counter() - start)
                scores.setdefault((source, case.meta["dataset"]), []).append(mask_iou(mask, case.modal))
        for source in PROMPTS:
            rows = {dataset: v for (s, dataset), v in scores.items() if s == source}
            every = [x for v in rows.values() for x in v]
            per_dataset = ", ".join(f"{d} {100 * np.mean(v):.1f}" for d, v in sorted(rows.items()))
            print(f"{method:9s} {source:7s} visible IoU {100 * np.mean(every):.1f} ({per_dataset})")
        print(f"{method:9s} {len(cases)} cases, {np.mean(seconds):.3f} s per prompt")


if __name__ == "__main__":
    main()
