"""Conformance of our multi-view exports with nerfstudio's and SDFStudio's own data parsers.

    .venv/bin/python benchmarks/conformance/parsers.py --python NS_VENV/bin/python --sdfstudio SRC/sdfstudio
        [--work DIR]

Writes a reconstruction folder the way ``amodal3d reconstruct`` does (16 views of a sphere on the SyncDreamer ring,
transforms.json, meta_data.json) and a scene folder, parses them with nerfstudio 1.1.5's ``nerfstudio-data`` and
``sdfstudio-data``, SDFStudio's own ``sdfstudio`` parser and our ``amodal3d-data`` plugin (in nerfstudio's own
environment, ``parsers_upstream.py``), and checks what a user needs: every parsed camera looks at the object, at the
right distance and focal length, and the masks mean what they should (SDFStudio: a foreground mask, 1 on the object;
nerfstudio: no mask, so rays are sampled on the background too).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # tests.synthetic writes the scene folder


def write_folders(work: Path) -> tuple[Path, Path, float]:
    import trimesh

    from amodal3d.core.cameras import syncdreamer_ring
    from amodal3d.core.formats.reconstruction import write_reconstruction
    from amodal3d.core.render import render_mesh
    from recon.base import ReconResult, View
    from tests.synthetic import coloured, make_scene_set

    if work.exists():
        shutil.rmtree(work)
    sphere = coloured(trimesh.creation.icosphere(3, radius=0.4), (200, 40, 40))
    views = [View(render_mesh(sphere, c).rgba, c) for c in syncdreamer_ring(30.0, 128)]
    recon = write_reconstruction(ReconResult(sphere, views, {"method": "conformance"}), work / "recon")
    scene = make_scene_set(work / "scenes", 1, res=96)[0]
    object_fraction = float(np.mean([v.mask.mean() for v in views]))
    return recon, scene, object_fraction


def check(report: dict, object_fraction: float) -> list[tuple[str, str, bool]]:
    rows = []
    for name, parsed in report.items():
        centres, forward = np.asarray(parsed["centres"]), np.asarray(parsed["forward"])
        offsets = np.asarray(parsed["object"]) - centres  # the object, wherever the parser moved it
        to_object = offsets / np.linalg.norm(offsets, axis=1, keepdims=True)
        cosines = np.sum(forward / np.linalg.norm(forward, axis=1, keepdims=True) * to_object, axis=1)
        distance = np.linalg.norm(offsets, axis=1)
        looks = f"cos(view, to object) min {cosines.min():.4f}; distance {distance.min():.3f}-{distance.max():.3f}"
        ok = cosines.min() > 0.999
        if "frame kept" in name or "auto-orient off" in name or "amodal3d" in name or "own parser" in name:
            ok &= bool(np.allclose(distance, 1.5, atol=1e-4))
        if name.startswith(("nerfstudio-data", "amodal3d")):
            looks += f"; masks: {'none (rays everywhere)' if parsed['masks'] is None else 'given'}"
            ok &= parsed["masks"] is None
        if "own parser" in name:
            fractions = np.asarray(parsed["mask_object_fraction"])
            looks += (f"; foreground mask {tuple(parsed['mask_shape'])}, values {parsed['mask_values']}, object "
                      f"{fractions.mean():.3f} of pixels (ours {object_fraction:.3f})")
            ok &= parsed["mask_values"] == [0.0, 1.0] and abs(fractions.mean() - object_fraction) < 1e-3
        rows.append((name, looks, bool(ok)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the interpreter of nerfstudio 1.1.5's environment")
    parser.add_argument("--sdfstudio", type=Path, required=True, help="a checkout of autonomousvision/sdfstudio")
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance/work/parsers"))
    args = parser.parse_args()
    recon, scene, fraction = write_folders(args.work.resolve())
    proc = subprocess.run([args.python, str(HERE / "parsers_upstream.py"), "--recon", str(recon), "--scene",
                           str(scene), "--sdfstudio", str(args.sdfstudio.resolve())],
                          capture_output=True, check=False, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the upstream parsers failed:\n{proc.stderr[-3000:]}")
    rows = check(json.loads(proc.stdout.strip().splitlines()[-1]), fraction)
    print("| parser | what it gives | result |")
    print("|---|---|---|")
    for name, measured, ok in rows:
        print(f"| {name} | {measured} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{sum(r[2] for r in rows)}/{len(rows)} checks pass")
    raise SystemExit(0 if all(r[2] for r in rows) else 1)


if __name__ == "__main__":
    main()
