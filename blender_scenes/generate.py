"""Render occluded-object scenes into scene folders (format: ``blender_scenes.scene_format``)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from amodal3d.errors import UserError
from amodal3d.io import atomic_dir, composite_on_white, write_json, write_png
from blender_scenes import scene_format as fmt
from blender_scenes.objects import LoadedObject, bundled_names, load_object, resolve_objects
from blender_scenes.sampler import SceneConfig, SceneSample, sample_scene

TARGET_INDEX = 1


@dataclass
class RenderConfig:
    """Cycles settings."""

    samples: int = 16
    """Cycles samples per pixel (denoised; 16 keeps a full scene near 25 s on 2 cores)."""
    denoise: bool = True
    """OpenImageDenoise on the colour pass (masks and depth are never denoised)."""
    threads: int = 0
    """CPU threads for Cycles; 0 = all cores."""


@dataclass
class SceneReport:
    name: str
    ok: bool
    seconds: float
    occlusion: float | None = None
    attempts: int = 0
    reason: str = ""


@dataclass
class RenderedScene:
    input_rgb: np.ndarray
    modal: np.ndarray
    amodal: np.ndarray
    occluder: np.ndarray
    depth: np.ndarray
    whole: np.ndarray
    views: list[np.ndarray] = field(default_factory=list)
    view_depths: list[np.ndarray] = field(default_factory=list)

    @property
    def occlusion(self) -> float:
        return 1.0 - float(self.modal.sum()) / max(float(self.amodal.sum()), 1.0)


def scene_seed(seed: int, index: int, attempt: int = 0) -> int:
    """Independent, reproducible seed per (run seed, scene index, attempt): scene i is the same whatever --num is."""
    return int(np.random.SeedSequence([seed, index, attempt]).generate_state(1)[0])


def render_input(sample: SceneSample, renderer, background: str) -> RenderedScene:
    """The input view with everything, and the target alone from the same camera."""
    full = renderer.render(sample.input_camera, visible=None, transparent=background == "white")
    alone = renderer.render(sample.input_camera, visible={TARGET_INDEX})
    rgb = composite_on_white(full.rgba)  # white where transparent
    return RenderedScene(
        input_rgb=rgb,
        modal=full.index == TARGET_INDEX,
        amodal=alone.index == TARGET_INDEX,
        occluder=full.index > TARGET_INDEX,
        depth=full.depth,
        whole=alone.rgba,
    )


def render_ring(sample: SceneSample, renderer, rendered: RenderedScene) -> None:
    for camera in sample.ring:
        out = renderer.render(camera, visible={TARGET_INDEX})
        rendered.views.append(out.rgba)
        rendered.view_depths.append(out.depth)


def scene_metadata(sample: SceneSample, rendered: RenderedScene, config: SceneConfig, render: RenderConfig,
                   attempts: int, seconds: float) -> dict:
    def describe(p):
        return {"name": p.obj.name, "category": p.obj.category, "source": p.obj.asset.source,
                "path": str(p.obj.asset.path), "pass_index": p.pass_index, "matrix_world": p.matrix.tolist()}

    return {
        "version": fmt.FORMAT_VERSION,
        "seed": sample.seed,
        "attempts": attempts,
        "target": {**describe(sample.target), "normalisation": sample.target.obj.normalisation},
        "occluders": [describe(p) for p in sample.occluders],
        "occlusion_ratio": rendered.occlusion,
        "occlusion_estimated": sample.estimated_occlusion,
        "occlusion_requested": sample.requested_occlusion,
        "occlusion_range": list(config.occlusion),
        "input_camera": {**sample.input_camera.to_dict(), "elevation_deg": sample.elevation_deg,
                         "azimuth_deg": sample.azimuth_deg, "radius": sample.radius},
        "ring_cameras": [
            {**cam.to_dict(), "elevation_deg": 30.0, "azimuth_deg": (sample.azimuth_deg + 22.5 * i) % 360.0,
             "radius": float(np.linalg.norm(cam.center))}
            for i, cam in enumerate(sample.ring)
        ],
        "mesh_normalisation": {
            "scale": sample.target.obj.normalisation["scale"],
            "offset": sample.target.obj.normalisation["offset"],
            "up": sample.target.obj.normalisation["up"],
            "note": "gt_mesh = R_up(source) * scale + offset (R_up rotates a Y-up file to Z-up)",
        },
        "conventions": {"camera": "OpenCV axes (x right, y down, z forward), c2w", "world_up": "+Z",
                        "depth": "planar z along the optical axis", "depth_background": fmt.DEPTH_BACKGROUND},
        "lighting": asdict(sample.lighting),
        "ground_z": sample.ground_z,
        "render": {"engine": "CYCLES", "device": "CPU", **asdict(render), "resolution": config.resolution,
                   "background": config.background, "seconds": seconds},
    }


def write_scene(folder: Path, sample: SceneSample, rendered: RenderedScene, meta: dict) -> None:
    with atomic_dir(folder) as tmp:
        write_png(tmp / fmt.INPUT, rendered.input_rgb)
        write_png(tmp / fmt.MODAL_MASK, rendered.modal)
        write_png(tmp / fmt.AMODAL_MASK, rendered.amodal)
        write_png(tmp / fmt.OCCLUDER_MASK, rendered.occluder)
        np.save(tmp / fmt.DEPTH, rendered.depth.astype(np.float32))
        write_png(tmp / fmt.WHOLE, rendered.whole)
        (tmp / fmt.VIEWS).mkdir()
        for i, (rgba, depth) in enumerate(zip(rendered.views, rendered.view_depths)):
            write_png(tmp / fmt.view_name(i), rgba)
            np.save(tmp / fmt.view_depth_name(i), depth.astype(np.float32))
        sample.target.obj.to_trimesh().export(tmp / fmt.GT_MESH)
        write_json(tmp / fmt.SCENE_JSON, meta)  # last: its presence marks the folder complete


def generate_scene(folder: Path, index: int, target: LoadedObject, pool: list[LoadedObject], seed: int,
                   config: SceneConfig, render: RenderConfig, renderer) -> SceneReport:
    """Sample, render and check one scene; write it only if its measured occlusion is in range."""
    start = time.perf_counter()
    lo, hi = config.occlusion
    last = "no occluder placement reaches the occlusion range"
    for attempt in range(config.max_attempts):
        sample = sample_scene(target, pool, config, scene_seed(seed, index, attempt))
        if sample is None:
            continue
        renderer.build(sample.placements, sample.lighting, sample.ground_z, seed=sample.seed % (2**31))
        rendered = render_input(sample, renderer, config.background)
        if not lo <= rendered.occlusion <= hi:
            last = f"rendered occlusion {rendered.occlusion:.3f} outside [{lo}, {hi}]"
            continue
        render_ring(sample, renderer, rendered)
        seconds = time.perf_counter() - start
        write_scene(folder, sample, rendered, scene_metadata(sample, rendered, config, render, attempt + 1, seconds))
        return SceneReport(folder.name, True, seconds, rendered.occlusion, attempt + 1)
    return SceneReport(folder.name, False, time.perf_counter() - start, None, config.max_attempts,
                       f"{last} after {config.max_attempts} attempts")


def occluder_pool(targets: list[LoadedObject], occluder_specs: list[str] | None) -> list[LoadedObject]:
    if occluder_specs:
        return [load_object(a) for a in resolve_objects(occluder_specs)]
    if len({t.name for t in targets}) > 1:
        return targets
    return [load_object(n) for n in bundled_names()]  # one target object: occlude it with the bundled pack


def render_scenes(objects: list[str], num: int, seed: int, out: Path, config: SceneConfig | None = None,
                  render: RenderConfig | None = None, occluders: list[str] | None = None,
                  progress: bool = True) -> list[SceneReport]:
    """Render ``num`` scenes into ``out/scene_0000`` ...; complete scenes already there are kept (resumable)."""
    config = config or SceneConfig()
    render = render or RenderConfig()
    config.check()
    if num < 1:
        raise UserError(f"--num must be at least 1, got {num}")
    if render.samples < 1:
        raise UserError(f"--samples must be at least 1, got {render.samples}")
    targets = [load_object(a) for a in resolve_objects(objects)]
    pool = occluder_pool(targets, occluders)
    order = np.random.default_rng(seed).permutation(len(targets))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    from blender_scenes.render_bpy import BlenderRenderer
    from tqdm import tqdm

    reports = []
    with BlenderRenderer(config.resolution, render.samples, render.denoise, render.threads) as renderer:
        bar = tqdm(range(num), desc="scenes", unit="scene", disable=not progress, file=sys.stderr)
        for i in bar:
            folder = out / f"scene_{i:04d}"
            if fmt.is_complete(folder):
                reports.append(SceneReport(folder.name, True, 0.0, reason="exists"))
                continue
            target = targets[order[i % len(targets)]]
            report = generate_scene(folder, i, target, pool, seed, config, render, renderer)
            reports.append(report)
            if not report.ok:
                tqdm.write(f"warning: {folder.name} ({target.name}) not written: {report.reason}", file=sys.stderr)
    failed = [asdict(r) for r in reports if not r.ok]
    failed_path = out / "failed_scenes.json"
    if failed:
        write_json(failed_path, failed)
    elif failed_path.exists():
        failed_path.unlink()
    return reports
