"""Where the whole (amodal) mask goes wrong on the real-photo benchmark, prompt by prompt: of the union of the truth
and the answer, the shares that are visible object missed, hidden object missed, extra on the occluder and extra on
the background (x 100, means over the cases), with the visible-mask and amodal IoU; optionally the worst cases.

    .venv/bin/python benchmarks/photos/bench_error_parts.py --photos data/photo_bench --split dev \\
        [--inputs click1 box] [--completion amodalnet] [--worst 10]

Tune on the dev split only; the held-out split is for scoring once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from amodal3d.bench.configs import Configuration
from amodal3d.bench.photos import PHOTO_INPUTS, amodal_mask, visible_mask
from amodal3d.completion.config import CompletionConfig
from amodal3d.core.formats.photo_case import find_cases
from metrics.image import mask_iou
from metrics.specs import MASK_TABLE

COLUMNS = ("visible IoU", "amodal mIoU", "visible missed", "hidden missed", "extra on occluder", "extra on background")


def error_parts(truth_visible: np.ndarray, truth_whole: np.ndarray, occluder: np.ndarray, visible: np.ndarray,
                whole: np.ndarray) -> tuple[float, ...]:
    """The ``COLUMNS`` of one answer (``visible``, ``whole``) against the truth, each in [0, 1]."""
    union = max(int((truth_whole | whole).sum()), 1)
    return (mask_iou(visible, truth_visible), mask_iou(whole, truth_whole),
            (truth_visible & ~whole).sum() / union, (truth_whole & ~truth_visible & ~whole).sum() / union,
            (whole & occluder & ~truth_whole).sum() / union, (whole & ~occluder & ~truth_whole).sum() / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--inputs", nargs="+", default=["click1", "box"], choices=PHOTO_INPUTS)
    parser.add_argument("--completion", default="amodalnet")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--worst", type=int, default=0, help="also list this many cases with the lowest amodal IoU")
    args = parser.parse_args()
    cases = find_cases(args.photos, args.split)
    completion_config = CompletionConfig(samples=args.samples)
    print("input   " + " | ".join(COLUMNS))
    for source in args.inputs:
        config = Configuration(MASK_TABLE, source, args.completion)
        parts = []
        for case in cases:
            visible = visible_mask(case, source, completion_config.segmenter)
            whole = amodal_mask(case, config, visible, completion_config, seed=0)
            parts.append(error_parts(case.modal, case.amodal, case.occluder, visible, whole))
        print(f"{source:7s} " + " | ".join(f"{100 * v:.1f}" for v in np.mean(parts, axis=0)))
        for k in np.argsort([p[1] for p in parts])[:args.worst]:
            print(f"    {cases[k].name}: " + ", ".join(f"{c} {100 * v:.0f}" for c, v in zip(COLUMNS, parts[k])))
    print(f"{len(cases)} cases of {args.photos} ({args.split}), {args.completion}, {args.samples} samples")


if __name__ == "__main__":
    main()
