"""CPU shape priors against inflate: Tables 3-4 rows (CD, vIoU, PSNR of the 16 views) for every prior and for the
automatic choice, from the ground-truth whole view (``whole_gt``) and from the classical completion with the
ground-truth visible mask (``completion_gt``), per object category.

Two scene sets, rendered the same way (256x256, 4 spp, 16 ring views): ``dev``, the 16 bundled objects (the
selection rule was set on these), and ``heldout``, twelve procedural meshes generated here from a seed (vases, bowls,
cans, cones, a torus, boxes, a board, prisms, ellipsoids, a lumpy stone) that were never looked at while tuning.

    .venv/bin/python benchmarks/bench_priors.py [--set dev|heldout] [--num 32] [--seed 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

RECONS = ("inflate", "prior", "revolution", "extrusion", "mirror")


def revolved(profile: list[tuple[float, float]], sections: int = 64):
    """A closed solid of revolution about +Z from (radius, height) points listed bottom to top."""
    import trimesh

    points = np.array([(0.0, profile[0][1]), *profile, (0.0, profile[-1][1])])
    return trimesh.creation.revolve(points, sections=sections)


def prism(polygon: list[tuple[float, float]], height: float, triangles: list[tuple[int, int, int]] | None = None):
    """An extrusion of a 2D polygon (counter-clockwise; fan-triangulated unless ``triangles`` is given) along +Z."""
    import trimesh

    polygon = np.asarray(polygon, float)
    faces = np.array(triangles if triangles else [(0, i, i + 1) for i in range(1, len(polygon) - 1)])
    return trimesh.creation.extrude_triangulation(polygon, faces, height)


def heldout_meshes(folder: Path, seed: int = 0) -> list[Path]:
    """Twelve procedural meshes (PLY, +Z up), the same for a seed."""
    import trimesh

    rng = np.random.default_rng(seed)
    u = rng.uniform
    heights = np.linspace(0, 1, 9)
    vase_r = 0.22 + 0.12 * np.sin(np.pi * heights * u(1.2, 2.2) + u(0, 3)) + 0.05
    meshes = {
        "vase": revolved([(float(r), float(h)) for r, h in zip(vase_r, heights)]),
        "bowl": revolved([(0.18, 0.0), (0.4, 0.12), (0.5, 0.3), (0.5, 0.32)]),
        "can_wide": trimesh.creation.cylinder(radius=u(0.4, 0.5), height=u(0.5, 0.7), sections=64),
        "cone": trimesh.creation.cone(radius=u(0.3, 0.45), height=u(0.8, 1.1), sections=64),
        "torus": trimesh.creation.torus(0.5, u(0.12, 0.2)),
        "carton": trimesh.creation.box((u(0.3, 0.5), u(0.5, 0.8), u(0.8, 1.2))),
        "crate": trimesh.creation.box((u(0.8, 1.0), u(0.6, 0.8), u(0.4, 0.6))),
        "board": trimesh.creation.box((u(0.9, 1.1), u(0.5, 0.7), 0.06)),
        "wedge": prism([(0, 0), (1.0, 0), (0, u(0.5, 0.7))], u(0.3, 0.5)),
        "l_block": prism([(0, 0), (1, 0), (1, 0.3), (0.3, 0.3), (0.3, 1), (0, 1)], u(0.3, 0.4),
                         [(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 5)]),
        "ellipsoid": trimesh.creation.icosphere(4).apply_scale((u(0.4, 0.6), u(0.25, 0.35), u(0.3, 0.4))),
    }
    stone = trimesh.creation.icosphere(4)
    direction = stone.vertices / np.linalg.norm(stone.vertices, axis=1, keepdims=True)
    lumps = sum(u(0.05, 0.12) * np.exp(4 * (direction @ d / np.linalg.norm(d) - 1)) for d in rng.normal(size=(5, 3)))
    stone.vertices = stone.vertices * (1 + lumps)[:, None] * (0.6, 0.45, 0.35)
    meshes["stone"] = stone
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, mesh in meshes.items():
        paths.append(folder / f"{name}.ply")
        mesh.export(paths[-1])
    return paths


def per_category(results: Path) -> str:
    """Markdown: mean CD / vIoU per object and configuration, and which prior the automatic choice took."""
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    table: dict[tuple[str, str], list[dict]] = defaultdict(list)
    chosen: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        table[row["target"], row["config"]].append(row)
        if row.get("recon") == "prior" and row["input"] == "whole_gt":
            chosen[row["target"]].append(row.get("recon_choice") or "?")
    configs = sorted({c for _, c in table})
    lines = ["| object | auto chose | " + " | ".join(configs) + " |", "|---" * (len(configs) + 2) + "|"]
    for target in sorted({t for t, _ in table}):
        cells = []
        for config in configs:
            found = table.get((target, config), [])
            cells.append(f"{np.mean([r['chamfer'] for r in found]):.4f} / {np.mean([r['volume_iou'] for r in found]):.3f}"
                         if found else "")
        picks = ", ".join(f"{p} {chosen[target].count(p)}" for p in sorted(set(chosen[target])))
        lines.append(f"| {target} | {picks} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contact_sheet(out: Path, per_object: int = 1) -> Path:
    """OUT/priors_sheet.png: per object, the input, inflate's and the automatic prior's ring views 0/4/8/12 (the
    bench previews, from the GT whole view) and the ground truth's, with the object's name and the choice."""
    import cv2

    from amodal3d.core.formats import scene as fmt
    from amodal3d.core.io import composite_on_white, read_image, write_png

    rows_by_target: dict[str, list[dict]] = defaultdict(list)
    for line in (out / "bench" / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["config"] == "recon/prior/whole_gt":
            rows_by_target[row["target"]].append(row)
    tiles = []
    for target in sorted(rows_by_target):
        for row in rows_by_target[target][:per_object]:
            scene = fmt.Scene.open(Path(row["scene_path"]))
            tile = 96
            truth = np.concatenate([cv2.resize(composite_on_white(scene.ring_view(i)), (tile, tile),
                                               interpolation=cv2.INTER_AREA) for i in (0, 4, 8, 12)], axis=1)
            strips = [read_image(out / "bench" / "work" / row["scene"] / "recon" / name / "whole_gt.png")[..., :3]
                      for name in ("inflate", "prior")]
            image = cv2.resize(scene.image(fmt.INPUT)[..., :3], (tile, tile), interpolation=cv2.INTER_AREA)
            line = np.concatenate([image, *strips, truth], axis=1)
            label = np.ones((18, line.shape[1], 3), np.float32)
            cv2.putText(label, f"{target}: auto chose {row.get('recon_choice')}   |   input | inflate x4 | "
                        f"prior x4 | ground truth x4", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            tiles.append(np.concatenate([label, line], axis=0))
    sheet = out / "priors_sheet.png"
    write_png(sheet, np.concatenate(tiles, axis=0))
    return sheet


def main() -> None:
    from amodal3d.cli import entrypoint
    from blender_scenes.generate import RenderConfig, render_scenes
    from blender_scenes.sampler import SceneConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("dev", "heldout"), default="heldout")
    parser.add_argument("--num", type=int, default=32)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="scenes and bench output (default: a temporary folder)")
    parser.add_argument("--recons", nargs="+", default=list(RECONS))
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_priors_"))
    objects = ["all"] if args.set == "dev" else [str(p) for p in heldout_meshes(out / "meshes", args.seed)]
    render_scenes(objects, args.num, args.seed, out / "scenes", SceneConfig(resolution=256),
                  RenderConfig(spp=4, denoise_quality="FAST"), progress=True, workers=2)
    configs = [f"recon/{r}/whole_gt" for r in args.recons]
    configs += [f"recon/{r}/completion_gt/classical" for r in ("inflate", "prior") if r in args.recons]
    code = entrypoint(["bench", "--scenes", str(out / "scenes"), "--out", str(out / "bench"), "--completion",
                       "classical", "--recon", *args.recons, "--configs", *configs, "--samples", "4", "--seed", "0",
                       "--workers", "2"])
    if code == 0:
        print((out / "bench" / "summary.md").read_text())
        print(per_category(out / "bench" / "results.jsonl"))
        print(f"contact sheet: {contact_sheet(out)}")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
