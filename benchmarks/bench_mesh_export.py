"""Seconds of the CPU default reconstruction (``prior``: shape prior, decimation, xatlas unwrap, texture baking) per
object and of writing its GLB + OBJ/MTL + PLY, at face budgets and atlas sizes. Targets: <= 5 s per object with a
1024^2 atlas; a 20k-face mesh written in < 1 s.

    .venv/bin/python benchmarks/bench_mesh_export.py --scenes DIR [--limit 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    from amodal3d.core.formats import scene as fmt
    from amodal3d.core.formats.reconstruction import write_meshes
    from recon.pipeline import make_inputs, reconstruct

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=8)
    args = parser.parse_args()
    folders = sorted(p for p in args.scenes.glob("scene_*") if (p / "scene.json").is_file())[:args.limit]
    settings = [(10000, 1024), (20000, 1024), (20000, 2048)]
    recon_s = {s: [] for s in settings}
    write_s = {s: [] for s in settings}
    for folder in folders:
        scene = fmt.Scene.open(folder)
        rgba = scene.image(fmt.WHOLE).copy()
        rgba[..., 3] = scene.mask(fmt.AMODAL_MASK)
        inputs = make_inputs(rgba, folder)
        for faces, size in settings:
            start = time.perf_counter()
            result = reconstruct(inputs, "prior", options={"faces": faces, "texture_size": size})
            recon_s[faces, size].append(time.perf_counter() - start)
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                write_meshes(result.mesh, Path(out))
                write_s[faces, size].append(time.perf_counter() - start)
            print(f"{folder.name} {scene.meta['target']['name']:>14} {result.info['prior']:>10} faces {faces:>5} "
                  f"atlas {size}: reconstruct {recon_s[faces, size][-1]:.2f} s, write {write_s[faces, size][-1]:.2f} s",
                  flush=True)
    for key in settings:
        print(f"faces {key[0]}, atlas {key[1]}: reconstruct median {statistics.median(recon_s[key]):.2f} s "
              f"(max {max(recon_s[key]):.2f}), write GLB+OBJ+PLY median {statistics.median(write_s[key]):.2f} s "
              f"(max {max(write_s[key]):.2f})")


if __name__ == "__main__":
    main()
