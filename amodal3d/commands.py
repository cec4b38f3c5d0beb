"""What each ``amodal3d`` command does with its config. The configs are the library's own dataclasses (their field
docstrings are the ``--help``); the small commands' configs live here. Each ``main`` returns the exit code."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from amodal3d.completion.config import DEFAULT_METHOD as DEFAULT_COMPLETION
from amodal3d.completion.config import CompletionConfig
from amodal3d.core.config import OWN_FLAGS, config_record, save_config
from amodal3d.core.errors import UserError
from amodal3d.core.outputs import check_output, check_output_file, prepare_resumable
from amodal3d.core.prompts import InputConfig
from amodal3d.run import RunConfig
from recon.config import DEFAULT_METHOD as DEFAULT_RECON
from recon.config import ReconConfig

_Flat = tyro.conf.OmitArgPrefixes  # for configs whose fields are unique: --image, --point, ...
_Own = OWN_FLAGS  # for stage configs: --samples, --pix2gestalt.steps, ...


# ------------------------------------------------------------------------------------------------------- render-scenes

def render_scenes(config) -> int:
    from amodal3d.contact_sheet import contact_sheet
    from blender_scenes.generate import render_scenes as render

    reports = render(config.objects, config.num, config.seed, config.out, config.scene, config.render,
                     config.occluder_objects or None, workers=config.workers)
    save_config(config.out, "render-scenes", config)
    done = [r for r in reports if r.ok]
    fresh = [r for r in done if r.reason != "exists"]
    failed = [r for r in reports if not r.ok]
    if done and config.contact_sheet:
        sheet = contact_sheet([config.out / r.name for r in done[:6]], config.out / "contact_sheet.png")
        print(f"contact sheet: {sheet}")
    for r in fresh:
        print(f"{config.out / r.name}: occlusion {r.occlusion:.3f}, {r.seconds:.1f} s, {r.attempts} attempt(s)")
    print(f"{len(done)} scene(s) in {config.out} ({len(fresh)} new, {len(done) - len(fresh)} kept), "
          f"{len(failed)} failed" + (f" (see {config.out / 'failed_scenes.json'})" if failed else ""))
    return 1 if failed and not done else 0


# --------------------------------------------------------------------------------------------------------- make-shapes

@dataclass
class MakeShapesConfig:
    """Random procedural objects for training renders (superellipsoids, blobs, prisms, lathed profiles, compounds),
    most textured with crops of your photos: `amodal3d render-scenes --objects OUT/*/*.obj OUT/*.ply`."""

    out: Path
    """Output folder: new or empty (an earlier make-shapes folder there needs --overwrite)."""
    num: int = 60
    """Number of objects (the five families in turn)."""
    seed: int = 0
    textures: Path | None = None
    """Folder of photos (.jpg/.png, or a photo set with images/) whose square crops texture the objects; without it
    textured objects get stripes or checks."""
    textured_fraction: float = 0.8
    """Share of the objects with a texture (the rest get a random material when rendered)."""
    overwrite: bool = False
    """Replace an earlier make-shapes folder in --out (atomically)."""


def make_shapes(config: MakeShapesConfig) -> int:
    from blender_scenes.shapes import write_shapes

    meshes = write_shapes(config.out, config.num, config.seed, config.textures, config.textured_fraction,
                          config.overwrite)
    save_config(config.out, "make-shapes", config)  # `--config OUT/config.json` makes the same set again
    textured = sum(path.suffix == ".obj" for path in meshes)
    print(f"{config.out}: {len(meshes)} objects ({textured} textured); render them with "
          f"amodal3d render-scenes --objects {config.out}/*/*.obj {config.out}/*.ply")
    return 0


# ------------------------------------------------------------------------------------------------------------- objects

@dataclass
class ObjectsConfig:
    """List object assets (bundled by default) with their categories and sizes."""

    objects: list[str] = field(default_factory=lambda: ["all"])
    """Bundled names, 'all', mesh files, Google Scanned Objects folders or a pinned list (.json)."""
    pin: Path | None = None
    """Write these objects as a pinned list (ids + SHA-256 of each mesh) to this new .json file, for
    render-scenes --objects LIST.json on any machine."""
    root: Path | None = None
    """With --pin: the folder ids are relative to (e.g. the GSO root), recorded in the list."""


def objects(config: ObjectsConfig) -> int:
    from blender_scenes.objects import load_object, pin_objects, resolve_objects

    assets = resolve_objects(config.objects)
    if config.pin is not None:
        from amodal3d.core.io import write_json

        if config.pin.exists():
            raise UserError(f"--pin {config.pin} exists: give a new file")
        pinned = pin_objects(assets, config.root, relative_to=config.pin.parent)
        write_json(config.pin, pinned)
        print(f"{config.pin}: {len(pinned['objects'])} objects pinned")
        return 0
    for asset in assets:
        obj = load_object(asset)
        faces = sum(len(p.faces) for p in obj.parts)
        textured = any(p.material.texture is not None for p in obj.parts)
        print(f"{asset.name:16s} {asset.category:18s} {asset.source:8s} {faces:7d} faces "
              f"{'textured' if textured else 'untextured'}  {asset.path}")
    return 0


def run_batch(config: RunConfig) -> int:
    from amodal3d.batch import run_batch as run_photos

    if config.input.image is not None or config.input.scene is not None:
        raise UserError("give --images DIR or --image/--scene, not both")
    if any((config.input.point, config.input.neg_point, config.input.box, config.input.mask)):
        raise UserError("with --images, give prompts per photo in --prompts FILE (JSON or CSV)")
    if config.workers < 1:
        raise UserError(f"--workers must be at least 1, got {config.workers}")
    start = time.perf_counter()
    if config.ray is not None and config.workers != 1:
        raise UserError("give --workers or --ray, not both")
    rows = run_photos(config.images, config.prompts, config.out, config.settings, config.input, config.workers,
                      ray=config.ray)
    done = [r for r in rows if r["status"] == "done"]
    print(f"{len(done)} of {len(rows)} photos done in {time.perf_counter() - start:.1f} s; summary: "
          f"{config.out / 'summary.csv'}; page: {config.out / 'index.html'}")
    return 0 if len(done) == len(rows) else 1


# ---------------------------------------------------------------------------------------------------------------- eval

@dataclass
class EvalConfig:
    """Score a predicted mesh and/or 16 predicted ring views: against a rendered scene (--scene, our protocol, which
    is SyncDreamer's on our scenes), or against ground truth in SyncDreamer's own layout (--protocol syncdreamer:
    its 16 depth PNGs, camera-16.pkl and GT meshes with its per-object rotations), so the numbers compare with
    published ones. Prints one JSON object (and --csv: one row per object)."""

    scene: Path | None = None
    """Scene folder written by render-scenes (--protocol ours)."""
    mesh: Path | None = None
    """Predicted mesh (any format trimesh reads), in the scene's / SyncDreamer's frame; with --protocol syncdreamer
    also a folder of <object>.<ext> meshes."""
    views: Path | None = None
    """Folder with 000.png..015.png on the scene's ring: PSNR, SSIM, LPIPS (--protocol ours)."""
    lpips_weights: Path | None = None
    """torchvision ImageNet backbone weights for LPIPS (default: torch hub cache); LPIPS is null when missing."""
    lpips_net: Literal["vgg", "alex"] = "vgg"
    """LPIPS backbone: vgg (the protocol's) or alex."""
    protocol: Literal["ours", "syncdreamer"] = "ours"
    """ours: a rendered scene folder; syncdreamer: SyncDreamer's eval_mesh.py on its GT layout."""
    gt_dir: Path | None = None
    """syncdreamer: the object's folder of 000-depth.png..015-depth.png, or a folder of such folders (one per
    object, named as in SyncDreamer's table)."""
    gt_mesh: Path | None = None
    """syncdreamer: the object's GT mesh, or a folder holding <object>.<ext> or <object>/**/*.obj|ply|glb."""
    object: str | None = None
    """syncdreamer: the object's name, for its rotation in SyncDreamer's table (default: the GT folder's name)."""
    camera_file: Path | None = None
    """syncdreamer: camera-16.pkl (default: SyncDreamer's own ring, meta_info/camera-16.pkl)."""
    fscore: tuple[float, ...] = (0.01, 0.02, 0.05)
    """syncdreamer: F-score distance thresholds (in the unit-box frame)."""
    csv: Path | None = None
    """syncdreamer: write one row per object here (a new file)."""


def evaluate(config: EvalConfig) -> int:
    from dataclasses import asdict

    if config.protocol == "syncdreamer":
        return evaluate_syncdreamer_layout(config)
    from metrics import evaluate_mesh, evaluate_views

    if config.scene is None:
        raise UserError("give --scene DIR (a rendered scene), or --protocol syncdreamer with --gt-dir and --gt-mesh")
    if config.mesh is None and config.views is None:
        raise UserError("give --mesh MESH and/or --views DIR to evaluate")
    result: dict = {"scene": str(config.scene)}
    if config.mesh is not None:
        result.update({"mesh": str(config.mesh), **asdict(evaluate_mesh(config.mesh, config.scene))})
    if config.views is not None:
        views = asdict(evaluate_views(config.views, config.scene, config.lpips_weights, config.lpips_net))
        result.update({"views": str(config.views), **views})
    print(json.dumps(_finite(result), indent=2))
    return 0


def _mesh_for(folder: Path, name: str) -> Path | None:
    from blender_scenes.objects import MESH_SUFFIXES

    direct = [folder / f"{name}{ext}" for ext in MESH_SUFFIXES if (folder / f"{name}{ext}").is_file()]
    nested = sorted(p for p in (folder / name).rglob("*") if p.suffix in MESH_SUFFIXES) \
        if (folder / name).is_dir() else []
    return (direct or nested or [None])[0]


def evaluate_syncdreamer_layout(config: EvalConfig) -> int:
    from dataclasses import asdict

    import numpy as np

    from amodal3d.core.io import write_text
    from metrics.syncdreamer import SCALE_NOTE, evaluate_syncdreamer

    if config.gt_dir is None or config.gt_mesh is None or config.mesh is None:
        raise UserError("--protocol syncdreamer needs --gt-dir, --gt-mesh and --mesh")
    if config.csv is not None and config.csv.exists():
        raise UserError(f"--csv {config.csv} exists: give a new file")
    for flag, path in (("--gt-dir", config.gt_dir), ("--gt-mesh", config.gt_mesh), ("--mesh", config.mesh)):
        if not path.exists():
            raise UserError(f"{flag} {path}: no such file or folder")
    if not config.gt_dir.is_dir():
        raise UserError(f"--gt-dir {config.gt_dir} is not a folder")
    single = (config.gt_dir / "000-depth.png").is_file()
    names = [config.object or config.gt_dir.name] if single else \
        sorted(p.name for p in config.gt_dir.iterdir() if (p / "000-depth.png").is_file())
    if not names:
        raise UserError(f"{config.gt_dir}: no 000-depth.png, nor folders holding one")
    rows = []
    for name in names:
        gt_dir = config.gt_dir if single else config.gt_dir / name
        gt_mesh = config.gt_mesh if config.gt_mesh.is_file() else _mesh_for(config.gt_mesh, name)
        pred = config.mesh if config.mesh.is_file() else _mesh_for(config.mesh, name)
        if gt_mesh is None or pred is None:
            print(f"{name}: skipped (no {'GT' if gt_mesh is None else 'predicted'} mesh)", file=sys.stderr)
            continue
        scores = evaluate_syncdreamer(pred, gt_dir, gt_mesh, name, config.camera_file, config.fscore)
        rows.append(asdict(scores))
    if not rows:
        raise UserError("no object had both a GT and a predicted mesh")
    mean = {"chamfer": float(np.mean([r["chamfer"] for r in rows])),
            "volume_iou": float(np.mean([r["volume_iou"] for r in rows])),
            "fscore": {t: float(np.mean([r["fscore"][t] for r in rows])) for t in rows[0]["fscore"]}}
    if config.csv is not None:
        thresholds = list(rows[0]["fscore"])
        lines = ["object,chamfer,volume_iou," + ",".join(f"fscore@{t}" for t in thresholds) + ",rotation_deg"]
        lines += [f"{r['name']},{r['chamfer']:.6f},{r['volume_iou']:.6f},"
                  + ",".join(f"{r['fscore'][t]:.6f}" for t in thresholds) + f",{r['rotation_deg']:g}" for r in rows]
        write_text(config.csv, "\n".join(lines) + "\n")
    print(json.dumps({"protocol": "syncdreamer", "note": SCALE_NOTE, "objects": rows, "mean": mean}, indent=2))
    return 0


def _finite(x):
    """JSON has no infinity: identical images have PSNR "inf"."""
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------------------------ complete

@dataclass
class CompleteConfig:
    """Complete a partly hidden object: K whole-object samples, their majority-vote amodal mask and vote fraction.
    Writes the completion folder of DESIGN.md (and config.json)."""

    out: Path
    """Output folder: new or empty (an earlier completion there needs --overwrite)."""
    input: Annotated[InputConfig, _Flat] = field(default_factory=InputConfig)
    completion: str = DEFAULT_COMPLETION
    """Completion backend: amodalnet (bundled network, the default with torch), classical (no weights, the default
    without torch), gestalt-tiny (bundled diffusion model), pix2gestalt, inpaint, progressive, or a plugin's; its
    options are the --<name>.* flags."""
    seed: int = 0
    """Same seed, same samples."""
    completion_config: Annotated[CompletionConfig, _Own] = field(default_factory=CompletionConfig)
    overwrite: bool = False
    """Replace an earlier completion in --out (atomically; nothing else is ever replaced)."""


def complete(config: CompleteConfig) -> int:
    from amodal3d.completion import complete as complete_image
    from amodal3d.completion import write_completion

    check_output(config.out, "complete", [*config.input.paths(), config.completion_config.segmenter.sam_checkpoint],
                 config.overwrite)
    given = config.input.load()
    result = complete_image(given.image, given.prompt, config.completion, config.completion_config,
                            seed=config.seed, occluder_mask=given.occluder)
    write_completion(result, config.out, given.source, overwrite=config.overwrite,
                     original_size=given.original_size, config=config_record("complete", config))
    print(f"{config.out}: {result.method}, {len(result.samples)} samples, segmenter {result.segmenter}, "
          f"amodal {int(result.amodal_mask.sum())} px vs visible {int(result.modal_mask.sum())} px, "
          f"{sum(result.timings.values()):.2f} s")
    return 0


# ----------------------------------------------------------------------------------------------------------------- run

def run(config: RunConfig) -> int:
    from amodal3d.run import run as run_job

    settings = config.settings
    if config.images is not None:
        return run_batch(config)
    check_output(config.out, "run", [*config.input.paths(), settings.completion_config.segmenter.sam_checkpoint],
                 config.overwrite)
    given = config.input.load()
    result = run_job(given.image, given.prompt, config.out, settings, config.input.scene, given.source,
                     occluder=given.occluder,
                     progress=lambda i, n, stage: print(f"[{i}/{n}] {stage}", flush=True), overwrite=config.overwrite,
                     original_size=given.original_size, config=config_record("run", config))
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    print(f"{result.mesh} ({timings}); page: {config.out / 'index.html'}")
    if result.metrics:
        print(json.dumps({k: v for k, v in result.metrics.items() if k != "lpips_unavailable"}, indent=1))
    return 0


# --------------------------------------------------------------------------------------------------------- reconstruct

@dataclass
class ReconstructConfig:
    """Reconstruct a mesh from a completion folder (or an RGBA image of the whole object). Writes mesh.glb (textured),
    mesh.obj, mesh.ply, recon.json, config.json, and views/ with transforms.json when the method generates views."""

    out: Path
    """Output folder: new or empty (an earlier reconstruction there needs --overwrite)."""
    completion_dir: Path | None = None
    """A completion folder (amodal3d complete): first sample's colours, majority-vote mask."""
    image: Path | None = None
    """Or an RGBA image of the whole object (alpha = object)."""
    scene: Path | None = None
    """Place the result in this rendered scene's benchmark frame (its input camera), so `amodal3d eval` scores it."""
    ring: bool = False
    """With --scene, also pass the scene's 16 ground-truth ring views (for multi-view methods such as visual_hull)."""
    recon: str = DEFAULT_RECON
    """Reconstruction backend: prior (CPU shape priors, default), inflate, visual_hull, neus, syncdreamer, sds, or a
    plugin's; its options are the --<name>.* flags (--prior.prior, --prior.faces, --prior.texture-size)."""
    seed: int = 0
    """Seed for stochastic backends."""
    recon_config: Annotated[ReconConfig, _Own] = field(default_factory=ReconConfig)
    overwrite: bool = False
    """Replace an earlier reconstruction in --out (atomically; nothing else is ever replaced)."""


def reconstruct(config: ReconstructConfig) -> int:
    from amodal3d.core.formats.reconstruction import write_reconstruction
    from amodal3d.core.io import read_image_rgba
    from recon.pipeline import make_inputs, view_from_completion
    from recon.pipeline import reconstruct as reconstruct_view

    if (config.completion_dir is None) == (config.image is None):
        raise UserError("give exactly one of --completion-dir DIR or --image RGBA.png")
    check_output(config.out, "reconstruct", [config.completion_dir, config.image, config.scene], config.overwrite)
    rgba = view_from_completion(config.completion_dir) if config.completion_dir else read_image_rgba(config.image)
    inputs = make_inputs(rgba, config.scene, config.recon_config.elevation, with_ring=config.ring)
    result = reconstruct_view(inputs, config.recon, config.recon_config, seed=config.seed)
    source = {"completion": str(config.completion_dir)} if config.completion_dir else {"image": str(config.image)}
    write_reconstruction(result, config.out, {**source, "scene": None if config.scene is None else str(config.scene),
                                              "elevation_deg": inputs.elevation_deg}, overwrite=config.overwrite,
                         config=config_record("reconstruct", config), ground=config.recon_config.ground)
    print(f"{config.out}: {result.info.get('method')} mesh, {len(result.mesh.faces)} faces, "
          f"{result.info.get('seconds', 0.0):.2f} s")
    return 0


# --------------------------------------------------------------------------------------------------------------- bench

def bench(config) -> int:
    from amodal3d.bench import run_bench

    done = run_bench(config)
    print((config.out / "summary.md").read_text())
    report = f"; report: {config.out / 'report.html'}" if config.scenes is not None else ""
    print(f"{done.new_rows} new row(s), {len(done.rows)} in all, {len(done.failures)} failed, {done.seconds:.1f} s"
          + report)
    if config.screenshot:
        from amodal3d.bench.screenshot import screenshot

        print(f"screenshot: {screenshot(config.out / 'report.html', config.out / 'report.png')}")
    return 1 if done.failures else 0


def bench_amodal(config) -> int:
    from amodal3d.bench.amodal import run_bench_amodal

    done = run_bench_amodal(config)
    print((config.out / "summary.md").read_text())
    print(f"{done.new_rows} new row(s), {len(done.rows)} in all, {done.seconds:.1f} s; {config.out / 'summary.csv'}")
    return 0


# ----------------------------------------------------------------------------------------------------------------- bop

@dataclass
class BopConfig:
    """Our scene folders as a BOP dataset (what BlenderProc's BOP writer and the BOP toolkit use: rgb/, depth/,
    mask/ (amodal), mask_visib/, scene_gt.json, scene_camera.json, models/), and BOP datasets back as scene folders
    for `bench` (ours come back whole; any other BOP scene gives one scene per partly hidden object)."""

    action: Annotated[Literal["export", "import"], tyro.conf.Positional]
    """export: --scenes DIR -> --out BOP; import: --bop DIR -> --out SCENES."""
    out: Path
    """Output folder: new or empty."""
    scenes: Path | None = None
    """export: a folder of rendered scene folders."""
    bop: Path | None = None
    """import: a BOP dataset folder (holding <split>/<scene id>/ and models/) or one of its split folders."""
    split: str | None = None
    """export: the split folder name written (test); import: the split to read (default: every split)."""



def bop(config: BopConfig) -> int:
    from amodal3d.bench.runner import find_scenes
    from amodal3d.data.bop import export_bop, import_bop

    given = config.scenes if config.action == "export" else config.bop
    if given is None:
        raise UserError(f"bop {config.action} needs {'--scenes DIR' if config.action == 'export' else '--bop DIR'}")
    check_output(config.out, "bop", [given])
    if config.action == "export":
        count = export_bop(find_scenes(config.scenes), config.out, config.split or "test")
        print(f"{config.out}: {count} scene(s) in BOP format ({config.split or 'test'}/, models/)")
    else:
        count = import_bop(config.bop, config.out, config.split)
        print(f"{config.out}: {count} scene folder(s) (amodal3d bench --scenes {config.out})")
    return 0


# --------------------------------------------------------------------------------------------------------------- addon

@dataclass
class AddonConfig:
    """The Blender add-on. `amodal3d addon build --out amodal3d_addon.zip` writes the zip to install in Blender
    (Edit > Preferences > Add-ons/Get Extensions > Install from Disk), then set its 'Python with amodal3d' to this
    environment's python."""

    action: Annotated[Literal["build"], tyro.conf.Positional]
    """What to do: build."""
    out: Path = Path("amodal3d_addon.zip")
    """Where to write the zip."""
    overwrite: bool = False
    """Replace an add-on zip amodal3d built earlier (nothing else is ever replaced)."""


def addon(config: AddonConfig) -> int:
    from amodal3d.addon import build_addon, is_addon_zip

    check_output_file(config.out, is_addon_zip, "Blender add-on zip", overwrite=config.overwrite)
    path = build_addon(config.out)
    print(f"{path} (python for its preferences: {sys.executable})")
    return 0


# ---------------------------------------------------------------------------------------------------------------- demo

@dataclass
class DemoConfig:
    """The main job on the embedded defaults, with no weights: `amodal3d run` on a bundled example photo (a cup
    partly hidden by a pasted photo print) and on a freshly rendered occluded scene (scored against its ground
    truth), plus completions of every rendered scene and contact sheets."""

    out: Path = Path("outputs/demo")
    """Output folder (reused by the next demo)."""
    num: int = 3
    """Number of scenes to render."""
    seed: int = 0
    """Run seed."""
    completions: tuple[str, ...] = ("classical", "amodalnet", "gestalt-tiny")
    """Completion methods shown on the completion sheet (a row per scene and method)."""


def demo(config: DemoConfig) -> int:
    from amodal3d.completion import complete as complete_image
    from amodal3d.completion import write_completion
    from amodal3d.contact_sheet import completion_sheet, contact_sheet
    from amodal3d.core.formats import scene as fmt
    from amodal3d.core.io import write_png
    from amodal3d.core.prompts import Prompt
    from amodal3d.data.examples import (
        COFFEE_CUP_ELEVATION,
        COFFEE_CUP_RECON,
        coffee_cup_prompts,
        occluded_coffee_cup,
    )
    from amodal3d.run import RunSettings
    from amodal3d.run import run as run_job
    from blender_scenes.generate import render_scenes as render

    out = config.out
    check_output(out, "demo", resume=True)
    prepare_resumable(out, "demo")
    save_config(out, "demo", config)
    settings = RunSettings(seed=config.seed)
    image, _ = occluded_coffee_cup()
    write_png(out / "example_input.png", image)
    cup, card = coffee_cup_prompts()
    as_its_user_knows = RunSettings(seed=config.seed, recon=COFFEE_CUP_RECON,
                                    recon_config=ReconConfig(elevation=COFFEE_CUP_ELEVATION))
    photo = run_job(image, cup, out / "run_example", as_its_user_knows,
                    source={"image": "amodal3d.data.examples.occluded_coffee_cup", "prompt": cup.to_dict(),
                            "occluder_prompt": card.to_dict()}, overwrite=True, occluder=card)
    scenes = out / "scenes"
    reports = render(["all"], config.num, config.seed, scenes, workers=2)
    done = [scenes / r.name for r in reports if r.ok]
    if not done:
        raise UserError("no scene could be rendered")
    first = fmt.Scene.open(done[0])
    scene_run = run_job(first.image(fmt.INPUT), Prompt(mask=first.mask(fmt.MODAL_MASK)), out / "run_scene", settings,
                        scene=done[0], source={"scene": str(done[0])}, overwrite=True)
    pairs = []
    for folder in done:
        scene = fmt.Scene.open(folder)
        for method in config.completions:
            result = complete_image(scene.image(fmt.INPUT), Prompt(mask=scene.mask(fmt.MODAL_MASK)), method,
                                    seed=config.seed)
            target = out / "completions" / f"{folder.name}_{method}"
            write_completion(result, target, {"scene": str(folder)}, overwrite=True)
            pairs.append((folder, target))
    m = scene_run.metrics
    print(f"example photo:    {photo.out / 'index.html'}  (mesh {photo.mesh}; --recon {COFFEE_CUP_RECON} "
          f"--elevation {COFFEE_CUP_ELEVATION:g}, what its user knows of the shot)")
    print(f"rendered scene:   {scene_run.out / 'index.html'}  amodal IoU {m['mask_iou']:.3f} "
          f"(visible {m['modal_mask_iou']:.3f}), Chamfer {m['chamfer']:.4f}, vIoU {m['volume_iou']:.3f}, "
          f"PSNR {m['psnr']:.2f}")
    print(f"scenes:           {scenes}  ({len(done)} rendered)")
    print(f"scene sheet:      {contact_sheet(done, out / 'scene_sheet.png')}")
    print(f"completion sheet: {completion_sheet(pairs, out / 'completion_sheet.png')}")
    print("the same in a web page: .venv/bin/amodal3d app  (then open http://127.0.0.1:7860)")
    return 0


# ----------------------------------------------------------------------------------------------------------- recognize

@dataclass
class RecognizeConfig:
    """CLIP zero-shot recognition of the occluded targets of rendered scenes: the raw occluded crop against the
    completed object (pix2gestalt Table 2). Prints and writes top-1 accuracies."""

    scenes: Path
    """Folder of rendered scenes (labels: the targets' categories)."""
    clip: str
    """A transformers CLIPModel folder or hub id (e.g. a local copy of openai/clip-vit-large-patch14)."""
    out: Path | None = None
    """Also write the result as JSON here."""
    completion: str = DEFAULT_COMPLETION
    """Completion backend; its options are the --<name>.* flags."""
    labels: list[str] = field(default_factory=list)
    """Candidate labels (default: the categories present in the scenes)."""
    template: str = "a photo of a {}."
    """CLIP text prompt for each label."""
    seed: int = 0
    completion_config: Annotated[CompletionConfig, _Own] = field(default_factory=CompletionConfig)
    overwrite: bool = False
    """Replace a result file amodal3d wrote earlier."""


def is_recognition_json(path: Path) -> bool:
    try:
        return json.loads(Path(path).read_text()).get("amodal3d") == "recognize"
    except (OSError, ValueError, AttributeError):
        return False


def recognize(config: RecognizeConfig) -> int:
    from amodal3d.core.io import write_json
    from amodal3d.recognition import ZeroShotCLIP, recognition_accuracy, scene_cases

    if config.out is not None:
        check_output_file(config.out, is_recognition_json, "recognition result", [config.scenes], config.overwrite)
    cases = scene_cases(config.scenes, config.completion, config.completion_config, seed=config.seed)
    labels = config.labels or sorted({c["label"] for c in cases})
    result = recognition_accuracy(ZeroShotCLIP(config.clip, labels, config.template), cases)
    result = {"amodal3d": "recognize", "completion": config.completion, "labels": labels, **result,
              "scenes": [c["scene"] for c in cases], "truth": [c["label"] for c in cases],
              "config": config_record("recognize", config)["config"]}
    if config.out is not None:
        write_json(config.out, result)
    print(f"{result['cases']} objects, {len(labels)} labels: CLIP top-1 {100 * result['raw_top1']:.2f}% on the "
          f"occluded crops, {100 * result['completed_top1']:.2f}% on the {result['completion']} completions")
    return 0


# ---------------------------------------------------------------------------------------------------------- make-pairs

@dataclass
class MakePairsConfig:
    """Whole-part training pairs in pix2gestalt's folder layout (occlusion/, whole/, whole_mask/,
    visible_object_mask/, pairs.jsonl), from rendered scenes and/or images with instance masks and depth."""

    out: Path
    """Output folder: new or empty (an earlier pairs folder there needs --overwrite)."""
    scenes: Path | None = None
    """Rendered scene folders (amodal3d render-scenes; --no-ring-views is enough): exact pairs."""
    coco: Path | None = None
    """COCO-style instance annotations (polygons or plain RLE) of the images in --images."""
    images: Path | None = None
    """Folder of the annotated images."""
    depth: Path | None = None
    """Folder of depth maps, <image stem>.npy or 16-bit .png, same size as the images."""
    depth_kind: Literal["depth", "disparity"] = "depth"
    """'disparity' for inverse depth (MiDaS), else larger = farther."""
    occlusion: tuple[float, float] = (0.2, 0.8)
    """Range of the fraction of a whole object the pasted occluder hides."""
    seed: int = 0
    pasted: int = 0
    """Also this many variants of each scene pair, hidden further by another scene's whole object pasted over it
    (total occlusion kept in --occlusion)."""
    overwrite: bool = False
    """Replace an earlier pairs folder in --out (atomically; nothing else is ever replaced)."""
    backgrounds: Path | None = None
    """Folder of real photos (.jpg/.png): each rendered scene's background becomes a random crop of one
    (sim-to-real; the target and its occluders keep their rendered pixels)."""


def make_pairs(config: MakePairsConfig) -> int:
    from amodal3d.data.pairs import make_pairs as build

    check_output(config.out, "make-pairs", [config.scenes, config.coco, config.images, config.depth,
                                            config.backgrounds], config.overwrite)
    count = build(config.out, config.scenes, config.coco, config.images, config.depth, config.depth_kind,
                  config.seed, config.occlusion, config.pasted, overwrite=config.overwrite,
                  config=config_record("make-pairs", config), backgrounds=config.backgrounds)
    print(f"{config.out}: {count} pairs")
    return 0


# --------------------------------------------------------------------------------------------------------------- train

def train(config) -> int:
    from amodal3d.completion.diffusion import require_diffusion

    require_diffusion("train")
    from amodal3d.train import train as fit

    trainer = fit(config)
    print(f"{config.out / 'model'}: step {trainer.step}; loss curve {config.out / 'loss.jsonl'}")
    return 0


def train_segmenter(config) -> int:
    from amodal3d.core.optional import require

    for module in ("torch", "safetensors"):
        require(module, "train-segmenter")
    from amodal3d.train_segmenter import train_segmenter as fit

    print(f"{fit(config, log=lambda line: print(line, flush=True))}: use it with --clicknet-weights")
    return 0


def train_amodalnet(config) -> int:
    from amodal3d.core.optional import require

    for module in ("torch", "safetensors"):
        require(module, "train-amodalnet")
    from amodal3d.train_amodalnet import train_amodalnet as fit

    print(f"{fit(config, log=lambda line: print(line, flush=True))}: use it with --completion amodalnet "
          "--amodalnet.weights")
    return 0


# ------------------------------------------------------------------------------------------------- convert-pix2gestalt

@dataclass
class ConvertConfig:
    """Convert the released pix2gestalt checkpoint (PyTorch Lightning .ckpt, read without unpickling code) into a
    diffusers folder (safetensors) for `--completion pix2gestalt --pix2gestalt.weights OUT`."""

    checkpoint: Annotated[Path, tyro.conf.Positional]
    """The original checkpoint, e.g. epoch=000010.ckpt."""
    out: Annotated[Path, tyro.conf.Positional]
    """Output folder: new or empty (an earlier conversion there needs --overwrite)."""
    ema: bool = True
    """Convert the EMA weights (as the original inference uses); --no-ema converts the raw training weights."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Storage precision of the converted weights (float16 halves the size, for GPUs)."""
    num_heads: int = 8
    """UNet attention heads (not recorded in the checkpoint; 8 for pix2gestalt)."""
    overwrite: bool = False
    """Replace an earlier conversion in OUT (atomically; nothing else is ever replaced)."""


def convert_pix2gestalt(config: ConvertConfig) -> int:
    from amodal3d.completion.diffusion import require_diffusion

    require_diffusion("convert-pix2gestalt")
    from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt as convert

    check_output(config.out, "convert-pix2gestalt", [config.checkpoint], config.overwrite, flag="OUT")
    report = convert(config.checkpoint, config.out, ema=None if config.ema else False, num_heads=config.num_heads,
                     dtype=config.dtype, overwrite=config.overwrite,
                     config=config_record("convert-pix2gestalt", config))
    c = report.converted
    print(f"{config.out}: {report.tensors} tensors read; {c['unet']} UNet ({report.unet_weights}), {c['vae']} VAE, "
          f"{c['image_encoder']} CLIP vision, {c['cc_projection']} cc_projection written; left out: "
          + ", ".join(f"{n} {why}" for why, n in report.ignored.items() if n))
    return 0


# ------------------------------------------------------------------------------------------------------------- weights

@dataclass
class WeightsConfig:
    """Weights by name: `amodal3d weights list` (what is cached, sizes, licences, how to use each), `amodal3d
    weights download NAME` (once, into torch hub's or the Hugging Face cache; pix2gestalt is converted too)."""

    action: Annotated[Literal["list", "download"], tyro.conf.Positional]
    name: Annotated[str | None, tyro.conf.Positional] = None
    """With download: a name from the list (or its hub id, e.g. cvlab/pix2gestalt-weights)."""
    accept_licence: bool = False
    """Accept a non-commercial licence (pix2gestalt: CC BY-NC) for this download."""


def weights(config: WeightsConfig) -> int:
    from amodal3d.core import weights as hub

    if config.action == "list":
        for entry in hub.CATALOG:
            have = hub.cached(entry) if _hub_listable(entry) else None
            state = "cached: " + ", ".join(map(str, have)) if have else "not downloaded"
            print(f"{entry.name:22s} {entry.size:>8s}  {entry.licence}\n    {entry.purpose}; {state}"
                  + (f"\n    {entry.note}" if entry.note else ""))
        print("gestalt-tiny           bundled   Apache-2.0 (this project)\n    the learned completion model that "
              "ships in the package; nothing to download")
        for name, purpose in (("amodalnet", "the learned whole-mask completer"), ("clicknet", "the segmenter")):
            print(f"{name:22s} bundled   this project's; trained on research-use photos (weights/{name}/TRAINING.md)"
                  f"\n    {purpose} used by default when torch is installed; nothing to download")
        return 0
    if not config.name:
        raise UserError("weights download needs a NAME (see amodal3d weights list)")
    entry = hub.find(config.name)
    if entry.name.startswith("pix2gestalt"):  # downloaded and converted: the folder --pix2gestalt.weights takes
        from amodal3d.completion.pix2gestalt import converted_weights

        paths = [converted_weights(entry.name, accept_licence=config.accept_licence)]
    else:
        paths = hub.fetch(entry.name, accept_licence=config.accept_licence)
    for path in paths:
        print(path)
    if entry.flags:
        print("use it with: " + " ".join(flag.replace("{path}", str(paths[0])) for flag in entry.flags))
    return 0


def _hub_listable(entry) -> bool:
    """Hub entries are looked up in the Hugging Face cache only when its client is installed."""
    from amodal3d.core.optional import available

    return all(r.url for r in entry.files) or available("huggingface_hub")
