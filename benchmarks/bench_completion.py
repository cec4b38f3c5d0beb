"""Amodal mask IoU of the completion methods against two baselines (amodal = modal, amodal = convex hull of the
modal mask), by occlusion bucket, on rendered scenes and on real photos with pasted occluders; seconds per object.

    .venv/bin/python benchmarks/bench_completion.py --scenes DIR [--samples 4] [--methods classical]
        [--per-target 4] [--photo-seeds 0]

Photo cases follow pix2gestalt's whole-part recipe on Debian's labelme-examples (apt-get install labelme-examples):
each annotated instance that does not touch the image border is a whole object; another instance's cut-out is pasted
over it to hide 20-50% or 50-80% of it, one paste per target and --per-target, drawn anew for each of --photo-seeds.
Without --scenes, 20 scenes of the bundled objects are rendered first.

--visible-from click1 / click3 / box: each row starts from our segmenter's visible mask for a click at the visible
part's most interior point (click3: its three most interior points), or for the box around it (as the real-photo
benchmark's prompt rows do), instead of the true one; the visible mask's IoU is printed too. The labelme photos were
never used to train or tune the bundled networks, so this is where a change to the prompt path can be judged on
unseen photos before the held-out split is scored.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from amodal3d.completion import complete
from amodal3d.completion.baselines import convex_hull_mask
from amodal3d.core.formats.scene import AMODAL_MASK, INPUT, MODAL_MASK, Scene
from amodal3d.core.prompts import Prompt, box_around, interior_points
from amodal3d.data.labelme import LABELME_EXAMPLES, read_labelme
from amodal3d.data.paste import cut_out, paste_occluder
from metrics import mask_iou

BUCKETS = ((0.2, 0.5), (0.5, 0.8))


def scene_cases(folder: Path) -> list[dict]:
    cases = []
    for path in sorted(folder.glob("scene_*")):
        scene = Scene.open(path)
        cases.append({"name": path.name, "source": "render", "image": scene.image(INPUT),
                      "modal": scene.mask(MODAL_MASK), "amodal": scene.mask(AMODAL_MASK),
                      "occlusion": scene.meta["occlusion_ratio"]})
    return cases


def photo_cases(root: Path, per_target: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    photos = [read_labelme(p) for p in sorted(root.glob("*.json"))]
    pool = [(img, inst) for img, insts in photos for inst in insts if inst.mask.sum() >= 1500]
    cases = []
    for img, insts in photos:
        for t, target in enumerate(insts):
            rows, cols = np.nonzero(target.mask)
            if target.mask.sum() < 3000 or rows.min() < 2 or cols.min() < 2 or \
                    rows.max() > img.shape[0] - 3 or cols.max() > img.shape[1] - 3:
                continue  # touches the border: not known to be whole
            for k in range(per_target):
                others = [p for p in pool if p[1] is not target]
                occ_img, occ = others[int(rng.integers(len(others)))]
                scale = np.sqrt(target.mask.sum() / occ.mask.sum()) * rng.uniform(0.8, 1.3)
                rgb, mask = cut_out(occ_img, occ.mask, scale)
                case = paste_occluder(img, target.mask, rgb, mask, BUCKETS[k % 2], rng)
                if case is not None:
                    cases.append({"name": f"{target.image_path.stem}_{target.label}{t}_{k}", "source": "photo",
                                  "image": case.image, "modal": case.visible_mask, "amodal": case.whole_mask,
                                  "occlusion": case.occlusion})
    return cases


def user_prompt(visible: np.ndarray, visible_from: str) -> Prompt | None:
    """The prompt a user gives for ``visible_from`` (None: the true visible mask is given)."""
    if visible_from in ("click1", "click3"):
        points = [tuple(point) for point in interior_points(visible, int(visible_from[-1]))]
        return Prompt(points=points, labels=[1] * len(points))
    return Prompt(box=box_around(visible)) if visible_from == "box" else None


def run(cases: list[dict], methods: list[str], samples: int, seed: int, estimate_occluder: bool = False,
        visible_from: str = "truth") -> list[dict]:
    from amodal3d.bench.photos import segmented_or_empty
    from amodal3d.completion.frontend import check_image
    from amodal3d.segmenters import SegmenterConfig

    rows = []
    for case in cases:
        prompt = user_prompt(case["modal"], visible_from)
        image = check_image(case["image"])  # the segmenter takes floats in [0, 1]
        visible = case["modal"] if prompt is None else segmented_or_empty(image, prompt, SegmenterConfig())
        row = {"name": case["name"], "source": case["source"], "occlusion": case["occlusion"],
               "visible_iou": mask_iou(visible, case["modal"]), "modal": mask_iou(visible, case["amodal"]),
               "hull": mask_iou(convex_hull_mask(visible), case["amodal"]) if visible.any() else 0.0}
        for method in methods:
            if not visible.any():  # nothing found scores what an empty answer scores
                row[f"{method}_seconds"], row[method] = 0.0, 0.0
                continue
            start = time.perf_counter()
            result = complete(image, Prompt(mask=visible), method=method, samples=samples, seed=seed,
                              estimate_occluder=estimate_occluder, segmented_from=prompt)
            row[f"{method}_seconds"] = time.perf_counter() - start
            row[method] = mask_iou(result.amodal_mask, case["amodal"])
        rows.append(row)
    return rows


def summarise(rows: list[dict], methods: list[str]) -> dict:
    table = {}
    for source in ("render", "photo", "all"):
        for lo, hi in (*BUCKETS, (0.0, 1.0)):
            sel = [r for r in rows if (source == "all" or r["source"] == source) and lo <= r["occlusion"] <= hi]
            if sel:
                table[f"{source} {int(lo * 100)}-{int(hi * 100)}%"] = {
                    "n": len(sel),
                    **{m: float(np.mean([r[m] for r in sel])) for m in ("visible_iou", "modal", "hull", *methods)}}
    seconds = {f"{m} {source}": float(np.mean([r[f"{m}_seconds"] for r in rows if r["source"] == source]))
               for m in methods for source in ("render", "photo") if any(r["source"] == source for r in rows)}
    return {"table": table, "seconds_per_object": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=None)
    parser.add_argument("--photos", type=Path, default=LABELME_EXAMPLES)
    parser.add_argument("--per-target", type=int, default=4)
    parser.add_argument("--photo-seeds", type=int, nargs="+", default=[0], help="seeds of the occluder pastes")
    parser.add_argument("--methods", nargs="+", default=["classical"])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write per-case rows here")
    parser.add_argument("--estimate-occluder", action="store_true", help="confine completions to visible + the "
                        "estimated occluder")
    parser.add_argument("--visible-from", choices=("truth", "click1", "click3", "box"), default="truth",
                        help="the visible mask rows start from: the true one, or our segmenter's from a prompt")
    args = parser.parse_args()

    scenes = args.scenes
    if scenes is None:
        from blender_scenes.generate import render_scenes

        scenes = Path(tempfile.mkdtemp(prefix="bench_completion_"))
        render_scenes(["all"], 20, 1, scenes, progress=True)
    cases = scene_cases(scenes)
    if args.photos.is_dir():
        for seed in args.photo_seeds:
            cases += photo_cases(args.photos, args.per_target, seed)
    else:
        print(f"note: {args.photos} missing (apt-get install labelme-examples): photo cases skipped")
    rows = run(cases, args.methods, args.samples, args.seed, args.estimate_occluder, args.visible_from)
    summary = summarise(rows, args.methods)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"visible mask from: {args.visible_from}")
    print("| cases | n | visible IoU | modal | hull | " + " | ".join(args.methods) + " |")
    print("|---|---|---|---|---|" + "---|" * len(args.methods))
    for key, v in summary["table"].items():
        print(f"| {key} | {v['n']} | {v['visible_iou']:.3f} | {v['modal']:.3f} | {v['hull']:.3f} | "
              + " | ".join(f"{v[m]:.3f}" for m in args.methods) + " |")
    print("seconds per object:", json.dumps(summary["seconds_per_object"]))


if __name__ == "__main__":
    main()
