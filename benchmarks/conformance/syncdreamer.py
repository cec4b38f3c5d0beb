"""Conformance of our ``syncdreamer`` backend with SyncDreamer's own code, on the CPU.

    .venv/bin/python benchmarks/conformance/syncdreamer.py --checkout SRC/SyncDreamer --python SD_VENV/bin/python
        [--work DIR] [--golden tests/data/syncdreamer_upstream] [--skip-generate] [--renderer-steps N]

1. ``syncdreamer_upstream.py`` (in SyncDreamer's environment) builds SyncDreamer's own model from its own config with
   the UNet shrunk and random weights, and records its ``prepare_inputs`` framing and ``camera-16.pkl`` cameras.
2. Framing and cameras: our ``syncdreamer_input`` and ring against SyncDreamer's.
3. Our backend end to end through SyncDreamer's ``generate.py`` and ``train_renderer.py`` (via our driver, on the
   CPU) with that model: 16 views on our ring and a mesh.
4. The frame: SyncDreamer's NeuS builds its rays from ``camera-16.pkl``'s poses (its mesh lives in their world), and
   view 0 is the input's azimuth; ``to_our_frame`` must carry those cameras onto our ring at the input azimuth.
5. SyncDreamer's NeuS fitted to the 16 ground-truth views of a known asymmetric shape (through our backend's
   ``renderer_mesh``), its mesh brought into our frame and scored by our metrics (Chamfer, volumetric IoU), next to
   the same mesh left in SyncDreamer's frame or mirrored. Its NeuS takes over 10 s a step on this CPU (a real fit,
   2000 steps, is a GPU job), so it runs 20 steps (``--renderer-steps``): enough to tell the frames apart.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AZIMUTH = 40.0


def run_upstream(checkout: Path, python: str, work: Path) -> None:
    if (work / "syncdreamer_tiny.ckpt").is_file():
        return
    proc = subprocess.run([python, str(HERE / "syncdreamer_upstream.py"), "--out", str(work)], cwd=checkout,
                          capture_output=True, check=False, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the upstream run failed:\n{proc.stderr[-3000:]}")


def check_framing(work: Path) -> list[tuple[str, str, bool]]:
    from amodal3d.core.cameras import syncdreamer_input, syncdreamer_ring

    up = np.load(work / "upstream_framing.npz")
    framing = float(np.abs(syncdreamer_input(up["rgba"])[..., :3] - (up["input_image"] + 1) / 2).max())
    ring = syncdreamer_ring(0.0)
    poses = float(np.abs(np.stack([c.w2c[:3] for c in ring]) - up["poses"]).max())
    intrinsics = float(np.abs(ring[0].K - up["K"]).max())
    return [("framing = prepare_inputs (crop 200, elevation 20)", f"max {framing:.1e}", framing < 1e-6),
            ("ring cameras = camera-16.pkl poses (w2c)", f"max {poses:.1e}", poses < 1e-5),
            ("intrinsics = camera-16.pkl K", f"max {intrinsics:.1e}", intrinsics < 1e-9)]


def known_shape():
    """An asymmetric solid in the unit-box frame (a bar along X with a block on its +Y side at +X), watertight."""
    import trimesh
    from skimage.measure import marching_cubes

    axis = np.linspace(-0.6, 0.6, 121)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    bar = (np.abs(x) < 0.45) & (np.abs(y) < 0.15) & (np.abs(z) < 0.2)
    block = (np.abs(x - 0.25) < 0.13) & (y > 0.0) & (y < 0.4) & (np.abs(z) < 0.28)
    vertices, faces, _, _ = marching_cubes((bar | block).astype(np.float32), 0.5, spacing=(axis[1] - axis[0],) * 3)
    mesh = trimesh.Trimesh(vertices - 0.6, faces)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=np.tile([200, 60, 40, 255], (len(mesh.faces), 1)))
    return mesh


def scene():
    """The known shape, its input view from AZIMUTH and its 16 ground-truth views on our ring."""
    from amodal3d.core.cameras import (
        orbit_camera,
        syncdreamer_intrinsics,
        syncdreamer_ring,
    )
    from amodal3d.core.render import render_mesh
    from recon.base import ReconInput, View

    shape = known_shape()
    camera = orbit_camera(AZIMUTH, 20.0, 1.5, syncdreamer_intrinsics(256), 256, 256)
    ring = [View(render_mesh(shape, c, shading=0.6).rgba, c) for c in syncdreamer_ring(AZIMUTH)]
    return shape, ReconInput(View(render_mesh(shape, camera, shading=0.6).rgba, camera), 20.0), ring


def config(args, work: Path, **overrides):
    from recon.syncdreamer import SyncDreamerConfig

    return SyncDreamerConfig(code=str(args.checkout), python=args.python,
                             checkpoint=str(work / "syncdreamer_tiny.ckpt"), model_config=str(work / "syncdreamer_tiny.yaml"), device="cpu", **overrides)


def end_to_end(args, work: Path) -> list[tuple[str, str, bool]]:
    from amodal3d.core.cameras import syncdreamer_ring
    from recon.syncdreamer import SyncDreamerReconstructor

    _, inputs, _ = scene()
    start = time.perf_counter()
    result = SyncDreamerReconstructor(config(args, work, steps=10, renderer_steps=10, renderer_rays=512,
                                             mesh_resolution=64)).reconstruct(inputs, seed=6033)
    seconds = time.perf_counter() - start
    ring = syncdreamer_ring(AZIMUTH)
    cameras_ok = all(np.allclose(v.camera.c2w, c.c2w) for v, c in zip(result.views, ring))
    made = f"{seconds:.0f} s, {len(result.views)} views, {len(result.mesh.faces)} faces"
    return [("generate.py + train_renderer.py through our backend", made,
             len(result.views) == 16 and len(result.mesh.faces) > 0),
            ("views on our ring at the input azimuth", f"azimuth {AZIMUTH:g}", cameras_ok)]


def frame(work: Path) -> list[tuple[str, str, bool]]:
    """SyncDreamer's NeuS builds its rays from camera-16.pkl's poses, so its mesh lives in their world frame. Our
    to_our_frame must carry those cameras onto our ring at the input azimuth."""
    import trimesh

    from amodal3d.core.cameras import syncdreamer_ring
    from recon.syncdreamer import to_our_frame

    poses = np.load(work / "upstream_framing.npz")["poses"]
    centres = np.stack([-p[:, :3].T @ p[:, 3] for p in poses])  # camera centres in SyncDreamer's frame
    moved = to_our_frame(trimesh.PointCloud(centres), AZIMUTH).vertices
    ours = np.stack([c.center for c in syncdreamer_ring(AZIMUTH)])
    error = float(np.abs(moved - ours).max())
    return [(f"SyncDreamer's camera frame -> ours at azimuth {AZIMUTH:g}", f"max {error:.1e}", error < 1e-5)]


def neus_on_ground_truth(args, work: Path, steps: int) -> list[tuple[str, str, bool]]:
    """SyncDreamer's NeuS (train_renderer.py, through our backend's renderer_mesh) fitted to the 16 ground-truth views
    on our ring, its mesh brought into our frame by to_our_frame and scored by our metrics against the known shape;
    next to the same mesh left in SyncDreamer's frame and mirrored, which a frame error would give."""

    from amodal3d.core.io import write_png
    from metrics.geometry import chamfer_distance, volume_iou
    from recon.syncdreamer import SyncDreamerReconstructor, locate, to_our_frame

    shape, _, ring = scene()
    c = config(args, work, renderer_steps=steps, renderer_rays=1024, mesh_resolution=128)
    folder = work / "neus_gt"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "views").mkdir(parents=True)
    write_png(folder / "views" / "0.png", np.concatenate(
        [v.rgba[..., :3] * v.rgba[..., 3:] + 1 - v.rgba[..., 3:] for v in ring], axis=1))
    start = time.perf_counter()
    theirs = SyncDreamerReconstructor(c).renderer_mesh(ring, folder, locate(c))
    seconds = time.perf_counter() - start
    theirs.export(work / "neus_gt_theirs.ply")
    candidates = {"to_our_frame": to_our_frame(theirs.copy(), AZIMUTH), "left in SyncDreamer's frame": theirs.copy(),
                  "mirrored": to_our_frame(theirs.copy(), AZIMUTH).apply_transform(np.diag([1.0, -1, 1, 1]))}
    truth = shape.sample(30000)
    scores = {name: (chamfer_distance(mesh.sample(30000), truth), volume_iou(mesh, shape, resolution=96))
              for name, mesh in candidates.items()}
    ours = scores["to_our_frame"]
    best_other = max(iou for name, (_, iou) in scores.items() if name != "to_our_frame")
    shown = ", ".join(f"{name}: Chamfer {cd:.3f}, IoU {iou:.2f}" for name, (cd, iou) in scores.items())
    return [(f"NeuS on ground-truth views ({steps} steps, {seconds:.0f} s) -> our frame, by our metrics", shown,
             ours[1] > 0.5 and ours[1] > best_other + 0.1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/conformance/work/syncdreamer"))
    parser.add_argument("--golden", type=Path, default=None)
    parser.add_argument("--skip-generate", action="store_true", help="skip the slow end-to-end generate run")
    parser.add_argument("--renderer-steps", type=int, default=20,
                        help="NeuS steps on the ground-truth views (0: skip that check)")
    args = parser.parse_args()
    args.checkout = args.checkout.resolve()
    work = args.work.resolve()
    run_upstream(args.checkout, args.python, work)
    rows = check_framing(work) + frame(work)
    if not args.skip_generate:
        rows += end_to_end(args, work)
    if args.renderer_steps:
        rows += neus_on_ground_truth(args, work, args.renderer_steps)
    print("| check | measured | result |")
    print("|---|---|---|")
    for name, measured, ok in rows:
        print(f"| {name} | {measured} | {'pass' if ok else 'FAIL'} |")
    print(f"\n{sum(r[2] for r in rows)}/{len(rows)} checks pass")
    if args.golden:
        args.golden.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "upstream_framing.npz", args.golden / "framing.npz")
        print(f"golden files: {args.golden}")
    sys.exit(0 if all(r[2] for r in rows) else 1)


if __name__ == "__main__":
    main()
