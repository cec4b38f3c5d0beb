"""Render occluded-object scenes into scene folders (format: ``amodal3d.core.formats.scene``)."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from amodal3d.core.cameras import ring_angles
from amodal3d.core.errors import UserError
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import composite_on_white, write_json, write_png
from amodal3d.core.optional import available, missing_message
from amodal3d.core.outputs import atomic_dir, check_output, exclusive, prepare_resumable
from blender_scenes.objects import LoadedObject, bundled_names, load_object, resolve_objects
from blender_scenes.sampler import SceneConfig, SceneSample, sample_scene

TARGET_INDEX = 1


@dataclass
class RenderConfig:
    """Cycles settings."""

    spp: int = 16
    """Cycles samples per pixel (denoised; 16 keeps a full scene near 25 s on 2 cores)."""
    denoise: bool = True
    """OpenImageDenoise on the colour pass (masks and depth are never denoised)."""
    denoise_quality: Literal["HIGH", "BALANCED", "FAST"] = "HIGH"
    """OpenImageDenoise quality; FAST saves about 0.1 s per view on 2 cores (at 4 spp: 0.4-1.4 dB lower PSNR against
    64 spp renders, which stay at 33-41 dB)."""
    threads: int = 0
    """CPU threads for Cycles; 0 = all cores."""


@dataclass
class RenderScenesConfig:
    """Render occluded object scenes with full amodal ground truth (scene folder format in DESIGN.md)."""

    out: Path
    """Output folder; scenes go to OUT/scene_0000, ... Complete scenes already there are kept (resumable)."""
    objects: list[str] = field(default_factory=lambda: ["all"])
    """Target objects: bundled names, 'all', mesh files (OBJ/PLY/OFF/GLB/STL) or Google Scanned Objects folders."""
    num: int = 10
    """Number of scenes."""
    seed: int = 0
    """Run seed: the same seed gives the same scenes."""
    occluder_objects: list[str] = field(default_factory=list)
    """Objects to occlude with (default: the target objects, or the bundled pack when only one is given)."""
    scene: Annotated[SceneConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=SceneConfig)
    render: Annotated[RenderConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=RenderConfig)
    contact_sheet: bool = True
    """Write OUT/contact_sheet.png of the first scenes."""
    workers: int = 1
    """Render in this many processes (2 on a 2-core machine is about 15% faster; Cycles threads are split)."""


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
        "ring_cameras": [{**cam.to_dict(), **angles, "radius": float(np.linalg.norm(cam.center))}
                         for cam, angles in zip(sample.ring, ring_angles(sample.azimuth_deg))],
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
    with atomic_dir(folder, "scene") as tmp:
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
        if config.ring_views:
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


@dataclass
class _Job:
    """What every scene of one render_scenes call shares (sent once to each worker process)."""

    objects: list[str]
    occluders: list[str] | None
    seed: int
    out: Path
    config: SceneConfig
    render: RenderConfig


class _SceneMaker:
    """Loaded objects and one Blender renderer, kept for all the scenes a process renders."""

    def __init__(self, job: _Job):
        from blender_scenes.render_bpy import BlenderRenderer

        self.job = job
        self.targets = [load_object(a) for a in resolve_objects(job.objects)]
        self.pool = occluder_pool(self.targets, job.occluders)
        self.order = np.random.default_rng(job.seed).permutation(len(self.targets))
        self.renderer = BlenderRenderer(job.config.resolution, job.render.spp, job.render.denoise,
                                        job.render.threads, job.render.denoise_quality)

    def make(self, i: int) -> tuple[SceneReport, str]:
        folder = self.job.out / f"scene_{i:04d}"
        target = self.targets[self.order[i % len(self.targets)]]
        report = generate_scene(folder, i, target, self.pool, self.job.seed, self.job.config, self.job.render,
                                self.renderer)
        return report, target.name


_maker: _SceneMaker | None = None  # a worker process's


def _init_worker(job: _Job) -> None:
    from multiprocessing.util import Finalize

    global _maker
    _maker = _SceneMaker(job)
    Finalize(_maker, _maker.renderer.close, exitpriority=10)  # pool workers skip atexit handlers


def _make_in_worker(i: int) -> tuple[SceneReport, str]:
    return _maker.make(i)


def render_scenes(objects: list[str], num: int, seed: int, out: Path, config: SceneConfig | None = None,
                  render: RenderConfig | None = None, occluders: list[str] | None = None,
                  progress: bool = True, workers: int = 1) -> list[SceneReport]:
    """Render ``num`` scenes into ``out/scene_0000`` ...; complete scenes already there are kept (resumable).

    ``workers`` > 1 renders scenes in that many processes (Cycles threads split between them): about 15% faster on
    2 cores than one process with both threads, since each scene's Python work overlaps the other's rendering.
    Scene i is the same whatever ``workers`` is.
    """
    config = config or SceneConfig()
    render = render or RenderConfig()
    config.check()
    if num < 1:
        raise UserError(f"--num must be at least 1, got {num}")
    if render.spp < 1:
        raise UserError(f"--spp must be at least 1, got {render.spp}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    out = check_output(out, "render-scenes", [p for p in [*objects, *(occluders or [])] if Path(p).exists()],
                       resume=True)
    todo = [i for i in range(num) if not fmt.is_complete(out / f"scene_{i:04d}")]
    foreign = [out / f"scene_{i:04d}" for i in todo if (out / f"scene_{i:04d}").exists()]
    if foreign:
        raise UserError(f"{foreign[0]} exists but is not a complete scene (not written by render-scenes): move it "
                        "away; nothing was rendered")
    if todo and not available("bpy"):  # before any output or progress bar
        raise UserError(missing_message("bpy", "rendering scenes (Blender)"))
    workers = min(workers, len(todo)) if todo else 1
    job = _Job(objects, occluders, seed, out, config, render)
    # Objects are loaded (and bad ones reported) before any output or worker process exists.
    maker = _SceneMaker(job) if workers == 1 and todo else None
    if maker is None and todo:
        for asset in resolve_objects(objects):
            load_object(asset)
    prepare_resumable(out, "render-scenes")
    with exclusive(out, "render-scenes run"):
        reports = _render_todo(job, maker, todo, num, workers, progress)
    ordered = [reports[i] for i in range(num)]
    failed = [asdict(r) for r in ordered if not r.ok]
    failed_path = out / "failed_scenes.json"
    if failed:
        write_json(failed_path, failed)
    elif failed_path.exists():
        failed_path.unlink()
    return ordered


def _render_todo(job: _Job, maker, todo: list[int], num: int, workers: int, progress: bool) -> dict:
    from tqdm import tqdm

    render = job.render
    reports = {i: SceneReport(f"scene_{i:04d}", True, 0.0, reason="exists") for i in range(num) if i not in todo}
    bar = tqdm(total=num, initial=num - len(todo), desc="scenes", unit="scene", disable=not progress,
               file=sys.stderr)

    def record(i: int, report: SceneReport, target: str) -> None:
        reports[i] = report
        bar.update(1)
        if not report.ok:
            tqdm.write(f"warning: {report.name} ({target}) not written: {report.reason}", file=sys.stderr)

    if workers > 1:
        import multiprocessing as mp
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = render.threads or max(1, (os.cpu_count() or 1) // workers)
        job.render = RenderConfig(spp=render.spp, denoise=render.denoise, threads=threads,
                                  denoise_quality=render.denoise_quality)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(job,)) as pool:
            futures = {pool.submit(_make_in_worker, i): i for i in todo}
            for future in as_completed(futures):
                record(futures[future], *future.result())
    elif maker is not None:
        try:
            for i in todo:
                record(i, *maker.make(i))
        finally:
            maker.renderer.close()
    bar.close()
    return reports
