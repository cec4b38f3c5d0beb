"""gestalt-tiny against classical and the modal / convex-hull baselines on objects it never saw in training: the
`amodal3d bench` Table 1 (amodal mask IoU) rows on rendered scenes of the held-out bundled objects (mug, teapot,
panda, bottle), of two of them re-exported without textures and of four untextured primitives (torus, capsule, cone,
box); untextured meshes get random materials in the scenes.

    .venv/bin/python benchmarks/bench_gestalt_tiny.py [--num 40] [--seed 21] [--out DIR] [--weights DIR]

The scenes are rendered first (256x256, 4 spp, no ring views: Table 1 needs only the input view), then scored by
`amodal3d bench --configs 'mask/*'`; the summary's Table 1 is printed. gestalt-tiny was trained on scenes of the
other twelve bundled objects only (amodal3d/weights/gestalt-tiny/TRAINING.md).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HELD_OUT = ("mug", "teapot", "panda", "bottle")


def untextured_meshes(folder: Path) -> list[Path]:
    """The textured held-out objects re-exported as bare geometry (PLY, z up) and four primitives."""
    import trimesh

    from blender_scenes.objects import load_object

    folder.mkdir(parents=True, exist_ok=True)
    meshes = {}
    for name in ("mug", "panda"):
        meshes[f"{name}_plain"] = load_object(name).to_trimesh()  # already z up
    meshes.update(torus=trimesh.creation.torus(1.0, 0.35), capsule=trimesh.creation.capsule(1.5, 0.5),
                  cone=trimesh.creation.cone(0.8, 1.6), box=trimesh.creation.box((1.0, 0.6, 1.4)))
    paths = []
    for name, mesh in meshes.items():
        paths.append(folder / f"{name}.ply")
        mesh.export(paths[-1])
    return paths


def main() -> None:
    from amodal3d.cli import entrypoint
    from blender_scenes.generate import RenderConfig, render_scenes
    from blender_scenes.sampler import SceneConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=40)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--samples", type=int, default=4, help="completion samples K")
    parser.add_argument("--out", type=Path, default=None, help="scenes and bench output (default: a temporary folder)")
    parser.add_argument("--weights", default=None, help="another gestalt-tiny model (amodal3d train OUT/model)")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_gestalt_tiny_"))
    objects = [*HELD_OUT, *map(str, untextured_meshes(out / "meshes"))]
    render_scenes(objects, args.num, args.seed, out / "scenes", SceneConfig(resolution=256, ring_views=False),
                  RenderConfig(spp=4, denoise_quality="FAST"), progress=True, workers=2)
    options = ["--gestalt-tiny.weights", str(args.weights)] if args.weights else []
    code = entrypoint(["bench", "--scenes", str(out / "scenes"), "--out", str(out / "bench"), "--completion",
                       "classical", "gestalt-tiny", "--configs", "mask/*", "--samples", str(args.samples),
                       "--seed", "0", *options])
    if code == 0:
        print((out / "bench" / "summary.md").read_text())
    raise SystemExit(code)


if __name__ == "__main__":
    main()
