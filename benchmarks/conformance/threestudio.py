"""Conformance of our ``sds`` backend with threestudio's own code, on the CPU.

    .venv/bin/python benchmarks/conformance/threestudio.py --checkout SRC/threestudio --python TS_VENV/bin/python
        [--work DIR]

1. ``threestudio_upstream.py`` (in threestudio's environment), given our ``train_command``'s overrides, leaves the
   trial folder our training call would: threestudio's own parsed ``configs/zero123.yaml`` (CPU-runnable encodings)
   and a checkpoint of its own ``zero123-system`` whose geometry holds a known asymmetric shape; it also records threestudio's own reference camera.
2. Our backend's export call (``export_command``) through threestudio's ``launch.py --export`` (via our driver, on
   the CPU) must write the mesh where ``exported_mesh`` looks, and that mesh must be the known shape.
3. The frame: ``to_our_frame`` must carry threestudio's reference camera onto our input camera's direction, and the
   shape onto the known shape seen from our input azimuth.
(Training itself needs threestudio's CUDA extensions: nerfacc's estimators and tiny-cuda-nn; it is a GPU job.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AZIMUTH = 40.0
ELEVATION = 20.0


def upstream_script() -> dict:
    import runpy

    return runpy.run_path(str(HERE / "threestudio_upstream.py"), run_name="definitions")


def known_shape(resolution: int = 160):
    """The shape ``threestudio_upstream.shape_density`` defines, as a mesh in threestudio's frame (marching cubes of
    the same density, so its surface is the outer one)."""
    import torch
    import trimesh
    from skimage.measure import marching_cubes

    axis = np.linspace(-1.0, 1.0, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    density = upstream_script()["shape_density"](torch.from_numpy(grid).float()).numpy().reshape((resolution,) * 3)
    vertices, faces, _, _ = marching_cubes(density, 25.0, spacing=(axis[1] - axis[0],) * 3)
    return trimesh.Trimesh(vertices - 1.0, faces)


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    return float((cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2)


def run_upstream(checkout: Path, python: str, work: Path) -> dict:
    from amodal3d.core.cameras import syncdreamer_input
    from amodal3d.core.io import write_png
    from recon.sds import SDSConfig, train_command

    image = work / "input_rgba.png"
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[80:176, 60:196] = (200, 60, 40, 255)
    write_png(image, syncdreamer_input(rgba))
    config = SDSConfig(overrides=upstream_script()["CPU_SETTINGS"])
    train = train_command(config, image, ELEVATION, work / "trials", 0)
    overrides = [argument for argument in train if "=" in argument]
    proc = subprocess.run([python, str(HERE / "threestudio_upstream.py"), "--config", config.config, *overrides],
                          cwd=checkout, capture_output=True, check=False, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the upstream run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export(checkout: Path, python: str, work: Path):
    import trimesh

    from recon.sds import SDSConfig, export_command, exported_mesh, run_launch

    settings = upstream_script()["CPU_SETTINGS"]
    start = time.perf_counter()
    run_launch(python, checkout, "cpu", export_command(SDSConfig(overrides=settings), work / "trials"), "export")
    seconds = time.perf_counter() - start
    return trimesh.load(exported_mesh(work / "trials"), force="mesh"), seconds


def checks(record: dict, mesh, seconds: float) -> list[tuple[str, str, bool]]:
    import trimesh

    from amodal3d.core.cameras import spherical_position
    from recon.sds import to_our_frame

    known = known_shape()
    in_theirs = chamfer(mesh.sample(20000), known.sample(20000))
    rows = [("launch.py --export through our export_command", f"{seconds:.0f} s, {len(mesh.faces)} faces",
             len(mesh.faces) > 0),
            ("exported mesh = the fitted shape (threestudio's frame)", f"Chamfer {in_theirs:.3f}", in_theirs < 0.03)]

    camera = np.asarray(record["camera_position"], float)
    turned = trimesh.transformations.rotation_matrix(np.deg2rad(AZIMUTH), [0, 0, 1])[:3, :3] @ camera
    ours = spherical_position(AZIMUTH, ELEVATION, 1.0)
    angle = float(np.degrees(np.arccos(np.clip(turned @ ours / np.linalg.norm(turned), -1, 1))))
    rows.append((f"threestudio's reference camera -> our input camera (azimuth {AZIMUTH:g})", f"{angle:.2e} deg",
                 angle < 1e-3))

    moved = to_our_frame(mesh.copy(), AZIMUTH)
    expected = to_our_frame(known.copy(), AZIMUTH)
    mirrored = expected.copy()
    mirrored.apply_transform(np.diag([1.0, -1.0, 1.0, 1.0]))
    error, wrong = chamfer(moved.sample(20000), expected.sample(20000)), \
        chamfer(moved.sample(20000), mirrored.sample(20000))
    rows.append(("to_our_frame: the shape as seen from our input azimuth",
                 f"Chamfer {error:.3f} (mirrored {wrong:.3f})", error < 0.03 and error < wrong / 2))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance/work/threestudio"))
    args = parser.parse_args()
    checkout, work = args.checkout.resolve(), args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    record = run_upstream(checkout, args.python, work)
    mesh, seconds = export(checkout, args.python, work)
    rows = checks(record, mesh, seconds)
    print(f"upstream fit loss {record['fit_loss']:.3f}; reference camera {np.round(record['camera_position'], 3)}")
    print("| check | measured | result |")
    print("|---|---|---|")
    for name, measured, ok in rows:
        print(f"| {name} | {measured} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{sum(r[2] for r in rows)}/{len(rows)} checks pass")
    sys.exit(0 if all(r[2] for r in rows) else 1)


if __name__ == "__main__":
    main()
